"""The delivery audit finds each kind of discrepancy between the ledger and the rail's log."""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from typing import Any

import attrs

from outbox_db import AttemptState, LedgerAttempt
from outbox_db.payloads import canonical_json
from outbox_relayer.testing import LoggedRequest, audit_delivery, lane_order_problems

PAYLOAD = {"amount": "10.00", "currency": "USD"}
DIGEST = hashlib.sha256(canonical_json(PAYLOAD).encode()).hexdigest()
ITEM = uuid.UUID(int=1)
KEYS = {ITEM: "key-1"}
COMPLETED_AT = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def attempt(attempt_no: int, state: AttemptState, reference: str | None = None) -> LedgerAttempt:
    """One ledger row of ITEM."""
    return LedgerAttempt(
        outbox_id=ITEM,
        instruction_id="ins-1",
        participant_id="bank-a",
        idempotency_key="key-1",
        rail_type="rtp",
        payload=PAYLOAD,
        attempt_no=attempt_no,
        state=state,
        claimed_at=None,
        completed_at=COMPLETED_AT,
        rail_reference=reference,
        rail_code=None,
        error_code=None,
        error_message=None,
        latency_ms=None,
        worker_id="worker-1",
    )


def request(seq: int, status: int | None, **fields: Any) -> LoggedRequest:  # noqa: ANN401
    """One line of the rail's log for key-1."""
    line: dict[str, Any] = {
        "seq": seq,
        "wall_time": "",
        "monotonic": 0.0,
        "idempotency_key": "key-1",
        "payload_sha256": DIGEST,
        "status": status,
        "reference": "rsim-1" if status == 201 else None,
        "absorbed": False,
        "fault": None,
    }
    return LoggedRequest(**(line | fields))


# A retry after a 503, then a lease repair and a re-send the rail absorbed.
CLEAN_LEDGER = [
    attempt(1, AttemptState.RETRYABLE),
    attempt(2, AttemptState.ZOMBIE_REQUEUE),
    attempt(3, AttemptState.DISPATCHED, "rsim-1"),
]
CLEAN_REQUESTS = [
    request(1, 503, fault="fail"),
    request(2, 201),
    request(3, 201, absorbed=True),
]


def test_a_sound_run_passes_with_its_counts() -> None:
    """Retried, repaired and absorbed, yet one terminal and one effect: no problem."""
    audit = audit_delivery(KEYS, CLEAN_LEDGER, CLEAN_REQUESTS)

    assert audit.problems == ()
    assert audit.passed
    expected = (1, 3, 1, 0, 1, 3, 1, 1)
    assert expected == (
        audit.items,
        audit.attempts,
        audit.dispatched,
        audit.failed,
        audit.lease_repairs,
        audit.rail_requests,
        audit.rail_effects,
        audit.absorbed,
    )


def test_a_second_terminal_attempt_is_a_problem() -> None:
    """Two terminal rows for one item break "one terminal outcome per item"."""
    ledger = [*CLEAN_LEDGER, attempt(4, AttemptState.FAILED)]

    audit = audit_delivery(KEYS, ledger, CLEAN_REQUESTS)

    assert audit.problems == (
        f"1 items without exactly one terminal attempt, last: {ITEM}",
        "1 keys the rail acted on that the ledger does not DISPATCH: key-1",
    )


def test_an_item_still_pending_is_a_problem() -> None:
    """An item that never ended has no terminal attempt."""
    audit = audit_delivery(KEYS, CLEAN_LEDGER[:2], CLEAN_REQUESTS[:1])

    assert audit.problems == (f"1 items without exactly one terminal attempt, last: {ITEM}",)


def test_an_effect_the_ledger_calls_failed_is_a_problem() -> None:
    """The rail acted (its answer was dropped) but the ledger says FAILED: paid, recorded unpaid."""
    ledger = [attempt(1, AttemptState.FAILED)]
    requests = [request(1, None, fault="drop")]

    audit = audit_delivery(KEYS, ledger, requests)

    assert audit.problems == ("1 keys the rail acted on that the ledger does not DISPATCH: key-1",)


