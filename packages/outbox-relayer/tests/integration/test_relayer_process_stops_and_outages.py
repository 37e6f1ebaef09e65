"""Proofs: `outbox-relayer` processes stopped by signals and cut off from the database.

Real `outbox-relayer` processes against a real PostgreSQL and a rail simulator, started and
read back as processes.py describes: from the ledger, the queue and the rail's request log.
"""

from __future__ import annotations

import json
import signal
import uuid
from collections import Counter
from typing import TYPE_CHECKING, Final, LiteralString

import pytest

from outbox_db.testonly import expire_lease, query_no_role
from outbox_db.testonly.factories import leased_item
from outbox_relayer.testing import Faults, RailSimulator, read_request_log
from processes import (
    DISPATCHING_ROWS,
    DRAIN_SECONDS,
    HELD_KEYS,
    PENDING,
    STOP_SECONDS,
    Process,
    Processes,
    enqueue_run,
    progress,
    rail_of,
    wait_until,
)

if TYPE_CHECKING:
    from pathlib import Path

    from outbox_db import OutboxStore
    from outbox_db.testonly.pytest_plugin import Database

OK: Final = range(200, 300)
TERMINAL: Final = frozenset({"DISPATCHED", "FAILED"})
LEDGER: LiteralString = """
SELECT outbox_id, idempotency_key, attempt_no, state::text, rail_reference, worker_id
FROM public.payment_outbox_attempts WHERE rail_type = %s ORDER BY outbox_id, attempt_no
"""
LEASED_BY: LiteralString = (
    "SELECT count(*) FROM public.payment_outbox_pending WHERE claimed_by = %s"
)
# Every connection of the relayers on this database (pool and LISTEN), cut as a failover would.
TERMINATE_RELAYERS: LiteralString = """
SELECT count(*) FILTER (WHERE pg_catalog.pg_terminate_backend(pid))
FROM pg_catalog.pg_stat_activity
WHERE datname = current_database() AND application_name LIKE 'outbox-db%%'
  AND pid <> pg_catalog.pg_backend_pid()
"""
RECORDED_COUNT: LiteralString = (
    "SELECT count(*) FROM public.payment_outbox_attempts WHERE rail_type = %s"
)


def wait_for_progress(url: str, run: str, relayer: Process, attempts: int = 20) -> None:
    """Wait until `relayer` has recorded `attempts` more attempts of the run's items."""
    ((before,),) = query_no_role(url, RECORDED_COUNT, [rail_of(run)])

    def moved_on() -> bool:
        ((now,),) = query_no_role(url, RECORDED_COUNT, [rail_of(run)])
        return bool(now >= before + attempts)

    wait_until(moved_on, f"{attempts} more attempts recorded", watch=[relayer])


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=lambda s: s.name)
def test_a_stop_signal_records_running_sends_and_holds_no_unstarted_lease(
    outbox_database: Database, processes: Processes, tmp_path: Path, stop: signal.Signals
) -> None:
    """Stopped with sends in flight: exit 0, each running send recorded once, nothing left leased.

    A claim takes only what the rail's free slots can start, so there is no unstarted lease to
    give back, and the rest of the backlog was never touched.
    """
    run = uuid.uuid4().hex[:12]
    created = enqueue_run(outbox_database.url, run, items=300, participants=10)
    faults = Faults(latency_ms=200, latency_jitter_ms=300)
    with RailSimulator(faults=faults, log_path=tmp_path / "rail.jsonl") as rail:
        worker_id = f"{run}-relayer"
        relayer = processes.start(
            worker_id,
            *["run", "--no-repair", "--rail", f"{rail_of(run)}={rail.payments_url}"],
            *["--worker-id", worker_id, "--batch-size", "50", "--concurrency", "4"],
            *["--shutdown-grace", "10", "--log-format", "json"],
            database_url=outbox_database.url,
        )

        def sending() -> bool:
            held = {key for (key,) in query_no_role(outbox_database.url, HELD_KEYS, [worker_id])}
            in_flight = {request.idempotency_key for request in read_request_log(rail.log_path)}
            return bool(held & in_flight)

        wait_until(sending, "sends in flight", watch=[relayer])
        exit_code = relayer.stop(stop)
        requests = read_request_log(rail.log_path)

    assert exit_code == 0, relayer.stderr()
    (stopped,) = relayer.logs("relayer_stopped")
    assert stopped["abandoned"] == 0
    assert query_no_role(outbox_database.url, LEASED_BY, [worker_id]) == [(0,)]
    assert query_no_role(outbox_database.url, DISPATCHING_ROWS) == [(0,)]
    ledger = query_no_role(outbox_database.url, LEDGER, [rail_of(run)])
    # Every send the rail received was recorded, once, as its answer: none was cut short.
    assert Counter(key for _, key, _, _, _, _ in ledger) == Counter(
        request.idempotency_key for request in requests
    )
    assert {(attempt_no, state) for _, _, attempt_no, state, _, _ in ledger} == {(1, "DISPATCHED")}
    # The rest were never claimed: due at once, untouched.
    pending = query_no_role(outbox_database.url, PENDING, [rail_of(run)])
    assert len(pending) + len(ledger) == len(created)
    assert {(attempt_count, claimed_by) for _, attempt_count, claimed_by in pending} == {(0, None)}


