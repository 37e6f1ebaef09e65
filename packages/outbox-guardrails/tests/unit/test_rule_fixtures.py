"""Every rule against its fixtures: cases it must catch and near-misses it must pass.

Fixtures are data (tests/fixtures/OBXnnn.yml, one file per rule): each case lays out files
in an empty tree, runs the whole check with ENFORCE_NO_DB_QUERY semantics, and states whether
that rule must report something there (`expect: fail`, optionally at `lines`) or nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from outbox_guardrails.engine import check
from outbox_guardrails.rules import ALL_RULES

FIXTURES = Path(__file__).parents[1] / "fixtures"


def load_cases() -> list[Any]:
    """One pytest param per case of every fixture file."""
    fixtures = [
        yaml.safe_load(p.read_text(encoding="utf-8")) for p in sorted(FIXTURES.glob("OBX*.yml"))
    ]
    return [
        pytest.param(data["rule"], case, id=f"{data['rule']}-{case['expect']}-{case['name']}")
        for data in fixtures
        for case in data["cases"]
    ]


def test_every_rule_has_fixtures_that_catch_and_pass() -> None:
    """A rule without both a failing and a passing fixture is unproven."""
    for module in ALL_RULES:
        path = FIXTURES / f"{module.RULE.id}.yml"
        assert path.exists(), f"{module.RULE.id} has no fixtures"
        expectations = {case["expect"] for case in yaml.safe_load(path.read_text())["cases"]}
        assert expectations == {"fail", "pass"}, module.RULE.id


@pytest.mark.parametrize(("rule_id", "case"), load_cases())
def test_rule_fixture(tmp_path: Path, rule_id: str, case: dict[str, Any]) -> None:
    """The rule reports the case's violation (at its lines, when given), or nothing for a near-miss."""
    for relative, text in case["files"].items():
        target = tmp_path / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")

    report = check(tmp_path, enforce=True)

    lines = sorted(o.finding.line for o in report.outcomes if o.finding.rule_id == rule_id)
    if case["expect"] == "pass":
        assert lines == [], f"near-miss reported: {report.outcomes}"
    elif "lines" in case:
        assert lines == sorted(case["lines"])
    else:
        assert lines, "violation not reported"
