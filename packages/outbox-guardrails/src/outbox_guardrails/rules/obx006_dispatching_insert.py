"""OBX006 dispatching-insert: nothing writes a new DISPATCHING attempt.

Anti-pattern: ``INSERT INTO payment_outbox_attempts`` whose inserted values include
``'DISPATCHING'``: in ``VALUES`` lists, in the target list of the INSERT's ``SELECT`` (also
cast, ``'DISPATCHING'::outbox_attempt_state``, as a ``CASE`` or ``coalesce`` result, or
selected from a CTE or subquery that produces it), in ``ON CONFLICT DO UPDATE SET``, or, in
Python, bound to a placeholder of such an INSERT by a tuple, list or dict literal of the same
call (``execute(INSERT_SQL, (..., "DISPATCHING"))``, the SQL given as a literal or a module
constant). DISPATCHING was the in-flight marker of the delete-on-claim era; in the lease model
in-flight is lease state on ``payment_outbox_pending``, and a new DISPATCHING row is a ledger
entry that no completion, repair or report understands.

Best practice: record outcomes only through ``complete_outbox_attempt`` (DISPATCHED,
RETRYABLE, FAILED) and ``repair_expired_leases`` (ZOMBIE_REQUEUE); read historical
DISPATCHING rows freely. The database refuses the insert too (CHECK
``payment_outbox_attempts_no_dispatching_insert``, SQLSTATE 23514); this rule catches it
before it ships.

Reads, comparisons (``WHERE state = 'DISPATCHING'``, a ``CASE WHEN state = 'DISPATCHING'``
condition), the enum's definition, CHECK constraints, comments and prose pass.
"""

from __future__ import annotations

import ast
import re
from typing import TYPE_CHECKING, Final, TypeAlias

import pglast
from pglast import ast as sql_ast
from pglast.enums import SetOperation, SubLinkType

from outbox_guardrails.model import Rule
from outbox_guardrails.rules._util import Scope, finding, relation_name, scoped

if TYPE_CHECKING:
    from collections.abc import Iterator

    from outbox_guardrails.model import Finding
    from outbox_guardrails.tree import PythonModule, Tree

RULE: Final = Rule(
    id="OBX006",
    name="dispatching-insert",
    summary="No INSERT INTO payment_outbox_attempts of the state 'DISPATCHING'.",
    anti_pattern=(
        "DISPATCHING is a historical state: in the lease model in-flight is lease state on "
        "the pending row, and a new DISPATCHING attempt is a ledger entry nothing completes."
    ),
    best_practice=(
        "Record outcomes only through complete_outbox_attempt and repair_expired_leases; "
        "read historical DISPATCHING rows, never write new ones."
    ),
)
LEDGER: Final = "payment_outbox_attempts"
STATE: Final = "DISPATCHING"
SQL_KEYWORDS: Final = frozenset({"query", "sql", "statement", "operation"})
PARAMS_KEYWORDS: Final = frozenset({"params", "parameters", "args", "vars", "values"})
# How far a value is followed through CTEs and subqueries; CTEs can be recursive.
MAX_DEPTH: Final = 8
_PLACEHOLDER: Final = re.compile(r"%\((\w+)\)s|%s|%%|\{\w*\}")

# A value that reaches an inserted column: a constant, or a placeholder ($n).
Leaf: TypeAlias = "sql_ast.A_Const | sql_ast.ParamRef"


def check(tree: Tree) -> Iterator[Finding]:
    """DISPATCHING inserted by SQL text anywhere, and bound to an INSERT's placeholder in Python."""
    for statement in tree.sql_statements:
        if any(_is_state(leaf) for leaf in _inserted_leaves(statement.node)):
            yield finding(
                RULE, statement.source, statement.line, detail=f"'{STATE}' inserted into {LEDGER}"
            )
    for module in tree.python_modules:
        yield from _bound_in_python(module)


def _is_state(leaf: Leaf) -> bool:
    return isinstance(leaf, sql_ast.A_Const) and getattr(leaf.val, "sval", None) == STATE


def _inserted_leaves(root: sql_ast.Node) -> Iterator[Leaf]:
    """Every constant or placeholder that can become a column value of an INSERT INTO the ledger."""
    for node, scope in scoped(root):
        if not isinstance(node, sql_ast.InsertStmt) or relation_name(node.relation) != LEDGER:
            continue
        if node.selectStmt is not None:
            yield from _select_leaves(node.selectStmt, scope, MAX_DEPTH)
        conflict = node.onConflictClause
        for target in getattr(conflict, "targetList", None) or ():
            yield from _leaves(target.val, (), scope, MAX_DEPTH)


