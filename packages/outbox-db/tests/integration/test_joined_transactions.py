"""Proofs: an enqueue refused inside a service's own transaction leaves that transaction usable.

OutboxTransaction runs each enqueue (and each enqueue_many) in a savepoint of its own. A
duplicate request with another payment's key (IdempotencyConflict, P7001) is undone alone:
the service's writes before and after it, and its other items, commit together. Without the
savepoint PostgreSQL refuses every later statement of the transaction (25P02): the control.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final, LiteralString

import psycopg
import pytest

from outbox_db import IdempotencyConflict, OutboxTransaction
from outbox_db.testonly import query_no_role
from outbox_db.testonly.factories import duplicate_of, make_request

if TYPE_CHECKING:
    from collections.abc import Iterator

    from outbox_db.testonly.pytest_plugin import Database

SERVICE_TABLE: LiteralString = "CREATE TABLE service_orders (order_id text PRIMARY KEY)"
SERVICE_WRITE: LiteralString = "INSERT INTO service_orders VALUES (%s)"
ORDERS: LiteralString = "SELECT order_id FROM service_orders ORDER BY 1"
ITEMS: LiteralString = "SELECT instruction_id FROM public.payment_outbox_pending ORDER BY 1"
# The enqueue function called bare, as a service without OutboxTransaction would.
BARE_ENQUEUE: LiteralString = (
    "SELECT * FROM public.enqueue_payment_outbox(%s, %s, %s, %s, %s::jsonb)"
)
ABORTED: Final = "25P02"


@pytest.fixture
def service(outbox_database: Database) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    """The service's own connection (not autocommit), its table made and committed."""
    with psycopg.connect(outbox_database.url) as connection:
        connection.execute(SERVICE_TABLE)
        connection.commit()
        yield connection


def test_a_refused_enqueue_leaves_the_service_transaction_to_commit_everything_else(
    outbox_database: Database, service: psycopg.Connection[tuple[object, ...]]
) -> None:
    """Order, item, refused duplicate, order, item: one commit keeps all but the duplicate."""
    outbox = OutboxTransaction.join(service)
    first, second = make_request(), make_request()

    service.execute(SERVICE_WRITE, ["order-1"])
    outbox.enqueue(first)
    with pytest.raises(IdempotencyConflict) as single:
        outbox.enqueue(duplicate_of(first))
    with pytest.raises(IdempotencyConflict) as batch:
        outbox.enqueue_many([make_request(), duplicate_of(first)])
    service.execute(SERVICE_WRITE, ["order-2"])
    outbox.enqueue(second)
    service.commit()

    assert (single.value.sqlstate, batch.value.sqlstate) == ("P7001", "P7001")
    assert query_no_role(outbox_database.url, ORDERS) == [("order-1",), ("order-2",)]
    items = query_no_role(outbox_database.url, ITEMS)
    assert items == sorted([(first.instruction_id,), (second.instruction_id,)])


def test_a_rollback_of_the_service_transaction_removes_its_items(
    outbox_database: Database, service: psycopg.Connection[tuple[object, ...]]
) -> None:
    """The savepoints are released into the service's transaction, not committed alone."""
    outbox = OutboxTransaction.join(service)
    first = make_request()
    outbox.enqueue(first)
    with pytest.raises(IdempotencyConflict):
        outbox.enqueue(duplicate_of(first))
    service.rollback()

    assert query_no_role(outbox_database.url, ITEMS) == []


def test_without_a_savepoint_a_refused_enqueue_costs_the_whole_transaction(
    service: psycopg.Connection[tuple[object, ...]],
) -> None:
    """The control: the enqueue function called bare, refused, aborts the transaction."""
    first = make_request()
    OutboxTransaction.join(service).enqueue(first)
    duplicate = duplicate_of(first)
    bare = [
        duplicate.instruction_id,
        duplicate.participant_id,
        duplicate.idempotency_key,
        duplicate.rail_type,
        '{"amount": "10.00"}',
    ]
    with pytest.raises(psycopg.Error) as refused:
        service.execute(BARE_ENQUEUE, bare)
    with pytest.raises(psycopg.Error) as next_statement:
        service.execute(SERVICE_WRITE, ["order-1"])

    assert refused.value.sqlstate == "P7001"
    assert next_statement.value.sqlstate == ABORTED
