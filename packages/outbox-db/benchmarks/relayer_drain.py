"""Relayer drain: a backlog over 1,000 participants, drained by 1, 2 and 4 processes.

Variants, each on a fresh clone holding the same backlog (built in the database by the
enqueue function over generate_series), their runs interleaved:
- raw_sql_lower_bound: processes that do, per batch of 100, one UPDATE ... FOR UPDATE SKIP
  LOCKED ... RETURNING, one INSERT ... SELECT unnest(...) of the ledger rows with their
  payloads, one DELETE and one commit: the same physical writes without leases, functions,
  checks or dispatch;
- relayer_noop: `outbox-relayer run --no-repair --rail rtp=noop` processes (nothing sent);
- relayer_noop_ordered: the same with rtp an ordered rail (schema 0009), so the backlog is
  1,000 lanes dispatched one item at a time each;
- relayer_rail_sim: the same, sending every item over HTTP on loopback to `outbox-relayer
  rail-sim` at zero latency (1 and 2 processes, as many items as the no-op drain, so both
  carry the same share of start-up); its bound is the lower of the no-op drain and
  rail-sim's own capacity (rail_sim_capacity.py, same run);
- relayer_rail_sim_50ms: the same at 1 process, rail-sim answering each POST 50 ms late:
  how much of a rail's latency the relayer's concurrency hides;
- pgqueuer_*: the peer, draining the same number of jobs with the same payloads in one
  process (pgqueuer_drain.py), in the bench session's environment only: with a no-op
  entrypoint at 1 process, and (pgqueuer_rail_sim_*) POSTing each job to the same rail-sim
  as the relayer does, over PGQUEUER_HTTP_GRID.

Every relayer runs with the default settings but its concurrency: the one the relayer
recommends (`outbox-relayer run --help`). The rate is items / (last completion -
first claim), both read from the ledger, so process start-up is not counted and every
variant is timed the same way (pgqueuer: its consumers' wall time). Each figure also carries
the database execution time per item (pg_stat_statements) and the relayers' peak RSS.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import math
import multiprocessing
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Final
from urllib.parse import quote, urlencode

import attrs
import click
import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg.types.json import Jsonb

from bench_common import (
    LOWER_BOUND,
    TEMPLATE,
    Figure,
    bench_options,
    clone,
    durability,
    enough_descriptors,
    interleaved,
    migrated_template,
    peak_rss_mb,
    report,
    server,
    statement_time,
    wal_written,
)
from outbox_relayer.config import RECOMMENDED_CONCURRENCY

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

PARTICIPANTS: Final = 1_000
BATCH: Final = 100
# What `outbox-relayer run --help` recommends: every relayer drain runs at it.
CONCURRENCY: Final = RECOMMENDED_CONCURRENCY
BIN: Final = Path(sys.executable).parent
RELAYER: Final = str(BIN / "outbox-relayer")
PGQUEUER_DRAIN: Final = Path(__file__).with_name("pgqueuer_drain.py")
# pgqueuer's own drain benchmark (5 consumers, batch 10), and the same at our batch size.
PGQUEUER_CONFIGS: Final = ((5, 10), (5, BATCH))
# pgqueuer over HTTP: (consumers, batch size, max_concurrent_tasks of each consumer, which
# pgqueuer requires to be at least twice the batch). Its best is the peer's figure: its own
# benchmark's shape with 100 and 1,000 POSTs in flight in all, the same at our batch, and
# the relayer's shape (one claimer, our batch, 1,000 in flight).
PGQUEUER_HTTP_GRID: Final = ((5, 10, 20), (5, 10, 200), (5, BATCH, 200), (1, BATCH, 1_000))
RAIL_LATENCY_MS: Final = 50  # relayer_rail_sim_50ms's

BACKLOG: Final = """
SELECT count(*)
FROM generate_series(1, %(items)s) AS g,
    LATERAL public.enqueue_payment_outbox(
        %(run)s || '-' || g, 'participant-' || (g %% %(participants)s), %(run)s || '-' || g,
        'rtp',
        jsonb_build_object('amount', '10.00', 'currency', 'USD', 'creditor', 'acct-' || g)
            || %(extra)s
    )
