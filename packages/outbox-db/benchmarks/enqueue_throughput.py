"""Enqueue throughput next to a raw-SQL lower bound in the same run, three figures.

- one item per transaction, 4 client processes over 1,000 participants, through
  OutboxStore.enqueue (the function with its validation, idempotency lookup and gapless
  per-participant sequence), and through AsyncOutboxStore.enqueue from an asyncio client
  (an async service's path: the same function, awaited);
- the same with all 4 clients on one participant: the per-participant sequence row is the
  hot spot every enqueue of that participant locks until its commit. A client that meets a
  deadlock or serialization error fails the run: none may surface to the caller;
- the batch API: 1 client, OutboxStore.enqueue_many of 1,000 requests per transaction over
  1,000 participants (five times the items of the other figures).
The lower bounds do the same physical writes by hand in the same number of transactions:
bump the participants' sequence rows and insert the pending rows, without the functions,
their checks or the idempotency lookup. Each figure runs several times, variants
interleaved, on fresh clones of a migrated template; median and spread are printed and
written as JSON lines to reports/bench/enqueue.jsonl.

The server must be durable (fsync and synchronous_commit on): the default embedded server
is started that way; with DATABASE_URL the script reports the server's settings.
"""

from __future__ import annotations

import asyncio
import functools
import multiprocessing
import time
from typing import TYPE_CHECKING, Any, Final

import click
import psycopg
from psycopg.types.json import Jsonb

