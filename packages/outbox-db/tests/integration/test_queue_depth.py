"""Proofs: the queue depth that metrics read (schema 0014) is the status view's, cheaper.

It counts what the status view counts, from the pending table alone, for the roles that may
read it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final, LiteralString

import psycopg
import pytest

from outbox_db import (
    AttemptState,
    Lease,
    OutboxStore,
    Outcome,
    PermissionDenied,
    QueueDepth,
    Role,
)
from outbox_db.testonly import expire_lease, query_no_role
from outbox_db.testonly.factories import make_request

if TYPE_CHECKING:
    from outbox_db.testonly.pytest_plugin import Database

# The scans this transaction made of each table so far (PostgreSQL's per-transaction stats).
# The ledger's scans are its partitions' (schema 0019): summed under its name.
XACT_SCANS: Final[LiteralString] = """
SELECT CASE WHEN relname = 'payment_outbox_pending' THEN relname
        ELSE 'payment_outbox_attempts' END AS relation,
    sum(seq_scan + coalesce(idx_scan, 0))::int
FROM pg_catalog.pg_stat_xact_user_tables
WHERE schemaname = 'public'
    AND (relname = 'payment_outbox_pending' OR relname LIKE 'payment\\_outbox\\_attempts%')
GROUP BY 1
ORDER BY 1
"""
BACKDATE: Final[LiteralString] = (
    "UPDATE public.payment_outbox_pending SET next_attempt_at = now() - interval '90 seconds'"
    " WHERE claimed_by IS NULL AND next_attempt_at <= now()"
)


def fill_every_state(store: OutboxStore, url: str) -> None:
    """On rail rtp: 2 due (90 s old), 1 scheduled, 1 leased, 1 expired; on ach: 1 due."""
    for _ in range(5):
        store.enqueue(make_request(rail_type="rtp"))
    claimed = store.claim("worker-1", batch_size=3, lease_seconds=60)
    retried, held, expired = claimed
    store.complete(
        "worker-1",
        Outcome(
            lease=Lease(outbox_id=retried.outbox_id, lease_token=retried.lease_token),
            state=AttemptState.RETRYABLE,
            error_code="RAIL_UNAVAILABLE",
            retry_delay_seconds=600,
        ),
    )
    del held  # stays leased
    expire_lease(url, expired.outbox_id)
    query_no_role(url, BACKDATE)
    store.enqueue(make_request(rail_type="ach"))


def test_queue_depth_counts_what_the_status_view_counts(
    outbox_database: Database, outbox_store: OutboxStore
) -> None:
    """Every state of every rail, and the oldest due item's age, as the status view has them."""
    fill_every_state(outbox_store, outbox_database.url)

    depths = {depth.rail_type: depth for depth in outbox_store.queue_depth()}
    with OutboxStore.connect(outbox_database.url, role=Role.READONLY) as reader:
        statuses = {status.rail_type: status for status in reader.status()[1:]}

    rtp = depths["rtp"]
    assert (rtp.due_count, rtp.scheduled_count, rtp.leased_count, rtp.expired_lease_count) == (
        2,
        1,
        1,
        1,
    )
    assert 90 <= rtp.oldest_due_age_seconds < 3600
    assert (depths["ach"].due_count, depths["ach"].oldest_due_age_seconds < 60) == (1, True)
    for rail, depth in depths.items():
        status = statuses[rail]
        assert (depth.due_count, depth.scheduled_count, depth.waiting_count) == (
            status.due_count,
            status.scheduled_count,
            status.waiting_count,
        )
        assert (depth.leased_count, depth.expired_lease_count) == (
            status.leased_count,
            status.expired_lease_count,
        )


def test_queue_depth_never_reads_the_ledger(
    outbox_database: Database, outbox_store: OutboxStore
) -> None:
    """A scrape's cost follows the queue: the ledger is not scanned at all, the queue once."""
    fill_every_state(outbox_store, outbox_database.url)
    with psycopg.connect(outbox_database.url) as connection:
        connection.execute("SELECT * FROM public.outbox_queue_depth()").fetchall()
        scans: dict[str, int] = dict(connection.execute(XACT_SCANS).fetchall())

    assert scans == {"payment_outbox_attempts": 0, "payment_outbox_pending": 1}


@pytest.mark.parametrize("role", [Role.EXECUTOR, Role.READONLY, Role.AUDITOR])
def test_the_relayer_and_readers_may_read_the_depth(outbox_database: Database, role: Role) -> None:
    """The one exporting process may be a relayer (executor) or a reader."""
    with OutboxStore.connect(outbox_database.url, role=role) as store:
        assert store.queue_depth() == []


def test_a_producer_may_not_read_the_depth(outbox_database: Database) -> None:
    """The producer enqueues and nothing else (42501)."""
    with (
        OutboxStore.connect(outbox_database.url, role=Role.PRODUCER) as store,
        pytest.raises(PermissionDenied) as refused,
    ):
        store.queue_depth()

    assert refused.value.sqlstate == "42501"


def test_depth_rows_are_typed_records(outbox_store: OutboxStore) -> None:
    """An empty rail never appears: a row per rail that has items."""
    outbox_store.enqueue(make_request(rail_type="sepa"))

    (depth,) = outbox_store.queue_depth()

    assert depth == QueueDepth(
        rail_type="sepa",
        due_count=1,
        scheduled_count=0,
        waiting_count=0,
        leased_count=0,
        expired_lease_count=0,
        oldest_due_age_seconds=depth.oldest_due_age_seconds,
    )
