"""HttpRail against a live rail simulator on loopback: every answer class, no HTTP mocking."""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import attrs
import pytest

from outbox_db import AttemptState, ClaimedItem
from outbox_db.payloads import canonical_json
from outbox_relayer import FAILED_STATUSES, RailEndpoint, Secret
from outbox_relayer.rails import classify, retry_after
from outbox_relayer.testing import Faults, RailSimulator, read_request_log
from relaying import BlockingRail, HeaderRecorder

if TYPE_CHECKING:
    from collections.abc import Callable

    import httpx

    from outbox_db.testonly.blocking import EventLoopThread


def test_accepted_payment_is_dispatched_with_the_rails_reference(
    client: httpx.Client,
    simulator: RailSimulator,
    rail_for: Callable[..., BlockingRail],
    make_item: Callable[..., ClaimedItem],
) -> None:
    """A 2xx answer is DISPATCHED, carrying the reference the rail recorded for the key."""
    item = make_item()

    answer = rail_for(simulator).send(item)

    recorded = client.get(f"{simulator.url}/payments/{item.idempotency_key}").json()
    assert answer.state == AttemptState.DISPATCHED
    assert recorded["reference"] == answer.rail_reference
    assert answer.rail_code == "201"
    assert answer.error_code is None


def test_repeat_of_a_key_is_absorbed_and_returns_the_first_reference(
    simulator: RailSimulator,
    rail_for: Callable[..., BlockingRail],
    make_item: Callable[..., ClaimedItem],
) -> None:
    """Sending one item twice is one effect: the rail absorbs the repeat with its first answer."""
    item = make_item()
    rail = rail_for(simulator)

    first, second = rail.send(item), rail.send(item)

    assert first == attrs.evolve(second, latency_ms=first.latency_ms)
    assert first.rail_reference is not None
    assert [line.absorbed for line in read_request_log(simulator.log_path)] == [False, True]
    assert simulator.stats().absorbed == 1


def test_replayed_409_with_the_original_result_is_dispatched(
    start_simulator: Callable[..., RailSimulator],
    rail_for: Callable[..., BlockingRail],
    make_item: Callable[..., ClaimedItem],
) -> None:
    """A rail that answers a repeated key with 409 and the first result still means DISPATCHED."""
    simulator = start_simulator(replay_status=409)
    rail, item = rail_for(simulator), make_item()

    first, repeat = rail.send(item), rail.send(item)

    assert repeat.state == AttemptState.DISPATCHED
    assert repeat.rail_code == "409"
    assert first.rail_reference == repeat.rail_reference


def test_409_without_the_original_result_is_retryable(
    simulator: RailSimulator,
    rail_for: Callable[..., BlockingRail],
    make_item: Callable[..., ClaimedItem],
) -> None:
    """A 409 with no reference (the key is still being processed) is asked again later."""
    answer = rail_for(simulator).send(make_item(payload={"simulate_status": 409}))

    assert (answer.state, answer.error_code) == (AttemptState.RETRYABLE, "RAIL_CONFLICT")


def test_rail_failure_5xx_is_retryable_and_not_the_keys_outcome(
    client: httpx.Client,
    start_simulator: Callable[..., RailSimulator],
    rail_for: Callable[..., BlockingRail],
    make_item: Callable[..., ClaimedItem],
) -> None:
    """A 503 is RETRYABLE (RAIL_UNAVAILABLE) and the rail keeps no outcome, so a retry can succeed."""
    simulator = start_simulator(Faults(fail_rate=1.0))
    item = make_item()

    answer = rail_for(simulator).send(item)

    assert answer.state == AttemptState.RETRYABLE
    assert (answer.rail_code, answer.error_code) == ("503", "RAIL_UNAVAILABLE")
    lookup = client.get(f"{simulator.url}/payments/{item.idempotency_key}")
    assert lookup.status_code == 404


def test_no_answer_within_the_timeout_is_retryable_timeout(
    start_simulator: Callable[..., RailSimulator],
    rail_for: Callable[..., BlockingRail],
    make_item: Callable[..., ClaimedItem],
) -> None:
    """An answer that comes later than the rail's timeout is RETRYABLE with RAIL_TIMEOUT."""
    simulator = start_simulator(Faults(timeout_rate=1.0, hang_seconds=30))

    answer = rail_for(simulator, timeout_seconds=0.2).send(make_item())

    assert (answer.state, answer.error_code) == (AttemptState.RETRYABLE, "RAIL_TIMEOUT")
    assert answer.rail_code is None


