"""Helpers the Python rules share: which modules a file imports, and which are database drivers."""

from __future__ import annotations

import ast
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from collections.abc import Iterator

    from outbox_guardrails.sources import SourceFile

__all__ = ["DRIVERS", "imported_modules"]

# Top-level module names of PostgreSQL drivers and their pools (PyGreSQL installs `pg` and `pgdb`).
DRIVERS: Final = frozenset(
    {
        "aiopg",
        "asyncpg",
        "pg",
        "pg8000",
        "pgdb",
        "psycopg",
        "psycopg2",
        "psycopg2cffi",
        "psycopg_binary",
        "psycopg_c",
        "psycopg_pool",
        "pygresql",
    }
)
_DYNAMIC_IMPORTS: Final = frozenset({"import_module", "__import__"})


def imported_modules(
    module: ast.Module, source: SourceFile
) -> Iterator[tuple[ast.stmt | ast.expr, list[str]]]:
    """(node, absolute dotted names) of everything `module` makes Python import.

    Import statements (``from a import b`` yields ``a`` and ``a.b``: b may be a module), relative
    imports resolved against the file's package, ``importlib.import_module`` and ``__import__``
    with a literal name, and the entries of a ``pytest_plugins`` assignment.
    """
    for node in ast.walk(module):
        if isinstance(node, ast.Import):
            yield node, [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and (names := _from_import(node, source)):
            yield node, names
        elif isinstance(node, ast.Call) and (name := _dynamic_import(node)):
            yield node, [name]
        elif isinstance(node, ast.Assign | ast.AugAssign | ast.AnnAssign) and (
            plugins := _pytest_plugins(node)
        ):
            yield node, plugins


def _from_import(node: ast.ImportFrom, source: SourceFile) -> list[str]:
    """The module of `from a import b, c` and each of a.b, a.c (either may be a module)."""
    base = _absolute(node.module or "", node.level, _package_of(source))
    if base is None:
        return []
    return [base] + [f"{base}.{alias.name}" for alias in node.names if alias.name != "*"]


def _package_of(source: SourceFile) -> list[str]:
    """The dotted package of a file: its path below `src/` (or the root), without the file."""
    parts = list(PurePosixPath(source.path).with_suffix("").parts)
    if "src" in parts:
        parts = parts[len(parts) - parts[::-1].index("src") :]
    return parts[:-1]


def _absolute(name: str, level: int, package: list[str]) -> str | None:
    """`name` imported at relative `level` from `package`; None when it climbs above the root."""
    if level == 0:
        return name
    if level - 1 > len(package):
        return None
    base = package[: len(package) - (level - 1)]
    return ".".join([*base, name] if name else base) or None


def _dynamic_import(call: ast.Call) -> str | None:
    """The module named by `import_module("x")` / `__import__("x")`, relative ones resolved."""
    func = call.func
    callee = (
        func.id
        if isinstance(func, ast.Name)
        else func.attr
        if isinstance(func, ast.Attribute)
        else ""
    )
    if callee not in _DYNAMIC_IMPORTS or not call.args:
        return None
    name = _literal(call.args[0])
    if name is None or not name.startswith("."):
        return name
    package = next((_literal(k.value) for k in call.keywords if k.arg == "package"), None)
    if package is None:
        return None
    stripped = name.lstrip(".")
    return _absolute(stripped, len(name) - len(stripped), package.split("."))


def _pytest_plugins(node: ast.Assign | ast.AugAssign | ast.AnnAssign) -> list[str]:
    """The plugin modules a `pytest_plugins = [...]` assignment names (pytest imports them)."""
    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
    if any(isinstance(target, ast.Name) and target.id == "pytest_plugins" for target in targets):
        return _string_items(node.value)
    return []


def _string_items(value: ast.expr | None) -> list[str]:
    """The string literals of a literal string, list, tuple or set."""
    items = value.elts if isinstance(value, ast.List | ast.Tuple | ast.Set) else [value]
    return [text for item in items if item is not None and (text := _literal(item)) is not None]


def _literal(node: ast.expr) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None
