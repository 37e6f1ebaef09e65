"""Databases as a managed PostgreSQL gives them: owned by a CREATEROLE login, no superuser.

RDS, Cloud SQL, Azure and Supabase give each database an owner with CREATEROLE, and roles are
cluster-wide. A proof that needs such a database (its own role prefix, its own logins) makes
one here under a unique prefix; every role and database is dropped after it (databases
first: the roles own their objects).
"""

from __future__ import annotations

import contextlib
import secrets
from typing import TYPE_CHECKING

import attrs
import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from outbox_db.records import Role, RoleNames

if TYPE_CHECKING:
    from collections.abc import Iterator

    from outbox_db.testonly.pytest_plugin import Server

__all__ = [
    "ManagedDatabase",
    "admin",
    "as_login",
    "grant_login",
    "managed_database",
    "unique_prefix",
]


@attrs.frozen
class ManagedDatabase:
    """A database owned by a CREATEROLE login that is not a superuser, as a cloud gives it."""

    name: str
    owner: str
    owner_url: str  # as its owner, the password in the URL
    roles: RoleNames


def admin(server: Server, *statements: sql.Composed) -> None:
    """The cluster's superuser (the provider's, out of the tenant's reach) sets the scene."""
    with psycopg.connect(server.url, autocommit=True) as connection:
        for statement in statements:
            connection.execute(statement)


@contextlib.contextmanager
def managed_database(server: Server, prefix: str) -> Iterator[ManagedDatabase]:
    """A database and its owning login (LOGIN CREATEROLE NOSUPERUSER); both dropped after."""
    name, owner, password = f"managed_{prefix}db", f"{prefix}owner", secrets.token_hex(16)
    admin(
        server,
        sql.SQL("CREATE ROLE {} LOGIN CREATEROLE NOSUPERUSER PASSWORD {}").format(
            sql.Identifier(owner), sql.Literal(password)
        ),
        sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(name), sql.Identifier(owner)),
    )
    url = make_conninfo(server.database_url(name), user=owner, password=password)
    try:
        yield ManagedDatabase(name=name, owner=owner, owner_url=url, roles=RoleNames(prefix))
    finally:
        admin(server, sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
        _drop_roles(server, prefix)


def _drop_roles(server: Server, prefix: str) -> None:
    """Every role the test made under `prefix` (its logins and outbox roles)."""
    pattern = prefix.replace("_", r"\_") + "%"
    with psycopg.connect(server.url, autocommit=True) as connection:
        names = connection.execute(
            "SELECT rolname FROM pg_catalog.pg_roles WHERE rolname LIKE %s", [pattern]
        ).fetchall()
        # One statement: since PostgreSQL 16 a grantor cannot be dropped before its grants.
        roles = sql.SQL(", ").join(sql.Identifier(name) for (name,) in names)
        connection.execute(sql.SQL("DROP ROLE {}").format(roles))


def grant_login(database: ManagedDatabase, role: Role) -> str:
    """A login its owner makes and grants one of the database's roles; its URL there."""
    login, password = f"{database.roles.prefix}{role.name.lower()}", secrets.token_hex(16)
    with psycopg.connect(database.owner_url, autocommit=True) as connection:
        connection.execute(
            sql.SQL("CREATE ROLE {} LOGIN PASSWORD {} IN ROLE {}").format(
                sql.Identifier(login),
                sql.Literal(password),
                sql.Identifier(database.roles.of(role)),
            )
        )
    return make_conninfo(database.owner_url, user=login, password=password)


def as_login(url: str, database: ManagedDatabase) -> str:
    """The same login's URL on another database of the cluster."""
    return make_conninfo(url, dbname=database.name)


def unique_prefix() -> str:
    """Roles are cluster-wide: every test's are its own."""
    return f"m{secrets.token_hex(3)}_"
