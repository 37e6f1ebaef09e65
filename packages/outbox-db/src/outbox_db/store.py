"""The one narrow gateway to the outbox: typed methods that each name a database function.

Synchronous; `outbox_db.async_store` is the same gateway for asyncio. What each method sends
and returns is defined once, for both, in `_calls` (and how a gateway runs a call in
`_gateway`); this module says how it runs (a pool, one round trip per call, savepoints in a
shared transaction).
"""

from __future__ import annotations

import contextlib
import functools
from typing import TYPE_CHECKING, Any, Self, TypeVar

import psycopg
from psycopg.rows import class_row
from psycopg.types.json import set_json_loads
from psycopg_pool import ConnectionPool

from outbox_db import _calls as calls
from outbox_db import _gateway as gateway
from outbox_db import payloads, pooling
from outbox_db._calls import MAX_ENQUEUE_BATCH, WAKEUP_PROBE_SECONDS
from outbox_db._catalogue import QUERIES
from outbox_db._gateway import APPLICATION_NAME, Call, Statement, SyncGateway
from outbox_db._roles import probe_database
from outbox_db.errors import OutboxError, retry_serialization_failures, translate
from outbox_db.records import (
    ItemHistory,
    ItemSelector,
    Role,
    RoleNames,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from types import TracebackType

__all__ = ["MAX_ENQUEUE_BATCH", "EnqueueWakeups", "OutboxStore", "OutboxTransaction"]

R = TypeVar("R")
T = TypeVar("T")


class OutboxTransaction(SyncGateway, calls.TransactionOperations):
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
        """Use a service's connection; refuses (OutboxError) one it cannot share.

        Refused: an AsyncConnection (use AsyncOutboxTransaction), a closed connection, an
        aborted transaction, and autocommit outside a transaction (the item would commit
        alone).
        """
        gateway.check_joinable(connection, asynchronous=False)
        return cls(connection)

    def _run(self, call: Call[R]) -> R:
        """The call's statements in a savepoint of this transaction (see the class)."""
        with _savepoint(self.connection):
            try:
                return _results(self.connection, call)
            except (psycopg.Error, UnicodeEncodeError) as error:
                raise translate(error) from error


class OutboxStore(SyncGateway, calls.StoreOperations):
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
        route, roles = probe_database(url, timeout=timeout)
        pool: ConnectionPool[Any] = ConnectionPool(
            url,
            min_size=min_size,
            max_size=max_size,
            kwargs=gateway.pool_options(route),
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

    def wakeups(self, listen_url: str | None = None) -> EnqueueWakeups:
        """A listener for enqueue notifications, on a connection of its own (not the pool's).

        It connects to `listen_url` when given: behind a pooler in transaction mode LISTEN
        hears nothing, so a direct URL to the server is how a relayer keeps its wake-ups.
        """
        conninfo = self._pool.conninfo
        url = listen_url or (conninfo() if callable(conninfo) else conninfo)
        return EnqueueWakeups(url, announce=self._announce_wakeup_probe)

    def history(self, selector: ItemSelector) -> list[ItemHistory]:
        """The items `selector` names, each with its queue row, attempts and re-drive links.

        Read in one REPEATABLE READ snapshot: an item that finishes meanwhile is shown either
        still queued or finished, never both or neither. Needs symphony_readonly's rights.
        """
        try:
            with self._pool.connection() as connection:
                connection.execute(QUERIES["read_snapshot"])
                self._switch_role(connection)
                items = _results(connection, calls.history_items(selector))
                return _results(connection, calls.history_of(items))
        except psycopg.Error as error:
            raise translate(error) from error

    def _run(self, call: Call[R]) -> R:
        """The call in a transaction of its own: BEGIN, role, statements, COMMIT.

        The transaction is the store's own, so a serialization failure (40001, under a
        REPEATABLE READ or SERIALIZABLE default) runs it again: nothing of it was written.

        A pipelined call is one round trip, its COMMIT travelling with the statement, so the
        server never waits on this client inside the transaction: a paused worker holds no
        lock. (A pipeline's closing flush request disarms the server's
        idle_in_transaction_session_timeout, so a COMMIT sent after the pipeline would leave
        that wait unguarded.)
        """
        return retry_serialization_failures(functools.partial(self._run_once, call))

    def _run_once(self, call: Call[R]) -> R:
        try:
            with self._pool.connection() as connection:
                with _committed_in_one_round_trip(connection, pipelined=call.pipelined):
                    self._switch_role(connection)
                    cursors = [_execute(connection, s) for s in call.statements]
                return call.result([cursor.fetchall() for cursor in cursors])
        # A lone surrogate (invalid UTF-8 from a command line) fails while encoding the value.
        except (psycopg.Error, UnicodeEncodeError) as error:
            raise translate(error) from error

    def _announce_wakeup_probe(self, token: str) -> None:
        self._run(calls.announce_wakeup_probe(token))

    def _switch_role(self, connection: psycopg.Connection[Any]) -> None:
        if switch := gateway.role_switch(self._roles, self._role):
            connection.execute(switch)


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
    _send(connection, "savepoint")
    try:
        yield
    except (OutboxError, psycopg.Error):
        # On a lost connection this fails too; the enqueue's own error is the one to see.
        with contextlib.suppress(OutboxError):
            _send(connection, "rollback_to_savepoint")
        raise
    _send(connection, "release_savepoint")


def _send(connection: psycopg.Connection[Any], name: str) -> None:
    try:
        connection.execute(QUERIES[name])
    except psycopg.Error as error:
        raise translate(error) from error


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
        token = calls.wakeup_probe_token()
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
                    self._conninfo, autocommit=True, application_name=gateway.LISTENER_NAME
                )
                connection.execute(QUERIES["listen_enqueued"])
                self._connection = connection
            yield self._connection
        except psycopg.Error as error:
            self.close()
            raise translate(error) from error


def _execute(connection: psycopg.Connection[Any], statement: Statement[T]) -> psycopg.Cursor[T]:
    """Send `statement` (with its trace context) on a cursor its rows are fetched from."""
    cursor = connection.cursor(row_factory=class_row(statement.row))
    with _trace_context(connection, statement.trace):
        cursor.execute(QUERIES[statement.name], statement.params)
    return cursor


def _results(connection: psycopg.Connection[Any], call: Call[R]) -> R:
    """The call's result, its statements sent one after the other in the open transaction."""
    rows = []
    for statement in call.statements:
        with _execute(connection, statement) as cursor:
            rows.append(cursor.fetchall())
    return call.result(rows)
