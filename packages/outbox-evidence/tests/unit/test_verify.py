"""verify: a complete, untouched bundle passes; every kind of damage is named."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from outbox_evidence.bundle import Bundle, write
from outbox_evidence.layout import (
    CHECKSUMS,
    FILES,
    GRANTS,
    MANIFEST_COPY,
    PROOFS,
    REGRESSION,
    Part,
)
from outbox_evidence.verify import verify

if TYPE_CHECKING:
    from pathlib import Path

LEDGER_PROOF = (
    "packages/outbox-db/tests/integration/test_append_only.py::test_owner_cannot_mutate_the_ledger"
)
LEASE_PROOF = "packages/outbox-db/tests/integration/test_leases.py::test_concurrent_completions"
MANIFEST = f"""
[sqlstates]
P0001 = "UPDATE/DELETE/TRUNCATE on the ledger"
P7002 = "lease not held"

[[invariant]]
id = "append-only-ledger"
title = "The ledger is append-only"
sqlstate = "P0001"
proofs = ["{LEDGER_PROOF}"]

[[invariant]]
id = "concurrent-completion"
title = "Racing completions record one attempt"
sqlstate = "P7002"
proofs = ["{LEASE_PROOF}"]
"""


def proof_lines(ledger: str = "PASSED ", leases: str = "PASSED ") -> str:
    """04_proofs.txt's proof lines for the two proofs of the test manifest."""
    return (
        f"{ledger} |   2/2 | append-only-ledger | P0001 | pytest -q '{LEDGER_PROOF}'\n"
        f"{leases} |   1/1 | concurrent-completion | P7002 | pytest -q '{LEASE_PROOF}'\n"
    )


def write_bundle(out: Path, manifest_file: Path, *overrides: Part) -> Path:
    """A bundle in which every file passes, but for the `overrides` parts."""
    # The ledger's JSON lines files are data (no rows, no checkpoints), not a verdict.
    parts = {
        name: Part.of(name, "" if name.endswith(".jsonl") else "verdict: PASS (fine)")
        for name in FILES
    }
    parts[PROOFS] = Part.of(PROOFS, proof_lines())
    parts[MANIFEST_COPY] = Part(name=MANIFEST_COPY, content=manifest_file.read_text())
    parts |= {part.name: part for part in overrides}
    write(Bundle(parts=tuple(parts.values()), diagnostics=()), out)
    return out


@pytest.fixture
def manifest_file(tmp_path: Path) -> Path:
    """The two-invariant manifest the bundles are built from."""
    path = tmp_path / "proofs.toml"
    path.write_text(MANIFEST, encoding="utf-8")
    return path


@pytest.fixture
def bundle(tmp_path: Path, manifest_file: Path) -> Path:
    """A complete bundle in which every verdict passed and every proof PASSED."""
    return write_bundle(tmp_path / "bundle", manifest_file)


def test_a_complete_untouched_bundle_has_no_problem(bundle: Path) -> None:
    """Every file present and matching SHA256SUMS, no MISSING part, every proof PASSED."""
    assert verify(bundle) == []


def test_a_file_edited_after_generation_fails_its_checksum(bundle: Path) -> None:
    """One changed byte is named."""
    path = bundle / REGRESSION
    path.write_text(path.read_text().replace("fine", "fin3"))

    assert verify(bundle) == [
        f"{REGRESSION}: checksum differs from {CHECKSUMS} (changed after generation)"
    ]


def test_a_deleted_file_and_an_added_file_are_named(bundle: Path) -> None:
    """Removing a required file, or slipping in an unlisted one, does not go unnoticed."""
    (bundle / REGRESSION).unlink()
    (bundle / "extra.txt").write_text("planted\n")

    assert verify(bundle) == [
        f"{REGRESSION}: missing file",
        f"{REGRESSION}: listed in {CHECKSUMS} but absent",
        f"extra.txt: not covered by {CHECKSUMS}",
    ]


def test_missing_parts_and_failed_verdicts_are_named(tmp_path: Path, manifest_file: Path) -> None:
    """A MISSING line or a failed verdict in any file is a problem, with its reason."""
    out = write_bundle(
        tmp_path / "bundle",
        manifest_file,
        Part.unavailable(GRANTS, "database unavailable: Connection refused"),
        Part.of(REGRESSION, "verdict: FAIL (3 ledger rows in the retired DISPATCHING state)"),
    )

    assert verify(out) == [
        f"{GRANTS}: MISSING: database unavailable: Connection refused",
        f"{REGRESSION}: verdict: FAIL (3 ledger rows in the retired DISPATCHING state)",
    ]


@pytest.mark.parametrize(
    ("lines", "problem"),
    [
        (proof_lines(ledger="FAILED "), f"{PROOFS}: FAILED: append-only-ledger {LEDGER_PROOF}"),
        (proof_lines(leases="NOT RUN"), f"{PROOFS}: NOT RUN: concurrent-completion {LEASE_PROOF}"),
        (
            proof_lines().splitlines()[0],
            f"{PROOFS}: no result for proof concurrent-completion {LEASE_PROOF}",
        ),
    ],
    ids=["failed", "not-run", "absent"],
)
def test_a_proof_that_failed_did_not_run_or_is_absent_is_named(
    tmp_path: Path, manifest_file: Path, lines: str, problem: str
) -> None:
    """Every proof of the manifest must be in 04_proofs.txt, PASSED."""
    out = write_bundle(tmp_path / "bundle", manifest_file, Part.of(PROOFS, lines))

    assert verify(out) == [problem]


def test_an_external_manifest_is_checked_instead_of_the_bundle_copy(
    bundle: Path, tmp_path: Path
) -> None:
    """--manifest: proofs the reviewed manifest names but the bundle lacks are named."""
    reviewed = tmp_path / "reviewed.toml"
    extra = "packages/outbox-db/tests/integration/test_leases.py::test_new_proof"
    reviewed.write_text(
        (bundle / MANIFEST_COPY)
        .read_text()
        .replace(f'"{LEASE_PROOF}"', f'"{LEASE_PROOF}", "{extra}"')
    )

    assert verify(bundle, reviewed) == [
        f"{PROOFS}: no result for proof concurrent-completion {extra}"
    ]


def test_a_directory_that_does_not_exist_is_named(tmp_path: Path) -> None:
    """A wrong path is named, not raised."""
    assert verify(tmp_path / "nowhere") == [f"{tmp_path / 'nowhere'}: not a directory"]


def test_a_path_the_system_refuses_is_named(tmp_path: Path) -> None:
    """A name longer than the file system allows (ENAMETOOLONG) is a problem, not a traceback."""
    too_long = tmp_path / ("x" * 5000)
    assert verify(too_long) == [f"{too_long}: unreadable (File name too long)"]
