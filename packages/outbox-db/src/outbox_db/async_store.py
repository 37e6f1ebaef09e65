"""The gateway for asyncio services and workers: OutboxStore's operations, awaited.

Every operation is the one `_calls` defines for the sync store too (same statements,
records, typed errors and SQLSTATEs); this module says only how a call runs on psycopg's async
connections: a pool whose calls are one round trip each, or a savepoint of a service's own
transaction; and a LISTEN connection of its own for wake-ups.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from typing import TYPE_CHECKING, Any, Self, TypeVar, cast

import psycopg
from psycopg.rows import class_row
from psycopg.types.json import set_json_loads
from psycopg_pool import AsyncConnectionPool

from outbox_db import _calls as calls
from outbox_db import _gateway as gateway
from outbox_db import payloads, pooling
from outbox_db._catalogue import QUERIES
from outbox_db._gateway import APPLICATION_NAME, AsyncGateway, Call, Statement
from outbox_db._roles import probe_database
from outbox_db.errors import OutboxError, retry_serialization_failures_async, translate
from outbox_db.records import ItemHistory, ItemSelector, Role, RoleNames

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable
    from types import TracebackType

__all__ = ["AsyncEnqueueWakeups", "AsyncOutboxStore", "AsyncOutboxTransaction"]

R = TypeVar("R")
T = TypeVar("T")


class AsyncOutboxTransaction(AsyncGateway, calls.TransactionOperations):
    """OutboxTransaction for a psycopg AsyncConnection: items commit with the service's writes.

    From ``AsyncOutboxStore.transaction()``, or ``AsyncOutboxTransaction.join(connection)``
    on a service's own AsyncConnection inside a transaction. Each enqueue runs in a savepoint
    of its own, so a refused one (IdempotencyConflict) leaves the transaction usable.
    """

    def __init__(self, connection: psycopg.AsyncConnection[Any]) -> None:
        self.connection = connection

    @classmethod
    def join(cls, connection: psycopg.AsyncConnection[Any]) -> Self:
        """Use a service's AsyncConnection; refuses (OutboxError) one it cannot share.

        Refused: a sync Connection (use OutboxTransaction), a closed connection, an aborted
        transaction, and autocommit outside a transaction (the item would commit alone).
        """
        gateway.check_joinable(connection, asynchronous=True)
        return cls(connection)

    async def _run(self, call: Call[R]) -> R:
        async with _savepoint(self.connection):
            try:
                return await _results(self.connection, call)
            except (psycopg.Error, UnicodeEncodeError) as error:
                raise translate(error) from error


class AsyncOutboxStore(AsyncGateway, calls.StoreOperations):
    """An async connection pool that acts as one role; each call is one short transaction.

    ``store = await AsyncOutboxStore.connect(url, role=Role.PRODUCER)``, then
    ``await store.enqueue(request)``; ``async with store:`` closes it.
    """

    def __init__(
        self,
        pool: AsyncConnectionPool[Any],
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
    async def connect(
        cls,
        url: str,
        *,
        role: Role | None = Role.PRODUCER,
        min_size: int = 1,
        max_size: int = 4,
        timeout: float = 10.0,  # noqa: ASYNC109 -- libpq's connect timeout, as the sync store's
    ) -> Self:
        """Open a pool on `url`; every transaction runs as `role` (None: the login role).

        As `OutboxStore.connect`, but the default role is the producer's: no service of an
        earlier release calls this. The first connection (what answers the URL, the role
        names) is made in a worker thread, so the event loop never blocks on it.
        """
        route, roles = await asyncio.to_thread(probe_database, url, timeout=timeout)
        pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
            url,
            min_size=min_size,
            max_size=max_size,
            kwargs=gateway.pool_options(route),
            configure=_read_exact_numbers,
            open=False,
            name=APPLICATION_NAME,
        )
        try:
            await pool.open(wait=True, timeout=timeout)
        except psycopg.Error as error:
            await pool.close()
            raise translate(error) from error
        except BaseException:
            await pool.close()
            raise
        return cls(pool, role=role, roles=roles, route=route)

    async def close(self) -> None:
        """Close every connection of the pool."""
        await self._pool.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncOutboxTransaction]:
        """A transaction as the store's role; committed when the block ends, else rolled back."""
        try:
            async with self._pool.connection() as connection:
                async with connection.pipeline():
                    await self._switch_role(connection)
                yield AsyncOutboxTransaction(connection)
        except (psycopg.Error, UnicodeEncodeError) as error:
            raise translate(error) from error

    def wakeups(self, listen_url: str | None = None) -> AsyncEnqueueWakeups:
        """A listener for enqueue notifications, on a connection of its own (as the sync's)."""
        url = listen_url or cast("str", self._pool.conninfo)  # connect() gave it a URL
        return AsyncEnqueueWakeups(url, announce=self._announce_wakeup_probe)

    async def history(self, selector: ItemSelector) -> list[ItemHistory]:
        """The items `selector` names, each with its queue row, attempts and re-drive links.

        Read in one REPEATABLE READ snapshot, as OutboxStore.history.
        """
        try:
            async with self._pool.connection() as connection:
                await connection.execute(QUERIES["read_snapshot"])
                await self._switch_role(connection)
                items = await _results(connection, calls.history_items(selector))
                return await _results(connection, calls.history_of(items))
        except psycopg.Error as error:
            raise translate(error) from error

    async def _run(self, call: Call[R]) -> R:
        """The call in a transaction of its own, run again on 40001 (as OutboxStore._run)."""
        return await retry_serialization_failures_async(functools.partial(self._run_once, call))

    async def _run_once(self, call: Call[R]) -> R:
        try:
            async with self._pool.connection() as connection:
                async with _committed_in_one_round_trip(connection, pipelined=call.pipelined):
                    await self._switch_role(connection)
                    cursors = [await _execute(connection, s) for s in call.statements]
                return call.result([await cursor.fetchall() for cursor in cursors])
        except (psycopg.Error, UnicodeEncodeError) as error:
            raise translate(error) from error

    async def _announce_wakeup_probe(self, token: str) -> None:
        await self._run(calls.announce_wakeup_probe(token))

    async def _switch_role(self, connection: psycopg.AsyncConnection[Any]) -> None:
        if switch := gateway.role_switch(self._roles, self._role):
            await connection.execute(switch)


