"""Applies the shipped schema in order, each file once, and refuses to run over edited history.

Versioned files (``schema/v1/NNNN_*.sql``) run once each, in their own transaction, and are
recorded with a SHA-256 checksum in ``outbox_schema_migrations``. Repeatable files
(``schema/views/*.sql``: CREATE OR REPLACE definitions) run after them whenever their
checksum changed. An advisory lock keeps two migrators of one database apart, and each file
runs with search_path pinned to pg_catalog, so every outbox object is named with its schema.

Role names: a database migrated with a role prefix (`RoleNames`) gets roles of its own, for
a cluster that holds more than one outbox database. The prefix is applied as each file is
sent, never to the file: the recorded checksum stays that of the shipped bytes. Once
migrated, a database's prefix is read from the owner of its tables.
"""

from __future__ import annotations

import hashlib
from importlib import resources
from typing import TYPE_CHECKING, Any, Final, LiteralString, cast

import attrs
import psycopg

from outbox_db import pooling
from outbox_db._catalogue import QUERIES
from outbox_db._roles import database_roles
from outbox_db.errors import MigrationError, sendable_url, translate
from outbox_db.records import RoleNames

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

__all__ = ["Migration", "MigrationReport", "load_migrations", "migrate"]

VERSIONED: Final = "v1"
# A migration that finds data breaking the rule it adds refuses with this SQLSTATE; its
# DETAIL names the rows (0010: idempotency keys that already name two items).
MIGRATION_REFUSED: Final = "P7006"
INSUFFICIENT_PRIVILEGE: Final = "42501"
REPEATABLE: Final = "views"


@attrs.frozen
class Migration:
    """One schema file as shipped in this package."""

    name: str  # relative to schema/, e.g. "v1/0002_payment_outbox.sql"
    content: bytes
    repeatable: bool

    @property
    def text(self) -> str:
        """The SQL, as UTF-8 text."""
        return self.content.decode("utf-8")

    @property
    def checksum(self) -> str:
        """SHA-256 of the file's bytes: the identity of what was applied."""
        return hashlib.sha256(self.content).hexdigest()


@attrs.frozen
class MigrationReport:
    """What a run did: the files applied now, and how many were already in place."""

    applied: tuple[str, ...]
    unchanged: int
    roles: RoleNames
    # Other databases of the cluster whose objects this database's owner role owns: whoever
    # holds these roles there holds them here (give each database a role prefix).
    shared_with: tuple[str, ...] = ()


def load_migrations() -> list[Migration]:
    """The shipped schema files: versioned ones in order, then the repeatable ones."""
    schema = resources.files("outbox_db").joinpath("schema")
    found = [
        Migration(
            name=f"{folder}/{entry.name}",
            content=entry.read_bytes(),
            repeatable=folder == REPEATABLE,
        )
        for folder in (VERSIONED, REPEATABLE)
        for entry in sorted(schema.joinpath(folder).iterdir(), key=lambda entry: entry.name)
        if entry.name.endswith(".sql")
    ]
    if not found:
        msg = "no schema files found in the outbox_db package"
        raise MigrationError(msg)
    return found


def migrate(
    url: str,
    *,
    on_apply: Callable[[str], None] | None = None,
    role_prefix: str | None = None,
    through: str | None = None,
) -> MigrationReport:
    """Bring the database at `url` to the shipped schema; `on_apply` hears each file applied.

    `role_prefix` names this database's roles (`RoleNames`); None: the prefix the database
    was migrated with, or none for a new one. A prefix other than the database's is refused.
    `through` (a versioned file, "v1/0018_ledger_tamper_evidence.sql") stops after it and
    applies no view: the database an older release left, to prove a later file on it.
    """
    migrations = load_migrations()
    if through is not None:
        migrations = _through(migrations, through)
    _require_direct(url)
    try:
        with psycopg.connect(sendable_url(url), autocommit=True) as connection:
            connection.execute(QUERIES["migrations_lock"])
            roles = _role_names(connection, role_prefix)
            report = _apply_pending(connection, migrations, roles, on_apply or (lambda _: None))
            shared = connection.execute(QUERIES["owner_serves_databases"], {"role": roles.owner})
            return attrs.evolve(report, shared_with=tuple(name for (name,) in shared))
    except psycopg.Error as error:
        raise translate(error) from error


def _through(migrations: Sequence[Migration], last: str) -> list[Migration]:
    names = [m.name for m in migrations if not m.repeatable]
    if last not in names:
        msg = f"{last} is not a shipped versioned file"
        raise MigrationError(msg)
    return [m for m in migrations if not m.repeatable and m.name <= last]


def _require_direct(url: str) -> None:
    """Refuse a pooler: behind one in transaction mode, migrations_lock would hold nothing."""
    if pooling.probe(url).pooled:
        msg = (
            "migrate needs a direct connection to PostgreSQL, and the database URL reaches a "
            "connection pooler (PgBouncer): in transaction mode the session lock that keeps "
            "two migrators apart would stay on a server connection the pooler gives to "
            "others. Point the URL at the server itself for migrate; services and "
            "relayers may keep using the pooler"
        )
        raise MigrationError(msg)