from bench_common import (
    LOWER_BOUND,
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
from outbox_db import AsyncOutboxStore, EnqueueRequest, OutboxStore

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from multiprocessing.synchronize import Barrier

PARTICIPANTS: Final = 1_000
CLIENTS: Final = 4
BATCH: Final = 1_000
BATCH_ITEMS_FACTOR: Final = 5
MANY: Final = f"enqueue_single_txn_{CLIENTS}_clients_{PARTICIPANTS}_participants"
HOT: Final = f"enqueue_single_txn_{CLIENTS}_clients_1_participant"
BATCHED: Final = f"enqueue_batch_{BATCH}_per_txn_1_client"

RAW_SEQUENCE: Final = """
    INSERT INTO public.participant_outbox_sequences AS s (participant_id, next_sequence_id)
    VALUES (%(participant_id)s, 2)
    ON CONFLICT (participant_id) DO UPDATE SET next_sequence_id = s.next_sequence_id + 1
    RETURNING s.next_sequence_id - 1
"""
RAW_PENDING: Final = """
    INSERT INTO public.payment_outbox_pending (
        outbox_id, instruction_id, participant_id, sequence_id, idempotency_key, rail_type, payload)
    VALUES (gen_random_uuid(), %(instruction_id)s, %(participant_id)s, %(sequence_id)s,
        %(idempotency_key)s, %(rail_type)s, %(payload)s)
"""


RAW_BATCH: Final = """
WITH request AS (
    SELECT r.*, row_number() OVER (PARTITION BY r.participant_id ORDER BY r.position) AS rank,
        count(*) OVER (PARTITION BY r.participant_id) AS participant_count
    FROM unnest(%(instruction_ids)s::text[], %(participant_ids)s::text[],
        %(idempotency_keys)s::text[], %(rail_types)s::text[], %(payloads)s::jsonb[])
        WITH ORDINALITY AS r(instruction_id, participant_id, idempotency_key, rail_type, payload,
            position)
),
numbered AS (
    INSERT INTO public.participant_outbox_sequences AS s (participant_id, next_sequence_id)
    SELECT participant_id, count(*) + 1 FROM request GROUP BY participant_id
    ORDER BY participant_id
    ON CONFLICT (participant_id)
        DO UPDATE SET next_sequence_id = s.next_sequence_id + EXCLUDED.next_sequence_id - 1
    RETURNING s.participant_id, s.next_sequence_id
)
INSERT INTO public.payment_outbox_pending (
    outbox_id, instruction_id, participant_id, sequence_id, idempotency_key, rail_type, payload)
SELECT gen_random_uuid(), r.instruction_id, r.participant_id,
    n.next_sequence_id - r.participant_count + r.rank - 1, r.idempotency_key, r.rail_type,
    r.payload
FROM request AS r JOIN numbered AS n USING (participant_id)
"""


def request(client: int, n: int, *, hot: bool = False) -> EnqueueRequest:
    """The n-th item of a client; participants cycle so all 1,000 are used, or one if `hot`."""
    participant = 0 if hot else (client + n * CLIENTS) % PARTICIPANTS
    return EnqueueRequest(
        instruction_id=f"bench-{client}-{n}",
        participant_id=f"participant-{participant}",
        idempotency_key=f"bench-{client}-{n}/v1",
        rail_type="rtp",
        payload={"amount": "10.00", "currency": "USD", "creditor": f"acct-{n}"},
    )


def via_function(url: str, client: int, items: int, barrier: Barrier, *, hot: bool) -> None:
    """One client of the measured path: OutboxStore.enqueue, one transaction per item."""
    with OutboxStore.connect(url, min_size=1, max_size=1) as store:
        barrier.wait()
        for n in range(items):
            store.enqueue(request(client, n, hot=hot))


def via_async_function(url: str, client: int, items: int, barrier: Barrier, *, hot: bool) -> None:
    """One client of an async service: AsyncOutboxStore.enqueue, one transaction per item."""

    async def enqueue_all() -> None:
        async with await AsyncOutboxStore.connect(url, min_size=1, max_size=1) as store:
            await asyncio.to_thread(barrier.wait)
            for n in range(items):
                await store.enqueue(request(client, n, hot=hot))

    asyncio.run(enqueue_all())


def raw_sql(url: str, client: int, items: int, barrier: Barrier, *, hot: bool) -> None:
    """One client of the lower bound: the same writes by hand, one transaction per item."""
    with psycopg.connect(url, autocommit=True) as connection:
        barrier.wait()
        for n in range(items):
            item = request(client, n, hot=hot)
            with connection.transaction():
                row = connection.execute(
                    RAW_SEQUENCE, {"participant_id": item.participant_id}
                ).fetchone()
                params = {
                    "instruction_id": item.instruction_id,
                    "participant_id": item.participant_id,
                    "sequence_id": row[0] if row else None,
                    "idempotency_key": item.idempotency_key,
                    "rail_type": item.rail_type,
                    "payload": Jsonb(dict(item.payload)),
                }
                connection.execute(RAW_PENDING, params)


def batches(items: int) -> list[list[EnqueueRequest]]:
    """`items` requests over 1,000 participants, in batches of BATCH."""
    requests = [request(0, n) for n in range(items)]
    return [requests[start : start + BATCH] for start in range(0, items, BATCH)]


def batch_via_function(url: str, items: int) -> None:
    """The measured path: OutboxStore.enqueue_many, one transaction per batch."""
    with OutboxStore.connect(url, min_size=1, max_size=1) as store:
        for batch in batches(items):
            store.enqueue_many(batch)


def batch_raw_sql(url: str, items: int) -> None:
    """The lower bound: one set-based statement per batch, one transaction per batch."""
    with psycopg.connect(url, autocommit=True) as connection:
        for batch in batches(items):
            params = {
                "instruction_ids": [r.instruction_id for r in batch],
                "participant_ids": [r.participant_id for r in batch],
                "idempotency_keys": [r.idempotency_key for r in batch],
                "rail_types": [r.rail_type for r in batch],
                "payloads": [Jsonb(dict(r.payload)) for r in batch],
            }
            connection.execute(RAW_BATCH, params)


def measure_clients(
    admin_url: str,
    client_main: Callable[..., None],
    items: int,
    *,
    hot: bool,
    template: str = TEMPLATE,
) -> float:
    """Items per second of CLIENTS processes on a fresh clone of `template`, barrier to end."""
    url = clone(admin_url, template)
    per_client = items // CLIENTS
    barrier = multiprocessing.Barrier(CLIENTS + 1)
    workers = [
        multiprocessing.Process(
            target=client_main, args=(url, client, per_client, barrier), kwargs={"hot": hot}
        )
        for client in range(CLIENTS)
    ]
    for worker in workers:
        worker.start()
    barrier.wait()
    started = time.perf_counter()
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - started
    if any(worker.exitcode for worker in workers):
        msg = "a benchmark client failed (an error surfaced to the caller)"
        raise click.ClickException(msg)
    return per_client * CLIENTS / elapsed


def measure_batches(admin_url: str, client_main: Callable[[str, int], None], items: int) -> float:
    """Items per second of one client enqueueing `items` in batches on a fresh clone."""
    url = clone(admin_url)
    started = time.perf_counter()
    client_main(url, items)
    return items / (time.perf_counter() - started)


def figure(
    name: str,
    runs: int,
    variants: Sequence[tuple[str, Callable[[], float]]],
    details: dict[str, Any],
) -> list[Figure]:
    """One figure's variants, measured interleaved."""
    values = interleaved(runs, [(f"{name} {label}", measure) for label, measure in variants])
    return [Figure(name, label, values[f"{name} {label}"], details) for label, _ in variants]


@click.command()
@bench_options(default_items=10_000)
def main(url: str | None, items: int, runs: int) -> None:
    """Measure enqueue throughput (4 clients; one hot participant; batches) vs raw-SQL bounds."""
    with server(url) as admin_url:
        settings = durability(admin_url)
        migrated_template(admin_url)
        figures = []
        for name, hot in ((MANY, False), (HOT, True)):
            clients = [(LOWER_BOUND, raw_sql), ("enqueue_function", via_function)]
            clients += [] if hot else [("async_enqueue_function", via_async_function)]
            variants = [
                (label, functools.partial(measure_clients, admin_url, client, items, hot=hot))
                for label, client in clients
            ]
            details = {"items": items, "clients": CLIENTS, "errors_surfaced": 0}
            figures += figure(name, runs, variants, details)
        batch_items = items * BATCH_ITEMS_FACTOR
        batch_clients = ((LOWER_BOUND, batch_raw_sql), ("enqueue_many", batch_via_function))
        variants = [
            (label, functools.partial(measure_batches, admin_url, client, batch_items))
            for label, client in batch_clients
        ]
        figures += figure(BATCHED, runs, variants, {"items": batch_items, "batch_size": BATCH})
        report("enqueue", figures, settings=settings)


if __name__ == "__main__":
    main()
