"""Enqueue throughput, one item per transaction, next to a raw-SQL lower bound in the same run.

Four client processes enqueue items spread over 1,000 participants, each item in its own
transaction, through OutboxStore.enqueue (the function with its validation, idempotency
lookup and gapless per-participant sequence). The lower bound does the same physical writes
by hand in the same number of transactions: bump the participant's sequence row and insert
the pending row, without the function, its checks or the idempotency lookup. Each figure
runs several times on a fresh clone of a migrated template; median and spread are printed
and written as JSON lines to reports/bench/enqueue.jsonl.

The server must be durable (fsync and synchronous_commit on): the default embedded server
is started that way; with DATABASE_URL the script reports the server's settings.
"""

from __future__ import annotations

import multiprocessing
import time
from typing import TYPE_CHECKING, Final

import click
import psycopg
from psycopg.types.json import Jsonb

from bench_common import (
    LOWER_BOUND,
    Figure,
    bench_options,
    clone,
    durability,
    migrated_template,
    repeat,
    report,
    server,
)
from outbox_db import EnqueueRequest, OutboxStore

if TYPE_CHECKING:
    from collections.abc import Callable
    from multiprocessing.synchronize import Barrier

PARTICIPANTS: Final = 1_000
CLIENTS: Final = 4
FIGURE: Final = f"enqueue_single_txn_{CLIENTS}_clients_{PARTICIPANTS}_participants"

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


def request(client: int, n: int) -> EnqueueRequest:
    """The n-th item of a client; participants cycle so all 1,000 are used."""
    return EnqueueRequest(
        instruction_id=f"bench-{client}-{n}",
        participant_id=f"participant-{(client + n * CLIENTS) % PARTICIPANTS}",
        idempotency_key=f"bench-{client}-{n}/v1",
        rail_type="rtp",
        payload={"amount": "10.00", "currency": "USD", "creditor": f"acct-{n}"},
    )


def via_function(url: str, client: int, items: int, barrier: Barrier) -> None:
    """One client of the measured path: OutboxStore.enqueue, one transaction per item."""
    with OutboxStore.connect(url, min_size=1, max_size=1) as store:
        barrier.wait()
        for n in range(items):
            store.enqueue(request(client, n))


def raw_sql(url: str, client: int, items: int, barrier: Barrier) -> None:
    """One client of the lower bound: the same writes by hand, one transaction per item."""
    with psycopg.connect(url, autocommit=True) as connection:
        barrier.wait()
        for n in range(items):
            item = request(client, n)
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


def measure(
    admin_url: str, client_main: Callable[[str, int, int, Barrier], None], items: int
) -> float:
    """Items per second of CLIENTS processes on a fresh clone, barrier to last commit."""
    url = clone(admin_url)
    per_client = items // CLIENTS
    barrier = multiprocessing.Barrier(CLIENTS + 1)
    workers = [
        multiprocessing.Process(target=client_main, args=(url, client, per_client, barrier))
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
        msg = "a benchmark client failed"
        raise click.ClickException(msg)
    return per_client * CLIENTS / elapsed


@click.command()
@bench_options(default_items=10_000)
def main(url: str | None, items: int, runs: int) -> None:
    """Measure enqueue throughput (4 clients, 1,000 participants) against a raw-SQL lower bound."""
    with server(url) as admin_url:
        settings = durability(admin_url)
        migrated_template(admin_url)
        figures = []
        for label, client_main in ((LOWER_BOUND, raw_sql), ("enqueue_function", via_function)):
            rates = repeat(label, runs, measure, admin_url, client_main, items)
            figures.append(Figure(FIGURE, label, rates, {"items": items}))
        report("enqueue", figures, settings=settings)


if __name__ == "__main__":
    main()
