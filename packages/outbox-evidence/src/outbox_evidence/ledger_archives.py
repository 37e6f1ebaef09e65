"""Archived ledger months put back for verification: the rows live and archived, verified together.

`outbox-db archive` moves a month's rows, with their digests, to a file and records the
file's name, row count and SHA-256 in outbox_ledger_archives, a digested table whose rows the
checkpoints seal like the ledger's. A verifier given the archive directory reads each file the
log names (never another) and puts its rows back; every row is then checked against the
checkpoints as before, so a row altered, dropped or forged in a file is named like one in the
database. A file missing, or not the one recorded, is a problem itself. A row whose digest
left the database with its month (`Archived.only_in_files`) can never be sealed later: if no
checkpoint sealed it first, nothing but the operator's archive log vouches for it, and the
verifier says so.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Final

import attrs

from outbox_db.archiving import parse_archive

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from outbox_db.digests import DigestedRow

__all__ = ["ARCHIVE_LOG", "Archived", "with_archives"]

ARCHIVE_LOG: Final = "outbox_ledger_archives"
# outbox_ledger_archive_fields (0019): version, entry_no, month, file_name, row_count, sha256, ...
_FILE, _ROWS, _SHA256 = 3, 4, 5


@attrs.frozen
class Archived:
    """The rows live and archived, the archives' problems, and the rows only the files hold."""

    rows: list[DigestedRow]
    problems: list[str]
    only_in_files: frozenset[tuple[str, str]]  # (table, key) of rows the database no longer has


def with_archives(
    rows: Sequence[DigestedRow],
    directory: Path | None,
    logged_elsewhere: Sequence[DigestedRow] = (),
) -> Archived:
    """`rows` with each archived row read back from its file, where the database lacks it.

    The files are those the archive log rows in `rows` and `logged_elsewhere` name (log rows
    already verified, not to be verified again). Without a directory, `rows` as they are, and
    a problem for each archive the log names: an archived row then reads as deleted if a
    checkpoint sealed it, and not at all if none did.
    """
    merged = {(row.source, row.row_key): row for row in rows}
    logged = [
        r.fields
        for r in (*rows, *logged_elsewhere)
        if r.source == ARCHIVE_LOG and r.fields is not None
    ]
    if directory is None:
        unread = [f"archive {f[_FILE]}: not verified (no archive directory given)" for f in logged]
        return Archived(list(rows), unread, frozenset())
    problems: list[str] = []
    only_in_files: set[tuple[str, str]] = set()
    for fields in logged:
        archived, found = _archive(directory, fields)
        problems += found
        for row in archived:
            key = (row.source, row.row_key)
            live = merged.get(key)
            if live is None:
                merged[key] = row
                only_in_files.add(key)
            elif live.fields is None:
                merged[key] = attrs.evolve(live, fields=row.fields)
    return Archived(list(merged.values()), problems, frozenset(only_in_files))


def _archive(directory: Path, fields: Sequence[str | None]) -> tuple[list[DigestedRow], list[str]]:
    name, count, sha256 = fields[_FILE], fields[_ROWS], fields[_SHA256]
    path = directory / str(name)
    if path.name != name:  # a log row naming "../x" reads nothing outside the directory
        return [], [f"archive {name!r}: not a file name"]
    if not path.is_file():
        return [], [f"archive {name}: not in {directory}"]
    problems = []
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != sha256:
        problems.append(f"archive {name}: its SHA-256 is not the one recorded ({sha256})")
    try:
        archived = parse_archive(data)
    except (OSError, ValueError, KeyError, EOFError) as error:
        return [], [*problems, f"archive {name}: unreadable ({error})"]
    if str(len(archived)) != count:
        problems.append(f"archive {name}: {len(archived)} rows, {count} recorded")
    return archived, problems
