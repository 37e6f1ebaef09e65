"""Every place a tree switches roles or opens a database connection, allowed ones included.

OBX002 and OBX003 report these only outside packages/outbox-db; an auditor also wants the
allowed ones, to see that the boundary is small. The inventory finds them with the rules'
own predicates, so it can never disagree with the checks about what counts.
"""

from __future__ import annotations

import ast
import enum
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Final

import attrs

from outbox_guardrails.rules._util import walk
from outbox_guardrails.rules.obx002_sql_execution import _driver_constructor, _Scope
from outbox_guardrails.rules.obx003_role_switch import _switches_role

if TYPE_CHECKING:
    from collections.abc import Iterator

    from outbox_guardrails.sources import SourceFile
    from outbox_guardrails.tree import Tree

__all__ = ["Area", "Usage", "UsageKind", "database_usages"]

TESTONLY: Final = "packages/outbox-db/src/outbox_db/testonly/"
ROOT_PACKAGE: Final = "(repository root)"


class UsageKind(enum.StrEnum):
    """What a usage does."""

    CONNECTION = "connection"  # builds a connection or pool with a driver
    ROLE_SWITCH = "role-switch"  # SET [LOCAL] ROLE, SET SESSION AUTHORIZATION, set_config('role')


class Area(enum.StrEnum):
    """What kind of code a file is, which decides whether a usage may sit outside outbox-db."""

    PRODUCTION = "production"
    TESTONLY = "test-only helpers"  # outbox_db.testonly: never shipped, refused outside tests
    TEST = "tests"
    SCRIPT = "scripts"  # the noxfile, invoke tasks, scripts/ and benchmarks/


@attrs.frozen(order=True)
class Usage:
    """One role switch or connection: where it is, what kind of code holds it, and what it is."""

    package: str  # "packages/outbox-db", "benchmarks", or the repository root
    area: Area
    path: str
    line: int
    kind: UsageKind
    detail: str  # the driver callable, or the SQL line that switches role
    in_boundary: bool  # inside packages/outbox-db, the only code allowed to do this

    @property
    def outside_boundary_in_production(self) -> bool:
        """Production code doing what only outbox-db may do."""
        return self.area is Area.PRODUCTION and not self.in_boundary


def database_usages(tree: Tree) -> list[Usage]:
    """Every role switch and connection constructor in `tree`, sorted by package and place."""
    return sorted({*_role_switches(tree), *_connections(tree)})


def _role_switches(tree: Tree) -> Iterator[Usage]:
    for statement in tree.sql_statements:
        if any(_switches_role(node) for node in walk(statement.node)):
            source = statement.source
            yield _usage(source, statement.line, UsageKind.ROLE_SWITCH, source.line(statement.line))


def _connections(tree: Tree) -> Iterator[Usage]:
    for module in tree.python_modules:
        nodes = list(ast.walk(module.module))
        scope = _Scope.of(nodes, set())
        for node in nodes:
            if isinstance(node, ast.Call) and (
                constructor := _driver_constructor(node.func, scope)
            ):
                yield _usage(module.source, node.lineno, UsageKind.CONNECTION, constructor)


def _usage(source: SourceFile, line: int, kind: UsageKind, detail: str) -> Usage:
    return Usage(
        package=_package(source.path),
        area=_area(source),
        path=source.path,
        line=line,
        kind=kind,
        detail=detail,
        in_boundary=source.in_db_package,
    )


def _area(source: SourceFile) -> Area:
    if source.path.startswith(TESTONLY):
        return Area.TESTONLY
    if source.is_test:
        return Area.TEST
    return Area.SCRIPT if source.is_script else Area.PRODUCTION


def _package(path: str) -> str:
    """packages/<name> for a package's file, else the top folder, else the repository root."""
    parts = PurePosixPath(path).parts
    if parts[0] == "packages" and len(parts) > 2:  # noqa: PLR2004 - packages/<name>/<file>
        return "/".join(parts[:2])
    return parts[0] if len(parts) > 1 else ROOT_PACKAGE
