"""Each proof's result in this run, from the JUnit XML; a proof that did not run never passes."""

from __future__ import annotations

import enum
import re
from collections import Counter
from itertools import groupby
from typing import TYPE_CHECKING, Final

import attrs

from outbox_evidence.junit import CaseOutcome, JunitReport, Selector, TestCase
from outbox_evidence.layout import PROOFS, TEST_RESULTS, Part, verdict
from outbox_evidence.text import scrub

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from outbox_evidence.manifest import Invariant, Manifest

__all__ = ["PROOF_LINE", "ProofResult", "ProofStatus", "evaluate", "proofs_part", "results_part"]

RERUN: Final = "pytest -q"  # from the repository root, whose conftest.py marks a test run
LOG_LINES: Final = 20  # per test case: enough to see what happened, short enough to read
LOG_WIDTH: Final = 200
NO_LOGS_HINT: Final = (
    "pytest writes captured output into JUnit XML only when run with -o junit_logging=all"
)
# "PASSED  |   3/3 | append-only-ledger | P0001 | pytest -q 'packages/...::test_x'": what
# verify reads back.
PROOF_LINE: Final = re.compile(
    r"^(?P<status>PASSED|FAILED|NOT RUN) *\| *(?P<cases>\d+/\d+) *\| *(?P<invariant>\S+) *\|"
    r" *(?P<sqlstate>\S+) *\| *pytest -q '(?P<node_id>[^']+)'$",
    re.MULTILINE,
)


class ProofStatus(enum.StrEnum):
    """A proof's result in this run."""

    PASSED = "PASSED"  # every test case it names ran and passed
    FAILED = "FAILED"  # one of them failed or errored
    NOT_RUN = "NOT RUN"  # none is in the JUnit XML, or one was skipped


@attrs.frozen
class ProofResult:
    """One manifest entry of one invariant and the test cases that answered for it."""

    invariant: Invariant
    node_id: str
    cases: tuple[TestCase, ...]

    @property
    def status(self) -> ProofStatus:
        """FAILED if any case failed, PASSED only if there are cases and all passed."""
        outcomes = {case.outcome for case in self.cases}
        if CaseOutcome.FAILED in outcomes:
            return ProofStatus.FAILED
        if outcomes == {CaseOutcome.PASSED}:
            return ProofStatus.PASSED
        return ProofStatus.NOT_RUN

    @property
    def passed(self) -> str:
        """Passed cases out of the cases found, e.g. "3/3"."""
        return f"{sum(c.outcome is CaseOutcome.PASSED for c in self.cases)}/{len(self.cases)}"


def evaluate(manifest: Manifest, reports: Sequence[JunitReport]) -> list[ProofResult]:
    """Every proof of every invariant, in manifest order, with the test cases it selects."""
    cases = [case for report in reports for case in report.cases]
    return [
        _result(invariant, node_id, cases)
        for invariant in manifest.invariants
        for node_id in invariant.proofs
    ]


def _result(invariant: Invariant, node_id: str, cases: Sequence[TestCase]) -> ProofResult:
    selector = Selector.parse(node_id)
    selected = tuple(case for case in cases if selector.selects(case))
    return ProofResult(invariant=invariant, node_id=node_id, cases=selected)


def proofs_part(results: Sequence[ProofResult], reports: Sequence[JunitReport], root: Path) -> Part:
    """04_proofs.txt: the verdict, a line per proof grouped by invariant, then captured output."""
    counts = Counter(result.status for result in results)
    problems = [f"{counts[s]} {s}" for s in (ProofStatus.FAILED, ProofStatus.NOT_RUN) if counts[s]]
    lines = [
        verdict(problems, f"every proof passed: {len(results)} of {len(results)}"),
        f"junit: {', '.join(r.source for r in reports) if reports else 'none given (--junit)'}",
        "status: PASSED every test case it names passed; FAILED one failed or errored;",
        "        NOT RUN none is in the JUnit XML, or one was skipped (never counted as passed)",
        "line:   status | passed/found cases | invariant | expected SQLSTATE | command",
        "command: run it from the repository root to re-run the proof",
    ]
    for invariant, group in _by_invariant(results):
        lines += ["", f"# {invariant.id}: {invariant.title}"]
        lines += [_proof_line(result) for result in group]
    lines += ["", "# captured output of the lease-repair and concurrency proofs (JUnit XML)"]
    lines += _captured(results, root)
    return Part.of(PROOFS, "\n".join(lines))


def results_part(reports: Sequence[JunitReport]) -> Part:
    """05_test_results.txt: totals per JUnit file and every case that did not pass."""
    missing = [f"{r.source}: {r.error}" for r in reports if r.error is not None]
    if not reports:
        missing.append("no JUnit XML given (--junit): no test result is known")
    blocks = ["\n".join(_totals(report)) for report in reports if report.error is None]
    return Part.of(TEST_RESULTS, "\n\n".join(blocks), missing)


def _totals(report: JunitReport) -> list[str]:
    counts = Counter(case.outcome for case in report.cases)
    totals = ", ".join(f"{counts[outcome]} {outcome}" for outcome in CaseOutcome)
    return [
        f"{report.source}: {len(report.cases)} test cases: {totals}",
        *(
            f"  {case.outcome.upper():<7}  {case.node_id}"
            for case in report.cases
            if case.outcome is not CaseOutcome.PASSED
        ),
    ]


def _by_invariant(results: Sequence[ProofResult]) -> list[tuple[Invariant, list[ProofResult]]]:
    groups: dict[str, tuple[Invariant, list[ProofResult]]] = {}
    for result in results:
        groups.setdefault(result.invariant.id, (result.invariant, []))[1].append(result)
    return list(groups.values())


def _proof_line(result: ProofResult) -> str:
    sqlstate = result.invariant.sqlstate or "-"
    command = f"{RERUN} '{result.node_id}'"
    return (
        f"{result.status:<7} | {result.passed:>5} | {result.invariant.id} | {sqlstate} | {command}"
    )


def _captured(results: Sequence[ProofResult], root: Path) -> list[str]:
    logged = [result for result in results if result.invariant.logs]
    lines: list[str] = []
    for result in logged:
        lines.append(f"## {result.node_id}")
        with_output = [case for case in result.cases if case.output]
        if not result.cases:
            lines.append("not run")
        elif not with_output:
            lines.append("none captured")
        for case in with_output:
            lines.append(f"{case.name}:")
            lines += _compact(scrub(case.output, root))
    if logged and not any(case.output for result in logged for case in result.cases):
        lines.append(NO_LOGS_HINT)
    return lines


def _compact(output: str) -> list[str]:
    """Repeated lines folded into one with a count, then at most LOG_LINES of them."""
    folded = [
        f"  {line[:LOG_WIDTH]}" + (f"  (x{count})" if count > 1 else "")
        for line, run in groupby(output.splitlines())
        if (count := len(list(run)))
    ]
    more = len(folded) - LOG_LINES
    return [*folded[:LOG_LINES], f"  ... {more} more lines"] if more > 0 else folded
