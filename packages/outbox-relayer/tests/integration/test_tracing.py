"""Proofs: the relayer continues the service's trace, and a rail that opts in receives it.

A service span enqueues (its traceparent stored with the item, schema 0015); a relayer with
tracing on drains to the rail simulator over real HTTP. The spans come from OpenTelemetry's
SDK with its in-memory exporter; what the rail received comes from its request log.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from outbox_db.testonly.factories import make_request
from outbox_relayer.testing import RailSimulator, read_request_log
from outbox_relayer.tracing import RelayTracing
from relaying import drain

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from opentelemetry.trace import SpanContext

    from outbox_db import OutboxStore
    from outbox_relayer.testing import LoggedRequest

RAIL: Final = "rtp"


@pytest.fixture
def spans() -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    """A tracer provider whose finished spans are kept in memory."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider, exporter
    provider.shutdown()


def enqueued_in_a_span(store: OutboxStore, provider: TracerProvider, key: str) -> SpanContext:
    """Enqueue one item inside the service's span; that span's context."""
    with provider.get_tracer("payments-service").start_as_current_span("pay") as span:
        store.enqueue(make_request(rail_type=RAIL, idempotency_key=key))
    return span.get_span_context()


def relayed(
    store: OutboxStore, tmp_path: Path, tracing: RelayTracing | None, *, traceparent: bool
) -> list[LoggedRequest]:
    """Drain RAIL to a rail simulator; what it received."""
    with RailSimulator(log_path=tmp_path / "rail.jsonl") as simulator:
        drain(store, simulator, rail_type=RAIL, tracing=tracing, traceparent=traceparent)
        return read_request_log(simulator.log_path)


def named(exporter: InMemorySpanExporter, name: str) -> list[ReadableSpan]:
    """The finished spans called `name`."""
    return [span for span in exporter.get_finished_spans() if span.name == name]


def test_a_send_continues_the_enqueue_trace_and_the_rail_receives_it(
    outbox_store: OutboxStore,
    spans: tuple[TracerProvider, InMemorySpanExporter],
    tmp_path: Path,
) -> None:
    """Dispatch is a child of the service's span; claim and record link to it; the header too."""
    provider, exporter = spans
    service = enqueued_in_a_span(outbox_store, provider, "traced-1")
    outbox_store.enqueue(make_request(rail_type=RAIL, idempotency_key="untraced-1"))
    tracing = RelayTracing(provider.get_tracer("outbox-relayer"))

    requests = relayed(outbox_store, tmp_path, tracing, traceparent=True)
    received = {request.idempotency_key: request.traceparent for request in requests}

    (traced,) = [
        s for s in named(exporter, "outbox.dispatch") if s.context.trace_id == service.trace_id
    ]
    assert traced.parent is not None
    assert traced.parent.span_id == service.span_id
    assert traced.attributes is not None
    assert traced.attributes["outbox.rail_type"] == RAIL
    sent = received["traced-1"]
    assert sent is not None
    assert sent.startswith(f"00-{service.trace_id:032x}-{traced.context.span_id:016x}-")
    # The untraced item's send is a trace of its own, still propagated to the opted-in rail.
    assert received["untraced-1"] is not None
    assert f"{service.trace_id:032x}" not in received["untraced-1"]
    for name in ("outbox.claim", "outbox.record"):
        linked = {link.context.span_id for span in named(exporter, name) for link in span.links}
        assert service.span_id in linked, name


def test_a_rail_that_does_not_opt_in_receives_no_trace_header(
    outbox_store: OutboxStore,
    spans: tuple[TracerProvider, InMemorySpanExporter],
    tmp_path: Path,
) -> None:
    """Traceparent = false (the default): the spans are made, the rail sees no header."""
    provider, exporter = spans
    enqueued_in_a_span(outbox_store, provider, "quiet-1")
    tracing = RelayTracing(provider.get_tracer("outbox-relayer"))

    (request,) = relayed(outbox_store, tmp_path, tracing, traceparent=False)

    assert request.traceparent is None
    assert len(named(exporter, "outbox.dispatch")) == 1


def test_tracing_off_reads_no_trace_and_makes_no_span(
    outbox_store: OutboxStore,
    spans: tuple[TracerProvider, InMemorySpanExporter],
    tmp_path: Path,
) -> None:
    """The default relayer: no spans of its own, no header, whatever the item carries."""
    provider, exporter = spans
    enqueued_in_a_span(outbox_store, provider, "off-1")
    exporter.clear()

    (request,) = relayed(outbox_store, tmp_path, None, traceparent=True)

    assert request.traceparent is None
    assert exporter.get_finished_spans() == ()
