"""The one narrow gateway to the outbox: typed methods that each name a database function."""

from __future__ import annotations

import contextlib
import functools
import uuid
from typing import TYPE_CHECKING, Any, Final, Self, TypeVar

import attrs
import psycopg
from psycopg import sql
from psycopg.rows import class_row
from psycopg.types.json import Jsonb, set_json_loads
from psycopg_pool import ConnectionPool

from outbox_db import payloads, pooling
from outbox_db._catalogue import QUERIES
from outbox_db._history import assemble
from outbox_db._roles import database_roles
from outbox_db.errors import (
    UNREADABLE_JSON,
    InvalidInput,
    OutboxError,
    retry_serialization_failures,
    translate,
)
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
    Role,
    RoleNames,
    UnservedRail,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping, Sequence
    from datetime import datetime
    from types import TracebackType
    from uuid import UUID

__all__ = ["EnqueueWakeups", "OutboxStore", "OutboxTransaction"]

T = TypeVar("T")
APPLICATION_NAME: Final = "outbox-db"
# Requests per statement of enqueue_many (enqueue_payment_outbox_batch's own limit).
MAX_ENQUEUE_BATCH: Final = 10_000
# How long a listener waits for its own probe before it says notifications do not arrive.
WAKEUP_PROBE_SECONDS: Final = 2.0
_PROBE_PREFIX: Final = "probe:"
# Payloads up to this many bytes travel in the single round trip of a pipeline (see enqueue).
_PIPELINED_PAYLOAD_BYTES: Final = 65_536


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


class OutboxTransaction:
    """An open transaction that a service's own writes and its outbox items share.

    Obtain one from ``OutboxStore.transaction()``, or wrap a psycopg connection the service
    already has inside a transaction with ``OutboxTransaction.join(connection)``: then the
    enqueue runs with the service's own privileges (its login role must be a member of
    symphony_producer; symphony_executor still enqueues, deprecated) and commits or rolls back
    with the service's transaction.

    Each enqueue runs in a savepoint of its own: one that is refused (IdempotencyConflict,
    InvalidInput) is undone alone, and the transaction stays usable for the service's other
    statements. Without it, PostgreSQL would refuse every later statement (25P02) and the
    service would lose the whole transaction to one duplicate request.
    """

    def __init__(self, connection: psycopg.Connection[Any]) -> None:
        self.connection = connection

    @classmethod
    def join(cls, connection: psycopg.Connection[Any]) -> Self:
        """Use a service's connection; refuses one that would commit each statement alone."""
        in_transaction = connection.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS
        if connection.autocommit and not in_transaction:
            msg = "join needs a connection inside a transaction (autocommit commits the item alone)"
            raise OutboxError(msg)
        return cls(connection)

    def enqueue(self, request: EnqueueRequest) -> EnqueueResult:
        """Create the item for `request` in this transaction, or return the existing one."""
        params = _enqueue_params(request)
        with _savepoint(self.connection), _trace_context(self.connection, request.trace_context):
            (result,) = _fetch_all(self.connection, "enqueue", params, EnqueueResult)
        return result

    def enqueue_many(self, requests: Sequence[EnqueueRequest]) -> list[EnqueueResult]:
        """`enqueue` for each request, in order, a statement per MAX_ENQUEUE_BATCH requests.

        Same results, sequence numbers and errors as one `enqueue` per request; a conflicting
        key (P7001) or an invalid request (22023) fails the whole call.
        """
        chunks = [
            (chunk[0].trace_context, _arrays([_enqueue_params(r) for r in chunk], _REQUEST_ARRAYS))
            for chunk in _batches(requests)
        ]
        results: list[EnqueueResult] = []
        with _savepoint(self.connection):
            for trace, params in chunks:
                with _trace_context(self.connection, trace):
                    results += _fetch_all(self.connection, "enqueue_batch", params, EnqueueResult)
        return results


