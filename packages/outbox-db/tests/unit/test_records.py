"""Records refuse what the database would refuse anyway, before a round trip."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import attrs
import pytest

from outbox_db import (
    AttemptState,
    CompletionResult,
    EnqueueRequest,
    ItemHistory,
    ItemSelector,
    LedgerAttempt,
    PendingState,
    RoleNames,
)


@pytest.mark.parametrize("payload", [["amount", "1"], "amount=1", 10], ids=["list", "str", "int"])
def test_enqueue_request_payload_must_be_a_mapping(payload: object) -> None:
    """A payload that is not a JSON object is a TypeError at construction."""
    with pytest.raises(TypeError, match="payload"):
        EnqueueRequest(
            instruction_id="i",
            participant_id="p",
            idempotency_key="k",
            rail_type="rtp",
            payload=payload,  # type: ignore[arg-type]
        )


def test_completion_result_reads_the_ledger_state_as_an_enum() -> None:
    """The state the database returns as text becomes an AttemptState; a lost lease has none."""
    recorded = CompletionResult(outbox_id=None, lease_held=True, attempt_no=1, state="FAILED")  # type: ignore[arg-type]
    lost = CompletionResult(outbox_id=None, lease_held=False, attempt_no=None, state=None)  # type: ignore[arg-type]

    assert (recorded.state, lost.state) == (AttemptState.FAILED, None)


@pytest.mark.parametrize(
    "fields",
    [{}, {"instruction_id": "ins-1", "idempotency_key": "key-1"}],
    ids=["none", "two"],
)
def test_an_item_selector_names_exactly_one_way_to_select(fields: dict[str, object]) -> None:
    """Neither nothing nor two selectors: a ValueError before any query."""
    with pytest.raises(ValueError, match="exactly one of"):
        ItemSelector(**fields)  # type: ignore[arg-type]


def test_an_items_state_is_its_terminal_outcome_else_its_place_in_the_queue() -> None:
    """FAILED once terminal; leased while held; pending while queued."""
    when = datetime(2026, 1, 1, tzinfo=UTC)
    item = ItemHistory(
        outbox_id=uuid.uuid4(),
        instruction_id="ins-1",
        participant_id="p",
        sequence_id=1,
        idempotency_key="key-1",
        rail_type="rtp",
    )
    queued = PendingState(
        outbox_id=item.outbox_id,
        attempt_count=1,
        next_attempt_at=when,
        created_at=when,
        claimed_by=None,
        claimed_at=None,
        lease_expires_at=None,
    )
    held = attrs.evolve(queued, claimed_by="w", claimed_at=when, lease_expires_at=when)
    retried, failed = (
        LedgerAttempt(
            outbox_id=item.outbox_id,
            instruction_id=item.instruction_id,
            participant_id=item.participant_id,
            idempotency_key=item.idempotency_key,
            rail_type=item.rail_type,
            payload={"amount": "10.00"},
            attempt_no=n,
            state=state,
            claimed_at=when,
            completed_at=when,
            rail_reference=None,
            rail_code=None,
            error_code=None,
            error_message=None,
            latency_ms=None,
            worker_id="w",
        )
        for n, state in ((1, "RETRYABLE"), (2, "FAILED"))
    )

    assert [
        attrs.evolve(item, pending=queued, attempts=(retried,)).state,
        attrs.evolve(item, pending=held, attempts=(retried,)).state,
        attrs.evolve(item, attempts=(retried, failed)).state,
    ] == ["pending", "leased", "FAILED"]


def test_role_names_prefix_whole_seed_names_only() -> None:
    """Rendering prefixes each seed role name, quoted or not, and no longer identifier."""
    shipped = (
        "GRANT outbox_owner TO CURRENT_USER; GRANT symphony_executor TO x;"
        " WHERE rolname = 'symphony_operator'; -- outbox_owners, my_symphony_readonly_view"
    )

    rendered = RoleNames("payments_b_").render(shipped)

    assert rendered == (
        "GRANT payments_b_outbox_owner TO CURRENT_USER; GRANT payments_b_symphony_executor TO x;"
        " WHERE rolname = 'payments_b_symphony_operator'; -- outbox_owners, my_symphony_readonly_view"
    )
    assert RoleNames().render(shipped) == shipped


@pytest.mark.parametrize("prefix", ["b", "B_", "1b_", "b-c_", "b _", "x" * 40 + "_"])
def test_a_role_prefix_that_would_not_read_as_a_name_is_refused(prefix: str) -> None:
    """Lowercase, a letter first, '_' last, at most 40 characters (names stay within 63)."""
    with pytest.raises(ValueError, match="role prefix"):
        RoleNames(prefix)


@pytest.mark.parametrize(
    ("owner", "expected"),
    [
        ("outbox_owner", RoleNames()),
        ("payments_b_outbox_owner", RoleNames("payments_b_")),
        ("postgres", None),  # tables older than the outbox roles
        ("Weird-outbox_owner", None),
        (None, None),  # no tables yet
    ],
)
def test_a_database_s_role_names_come_from_its_tables_owner(
    owner: str | None, expected: RoleNames | None
) -> None:
    """The owner of the outbox tables names the database's roles, when it is an outbox owner."""
    assert RoleNames.of_owner(owner) == expected
