"""The reliability parts: the isolation specs' outputs, and the roles' boundary table.

12_isolation.txt quotes what PostgreSQL's isolation tester printed for each spec of
packages/outbox-db/tests/isolation (test_isolation_specs.py leaves one JSON report per spec
in reports/isolation/): whether it matched the committed expected output, the output, and the
differences when it did not. 13_executor_boundary.txt lists the boundary table
(executor_boundary.toml): each attempt, as each outbox role, the SQLSTATE expected for that
role, and whether its test case passed in this run's JUnit XML.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Final

from outbox_evidence.junit import CaseOutcome
from outbox_evidence.layout import EXECUTOR_BOUNDARY, ISOLATION, Part, verdict
from outbox_evidence.text import aligned, display_path, reason, scrub

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from outbox_evidence.junit import JunitReport

__all__ = [
    "DEFAULT_BOUNDARY",
    "DEFAULT_ISOLATION",
    "boundary_part",
    "isolation_part",
]

DEFAULT_ISOLATION: Final = "reports/isolation"
DEFAULT_BOUNDARY: Final = "packages/outbox-db/tests/integration/executor_boundary.toml"
# The roles every attempt runs as (test_executor_boundary.py), in the order the file lists them.
BOUNDARY_ROLES: Final = ("producer", "executor", "readonly", "auditor", "operator")
ISOLATION_NOT_RUN: Final = (
    "NOT RUN: no isolation spec had run when this bundle was made "
    "(packages/outbox-db/tests/integration/test_isolation_specs.py writes them)"
)
PASSED: Final = "PASSED"
FAILED: Final = "FAILED"
NOT_RUN: Final = "NOT RUN"


def isolation_part(reports: Path, root: Path) -> Part:
    """12_isolation.txt: each spec's result and output, or NOT RUN without reports."""
    paths = sorted(reports.glob("*.json")) if reports.is_dir() else []
    if not paths:
        return Part.of(ISOLATION, ISOLATION_NOT_RUN)
    specs: list[dict[str, object]] = []
    unreadable: list[str] = []
    for path in paths:
        try:
            specs.append(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError) as error:
            unreadable.append(f"{display_path(path)}: {reason(error)}")
    failed = [str(spec["spec"]) for spec in specs if spec.get("passed") is not True]
    passed = f"every spec printed its expected output: {len(specs)} of {len(specs)}"
    lines = [verdict([*unreadable, *(f"{name}: FAILED" for name in failed)], passed), ""]
    lines += aligned(
        [(str(spec["spec"]), PASSED if spec.get("passed") is True else FAILED) for spec in specs],
        "  ",
    )
    for spec in specs:
        status = PASSED if spec.get("passed") is True else FAILED
        lines += ["", f"==== {spec['spec']}: {status}", str(spec.get("output", "")).rstrip()]
        if spec.get("diff"):
            lines += ["---- differences from the expected output", scrub(str(spec["diff"]), root)]
    return Part.of(ISOLATION, "\n".join(lines), unreadable)


def boundary_part(table: Path, reports: Sequence[JunitReport]) -> Part:
    """13_executor_boundary.txt: each attempt per role, its SQLSTATE and this run's result."""
    try:
        data = tomllib.loads(table.read_text(encoding="utf-8"))
        proof, attempts = str(data["proof"]), list(data["attempt"])
        rows = [
            (str(a["id"]), role, _expected(a, role)) for a in attempts for role in BOUNDARY_ROLES
        ]
    except FileNotFoundError:
        return Part.of(EXECUTOR_BOUNDARY, f"NOT RUN: no boundary table at {display_path(table)}")
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        return Part.unavailable(EXECUTOR_BOUNDARY, f"{display_path(table)}: {reason(error)}")
    outcomes = {case.node_id: case.outcome for report in reports for case in report.cases}
    results = [
        (attempt_id, role, sqlstate, _status(outcomes.get(f"{proof}[{role}-{attempt_id}]")))
        for attempt_id, role, sqlstate in rows
    ]
    problems = [
        f"{role}-{attempt_id}: {status}"
        for attempt_id, role, _, status in results
        if status != PASSED
    ]
    passed = f"every attempt got its expected SQLSTATE: {len(results)} of {len(results)}"
    lines = [
        verdict(problems, passed),
        "",
        f"source: {display_path(table)}",
        f"proof:  {proof}[<role>-<attempt>]",
        "roles:  "
        + ", ".join(f"symphony_{role}" for role in BOUNDARY_ROLES)
        + " (each as a login granted only that role)",
        "00000: the attempt runs; its check held, or (without one) no outbox row changed",
        "harden: the attempt ran after `outbox-db harden` (the optional superuser step)",
        "",
        *aligned([("attempt", "role", "SQLSTATE", "result"), *results], "  "),
        "",
        "what each attempt does:",
    ]
    for attempt in attempts:
        harden = " (after outbox-db harden)" if attempt.get("harden") is True else ""
        lines += ["", f"  {attempt['id']}: {attempt['attempt']}{harden}", f"    {attempt['sql']}"]
    return Part.of(EXECUTOR_BOUNDARY, "\n".join(lines))


def _expected(attempt: Mapping[str, object], role: str) -> str:
    """The attempt's SQLSTATE for `role`: its by_role entry, else the attempt's own."""
    by_role = attempt.get("by_role", {})
    if not isinstance(by_role, Mapping):
        msg = f"{attempt.get('id')}: by_role is not a table"
        raise TypeError(msg)
    return str(by_role.get(role, attempt["sqlstate"]))


def _status(outcome: CaseOutcome | None) -> str:
    if outcome is CaseOutcome.PASSED:
        return PASSED
    if outcome is CaseOutcome.FAILED:
        return FAILED
    return NOT_RUN
