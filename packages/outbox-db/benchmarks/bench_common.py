"""What every benchmark shares: a durable server, fresh databases, and the figures' report.

Each figure is measured several times next to a raw-SQL lower bound measured in the same
run, and reported as the median with its spread; the ratio to the bound (stable on a noisy
machine) is the comparable number. The runs of a figure's variants are interleaved (bound,
variant, bound, variant, ...), so a burst of noise from a neighbour hits them alike. Reports
go to stdout as a table and to reports/bench/<name>.jsonl, one JSON line per figure, which
`bench_summary.py` judges against the targets.
"""

from __future__ import annotations

import contextlib
import functools
import json
import resource
import statistics
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import attrs
import click
import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from outbox_db import embedded, migrate

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

REPORTS: Final = Path("reports/bench")
TEMPLATE: Final = "outbox_bench_template"
LOWER_BOUND: Final = "raw_sql_lower_bound"
RATE: Final = "items/s"
# pg_stat_statements gives each figure its database time per item (the capacity estimate).
SERVER_SETTINGS: Final = {"shared_preload_libraries": "pg_stat_statements"}


@attrs.frozen
class Figure:
    """One measured variant: its label and the value of each run, in `unit`."""

    name: str
    variant: str
    values: list[float]
    details: dict[str, Any] = attrs.field(factory=dict)
    unit: str = RATE

    @property
    def median(self) -> float:
        """The median value."""
        return statistics.median(self.values)

    @property
    def higher_is_better(self) -> bool:
        """Rates (items/s, requests/s) are better high; times and sizes are better low."""
        return self.unit.endswith("/s")


def p99(values: list[float]) -> float:
    """The 99th percentile of a latency figure's samples."""
    return statistics.quantiles(values, n=100, method="inclusive")[98]


def latency_figure(name: str, variant: str, values: list[float], details: dict[str, Any]) -> Figure:
    """A figure of latencies in milliseconds, with its p99 kept; p50 and p99 printed."""
    click.echo(
        f"{name} {variant}: p50 {statistics.median(values):.2f} ms, p99 {p99(values):.2f} ms"
    )
    return Figure(name, variant, values, {**details, "p99_ms": p99(values)}, "ms")


def bench_options(
    default_items: int,
) -> Callable[[Callable[[str | None, int, int], None]], Callable[..., None]]:
    """The options every benchmark takes; `--quick` becomes one run at a tenth of the size."""

    def decorate(measure_all: Callable[[str | None, int, int], None]) -> Callable[..., None]:
        @click.option(
            "--url", envvar="DATABASE_URL", help="Server to use (default: a durable embedded one)."
        )
        @click.option("--items", default=default_items, show_default=True, help="Items per run.")
        @click.option("--runs", default=3, show_default=True, help="Runs per figure (median).")
        @click.option("--quick", is_flag=True, help="One run at a tenth of the size (CI smoke).")
        @functools.wraps(measure_all)
        def command(url: str | None, items: int, runs: int, *, quick: bool) -> None:
            measure_all(url, items // 10 if quick else items, 1 if quick else runs)

        return command

    return decorate


def interleaved(
    runs: int, variants: Sequence[tuple[str, Callable[[], float]]], unit: str = RATE
) -> dict[str, list[float]]:
    """Each variant measured `runs` times, round-robin, each value printed as it comes."""
    values: dict[str, list[float]] = {label: [] for label, _ in variants}
    for run in range(runs):
        for label, measure in variants:
            value = measure()
            click.echo(f"{label} run {run + 1}/{runs}: {value:,.1f} {unit}")
            values[label].append(value)
    return values


@contextlib.contextmanager
def server(url: str | None) -> Iterator[str]:
    """DATABASE_URL's server, or a durable embedded one (fsync and synchronous_commit on)."""
    if url:
        yield url
        return
    with embedded.embedded_server(durable=True, settings=SERVER_SETTINGS) as running:
        yield running.url


def durability(url: str) -> dict[str, Any]:
    """The settings that decide whether per-commit figures are honest; printed with them."""
    with psycopg.connect(url, autocommit=True) as connection:
        rows = connection.execute(
            "SELECT name, setting FROM pg_settings"
            " WHERE name IN ('fsync', 'synchronous_commit', 'full_page_writes', 'server_version',"
            " 'shared_buffers', 'max_wal_size')"
        ).fetchall()
        with contextlib.suppress(psycopg.Error):
            connection.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
    settings: dict[str, Any] = dict(rows)
    click.echo(f"server: {json.dumps(settings, sort_keys=True)}")
    return settings


def migrated_template(admin_url: str) -> None:
    """Create the migrated template every measured database is cloned from."""
    migrate(clone(admin_url, "template1", TEMPLATE))


def clone(admin_url: str, template: str = TEMPLATE, name: str = "outbox_bench") -> str:
    """A fresh database cloned from `template`; returns its URL."""
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
        connection.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(template)
            )
        )
    return make_conninfo(admin_url, dbname=name)


