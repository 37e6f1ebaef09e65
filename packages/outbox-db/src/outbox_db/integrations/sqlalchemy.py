"""Outbox transactions inside a SQLAlchemy 2 session's transaction (the psycopg 3 dialect)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final, TypeVar

import psycopg

from outbox_db.async_store import AsyncOutboxTransaction
from outbox_db.errors import OutboxError
from outbox_db.store import OutboxTransaction

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession
    from sqlalchemy.orm import Session

__all__ = ["join_async_session", "join_session"]

C = TypeVar("C", psycopg.Connection[Any], psycopg.AsyncConnection[Any])
_NO_TRANSACTION: Final = (
    "{function} needs the session's transaction: begin one (session.begin()) or roll back the"
    " one a failed flush left (session.rollback())"
)


def join_session(session: Session) -> OutboxTransaction:
    """Enqueue in `session`'s transaction: the items commit and roll back with the session.

    Begins the session's transaction if it has none yet, as its next statement would
    (autobegin). Refuses, with the fix, a session on another driver than psycopg 3 and one
    whose connection commits each statement alone (AUTOCOMMIT).
    """
    from sqlalchemy.exc import InvalidRequestError  # noqa: PLC0415 - only SQLAlchemy's users have it

    try:
        raw = session.connection().connection.driver_connection
    except InvalidRequestError as error:
        raise OutboxError(_NO_TRANSACTION.format(function="join_session")) from error
    return OutboxTransaction.join(_transactional(raw, psycopg.Connection, "postgresql+psycopg"))


async def join_async_session(session: AsyncSession) -> AsyncOutboxTransaction:
    """`join_session` for an AsyncSession (an engine URL of postgresql+psycopg_async://)."""
    from sqlalchemy.exc import InvalidRequestError  # noqa: PLC0415 - only SQLAlchemy's users have it

    try:
        connection = await session.connection()
        raw = (await connection.get_raw_connection()).driver_connection
    except InvalidRequestError as error:
        raise OutboxError(_NO_TRANSACTION.format(function="join_async_session")) from error
    driver = _transactional(raw, psycopg.AsyncConnection, "postgresql+psycopg_async")
    return AsyncOutboxTransaction.join(driver)


def _transactional(raw: object, kind: type[C], scheme: str) -> C:
    """`raw` if it is a psycopg 3 connection that holds its statements for the session's commit."""
    if not isinstance(raw, kind):
        msg = f"the session needs the psycopg 3 dialect: an engine URL of {scheme}://"
        raise OutboxError(msg)
    if raw.autocommit:
        # SQLAlchemy's COMMIT would then have nothing to commit: the item would be sent even if
        # the service's work failed after it.
        msg = "the session's connection is in AUTOCOMMIT: the item would commit alone, at once"
        raise OutboxError(msg)
    return raw
