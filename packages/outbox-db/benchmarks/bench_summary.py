"""The targets of the benchmark suite, judged from the figures the last run wrote.

Reads reports/bench/*.jsonl (one JSON line per figure and variant, written by the other
scripts) and prints, for each target, the measured value, the threshold and whether it was
met, then the relayer scaling curve and the capacity estimate it supports (database time
per item from pg_stat_statements), then rail-sim's own capacity (wrk) next to the relayer's
no-op drain: the lower of the two bounds the drain through rail-sim over HTTP. Writes the
same as Markdown to reports/bench/summary.md.
A figure that was not measured (say, pgqueuer outside `nox -s bench`) is reported as such.
The judgement informs; it never fails the run (the machine's noise is not the code's).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Final

import attrs
import click

from bench_common import LOWER_BOUND, REPORTS

if TYPE_CHECKING:
    from collections.abc import Callable

Figures = dict[tuple[str, str], dict[str, Any]]
DRAIN_1: Final = "relayer_drain_1_process"
MANY: Final = "enqueue_single_txn_4_clients_1000_participants"
HOT: Final = "enqueue_single_txn_4_clients_1_participant"
BATCHED: Final = "enqueue_batch_1000_per_txn_1_client"
MS_PER_S: Final = 1000
WAKEUP: Final = "enqueue_to_rail_latency"
SCRAPE: Final = "queue_scrape"
NEIGHBOURS: Final = "fast_rail_beside_slow_rail"
RAIL_SIM: Final = "rail_sim_capacity"
CLIENTS: Final = "http_client_rate"  # http_clients.py: the relayer's candidate HTTP clients
HTTP: Final = "relayer_rail_sim"  # the drain through rail-sim answering at once
HTTP_LATE: Final = "relayer_rail_sim_50ms"  # ... answering 50 ms late
MEMORY: Final = "relayer_peak_rss_in_flight"
# tamper_evidence.py: the same drain and enqueue with and without the digest triggers.
TE_DRAIN: Final = "tamper_evidence_drain_1_process"
TE_ENQUEUE: Final = "tamper_evidence_enqueue_4_clients"
TE_WITH: Final = "with_tamper_evidence"
TE_WITHOUT: Final = "without_tamper_evidence"
VERIFY: Final = "ledger_verification"
BUNDLE_SIZE: Final = "ledger_bundle_size"


@attrs.frozen
class Target:
    """One target: what is measured, the threshold, and how to read it from the figures."""

    name: str
    threshold: str
    value: Callable[[Figures], float | None]
    met: Callable[[float], bool] | None  # None: a figure reported, with no target to meet
    unit: str = ""


def median(figures: Figures, figure: str, variant: str) -> float | None:
    """A variant's median, if it was measured."""
    record = figures.get((figure, variant))
    return None if record is None or "median" not in record else float(record["median"])


def ratio_of(mine: float | None, theirs: float | None) -> float | None:
    """The ratio mine / theirs, if both were measured."""
    return None if mine is None or not theirs else mine / theirs


def ratio(figures: Figures, figure: str, variant: str, other: str = LOWER_BOUND) -> float | None:
    """The ratio of two medians of one figure, variant / other (rates: higher is better)."""
    return ratio_of(median(figures, figure, variant), median(figures, figure, other))


def best_peer(figures: Figures, relayer: str) -> float | None:
    """A 1-process relayer drain over pgqueuer's best doing the same (no-op, or over HTTP)."""
    over_http = relayer == HTTP
    peers = [
        r["median"]
        for (f, v), r in figures.items()
        if f == DRAIN_1 and v.startswith("pgqueuer") and ("rail_sim" in v) == over_http
    ]
    return ratio_of(median(figures, DRAIN_1, relayer), max(peers, default=None))


def http_bound(figures: Figures, drain: str) -> float | None:
    """The bound of a drain through rail-sim: the lower of rail-sim's capacity and the no-op."""
    capacity = median(figures, RAIL_SIM, "latency_0ms")
    noop = median(figures, drain, "relayer_noop")
    return None if noop is None or capacity is None else min(noop, capacity)