class AsyncEnqueueWakeups:
    """EnqueueWakeups for asyncio: LISTENs on its own AsyncConnection, awaited.

    The same contract: opened on first use; a broken connection raises DatabaseUnavailable
    and the next call reconnects; `arrive` tests whether notifications reach it at all.
    """

    def __init__(self, conninfo: str, *, announce: Callable[[str], Awaitable[None]]) -> None:
        self._conninfo = conninfo
        self._announce = announce
        self._connection: psycopg.AsyncConnection[Any] | None = None

    async def arrive(self, timeout_seconds: float = calls.WAKEUP_PROBE_SECONDS) -> bool:
        """Whether a notification sent through the store reaches this listener in time."""
        token = calls.wakeup_probe_token()
        async with self._listener() as connection:
            await self._announce(token)
            async for notify in connection.notifies(timeout=timeout_seconds):
                if notify.payload == token:
                    return True
            return False

    async def wait(self, timeout_seconds: float) -> bool:
        """Until a notification arrives (True) or `timeout_seconds` pass (False)."""
        return await self._receive(timeout_seconds, stop_after=1) > 0

    async def drain(self) -> int:
        """Consume notifications that already arrived, without waiting; returns how many."""
        return await self._receive(0.0, stop_after=None)

    async def close(self) -> None:
        """Close the listening connection, if open."""
        if self._connection is not None:
            await self._connection.close()
            self._connection = None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def _receive(self, timeout_seconds: float, stop_after: int | None) -> int:
        async with self._listener() as connection:
            notifies = connection.notifies(timeout=timeout_seconds, stop_after=stop_after)
            return len([notify async for notify in notifies])

    @contextlib.asynccontextmanager
    async def _listener(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """The listening connection, opened if need be; a driver error closes it, typed."""
        try:
            if self._connection is None or self._connection.closed:
                connection = await psycopg.AsyncConnection.connect(
                    self._conninfo, autocommit=True, application_name=gateway.LISTENER_NAME
                )
                await connection.execute(QUERIES["listen_enqueued"])
                self._connection = connection
            yield self._connection
        except psycopg.Error as error:
            await self.close()
            raise translate(error) from error


async def _execute(
    connection: psycopg.AsyncConnection[Any], statement: Statement[T]
) -> psycopg.AsyncCursor[T]:
    """Send `statement` (with its trace context) on a cursor its rows are fetched from."""
    cursor = connection.cursor(row_factory=class_row(statement.row))
    async with _trace_context(connection, statement.trace):
        await cursor.execute(QUERIES[statement.name], statement.params)
    return cursor


async def _results(connection: psycopg.AsyncConnection[Any], call: Call[R]) -> R:
    """The call's result, its statements sent one after the other in the open transaction."""
    rows = []
    for statement in call.statements:
        async with await _execute(connection, statement) as cursor:
            rows.append(await cursor.fetchall())
    return call.result(rows)


@contextlib.asynccontextmanager
async def _trace_context(
    connection: psycopg.AsyncConnection[Any], trace: str | None
) -> AsyncIterator[None]:
    """The block's inserts take `trace` as their items' trace context (as the sync store)."""
    if trace is None:
        yield
        return
    await connection.execute(QUERIES["set_trace_context"], {"trace_context": trace})
    yield
    await connection.execute(QUERIES["set_trace_context"], {"trace_context": ""})


@contextlib.asynccontextmanager
async def _savepoint(connection: psycopg.AsyncConnection[Any]) -> AsyncIterator[None]:
    """The block's statements, undone alone if one fails (as the sync store's)."""
    await _send(connection, "savepoint")
    try:
        yield
    except (OutboxError, psycopg.Error):
        with contextlib.suppress(OutboxError):
            await _send(connection, "rollback_to_savepoint")
        raise
    await _send(connection, "release_savepoint")


async def _send(connection: psycopg.AsyncConnection[Any], name: str) -> None:
    try:
        await connection.execute(QUERIES[name])
    except psycopg.Error as error:
        raise translate(error) from error


async def _read_exact_numbers(connection: psycopg.AsyncConnection[Any]) -> None:
    """Payloads read back keep their numbers exact: no float in between."""
    set_json_loads(payloads.loads, connection)


@contextlib.asynccontextmanager
async def _committed_in_one_round_trip(
    connection: psycopg.AsyncConnection[Any], *, pipelined: bool
) -> AsyncIterator[None]:
    """The block's statements, then COMMIT, in one pipeline (as the sync store's)."""
    if not pipelined:
        yield
        await connection.commit()
        return
    deferred: psycopg.Error | None = None
    try:
        async with connection.pipeline():
            yield
            try:
                await connection.commit()
            except psycopg.Error as error:
                deferred = error
    except psycopg.Error:
        if deferred is None:
            raise
    if deferred is not None:
        raise deferred
