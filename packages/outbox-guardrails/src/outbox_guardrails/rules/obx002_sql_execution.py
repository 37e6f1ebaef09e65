"""OBX002 sql-execution: only outbox-db opens connections, cursors and pools, or sends SQL text.

Anti-pattern: outside packages/outbox-db, tests and scripts included, a call that builds a
connection or pool from a PostgreSQL driver (``psycopg.connect(...)``,
``psycopg.Connection.connect(...)``, ``asyncpg.create_pool(...)``, ``ConnectionPool(...)``),
any ``.cursor()`` call, or an ``.execute()`` / ``.executemany()`` / ``.executescript()`` (or
asyncpg's ``.fetch*()``, ``.query()``, ``.copy()``) whose first argument is SQL text: a literal
that parses as SQL, a name bound to one in the same module, an f-string, concatenation,
``%`` or ``.format()`` template that reads as SQL, or an entry of outbox-db's private query
catalogue. SQL sent from anywhere else escapes the boundary's role handling, its typed errors
and the schema's function-only write path, and nothing reviews it with the migrations.

Best practice: call the typed ``OutboxStore`` methods, which name the DB functions; a new
query belongs in outbox-db's named catalogue behind a typed method. In a proof, use
``outbox_db.testonly.query_no_role`` / ``query_as``.
"""

from __future__ import annotations

import ast
import re
from typing import TYPE_CHECKING, Final

import attrs

from outbox_guardrails.model import Rule
from outbox_guardrails.rules._python import DRIVERS
from outbox_guardrails.rules._util import finding

if TYPE_CHECKING:
    from collections.abc import Iterator

    from outbox_guardrails.model import Finding
    from outbox_guardrails.tree import PythonModule, Tree

RULE: Final = Rule(
    id="OBX002",
    name="sql-execution",
    summary="No connection, cursor or pool built and no SQL text executed outside outbox-db.",
    anti_pattern=(
        "SQL sent from outside the DB boundary escapes its role handling, its typed and "
        "sanitised errors and the function-only write path the schema is built around."
    ),
    best_practice=(
        "Call the typed OutboxStore methods; add a new query to outbox-db's catalogue behind a "
        "typed method; in proofs use outbox_db.testonly.query_no_role / query_as."
    ),
    gated=True,
)
# Methods that send their first argument as SQL: DB-API, psycopg 3, asyncpg, PyGreSQL, pandas.
EXECUTING: Final = frozenset(
    {
        "copy",
        "copy_expert",
        "execute",
        "executemany",
        "executescript",
        "fetch",
        "fetchrow",
        "fetchval",
        "query",
        "read_sql",
        "read_sql_query",
        "stream",
    }
)
SQL_KEYWORDS: Final = frozenset({"query", "sql", "operation", "statement"})
# Pool classes forbidden by name even when their origin cannot be seen (a star import, say).
POOL_CLASSES: Final = frozenset(
    {
        "AsyncConnectionPool",
        "AsyncNullConnectionPool",
        "ConnectionPool",
        "NullConnectionPool",
        "PersistentConnectionPool",
        "SimpleConnectionPool",
        "ThreadedConnectionPool",
    }
)
# Calls that wrap SQL text and still are SQL text: psycopg.sql.SQL, sqlalchemy text, dedent, cast.
SQL_WRAPPERS: Final = frozenset({"SQL", "cast", "dedent", "text"})
CATALOGUE: Final = "outbox_db._catalogue"
# A template (f-string, concatenation, % or .format) reads as SQL when it starts like a statement:
# in any case when its shape says so; one-word commands ("analyze", "reset") only in upper case.
_SQL_TEMPLATE: Final = re.compile(
    r"""^\s*(?:
      (?i:
        SELECT\b.*\bFROM\b | INSERT\s+INTO\b | UPDATE\b.*\bSET\b | DELETE\s+FROM\b | MERGE\s+INTO\b
      | WITH\b.*\bAS\s*(?:NOT\s+)?(?:MATERIALIZED\s*)?\(
      | (?:CREATE|ALTER|DROP)\s+(?:OR\s+REPLACE\s+)?(?:\w+\s+)?
        (?:TABLE|INDEX|VIEW|FUNCTION|PROCEDURE|SCHEMA|ROLE|TYPE|SEQUENCE|TRIGGER|EXTENSION|DATABASE)\b
      | SET\s+(?:LOCAL\s+|SESSION\s+)?[\w.]+\s*(?:=|TO\b)
      )
      | TRUNCATE\s | GRANT\s | REVOKE\s | COPY\s | LOCK\s | CALL\s | RESET\s | VACUUM\b | ANALYZE\b
      | EXPLAIN\s | NOTIFY\s | LISTEN\s | SHOW\s
    )""",
    re.DOTALL | re.VERBOSE,
)
_HOLE: Final = " _ "  # what an interpolated value becomes in a template


