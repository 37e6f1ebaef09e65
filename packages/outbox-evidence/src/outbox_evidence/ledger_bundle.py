"""The bundle's ledger parts: every row with its digest, the signed checkpoints, the verdict.

16_ledger_rows.jsonl is read from the database in the bundle's snapshot; the checkpoints come
from the exporter's directory (`generate --checkpoints`), never from the database, with the
public keys that signed them. `outbox-evidence verify` and `verify-ledger` recompute 15's
verdict from the two files alone.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Final

from outbox_db.digests import row_from_json, row_to_json
from outbox_evidence.exporter import CheckpointStore, StoreError
from outbox_evidence.layout import LEDGER, LEDGER_CHECKPOINTS, LEDGER_ROWS, Part, verdict
from outbox_evidence.ledger import findings
from outbox_evidence.ledger_archives import with_archives
from outbox_evidence.signing import (
    PublicKey,
    checkpoint_from_json,
    checkpoint_to_json,
    unverified,
)

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from outbox_db.audit import CatalogAudit
    from outbox_db.digests import DigestedRow
    from outbox_evidence.ledger import Checkpoint

__all__ = [
    "checkpoints_part",
    "ledger_part",
    "render_ledger_rows",
    "verify_bundle_ledger",
]

NO_CHECKPOINTS: Final = (
    "no checkpoint directory given (generate --checkpoints DIR): each row is checked against "
    "the digest the database wrote with it, which its owner could rewrite together with the row"
)


def render_ledger_rows(audit: CatalogAudit) -> str:
    """One JSON line per row and digest (16_ledger_rows.jsonl)."""
    return "\n".join(row_to_json(row) for row in audit.ledger_rows())


def _records(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip() and not line.startswith("#")]


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


def _parse_checkpoints(text: str) -> tuple[list[Checkpoint], list[PublicKey]]:
    checkpoints, keys = [], []
    for line in _records(text):
        if '"key_id"' in line and '"format"' not in line:
            keys.append(PublicKey.parse(json.loads(line)["key"]))
        else:
            checkpoints.append(checkpoint_from_json(line))
    return checkpoints, keys


def _verdict(
    live: Sequence[DigestedRow],
    checkpoints: Sequence[Checkpoint],
    keys: Sequence[PublicKey],
    archive: Path | None,
) -> tuple[list[str], str]:
    archived = with_archives(live, archive)
    rows = archived.rows
    problems = unverified(checkpoints, keys) + archived.problems
    problems += [str(f) for f in findings(rows, checkpoints, archived.only_in_files)]
    signers = ", ".join(sorted({c.key_id for c in checkpoints})) or "none"
    sealed = sum(len(c.leaves) for c in checkpoints)
    summary = (
        f"{len(rows)} rows, {len(checkpoints)} signed checkpoints sealing {sealed} of them "
        f"(signed by {signers})"
    )
    if archive is not None:
        summary += f", archived months read from {archive}"
    return problems, summary


def ledger_part(rows_part: Part, checkpoints: Part, archive: Path | None = None) -> Part:
    """15_ledger.txt: the verdict of every row against every checkpoint, naming each row."""
    if rows_part.missing:
        return Part.unavailable(LEDGER, f"{LEDGER_ROWS}: {rows_part.missing[0]}")
    if checkpoints.missing:
        return Part.unavailable(LEDGER, f"{LEDGER_CHECKPOINTS}: {checkpoints.missing[0]}")
    rows = [row_from_json(line) for line in _records(rows_part.content)]
    sealed, keys = _parse_checkpoints(checkpoints.content)
    problems, summary = _verdict(rows, sealed, keys, archive)
    body = [
        verdict(problems, summary),
        *([NO_CHECKPOINTS] if not sealed and NO_CHECKPOINTS in checkpoints.content else []),
        "",
        *(f"key {key.key_id} {key}" for key in keys),
        *(
            f"checkpoint {c.number}: {len(c.leaves)} rows, transactions [{c.after}, "
            f"{c.horizon}), sealed {c.sealed_at}, head {c.head.hex()}"
            for c in sealed
        ),
        *problems,
    ]
    return Part.of(LEDGER, "\n".join(body))


def verify_bundle_ledger(
    bundle: Path,
    directory: Path | None,
    keys: Sequence[PublicKey] | None,
    archive: Path | None = None,
) -> tuple[list[str], str]:
    """The bundle's rows, and `archive`'s, against its checkpoints (or `directory`'s)."""
    rows = [
        row_from_json(line) for line in _records((bundle / LEDGER_ROWS).read_text(encoding="utf-8"))
    ]
    if directory is None:
        text = (bundle / LEDGER_CHECKPOINTS).read_text(encoding="utf-8")
        checkpoints, carried = _parse_checkpoints(text)
    else:
        checkpoints, carried = CheckpointStore(directory).load()
    return _verdict(rows, checkpoints, carried if keys is None else keys, archive)
