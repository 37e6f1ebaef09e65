"""OBX008 security-definer: functions under schema/ pin search_path and are closed to PUBLIC.

Anti-pattern: a function under ``schema/`` (our SECURITY DEFINER write path runs as
``outbox_owner``) that resolves names through a ``search_path`` its caller controls, or that
any role can execute. Without ``SET search_path``, or with a path listing a schema someone
else can create objects in, a caller can plant a function, operator or table that the
definer's code then runs with the owner's rights (CVE-2018-1058). Without ``pg_temp`` listed
last, PostgreSQL searches the caller's temporary schema first. PostgreSQL grants EXECUTE to
PUBLIC on every new function, so one that is never revoked is callable by every login role,
whatever ``symphony_executor``'s grants say. ``CREATE OR REPLACE`` / ``IF NOT EXISTS`` in a
schema others could write to adopts an object an attacker may have created first.

Best practice: ``SET search_path = pg_catalog, pg_temp`` on every function (the trusted
schemas are exactly ``pg_catalog`` and ``pg_temp``, pg_temp last: every outbox object is
schema-qualified, ``public.x``, so no function needs more; ``public`` is left out because its
safety would then rest on who holds CREATE on it), ``REVOKE ALL ON FUNCTION f(...) FROM
PUBLIC`` later in the same file and ``GRANT EXECUTE`` to the one role that needs it; top-level
migration statements schema-qualified or run under ``SET LOCAL search_path = pg_catalog,
pg_temp``.

How: pgspot (0.9.4, through its Python API) reads each ``.sql`` file under ``schema/`` and
reports unqualified operators, calls and types where the search_path is not pinned, and
unsafe ``CREATE OR REPLACE`` / ``IF NOT EXISTS``; its code and message become the detail and
its statement the line (the first token, not the comments before it). pgspot's function
search_path codes (PS003, PS004, PS005) are off because our own check below reports the same
functions under a stricter rule (pgspot also trusts schemas the script creates, and asks
nothing of a non-definer function in another language), so each problem is reported once.
Ours add what pgspot does not check: that strict trusted-schema list for every function,
``ALTER FUNCTION ... RESET search_path`` and friends, EXECUTE still held by PUBLIC at the end
of the file, and ``GRANT ... TO PUBLIC`` on a function.
"""

from __future__ import annotations

import argparse
import re
from typing import TYPE_CHECKING, Final, TypeAlias

from pglast import ast as sql_ast
from pglast.enums import (
    FunctionParameterMode,
    GrantTargetType,
    ObjectType,
    RoleSpecType,
    VariableSetKind,
)
from pgspot.codes import codes as pgspot_codes  # type: ignore[import-untyped]
from pgspot.state import Counter, State  # type: ignore[import-untyped]
from pgspot.visitors import visit_sql  # type: ignore[import-untyped]

from outbox_guardrails.model import Rule
from outbox_guardrails.rules._util import finding

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from outbox_guardrails.model import Finding
    from outbox_guardrails.sources import SourceFile
    from outbox_guardrails.tree import SqlStatement, Tree

RULE: Final = Rule(
    id="OBX008",
    name="security-definer",
    summary="Schema functions pin search_path (pg_temp last) and are not executable by PUBLIC.",
    anti_pattern=(
        "A SECURITY DEFINER function that resolves names through the caller's search_path, or "
        "that PUBLIC may execute, lets any role run planted code with the owner's rights."
    ),
    best_practice=(
        "SET search_path = pg_catalog, pg_temp on every function, schema-qualify every object, "
        "REVOKE ALL ON FUNCTION ... FROM PUBLIC, GRANT EXECUTE to the one role that needs it."
    ),
)
# Schemas a function's search_path may list: nobody but the superuser creates objects in
# pg_catalog, and pg_temp is the session's own (harmless only when it comes last).
TRUSTED_SCHEMAS: Final = frozenset({"pg_catalog", "pg_temp"})
PINNED: Final = "SET search_path = pg_catalog, pg_temp"
ROUTINES: Final = frozenset(
    {ObjectType.OBJECT_FUNCTION, ObjectType.OBJECT_PROCEDURE, ObjectType.OBJECT_ROUTINE}
)
SIGNATURE_MODES: Final = frozenset(
    {
        FunctionParameterMode.FUNC_PARAM_IN,
        FunctionParameterMode.FUNC_PARAM_INOUT,
        FunctionParameterMode.FUNC_PARAM_VARIADIC,
        FunctionParameterMode.FUNC_PARAM_DEFAULT,
    }
)
# pgspot codes our stricter search_path check replaces (see the module docstring).
PGSPOT_IGNORED: Final = ("PS003", "PS004", "PS005")
# Whitespace and comments between the previous statement's end and the next one's first token.
_GAP: Final = re.compile(r"(?:\s+|--[^\n]*|/\*.*?\*/)*", re.DOTALL)

