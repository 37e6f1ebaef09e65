"""An OutboxTransaction inside Django's `transaction.atomic()` (its psycopg 3 backend)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import psycopg

from outbox_db.errors import OutboxError
from outbox_db.store import OutboxTransaction

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper

__all__ = ["join_atomic"]


def join_atomic(using: str | None = None) -> OutboxTransaction:
    """Enqueue in the atomic block open on the `using` database (default: "default").

    The items commit with the outermost block and are gone if it rolls back. Refuses, with the
    fix, a database on another backend than PostgreSQL over psycopg 3, and a call outside
    ``transaction.atomic()`` (Django's autocommit would commit each item alone, at once).
    """
    from django.db import DEFAULT_DB_ALIAS, connections  # noqa: PLC0415 - only Django's users have it

    connection = connections[using or DEFAULT_DB_ALIAS]
    if getattr(connection, "Database", None) is not psycopg:
        msg = (
            "join_atomic needs ENGINE django.db.backends.postgresql on psycopg 3"
            " (pip install 'psycopg[binary]'; without it Django uses psycopg2)"
        )
        raise OutboxError(msg)
    if not connection.in_atomic_block:
        msg = "join_atomic needs a transaction: call it inside `with transaction.atomic(using=...)`"
        raise OutboxError(msg)
    return OutboxTransaction.join(_psycopg(connection))


def _psycopg(connection: BaseDatabaseWrapper) -> psycopg.Connection[Any]:
    """The driver's connection under Django's; open, since the atomic block opened it."""
    raw = connection.connection
    if not isinstance(raw, psycopg.Connection):  # an atomic block always connects first
        msg = "join_atomic found no open psycopg connection in the atomic block"
        raise OutboxError(msg)
    return raw
