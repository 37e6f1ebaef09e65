"""Proof: schema/current.sql is what a fresh migration leaves, and no function body runs twice."""

from __future__ import annotations

import difflib
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Final

import psycopg
import pytest
from psycopg import sql

from outbox_db.audit import CatalogAudit
from outbox_db.schema_snapshot import REGENERATE, function_body, schema_snapshot, snapshot_major

if TYPE_CHECKING:
    from outbox_db.testonly.pytest_plugin import Database

SNAPSHOT: Final = Path(__file__).parents[4] / "schema" / "current.sql"
CLAIM: Final = "public.claim_outbox_batch(integer,text,integer)"


def _server_major(url: str) -> int:
    with CatalogAudit.open(url) as audit:
        return int(audit.server_version().split(".", 1)[0])


def _bodies_defined_twice(url: str) -> dict[str, list[str]]:
    """Bodies shared by more than one current function, each with the functions' signatures."""
    with CatalogAudit.open(url) as audit:
        functions = audit.function_definitions()
    by_body: defaultdict[str, list[str]] = defaultdict(list)
    for function in functions:
        by_body[function_body(function.definition)].append(function.signature)
    return {body: names for body, names in by_body.items() if len(names) > 1}


def test_a_fresh_migration_leaves_the_committed_snapshot(outbox_database: Database) -> None:
    """schema/current.sql equals the catalog of a freshly migrated database, read the same way.

    The snapshot is read on one PostgreSQL major version (its header names it), since another
    may print a definition differently; on another server this proof does not apply.
    """
    committed = SNAPSHOT.read_text(encoding="utf-8")
    major = _server_major(outbox_database.url)
    if major != snapshot_major(committed):
        pytest.skip(f"schema/current.sql is read on PostgreSQL {snapshot_major(committed)}")
    actual = schema_snapshot(outbox_database.url)
    if committed != actual:
        diff = difflib.unified_diff(
            committed.splitlines(keepends=True),
            actual.splitlines(keepends=True),
            "schema/current.sql (committed)",
            f"a fresh migration (PostgreSQL {major})",
        )
        pytest.fail(
            f"schema/current.sql is not what the migrations leave; regenerate it on a freshly"
            f" migrated PostgreSQL {major} database:\n    {REGENERATE}\n\n{''.join(diff)}",
            pytrace=False,
        )


def test_no_function_body_is_defined_twice(outbox_database: Database) -> None:
    """No two functions that run today share a body: a change is made in one place only."""
    expected: dict[str, list[str]] = {}
    assert expected == _bodies_defined_twice(outbox_database.url)


def test_a_copied_function_body_is_found(outbox_database: Database) -> None:
    """The check above sees a copy: the claim function again under another name."""
    with psycopg.connect(outbox_database.url, autocommit=True) as connection:
        (definition,) = connection.execute(
            "SELECT pg_get_functiondef(%s::regprocedure)", [CLAIM]
        ).fetchone() or ("",)
        copy = definition.replace("public.claim_outbox_batch(", "public.claim_outbox_copy(", 1)
        connection.execute(sql.SQL(copy))  # the catalog's own printing of the claim
        connection.execute("ALTER FUNCTION public.claim_outbox_copy OWNER TO outbox_owner")
    twice = _bodies_defined_twice(outbox_database.url)
    expected = [[CLAIM, "public.claim_outbox_copy(integer,text,integer)"]]
    assert expected == [sorted(names) for names in twice.values()]
