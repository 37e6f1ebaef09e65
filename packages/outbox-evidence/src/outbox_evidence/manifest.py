"""The reviewed map from invariants to the tests that prove them (proofs.toml at the root)."""

from __future__ import annotations

import tomllib
from typing import TYPE_CHECKING, Any, Final

import attrs

from outbox_evidence.text import display_path, reason

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["Invariant", "Manifest", "ManifestError", "SqlState", "load_manifest", "parse_manifest"]

INVARIANT_KEYS: Final = frozenset({"id", "title", "sqlstate", "proofs", "logs"})


class ManifestError(Exception):
    """The manifest cannot be read, or does not say what an auditor needs."""


@attrs.frozen
class SqlState:
    """A SQLSTATE the proofs assert, and what it means."""

    code: str
    meaning: str


@attrs.frozen
class Invariant:
    """One promise of the outbox and the pytest node ids that prove it."""

    id: str
    title: str
    sqlstate: str  # "" when the proofs assert an outcome rather than a refusal
    proofs: tuple[str, ...]
    logs: bool = False  # the bundle also carries the proofs' captured output


@attrs.frozen
class Manifest:
    """The SQLSTATE map and the invariants, in the order the file gives them."""

    sqlstates: tuple[SqlState, ...]
    invariants: tuple[Invariant, ...]

    def expecting(self, code: str) -> list[Invariant]:
        """The invariants whose proofs assert `code`."""
        return [invariant for invariant in self.invariants if invariant.sqlstate == code]


def load_manifest(path: Path) -> Manifest:
    """Read and check the manifest at `path`; ManifestError says what is wrong and where."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        msg = f"{display_path(path)}: {reason(error)}"
        raise ManifestError(msg) from error
    try:
        return parse_manifest(data)
    except ManifestError as error:
        msg = f"{display_path(path)}: {error}"
        raise ManifestError(msg) from error


def parse_manifest(data: dict[str, Any]) -> Manifest:
    """The manifest a parsed TOML document describes."""
    codes = data.get("sqlstates", {})
    _require(isinstance(codes, dict), "[sqlstates] must be a table of code = meaning")
    sqlstates = tuple(
        SqlState(code=code, meaning=_text(codes, code, "[sqlstates]")) for code in codes
    )
    tables = data.get("invariant", [])
    _require(isinstance(tables, list) and tables, "no [[invariant]] entries")
    invariants = tuple(_invariant(table, {s.code for s in sqlstates}) for table in tables)
    ids = [invariant.id for invariant in invariants]
    duplicated = sorted({i for i in ids if ids.count(i) > 1})
    _require(not duplicated, f"invariant ids used twice: {', '.join(duplicated)}")
    return Manifest(sqlstates=sqlstates, invariants=invariants)


def _invariant(table: object, codes: set[str]) -> Invariant:
    if not isinstance(table, dict):
        msg = "each [[invariant]] must be a table"
        raise ManifestError(msg)
    where = f"invariant {table.get('id', '?')!r}"
    unknown = sorted(set(table) - INVARIANT_KEYS)
    _require(not unknown, f"{where}: unknown keys {', '.join(unknown)}")
    sqlstate = table.get("sqlstate", "")
    _require(
        sqlstate == "" or sqlstate in codes, f"{where}: sqlstate {sqlstate!r} not in [sqlstates]"
    )
    proofs = table.get("proofs") or []
    _require(
        isinstance(proofs, list) and proofs and all(isinstance(p, str) and p for p in proofs),
        f"{where}: proofs must be a non-empty list of pytest node ids",
    )
    _require(isinstance(table.get("logs", False), bool), f"{where}: logs must be true or false")
    return Invariant(
        id=_text(table, "id"),
        title=_text(table, "title", where),
        sqlstate=sqlstate,
        proofs=tuple(proofs),
        logs=table.get("logs", False),
    )


def _text(table: dict[str, Any], key: str, where: str = "") -> str:
    value = table.get(key)
    _require(isinstance(value, str) and value.strip() != "", f"{where or key}: {key} must be text")
    return str(value)


def _require(condition: object, message: str) -> None:
    if not condition:
        raise ManifestError(message)