def _select_leaves(select: sql_ast.Node, scope: Scope, depth: int) -> Iterator[Leaf]:
    """The value positions of a SELECT or VALUES: never its WHERE, JOIN or CASE conditions."""
    if not isinstance(select, sql_ast.SelectStmt) or depth <= 0:
        return
    scope = _with_ctes(select, scope)
    if select.op != SetOperation.SETOP_NONE:
        yield from _select_leaves(select.larg, scope, depth - 1)
        yield from _select_leaves(select.rarg, scope, depth - 1)
        return
    for row in select.valuesLists or ():
        for value in row:
            yield from _leaves(value, (), scope, depth)
    for target in select.targetList or ():
        yield from _leaves(target.val, select.fromClause or (), scope, depth)


def _leaves(
    expr: sql_ast.Node | None, sources: tuple[sql_ast.Node, ...], scope: Scope, depth: int
) -> Iterator[Leaf]:
    """The constants and placeholders an expression can evaluate to, following column references."""
    if isinstance(expr, (sql_ast.A_Const, sql_ast.ParamRef)):
        yield expr
    elif isinstance(expr, sql_ast.TypeCast):
        yield from _leaves(expr.arg, sources, scope, depth)
    elif isinstance(expr, sql_ast.CaseExpr):
        for when in expr.args or ():
            yield from _leaves(when.result, sources, scope, depth)
        yield from _leaves(expr.defresult, sources, scope, depth)
    elif isinstance(expr, (sql_ast.CoalesceExpr, sql_ast.MinMaxExpr)):
        for arg in expr.args or ():
            yield from _leaves(arg, sources, scope, depth)
    elif isinstance(expr, sql_ast.SubLink) and expr.subLinkType == SubLinkType.EXPR_SUBLINK:
        yield from _select_leaves(expr.subselect, scope, depth - 1)
    elif isinstance(expr, sql_ast.ColumnRef) and depth > 0:
        yield from _column_leaves(_column_name(expr), sources, scope, depth - 1)


def _column_leaves(
    name: str | None, sources: tuple[sql_ast.Node, ...], scope: Scope, depth: int
) -> Iterator[Leaf]:
    """What column `name` (None: every column) of a FROM item (a CTE or subquery) can hold."""
    for select in _feeding_selects(sources, scope):
        select_scope = _with_ctes(select, scope)
        if select.valuesLists:
            yield from _select_leaves(select, scope, depth)
            continue
        for target in select.targetList or ():
            if isinstance(target.val, sql_ast.ColumnRef) and _column_name(target.val) is None:
                # `s.*` passes the columns of its own FROM items through.
                yield from _column_leaves(name, select.fromClause or (), select_scope, depth - 1)
            elif name is None or _output_name(target) in {name, ""}:
                yield from _leaves(target.val, select.fromClause or (), select_scope, depth)


def _column_name(column: sql_ast.ColumnRef) -> str | None:
    """The column a reference names; None for a star."""
    last = column.fields[-1] if column.fields else None
    return getattr(last, "sval", None)


def _feeding_selects(
    sources: tuple[sql_ast.Node, ...], scope: Scope
) -> Iterator[sql_ast.SelectStmt]:
    pending = list(sources)
    while pending:
        item = pending.pop()
        if isinstance(item, sql_ast.RangeSubselect):
            query = item.subquery
        elif isinstance(item, sql_ast.RangeVar) and not item.schemaname:
            query = scope.get(item.relname or "")
        elif isinstance(item, sql_ast.JoinExpr):
            pending.extend((item.larg, item.rarg))
            continue
        else:
            continue
        if isinstance(query, sql_ast.SelectStmt):
            yield from _set_branches(query)


def _set_branches(select: sql_ast.SelectStmt) -> Iterator[sql_ast.SelectStmt]:
    if select.op == SetOperation.SETOP_NONE:
        yield select
    else:
        yield from _set_branches(select.larg)
        yield from _set_branches(select.rarg)


def _output_name(target: sql_ast.ResTarget) -> str:
    """The name a SELECT output goes by; "" when PostgreSQL would invent one (it may be any)."""
    if target.name:
        return str(target.name)
    if isinstance(target.val, sql_ast.ColumnRef):
        return _column_name(target.val) or ""
    return ""


def _with_ctes(node: sql_ast.Node, scope: Scope) -> Scope:
    with_clause = getattr(node, "withClause", None)
    if isinstance(with_clause, sql_ast.WithClause):
        return {**scope, **{cte.ctename: cte.ctequery for cte in with_clause.ctes}}
    return scope


# --- Python: a placeholder of the INSERT bound to "DISPATCHING" in the same call ---------------


def _bound_in_python(module: PythonModule) -> Iterator[Finding]:
    constants = _string_constants(module.module)
    for call in ast.walk(module.module):
        if not isinstance(call, ast.Call):
            continue
        for index, sql_arg in _sql_arguments(call):
            texts = _sql_texts(sql_arg, constants)
            params = _params_argument(call, index)
            if params is None:
                continue
            for text in texts:
                for slot in _dispatching_slots(text):
                    for value in _bound_values(params, slot):
                        yield finding(
                            RULE,
                            module.source,
                            value.lineno,
                            value.col_offset + 1,
                            detail=f"'{STATE}' bound to a placeholder of INSERT INTO {LEDGER}",
                        )