def test_a_resend_with_other_bytes_is_a_problem() -> None:
    """The same key with another payload would not be absorbed by the rail."""
    requests = [*CLEAN_REQUESTS[:2], attrs.evolve(CLEAN_REQUESTS[2], payload_sha256="0" * 64)]

    audit = audit_delivery(KEYS, CLEAN_LEDGER, requests)

    assert audit.problems == (f"1 items re-sent with other bytes under the same key: {ITEM}",)


def test_a_dispatch_the_rail_never_saw_is_a_problem() -> None:
    """A DISPATCHED row with no request behind it is an effect nobody can show."""
    audit = audit_delivery(KEYS, CLEAN_LEDGER, CLEAN_REQUESTS[:1])

    assert audit.problems == (
        f"1 items with more recorded answers than rail requests: {ITEM}",
        f"1 items whose DISPATCHED reference is not the rail's first: {ITEM}",
        "1 DISPATCHED items the rail never acted on: key-1",
    )


def test_requests_and_rows_of_strangers_are_problems() -> None:
    """A key or ledger row outside the audited items means something else used the rail."""
    stranger = attrs.evolve(CLEAN_LEDGER[2], outbox_id=uuid.UUID(int=2), attempt_no=1)
    requests = [*CLEAN_REQUESTS, request(4, 201, idempotency_key="key-x")]

    audit = audit_delivery(KEYS, [*CLEAN_LEDGER, stranger], requests)

    assert audit.problems == (
        f"1 ledger rows of no audited item: {uuid.UUID(int=2)}",
        "1 rail requests with a key of no audited item: key-x",
        "1 keys the rail acted on that the ledger does not DISPATCH: key-x",
    )


def test_an_answer_dropped_after_the_rail_acted_then_absorbed_is_sound() -> None:
    """The rail acted but the connection dropped; the re-send got the first reference back."""
    ledger = [attempt(1, AttemptState.RETRYABLE), attempt(2, AttemptState.DISPATCHED, "rsim-1")]
    requests = [request(1, None, fault="drop"), request(2, 201, absorbed=True)]

    audit = audit_delivery(KEYS, ledger, requests)

    assert (audit.problems, audit.rail_effects, audit.absorbed) == ((), 1, 1)


def test_a_miss_of_a_relayer_without_the_rail_sent_nothing_and_is_sound() -> None:
    """RAIL_NOT_CONFIGURED answered without a request; any other code needs one behind it.

    Only a relayer of a release before schema 0013 records it: it had no rail to send to.
    """
    missed = attrs.evolve(attempt(1, AttemptState.RETRYABLE), error_code="RAIL_NOT_CONFIGURED")
    unavailable = attrs.evolve(missed, error_code="RAIL_UNAVAILABLE")
    dispatched = attempt(2, AttemptState.DISPATCHED, "rsim-1")

    sound = audit_delivery(KEYS, [missed, dispatched], [request(1, 201)])
    unsent = audit_delivery(KEYS, [unavailable, dispatched], [request(1, 201)])

    assert sound.problems == ()
    assert unsent.problems == (f"1 items with more recorded answers than rail requests: {ITEM}",)


# --- lane order ----------------------------------------------------------------------------------

LANES = {"a1": ("a", 1), "a2": ("a", 2), "a3": ("a", 3), "b1": ("b", 1)}


def arrivals(*keys: str) -> list[LoggedRequest]:
    """The rail's log: one request per key, in this order."""
    return [request(n, 201, idempotency_key=key) for n, key in enumerate(keys, start=1)]


def test_lanes_received_in_order_with_retries_and_other_lanes_interleaved_pass() -> None:
    """Retries of one item in a row fold into one; other lanes and unordered keys may interleave."""
    assert lane_order_problems(LANES, arrivals("a1", "b1", "a1", "x", "a2", "a2", "a3")) == ()


def test_a_lane_received_out_of_order_is_named() -> None:
    """An item before the one ahead of it, an item back after its follower started, or one skipped."""
    for keys in [("a2", "a1", "a3"), ("a1", "a2", "a1", "a3"), ("a1", "a3")]:
        assert lane_order_problems(LANES, arrivals(*keys, "b1")) == (
            "1 lanes the rail received out of sequence order: a",
        )


def test_the_log_is_read_in_arrival_order_whatever_the_list_order() -> None:
    """The log's seq, not the list's order, is the arrival order."""
    assert lane_order_problems(LANES, list(reversed(arrivals("a1", "a2", "a3", "b1")))) == ()
