"""Archive ledger months past retention (schema 0019): detach, write, record, then drop.

A month leaves the hot ledger only when it is older than the months kept and none of its items
is still pending. Its rows, with the digests written with them, go to one reproducible file
(`ledger-YYYY-MM.jsonl.gz`: the same rows always give the same bytes), whose SHA-256 and row
count the database records in its append-only, digested archive log, so the file joins the
tamper-evident chain. Only then, and only when asked, is the detached table dropped.

Each step can be resumed: a month detached but not recorded is written and recorded on the
next run, one recorded but not dropped is dropped once its file is found with the recorded hash.
The files carry each payload as its SHA-256, never the payload: no account number leaves the
database this way (docs/operations.md, "Retention and archive").
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import os
import time
from importlib import resources
from typing import TYPE_CHECKING, Final

import attrs
import psycopg

from outbox_db._catalogue import load
from outbox_db._month_calls import LEGACY_MONTH
from outbox_db.digests import row_digest, row_from_json, row_to_json
from outbox_db.errors import (
    DatabaseTimeout,
    LedgerMonthRefused,
    OutboxError,
    sendable_url,
    translate,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from pathlib import Path

    from outbox_db.digests import DigestedRow, LedgerMonth
    from outbox_db.store import OutboxStore

__all__ = [
    "DEFAULT_KEEP_MONTHS",
    "MIN_KEEP_MONTHS",
    "ArchiveError",
    "ArchivePolicy",
    "ArchivedMonth",
    "archive_file_name",
    "archive_ledger",
    "parse_archive",
    "read_archive",
    "restore_archive",
    "write_archive",
]

# PCI DSS v4.0 10.5.1 keeps audit logs twelve months, the last three immediately available.
DEFAULT_KEEP_MONTHS: Final = 12
MIN_KEEP_MONTHS: Final = 3
# DETACH waits at most 1 s for the ledger's lock (0019); a busy ledger gets a few more tries.
DETACH_TRIES: Final = 5
SHOWN_ROWS: Final = 5  # rows an error names before "..."
LEDGER: Final = "payment_outbox_attempts"
_RESTORE: Final = load(resources.files("outbox_db").joinpath("sql/restore.sql").read_text())


class ArchiveError(OutboxError):
    """A month cannot be archived safely: its rows do not match their digests, or its file."""


@attrs.frozen
class ArchivedMonth:
    """What one run did to one month."""

    month: str
    path: Path
    rows: int
    sha256: str
    dropped: bool


def archive_file_name(month: str) -> str:
    """The file a month is archived to."""
    return f"ledger-{month}.jsonl.gz"


def write_archive(rows: Sequence[DigestedRow], path: Path) -> str:
    """Write `rows` as one JSON line each, gzip without a time or a name; return the SHA-256.

    Written to a temporary file, flushed to disk, then renamed: a crash leaves the old file or
    the new one, never half of one.
    """
    data = gzip.compress("".join(f"{row_to_json(row)}\n" for row in rows).encode(), mtime=0)
    partial = path.with_name(f"{path.name}.partial")
    with partial.open("wb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())
    partial.replace(path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
    return hashlib.sha256(data).hexdigest()


def read_archive(path: Path) -> list[DigestedRow]:
    """An archive file's rows."""
    return parse_archive(path.read_bytes())


def parse_archive(data: bytes) -> list[DigestedRow]:
    """The rows of an archive file's bytes (for a caller that also hashes them)."""
    return [row_from_json(line) for line in gzip.decompress(data).decode().splitlines() if line]


@attrs.frozen(kw_only=True)
class ArchivePolicy:
    """Which months an archive run takes, and whether they then leave the database."""

    keep_months: int = DEFAULT_KEEP_MONTHS  # months kept in the ledger, this one excluded
    through: str | None = None  # "YYYY-MM": no month after it (a backlog, a month per run)
    drop: bool = False  # drop each month once its file is written and recorded

    def takes(self, month: str) -> bool:
        """Whether `through` lets the run take `month` (the legacy month comes first)."""
        return self.through is None or month == LEGACY_MONTH or month <= self.through


