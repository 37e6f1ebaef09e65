"""Proofs: the worker ends each item once through lost leases, racing completions, the guard.

The worker against a real database and the rail simulator over real HTTP, read back as
relaying.py describes: from the ledger, the queue and the rail's request log, never by time.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import pytest
from structlog.testing import capture_logs

from outbox_db import (
    AttemptState,
    Lease,
    LeaseLost,
    OutboxStore,
    Outcome,
    TerminalAlreadyRecorded,
)
from outbox_db.testonly import expire_lease, query_no_role, wait_for
from outbox_db.testonly.factories import leased_item, make_request
from outbox_relayer import CycleSignals, LeaseRepairer, RepairCycle, Signals
from outbox_relayer.signals import LEASE_LOST_EVENT, TERMINAL_GUARD_EVENT, TERMINAL_INDEX
from outbox_relayer.testing import Faults, read_request_log
from relaying import (
    DEADLINE_SECONDS,
    LEASE_OF,
    PENDING,
    PLANT_TERMINAL,
    RAIL,
    TERMINAL_COUNT,
    Relayers,
    Simulators,
    TestClock,
    assert_repaired_then_dispatched_by_b,
    attempt_rows,
    attempt_rows_of,
    count,
    events,
    references_by_key,
    repair_lapsed_lease,
    seeded_backoff,
)

if TYPE_CHECKING:
    from uuid import UUID

    from outbox_db.testonly.pytest_plugin import Database


# --- lease loss ----------------------------------------------------------------------------------


@pytest.mark.parametrize("a_answers", ["after B recorded", "while B holds the lease"])
def test_an_answer_arriving_after_the_lease_was_lost_is_refused_counted_once_and_the_worker_carries_on(
    outbox_database: Database,
    outbox_store: OutboxStore,
    simulators: Simulators,
    relayers: Relayers,
    a_answers: str,
) -> None:
    """A's send is in flight when its lease lapses and is repaired; B re-claims and re-sends; A's answer is refused (one lease_lost, one warning); the ledger holds the repair and B's outcome."""
    simulator = simulators.start(Faults(latency_ms=400))
    rails = {RAIL: simulators.rail(simulator)}
    signals = Signals()  # one per process: the relayer's and the repairer's, as `run` builds it
    worker_a = relayers.build("relayer-a", rails, signals=signals)
    worker_b = relayers.build("relayer-b", rails)
    repairer = LeaseRepairer(
        store=outbox_store, signals=signals, worker_id="repairer", batch_size=10, lease_seconds=30
    )
    outbox_id = outbox_store.enqueue(make_request()).outbox_id

    assert worker_a.step() == 1
    assert wait_for(lambda: simulator.stats().requests == 1, DEADLINE_SECONDS), (
        "A's send reached the rail"
    )
    expire_lease(outbox_database.url, outbox_id)
    assert repairer.run_once() == RepairCycle(requeued=1, failed=0, batches=1)
    assert worker_b.step() == 1, "B holds the item under a new lease, its send in flight"
    if a_answers == "after B recorded":
        worker_b.drain()
        assert count(outbox_database.url, TERMINAL_COUNT) == 1
    before = signals.totals()

    with capture_logs() as logs:
        worker_a.drain()  # A's answer is collected now, and its completion refused

    assert signals.totals().lease_lost_count - before.lease_lost_count == 1
    (warning,) = events(logs, LEASE_LOST_EVENT)
    assert warning["log_level"] == "warning"
    assert (warning["lease_lost_count"], warning["outbox_ids"]) == (1, [str(outbox_id)])
    worker_b.drain()
    # The repair and B's outcome; A's is not recorded.
    assert_repaired_then_dispatched_by_b(outbox_database, simulator, outbox_id, "201")
    assert simulator.stats().absorbed == 1, "the rail absorbed the re-send by its key"
    assert signals.totals() == CycleSignals(
        cycle="total", expired_lease_count=1, repair_requeued_count=1, lease_lost_count=1
    )
    assert worker_b.signals.totals() == CycleSignals(cycle="total")
    assert worker_a.held == 0

    later = outbox_store.enqueue(make_request()).outbox_id
    worker_a.drain()
    assert [(row[1], row[-1]) for row in attempt_rows_of(outbox_database.url, later)] == [
        ("DISPATCHED", "relayer-a")
    ]
    assert signals.totals().lease_lost_count == 1, "nothing else counted"


