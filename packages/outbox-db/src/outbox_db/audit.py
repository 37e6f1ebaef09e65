"""Read-only evidence from the catalog, as the auditor role: grants, definitions and history.

The evidence bundle needs what the database itself says about the outbox (privileges,
function and index definitions, the migration history, the regression count), and only
this package may ask it. Every read is a named statement of sql/audit.sql. The roles are
the database's own (`RoleNames`, read from its tables' owner): symphony_auditor and
outbox_owner, or their prefixed names on a database migrated with a role prefix.
"""

from __future__ import annotations

import contextlib
from importlib import resources
from typing import TYPE_CHECKING, Any, Final, LiteralString, Self, TypeVar

import attrs
import psycopg
from psycopg import IsolationLevel, sql
from psycopg.rows import class_row

from outbox_db._catalogue import QUERIES, load
from outbox_db._roles import database_roles
from outbox_db.digests import DigestedRow, SealableRow, SealableRows, sealable
from outbox_db.errors import OutboxDatabaseError, sendable_url, translate
from outbox_db.harden import HardeningState, read_hardening
from outbox_db.migrate import load_migrations
from outbox_db.records import RailOrdering, RedriveLink, Role, RoleNames

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

__all__ = [
    "AUDIT_QUERIES",
    "CatalogAudit",
    "ColumnDefinition",
    "FunctionDefinition",
    "Grant",
    "LeaseDdl",
    "MigrationEntry",
    "RegressionCount",
    "TableObject",
    "TypeDefinition",
    "ViewDefinition",
]

AUDIT_QUERIES: Final = load(resources.files("outbox_db").joinpath("sql/audit.sql").read_text())
LEASE_CHECK: Final = "payment_outbox_pending_lease_consistent"
LEDGER: Final = "public.payment_outbox_attempts"
LEDGER_LOGIN: Final = "recorded_by"  # filled with session_user by its default (0017)
APPLICATION_NAME: Final = "outbox-db-audit"
T = TypeVar("T")


def _stripped(text: str) -> str:
    return text.strip()


@attrs.frozen(order=True)
class Grant:
    """One privilege as the catalog reports it; role membership is privilege MEMBER."""

    object_kind: str  # table, view, sequence, function, schema or role
    object_name: str  # schema-qualified; a function with its argument types
    grantee: str  # a role name, or PUBLIC
    privilege: str  # SELECT, EXECUTE, USAGE, MEMBER, ...
    grantable: bool


@attrs.frozen(order=True)
class FunctionDefinition:
    """An outbox function as pg_get_functiondef prints it."""

    signature: str
    owner: str
    security_definer: bool
    definition: str = attrs.field(converter=_stripped)


@attrs.frozen
class ColumnDefinition:
    """One column of a table, as its DDL would declare it."""

    table_name: str
    name: str
    data_type: str
    not_null: bool
    default_value: str | None

    @property
    def declaration(self) -> str:
        """The column as CREATE TABLE or ADD COLUMN declares it: name, type, NOT NULL, DEFAULT."""
        default = f" DEFAULT {self.default_value}" if self.default_value is not None else ""
        return f"{self.name} {self.data_type}{' NOT NULL' if self.not_null else ''}{default}"


@attrs.frozen(order=True)
class TableObject:
    """A constraint, trigger or index of an outbox table, with its definition."""

    table_name: str
    name: str
    definition: str


@attrs.frozen(order=True)
class ViewDefinition:
    """An outbox view as pg_get_viewdef prints it."""

    name: str
    definition: str = attrs.field(converter=_stripped)


@attrs.frozen(order=True)
class TypeDefinition:
    """An outbox type: its name and what follows AS in its CREATE TYPE (an enum's labels)."""

    name: str
    definition: str


@attrs.frozen
class LeaseDdl:
    """The lease columns of payment_outbox_pending and the CHECK that keeps them consistent."""

    columns: tuple[ColumnDefinition, ...]
    check: TableObject | None  # None when the schema lacks it


