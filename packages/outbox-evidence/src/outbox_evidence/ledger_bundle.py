"""The bundle's ledger parts: every row with its digest, the signed checkpoints, the verdict.

16_ledger_rows.jsonl is read from the database in the bundle's snapshot; the checkpoints come
from the exporter's directory (`generate --checkpoints`), never from the database, with the
public keys that signed them. `outbox-evidence verify` and `verify-ledger` recompute 15's
verdict from the two files alone.

16 writes the rows of each /2 checkpoint together, in its leaves' order, after a line
`# checkpoint N: ...`: the lines of that group are byte for byte what the checkpoint's
`rows_sha256` signed if no row changed, so one hash verifies them all. A group that does not
hash to it, the rows outside any group, and every /1 checkpoint's rows are recomputed one by
one and each problem named (`recompute=True` recomputes every row).
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import TYPE_CHECKING, Final

import attrs

from outbox_db.digests import row_from_json, row_to_json
from outbox_evidence.exporter import CheckpointStore, StoreError
from outbox_evidence.layout import LEDGER, LEDGER_CHECKPOINTS, LEDGER_ROWS, Part
from outbox_evidence.layout import verdict as verdict_line
from outbox_evidence.ledger import findings
from outbox_evidence.ledger_archives import ARCHIVE_LOG, with_archives
from outbox_evidence.signing import (
    PublicKey,
    checkpoint_from_json,
    checkpoint_header,
    checkpoint_to_json,
    unverified,
)

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from pathlib import Path

    from outbox_db.audit import CatalogAudit
    from outbox_evidence.ledger import Checkpoint

__all__ = [
    "checkpoints_part",
    "grouped_rows",
    "ledger_part",
    "render_ledger_rows",
    "verify_bundle_ledger",
]

GROUP: Final = "# checkpoint "  # 16's line before a checkpoint's rows: "# checkpoint N: ..."
UNGROUPED: Final = "# rows in no checkpoint's group"
ARCHIVE_SOURCE: Final = f'"source":"{ARCHIVE_LOG}"'  # a line of the archive log, in JSON
_GROUP_LINE: Final = re.compile(
    re.escape(GROUP.encode()) + rb"(?P<number>\d+): \d+ rows, (?P<size>\d+) bytes.*\n"
)
_NEWLINE: Final = ord("\n")
NO_CHECKPOINTS: Final = (
    "no checkpoint directory given (generate --checkpoints DIR): each row is checked against "
    "the digest the database wrote with it, which its owner could rewrite together with the row"
)


def render_ledger_rows(audit: CatalogAudit) -> str:
    """One JSON line per row and digest (16_ledger_rows.jsonl), grouped by `grouped_rows`."""
    return "\n".join(row_to_json(row) for row in audit.ledger_rows())


def grouped_rows(rows: Part, directory: Path | None) -> Part:
    """16 with each /2 checkpoint's rows together, after its group line, in its leaves' order.

    A checkpoint is grouped only if each of its rows is there once; the other rows follow
    the groups, as they were.
    """
    if rows.missing or directory is None:
        return rows
    try:
        checkpoints, _ = CheckpointStore(directory).load()
    except StoreError:
        return rows  # 17 says why
    lines: dict[tuple[str, str], list[str]] = {}
    for line in _records(rows.content):
        document = json.loads(line)
        lines.setdefault((document["source"], document["row_key"]), []).append(line)
    body = []
    for checkpoint in checkpoints:
        keys = [(leaf.source, leaf.row_key) for leaf in checkpoint.leaves]
        if checkpoint.rows_sha256 and all(len(lines.get(key, ())) == 1 for key in keys):
            grouped = [lines.pop(key)[0] for key in keys]
            size = sum(len(line.encode()) + 1 for line in grouped)  # each with its newline
            body.append(f"{GROUP}{checkpoint.number}: {len(keys)} rows, {size} bytes, as sealed")
            body += grouped
    remaining = [line for found in lines.values() for line in found]
    body += [UNGROUPED, *remaining] if remaining and body else remaining
    return Part.of(LEDGER_ROWS, "\n".join(body))


def _records(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip() and not line.startswith("#")]


def _groups(data: bytes) -> tuple[dict[int, _Lines], list[str]]:
    """16's groups (checkpoint number: its lines) and the other rows.

    A group line gives its group's size, so its lines are never scanned. A group line that
    repeats a number, or whose size does not end on a line before the next comment line,
    starts rows read one by one, like the ungrouped ones.
    """
    groups: dict[int, _Lines] = {}
    rest: list[str] = []
    position = 0
    while position < len(data):
        if marker := _GROUP_LINE.match(data, position):
            number, start = int(marker["number"]), marker.end()
            end = start + int(marker["size"])
            fits = start < end <= len(data) and data[end - 1] == _NEWLINE
            if fits and number not in groups and (end == len(data) or data.startswith(b"#", end)):
                groups[number] = _Lines(data, start, end)
                position = end
                continue
            position = start
        following = data.find(b"\n" + GROUP.encode(), position)
        end = len(data) if following < 0 else following + 1
        rest += _records(data[position:end].decode())
        position = end
    return groups, rest


@attrs.frozen
class _Lines:
    """A group's lines: bytes [start, end) of 16."""

    data: bytes
    start: int
    end: int

    def sha256(self) -> bytes:
        return hashlib.sha256(memoryview(self.data)[self.start : self.end]).digest()

    def holds(self, text: str) -> bool:
        return self.data.find(text.encode(), self.start, self.end) >= 0

    def records(self) -> list[str]:
        return _records(self.data[self.start : self.end].decode())


