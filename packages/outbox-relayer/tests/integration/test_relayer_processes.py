"""Proofs with real processes: `outbox-relayer run` and `repair` crashed, stopped and cut off.

Each test starts the console script as an operator would (JSON logs on stdout, settings from
the environment and flags) against a real PostgreSQL and a rail simulator in this process (a
real HTTP server on loopback). Claims are proved from the ledger and the pending table, read
as the owner, and from the simulator's request log: never from what a process says about
itself. Processes are always killed at teardown, and waits poll state against generous
deadlines; no assertion is about wall-clock time.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, LiteralString

import pytest

from outbox_db import AttemptState, OutboxStore, Role, retry_serialization_failures
from outbox_db.testonly import expire_lease, query_no_role
from outbox_db.testonly.factories import leased_item, make_request
from outbox_relayer.rails import RECONCILED_PREFIX, UNKNOWN_OUTCOME_CODES
from outbox_relayer.testing import (
    Faults,
    RailSimulator,
    audit_delivery,
    lane_order_problems,
    read_request_log,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping, Sequence
    from uuid import UUID

    from outbox_db import LedgerAttempt
    from outbox_db.testonly.pytest_plugin import Database
    from outbox_relayer.testing import LoggedRequest

RELAYER: Final = str(Path(sys.executable).parent / "outbox-relayer")
# Settings a process would otherwise inherit from the developer's or CI's environment.
SETTING_PREFIXES: Final = ("DATABASE_URL", "LEASE_", "OUTBOX_")
OK: Final = range(200, 300)
TERMINAL: Final = frozenset({"DISPATCHED", "FAILED"})
RECORDED: Final = frozenset({"DISPATCHED", "RETRYABLE", "FAILED", "ZOMBIE_REQUEUE"})
# Long enough that only a real failure runs into them; polling returns as soon as state is there.
START_SECONDS: Final = 30.0
DRAIN_SECONDS: Final = 120.0
STOP_SECONDS: Final = 30.0

# What a run's items are doing: still pending (leased or not), and ended.
PROGRESS: LiteralString = """
SELECT (SELECT count(*) FROM public.payment_outbox_pending WHERE rail_type = %(rail)s),
       (SELECT count(*) FROM public.payment_outbox_attempts
        WHERE rail_type = %(rail)s AND state IN ('DISPATCHED', 'FAILED'))
"""
LEDGER: LiteralString = """
SELECT outbox_id, idempotency_key, attempt_no, state::text, rail_reference, worker_id
FROM public.payment_outbox_attempts WHERE rail_type = %s ORDER BY outbox_id, attempt_no
"""
PENDING: LiteralString = """
SELECT outbox_id, attempt_count, claimed_by FROM public.payment_outbox_pending
WHERE rail_type = %s ORDER BY outbox_id
"""
HELD_KEYS: LiteralString = """
SELECT idempotency_key FROM public.payment_outbox_pending WHERE claimed_by = %s
"""
# What a dead worker held: its leases not yet repaired, and those repaired since (a lease
# repair records the previous holder as the attempt's worker_id). One statement, one snapshot.
HELD_AT_DEATH: LiteralString = """
SELECT idempotency_key FROM public.payment_outbox_pending WHERE claimed_by = %(worker)s
UNION
SELECT idempotency_key FROM public.payment_outbox_attempts
WHERE worker_id = %(worker)s AND state = 'ZOMBIE_REQUEUE'
"""
DISPATCHING_ROWS: LiteralString = (
    "SELECT count(*) FROM public.payment_outbox_attempts WHERE state = 'DISPATCHING'"
)
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


class Process:
    """One `outbox-relayer` process; its stdout (JSON logs) and stderr go to files."""

    def __init__(
        self, name: str, args: Sequence[str], env: Mapping[str, str], folder: Path
    ) -> None:
        self.name = name
        self.stdout_path = folder / f"{name}.stdout"
        self.stderr_path = folder / f"{name}.stderr"
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            self.popen = subprocess.Popen([RELAYER, *args], env=env, stdout=out, stderr=err)

    @property
    def alive(self) -> bool:
        """Whether the process is still running."""
        return self.popen.poll() is None

    def logs(self, event: str | None = None) -> list[dict[str, Any]]:
        """Its JSON log lines so far, or only those of one event."""
        lines = self.stdout_path.read_text(encoding="utf-8").splitlines()
        entries = [json.loads(line) for line in lines if line.startswith("{")]
        return [entry for entry in entries if event is None or entry.get("event") == event]

    def has_logged(self, event: str) -> bool:
        """Whether a log line of `event` is out (safe while the process is still writing)."""
        return f'"event": "{event}"' in self.stdout_path.read_text(encoding="utf-8")

    def stderr(self) -> str:
        """What it wrote to stderr (tracebacks, usage errors)."""
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")

    def stop(self, signum: signal.Signals = signal.SIGTERM) -> int:
        """Send `signum` and wait for the exit; returns the exit code."""
        self.popen.send_signal(signum)
        return self.popen.wait(timeout=STOP_SECONDS)

    def kill(self) -> None:
        """SIGKILL: no shutdown path runs, as in a crash or an OOM kill."""
        self.popen.kill()
        self.popen.wait(timeout=STOP_SECONDS)

    def describe(self) -> str:
        """Its name, exit code and the end of its stderr, for a failure message."""
        return f"{self.name} (exit {self.popen.returncode}): {self.stderr()[-2000:]}"


class Processes:
    """Starts relayer processes for one test; every one still running is killed at teardown."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.started: list[Process] = []

    def start(self, name: str, *args: str, database_url: str, **env: str) -> Process:
        """`outbox-relayer <args>` with DATABASE_URL and `env` over a cleaned environment."""
        inherited = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(SETTING_PREFIXES) or key == "OUTBOX_DB_TESTONLY"
        }
        environment = inherited | {"DATABASE_URL": database_url, "PYTHONUNBUFFERED": "1"} | env
        process = Process(name, args, environment, self.folder)
        self.started.append(process)
        return process

    def kill_all(self) -> None:
        """SIGKILL whatever still runs, and reap everything."""
        for process in self.started:
            if process.alive:
                process.popen.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.popen.wait(timeout=STOP_SECONDS)


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    """Relayer processes for the test, never left running, whatever the test's outcome."""
    started = Processes(tmp_path)
    try:
        yield started
    finally:
        started.kill_all()


