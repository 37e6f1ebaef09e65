"""The simulated rail's rules, without HTTP: dedupe by key, injected faults, the request log."""

from __future__ import annotations

import hashlib
import json
import random
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Final

import attrs

if TYPE_CHECKING:
    from pathlib import Path

__all__ = [
    "PAYMENTS_PATH",
    "Decision",
    "Faults",
    "LoggedRequest",
    "SimulatedRail",
    "SimulatorStats",
]

PAYMENTS_PATH: Final = "/payments"  # where the rail takes payments, and looks them up below

# Payload fields a test sets to script the answer, like a sandbox's magic card numbers.
SCRIPTED_STATUS: Final = "simulate_status"
SCRIPTED_RETRY_AFTER: Final = "simulate_retry_after"
# Answers that say "not now" rather than "this is the outcome": never kept as a key's outcome.
TRANSIENT: Final = frozenset({408, 409, 425, 429})
_RATE = attrs.validators.and_(attrs.validators.ge(0.0), attrs.validators.le(1.0))


@attrs.frozen(kw_only=True)
class Faults:
    """Failure injection, drawn once per request from one generator seeded by `seed`."""

    latency_ms: float = attrs.field(default=0.0, validator=attrs.validators.ge(0.0))
    latency_jitter_ms: float = attrs.field(default=0.0, validator=attrs.validators.ge(0.0))
    fail_rate: float = attrs.field(default=0.0, validator=_RATE)  # answered 503, not recorded
    timeout_rate: float = attrs.field(default=0.0, validator=_RATE)  # recorded, answered late
    drop_rate: float = attrs.field(default=0.0, validator=_RATE)  # recorded, never answered
    throttle_rate: float = attrs.field(default=0.0, validator=_RATE)  # answered 429, not recorded
    retry_after_seconds: int = attrs.field(  # the throttled answer's Retry-After
        default=1, validator=[attrs.validators.instance_of(int), attrs.validators.ge(0)]
    )
    hang_seconds: float = attrs.field(default=30.0, validator=attrs.validators.gt(0.0))
    lookup_fail_rate: float = attrs.field(default=0.0, validator=_RATE)  # GET by key answered 503
    seed: int | None = None

    def __attrs_post_init__(self) -> None:
        if self.fail_rate + self.timeout_rate + self.drop_rate + self.throttle_rate > 1.0:
            msg = "fail_rate + timeout_rate + drop_rate + throttle_rate must not exceed 1"
            raise ValueError(msg)


@attrs.frozen(kw_only=True)
class SimulatorStats:
    """Counts since start: `absorbed` is repeats of a key answered with its first outcome."""

    requests: int
    unique_keys: int  # keys seen in any POST
    recorded_keys: int  # keys with a recorded outcome (what GET /payments/<key> finds)
    absorbed: int
    by_status: dict[str, int]  # HTTP status as text, or "dropped"
    faults: dict[str, int]  # "fail", "timeout", "drop", "throttle"
    lookups: dict[str, int] = attrs.Factory(dict)  # GET by key: "found", "not_found", "failed"


@attrs.frozen(kw_only=True)
class _Outcome:
    status: int
    body: dict[str, object]
    payload_sha256: str


@attrs.frozen(kw_only=True)
class LoggedRequest:
    """One line of the request log: what arrived and what the simulator answered."""

    seq: int
    wall_time: str
    monotonic: float
    idempotency_key: str | None
    payload_sha256: str
    status: int | None  # None: the connection was dropped without an answer
    reference: str | None
    absorbed: bool
    fault: str | None
    traceparent: str | None = None  # the W3C trace context the request carried, if any


@attrs.frozen(kw_only=True)
class Decision:
    status: int  # what is answered, or would have been for a dropped connection
    body: dict[str, object]
    headers: dict[str, str] = attrs.Factory(dict)
    absorbed: bool = False
    fault: str | None = None
    delay_seconds: float = 0.0


