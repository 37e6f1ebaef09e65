"""The rows the ledger's tamper evidence covers, with the digests the database wrote for them.

Schema 0018 writes a SHA-256 of each ledger, operator-log and ordering-history row as the row
is inserted. outbox-evidence signs them in checkpoints and verifies rows against them; these
records are what it reads, through `CatalogAudit` (as the auditor role, read only).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["DigestedRow", "SealableRow", "SealableRows", "sealable"]


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
