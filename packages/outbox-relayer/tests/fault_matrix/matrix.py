"""The scenarios and the run of one: enqueue, relay under faults, drain, audit, judge.

Processes come from the demo's `Fleet` (examples/demo.py); the audit is `audit_delivery`.
A scenario's random choices (the rail's fault draws, which relayer to hit, when) come from
one seed, printed and recorded with the results.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import os
import random
import re
import signal
import subprocess
import sys
import time
import urllib.parse
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Final, LiteralString

import attrs
import click

from demo import Fleet, Process
from outbox_db import AttemptState, EnqueueRequest, OutboxStore, Role
from outbox_db.embedded import start
from outbox_db.testonly import query_no_role, queue_locked
from outbox_db.testonly.pgbouncer import PgBouncer, pgbouncer
from outbox_relayer.testing import audit_delivery, read_request_log

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from uuid import UUID

    from outbox_db import LedgerAttempt
    from outbox_db.embedded import EmbeddedServer
    from outbox_relayer.testing import DeliveryAudit

BIN: Final = Path(sys.executable).parent
STOP_SECONDS: Final = 30.0
POLL_SECONDS: Final = 0.25
RELAYERS: Final = 2
# Every rail answers after 5-20 ms, after acting: a relayer always has sends the rail has acted
# on in flight, so a crash or a pause leaves answers only a redelivery can recover.
LATENCY: Final = ("--latency-ms", "5", "--latency-jitter-ms", "15")
# 150-250 ms: a pause catches sends in flight, and a small run still drains when a fault is due.
SLOW_RAIL: Final = ("--latency-ms", "150", "--latency-jitter-ms", "100")
# 1-4 s against a 3 s lease: a third of the sends outlive the lease, most pass half of it.
SLOWER_THAN_LEASE: Final = ("--latency-ms", "1000", "--latency-jitter-ms", "3000")
SIGNALS: Final = (
    "repair_requeued_count",
    "repair_failed_count",
    "lease_lost_count",
    "terminal_guard_hit_count",
)
UNAVAILABLE_EVENT: Final = '"event": "database_unavailable"'
WAKEUPS_LOST_EVENT: Final = '"event": "wakeups_lost"'
# The rail's Retry-After on a throttled answer: above the relayers' retry cap (2 s), so only
# the rail's floor can explain a wait this long.
RETRY_AFTER_SECONDS: Final = 3
SKEW_SECONDS: Final = 300
# One relayer per database timeout, set for every session it opens. The queue is locked
# longer than the first two: relayer-0's claims and completions hit statement_timeout.
# Relayer-1 asks for a 200 ms lock_timeout, but the outbox's functions bound their own lock
# waits (5 s, schema 0012): the caller's setting does not reach inside, so it waits the 2 s
# lock out and no lock timeout fires (tests/integration/test_hostile_sessions.py proves the
# 5 s bound). Relayer-2 waits the lock out and is stopped just before it goes: its
# statements then finish while it cannot send a COMMIT. The store sends the COMMIT with the
# statement, so no transaction is left open for idle_in_transaction_session_timeout to end
# (were one left open, the timeout would not end it either: a pipeline's closing flush
# request disarms it).
DB_TIMEOUTS: Final = (
    "-c statement_timeout=400",
    "-c lock_timeout=200",
    "-c idle_in_transaction_session_timeout=300",
)
QUEUE_LOCK_SECONDS: Final = 2.0
IDLE_STOP_SECONDS: Final = 1.0  # past relayer-2's idle timeout
# The server's log: each timeout, and for a canceled statement the statement's text.
TIMEOUT_MESSAGES: Final = {
    "canceling statement due to statement timeout": "statement_timeout",
    "canceling statement due to lock timeout": "lock_timeout",
    "terminating connection due to idle-in-transaction timeout": "idle_in_transaction",
}
LOG_RECORD: Final = re.compile(r"^\S+ \S+ \S+ \[(\d+)\] ([A-Z]+):  (.*)$")
# By function name in the statement's text: claim_outbox_batch (the previous release's claim)
# and claim_outbox_rails (schema 0013's rail-scoped claim) are both claims.
STATEMENT_KINDS: Final = {
    "claim_outbox_": "claim",
    "complete_outbox_attempt": "completion",
    "renew_outbox_lease": "renewal",
    "repair_expired_leases": "repair",
}
SKEW_TOLERANCE_SECONDS: Final = 30.0

# Relayer backends (pool and LISTEN) inside a transaction, cut as a failover would cut them.
TERMINATE_IN_TRANSACTION: LiteralString = """
SELECT count(*) FILTER (WHERE pg_catalog.pg_terminate_backend(pid))
FROM pg_catalog.pg_stat_activity
WHERE datname = current_database() AND application_name LIKE 'outbox-db%%'
  AND xact_start IS NOT NULL AND pid <> pg_catalog.pg_backend_pid()
