"""Per-rail limits: a fast rail's throughput beside a slow one, in one relayer process.

One `outbox-relayer run` process (concurrency 32, batch 100) serves two rails, each its own
rail simulator over HTTP on loopback: `fast` answers at once, `slow` after 2 s. Variants,
each on a fresh clone holding a backlog of `items` fast items (and, beside them, slow items
enough to keep the slow rail busy for the whole run), their runs interleaved:
- fast_alone: no slow item; the fast rail has the process to itself;
- fast_with_slow_capped: the slow rail capped by `max_in_flight = 4` in the rails file;
- fast_with_slow_uncapped: the same without the cap (OUTBOX_CONCURRENCY is the slow rail's
  only cap): what the cap prevents.

The rate is the fast rail's items / (its last completion - its first claim), read from the
ledger. A run stops when the fast rail has drained, or after items / 100 seconds (the
uncapped variant: its fast rail waits for slots the slow one holds), whichever is first; the
rate then counts what was sent in the run. bench_summary.py judges the capped variant
against fast_alone (target >= 0.90).
"""

from __future__ import annotations

import contextlib
import tempfile
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Final

import attrs
import click
import psycopg

from bench_common import (
    Figure,
    bench_options,
    clone,
    durability,
    interleaved,
    migrated_template,
    report,
    server,
)
from outbox_relayer.testing import Faults, RailSimulator
from relayer_drain import relayers_running, wait_until_drained

if TYPE_CHECKING:
    from collections.abc import Iterator

FIGURE: Final = "fast_rail_beside_slow_rail"
FAST, SLOW = "fast", "slow"
SLOW_LATENCY_MS: Final = 2_000.0
SLOW_CAP: Final = 4
CONCURRENCY: Final = 32
# Slow items per run: more than the uncapped slow rail can send in the longest run.
SLOW_ITEMS: Final = 2_000
SECONDS_PER_ITEM: Final = 0.01  # a run's time limit, per fast item

BACKLOG: Final = """
SELECT count(*)
FROM generate_series(1, %(items)s) AS g,
    LATERAL public.enqueue_payment_outbox(
        %(run)s || '-' || g, 'participant-' || (g %% 1000), %(run)s || '-' || g, %(rail)s,
        jsonb_build_object('amount', '10.00', 'currency', 'USD', 'creditor', 'acct-' || g)
    )
"""
WINDOW: Final = """
SELECT count(*) FILTER (WHERE state = 'DISPATCHED'),
    extract(epoch FROM max(completed_at) - min(claimed_at))
FROM public.payment_outbox_attempts
WHERE rail_type = %s
"""


@attrs.define
class Neighbours:
    """One variant: fast items beside `slow_items` slow ones, the slow rail capped or not."""

    admin_url: str
    rails_file: Path
    items: int
    slow_items: int
    slow_sent: list[float] = attrs.field(factory=list)  # the slow rail's own rate per run

    def measure(self) -> float:
        """The fast rail's items per second in one run."""
        url = clone(self.admin_url)
        with psycopg.connect(url, autocommit=True) as connection:
            # Keys unique to the run and rail: the simulators outlive a run.
            for rail, count in ((FAST, self.items), (SLOW, self.slow_items)):
                run = f"{uuid.uuid4().hex}-{rail}"
                connection.execute(BACKLOG, {"items": count, "run": run, "rail": rail})
            connection.execute("VACUUM ANALYZE public.payment_outbox_pending")
        flags = ["--rails-file", str(self.rails_file), "--concurrency", str(CONCURRENCY)]
        with relayers_running(url, 1, flags) as relayers:
            wait_until_drained(url, relayers, FAST, self.items * SECONDS_PER_ITEM)
        with psycopg.connect(url) as connection:
            sent, seconds = connection.execute(WINDOW, [FAST]).fetchone() or (0, None)
            if self.slow_items:
                slow = connection.execute(WINDOW, [SLOW]).fetchone()
                self.slow_sent.append(slow[0] / float(slow[1]) if slow and slow[1] else 0.0)
        if not sent:
            msg = "the fast rail sent nothing"
            raise click.ClickException(msg)
        return float(sent) / float(seconds)

    def details(self) -> dict[str, object]:
        """The set-up, and the slow rail's own rate (its cap / its latency when capped)."""
        details: dict[str, object] = {
            "items": self.items,
            "slow_items": self.slow_items,
            "concurrency": CONCURRENCY,
            "slow_latency_ms": SLOW_LATENCY_MS,
            "rails_file": self.rails_file.read_text(),
        }
        if self.slow_sent:
            details["slow_rail_items_per_s"] = [round(rate, 2) for rate in self.slow_sent]
        return details


@contextlib.contextmanager
def rails_files(fast_url: str, slow_url: str) -> Iterator[tuple[Path, Path]]:
    """Two rails files for the same simulators: the slow rail capped, and not."""
    with tempfile.TemporaryDirectory() as scratch:
        files = []
        for name, cap in (("capped", f"max_in_flight = {SLOW_CAP}\n"), ("uncapped", "")):
            path = Path(scratch) / f"rails-{name}.toml"
            path.write_text(
                f'[rails.{FAST}]\nurl = "{fast_url}"\n\n'
                f'[rails.{SLOW}]\nurl = "{slow_url}"\ntimeout_seconds = 10\n{cap}'
            )
            files.append(path)
        yield files[0], files[1]


@click.command()
@bench_options(default_items=5_000)
def main(url: str | None, items: int, runs: int) -> None:
    """Measure a fast rail's throughput alone and beside a slow rail, capped and not."""
    with (
        server(url) as admin_url,
        RailSimulator() as fast,
        RailSimulator(faults=Faults(latency_ms=SLOW_LATENCY_MS)) as slow,
        rails_files(fast.payments_url, slow.payments_url) as (capped, uncapped),
    ):
        settings = durability(admin_url)
        migrated_template(admin_url)
        measured = [
            ("fast_alone", Neighbours(admin_url, capped, items, 0)),
            ("fast_with_slow_capped", Neighbours(admin_url, capped, items, SLOW_ITEMS)),
            ("fast_with_slow_uncapped", Neighbours(admin_url, uncapped, items, SLOW_ITEMS)),
        ]
        values = interleaved(runs, [(label, variant.measure) for label, variant in measured])
        figures = [
            Figure(FIGURE, label, values[label], variant.details()) for label, variant in measured
        ]
        report("rail_isolation", figures, settings=settings)


if __name__ == "__main__":
    main()