def claim_growth(figures: Figures) -> float | None:
    """p99 of the function's claim at the largest backlog over p99 at the smallest."""
    p99s = sorted(
        (r["backlog"], r["p99_ms"])
        for (f, v), r in figures.items()
        if f.startswith("claim_100_backlog_") and v == "claim_function"
    )
    return None if len(p99s) < 2 or not p99s[0][1] else p99s[-1][1] / p99s[0][1]  # noqa: PLR2004


def waiting_claim_ratio(figures: Figures) -> float | None:
    """Claim p99 with ordered lanes waiting, over p99 at the same backlog without them."""
    claims = [
        r for (f, v), r in figures.items() if f.startswith("claim_100_") and v == "claim_function"
    ]
    waiting = [r["p99_ms"] for r in claims if r.get("waiting")]
    largest = max(
        (r for r in claims if not r.get("waiting")), key=lambda r: r["backlog"], default=None
    )
    return ratio_of(waiting[0] if waiting else None, largest["p99_ms"] if largest else None)


def repair_seconds(figures: Figures) -> float | None:
    """The lease repairer's best time over 100,000 expired leases (at its largest batch)."""
    times = [
        r["median"]
        for (f, v), r in figures.items()
        if f.startswith("lease_repair_") and v.startswith("repair_function")
    ]
    return min(times) if times else None


def peak_rss(figures: Figures) -> float | None:
    """The largest peak RSS of any relayer process in the drain figures."""
    sizes = [r["peak_rss_mb"] for r in figures.values() if "peak_rss_mb" in r]
    return max(sizes) if sizes else None


def bundle_growth(figures: Figures) -> float | None:
    """MB of the bundle's ledger rows and checkpoints per million attempts (16 + 17)."""
    parts = [r["median"] for (f, _), r in figures.items() if f == BUNDLE_SIZE]
    return sum(parts) if parts else None  # bytes per attempt: as many MB per million


def wakeup_p99(figures: Figures, variant: str) -> float | None:
    """A variant's enqueue-to-rail p99 (wakeup_latency.py), if it was measured."""
    record = figures.get((WAKEUP, variant))
    return None if record is None else float(record["p99_ms"])


