"""An OutboxTransaction inside a SQLAlchemy 2 Session's transaction (the psycopg 3 dialect)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import psycopg

from outbox_db.errors import OutboxError
from outbox_db.store import OutboxTransaction

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

__all__ = ["join_session"]


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
        msg = (
            "join_session needs the session's transaction: begin one (session.begin()) or roll"
            " back the one a failed flush left (session.rollback())"
        )
        raise OutboxError(msg) from error
    return OutboxTransaction.join(_transactional(raw))


def _transactional(raw: Any) -> psycopg.Connection[Any]:  # noqa: ANN401 - whatever the dialect's driver gives
    """`raw` if it is a psycopg 3 connection that holds its statements for the session's commit."""
    if not isinstance(raw, psycopg.Connection):
        msg = "join_session needs the psycopg 3 dialect: an engine URL of postgresql+psycopg://"
        raise OutboxError(msg)
    if raw.autocommit:
        # SQLAlchemy's COMMIT would then have nothing to commit: the item would be sent even if
        # the service's work failed after it.
        msg = "join_session needs a transaction, and this session's connection is in AUTOCOMMIT"
        raise OutboxError(msg)
    return raw