def test_a_lease_lost_at_renewal_is_counted_once_and_the_late_answer_is_dropped(
    outbox_database: Database,
    outbox_store: OutboxStore,
    simulators: Simulators,
    relayers: Relayers,
) -> None:
    """Renewing a repaired lease gets P7002: counted once there, the dispatch dropped, its late answer neither recorded nor counted again."""
    simulator = simulators.start(Faults(latency_ms=600))
    rails = {RAIL: simulators.rail(simulator)}
    clock = TestClock()
    worker_a = relayers.build("relayer-a", rails, clock=clock, lease_seconds=30)
    worker_b = relayers.build("relayer-b", rails)
    outbox_id = outbox_store.enqueue(make_request()).outbox_id
    assert worker_a.step() == 1
    assert wait_for(lambda: simulator.stats().requests == 1, DEADLINE_SECONDS)
    repair_lapsed_lease(outbox_database, outbox_store, outbox_id)
    assert worker_b.step() == 1, "B holds the item now"

    clock.advance(15)  # half the lease: A's next step renews
    with capture_logs() as logs:
        assert worker_a.step() == 0
        assert worker_a.held == 0, "the dispatch whose lease is gone is dropped"
        assert worker_a.signals.totals().lease_lost_count == 1
        worker_b.drain()
        worker_a.drain()  # A's late answer arrives to nothing
        worker_a.shut_down()

    assert worker_a.signals.totals().lease_lost_count == 1, "counted once per event"
    assert len(events(logs, LEASE_LOST_EVENT)) == 1, "and logged once"
    assert [(row[1], row[-1]) for row in attempt_rows_of(outbox_database.url, outbox_id)] == [
        ("ZOMBIE_REQUEUE", "relayer-a"),
        ("DISPATCHED", "relayer-b"),
    ]


def test_the_late_answer_of_a_lost_lease_is_not_recorded_against_the_items_next_lease(
    outbox_database: Database,
    outbox_store: OutboxStore,
    simulators: Simulators,
    relayers: Relayers,
) -> None:
    """A loses a lease at renewal and re-claims the item: the first send's late 503 is dropped, the ledger records the second send's 201."""
    # Seed 1 scripts the rail: the first request is answered 503, the second 201.
    simulator = simulators.start(Faults(latency_ms=1000, fail_rate=0.5, seed=1))
    clock = TestClock()
    worker = relayers.build(
        "relayer-a",
        {RAIL: simulators.rail(simulator)},
        clock=clock,
        backoff=seeded_backoff(2, base_seconds=60, cap_seconds=60),
    )
    outbox_id = outbox_store.enqueue(make_request()).outbox_id
    assert worker.step() == 1
    assert wait_for(lambda: simulator.stats().requests == 1, DEADLINE_SECONDS), (
        "the first send is in flight"
    )
    repair_lapsed_lease(outbox_database, outbox_store, outbox_id)

    clock.advance(15)  # half the lease: the renewal is refused, and the item is due again
    assert worker.step() == 1, "re-claimed under a new lease"
    assert wait_for(lambda: simulator.stats().requests == 2, DEADLINE_SECONDS), (
        "the second send is in flight"
    )
    worker.drain()

    statuses = [line.status for line in read_request_log(simulator.log_path)]
    assert statuses[:2] == [503, 201], "the seed's script"
    assert worker.signals.totals().lease_lost_count == 1
    assert [
        (row[1], row[3], row[-1]) for row in attempt_rows_of(outbox_database.url, outbox_id)
    ] == [
        ("ZOMBIE_REQUEUE", None, "relayer-a"),
        ("DISPATCHED", "201", "relayer-a"),
    ]


# --- concurrent completion -----------------------------------------------------------------------


def test_two_completions_of_one_lease_racing_record_exactly_one_terminal_attempt(
    outbox_database: Database, outbox_store: OutboxStore, second_store: OutboxStore
) -> None:
    """Two connections complete the same 20 leases at once: one wins each, the other gets P7002, one terminal attempt per item."""
    for _ in range(20):
        outbox_store.enqueue(make_request())
    leases = outbox_store.claim("worker-1", batch_size=20, lease_seconds=30)
    start = threading.Barrier(2, timeout=DEADLINE_SECONDS)
    results: list[tuple[UUID, str, str | None]] = []

    def complete_all(store: OutboxStore, name: str) -> None:
        for item in leases:
            start.wait()
            outcome = Outcome(lease=item.lease, state=AttemptState.DISPATCHED, rail_reference=name)
            try:
                # The loser gets P7002 (under REPEATABLE READ or SERIALIZABLE after a 40001
                # the store retries).
                store.complete("worker-1", outcome)
            except LeaseLost as lost:
                results.append((item.outbox_id, name, lost.sqlstate))
            else:
                results.append((item.outbox_id, name, None))

    threads = [
        threading.Thread(target=complete_all, args=(store, name))
        for store, name in ((outbox_store, "conn-1"), (second_store, "conn-2"))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=DEADLINE_SECONDS)

    assert len(results) == 40
    winners = {}
    for item in leases:
        mine = sorted(
            (sqlstate or "", name)
            for outbox_id, name, sqlstate in results
            if outbox_id == item.outbox_id
        )
        assert [sqlstate for sqlstate, _ in mine] == ["", "P7002"], "one wins, one is refused"
        winners[item.outbox_id] = mine[0][1]
    assert sorted(attempt_rows(outbox_database.url)) == sorted(
        (outbox_id, 1, "DISPATCHED", name, None, None, "worker-1")
        for outbox_id, name in winners.items()
    )
    assert query_no_role(outbox_database.url, PENDING) == []