"""
# Statements waiting for the queue lock for over a second: relayer-2's (and the repairer's),
# the other relayers' time out sooner.
LONG_WAITS: LiteralString = """
SELECT query FROM pg_catalog.pg_stat_activity
WHERE datname = current_database() AND application_name = 'outbox-db'
  AND wait_event_type = 'Lock' AND query_start < now() - interval '1 second'
"""
# Sessions waiting on their client inside a transaction for a while: the stopped relayer's.
OPEN_TRANSACTIONS: LiteralString = """
SELECT query FROM pg_catalog.pg_stat_activity
WHERE datname = current_database() AND application_name = 'outbox-db'
  AND state = 'idle in transaction' AND state_change < now() - interval '100 milliseconds'
"""
HELD_KEYS: LiteralString = (
    "SELECT idempotency_key FROM public.payment_outbox_pending WHERE claimed_by = %s"
)


@attrs.frozen(kw_only=True)
class Skew:
    """A process's clock skew, and the true wall time it was launched at."""

    seconds: int
    launched: float


@attrs.define
class Run:
    """One scenario's run in progress: what injectors act on and count into."""

    url: str
    rail_type: str
    items: int
    fleet: Fleet
    relayers: list[Process]
    rail_log: Path
    draw: random.Random
    lease_seconds: int
    server: EmbeddedServer | None
    skews: dict[str, Skew]  # the processes run with a skewed clock, by name
    server_log_from: int  # where this run's lines of the embedded server's log begin
    pooler: PgBouncer | None = None  # what the relayers connect through, if anything
    injected: int = 0
    observed: Counter[str] = attrs.Factory(Counter)  # what an injector saw happen
    restarts: int = 0
    _acted_keys: set[str] = attrs.Factory(set)
    _log_offset: int = 0

    def ended(self) -> int:
        """Items of the run with a terminal attempt (the status view's per-rail counts)."""
        return self._status()[1]

    def drained(self) -> bool:
        """Nothing of the run pending and every item ended."""
        pending, ended = self._status()
        return pending == 0 and ended == self.items

    def _status(self) -> tuple[int, int]:
        with OutboxStore.connect(self.url, role=Role.READONLY) as reader:
            rows = [row for row in reader.status() if row.rail_type == self.rail_type]
        if not rows:
            return 0, 0
        (row,) = rows
        return row.pending_count, row.dispatched_count + row.failed_count

    def victim(self) -> Process:
        """A running relayer, drawn from the seed, once it holds a lease the rail acted on.

        Gives up waiting after 5 s (the judgement then finds no redelivery).
        """
        victim = self.draw.choice(self.relayers)
        deadline = time.monotonic() + 5.0
        while not self._holds_acted_on_lease(victim) and time.monotonic() < deadline:
            time.sleep(0.005)
        return victim

    def _holds_acted_on_lease(self, relayer: Process) -> bool:
        """Whether `relayer` holds a lease on a key the rail has already received."""
        held = {key for (key,) in query_no_role(self.url, HELD_KEYS, [relayer.name])}
        return bool(held & self._received_keys())

    def _received_keys(self) -> set[str]:
        """Keys in the rail's request log, read incrementally (a partial line waits)."""
        with contextlib.suppress(FileNotFoundError), self.rail_log.open("rb") as log:
            log.seek(self._log_offset)
            chunk = log.read()
            complete = chunk.rfind(b"\n") + 1
            self._log_offset += complete
            for line in chunk[:complete].splitlines():
                self._acted_keys.add(json.loads(line)["idempotency_key"])
        return self._acted_keys

    def replace(self, relayer: Process) -> Process:
        """Start a new relayer with the same arguments in place of `relayer`, as a supervisor."""
        self.restarts += 1
        base = relayer.name.rsplit("-r", 1)[0]
        fresh = self.fleet.start(f"{base}-r{self.restarts}", *relayer.args)
        self.relayers[self.relayers.index(relayer)] = fresh
        return fresh


@attrs.frozen(kw_only=True)
class Outcome:
    """What the run left: the audit, the ledger, the signals, the processes' logs."""

    audit: DeliveryAudit
    ledger: list[LedgerAttempt]
    signals: Counter[str]
    unavailable_events: int
    faulted_requests: int


@attrs.frozen(kw_only=True)
class Scenario:
    """A fault and how to judge it; `inject` runs every poll while the queue drains."""

    name: str
    summary: str
    items: int  # at full size; --smoke runs a tenth
    latency: tuple[str, ...] = LATENCY
    rail_args: tuple[str, ...] = ()
    rail_timeout_seconds: float = 5.0
    lease_seconds: int = 10
    concurrency: int = 8  # sends in flight per relayer
    renew_leases: bool = True
    # Clock skew: the repairer and relayer-0 run this many seconds ahead, relayer-1 behind.
    skew_seconds: int = 0
    # PostgreSQL settings per relayer (libpq `options`), one relayer each (at least RELAYERS).
    session_settings: tuple[str, ...] = ()
    # It cuts the repairer's connections too: a repair may commit unheard, so the repair
    # signal may count fewer repairs than the ledger shows (never more).
    cuts_connections: bool = False
    needs_server: bool = False  # restarts the embedded server: not run on --url
    # The relayers' DATABASE_URL reaches the server through PgBouncer in transaction mode;
    # listen_direct also gives them the server's own URL for LISTEN.
    through_pgbouncer: bool = False
    listen_direct: bool = False
    # Duplicates the rail absorbs: True, some required; False, none allowed; None, either.
    redelivery: bool | None = None
    inject: Callable[[Run], None] = lambda _run: None
    judge: Callable[[Run, Outcome], list[str]] = lambda _run, _outcome: []
    # Faults the run caused that neither an injector nor the rail counted: (count, what).
    measure: Callable[[Run, Outcome], tuple[int, str]] = lambda _run, _outcome: (0, "")