class OutboxStore:
    """A connection pool that acts as one role; each call is one short transaction."""

    def __init__(
        self,
        pool: ConnectionPool[Any],
        *,
        role: Role | None,
        roles: RoleNames,
        route: pooling.Route,
    ) -> None:
        self._pool = pool
        self._role = role
        self._roles = roles
        self.route = route

    @classmethod
    def connect(
        cls,
        url: str,
        *,
        # The default stays EXECUTOR for compatibility: a service of an earlier release calls
        # connect(url) with a login granted symphony_executor only, and SET ROLE to the
        # producer would refuse it (42501). Services pass role=Role.PRODUCER; the default
        # becomes PRODUCER with the migration that revokes enqueue from symphony_executor.
        role: Role | None = Role.EXECUTOR,
        min_size: int = 1,
        max_size: int = 4,
        timeout: float = 10.0,
    ) -> Self:
        """Open a pool on `url`; every transaction runs as `role` (None: the login role).

        A service that enqueues passes ``role=Role.PRODUCER``; a relayer ``Role.EXECUTOR``.

        One connection is made first so that a wrong URL, a refused connection or a failed
        login is reported at once with its reason, not as a pool timeout. It finds out whether
        a pooler answers the URL (PgBouncer: then nothing is prepared), and reads the
        database's role names (a database migrated with a role prefix has roles of its own):
        `role` is switched to under the name it has in this database.
        """
        with pooling.probed(url, timeout=timeout) as (route, probe):
            roles = database_roles(probe) or RoleNames()  # the seed names before migrate
        pool: ConnectionPool[Any] = ConnectionPool(
            url,
            min_size=min_size,
            max_size=max_size,
            # Not autocommit: the first statement opens the transaction, so BEGIN can travel
            # in the same pipeline as the role switch; the pool commits when a block ends.
            kwargs={"autocommit": False, "application_name": APPLICATION_NAME}
            | route.connection_options,
            configure=_read_exact_numbers,
            open=False,
            name=APPLICATION_NAME,
        )
        try:
            pool.open(wait=True, timeout=timeout)
        except psycopg.Error as error:
            pool.close()
            raise translate(error) from error
        except Exception:
            pool.close()
            raise
        return cls(pool, role=role, roles=roles, route=route)

    def close(self) -> None:
        """Close every connection of the pool."""
        self._pool.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[OutboxTransaction]:
        """A transaction as the store's role; committed when the block ends, else rolled back."""
        try:
            with self._pool.connection() as connection:
                with connection.pipeline():
                    self._switch_role(connection)
                yield OutboxTransaction(connection)
        except (psycopg.Error, UnicodeEncodeError) as error:
            raise translate(error) from error

    def enqueue(self, request: EnqueueRequest) -> EnqueueResult:
        """Create the item for `request` in its own transaction, or return the existing one."""
        params = _enqueue_params(request)
        # psycopg's pipeline can stall on a message larger than the socket's buffers (the
        # server waits for the rest of it, the client for results): large payloads go
        # statement by statement, one round trip each.
        payload = params["payload"]
        pipelined = len(payload.obj) <= _PIPELINED_PAYLOAD_BYTES
        (result,) = self._fetch(
            "enqueue", params, EnqueueResult, pipelined=pipelined, trace=request.trace_context
        )
        return result

    def enqueue_many(self, requests: Sequence[EnqueueRequest]) -> list[EnqueueResult]:
        """`OutboxTransaction.enqueue_many` in a transaction of its own: all or nothing.

        Run again on a serialization failure, like every transaction the store opens itself.
        """

        def enqueue_all() -> list[EnqueueResult]:
            with self.transaction() as transaction:
                return transaction.enqueue_many(requests)

        return retry_serialization_failures(enqueue_all)

    def claim(self, worker_id: str, *, batch_size: int, lease_seconds: int) -> list[ClaimedItem]:
        """Lease up to `batch_size` due items to `worker_id` (claim_outbox_batch)."""
        params = {"worker_id": worker_id, "batch_size": batch_size, "lease_seconds": lease_seconds}
        return self._fetch("claim", params, ClaimedItem)

    def claim_rails(
        self, worker_id: str, *, limits: Mapping[str, int], lease_seconds: int
    ) -> list[ClaimedItem]:
        """Lease up to `limits[rail]` due items of each rail (claim_outbox_rails).

        Also announces `worker_id` as serving every rail in `limits`, a limit of 0 included.
        """
        params = {
            "worker_id": worker_id,
            "lease_seconds": lease_seconds,
            "rail_types": list(limits),
            "limits": list(limits.values()),
        }
        return self._fetch("claim_rails", params, ClaimedItem)

    def complete(self, worker_id: str, outcome: Outcome) -> CompletionResult:
        """Record one outcome (complete_outbox_attempt); raises LeaseLost if not held."""
        params = {**_outcome_params(outcome), "worker_id": worker_id}
        return self._fetch("complete", params, CompletionResult)[0]

    def complete_batch(self, worker_id: str, outcomes: Sequence[Outcome]) -> list[CompletionResult]:
        """Record many outcomes in one statement; lost leases come back with lease_held=False."""
        params = _arrays([_outcome_params(outcome) for outcome in outcomes], _OUTCOME_ARRAYS)
        params["worker_id"] = worker_id
        return self._fetch("complete_batch", params, CompletionResult)

    def renew(self, worker_id: str, lease: Lease, *, lease_seconds: int) -> datetime:
        """Extend a held lease by `lease_seconds` from now; raises LeaseLost if not held."""
        params = {**attrs.asdict(lease), "worker_id": worker_id, "lease_seconds": lease_seconds}
        return self._fetch("renew", params, _LeaseExpiry)[0].lease_expires_at

    def release(self, worker_id: str, leases: Sequence[Lease]) -> list[UUID]:
        """Give back leases of items never dispatched; returns those that were still held."""
        params = {
            "worker_id": worker_id,
            "outbox_ids": [lease.outbox_id for lease in leases],
            "lease_tokens": [lease.lease_token for lease in leases],
        }
        return [row.outbox_id for row in self._fetch("release", params, _Released)]

    def repair(self, worker_id: str, *, batch_size: int) -> list[RepairedLease]:
        """Record and clear up to `batch_size` expired leases (repair_expired_leases)."""
        params = {"worker_id": worker_id, "batch_size": batch_size}
        return self._fetch("repair", params, RepairedLease)

    def expired_lease_count(self) -> int:
        """Expired leases waiting for repair, counted from the pending table alone (cheap)."""
        return self._fetch("expired_lease_count", {}, _ExpiredLeases)[0].expired_lease_count

    def wakeups(self, listen_url: str | None = None) -> EnqueueWakeups:
        """A listener for enqueue notifications, on a connection of its own (not the pool's).

        It connects to `listen_url` when given: behind a pooler in transaction mode LISTEN
        hears nothing, so a direct URL to the server is how a relayer keeps its wake-ups.
        """
        conninfo = self._pool.conninfo
        url = listen_url or (conninfo() if callable(conninfo) else conninfo)
        return EnqueueWakeups(url, announce=self._announce_wakeup_probe)

    def ledger(self, rail_type: str | None = None) -> list[LedgerAttempt]:
        """Every attempt of `rail_type` (None: of every rail), by outbox_id and attempt_no.

        Reads the ledger table, so the store's role must be symphony_readonly or
        symphony_auditor (the executor may only call functions: PermissionDenied).
        """
        return self._fetch("ledger", {"rail_type": rail_type}, LedgerAttempt)

    def status(self) -> list[QueueStatus]:
        """outbox_status_view: the total row (rail_type None) first, then one per rail."""
        return self._fetch("status", {}, QueueStatus)

    def trace_contexts(self, worker_id: str, outbox_ids: Sequence[UUID]) -> dict[UUID, str]:
        """The trace contexts of the items among `outbox_ids` that `worker_id` holds, if any."""
        params = {"worker_id": worker_id, "outbox_ids": list(outbox_ids)}
        rows = self._fetch("trace_contexts", params, _TraceContext)
        return {row.outbox_id: row.trace_context for row in rows}

    def queue_depth(self) -> list[QueueDepth]:
        """Per rail, the queue from the pending table alone (outbox_queue_depth): for metrics.

        Never reads the ledger, so its cost follows the queue, not the outbox's history.
        """
        return self._fetch("queue_depth", {}, QueueDepth)

    def unserved_rails(self) -> list[UnservedRail]:
        """Rails with due items that no relayer announced in the last minute, by name."""
        return self._fetch("unserved_rails", {}, UnservedRail)

    def redrive(self, outbox_id: UUID, *, reason: str) -> Redrive:
        """Re-drive a FAILED item as a new item (redrive_payment_outbox; symphony_operator).

        Returns the earlier re-drive when the item already has one. Raises RedriveRefused
        when the item is not FAILED, UnknownItem when there is no such item.
        """
        params = {"outbox_id": outbox_id, "reason": reason}
        return self._fetch("redrive", params, Redrive)[0]

    def set_rail_ordering(self, rail_type: str, *, ordered: bool, reason: str) -> RailOrdering:
        """Make new items on `rail_type` ordered per participant, or not (symphony_operator).

        Items already enqueued keep what they were promised. Who asked and why are recorded
        in the append-only ordering history, which `rail_orderings` reads.
        """
        params = {"rail_type": rail_type, "ordered": ordered, "reason": reason}
        return self._fetch("set_rail_ordering", params, RailOrdering)[0]

    def rail_orderings(self) -> list[RailOrdering]:
        """The rail ordering history, oldest first (symphony_readonly or symphony_auditor)."""
        return self._fetch("rail_orderings", {}, RailOrdering)

    def history(self, selector: ItemSelector) -> list[ItemHistory]:
        """The items `selector` names, each with its queue row, attempts and re-drive links.

        Read in one REPEATABLE READ snapshot: an item that finishes meanwhile is shown either
        still queued or finished, never both or neither. Needs symphony_readonly's rights.
        """
        try:
            with self._pool.connection() as connection:
                connection.execute(QUERIES["read_snapshot"])
                self._switch_role(connection)
                wanted = attrs.asdict(selector)
                items = _fetch_all(connection, "history_items", wanted, ItemHistory)
                ids = {"outbox_ids": [item.outbox_id for item in items]}
                pending = _fetch_all(connection, "history_pending", ids, PendingState)
                attempts = _fetch_all(connection, "history_attempts", ids, LedgerAttempt)
                links = _fetch_all(connection, "history_links", ids, RedriveLink)
        except psycopg.Error as error:
            raise translate(error) from error
        return assemble(items, pending, attempts, links)

    def _fetch(
        self,
        name: str,
        params: Mapping[str, object],
        row: type[T],
        *,
        pipelined: bool = True,
        trace: str | None = None,
    ) -> list[T]:
        """One statement in its own transaction: BEGIN, role, statement, COMMIT in one round trip.

        The transaction is the store's own, so a serialization failure (40001, under a
        REPEATABLE READ or SERIALIZABLE default) runs it again: nothing of it was written.

        The COMMIT travels with the statement, so the server never waits on this client inside
        the transaction: a paused worker holds no lock. (A pipeline's closing flush request
        disarms the server's idle_in_transaction_session_timeout, so a COMMIT sent after the
        pipeline would leave that wait unguarded.)
        """
        return retry_serialization_failures(
            functools.partial(self._fetch_once, name, params, row, pipelined=pipelined, trace=trace)
        )

    def _fetch_once(
        self,
        name: str,
        params: Mapping[str, object],
        row: type[T],
        *,
        pipelined: bool,
        trace: str | None,
    ) -> list[T]:
        try:
            with self._pool.connection() as connection:
                cursor: psycopg.Cursor[T] = connection.cursor(row_factory=class_row(row))
                with _committed_in_one_round_trip(connection, pipelined=pipelined):
                    self._switch_role(connection)
                    with _trace_context(connection, trace):
                        cursor.execute(QUERIES[name], params)
                return cursor.fetchall()
        # A lone surrogate (invalid UTF-8 from a command line) fails while encoding the value.
        except (psycopg.Error, UnicodeEncodeError) as error:
            raise translate(error) from error

    def _announce_wakeup_probe(self, token: str) -> None:
        self._fetch("announce_wakeup_probe", {"token": token}, _Sent)

    def _switch_role(self, connection: psycopg.Connection[Any]) -> None:
        if self._role is not None:
            name = self._roles.of(self._role)
            role = sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(name))
            connection.execute(role)


