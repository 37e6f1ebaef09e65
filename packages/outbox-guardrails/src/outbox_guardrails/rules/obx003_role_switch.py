"""OBX003 role-switch: only outbox-db switches roles, in SQL and in Python alike.

Anti-pattern: ``SET ROLE``, ``SET LOCAL ROLE``, ``RESET ROLE``, ``SET SESSION
AUTHORIZATION`` or ``set_config('role', ...)`` outside packages/outbox-db. Code that changes
its own role decides its own privileges: the role boundary proven by the database tests is
then only as strong as every caller's discipline. Tests and scripts are not exempt.

Best practice: ask outbox-db for a store acting as a role (``OutboxStore.connect(url,
role=Role.READONLY)``), or, in a proof, use ``outbox_db.testonly.query_as``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from pglast import ast as sql_ast

from outbox_guardrails.model import Rule
from outbox_guardrails.rules._util import finding, walk

if TYPE_CHECKING:
    from collections.abc import Iterator

    from outbox_guardrails.model import Finding
    from outbox_guardrails.tree import Tree

RULE: Final = Rule(
    id="OBX003",
    name="role-switch",
    summary="No SET ROLE / RESET ROLE / SET SESSION AUTHORIZATION outside packages/outbox-db.",
    anti_pattern=(
        "Switching roles outside the DB boundary lets any caller choose its own privileges, "
        "so the role boundary rests on discipline instead of the database."
    ),
    best_practice=(
        "Use OutboxStore.connect(url, role=...) from outbox-db; in proofs use "
        "outbox_db.testonly.query_as."
    ),
    gated=True,
)
ROLE_SETTINGS: Final = frozenset({"role", "session_authorization"})


def check(tree: Tree) -> Iterator[Finding]:
    """Role switches in SQL (files, Python literals, function bodies) outside outbox-db."""
    for statement in tree.sql_statements:
        if statement.source.in_db_package:
            continue
        if any(_switches_role(node) for node in walk(statement.node)):
            yield finding(RULE, statement.source, statement.line)


def _switches_role(node: sql_ast.Node) -> bool:
    if isinstance(node, sql_ast.VariableSetStmt):
        return (node.name or "").lower() in ROLE_SETTINGS
    if isinstance(node, sql_ast.FuncCall):
        name = (node.funcname[-1].sval or "").lower() if node.funcname else ""
        first = node.args[0] if node.args else None
        setting = getattr(getattr(first, "val", None), "sval", None)
        return name == "set_config" and (setting or "").lower() in ROLE_SETTINGS
    return False