class SimulatedRail:
    """What requests share, behind one lock: outcomes by key, counters, the log, the dice."""

    def __init__(self, faults: Faults, log_path: Path, replay_status: int | None) -> None:
        self.faults = faults
        self.replay_status = replay_status
        self.lock = threading.Lock()  # the loop answers; stats() may read from another thread
        self.outcomes: dict[str, _Outcome] = {}
        self.seen_keys: set[str] = set()
        self.counts: Counter[str] = Counter()
        self._random = random.Random(faults.seed)  # noqa: S311 - a simulation, not security
        self._log = log_path.open("a", encoding="utf-8")

    def decide(self, key: str | None, raw: bytes, *, traceparent: str | None = None) -> Decision:
        """Answer one POST atomically, so concurrent repeats of a key see one first answer."""
        digest = hashlib.sha256(raw).hexdigest()
        with self.lock:
            draw, jitter = self._random.random(), self._random.random()
            delay = (self.faults.latency_ms + jitter * self.faults.latency_jitter_ms) / 1000
            decision = self._answer(key, raw, digest, self._fault(draw) if key else None)
            decision = attrs.evolve(decision, delay_seconds=delay)
            self._record(key, digest, decision, traceparent)
        return decision

    def _fault(self, draw: float) -> str | None:
        upper = 0.0
        for name, rate in (
            ("fail", self.faults.fail_rate),
            ("timeout", self.faults.timeout_rate),
            ("drop", self.faults.drop_rate),
            ("throttle", self.faults.throttle_rate),
        ):
            upper += rate
            if draw < upper:
                return name
        return None

    def _answer(self, key: str | None, raw: bytes, digest: str, fault: str | None) -> Decision:
        if not key:
            return Decision(status=400, body={"error": "IDEMPOTENCY_KEY_REQUIRED"})
        self.seen_keys.add(key)
        if fault == "fail":  # the rail fell over before looking at the request
            return Decision(status=503, body={"error": "SIMULATED_FAILURE"}, fault=fault)
        if fault == "throttle":  # the rail's rate limit, also before looking at the request
            wait = {"Retry-After": str(self.faults.retry_after_seconds)}
            return Decision(
                status=429, body={"error": "SIMULATED_THROTTLE"}, headers=wait, fault=fault
            )
        first = self.outcomes.get(key)
        if first is not None and first.payload_sha256 != digest:
            return Decision(status=422, body={"error": "IDEMPOTENCY_KEY_REUSED"}, fault=fault)
        if first is not None:
            status = self.replay_status or first.status
            return Decision(status=status, body=first.body, absorbed=True, fault=fault)
        payload = _json_object(raw)
        outcome = self._first_outcome(payload, digest)
        if outcome.status < 500 and outcome.status not in TRANSIENT:  # noqa: PLR2004
            self.outcomes[key] = outcome
        retry_after = (payload or {}).get(SCRIPTED_RETRY_AFTER)
        headers = {"Retry-After": retry_after} if isinstance(retry_after, str) else {}
        return Decision(status=outcome.status, body=outcome.body, headers=headers, fault=fault)

    def _first_outcome(self, payload: dict[str, object] | None, digest: str) -> _Outcome:
        if payload is None:
            return _Outcome(status=400, body={"error": "INVALID_JSON"}, payload_sha256=digest)
        scripted = payload.get(SCRIPTED_STATUS)
        if isinstance(scripted, int) and 400 <= scripted <= 599:  # noqa: PLR2004
            return _Outcome(status=scripted, body={"error": "SCRIPTED"}, payload_sha256=digest)
        self.counts["references"] += 1
        reference = f"rsim-{self.counts['references']:08d}"
        return _Outcome(status=201, body={"reference": reference}, payload_sha256=digest)

    def _record(
        self, key: str | None, digest: str, decision: Decision, traceparent: str | None
    ) -> None:
        dropped = decision.fault == "drop"
        self.counts["requests"] += 1
        self.counts["absorbed"] += decision.absorbed
        self.counts["status:" + ("dropped" if dropped else str(decision.status))] += 1
        if decision.fault:
            self.counts["fault:" + decision.fault] += 1
        reference = decision.body.get("reference")
        line = LoggedRequest(
            seq=self.counts["requests"],
            wall_time=datetime.now(UTC).isoformat(),
            monotonic=time.monotonic(),
            idempotency_key=key,
            payload_sha256=digest,
            status=None if dropped else decision.status,
            reference=reference if isinstance(reference, str) and not dropped else None,
            absorbed=decision.absorbed,
            fault=decision.fault,
            traceparent=traceparent,
        )
        if not self._log.closed:  # buffered: flush_log() before the answer goes out
            self._log.write(json.dumps(attrs.asdict(line), sort_keys=True) + "\n")

    def flush_log(self) -> None:
        """Hand the buffered lines to the OS: a reader (a proof, tail -f) then sees them."""
        with self.lock:
            if not self._log.closed:
                self._log.flush()

    def lookup(self, key: str) -> tuple[int, dict[str, object]]:
        """Answer GET /payments/<key>: 200 and the key's first answer, 404, or a 503 fault."""
        with self.lock:
            if (
                self.faults.lookup_fail_rate
                and self._random.random() < self.faults.lookup_fail_rate
            ):
                self.counts["lookup:failed"] += 1
                return 503, {"error": "SIMULATED_FAILURE"}
            outcome = self.outcomes.get(key)
            self.counts["lookup:" + ("not_found" if outcome is None else "found")] += 1
        if outcome is None:
            return 404, {"error": "NOT_FOUND"}
        return 200, {
            "idempotency_key": key,
            "status": outcome.status,
            "payload_sha256": outcome.payload_sha256,
            **outcome.body,
        }

    def stats(self) -> SimulatorStats:
        with self.lock:
            return SimulatorStats(
                requests=self.counts["requests"],
                unique_keys=len(self.seen_keys),
                recorded_keys=len(self.outcomes),
                absorbed=self.counts["absorbed"],
                by_status=self._group("status:"),
                faults=self._group("fault:"),
                lookups=self._group("lookup:"),
            )

    def _group(self, prefix: str) -> dict[str, int]:
        return {
            name.removeprefix(prefix): count
            for name, count in sorted(self.counts.items())
            if name.startswith(prefix)
        }

    def close(self) -> None:
        with self.lock:
            self._log.close()


def _json_object(raw: bytes) -> dict[str, object] | None:
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
