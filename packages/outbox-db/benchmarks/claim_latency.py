"""Claim latency as the backlog grows: claiming 100 due items behind 10k, 100k and 1M later ones.

One database grows a backlog of items that are not yet due (next attempt a day away), built
in the database with generate_series as the owner (the claim reads only the pending table,
so the rows need no history). At each size, 10,000 due items are put in front of it, the
table is vacuumed and analysed as autovacuum would, and claims of 100 alternate between the
raw-SQL lower bound (the bare UPDATE ... FOR UPDATE SKIP LOCKED ... RETURNING, committed)
and OutboxStore.claim (claim_outbox_batch, committed). Each claim's latency is one sample;
the figures report p50 (the median) and p99, and bench_summary.py judges how p99 grows from
the smallest backlog to the largest.

Then, on the largest backlog, a tenth of --items more items wait in 1,000 ordered lanes
(schema 0009) behind lane heads another worker holds, due an hour ago: what a claim would
wade through if waiting items were in its index. The claim is sampled again
(claim_100_waiting_N) and bench_summary.py compares its p99 with the largest backlog's.
"""

from __future__ import annotations

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
    latency_figure,
    migrated_template,
    report,
    server,
)
from outbox_db import OutboxStore
from relayer_drain import BATCH, RAW_CLAIM

if TYPE_CHECKING:
    from collections.abc import Callable

PARTICIPANTS: Final = 1_000
DUE: Final = 10_000
BACKLOGS: Final = (10_000, 100_000, 1_000_000)

LATER: Final = """
INSERT INTO public.payment_outbox_pending (
    instruction_id, participant_id, sequence_id, idempotency_key, rail_type, payload,
    next_attempt_at)
SELECT 'later-' || g, 'later-' || (g %% %(participants)s), g, 'later-' || g, 'rtp',
    jsonb_build_object('amount', '10.00', 'currency', 'USD', 'creditor', 'acct-' || g),
    now() + interval '1 day'
FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS g
"""
DUE_NOW: Final = """
INSERT INTO public.payment_outbox_pending (
    instruction_id, participant_id, sequence_id, idempotency_key, rail_type, payload,
    next_attempt_at)
SELECT 'due-' || %(round)s || '-' || g, 'due-' || %(round)s || '-' || (g %% %(participants)s),
    g, 'due-' || g, 'rtp',
    jsonb_build_object('amount', '10.00', 'currency', 'USD', 'creditor', 'acct-' || g),
    now() - interval '1 second'
FROM generate_series(1, %(due)s::bigint) AS g
"""
# What the sampled claims took (not the lane heads "elsewhere" holds: deleting those would
# release their lanes' next items).
CLAIMED: Final = "DELETE FROM public.payment_outbox_pending WHERE claimed_by IN ('raw', 'bench')"
# Lane heads held by a worker that is not claiming (sequence 0), then the lanes' waiting items.
LANE_HEADS: Final = """
INSERT INTO public.payment_outbox_pending (
    instruction_id, participant_id, sequence_id, idempotency_key, rail_type, payload,
    ordered, claimed_by, lease_token, claimed_at, lease_expires_at)
SELECT 'head-' || g, 'lane-' || g, 0, 'head-' || g, 'ordered',
    jsonb_build_object('amount', '10.00', 'currency', 'USD', 'creditor', 'acct-' || g),
    true, 'elsewhere', gen_random_uuid(), now(), now() + interval '1 day'
FROM generate_series(1, %(participants)s::bigint) AS g
"""
WAITING: Final = """
INSERT INTO public.payment_outbox_pending (
    instruction_id, participant_id, sequence_id, idempotency_key, rail_type, payload,
    next_attempt_at, ordered, awaiting_predecessor)
SELECT 'waiting-' || g, 'lane-' || (g %% %(participants)s + 1), g, 'waiting-' || g, 'ordered',
    jsonb_build_object('amount', '10.00', 'currency', 'USD', 'creditor', 'acct-' || g),
    now() - interval '1 hour', true, true
FROM generate_series(1, %(waiting)s::bigint) AS g
"""


def grow(url: str, backlog: int, target: int, round_no: int) -> None:
    """Grow the later backlog to `target` and put DUE fresh due items in front of it."""
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(CLAIMED)
        params = {"participants": PARTICIPANTS, "first": backlog + 1, "last": target}
        connection.execute(LATER, params)
        params = {"participants": PARTICIPANTS, "round": round_no, "due": DUE}
        connection.execute(DUE_NOW, params)
        connection.execute("VACUUM ANALYZE public.payment_outbox_pending")


def add_waiting(url: str, waiting: int) -> None:
    """Put `waiting` items in PARTICIPANTS ordered lanes, behind heads nobody will claim."""
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(LANE_HEADS, {"participants": PARTICIPANTS})
        connection.execute(WAITING, {"participants": PARTICIPANTS, "waiting": waiting})


def timed(claim: Callable[[], int]) -> float:
    """Milliseconds of one committed claim of BATCH items."""
    started = time.perf_counter()
    claimed = claim()
    elapsed = (time.perf_counter() - started) * 1000
    if claimed != BATCH:
        msg = f"a claim returned {claimed} items, expected {BATCH}"
        raise click.ClickException(msg)
    return elapsed


def sample(url: str, claims: int) -> dict[str, list[float]]:
    """`claims` latencies of each variant, alternating between them."""
    samples: dict[str, list[float]] = {LOWER_BOUND: [], "claim_function": []}
    with (
        psycopg.connect(url, autocommit=True) as raw,
        OutboxStore.connect(url, min_size=1, max_size=1) as store,
    ):

        def raw_claim() -> int:
            with raw.transaction():
                return len(raw.execute(RAW_CLAIM, {"batch": BATCH, "worker": "raw"}).fetchall())

        def function_claim() -> int:
            return len(store.claim("bench", batch_size=BATCH, lease_seconds=300))

        for _ in range(claims):
            samples[LOWER_BOUND].append(timed(raw_claim))
            samples["claim_function"].append(timed(function_claim))
    return samples


@click.command()
@bench_options(default_items=1_000_000)
def main(url: str | None, items: int, runs: int) -> None:
    """Claim p50/p99 behind 1%, 10% and 100% of --items not-yet-due items (default 1,000,000)."""
    del runs  # every claim is a sample; the claims per size are fixed by the due items
    claims = DUE // BATCH // 2
    with server(url) as admin_url:
        settings = durability(admin_url)
        migrated_template(admin_url)
        database = clone(admin_url)
        figures = []
        backlog = 0
        for round_no, target in enumerate(size * items // BACKLOGS[-1] for size in BACKLOGS):
            click.echo(f"building a backlog of {target:,} not-yet-due items ...")
            grow(database, backlog, target, round_no)
            backlog = target
            figures += measured(database, claims, f"claim_100_backlog_{target}", target)
        waiting = items // 10
        click.echo(f"adding {waiting:,} items waiting in {PARTICIPANTS:,} ordered lanes ...")
        add_waiting(database, waiting)
        grow(database, backlog, backlog, len(BACKLOGS))
        figures += measured(database, claims, f"claim_100_waiting_{waiting}", backlog, waiting)
        report("claim_latency", figures, settings=settings)


def measured(url: str, claims: int, name: str, backlog: int, waiting: int = 0) -> list[Figure]:
    """The figure `name`: each variant's claim latencies, printed as p50 and p99."""
    details = {"backlog": backlog, "waiting": waiting, "due": DUE, "batch_size": BATCH}
    return [
        latency_figure(name, variant, values, details)
        for variant, values in sample(url, claims).items()
    ]


if __name__ == "__main__":
    main()
