"""Builds the bundle from its inputs, and writes it: every part, then SHA256SUMS over them."""

from __future__ import annotations

import hashlib
import shutil
from typing import TYPE_CHECKING

import attrs

from outbox_evidence.catalog import database_parts
from outbox_evidence.controls import controls_part
from outbox_evidence.junit import load_junit
from outbox_evidence.layout import CHECKSUMS, LEDGER_ROWS, MANIFEST_COPY, PROOFS, README, Part
from outbox_evidence.ledger_bundle import checkpoints_part, grouped_rows, ledger_part
from outbox_evidence.manifest import ManifestError, load_manifest
from outbox_evidence.proofs import evaluate, proofs_part, results_part
from outbox_evidence.readme import readme_part
from outbox_evidence.reliability import boundary_part, isolation_part
from outbox_evidence.source_tree import guardrails_part, role_usage_part
from outbox_evidence.text import display_path, reason

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from outbox_evidence.junit import JunitReport
    from outbox_evidence.manifest import Manifest
    from outbox_evidence.signing import PublicKey

__all__ = ["Bundle", "BundleError", "Inputs", "build", "checksums", "write"]


class BundleError(Exception):
    """The bundle cannot be written where asked."""


@attrs.frozen(kw_only=True)
class Inputs:
    """Everything a bundle is built from; the same inputs give the same bytes."""

    root: Path  # the repository the proofs, their logs and the reports belong to
    url: str | None  # the database; None: the database parts are missing
    junit: tuple[Path, ...]  # JUnit XML reports of the test run
    manifest: Path  # proofs.toml
    guardrails_json: Path  # the gate's guardrails report (06 and 07); absent: both MISSING
    proof_controls: Path  # JUnit XML of the proof controls, one per sabotage; absent: not run
    isolation: Path  # the isolation specs' JSON reports; absent: not run
    boundary: Path  # the executor boundary table (executor_boundary.toml)
    checkpoints: Path | None = None  # the checkpoint exporter's directory; None: not given
    public_keys: tuple[PublicKey, ...] = ()  # keys trusted besides those the directory holds
    archive: Path | None = None  # the archived ledger months (outbox-db archive --dir)


@attrs.frozen
class Bundle:
    """The files in name order, and the full reasons of database failures (for stderr)."""

    parts: tuple[Part, ...]
    diagnostics: tuple[str, ...]

    @property
    def missing(self) -> list[tuple[str, str]]:
        """(file, reason) for every piece that could not be produced."""
        return [(part.name, reason) for part in self.parts for reason in part.missing]


def build(inputs: Inputs) -> Bundle:
    """Every part of the bundle; a part whose source fails says so instead of stopping the rest."""
    reports = [load_junit(path) for path in inputs.junit]
    db_parts, diagnostics = database_parts(inputs.url)
    manifest, problem = _manifest(inputs.manifest)
    (ungrouped,) = [part for part in db_parts if part.name == LEDGER_ROWS]
    rows = grouped_rows(ungrouped, inputs.checkpoints)
    checkpoints = checkpoints_part(inputs.checkpoints, inputs.public_keys)
    parts = [
        *(part for part in db_parts if part is not ungrouped),
        rows,
        checkpoints,
        ledger_part(rows, checkpoints, inputs.archive),
        _proofs(manifest, problem, reports, inputs.root),
        results_part(reports),
        role_usage_part(inputs.guardrails_json),
        guardrails_part(inputs.guardrails_json),
        controls_part(inputs.proof_controls),
        isolation_part(inputs.isolation, inputs.root),
        boundary_part(inputs.boundary, reports),
        _manifest_copy(inputs.manifest),
    ]
    parts.append(readme_part(manifest, problem, parts))
    return Bundle(parts=tuple(sorted(parts, key=lambda p: p.name)), diagnostics=tuple(diagnostics))


def _manifest(path: Path) -> tuple[Manifest | None, str | None]:
    """The manifest, or None and what is wrong with it."""
    try:
        return load_manifest(path), None
    except ManifestError as error:
        return None, str(error)


def _proofs(
    manifest: Manifest | None, problem: str | None, reports: Sequence[JunitReport], root: Path
) -> Part:
    if manifest is None:
        return Part.unavailable(PROOFS, str(problem))
    return proofs_part(evaluate(manifest, reports), reports, root)


def _manifest_copy(path: Path) -> Part:
    try:
        return Part(name=MANIFEST_COPY, content=path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as error:
        return Part.unavailable(MANIFEST_COPY, f"{display_path(path)}: {reason(error)}")


def checksums(parts: Sequence[Part]) -> str:
    """SHA256SUMS: `sha256  name` per file, sorted by name, as `sha256sum -c` reads it."""
    return "".join(
        f"{hashlib.sha256(part.content.encode()).hexdigest()}  {part.name}\n"
        for part in sorted(parts, key=lambda p: p.name)
    )


def write(bundle: Bundle, out: Path) -> None:
    """Replace `out` with the bundle; refuses a non-empty directory that is not a bundle."""
    if out.exists() and any(out.iterdir()) and not (out / README).exists():
        msg = f"{out} is not an evidence bundle (no {README}); refusing to delete it"
        raise BundleError(msg)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    for part in bundle.parts:
        (out / part.name).write_bytes(part.content.encode())
    (out / CHECKSUMS).write_bytes(checksums(bundle.parts).encode())