def checkpoints_part(directory: Path | None, keys: Sequence[PublicKey]) -> Part:
    """17_ledger_checkpoints.jsonl: the trusted keys, then each signed checkpoint."""
    if directory is None:
        return Part.of(LEDGER_CHECKPOINTS, f"# {NO_CHECKPOINTS}")
    try:
        checkpoints, held = CheckpointStore(directory).load()
    except StoreError as error:
        return Part.unavailable(LEDGER_CHECKPOINTS, str(error))
    trusted = {key.key_id: key for key in [*keys, *held]}
    lines = [json.dumps({"key_id": k, "key": str(trusted[k])}) for k in sorted(trusted)]
    lines += [checkpoint_to_json(c) for c in checkpoints]
    return Part.of(LEDGER_CHECKPOINTS, "\n".join(lines))


@attrs.frozen
class _Held:
    """A checkpoint as 17 holds it: its header (a /2 one without leaves) and its full text."""

    header: Checkpoint
    text: str

    def whole(self) -> Checkpoint:
        """With its leaves read, and its head computed from them."""
        if self.header.signed_range is None:
            return self.header
        return checkpoint_from_json(self.text)


def _parse_checkpoints(text: str) -> tuple[list[_Held], list[PublicKey]]:
    held: list[_Held] = []
    keys = []
    for line in _records(text):
        if line.startswith("["):  # a /2 checkpoint's leaves, after its header
            if held:
                held[-1] = _Held(held[-1].header, held[-1].text + "\n" + line)
        elif '"key_id"' in line and '"format"' not in line:
            keys.append(PublicKey.parse(json.loads(line)["key"]))
        else:
            held.append(_Held(checkpoint_header(line), line))
    return held, keys


@attrs.frozen
class _Verdict:
    problems: list[str]
    rows: int
    hashed: int  # rows verified by their checkpoint's rows hash, not one by one
    chain: list[Checkpoint]


def _verdict(
    rows_data: bytes,
    held: Sequence[_Held],
    keys: Sequence[PublicKey],
    archive: Path | None,
    *,
    recompute: bool,
) -> _Verdict:
    """Every row against every checkpoint: a group whose lines hash as signed, at once."""
    groups, rest = _groups(rows_data)
    hashed = {} if recompute else _hashed(groups, held, keys)
    unhashed = (line for n, lines in groups.items() if n not in hashed for line in lines.records())
    live = [row_from_json(line) for line in [*rest, *unhashed]]
    logs = [  # the archive log's rows name the files to read, grouped or not
        row_from_json(line)
        for number in hashed
        if groups[number].holds(ARCHIVE_SOURCE)
        for line in groups[number].records()
        if ARCHIVE_SOURCE in line
    ]
    archived = with_archives(live, archive, logs)
    chain = [hashed.get(h.header.number) or h.whole() for h in held]
    problems = unverified(chain, keys) + archived.problems
    problems += [str(f) for f in findings(archived.rows, chain, archived.only_in_files)]
    count = sum(c.leaf_count for c in hashed.values())
    return _Verdict(problems, len(archived.rows) + count, count, chain)


