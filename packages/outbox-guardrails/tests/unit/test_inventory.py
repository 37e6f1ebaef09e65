"""The inventory of role switches and connections: every one found, each classified by area."""

from __future__ import annotations

from typing import TYPE_CHECKING

from outbox_guardrails.inventory import Area, Usage, UsageKind, database_usages
from outbox_guardrails.tree import Tree

if TYPE_CHECKING:
    from pathlib import Path

TREE = {
    "packages/outbox-db/src/outbox_db/store.py": (
        "import psycopg\n"
        "from psycopg import sql\n"
        "def open_as(url, role):\n"
        "    connection = psycopg.connect(url)\n"
        '    connection.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(role)))\n'
    ),
    "packages/outbox-db/src/outbox_db/testonly/_access.py": (
        "from psycopg_pool import ConnectionPool\npool = ConnectionPool('')\n"
    ),
    "packages/billing/src/billing/app.py": (
        "import psycopg as pg\ndef run(url):\n    return pg.Connection.connect(url)\n"
    ),
    "packages/billing/tests/test_app.py": 'SWITCH = "SET ROLE symphony_executor"\n',
    "benchmarks/raw.py": "import asyncpg\nasync def go():\n    await asyncpg.create_pool()\n",
    "schema/v1/0009_switch.sql": (
        "CREATE FUNCTION public.f() RETURNS void LANGUAGE plpgsql AS $$\n"
        "BEGIN\n"
        "    PERFORM set_config('role', 'outbox_owner', true);\n"
        "END\n"
        "$$;\n"
    ),
    "packages/billing/src/billing/clean.py": "def connect(url):\n    return url\nconnect('x')\n",
}


def tree_of(tmp_path: Path, files: dict[str, str]) -> Tree:
    """A tree holding `files` (relative path -> text)."""
    for relative, text in files.items():
        target = tmp_path / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    return Tree.load(tmp_path)


def test_every_role_switch_and_connection_is_listed_with_its_area_and_package(
    tmp_path: Path,
) -> None:
    """Connections and role switches in Python, SQL literals and PL/pgSQL, inside and outside outbox-db."""
    usages = database_usages(tree_of(tmp_path, TREE))

    expected = [
        ("benchmarks", Area.SCRIPT, "benchmarks/raw.py", 3, UsageKind.CONNECTION, False),
        (
            "packages/billing",
            Area.PRODUCTION,
            "packages/billing/src/billing/app.py",
            3,
            UsageKind.CONNECTION,
            False,
        ),
        (
            "packages/billing",
            Area.TEST,
            "packages/billing/tests/test_app.py",
            1,
            UsageKind.ROLE_SWITCH,
            False,
        ),
        (
            "packages/outbox-db",
            Area.PRODUCTION,
            "packages/outbox-db/src/outbox_db/store.py",
            4,
            UsageKind.CONNECTION,
            True,
        ),
        (
            "packages/outbox-db",
            Area.PRODUCTION,
            "packages/outbox-db/src/outbox_db/store.py",
            5,
            UsageKind.ROLE_SWITCH,
            True,
        ),
        (
            "packages/outbox-db",
            Area.TESTONLY,
            "packages/outbox-db/src/outbox_db/testonly/_access.py",
            2,
            UsageKind.CONNECTION,
            True,
        ),
        ("schema", Area.PRODUCTION, "schema/v1/0009_switch.sql", 3, UsageKind.ROLE_SWITCH, False),
    ]
    assert expected == [(u.package, u.area, u.path, u.line, u.kind, u.in_boundary) for u in usages]


def test_connections_name_the_driver_callable(tmp_path: Path) -> None:
    """An aliased import is resolved: the detail names the real callable."""
    (usage,) = [
        u for u in database_usages(tree_of(tmp_path, TREE)) if u.path.endswith("billing/app.py")
    ]

    assert usage.detail == "psycopg.Connection.connect"


def test_only_production_code_outside_outbox_db_is_outside_the_boundary(tmp_path: Path) -> None:
    """Tests, scripts and outbox-db itself may connect; a service's own module may not."""
    outside = [
        u.path for u in database_usages(tree_of(tmp_path, TREE)) if u.outside_boundary_in_production
    ]

    assert outside == ["packages/billing/src/billing/app.py", "schema/v1/0009_switch.sql"]


def test_a_file_at_the_root_belongs_to_the_repository_root(tmp_path: Path) -> None:
    """A script at the top level (the noxfile) is grouped under the repository root."""
    files = {"noxfile.py": "import psycopg\npsycopg.connect('')\n"}

    (usage,) = database_usages(tree_of(tmp_path, files))

    assert usage == Usage(
        package="(repository root)",
        area=Area.SCRIPT,
        path="noxfile.py",
        line=2,
        kind=UsageKind.CONNECTION,
        detail="psycopg.connect",
        in_boundary=False,
    )
