"""What each gateway operation sends and what it returns, once for the sync and async stores.

Each builder here makes the `Call` of one operation (_gateway.py): the named statements of
sql/queries.sql it runs, their parameters and row types, and how their rows become the
result. Building one validates and serializes the input (a payload JSON cannot carry is
refused here, before anything is sent) and does no I/O. `TransactionOperations` and
`StoreOperations` list them as the gateways' methods, so no rule of the outbox exists twice.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any, Final, ParamSpec, TypeVar

import attrs
from psycopg.types.json import Jsonb

from outbox_db import payloads
from outbox_db._gateway import Call, Statement, one_of, operation, rows_of
from outbox_db._history import assemble
from outbox_db._month_calls import (
    archived_ledger_rows,
    detach_ledger_month,
    drop_archived_ledger_month,
    ledger_months,
    prepare_ledger_months,
    record_ledger_archive,
)
from outbox_db.errors import UNREADABLE_JSON, InvalidInput
from outbox_db.records import (
    ClaimedItem,
    CompletionResult,
    EnqueueRequest,
    EnqueueResult,
    ItemHistory,
    ItemSelector,
    Lease,
    LedgerAttempt,
    Outcome,
    PendingState,
    QueueDepth,
    QueueStatus,
    RailOrdering,
    Redrive,
    RedriveLink,
    RepairedLease,
    UnservedRail,
)

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping, Sequence
    from datetime import datetime
    from uuid import UUID


P = ParamSpec("P")
R = TypeVar("R")
S = TypeVar("S")
T = TypeVar("T")
# Requests per statement of enqueue_many (enqueue_payment_outbox_batch's own limit).
MAX_ENQUEUE_BATCH: Final = 10_000
# Payloads up to this many bytes travel in the single round trip of a pipeline (see enqueue).
PIPELINED_PAYLOAD_BYTES: Final = 65_536
# How long a listener waits for its own probe before it says notifications do not arrive.
WAKEUP_PROBE_SECONDS: Final = 2.0


# --- the service's operations ---------------------------------------------------------------


def enqueue(request: EnqueueRequest) -> Call[EnqueueResult]:
    """Create the item for `request`, or return the existing one."""
    params = _enqueue_params(request)
    # psycopg's pipeline can stall on a message larger than the socket's buffers (the server
    # waits for the rest of it, the client for results): large payloads go statement by
    # statement, one round trip each.
    pipelined = len(params["payload"].obj) <= PIPELINED_PAYLOAD_BYTES
    statement = Statement("enqueue", params, EnqueueResult, trace=request.trace_context)
    return attrs.evolve(one_of(statement), pipelined=pipelined)


def enqueue_many(requests: Sequence[EnqueueRequest]) -> Call[list[EnqueueResult]]:
    """`enqueue` for each request, in order, a statement per MAX_ENQUEUE_BATCH requests.

    Same results, sequence numbers and errors as one `enqueue` per request; a conflicting key
    (P7001) or an invalid request (22023) fails the whole call.
    """
    statements = tuple(
        Statement(
            "enqueue_batch",
            _arrays([_enqueue_params(request) for request in chunk], _REQUEST_ARRAYS),
            EnqueueResult,
            trace=chunk[0].trace_context,
        )
        for chunk in _batches(requests)
    )
    return Call(statements, lambda rows: [row for chunk in rows for row in chunk], pipelined=False)


# --- the relayer's operations ---------------------------------------------------------------


def claim(worker_id: str, *, batch_size: int, lease_seconds: int) -> Call[list[ClaimedItem]]:
    """Lease up to `batch_size` due items to `worker_id` (claim_outbox_batch)."""
    params = {"worker_id": worker_id, "batch_size": batch_size, "lease_seconds": lease_seconds}
    return rows_of(Statement("claim", params, ClaimedItem))


def claim_rails(
    worker_id: str, *, limits: Mapping[str, int], lease_seconds: int
) -> Call[list[ClaimedItem]]:
    """Lease up to `limits[rail]` due items of each rail (claim_outbox_rails).

    Also announces `worker_id` as serving every rail in `limits`, a limit of 0 included.
    """
    params = {
        "worker_id": worker_id,
        "lease_seconds": lease_seconds,
        "rail_types": list(limits),
        "limits": list(limits.values()),
    }
    return rows_of(Statement("claim_rails", params, ClaimedItem))


def complete(worker_id: str, outcome: Outcome) -> Call[CompletionResult]:
    """Record one outcome (complete_outbox_attempt); raises LeaseLost if not held."""
    params = {**_outcome_params(outcome), "worker_id": worker_id}
    return one_of(Statement("complete", params, CompletionResult))


def complete_batch(worker_id: str, outcomes: Sequence[Outcome]) -> Call[list[CompletionResult]]:
    """Record many outcomes in one statement; lost leases come back with lease_held=False."""
    params = _arrays([_outcome_params(outcome) for outcome in outcomes], _OUTCOME_ARRAYS)
    params["worker_id"] = worker_id
    return rows_of(Statement("complete_batch", params, CompletionResult))


def renew(worker_id: str, lease: Lease, *, lease_seconds: int) -> Call[datetime]:
    """Extend a held lease by `lease_seconds` from now; raises LeaseLost if not held."""
    params = {**attrs.asdict(lease), "worker_id": worker_id, "lease_seconds": lease_seconds}
    return one_of(Statement("renew", params, _LeaseExpiry)).then(lambda r: r.lease_expires_at)


def release(worker_id: str, leases: Sequence[Lease]) -> Call[list[UUID]]:
    """Give back leases of items never dispatched; returns those that were still held."""
    params = {
        "worker_id": worker_id,
        "outbox_ids": [lease.outbox_id for lease in leases],
        "lease_tokens": [lease.lease_token for lease in leases],
    }
    released = rows_of(Statement("release", params, _Released))
    return released.then(lambda rows: [row.outbox_id for row in rows])


def repair(worker_id: str, *, batch_size: int) -> Call[list[RepairedLease]]:
    """Record and clear up to `batch_size` expired leases (repair_expired_leases)."""
    params = {"worker_id": worker_id, "batch_size": batch_size}
    return rows_of(Statement("repair", params, RepairedLease))


def expired_lease_count() -> Call[int]:
    """Expired leases waiting for repair, counted from the pending table alone (cheap)."""
    counted = one_of(Statement("expired_lease_count", {}, _ExpiredLeases))
    return counted.then(lambda row: row.expired_lease_count)


def trace_contexts(worker_id: str, outbox_ids: Sequence[UUID]) -> Call[dict[UUID, str]]:
    """The trace contexts of the items among `outbox_ids` that `worker_id` holds, if any."""
    params = {"worker_id": worker_id, "outbox_ids": list(outbox_ids)}
    found = rows_of(Statement("trace_contexts", params, _TraceContext))
    return found.then(lambda rows: {row.outbox_id: row.trace_context for row in rows})


def wakeup_probe_token() -> str:
    """A payload a listener recognises as its own probe among the enqueue notifications."""
    return f"probe:{uuid.uuid4()}"


def announce_wakeup_probe(token: str) -> Call[bool]:
    """Send `token` to the enqueue listeners, as an enqueue's notification would reach them."""
    sent = one_of(Statement("announce_wakeup_probe", {"token": token}, _Sent))
    return sent.then(lambda row: row.sent)