TARGETS: Final = (
    Target(
        "drain, no-op rail, 1 process, vs raw-SQL bound",
        ">= 0.60",
        lambda f: ratio(f, DRAIN_1, "relayer_noop"),
        lambda v: v >= 0.60,  # noqa: PLR2004
        "x",
    ),
    Target(
        "drain, no-op rail, 1 process, vs pgqueuer (best config)",
        ">= 1.50",
        lambda f: best_peer(f, "relayer_noop"),
        lambda v: v >= 1.50,  # noqa: PLR2004
        "x",
    ),
    Target(
        "enqueue, 1 per transaction, 4 clients, vs raw-SQL bound",
        ">= 0.80",
        lambda f: ratio(f, MANY, "enqueue_function"),
        lambda v: v >= 0.80,  # noqa: PLR2004
        "x",
    ),
    Target(
        "enqueue from asyncio (AsyncOutboxStore), 4 clients, vs the sync store",
        ">= 0.80",
        lambda f: ratio_of(
            median(f, MANY, "async_enqueue_function"), median(f, MANY, "enqueue_function")
        ),
        lambda v: v >= 0.80,  # noqa: PLR2004
        "x",
    ),
    Target(
        "batch enqueue, 1 client",
        ">= 20,000",
        lambda f: median(f, BATCHED, "enqueue_many"),
        lambda v: v >= 20_000,  # noqa: PLR2004
        "items/s",
    ),
    Target(
        "one hot participant vs 1,000 participants (no error surfaced)",
        ">= 0.50",
        lambda f: ratio_of(median(f, HOT, "enqueue_function"), median(f, MANY, "enqueue_function")),
        lambda v: v >= 0.50,  # noqa: PLR2004
        "x",
    ),
    Target(
        "claim p99 growth, smallest to largest backlog",
        "< 1.50",
        claim_growth,
        lambda v: v < 1.50,  # noqa: PLR2004
        "x",
    ),
    Target(
        "claim p99 with ordered lanes waiting, vs the same backlog without",
        "< 1.50",
        waiting_claim_ratio,
        lambda v: v < 1.50,  # noqa: PLR2004
        "x",
    ),
    Target(
        "drain, 1 process, ordered rail (1,000 lanes) vs unordered",
        ">= 0.50",
        lambda f: ratio(f, DRAIN_1, "relayer_noop_ordered", "relayer_noop"),
        lambda v: v >= 0.50,  # noqa: PLR2004
        "x",
    ),
    Target(
        "lease repair of every expired lease (100,000; --quick: 10,000)",
        "< 10",
        repair_seconds,
        lambda v: v < 10,  # noqa: PLR2004
        "s",
    ),
    Target(
        "enqueue-to-rail p99 through PgBouncer with a LISTEN URL, vs direct",
        "< 2.00",
        lambda f: ratio_of(wakeup_p99(f, "pgbouncer_listen_url"), wakeup_p99(f, "direct")),
        lambda v: v < 2.00,  # noqa: PLR2004
        "x",
    ),
    Target(
        "queue-metrics scrape (pending only) vs the status view (with the ledger), p50",
        "< 0.25",
        lambda f: ratio_of(median(f, SCRAPE, "queue_depth"), median(f, SCRAPE, "status_view")),
        lambda v: v < 0.25,  # noqa: PLR2004
        "x",
    ),
    Target(
        "fast rail beside a slow one capped by max_in_flight, vs the fast rail alone",
        ">= 0.90",
        lambda f: ratio(f, NEIGHBOURS, "fast_with_slow_capped", "fast_alone"),
        lambda v: v >= 0.90,  # noqa: PLR2004
        "x",
    ),
    Target(
        "rail-sim capacity (wrk, 0 ms, 64 connections) vs the relayer's no-op drain, 1 process",
        ">= 1.00",
        lambda f: ratio_of(median(f, RAIL_SIM, "latency_0ms"), median(f, DRAIN_1, "relayer_noop")),
        lambda v: v >= 1.00,
        "x",
    ),
    Target(
        "drain through rail-sim (0 ms), 1 process, vs the lower of rail-sim's capacity and the"
        " no-op drain",
        ">= 0.50",
        lambda f: ratio_of(median(f, DRAIN_1, HTTP), http_bound(f, DRAIN_1)),
        lambda v: v >= 0.50,  # noqa: PLR2004
        "x",
    ),
    Target(
        "drain through rail-sim answering in 50 ms, 1 process, vs at 0 ms",
        ">= 0.80",
        lambda f: ratio(f, DRAIN_1, HTTP_LATE, HTTP),
        lambda v: v >= 0.80,  # noqa: PLR2004
        "x",
    ),
    Target(
        "drain through rail-sim, 1 process, vs pgqueuer POSTing the same (best of its grid)",
        ">= 1.00 (aim 1.50)",
        lambda f: best_peer(f, HTTP),
        lambda v: v >= 1.00,
        "x",
    ),
    Target(
        "relayer peak RSS in the drain figures (their concurrency)",
        "< 150",
        peak_rss,
        lambda v: v < 150,  # noqa: PLR2004
        "MiB",
    ),
    Target(
        "relayer peak RSS at 2,000 sends in flight, 1 KiB payloads",
        "< 200",
        lambda f: median(f, MEMORY, "relayer_rail_sim"),
        lambda v: v < 200,  # noqa: PLR2004
        "MiB",
    ),
    Target(
        "drain, no-op rail, 1 process, with tamper evidence vs its digest triggers dropped",
        ">= 0.90",
        lambda f: ratio(f, TE_DRAIN, TE_WITH, TE_WITHOUT),
        lambda v: v >= 0.90,  # noqa: PLR2004
        "x",
    ),
    Target(
        "enqueue, 1 per transaction, 4 clients, with tamper evidence vs its digest triggers"
        " dropped",
        ">= 0.90",
        lambda f: ratio(f, TE_ENQUEUE, TE_WITH, TE_WITHOUT),
        lambda v: v >= 0.90,  # noqa: PLR2004
        "x",
    ),
    Target(
        "verify-ledger over a drain's bundle vs hashlib.sha256 over its rows' canonical bytes,"
        " rows/s",
        ">= 0.50",
        lambda f: ratio(f, VERIFY, "verify_ledger", "hashlib_sha256"),
        lambda v: v >= 0.50,  # noqa: PLR2004
        "x",
    ),
    Target(
        "bundle growth per million attempts (16_ledger_rows + 17_ledger_checkpoints)",
        "none (reported)",
        bundle_growth,
        None,
        "MB",
    ),
)


