"""Lease repair of 100,000 expired leases: how long until every one is requeued.

Each run clones a database holding 100,000 pending items leased by a worker that died a
minute ago (built in the database with generate_series as the owner), then repairs them:
- raw_sql_lower_bound: batches of 1,000, each one statement and one commit: an UPDATE ...
  FOR UPDATE SKIP LOCKED ... RETURNING that clears the leases, feeding the INSERT of the
  ZOMBIE_REQUEUE ledger rows with their payloads: the same physical writes;
- repair_function_batch_N: the lease repairer's loop (OutboxStore.repair until a batch comes
  back short, as `outbox-relayer repair` runs it) at the default batch of 100 and at the
  largest, 1,000.
The figure is seconds for all of them (lower is better); variants' runs are interleaved.
"""

from __future__ import annotations

import functools
import time
from typing import TYPE_CHECKING, Final

import click
import psycopg

from bench_common import (
    LOWER_BOUND,
    Figure,
    bench_options,
    clone,
    durability,
    interleaved,
    migrated_template,
    report,
    server,
)
from outbox_db import OutboxStore

if TYPE_CHECKING:
    from collections.abc import Callable

PARTICIPANTS: Final = 1_000
RAW_BATCH: Final = 1_000
REPAIRER_BATCHES: Final = (100, 1_000)  # LEASE_REPAIR_BATCH_SIZE's default and its maximum
TEMPLATE: Final = "outbox_bench_expired"

EXPIRED: Final = """
INSERT INTO public.payment_outbox_pending (
    instruction_id, participant_id, sequence_id, idempotency_key, rail_type, payload,
    claimed_by, lease_token, claimed_at, lease_expires_at)
SELECT 'ins-' || g, 'participant-' || (g %% %(participants)s), g, 'key-' || g, 'rtp',
    jsonb_build_object('amount', '10.00', 'currency', 'USD', 'creditor', 'acct-' || g),
    'crashed-worker', gen_random_uuid(), now() - interval '2 minutes',
    now() - interval '1 minute'
FROM generate_series(1, %(items)s) AS g
"""
RAW_REPAIR: Final = """
WITH expired AS (
    SELECT outbox_id FROM public.payment_outbox_pending
    WHERE lease_expires_at <= now()
    ORDER BY lease_expires_at
    LIMIT %(batch)s
    FOR UPDATE SKIP LOCKED
),
requeued AS (
    UPDATE public.payment_outbox_pending AS p
    SET claimed_by = NULL, lease_token = NULL, claimed_at = NULL, lease_expires_at = NULL,
        attempt_count = p.attempt_count + 1
    FROM expired
    WHERE p.outbox_id = expired.outbox_id
    RETURNING p.outbox_id, p.instruction_id, p.participant_id, p.sequence_id,
        p.idempotency_key, p.rail_type, p.payload
)
INSERT INTO public.payment_outbox_attempts (
    outbox_id, instruction_id, participant_id, sequence_id, idempotency_key, rail_type,
    payload, attempt_no, state, error_code, worker_id)
SELECT r.*, 1, 'ZOMBIE_REQUEUE', 'LEASE_EXPIRED', 'crashed-worker'
FROM requeued AS r
"""


def expired_template(admin_url: str, items: int) -> None:
    """A migrated template holding `items` expired leases, cloned by every run."""
    url = clone(admin_url, name=TEMPLATE)
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(EXPIRED, {"items": items, "participants": PARTICIPANTS})
        connection.execute("VACUUM ANALYZE public.payment_outbox_pending")


def repair_raw(url: str) -> None:
    """The lower bound: requeue and record RAW_BATCH leases per statement until none left."""
    with psycopg.connect(url, autocommit=True) as connection:
        while connection.execute(RAW_REPAIR, {"batch": RAW_BATCH}).rowcount:
            pass


def repair_function(batch_size: int, url: str) -> None:
    """The lease repairer's loop: repair batches until one comes back short."""
    with OutboxStore.connect(url, min_size=1, max_size=1) as store:
        while len(store.repair("bench-repairer", batch_size=batch_size)) == batch_size:
            pass


def measure(admin_url: str, items: int, repair: Callable[[str], None]) -> float:
    """Seconds to repair every lease of a fresh copy of the expired template."""
    url = clone(admin_url, TEMPLATE)
    started = time.perf_counter()
    repair(url)
    elapsed = time.perf_counter() - started
    with psycopg.connect(url) as connection:
        row = connection.execute(
            "SELECT count(*) FILTER (WHERE lease_expires_at IS NOT NULL), count(*)"
            " FROM public.payment_outbox_pending"
        ).fetchone()
        recorded = connection.execute("SELECT count(*) FROM public.payment_outbox_attempts")
        attempts = recorded.fetchone()
    if row != (0, items) or attempts != (items,):
        msg = f"after repair: leased/pending {row}, attempts {attempts}; expected 0/{items}"
        raise click.ClickException(msg)
    return elapsed


@click.command()
@bench_options(default_items=100_000)
def main(url: str | None, items: int, runs: int) -> None:
    """Measure repair of --items expired leases (default 100,000) vs a raw-SQL bound."""
    with server(url) as admin_url:
        settings = durability(admin_url)
        migrated_template(admin_url)
        expired_template(admin_url, items)
        repairs: list[tuple[str, Callable[[str], None]]] = [(LOWER_BOUND, repair_raw)]
        repairs += [
            (f"repair_function_batch_{batch}", functools.partial(repair_function, batch))
            for batch in REPAIRER_BATCHES
        ]
        name = f"lease_repair_{items}_expired"
        values = interleaved(
            runs,
            [
                (label, functools.partial(measure, admin_url, items, repair))
                for label, repair in repairs
            ],
            unit="s",
        )
        figures = [
            Figure(name, label, values[label], {"items": items}, "s") for label, _ in repairs
        ]
        report("lease_repair", figures, settings=settings)


if __name__ == "__main__":
    main()
