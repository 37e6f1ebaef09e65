"""The W3C trace context of the caller's current span, when OpenTelemetry is installed.

An enqueue stores it with the item (schema 0015), outside the payload, so a relayer can
continue the service's trace. Only `traceparent` travels: `tracestate` is vendor data a
payment queue has no business storing. Without `opentelemetry-api` (`outbox-db[otel]`), or
outside a recording span, there is none.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from types import ModuleType

__all__ = ["current_trace_context"]


def current_trace_context() -> str | None:
    """The current span's `traceparent`, or None."""
    propagate = _propagate()
    if propagate is None:
        return None
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier.get("traceparent")


@functools.cache
def _propagate() -> ModuleType | None:
    """OpenTelemetry's propagation API, looked for once: every EnqueueRequest asks."""
    try:
        from opentelemetry import propagate  # noqa: PLC0415 - optional extra
    except ImportError:
        return None
    return propagate
