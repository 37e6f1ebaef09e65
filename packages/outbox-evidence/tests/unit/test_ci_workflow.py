"""The GitHub Actions workflow runs the gate's sessions in the gate's order and keeps the evidence.

The schema check (check-jsonschema's vendored GitHub-workflow schema) and actionlint run in
the lint step; this test reads what neither can: which sessions, in which order, and what is
kept; and shows that actionlint does fail a broken workflow.
"""

from __future__ import annotations

import ast
import subprocess
from pathlib import Path
from typing import Any, Final

import pytest
import yaml

ROOT: Final = Path(__file__).parents[4]
WORKFLOW: Final = ROOT / ".github" / "workflows" / "ci-security.yml"
ALWAYS: Final = "always()"


def noxfile_value(name: str) -> ast.expr:
    """The value assigned to `name` in noxfile.py, from its syntax tree (no nox needed)."""
    tree = ast.parse((ROOT / "noxfile.py").read_text())
    (value,) = [
        node.value
        for node in tree.body
        if isinstance(node, ast.Assign)
        and any(isinstance(t, ast.Name) and t.id == name for t in node.targets)
    ]
    return value


def gate_order() -> list[str]:
    """The step names of noxfile.py's STEPS."""
    steps = noxfile_value("STEPS")
    assert isinstance(steps, ast.List)
    names = []
    for call in steps.elts:
        assert isinstance(call, ast.Call)
        first = call.args[0]
        assert isinstance(first, ast.Constant)
        names.append(str(first.value))
    return names


@pytest.fixture(scope="module")
def job() -> dict[str, Any]:
    """The gate job."""
    document = yaml.safe_load(WORKFLOW.read_text())
    gate: dict[str, Any] = document["jobs"]["gate"]
    return gate


@pytest.fixture(scope="module")
def steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    """The gate job's steps."""
    return list(job["steps"])


def test_the_gate_runs_on_each_postgresql_version_compat_runs(job: dict[str, Any]) -> None:
    """A matrix of noxfile's PG_VERSIONS, each leg's sessions told its version; no container."""
    versions = ast.literal_eval(noxfile_value("PG_VERSIONS"))

    assert job["strategy"]["matrix"]["postgres"] == list(versions)
    assert job["strategy"]["fail-fast"] is False
    assert job["env"]["OUTBOX_PG_VERSION"] == "${{ matrix.postgres }}"
    assert "services" not in job


def test_one_server_of_the_legs_version_serves_every_session(steps: list[dict[str, Any]]) -> None:
    """Before the first session, that version's embedded server, its URL exported to the rest.

    The proofs, the regression query and the bundle share its database, as in `nox -s gate`.
    """
    runs = [str(step.get("run", "")) for step in steps]
    (start,) = [i for i, run in enumerate(runs) if "outbox-db embedded up" in run]
    first_session = next(i for i, run in enumerate(runs) if run.startswith("nox -s "))

    assert runs.index(".ci/provision") < start < first_session
    assert '--pg-version "$OUTBOX_PG_VERSION"' in runs[start]
    assert 'echo "DATABASE_URL=$url" >> "$GITHUB_ENV"' in runs[start]


def named(steps: list[dict[str, Any]], uses: str) -> dict[str, Any]:
    """The one step that uses the action `uses` (any version)."""
    (step,) = [s for s in steps if str(s.get("uses", "")).startswith(f"{uses}@")]
    return step


def test_the_workflow_runs_the_gate_sessions_in_the_gate_order(steps: list[dict[str, Any]]) -> None:
    """One `nox -s <step>` per gate step, in STEPS order, and nothing else run through nox."""
    sessions = [
        str(step["run"]).removeprefix("nox -s ").strip()
        for step in steps
        if str(step.get("run", "")).startswith("nox -s ")
    ]

    assert sessions == gate_order()
    assert sessions[-2:] == ["evidence", "upload"]


def test_evidence_and_upload_run_even_after_a_failure(steps: list[dict[str, Any]]) -> None:
    """The evidence, packing and artifact steps carry `if: always()`."""
    kept = {str(step.get("run")): step.get("if") for step in steps}

    assert kept["nox -s evidence"] == ALWAYS
    assert kept["nox -s upload"] == ALWAYS
    assert named(steps, "actions/upload-artifact")["if"] == ALWAYS


def test_the_artifact_is_the_bundle_kept_14_days(steps: list[dict[str, Any]]) -> None:
    """One artifact per version, the archive and the directory, 14 days, an error if absent."""
    artifact = named(steps, "actions/upload-artifact")["with"]

    assert artifact["name"] == "outbox-evidence-postgresql-${{ matrix.postgres }}"
    assert artifact["retention-days"] == 14
    assert "reports/outbox-evidence.tar.gz" in artifact["path"]
    assert artifact["if-no-files-found"] == "error"


def test_the_guardrails_sarif_goes_to_code_scanning(steps: list[dict[str, Any]]) -> None:
    """The SARIF the guardrails step writes is uploaded once, whatever happened."""
    sarif = named(steps, "github/codeql-action/upload-sarif")

    assert sarif["if"] == f"{ALWAYS} && matrix.postgres == '15'"
    assert sarif["with"]["sarif_file"] == "reports/guardrails/guardrails.sarif"


def test_a_tagged_release_keeps_the_bundle_and_its_checksum(steps: list[dict[str, Any]]) -> None:
    """On a tag the archive and its SHA-256 are attached to the release (an audit outlives 14 days)."""
    release = named(steps, "softprops/action-gh-release")

    assert "refs/tags/" in release["if"]
    files = release["with"]["files"].split()
    assert files == ["reports/outbox-evidence.tar.gz", "reports/outbox-evidence.tar.gz.sha256"]
    (checksum,) = [s for s in steps if "sha256sum" in str(s.get("run", ""))]
    assert checksum["if"] == release["if"]


def test_actionlint_refuses_a_workflow_on_a_runner_github_does_not_have(tmp_path: Path) -> None:
    """The lint step's linter, on the workflow with a misspelt runner label: exit 1, named."""
    broken = tmp_path / "ci-security.yml"
    text = WORKFLOW.read_text()
    assert "runs-on: ubuntu-24.04" in text
    broken.write_text(text.replace("runs-on: ubuntu-24.04", "runs-on: ubuntu-24.4"))

    linted = subprocess.run(
        [str(ROOT / ".ci" / "actionlint" / "run"), str(broken)],
        capture_output=True,
        text=True,
        check=False,
    )

    assert linted.returncode == 1, linted.stdout + linted.stderr
    assert 'label "ubuntu-24.4" is unknown' in linted.stdout
    assert "1 finding(s)" in linted.stdout
