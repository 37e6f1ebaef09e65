"""The peer's drain: pgqueuer draining the same items in one process, as its tools run it.

Run by relayer_drain.py in the bench session's environment (the only one with pgqueuer),
against a database of its own where `pgq install` has put pgqueuer's schema. It enqueues
the items in one statement (pgqueuer's batch enqueue: the backlog is built in the database,
as ours is), then starts `--consumers` PgQueuer instances, each on its own asyncpg
connection, in drain mode under uvloop: the configuration of pgqueuer's own
`tools/benchmark.py --strategy drain`. The entrypoint is a no-op, or with `--post-to` does
the relayer's job: POSTs the job's payload (the bytes the relayer sends for the same item:
compact JSON, sorted keys) with the relayer's headers (Content-Type, Idempotency-Key,
X-Outbox-Id: the job's id, X-Instruction-Id; the key and instruction id ride in the job's
headers) through one aiohttp session, reads the JSON answer, and fails the run on any
non-2xx. The rate is items / wall time from the consumers' start to the queue's end. One
JSON line on stdout: the rate and the settings.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from typing import TYPE_CHECKING, Any

import aiohttp
import asyncpg
import attrs
import click
import uvloop
from pgqueuer import PgQueuer, types
from pgqueuer.db import AsyncpgDriver
from pgqueuer.queries import Queries

from outbox_db.payloads import canonical_json

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable

    from pgqueuer.models import Job

ENTRYPOINT = "rtp"


async def dispatch_nowhere(job: Job) -> None:
    """The no-op rail: nothing is sent."""


@attrs.define
class HttpRail:
    """POSTs each job as the relayer sends an item; counts the answers that were not 2xx."""

    session: aiohttp.ClientSession
    url: str
    refused: int = 0

    async def dispatch(self, job: Job) -> None:
        """One POST with the job's payload and the relayer's headers; the answer read whole."""
        key = str((job.headers or {})["idempotency_key"])
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": key,
            "X-Outbox-Id": str(job.id),
            "X-Instruction-Id": str((job.headers or {})["instruction_id"]),
        }
        async with self.session.post(self.url, data=job.payload, headers=headers) as answer:
            await answer.json()
            if not answer.ok:
                self.refused += 1


@contextlib.asynccontextmanager
async def rail(post_to: str | None) -> AsyncIterator[Callable[[Job], Awaitable[None]]]:
    """The entrypoint's dispatch: nowhere, or to `post_to`; fails if any POST was refused."""
    if post_to is None:
        yield dispatch_nowhere
        return
    # No connection limit of aiohttp's own: pgqueuer's max_concurrent_tasks is the knob.
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        http = HttpRail(session, post_to)
        yield http.dispatch
    if http.refused:
        msg = f"the rail refused {http.refused} POSTs"
        raise click.ClickException(msg)


@attrs.frozen
class Settings:
    """How pgqueuer drains: its consumers, their dequeue batch and jobs at once, the rail."""

    consumers: int
    batch_size: int
    max_concurrent_tasks: int  # 0: unlimited
    post_to: str | None  # None: the no-op entrypoint


async def enqueue(queries: Queries, items: int) -> None:
    """The items as the relayer's backlog holds them: its payloads, keys and instruction ids."""
    run = uuid.uuid4().hex  # keys unique to the run: a rail-sim absorbs a repeated key
    numbers = range(1, items + 1)
    payloads: list[bytes | None] = [
        canonical_json({"amount": "10.00", "currency": "USD", "creditor": f"acct-{n}"}).encode()
        for n in numbers
    ]
    headers: list[dict[str, str] | None] = [
        {"idempotency_key": f"{run}-{n}", "instruction_id": f"{run}-{n}"} for n in numbers
    ]
    await queries.enqueue([ENTRYPOINT] * items, payloads, [0] * items, headers=headers)


async def drain(url: str, items: int, settings: Settings) -> dict[str, object]:
    """Enqueue `items` jobs, drain them, and return the rate with the settings used."""
    queries = Queries(AsyncpgDriver(await asyncpg.connect(url)))
    await enqueue(queries, items)
    async with rail(settings.post_to) as dispatch:
        workers = []
        for _ in range(settings.consumers):
            worker = PgQueuer(AsyncpgDriver(await asyncpg.connect(url)))
            worker.entrypoint(ENTRYPOINT)(dispatch)
            workers.append(worker)
        started = time.perf_counter()
        await asyncio.gather(
            *(
                w.run(
                    batch_size=settings.batch_size,
                    mode=types.QueueExecutionMode.drain,
                    max_concurrent_tasks=settings.max_concurrent_tasks,
                )
                for w in workers
            )
        )
        elapsed = time.perf_counter() - started
    left = sum(row.count for row in await queries.queue_size())
    if left:
        msg = f"pgqueuer left {left} jobs in its queue"
        raise click.ClickException(msg)
    rail_used = "rail-sim over HTTP (aiohttp)" if settings.post_to else "no-op"
    used = attrs.asdict(settings, filter=lambda field, _: field.name != "post_to")
    return {
        "rate": items / elapsed,
        "settings": {"driver": "asyncpg", "event_loop": "uvloop", "mode": "drain"}
        | used
        | {"rail": rail_used},
    }


@click.command()
@click.option("--url", required=True, help="Database with pgqueuer's schema installed.")
@click.option("--items", type=int, required=True, help="Jobs to enqueue and drain.")
@click.option("--consumers", type=int, default=5, show_default=True, help="PgQueuer instances.")
@click.option("--batch-size", type=int, default=10, show_default=True, help="Dequeue batch.")
@click.option(
    "--max-concurrent-tasks",
    type=int,
    default=0,
    show_default=True,
    help="Jobs each consumer runs at once (0: unlimited).",
)
@click.option("--post-to", help="POST each job here as the relayer does (default: a no-op).")
def main(url: str, items: int, **settings: Any) -> None:  # noqa: ANN401 - Settings' fields
    """Drain `items` jobs with pgqueuer; print the rate and settings as JSON."""
    result = uvloop.run(drain(url, items, Settings(**settings)))
    click.echo(json.dumps(result, sort_keys=True))


if __name__ == "__main__":
    main()