@attrs.frozen(order=True)
class MigrationEntry:
    """A schema file: its checksum as applied here and as shipped in this package."""

    filename: str
    applied_checksum: str | None  # None: shipped but not applied
    shipped_checksum: str | None  # None: applied but not shipped by this package

    @property
    def status(self) -> str:
        """ok, not applied, not shipped, or checksum differs."""
        if self.applied_checksum is None:
            return "not applied"
        if self.shipped_checksum is None:
            return "not shipped"
        return "ok" if self.applied_checksum == self.shipped_checksum else "checksum differs"


@attrs.frozen
class RegressionCount:
    """The regression query, verbatim, and the count it returned."""

    query: str
    count: int


def _act_as_auditor(connection: psycopg.Connection[Any], roles: RoleNames) -> None:
    """SET LOCAL ROLE to the database's auditor role, refused in words one can act on."""
    auditor = roles.of(Role.AUDITOR)
    try:
        connection.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(auditor)))
    except psycopg.Error as error:
        # Unmigrated server (no such role, 22023) or a login that is not a member (42501).
        sqlstate = error.diag.sqlstate
        msg = (
            f"cannot act as {auditor}: is the database migrated, and the login role a"
            f" member of {auditor}? [SQLSTATE {sqlstate}]"
        )
        raise OutboxDatabaseError(msg, sqlstate=sqlstate, constraint=None) from error


@attrs.frozen
class _Applied:
    filename: str
    checksum: str


@attrs.frozen
class _Count:
    count: int


@attrs.frozen
class _ServerVersion:
    server_version: str


