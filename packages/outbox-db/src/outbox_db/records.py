"""The frozen records that cross the boundary: what callers pass in and get back."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from datetime import datetime  # noqa: TC003 - attrs resolves annotations at runtime
from uuid import UUID  # noqa: TC003 - attrs resolves annotations at runtime

import attrs

from outbox_db import payloads

__all__ = [
    "AttemptState",
    "ClaimedItem",
    "CompletionResult",
    "EnqueueRequest",
    "EnqueueResult",
    "ItemHistory",
    "ItemSelector",
    "Lease",
    "LedgerAttempt",
    "Outcome",
    "PendingState",
    "QueueStatus",
    "RailOrdering",
    "Redrive",
    "RedriveLink",
    "RepairedLease",
    "Role",
    "UnservedRail",
]

JsonObject = Mapping[str, object]


class AttemptState(enum.StrEnum):
    """Outcome of one attempt, as the ledger stores it."""

    DISPATCHING = "DISPATCHING"  # historical rows only; the database refuses new ones
    DISPATCHED = "DISPATCHED"
    RETRYABLE = "RETRYABLE"
    FAILED = "FAILED"
    ZOMBIE_REQUEUE = "ZOMBIE_REQUEUE"  # the ledger's name for a lease-repair requeue


class Role(enum.StrEnum):
    """The group roles a store switches to (SET LOCAL ROLE) for each transaction."""

    # Enqueues (and reads back what it enqueued); nothing else. An application's role.
    PRODUCER = "symphony_producer"
    # The relayer: claims, renews, completes, releases, repairs. Still enqueues, deprecated
    # (schema 0011): an application of an earlier release keeps working while it is narrowed.
    EXECUTOR = "symphony_executor"
    READONLY = "symphony_readonly"
    AUDITOR = "symphony_auditor"
    OPERATOR = "symphony_operator"


def _require_mapping(field: attrs.Attribute[JsonObject], value: object) -> None:
    if not isinstance(value, Mapping):
        msg = f"{field.name} must be a mapping (a JSON object), not {type(value).__name__}"
        raise TypeError(msg)


def _optional_state(value: str | None) -> AttemptState | None:
    return None if value is None else AttemptState(value)


@attrs.frozen(kw_only=True)
class EnqueueRequest:
    """One payment instruction to hand to a rail, keyed by (instruction_id, idempotency_key)."""

    instruction_id: str
    participant_id: str
    idempotency_key: str
    rail_type: str
    # A JSON object; anything else is a caller's bug, refused here before it reaches the wire.
    payload: JsonObject = attrs.field(
        validator=lambda _, field, value: _require_mapping(field, value)
    )


@attrs.frozen(kw_only=True)
class EnqueueResult:
    """The item for the request; `created` is False when it already existed."""

    outbox_id: UUID
    sequence_id: int
    created: bool


@attrs.frozen(kw_only=True)
class Lease:
    """Proof of holding one item: required to complete, renew or release it."""

    outbox_id: UUID
    lease_token: UUID


@attrs.frozen(kw_only=True)
class ClaimedItem:
    """A leased item, ready to dispatch with its idempotency key."""

    outbox_id: UUID
    instruction_id: str
    participant_id: str
    sequence_id: int
    idempotency_key: str
    rail_type: str
    # The payload as the database stores it (jsonb's text). Decoded only when read, item by
    # item: a payload the relayer cannot decode fails its own send, never the claim's batch.
    payload_json: str
    attempt_count: int
    lease_token: UUID
    lease_expires_at: datetime
    # The error_code of the item's last attempt (None before the first): LEASE_EXPIRED after a
    # lease repair, RAIL_TIMEOUT after a send that timed out, and so on.
    last_error_code: str | None = None

    @property
    def payload(self) -> JsonObject:
        """The payload, numbers exact (fractions as Decimal); RecursionError if too deep."""
        return payloads.loads(self.payload_json)

    @property
    def lease(self) -> Lease:
        """The lease to present when completing, renewing or releasing this item."""
        return Lease(outbox_id=self.outbox_id, lease_token=self.lease_token)


@attrs.frozen(kw_only=True)
class Outcome:
    """What a dispatch of a leased item came to; the database appends it as an attempt."""

    lease: Lease
    state: AttemptState
    rail_reference: str | None = None
    rail_code: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    latency_ms: int | None = None
    retry_delay_seconds: int | None = None


@attrs.frozen(kw_only=True)
class CompletionResult:
    """The attempt recorded for an outcome, or lease_held=False when nothing was recorded."""

    outbox_id: UUID
    lease_held: bool
    attempt_no: int | None
    state: AttemptState | None = attrs.field(converter=_optional_state)


@attrs.frozen(kw_only=True)
class RepairedLease:
    """An expired lease that lease repair recorded and cleared."""

    outbox_id: UUID
    attempt_no: int
    new_state: AttemptState = attrs.field(converter=AttemptState)
    previous_holder: str
    lease_expired_at: datetime


@attrs.frozen(kw_only=True)
class QueueStatus:
    """One row of outbox_status_view: a rail_type, or the total when rail_type is None."""

    rail_type: str | None
    due_count: int
    scheduled_count: int  # waiting to retry
    waiting_count: int  # behind an earlier live item of their ordered lane
    leased_count: int
    expired_lease_count: int
    oldest_due_age_seconds: float
    dispatched_count: int
    retryable_count: int
    failed_count: int
    lease_repair_count: int

    @property
    def pending_count(self) -> int:
        """Items in the queue, whatever they are doing: every item not yet ended."""
        return (
            self.due_count
            + self.scheduled_count
            + self.waiting_count
            + self.leased_count
            + self.expired_lease_count
        )


@attrs.frozen(kw_only=True)
class UnservedRail:
    """A rail with due items and no relayer that announced it in the last minute."""

    rail_type: str
    due_count: int
    oldest_due_age_seconds: float
    last_served_at: datetime | None  # None: never, or not within the last hour


@attrs.frozen(kw_only=True)
class Redrive:
    """A FAILED item's re-drive; `created` is False when an earlier call had made it."""

    outbox_id: UUID  # the FAILED item
    redrive_outbox_id: UUID  # the new item, for the same instruction
    idempotency_key: str  # derived: the original key + ":redrive:<n>"
    created: bool
    requested_by: str  # the login that asked (of the first call, when created is False)
    requested_at: datetime
    reason: str


