"""Proof: the claim returns each item's last attempt's error code (migration 0008).

A relayer needs it to decide, at claim time, whether the previous attempt's outcome is
unknown at the rail and must be looked up before a re-send.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from outbox_db import AttemptState, Outcome
from outbox_db.testonly import expire_lease, query_no_role
from outbox_db.testonly.factories import make_request

if TYPE_CHECKING:
    from outbox_db import ClaimedItem, OutboxStore
    from outbox_db.testonly.pytest_plugin import Database

DUE_NOW = "UPDATE public.payment_outbox_pending SET next_attempt_at = now()"


def claim_one(store: OutboxStore, worker_id: str) -> ClaimedItem:
    """The one due item, leased to `worker_id`."""
    (item,) = store.claim(worker_id, batch_size=10, lease_seconds=30)
    return item


def test_the_claim_returns_the_last_attempts_error_code(
    outbox_database: Database, outbox_store: OutboxStore
) -> None:
    """None before any attempt; then the error code of the latest attempt: a retryable answer's, then lease repair's LEASE_EXPIRED."""
    outbox_id = outbox_store.enqueue(make_request()).outbox_id
    first = claim_one(outbox_store, "relayer-a")
    assert (first.attempt_count, first.last_error_code) == (0, None)
    outbox_store.complete(
        "relayer-a",
        Outcome(
            lease=first.lease,
            state=AttemptState.RETRYABLE,
            error_code="RAIL_TIMEOUT",
            retry_delay_seconds=60,
        ),
    )
    query_no_role(outbox_database.url, DUE_NOW)

    second = claim_one(outbox_store, "relayer-b")
    assert (second.attempt_count, second.last_error_code) == (1, "RAIL_TIMEOUT")
    expire_lease(outbox_database.url, outbox_id)
    outbox_store.repair("repairer", batch_size=10)

    third = claim_one(outbox_store, "relayer-c")
    assert (third.attempt_count, third.last_error_code) == (2, "LEASE_EXPIRED")
    outbox_store.complete(
        "relayer-c",
        Outcome(
            lease=third.lease, state=AttemptState.RETRYABLE, rail_code="503", retry_delay_seconds=0
        ),
    )

    fourth = claim_one(outbox_store, "relayer-d")
    assert (fourth.attempt_count, fourth.last_error_code) == (3, None), "a code of its own"