def _sql_arguments(call: ast.Call) -> Iterator[tuple[int | None, ast.expr]]:
    """(position or None for a keyword, argument) of what may be SQL text: literals and names."""
    for index, arg in enumerate(call.args):
        if _maybe_sql(arg):
            yield index, arg
    for keyword in call.keywords:
        if keyword.arg in SQL_KEYWORDS and _maybe_sql(keyword.value):
            yield None, keyword.value


def _sql_texts(node: ast.expr, constants: dict[str, list[str]]) -> list[str]:
    """The SQL an argument stands for: its literal, or every string its name is assigned."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    return constants.get(node.id, []) if isinstance(node, ast.Name) else []


def _maybe_sql(node: ast.expr) -> bool:
    return isinstance(node, ast.Name) or (
        isinstance(node, ast.Constant) and isinstance(node.value, str)
    )


def _params_argument(call: ast.Call, sql_index: int | None) -> ast.expr | None:
    """The parameters passed with the SQL: the next positional argument, or a params keyword."""
    if sql_index is not None and sql_index + 1 < len(call.args):
        return call.args[sql_index + 1]
    return next((k.value for k in call.keywords if k.arg in PARAMS_KEYWORDS), None)


def _string_constants(module: ast.Module) -> dict[str, list[str]]:
    """Names assigned a string literal anywhere in the module (`INSERT_SQL = "..."`)."""
    found: dict[str, list[str]] = {}
    for node in ast.walk(module):
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        else:
            continue
        if isinstance(value, ast.Constant) and isinstance(value.value, str):
            for target in targets:
                if isinstance(target, ast.Name):
                    found.setdefault(target.id, []).append(value.value)
    return found


def _dispatching_slots(text: str) -> set[int | str]:
    """Parameter positions (or names) of `text` whose values an INSERT INTO the ledger stores."""
    if LEDGER not in text.lower():
        return set()
    numbered, slots = _number_placeholders(text)
    try:
        statements = pglast.parse_sql(numbered)
    except pglast.parser.ParseError:
        return set()
    return {
        slots.get(leaf.number, leaf.number - 1)
        for raw in statements
        for leaf in _inserted_leaves(raw.stmt)
        if isinstance(leaf, sql_ast.ParamRef)
    }


def _number_placeholders(text: str) -> tuple[str, dict[int, int | str]]:
    """Driver placeholders as $n, with what each $n is bound to: a position or a dict key."""
    slots: dict[int, int | str] = {}
    names: dict[str, int] = {}
    positional = 0

    def replace(match: re.Match[str]) -> str:
        nonlocal positional
        placeholder = match.group(0)
        if placeholder == "%%":
            return "%"
        if placeholder.startswith("{"):
            return "placeholder"
        if match.group(1):
            number = names.setdefault(match.group(1), len(slots) + 1)
            slots[number] = match.group(1)
            return f"${number}"
        number = len(slots) + 1
        slots[number] = positional
        positional += 1
        return f"${number}"

    return _PLACEHOLDER.sub(replace, text), slots


def _bound_values(params: ast.expr, slot: int | str) -> Iterator[ast.expr]:
    """The DISPATCHING value(s) bound to `slot` by a literal container (a row, or rows)."""
    rows: list[ast.expr] = [params]
    if (
        isinstance(params, (ast.List, ast.Tuple))
        and params.elts
        and all(isinstance(e, (ast.List, ast.Tuple, ast.Dict)) for e in params.elts)
    ):
        rows = list(params.elts)
    for row in rows:
        value = _slot_value(row, slot)
        if value is not None and _says_dispatching(value):
            yield value


def _slot_value(row: ast.expr, slot: int | str) -> ast.expr | None:
    if isinstance(row, (ast.List, ast.Tuple)) and isinstance(slot, int) and slot < len(row.elts):
        return row.elts[slot]
    if isinstance(row, ast.Dict) and isinstance(slot, str):
        for key, value in zip(row.keys, row.values, strict=True):
            if isinstance(key, ast.Constant) and key.value == slot:
                return value
    if isinstance(row, ast.Call) and isinstance(slot, str):  # dict(state=...)
        return next((k.value for k in row.keywords if k.arg == slot), None)
    return None


def _says_dispatching(value: ast.expr) -> bool:
    """The string DISPATCHING, or an enum member of that name (AttemptState.DISPATCHING)."""
    return any(
        (isinstance(node, ast.Constant) and node.value == STATE)
        or (isinstance(node, ast.Attribute) and node.attr == STATE)
        for node in ast.walk(value)
    )