@attrs.frozen(kw_only=True)
class ItemSelector:
    """Which items to inspect: one item by outbox_id, or every item of an instruction or key."""

    outbox_id: UUID | None = None
    instruction_id: str | None = None
    idempotency_key: str | None = None

    def __attrs_post_init__(self) -> None:
        if sum(value is not None for value in attrs.astuple(self)) != 1:
            msg = "select items by exactly one of outbox_id, instruction_id, idempotency_key"
            raise ValueError(msg)


@attrs.frozen(kw_only=True)
class PendingState:
    """An item's row in the work queue: its schedule, and its lease while one is held."""

    outbox_id: UUID
    attempt_count: int
    next_attempt_at: datetime
    created_at: datetime
    claimed_by: str | None
    claimed_at: datetime | None
    lease_expires_at: datetime | None
    ordered: bool = False  # enqueued on an ordered rail: dispatched in its lane's order
    awaiting_predecessor: bool = False  # an earlier item of its lane is still live


@attrs.frozen(kw_only=True)
class LedgerAttempt:
    """One row of the append-only attempts ledger: an attempt of an item, as recorded."""

    outbox_id: UUID
    instruction_id: str
    participant_id: str
    idempotency_key: str
    rail_type: str
    payload: JsonObject
    attempt_no: int
    state: AttemptState = attrs.field(converter=AttemptState)
    claimed_at: datetime | None
    completed_at: datetime
    rail_reference: str | None
    rail_code: str | None
    error_code: str | None
    error_message: str | None
    latency_ms: int | None
    worker_id: str | None


@attrs.frozen(kw_only=True)
class RedriveLink:
    """An operator log entry: who re-drove which FAILED item as which new item, when and why."""

    entry_no: int
    outbox_id: UUID
    redrive_outbox_id: UUID
    redrive_idempotency_key: str
    redrive_generation: int
    requested_by: str
    requested_at: datetime
    reason: str


@attrs.frozen(kw_only=True)
class ItemHistory:
    """One item: its identity, its queue row if live, every attempt in order, its re-drive links."""

    outbox_id: UUID
    instruction_id: str
    participant_id: str
    sequence_id: int
    idempotency_key: str
    rail_type: str
    # Read after the identity, from the queue, the ledger and the operator log.
    pending: PendingState | None = None
    attempts: tuple[LedgerAttempt, ...] = ()
    redrive_of: RedriveLink | None = None  # the entry that created this item from a FAILED one
    redriven_as: RedriveLink | None = None  # the entry that re-drove this item, if FAILED

    @property
    def state(self) -> str:
        """DISPATCHED or FAILED once terminal, else leased or pending."""
        terminal = {AttemptState.DISPATCHED, AttemptState.FAILED}
        final = next((a.state for a in self.attempts if a.state in terminal), None)
        if final is not None:
            return str(final)
        if self.pending is None:
            return "unfinished"  # a DISPATCHING-era attempt the schema's 0004 did not requeue
        return "leased" if self.pending.claimed_by else "pending"


@attrs.frozen(kw_only=True)
class RailOrdering:
    """An entry of the rail ordering history: are new items on the rail ordered from then on."""

    entry_no: int
    rail_type: str
    ordered: bool
    requested_by: str  # the login that asked
    requested_at: datetime
    reason: str
