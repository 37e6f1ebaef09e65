"""Proofs: joining a service's own transaction, with either API.

OutboxTransaction and AsyncOutboxTransaction run each enqueue (and each enqueue_many) in a
savepoint of their own. A duplicate request with another payment's key (IdempotencyConflict,
P7001) is undone alone: the service's writes before and after it, and its other items,
commit together. Without the savepoint PostgreSQL refuses every later statement of the
transaction (25P02): the control. A connection join cannot share is refused, naming the fix.
[sync] runs on a psycopg Connection, [async] on an AsyncConnection seen through
outbox_db.testonly.blocking.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final, LiteralString, cast

import attrs
import psycopg
import pytest

from outbox_db import AsyncOutboxTransaction, IdempotencyConflict, OutboxError, OutboxTransaction
from outbox_db.testonly import query_no_role
from outbox_db.testonly.blocking import Blocking, EventLoopThread
from outbox_db.testonly.factories import duplicate_of, make_request

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

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


@attrs.frozen
class Service:
    """A service's own connection (not autocommit), and how it joins the outbox to it."""

    connection: psycopg.Connection[Any]  # [async]: a blocking view of an AsyncConnection
    join: Callable[[], OutboxTransaction]


@pytest.fixture(params=["sync", "async"])
def service(request: pytest.FixtureRequest, outbox_database: Database) -> Iterator[Service]:
    """The service's connection of the API in the id, its table made and committed."""
    if request.param == "sync":
        with psycopg.connect(outbox_database.url) as connection:
            yield made(Service(connection, lambda: OutboxTransaction.join(connection)))
        return
    loop = EventLoopThread()
    try:
        native = loop.run(psycopg.AsyncConnection.connect(outbox_database.url))
        joined = lambda: Blocking(AsyncOutboxTransaction.join(native), loop)  # noqa: E731
        yield made(Service(cast("Any", Blocking(native, loop)), cast("Any", joined)))
        loop.run(native.close())
    finally:
        loop.close()


def made(service: Service) -> Service:
    """`service` with its table made and committed."""
    service.connection.execute(SERVICE_TABLE)
    service.connection.commit()
    return service


def test_a_refused_enqueue_leaves_the_service_transaction_to_commit_everything_else(
    outbox_database: Database, service: Service
) -> None:
    """Order, item, refused duplicate, order, item: one commit keeps all but the duplicate."""
    outbox = service.join()
    first, second = make_request(), make_request()

    service.connection.execute(SERVICE_WRITE, ["order-1"])
    outbox.enqueue(first)
    with pytest.raises(IdempotencyConflict) as single:
        outbox.enqueue(duplicate_of(first))
    with pytest.raises(IdempotencyConflict) as batch:
        outbox.enqueue_many([make_request(), duplicate_of(first)])
    service.connection.execute(SERVICE_WRITE, ["order-2"])
    outbox.enqueue(second)
    service.connection.commit()

    assert (single.value.sqlstate, batch.value.sqlstate) == ("P7001", "P7001")
    assert query_no_role(outbox_database.url, ORDERS) == [("order-1",), ("order-2",)]
    items = query_no_role(outbox_database.url, ITEMS)
    assert items == sorted([(first.instruction_id,), (second.instruction_id,)])


def test_a_rollback_of_the_service_transaction_removes_its_items(
    outbox_database: Database, service: Service
) -> None:
    """The savepoints are released into the service's transaction, not committed alone."""
    outbox = service.join()
    first = make_request()
    outbox.enqueue(first)
    with pytest.raises(IdempotencyConflict):
        outbox.enqueue(duplicate_of(first))
    service.connection.rollback()

    assert query_no_role(outbox_database.url, ITEMS) == []


def test_without_a_savepoint_a_refused_enqueue_costs_the_whole_transaction(
    service: Service,
) -> None:
    """The control: the enqueue function called bare, refused, aborts the transaction."""
    first = make_request()
    service.join().enqueue(first)
    duplicate = duplicate_of(first)
    bare = [
        duplicate.instruction_id,
        duplicate.participant_id,
        duplicate.idempotency_key,
        duplicate.rail_type,
        '{"amount": "10.00"}',
    ]
    with pytest.raises(psycopg.Error) as refused:
        service.connection.execute(BARE_ENQUEUE, bare)
    with pytest.raises(psycopg.Error) as next_statement:
        service.connection.execute(SERVICE_WRITE, ["order-1"])
    with pytest.raises(OutboxError) as aborted:
        service.join()

    assert refused.value.sqlstate == "P7001"
    assert next_statement.value.sqlstate == ABORTED
    assert "aborted transaction" in str(aborted.value), "join refuses it, naming the fix"


def test_join_refuses_what_it_cannot_share_naming_the_fix(outbox_database: Database) -> None:
    """The other API's connection, autocommit outside a transaction, a closed connection."""
    url, loop = outbox_database.url, EventLoopThread()
    connect_async = psycopg.AsyncConnection.connect
    async_open = loop.run(connect_async(url))
    async_autocommit = loop.run(connect_async(url, autocommit=True))
    async_closed = loop.run(connect_async(url))
    loop.run(async_closed.close())
    try:
        with psycopg.connect(url) as sync_open, psycopg.connect(url, autocommit=True) as sync_auto:
            sync_closed = psycopg.connect(url)
            sync_closed.close()
            cases: dict[str, tuple[Callable[[Any], object], object]] = {
                "sync, AsyncConnection": (OutboxTransaction.join, async_open),
                "sync, autocommit": (OutboxTransaction.join, sync_auto),
                "sync, closed": (OutboxTransaction.join, sync_closed),
                "async, Connection": (AsyncOutboxTransaction.join, sync_open),
                "async, autocommit": (AsyncOutboxTransaction.join, async_autocommit),
                "async, closed": (AsyncOutboxTransaction.join, async_closed),
            }
            refused = {
                name: refusal(join, connection) for name, (join, connection) in cases.items()
            }
    finally:
        for connection in (async_open, async_autocommit):
            loop.run(connection.close())
        loop.close()

    fixes = {
        "sync, AsyncConnection": "use AsyncOutboxTransaction.join",
        "sync, autocommit": "autocommit commits the item alone",
        "sync, closed": "closed connection",
        "async, Connection": "use OutboxTransaction.join",
        "async, autocommit": "autocommit commits the item alone",
        "async, closed": "closed connection",
    }
    assert {name: fixes[name] in message for name, message in refused.items()} == dict.fromkeys(
        fixes, True
    ), refused


def refusal(join: Callable[[Any], object], connection: object) -> str:
    """What `join` says, refusing `connection` with OutboxError."""
    with pytest.raises(OutboxError) as refused:
        join(connection)
    return str(refused.value)
