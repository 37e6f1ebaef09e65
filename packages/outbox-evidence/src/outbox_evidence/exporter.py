"""The checkpoint exporter: seals what the database wrote, signs it, keeps it outside, checks.

`run_once` reads (as the auditor, one snapshot) the digests sealable since the last checkpoint
and every row; writes checkpoint n+1, signed, to the directory (one file each, never
rewritten: ship the directory to write-once storage); then verifies every row against every
checkpoint. A database restored to before a checkpoint, or rows rewritten behind the
triggers, are findings; the metrics file says how many, for the alert.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from typing import TYPE_CHECKING, Final

import attrs

from outbox_db.audit import CatalogAudit
from outbox_evidence.ledger import chain, findings
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

    from outbox_evidence.ledger import Checkpoint, Finding
    from outbox_evidence.signing import SigningKey

__all__ = [
    "CheckpointStore",
    "ExportReport",
    "StoreError",
    "metrics_text",
    "run_once",
]

_FILE: Final = re.compile(r"^checkpoint-(?P<number>\d{8})\.json$")
_KEY_FILE: Final = "key-{key_id}.pub"


class StoreError(Exception):
    """The checkpoint directory cannot be read or written; what to do about it."""


@attrs.frozen
class CheckpointStore:
    """A directory of signed checkpoints, `checkpoint-00000001.json` on, and their public keys."""

    directory: Path

    def load(self) -> tuple[list[Checkpoint], list[PublicKey]]:
        """Every checkpoint in number order, and every key the directory holds."""
        texts, keys = self.texts()
        try:
            return [checkpoint_from_json(text) for text in texts], keys
        except ValueError as error:
            msg = f"{self.directory}: unreadable checkpoints ({error})"
            raise StoreError(msg) from error

    def texts(self) -> tuple[list[str], list[PublicKey]]:
        """Every checkpoint file's text in number order (unparsed), and every key."""
        try:
            present = self.directory.is_dir()
            names = sorted(p.name for p in self.directory.iterdir()) if present else []
            texts = [
                (self.directory / name).read_text(encoding="utf-8")
                for name in names
                if _FILE.match(name)
            ]
            keys = [
                PublicKey.parse((self.directory / name).read_text(encoding="utf-8"))
                for name in names
                if name.startswith("key-") and name.endswith(".pub")
            ]
        except (OSError, ValueError) as error:
            msg = f"{self.directory}: unreadable checkpoints ({error})"
            raise StoreError(msg) from error
        return texts, keys

    def add(self, checkpoint: Checkpoint, key: PublicKey) -> Path:
        """Write a new checkpoint (never replacing one) and its key, if not there yet."""
        self.directory.mkdir(parents=True, exist_ok=True)
        key_path = self.directory / _KEY_FILE.format(key_id=key.key_id)
        if not key_path.exists():
            key_path.write_text(f"{key}\n", encoding="utf-8")
        path = self.directory / f"checkpoint-{checkpoint.number:08d}.json"
        partial = path.with_suffix(".partial")
        partial.write_text(checkpoint_to_json(checkpoint) + "\n", encoding="utf-8")
        try:
            os.link(partial, path)  # fails if another exporter wrote this number first
        except FileExistsError as error:
            msg = f"{path} exists: another exporter writes to {self.directory}"
            raise StoreError(msg) from error
        finally:
            partial.unlink()
        return path


@attrs.frozen(kw_only=True)
class ExportReport:
    """What one run did and found."""

    written: Checkpoint | None  # None: nothing new to seal
    checkpoints: int
    rows: int
    unsealed: int  # rows newer than the last checkpoint's horizon
    problems: tuple[str, ...]  # every finding and every unverified checkpoint
    last_sealed_at: str | None  # the newest checkpoint's, ISO 8601 UTC


def run_once(
    url: str,
    key: SigningKey,
    store: CheckpointStore,
    *,
    archive: Path | None = None,
    now: dt.datetime | None = None,
) -> ExportReport:
    """Seal and sign what is new, then verify every row, live or in `archive`, against them."""
    checkpoints, keys = store.load()
    problems = unverified(checkpoints, [*keys, key.public])
    with CatalogAudit.open(url) as audit:
        after = checkpoints[-1].horizon if checkpoints else 0
        sealable = audit.sealable_digests(after)
        archived = with_archives(audit.ledger_rows(), archive)
    rows = archived.rows
    problems += archived.problems
    written = None
    if sealable.rows:
        sealed_at = (now or dt.datetime.now(tz=dt.UTC)).isoformat(timespec="seconds")
        previous = checkpoints[-1] if checkpoints else None
        written = key.sign(chain(previous, sealable.rows, sealable.horizon, sealed_at))
        store.add(written, key.public)
        checkpoints.append(written)
    found: Sequence[Finding] = findings(rows, checkpoints, archived.only_in_files)
    horizon = checkpoints[-1].horizon if checkpoints else 0
    return ExportReport(
        written=written,
        checkpoints=len(checkpoints),
        rows=len(rows),
        unsealed=sum(1 for r in rows if r.written_by_xact is None or r.written_by_xact >= horizon),
        problems=(*problems, *(str(f) for f in found)),
        last_sealed_at=checkpoints[-1].sealed_at if checkpoints else None,
    )


def metrics_text(report: ExportReport, now: dt.datetime) -> str:
    """Prometheus text format, for node_exporter's textfile collector."""
    gauges = [
        (
            "outbox_ledger_tamper_findings",
            (
                "Rows or checkpoints the last verification found modified, deleted, inserted, "
                "reordered or unsigned."
            ),
            len(report.problems),
        ),
        ("outbox_ledger_checkpoints", "Signed checkpoints held outside.", report.checkpoints),
        ("outbox_ledger_unsealed_rows", "Rows newer than the last checkpoint.", report.unsealed),
        (
            "outbox_ledger_last_run_timestamp_seconds",
            "When the exporter last verified the ledger.",
            round(now.timestamp()),
        ),
    ]
    if report.last_sealed_at is not None:
        sealed = dt.datetime.fromisoformat(report.last_sealed_at)
        gauges.append(
            (
                "outbox_ledger_last_checkpoint_timestamp_seconds",
                "When the newest checkpoint was sealed.",
                round(sealed.timestamp()),
            )
        )
    lines = [
        line
        for name, text, value in gauges
        for line in (f"# HELP {name} {text}", f"# TYPE {name} gauge", f"{name} {value}")
    ]
    return "\n".join(lines) + "\n"
