"""Relayer drain: a backlog of items over 1,000 participants, drained by 1 and by 2 processes.

Variants, each on a fresh clone holding the same backlog (built in the database by the
enqueue function over generate_series):
- raw_sql_lower_bound: processes that do, per batch of 100, one UPDATE ... FOR UPDATE SKIP
  LOCKED ... RETURNING, one INSERT ... SELECT unnest(...) of the ledger rows with their
  payloads, one DELETE and one commit: the same physical writes without leases, functions,
  checks or dispatch;
- relayer_noop: `outbox-relayer run --no-repair --rail rtp=noop` processes (nothing sent);
- relayer_rail_sim: the same, sending every item over HTTP on loopback to `outbox-relayer
  rail-sim` at zero latency.

The rate is items / (last completion - first claim), both read from the ledger, so process
start-up is not counted and every variant is timed the same way.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Final

import click
import psycopg
from psycopg.types.json import Jsonb

from bench_common import (
    LOWER_BOUND,
    Figure,
    bench_options,
    clone,
    durability,
    migrated_template,
    repeat,
    report,
    server,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

PARTICIPANTS: Final = 1_000
BATCH: Final = 100
CONCURRENCY: Final = 16
RELAYER: Final = str(Path(sys.executable).parent / "outbox-relayer")

BACKLOG: Final = """
SELECT count(*)
FROM generate_series(1, %(items)s) AS g,
    LATERAL public.enqueue_payment_outbox(
        %(run)s || '-' || g, 'participant-' || (g %% %(participants)s), %(run)s || '-' || g,
        'rtp',
        jsonb_build_object('amount', '10.00', 'currency', 'USD', 'creditor', 'acct-' || g)
    )
"""
WINDOW: Final = """
SELECT count(*), extract(epoch FROM max(completed_at) - min(claimed_at))
FROM public.payment_outbox_attempts
"""
RAW_CLAIM: Final = """
WITH due AS (
    SELECT outbox_id FROM public.payment_outbox_pending
    WHERE claimed_by IS NULL AND next_attempt_at <= now()
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


def raw_drainer(url: str, worker: str) -> None:
    """One lower-bound process: claim, record and delete 100 items per transaction."""
    with psycopg.connect(url) as connection:
        while True:
            with connection.transaction():
                rows = connection.execute(RAW_CLAIM, {"batch": BATCH, "worker": worker}).fetchall()
                if not rows:
                    return
                columns = list(zip(*rows, strict=True))
                names = ("ids", "instructions", "participants", "sequences", "keys", "rails")
                params: dict[str, object] = {
                    name: list(column) for name, column in zip(names, columns, strict=False)
                }
                params |= {"payloads": [Jsonb(payload) for payload in columns[6]], "worker": worker}
                connection.execute(RAW_RECORD, params)
                connection.execute(RAW_DELETE, {"ids": list(columns[0])})


def drain_raw(url: str, processes: int, _: str | None) -> None:
    """Run `processes` lower-bound drainers to the end."""
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


def drain_relayers(url: str, processes: int, target: str | None) -> None:
    """Run `processes` relayer processes until the queue is empty, then stop them."""
    rail = f"rtp={target or 'noop'}"
    env = os.environ | {"DATABASE_URL": url}
    command = [RELAYER, "run", "--no-repair", "--rail", rail, "--log-format", "json"]
    flags = ["--batch-size", str(BATCH), "--concurrency", str(CONCURRENCY)]
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
            wait_until_drained(url, relayers)
        finally:
            for relayer in relayers:
                relayer.send_signal(signal.SIGTERM)
    if failed := [r for r in relayers if r.returncode]:
        msg = f"a relayer exited {failed[0].returncode}"
        raise click.ClickException(msg)


def wait_until_drained(url: str, relayers: list[subprocess.Popen[bytes]]) -> None:
    """Poll the pending table until it is empty; fail fast if a relayer dies."""
    with psycopg.connect(url, autocommit=True) as connection:
        while True:
            row = connection.execute(
                "SELECT count(*) FROM public.payment_outbox_pending"
            ).fetchone()
            if row is not None and row[0] == 0:
                return
            if dead := [r for r in relayers if r.poll() is not None]:
                errors = dead[0].stderr.read().decode() if dead[0].stderr else ""
                msg = f"a relayer exited {dead[0].returncode} before the drain ended: {errors}"
                raise click.ClickException(msg)
            time.sleep(0.1)


def measure(
    admin_url: str,
    items: int,
    processes: int,
    drain: Callable[[str, int, str | None], None],
    target: str | None,
) -> float:
    """Items per second of one drain of a fresh backlog."""
    url = clone(admin_url)
    with psycopg.connect(url, autocommit=True) as connection:
        # Keys unique to the run: the simulator outlives a run and would absorb repeats.
        backlog = {"items": items, "participants": PARTICIPANTS, "run": uuid.uuid4().hex}
        connection.execute(BACKLOG, backlog)
        connection.execute("VACUUM ANALYZE public.payment_outbox_pending")
    drain(url, processes, target)
    with psycopg.connect(url) as connection:
        row = connection.execute(WINDOW).fetchone()
    if row is None or row[0] != items:
        msg = f"expected {items} ledger rows, found {row[0] if row else 0}"
        raise click.ClickException(msg)
    return items / float(row[1])


@contextlib.contextmanager
def rail_sim() -> Iterator[str]:
    """`outbox-relayer rail-sim` at zero latency and no faults; yields its payments URL."""
    with tempfile.TemporaryDirectory() as scratch:
        command = [RELAYER, "rail-sim", "--log", str(Path(scratch) / "requests.jsonl")]
        with subprocess.Popen(  # noqa: S603 - our own console script
            command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        ) as simulator:
            try:
                assert simulator.stdout is not None  # noqa: S101 - PIPE was asked for
                yield simulator.stdout.readline().strip() + "/payments"
            finally:
                simulator.send_signal(signal.SIGTERM)


@click.command()
@bench_options(default_items=20_000)
def main(url: str | None, items: int, runs: int) -> None:
    """Measure relayer drain (no-op rail and rail-sim; 1 and 2 processes) vs a raw-SQL bound."""
    with server(url) as admin_url, rail_sim() as simulator:
        settings = durability(admin_url)
        migrated_template(admin_url)
        figures = []
        for processes in (1, 2):
            name = f"relayer_drain_{processes}_process{'es' if processes > 1 else ''}"
            for variant, drain, target in (
                (LOWER_BOUND, drain_raw, None),
                ("relayer_noop", drain_relayers, None),
                ("relayer_rail_sim", drain_relayers, simulator),
            ):
                label = f"{name} {variant}"
                rates = repeat(label, runs, measure, admin_url, items, processes, drain, target)
                details = {"items": items, "batch_size": BATCH, "concurrency": CONCURRENCY}
                figures.append(Figure(name, variant, rates, details))
        report("relayer_drain", figures, settings=settings)


if __name__ == "__main__":
    main()
