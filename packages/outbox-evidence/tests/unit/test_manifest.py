"""The manifest: the repository's own is complete and names real tests; bad ones are refused."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from outbox_evidence.manifest import ManifestError, load_manifest, parse_manifest

ROOT = Path(__file__).parents[4]
REPOSITORY_MANIFEST = ROOT / "proofs.toml"
# DESIGN section 5: every SQLSTATE the proofs assert and the bundle's README must explain.
DESIGN_SQLSTATES = {"P0001", "P7001", "22023", "42501", "P7002", "P7003", "23505", "23514"}


def defined_tests(path: Path) -> set[str]:
    """The test functions and Class::test methods a test module defines."""
    names: set[str] = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
            names.add(node.name)
        elif isinstance(node, ast.ClassDef):
            names |= {
                f"{node.name}::{item.name}"
                for item in node.body
                if isinstance(item, ast.FunctionDef) and item.name.startswith("test_")
            }
    return names


def test_every_proof_of_the_repository_manifest_names_a_test_that_exists() -> None:
    """A renamed or deleted proof fails here, in review, not only as NOT RUN in the bundle."""
    manifest = load_manifest(REPOSITORY_MANIFEST)

    dangling = []
    for node_id in (p for invariant in manifest.invariants for p in invariant.proofs):
        path, *test = node_id.split("::", 1)
        exists = (ROOT / path).is_file() and (
            not test or test[0].split("[", 1)[0] in defined_tests(ROOT / path)
        )
        if not exists:
            dangling.append(node_id)

    assert dangling == []


def test_the_repository_manifest_maps_every_design_sqlstate_to_proofs() -> None:
    """Each SQLSTATE of the design is explained and expected by at least one invariant."""
    manifest = load_manifest(REPOSITORY_MANIFEST)

    unproven = {code for code in DESIGN_SQLSTATES if not manifest.expecting(code)}

    assert DESIGN_SQLSTATES - {state.code for state in manifest.sqlstates} == set()
    assert unproven == set()


INVARIANT: dict[str, object] = {
    "id": "a",
    "title": "A",
    "sqlstate": "P0001",
    "proofs": ["t.py::test_a"],
}
VALID: dict[str, object] = {"sqlstates": {"P0001": "append-only"}, "invariant": [INVARIANT]}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"invariant": []}, "no [[invariant]] entries"),
        (
            {"invariant": [{**INVARIANT, "proof": []}]},
            "invariant 'a': unknown keys proof",
        ),
        (
            {"invariant": [{**INVARIANT, "sqlstate": "P9999"}]},
            "invariant 'a': sqlstate 'P9999' not in [sqlstates]",
        ),
        (
            {"invariant": [{**INVARIANT, "proofs": []}]},
            "invariant 'a': proofs must be a non-empty list of pytest node ids",
        ),
        ({"invariant": [INVARIANT, INVARIANT]}, "invariant ids used twice: a"),
        ({"sqlstates": {"P0001": ""}}, "[sqlstates]: P0001 must be text"),
    ],
    ids=["no-invariants", "unknown-key", "unknown-sqlstate", "no-proofs", "duplicate-id", "blank"],
)
def test_a_manifest_that_cannot_guide_an_auditor_is_refused(
    change: dict[str, object], message: str
) -> None:
    """Each mistake is refused with a message naming the invariant and the problem."""
    with pytest.raises(ManifestError) as refused:
        parse_manifest(VALID | change)

    assert str(refused.value) == message


def test_an_unreadable_manifest_names_the_file(tmp_path: Path) -> None:
    """A missing file or a TOML syntax error names the file."""
    broken = tmp_path / "proofs.toml"
    broken.write_text("[[invariant]\n", encoding="utf-8")

    with pytest.raises(ManifestError, match=r"proofs\.toml: "):
        load_manifest(broken)
    with pytest.raises(ManifestError, match=r"absent\.toml: No such file"):
        load_manifest(tmp_path / "absent.toml")
