"""The schema a fresh migration leaves, as one SQL text: what runs today, read in one place.

Migrations are history, and a function redefined three times is read by diffing them.
schema/current.sql is their sum, generated from the catalog of a freshly migrated database,
so a change to a function reads as a diff of one file. The catalog is read through
`CatalogAudit`, the reads the evidence bundle makes, and printed in a fixed order (sorted
in Python, never by the server's collation). pg_get_functiondef and its kin may print
differently on another major version, so the text names the version it was read on.
"""

from __future__ import annotations

import re
from itertools import groupby
from typing import TYPE_CHECKING, Final

from outbox_db.audit import CatalogAudit
from outbox_db.errors import OutboxError
from outbox_db.records import RoleNames

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from outbox_db.audit import ColumnDefinition, FunctionDefinition, Grant

__all__ = ["REGENERATE", "function_body", "schema_snapshot", "snapshot_major"]

REGENERATE: Final = "outbox-db schema-snapshot --url URL > schema/current.sql"
# The migrator's own bookkeeping, owned by whichever login migrated: not the outbox schema.
MIGRATIONS_TABLE: Final = "public.outbox_schema_migrations"
_MAJOR_LINE: Final = re.compile(r"^-- Read on PostgreSQL (\d+)\b", re.MULTILINE)
# pg_get_functiondef prints the body between dollar quotes after the header's last line.
_BODY: Final = re.compile(r"^AS (\$\w*\$)(.*)\1\s*$", re.MULTILINE | re.DOTALL)


def schema_snapshot(url: str) -> str:
    """The schema of the freshly migrated database at `url`, as schema/current.sql holds it."""
    with CatalogAudit.open(url) as audit:
        if audit.roles != RoleNames():
            msg = (
                f"the snapshot names the seed roles, and this database's have the prefix "
                f"{audit.roles.prefix!r}: snapshot a database migrated without a role prefix"
            )
            raise OutboxError(msg)
        major = audit.server_version().split(".", 1)[0]
        sections = [
            _header(major),
            _section(
                "Types", [f"CREATE TYPE {t.name} AS {t.definition};" for t in audit.enum_types()]
            ),
            _section("Tables", _tables(audit.table_columns())),
            _section(
                "Constraints",
                [
                    f"ALTER TABLE {c.table_name} ADD CONSTRAINT {c.name} {c.definition};"
                    for c in audit.constraints()
                ],
            ),
            _section(
                "Indexes (those backing a constraint too)",
                [f"{i.definition};" for i in audit.index_definitions()],
            ),
            _section("Triggers", [f"{t.definition};" for t in audit.trigger_bindings()]),
            _section(
                "Views",
                [f"CREATE VIEW {v.name} AS\n{v.definition}" for v in audit.view_definitions()],
            ),
            _section("Functions", [_function(f) for f in audit.function_definitions()]),
            _section("Grants and role memberships", _grants(audit.grants())),
        ]
    return "\n\n".join(sections) + "\n"


def snapshot_major(snapshot: str) -> int | None:
    """The PostgreSQL major version a snapshot text was read on, from its header."""
    found = _MAJOR_LINE.search(snapshot)
    return int(found.group(1)) if found else None


def function_body(definition: str) -> str:
    """A function's body as pg_get_functiondef prints it, whitespace collapsed, header left out."""
    found = _BODY.search(definition)
    body = found.group(2) if found else definition.split("\n", 1)[-1]  # BEGIN ATOMIC: no quotes
    return " ".join(body.split())


def _header(major: str) -> str:
    return "\n".join(
        [
            "-- The outbox schema as a fresh migration leaves it: what runs today.",
            "-- GENERATED, do not edit. Change the schema with a new file under schema/v1 (or",
            "-- schema/views), migrate a database without a role prefix, and regenerate:",
            f"--     {REGENERATE}",
            "-- (docs/architecture.md#the-current-sql). For reading and review, not for running:",
            "-- an index that backs a constraint appears twice.",
            f"-- Read on PostgreSQL {major}; other major versions may print definitions otherwise.",
        ]
    )


def _section(title: str, statements: Sequence[str]) -> str:
    rule = f"-- {title} " + "-" * max(3, 94 - len(title))
    return "\n".join([rule, *statements]) if statements else f"{rule}\n-- (none)"


def _tables(columns: Iterable[ColumnDefinition]) -> list[str]:
    by_table: dict[str, list[str]] = {}
    for column in columns:  # each table's columns arrive in their declared order
        by_table.setdefault(column.table_name, []).append(column.declaration)
    return [
        f"CREATE TABLE {table} (\n" + ",\n".join(f"    {c}" for c in by_table[table]) + "\n);"
        for table in sorted(by_table)
    ]


def _function(function: FunctionDefinition) -> str:
    definer = ", SECURITY DEFINER" if function.security_definer else ""
    return f"\n-- {function.signature} (owner {function.owner}{definer})\n{function.definition};"


def _grants(grants: Iterable[Grant]) -> list[str]:
    outbox_roles = {RoleNames().owner, *RoleNames().groups}
    # The migrating login's grants (its table, its membership) name whoever migrated.
    kept = (
        g
        for g in grants
        if g.object_name != MIGRATIONS_TABLE
        and (g.object_kind != "role" or g.grantee in outbox_roles)
    )
    return [
        _grant(kind, name, grantee, [g.privilege for g in group], grantable=grantable)
        for (kind, name, grantee, grantable), group in groupby(
            sorted(kept, key=lambda g: (g.object_kind, g.object_name, g.grantee, g.grantable)),
            key=lambda g: (g.object_kind, g.object_name, g.grantee, g.grantable),
        )
    ]


def _grant(kind: str, name: str, grantee: str, privileges: list[str], *, grantable: bool) -> str:
    if kind == "role":  # privilege MEMBER: `grantee` is a member of role `name`
        return f"GRANT {name} TO {grantee}{' WITH ADMIN OPTION' if grantable else ''};"
    target = "TABLE" if kind in {"table", "view"} else kind.upper()
    option = " WITH GRANT OPTION" if grantable else ""
    return f"GRANT {', '.join(sorted(privileges))} ON {target} {name} TO {grantee}{option};"
