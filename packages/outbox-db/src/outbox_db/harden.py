"""The optional superuser hardening, and the catalog facts that say whether it is in effect.

Some of what a least-privilege deployment needs only a superuser may do. PUBLIC's EXECUTE on
the server-side large-object functions (any login can create large objects that outlive its
session) can be revoked only by their owner; and only a superuser may create the event
triggers that record every DDL statement on the outbox's objects (the owner's ALTER TABLE ...
DISABLE TRIGGER or ... USING included) where the owner can neither write nor delete.
`harden` does both on purpose, per database; its effect is read back from the catalog (here
and in the evidence bundle), never from a log an ordinary login could write.
"""

from __future__ import annotations

from importlib import resources
from typing import TYPE_CHECKING, Any, Final, TypeVar

import attrs
import psycopg
from psycopg import sql
from psycopg.rows import class_row

from outbox_db._catalogue import load
from outbox_db._roles import database_roles
from outbox_db.errors import PermissionDenied, sendable_url, translate
from outbox_db.records import Role, RoleNames

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from datetime import datetime

__all__ = [
    "HARDEN_QUERIES",
    "DdlStatement",
    "HardeningState",
    "LargeObjectPrivilege",
    "SuperuserRequired",
    "harden",
    "read_hardening",
]

HARDEN_QUERIES: Final = load(resources.files("outbox_db").joinpath("sql/harden.sql").read_text())
APPLICATION_NAME: Final = "outbox-db-harden"
T = TypeVar("T")


class SuperuserRequired(PermissionDenied):
    """42501: `harden` was run by a login that is not a superuser; nothing was changed."""

    summary = "superuser required"


def _sorted_names(names: Iterable[str]) -> tuple[str, ...]:
    return tuple(sorted(names))


@attrs.frozen(order=True)
class LargeObjectPrivilege:
    """Who may execute one server-side large-object function, as the catalog says."""

    signature: str
    public_may_execute: bool
    roles_may_execute: tuple[str, ...] = attrs.field(converter=_sorted_names)

    @property
    def hardened(self) -> bool:
        """Neither PUBLIC nor any of the database's outbox roles may execute it."""
        return not self.public_may_execute and not self.roles_may_execute


@attrs.frozen(kw_only=True)
class DdlStatement:
    """One recorded DDL statement on an object of schema public (its text stays in the table)."""

    entry_no: int
    recorded_at: datetime
    login: str  # session_user: the login, whatever role it had set
    command_tag: str
    object_type: str | None
    object_identity: str | None


@attrs.frozen
class HardeningState:
    """The large-object functions' privileges, the DDL record, and whether both are in effect."""

    functions: tuple[LargeObjectPrivilege, ...]
    lo_compat_privileges: bool  # on: the server skips large objects' own privilege checks
    ddl_recorded: bool = False  # both event triggers fire, running a superuser's functions
    ddl_log: tuple[DdlStatement, ...] = ()  # what they recorded, if the reader may read it

    @property
    def applied(self) -> bool:
        """In effect: no role may execute a large-object function, and DDL is recorded."""
        return (
            bool(self.functions) and all(f.hardened for f in self.functions) and (self.ddl_recorded)
        )

    @property
    def executable(self) -> list[LargeObjectPrivilege]:
        """The functions PUBLIC or an outbox role may still execute."""
        return [f for f in self.functions if not f.hardened]


@attrs.frozen
class _Login:
    login: str
    superuser: bool


@attrs.frozen
class _CompatPrivileges:
    lo_compat_privileges: bool


@attrs.frozen
class _SchemaOwner:
    owner: str
    superuser: bool


@attrs.frozen
class _Installed:
    installed: bool


@attrs.frozen
class _Readable:
    readable: bool


def harden(url: str) -> HardeningState:
    """Revoke PUBLIC's EXECUTE on the large-object functions; the state read back afterwards.

    Idempotent. Refuses (SuperuserRequired, nothing changed) unless the login is a superuser:
    for anyone else PostgreSQL only warns that no privileges could be revoked.
    """
    try:
        with (
            psycopg.connect(
                sendable_url(url), autocommit=True, application_name=APPLICATION_NAME
            ) as connection,
            connection.transaction(),
        ):
            connection.execute(HARDEN_QUERIES["harden_search_path"])
            (login,) = _fetch(connection, "harden_login", _Login)
            if not login.superuser:
                msg = (
                    f"outbox-db harden needs a superuser login; {login.login} is not one "
                    "(only the owner of the large-object functions, a superuser, can "
                    "revoke PUBLIC's EXECUTE on them): nothing was changed [SQLSTATE 42501]"
                )
                raise SuperuserRequired(msg, sqlstate="42501", constraint=None)
            roles = database_roles(connection)
            connection.execute(HARDEN_QUERIES["revoke_large_object_functions"])
            _record_ddl(connection, roles)
            # Read back in the same transaction: what it commits is what the catalog says.
            return read_hardening(connection, roles or RoleNames())  # seed names before migrate
    except psycopg.Error as error:
        raise translate(error) from error


def _record_ddl(connection: psycopg.Connection[Any], roles: RoleNames | None) -> None:
    """Install the DDL record (idempotent); the auditor may read it once the roles exist."""
    for schema in _fetch(connection, "ddl_schema_owner", _SchemaOwner):
        if not schema.superuser:
            msg = (
                f"schema outbox_ddl exists and {schema.owner}, not a superuser, owns it: it "
                "could edit the DDL record; drop or reassign it first [SQLSTATE 42501]"
            )
            raise SuperuserRequired(msg, sqlstate="42501", constraint=None)
    connection.execute(HARDEN_QUERIES["create_ddl_record"])
    if roles is not None:  # before the first migration there is no auditor role to grant
        auditor = sql.Identifier(roles.of(Role.AUDITOR))
        connection.execute(sql.SQL(HARDEN_QUERIES["grant_ddl_log"]).format(auditor=auditor))


def read_hardening(connection: psycopg.Connection[Any], roles: RoleNames) -> HardeningState:
    """The hardening's facts from the catalog, in the connection's current transaction.

    `roles` names the database's outbox roles. The caller has set the search_path to
    pg_catalog (harden_search_path, or the audit's).
    """
    functions = sorted(
        _fetch(
            connection,
            "large_object_privileges",
            LargeObjectPrivilege,
            {"groups": list(roles.groups)},
        )
    )
    (compat,) = _fetch(connection, "lo_compat_privileges", _CompatPrivileges)
    everyone = {"roles": [*roles.groups, roles.owner]}
    (recording,) = _fetch(connection, "ddl_recording", _Installed, everyone)
    (log,) = _fetch(connection, "ddl_log_readable", _Readable)
    return HardeningState(
        functions=tuple(functions),
        lo_compat_privileges=compat.lo_compat_privileges,
        ddl_recorded=recording.installed,
        ddl_log=tuple(_fetch(connection, "ddl_log", DdlStatement)) if log.readable else (),
    )


def _fetch(
    connection: psycopg.Connection[Any],
    name: str,
    row: type[T],
    params: Mapping[str, object] | None = None,
) -> list[T]:
    cursor = connection.cursor(row_factory=class_row(row))
    return cursor.execute(HARDEN_QUERIES[name], params).fetchall()