@pytest.fixture
def shared_url(outbox_shared_database: Database) -> str:
    """The session's shared database: this test's rows are told apart by a per-run rail_type."""
    return outbox_shared_database.url


def wait_until(
    condition: Callable[[], bool],
    what: str,
    *,
    seconds: float = START_SECONDS,
    watch: Sequence[Process] = (),
    interval: float = 0.05,
) -> None:
    """Poll until `condition` holds; fail naming `what` on the deadline or if a process died."""
    ends = time.monotonic() + seconds
    # A SERIALIZABLE default may cancel a poll's read as a pivot (40001): read again.
    while not retry_serialization_failures(condition):
        if dead := [process for process in watch if not process.alive]:
            pytest.fail(f"{dead[0].describe()}\nexited while waiting for {what}")
        if time.monotonic() > ends:
            pytest.fail(f"no {what} within {seconds:g} s")
        time.sleep(interval)


class AnsweredKeys:
    """Keys the simulator answered 2xx, read incrementally from its request log."""

    def __init__(self, log_path: Path) -> None:
        self.log_path = log_path
        self.keys: set[str] = set()
        self._offset = 0

    def poll(self) -> set[str]:
        """Read the lines appended since the last poll; every 2xx key so far."""
        with contextlib.suppress(FileNotFoundError), self.log_path.open("rb") as log:
            log.seek(self._offset)
            chunk = log.read()
            complete = chunk.rfind(b"\n") + 1  # a line being written is read next time
            self._offset += complete
            for line in chunk[:complete].splitlines():
                entry = json.loads(line)
                if entry["status"] is not None and 200 <= entry["status"] < 300:
                    self.keys.add(entry["idempotency_key"])
        return self.keys


def enqueue_run(url: str, run: str, items: int, participants: int) -> dict[UUID, str]:
    """`items` new items over `participants`, ids and rail_type unique to `run`: {outbox_id: key}.

    Item n's payload is `payload(n)`; its key ends in `-n`.
    """
    created: dict[UUID, str] = {}
    with OutboxStore.connect(url, role=Role.EXECUTOR) as store:
        for start in range(0, items, 1000):
            with store.transaction() as tx:
                for n in range(start, min(start + 1000, items)):
                    request = make_request(
                        instruction_id=f"{run}-ins-{n}",
                        participant_id=f"{run}-participant-{n % participants}",
                        idempotency_key=f"{run}-key-{n}",
                        rail_type=rail_of(run),
                        payload=payload(n),
                    )
                    result = tx.enqueue(request)
                    assert result.created
                    created[result.outbox_id] = request.idempotency_key
    return created


def payload(n: int) -> dict[str, object]:
    """The payload of a run's item n."""
    return {"amount": f"{n % 997 + 1}.00", "currency": "USD", "n": n}


