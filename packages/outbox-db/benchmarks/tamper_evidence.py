"""What the ledger's tamper evidence costs: the writers, the verifier, the bundle (issue 19 s.4).

Four figures, in one run on one durable server, the variants of each interleaved:
- tamper_evidence_drain_1_process: relayer_drain.py's no-op drain (one relayer process) on
  clones of the migrated template (with_tamper_evidence) and of a second template whose three
  digest triggers the superuser dropped (without_tamper_evidence). That template exists only
  here: tamper evidence is not a switch a deployment has.
- tamper_evidence_enqueue_4_clients: enqueue_throughput.py's sync store, one item per
  transaction, 4 clients over 1,000 participants, on the same two templates.
- ledger_verification: rows per second of `outbox-evidence verify-ledger`'s code
  (verify_bundle_ledger: both files read, signatures checked, each checkpoint's rows verified
  by the hash it signed) over the bundle of a real drain, next to hashlib.sha256 over the
  same rows' canonical bytes, one call per row, in this process; and `--recompute` (every
  row recomputed one by one) with its steps (row_digest alone, findings on parsed rows).
- ledger_bundle_size: bytes per attempt of that bundle's 16_ledger_rows.jsonl and
  17_ledger_checkpoints.jsonl (one checkpoint sealing the drain), i.e. MB per million.
bench_summary.py judges the ratios (>= 0.90 each writer, >= 0.50 the verifier).
"""

from __future__ import annotations

import functools
import hashlib
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Final

import click
import psycopg
from enqueue_throughput import CLIENTS, measure_clients, via_function
from psycopg import sql

from bench_common import (
    TEMPLATE,
    Figure,
    bench_options,
    clone,
    durability,
    interleaved,
    migrated_template,
    report,
    server,
)
from outbox_db.audit import CatalogAudit
from outbox_db.digests import encode_fields, row_digest, row_from_json
from outbox_evidence.exporter import CheckpointStore, run_once
from outbox_evidence.layout import LEDGER_CHECKPOINTS, LEDGER_ROWS, Part
from outbox_evidence.ledger import findings
from outbox_evidence.ledger_bundle import (
    checkpoints_part,
    grouped_rows,
    render_ledger_rows,
    verify_bundle_ledger,
)
from outbox_evidence.signing import SigningKey
from relayer_drain import Drain, relayer_to

if TYPE_CHECKING:
    from collections.abc import Callable

WITH: Final = "with_tamper_evidence"
WITHOUT: Final = "without_tamper_evidence"
BARE_TEMPLATE: Final = "outbox_bench_without_tamper_evidence"
DIGEST_TRIGGERS: Final = (
    ("payment_outbox_attempts_digest", "payment_outbox_attempts"),
    ("outbox_operator_log_digest", "outbox_operator_log"),
    ("outbox_rail_ordering_digest", "outbox_rail_ordering"),
)
DRAIN: Final = "tamper_evidence_drain_1_process"
ENQUEUE: Final = f"tamper_evidence_enqueue_{CLIENTS}_clients"
VERIFY: Final = "ledger_verification"
SIZE: Final = "ledger_bundle_size"
ROWS_PER_S: Final = "rows/s"
PER_ATTEMPT: Final = "bytes/attempt"
# A verification figure repeats its work for at least this long: hashing 2,000 rows takes
# about a millisecond, below what one clock reading of a shared machine can tell apart.
MIN_SECONDS: Final = 0.5
ENQUEUE_SHARE: Final = 2  # enqueue items per run: half the drain's (4 clients, 1 per commit)


def bare_template(admin_url: str) -> None:
    """The migrated template without its digest triggers, dropped by the superuser."""
    url = clone(admin_url, TEMPLATE, BARE_TEMPLATE)
    with psycopg.connect(url, autocommit=True) as connection:
        for trigger, table in DIGEST_TRIGGERS:  # no IF EXISTS: a renamed trigger fails here
            connection.execute(
                sql.SQL("DROP TRIGGER {} ON public.{}").format(
                    sql.Identifier(trigger), sql.Identifier(table)
                )
            )


def writers(admin_url: str, items: int, runs: int) -> list[Figure]:
    """The drain and the enqueue, each on both templates, runs interleaved."""
    drains = {
        label: Drain(admin_url, items, 1, relayer_to(None), template=template)
        for label, template in ((WITH, TEMPLATE), (WITHOUT, BARE_TEMPLATE))
    }
    values = interleaved(runs, [(f"{DRAIN} {label}", d.measure) for label, d in drains.items()])
    figures = [
        Figure(DRAIN, label, values[f"{DRAIN} {label}"], d.details()) for label, d in drains.items()
    ]
    enqueued = items // ENQUEUE_SHARE
    enqueues = {
        label: functools.partial(
            measure_clients, admin_url, via_function, enqueued, hot=False, template=template
        )
        for label, template in ((WITH, TEMPLATE), (WITHOUT, BARE_TEMPLATE))
    }
    values = interleaved(runs, [(f"{ENQUEUE} {label}", m) for label, m in enqueues.items()])
    details = {"items": enqueued, "clients": CLIENTS}
    return figures + [
        Figure(ENQUEUE, label, values[f"{ENQUEUE} {label}"], details) for label in enqueues
    ]