@contextlib.contextmanager
def _trace_context(connection: psycopg.Connection[Any], trace: str | None) -> Iterator[None]:
    """The block's inserts take `trace` as their items' trace context (schema 0015).

    Set for the transaction and cleared after the block, so a later enqueue of a service's
    own transaction never inherits it. On an error the transaction is lost anyway.
    """
    if trace is None:
        yield
        return
    connection.execute(QUERIES["set_trace_context"], {"trace_context": trace})
    yield
    connection.execute(QUERIES["set_trace_context"], {"trace_context": ""})


@contextlib.contextmanager
def _savepoint(connection: psycopg.Connection[Any]) -> Iterator[None]:
    """The block's statements, undone alone if one fails (see OutboxTransaction).

    The trace context a failed block set is undone with it: a setting made after a savepoint
    is rolled back to it.
    """
    _execute(connection, "savepoint")
    try:
        yield
    except (OutboxError, psycopg.Error):
        # On a lost connection this fails too; the enqueue's own error is the one to see.
        with contextlib.suppress(OutboxError):
            _execute(connection, "rollback_to_savepoint")
        raise
    _execute(connection, "release_savepoint")


def _execute(connection: psycopg.Connection[Any], name: str) -> None:
    try:
        connection.execute(QUERIES[name])
    except psycopg.Error as error:
        raise translate(error) from error


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


