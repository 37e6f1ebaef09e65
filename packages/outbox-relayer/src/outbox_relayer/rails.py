"""Rails: where a leased item is sent, and how the rail's answer becomes an attempt outcome."""

from __future__ import annotations

import asyncio
import email.utils
import json
import math
import re
import ssl
import time
import urllib.parse
from datetime import UTC, datetime
from http import HTTPStatus
from typing import TYPE_CHECKING, Final, Protocol

import attrs

from outbox_db import AttemptState, ClaimedItem
from outbox_db.payloads import canonical_json
from outbox_db.tracing import current_trace_context
from outbox_relayer.curl_client import CurlClient, TlsFiles, TransferFailed
from outbox_relayer.rail_config import MAX_IN_FLIGHT, RailConfigError

if TYPE_CHECKING:
    from collections.abc import Mapping

    from outbox_relayer.rail_config import RailEndpoint

__all__ = [
    "FAILED_STATUSES",
    "MAX_ANSWER_BYTES",
    "RECONCILED_PREFIX",
    "UNKNOWN_OUTCOME_CODES",
    "HttpRail",
    "NoopRail",
    "Rail",
    "RailAnswer",
    "check_tls_files",
    "classify",
    "outcome_unknown",
]

# 4xx answers that refuse the instruction itself: re-sending the same request cannot succeed.
# 401 and 403 are not here: they say our credentials are wrong, which an operator fixes, so the
# item retries (bounded by the ledger's retry ceiling) instead of failing a good payment.
FAILED_STATUSES: Final = frozenset({400, 404, 405, 410, 413, 415, 422})
REFERENCE_FIELD: Final = "reference"  # the rail's reference in a JSON answer body
ERROR_FIELD: Final = "error"  # a short error code the rail may give with a refusal
_SAFE_CODE: Final = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
_MAX_REFERENCE: Final = 255
# What the ledger accepts as outcome text (schema 0012): no C0, DEL, C1 or bidirectional
# override, which a terminal showing the ledger would act on.
_NO_CONTROL: Final = re.compile(r"[^\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]+")
# 4xx answers that mean "not now": the same request may succeed later.
_RETRYABLE_4XX: Final[dict[int, tuple[str, str]]] = {
    401: ("RAIL_AUTH_REJECTED", "rail refused our credentials"),
    403: ("RAIL_AUTH_REJECTED", "rail refused our credentials"),
    408: ("RAIL_TIMEOUT", "rail timed out the request"),
    409: ("RAIL_CONFLICT", "rail is still processing this key"),
    425: ("RAIL_THROTTLED", "rail asked to retry later"),
    429: ("RAIL_THROTTLED", "rail asked to slow down"),
}
# The last attempt's error codes after which the rail may or may not have executed the request:
# a lease repair (the worker died or lost its lease mid-dispatch; also the migration's requeue of
# DISPATCHING-era items), or a send that went out and got no usable answer. A 5xx answer or a
# throttle is a known non-execution, so it is not here.
UNKNOWN_OUTCOME_CODES: Final = frozenset(
    {
        "LEASE_EXPIRED",
        "LEGACY_DISPATCHING_REQUEUED",
        "RAIL_TIMEOUT",
        "RAIL_CONNECTION_ERROR",
        "RAIL_PROTOCOL_ERROR",
        "RAIL_CLIENT_ERROR",
    }
)
# rail_code of an outcome learnt by lookup instead of a send: "reconciled:<the rail's status>".
RECONCILED_PREFIX: Final = "reconciled:"
# The most of an answer's body read: a rail's answer is a short JSON object, and a rail that
# streams more cannot make thousands of sends in flight hold its bytes.
MAX_ANSWER_BYTES: Final = 64 * 1024
_ANSWER_STATES: Final = frozenset(
    {AttemptState.DISPATCHED, AttemptState.RETRYABLE, AttemptState.FAILED}
)


def _answer_state(_: object, __: attrs.Attribute[AttemptState], value: AttemptState) -> None:
    if value not in _ANSWER_STATES:
        msg = f"a rail answers DISPATCHED, RETRYABLE or FAILED, not {value}"
        raise ValueError(msg)


@attrs.frozen(kw_only=True)
class RailAnswer:
    """What one send came to; error_message is short and never holds a secret or payload."""

    state: AttemptState = attrs.field(validator=_answer_state)
    rail_reference: str | None = None
    rail_code: str | None = None  # the HTTP status, as text, when the rail answered
    error_code: str | None = None
    error_message: str | None = None
    latency_ms: int = 0
    retry_after_seconds: float | None = None  # the rail's own Retry-After, when it gave one


class Rail(Protocol):
    """Sends one leased item to a payment rail: coroutines, run on the dispatcher's event loop.

    A rail whose client blocks wraps its calls in `asyncio.to_thread`: a blocking call would
    stall every other send in flight.
    """

    async def send(self, item: ClaimedItem) -> RailAnswer:
        """Dispatch the item with its idempotency key; network failures are answers, not raises."""
        ...

    async def lookup(self, item: ClaimedItem) -> RailAnswer | None:
        """The rail's final outcome for the item's key, or None: unknown, or not supported."""
        ...

    async def aclose(self) -> None:
        """Close what the rail opened (connections); the dispatcher calls it when it stops."""
        ...


