"""Raw SQL as the owner or as a named role, each call one transaction, errors typed."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, LiteralString

import psycopg
from psycopg import sql

from outbox_db.errors import translate

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from outbox_db.records import Role


def query_no_role(
    url: str,
    statement: LiteralString,
    params: Sequence[object] | Mapping[str, object] | None = None,
) -> list[tuple[Any, ...]]:
    """Run `statement` as the login user (the owner in tests); rows if it returns any."""
    return _run(url, None, statement, params)


def query_as(
    url: str,
    role: Role | str,
    statement: LiteralString,
    params: Sequence[object] | Mapping[str, object] | None = None,
) -> list[tuple[Any, ...]]:
    """Run `statement` after SET LOCAL ROLE `role`; refusals raise the typed error."""
    return _run(url, str(role), statement, params)


def _run(
    url: str,
    role: str | None,
    statement: LiteralString,
    params: Sequence[object] | Mapping[str, object] | None,
) -> list[tuple[Any, ...]]:
    try:
        with psycopg.connect(url, autocommit=True) as connection, connection.transaction():
            if role is not None:
                connection.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(role)))
            cursor = connection.execute(statement, params)
            return cursor.fetchall() if cursor.description else []
    except psycopg.Error as error:
        raise translate(error) from error
