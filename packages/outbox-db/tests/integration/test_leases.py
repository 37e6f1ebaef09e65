"""Proofs: only the lease holder records an outcome, and the lease columns stay consistent."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import TYPE_CHECKING, LiteralString
from uuid import uuid4

import pytest

from outbox_db import (
    AttemptState,
    ConstraintViolation,
    Lease,
    LeaseLost,
    OutboxError,
    Outcome,
)
from outbox_db.testonly import expire_lease, query_no_role
from outbox_db.testonly.factories import leased_item, make_request

if TYPE_CHECKING:
    from uuid import UUID

    from outbox_db import ClaimedItem, OutboxStore
    from outbox_db.testonly.pytest_plugin import Database

LEASE_CHECK = "payment_outbox_pending_lease_consistent"


def attempts_of(url: str, outbox_id: UUID) -> list[tuple[object, ...]]:
    """(attempt_no, state, worker_id) of every attempt of one item, in order."""
    return query_no_role(
        url,
        "SELECT attempt_no, state::text, worker_id FROM public.payment_outbox_attempts"
        " WHERE outbox_id = %s ORDER BY attempt_no",
        [outbox_id],
    )


def pending_lease(url: str, outbox_id: UUID) -> tuple[object, ...] | None:
    """(claimed_by, lease_token, attempt_count) of a pending item, None when it left the queue."""
    rows = query_no_role(
        url,
        "SELECT claimed_by, lease_token, attempt_count FROM public.payment_outbox_pending"
        " WHERE outbox_id = %s",
        [outbox_id],
    )
    return rows[0] if rows else None


def dispatched(item: ClaimedItem, lease: Lease | None = None) -> Outcome:
    """A DISPATCHED outcome for `item`, presenting `lease` (the item's own by default)."""
    return Outcome(lease=lease or item.lease, state=AttemptState.DISPATCHED, rail_reference="r-1")


def test_holder_completes_and_the_item_leaves_the_queue(
    outbox_database: Database, outbox_store: OutboxStore
) -> None:
    """A DISPATCHED outcome by the holder appends attempt 1 and removes the pending row."""
    item = leased_item(outbox_store)

    result = outbox_store.complete("worker-1", dispatched(item))

    assert (result.lease_held, result.attempt_no, result.state) == (
        True,
        1,
        AttemptState.DISPATCHED,
    )
    assert attempts_of(outbox_database.url, item.outbox_id) == [(1, "DISPATCHED", "worker-1")]
    assert pending_lease(outbox_database.url, item.outbox_id) is None


@pytest.mark.parametrize(
    ("worker_id", "forged_token"),
    [("worker-1", True), ("worker-2", False)],
    ids=["wrong-token", "another-worker"],
)
def test_completion_without_the_lease_is_lease_lost(
    outbox_database: Database, outbox_store: OutboxStore, worker_id: str, forged_token: bool
) -> None:
    """Completing with a wrong token or as another worker fails with P7002 and writes nothing."""
    item = leased_item(outbox_store)
    lease = Lease(outbox_id=item.outbox_id, lease_token=uuid4()) if forged_token else item.lease

    with pytest.raises(LeaseLost) as lost:
        outbox_store.complete(worker_id, dispatched(item, lease))

    assert lost.value.sqlstate == "P7002"
    assert attempts_of(outbox_database.url, item.outbox_id) == []
    assert pending_lease(outbox_database.url, item.outbox_id) == ("worker-1", item.lease_token, 0)


def test_completion_after_expiry_is_lease_lost(
    outbox_database: Database, outbox_store: OutboxStore
) -> None:
    """An expired lease cannot complete (P7002): lease repair owns the item now."""
    item = leased_item(outbox_store)
    expire_lease(outbox_database.url, item.outbox_id)

    with pytest.raises(LeaseLost) as lost:
        outbox_store.complete("worker-1", dispatched(item))

    assert lost.value.sqlstate == "P7002"
    assert attempts_of(outbox_database.url, item.outbox_id) == []


def test_late_completion_after_repair_is_lease_lost(
    outbox_database: Database, outbox_store: OutboxStore
) -> None:
    """After repair and a new claim, the first worker's completion is P7002; the second's wins."""
    first = leased_item(outbox_store, "worker-1")
    expire_lease(outbox_database.url, first.outbox_id)
    outbox_store.repair("repairer", batch_size=10)
    (second,) = outbox_store.claim("worker-2", batch_size=1, lease_seconds=30)

    with pytest.raises(LeaseLost) as lost:
        outbox_store.complete("worker-1", dispatched(first))
    result = outbox_store.complete("worker-2", dispatched(second))

    assert lost.value.sqlstate == "P7002"
    assert second.outbox_id == first.outbox_id
    assert (result.attempt_no, result.state) == (2, AttemptState.DISPATCHED)
    assert attempts_of(outbox_database.url, first.outbox_id) == [
        (1, "ZOMBIE_REQUEUE", "worker-1"),
        (2, "DISPATCHED", "worker-2"),
    ]


def test_concurrent_completions_of_one_lease_record_exactly_one(
    outbox_database: Database, outbox_store: OutboxStore
) -> None:
    """Two completions of one lease racing: one is recorded, the other is P7002."""
    item = leased_item(outbox_store)
    barrier = threading.Barrier(2)
    outcomes: list[object] = []

    def complete(state: AttemptState) -> None:
        barrier.wait()
        try:
            outcome = Outcome(lease=item.lease, state=state)
            outcomes.append(outbox_store.complete("worker-1", outcome))
        except OutboxError as error:
            outcomes.append(error)

    threads = [
        threading.Thread(target=complete, args=(state,))
        for state in (AttemptState.DISPATCHED, AttemptState.FAILED)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    losers = [o for o in outcomes if isinstance(o, OutboxError)]
    assert [type(o) for o in losers] == [LeaseLost]
    assert len(attempts_of(outbox_database.url, item.outbox_id)) == 1


def test_retryable_reschedules_and_clears_the_lease(
    outbox_database: Database, outbox_store: OutboxStore
) -> None:
    """RETRYABLE appends an attempt, clears the lease, counts it and delays the next try."""
    item = leased_item(outbox_store)
    outcome = Outcome(lease=item.lease, state=AttemptState.RETRYABLE, retry_delay_seconds=600)

    result = outbox_store.complete("worker-1", outcome)

    assert (result.attempt_no, result.state) == (1, AttemptState.RETRYABLE)
    assert pending_lease(outbox_database.url, item.outbox_id) == (None, None, 1)
    ((delay,),) = query_no_role(
        outbox_database.url,
        "SELECT next_attempt_at - now() FROM public.payment_outbox_pending WHERE outbox_id = %s",
        [item.outbox_id],
    )
    assert timedelta(seconds=590) < delay <= timedelta(seconds=600)
    assert outbox_store.claim("worker-1", batch_size=10, lease_seconds=30) == []


def test_retryable_at_the_ceiling_is_recorded_as_failed(
    outbox_database: Database, outbox_store: OutboxStore
) -> None:
    """The database's retry ceiling turns the last RETRYABLE into FAILED and ends the item."""
    query_no_role(outbox_database.url, "UPDATE public.payment_outbox_settings SET max_attempts = 2")
    item = leased_item(outbox_store)
    outbox_store.complete("worker-1", Outcome(lease=item.lease, state=AttemptState.RETRYABLE))
    (again,) = outbox_store.claim("worker-1", batch_size=1, lease_seconds=30)

    result = outbox_store.complete(
        "worker-1", Outcome(lease=again.lease, state=AttemptState.RETRYABLE)
    )

    assert (result.attempt_no, result.state) == (2, AttemptState.FAILED)
    assert pending_lease(outbox_database.url, item.outbox_id) is None
    ((error_code,),) = query_no_role(
        outbox_database.url,
        "SELECT error_code FROM public.payment_outbox_attempts WHERE outbox_id = %s AND attempt_no = 2",
        [item.outbox_id],
    )
    assert error_code == "RETRY_CEILING_REACHED"


def test_batch_completion_records_held_leases_and_reports_lost_ones(
    outbox_database: Database, outbox_store: OutboxStore
) -> None:
    """complete_batch writes an attempt for each held lease and nothing for a lost one."""
    for _ in range(3):
        outbox_store.enqueue(make_request())
    kept, retried, lost = outbox_store.claim("worker-1", batch_size=3, lease_seconds=30)
    expire_lease(outbox_database.url, lost.outbox_id)

    results = outbox_store.complete_batch(
        "worker-1",
        [
            dispatched(kept),
            Outcome(lease=retried.lease, state=AttemptState.RETRYABLE, error_code="E"),
            dispatched(lost),
        ],
    )

    summary = {r.outbox_id: (r.lease_held, r.attempt_no, r.state) for r in results}
    assert summary == {
        kept.outbox_id: (True, 1, AttemptState.DISPATCHED),
        retried.outbox_id: (True, 1, AttemptState.RETRYABLE),
        lost.outbox_id: (False, None, None),
    }
    assert attempts_of(outbox_database.url, lost.outbox_id) == []


def test_renewal_extends_a_held_lease_only(
    outbox_database: Database, outbox_store: OutboxStore
) -> None:
    """Renew moves the expiry forward for the holder; another worker or an expired lease gets P7002."""
    item = leased_item(outbox_store, lease_seconds=5)

    renewed = outbox_store.renew("worker-1", item.lease, lease_seconds=600)
    with pytest.raises(LeaseLost) as intruder:
        outbox_store.renew("worker-2", item.lease, lease_seconds=600)
    expire_lease(outbox_database.url, item.outbox_id)
    with pytest.raises(LeaseLost) as expired:
        outbox_store.renew("worker-1", item.lease, lease_seconds=600)

    assert renewed - item.lease_expires_at > timedelta(seconds=590)
    assert (intruder.value.sqlstate, expired.value.sqlstate) == ("P7002", "P7002")


def test_release_returns_unstarted_items_without_an_attempt(
    outbox_database: Database, outbox_store: OutboxStore
) -> None:
    """Released leases are due again at once, with no attempt recorded; others' leases are untouched."""
    outbox_store.enqueue(make_request())
    outbox_store.enqueue(make_request())
    mine, theirs = outbox_store.claim("worker-1", batch_size=2, lease_seconds=30)

    released = outbox_store.release("worker-1", [mine.lease])
    not_mine = outbox_store.release("worker-2", [theirs.lease])

    assert (released, not_mine) == ([mine.outbox_id], [])
    assert attempts_of(outbox_database.url, mine.outbox_id) == []
    assert pending_lease(outbox_database.url, mine.outbox_id) == (None, None, 0)
    assert [
        i.outbox_id for i in outbox_store.claim("worker-3", batch_size=5, lease_seconds=30)
    ] == [mine.outbox_id]


def test_claim_takes_only_due_unleased_rows_and_writes_no_attempt(
    outbox_database: Database, outbox_store: OutboxStore
) -> None:
    """Claim skips leased, expired and future rows; it never deletes and never writes the ledger."""
    leased = leased_item(outbox_store)
    expired = leased_item(outbox_store)
    expire_lease(outbox_database.url, expired.outbox_id)
    future = outbox_store.enqueue(make_request())
    query_no_role(
        outbox_database.url,
        "UPDATE public.payment_outbox_pending SET next_attempt_at = now() + interval '1 hour'"
        " WHERE outbox_id = %s",
        [future.outbox_id],
    )
    due = outbox_store.enqueue(make_request())

    claimed = outbox_store.claim("worker-9", batch_size=100, lease_seconds=30)

    assert [c.outbox_id for c in claimed] == [due.outbox_id]
    assert query_no_role(
        outbox_database.url, "SELECT count(*) FROM public.payment_outbox_pending"
    ) == [(4,)]
    assert query_no_role(
        outbox_database.url, "SELECT count(*) FROM public.payment_outbox_attempts"
    ) == [(0,)]
    assert leased.outbox_id != due.outbox_id


def test_concurrent_claims_return_disjoint_items(outbox_store: OutboxStore) -> None:
    """Four workers claiming at once never lease the same item twice (SKIP LOCKED)."""
    for _ in range(40):
        outbox_store.enqueue(make_request())
    barrier = threading.Barrier(4)
    claims: dict[str, list[UUID]] = {}

    def claim(worker_id: str) -> None:
        barrier.wait()
        leased = outbox_store.claim(worker_id, batch_size=15, lease_seconds=30)
        claims[worker_id] = [i.outbox_id for i in leased]

    threads = [threading.Thread(target=claim, args=(f"worker-{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    everything = [outbox_id for ids in claims.values() for outbox_id in ids]
    assert len(everything) == len(set(everything)) == 40


@pytest.mark.parametrize(
    "assignment",
    [
        "claimed_by = 'worker-x'",
        "lease_token = gen_random_uuid()",
        "lease_expires_at = now()",
        "claimed_at = now()",
    ],
    ids=["holder-only", "token-only", "expiry-only", "claimed-at-only"],
)
def test_inconsistent_lease_columns_are_refused(
    outbox_database: Database, outbox_store: OutboxStore, assignment: LiteralString
) -> None:
    """Lease columns are all set or all NULL: anything else fails with 23514 on the named CHECK."""
    created = outbox_store.enqueue(make_request())

    with pytest.raises(ConstraintViolation) as refused:
        query_no_role(
            outbox_database.url,
            "UPDATE public.payment_outbox_pending SET " + assignment + " WHERE outbox_id = %s",
            [created.outbox_id],
        )

    assert refused.value.sqlstate == "23514"
    assert refused.value.constraint == LEASE_CHECK
    assert pending_lease(outbox_database.url, created.outbox_id) == (None, None, 0)