def test_a_worker_whose_lease_was_completed_elsewhere_first_records_nothing_for_it(
    outbox_database: Database,
    second_store: OutboxStore,
    outbox_store: OutboxStore,
    simulators: Simulators,
    relayers: Relayers,
) -> None:
    """While A's three sends are in flight one lease is completed from another connection: A's batch records the other two, and counts exactly one lease_lost."""
    simulator = simulators.start(Faults(latency_ms=300))
    # A frozen clock: the three answers are recorded in one batch completion, whenever they come.
    worker = relayers.build("relayer-a", {RAIL: simulators.rail(simulator)}, clock=lambda: 0.0)
    ids = [outbox_store.enqueue(make_request()).outbox_id for _ in range(3)]
    assert worker.step() == 3
    assert wait_for(lambda: simulator.stats().requests == 3, DEADLINE_SECONDS)
    ((token, _),) = query_no_role(outbox_database.url, LEASE_OF, [ids[0]])
    elsewhere = Outcome(
        lease=Lease(outbox_id=ids[0], lease_token=token),
        state=AttemptState.DISPATCHED,
        rail_reference="recorded-elsewhere",
    )
    second_store.complete("relayer-a", elsewhere)

    with capture_logs() as logs:
        worker.drain()

    assert worker.signals.totals().lease_lost_count == 1
    (warning,) = events(logs, LEASE_LOST_EVENT)
    assert warning["outbox_ids"] == [str(ids[0])]
    references = references_by_key(simulator)
    keys = dict(
        query_no_role(
            outbox_database.url,
            "SELECT outbox_id, idempotency_key FROM public.payment_outbox_attempts",
        )
    )
    assert sorted(attempt_rows(outbox_database.url)) == sorted(
        [(ids[0], 1, "DISPATCHED", "recorded-elsewhere", None, None, "relayer-a")]
        + [(i, 1, "DISPATCHED", references[keys[i]], "201", None, "relayer-a") for i in ids[1:]]
    )
    assert count(outbox_database.url, TERMINAL_COUNT) == 3
    assert query_no_role(outbox_database.url, PENDING) == []


# --- terminal guard ------------------------------------------------------------------------------


def test_store_completion_of_an_item_that_already_ended_raises_terminal_already_recorded(
    outbox_database: Database, outbox_store: OutboxStore
) -> None:
    """A leased item whose terminal attempt was planted: complete and complete_batch raise 23505 on the terminal index; nothing is added."""
    item = leased_item(outbox_store, "worker-1")
    query_no_role(outbox_database.url, PLANT_TERMINAL, [item.outbox_id])
    outcome = Outcome(lease=item.lease, state=AttemptState.DISPATCHED, rail_reference="second")

    with pytest.raises(TerminalAlreadyRecorded) as single:
        outbox_store.complete("worker-1", outcome)
    with pytest.raises(TerminalAlreadyRecorded) as batch:
        outbox_store.complete_batch("worker-1", [outcome])

    for refused in (single.value, batch.value):
        assert refused.sqlstate == "23505"
        assert refused.constraint == "payment_outbox_attempts_one_terminal_per_outbox"
    assert attempt_rows_of(outbox_database.url, item.outbox_id) == [
        (1, "DISPATCHED", "planted", None, None, "planter")
    ]


def test_the_worker_counts_a_terminal_guard_hit_once_and_records_the_rest_of_the_batch(
    outbox_database: Database,
    outbox_store: OutboxStore,
    simulators: Simulators,
    relayers: Relayers,
) -> None:
    """One of four leased items gains a terminal attempt behind the worker's back: one guard hit (counted, logged with the index), the other three recorded one by one."""
    simulator = simulators.start()
    # A frozen clock: the four answers are recorded in one batch completion, whenever they come.
    worker = relayers.build("relayer-a", {RAIL: simulators.rail(simulator)}, clock=lambda: 0.0)
    ids = [outbox_store.enqueue(make_request()).outbox_id for _ in range(4)]
    assert worker.step() == 4
    guarded = ids[1]
    query_no_role(outbox_database.url, PLANT_TERMINAL, [guarded])

    with capture_logs() as logs:
        worker.drain()

    assert worker.signals.totals() == CycleSignals(cycle="total", terminal_guard_hit_count=1)
    (warning,) = events(logs, TERMINAL_GUARD_EVENT)
    assert warning["log_level"] == "warning"
    assert warning["index"] == TERMINAL_INDEX == "payment_outbox_attempts_one_terminal_per_outbox"
    assert (warning["terminal_guard_hit_count"], warning["outbox_ids"]) == (1, [str(guarded)])
    assert events(logs, LEASE_LOST_EVENT) == []
    assert attempt_rows_of(outbox_database.url, guarded) == [
        (1, "DISPATCHED", "planted", None, None, "planter")
    ]
    for outbox_id in ids[:1] + ids[2:]:
        assert [
            (row[1], row[3], row[-1]) for row in attempt_rows_of(outbox_database.url, outbox_id)
        ] == [("DISPATCHED", "201", "relayer-a")]
    assert count(outbox_database.url, TERMINAL_COUNT) == 4
    assert worker.held == 0
