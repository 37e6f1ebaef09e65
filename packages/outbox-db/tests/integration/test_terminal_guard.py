"""Proofs: one terminal outcome per item, and no new DISPATCHING rows, enforced by the database."""

from __future__ import annotations

from typing import TYPE_CHECKING, LiteralString

import pytest

from outbox_db import AttemptState, ConstraintViolation, Outcome, TerminalAlreadyRecorded
from outbox_db.testonly import query_no_role
from outbox_db.testonly.factories import leased_item

if TYPE_CHECKING:
    from uuid import UUID

    from outbox_db import OutboxStore
    from outbox_db.testonly.pytest_plugin import Database

# A copy of the item's last attempt with a new number and state, inserted as the owner.
COPY_ATTEMPT: LiteralString = """
    INSERT INTO public.payment_outbox_attempts (
        outbox_id, instruction_id, participant_id, sequence_id, idempotency_key, rail_type,
        payload, attempt_no, state, worker_id)
    SELECT outbox_id, instruction_id, participant_id, sequence_id, idempotency_key, rail_type,
        payload, attempt_no + 1, %s::public.outbox_attempt_state, 'intruder'
    FROM public.payment_outbox_attempts WHERE outbox_id = %s
    ORDER BY attempt_no DESC LIMIT 1
"""


def attempt_states(url: str, outbox_id: UUID) -> list[str]:
    """States of an item's attempts in order."""
    rows = query_no_role(
        url,
        "SELECT state::text FROM public.payment_outbox_attempts WHERE outbox_id = %s ORDER BY attempt_no",
        [outbox_id],
    )
    return [state for (state,) in rows]


@pytest.mark.parametrize("second", ["DISPATCHED", "FAILED"])
def test_second_terminal_outcome_is_refused(
    outbox_database: Database, outbox_store: OutboxStore, second: str
) -> None:
    """A second DISPATCHED or FAILED attempt for one item fails with 23505 on the terminal index."""
    item = leased_item(outbox_store)
    outbox_store.complete("worker-1", Outcome(lease=item.lease, state=AttemptState.DISPATCHED))

    with pytest.raises(TerminalAlreadyRecorded) as refused:
        query_no_role(outbox_database.url, COPY_ATTEMPT, [second, item.outbox_id])

    assert refused.value.sqlstate == "23505"
    assert refused.value.constraint == "payment_outbox_attempts_one_terminal_per_outbox"
    assert attempt_states(outbox_database.url, item.outbox_id) == ["DISPATCHED"]


def test_non_terminal_attempts_after_terminal_are_not_what_the_guard_refuses(
    outbox_database: Database, outbox_store: OutboxStore
) -> None:
    """The guard is about terminal outcomes only: a RETRYABLE row is not refused by it (control)."""
    item = leased_item(outbox_store)
    outbox_store.complete("worker-1", Outcome(lease=item.lease, state=AttemptState.DISPATCHED))

    query_no_role(outbox_database.url, COPY_ATTEMPT, ["RETRYABLE", item.outbox_id])

    assert attempt_states(outbox_database.url, item.outbox_id) == ["DISPATCHED", "RETRYABLE"]


def test_dispatching_insert_is_refused_by_the_database(
    outbox_database: Database, outbox_store: OutboxStore
) -> None:
    """Inserting a DISPATCHING attempt fails with 23514 on the named CHECK, even as owner."""
    item = leased_item(outbox_store)
    outbox_store.complete("worker-1", Outcome(lease=item.lease, state=AttemptState.RETRYABLE))

    with pytest.raises(ConstraintViolation) as refused:
        # guardrails: allow OBX006 -- the proof that the database refuses this insert (23514)
        query_no_role(outbox_database.url, COPY_ATTEMPT, ["DISPATCHING", item.outbox_id])

    assert refused.value.sqlstate == "23514"
    assert refused.value.constraint == "payment_outbox_attempts_no_dispatching_insert"
    assert attempt_states(outbox_database.url, item.outbox_id) == ["RETRYABLE"]
