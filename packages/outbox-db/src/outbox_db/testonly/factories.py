"""Row factories for proofs: valid defaults, so a test overrides only what it is about."""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING

import attrs

from outbox_db.records import AttemptState, EnqueueRequest, Outcome

if TYPE_CHECKING:
    from outbox_db.records import ClaimedItem
    from outbox_db.store import OutboxStore

_serial = itertools.count(1)


def make_request(**overrides: object) -> EnqueueRequest:
    """A valid enqueue request with unique ids; keyword overrides replace any field."""
    n = next(_serial)
    fields: dict[str, object] = {
        "instruction_id": f"ins-{n}",
        "participant_id": "participant-a",
        "idempotency_key": f"key-{n}",
        "rail_type": "rtp",
        "payload": {"amount": "10.00", "currency": "USD", "n": n},
    }
    return EnqueueRequest(**(fields | overrides))  # type: ignore[arg-type]


def duplicate_of(first: EnqueueRequest) -> EnqueueRequest:
    """Another payment under `first`'s key: refused with IdempotencyConflict (P7001)."""
    return attrs.evolve(first, instruction_id=f"{first.instruction_id}-other")


def leased_item(
    store: OutboxStore, worker_id: str = "worker-1", lease_seconds: int = 30
) -> ClaimedItem:
    """Enqueue one new item and lease it to `worker_id`."""
    created = store.enqueue(make_request())
    (item,) = store.claim(worker_id, batch_size=1, lease_seconds=lease_seconds)
    assert item.outbox_id == created.outbox_id, "a fresh database holds only this item"  # noqa: S101
    return item


def completed_item(
    store: OutboxStore,
    state: AttemptState = AttemptState.DISPATCHED,
    worker_id: str = "worker-1",
    **outcome_fields: object,
) -> ClaimedItem:
    """Enqueue one new item, lease it to `worker_id` and record its outcome `state`."""
    item = leased_item(store, worker_id)
    store.complete(worker_id, Outcome(lease=item.lease, state=state, **outcome_fields))  # type: ignore[arg-type]
    return item


def complete_only_item(store: OutboxStore, state: AttemptState) -> None:
    """Lease the one due item and record its outcome (a terminal one removes the pending row)."""
    (item,) = store.claim("worker-1", batch_size=1, lease_seconds=30)
    store.complete("worker-1", Outcome(lease=item.lease, state=state))
