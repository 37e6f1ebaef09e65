"""Proof: the lease repairer records each expired lease once and requeues the same item (seed 004).

Through the worker this time: `LeaseRepairer.run_once()` against a real database, expiry made
by backdating as the owner (never by sleeping), the lease length from LEASE_SECONDS, and the
structured repair log fields asserted.
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING

from structlog.testing import capture_logs

from outbox_db import AttemptState, Outcome
from outbox_db.testonly import expire_lease, query_no_role, wait_for
from outbox_db.testonly.factories import leased_item, make_request
from outbox_relayer.lease_repair import LeaseRepairer, RepairCycle
from outbox_relayer.signals import Signals
from relaying import DEADLINE_SECONDS

if TYPE_CHECKING:
    from outbox_db import OutboxStore
    from outbox_db.testonly.pytest_plugin import Database

LEASE_SECONDS = int(os.environ.get("LEASE_SECONDS", "30"))


def repairer(
    store: OutboxStore, worker_id: str = "repairer-1", batch_size: int = 100
) -> LeaseRepairer:
    """A repairer with its own signals, as `outbox-relayer run` builds it."""
    return LeaseRepairer(
        store=store,
        signals=Signals(),
        worker_id=worker_id,
        batch_size=batch_size,
        lease_seconds=LEASE_SECONDS,
    )


def test_run_once_requeues_the_expired_item_once_and_logs_the_repair(
    outbox_database: Database, outbox_store: OutboxStore
) -> None:
    """One expired lease: one ZOMBIE_REQUEUE (last + 1), the same outbox_id due again, one log line."""
    first = leased_item(outbox_store, lease_seconds=LEASE_SECONDS)
    outbox_store.complete("worker-1", Outcome(lease=first.lease, state=AttemptState.RETRYABLE))
    (item,) = outbox_store.claim("worker-1", batch_size=1, lease_seconds=LEASE_SECONDS)
    expire_lease(outbox_database.url, item.outbox_id)
    expired = "SELECT count(*) FROM public.payment_outbox_pending WHERE lease_expires_at <= now()"
    assert query_no_role(outbox_database.url, expired) == [(1,)], "exactly one qualifying lease"

    with capture_logs() as logs:
        cycle = repairer(outbox_store).run_once()

    assert cycle == RepairCycle(requeued=1, failed=0, batches=1)
    ledger = query_no_role(
        outbox_database.url,
        "SELECT attempt_no, state::text FROM public.payment_outbox_attempts WHERE outbox_id = %s ORDER BY 1",
        [item.outbox_id],
    )
    assert ledger == [(1, "RETRYABLE"), (2, "ZOMBIE_REQUEUE")]
    pending = query_no_role(
        outbox_database.url,
        "SELECT attempt_count, claimed_by FROM public.payment_outbox_pending WHERE outbox_id = %s",
        [item.outbox_id],
    )
    assert pending == [(2, None)]
    repairs = [entry for entry in logs if entry.get("outbox_id") == str(item.outbox_id)]
    assert len(repairs) == 1
    assert {
        key: repairs[0][key]
        for key in ("attempt_no", "previous_state", "new_state", "lease_seconds")
    } == {
        "attempt_no": 2,
        "previous_state": "LEASED",
        "new_state": "ZOMBIE_REQUEUE",
        "lease_seconds": LEASE_SECONDS,
    }


def test_a_second_cycle_appends_nothing(
    outbox_database: Database, outbox_store: OutboxStore
) -> None:
    """Running the repairer again finds no expired lease and leaves the ledger as it was."""
    item = leased_item(outbox_store, lease_seconds=LEASE_SECONDS)
    expire_lease(outbox_database.url, item.outbox_id)
    worker = repairer(outbox_store)
    worker.run_once()
    count = "SELECT count(*) FROM public.payment_outbox_attempts"
    before = query_no_role(outbox_database.url, count)

    again = worker.run_once()

    assert again == RepairCycle(requeued=0, failed=0, batches=1)
    assert query_no_role(outbox_database.url, count) == before == [(1,)]


def test_run_once_works_through_every_batch(
    outbox_database: Database, outbox_store: OutboxStore
) -> None:
    """250 expired leases with batches of 100: three batches, all 250 requeued in one cycle."""
    for _ in range(250):
        outbox_store.enqueue(make_request())
    for batch in range(3):
        for item in outbox_store.claim(
            f"crashed-{batch}", batch_size=100, lease_seconds=LEASE_SECONDS
        ):
            expire_lease(outbox_database.url, item.outbox_id)

    cycle = repairer(outbox_store).run_once()

    assert cycle == RepairCycle(requeued=250, failed=0, batches=3)


def test_concurrent_repairers_share_the_work_without_repeating_it(
    outbox_database: Database, outbox_store: OutboxStore
) -> None:
    """Two repairer loops at once: every expired lease is repaired exactly once between them."""
    for _ in range(120):
        outbox_store.enqueue(make_request())
    for item in outbox_store.claim("crashed", batch_size=120, lease_seconds=LEASE_SECONDS):
        expire_lease(outbox_database.url, item.outbox_id)
    cycles: list[RepairCycle] = []
    start = threading.Barrier(2)

    def repair(worker_id: str) -> None:
        worker = repairer(outbox_store, worker_id, batch_size=10)
        start.wait()
        cycles.append(worker.run_once())

    threads = [threading.Thread(target=repair, args=(f"repairer-{n}",)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sum(cycle.requeued for cycle in cycles) == 120
    repairs = "SELECT count(DISTINCT outbox_id), count(*) FROM public.payment_outbox_attempts"
    assert query_no_role(outbox_database.url, repairs) == [(120, 120)]


def test_run_repairs_each_cycle_and_stops_at_once_when_asked(
    outbox_database: Database, outbox_store: OutboxStore
) -> None:
    """The loop repairs on its first cycle and, told to stop, returns without waiting out its pause."""
    item = leased_item(outbox_store, lease_seconds=LEASE_SECONDS)
    expire_lease(outbox_database.url, item.outbox_id)
    stop = threading.Event()
    loop = threading.Thread(target=repairer(outbox_store).run, args=(stop, 3600))
    loop.start()

    repaired = wait_for(
        lambda: (
            query_no_role(
                outbox_database.url, "SELECT count(*) FROM public.payment_outbox_attempts"
            )
            == [(1,)]
        ),
        DEADLINE_SECONDS,
    )
    stop.set()
    loop.join(timeout=10)

    assert repaired
    assert not loop.is_alive()