def rail_of(run: str) -> str:
    """The run's own rail_type: relayers of this run send only it, and nothing else reaches it."""
    return f"rtp-{run}"


def progress(url: str, run: str) -> tuple[int, int]:
    """(pending items, items with a terminal attempt) of the run."""
    return progress_of(url, rail_of(run))


def wait_for_progress(url: str, run: str, relayer: Process, attempts: int = 20) -> None:
    """Wait until `relayer` has recorded `attempts` more attempts of the run's items."""
    ((before,),) = query_no_role(url, RECORDED_COUNT, [rail_of(run)])

    def moved_on() -> bool:
        ((now,),) = query_no_role(url, RECORDED_COUNT, [rail_of(run)])
        return bool(now >= before + attempts)

    wait_until(moved_on, f"{attempts} more attempts recorded", watch=[relayer])


def kill_holding_an_answered_lease(
    relayer: Process, worker_id: str, url: str, answered: AnsweredKeys
) -> set[str]:
    """SIGKILL `relayer` once it holds a lease on a key the rail answered 2xx.

    Returns the keys it held at death that the rail had answered: each one's outcome dies
    with the process, so the item must be redelivered. Empty if the relayer recorded the
    outcome in the instant between the check and the kill (then the caller tries again).
    """

    def holds_an_answered_lease() -> bool:
        held = {key for (key,) in query_no_role(url, HELD_KEYS, [worker_id])}
        return bool(held & answered.poll())

    wait_until(
        holds_an_answered_lease,
        f"lease of {worker_id} on a key the rail answered",
        watch=[relayer],
        interval=0.005,
    )
    relayer.kill()
    held = {key for (key,) in query_no_role(url, HELD_AT_DEATH, {"worker": worker_id})}
    return held & answered.poll()


def executed_before_an_unknown_outcome(
    ledger: Sequence[LedgerAttempt], requests: Sequence[LoggedRequest]
) -> set[str]:
    """Keys the rail executed before an attempt of theirs was recorded with an unknown outcome.

    Executed: the rail kept an outcome for the key (a POST answered without a fault). An
    unknown outcome: a lease repair (after a kill), a timeout or a lost connection. Until that
    attempt is recorded nobody else may send the item, so an execution before it is the first
    dispatch of a worker that died (or lost its answer), and the next claimer can look it up.
    """
    executed: dict[str, datetime] = {}
    for request in requests:
        if request.idempotency_key and request.status is not None and request.fault is None:
            executed.setdefault(request.idempotency_key, datetime.fromisoformat(request.wall_time))
    return {
        attempt.idempotency_key
        for attempt in ledger
        if attempt.error_code in UNKNOWN_OUTCOME_CODES
        and attempt.idempotency_key in executed
        and executed[attempt.idempotency_key] < attempt.completed_at
    }