# --- readers and operators ------------------------------------------------------------------


def ledger(rail_type: str | None = None) -> Call[list[LedgerAttempt]]:
    """Every attempt of `rail_type` (None: of every rail), by outbox_id and attempt_no.

    Reads the ledger table, so the store's role must be symphony_readonly or
    symphony_auditor (the executor may only call functions: PermissionDenied).
    """
    return rows_of(Statement("ledger", {"rail_type": rail_type}, LedgerAttempt))


def status() -> Call[list[QueueStatus]]:
    """outbox_status_view: the total row (rail_type None) first, then one per rail."""
    return rows_of(Statement("status", {}, QueueStatus))


def queue_depth() -> Call[list[QueueDepth]]:
    """Per rail, the queue from the pending table alone (outbox_queue_depth): for metrics.

    Never reads the ledger, so its cost follows the queue, not the outbox's history.
    """
    return rows_of(Statement("queue_depth", {}, QueueDepth))


def unserved_rails() -> Call[list[UnservedRail]]:
    """Rails with due items that no relayer announced in the last minute, by name."""
    return rows_of(Statement("unserved_rails", {}, UnservedRail))


def redrive(outbox_id: UUID, *, reason: str) -> Call[Redrive]:
    """Re-drive a FAILED item as a new item (redrive_payment_outbox; symphony_operator).

    Returns the earlier re-drive when the item already has one. Raises RedriveRefused when
    the item is not FAILED, UnknownItem when there is no such item.
    """
    return one_of(Statement("redrive", {"outbox_id": outbox_id, "reason": reason}, Redrive))


def set_rail_ordering(rail_type: str, *, ordered: bool, reason: str) -> Call[RailOrdering]:
    """Make new items on `rail_type` ordered per participant, or not (symphony_operator).

    Items already enqueued keep what they were promised. Who asked and why are recorded in
    the append-only ordering history, which `rail_orderings` reads.
    """
    params = {"rail_type": rail_type, "ordered": ordered, "reason": reason}
    return one_of(Statement("set_rail_ordering", params, RailOrdering))


def rail_orderings() -> Call[list[RailOrdering]]:
    """The rail ordering history, oldest first (symphony_readonly or symphony_auditor)."""
    return rows_of(Statement("rail_orderings", {}, RailOrdering))


def history_items(selector: ItemSelector) -> Call[list[ItemHistory]]:
    """The items `selector` names: the first read of a gateway's `history`."""
    return rows_of(Statement("history_items", attrs.asdict(selector), ItemHistory))


