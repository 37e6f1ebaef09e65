"""Proofs: the enqueue's W3C trace context is stored with the item, outside the payload.

Schema 0015 hands it only to the item's holder, and idempotency never compares it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

import attrs
import pytest
from opentelemetry.sdk.trace import TracerProvider

from outbox_db.testonly.factories import make_request

if TYPE_CHECKING:
    from uuid import UUID

    from outbox_db import OutboxStore

TRACE: Final = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
OTHER_TRACE: Final = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def held_trace(store: OutboxStore, worker: str = "worker-1") -> dict[UUID, str]:
    """Claim everything as `worker` and read back the trace contexts it holds."""
    claimed = store.claim(worker, batch_size=100, lease_seconds=30)
    return store.trace_contexts(worker, [item.outbox_id for item in claimed])


def test_the_enqueues_trace_context_reaches_the_holder_only(outbox_store: OutboxStore) -> None:
    """Stored with the item; its holder reads it; another worker reads nothing."""
    created = outbox_store.enqueue(make_request(trace_context=TRACE))

    assert outbox_store.trace_contexts("someone-else", [created.outbox_id]) == {}
    assert held_trace(outbox_store) == {created.outbox_id: TRACE}


@pytest.mark.parametrize(
    "invalid",
    [
        "not a traceparent",
        "00-00000000000000000000000000000000-b7ad6b7169203331-01",  # zero trace id
        "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",  # zero span id
        "01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",  # an unknown version
        TRACE.upper(),
        TRACE + "-extra",
    ],
)
def test_an_invalid_trace_context_is_dropped_and_the_payment_kept(
    outbox_store: OutboxStore, invalid: str
) -> None:
    """Telemetry never refuses a payment: the item is created, without a trace."""
    created = outbox_store.enqueue(make_request(trace_context=invalid))

    assert created.created is True
    assert held_trace(outbox_store) == {}


def test_a_replay_with_another_trace_is_the_same_request(outbox_store: OutboxStore) -> None:
    """Idempotency compares payload, rail and participant, never the trace: created=False."""
    request = make_request(trace_context=TRACE)
    first = outbox_store.enqueue(request)
    replay = outbox_store.enqueue(attrs.evolve(request, trace_context=OTHER_TRACE))

    assert (replay.outbox_id, replay.created) == (first.outbox_id, False)
    assert held_trace(outbox_store) == {first.outbox_id: TRACE}


def test_a_trace_does_not_leak_into_the_next_enqueue_of_the_transaction(
    outbox_store: OutboxStore,
) -> None:
    """In one transaction a traced enqueue, then an untraced one: only the first has a trace."""
    with outbox_store.transaction() as transaction:
        traced = transaction.enqueue(make_request(trace_context=TRACE))
        transaction.enqueue(make_request(trace_context=None))

    assert held_trace(outbox_store) == {traced.outbox_id: TRACE}


def test_a_batch_keeps_each_requests_trace(outbox_store: OutboxStore) -> None:
    """enqueue_many with mixed trace contexts: each item its own, none where none was given."""
    traces = [TRACE, TRACE, None, OTHER_TRACE, None]
    results = outbox_store.enqueue_many([make_request(trace_context=t) for t in traces])

    expected = {r.outbox_id: t for r, t in zip(results, traces, strict=True) if t is not None}
    assert held_trace(outbox_store) == expected


def test_the_current_span_is_the_default_trace_context(outbox_store: OutboxStore) -> None:
    """A request built inside an OpenTelemetry span carries that span's traceparent."""
    tracer = TracerProvider().get_tracer("payments-service")
    with tracer.start_as_current_span("pay") as span:
        request = make_request()
    context = span.get_span_context()

    created = outbox_store.enqueue(request)

    assert held_trace(outbox_store) == {
        created.outbox_id: (
            f"00-{context.trace_id:032x}-{context.span_id:016x}-{context.trace_flags:02x}"
        )
    }