@pytest.mark.parametrize("lookup", [False, True], ids=["resend", "lookup"])
def test_crash_mid_batch_redelivers_under_the_same_key_and_ends_each_item_once(
    shared_url: str,
    processes: Processes,
    tmp_path: Path,
    lookup: bool,
) -> None:
    """5,000 items, 2 relayers (one SIGKILLed holding answered leases), a repairer, a 10%-5xx rail: each item ends once, each key pays once. Without lookup the rail absorbs the re-sends of keys it executed; with lookup it gets no second POST for them, and every such item is reconciled."""
    run = uuid.uuid4().hex[:12]
    created = enqueue_run(shared_url, run, items=5000, participants=50)
    faults = Faults(fail_rate=0.1, latency_ms=2, latency_jitter_ms=3)
    with RailSimulator(faults=faults, log_path=tmp_path / "rail.jsonl") as rail:
        answered = AnsweredKeys(rail.log_path)
        settings = {
            "database_url": shared_url,
            "LEASE_SECONDS": "3",
            "OUTBOX_RETRY_BASE_SECONDS": "1",
            "OUTBOX_RETRY_CAP_SECONDS": "2",
        }
        relay = ["run", "--no-repair", "--rail", f"{rail_of(run)}={rail.payments_url}"]
        relay += ["--poll-interval", "0.2", "--log-format", "json"]
        relay += ["--rail-lookup", rail_of(run)] if lookup else []

        def relayer(worker_id: str) -> Process:
            return processes.start(worker_id, *relay, "--worker-id", worker_id, **settings)

        started = time.monotonic()
        repairer = processes.start(
            f"{run}-repairer",
            *["run", "--no-relay", "--repair-interval", "0.5", "--log-format", "json"],
            *["--worker-id", f"{run}-repairer"],
            **settings,
        )
        steady = relayer(f"{run}-relayer-b")
        kills, crashing = 0, relayer(f"{run}-relayer-a0")
        held_at_death: set[str] = set()
        while not held_at_death:
            assert kills < 5, "the relayer recorded every answer before each of 5 kills"
            victim = crashing.name  # its worker id
            held_at_death = kill_holding_an_answered_lease(crashing, victim, shared_url, answered)
            kills += 1
            crashing = relayer(f"{run}-relayer-a{kills}")  # the restart: a new process
        survivors = [repairer, steady, crashing]
        wait_until(  # their stop signals are handled from here on
            lambda: all(process.has_logged("relayer_started") for process in survivors),
            "start of every process",
            watch=survivors,
        )
        wait_until(
            lambda: progress(shared_url, run) == (0, len(created)),
            f"terminal attempt for every one of the run's {len(created)} items",
            seconds=DRAIN_SECONDS,
            watch=survivors,
            interval=0.25,
        )
        elapsed = time.monotonic() - started
        exits = {process.name: process.stop() for process in survivors}
        requests = read_request_log(rail.log_path)

    assert exits == dict.fromkeys(exits, 0)
    with OutboxStore.connect(shared_url, role=Role.READONLY) as reader:
        ledger = reader.ledger(rail_of(run))
    audit = audit_delivery(created, ledger, requests)
    assert audit.problems == ()
    assert audit.dispatched == audit.rail_effects == len(created)
    assert query_no_role(shared_url, PENDING, [rail_of(run)]) == []
    assert query_no_role(shared_url, DISPATCHING_ROWS) == [(0,)]
    repairs = {
        (attempt.idempotency_key, attempt.worker_id)
        for attempt in ledger
        if attempt.state is AttemptState.ZOMBIE_REQUEUE
    }
    assert repairs, "no lease was repaired"
    absorbed_keys = {request.idempotency_key for request in requests if request.absorbed}
    reconciled = {
        attempt.idempotency_key
        for attempt in ledger
        if (attempt.rail_code or "").startswith(RECONCILED_PREFIX)
    }
    for key in held_at_death:
        # An answer that died with the relayer: the lease repaired, then either the item sent
        # again under the same key and the repeat absorbed by the rail instead of paying
        # twice, or (lookup) the rail's outcome for the key recorded without a second POST.
        assert (key, victim) in repairs
        assert key in (reconciled if lookup else absorbed_keys)
    executed_unseen = executed_before_an_unknown_outcome(ledger, requests)
    if lookup:
        assert audit.absorbed == 0, "a second POST for a key the rail had executed"
        assert reconciled == executed_unseen
    else:
        assert audit.absorbed > 0
        assert reconciled == set()
    print(  # noqa: T201 - the run's figures, shown with -s
        f"\nend to end ({'lookup' if lookup else 'resend'}): {len(created)} items, {kills} kills, "
        f"{audit.absorbed} absorbed duplicates, {len(reconciled)} reconciled of "
        f"{len(executed_unseen)} executed before an unknown outcome, {len(requests)} requests, "
        f"{len(repairs)} lease repairs, {elapsed:.1f} s"
    )


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


def ordered_proof_size() -> tuple[int, int]:
    """(participants, items each) on the ordered rail: OUTBOX_ORDERED_PROOF_SIZE, e.g. 200x50."""
    participants, items = os.environ.get("OUTBOX_ORDERED_PROOF_SIZE", "40x25").split("x")
    return int(participants), int(items)


def enqueue_lanes(
    url: str, run: str, rails: Mapping[str, int], items: int
) -> tuple[dict[UUID, str], dict[str, dict[str, tuple[str, int]]]]:
    """`items` per participant, `rails[rail]` participants per rail, round robin over all of them.

    Returns {outbox_id: key} and, per rail, each item's key -> (its participant, sequence_id).
    """
    created: dict[UUID, str] = {}
    lanes: dict[str, dict[str, tuple[str, int]]] = {rail: {} for rail in rails}
    requests = [
        make_request(
            instruction_id=f"{run}-{rail}-{p}-{n}",
            participant_id=f"{run}-{rail}-participant-{p}",
            idempotency_key=f"{run}-{rail}-{p}-key-{n}",
            rail_type=rail,
            payload=payload(n),
        )
        for n in range(items)
        for rail, participants in rails.items()
        for p in range(participants)
    ]
    with OutboxStore.connect(url, role=Role.EXECUTOR) as store:
        for start in range(0, len(requests), 1000):
            batch = requests[start : start + 1000]
            for request, result in zip(batch, store.enqueue_many(batch), strict=True):
                assert result.created
                created[result.outbox_id] = request.idempotency_key
                lane = (request.participant_id, result.sequence_id)
                lanes[request.rail_type][request.idempotency_key] = lane
    return created, lanes


