"""Retry delays: exponential backoff with full jitter, so failed items do not retry in step."""

from __future__ import annotations

import math
import random
from typing import TYPE_CHECKING, Final

import attrs
import structlog

if TYPE_CHECKING:
    import threading

__all__ = [
    "DEFAULT_RETRY_BASE_SECONDS",
    "DEFAULT_RETRY_CAP_SECONDS",
    "MAX_RETRY_DELAY_SECONDS",
    "Backoff",
    "DatabaseRetry",
]

DEFAULT_RETRY_BASE_SECONDS: Final = 1
DEFAULT_RETRY_CAP_SECONDS: Final = 300
MAX_RETRY_DELAY_SECONDS: Final = 604_800  # the database refuses a retry_delay_seconds above 7 days
# A lost database is retried from 1 s up to 30 s apart: soon enough to resume quickly after a
# restart or failover, slow enough not to hammer a server that is coming back.
DATABASE_RETRY_BASE_SECONDS: Final = 1
DATABASE_RETRY_CAP_SECONDS: Final = 30
# 2**62 seconds is past any cap; stopping there keeps the arithmetic in float range.
_MAX_DOUBLINGS: Final = 62


def _at_least_base(instance: Backoff, _: object, value: float) -> None:
    if value < instance.base_seconds:
        msg = f"cap_seconds ({value}) must be at least base_seconds ({instance.base_seconds})"
        raise ValueError(msg)


_log = structlog.get_logger("outbox_relayer")
_IN_DB_RANGE: Final = [attrs.validators.gt(0), attrs.validators.le(MAX_RETRY_DELAY_SECONDS)]


@attrs.frozen(kw_only=True)
class Backoff:
    """AWS "full jitter": a delay drawn uniformly from [0, min(cap, base * 2**(attempt-1))].

    Computed once per failure by the worker and passed with the outcome as
    `retry_delay_seconds` (whole seconds, 0..604800); the database sets the item's
    next_attempt_at from it. The number of attempts is not bounded here: the retry ceiling
    is the database's `payment_outbox_settings.max_attempts`.
    """

    base_seconds: float = attrs.field(default=DEFAULT_RETRY_BASE_SECONDS, validator=_IN_DB_RANGE)
    cap_seconds: float = attrs.field(
        default=DEFAULT_RETRY_CAP_SECONDS, validator=[*_IN_DB_RANGE, _at_least_base]
    )
    rng: random.Random = attrs.field(factory=random.Random, eq=False, repr=False)

    def ceiling(self, attempt: int) -> float:
        """The largest delay the attempt-th failure (1-based) may draw: base doubled, capped."""
        if attempt < 1:
            msg = f"attempt is 1-based, got {attempt}"
            raise ValueError(msg)
        doublings = min(attempt - 1, _MAX_DOUBLINGS)
        return min(self.cap_seconds, self.base_seconds * 2.0**doublings)

    def delay_seconds(self, attempt: int, retry_after: float | None = None) -> int:
        """Whole seconds to wait after the attempt-th failure; the rail's Retry-After is a floor.

        The floor can exceed the cap (the rail said so), but never the database's maximum.
        """
        jittered = round(self.rng.uniform(0.0, self.ceiling(attempt)))
        return min(max(jittered, _floor(retry_after)), MAX_RETRY_DELAY_SECONDS)

    def pause_seconds(self, attempt: int) -> float:
        """A pause after the attempt-th consecutive failure: half the ceiling plus jitter.

        Unlike `delay_seconds` it is never zero, so a loop that retries cannot spin.
        """
        return self.ceiling(attempt) * self.rng.uniform(0.5, 1.0)


@attrs.define
class DatabaseRetry:
    """How a long-running loop survives a lost database: pause, log, try again, never die."""

    loop: str
    backoff: Backoff = attrs.field(
        factory=lambda: Backoff(
            base_seconds=DATABASE_RETRY_BASE_SECONDS, cap_seconds=DATABASE_RETRY_CAP_SECONDS
        )
    )
    failures: int = 0

    def failed(self, error: Exception, stop: threading.Event) -> None:
        """Log the failure (a warning: the loop carries on) and pause, or return early on stop."""
        self.failures += 1
        pause = self.backoff.pause_seconds(self.failures)
        _log.warning(
            "database_unavailable",
            loop=self.loop,
            error=str(error),
            consecutive_failures=self.failures,
            retry_in_seconds=round(pause, 2),
        )
        stop.wait(pause)

    def succeeded(self) -> None:
        """Reset after a call that reached the database, saying so once after an outage."""
        if self.failures:
            _log.info("database_reachable", loop=self.loop, after_failures=self.failures)
            self.failures = 0


def _floor(retry_after: float | None) -> int:
    """Retry-After rounded up (never earlier than the rail asked), 0 when absent or unusable."""
    if retry_after is None or math.isnan(retry_after) or retry_after <= 0:
        return 0
    return math.ceil(min(retry_after, MAX_RETRY_DELAY_SECONDS))
