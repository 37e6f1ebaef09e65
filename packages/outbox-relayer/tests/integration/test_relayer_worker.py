"""Proofs: the relayer worker against a real database and the rail simulator over real HTTP.

Every outcome is read back from the database as the owner (the ledger and the pending table),
and every dispatch goes through `HttpRail` to a `RailSimulator` on loopback, whose request log
says what the rail really received. Leases lapse by backdating (`expire_lease`), never by
sleeping; the retry schedule is pulled forward as the owner; a relayer that must see time pass
gets a clock the test advances. No assertion is about wall-clock duration: waits poll state
with generous deadlines.
"""

from __future__ import annotations

import hashlib
import threading
import time
from typing import TYPE_CHECKING, Any, LiteralString, NamedTuple

import pytest
from structlog.testing import capture_logs

from outbox_db import (
    AttemptState,
    Lease,
    LeaseLost,
    OutboxStore,
    Outcome,
    Role,
    TerminalAlreadyRecorded,
)
from outbox_db.payloads import canonical_json
from outbox_db.testonly import expire_lease, query_no_role, wait_for
from outbox_db.testonly.factories import leased_item, make_request
from outbox_relayer import CycleSignals, LeaseRepairer, RepairCycle, Signals
from outbox_relayer.rail_slots import RailLimit
from outbox_relayer.rails import RECONCILED_PREFIX
from outbox_relayer.signals import LEASE_LOST_EVENT, TERMINAL_GUARD_EVENT, TERMINAL_INDEX
from outbox_relayer.testing import Faults, RailSimulator, read_request_log
from relaying import (
    DEADLINE_SECONDS,
    PLANT_TERMINAL,
    RAIL,
    Relayers,
    Simulators,
    TestClock,
    count,
    events,
    running,
    seeded_backoff,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from uuid import UUID

    from outbox_db.testonly.pytest_plugin import Database


# Every attempt, oldest first per item.
LEDGER: LiteralString = """
SELECT outbox_id, attempt_no, state::text, rail_reference, rail_code, error_code, worker_id
FROM public.payment_outbox_attempts ORDER BY outbox_id, attempt_no
"""
ATTEMPT_COUNT: LiteralString = "SELECT count(*) FROM public.payment_outbox_attempts"
TERMINAL_COUNT: LiteralString = (
    "SELECT count(*) FROM public.payment_outbox_attempts WHERE state IN ('DISPATCHED', 'FAILED')"
)
# Leases of the connection-cut proof: long enough that an outage's backoff never outlasts one,
# short enough that a claim whose rows a cut lost is repaired within the proof's deadline.
REPAIRED_LEASE_SECONDS = 8
PENDING: LiteralString = """
SELECT outbox_id, attempt_count, claimed_by FROM public.payment_outbox_pending ORDER BY outbox_id
"""
LEASED_COUNT: LiteralString = (
    "SELECT count(*) FROM public.payment_outbox_pending WHERE claimed_by IS NOT NULL"
)
LEASE_OF: LiteralString = """
SELECT lease_token, lease_expires_at FROM public.payment_outbox_pending WHERE outbox_id = %s
"""
# The relayer's connections (pool and LISTEN), cut as a failover or a restart would.
TERMINATE_RELAYER: LiteralString = """
SELECT count(*) FILTER (WHERE pg_catalog.pg_terminate_backend(pid))
FROM pg_catalog.pg_stat_activity
WHERE datname = current_database() AND application_name LIKE 'outbox-db%'
  AND pid <> pg_catalog.pg_backend_pid()
"""
LISTENING: LiteralString = """
SELECT count(*) FROM pg_catalog.pg_stat_activity
WHERE datname = current_database() AND application_name = 'outbox-db-listen'
  AND state = 'idle' AND query LIKE '%LISTEN outbox_items_enqueued%'
"""


@pytest.fixture
def second_store(outbox_database: Database) -> Iterator[OutboxStore]:
    """Another executor store on the same database: connections the worker does not own."""
    with OutboxStore.connect(outbox_database.url, role=Role.EXECUTOR, max_size=2) as store:
        yield store


def ledger(url: str) -> list[tuple[Any, ...]]:
    """(outbox_id, attempt_no, state, rail_reference, rail_code, error_code, worker_id) rows."""
    return query_no_role(url, LEDGER)


def ledger_of(url: str, outbox_id: UUID) -> list[tuple[Any, ...]]:
    """The ledger rows of one item, without its outbox_id."""
    return [row[1:] for row in ledger(url) if row[0] == outbox_id]


def references_by_key(simulator: RailSimulator) -> dict[str | None, str | None]:
    """The reference the simulator answered for each idempotency key (the first answer kept)."""
    return {
        line.idempotency_key: line.reference
        for line in read_request_log(simulator.log_path)
        if not line.absorbed
    }


def repair_lapsed_lease(database: Database, store: OutboxStore, outbox_id: UUID) -> None:
    """The holder died: its lease lapses (moved into the past) and lease repair requeues it."""
    expire_lease(database.url, outbox_id)
    store.repair("repairer", batch_size=10)


def assert_repaired_then_dispatched_by_b(
    database: Database, simulator: RailSimulator, outbox_id: UUID, rail_code: str
) -> None:
    """A's lease was repaired, then B recorded DISPATCHED with the rail's one reference."""
    (reference,) = references_by_key(simulator).values()
    assert ledger_of(database.url, outbox_id) == [
        (1, "ZOMBIE_REQUEUE", None, None, "LEASE_EXPIRED", "relayer-a"),
        (2, "DISPATCHED", reference, rail_code, None, "relayer-b"),
    ]


def attempts_at_least(url: str, minimum: int) -> Callable[[], bool]:
    """A condition: the ledger holds at least `minimum` attempts."""
    return lambda: count(url, ATTEMPT_COUNT) >= minimum


# --- 1. dispatch ---------------------------------------------------------------------------------


def test_drain_dispatches_every_item_once_with_its_key_and_records_the_rails_reference(
    outbox_database: Database,
    outbox_store: OutboxStore,
    simulators: Simulators,
    relayers: Relayers,
) -> None:
    """200 items of 5 participants: one request each with its key and payload, one DISPATCHED attempt with the rail's reference, nothing pending."""
    simulator = simulators.start()
    items = {}
    for n in range(200):
        request = make_request(participant_id=f"participant-{n % 5}")
        items[request.idempotency_key] = (outbox_store.enqueue(request).outbox_id, request)
    relayer = relayers.build(
        "relayer-a", {RAIL: simulators.rail(simulator)}, batch_size=50, concurrency=16
    )

    relayer.drain()

    requests = read_request_log(simulator.log_path)
    assert sorted(line.idempotency_key or "" for line in requests) == sorted(items)
    for line in requests:
        _, request = items[line.idempotency_key or ""]
        assert (
            line.payload_sha256
            == hashlib.sha256(canonical_json(request.payload).encode()).hexdigest()
        )
        assert (line.status, line.absorbed, line.fault) == (201, False, None)
    references = references_by_key(simulator)
    assert sorted(ledger(outbox_database.url)) == sorted(
        (outbox_id, 1, "DISPATCHED", references[key], "201", None, "relayer-a")
        for key, (outbox_id, _) in items.items()
    )
    assert len(set(references.values())) == 200
    assert query_no_role(outbox_database.url, PENDING) == []
    assert relayer.held == 0
    assert relayer.signals.totals() == CycleSignals(cycle="total")


# --- 2. lease loss -------------------------------------------------------------------------------


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
    assert [(row[1], row[-1]) for row in ledger_of(outbox_database.url, later)] == [
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
    assert [(row[1], row[-1]) for row in ledger_of(outbox_database.url, outbox_id)] == [
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
    assert [(row[1], row[3], row[-1]) for row in ledger_of(outbox_database.url, outbox_id)] == [
        ("ZOMBIE_REQUEUE", None, "relayer-a"),
        ("DISPATCHED", "201", "relayer-a"),
    ]


# --- 3. concurrent completion --------------------------------------------------------------------


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
    assert sorted(ledger(outbox_database.url)) == sorted(
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
    assert sorted(ledger(outbox_database.url)) == sorted(
        [(ids[0], 1, "DISPATCHED", "recorded-elsewhere", None, None, "relayer-a")]
        + [(i, 1, "DISPATCHED", references[keys[i]], "201", None, "relayer-a") for i in ids[1:]]
    )
    assert count(outbox_database.url, TERMINAL_COUNT) == 3
    assert query_no_role(outbox_database.url, PENDING) == []


# --- 4. terminal guard ---------------------------------------------------------------------------


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
    assert ledger_of(outbox_database.url, item.outbox_id) == [
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
    assert ledger_of(outbox_database.url, guarded) == [
        (1, "DISPATCHED", "planted", None, None, "planter")
    ]
    for outbox_id in ids[:1] + ids[2:]:
        assert [(row[1], row[3], row[-1]) for row in ledger_of(outbox_database.url, outbox_id)] == [
            ("DISPATCHED", "201", "relayer-a")
        ]
    assert count(outbox_database.url, TERMINAL_COUNT) == 4
    assert worker.held == 0


# --- 5. retries ----------------------------------------------------------------------------------


def test_rail_failures_are_retried_with_backoff_until_the_ceiling_ends_the_item_failed(
    outbox_database: Database,
    outbox_store: OutboxStore,
    simulators: Simulators,
    relayers: Relayers,
) -> None:
    """503 answers: RETRYABLE RAIL_UNAVAILABLE '503' rescheduled by the backoff's draw (within its ceiling); at max_attempts=3 the item ends FAILED."""
    simulator = simulators.start(Faults(fail_rate=1.0))
    seed = 5  # its second-round draws would pass the 90 s cap if the cap were not applied
    backoff = seeded_backoff(seed, base_seconds=60, cap_seconds=90)
    replica = seeded_backoff(seed, base_seconds=60, cap_seconds=90)
    worker = relayers.build("relayer-a", {RAIL: simulators.rail(simulator)}, backoff=backoff)
    ids = sorted(outbox_store.enqueue(make_request()).outbox_id for _ in range(3))
    query_no_role(outbox_database.url, "UPDATE public.payment_outbox_settings SET max_attempts = 3")
    schedule: LiteralString = """
        SELECT a.outbox_id, a.state::text, a.rail_code, a.error_code, a.worker_id,
            p.attempt_count, p.claimed_by,
            EXTRACT(EPOCH FROM p.next_attempt_at - a.completed_at)::float8
        FROM public.payment_outbox_attempts AS a
        JOIN public.payment_outbox_pending AS p USING (outbox_id)
        WHERE a.attempt_no = %s ORDER BY a.outbox_id
    """

    for attempt in (1, 2):
        worker.drain()
        rows = query_no_role(outbox_database.url, schedule, [attempt])
        assert [row[:7] for row in rows] == [
            (i, "RETRYABLE", "503", "RAIL_UNAVAILABLE", "relayer-a", attempt, None) for i in ids
        ]
        delays = sorted(row[7] for row in rows)
        assert delays == sorted(float(replica.delay_seconds(attempt)) for _ in ids)
        ceiling = min(90, 60 * 2 ** (attempt - 1))  # base doubled per failure, capped
        assert all(0 < delay <= ceiling for delay in delays), "moved on, within the ceiling"
        # Due now, as the owner: the proof does not wait out the backoff.
        query_no_role(
            outbox_database.url, "UPDATE public.payment_outbox_pending SET next_attempt_at = now()"
        )

    worker.drain()

    ledger_rows = ledger(outbox_database.url)
    assert [row for row in ledger_rows if row[1] == 3] == [
        (i, 3, "FAILED", None, "503", "RETRY_CEILING_REACHED", "relayer-a") for i in ids
    ]
    assert len(ledger_rows) == 9
    assert query_no_role(outbox_database.url, PENDING) == []
    assert simulator.stats().by_status == {"503": 9}


def test_an_item_for_a_rail_that_is_not_configured_waits_unclaimed_and_is_shown_unserved(
    outbox_database: Database,
    outbox_store: OutboxStore,
    simulators: Simulators,
    relayers: Relayers,
) -> None:
    """rail_type with no rail configured: never claimed, no attempt, nothing sent; listed unserved."""
    simulator = simulators.start()
    worker = relayers.build("relayer-a", {RAIL: simulators.rail(simulator)})
    outbox_id = outbox_store.enqueue(make_request(rail_type="sepa")).outbox_id
    outbox_store.enqueue(make_request())

    worker.drain()

    assert ledger_of(outbox_database.url, outbox_id) == []
    assert query_no_role(outbox_database.url, PENDING) == [(outbox_id, 0, None)]
    assert simulator.stats().requests == 1  # the rtp item, on the rail it was configured for
    assert [(rail.rail_type, rail.due_count) for rail in outbox_store.unserved_rails()] == [
        ("sepa", 1)
    ]


def test_a_slow_rail_holds_no_more_leases_than_its_slots_and_leaves_the_rest_to_a_fast_one(
    outbox_database: Database,
    outbox_store: OutboxStore,
    simulators: Simulators,
    relayers: Relayers,
) -> None:
    """max_in_flight 2 of 4: two slow items leased at a time, the fast rail sends meanwhile."""
    slow = simulators.start(Faults(latency_ms=1000))
    fast = simulators.start()
    rails = {"slow": simulators.rail(slow, "slow"), RAIL: simulators.rail(fast)}
    worker = relayers.build(
        "relayer-a", rails, concurrency=4, rail_limits={"slow": RailLimit(max_in_flight=2)}
    )
    for _ in range(6):
        outbox_store.enqueue(make_request(rail_type="slow"))
        outbox_store.enqueue(make_request())
    leased_slow = (
        "SELECT count(*) FROM public.payment_outbox_pending"
        " WHERE rail_type = 'slow' AND claimed_by IS NOT NULL"
    )

    worker.step()
    deadline = time.monotonic() + 0.9
    while fast.stats().requests < 6 and time.monotonic() < deadline:
        worker.step()
        assert count(outbox_database.url, leased_slow) <= 2
        time.sleep(0.02)

    assert fast.stats().requests == 6, "the fast rail drained while the slow one held its slots"
    assert slow.stats().requests == 2
    worker.drain()
    for simulator in (slow, fast):
        assert simulator.stats().unique_keys == simulator.stats().requests == 6
    assert count(outbox_database.url, leased_slow) == 0


def test_a_fast_rails_answers_are_recorded_without_waiting_for_a_slow_rails_sends(
    outbox_database: Database,
    outbox_store: OutboxStore,
    simulators: Simulators,
    relayers: Relayers,
) -> None:
    """Worker time stands still, so no answer ever waits out the linger: the fast rail's three answers are recorded while the slow send is still out, because only its own rail's sends are worth waiting for."""
    slow = simulators.start(Faults(latency_ms=3000))
    fast = simulators.start()
    rails = {"slow": simulators.rail(slow, "slow"), RAIL: simulators.rail(fast)}
    worker = relayers.build("relayer-a", rails, clock=lambda: 0.0)
    outbox_store.enqueue(make_request(rail_type="slow"))
    for _ in range(3):
        outbox_store.enqueue(make_request())
    fast_dispatched = (
        "SELECT count(*) FROM public.payment_outbox_attempts"
        " WHERE rail_type = 'rtp' AND state = 'DISPATCHED'"
    )

    assert worker.step() == 4
    deadline = time.monotonic() + DEADLINE_SECONDS
    while count(outbox_database.url, fast_dispatched) < 3 and time.monotonic() < deadline:
        worker.step()
        time.sleep(0.02)

    assert count(outbox_database.url, fast_dispatched) == 3
    assert count(outbox_database.url, ATTEMPT_COUNT) == 3, "the slow send is still out"
    assert fast.stats().requests == 3
    assert slow.stats().requests == 1


# --- 6. lease renewal ----------------------------------------------------------------------------


def test_a_dispatch_outliving_half_its_lease_has_the_lease_renewed_and_its_outcome_recorded(
    outbox_database: Database,
    outbox_store: OutboxStore,
    simulators: Simulators,
    relayers: Relayers,
) -> None:
    """lease_seconds=2 and a send still running when half of it has passed: the step renews (lease_expires_at moves on), then the outcome is recorded, no lease lost."""
    simulator = simulators.start(Faults(latency_ms=1000))
    clock = TestClock()
    worker = relayers.build(
        "relayer-a", {RAIL: simulators.rail(simulator)}, clock=clock, lease_seconds=2
    )
    outbox_id = outbox_store.enqueue(make_request()).outbox_id
    assert worker.step() == 1
    ((_, claimed_until),) = query_no_role(outbox_database.url, LEASE_OF, [outbox_id])

    clock.advance(1.0)  # half of the 2-second lease, for the worker
    worker.step()

    ((_, renewed_until),) = query_no_role(outbox_database.url, LEASE_OF, [outbox_id])
    assert renewed_until > claimed_until, "the lease was renewed"
    assert count(outbox_database.url, ATTEMPT_COUNT) == 0, "while the send was still running"
    assert worker.held == 1
    worker.drain()
    (reference,) = references_by_key(simulator).values()
    assert ledger_of(outbox_database.url, outbox_id) == [
        (1, "DISPATCHED", reference, "201", None, "relayer-a")
    ]
    assert worker.signals.totals() == CycleSignals(cycle="total")


# --- 7. graceful stop ----------------------------------------------------------------------------


def test_stopping_mid_batch_records_running_sends_and_leaves_the_rest_unleased(
    outbox_database: Database,
    outbox_store: OutboxStore,
    simulators: Simulators,
    relayers: Relayers,
) -> None:
    """Stop with 2 sending of 10 due: sent items are recorded within the grace; the others were never leased (a claim takes only what can start), unattempted; no lease left."""
    simulator = simulators.start(Faults(latency_ms=400))
    worker = relayers.build(
        "relayer-a", {RAIL: simulators.rail(simulator)}, batch_size=10, concurrency=2
    )
    ids = {outbox_store.enqueue(make_request()).outbox_id for _ in range(10)}

    with capture_logs() as logs, running(worker) as stop:
        assert wait_for(lambda: simulator.stats().requests >= 1, DEADLINE_SECONDS), (
            "sending has begun"
        )
        stop.set()

    assert count(outbox_database.url, LEASED_COUNT) == 0
    references = references_by_key(simulator)
    recorded = {row[0]: row for row in ledger(outbox_database.url)}
    keys = dict(
        query_no_role(
            outbox_database.url,
            "SELECT outbox_id, idempotency_key FROM public.payment_outbox_attempts",
        )
    )
    assert len(recorded) == len(references) == simulator.stats().requests
    for outbox_id, row in recorded.items():
        assert row[1:] == (1, "DISPATCHED", references[keys[outbox_id]], "201", None, "relayer-a")
    released = query_no_role(outbox_database.url, PENDING)
    assert {outbox_id for outbox_id, _, _ in released} == ids - set(recorded)
    assert all(row[1:] == (0, None) for row in released), "unattempted and unleased"
    assert 1 <= len(released) < 10, "stopped mid-batch"
    (stopped,) = events(logs, "relayer_stopped")
    assert stopped["abandoned"] == 0


# --- 8. wake-up ----------------------------------------------------------------------------------


def test_an_idle_worker_is_woken_by_an_enqueue_long_before_its_poll(
    outbox_database: Database,
    outbox_store: OutboxStore,
    simulators: Simulators,
    relayers: Relayers,
) -> None:
    """poll_interval 30 s and an empty queue: an enqueue's NOTIFY wakes the LISTENing worker, which dispatches the item."""
    simulator = simulators.start()
    worker = relayers.build(
        "relayer-a", {RAIL: simulators.rail(simulator)}, poll_interval_seconds=30.0
    )

    with running(worker):
        assert wait_for(lambda: count(outbox_database.url, LISTENING) == 1, DEADLINE_SECONDS), (
            "idle, listening"
        )
        outbox_id = outbox_store.enqueue(make_request()).outbox_id
        dispatched = wait_for(lambda: count(outbox_database.url, TERMINAL_COUNT) == 1, 10)

    assert dispatched, "dispatched well before the 30 s poll"
    (reference,) = references_by_key(simulator).values()
    assert ledger_of(outbox_database.url, outbox_id) == [
        (1, "DISPATCHED", reference, "201", None, "relayer-a")
    ]


# --- 9. database loss ----------------------------------------------------------------------------


def test_the_worker_survives_its_connections_being_cut_and_records_every_item_once(
    outbox_database: Database,
    outbox_store: OutboxStore,
    second_store: OutboxStore,
    simulators: Simulators,
    relayers: Relayers,
) -> None:
    """300 items, the relayer's backends terminated three times mid-drain: it logs database_unavailable, carries on, and every item ends with one DISPATCHED attempt.

    A cut can land after a claim committed and before its rows reached the relayer: those
    leases are the relayer's without its knowing, and lease repair (running beside it, as
    `outbox-relayer run` does) requeues them when they expire. So an item may also have a
    LEASE_EXPIRED repair, never a second terminal attempt.
    """
    simulator = simulators.start(Faults(latency_ms=20))
    worker = relayers.build(
        "relayer-a",
        {RAIL: simulators.rail(simulator)},
        batch_size=50,
        concurrency=4,
        lease_seconds=REPAIRED_LEASE_SECONDS,
    )
    for n in range(300):
        outbox_store.enqueue(make_request(participant_id=f"participant-{n % 7}"))
    terminated = []
    repairer = LeaseRepairer(
        store=second_store,
        signals=Signals(),
        worker_id="repairer",
        batch_size=100,
        lease_seconds=REPAIRED_LEASE_SECONDS,
    )
    stop_repair = threading.Event()
    repairing = threading.Thread(target=repairer.run, args=(stop_repair, 1.0))
    repairing.start()

    try:
        with capture_logs() as logs, running(worker):
            for progress in (50, 130, 210):
                assert wait_for(attempts_at_least(outbox_database.url, progress), DEADLINE_SECONDS)
                terminated.append(count(outbox_database.url, TERMINATE_RELAYER))
            finished = wait_for(lambda: count(outbox_database.url, TERMINAL_COUNT) == 300, 60)
    finally:
        stop_repair.set()
        repairing.join()

    assert finished, "every item recorded despite the outages"
    assert all(cut >= 1 for cut in terminated), terminated
    unavailable = events(logs, "database_unavailable")
    assert unavailable, "the outage was noticed"
    assert all(entry["log_level"] == "warning" for entry in unavailable)
    attempts = query_no_role(
        outbox_database.url,
        "SELECT outbox_id, state::text, error_code FROM public.payment_outbox_attempts",
    )
    dispatched = [outbox_id for outbox_id, state, _ in attempts if state == "DISPATCHED"]
    assert len(dispatched) == len(set(dispatched)) == 300
    repairs = {tuple(attempt[1:]) for attempt in attempts if attempt[1] != "DISPATCHED"}
    assert repairs <= {("ZOMBIE_REQUEUE", "LEASE_EXPIRED")}
    assert query_no_role(outbox_database.url, PENDING) == []
    assert count(outbox_database.url, LEASED_COUNT) == 0
    assert simulator.stats().unique_keys == 300


# --- 10. reconcile before re-dispatch ------------------------------------------------------------

DUE_NOW: LiteralString = "UPDATE public.payment_outbox_pending SET next_attempt_at = now()"


def posted_keys(simulator: RailSimulator) -> list[str | None]:
    """The key of every POST the rail received, in arrival order (lookups are not POSTs)."""
    return [line.idempotency_key for line in read_request_log(simulator.log_path)]


@pytest.mark.parametrize("lookup", [True, False], ids=["lookup", "no-lookup"])
def test_an_item_the_rail_executed_before_its_worker_died_is_reconciled_not_sent_again(
    outbox_database: Database,
    outbox_store: OutboxStore,
    simulators: Simulators,
    relayers: Relayers,
    lookup: bool,
) -> None:
    """A's send executes at the rail, then A's lease lapses unrecorded and is repaired: with lookup, B records the rail's outcome (reconciled:201) and sends nothing; without, B re-sends the same key and the rail absorbs it."""
    simulator = simulators.start()
    rail = simulators.rail(simulator, lookup=lookup)
    worker_a = relayers.build("relayer-a", {RAIL: rail})
    worker_b = relayers.build("relayer-b", {RAIL: rail})
    request = make_request()
    outbox_id = outbox_store.enqueue(request).outbox_id
    assert worker_a.step() == 1
    assert wait_for(lambda: simulator.stats().recorded_keys == 1, DEADLINE_SECONDS), (
        "the rail executed A's send"
    )
    repair_lapsed_lease(outbox_database, outbox_store, outbox_id)  # A dies holding the answer

    worker_b.drain()

    rail_code = f"{RECONCILED_PREFIX}201" if lookup else "201"
    assert_repaired_then_dispatched_by_b(outbox_database, simulator, outbox_id, rail_code)
    stats = simulator.stats()
    if lookup:
        assert posted_keys(simulator) == [request.idempotency_key], "no second POST"
        assert (stats.absorbed, stats.lookups) == (0, {"found": 1})
    else:
        assert posted_keys(simulator) == [request.idempotency_key] * 2, "re-sent, same key"
        assert (stats.absorbed, stats.lookups) == (1, {})


def test_an_item_whose_worker_died_before_sending_is_looked_up_then_sent_once(
    outbox_database: Database,
    outbox_store: OutboxStore,
    simulators: Simulators,
    relayers: Relayers,
) -> None:
    """A claims and dies before its send: after repair the lookup finds no outcome (404) and B sends the item once, under its key."""
    simulator = simulators.start()
    worker_b = relayers.build("relayer-b", {RAIL: simulators.rail(simulator, lookup=True)})
    request = make_request()
    outbox_id = outbox_store.enqueue(request).outbox_id
    assert len(outbox_store.claim("relayer-a", batch_size=10, lease_seconds=30)) == 1
    repair_lapsed_lease(outbox_database, outbox_store, outbox_id)

    worker_b.drain()

    assert_repaired_then_dispatched_by_b(outbox_database, simulator, outbox_id, "201")
    assert posted_keys(simulator) == [request.idempotency_key]
    assert simulator.stats().lookups == {"not_found": 1}


def test_a_failed_lookup_is_an_unknown_outcome_and_the_item_is_sent_again_under_its_key(
    outbox_database: Database,
    outbox_store: OutboxStore,
    simulators: Simulators,
    relayers: Relayers,
) -> None:
    """The rail executed A's send, but answers B's lookup 503: B re-sends the same key, the rail absorbs it, the item ends DISPATCHED with the first reference."""
    simulator = simulators.start(Faults(lookup_fail_rate=1.0))
    rail = simulators.rail(simulator, lookup=True)
    worker_a = relayers.build("relayer-a", {RAIL: rail})
    worker_b = relayers.build("relayer-b", {RAIL: rail})
    request = make_request()
    outbox_id = outbox_store.enqueue(request).outbox_id
    assert worker_a.step() == 1
    assert wait_for(lambda: simulator.stats().recorded_keys == 1, DEADLINE_SECONDS), (
        "the rail executed A's send"
    )
    repair_lapsed_lease(outbox_database, outbox_store, outbox_id)

    worker_b.drain()

    assert_repaired_then_dispatched_by_b(outbox_database, simulator, outbox_id, "201")
    assert posted_keys(simulator) == [request.idempotency_key] * 2
    stats = simulator.stats()
    assert (stats.absorbed, stats.lookups) == (1, {"failed": 1})


class UnansweredCase(NamedTuple):
    """A first send's fault, what the ledger records for it, and what the retry does."""

    faults: Faults
    first: tuple[str, str | None, str]  # state, rail_code, error_code
    second_rail_code: str
    lookups: dict[str, int]
    rail_timeout_seconds: float = 10.0


@pytest.mark.parametrize(
    "case",
    [
        # Seed 1 scripts the rail: the first POST faults, the second does not.
        UnansweredCase(
            Faults(drop_rate=0.5, seed=1),
            ("RETRYABLE", None, "RAIL_CONNECTION_ERROR"),
            f"{RECONCILED_PREFIX}201",
            {"found": 1},
        ),
        # The rail acts, then holds its answer (until it stops) past the client's 1 s timeout.
        UnansweredCase(
            Faults(timeout_rate=0.5, seed=1),
            ("RETRYABLE", None, "RAIL_TIMEOUT"),
            f"{RECONCILED_PREFIX}201",
            {"found": 1},
            rail_timeout_seconds=1.0,
        ),
        UnansweredCase(
            Faults(fail_rate=0.5, seed=1), ("RETRYABLE", "503", "RAIL_UNAVAILABLE"), "201", {}
        ),
    ],
    ids=["connection-lost-after-send", "timed-out-after-send", "answered-503"],
)
def test_after_a_send_without_an_answer_the_outcome_is_looked_up_but_not_after_a_503(
    outbox_database: Database,
    outbox_store: OutboxStore,
    simulators: Simulators,
    relayers: Relayers,
    case: UnansweredCase,
) -> None:
    """A connection dropped or a send timed out after the rail acted leaves the outcome unknown: the retry looks it up and records it without a POST. A 503 is a known non-execution: the retry just sends."""
    simulator = simulators.start(case.faults)
    rail = simulators.rail(simulator, lookup=True, timeout_seconds=case.rail_timeout_seconds)
    worker = relayers.build("relayer-a", {RAIL: rail})
    outbox_id = outbox_store.enqueue(make_request()).outbox_id
    worker.drain()
    query_no_role(outbox_database.url, DUE_NOW)  # the proof does not wait out the backoff

    worker.drain()

    # The rail's first (and only) reference: a dropped answer's reference is not in the log.
    assert [row[1:5] for row in ledger_of(outbox_database.url, outbox_id)] == [
        (case.first[0], None, case.first[1], case.first[2]),
        ("DISPATCHED", "rsim-00000001", case.second_rail_code, None),
    ]
    assert len(posted_keys(simulator)) == (1 if case.lookups else 2)
    assert simulator.stats().lookups == case.lookups