def _read_exact_numbers(connection: psycopg.Connection[Any]) -> None:
    """Payloads read back (ledger, history) keep their numbers exact: no float in between."""
    set_json_loads(payloads.loads, connection)


@contextlib.contextmanager
def _committed_in_one_round_trip(
    connection: psycopg.Connection[Any], *, pipelined: bool
) -> Iterator[None]:
    """The block's statements, then COMMIT, in one pipeline: a single round trip.

    An error of the statements may surface at the COMMIT; it is raised once the pipeline has
    closed, since a pipeline whose block raises logs the error again when closing fails too
    (after a lost connection or an aborted pipeline). Not `pipelined`: each statement is its
    own round trip, COMMIT included.
    """
    if not pipelined:
        yield
        connection.commit()
        return
    deferred: psycopg.Error | None = None
    try:
        with connection.pipeline():
            yield
            try:
                connection.commit()
            except psycopg.Error as error:
                deferred = error
    except psycopg.Error:
        if deferred is None:
            raise
    if deferred is not None:
        raise deferred


class EnqueueWakeups:
    """LISTENs on its own connection for the notification every enqueue sends at commit.

    A notification says only "there is new work": the caller claims to find out what. The
    connection is opened on first use; when it breaks, the call raises DatabaseUnavailable
    and the next call reconnects, so a caller that polls on failure never waits forever.
    `arrive` tests whether notifications reach it at all (behind a pooler in transaction
    mode they do not).
    """

    def __init__(self, conninfo: str, *, announce: Callable[[str], None]) -> None:
        self._conninfo = conninfo
        self._announce = announce
        self._connection: psycopg.Connection[Any] | None = None

    def arrive(self, timeout_seconds: float = WAKEUP_PROBE_SECONDS) -> bool:
        """Whether a notification sent through the store reaches this listener in time.

        Consumes what arrives meanwhile: call it before the first claim, which looks anyway.
        """
        token = f"{_PROBE_PREFIX}{uuid.uuid4()}"
        with self._listener() as connection:
            self._announce(token)
            with contextlib.closing(connection.notifies(timeout=timeout_seconds)) as arrived:
                return any(notify.payload == token for notify in arrived)

    def wait(self, timeout_seconds: float) -> bool:
        """Block until a notification arrives (True) or `timeout_seconds` pass (False)."""
        return self._receive(timeout_seconds, stop_after=1) > 0

    def drain(self) -> int:
        """Consume notifications that already arrived, without blocking; returns how many."""
        return self._receive(0.0, stop_after=None)

    def close(self) -> None:
        """Close the listening connection, if open."""
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _receive(self, timeout_seconds: float, stop_after: int | None) -> int:
        with self._listener() as connection:
            notifies = connection.notifies(timeout=timeout_seconds, stop_after=stop_after)
            return sum(1 for _ in notifies)

    @contextlib.contextmanager
    def _listener(self) -> Iterator[psycopg.Connection[Any]]:
        """The listening connection, opened if need be; a driver error closes it, typed."""
        try:
            if self._connection is None or self._connection.closed:
                connection = psycopg.connect(
                    self._conninfo, autocommit=True, application_name=f"{APPLICATION_NAME}-listen"
                )
                connection.execute(QUERIES["listen_enqueued"])
                self._connection = connection
            yield self._connection
        except psycopg.Error as error:
            self.close()
            raise translate(error) from error


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


def _fetch_all(
    connection: psycopg.Connection[Any], name: str, params: Mapping[str, object], row: type[T]
) -> list[T]:
    try:
        with connection.cursor(row_factory=class_row(row)) as cursor:
            return cursor.execute(QUERIES[name], params).fetchall()
    except (psycopg.Error, UnicodeEncodeError) as error:
        raise translate(error) from error