# An argument type in a signature: its unqualified lower-case name and its array dimensions.
TypeKey: TypeAlias = tuple[str, int]


def check(tree: Tree) -> Iterator[Finding]:
    """The findings of pgspot, and ours, for each .sql file under schema/."""
    by_path: dict[str, list[SqlStatement]] = {}
    for statement in tree.sql_statements:
        if statement.origin == "sql-file":
            by_path.setdefault(statement.source.path, []).append(statement)
    for source in tree.files:
        if source.under_schema and source.suffix == ".sql":
            statements = by_path.get(source.path, [])
            yield from _pgspot(source)
            yield from _search_paths(statements)
            yield from _public_execute(statements)


# --- pgspot ------------------------------------------------------------------------------------


class _Collector(Counter):  # type: ignore[misc]  # pgspot is untyped
    """pgspot's counter, keeping each issue with its line instead of printing it."""

    def __init__(self) -> None:
        options = argparse.Namespace(
            ignore=list(PGSPOT_IGNORED), ignore_lang=[], proc_without_search_path=[], sql_fn=[],
            summary_only=False, plpgsql=True, append=False, explain=None, files=[],
        )  # fmt: skip
        super().__init__(options)
        self.issues: list[tuple[int, str]] = []

    def print_issue(self, code: str, context: str) -> None:
        title = pgspot_codes.get(code, {}).get("title")
        message = f"{code} {title}: {context}" if title else f"pgspot: {code} {context}".rstrip()
        self.issues.append((self.statement_line(), message))

    def unknown(self, message: str) -> None:
        self.unknowns += 1
        self.issues.append((self.statement_line(), f"pgspot cannot judge this: {message}"))

    def statement_line(self) -> int:
        """The line of the current statement's first token (pgspot's own includes comments)."""
        start = _GAP.match(self.sql, self.stmt_location)
        return 1 + str(self.sql).count("\n", 0, start.end() if start else self.stmt_location)


def _pgspot(source: SourceFile) -> Iterator[Finding]:
    collector = _Collector()
    try:
        visit_sql(State(collector), source.text, toplevel=True)
    except Exception as error:  # noqa: BLE001 - pgspot raises bare exceptions on what it cannot read
        collector.issues.append(
            (collector.statement_line(), f"pgspot failed: {type(error).__name__}: {error}")
        )
    for line, message in collector.issues:
        yield finding(RULE, source, line, detail=message)


# --- pinned search_path ------------------------------------------------------------------------


def _search_paths(statements: Sequence[SqlStatement]) -> Iterator[Finding]:
    for statement in statements:
        node = statement.node
        if isinstance(node, sql_ast.CreateFunctionStmt):
            setting = next(
                (
                    o.arg
                    for o in node.options or ()
                    if o.defname == "set" and o.arg.name == "search_path"
                ),
                None,
            )
            problem = _path_problem(setting)
            if problem:
                yield finding(
                    RULE,
                    statement.source,
                    statement.line,
                    detail=f"{_name(node.funcname)}: {problem}",
                )
        elif isinstance(node, sql_ast.AlterFunctionStmt):
            for action in node.actions or ():
                setting = action.arg if action.defname == "set" else None
                if isinstance(setting, sql_ast.VariableSetStmt) and setting.name in {
                    "search_path",
                    None,
                }:
                    problem = _path_problem(setting)
                    if problem:
                        detail = f"ALTER {_name(node.func.objname)}: {problem}"
                        yield finding(RULE, statement.source, statement.line, detail=detail)


