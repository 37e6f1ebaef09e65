"""The reports: valid SARIF 2.1.0, stable JSON, and a text summary that says why and how to fix."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from sarif_kit import validation_errors

from outbox_guardrails import Disposition, check, render_json, render_sarif, render_text

if TYPE_CHECKING:
    from pathlib import Path

SCOPE = """
[[exempt]]
path = "docs/*.sql"
rules = ["OBX003"]
reason = "documents the forbidden pattern on purpose"
"""


def plant(root: Path) -> None:
    """A tree with one error, one waived finding and one exempt finding of OBX003."""
    (root / "svc").mkdir()
    (root / "docs").mkdir()
    (root / "svc" / "db.py").write_text(
        'SWITCH = "SET ROLE admin"\n'
        "# guardrails: allow OBX003 -- a demo of the waiver syntax\n"
        'RESET = "RESET ROLE"\n'
    )
    (root / "docs" / "example.sql").write_text("SET ROLE admin;\n")
    (root / "guardrails-scope.toml").write_text(SCOPE)


def test_dispositions_follow_waivers_scope_and_enforcement(tmp_path: Path) -> None:
    """Waived and exempt findings never fail; the rest are errors only when enforced."""
    plant(tmp_path)

    enforced = check(tmp_path, enforce=True)
    advisory = check(tmp_path, enforce=False)

    expected = {("svc/db.py", 1): Disposition.ERROR, ("svc/db.py", 3): Disposition.WAIVED}
    expected[("docs/example.sql", 1)] = Disposition.EXEMPT
    assert expected == {(o.finding.path, o.finding.line): o.disposition for o in enforced.outcomes}
    assert (enforced.failed, advisory.failed) == (True, False)
    assert advisory.count(Disposition.WARNING) == 1


def test_sarif_is_valid_2_1_0_with_help_and_suppressions(tmp_path: Path) -> None:
    """The SARIF log validates against the official schema; waivers and scope become suppressions."""
    plant(tmp_path)

    log = json.loads(render_sarif(check(tmp_path, enforce=True)))

    assert validation_errors(log) == []
    (run,) = log["runs"]
    rule = next(r for r in run["tool"]["driver"]["rules"] if r["id"] == "OBX003")
    assert "Anti-pattern:" in rule["help"]["text"]
    assert "Best practice:" in rule["help"]["text"]
    suppressions = sorted(s["kind"] for r in run["results"] for s in r.get("suppressions", []))
    assert suppressions == ["external", "inSource"]


def test_json_and_sarif_are_byte_identical_across_runs_and_hold_no_absolute_path(
    tmp_path: Path,
) -> None:
    """Same tree, same bytes: sorted, no timestamps, paths relative to the root."""
    plant(tmp_path)

    first = render_json(check(tmp_path, enforce=True)) + render_sarif(check(tmp_path, enforce=True))
    second = render_json(check(tmp_path, enforce=True)) + render_sarif(
        check(tmp_path, enforce=True)
    )

    assert first == second
    assert str(tmp_path) not in first


def test_text_report_shows_snippet_reason_fix_waivers_and_scope(tmp_path: Path) -> None:
    """A person sees where, what, why and how to fix, and every waiver and scope entry."""
    plant(tmp_path)

    text = render_text(check(tmp_path, enforce=True))

    assert text.startswith("outbox-guardrails FAILED: 1 error")
    assert "svc/db.py:1:1 OBX003 role-switch [error]" in text
    assert 'SWITCH = "SET ROLE admin"' in text
    assert "why: " in text
    assert "fix: " in text
    assert "svc/db.py:2 OBX003 -- a demo of the waiver syntax" in text
    assert "docs/*.sql OBX003 -- documents the forbidden pattern on purpose" in text


def test_a_waiver_without_a_reason_waives_nothing_and_fails(tmp_path: Path) -> None:
    """`guardrails: allow OBX003` alone is itself a finding (OBX000) and the finding stands."""
    (tmp_path / "db.py").write_text('SWITCH = "SET ROLE admin"  # guardrails: allow OBX003\n')

    report = check(tmp_path, enforce=True)

    assert sorted((o.finding.rule_id, o.disposition) for o in report.outcomes) == [
        ("OBX000", Disposition.ERROR),
        ("OBX003", Disposition.ERROR),
    ]
