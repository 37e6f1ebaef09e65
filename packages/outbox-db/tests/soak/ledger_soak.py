"""Soak: millions of attempts through monthly archive cycles; the hot ledger stays flat.

A database made to look CYCLES + 3 months old (outbox_db.testonly.age_ledger) goes through
CYCLES cycles. Each puts a batch of items in the next month (as if enqueued then), relays them
through the outbox's own functions (one in five answered RETRYABLE once, then DISPATCHED),
and archives with --drop the month two behind it, so the hot ledger holds two filled months
after every cycle. The checkpoint exporter seals the digests each cycle, before the archive
run (a month archived unsealed is a finding). Printed per
cycle: attempts so far, the hot ledger's size, the row digests' size (kept for life), the
archive's size, and how long the archive run took.

At the end every attempt made must be in the hot ledger or in an archive file, and the
exporter must verify them all, live and archived, against its signed checkpoints; the hot
ledger's size in the last cycle must be within 1.5x of the third's. Any other outcome exits 1.
Sizes, not times, are judged: `nox -s soak` (`-- --smoke` in CI).
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Final

import attrs
import click
import psycopg

from outbox_db import AttemptState, OutboxStore, Outcome, Role, embedded, migrate
from outbox_db.archiving import ArchivePolicy, archive_ledger
from outbox_db.testonly import age_ledger, query_no_role
from outbox_db.testonly.factories import make_request
from outbox_evidence.exporter import CheckpointStore, run_once
from outbox_evidence.signing import SigningKey

REPORT: Final = Path("reports/soak/ledger_soak.jsonl")
KEEP: Final = 3  # months kept: the archive takes the month two behind the one just filled
BATCH: Final = 1000
RETRIED_ONE_IN: Final = 5
FLAT: Final = 1.5  # the last cycle's hot ledger may be this many times the third's, at most
WORKER: Final = "soak-worker"
WIDTHS: Final = (5, 8, 11, 8, 11, 11, 10)
STEADY_CYCLE: Final = 3  # the first cycle with two filled months in the hot ledger

HOT_BYTES: Final = """
SELECT coalesce(sum(pg_total_relation_size(i.inhrelid)), 0)::bigint
FROM pg_inherits AS i WHERE i.inhparent = 'public.payment_outbox_attempts'::regclass
"""
DIGEST_BYTES: Final = """
SELECT coalesce(sum(pg_total_relation_size(i.inhrelid)), 0)::bigint
FROM pg_inherits AS i WHERE i.inhparent = 'public.outbox_row_digests'::regclass
"""
HOT_ROWS: Final = "SELECT count(*) FROM public.payment_outbox_attempts"
ARCHIVED_ROWS: Final = (
    "SELECT coalesce(sum(row_count), 0)::bigint FROM public.outbox_ledger_archives"
)
INTO_MONTH: Final = """
UPDATE public.payment_outbox_pending SET ledger_month = %s::date
WHERE ledger_month = date_trunc('month', clock_timestamp() AT TIME ZONE 'UTC')::date
"""
MONTH: Final = """
SELECT to_char(date_trunc('month', clock_timestamp() AT TIME ZONE 'UTC')
    - make_interval(months => %s), 'YYYY-MM')
"""


@attrs.frozen
class Cycle:
    """What one cycle left behind."""

    cycle: int
    month: str
    attempts: int  # made so far
    hot_mb: float
    digests_mb: float
    archive_mb: float
    archive_seconds: float


def fill(url: str, month: str, items: int) -> int:
    """`items` new items in `month`, relayed to their end: the attempts recorded."""
    with OutboxStore.connect(url, role=Role.PRODUCER, max_size=1) as producer:
        for start in range(0, items, BATCH):
            producer.enqueue_many([make_request() for _ in range(min(BATCH, items - start))])
    query_no_role(url, INTO_MONTH, [f"{month}-01"])
    attempts = 0
    with OutboxStore.connect(url, role=Role.EXECUTOR, max_size=1) as executor:
        while claimed := executor.claim(WORKER, batch_size=BATCH, lease_seconds=60):
            outcomes = [
                Outcome(
                    lease=item.lease,
                    state=AttemptState.RETRYABLE
                    if item.attempt_count == 0 and hash(item.outbox_id) % RETRIED_ONE_IN == 0
                    else AttemptState.DISPATCHED,
                )
                for item in claimed
            ]
            executor.complete_batch(WORKER, outcomes)
            attempts += len(outcomes)
    return attempts


def megabytes(url: str, query: str) -> float:
    """A size query's bytes, in MB."""
    return float(query_no_role(url, query)[0][0]) / 1e6