def _hashed(
    groups: Mapping[int, _Lines], held: Sequence[_Held], keys: Sequence[PublicKey]
) -> dict[int, Checkpoint]:
    """The /2 checkpoints, signed by a trusted key, whose group's lines hash as they signed."""
    trusted = {key.key_id: key for key in keys}
    found = {}
    held_text = {h.header.number: h.text for h in held}
    for checkpoint in (h.header for h in held):
        lines = groups.get(checkpoint.number)
        key = trusted.get(checkpoint.key_id)
        if (
            lines is not None
            and checkpoint.rows_sha256
            and key is not None
            and key.verifies(checkpoint)
            and lines.sha256() == checkpoint.rows_sha256
            and _leaves_sha256(held_text[checkpoint.number]) == checkpoint.leaves_sha256
        ):
            found[checkpoint.number] = checkpoint
    return found


def _leaves_sha256(text: str) -> bytes:
    """SHA-256 of a /2 checkpoint's leaves line (the line after its header)."""
    return hashlib.sha256(text.partition("\n")[2].encode()).digest()


def _summary(verdict: _Verdict, archive: Path | None) -> str:
    chain = verdict.chain
    signers = ", ".join(sorted({c.key_id for c in chain})) or "none"
    sealed = sum(c.leaf_count for c in chain)
    summary = (
        f"{verdict.rows} rows, {len(chain)} signed checkpoints sealing {sealed} of them "
        f"(signed by {signers}); {verdict.hashed} verified by their checkpoint's rows hash, "
        f"{verdict.rows - verdict.hashed} recomputed one by one"
    )
    if archive is not None:
        summary += f", archived months read from {archive}"
    return summary


def ledger_part(rows_part: Part, checkpoints: Part, archive: Path | None = None) -> Part:
    """15_ledger.txt: the verdict of every row against every checkpoint, naming each row."""
    if rows_part.missing:
        return Part.unavailable(LEDGER, f"{LEDGER_ROWS}: {rows_part.missing[0]}")
    if checkpoints.missing:
        return Part.unavailable(LEDGER, f"{LEDGER_CHECKPOINTS}: {checkpoints.missing[0]}")
    held, keys = _parse_checkpoints(checkpoints.content)
    verdict = _verdict(rows_part.content.encode(), held, keys, archive, recompute=False)
    body = [
        verdict_line(verdict.problems, _summary(verdict, archive)),
        *([NO_CHECKPOINTS] if not held and NO_CHECKPOINTS in checkpoints.content else []),
        "",
        *(f"key {key.key_id} {key}" for key in keys),
        *(
            f"checkpoint {c.number}: {c.leaf_count} rows, transactions [{c.after}, "
            f"{c.horizon}), sealed {c.sealed_at}, head {c.head.hex()}"
            for c in verdict.chain
        ),
        *verdict.problems,
    ]
    return Part.of(LEDGER, "\n".join(body))


def verify_bundle_ledger(
    bundle: Path,
    directory: Path | None,
    keys: Sequence[PublicKey] | None,
    archive: Path | None = None,
    *,
    recompute: bool = False,
) -> tuple[list[str], str]:
    """The bundle's rows, and `archive`'s, against its checkpoints (or `directory`'s)."""
    rows_data = (bundle / LEDGER_ROWS).read_bytes()
    if directory is None:
        held, carried = _parse_checkpoints(
            (bundle / LEDGER_CHECKPOINTS).read_text(encoding="utf-8")
        )
    else:
        texts, carried = CheckpointStore(directory).texts()
        held, _ = _parse_checkpoints("\n".join(texts))
    verdict = _verdict(
        rows_data, held, carried if keys is None else keys, archive, recompute=recompute
    )
    return verdict.problems, _summary(verdict, archive)