def test_dropped_connection_is_retryable_connection_error(
    start_simulator: Callable[..., RailSimulator],
    rail_for: Callable[..., BlockingRail],
    make_item: Callable[..., ClaimedItem],
) -> None:
    """A connection closed without an answer is RETRYABLE with RAIL_CONNECTION_ERROR."""
    simulator = start_simulator(Faults(drop_rate=1.0))

    answer = rail_for(simulator).send(make_item())

    assert (answer.state, answer.error_code) == (AttemptState.RETRYABLE, "RAIL_CONNECTION_ERROR")
    assert simulator.stats().by_status == {"dropped": 1}


def test_unreachable_rail_is_retryable_connection_error(
    start_simulator: Callable[..., RailSimulator],
    blocking_rail: Callable[[RailEndpoint], BlockingRail],
    make_item: Callable[..., ClaimedItem],
) -> None:
    """Nothing listening on the rail's port is RETRYABLE with RAIL_CONNECTION_ERROR."""
    stopped = start_simulator()
    endpoint = RailEndpoint(rail_type="rtp", url=stopped.payments_url)
    stopped.stop()

    answer = blocking_rail(endpoint).send(make_item())

    assert (answer.state, answer.error_code) == (AttemptState.RETRYABLE, "RAIL_CONNECTION_ERROR")


def test_throttled_429_is_retryable_and_honours_retry_after_seconds(
    simulator: RailSimulator,
    rail_for: Callable[..., BlockingRail],
    make_item: Callable[..., ClaimedItem],
) -> None:
    """A 429 is RETRYABLE (RAIL_THROTTLED) and carries the rail's Retry-After in seconds."""
    item = make_item(payload={"simulate_status": 429, "simulate_retry_after": "7"})

    answer = rail_for(simulator).send(item)

    assert (answer.state, answer.error_code) == (AttemptState.RETRYABLE, "RAIL_THROTTLED")
    assert answer.rail_code == "429"
    assert answer.retry_after_seconds == 7.0


def test_retry_after_as_an_http_date_is_seconds_from_now() -> None:
    """Retry-After as an HTTP-date becomes the seconds until then; a past date is zero."""
    now = datetime(2026, 1, 5, 12, 0, 0, tzinfo=UTC)

    assert retry_after("Mon, 05 Jan 2026 12:01:30 GMT", now=now) == 90.0
    assert retry_after("Mon, 05 Jan 2026 11:00:00 GMT", now=now) == 0.0
    assert retry_after("soon", now=now) is None
    assert retry_after(None) is None


@pytest.mark.parametrize("status", sorted(FAILED_STATUSES))
def test_refusal_of_the_instruction_is_failed_with_the_rail_code(
    status: int,
    simulator: RailSimulator,
    rail_for: Callable[..., BlockingRail],
    make_item: Callable[..., ClaimedItem],
) -> None:
    """The documented 4xx refusals are FAILED (terminal) with RAIL_REJECTED and the status."""
    answer = rail_for(simulator).send(make_item(payload={"simulate_status": status}))

    assert answer.state == AttemptState.FAILED
    assert (str(status), "RAIL_REJECTED") == (answer.rail_code, answer.error_code)
    assert answer.error_message == f"rail refused the instruction: HTTP {status} (SCRIPTED)"


@pytest.mark.parametrize(
    ("status", "error_code"),
    [
        (401, "RAIL_AUTH_REJECTED"),
        (403, "RAIL_AUTH_REJECTED"),
        (408, "RAIL_TIMEOUT"),
        (418, "RAIL_UNEXPECTED_STATUS"),
    ],
)
def test_other_4xx_are_retryable_not_terminal(
    status: int,
    error_code: str,
    simulator: RailSimulator,
    rail_for: Callable[..., BlockingRail],
    make_item: Callable[..., ClaimedItem],
) -> None:
    """Our credentials, a rail-side timeout or an unknown 4xx never fail a payment for good."""
    answer = rail_for(simulator).send(make_item(payload={"simulate_status": status}))

    assert (AttemptState.RETRYABLE, error_code) == (answer.state, answer.error_code)


