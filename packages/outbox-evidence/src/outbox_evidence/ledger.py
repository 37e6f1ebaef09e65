"""The ledger's tamper evidence: row digests, chained checkpoints, and what a verifier finds.

The database writes a SHA-256 of each ledger, operator-log and ordering-history row as it is
inserted (schema 0018). A checkpoint seals the digests of every transaction below a horizon
(none of them still in progress), chains the previous checkpoint's head, and is signed outside
the database (`outbox_evidence.signing`). Verifying needs no database: the rows as they are
now, the signed checkpoints, the public keys. Every finding names the row.
"""

from __future__ import annotations

import enum
import hashlib
from typing import TYPE_CHECKING, Final

import attrs

from outbox_db.digests import encode_fields, row_digest

if TYPE_CHECKING:
    from collections.abc import Collection, Iterator, Sequence

    from outbox_db.digests import DigestedRow

__all__ = [
    "FORMAT",
    "GENESIS",
    "Checkpoint",
    "Finding",
    "Leaf",
    "Problem",
    "chain",
    "findings",
]

FORMAT: Final = "outbox-ledger-checkpoint/1"
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
    """Checkpoint `number`: the leaves of transactions in [after, horizon), chained and signed."""

    number: int
    previous_head: bytes
    after: int
    horizon: int
    sealed_at: str  # the exporter's clock, UTC ISO 8601: bounds how long a range went unsigned
    leaves: tuple[Leaf, ...]
    key_id: str = ""
    signature: bytes = b""

    @property
    def range_digest(self) -> bytes:
        """SHA-256 over the leaves' hashes, in row order."""
        return hashlib.sha256(b"".join(leaf.hash() for leaf in self.leaves)).digest()

    @property
    def head(self) -> bytes:
        """The chain head: this checkpoint's header and range digest, over the previous head."""
        header = [FORMAT, str(self.number), self.previous_head.hex(), str(self.after)]
        header += [str(self.horizon), self.sealed_at, str(len(self.leaves))]
        return hashlib.sha256(encode_fields([*header, self.range_digest.hex()])).digest()


def chain(
    previous: Checkpoint | None, rows: Sequence[DigestedRow], horizon: int, sealed_at: str
) -> Checkpoint:
    """The next checkpoint (unsigned) over `rows`, the digests sealed up to `horizon`."""
    leaves = tuple(
        sorted(
            Leaf(row.row_no, row.source, row.row_key, row.written_by_xact, row.digest)
            for row in rows
            if row.row_no is not None and row.digest is not None and row.written_by_xact is not None
        )
    )
    return Checkpoint(
        number=1 if previous is None else previous.number + 1,
        previous_head=GENESIS if previous is None else previous.head,
        after=0 if previous is None else previous.horizon,
        horizon=horizon,
        sealed_at=sealed_at,
        leaves=leaves,
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
