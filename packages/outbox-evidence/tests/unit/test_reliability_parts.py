"""12_isolation.txt and 13_executor_boundary.txt from reports and a table, without a database."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Final

from outbox_evidence.junit import CaseOutcome, JunitReport, TestCase
from outbox_evidence.layout import EXECUTOR_BOUNDARY, ISOLATION
from outbox_evidence.reliability import boundary_part, isolation_part

if TYPE_CHECKING:
    from pathlib import Path

PROOF: Final = "packages/outbox-db/tests/integration/test_executor_boundary.py::test_attempt"
TABLE: Final = f"""
proof = "{PROOF}"

[[attempt]]
id = "delete-ledger"
attempt = "delete from the ledger"
sqlstate = "42501"
sql = "DELETE FROM public.payment_outbox_attempts"

[[attempt]]
id = "truncate-settings"
attempt = "truncate the settings"
sqlstate = "42501"
by_role = {{ auditor = "00000" }}
sql = "TRUNCATE public.payment_outbox_settings"
"""
ROLES: Final = ("producer", "executor", "readonly", "auditor", "operator")


def spec_report(folder: Path, spec: str, *, passed: bool, diff: str = "") -> None:
    """A report as test_isolation_specs.py writes it."""
    folder.mkdir(exist_ok=True)
    report = {"spec": spec, "passed": passed, "output": f"output of {spec}\n", "diff": diff}
    (folder / f"{spec}.json").write_text(json.dumps(report))


def case(attempt: str, outcome: CaseOutcome) -> TestCase:
    """The JUnit case of one attempt."""
    return TestCase(
        classname="packages.outbox-db.tests.integration.test_executor_boundary",
        name=f"test_attempt[{attempt}]",
        outcome=outcome,
    )


def test_isolation_without_reports_is_not_run_and_draws_no_verdict(tmp_path: Path) -> None:
    """No reports: NOT RUN, never a pass."""
    text = isolation_part(tmp_path / "absent", tmp_path).content

    assert text.startswith(f"# {ISOLATION}: ")
    assert "NOT RUN" in text
    assert "verdict" not in text


def test_isolation_lists_every_spec_with_its_output(tmp_path: Path) -> None:
    """Every spec passed: PASS, each spec's result and its output in name order."""
    spec_report(tmp_path / "isolation", "b_spec", passed=True)
    spec_report(tmp_path / "isolation", "a_spec", passed=True)

    text = isolation_part(tmp_path / "isolation", tmp_path).content

    assert "verdict: PASS (every spec printed its expected output: 2 of 2)" in text
    assert text.index("==== a_spec: PASSED") < text.index("==== b_spec: PASSED")
    assert "output of a_spec" in text


def test_a_failed_spec_fails_the_verdict_and_shows_its_differences(tmp_path: Path) -> None:
    """A spec whose output differed: FAIL naming it, the diff quoted without absolute paths."""
    spec_report(tmp_path / "isolation", "a_spec", passed=True)
    diff = f"--- {tmp_path}/expected/b_spec.out\n+++ results\n-item-1\n+item-2\n"
    spec_report(tmp_path / "isolation", "b_spec", passed=False, diff=diff)

    text = isolation_part(tmp_path / "isolation", tmp_path).content

    assert "verdict: FAIL (b_spec: FAILED)" in text
    assert "+item-2" in text
    assert str(tmp_path) not in text


def test_boundary_lists_each_attempt_with_its_result(tmp_path: Path) -> None:
    """Every attempt passed as every role: PASS, with each role's SQLSTATE and the statements."""
    table = tmp_path / "boundary.toml"
    table.write_text(TABLE)
    report = JunitReport(
        source="integration.xml",
        cases=tuple(
            case(f"{role}-{attempt}", CaseOutcome.PASSED)
            for attempt in ("delete-ledger", "truncate-settings")
            for role in ROLES
        ),
    )

    text = boundary_part(table, [report]).content

    assert text.startswith(f"# {EXECUTOR_BOUNDARY}: ")
    assert "verdict: PASS (every attempt got its expected SQLSTATE: 10 of 10)" in text
    assert "delete-ledger      producer  42501     PASSED" in text
    assert "truncate-settings  auditor   00000     PASSED" in text
    assert "truncate-settings  operator  42501     PASSED" in text
    assert "TRUNCATE public.payment_outbox_settings" in text


def test_boundary_fails_on_a_failed_or_missing_attempt(tmp_path: Path) -> None:
    """A failed attempt and one that did not run both fail the verdict, naming the role."""
    table = tmp_path / "boundary.toml"
    table.write_text(TABLE)
    report = JunitReport(
        source="integration.xml",
        cases=(
            case("producer-delete-ledger", CaseOutcome.FAILED),
            *(case(f"{role}-delete-ledger", CaseOutcome.PASSED) for role in ROLES[1:]),
            *(case(f"{role}-truncate-settings", CaseOutcome.PASSED) for role in ROLES[:-1]),
        ),
    )

    text = boundary_part(table, [report]).content

    assert (
        "verdict: FAIL (producer-delete-ledger: FAILED; operator-truncate-settings: NOT RUN)"
        in text
    )


def test_boundary_without_its_table_is_not_run(tmp_path: Path) -> None:
    """No table in the checkout: NOT RUN, no verdict; an unreadable table is MISSING."""
    assert "NOT RUN" in boundary_part(tmp_path / "absent.toml", []).content
    broken = tmp_path / "broken.toml"
    broken.write_text("proof = [")

    assert boundary_part(broken, []).missing