def test_ordered_lanes_reach_the_rail_in_sequence_order_across_relayer_processes(
    shared_url: str, processes: Processes, tmp_path: Path
) -> None:
    """4 relayer processes, a rail with 20% 503s and 1-21 ms latency: every ordered lane's items reach the rail strictly in sequence order (retries in a row, nothing skipped), while the unordered rail's participants are sent out of order (it is not serialized); each item ends once, each key pays once."""
    run = uuid.uuid4().hex[:12]
    participants, items = ordered_proof_size()
    ordered, unordered = f"ord-{run}", f"rtp-{run}"
    with OutboxStore.connect(shared_url, role=Role.OPERATOR, max_size=1) as operator:
        operator.set_rail_ordering(ordered, ordered=True, reason="ordered delivery proof")
    created, lanes = enqueue_lanes(
        shared_url, run, {ordered: participants, unordered: participants // 4}, items
    )
    faults = Faults(fail_rate=0.2, latency_ms=1, latency_jitter_ms=20, seed=20261124)
    with RailSimulator(faults=faults, log_path=tmp_path / "rail.jsonl") as rail:
        relay = ["run", "--poll-interval", "0.2", "--log-format", "json"]
        relay += ["--rail", f"{ordered}={rail.payments_url}"]
        relay += ["--rail", f"{unordered}={rail.payments_url}"]
        settings = {
            "database_url": shared_url,
            "OUTBOX_CONCURRENCY": "64",
            "OUTBOX_RETRY_BASE_SECONDS": "1",
            "OUTBOX_RETRY_CAP_SECONDS": "2",
        }
        started = time.monotonic()
        relayers = [
            processes.start(f"{run}-relayer-{n}", *relay, "--worker-id", f"{run}-{n}", **settings)
            for n in range(4)
        ]
        total = len(lanes[ordered]) + len(lanes[unordered])
        wait_until(
            lambda: all(progress_of(shared_url, r) == (0, len(lanes[r])) for r in lanes),
            f"terminal attempt for every one of the run's {total} items",
            seconds=DRAIN_SECONDS * (1 + total // 5000),
            watch=relayers,
            interval=0.25,
        )
        elapsed = time.monotonic() - started
        exits = {process.name: process.stop() for process in relayers}
        requests = read_request_log(rail.log_path)

    assert exits == dict.fromkeys(exits, 0)
    with OutboxStore.connect(shared_url, role=Role.READONLY) as reader:
        ledgers = {r: reader.ledger(r) for r in lanes}
    audit = audit_delivery(created, [*ledgers[ordered], *ledgers[unordered]], requests)
    assert audit.problems == ()
    assert audit.dispatched == audit.rail_effects == total
    assert lane_order_problems(lanes[ordered], requests) == ()
    assert lane_order_problems(lanes[unordered], requests) != (), "the unordered rail was serial"
    retries = {r: sum(a.state is AttemptState.RETRYABLE for a in ledgers[r]) for r in lanes}
    assert retries[ordered] > 0
    spans = {r: rail_span_seconds(ledgers[r]) for r in lanes}
    print(  # noqa: T201 - the run's figures, shown with -s
        f"\nordered delivery: {participants} ordered lanes x {items} items and"
        f" {participants // 4} unordered participants x {items}, 4 relayer processes,"
        f" {len(requests)} rail requests; ordered rail {len(lanes[ordered])} items,"
        f" {retries[ordered]} retries, drained in {spans[ordered]:.1f} s; unordered rail"
        f" {len(lanes[unordered])} items, {retries[unordered]} retries, drained in"
        f" {spans[unordered]:.1f} s; whole run {elapsed:.1f} s"
    )


def progress_of(url: str, rail: str) -> tuple[int, int]:
    """(pending items, items with a terminal attempt) on `rail`."""
    ((pending, ended),) = query_no_role(url, PROGRESS, {"rail": rail})
    return pending, ended


def rail_span_seconds(ledger: Sequence[LedgerAttempt]) -> float:
    """From the first claim to the last recorded attempt, by the database clock."""
    first = min(a.claimed_at for a in ledger if a.claimed_at is not None)
    return (max(a.completed_at for a in ledger) - first).total_seconds()