class CatalogAudit:
    """One read-only snapshot of the outbox's catalog entries, read as the auditor role.

    All reads share one REPEATABLE READ transaction, so every part of the evidence describes
    the same moment. Each read runs in its own savepoint: a read the role may not make fails
    alone (with the typed error) and the other reads still answer.
    """

    def __init__(self, connection: psycopg.Connection[Any], roles: RoleNames) -> None:
        self._connection = connection
        self.roles = roles  # the database's role names, which the evidence quotes

    @property
    def auditor(self) -> str:
        """The role every read runs as: this database's name for symphony_auditor."""
        return self.roles.of(Role.AUDITOR)

    @classmethod
    @contextlib.contextmanager
    def open(cls, url: str, *, connect_timeout: int = 10) -> Iterator[Self]:
        """Connect to `url` and hold the snapshot for the duration of the block."""
        try:
            with psycopg.connect(
                sendable_url(url),
                autocommit=True,
                connect_timeout=connect_timeout,
                application_name=APPLICATION_NAME,
            ) as connection:
                connection.isolation_level = IsolationLevel.REPEATABLE_READ
                connection.read_only = True
                with connection.transaction(force_rollback=True):
                    roles = database_roles(connection) or RoleNames()  # seed names: unmigrated
                    _act_as_auditor(connection, roles)
                    connection.execute(AUDIT_QUERIES["audit_search_path"])
                    yield cls(connection, roles)
        except psycopg.Error as error:
            raise translate(error) from error

    def grants(self) -> list[Grant]:
        """Privileges on the outbox tables, views, sequences, functions and schema public."""
        params = {"owner": self.roles.owner, "groups": list(self.roles.groups)}
        return sorted(self._rows("grants", Grant, params))

    def function_definitions(self) -> list[FunctionDefinition]:
        """Every function the outbox owner role owns in schema public, in full."""
        return sorted(self._rows("function_definitions", FunctionDefinition, self._owner))

    def lease_ddl(self) -> LeaseDdl:
        """The lease columns (those the lease CHECK covers) and the CHECK itself."""
        columns = self._rows("constraint_columns", ColumnDefinition, {"constraint": LEASE_CHECK})
        check = next((c for c in self.constraints() if c.name == LEASE_CHECK), None)
        return LeaseDdl(columns=tuple(columns), check=check)

    def ledger_login_column(self) -> ColumnDefinition | None:
        """The ledger column that names the login writing each attempt (0017), if present."""
        wanted = {"table": LEDGER, "column": LEDGER_LOGIN}
        return next(iter(self._rows("column", ColumnDefinition, wanted)), None)

    def table_columns(self) -> list[ColumnDefinition]:
        """Every column of the outbox tables, each table's in its column order."""
        return self._rows("columns", ColumnDefinition, self._owner)

    def enum_types(self) -> list[TypeDefinition]:
        """The outbox's enum types (the attempt states), labels in their order."""
        return sorted(self._rows("enum_types", TypeDefinition, self._owner))

    def constraints(self) -> list[TableObject]:
        """Every constraint of the outbox tables (NOT VALID ones say so)."""
        return self._table_objects("constraints")

    def trigger_bindings(self) -> list[TableObject]:
        """The user triggers on the outbox tables (the append-only guard, the wake-up)."""
        return self._table_objects("triggers")

    def index_definitions(self) -> list[TableObject]:
        """Every index of the outbox tables, the terminal partial unique index included."""
        return self._table_objects("indexes")

    def view_definitions(self) -> list[ViewDefinition]:
        """The outbox views (the status view)."""
        return sorted(self._rows("views", ViewDefinition, self._owner))

    def migration_history(self) -> list[MigrationEntry]:
        """Every schema file applied here or shipped in this package, with both checksums."""
        applied = {row.filename: row.checksum for row in self._rows("applied_migrations", _Applied)}
        shipped = {migration.name: migration.checksum for migration in load_migrations()}
        return [
            MigrationEntry(
                filename=name,
                applied_checksum=applied.get(name),
                shipped_checksum=shipped.get(name),
            )
            for name in sorted(applied.keys() | shipped.keys())
        ]

    def operator_log(self) -> list[RedriveLink]:
        """Every entry of the append-only operator log (each a re-drive), oldest first."""
        return self._rows("operator_log", RedriveLink)

    def rail_orderings(self) -> list[RailOrdering]:
        """Every entry of the append-only rail ordering history, oldest first."""
        return self._rows("rail_orderings", RailOrdering)

    def ledger_rows(self) -> list[DigestedRow]:
        """Every tamper-evident row with its digest, in digest order (0018); rows without last."""
        return self._rows("ledger_rows", DigestedRow)

    def sealable_digests(self, after: int) -> SealableRows:
        """The digests of transactions from horizon `after` to this snapshot's (0018)."""
        return sealable(self._rows("sealable_digests", SealableRow, {"after": str(after)}))

    def dispatching_count(self) -> RegressionCount:
        """Ledger rows in the retired DISPATCHING state (the gate's regression query)."""
        (row,) = self._rows("dispatching_count", _Count)
        return RegressionCount(query=AUDIT_QUERIES["dispatching_count"], count=row.count)

    def hardening(self) -> HardeningState:
        """Whether `outbox-db harden` is in effect, from the large-object functions' ACLs."""
        try:
            with self._connection.transaction():  # a savepoint, like every other read
                return read_hardening(self._connection, self.roles)
        except psycopg.Error as error:
            raise translate(error) from error

    def server_version(self) -> str:
        """The server's version string, e.g. '15.18 (Debian 15.18-0+deb12u1)'."""
        (row,) = self._rows("server_version", _ServerVersion, catalogue=QUERIES)
        return row.server_version

    def _table_objects(self, name: str) -> list[TableObject]:
        return sorted(self._rows(name, TableObject, self._owner))

    @property
    def _owner(self) -> Mapping[str, object]:
        return {"owner": self.roles.owner}

    def _rows(
        self,
        name: str,
        row: type[T],
        params: Mapping[str, object] | None = None,
        *,
        catalogue: Mapping[str, LiteralString] = AUDIT_QUERIES,
    ) -> list[T]:
        try:
            with self._connection.transaction():  # a savepoint: a refused read fails alone
                cursor = self._connection.cursor(row_factory=class_row(row))
                return cursor.execute(catalogue[name], params).fetchall()
        except psycopg.Error as error:
            raise translate(error) from error