def outcome_unknown(item: ClaimedItem) -> bool:
    """Whether the item's last attempt may have executed at the rail without us knowing."""
    return item.attempt_count > 0 and item.last_error_code in UNKNOWN_OUTCOME_CODES


class NoopRail:
    """Answers DISPATCHED at once and sends nothing: measures the relayer and database alone.

    Configured as `--rail TYPE=noop`; never point a real rail_type at it.
    """

    async def send(self, item: ClaimedItem) -> RailAnswer:
        """DISPATCHED, with a reference derived from the item."""
        return RailAnswer(state=AttemptState.DISPATCHED, rail_reference=f"noop-{item.outbox_id}")

    async def lookup(self, item: ClaimedItem) -> RailAnswer | None:  # noqa: ARG002 - Rail's
        """Nothing to ask: a no-op rail keeps no outcomes."""
        return None

    async def aclose(self) -> None:
        """Nothing to close."""


class HttpRail:
    """A rail over HTTP or HTTPS: POSTs the payload as JSON with the item's Idempotency-Key.

    Its connections (at most `connections` per event loop, kept alive) open with the first
    send on a loop, and `aclose` closes that loop's. A send waiting for a connection waits
    within its timeout: the relayer sizes `connections` to the rail's share of its sends.
    HTTPS verifies the rail against the system's CAs, or the endpoint's `ca_file`, and presents
    the endpoint's client certificate when it has one (mTLS). No cookie, proxy or redirect:
    each send is the one request.

    With `endpoint.lookup`, `lookup` GETs `<url>/<url-quoted key>`: 200 with a JSON object
    whose `status` is the HTTP status the rail first answered for the key (and its body's
    fields, e.g. `reference`) is a known outcome; anything else, 404 included, is unknown.
    """

    def __init__(self, endpoint: RailEndpoint, *, connections: int = MAX_IN_FLIGHT) -> None:
        self.endpoint = endpoint
        self._connections = connections
        check_tls_files(endpoint)  # now: an unreadable certificate stops the start
        self._tls = TlsFiles(
            ca_file=endpoint.ca_file,
            client_cert_file=endpoint.client_cert_file,
            client_key_file=endpoint.client_key_file,
        )
        self._clients: dict[asyncio.AbstractEventLoop, CurlClient] = {}

    async def send(self, item: ClaimedItem) -> RailAnswer:
        """POST the item once and classify the answer (see the package README for the table)."""
        started = time.monotonic()
        try:
            body = canonical_json(item.payload).encode()
        except (RecursionError, ValueError):
            # Stored before the database limited depth: this item alone can never be sent.
            return RailAnswer(
                state=AttemptState.FAILED,
                error_code="PAYLOAD_UNREADABLE",
                error_message="the stored payload cannot be decoded (nested too deep)",
            )
        try:
            answer = await self._client().request(
                self.endpoint.url, headers=self._headers(item), body=body
            )
        except TransferFailed as failure:
            return _unanswered(failure, started)
        return classify(answer.status, answer.headers, answer.body, _elapsed_ms(started))

    async def lookup(self, item: ClaimedItem) -> RailAnswer | None:
        """The key's outcome if the rail knows a final one (DISPATCHED or FAILED), else None.

        A lookup that fails in any way is an unknown outcome: the item is sent again with the
        same key, which the rail absorbs if it did execute it.
        """
        if not self.endpoint.lookup:
            return None
        started = time.monotonic()
        url = self.endpoint.url.rstrip("/") + "/" + urllib.parse.quote(item.idempotency_key, "")
        try:
            answer = await self._client().request(url, headers=self._headers(item))
        except TransferFailed:
            return None
        return _recorded_outcome(answer.status, answer.body, _elapsed_ms(started))

    async def aclose(self) -> None:
        """Close the rail's connections on this event loop (a later send opens new ones)."""
        if (client := self._clients.pop(asyncio.get_running_loop(), None)) is not None:
            client.close()

    def _client(self) -> CurlClient:
        """This loop's client: a CurlClient serves the event loop it was opened on."""
        loop = asyncio.get_running_loop()
        if (client := self._clients.get(loop)) is None:
            client = self._clients[loop] = CurlClient(
                timeout_seconds=self.endpoint.timeout_seconds,
                connections=self._connections,
                max_answer_bytes=MAX_ANSWER_BYTES,
                tls=self._tls,
            )
        return client

    def _headers(self, item: ClaimedItem) -> list[str]:
        headers = [
            "Content-Type: application/json",
            f"Idempotency-Key: {item.idempotency_key}",
            f"X-Outbox-Id: {item.outbox_id}",
            f"X-Instruction-Id: {item.instruction_id}",
        ]
        if self.endpoint.auth_header and self.endpoint.auth_secret:
            headers.append(f"{self.endpoint.auth_header}: {self.endpoint.auth_secret.reveal()}")
        # The current span is the item's dispatch span when the relayer traces (tracing.py).
        if self.endpoint.traceparent and (traceparent := current_trace_context()):
            headers.append(f"traceparent: {traceparent}")
        return headers


