"""Proofs: the worker stops gracefully, wakes on an enqueue and outlives cut connections.

The worker against a real database and the rail simulator over real HTTP, read back as
relaying.py describes: from the ledger, the queue and the rail's request log, never by time.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, LiteralString

from structlog.testing import capture_logs

from outbox_db.testonly import query_no_role, wait_for
from outbox_db.testonly.factories import make_request
from outbox_relayer import LeaseRepairer, Signals
from outbox_relayer.testing import Faults
from relaying import (
    ATTEMPT_COUNT,
    DEADLINE_SECONDS,
    LEASED_COUNT,
    PENDING,
    RAIL,
    TERMINAL_COUNT,
    Relayers,
    Simulators,
    attempt_rows,
    attempt_rows_of,
    count,
    events,
    references_by_key,
    running,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from outbox_db import OutboxStore
    from outbox_db.testonly.pytest_plugin import Database

# Leases of the connection-cut proof: long enough that an outage's backoff never outlasts one,
# short enough that a claim whose rows a cut lost is repaired within the proof's deadline.
REPAIRED_LEASE_SECONDS = 8
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


def attempts_at_least(url: str, minimum: int) -> Callable[[], bool]:
    """A condition: the ledger holds at least `minimum` attempts."""
    return lambda: count(url, ATTEMPT_COUNT) >= minimum


# --- graceful stop -------------------------------------------------------------------------------


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
    recorded = {row[0]: row for row in attempt_rows(outbox_database.url)}
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


# --- wake-up -------------------------------------------------------------------------------------


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
    assert attempt_rows_of(outbox_database.url, outbox_id) == [
        (1, "DISPATCHED", reference, "201", None, "relayer-a")
    ]


# --- database loss -------------------------------------------------------------------------------


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
