"""Proof: lease repair records an expired lease once and requeues the same item (seed 004).

Deterministic: the lease length comes from LEASE_SECONDS (default 30), and expiry is made by
backdating lease_expires_at as the owner, never by sleeping.
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING

from outbox_db import AttemptState, Outcome
from outbox_db.testonly import ledger, query_no_role
from outbox_db.testonly.factories import leased_item, make_request

if TYPE_CHECKING:
    from uuid import UUID

    from outbox_db import ClaimedItem, OutboxStore, RepairedLease
    from outbox_db.testonly.pytest_plugin import Database

LEASE_SECONDS = int(os.environ.get("LEASE_SECONDS", "30"))


def backdate_lease(url: str, outbox_id: UUID) -> None:
    """Make one lease expired by moving its whole window LEASE_SECONDS + 1 into the past."""
    query_no_role(
        url,
        "UPDATE public.payment_outbox_pending"
        " SET claimed_at = claimed_at - make_interval(secs => %(shift)s),"
        "     lease_expires_at = lease_expires_at - make_interval(secs => %(shift)s)"
        " WHERE outbox_id = %(outbox_id)s",
        {"shift": LEASE_SECONDS + 1, "outbox_id": outbox_id},
    )


def expired_lease_count(url: str) -> int:
    """Pending rows whose lease has lapsed: what repair qualifies."""
    ((count,),) = query_no_role(
        url, "SELECT count(*) FROM public.payment_outbox_pending WHERE lease_expires_at <= now()"
    )
    return int(count)


def ledger_of(url: str, outbox_id: UUID) -> list[tuple[object, ...]]:
    """(attempt_no, state) of one item's attempts in order."""
    return ledger(url, "attempt_no", "state", outbox_id=outbox_id)


def pending_rows(url: str, outbox_id: UUID) -> list[tuple[object, ...]]:
    """(attempt_count, claimed_by) of every pending row for one outbox_id."""
    return query_no_role(
        url,
        "SELECT attempt_count, claimed_by FROM public.payment_outbox_pending WHERE outbox_id = %s",
        [outbox_id],
    )


def retried_then_leased(store: OutboxStore) -> ClaimedItem:
    """An item with one RETRYABLE attempt behind it, leased again for LEASE_SECONDS."""
    first = leased_item(store, lease_seconds=LEASE_SECONDS)
    store.complete("worker-1", Outcome(lease=first.lease, state=AttemptState.RETRYABLE))
    (again,) = store.claim("worker-1", batch_size=1, lease_seconds=LEASE_SECONDS)
    return again


def test_repair_requeues_the_same_item_once_with_the_next_attempt_number(
    outbox_database: Database, outbox_store: OutboxStore
) -> None:
    """One expired lease -> one ZOMBIE_REQUEUE attempt (last + 1), same outbox_id pending once."""
    url = outbox_database.url
    item = retried_then_leased(outbox_store)
    backdate_lease(url, item.outbox_id)
    assert expired_lease_count(url) == 1, "exactly one qualifying expired lease before repair"
    ((count_before, _),) = pending_rows(url, item.outbox_id)

    repaired = outbox_store.repair("repairer-1", batch_size=100)

    assert [(r.outbox_id, r.attempt_no, r.new_state, r.previous_holder) for r in repaired] == [
        (item.outbox_id, 2, AttemptState.ZOMBIE_REQUEUE, "worker-1")
    ]
    assert ledger_of(url, item.outbox_id) == [(1, "RETRYABLE"), (2, "ZOMBIE_REQUEUE")]
    ((count_after, holder),) = pending_rows(url, item.outbox_id)
    assert holder is None
    assert int(count_before) <= int(count_after) == 2  # type: ignore[call-overload]
    assert expired_lease_count(url) == 0


def test_repair_run_again_appends_nothing(
    outbox_database: Database, outbox_store: OutboxStore
) -> None:
    """Running repair a second time finds nothing: a repaired lease is gone."""
    item = retried_then_leased(outbox_store)
    backdate_lease(outbox_database.url, item.outbox_id)
    outbox_store.repair("repairer-1", batch_size=100)
    ledger_before = ledger_of(outbox_database.url, item.outbox_id)

    again = outbox_store.repair("repairer-1", batch_size=100)

    assert again == []
    assert ledger_of(outbox_database.url, item.outbox_id) == ledger_before


def test_repaired_item_is_claimable_again_by_its_outbox_id(
    outbox_database: Database, outbox_store: OutboxStore
) -> None:
    """After repair the same outbox_id is due: the next claim leases it with a new token."""
    item = leased_item(outbox_store, lease_seconds=LEASE_SECONDS)
    backdate_lease(outbox_database.url, item.outbox_id)
    outbox_store.repair("repairer-1", batch_size=100)

    (again,) = outbox_store.claim("worker-2", batch_size=10, lease_seconds=LEASE_SECONDS)

    assert again.outbox_id == item.outbox_id
    assert again.lease_token != item.lease_token
    assert again.attempt_count == 1


def test_unexpired_leases_are_not_repaired(
    outbox_database: Database, outbox_store: OutboxStore
) -> None:
    """Repair touches only lapsed leases: a live lease keeps its holder and gets no attempt."""
    item = leased_item(outbox_store, lease_seconds=LEASE_SECONDS)

    assert outbox_store.repair("repairer-1", batch_size=100) == []
    assert ledger_of(outbox_database.url, item.outbox_id) == []
    assert pending_rows(outbox_database.url, item.outbox_id) == [(0, "worker-1")]


def test_repair_at_the_retry_ceiling_ends_the_item_failed(
    outbox_database: Database, outbox_store: OutboxStore
) -> None:
    """A repair counts toward the ceiling: at it the attempt is FAILED and the item leaves the queue."""
    url = outbox_database.url
    query_no_role(url, "UPDATE public.payment_outbox_settings SET max_attempts = 2")
    item = retried_then_leased(outbox_store)
    backdate_lease(url, item.outbox_id)

    (repaired,) = outbox_store.repair("repairer-1", batch_size=100)

    assert (repaired.attempt_no, repaired.new_state) == (2, AttemptState.FAILED)
    assert ledger_of(url, item.outbox_id) == [(1, "RETRYABLE"), (2, "FAILED")]
    assert pending_rows(url, item.outbox_id) == []


def test_concurrent_repairers_never_repair_one_lease_twice(
    outbox_database: Database, outbox_store: OutboxStore
) -> None:
    """Three repairers racing over 60 expired leases record each exactly once."""
    for _ in range(60):
        outbox_store.enqueue(make_request())
    items = outbox_store.claim("worker-1", batch_size=60, lease_seconds=LEASE_SECONDS)
    for item in items:
        backdate_lease(outbox_database.url, item.outbox_id)
    barrier = threading.Barrier(3)
    repaired: list[RepairedLease] = []

    def repair(worker_id: str) -> None:
        barrier.wait()
        while batch := outbox_store.repair(worker_id, batch_size=7):
            repaired.extend(batch)

    threads = [threading.Thread(target=repair, args=(f"repairer-{n}",)) for n in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(r.outbox_id for r in repaired) == sorted(i.outbox_id for i in items)
    ((attempts,),) = query_no_role(
        outbox_database.url,
        "SELECT count(*) FROM public.payment_outbox_attempts WHERE state = 'ZOMBIE_REQUEUE'",
    )
    assert attempts == 60
