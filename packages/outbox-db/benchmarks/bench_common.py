"""What every benchmark shares: a durable server, fresh databases, and the figures' report.

Figures are items per second, each measured several times and reported as the median with
its spread, next to a raw-SQL lower bound measured in the same run, so the ratio (stable on a
noisy machine) is the comparable number. Reports go to stdout as a table and to
reports/bench/<name>.jsonl as one JSON line per figure.
"""

from __future__ import annotations

import contextlib
import functools
import json
import statistics
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import attrs
import click
import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from outbox_db import embedded, migrate

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

REPORTS: Final = Path("reports/bench")
TEMPLATE: Final = "outbox_bench_template"
LOWER_BOUND: Final = "raw_sql_lower_bound"


@attrs.frozen
class Figure:
    """One measured variant: its label and the rate of each run (items per second)."""

    name: str
    variant: str
    rates: list[float]
    details: dict[str, Any] = attrs.field(factory=dict)

    @property
    def median(self) -> float:
        """The median rate."""
        return statistics.median(self.rates)


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


def repeat(label: str, runs: int, measure: Callable[..., float], *args: object) -> list[float]:
    """`measure(*args)` run `runs` times, each rate printed as it comes; the rates."""
    rates = []
    for run in range(runs):
        rate = measure(*args)
        click.echo(f"{label} run {run + 1}/{runs}: {rate:,.0f} items/s")
        rates.append(rate)
    return rates


@contextlib.contextmanager
def server(url: str | None) -> Iterator[str]:
    """DATABASE_URL's server, or a durable embedded one (fsync and synchronous_commit on)."""
    if url:
        yield url
        return
    with embedded.embedded_server(durable=True) as running:
        yield running.url


def durability(url: str) -> dict[str, Any]:
    """The settings that decide whether per-commit figures are honest; printed with them."""
    with psycopg.connect(url) as connection:
        rows = connection.execute(
            "SELECT name, setting FROM pg_settings"
            " WHERE name IN ('fsync', 'synchronous_commit', 'full_page_writes', 'server_version')"
        ).fetchall()
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


def report(report_name: str, figures: list[Figure], *, settings: dict[str, Any]) -> None:
    """A table on stdout and reports/bench/<report_name>.jsonl, each figure vs its bound.

    The bound of a figure is the raw_sql_lower_bound variant with the same name.
    """
    bounds = {f.name: f.median for f in figures if f.variant == LOWER_BOUND}
    REPORTS.mkdir(parents=True, exist_ok=True)
    lines = []
    width = max(len(figure.name) for figure in figures) + 2
    click.echo(f"\n{'figure':<{width}}{'variant':<22}{'median/s':>10}{'spread':>16}{'vs bound':>9}")
    for figure in figures:
        bound = bounds.get(figure.name)
        ratio = figure.median / bound if bound else None
        spread = f"{min(figure.rates):,.0f}-{max(figure.rates):,.0f}"
        click.echo(
            f"{figure.name:<{width}}{figure.variant:<22}{figure.median:>10,.0f}{spread:>16}"
            f"{'' if ratio is None else f'{ratio:.2f}':>9}"
        )
        record = {
            "figure": figure.name,
            "variant": figure.variant,
            "median_items_per_s": round(figure.median, 1),
            "runs": [round(rate, 1) for rate in figure.rates],
            "ratio_to_lower_bound": None if ratio is None else round(ratio, 3),
            "server": settings,
            **figure.details,
        }
        lines.append(json.dumps(record, sort_keys=True))
    (REPORTS / f"{report_name}.jsonl").write_text("\n".join(lines) + "\n")
    for line in lines:
        click.echo(line)
