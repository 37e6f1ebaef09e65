"""The rows the ledger's tamper evidence covers, with the digests the database wrote for them.

Schema 0018 writes a SHA-256 of each ledger, operator-log and ordering-history row as the row
is inserted. outbox-evidence signs them in checkpoints and verifies rows against them; these
records are what it reads, through `CatalogAudit` (as the auditor role, read only). An archived
ledger month (0019) is a file of the same rows, one JSON line each (`row_to_json`).
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING

import attrs

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from datetime import date, datetime

__all__ = [
    "DigestedRow",
    "LedgerArchive",
    "LedgerMonth",
    "SealableRow",
    "SealableRows",
    "encode_fields",
    "row_digest",
    "row_from_json",
    "row_to_json",
    "sealable",
]


def encode_fields(fields: Iterable[str | None]) -> bytes:
    """The canonical encoding 0018's outbox_row_digest hashes: NULL "-", else "len:text"."""
    return "".join("-" if f is None else f"{len(f.encode())}:{f}" for f in fields).encode()


def row_digest(fields: Iterable[str | None]) -> bytes:
    """SHA-256 of a row's canonical fields: what the database wrote when it was inserted."""
    return hashlib.sha256(encode_fields(fields)).digest()


def _fields(value: Sequence[str | None] | None) -> tuple[str | None, ...] | None:
    return None if value is None else tuple(value)


def _xact(value: str | int | None) -> int | None:
    return None if value is None else int(value)


@attrs.frozen(kw_only=True)
class DigestedRow:
    """A row and its digest, matched by table and key; either side None when it is absent.

    `fields` is the row's canonical encoding as the database reads it now (None: no such row,
    it was deleted); `digest`, `row_no` and `written_by_xact` are what was written with it
    (None: the row was inserted with the digest trigger off).
    """

    source: str  # the table
    row_key: str  # its key there, as text (an attempt_id, an entry_no)
    fields: tuple[str | None, ...] | None = attrs.field(converter=_fields)
    row_no: int | None
    digest: bytes | None
    written_by_xact: int | None = attrs.field(converter=_xact)


@attrs.frozen
class SealableRows:
    """What a checkpoint after a horizon may seal: the new horizon, and its rows in row order.

    The horizon is a transaction id no transaction still in progress is below: no row can
    join the range later.
    """

    horizon: int
    rows: tuple[DigestedRow, ...]


@attrs.frozen(kw_only=True)
class SealableRow:
    """One row of outbox_sealable_digests, as the driver returns it."""

    horizon: str
    source: str | None
    row_key: str | None
    fields: list[str | None] | None
    row_no: int | None
    digest: bytes | None
    written_by_xact: str | None


def sealable(rows: Sequence[SealableRow]) -> SealableRows:
    """The rows of outbox_sealable_digests grouped: one carries only the horizon when empty."""
    return SealableRows(
        horizon=int(rows[0].horizon),
        rows=tuple(
            DigestedRow(
                source=row.source,
                row_key=row.row_key,
                fields=row.fields,
                row_no=row.row_no,
                digest=row.digest,
                written_by_xact=row.written_by_xact,
            )
            for row in rows
            if row.source is not None and row.row_key is not None
        ),
    )


def row_to_json(row: DigestedRow) -> str:
    """One row as a line of the bundle's rows file, or of a ledger month's archive."""
    return json.dumps(
        {
            "source": row.source,
            "row_key": row.row_key,
            "fields": None if row.fields is None else list(row.fields),
            "row_no": row.row_no,
            "digest": None if row.digest is None else row.digest.hex(),
            "written_by_xact": row.written_by_xact,
        },
        separators=(",", ":"),
        ensure_ascii=False,
    )


def row_from_json(text: str) -> DigestedRow:
    """A line of a rows file read back."""
    document = json.loads(text)
    digest = document["digest"]
    return DigestedRow(
        source=document["source"],
        row_key=document["row_key"],
        fields=document["fields"],
        row_no=document["row_no"],
        digest=None if digest is None else bytes.fromhex(digest),
        written_by_xact=document["written_by_xact"],
    )


@attrs.frozen(kw_only=True)
class LedgerMonth:
    """A month of the ledger (0019): its partition, whether still attached, and its archive.

    `ledger_month` is "YYYY-MM", or "legacy" for every month before 0019. `partition_name` is
    None once its archive was dropped from the database; `archive_*` are None until recorded.
    """

    ledger_month: str
    partition_name: str | None
    attached: bool
    range_end: date | None  # the first day after its range (None: legacy, detached)
    archive_file: str | None
    archive_rows: int | None
    archive_sha256: str | None


@attrs.frozen(kw_only=True)
class LedgerArchive:
    """A row of outbox_ledger_archives: an archived month's file, as the database recorded it."""

    entry_no: int
    ledger_month: str
    file_name: str
    row_count: int
    sha256: str
    archived_by: str
    archived_at: datetime
