"""How a store runs an operation, once for the sync and async stores.

An operation is a `Call`: its named statements, their parameters and row types, and how their
rows become the result (the builders are in _calls.py). `operation` turns a builder into a
method of a gateway: `OutboxStore` runs the call and returns its result, `AsyncOutboxStore`
returns a coroutine of it; each gateway says only how it runs a call (`_run`). Also what
every pooled connection is opened with, the role switch, and which connections a service's
transaction may join.
"""

from __future__ import annotations

import abc
import functools
from typing import TYPE_CHECKING, Any, Final, Generic, ParamSpec, Self, TypeVar, overload

import attrs
import psycopg
from psycopg import sql

from outbox_db.errors import OutboxError

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine, Mapping, Sequence

    from outbox_db.pooling import Route
    from outbox_db.records import Role, RoleNames

P = ParamSpec("P")
R = TypeVar("R")
S = TypeVar("S")
T = TypeVar("T")
APPLICATION_NAME: Final = "outbox-db"
LISTENER_NAME: Final = f"{APPLICATION_NAME}-listen"


@attrs.frozen
class Statement(Generic[T]):
    """One named statement of sql/queries.sql, its parameters and the type of its rows."""

    name: str
    params: Mapping[str, object]
    row: type[T]
    trace: str | None = None  # the trace context the items it inserts take (schema 0015)


@attrs.frozen
class Call(Generic[R]):
    """An operation: its statements, in order, and how their rows become its result."""

    statements: tuple[Statement[Any], ...]
    result: Callable[[Sequence[Sequence[Any]]], R]
    # One round trip (BEGIN, role, statement, COMMIT in a pipeline) when the store runs it.
    pipelined: bool = True

    def then(self, shape: Callable[[R], S]) -> Call[S]:
        """The same statements, the result passed through `shape`."""
        result = self.result
        return Call(self.statements, lambda rows: shape(result(rows)), pipelined=self.pipelined)


def rows_of(statement: Statement[T]) -> Call[list[T]]:
    """The statement's rows."""
    return Call((statement,), lambda rows: list(rows[0]))


def one_of(statement: Statement[T]) -> Call[T]:
    """The statement's one row (its functions return exactly one)."""
    return Call((statement,), lambda rows: rows[0][0])


class SyncGateway(abc.ABC):
    """Runs calls and returns their results (OutboxStore, OutboxTransaction)."""

    @abc.abstractmethod
    def _run(self, call: Call[R]) -> R: ...


class AsyncGateway(abc.ABC):
    """Runs calls in a coroutine (AsyncOutboxStore, AsyncOutboxTransaction)."""

    @abc.abstractmethod
    async def _run(self, call: Call[R]) -> R: ...


class operation(Generic[P, R]):  # noqa: N801 -- used like a decorator, as property is
    """A gateway method made of a call builder: sync on a SyncGateway, async on an AsyncGateway.

    The method has the builder's parameters and docstring; the builder runs when the method
    is called (an async one: when its coroutine runs).
    """

    def __init__(self, build: Callable[P, Call[R]]) -> None:
        self._build = build
        self.__doc__ = build.__doc__  # help(OutboxStore.claim) reads the builder's
        self.__wrapped__ = build  # inspect.signature too

    @overload
    def __get__(self, gateway: None, owner: type[Any]) -> Self: ...
    @overload
    def __get__(self, gateway: SyncGateway, owner: type[Any]) -> Callable[P, R]: ...
    @overload
    def __get__(
        self, gateway: AsyncGateway, owner: type[Any]
    ) -> Callable[P, Coroutine[Any, Any, R]]: ...
    def __get__(self, gateway: object, owner: type[Any]) -> object:
        build = self._build
        if isinstance(gateway, AsyncGateway):

            @functools.wraps(build)
            async def run_async(*args: P.args, **kwargs: P.kwargs) -> R:
                return await gateway._run(build(*args, **kwargs))  # noqa: SLF001

            return run_async
        if isinstance(gateway, SyncGateway):

            @functools.wraps(build)
            def run(*args: P.args, **kwargs: P.kwargs) -> R:
                return gateway._run(build(*args, **kwargs))  # noqa: SLF001

            return run
        return self


# --- connections ----------------------------------------------------------------------------


def pool_options(route: Route) -> dict[str, Any]:
    """What every pooled connection of a store is opened with, on `route`."""
    # Not autocommit: the first statement opens the transaction, so BEGIN can travel in the
    # same pipeline as the role switch; the pool commits when a block ends.
    return {"autocommit": False, "application_name": APPLICATION_NAME} | route.connection_options


def role_switch(roles: RoleNames, role: Role | None) -> sql.Composed | None:
    """SET LOCAL ROLE to `role`'s name in this database; None: act as the login role."""
    if role is None:
        return None
    return sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(roles.of(role)))


def check_joinable(
    connection: psycopg.Connection[Any] | psycopg.AsyncConnection[Any], *, asynchronous: bool
) -> None:
    """Refuse, naming the fix, a connection an outbox transaction cannot share.

    The item must commit or roll back with the service's own writes: a connection of the
    other kind, a closed one, an aborted transaction or autocommit outside a transaction
    (which would commit the item alone) cannot give that.
    """
    given_async = isinstance(connection, psycopg.AsyncConnection)
    status = connection.info.transaction_status
    if given_async and not asynchronous:
        msg = (
            "OutboxTransaction.join got a psycopg AsyncConnection: use "
            "AsyncOutboxTransaction.join, and await its enqueue"
        )
    elif asynchronous and not given_async:
        msg = "AsyncOutboxTransaction.join got a psycopg Connection: use OutboxTransaction.join"
    elif connection.closed:
        msg = "join got a closed connection: join the one the service's transaction is on"
    elif status == psycopg.pq.TransactionStatus.INERROR:
        msg = "join got an aborted transaction (a statement of it failed): roll it back first"
    elif connection.autocommit and status != psycopg.pq.TransactionStatus.INTRANS:
        msg = "join needs a connection inside a transaction (autocommit commits the item alone)"
    else:
        return
    raise OutboxError(msg)