def archive_ledger(
    store: OutboxStore,
    directory: Path,
    policy: ArchivePolicy = ArchivePolicy(),
    report: Callable[[str], None] = lambda _: None,
) -> list[ArchivedMonth]:
    """Archive every month `policy` takes (the store's role: symphony_operator)."""
    directory.mkdir(parents=True, exist_ok=True)
    kept_from = _months_before(dt.datetime.now(dt.UTC).date(), policy.keep_months)
    done = []
    for month in store.ledger_months():
        if not policy.takes(month.ledger_month):
            continue
        if month.attached:
            if month.range_end is None or month.range_end > kept_from:
                continue
            if not _detached(store, month.ledger_month, policy.keep_months, report):
                continue
        elif month.partition_name is None or (month.archive_sha256 is not None and not policy.drop):
            continue  # dropped already, or archived and kept in the database until --drop
        done.append(_finish(store, month, directory, drop=policy.drop, report=report))
    return done


def _months_before(today: dt.date, months: int) -> dt.date:
    index = today.year * 12 + today.month - 1 - months
    return dt.date(index // 12, index % 12 + 1, 1)


def _detached(
    store: OutboxStore, month: str, keep_months: int, report: Callable[[str], None]
) -> bool:
    for attempt in range(1, DETACH_TRIES + 1):
        try:
            rows = store.detach_ledger_month(month, keep_months=keep_months)
        except LedgerMonthRefused as refused:
            report(f"{month}: stays in the ledger: {refused}")
            return False
        except DatabaseTimeout:
            if attempt == DETACH_TRIES:
                raise
            report(f"{month}: the ledger is busy, trying again")
            time.sleep(attempt)
        else:
            report(f"{month}: detached, {rows} rows")
            return True
    return False  # pragma: no cover - the loop returns or raises


def _finish(
    store: OutboxStore,
    month: LedgerMonth,
    directory: Path,
    *,
    drop: bool,
    report: Callable[[str], None],
) -> ArchivedMonth:
    name = month.ledger_month
    path = directory / archive_file_name(name)
    sha256, rows = month.archive_sha256, month.archive_rows
    if sha256 is None or rows is None:
        sha256, rows = _write(store, name, path)
        record = store.record_ledger_archive(name, file_name=path.name, sha256=sha256)
        report(f"{name}: {record.row_count} rows archived to {path} (sha256 {sha256})")
    dropped = False
    if drop and month.partition_name is not None:
        _require_file(path, sha256)
        store.drop_archived_ledger_month(name)
        report(f"{name}: dropped from the database; its rows are in {path}")
        dropped = True
    return ArchivedMonth(name, path, rows, sha256, dropped)


def _write(store: OutboxStore, month: str, path: Path) -> tuple[str, int]:
    rows = store.archived_ledger_rows(month)
    _require_digests(rows, f"{month}: not archived: run outbox-evidence verify-ledger")
    return write_archive(rows, path), len(rows)


def _require_digests(rows: Sequence[DigestedRow], refusal: str) -> None:
    altered = [
        row.row_key
        for row in rows
        if row.fields is None or row.digest is None or row_digest(row.fields) != row.digest
    ]
    if altered:
        shown = ", ".join(altered[:SHOWN_ROWS]) + (" ..." if len(altered) > SHOWN_ROWS else "")
        msg = f"{len(altered)} rows do not match the digest written with them ({shown}); {refusal}"
        raise ArchiveError(msg)


def restore_archive(url: str, path: Path) -> int:
    """Load an archive file into `url`'s outbox_archived_attempts, for an audit's SQL.

    Any PostgreSQL database will do (a scratch one): the table is made if missing, and a row
    already there is kept. Every row is checked against its digest first; returns the rows
    the file holds.
    """
    rows = [row for row in read_archive(path) if row.source == LEDGER]
    _require_digests(rows, f"{path.name}: nothing restored")
    values = [(*(row.fields or ())[1:], row.row_no, row.digest, path.name) for row in rows]
    try:
        with psycopg.connect(sendable_url(url)) as connection:
            connection.execute(_RESTORE["create_archived_attempts"])
            connection.cursor().executemany(_RESTORE["insert_archived_attempt"], values)
    except psycopg.Error as error:
        raise translate(error) from error
    return len(rows)


def _require_file(path: Path, sha256: str) -> None:
    if not path.is_file() or hashlib.sha256(path.read_bytes()).hexdigest() != sha256:
        msg = (
            f"{path} is missing or differs from the archive recorded (sha256 {sha256}): not dropped"
        )
        raise ArchiveError(msg)
