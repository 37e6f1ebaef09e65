"""The command line without a database: help, what generate still writes, determinism, verify."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from outbox_evidence.catalog import DATABASE_PARTS, NO_URL
from outbox_evidence.cli import main
from outbox_evidence.layout import CHECKSUMS, FILES, PROOFS, ROLE_USAGE
from outbox_guardrails import check, render_json

NO_DATABASE = {"OUTBOX_EVIDENCE_DB_URL": None, "DATABASE_URL": None}
PROOF = (
    "packages/outbox-db/tests/integration/test_append_only.py::test_owner_cannot_mutate_the_ledger"
)
MANIFEST = f"""
[sqlstates]
P0001 = "UPDATE/DELETE/TRUNCATE on the ledger"

[[invariant]]
id = "append-only-ledger"
title = "The ledger is append-only"
sqlstate = "P0001"
proofs = ["{PROOF}"]
"""
JUNIT = """<testsuites><testsuite name="pytest"><testcase
 classname="packages.outbox-db.tests.integration.test_append_only"
 name="test_owner_cannot_mutate_the_ledger[update]"/></testsuite></testsuites>
"""


@pytest.fixture
def checkout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A small repository as the working directory: proofs.toml, one module, a JUnit report.

    And the guardrails' report where the gate writes it, which generate reads by default.
    """
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "app.py").write_text("ANSWER = 42\n")
    (tmp_path / "proofs.toml").write_text(MANIFEST)
    (tmp_path / "unit.xml").write_text(JUNIT)
    report = tmp_path / "reports" / "guardrails" / "guardrails.json"
    report.parent.mkdir(parents=True)
    report.write_text(render_json(check(tmp_path, enforce=True)))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def generate(*args: str, env: dict[str, str | None] | None = None) -> Result:
    """`outbox-evidence generate --junit unit.xml ARGS`, with no database unless `env` names one."""
    return CliRunner().invoke(
        main, ["generate", "--junit", "unit.xml", *args], env=env or NO_DATABASE
    )


@pytest.mark.parametrize(
    "command", [[], ["generate"], ["verify"]], ids=["main", "generate", "verify"]
)
def test_every_command_has_help(command: list[str]) -> None:
    """--help works everywhere and names the database variables."""
    result = CliRunner().invoke(main, [*command, "--help"])

    assert result.exit_code == 0
    assert "Usage:" in result.output
    if command == ["generate"]:
        assert "OUTBOX_EVIDENCE_DB_URL, DATABASE_URL" in result.output


@pytest.mark.usefixtures("checkout")
def test_without_a_database_the_rest_is_written_and_the_missing_parts_are_named() -> None:
    """Every file exists; each database part says why it is missing; exit 1, no traceback."""
    result = generate("--out", "bundle")

    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)
    out = Path("bundle")
    assert sorted(p.name for p in out.iterdir()) == sorted([*FILES, CHECKSUMS])
    for name in DATABASE_PARTS:
        assert f"MISSING: {NO_URL}" in (out / name).read_text()
        assert f"outbox-evidence: {name}: MISSING: {NO_URL}" in result.stderr
    assert "verdict: PASS (every proof passed: 1 of 1)" in (out / PROOFS).read_text()
    assert "verdict: PASS" in (out / ROLE_USAGE).read_text()
    assert "Traceback" not in result.output


def test_an_unreachable_database_is_named_with_its_reason(checkout: Path) -> None:
    """The files keep only the reason; stderr has libpq's whole message; exit 1, no traceback."""
    url = f"postgresql://postgres@/postgres?host={checkout}/no-server&port=5432"

    result = generate("--out", "bundle", "--url", url)

    assert result.exit_code == 1
    grants = (checkout / "bundle" / "01_grants.txt").read_text()
    assert "MISSING: database unavailable: No such file or directory" in grants
    assert str(checkout) not in grants
    (diagnostic,) = [line for line in result.stderr.splitlines() if ": database: " in line]
    assert diagnostic.startswith("outbox-evidence: database: database unavailable: ")
    assert f'socket "{checkout}/no-server/' in diagnostic
    assert "Traceback" not in result.output


def test_the_same_inputs_give_byte_identical_bundles_without_absolute_paths(
    checkout: Path,
) -> None:
    """Two runs, two directories: the same bytes, and no trace of where they ran."""
    generate("--out", "first")
    generate("--out", "second")

    first = {p.name: p.read_bytes() for p in (checkout / "first").iterdir()}
    second = {p.name: p.read_bytes() for p in (checkout / "second").iterdir()}
    assert first == second
    assert [name for name, data in first.items() if str(checkout).encode() in data] == []


def test_generate_replaces_its_bundle_but_refuses_another_directory(checkout: Path) -> None:
    """A stale file of the previous bundle goes; a directory that is not a bundle is kept."""
    generate("--out", "bundle")
    (checkout / "bundle" / "stale.txt").write_text("from an older run\n")
    (checkout / "precious").mkdir()
    (checkout / "precious" / "notes.txt").write_text("mine\n")

    replaced, refused = generate("--out", "bundle"), generate("--out", "precious")

    assert replaced.exit_code == 1  # the database parts are missing, nothing else
    assert not (checkout / "bundle" / "stale.txt").exists()
    assert refused.exit_code == 1
    assert "precious is not an evidence bundle" in refused.stderr
    assert (checkout / "precious" / "notes.txt").read_text() == "mine\n"


@pytest.mark.usefixtures("checkout")
def test_verify_names_every_problem_and_exits_1() -> None:
    """A bundle without its database parts does not verify; a damaged one names the damage."""
    generate("--out", "bundle")

    result = CliRunner().invoke(main, ["verify", "bundle"])

    assert result.exit_code == 1
    assert f"outbox-evidence verify: 01_grants.txt: MISSING: {NO_URL}" in result.stderr
    # 15_ledger.txt is the verdict over 16_ledger_rows.jsonl: missing with it.
    assert f"outbox-evidence verify: bundle: {len(DATABASE_PARTS) + 1} problems" in result.stderr