def test_a_relayer_rides_out_lost_database_connections(
    outbox_database: Database, processes: Processes, tmp_path: Path
) -> None:
    """Its connections cut three times while it drains: it logs database_unavailable, keeps going, and every item ends once."""
    run = uuid.uuid4().hex[:12]
    url = outbox_database.url
    created = enqueue_run(url, run, items=600, participants=10)
    with RailSimulator(faults=Faults(latency_ms=10), log_path=tmp_path / "rail.jsonl") as rail:
        relayer = processes.start(
            f"{run}-relayer",
            *["run", "--rail", f"{rail_of(run)}={rail.payments_url}", "--worker-id", run],
            *["--batch-size", "50", "--concurrency", "4", "--repair-interval", "0.5"],
            *["--poll-interval", "0.2", "--log-format", "json"],
            database_url=url,
            LEASE_SECONDS="3",
        )
        cuts = 0
        for _ in range(3):
            wait_for_progress(url, run, relayer)
            ((terminated,),) = query_no_role(url, TERMINATE_RELAYERS)
            cuts += terminated > 0
        wait_until(
            lambda: progress(url, run) == (0, len(created)),
            f"terminal attempt for each of {len(created)} items",
            seconds=DRAIN_SECONDS,
            watch=[relayer],
            interval=0.1,
        )
        assert relayer.alive
        exit_code = relayer.stop()
        requests = read_request_log(rail.log_path)

    assert exit_code == 0, relayer.stderr()
    assert cuts == 3
    assert relayer.logs("database_unavailable")
    ledger = query_no_role(url, LEDGER, [rail_of(run)])
    terminal = Counter(outbox_id for outbox_id, _, _, state, _, _ in ledger if state in TERMINAL)
    assert terminal == dict.fromkeys(created, 1)
    assert query_no_role(url, DISPATCHING_ROWS) == [(0,)]
    dispatched = {key for _, key, _, state, _, _ in ledger if state == "DISPATCHED"}
    assert dispatched == {r.idempotency_key for r in requests if r.status in OK}
    assert dispatched == set(created.values())


def test_repair_once_prints_the_cycle_and_requeues_an_expired_lease(
    outbox_database: Database, outbox_store: OutboxStore, processes: Processes
) -> None:
    """`outbox-relayer repair --once` repairs the expired lease it finds, prints the cycle as JSON and exits 0."""
    item = leased_item(outbox_store, worker_id="crashed-worker")
    expire_lease(outbox_database.url, item.outbox_id)

    repair = processes.start(
        "repair-once",
        *["repair", "--once", "--worker-id", "repairer-once", "--log-format", "json"],
        database_url=outbox_database.url,
    )
    exit_code = repair.popen.wait(timeout=STOP_SECONDS)

    assert exit_code == 0, repair.stderr()
    ledger = query_no_role(
        outbox_database.url,
        "SELECT attempt_no, state::text, worker_id FROM public.payment_outbox_attempts WHERE outbox_id = %s",
        [item.outbox_id],
    )
    assert ledger == [(1, "ZOMBIE_REQUEUE", "crashed-worker")]
    pending = query_no_role(
        outbox_database.url,
        "SELECT attempt_count, claimed_by FROM public.payment_outbox_pending WHERE outbox_id = %s",
        [item.outbox_id],
    )
    assert pending == [(1, None)]
    # stdout is the cycle alone (for scripts: `| jq .requeued`); the JSON logs go to stderr.
    (result,) = repair.stdout_path.read_text(encoding="utf-8").splitlines()
    assert json.loads(result) == {"requeued": 1, "failed": 0, "batches": 1}
    logs = repair.stderr().splitlines()
    (repaired,) = [json.loads(line) for line in logs if '"lease_repaired"' in line]
    assert (repaired["outbox_id"], repaired["new_state"]) == (str(item.outbox_id), "ZOMBIE_REQUEUE")
