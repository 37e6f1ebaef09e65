"""Retry delays: exponential backoff with full jitter, so failed items do not retry in step."""

from __future__ import annotations

import math
import random
from typing import Final

import attrs

__all__ = [
    "DEFAULT_RETRY_BASE_SECONDS",
    "DEFAULT_RETRY_CAP_SECONDS",
    "MAX_RETRY_DELAY_SECONDS",
    "Backoff",
]

DEFAULT_RETRY_BASE_SECONDS: Final = 1
DEFAULT_RETRY_CAP_SECONDS: Final = 300
MAX_RETRY_DELAY_SECONDS: Final = 604_800  # the database refuses a retry_delay_seconds above 7 days
# 2**62 seconds is past any cap; stopping there keeps the arithmetic in float range.
_MAX_DOUBLINGS: Final = 62


def _at_least_base(instance: Backoff, _: object, value: float) -> None:
    if value < instance.base_seconds:
        msg = f"cap_seconds ({value}) must be at least base_seconds ({instance.base_seconds})"
        raise ValueError(msg)


_IN_DB_RANGE: Final = [attrs.validators.gt(0), attrs.validators.le(MAX_RETRY_DELAY_SECONDS)]


@attrs.frozen(kw_only=True)
class Backoff:
    """AWS "full jitter": a delay drawn uniformly from [0, min(cap, base * 2**(attempt-1))].

    Computed once per failure by the worker and stored as the attempt's `retry_delay_seconds`
    (whole seconds, 0..604800). The number of attempts is not bounded here: the retry ceiling
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


def _floor(retry_after: float | None) -> int:
    """Retry-After rounded up (never earlier than the rail asked), 0 when absent or unusable."""
    if retry_after is None or math.isnan(retry_after) or retry_after <= 0:
        return 0
    return math.ceil(min(retry_after, MAX_RETRY_DELAY_SECONDS))
