"""What a metrics scrape costs: the queue depth, 1,000,000 items pending, 10,000,000 in the ledger.

The rows are written in the database with generate_series as the owner (the read needs no
history behind them): --items pending items over 4 rails (a tenth due, the rest scheduled),
and ten times as many ledger rows. Then `OutboxStore.queue_depth()` (outbox_queue_depth,
what `--queue-metrics` reads at each scrape) is timed against `OutboxStore.status()` (the
status view, which also aggregates the ledger), alternately, on a durable server.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Final

import click
import psycopg

from bench_common import (
    bench_options,
    clone,
    durability,
    latency_figure,
    migrated_template,
    report,
    server,
)
from outbox_db import OutboxStore, Role

if TYPE_CHECKING:
    from collections.abc import Callable

FIGURE: Final = "queue_scrape"
LEDGER_PER_ITEM: Final = 10
PENDING: Final = """
INSERT INTO public.payment_outbox_pending (
    instruction_id, participant_id, sequence_id, idempotency_key, rail_type, payload,
    next_attempt_at)
SELECT 'p-' || g, 'bank-' || (g %% 1000), g, 'p-' || g, 'rail-' || (g %% 4),
    jsonb_build_object('amount', '10.00', 'currency', 'EUR'),
    CASE WHEN g %% 10 = 0 THEN now() - interval '1 minute' ELSE now() + interval '1 day' END
FROM generate_series(1, %(items)s::bigint) AS g
"""
LEDGER: Final = """
INSERT INTO public.payment_outbox_attempts (
    outbox_id, instruction_id, participant_id, sequence_id, idempotency_key, rail_type,
    payload, attempt_no, state, latency_ms, worker_id)
SELECT gen_random_uuid(), 'a-' || g, 'bank-' || (g %% 1000), g, 'a-' || g, 'rail-' || (g %% 4),
    jsonb_build_object('amount', '10.00', 'currency', 'EUR'), 1, 'DISPATCHED', 5, 'bench'
FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS g
"""
CHUNK: Final = 1_000_000


def fill(url: str, items: int) -> None:
    """`items` pending items and LEDGER_PER_ITEM times as many ledger rows, then ANALYZE."""
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(PENDING, {"items": items})
        rows = items * LEDGER_PER_ITEM
        for first in range(1, rows + 1, CHUNK):
            click.echo(f"  ledger rows {first:,}-{min(first + CHUNK - 1, rows):,} of {rows:,}")
            connection.execute(LEDGER, {"first": first, "last": min(first + CHUNK - 1, rows)})
        connection.execute("VACUUM ANALYZE public.payment_outbox_pending")
        connection.execute("VACUUM ANALYZE public.payment_outbox_attempts")


def timed(read: Callable[[], object]) -> float:
    """Milliseconds of one read."""
    started = time.perf_counter()
    read()
    return (time.perf_counter() - started) * 1000


@click.command()
@bench_options(default_items=1_000_000)
def main(url: str | None, items: int, runs: int) -> None:
    """Scrape time with --items pending (default 1,000,000) and ten times as many in the ledger."""
    with server(url) as admin_url:
        settings = durability(admin_url)
        migrated_template(admin_url)
        database = clone(admin_url)
        click.echo(f"writing {items:,} pending items and {items * LEDGER_PER_ITEM:,} ledger rows")
        fill(database, items)
        samples: dict[str, list[float]] = {"queue_depth": [], "status_view": []}
        with OutboxStore.connect(database, role=Role.READONLY) as store:
            store.queue_depth()  # warm the cache as a running exporter's would be
            for n in range(10 * runs):
                samples["queue_depth"].append(timed(store.queue_depth))
                if n % 5 == 0:  # the view is slow: fewer samples
                    samples["status_view"].append(timed(store.status))
        figures = []
        for variant, values in samples.items():
            details = {"pending": items, "ledger": items * LEDGER_PER_ITEM}
            figures.append(latency_figure(FIGURE, variant, values, details))
        report("queue_scrape", figures, settings=settings)


if __name__ == "__main__":
    main()