def _role_names(connection: psycopg.Connection[Any], role_prefix: str | None) -> RoleNames:
    """The database's role names: those its tables' owner has, else those asked for."""
    try:
        asked = None if role_prefix is None else RoleNames(role_prefix)
    except ValueError as invalid:
        raise MigrationError(str(invalid)) from invalid
    existing = database_roles(connection)
    if existing is None:  # a new database, or one older than the outbox roles
        return asked or RoleNames()
    if asked is not None and asked != existing:
        msg = (
            f"this database's outbox roles have the prefix {existing.prefix!r} (its tables "
            f"belong to {existing.owner}), not {asked.prefix!r}; a database keeps its role "
            "names: migrate it with its own prefix, or without one"
        )
        raise MigrationError(msg)
    return existing


def _apply_pending(
    connection: psycopg.Connection[Any],
    migrations: Sequence[Migration],
    roles: RoleNames,
    on_apply: Callable[[str], None],
) -> MigrationReport:
    connection.execute(QUERIES["migrations_table"])
    applied = dict(connection.execute(QUERIES["migrations_applied"]).fetchall())
    _check_history(applied, migrations)
    pending = [m for m in migrations if applied.get(m.name) != m.checksum]
    for migration in pending:
        try:
            with connection.transaction():
                connection.execute(QUERIES["migration_search_path"])
                # Shipped package data, reviewed like code, with role names swapped for this
                # database's (a fixed pattern and a validated prefix): literal by construction.
                text = cast("LiteralString", roles.render(migration.text))  # type: ignore[redundant-cast]
                connection.execute(text)
                record = {"filename": migration.name, "checksum": migration.checksum}
                connection.execute(QUERIES["migration_record"], record)
        except psycopg.Error as error:
            if error.diag.sqlstate == MIGRATION_REFUSED:
                raise MigrationError(_refusal(migration, error)) from error
            if error.diag.sqlstate == INSUFFICIENT_PRIVILEGE:
                _explain_owner_grant(connection, migration, roles, error)
            raise
        on_apply(migration.name)
    return MigrationReport(
        applied=tuple(m.name for m in pending),
        unchanged=len(migrations) - len(pending),
        roles=roles,
    )


def _explain_owner_grant(
    connection: psycopg.Connection[Any],
    migration: Migration,
    roles: RoleNames,
    error: psycopg.Error,
) -> None:
    """Name the grant and the fix when the migrating login could not join the owner role.

    `GRANT <owner> TO CURRENT_USER` (0001) needs ADMIN OPTION on the owner role since
    PostgreSQL 16. A login that is not a superuser has it only on roles it created, so the
    grant fails when another login made the roles: another database of the same cluster.
    """
    row = connection.execute(QUERIES["role_member"], {"role": roles.owner}).fetchone()
    if row is None or row[0]:
        return  # no such role yet, or already a member: another refusal, reported as is
    msg = (
        f"{migration.name}: GRANT {roles.owner} TO CURRENT_USER was refused "
        f"[SQLSTATE {INSUFFICIENT_PRIVILEGE}]: {error.diag.message_primary}. The outbox roles "
        "already exist in this cluster (roles are cluster-wide), made by another login, most "
        "likely for another database; since PostgreSQL 16 only a holder of ADMIN OPTION on a "
        "role may grant it. Give this database roles of its own: migrate it with a role "
        "prefix (outbox-db migrate --role-prefix NAME_, or OUTBOX_ROLE_PREFIX=NAME_); see "
        "docs/adopting.md, 'A managed database'."
    )
    raise MigrationError(msg) from error


def _refusal(migration: Migration, error: psycopg.Error) -> str:
    """A migration's own refusal, whole: what it found (DETAIL) and what to do (HINT)."""
    diag = error.diag
    parts = [f"{migration.name} refused [SQLSTATE {MIGRATION_REFUSED}]: {diag.message_primary}"]
    parts += [text for text in (diag.message_detail, diag.message_hint) if text]
    return "\n".join(parts)


def _check_history(applied: Mapping[str, str], migrations: Sequence[Migration]) -> None:
    """Refuse when an applied versioned file changed, or the database is ahead of us."""
    shipped = {m.name: m for m in migrations}
    unknown = sorted(name for name in applied if name not in shipped)
    if unknown:
        msg = (
            f"the database has migrations this package does not ship (a newer release?): {unknown}"
        )
        raise MigrationError(msg)
    edited = sorted(
        name
        for name, checksum in applied.items()
        if not shipped[name].repeatable and shipped[name].checksum != checksum
    )
    if edited:
        msg = (
            f"applied migrations were edited since they ran: {edited}; "
            "never change an applied migration, add a new file instead"
        )
        raise MigrationError(msg)