def check(tree: Tree) -> Iterator[Finding]:
    """Connection, cursor and pool construction and SQL execution outside outbox-db."""
    literal_lines: dict[str, set[int]] = {}
    for statement in tree.sql_statements:
        if statement.origin == "python-literal":
            literal_lines.setdefault(statement.source.path, set()).add(statement.line)
    for module in tree.python_modules:
        if not module.source.in_db_package:
            yield from _check_module(module, literal_lines.get(module.source.path, set()))


def _check_module(module: PythonModule, literal_lines: set[int]) -> Iterator[Finding]:
    nodes = list(ast.walk(module.module))  # walked once: the scope and the calls read the same list
    scope = _Scope.of(nodes, literal_lines)
    for node in nodes:
        if isinstance(node, ast.Call) and (detail := _violation(node, scope)):
            line, column = _position(node.func)
            yield finding(RULE, module.source, line, column, detail)


def _violation(call: ast.Call, scope: _Scope) -> str:
    """Why `call` talks to the database directly, or "" when it does not."""
    method = _name_of(call.func) if isinstance(call.func, ast.Attribute) else ""
    if constructor := _driver_constructor(call.func, scope):
        return f"builds a connection or pool with {constructor}"
    if method == "cursor":
        return "opens a cursor"
    if method in EXECUTING and (query := _query_argument(call)) and scope.is_sql(query):
        return f"sends SQL text with .{method}()"
    return ""


def _driver_constructor(func: ast.expr, scope: _Scope) -> str:
    """The driver callable `func` names when it builds a connection, pool or cursor, else ""."""
    target = scope.resolve(func)
    if target is None:  # a pool class by name, imported where we cannot see (a star import)
        name = func.id if isinstance(func, ast.Name) else ""
        return name if name in POOL_CLASSES and name not in scope.defined else ""
    last = target.rsplit(".", 1)[-1]
    builds = last in {"connect", "create_pool", "DB"} or last.endswith(
        ("Connection", "Pool", "Cursor")
    )
    return target if builds and target.split(".")[0] in DRIVERS else ""


def _query_argument(call: ast.Call) -> ast.expr | None:
    """The argument an executing method sends as SQL: the first, or `query=` and the like."""
    if call.args:
        return call.args[0]
    return next((keyword.value for keyword in call.keywords if keyword.arg in SQL_KEYWORDS), None)


def _position(func: ast.expr) -> tuple[int, int]:
    """Line and 1-based column of the called name (the attribute's, for a method call)."""
    if (
        isinstance(func, ast.Attribute)
        and func.end_lineno is not None
        and func.end_col_offset is not None
    ):
        return func.end_lineno, func.end_col_offset - len(func.attr) + 1
    return func.lineno, func.col_offset + 1