def load() -> Figures:
    """Every figure of the last run, by (figure, variant)."""
    figures: Figures = {}
    for path in sorted(REPORTS.glob("*.jsonl")):
        for line in path.read_text().splitlines():
            record = json.loads(line)
            figures[record["figure"], record["variant"]] = record
    return figures


def target_rows(figures: Figures) -> list[list[str]]:
    """target, measured, threshold, verdict."""
    rows = []
    for target in TARGETS:
        value = target.value(figures)
        if value is None:
            rows.append([target.name, "not measured", target.threshold, "-"])
            continue
        measured = f"{value:,.2f} {target.unit}".strip()
        judged = "-" if target.met is None else "met" if target.met(value) else "MISSED"
        rows.append([target.name, measured, target.threshold, judged])
    return rows


def scaling_rows(figures: Figures) -> list[list[str]]:
    """Per relayer count: no-op, ordered no-op and bound rates, ratio, database time, WAL."""
    rows = []
    for processes in (1, 2, 4):
        name = f"relayer_drain_{processes}_process{'es' if processes > 1 else ''}"
        record = figures.get((name, "relayer_noop"))
        if record is None:
            continue
        bound = median(figures, name, LOWER_BOUND)
        ordered = median(figures, name, "relayer_noop_ordered")
        per_item = record.get("db_ms_per_item")
        rows.append(
            [
                str(processes),
                f"{record['median']:,.0f}",
                "-" if ordered is None else f"{ordered:,.0f}",
                "-" if bound is None else f"{bound:,.0f}",
                "-"
                if record["ratio_to_lower_bound"] is None
                else f"{record['ratio_to_lower_bound']:.2f}",
                "-" if per_item is None else f"{per_item:.3f}",
                "-" if not per_item else f"{MS_PER_S / per_item:,.0f}",
                f"{record.get('wal_bytes_per_item', '-')}",
            ]
        )
    return rows


def rail_sim_rows(figures: Figures) -> list[list[str]]:
    """Per relayer count: no-op drain, rail-sim's capacity, the lower of the two, the HTTP drain.

    The drain through rail-sim can go no faster than the lower: that is its bound.
    """
    capacity = median(figures, RAIL_SIM, "latency_0ms")
    rows = []
    for processes in (1, 2):
        name = f"relayer_drain_{processes}_process{'es' if processes > 1 else ''}"
        noop = median(figures, name, "relayer_noop")
        http = median(figures, name, HTTP)
        bound = http_bound(figures, name)
        share = ratio_of(http, bound)
        rows.append(
            [
                str(processes),
                _rate(noop),
                _rate(capacity),
                "-" if bound is None else ("rail-sim" if bound == capacity else "relayer"),
                _rate(http),
                "-" if share is None else f"{share:.2f}",
            ]
        )
    return rows


def rail_sim_line(figures: Figures) -> str:
    """Rail-sim's capacity under wrk at both latencies, next to the 1-process drain at each."""
    parts = []
    for variant, load, drain in (
        ("latency_0ms", "0 ms", HTTP),
        ("latency_50ms", "50 ms", HTTP_LATE),
    ):
        record = figures.get((RAIL_SIM, variant))
        if record is None:
            parts.append(f"not measured at {load}")
            continue
        served = ratio_of(record["median"], median(figures, DRAIN_1, drain))
        parts.append(
            f"{record['median']:,.0f} requests/s at {load} with {record['connections']:,}"
            f" connections (p99 {record['p99_ms']:,.1f} ms"
            + ("" if served is None else f"; {served:.1f}x the 1-process drain through it")
            + ")"
        )
    return "rail-sim under wrk (rail_sim_capacity.py): " + "; ".join(parts) + "."