def test_request_carries_the_items_idempotency_key_ids_and_canonical_payload(
    simulator: RailSimulator,
    loop: EventLoopThread,
    rail_for: Callable[..., BlockingRail],
    blocking_rail: Callable[[RailEndpoint], BlockingRail],
    make_item: Callable[..., ClaimedItem],
) -> None:
    """The POST carries Idempotency-Key, X-Outbox-Id, X-Instruction-Id and the payload as JSON."""
    item = make_item(payload={"currency": "USD", "amount": "1.00"})
    rail_for(simulator).send(item)
    with HeaderRecorder(loop) as recorder:
        blocking_rail(RailEndpoint(rail_type="rtp", url=recorder.url)).send(item)

    [logged] = read_request_log(simulator.log_path)
    [request] = recorder.requests
    assert item.idempotency_key == logged.idempotency_key
    assert item.idempotency_key == request["Idempotency-Key"]
    assert str(item.outbox_id) == request["X-Outbox-Id"]
    assert item.instruction_id == request["X-Instruction-Id"]
    expected_digest = hashlib.sha256(b'{"amount":"1.00","currency":"USD"}').hexdigest()
    assert expected_digest == logged.payload_sha256
    assert canonical_json(item.payload) == '{"amount":"1.00","currency":"USD"}'


def test_latency_covers_the_rails_answer_time(
    start_simulator: Callable[..., RailSimulator],
    rail_for: Callable[..., BlockingRail],
    make_item: Callable[..., ClaimedItem],
) -> None:
    """latency_ms is measured around the request, so it includes the rail's own delay."""
    simulator = start_simulator(Faults(latency_ms=50))

    answer = rail_for(simulator).send(make_item())

    assert answer.latency_ms >= 50


def test_secret_never_appears_in_repr_logs_answers_or_the_rails_log(
    simulator: RailSimulator,
    loop: EventLoopThread,
    blocking_rail: Callable[[RailEndpoint], BlockingRail],
    make_item: Callable[..., ClaimedItem],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The auth secret reaches the rail's header and nowhere else: not repr, logs or errors."""
    secret = "tok-3f9a-SECRET-do-not-log"  # noqa: S105 - a made-up token to look for
    caplog.set_level(logging.DEBUG)
    with HeaderRecorder(loop) as recorder:
        endpoint = RailEndpoint(
            rail_type="rtp",
            url=recorder.url,
            auth_header="Authorization",
            auth_secret=Secret(secret),
        )
        answers = [blocking_rail(endpoint).send(make_item())]
    at_the_simulator = blocking_rail(attrs.evolve(endpoint, url=simulator.payments_url))
    answers.append(at_the_simulator.send(make_item()))
    simulator.stop()
    answers.append(at_the_simulator.send(make_item()))  # the rail is gone now: an error answer

    assert [secret] == [request["Authorization"] for request in recorder.requests]
    assert answers[2].error_code == "RAIL_CONNECTION_ERROR"
    shown = [repr(endpoint), str(endpoint), repr(answers), caplog.text]
    shown.append(simulator.log_path.read_text(encoding="utf-8"))
    assert [text for text in shown if secret in text] == []
    assert "********" in repr(endpoint)


@pytest.mark.parametrize(
    "reference",
    ["\x1b[31mPAID", "ref\x07", "ref\x9b2J", "ref-\u202egnp", "ref\nforged", "r" * 256],
    ids=["ansi escape", "bell", "c1 csi", "rtl override", "newline", "oversized"],
)
def test_a_reference_the_ledger_would_refuse_is_dropped(reference: str) -> None:
    """Control characters (or length) in the rail's reference: DISPATCHED, without it."""
    answer = classify(201, {}, json.dumps({"reference": reference}).encode(), latency_ms=3)
    assert (answer.state, answer.rail_reference) == (AttemptState.DISPATCHED, None)


def test_a_printable_reference_is_kept_as_the_rail_wrote_it() -> None:
    """Non-ASCII letters and inner spaces are no control characters."""
    answer = classify(201, {}, json.dumps({"reference": "réf 42 ü ok"}).encode(), latency_ms=3)
    assert answer.rail_reference == "réf 42 ü ok"
