"""The peer's drain: pgqueuer draining the same items in one process, as its tools run it.

Run by relayer_drain.py in the bench session's environment (the only one with pgqueuer),
against a database of its own where `pgq install` has put pgqueuer's schema. It enqueues
the items in one statement (pgqueuer's batch enqueue: the backlog is built in the database,
as ours is), then starts `--consumers` PgQueuer instances, each on its own asyncpg
connection, with a no-op entrypoint, in drain mode under uvloop: the configuration of
pgqueuer's own `tools/benchmark.py --strategy drain`. The rate is items / wall time from
the consumers' start to the queue's end. One JSON line on stdout: the rate and the settings.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import TYPE_CHECKING

import asyncpg
import click
import uvloop
from pgqueuer import PgQueuer, types
from pgqueuer.db import AsyncpgDriver
from pgqueuer.queries import Queries

if TYPE_CHECKING:
    from pgqueuer.models import Job

ENTRYPOINT = "rtp"


async def dispatch(job: Job) -> None:
    """The no-op rail: nothing is sent."""


async def drain(url: str, items: int, consumers: int, batch_size: int) -> dict[str, object]:
    """Enqueue `items` jobs, drain them, and return the rate with the settings used."""
    queries = Queries(AsyncpgDriver(await asyncpg.connect(url)))
    payloads = [
        json.dumps({"amount": "10.00", "currency": "USD", "creditor": f"acct-{n}"}).encode()
        for n in range(items)
    ]
    await queries.enqueue([ENTRYPOINT] * items, payloads, [0] * items)
    workers = []
    for _ in range(consumers):
        worker = PgQueuer(AsyncpgDriver(await asyncpg.connect(url)))
        worker.entrypoint(ENTRYPOINT)(dispatch)
        workers.append(worker)
    started = time.perf_counter()
    await asyncio.gather(
        *(w.run(batch_size=batch_size, mode=types.QueueExecutionMode.drain) for w in workers)
    )
    elapsed = time.perf_counter() - started
    left = sum(row.count for row in await queries.queue_size())
    if left:
        msg = f"pgqueuer left {left} jobs in its queue"
        raise click.ClickException(msg)
    return {
        "rate": items / elapsed,
        "settings": {
            "driver": "asyncpg",
            "event_loop": "uvloop",
            "consumers": consumers,
            "batch_size": batch_size,
            "mode": "drain",
        },
    }


@click.command()
@click.option("--url", required=True, help="Database with pgqueuer's schema installed.")
@click.option("--items", type=int, required=True, help="Jobs to enqueue and drain.")
@click.option("--consumers", type=int, default=5, show_default=True, help="PgQueuer instances.")
@click.option("--batch-size", type=int, default=10, show_default=True, help="Dequeue batch.")
def main(url: str, items: int, consumers: int, batch_size: int) -> None:
    """Drain `items` no-op jobs with pgqueuer; print the rate and settings as JSON."""
    result = uvloop.run(drain(url, items, consumers, batch_size))
    click.echo(json.dumps(result, sort_keys=True))


if __name__ == "__main__":
    main()
