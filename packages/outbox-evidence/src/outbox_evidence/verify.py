"""Re-checks a bundle without the database: integrity, completeness, verdicts and every proof."""

from __future__ import annotations

import hashlib
import re
from typing import TYPE_CHECKING, Final

from outbox_evidence.layout import (
    CHECKSUMS,
    FILES,
    LEDGER,
    LEDGER_CHECKPOINTS,
    LEDGER_ROWS,
    MANIFEST_COPY,
    MISSING_LINE,
    PROOFS,
    VERDICT_FAIL_LINE,
)
from outbox_evidence.ledger_bundle import verify_bundle_ledger
from outbox_evidence.manifest import ManifestError, load_manifest
from outbox_evidence.proofs import PROOF_LINE, ProofStatus

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from outbox_evidence.manifest import Manifest

__all__ = ["verify"]

_SUM_LINE: Final = re.compile(r"^(?P<digest>[0-9a-f]{64})  (?P<name>[^/\s]+)$")


def verify(
    directory: Path, manifest_path: Path | None = None, archive: Path | None = None
) -> list[str]:
    """What is wrong with the bundle in `directory`, one sentence each; empty when nothing is.

    The proofs are checked against `manifest_path`, else against the bundle's own copy; the
    ledger's archived months are read from `archive` (`outbox-db archive --dir`).
    """
    try:
        is_directory = directory.is_dir()
    except OSError as error:  # a name the system refuses (too long, say): no bundle there
        return [f"{directory}: unreadable ({error.strerror})"]
    if not is_directory:
        return [f"{directory}: not a directory"]
    problems = [
        f"{name}: missing file" for name in [*FILES, CHECKSUMS] if not (directory / name).is_file()
    ]
    problems += _checksum_problems(directory)
    problems += _content_problems(directory)
    problems += _ledger_problems(directory, archive)
    try:
        manifest = load_manifest(manifest_path or directory / MANIFEST_COPY)
    except ManifestError as error:
        return [*problems, f"manifest: {error}"]
    return problems + list(_proof_problems(directory, manifest))


def _checksum_problems(directory: Path) -> list[str]:
    path = directory / CHECKSUMS
    if not path.is_file():
        return []
    listed: dict[str, str] = {}
    problems: list[str] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if match := _SUM_LINE.match(line):
            listed[match["name"]] = match["digest"]
        else:
            problems.append(f"{CHECKSUMS}:{number}: not a `sha256  name` line")
    for name, digest in sorted(listed.items()):
        target = directory / name
        if not target.is_file():
            problems.append(f"{name}: listed in {CHECKSUMS} but absent")
        elif hashlib.sha256(target.read_bytes()).hexdigest() != digest:
            problems.append(f"{name}: checksum differs from {CHECKSUMS} (changed after generation)")
    present = {p.name for p in directory.iterdir() if p.is_file()} - {CHECKSUMS}
    problems += [f"{name}: not covered by {CHECKSUMS}" for name in sorted(present - listed.keys())]
    return problems


def _content_problems(directory: Path) -> list[str]:
    """MISSING parts and failed verdicts, file by file."""
    problems: list[str] = []
    for name in sorted(FILES):
        path = directory / name
        if not path.is_file():
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        problems += [f"{name}: MISSING: {m['reason']}" for m in MISSING_LINE.finditer(text)]
        problems += [f"{name}: {m[0].lstrip('-# ')}" for m in VERDICT_FAIL_LINE.finditer(text)]
    return problems


def _ledger_problems(directory: Path, archive: Path | None) -> list[str]:
    """15's verdict recomputed from 16 and 17: a bundle whose rows were edited fails here."""
    rows = directory / LEDGER_ROWS
    if not (rows.is_file() and (directory / LEDGER_CHECKPOINTS).is_file()):
        return []  # reported as a missing file
    if MISSING_LINE.search(rows.read_text(encoding="utf-8", errors="replace")):
        return []  # reported as MISSING
    try:
        problems, _ = verify_bundle_ledger(directory, None, None, archive)
    except (OSError, ValueError) as error:
        return [f"{LEDGER}: cannot re-verify the ledger ({error})"]
    return [f"{LEDGER}: recomputed: {problem}" for problem in problems]


def _proof_problems(directory: Path, manifest: Manifest) -> Iterator[str]:
    """Every proof of the manifest must have its line in 04_proofs.txt, and have PASSED."""
    path = directory / PROOFS
    text = path.read_text(encoding="utf-8") if path.is_file() else ""
    status = {(m["invariant"], m["node_id"]): m["status"] for m in PROOF_LINE.finditer(text)}
    for invariant in manifest.invariants:
        for node_id in invariant.proofs:
            found = status.get((invariant.id, node_id))
            if found is None:
                yield f"{PROOFS}: no result for proof {invariant.id} {node_id}"
            elif found != ProofStatus.PASSED:
                yield f"{PROOFS}: {found}: {invariant.id} {node_id}"
