"""Proofs: schema 0019 makes an existing ledger the first partition, row for row, invariants kept.

On the committed DISPATCHING-era fixture, and on a populated ledger built at schema 0018:
every attempt stays (in payment_outbox_attempts_legacy, not copied), every digest still
matches its row, every terminal outcome is in the terminal registry, and a pending item's next
attempt joins its earlier ones. The populated ledger has OUTBOX_MIGRATION_PROOF_ROWS attempts
(20,000 here; `nox -s soak` runs it with 1,000,000 and prints how long 0019 took).
"""

from __future__ import annotations

import os
import time
from typing import Final, LiteralString

from outbox_db import AttemptState, OutboxStore, Outcome, Role, migrate
from outbox_db.testonly import query_no_role
from outbox_db.testonly.factories import make_request

BEFORE_PARTITIONS: Final = "v1/0018_ledger_tamper_evidence.sql"
ROWS: Final = int(os.environ.get("OUTBOX_MIGRATION_PROOF_ROWS", "20000"))
PENDING: Final = 50
LEGACY: Final = "payment_outbox_attempts_legacy"

# As the owner at schema 0018: ROWS attempts of finished items, one in ten FAILED, each with
# its digest (the trigger of 0018 writes them).
FILL: LiteralString = """
INSERT INTO public.payment_outbox_attempts (
    outbox_id, instruction_id, participant_id, sequence_id, idempotency_key, rail_type,
    payload, attempt_no, state, claimed_at, rail_reference, latency_ms, worker_id)
SELECT gen_random_uuid(), 'ins-' || i, 'participant-' || i %% 100, i, 'key-' || i, 'rtp',
    jsonb_build_object('amount', (i %% 9000)::text || '.00', 'iban', 'DE89370400440532013000'),
    1, CASE WHEN i %% 10 = 0 THEN 'FAILED' ELSE 'DISPATCHED' END::public.outbox_attempt_state,
    clock_timestamp(), 'ref-' || i, 7, 'worker-legacy'
FROM generate_series(1, %s) AS i
"""
# What must hold after 0019, in one row: attempts, those in the legacy partition, terminal
# outcomes, those registered, and rows whose digest does not match.
INVARIANTS: LiteralString = """
SELECT
    (SELECT count(*) FROM public.payment_outbox_attempts),
    (SELECT count(*) FROM public.payment_outbox_attempts
     WHERE tableoid = 'public.payment_outbox_attempts_legacy'::regclass),
    (SELECT count(DISTINCT outbox_id) FROM public.payment_outbox_attempts
     WHERE state IN ('DISPATCHED', 'FAILED')),
    (SELECT count(*) FROM public.outbox_terminal_outcomes),
    (SELECT count(*) FROM public.outbox_ledger_rows() AS r
     WHERE r.fields IS NULL OR r.digest IS NULL OR public.outbox_row_digest(r.fields) <> r.digest)
"""
PARTITION_OF: LiteralString = """
SELECT tableoid::regclass::text, attempt_no FROM public.payment_outbox_attempts
WHERE outbox_id = %s ORDER BY attempt_no
"""


def retry_once_each(url: str) -> list[str]:
    """Claim every due item and answer RETRYABLE: the items, one attempt each in the ledger."""
    with OutboxStore.connect(url, role=Role.EXECUTOR) as executor:
        items = executor.claim("worker-1", batch_size=PENDING, lease_seconds=30)
        outcomes = [Outcome(lease=i.lease, state=AttemptState.RETRYABLE) for i in items]
        executor.complete_batch("worker-1", outcomes)
    return [str(item.outbox_id) for item in items]


def dispatch_all(url: str) -> int:
    """Claim every due item (retries due at once) and answer DISPATCHED: how many."""
    with OutboxStore.connect(url, role=Role.EXECUTOR) as executor:
        items = executor.claim("worker-1", batch_size=PENDING + 10, lease_seconds=30)
        outcomes = [Outcome(lease=i.lease, state=AttemptState.DISPATCHED) for i in items]
        executor.complete_batch("worker-1", outcomes)
    return len(items)


def test_a_populated_ledger_is_partitioned_row_for_row(outbox_empty_database: str) -> None:
    """ROWS attempts and PENDING items mid-retry at 0018; after 0019 nothing is lost or moved."""
    url = outbox_empty_database
    migrate(url, through=BEFORE_PARTITIONS)
    query_no_role(url, FILL, [ROWS])
    with OutboxStore.connect(url, role=Role.PRODUCER) as producer:
        producer.enqueue_many([make_request() for _ in range(PENDING)])
    retried = retry_once_each(url)

    started = time.perf_counter()
    migrate(url)
    took = time.perf_counter() - started
    print(f"schema 0019 on a ledger of {ROWS + PENDING:,} attempts: {took:.1f} s")  # noqa: T201

    total = ROWS + PENDING
    terminal = ROWS
    assert query_no_role(url, INVARIANTS) == [(total, total, terminal, terminal, 0)]
    assert dispatch_all(url) == PENDING
    assert query_no_role(url, PARTITION_OF, [retried[0]]) == [(LEGACY, 1), (LEGACY, 2)]
    assert query_no_role(url, INVARIANTS)[0][2:] == (terminal + PENDING, terminal + PENDING, 0)


def test_the_dispatching_era_fixture_becomes_the_legacy_partition(
    outbox_legacy_database: str,
) -> None:
    """Every fixture attempt in the legacy partition, its terminals registered, digests intact."""
    url = outbox_legacy_database
    migrate(url, through=BEFORE_PARTITIONS)
    (before,) = query_no_role(url, "SELECT count(*) FROM public.payment_outbox_attempts")[0]
    migrate(url)

    (attempts, in_legacy, terminal, registered, altered) = query_no_role(url, INVARIANTS)[0]
    assert (attempts, in_legacy, altered) == (before, before, 0)
    assert terminal == registered
    months = query_no_role(
        url, "SELECT DISTINCT ledger_month::text FROM public.payment_outbox_pending"
    )
    assert months == [("-infinity",)], "items pending at the migration keep the legacy month"
    dispatched = dispatch_all(url)
    assert dispatched > 0, "the fixture has due items"
    after = attempts + dispatched
    assert query_no_role(url, INVARIANTS) == [
        (after, after, terminal + dispatched, terminal + dispatched, 0)
    ]