def ledger_bundle(admin_url: str, items: int, directory: Path) -> tuple[Path, SigningKey]:
    """A real drain's ledger sealed by the exporter, as a bundle's 16 and 17 in `directory`."""
    drain = Drain(admin_url, items, 1, relayer_to(None))
    drain.measure()
    key = SigningKey.generate()
    store = CheckpointStore(directory / "checkpoints")
    exported = run_once(drain.url, key, store)
    if exported.problems or exported.unsealed or exported.rows != items:
        msg = f"the exporter sealed {exported.rows - exported.unsealed} of {items} rows: {exported}"
        raise click.ClickException(msg)
    with CatalogAudit.open(drain.url) as audit:
        rows = Part.of(LEDGER_ROWS, render_ledger_rows(audit))
    parts = [grouped_rows(rows, store.directory), checkpoints_part(store.directory, [key.public])]
    bundle = directory / "bundle"
    bundle.mkdir()
    for part in parts:  # as outbox_evidence.bundle writes them
        (bundle / part.name).write_bytes(part.content.encode())
    return bundle, key


def rate(rows: int, work: Callable[[], object]) -> float:
    """Rows per second of `work` over `rows` rows, repeated for at least MIN_SECONDS."""
    rounds, started = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - started) < MIN_SECONDS or not rounds:
        work()
        rounds += 1
    return rows * rounds / elapsed


def verification(bundle: Path, key: SigningKey, runs: int) -> list[Figure]:
    """verify-ledger's rate over the bundle next to hashlib over the rows' canonical bytes."""
    lines = (bundle / LEDGER_ROWS).read_text(encoding="utf-8").splitlines()
    rows = [row_from_json(line) for line in lines if line.strip() and not line.startswith("#")]
    checkpoints, _ = CheckpointStore(bundle.parent / "checkpoints").load()
    canonical = [encode_fields(row.fields or ()) for row in rows]

    def verify_ledger(*, recompute: bool) -> None:
        problems, summary = verify_bundle_ledger(bundle, None, [key.public], recompute=recompute)
        hashed = "; 0 verified by" not in summary
        if problems or hashed == recompute:
            msg = f"verify-ledger found {problems[:3]} ({summary})"
            raise click.ClickException(msg)

    steps: list[tuple[str, Callable[[], object]]] = [
        ("hashlib_sha256", lambda: [hashlib.sha256(data).digest() for data in canonical]),
        ("row_digest", lambda: [row_digest(row.fields or ()) for row in rows]),
        ("findings", lambda: findings(rows, checkpoints)),
        ("verify_ledger", functools.partial(verify_ledger, recompute=False)),
        ("verify_ledger_recompute", functools.partial(verify_ledger, recompute=True)),
    ]
    measured = [
        (f"{VERIFY} {label}", functools.partial(rate, len(rows), work)) for label, work in steps
    ]
    values = interleaved(runs, measured, ROWS_PER_S)
    details = {
        "rows": len(rows),
        "canonical_bytes_per_row": round(sum(map(len, canonical)) / len(rows)),
    }
    return [
        Figure(VERIFY, label, values[f"{VERIFY} {label}"], details, ROWS_PER_S)
        for label, _ in steps
    ]


def bundle_size(bundle: Path, attempts: int) -> list[Figure]:
    """Bytes per attempt of 16 and 17; times a million, that many bytes is that many MB."""
    figures = []
    for name in (LEDGER_ROWS, LEDGER_CHECKPOINTS):
        per_attempt = (bundle / name).stat().st_size / attempts
        click.echo(
            f"{name}: {per_attempt:,.1f} bytes per attempt, {per_attempt:,.0f} MB per million"
        )
        details = {"attempts": attempts, "mb_per_million_attempts": round(per_attempt, 1)}
        figures.append(Figure(SIZE, name, [per_attempt], details, PER_ATTEMPT))
    return figures


@click.command()
@bench_options(default_items=20_000)
def main(url: str | None, items: int, runs: int) -> None:
    """Measure what tamper evidence costs the drain, the enqueue, the verifier and the bundle."""
    with server(url) as admin_url, tempfile.TemporaryDirectory() as scratch:
        settings = durability(admin_url)
        migrated_template(admin_url)
        bare_template(admin_url)
        figures = writers(admin_url, items, runs)
        bundle, key = ledger_bundle(admin_url, items, Path(scratch))
        figures += verification(bundle, key, runs)
        figures += bundle_size(bundle, items)
        report("tamper_evidence", figures, settings=settings)


if __name__ == "__main__":
    main()
