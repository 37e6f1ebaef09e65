"""What answers a database URL: PostgreSQL itself, or a connection pooler such as PgBouncer.

A pooler in transaction mode hands each transaction to whichever server connection is free,
so what outlives a transaction breaks behind it: a prepared statement (psycopg prepares a
statement after five uses; the next transaction may run on a server that never saw it:
26000, 42P05), a session advisory lock (migrate's), LISTEN (the notifications go to a server
connection no client holds). Statement mode cannot carry a transaction at all.

A pooler is recognised by the backend key it hands its clients: PgBouncer answers cancel
requests itself, so the process id it announces is not the server's pg_backend_pid().
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any, Final

import attrs
import psycopg

from outbox_db._catalogue import QUERIES
from outbox_db.errors import ConnectionRejected, sendable_url, translate

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["Route", "probe", "probed"]

# PgBouncer refuses BEGIN in statement mode with this SQLSTATE and message.
_PROTOCOL_VIOLATION: Final = "08P01"
_STATEMENT_MODE: Final = "statement pooling mode"


@attrs.frozen
class Route:
    """How a URL reaches PostgreSQL; `pooled` when a pooler sits between."""

    pooled: bool

    @property
    def connection_options(self) -> dict[str, Any]:
        """Options for psycopg that work on this route: behind a pooler, nothing is prepared."""
        return {"prepare_threshold": None} if self.pooled else {}


def probe(url: str, *, timeout: float = 10.0) -> Route:
    """What answers `url` (see `probed`)."""
    with probed(url, timeout=timeout) as (route, _):
        return route


@contextlib.contextmanager
def probed(url: str, *, timeout: float = 10.0) -> Iterator[tuple[Route, psycopg.Connection[Any]]]:
    """Connect once, open a transaction, say what answered, and lend the connection.

    Reports a wrong URL, a refused connection or a failed login at once with its reason
    (ConnectionRejected, DatabaseUnavailable), and a pooler in statement mode as the
    configuration error it is. The transaction is rolled back when the block ends.
    """
    try:
        with psycopg.connect(
            sendable_url(url), connect_timeout=max(1, int(timeout)), prepare_threshold=None
        ) as connection:
            announced = connection.info.backend_pid
            row = connection.execute(QUERIES["backend_pid"]).fetchone()
            yield Route(pooled=row is None or row[0] != announced), connection
            connection.rollback()
    except psycopg.Error as error:
        if error.sqlstate == _PROTOCOL_VIOLATION and _STATEMENT_MODE in str(error):
            raise _statement_mode_refused() from error
        raise translate(error) from error


def _statement_mode_refused() -> ConnectionRejected:
    message = (
        f"{ConnectionRejected.summary}: the database URL reaches a pooler in statement mode, "
        "which cannot carry a transaction; every outbox call is one transaction: use "
        f"pool_mode = transaction (or session) [SQLSTATE {_PROTOCOL_VIOLATION}]"
    )
    return ConnectionRejected(message, sqlstate=_PROTOCOL_VIOLATION, constraint=None)
