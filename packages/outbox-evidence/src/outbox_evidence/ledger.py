"""The ledger's tamper evidence: row digests, chained checkpoints, and what a verifier finds.

The database writes a SHA-256 of each ledger, operator-log and ordering-history row as it is
inserted (schema 0018). A checkpoint seals the digests of every transaction below a horizon
(none of them still in progress), chains the previous checkpoint's head, and is signed outside
the database (`outbox_evidence.signing`). Verifying needs no database: the rows as they are
now, the signed checkpoints, the public keys. Every finding names the row.
"""

from __future__ import annotations

import collections
import enum
import functools
import hashlib
import json
from typing import TYPE_CHECKING, Final

import attrs

from outbox_db.digests import encode_fields, row_digest, row_to_json

if TYPE_CHECKING:
    from collections.abc import Collection, Iterable, Iterator, Sequence

    from outbox_db.digests import DigestedRow

__all__ = [
    "FORMAT",
    "FORMAT_ROWS",
    "GENESIS",
    "Checkpoint",
    "Finding",
    "Leaf",
    "Problem",
    "chain",
    "findings",
    "leaves_json",
    "rows_digest",
]

FORMAT: Final = "outbox-ledger-checkpoint/1"
# /2 also signs the SHA-256 of its rows' lines as the bundle writes them (`rows_digest`), so a
# verifier checks a whole checkpoint's rows with one hash when they are unchanged.
FORMAT_ROWS: Final = "outbox-ledger-checkpoint/2"
GENESIS: Final = bytes(32)  # the head before the first checkpoint


@attrs.frozen(order=True)
class Leaf:
    """One sealed row: its place (row_no, writing transaction), identity and digest."""

    row_no: int
    source: str
    row_key: str
    written_by_xact: int
    digest: bytes

    def hash(self) -> bytes:
        """The leaf as the range digest takes it: its place and identity bind the digest."""
        place = ["leaf", str(self.row_no), self.source, self.row_key, str(self.written_by_xact)]
        return hashlib.sha256(encode_fields(place) + self.digest).digest()


@attrs.frozen(kw_only=True)
class Checkpoint:
    """Checkpoint `number`: the leaves of transactions in [after, horizon), chained and signed.

    `rows_sha256` (format /2; None in a /1 checkpoint) is `rows_digest` of the rows sealed, or
    empty when one of them did not match its digest when sealed (then only each row's own
    recomputation says which). `signed_range` is (leaf count, range digest, leaves' SHA-256)
    as read from a /2 header whose leaves were not read: its head is then computed from them,
    not from the leaves.
    """

    number: int
    previous_head: bytes
    after: int
    horizon: int
    sealed_at: str  # the exporter's clock, UTC ISO 8601: bounds how long a range went unsigned
    leaves: tuple[Leaf, ...]
    rows_sha256: bytes | None = None
    signed_range: tuple[int, bytes, bytes] | None = None
    key_id: str = ""
    signature: bytes = b""

    @property
    def leaf_count(self) -> int:
        """How many rows it seals."""
        return len(self.leaves) if self.signed_range is None else self.signed_range[0]

    @functools.cached_property
    def range_digest(self) -> bytes:
        """SHA-256 over the leaves' hashes, in row order."""
        if self.signed_range is not None:
            return self.signed_range[1]
        return hashlib.sha256(b"".join(leaf.hash() for leaf in self.leaves)).digest()

    @functools.cached_property
    def leaves_sha256(self) -> bytes:
        """SHA-256 of the leaves' JSON line (`leaves_json`): a /2 verifier checks it unread."""
        if self.signed_range is not None:
            return self.signed_range[2]
        return hashlib.sha256(leaves_json(self.leaves).encode()).digest()

    @functools.cached_property
    def head(self) -> bytes:
        """The chain head: this checkpoint's header and range digest, over the previous head."""
        fmt = FORMAT if self.rows_sha256 is None else FORMAT_ROWS
        header = [fmt, str(self.number), self.previous_head.hex(), str(self.after)]
        header += [str(self.horizon), self.sealed_at, str(self.leaf_count)]
        header.append(self.range_digest.hex())
        if self.rows_sha256 is not None:
            header += [self.leaves_sha256.hex(), self.rows_sha256.hex()]
        return hashlib.sha256(encode_fields(header)).digest()


def leaves_json(leaves: Iterable[Leaf]) -> str:
    """The leaves as one JSON array: [row_no, table, key, transaction, digest hex] each."""
    return json.dumps(
        [[f.row_no, f.source, f.row_key, f.written_by_xact, f.digest.hex()] for f in leaves],
        separators=(",", ":"),
        ensure_ascii=False,
    )


def rows_digest(rows: Iterable[DigestedRow]) -> bytes:
    """SHA-256 of the rows' lines as the bundle writes them: each `row_to_json`, then a newline."""
    return hashlib.sha256("".join(row_to_json(row) + "\n" for row in rows).encode()).digest()


def chain(
    previous: Checkpoint | None, rows: Sequence[DigestedRow], horizon: int, sealed_at: str
) -> Checkpoint:
    """The next checkpoint (unsigned, format /2) over `rows`, the digests sealed up to `horizon`."""
    sealed = sorted(
        (
            (Leaf(row.row_no, row.source, row.row_key, row.written_by_xact, row.digest), row)
            for row in rows
            if row.row_no is not None and row.digest is not None and row.written_by_xact is not None
        ),
        key=lambda pair: pair[0],
    )
    intact = all(r.fields is not None and row_digest(r.fields) == r.digest for _, r in sealed)
    return Checkpoint(
        number=1 if previous is None else previous.number + 1,
        previous_head=GENESIS if previous is None else previous.head,
        after=0 if previous is None else previous.horizon,
        horizon=horizon,
        sealed_at=sealed_at,
        leaves=tuple(leaf for leaf, _ in sealed),
        rows_sha256=rows_digest(row for _, row in sealed) if intact else b"",
    )