@attrs.frozen(kw_only=True)
class Result:
    """A row of the table, and every problem found (none: the scenario passed)."""

    scenario: str
    items: int
    injected: int
    recovered: int
    absorbed: int
    lost: int
    double_terminal: int
    seconds: float
    problems: tuple[str, ...]
    note: str = ""  # what the faults column counts, where a scenario says

    @property
    def passed(self) -> bool:
        """Audit and judgement found nothing."""
        return not self.problems


def planned(run: Run, per_items: int) -> int:
    """How many times a scenario injects: one per `per_items` items, at least once."""
    return max(1, run.items // per_items)


def due(run: Run, count: int) -> bool:
    """Whether the next of `count` injections is due: they are spread over the drain."""
    return run.injected < count and run.ended() >= (run.injected + 1) * run.items // (count + 1)


def sigkill(run: Run) -> None:
    """SIGKILL a relayer holding leases the rail has acted on; restart it at once."""
    if not due(run, planned(run, 2000)):
        return
    victim = run.victim()
    run.fleet.kill(victim)
    run.injected += 1
    run.replace(victim)


def terminate_backends(run: Run) -> None:
    """pg_terminate_backend on relayer connections caught inside a transaction."""
    if not due(run, planned(run, 2000)):
        return
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline:
        ((terminated,),) = query_no_role(run.url, TERMINATE_IN_TRANSACTION)
        if terminated:
            run.injected += terminated
            return
        time.sleep(0.002)


def sigstop(run: Run) -> None:
    """SIGSTOP a relayer holding sends in flight past its lease and repair, then SIGCONT it."""
    if not due(run, planned(run, 500)):
        return
    victim = run.victim()
    victim.popen.send_signal(signal.SIGSTOP)
    run.injected += 1
    time.sleep(2 * run.lease_seconds + 1.5)  # expired and repaired by the repairer meanwhile
    victim.popen.send_signal(signal.SIGCONT)


def restart_postgres(run: Run) -> None:
    """Fast shutdown of the server (sessions cut, transactions rolled back), then start it."""
    if run.server is None or not due(run, planned(run, 1000)):
        return
    pid_file = run.server.data_dir / "postmaster.pid"
    postmaster = int(pid_file.read_text(encoding="utf-8").split()[0])
    os.kill(postmaster, signal.SIGINT)  # what `pg_ctl stop -m fast` sends
    while pid_file.exists():
        time.sleep(0.05)
    run.injected += 1
    time.sleep(1.0)  # the relayers find it down for a while, as in a real restart
    start(run.server.directory, durable=False)


def restart_pgbouncer(run: Run) -> None:
    """Stop PgBouncer (every relayer connection cut mid-whatever), then start it again."""
    if run.pooler is None or not due(run, planned(run, 1000)):
        return
    run.pooler.stop()
    run.injected += 1
    time.sleep(1.0)  # the relayers find it gone for a while, as in a redeploy of the pooler
    run.pooler.start()


def lock_the_queue(run: Run) -> None:
    """Lock the queue's writers out; relayer-2 is stopped just before the lock goes."""
    if not due(run, planned(run, 500)):
        return
    stopped = run.relayers[2]
    with queue_locked(run.url):
        time.sleep(QUEUE_LOCK_SECONDS)  # relayer-0 times out meanwhile, relayer-1 waits
        stopped.popen.send_signal(signal.SIGSTOP)
        for (query,) in query_no_role(run.url, LONG_WAITS):
            run.observed["waiting in " + _statement_kind(query)] += 1
    # The lock gone, relayer-2's statements finish while it is stopped.
    time.sleep(0.3)
    for (query,) in query_no_role(run.url, OPEN_TRANSACTIONS):
        run.observed["left open after " + _statement_kind(query)] += 1
    time.sleep(IDLE_STOP_SECONDS)
    stopped.popen.send_signal(signal.SIGCONT)
    run.injected += 1


def _statement_kind(text: str) -> str:
    return next((kind for name, kind in STATEMENT_KINDS.items() if name in text), "other")


def _timeouts_fired(run: Run) -> Counter[tuple[str, str]]:
    """(timeout, statement) for each timeout the server logged during the run.

    A canceled statement is named by the STATEMENT line that follows its ERROR; a session
    ended idle in a transaction was running no statement ("idle").
    """
    assert run.server is not None
    with (run.server.directory / "server.log").open("rb") as log:
        log.seek(run.server_log_from)
        lines = log.read().decode(errors="replace").splitlines()
    records: list[list[str]] = []  # [pid, level, message with its continuation lines]
    for line in lines:
        if record := LOG_RECORD.match(line):
            records.append(list(record.groups()))
        elif records:
            records[-1][2] += "\n" + line
    fired: Counter[tuple[str, str]] = Counter()
    pending: dict[str, str] = {}  # pid -> the timeout awaiting its STATEMENT line
    for pid, level, message in records:
        timeout = next((t for m, t in TIMEOUT_MESSAGES.items() if message.startswith(m)), None)
        if timeout == "idle_in_transaction":
            fired[timeout, "idle"] += 1
        elif timeout is not None:
            pending[pid] = timeout
        elif level == "STATEMENT" and pid in pending:
            fired[pending.pop(pid), _statement_kind(message)] += 1
    return fired


def _timeouts_measured(run: Run, _outcome: Outcome) -> tuple[int, str]:
    fired = _timeouts_fired(run)
    split = ", ".join(f"{timeout} in {kind} {n}" for (timeout, kind), n in sorted(fired.items()))
    stopped = ", ".join(f"{what} {n}" for what, n in sorted(run.observed.items()))
    note = f"{split or 'none'}; relayer-2 stopped: {stopped or 'nothing in flight'}"
    return sum(fired.values()), f"{run.injected} queue locks; timeouts: {note}"


def _timeouts_recovered(run: Run, outcome: Outcome) -> list[str]:
    """Statement timeouts hit claims and completions; no caller's lock_timeout; nothing open.

    Relayer-0 logged its timeout and went on; relayer-1's 200 ms lock_timeout never fired
    inside the outbox's functions; the relayer stopped mid-statement left no transaction
    open, and no session was ended idle in one.
    """
    fired = _timeouts_fired(run)
    problems = _no_signals(run, outcome)
    for kind in ("claim", "completion"):
        if not fired["statement_timeout", kind]:
            problems.append(f"no statement_timeout fired during a {kind}")
    if locks := sum(n for (timeout, _), n in fired.items() if timeout == "lock_timeout"):
        problems.append(f"a caller's lock_timeout fired {locks} times inside the functions")
    waited = run.observed["waiting in claim"] + run.observed["waiting in completion"]
    if not waited:
        problems.append("relayer-2 was never stopped with a claim or completion in flight")
    if left := sum(n for what, n in run.observed.items() if what.startswith("left open")):
        problems.append(f"{left} transactions left open by the stopped relayer")
    if idle := fired["idle_in_transaction", "idle"]:
        problems.append(f"{idle} sessions ended idle in a transaction")
    relayer_0 = run.relayers[0]
    if "[SQLSTATE 57014]" not in relayer_0.log.read_text(encoding="utf-8"):
        problems.append(f"{relayer_0.name} logged no database_unavailable with 57014")
    return problems


def _no_signals(_run: Run, outcome: Outcome) -> list[str]:
    moved = {name: count for name, count in outcome.signals.items() if count}
    return [f"signals moved without a fault: {moved}"] if moved else []


def _kills_repaired(run: Run, outcome: Outcome) -> list[str]:
    problems = []
    if run.injected < planned(run, 2000):
        problems.append(f"{run.injected} kills, {planned(run, 2000)} planned")
    if outcome.audit.lease_repairs == 0:
        problems.append("no lease of a killed relayer was repaired")
    return problems


def _connections_recovered(run: Run, outcome: Outcome) -> list[str]:
    problems = []
    if run.injected == 0:
        problems.append("no relayer connection was cut")
    if outcome.unavailable_events == 0:
        problems.append("no relayer logged database_unavailable after its connection was cut")
    return problems


def _pooler_restarts_recovered(run: Run, outcome: Outcome, *, wakeups_lost: bool) -> list[str]:
    """Connections recovered, and every relayer said (or not) that its wake-ups are lost."""
    problems = _connections_recovered(run, outcome)
    relayers = run.fleet.processes[1:]  # the repairer does not listen
    said = [p.name for p in relayers if WAKEUPS_LOST_EVENT in p.log.read_text(encoding="utf-8")]
    expected = [p.name for p in relayers] if wakeups_lost else []
    if said != expected:
        problems.append(f"wakeups_lost logged by {said or 'none'}, expected {expected or 'none'}")
    return problems


def _rail_faults_retried(_run: Run, outcome: Outcome) -> list[str]:
    # Every faulted request (503, dropped, timed out) is one RETRYABLE attempt, or FAILED
    # at the retry ceiling; every other answer is DISPATCHED.
    retried = sum(a.state in {AttemptState.RETRYABLE, AttemptState.FAILED} for a in outcome.ledger)
    problems = _no_signals(_run, outcome)
    if outcome.faulted_requests == 0:
        problems.append("the rail injected no fault")
    if retried != outcome.faulted_requests:
        problems.append(f"{retried} retried attempts for {outcome.faulted_requests} faults")
    return problems


def _retry_after_honoured(_run: Run, outcome: Outcome) -> list[str]:
    """Every throttled attempt's item was claimed again no sooner than the Retry-After.

    Both times are the database's: completed_at when the 429 was recorded, claimed_at when
    the next attempt's lease was taken.
    """
    attempts = {(a.outbox_id, a.attempt_no): a for a in outcome.ledger}
    throttled = [a for a in outcome.ledger if a.rail_code == "429"]
    waits = [
        (following.claimed_at - attempt.completed_at).total_seconds()
        for attempt in throttled
        if (following := attempts.get((attempt.outbox_id, attempt.attempt_no + 1)))
        and following.claimed_at is not None
    ]
    problems = _rail_faults_retried(_run, outcome)
    if not waits:
        problems.append("no throttled attempt was tried again: the rail answered no 429")
    if early := [wait for wait in waits if wait < RETRY_AFTER_SECONDS]:
        problems.append(
            f"{len(early)} of {len(waits)} throttled items claimed again before the "
            f"{RETRY_AFTER_SECONDS} s Retry-After (shortest wait {min(early):.2f} s)"
        )
    return problems


def _outlived_their_lease(run: Run, outcome: Outcome) -> int:
    """Sends recorded with a latency beyond the lease: only a renewed lease can record them."""
    limit_ms = run.lease_seconds * 1000
    return sum(a.latency_ms is not None and a.latency_ms > limit_ms for a in outcome.ledger)


def _sends_past_the_lease(run: Run, outcome: Outcome) -> tuple[int, str]:
    outlived = _outlived_their_lease(run, outcome)
    return outlived, f"{outlived} sends outlived the {run.lease_seconds} s lease, renewed"


def _lapsed_leases(_run: Run, outcome: Outcome) -> tuple[int, str]:
    lapsed = outcome.audit.lease_repairs
    lost = outcome.signals["lease_lost_count"]
    return lapsed, f"{lapsed} leases lapsed and repaired; {lost} late outcomes refused (P7002)"


def _renewal_kept_leases(run: Run, outcome: Outcome) -> list[str]:
    problems = _no_signals(run, outcome)
    if _outlived_their_lease(run, outcome) == 0:
        problems.append(f"no send outlived the {run.lease_seconds} s lease: renewal went untested")
    return problems


def _lapsed_leases_repaired(run: Run, outcome: Outcome) -> list[str]:
    problems = []
    if outlived := _outlived_their_lease(run, outcome):
        problems.append(f"{outlived} sends recorded past a lease nobody renewed")
    if outcome.audit.lease_repairs == 0:
        problems.append("no lapsed lease was repaired")
    if outcome.signals["lease_lost_count"] == 0:
        problems.append("no late completion was refused as a lost lease")
    return problems


def _skew_seen(run: Run) -> dict[str, float]:
    """Each skewed process's clock minus the true time, from the stamp of its first log line.

    NaN when the log has no stamped line (the process did not start).
    """
    seen = {}
    for process in run.fleet.processes:
        if (skew := run.skews.get(process.name)) is None:
            continue
        stamped = (json.loads(line) for line in process.log.read_text().splitlines())
        first = next((line["timestamp"] for line in stamped if "timestamp" in line), None)
        clock = datetime.fromisoformat(first).timestamp() if first else math.nan
        seen[process.name] = clock - skew.launched
    return seen


def _skewed_clocks(run: Run, _outcome: Outcome) -> tuple[int, str]:
    seen = ", ".join(f"{name} {offset:+.1f} s" for name, offset in _skew_seen(run).items())
    return len(run.skews), f"clocks skewed, as their first log lines show: {seen}"


def _database_clock_decided(run: Run, outcome: Outcome) -> list[str]:
    """The skew applied, and changed nothing: no signal, no repair, ledger on the db clock."""
    problems = _no_signals(run, outcome)
    for name, offset in _skew_seen(run).items():
        # Start-up takes a few seconds at most; a skew not applied reads about 0.
        if not abs(offset - run.skews[name].seconds) < SKEW_TOLERANCE_SECONDS:
            problems.append(f"{name} ran {offset:+.1f} s off, not {run.skews[name].seconds:+d} s")
    earliest = min(skew.launched for skew in run.skews.values()) - SKEW_TOLERANCE_SECONDS
    latest = time.time() + SKEW_TOLERANCE_SECONDS
    stamps = [a.completed_at.timestamp() for a in outcome.ledger]
    stamps += [a.claimed_at.timestamp() for a in outcome.ledger if a.claimed_at is not None]
    if off := [stamp for stamp in stamps if not earliest <= stamp <= latest]:
        problems.append(f"{len(off)} ledger times off the true clock: a relayer's clock leaked")
    return problems


def _stale_completions_refused(run: Run, outcome: Outcome) -> list[str]:
    problems = []
    if outcome.signals["lease_lost_count"] < run.injected:
        problems.append(
            f"lease_lost_count {outcome.signals['lease_lost_count']} for {run.injected} pauses"
        )
    if outcome.audit.lease_repairs == 0:
        problems.append("no lease of the paused relayer was repaired")
    return problems


SCENARIOS: Final = (
    Scenario(
        name="baseline",
        summary="no faults: zero duplicates, no signal",
        items=20_000,
        redelivery=False,
        judge=_no_signals,
    ),
    Scenario(
        name="sigkill",
        summary="SIGKILL a relayer holding acted-on leases, once per 2,000 items; restart it",
        items=20_000,
        lease_seconds=2,
        # An acted-on lease stays unanswered 150 ms or more: the kill lands while it is held,
        # even on a loaded machine where finding the victim takes tens of milliseconds.
        latency=SLOW_RAIL,
        redelivery=True,
        inject=sigkill,
        judge=_kills_repaired,
    ),
    Scenario(
        name="terminate",
        summary="pg_terminate_backend of relayer connections mid-transaction, per 2,000 items",
        items=20_000,
        cuts_connections=True,
        inject=terminate_backends,
        judge=_connections_recovered,
    ),
    Scenario(
        name="rail",
        summary="rail: 30% 503, 5% dropped after acting, 2% answered after the 1 s timeout, "
        f"5% 429 with Retry-After {RETRY_AFTER_SECONDS} s",
        items=2_000,
        rail_args=(
            *("--fail-rate", "0.3", "--drop-rate", "0.05", "--timeout-rate", "0.02"),
            *("--throttle-rate", "0.05", "--retry-after", str(RETRY_AFTER_SECONDS)),
        ),
        rail_timeout_seconds=1.0,
        redelivery=True,
        judge=_retry_after_honoured,
    ),
    Scenario(
        name="sigstop",
        summary="SIGSTOP a relayer past its 2 s lease, SIGCONT after repair, per 500 items",
        items=1_500,
        latency=SLOW_RAIL,
        lease_seconds=2,
        redelivery=True,
        inject=sigstop,
        judge=_stale_completions_refused,
    ),
    Scenario(
        name="slow-rail",
        summary="rail answers in 1-4 s, lease 3 s: renewal keeps every lease, nothing repaired",
        items=1_000,
        latency=SLOWER_THAN_LEASE,
        rail_timeout_seconds=10.0,  # well past the slowest answer: no send times out
        lease_seconds=3,
        concurrency=64,
        redelivery=False,
        judge=_renewal_kept_leases,
        measure=_sends_past_the_lease,
    ),
    Scenario(
        name="slow-rail-no-renewal",
        summary="the same rail, OUTBOX_RENEW_LEASES=false: lapsed leases repaired, re-sent",
        items=1_000,
        latency=SLOWER_THAN_LEASE,
        rail_timeout_seconds=10.0,  # well past the slowest answer: no send times out
        lease_seconds=3,
        concurrency=64,
        renew_leases=False,
        redelivery=True,
        judge=_lapsed_leases_repaired,
        measure=_lapsed_leases,
    ),
    Scenario(
        name="skew",
        summary=f"relayer clocks {SKEW_SECONDS} s ahead and behind: the same as the baseline",
        items=2_000,
        skew_seconds=SKEW_SECONDS,
        redelivery=False,
        judge=_database_clock_decided,
        measure=_skewed_clocks,
    ),
    Scenario(
        name="timeouts",
        summary="the queue locked 2 s per 500 items: statement, lock and idle-in-transaction "
        "timeouts",
        items=1_500,
        latency=SLOW_RAIL,
        needs_server=True,
        session_settings=DB_TIMEOUTS,
        inject=lock_the_queue,
        judge=_timeouts_recovered,
        measure=_timeouts_measured,
    ),
    Scenario(
        name="restart",
        summary="PostgreSQL fast shutdown and start under load, per 1,000 items",
        items=2_000,
        latency=SLOW_RAIL,
        cuts_connections=True,
        needs_server=True,
        inject=restart_postgres,
        judge=_connections_recovered,
    ),
    Scenario(
        name="pgbouncer",
        summary="relayers through PgBouncer (transaction mode), restarted under load per "
        "1,000 items: wake-ups lost and said so, polling",
        items=2_000,
        latency=SLOW_RAIL,
        cuts_connections=True,
        through_pgbouncer=True,
        inject=restart_pgbouncer,
        judge=functools.partial(_pooler_restarts_recovered, wakeups_lost=True),
    ),
    Scenario(
        name="pgbouncer-listen",
        summary="the same, with a direct URL for LISTEN: wake-ups kept",
        items=2_000,
        latency=SLOW_RAIL,
        cuts_connections=True,
        through_pgbouncer=True,
        listen_direct=True,
        inject=restart_pgbouncer,
        judge=functools.partial(_pooler_restarts_recovered, wakeups_lost=False),
    ),
)
BY_NAME: Final = {scenario.name: scenario for scenario in SCENARIOS}


def run_scenario(  # noqa: PLR0913 - the run's own parameters, keyword-only
    scenario: Scenario,
    url: str,
    *,
    items: int,
    seed: int,
    out: Path,
    server: EmbeddedServer | None = None,
) -> Result:
    """Enqueue `items`, relay them under the scenario's faults, audit and judge the run."""
    folder = out / scenario.name
    folder.mkdir(parents=True, exist_ok=True)
    rail_type = f"faults-{scenario.name}-{seed}-{time.time_ns() % 10**9}"
    started = time.monotonic()
    keys = _enqueue(url, rail_type, items)
    with _rail_sim(scenario, seed, folder) as (rail_url, rail_log):
        rails_file = folder / "rails.toml"
        rails_file.write_text(
            f'[rails."{rail_type}"]\nurl = "{rail_url}"\n'
            f"timeout_seconds = {scenario.rail_timeout_seconds}\n"
        )
        with (
            _pooler(scenario, url) as pooler,
            _fleet(folder, _settings(url, scenario, pooler)) as fleet,
        ):
            relay_url = url if pooler is None else pooler.url(url)
            relayers, skews = _start(fleet, scenario, relay_url, rails_file)
            draw = random.Random(seed)  # noqa: S311 - a fault schedule, not security
            run = Run(
                url,
                rail_type,
                items,
                fleet,
                relayers,
                rail_log,
                draw,
                scenario.lease_seconds,
                server,
                skews,
                _server_log_size(server),
                pooler,
            )
            problems = _drain(run, scenario)
            try:
                fleet.stop()
            except click.ClickException as error:
                problems.append(error.message)
    requests = read_request_log(rail_log)
    with OutboxStore.connect(url, role=Role.READONLY) as reader:
        ledger = reader.ledger(rail_type)
    outcome = Outcome(
        audit=audit_delivery(keys, ledger, requests),
        ledger=ledger,
        signals=fleet.read_signals(),
        unavailable_events=sum(
            p.log.read_text(encoding="utf-8").count(UNAVAILABLE_EVENT) for p in fleet.processes
        ),
        faulted_requests=sum(request.fault is not None for request in requests),
    )
    problems += _judge(scenario, run, outcome)
    return _result(scenario, run, outcome, time.monotonic() - started, problems)


def _start(
    fleet: Fleet, scenario: Scenario, url: str, rails_file: Path
) -> tuple[list[Process], dict[str, Skew]]:
    """The repairer and the relayers; with a skew, the repairer and even relayers run ahead.

    With session settings, relayer n connects with the n-th as libpq `options`.
    """
    skews: dict[str, Skew] = {}

    def start(name: str, skew: int, *args: str) -> Process:
        if not skew:
            return fleet.start(name, *args)
        skews[name] = Skew(seconds=skew, launched=time.time())
        launcher = (sys.executable, "-m", "fault_matrix.skewed", str(skew))
        return fleet.start(name, *args, program=launcher)

    ahead = scenario.skew_seconds
    start("repairer", ahead, "--no-relay", "--repair-interval", "0.5")
    concurrency = str(scenario.concurrency)
    relay = ("--no-repair", "--rails-file", str(rails_file), "--concurrency", concurrency)
    relayers = []
    for n in range(max(RELAYERS, len(scenario.session_settings))):
        args = [*relay, "--batch-size", "16"]
        if n < len(scenario.session_settings):
            args += ["--database-url", _with_options(url, scenario.session_settings[n])]
        relayers.append(start(f"relayer-{n}", -ahead if n % 2 else ahead, *args))
    return relayers, skews


def _with_options(url: str, options: str) -> str:
    """`url` with libpq's `options` parameter: settings for every session it opens."""
    return f"{url}{'&' if '?' in url else '?'}options={urllib.parse.quote(options)}"


def _server_log_size(server: EmbeddedServer | None) -> int:
    return (server.directory / "server.log").stat().st_size if server is not None else 0


def _drain(run: Run, scenario: Scenario) -> list[str]:
    """Inject until every item ended; a process that died on its own is a problem."""
    seconds = max(120.0, run.items / 50)
    deadline = time.monotonic() + seconds
    while not run.drained():
        scenario.inject(run)
        watched = [run.fleet.processes[0], *run.relayers]  # the repairer and live relayers
        if dead := [p for p in watched if p.popen.poll() is not None]:
            return [f"{dead[0].name} exited {dead[0].popen.returncode}: see {dead[0].log}"]
        if time.monotonic() > deadline:
            return [f"the queue did not drain within {seconds:g} s"]
        time.sleep(POLL_SECONDS)
    return []


def _judge(scenario: Scenario, run: Run, outcome: Outcome) -> list[str]:
    """The audit's problems, the redelivery expectation, the repair signal, the scenario's own."""
    problems = list(outcome.audit.problems)
    absorbed = outcome.audit.absorbed
    if scenario.redelivery and absorbed == 0:
        problems.append("no duplicate absorbed by the rail: the fault caused no redelivery")
    if scenario.redelivery is False and absorbed:
        problems.append(f"{absorbed} duplicates absorbed by the rail where none may be")
    # The repairer is never killed: its signal counts each lease repair the ledger shows.
    repaired = outcome.signals["repair_requeued_count"]
    ledger_repairs = outcome.audit.lease_repairs
    if repaired > ledger_repairs or (repaired < ledger_repairs and not scenario.cuts_connections):
        problems.append(f"repair signal {repaired}, ledger {outcome.audit.lease_repairs}")
    if any(a.state is AttemptState.DISPATCHING for a in outcome.ledger):
        problems.append("a DISPATCHING row was written")
    return problems + scenario.judge(run, outcome)


def _result(
    scenario: Scenario, run: Run, outcome: Outcome, seconds: float, problems: list[str]
) -> Result:
    terminal: Counter[UUID] = Counter()
    tries: Counter[UUID] = Counter()
    measured, note = scenario.measure(run, outcome)
    for attempt in outcome.ledger:
        tries[attempt.outbox_id] += 1
        terminal[attempt.outbox_id] += attempt.state in {
            AttemptState.DISPATCHED,
            AttemptState.FAILED,
        }
    return Result(
        scenario=scenario.name,
        items=run.items,
        injected=run.injected + outcome.faulted_requests + measured,
        recovered=sum(1 for i, n in tries.items() if n > 1 and terminal[i] == 1),
        absorbed=outcome.audit.absorbed,
        lost=run.items - sum(1 for n in terminal.values() if n),
        double_terminal=sum(1 for n in terminal.values() if n > 1),
        seconds=seconds,
        problems=tuple(problems),
        note=note,
    )


def _enqueue(url: str, rail_type: str, items: int) -> dict[UUID, str]:
    """`items` new items on `rail_type` over 50 participants: {outbox_id: idempotency_key}."""
    keys: dict[UUID, str] = {}
    with OutboxStore.connect(url, role=Role.EXECUTOR) as store:
        for start in range(0, items, 1000):
            requests = [
                EnqueueRequest(
                    instruction_id=f"{rail_type}-ins-{n}",
                    participant_id=f"{rail_type}-bank-{n % 50}",
                    idempotency_key=f"{rail_type}-key-{n}",
                    rail_type=rail_type,
                    payload={"amount": f"{n % 997 + 1}.00", "currency": "EUR", "n": n},
                )
                for n in range(start, min(start + 1000, items))
            ]
            for request, result in zip(requests, store.enqueue_many(requests), strict=True):
                keys[result.outbox_id] = request.idempotency_key
    return keys


@contextlib.contextmanager
def _pooler(scenario: Scenario, url: str) -> Iterator[PgBouncer | None]:
    """PgBouncer in front of `url` for a scenario that runs through one, else None."""
    if not scenario.through_pgbouncer:
        yield None
        return
    with pgbouncer(url) as bouncer:
        yield bouncer


def _settings(url: str, scenario: Scenario, pooler: PgBouncer | None) -> dict[str, str]:
    """The relayers' environment: ours, minus outbox settings, plus the scenario's."""
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(("LEASE_", "OUTBOX_"))}
    listen = {"OUTBOX_LISTEN_DATABASE_URL": url} if scenario.listen_direct else {}
    return (
        inherited
        | listen
        | {
            "DATABASE_URL": url if pooler is None else pooler.url(url),
            "LEASE_SECONDS": str(scenario.lease_seconds),
            "OUTBOX_RETRY_BASE_SECONDS": "1",
            "OUTBOX_RETRY_CAP_SECONDS": "2",
            "OUTBOX_POLL_INTERVAL_SECONDS": "0.2",
            "OUTBOX_RENEW_LEASES": str(scenario.renew_leases).lower(),
        }
    )