"""
ORDERED_RAIL: Final = "SELECT public.set_outbox_rail_ordering('rtp', true, 'ordered drain')"
WINDOW: Final = """
SELECT count(*) FILTER (WHERE state IN ('DISPATCHED', 'FAILED')), count(*),
    extract(epoch FROM max(completed_at) - min(claimed_at))
FROM public.payment_outbox_attempts
"""
RAW_CLAIM: Final = """
WITH due AS (
    SELECT outbox_id FROM public.payment_outbox_pending
    WHERE claimed_by IS NULL AND NOT awaiting_predecessor AND next_attempt_at <= now()
    ORDER BY next_attempt_at
    LIMIT %(batch)s
    FOR UPDATE SKIP LOCKED
)
UPDATE public.payment_outbox_pending AS p
SET claimed_by = %(worker)s, lease_token = gen_random_uuid(), claimed_at = now(),
    lease_expires_at = now() + interval '30 seconds'
FROM due
WHERE p.outbox_id = due.outbox_id
RETURNING p.outbox_id, p.instruction_id, p.participant_id, p.sequence_id, p.idempotency_key,
    p.rail_type, p.payload
"""
RAW_RECORD: Final = """
INSERT INTO public.payment_outbox_attempts (
    outbox_id, instruction_id, participant_id, sequence_id, idempotency_key, rail_type,
    payload, attempt_no, state, claimed_at, worker_id)
SELECT u.*, 1, 'DISPATCHED', now(), %(worker)s
FROM unnest(%(ids)s::uuid[], %(instructions)s::text[], %(participants)s::text[],
    %(sequences)s::bigint[], %(keys)s::text[], %(rails)s::text[], %(payloads)s::jsonb[]) AS u