class Problem(enum.StrEnum):
    """What happened to a row, or to the chain, since it was written or sealed."""

    MODIFIED = "modified"  # its columns no longer hash to the digest written (or sealed)
    DELETED = "deleted"  # sealed, and gone
    INSERTED = "inserted"  # no digest, or a digest no checkpoint sealed though it should have
    REORDERED = "reordered"  # sealed at another place (row number, transaction) than now
    CHAIN = "chain"  # a checkpoint that does not follow, or is not signed by a trusted key


@attrs.frozen(order=True)
class Finding:
    """One problem: which row (table and key; the checkpoint for the chain) and what is wrong."""

    problem: Problem
    source: str
    row_key: str
    detail: str

    def __str__(self) -> str:
        return f"{self.problem}: {self.source} {self.row_key}: {self.detail}"


def findings(
    rows: Sequence[DigestedRow],
    checkpoints: Sequence[Checkpoint],
    only_in_files: Collection[tuple[str, str]] = frozenset(),
) -> list[Finding]:
    """Every row modified, deleted, inserted or reordered, and every break in the chain.

    `rows` are every row and digest as the database holds them now (`CatalogAudit.ledger_rows`),
    with the archived ones put back (`ledger_archives`); `checkpoints` in number order, their
    signatures already checked (`signing.verified`); here their links are. A row
    `only_in_files` (archived with its digest) that no checkpoint sealed can never be sealed:
    it is named.
    """
    found = list(_chain_findings(checkpoints))
    sealed = {(leaf.source, leaf.row_key): leaf for c in checkpoints for leaf in c.leaves}
    horizon = checkpoints[-1].horizon if checkpoints else 0
    live = {(row.source, row.row_key): row for row in rows}
    if len(live) < len(rows):  # a row given twice: one copy would hide behind the other
        repeated = collections.Counter((row.source, row.row_key) for row in rows)
        found += [
            Finding(Problem.INSERTED, source, key, f"in the rows {count} times")
            for (source, key), count in repeated.items()
            if count > 1
        ]
    for key, leaf in sorted(sealed.items()):
        found += _sealed_findings(leaf, live.get(key))
    for key, row in sorted(live.items()):
        if key not in sealed:
            found += _unsealed_findings(row, horizon, archived=key in only_in_files)
    return sorted(found)


def _chain_findings(checkpoints: Sequence[Checkpoint]) -> Iterator[Finding]:
    previous: Checkpoint | None = None
    seen: set[tuple[str, str]] = set()
    for checkpoint in checkpoints:
        expected = chain(previous, [], checkpoint.after, checkpoint.sealed_at)
        where = str(checkpoint.number)
        if checkpoint.number != expected.number:
            yield Finding(Problem.CHAIN, "checkpoint", where, f"follows {expected.number - 1}")
        if checkpoint.previous_head != expected.previous_head:
            yield Finding(Problem.CHAIN, "checkpoint", where, "previous head differs")
        if checkpoint.after != expected.after or checkpoint.horizon < checkpoint.after:
            yield Finding(Problem.CHAIN, "checkpoint", where, "its range does not follow")
        for leaf in checkpoint.leaves:
            key = (leaf.source, leaf.row_key)
            if key in seen or not checkpoint.after <= leaf.written_by_xact < checkpoint.horizon:
                yield Finding(Problem.CHAIN, leaf.source, leaf.row_key, f"misplaced in {where}")
            seen.add(key)
        previous = checkpoint


def _sealed_findings(leaf: Leaf, row: DigestedRow | None) -> list[Finding]:
    def found(problem: Problem, detail: str) -> Finding:
        return Finding(problem, leaf.source, leaf.row_key, detail)

    if row is None or row.fields is None:
        return [found(Problem.DELETED, f"sealed as row {leaf.row_no}, no longer in the table")]
    problems = []
    if row_digest(row.fields) != leaf.digest:
        problems.append(found(Problem.MODIFIED, "its columns differ from those sealed"))
    if row.digest is not None and row.digest != leaf.digest:
        problems.append(found(Problem.MODIFIED, "its stored digest differs from the sealed one"))
    if (row.row_no, row.written_by_xact) != (leaf.row_no, leaf.written_by_xact):
        problems.append(
            found(
                Problem.REORDERED,
                f"sealed as row {leaf.row_no} of transaction {leaf.written_by_xact}, "
                f"now row {row.row_no} of transaction {row.written_by_xact}",
            )
        )
    return problems


def _unsealed_findings(row: DigestedRow, horizon: int, *, archived: bool) -> list[Finding]:
    def found(problem: Problem, detail: str) -> Finding:
        return Finding(problem, row.source, row.row_key, detail)

    if archived:
        return [
            found(
                Problem.INSERTED,
                "archived with its digest before any checkpoint sealed it: only the archive "
                "log vouches for it",
            )
        ]
    if row.fields is None:
        return [found(Problem.DELETED, "its digest remains, the row is gone (not yet sealed)")]
    if row.digest is None or row.written_by_xact is None:
        return [found(Problem.INSERTED, "no digest was written with it")]
    if row.written_by_xact < horizon:
        return [
            found(
                Problem.INSERTED,
                f"written by transaction {row.written_by_xact}, below the last checkpoint's "
                f"horizon {horizon}, and in no checkpoint",
            )
        ]
    if row_digest(row.fields) != row.digest:
        return [found(Problem.MODIFIED, "its columns differ from its digest (not yet sealed)")]
    return []
