"""Enqueue-to-rail latency: direct, through PgBouncer, and through PgBouncer with a LISTEN URL.

One relayer (in this process, the default 1 s poll interval) sends to the rail simulator
over HTTP on loopback while items are enqueued one at a time, each in its own transaction,
at random gaps of 50-250 ms, so the relayer is idle when each arrives. An item's latency is
from its enqueue's commit returning to the rail receiving it, both on this process's
monotonic clock. Variants, each on a fresh clone, store and relayer connected:
- direct: to the server; LISTEN wakes the relayer at each enqueue's commit;
- pgbouncer: through a real PgBouncer in transaction mode; LISTEN hears nothing there
  (the relayer says `wakeups_lost`), so items wait for the next poll;
- pgbouncer_listen_url: through PgBouncer, with OUTBOX_LISTEN_DATABASE_URL's direct URL for
  the one listening connection.
Needs OUTBOX_DB_TESTONLY=1 (PgBouncer is started by outbox_db.testonly.pgbouncer).
"""

from __future__ import annotations

import contextlib
import random
import threading
import time
import uuid
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import TYPE_CHECKING, Final

import click

from bench_common import (
    bench_options,
    clone,
    durability,
    latency_figure,
    migrated_template,
    report,
    server,
)
from outbox_db import EnqueueRequest, OutboxStore, Role
from outbox_db.testonly.pgbouncer import pgbouncer  # guardrails: allow OBX004 -- a benchmark
from outbox_relayer import Backoff, HttpRail, RailEndpoint, Relayer, RelayerSettings, Signals
from outbox_relayer.testing import RailSimulator, read_request_log

if TYPE_CHECKING:
    from collections.abc import Iterator

FIGURE: Final = "enqueue_to_rail_latency"
RAIL: Final = "rtp"
POLL_SECONDS: Final = 1.0  # the relayer's default
GAP_SECONDS: Final = (0.05, 0.25)
PROBE_SECONDS: Final = 3.0  # the relayer's start-up probe waits 2 s for its notification
DRAIN_SECONDS: Final = 30.0
# Each variant: its name, whether it goes through PgBouncer, whether LISTEN has a direct URL.
VARIANTS: Final = (
    ("direct", False, False),
    ("pgbouncer", True, False),
    ("pgbouncer_listen_url", True, True),
)


@contextlib.contextmanager
def relaying(url: str, listen_url: str | None, simulator: RailSimulator) -> Iterator[None]:
    """A relayer on `url` (LISTEN on `listen_url` if given) running for the block."""
    stop = threading.Event()
    endpoint = RailEndpoint(rail_type=RAIL, url=simulator.payments_url, timeout_seconds=10.0)
    settings = RelayerSettings(
        worker_id="bench", poll_interval_seconds=POLL_SECONDS, listen_url=listen_url
    )
    with OutboxStore.connect(url, role=Role.EXECUTOR) as store:
        relayer = Relayer(
            store,
            rails={RAIL: HttpRail(endpoint)},  # run's shut_down closes it
            signals=Signals(),
            settings=settings,
            backoff=Backoff(rng=random.Random(1)),  # noqa: S311 - jitter, not secrecy
        )
        thread = threading.Thread(target=relayer.run, args=(stop,), name="bench-relayer")
        thread.start()
        try:
            time.sleep(PROBE_SECONDS)
            yield
        finally:
            stop.set()
            thread.join()


def latencies(url: str, listen_url: str | None, items: int, log: Path) -> list[float]:
    """Milliseconds from each enqueue's commit to the rail's receipt of its item."""
    gaps = random.Random(7)  # noqa: S311 - a schedule, not secrecy
    committed: dict[str, float] = {}
    with RailSimulator(log_path=log) as simulator, relaying(url, listen_url, simulator):
        with OutboxStore.connect(url, role=Role.PRODUCER) as producer:
            for n in range(items):
                time.sleep(gaps.uniform(*GAP_SECONDS))
                key = f"wake-{uuid.uuid4()}"
                producer.enqueue(
                    EnqueueRequest(
                        instruction_id=key,
                        participant_id=f"bank-{n % 10}",
                        idempotency_key=key,
                        rail_type=RAIL,
                        payload={"amount": "10.00", "currency": "EUR"},
                    )
                )
                committed[key] = time.monotonic()
        wait_for_drain(url)
    received: dict[str, float] = {}
    for request in read_request_log(log):
        received.setdefault(str(request.idempotency_key), request.monotonic)
    return [(received[key] - committed[key]) * 1000 for key in committed]


def wait_for_drain(url: str) -> None:
    """Until nothing is pending (every item sent and recorded)."""
    deadline = time.monotonic() + DRAIN_SECONDS
    with OutboxStore.connect(url, role=Role.READONLY) as reader:
        while reader.status()[0].pending_count:
            if time.monotonic() > deadline:
                msg = f"items still pending after {DRAIN_SECONDS:.0f} s"
                raise click.ClickException(msg)
            time.sleep(0.1)


@click.command()
@bench_options(default_items=200)
def main(url: str | None, items: int, runs: int) -> None:
    """Enqueue-to-rail latency p50/p99, --items items per variant (default 200)."""
    del runs  # every item is a sample
    with server(url) as admin_url, TemporaryDirectory() as folder:
        settings = durability(admin_url)
        migrated_template(admin_url)
        figures = []
        with pgbouncer(admin_url) as bouncer:
            for variant, pooled, listen_direct in VARIANTS:
                database = clone(admin_url, name=f"outbox_bench_{variant}")
                click.echo(f"{variant}: {items} items, one at a time ...")
                url_used = bouncer.url(database) if pooled else database
                listen_url = database if listen_direct else None
                values = latencies(url_used, listen_url, items, Path(folder) / variant)
                details = {"poll_interval_seconds": POLL_SECONDS}
                figures.append(latency_figure(FIGURE, variant, values, details))
        report("wakeup_latency", figures, settings=settings)


if __name__ == "__main__":
    main()
