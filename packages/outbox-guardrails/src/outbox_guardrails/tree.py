"""A scanned tree, parsed once: Python syntax trees and every SQL statement wherever it appears.

SQL is found in three places: `.sql` files, string literals in Python that parse as SQL
(psycopg placeholders and psycopg.sql braces are neutralised first), and the statements
inside PL/pgSQL function bodies and DO blocks, which pglast's PL/pgSQL parser exposes.
"""

from __future__ import annotations

import ast
import re
from functools import cached_property
from typing import TYPE_CHECKING, Any, Final

import attrs
import pglast
from pglast import ast as sql_ast

from outbox_guardrails.sources import SourceFile, list_files

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence
    from pathlib import Path

__all__ = ["PythonModule", "SqlStatement", "Tree", "sql_statements_in"]

# A literal is tried as SQL only when it starts like a statement.
_SQL_START: Final = re.compile(
    r"^\s*(SELECT|INSERT|UPDATE|DELETE|WITH|CREATE|ALTER|DROP|SET|RESET|GRANT|REVOKE|TRUNCATE|DO|CALL|"
    r"BEGIN|COMMIT|ROLLBACK|EXPLAIN|COPY|LOCK|VALUES|MERGE|SHOW|ANALYZE|VACUUM|NOTIFY|LISTEN|"
    r"PREPARE|EXECUTE|REFRESH|COMMENT)\b",
    re.IGNORECASE,
)
_PSYCOPG_NAMED: Final = re.compile(r"%\((\w+)\)s")
_PSYCOPG_POSITIONAL: Final = re.compile(r"%s")
_SQL_COMPOSED: Final = re.compile(r"\{\w*\}")


@attrs.frozen
class PythonModule:
    """A Python file and its syntax tree."""

    source: SourceFile
    module: ast.Module


@attrs.frozen
class SqlStatement:
    """One parsed SQL statement and where it came from."""

    source: SourceFile
    line: int
    node: sql_ast.Node
    origin: str  # "sql-file", "python-literal" or "plpgsql-body"


@attrs.frozen
class Tree:
    """Everything one check run looks at."""

    files: tuple[SourceFile, ...]

    @classmethod
    def load(cls, root: Path, *, only: Sequence[str] = ()) -> Tree:
        """Read the scannable files under `root`, or only those under the relative paths `only`."""
        prefixes = tuple(p.strip("/") for p in only if p.strip("/") not in {"", "."})
        files = [f for f in list_files(root) if not prefixes or _under(f.path, prefixes)]
        return cls(files=tuple(files))

    @cached_property
    def python_modules(self) -> list[PythonModule]:
        """Every Python file that parses (one that does not is the linters' business)."""
        modules = []
        for source in self.files:
            if source.suffix == ".py":
                try:
                    modules.append(PythonModule(source=source, module=ast.parse(source.text)))
                except SyntaxError:
                    continue
        return modules

    @cached_property
    def sql_statements(self) -> list[SqlStatement]:
        """Every SQL statement in .sql files, Python literals and PL/pgSQL bodies."""
        found: list[SqlStatement] = []
        for source in self.files:
            if source.suffix == ".sql":
                found.extend(
                    sql_statements_in(source, source.text, first_line=1, origin="sql-file")
                )
        for module in self.python_modules:
            for line, value in _string_literals(module.module):
                if _SQL_START.match(value):
                    found.extend(
                        sql_statements_in(
                            module.source,
                            _neutralise(value),
                            first_line=line,
                            origin="python-literal",
                        )
                    )
        return found


def sql_statements_in(
    source: SourceFile, text: str, *, first_line: int, origin: str
) -> Iterator[SqlStatement]:
    """The statements of `text` (at `first_line` of `source`), and those in function bodies."""
    try:
        raw_statements = pglast.parse_sql(text)
    except pglast.parser.ParseError:
        return
    for raw in raw_statements:
        start = _first_token(text, raw.stmt_location or 0, raw.stmt_len)
        line = first_line + text.count("\n", 0, start)
        yield SqlStatement(source=source, line=line, node=raw.stmt, origin=origin)
        end = (raw.stmt_location or 0) + raw.stmt_len if raw.stmt_len else len(text)
        yield from _plpgsql_statements(source, raw.stmt, text[start:end], line)
        yield from _sql_body_statements(source, raw.stmt, text[start:end], line, origin)