def seal(
    url: str, key: SigningKey, checkpoints: CheckpointStore, archive: Path
) -> tuple[int, tuple[str, ...]]:
    """One exporter run over the live and archived rows: (rows verified, problems)."""
    report = run_once(url, key, checkpoints, archive=archive)
    return report.rows, report.problems


def soak(url: str, cycles: int, attempts_per_cycle: int, scratch: Path) -> list[Cycle]:
    """Run the cycles on `url`, a freshly migrated database; fail on anything lost or altered."""
    age_ledger(url, cycles + KEEP)
    key, checkpoints, archive = (
        SigningKey.generate(),
        CheckpointStore(scratch / "cp"),
        scratch / "a",
    )
    items = int(attempts_per_cycle / (1 + 1 / RETRIED_ONE_IN))
    made, results = 0, []
    for cycle in range(1, cycles + 1):
        month = str(query_no_role(url, MONTH, [cycles + KEEP - cycle])[0][0])
        made += fill(url, month, items)
        # Sealed before the archive run: a month archived unsealed is a finding.
        seal(url, key, checkpoints, archive)
        behind = str(query_no_role(url, MONTH, [cycles + KEEP - cycle + 2])[0][0])
        started = time.perf_counter()
        with OutboxStore.connect(url, role=Role.OPERATOR, max_size=1) as operator:
            archive_ledger(
                operator, archive, ArchivePolicy(keep_months=KEEP, through=behind, drop=True)
            )
        took = time.perf_counter() - started
        archive_mb = sum(p.stat().st_size for p in archive.glob("*.jsonl.gz")) / 1e6
        results.append(
            Cycle(
                cycle,
                month,
                made,
                megabytes(url, HOT_BYTES),
                megabytes(url, DIGEST_BYTES),
                archive_mb,
                took,
            )
        )
        click.echo(json.dumps(attrs.asdict(results[-1])))
    hot, archived = (int(query_no_role(url, q)[0][0]) for q in (HOT_ROWS, ARCHIVED_ROWS))
    rows, problems = seal(url, key, checkpoints, archive)
    click.echo(
        f"attempts made {made:,}; hot {hot:,} + archived {archived:,}; verified {rows:,} rows"
    )
    if hot + archived != made or problems:
        msg = f"lost or altered: {made - hot - archived} missing; {'; '.join(problems[:5])}"
        raise click.ClickException(msg)
    return results


def judged(results: list[Cycle]) -> str | None:
    """Why the hot ledger or its digests did not stay flat, or None."""
    if len(results) < STEADY_CYCLE:
        return None
    steady, last = results[STEADY_CYCLE - 1], results[-1]
    for what, first, now in (
        ("hot ledger", steady.hot_mb, last.hot_mb),
        ("row digests", steady.digests_mb, last.digests_mb),
    ):
        if now > FLAT * first:
            return f"{what} {now:.1f} MB > {FLAT}x {first:.1f} MB"
    return None


@click.command()
@click.option("--cycles", default=12, show_default=True, help="Monthly archive cycles.")
@click.option("--attempts", default=250_000, show_default=True, help="Attempts per cycle.")
@click.option("--smoke", is_flag=True, help="4 cycles of 2,000 attempts (CI).")
def main(cycles: int, attempts: int, *, smoke: bool) -> None:
    """Several million attempts through archive cycles; exit 1 if anything is lost or grows."""
    if smoke:
        cycles, attempts = 4, 2000
    with embedded.embedded_server(durable=False) as server, tempfile.TemporaryDirectory() as tmp:
        with psycopg.connect(server.url, autocommit=True) as connection:
            connection.execute("CREATE DATABASE outbox_soak")
        url = psycopg.conninfo.make_conninfo(server.url, dbname="outbox_soak")
        migrate(url)
        results = soak(url, cycles, attempts, Path(tmp))
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text("".join(json.dumps(attrs.asdict(r)) + "\n" for r in results))
    headings = ("cycle", "month", "attempts", "hot MB", "digests MB", "archive MB", "archive s")
    click.echo(" ".join(f"{h:>{w}}" for h, w in zip(headings, WIDTHS, strict=True)))
    for r in results:
        click.echo(
            f"{r.cycle:>5} {r.month:>8} {r.attempts:>11,} {r.hot_mb:>8.1f} {r.digests_mb:>11.1f}"
            f" {r.archive_mb:>11.1f} {r.archive_seconds:>10.1f}"
        )
    if (problem := judged(results)) is not None:
        raise click.ClickException(problem)
    click.echo(f"the hot ledger and its digests stayed flat; report: {REPORT}")


if __name__ == "__main__":
    main()