"""
RAW_DELETE: Final = "DELETE FROM public.payment_outbox_pending WHERE outbox_id = ANY(%(ids)s)"
RAW_ARRAYS: Final = ("ids", "instructions", "participants", "sequences", "keys", "rails")


def raw_drainer(url: str, worker: str) -> None:
    """One lower-bound process: claim, record and delete 100 items per transaction."""
    with psycopg.connect(url) as connection:
        while True:
            with connection.transaction():
                rows = connection.execute(RAW_CLAIM, {"batch": BATCH, "worker": worker}).fetchall()
                if not rows:
                    return
                columns = list(zip(*rows, strict=True))
                params: dict[str, object] = dict(zip(RAW_ARRAYS, map(list, columns), strict=False))
                params |= {"payloads": [Jsonb(payload) for payload in columns[6]], "worker": worker}
                connection.execute(RAW_RECORD, params)
                connection.execute(RAW_DELETE, {"ids": [row[0] for row in rows]})


def drain_raw(url: str, processes: int, _concurrency: int) -> float:
    """Run `processes` lower-bound drainers to the end; no peak RSS to report (0)."""
    workers = [
        multiprocessing.Process(target=raw_drainer, args=(url, f"raw-{n}"))
        for n in range(processes)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    if any(worker.exitcode for worker in workers):
        msg = "a lower-bound drainer failed"
        raise click.ClickException(msg)
    return 0.0


def drain_relayers(url: str, processes: int, target: str | None, concurrency: int) -> float:
    """Run `processes` relayers until the queue is empty, stop them; their peak RSS (MiB)."""
    rail = ["--rail", f"rtp={target or 'noop'}", "--concurrency", str(concurrency)]
    with relayers_running(url, processes, rail) as relayers:
        wait_until_drained(url, relayers)
        return max(peak_rss_mb(relayer.pid) for relayer in relayers)


@contextlib.contextmanager
def relayers_running(
    url: str, processes: int, flags: list[str]
) -> Iterator[list[subprocess.Popen[bytes]]]:
    """`processes` relayers (`outbox-relayer run --no-repair`, batch 100, plus `flags`).

    Stopped with SIGTERM when the block ends; a relayer that then exits non-zero fails the run.
    """
    env = os.environ | {"DATABASE_URL": url}
    command = [RELAYER, "run", "--no-repair", "--log-format", "json", "--batch-size", str(BATCH)]
    with contextlib.ExitStack() as stack:
        relayers = [
            stack.enter_context(
                subprocess.Popen(  # noqa: S603 - our own console script
                    [*command, *flags, "--worker-id", f"bench-{n}"],
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE,
                )
            )
            for n in range(processes)
        ]
        try:
            yield relayers
        finally:
            for relayer in relayers:
                relayer.send_signal(signal.SIGTERM)
    # Killed by the SIGTERM itself: it arrived before the relayer set its handler, i.e. the
    # others drained the backlog while it was still starting (a loaded host); it did nothing.
    if failed := [r for r in relayers if r.returncode not in {0, -signal.SIGTERM}]:
        msg = f"a relayer exited {failed[0].returncode}"
        raise click.ClickException(msg)


def wait_until_drained(
    url: str,
    relayers: list[subprocess.Popen[bytes]],
    rail: str | None = None,
    seconds: float = math.inf,
) -> None:
    """Poll the pending table until no item (of `rail`) is left or `seconds` have passed.

    Fails fast if a relayer dies.
    """
    deadline = time.monotonic() + seconds
    with psycopg.connect(url, autocommit=True) as connection:
        while time.monotonic() < deadline:
            row = connection.execute(
                "SELECT count(*) FROM public.payment_outbox_pending"
                " WHERE %(rail)s::text IS NULL OR rail_type = %(rail)s",
                {"rail": rail},
            ).fetchone()
            if row is not None and row[0] == 0:
                return
            if dead := [r for r in relayers if r.poll() is not None]:
                errors = dead[0].stderr.read().decode() if dead[0].stderr else ""
                msg = f"a relayer exited {dead[0].returncode} before the drain ended: {errors}"
                raise click.ClickException(msg)
            time.sleep(0.1)


@attrs.define
class Drain:
    """One variant of a figure: how it drains, and what each run cost besides its rate."""

    admin_url: str
    items: int
    processes: int
    drain: Callable[[str, int, int], float]  # (url, processes, concurrency): peak RSS or 0
    ordered: bool = False  # the backlog's rail is an ordered one
    concurrency: int = CONCURRENCY  # a relayer's sends at once
    payload_extra: dict[str, str] = attrs.field(factory=dict)  # added to each item's payload
    template: str = TEMPLATE  # the database each run's clone is made from
    url: str = ""  # the last run's clone, left as it drained (its ledger, for a reader)
    db_ms_per_item: list[float] = attrs.field(factory=list)
    peak_rss_mb: list[float] = attrs.field(factory=list)
    retried: list[int] = attrs.field(factory=list)  # attempts beyond one per item
    wal_bytes_per_item: list[float] = attrs.field(factory=list)

    def measure(self) -> float:
        """Items per second of one drain of a fresh backlog."""
        url = self.url = clone(self.admin_url, self.template)
        with psycopg.connect(url, autocommit=True) as connection:
            if self.ordered:
                connection.execute(ORDERED_RAIL)
            # Keys unique to the run: the simulator outlives a run and would absorb repeats.
            backlog = {
                "items": self.items,
                "participants": PARTICIPANTS,
                "run": uuid.uuid4().hex,
                "extra": Jsonb(self.payload_extra),
            }
            connection.execute(BACKLOG, backlog)
            connection.execute("VACUUM ANALYZE public.payment_outbox_pending")
        with statement_time(self.admin_url, url) as database, wal_written(url) as wal:
            rss = self.drain(url, self.processes, self.concurrency)
        with psycopg.connect(url) as connection:
            row = connection.execute(WINDOW).fetchone()
        if row is None or row[0] != self.items:
            msg = f"expected {self.items} terminal attempts, found {row[0] if row else 0}"
            raise click.ClickException(msg)
        self.retried.append(row[1] - row[0])
        self.wal_bytes_per_item.append(wal["bytes"] / self.items)
        if database:
            self.db_ms_per_item.append(database["ms"] / self.items)
        if rss:
            self.peak_rss_mb.append(rss)
        return self.items / float(row[2])

    def details(self) -> dict[str, object]:
        """What the figure reports besides its rates."""
        details: dict[str, object] = {"items": self.items, "processes": self.processes}
        if self.ordered:
            details["ordered_lanes"] = PARTICIPANTS
        details["retried_attempts"] = sum(self.retried)
        details["wal_bytes_per_item"] = round(statistics.median(self.wal_bytes_per_item))
        if self.db_ms_per_item:
            details["db_ms_per_item"] = round(statistics.median(self.db_ms_per_item), 4)
        if self.peak_rss_mb:
            details |= {"peak_rss_mb": round(max(self.peak_rss_mb), 1)}
            details |= {"batch_size": BATCH, "concurrency": self.concurrency}
        return details


@attrs.define
class PeerDrain:
    """pgqueuer draining the same jobs in one process, on a database of its own.

    `rail`: where each job is POSTed (None: nowhere, a no-op entrypoint); `max_tasks`: its
    consumers' max_concurrent_tasks (0: unlimited, pgqueuer's default).
    """

    admin_url: str
    items: int
    consumers: int
    batch_size: int
    max_tasks: int = 0
    rail: str | None = None
    settings: dict[str, object] = attrs.field(factory=dict)

    def measure(self) -> float:
        """Jobs per second of one pgqueuer drain."""
        url = as_uri(clone(self.admin_url, "template0", "outbox_bench_pgqueuer"))
        run_peer(str(BIN / "pgq"), "--pg-dsn", url, "install")
        flags = ["--consumers", str(self.consumers), "--batch-size", str(self.batch_size)]
        flags += ["--max-concurrent-tasks", str(self.max_tasks)]
        flags += ["--post-to", self.rail] if self.rail else []
        drained = run_peer(
            sys.executable, str(PGQUEUER_DRAIN), "--url", url, "--items", str(self.items), *flags
        )
        result = json.loads(drained.strip().splitlines()[-1])
        self.settings = result["settings"]
        return float(result["rate"])

    def details(self) -> dict[str, object]:
        """The peer's settings, printed with its figures."""
        return {"items": self.items, "processes": 1, "pgqueuer": self.settings}