@contextlib.contextmanager
def statement_time(admin_url: str, url: str) -> Iterator[dict[str, float]]:
    """Database execution time (ms) spent in `url`'s database during the block.

    Read from pg_stat_statements when the server has it (the embedded one does); the
    dictionary is filled when the block ends and stays empty without it.
    """
    total: dict[str, float] = {}
    dbname = conninfo_to_dict(url).get("dbname")
    with psycopg.connect(admin_url, autocommit=True) as connection:
        try:
            connection.execute("SELECT pg_stat_statements_reset()")
        except psycopg.Error:
            yield total
            return
    yield total
    with psycopg.connect(admin_url, autocommit=True) as connection:
        row = connection.execute(
            "SELECT coalesce(sum(s.total_exec_time), 0) FROM pg_stat_statements AS s"
            " JOIN pg_database AS d ON d.oid = s.dbid WHERE d.datname = %s",
            [dbname],
        ).fetchone()
    total["ms"] = float(row[0]) if row else 0.0


@contextlib.contextmanager
def wal_written(url: str) -> Iterator[dict[str, float]]:
    """Bytes of WAL the server wrote during the block (all databases: run nothing else)."""
    written: dict[str, float] = {}
    with psycopg.connect(url, autocommit=True) as connection:
        start = connection.execute("SELECT pg_current_wal_lsn()").fetchone()
        yield written
        row = connection.execute(
            "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), %s)", [start[0] if start else None]
        ).fetchone()
    written["bytes"] = float(row[0]) if row else 0.0


def peak_rss_mb(pid: int) -> float:
    """A live process's peak resident set size (VmHWM), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    msg = f"no VmHWM for process {pid}"
    raise click.ClickException(msg)


def enough_descriptors(connections: int) -> None:
    """Raise the open-file limit to hold them all; the processes started here inherit it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = connections + 256  # and the interpreter's own files
    if soft != resource.RLIM_INFINITY and soft < needed:
        if hard != resource.RLIM_INFINITY and hard < needed:
            msg = f"{connections} connections need {needed} open files; the hard limit is {hard}"
            raise click.ClickException(msg)
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


def report(report_name: str, figures: list[Figure], *, settings: dict[str, Any]) -> None:
    """A table on stdout and reports/bench/<report_name>.jsonl, each figure vs its bound.

    The bound of a figure is the raw_sql_lower_bound variant with the same name; the ratio
    says how close the variant comes to it (1.0: as good as the bound, whichever way the
    unit runs).
    """
    bounds = {f.name: f.median for f in figures if f.variant == LOWER_BOUND}
    REPORTS.mkdir(parents=True, exist_ok=True)
    lines = []
    width = max(len(figure.name) for figure in figures) + 2
    click.echo(
        f"\n{'figure':<{width}}{'variant':<26}{'median':>12}{'unit':>12}{'spread':>22}"
        f"{'vs bound':>9}"
    )
    for figure in figures:
        bound = bounds.get(figure.name)
        ratio = None
        if bound and figure.median:
            ratio = figure.median / bound if figure.higher_is_better else bound / figure.median
        spread = f"{min(figure.values):,.1f}-{max(figure.values):,.1f}"
        click.echo(
            f"{figure.name:<{width}}{figure.variant:<26}{figure.median:>12,.1f}"
            f"{figure.unit:>12}{spread:>22}{'' if ratio is None else f'{ratio:.2f}':>9}"
        )
        record = {
            "figure": figure.name,
            "variant": figure.variant,
            "unit": figure.unit,
            "median": round(figure.median, 3),
            "runs": [round(value, 3) for value in figure.values],
            "ratio_to_lower_bound": None if ratio is None else round(ratio, 3),
            "server": settings,
            **figure.details,
        }
        lines.append(json.dumps(record, sort_keys=True))
    (REPORTS / f"{report_name}.jsonl").write_text("\n".join(lines) + "\n")
    for line in lines:
        click.echo(line)
