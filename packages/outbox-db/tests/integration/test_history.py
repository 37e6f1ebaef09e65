"""Proof: `history` reads an item's queue row, attempts and re-drive links, with either API."""

from __future__ import annotations

from typing import TYPE_CHECKING

from outbox_db import AttemptState, ItemSelector, OutboxStore, Outcome, Role
from outbox_db.testonly.factories import make_request

if TYPE_CHECKING:
    from outbox_db.testonly.pytest_plugin import Database


def test_history_reads_queue_row_attempts_and_redrive_links(
    outbox_database: Database, reader_store: OutboxStore
) -> None:
    """A retried then failed item, re-driven: both items, each with what the database holds."""
    url = outbox_database.url
    with (
        OutboxStore.connect(url, role=Role.EXECUTOR) as relayer,
        OutboxStore.connect(url, role=Role.OPERATOR) as operator,
    ):
        enqueued = relayer.enqueue(make_request(instruction_id="history-1"))
        for state in (AttemptState.RETRYABLE, AttemptState.FAILED):
            (item,) = relayer.claim("worker-1", batch_size=1, lease_seconds=30)
            outcome = Outcome(lease=item.lease, state=state, retry_delay_seconds=0)
            relayer.complete("worker-1", outcome)
        redrive = operator.redrive(enqueued.outbox_id, reason="the rail fixed its outage")

    first, second = reader_store.history(ItemSelector(instruction_id="history-1"))

    assert [a.state for a in first.attempts] == [AttemptState.RETRYABLE, AttemptState.FAILED]
    assert (first.state, first.pending, first.redriven_as) == ("FAILED", None, second.redrive_of)
    assert (second.outbox_id, second.state) == (redrive.redrive_outbox_id, "pending")
    assert second.pending is not None
    assert second.attempts == ()
