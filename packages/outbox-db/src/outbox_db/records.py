"""The frozen records that cross the boundary: what callers pass in and get back."""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from datetime import datetime  # noqa: TC003 - attrs resolves annotations at runtime
from typing import Final
from uuid import UUID  # noqa: TC003 - attrs resolves annotations at runtime

import attrs

from outbox_db import payloads
from outbox_db.tracing import current_trace_context

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
    "QueueDepth",
    "QueueStatus",
    "RailOrdering",
    "Redrive",
    "RedriveLink",
    "RepairedLease",
    "Role",
    "RoleNames",
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


OWNER_ROLE: Final = "outbox_owner"  # owns every outbox object; never an application's
# A prefix ends in "_" so that the prefixed names read as names (payments_b_outbox_owner), and
# is short enough that every prefixed name stays within PostgreSQL's 63 bytes.
_ROLE_PREFIX: Final = re.compile(r"[a-z][a-z0-9_]{0,38}_")
_SEED_NAMES: Final = re.compile(
    rf"\b(?:{'|'.join(sorted([OWNER_ROLE, *(role.value for role in Role)]))})\b"
)


@attrs.frozen
class RoleNames:
    """The names one database's outbox roles have in its cluster: the seed names, prefixed.

    Roles are cluster-wide. Databases of one cluster that each have a prefix of their own
    share no role, so a login granted one database's roles has no authority in another. The
    default, no prefix, is the seed names (`symphony_executor`, `outbox_owner`, ...).
    """

    prefix: str = attrs.field(default="")

    @prefix.validator
    def _check(self, _attribute: attrs.Attribute[str], value: str) -> None:
        if value and not _ROLE_PREFIX.fullmatch(value):
            msg = (
                f"role prefix {value!r}: lowercase letters, digits and '_', starting with a "
                "letter, ending with '_', at most 40 characters (e.g. 'payments_b_')"
            )
            raise ValueError(msg)

    @classmethod
    def of_owner(cls, owner: str | None) -> RoleNames | None:
        """The names of a database whose outbox tables `owner` owns, if an outbox owner role.

        None: no tables yet, or tables older than the outbox roles (made by hand, legacy).
        """
        prefix = (owner or "").removesuffix(OWNER_ROLE)
        if not owner or prefix == owner or (prefix and not _ROLE_PREFIX.fullmatch(prefix)):
            return None
        return cls(prefix)

    @property
    def owner(self) -> str:
        """The role that owns every outbox object of the database."""
        return self.prefix + OWNER_ROLE

    def of(self, role: Role) -> str:
        """The name `role` has in this database's cluster."""
        return self.prefix + role.value

    @property
    def groups(self) -> tuple[str, ...]:
        """The names of the group roles applications and people are granted (every `Role`)."""
        return tuple(self.of(role) for role in Role)

    def render(self, text: str) -> str:
        """Shipped SQL with every seed role name prefixed (whole names only)."""
        return _SEED_NAMES.sub(lambda found: self.prefix + found[0], text) if self.prefix else text


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
    # The W3C traceparent of the enqueuing span (OpenTelemetry's current one by default):
    # stored with the item, never compared by idempotency; an invalid one is stored as none.
    trace_context: str | None = attrs.field(factory=current_trace_context)


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
class QueueDepth:
    """One rail's queue, from the pending table alone (outbox_queue_depth): what metrics read."""

    rail_type: str
    due_count: int
    scheduled_count: int  # waiting to retry
    waiting_count: int  # behind an earlier live item of their ordered lane
    leased_count: int
    expired_lease_count: int
    oldest_due_age_seconds: float


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
    worker_id: str | None  # what the caller said it is
    recorded_by: str | None = None  # the login whose session wrote it (None: before 0017)


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
