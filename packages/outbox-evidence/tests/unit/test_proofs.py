"""Each proof's result: PASSED only when it ran and passed; the lines verify reads back."""

from __future__ import annotations

from pathlib import Path

import pytest

from outbox_evidence.junit import CaseOutcome, JunitReport, TestCase
from outbox_evidence.manifest import Invariant, Manifest, SqlState
from outbox_evidence.proofs import (
    PROOF_LINE,
    ProofResult,
    ProofStatus,
    evaluate,
    proofs_part,
    results_part,
)

ROOT = Path("/work/checkout")
LEDGER = "packages.outbox-db.tests.integration.test_append_only"
LEASES = "packages.outbox-db.tests.integration.test_leases"
LEDGER_PROOF = (
    "packages/outbox-db/tests/integration/test_append_only.py::test_owner_cannot_mutate_the_ledger"
)
LEASE_PROOF = "packages/outbox-db/tests/integration/test_leases.py::test_concurrent_completions"
MANIFEST = Manifest(
    sqlstates=(SqlState(code="P0001", meaning="ledger changed"), SqlState("P7002", "lease lost")),
    invariants=(
        Invariant(
            id="append-only-ledger", title="Append-only", sqlstate="P0001", proofs=(LEDGER_PROOF,)
        ),
        Invariant(
            id="concurrent-completion",
            title="One completion wins",
            sqlstate="P7002",
            proofs=(LEASE_PROOF,),
            logs=True,
        ),
    ),
)


def report(*cases: tuple[str, str, CaseOutcome, str]) -> JunitReport:
    """A JUnit report of (classname, name, outcome, output) cases."""
    return JunitReport(
        source="reports/junit/integration.xml",
        cases=tuple(TestCase(classname=c, name=n, outcome=o, output=out) for c, n, o, out in cases),
    )


@pytest.mark.parametrize(
    ("outcomes", "status"),
    [
        ([], ProofStatus.NOT_RUN),
        ([CaseOutcome.PASSED, CaseOutcome.PASSED], ProofStatus.PASSED),
        ([CaseOutcome.PASSED, CaseOutcome.SKIPPED], ProofStatus.NOT_RUN),
        ([CaseOutcome.SKIPPED], ProofStatus.NOT_RUN),
        ([CaseOutcome.PASSED, CaseOutcome.FAILED, CaseOutcome.SKIPPED], ProofStatus.FAILED),
    ],
    ids=["absent", "all-passed", "one-skipped", "all-skipped", "one-failed"],
)
def test_a_proof_passes_only_when_every_case_it_names_ran_and_passed(
    outcomes: list[CaseOutcome], status: ProofStatus
) -> None:
    """Absent or skipped is NOT RUN, never PASSED; any failure is FAILED."""
    cases = tuple(
        TestCase(classname=LEDGER, name=f"test_x[{n}]", outcome=outcome)
        for n, outcome in enumerate(outcomes)
    )

    result = ProofResult(invariant=MANIFEST.invariants[0], node_id=LEDGER_PROOF, cases=cases)

    assert status == result.status


def test_each_proof_line_gives_status_cases_invariant_sqlstate_and_command() -> None:
    """One grep-friendly line per proof, which verify parses back; the verdict counts failures."""
    reports = [
        report(
            (LEDGER, "test_owner_cannot_mutate_the_ledger[update]", CaseOutcome.PASSED, ""),
            (LEDGER, "test_owner_cannot_mutate_the_ledger[delete]", CaseOutcome.FAILED, ""),
        )
    ]

    text = proofs_part(evaluate(MANIFEST, reports), reports, ROOT).content

    parsed = [match.groupdict() for match in PROOF_LINE.finditer(text)]
    assert parsed == [
        {
            "status": "FAILED",
            "cases": "1/2",
            "invariant": "append-only-ledger",
            "sqlstate": "P0001",
            "node_id": LEDGER_PROOF,
        },
        {
            "status": "NOT RUN",
            "cases": "0/0",
            "invariant": "concurrent-completion",
            "sqlstate": "P7002",
            "node_id": LEASE_PROOF,
        },
    ]
    assert f"| pytest -q '{LEDGER_PROOF}'\n" in text
    assert "verdict: FAIL (1 FAILED; 1 NOT RUN)" in text


def test_captured_output_is_scrubbed_folded_and_bounded() -> None:
    """Timestamps, UUIDs and the checkout path go; repeated lines fold; at most 20 lines stay."""
    repeated = "2026-01-02T03:04:05Z lease_repaired outbox_id=0b3f2c1e-1111-4222-8333-944455556666"
    distinct = "\n".join(f"cycle {n} at /work/checkout/src/x.py" for n in range(30))
    output = f"{repeated}\n{repeated}\n{distinct}"
    reports = [report((LEASES, "test_concurrent_completions", CaseOutcome.PASSED, output))]

    text = proofs_part(evaluate(MANIFEST, reports), reports, ROOT).content
    log = text.split(f"## {LEASE_PROOF}\n")[1].splitlines()

    assert log[0] == "test_concurrent_completions:"
    assert log[1] == "  <time> lease_repaired outbox_id=<uuid>  (x2)"
    assert log[2] == "  cycle 0 at src/x.py"
    assert log[20:] == ["  cycle 18 at src/x.py", "  ... 11 more lines"]


def test_without_captured_output_the_log_section_says_so() -> None:
    """No output in the XML: 'none captured', and how to make pytest record it."""
    reports = [
        report(
            (LEDGER, "test_owner_cannot_mutate_the_ledger", CaseOutcome.PASSED, ""),
            (LEASES, "test_concurrent_completions", CaseOutcome.PASSED, ""),
        )
    ]

    text = proofs_part(evaluate(MANIFEST, reports), reports, ROOT).content

    assert "verdict: PASS (every proof passed: 2 of 2)" in text
    assert f"## {LEASE_PROOF}\nnone captured\n" in text
    assert "-o junit_logging=all" in text


def test_test_results_count_every_report_and_list_what_did_not_pass() -> None:
    """Totals per file, one line per failed or skipped case; an unreadable report is MISSING."""
    good = report(
        (LEDGER, "test_a", CaseOutcome.PASSED, ""), (LEDGER, "test_b", CaseOutcome.SKIPPED, "")
    )
    absent = JunitReport(source="reports/junit/unit.xml", error="not found")

    part = results_part([good, absent])

    assert part.missing == ("reports/junit/unit.xml: not found",)
    assert (
        "reports/junit/integration.xml: 2 test cases: 1 passed, 0 failed, 1 skipped" in part.content
    )
    assert (
        "  SKIPPED  packages/outbox-db/tests/integration/test_append_only.py::test_b"
        in part.content
    )


def test_without_any_report_the_test_results_are_missing() -> None:
    """No --junit at all: the results part says no result is known."""
    assert results_part([]).missing == ("no JUnit XML given (--junit): no test result is known",)