def history_of(items: Sequence[ItemHistory]) -> Call[list[ItemHistory]]:
    """Each of `items` with its queue row, attempts and re-drive links: history's second read."""
    ids = {"outbox_ids": [item.outbox_id for item in items]}
    statements = (
        Statement("history_pending", ids, PendingState),
        Statement("history_attempts", ids, LedgerAttempt),
        Statement("history_links", ids, RedriveLink),
    )
    return Call(statements, lambda rows: assemble(items, *rows), pipelined=False)


# --- the gateways' operations, one list for the sync and the async gateways ----------------


class TransactionOperations:
    """What a transaction shared with a service offers (OutboxTransaction and its async twin)."""

    enqueue = operation(enqueue)
    enqueue_many = operation(enqueue_many)


class StoreOperations(TransactionOperations):
    """What a store offers, each call in a transaction of its own (both stores)."""

    claim = operation(claim)
    claim_rails = operation(claim_rails)
    complete = operation(complete)
    complete_batch = operation(complete_batch)
    renew = operation(renew)
    release = operation(release)
    repair = operation(repair)
    expired_lease_count = operation(expired_lease_count)
    trace_contexts = operation(trace_contexts)
    ledger = operation(ledger)
    status = operation(status)
    queue_depth = operation(queue_depth)
    unserved_rails = operation(unserved_rails)
    redrive = operation(redrive)
    set_rail_ordering = operation(set_rail_ordering)
    rail_orderings = operation(rail_orderings)
    prepare_ledger_months = operation(prepare_ledger_months)
    ledger_months = operation(ledger_months)
    detach_ledger_month = operation(detach_ledger_month)
    archived_ledger_rows = operation(archived_ledger_rows)
    record_ledger_archive = operation(record_ledger_archive)
    drop_archived_ledger_month = operation(drop_archived_ledger_month)


# --- rows and parameters --------------------------------------------------------------------


@attrs.frozen
class _LeaseExpiry:
    lease_expires_at: datetime


@attrs.frozen
class _Released:
    outbox_id: UUID


@attrs.frozen
class _TraceContext:
    outbox_id: UUID
    trace_context: str


@attrs.frozen
class _Sent:
    sent: bool


@attrs.frozen
class _ExpiredLeases:
    expired_lease_count: int


# complete_outbox_attempts takes one array per outcome field: (parameter, field).
_OUTCOME_ARRAYS: Final = (
    ("outbox_ids", "outbox_id"),
    ("lease_tokens", "lease_token"),
    ("states", "state"),
    ("rail_references", "rail_reference"),
    ("rail_codes", "rail_code"),
    ("error_codes", "error_code"),
    ("error_messages", "error_message"),
    ("latency_ms", "latency_ms"),
    ("retry_delay_seconds", "retry_delay_seconds"),
)
# enqueue_payment_outbox_batch takes one array per request field: (parameter, field).
_REQUEST_ARRAYS: Final = (
    ("instruction_ids", "instruction_id"),
    ("participant_ids", "participant_id"),
    ("idempotency_keys", "idempotency_key"),
    ("rail_types", "rail_type"),
    ("payloads", "payload"),
)


def _batches(requests: Sequence[EnqueueRequest]) -> Iterator[Sequence[EnqueueRequest]]:
    """Runs of requests with one trace context, at most MAX_ENQUEUE_BATCH each, in order."""
    start = 0
    while start < len(requests):
        end = start + 1
        limit = min(len(requests), start + MAX_ENQUEUE_BATCH)
        while end < limit and requests[end].trace_context == requests[start].trace_context:
            end += 1
        yield requests[start:end]
        start = end


def _arrays(
    rows: Sequence[Mapping[str, object]], arrays: Sequence[tuple[str, str]]
) -> dict[str, object]:
    """One array parameter per field, for the functions that take a batch as arrays."""
    return {array: [row[field] for row in rows] for array, field in arrays}


def _enqueue_params(request: EnqueueRequest) -> dict[str, Any]:
    return attrs.asdict(request, recurse=False) | {"payload": _payload_param(request.payload)}


def _payload_param(payload: Mapping[str, object]) -> Jsonb:
    """The payload as exact JSON text (Decimal digit for digit), or InvalidInput (22P02).

    Serialized here, before anything is sent, so a value JSON cannot hold (NaN, an infinity,
    a lone surrogate, an object of no JSON type) is refused as the server refuses unreadable
    JSON.
    """
    try:
        # A lone surrogate fails here (UnicodeEncodeError is a ValueError), not mid-pipeline.
        data = payloads.canonical_json(payload).encode()
    except (ValueError, TypeError, RecursionError) as error:
        msg = f"invalid argument: a payload value JSON cannot carry [SQLSTATE {UNREADABLE_JSON}]"
        raise InvalidInput(msg, sqlstate=UNREADABLE_JSON, constraint=None) from error
    return Jsonb(data, dumps=_serialized)


def _serialized(data: bytes) -> bytes:
    return data


def _outcome_params(outcome: Outcome) -> dict[str, object]:
    fields = attrs.asdict(outcome, recurse=False)
    lease: Lease = fields.pop("lease")
    return {**fields, **attrs.asdict(lease), "state": str(outcome.state)}