def clients_line(figures: Figures) -> str:
    """The HTTP clients alone against rail-sim, and how near the relayer's drain comes."""
    parts = []
    candidates = (
        ("libcurl", "libcurl (the relayer's)"),
        ("aiohttp", "aiohttp"),
        ("httpx_async", "httpx"),
    )
    for variant, name in candidates:
        record = figures.get((CLIENTS, variant))
        if record is None:
            parts.append(f"{name} not measured")
            continue
        parts.append(
            f"{name} {record['median']:,.0f} requests/s, {record['cpu_us_per_request']:,} us"
            " of CPU each"
        )
    share = ratio_of(median(figures, DRAIN_1, HTTP), median(figures, CLIENTS, "libcurl"))
    reach = (
        ""
        if share is None
        else f"; the 1-process drain through rail-sim is {share:.2f}x libcurl's rate"
    )
    return (
        "the HTTP clients alone, POSTing to rail-sim at the relayer's concurrency"
        f" (http_clients.py): {'; '.join(parts)}{reach}."
    )


def digest_cost_line(figures: Figures) -> str:
    """The drain's database time and WAL per item with the digest triggers and without."""
    mine, bare = (figures.get((TE_DRAIN, variant), {}) for variant in (TE_WITH, TE_WITHOUT))
    if "db_ms_per_item" not in mine or "db_ms_per_item" not in bare:
        return "the digest triggers' cost to the drain's database: not measured."
    return (
        "the digest triggers' cost to the drain's database (tamper_evidence.py):"
        f" {mine['db_ms_per_item'] * MS_PER_S:,.0f} us and {mine['wal_bytes_per_item']:,} bytes"
        f" of WAL per item with them, {bare['db_ms_per_item'] * MS_PER_S:,.0f} us and"
        f" {bare['wal_bytes_per_item']:,} bytes without."
    )


def verification_line(figures: Figures) -> str:
    """Where verify-ledger's time goes: its rate beside each step's, hashlib's first."""
    steps = (
        ("hashlib_sha256", "hashlib.sha256 of the canonical bytes, a call per row"),
        ("verify_ledger", "verify-ledger (files read, signatures checked, rows hashes matched)"),
        ("verify_ledger_recompute", "verify-ledger --recompute (every row recomputed)"),
        ("row_digest", "of which row_digest (encoding and hash)"),
        ("findings", "and findings over parsed rows and checkpoints"),
    )
    parts = [
        f"{name} {_rate(value)} rows/s"
        for variant, name in steps
        if (value := median(figures, VERIFY, variant)) is not None
    ]
    measured = "; ".join(parts) if parts else "not measured"
    return f"ledger verification, same rows, same process (tamper_evidence.py): {measured}."


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def markdown(headers: list[str], rows: list[list[str]]) -> str:
    """A Markdown table."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    return "\n".join([*lines, *("| " + " | ".join(row) + " |" for row in rows)])


@click.command()
def main() -> None:
    """Judge the last run's figures (reports/bench/*.jsonl) against the targets."""
    figures = load()
    if not figures:
        msg = f"no figures in {REPORTS}: run the benchmarks first (nox -s bench)"
        raise click.ClickException(msg)
    targets = markdown(["target", "measured", "threshold", "verdict"], target_rows(figures))
    scaling = markdown(
        [
            "relayer processes",
            "no-op drain items/s",
            "ordered (1,000 lanes) items/s",
            "raw-SQL bound items/s",
            "ratio",
            "database ms per item",
            "items/s per database core",
            "WAL bytes per item",
        ],
        scaling_rows(figures),
    )
    rail_sim = markdown(
        [
            "relayer processes",
            "no-op drain items/s",
            "rail-sim capacity (0 ms) requests/s",
            "the lower (the bound)",
            "drain through rail-sim items/s",
            "vs the bound",
        ],
        rail_sim_rows(figures),
    )
    text = (
        "## Targets (same run, medians)\n\n"
        f"{targets}\n\n"
        "## Relayers against one database (one host: relayers and PostgreSQL share its cores)\n\n"
        f"{scaling}\n\n"
        "## Rail-sim's capacity next to the relayer (same run)\n\n"
        f"{rail_sim_line(figures)}\n\n"
        f"{clients_line(figures)}\n\n"
        f"{rail_sim}\n\n"
        "## The ledger's tamper evidence (same run)\n\n"
        f"{digest_cost_line(figures)}\n\n"
        f"{verification_line(figures)}\n"
    )
    (REPORTS / "summary.md").write_text(text)
    click.echo("\n" + text)


if __name__ == "__main__":
    main()