def check_tls_files(endpoint: RailEndpoint) -> None:
    """Load the endpoint's CA and client certificate files as its TLS will, at start.

    Raises RailConfigError naming the files (never their content) when one cannot be loaded,
    or the key does not match its certificate.
    """
    if endpoint.ca_file is None and endpoint.client_cert_file is None:
        return
    try:
        context = ssl.create_default_context(cafile=endpoint.ca_file)
        if endpoint.client_cert_file is not None:
            context.load_cert_chain(endpoint.client_cert_file, endpoint.client_key_file)
    except (OSError, ssl.SSLError) as error:
        files = [endpoint.ca_file, endpoint.client_cert_file, endpoint.client_key_file]
        named = ", ".join(str(path) for path in files if path is not None)
        reason = error.strerror or type(error).__name__
        msg = f"rail {endpoint.rail_type}: cannot load its TLS files ({named}): {reason}"
        raise RailConfigError(msg) from None


def classify(status: int, headers: Mapping[str, str], body: bytes, latency_ms: int) -> RailAnswer:
    """Turn the rail's HTTP answer (status, headers, body) into DISPATCHED, RETRYABLE or FAILED."""
    fields = _json_object(body)
    reference = _text(fields.get(REFERENCE_FIELD), _MAX_REFERENCE, pattern=_NO_CONTROL)
    if 200 <= status < 300 or (status == HTTPStatus.CONFLICT and reference):  # noqa: PLR2004
        # A 409 carrying a reference is the rail replaying its first answer for this key.
        return RailAnswer(
            state=AttemptState.DISPATCHED,
            rail_reference=reference,
            rail_code=str(status),
            latency_ms=latency_ms,
        )
    answer = RailAnswer(state=AttemptState.RETRYABLE, rail_code=str(status), latency_ms=latency_ms)
    rail_error = _text(fields.get(ERROR_FIELD), 64, pattern=_SAFE_CODE)
    detail = f"HTTP {status}" + (f" ({rail_error})" if rail_error else "")
    if status in FAILED_STATUSES:
        return attrs.evolve(
            answer,
            state=AttemptState.FAILED,
            error_code="RAIL_REJECTED",
            error_message=f"rail refused the instruction: {detail}",
        )
    error_code, what = _retryable_kind(status)
    return attrs.evolve(
        answer,
        error_code=error_code,
        error_message=f"{what}: {detail}",
        retry_after_seconds=retry_after(headers.get("Retry-After")),
    )


def _recorded_outcome(status: int, body: bytes, latency_ms: int) -> RailAnswer | None:
    """A lookup's answer as the outcome of the first send, classified like that send's answer."""
    first = _json_object(body).get("status")
    if status != HTTPStatus.OK or isinstance(first, bool):
        return None
    if not isinstance(first, int) or not 100 <= first <= 599:  # noqa: PLR2004
        return None
    answer = classify(first, {}, body, latency_ms)
    if answer.state is AttemptState.RETRYABLE:  # "not now" is no outcome: send again
        return None
    return attrs.evolve(answer, rail_code=f"{RECONCILED_PREFIX}{first}")


def _retryable_kind(status: int) -> tuple[str, str]:
    if status >= HTTPStatus.INTERNAL_SERVER_ERROR:
        return "RAIL_UNAVAILABLE", "rail unavailable"
    return _RETRYABLE_4XX.get(status, ("RAIL_UNEXPECTED_STATUS", "unexpected rail answer"))


def retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delay-seconds or an HTTP-date), or None."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # an HTTP-date is GMT by definition
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def _json_object(body: bytes) -> dict[str, object]:
    try:
        fields = json.loads(body)
    except (ValueError, RecursionError):  # not JSON, not UTF-8, or nested past the parser
        return {}
    return fields if isinstance(fields, dict) else {}


def _text(value: object, limit: int, pattern: re.Pattern[str] | None = None) -> str | None:
    """A rail-supplied string if it is short (and matches pattern); anything else is dropped."""
    if not isinstance(value, str) or not value or len(value) > limit:
        return None
    if pattern is not None and not pattern.fullmatch(value):
        return None
    return value


def _elapsed_ms(started: float) -> int:
    return math.ceil((time.monotonic() - started) * 1000)


def _unanswered(failure: TransferFailed, started: float) -> RailAnswer:
    """A send without a usable answer: RETRYABLE, its outcome unknown (it may have executed)."""
    if failure.timed_out:
        code, message = "RAIL_TIMEOUT", "no answer within the rail's timeout"
    elif failure.connection_failed:
        code, message = "RAIL_CONNECTION_ERROR", f"connection failed: {failure.name}"
    else:
        code, message = "RAIL_PROTOCOL_ERROR", f"unusable answer: {failure.name}"
    return RailAnswer(
        state=AttemptState.RETRYABLE,
        error_code=code,
        error_message=message,
        latency_ms=_elapsed_ms(started),
    )