@contextlib.contextmanager
def _fleet(folder: Path, env: dict[str, str]) -> Iterator[Fleet]:
    """The demo's fleet of relayer processes; whatever still runs is killed on the way out."""
    fleet = Fleet(folder, env)
    try:
        yield fleet
    finally:
        for process in fleet.processes:
            if process.popen.poll() is None:
                process.popen.kill()
                process.popen.wait(timeout=STOP_SECONDS)


@contextlib.contextmanager
def _rail_sim(scenario: Scenario, seed: int, folder: Path) -> Iterator[tuple[str, Path]]:
    """`outbox-relayer rail-sim` as a process: (its payments URL, its request log)."""
    log = folder / "rail-requests.jsonl"
    log.unlink(missing_ok=True)
    command = [str(BIN / "outbox-relayer"), "rail-sim", *scenario.latency, *scenario.rail_args]
    command += ["--hang", "2", "--seed", str(seed), "--log", str(log)]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL) as popen:
        try:
            assert popen.stdout is not None
            url = popen.stdout.readline().decode().strip()  # the first line is its URL
            if not url.startswith("http"):
                msg = f"rail-sim did not start: {url!r}"
                raise RuntimeError(msg)
            yield f"{url}/payments", log
        finally:
            popen.send_signal(signal.SIGTERM)
            popen.wait(timeout=STOP_SECONDS)
