"""The ledger's months (schema 0019): made ahead by the relayers, archived by the operator.

A month is "YYYY-MM", or "legacy" for the ledger as it was before 0019 (the partition of
every earlier month); the database names them by their first day ('-infinity' for legacy).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Final

import attrs

from outbox_db._gateway import Call, Statement, one_of, rows_of
from outbox_db.digests import DigestedRow, LedgerArchive, LedgerMonth
from outbox_db.errors import InvalidInput

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = [
    "LEGACY_MONTH",
    "MONTH",
    "archived_ledger_rows",
    "detach_ledger_month",
    "drop_archived_ledger_month",
    "ledger_months",
    "prepare_ledger_months",
    "record_ledger_archive",
]

LEGACY_MONTH: Final = "legacy"
MONTH: Final = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")  # "YYYY-MM"


def prepare_ledger_months(months_ahead: int) -> Call[list[str]]:
    """Make this month's partition and the next `months_ahead` months': those created."""
    made = rows_of(Statement("prepare_ledger_months", {"months_ahead": months_ahead}, _Made))
    return made.then(lambda rows: [row.partition_name for row in rows])


def ledger_months() -> Call[list[LedgerMonth]]:
    """Every month, oldest first: partition, still in the ledger or not, archive if recorded."""
    return rows_of(Statement("ledger_months", {}, LedgerMonth))


def detach_ledger_month(month: str, *, keep_months: int) -> Call[int]:
    """Take `month` out of the ledger (past `keep_months`, no item pending): its row count."""
    params: Mapping[str, object] = {"month": _first_day(month), "keep_months": keep_months}
    return one_of(Statement("detach_ledger_month", params, _Counted)).then(_count)


def archived_ledger_rows(month: str) -> Call[list[DigestedRow]]:
    """A detached month's rows with their digests, in row order: its archive file's lines."""
    return rows_of(Statement("archived_ledger_rows", {"month": _first_day(month)}, DigestedRow))


def record_ledger_archive(month: str, *, file_name: str, sha256: str) -> Call[LedgerArchive]:
    """Record a detached month's archive file (the database counts its rows)."""
    params = {"month": _first_day(month), "file_name": file_name, "sha256": sha256}
    return one_of(Statement("record_ledger_archive", params, LedgerArchive))


def drop_archived_ledger_month(month: str) -> Call[int]:
    """Drop a detached month whose archive is recorded: the rows it held."""
    statement = Statement("drop_archived_ledger_month", {"month": _first_day(month)}, _Counted)
    return one_of(statement).then(_count)


def _first_day(month: str) -> str:
    if month == LEGACY_MONTH:
        return "-infinity"
    if MONTH.match(month) is None:
        msg = f"a ledger month is YYYY-MM or {LEGACY_MONTH!r}, not {month!r}"
        raise InvalidInput(msg, sqlstate="22023", constraint=None)
    return f"{month}-01"


def _count(row: _Counted) -> int:
    return row.row_count


@attrs.frozen
class _Made:
    partition_name: str


@attrs.frozen
class _Counted:
    row_count: int