def run_peer(*command: str) -> str:
    """Run one of pgqueuer's steps; its stdout, or its stderr in the error."""
    done = subprocess.run(command, check=False, capture_output=True, text=True)  # noqa: S603
    if done.returncode:
        step = " ".join(Path(part).name for part in command[:2])
        msg = f"{step} failed: {done.stderr.strip()[-2000:]}"
        raise click.ClickException(msg)
    return done.stdout


def as_uri(conninfo: str) -> str:
    """A libpq connection string as a postgresql:// URI (the only form asyncpg reads)."""
    parts = conninfo_to_dict(conninfo)
    user = quote(str(parts.pop("user", "")), safe="")
    if password := parts.pop("password", None):
        user += ":" + quote(str(password), safe="")
    dbname = quote(str(parts.pop("dbname", "")), safe="")
    query = urlencode({key: str(value) for key, value in parts.items()})
    return f"postgresql://{user}@/{dbname}?{query}"


@attrs.frozen
class RailSim:
    """A running `outbox-relayer rail-sim`: where it takes payments, and its request log."""

    payments_url: str
    log: Path


@contextlib.contextmanager
def rail_sim(*flags: str) -> Iterator[RailSim]:
    """`outbox-relayer rail-sim` (no faults; plus `flags`) in a process, until the block ends."""
    with tempfile.TemporaryDirectory() as scratch:
        log = Path(scratch) / "requests.jsonl"
        command = [RELAYER, "rail-sim", "--log", str(log), *flags]
        with subprocess.Popen(  # noqa: S603 - our own console script
            command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        ) as simulator:
            try:
                assert simulator.stdout is not None  # noqa: S101 - PIPE was asked for
                yield RailSim(simulator.stdout.readline().strip() + "/payments", log)
            finally:
                simulator.send_signal(signal.SIGTERM)


