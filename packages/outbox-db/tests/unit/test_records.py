"""Records refuse what the database would refuse anyway, before a round trip."""

from __future__ import annotations

import pytest

from outbox_db import AttemptState, CompletionResult, EnqueueRequest


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