@attrs.define
class _Scope:
    """What one module binds: imported names, its own definitions, and names holding SQL text."""

    literal_lines: set[int]  # lines where the tree found a SQL statement in a Python literal
    imports: dict[str, str] = attrs.field(factory=dict)  # local name -> dotted origin
    defined: set[str] = attrs.field(factory=set)  # classes and functions the module defines
    sql_names: set[str] = attrs.field(factory=set)  # names and attributes bound to SQL text
    sql_containers: set[str] = attrs.field(factory=set)  # names bound to collections of SQL text

    @classmethod
    def of(cls, nodes: list[ast.AST], literal_lines: set[int]) -> _Scope:
        """The imports, definitions and SQL bindings among a module's `nodes`."""
        scope = cls(literal_lines)
        for node in nodes:
            if isinstance(node, ast.Import):
                for alias in node.names:
                    local = alias.asname or alias.name.split(".")[0]
                    scope.imports[local] = alias.name if alias.asname else local
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                for alias in node.names:
                    scope.imports[alias.asname or alias.name] = f"{node.module}.{alias.name}"
            elif isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
                scope.defined.add(node.name)
        scope.bind(nodes)
        return scope

    def bind(self, nodes: list[ast.AST]) -> None:
        """Names assigned a resolvable origin or SQL text, until nothing more is learnt."""
        assignments = [
            (names, node.value)
            for node in nodes
            if isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None
            if (names := _assigned_names(node))
        ]
        learnt = True
        while learnt:
            before = (len(self.imports), len(self.sql_names), len(self.sql_containers))
            for names, value in assignments:
                self._bind(names, value)
            learnt = before != (len(self.imports), len(self.sql_names), len(self.sql_containers))

    def _bind(self, names: list[str], value: ast.expr) -> None:
        origin = self.resolve(value) if isinstance(value, ast.Name | ast.Attribute) else None
        for name in names:
            if origin is not None and name not in self.imports:
                self.imports[name] = origin
            if self.is_sql(value):
                self.sql_names.add(name)
            elif _items(value) and any(self.is_sql(item) for item in _items(value)):
                self.sql_containers.add(name)

    def resolve(self, node: ast.expr) -> str | None:
        """The dotted origin of a name or attribute chain rooted in an import, else None."""
        if isinstance(node, ast.Name):
            return self.imports.get(node.id)
        if isinstance(node, ast.Attribute) and (base := self.resolve(node.value)) is not None:
            return f"{base}.{node.attr}"
        return None

    def is_sql(self, node: ast.expr) -> bool:
        """Whether `node` is SQL text as far as this module shows."""
        if isinstance(node, ast.Constant):
            return isinstance(node.value, str) and (
                self._parsed(node) or bool(_SQL_TEMPLATE.match(node.value))
            )
        if isinstance(node, ast.Name | ast.Attribute | ast.Subscript):
            return self._holds_sql(node)
        if (
            isinstance(node, ast.BinOp)
            and isinstance(node.op, ast.Add)
            and (self.is_sql(node.left) or self.is_sql(node.right))
        ):
            return True
        if isinstance(node, ast.Call):
            return self._wraps_sql(node)
        template = _template(node)
        return template is not None and bool(_SQL_TEMPLATE.match(template))

    def _parsed(self, literal: ast.Constant) -> bool:
        """The tree parsed a SQL statement out of this literal."""
        end = literal.end_lineno or literal.lineno
        return any(line in self.literal_lines for line in range(literal.lineno, end + 1))

    def _holds_sql(self, node: ast.Name | ast.Attribute | ast.Subscript) -> bool:
        if isinstance(node, ast.Subscript):
            container = node.value
            name = _name_of(container)
            return name in self.sql_containers or _from_catalogue(self.resolve(container))
        return _name_of(node) in self.sql_names or _from_catalogue(self.resolve(node))

    def _wraps_sql(self, call: ast.Call) -> bool:
        """`"...".format()`, `sql.SQL("...")`, `text("...")`, `dedent("...")` and the like."""
        func = call.func
        if isinstance(func, ast.Attribute) and self.is_sql(func.value):
            return True
        return _name_of(func) in SQL_WRAPPERS and any(self.is_sql(arg) for arg in call.args)


def _template(node: ast.expr) -> str | None:
    """The constant text of a string template, interpolated values as holes; None if not one."""
    if isinstance(node, ast.Constant):
        return node.value if isinstance(node.value, str) else None
    if isinstance(node, ast.JoinedStr):
        return "".join(_template(part) or _HOLE for part in node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _template(node.left), _template(node.right)
        return None if left is None and right is None else (left or _HOLE) + (right or _HOLE)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod):
        return _template(node.left)
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "format"
    ):
        return _template(node.func.value)
    return None


def _assigned_names(node: ast.Assign | ast.AnnAssign) -> list[str]:
    """The names and attribute names an assignment binds (`x = ...`, `self.x = ...`)."""
    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
    return [_name_of(target) for target in targets if isinstance(target, ast.Name | ast.Attribute)]


def _name_of(node: ast.expr) -> str:
    """The last name of a name or attribute chain ("" for anything else)."""
    if isinstance(node, ast.Name):
        return node.id
    return node.attr if isinstance(node, ast.Attribute) else ""


def _items(node: ast.expr) -> list[ast.expr]:
    """The values of a literal dict, list, tuple or set."""
    if isinstance(node, ast.Dict):
        return list(node.values)
    return list(node.elts) if isinstance(node, ast.List | ast.Tuple | ast.Set) else []


def _from_catalogue(origin: str | None) -> bool:
    return origin is not None and (origin == CATALOGUE or origin.startswith(f"{CATALOGUE}."))