def _plpgsql_statements(
    source: SourceFile, statement: sql_ast.Node, whole: str, line: int
) -> Iterator[SqlStatement]:
    """Statements inside a PL/pgSQL function body or DO block (`whole`, at `line`)."""
    if not _is_plpgsql(statement):
        return
    try:
        parsed = pglast.parse_plpgsql(
            _do_as_function(statement) if isinstance(statement, sql_ast.DoStmt) else whole
        )
    except pglast.parser.ParseError:
        return
    body_line = line + whole[: whole.find("$")].count("\n") if "$" in whole else line
    for lineno, query in _plpgsql_queries(parsed, 1):
        for candidate in (query, f"SELECT {query}"):
            try:
                nodes = pglast.parse_sql(candidate)
            except pglast.parser.ParseError:
                continue
            for node in nodes:
                yield SqlStatement(
                    source=source,
                    line=body_line + lineno - 1,
                    node=node.stmt,
                    origin="plpgsql-body",
                )
            break


def _sql_body_statements(
    source: SourceFile, statement: sql_ast.Node, whole: str, line: int, origin: str
) -> Iterator[SqlStatement]:
    """Statements of a LANGUAGE sql function's body (`whole`, at `line`), at their own lines."""
    if not isinstance(statement, sql_ast.CreateFunctionStmt) or _language(statement) != "sql":
        return
    body = next(
        (
            o.arg[0].sval
            for o in statement.options or ()
            if isinstance(o, sql_ast.DefElem)
            and o.defname == "as"
            and isinstance(o.arg, (list, tuple))
        ),
        None,
    )
    if body and (offset := whole.find(body)) >= 0:
        yield from sql_statements_in(
            source, body, first_line=line + whole.count("\n", 0, offset), origin=origin
        )


def _language(statement: sql_ast.Node) -> str | None:
    options = getattr(statement, "options", None) or ()
    return next(
        (
            getattr(o.arg, "sval", None)
            for o in options
            if isinstance(o, sql_ast.DefElem) and o.defname == "language"
        ),
        None,
    )


def _is_plpgsql(statement: sql_ast.Node) -> bool:
    return isinstance(statement, sql_ast.DoStmt) or _language(statement) == "plpgsql"


def _do_as_function(statement: sql_ast.DoStmt) -> str:
    body = next(
        a.arg.sval
        for a in statement.args or ()
        if isinstance(a, sql_ast.DefElem) and a.defname == "as"
    )
    return f"CREATE FUNCTION do_block() RETURNS void LANGUAGE plpgsql AS $do${body}$do$"


def _plpgsql_queries(node: Any, lineno: int) -> Iterator[tuple[int, str]]:  # noqa: ANN401 - JSON from pglast
    if isinstance(node, dict):
        lineno = node.get("lineno", lineno)
        for key, value in node.items():
            if key == "PLpgSQL_expr" and isinstance(value, dict) and "query" in value:
                yield lineno, value["query"]
            else:
                yield from _plpgsql_queries(value, lineno)
    elif isinstance(node, list):
        for item in node:
            yield from _plpgsql_queries(item, lineno)


def _under(path: str, prefixes: Sequence[str]) -> bool:
    return any(path == prefix or path.startswith(f"{prefix}/") for prefix in prefixes)


def _string_literals(module: ast.Module) -> Iterator[tuple[int, str]]:
    """(line, text) of every str constant in the module."""
    for node in ast.walk(module):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            yield node.lineno, node.value


def _neutralise(literal: str) -> str:
    """Make driver placeholders parseable: %s and %(name)s become $n, {name} an identifier."""
    text = _PSYCOPG_NAMED.sub("$1", literal)
    text = _PSYCOPG_POSITIONAL.sub("$1", text)
    return _SQL_COMPOSED.sub("placeholder", text).replace("%%", "%")


def _first_token(text: str, location: int, length: int) -> int:
    """Offset of a statement's first token: pglast's location includes comments before it."""
    chunk = text[location : location + length] if length else text[location:]
    for token in pglast.parser.scan(chunk):
        if token.name not in {"SQL_COMMENT", "C_COMMENT"}:
            return location + token.start
    return location