@attrs.frozen
class Rails:
    """The rail-sims of a run: one answering at once, one RAIL_LATENCY_MS late."""

    at_once: str
    late: str


def variants(
    admin_url: str, items: int, processes: int, rails: Rails
) -> list[tuple[str, Drain | PeerDrain]]:
    """The variants measured with `processes` processes."""
    found: list[tuple[str, Drain | PeerDrain]] = [
        (LOWER_BOUND, Drain(admin_url, items, processes, drain_raw)),
        ("relayer_noop", Drain(admin_url, items, processes, relayer_to(None))),
        (
            "relayer_noop_ordered",
            Drain(admin_url, items, processes, relayer_to(None), ordered=True),
        ),
    ]
    if processes <= 2:  # noqa: PLR2004 - the HTTP drain at 1 and 2 processes only: a short bench
        found.append(
            ("relayer_rail_sim", Drain(admin_url, items, processes, relayer_to(rails.at_once)))
        )
    if processes == 1:
        late = Drain(admin_url, items, processes, relayer_to(rails.late))
        found.append((f"relayer_rail_sim_{RAIL_LATENCY_MS}ms", late))
    if processes == 1 and importlib.util.find_spec("pgqueuer") is not None:
        found += peers(admin_url, items, rails.at_once)
    return found


def peers(admin_url: str, items: int, rail: str) -> list[tuple[str, PeerDrain]]:
    """The peer: a no-op entrypoint, and POSTing to `rail` over PGQUEUER_HTTP_GRID."""
    noop = [
        (f"pgqueuer_{consumers}x{batch}", PeerDrain(admin_url, items, consumers, batch))
        for consumers, batch in PGQUEUER_CONFIGS
    ]
    http = [
        (
            f"pgqueuer_rail_sim_{consumers}x{batch}x{tasks}",
            PeerDrain(admin_url, items, consumers, batch, tasks, rail),
        )
        for consumers, batch, tasks in PGQUEUER_HTTP_GRID
    ]
    return noop + http


def relayer_to(target: str | None) -> Callable[[str, int, int], float]:
    """A drain by relayer processes sending to `target` (None: the no-op rail)."""
    return lambda url, processes, concurrency: drain_relayers(url, processes, target, concurrency)


@click.command()
@bench_options(default_items=20_000)
def main(url: str | None, items: int, runs: int) -> None:
    """Measure relayer drain (no-op rail, rail-sim, pgqueuer; 1, 2, 4 processes) vs a bound."""
    if importlib.util.find_spec("pgqueuer") is None:
        click.echo("pgqueuer is not installed here: its figures are skipped (nox -s bench has it)")
    # One rail-sim holds the connections of two relayers (or of pgqueuer's busiest grid point).
    enough_descriptors(2 * max(CONCURRENCY, *(c * t for c, _, t in PGQUEUER_HTTP_GRID)))
    with (
        server(url) as admin_url,
        rail_sim() as at_once,
        rail_sim("--latency-ms", str(RAIL_LATENCY_MS)) as late,
    ):
        settings = durability(admin_url)
        migrated_template(admin_url)
        rails = Rails(at_once.payments_url, late.payments_url)
        figures = []
        for processes in (1, 2, 4):
            name = f"relayer_drain_{processes}_process{'es' if processes > 1 else ''}"
            measured = variants(admin_url, items, processes, rails)
            values = interleaved(
                runs, [(f"{name} {label}", drain.measure) for label, drain in measured]
            )
            for label, drain in measured:
                figures.append(Figure(name, label, values[f"{name} {label}"], drain.details()))
        report("relayer_drain", figures, settings=settings)


if __name__ == "__main__":
    main()
