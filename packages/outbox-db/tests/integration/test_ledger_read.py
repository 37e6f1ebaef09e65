"""The ledger read an end-to-end audit relies on: every attempt, in order, readers only."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from outbox_db import AttemptState, OutboxStore, Outcome, PermissionDenied, Role
from outbox_db.testonly.factories import make_request

if TYPE_CHECKING:
    from outbox_db.testonly.pytest_plugin import Database


def test_ledger_lists_each_attempt_of_a_rail_in_order(
    outbox_database: Database, outbox_store: OutboxStore
) -> None:
    """Two attempts of one item come back as 1 then 2, with their payload; other rails stay out."""
    request = make_request(rail_type="rtp-ledger")
    created = outbox_store.enqueue(request)
    for state in (AttemptState.RETRYABLE, AttemptState.DISPATCHED):
        (item,) = outbox_store.claim("worker-1", batch_size=1, lease_seconds=30)
        outbox_store.complete(
            "worker-1",
            Outcome(
                lease=item.lease,
                state=state,
                rail_reference="ref-1" if state is AttemptState.DISPATCHED else None,
                retry_delay_seconds=0,
            ),
        )
    other = outbox_store.enqueue(make_request(rail_type="other-rail"))
    (item,) = outbox_store.claim("worker-2", batch_size=1, lease_seconds=30)
    outbox_store.complete("worker-2", Outcome(lease=item.lease, state=AttemptState.FAILED))
    assert item.outbox_id == other.outbox_id

    with OutboxStore.connect(outbox_database.url, role=Role.READONLY) as reader:
        ledger = reader.ledger("rtp-ledger")

    expected = [
        (created.outbox_id, 1, AttemptState.RETRYABLE, None, "worker-1"),
        (created.outbox_id, 2, AttemptState.DISPATCHED, "ref-1", "worker-1"),
    ]
    assert expected == [
        (a.outbox_id, a.attempt_no, a.state, a.rail_reference, a.worker_id) for a in ledger
    ]
    assert {a.payload == request.payload for a in ledger} == {True}
    assert {a.idempotency_key for a in ledger} == {request.idempotency_key}


def test_the_executor_may_not_read_the_ledger(outbox_store: OutboxStore) -> None:
    """symphony_executor only calls functions: reading the table is refused with 42501."""
    with pytest.raises(PermissionDenied) as refused:
        outbox_store.ledger()
    assert refused.value.sqlstate == "42501"
