"""OpenTelemetry spans of the relay loop: claim, dispatch and record (`OUTBOX_TRACING`).

The service's enqueue stores its span's traceparent with the item (outbox-db, schema 0015).
With tracing on, a claim reads the trace contexts of what it leased (one more statement per
claim) and is a span linked to each item's trace; each send is a span in the item's own
trace, current while the rail is called, so a rail that opts in (`traceparent = true` in the
rails file) receives it as a W3C `traceparent` header; each recording of outcomes is a span
linked to its items' traces. Spans go wherever the process's OpenTelemetry SDK sends them;
without `opentelemetry-api` (`outbox-relayer[otel]`) tracing cannot be switched on.
"""

from __future__ import annotations

import contextlib
import time
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Mapping, Sequence
    from uuid import UUID

    from opentelemetry.trace import Link, Tracer

    from outbox_db import ClaimedItem, OutboxStore

__all__ = ["RelayTracing", "TracingUnavailableError"]

TRACER: Final = "outbox-relayer"


class TracingUnavailableError(RuntimeError):
    """Tracing was asked for without opentelemetry-api installed."""


class RelayTracing:
    """The relay loop's spans; `off()` makes none and reads nothing."""

    def __init__(self, tracer: Tracer | None) -> None:
        self._tracer = tracer

    @classmethod
    def off(cls) -> RelayTracing:
        """No spans, no trace contexts read."""
        return cls(None)

    @classmethod
    def on(cls) -> RelayTracing:
        """Spans through the process's global tracer provider."""
        try:
            from opentelemetry import trace  # noqa: PLC0415 - optional extra, imported on use
        except ImportError as error:
            msg = "tracing needs opentelemetry-api: pip install 'outbox-relayer[otel]'"
            raise TracingUnavailableError(msg) from error
        return cls(trace.get_tracer(TRACER))

    def claimed(
        self, store: OutboxStore, worker_id: str, items: Sequence[ClaimedItem], started_ns: int
    ) -> dict[UUID, str]:
        """The leased items' trace contexts; a claim span linked to each, begun at `started_ns`."""
        if self._tracer is None or not items:
            return {}
        traces = store.trace_contexts(worker_id, [item.outbox_id for item in items])
        span = self._tracer.start_span(
            "outbox.claim",
            start_time=started_ns,
            links=_links(traces.values()),
            attributes={"outbox.worker_id": worker_id, "outbox.items": len(items)},
        )
        span.end()
        return traces

    @contextlib.contextmanager
    def dispatching(self, item: ClaimedItem, trace: str | None) -> Iterator[None]:
        """The send of `item` as the current span, a child of its enqueue's span if it has one."""
        if self._tracer is None:
            yield
            return
        from opentelemetry import propagate  # noqa: PLC0415 - present: the tracer came from it

        parent = propagate.extract({"traceparent": trace}) if trace else None
        attributes: dict[str, str | int] = {
            "outbox.outbox_id": str(item.outbox_id),
            "outbox.rail_type": item.rail_type,
            "outbox.attempt": item.attempt_count + 1,
        }
        with self._tracer.start_as_current_span(
            "outbox.dispatch", context=parent, attributes=attributes
        ):
            yield

    @contextlib.contextmanager
    def recording(self, traces: Mapping[UUID, str], outbox_ids: Iterable[UUID]) -> Iterator[None]:
        """The recording of these items' outcomes, as a span linked to their traces."""
        if self._tracer is None:
            yield
            return
        ids = list(outbox_ids)
        links = _links(traces[outbox_id] for outbox_id in ids if outbox_id in traces)
        with self._tracer.start_as_current_span(
            "outbox.record", links=links, attributes={"outbox.items": len(ids)}
        ):
            yield


def now_ns() -> int:
    """The wall clock in nanoseconds, as OpenTelemetry times spans."""
    return time.time_ns()


def _links(traces: Iterable[str]) -> list[Link]:
    from opentelemetry import propagate, trace  # noqa: PLC0415 - present when tracing is on

    links: list[Link] = []
    for traceparent in traces:
        context: Any = trace.get_current_span(propagate.extract({"traceparent": traceparent}))
        links.append(trace.Link(context.get_span_context()))
    return links
