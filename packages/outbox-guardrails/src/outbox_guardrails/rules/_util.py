"""Helpers the rules share: walking SQL syntax trees and naming relations."""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeAlias

from pglast import ast as sql_ast
from pglast.visitors import Visitor

from outbox_guardrails.model import Finding

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

    from outbox_guardrails.model import Rule
    from outbox_guardrails.sources import SourceFile

__all__ = ["Scope", "finding", "relation_name", "scoped", "walk"]

# CTE name -> its query, for the CTEs visible at a node.
Scope: TypeAlias = "Mapping[str, sql_ast.Node]"


def finding(
    rule: Rule, source: SourceFile, line: int, column: int = 1, detail: str = ""
) -> Finding:
    """A finding of `rule` at `line` of `source`, with that line as its snippet."""
    return Finding(
        path=source.path,
        line=line,
        column=column,
        rule_id=rule.id,
        snippet=source.line(line),
        detail=detail,
    )


def walk(node: sql_ast.Node) -> Iterator[sql_ast.Node]:
    """Every node under (and including) `node`, CTEs and subqueries included."""
    collected: list[sql_ast.Node] = []

    class _Collect(Visitor):
        def visit(self, _ancestors: object, visited: sql_ast.Node) -> None:
            collected.append(visited)

    _Collect()(node)
    yield from collected


def relation_name(relation: sql_ast.RangeVar | None) -> str:
    """The unqualified, lower-case name of a table reference ("" when absent)."""
    return (relation.relname or "").lower() if relation is not None else ""


def scoped(root: sql_ast.Node) -> Iterator[tuple[sql_ast.Node, Scope]]:
    """Every node under `root` with the CTEs visible there: its own WITH and every enclosing one."""
    stack: list[tuple[sql_ast.Node, Scope]] = [(root, {})]
    while stack:
        node, scope = stack.pop()
        with_clause = getattr(node, "withClause", None)
        if isinstance(with_clause, sql_ast.WithClause):
            scope = {**scope, **{cte.ctename: cte.ctequery for cte in with_clause.ctes}}
        yield node, scope
        pending: list[object] = [getattr(node, slot, None) for slot in type(node).__slots__]
        while pending:
            value = pending.pop()
            if isinstance(value, sql_ast.Node):
                stack.append((value, scope))
            elif isinstance(value, (list, tuple)):
                pending.extend(value)
