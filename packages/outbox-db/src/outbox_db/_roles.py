"""The outbox role names of a connected database, which every command needs before SET ROLE."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from outbox_db import pooling
from outbox_db._catalogue import QUERIES
from outbox_db.records import RoleNames

if TYPE_CHECKING:
    import psycopg


def database_roles(connection: psycopg.Connection[Any]) -> RoleNames | None:
    """The names its tables' owner gives; None before the first migration.

    None too for tables older than the outbox roles (made by hand). Any login may ask: it
    reads the catalog only.
    """
    row = connection.execute(QUERIES["outbox_owner"]).fetchone()
    return RoleNames.of_owner(row[0] if row else None)


def probe_database(url: str, *, timeout: float) -> tuple[pooling.Route, RoleNames]:
    """What answers `url` (a pooler or the server) and the database's role names.

    One connection, made before a store opens its pool, so that a wrong URL, a refused
    connection or a failed login is reported at once with its reason. Before the first
    migration the role names are the seed names.
    """
    with pooling.probed(url, timeout=timeout) as (route, connection):
        return route, database_roles(connection) or RoleNames()