def _path_problem(setting: sql_ast.VariableSetStmt | None) -> str:
    """Why a function's search_path setting is not pinned to trusted schemas ("" when it is)."""
    if setting is None:
        return f"search_path not pinned: add {PINNED}"
    if setting.kind != VariableSetKind.VAR_SET_VALUE or not setting.args:
        return f"search_path reset, default or FROM CURRENT (the caller's): use {PINNED}"
    schemas = [str(getattr(arg.val, "sval", "")) for arg in setting.args]
    untrusted = [schema for schema in schemas if schema not in TRUSTED_SCHEMAS]
    if untrusted:
        return f"search_path lists {', '.join(untrusted)}: only pg_catalog and pg_temp are trusted"
    if schemas[-1] != "pg_temp":
        return f"pg_temp must come last, or the caller's temporary objects come first: {PINNED}"
    return ""


# --- EXECUTE for PUBLIC ------------------------------------------------------------------------


def _public_execute(statements: Sequence[SqlStatement]) -> Iterator[Finding]:
    for index, statement in enumerate(statements):
        node = statement.node
        if isinstance(node, sql_ast.CreateFunctionStmt):
            name, schema, arguments = _identity(node)
            later = [
                s.node for s in statements[index + 1 :] if isinstance(s.node, sql_ast.GrantStmt)
            ]
            if not any(_revokes(grant, name, schema, arguments) for grant in later):
                kind = "PROCEDURE" if node.is_procedure else "FUNCTION"
                label = _name(node.funcname)
                detail = (
                    f"{label} is still executable by PUBLIC: add REVOKE ALL ON {kind} {label}(...) "
                    "FROM PUBLIC after it in this file"
                )
                yield finding(RULE, statement.source, statement.line, detail=detail)
        elif _grants_to_public(node):
            yield finding(
                RULE, statement.source, statement.line, detail="EXECUTE granted to PUBLIC"
            )


def _revokes(
    grant: sql_ast.GrantStmt, name: str, schema: str | None, arguments: tuple[TypeKey, ...]
) -> bool:
    """Whether `grant` is a REVOKE ALL/EXECUTE from PUBLIC covering the function."""
    if grant.is_grant or grant.objtype not in ROUTINES or not _to_public(grant):
        return False
    if grant.privileges and not any(p.priv_name == "execute" for p in grant.privileges):
        return False
    if grant.targtype == GrantTargetType.ACL_TARGET_ALL_IN_SCHEMA:
        return schema is None or schema in {getattr(s, "sval", None) for s in grant.objects or ()}
    for target in grant.objects or ():
        target_name = str(target.objname[-1].sval).lower()
        if target_name == name and (
            target.args_unspecified or _types(target.objargs or ()) == arguments
        ):
            return True
    return False


def _grants_to_public(node: sql_ast.Node) -> bool:
    return (
        isinstance(node, sql_ast.GrantStmt)
        and bool(node.is_grant)
        and node.objtype in ROUTINES
        and _to_public(node)
    )


def _to_public(grant: sql_ast.GrantStmt) -> bool:
    return any(role.roletype == RoleSpecType.ROLESPEC_PUBLIC for role in grant.grantees or ())


def _identity(node: sql_ast.CreateFunctionStmt) -> tuple[str, str | None, tuple[TypeKey, ...]]:
    """(name, schema or None, signature argument types) of a created function."""
    parts = [str(part.sval) for part in node.funcname]
    parameters = [p for p in node.parameters or () if p.mode in SIGNATURE_MODES]
    schema = parts[-2] if len(parts) > 1 else None
    return parts[-1].lower(), schema, _types([p.argType for p in parameters])


def _types(types: Sequence[sql_ast.TypeName]) -> tuple[TypeKey, ...]:
    """Argument types as the parser names them, unqualified (integer and int4 are both int4)."""
    return tuple((str(t.names[-1].sval).lower(), len(t.arrayBounds or ())) for t in types)


def _name(parts: Sequence[sql_ast.String]) -> str:
    return ".".join(str(part.sval) for part in parts)
