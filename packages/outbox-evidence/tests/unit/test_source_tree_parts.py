"""The role-usage and guardrails parts, from the guardrails' report: verdicts, listings, bad input."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from outbox_evidence.source_tree import guardrails_part, role_usage_part
from outbox_guardrails import check, render_json

if TYPE_CHECKING:
    from pathlib import Path

REPORT = {
    "tool": "outbox-guardrails",
    "version": "0.1.0",
    "enforce_no_db_query": True,
    "summary": {"error": 1, "exempt": 0, "waived": 1, "warning": 0, "waivers": 1},
    "findings": [
        {
            "path": "src/app.py",
            "line": 3,
            "column": 5,
            "rule_id": "OBX002",
            "disposition": "error",
            "because": "",
        },
        {
            "path": "schema/v1/0002.sql",
            "line": 9,
            "column": 1,
            "rule_id": "OBX009",
            "disposition": "waived",
            "because": "runs in the migration transaction",
        },
    ],
    "waivers": [
        {
            "path": "schema/v1/0002.sql",
            "line": 8,
            "rule_id": "OBX009",
            "reason": "runs in the migration transaction",
        }
    ],
    "scope": [{"path": "tests/*", "rules": ["OBX001", "OBX002"], "reason": "tests must"}],
}


def write_tree(root: Path, files: dict[str, str]) -> Path:
    """A tree holding `files` (relative path -> text)."""
    for relative, text in files.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(text)
    return root


def guardrails_report(root: Path) -> Path:
    """The JSON report `outbox-guardrails check --json` writes for the tree at `root`."""
    report = root / "reports" / "guardrails.json"
    report.parent.mkdir()
    report.write_text(render_json(check(root, enforce=True)))
    return report


def test_a_service_connecting_by_itself_fails_the_role_usage_verdict(tmp_path: Path) -> None:
    """Production code outside outbox-db that connects is named; a benchmark is only listed.

    The report is the guardrails' own, so this also holds the two packages to one format.
    """
    root = write_tree(
        tmp_path,
        {
            "packages/billing/src/billing/db.py": "import psycopg\npsycopg.connect('')\n",
            "benchmarks/raw.py": "import psycopg\npsycopg.connect('')\n",
        },
    )

    lines = role_usage_part(guardrails_report(root)).content.splitlines()

    assert lines[3] == ("verdict: FAIL (packages/billing/src/billing/db.py:2 connection)")
    assert "[scripts] 1" in lines
    assert "  benchmarks  connection  benchmarks/raw.py:2  psycopg.connect" in lines


def test_the_guardrails_report_is_rendered_with_findings_waivers_and_scope(tmp_path: Path) -> None:
    """An error fails the verdict; each waived finding, waiver and scope entry keeps its reason."""
    report = tmp_path / "guardrails.json"
    report.write_text(json.dumps(REPORT))

    lines = guardrails_part(report).content.splitlines()

    assert lines[2:6] == [
        f"source: {report.name} (written by `outbox-guardrails check --json`)",
        "verdict: FAIL (src/app.py:3 OBX002)",
        "tool: outbox-guardrails 0.1.0 (ENFORCE_NO_DB_QUERY=1)",
        "summary: error=1 exempt=0 waived=1 waivers=1 warning=0",
    ]
    assert "  waived OBX009 schema/v1/0002.sql:9:1 -- runs in the migration transaction" in lines
    assert "  error OBX002 src/app.py:3:5" in lines
    assert "  OBX009 schema/v1/0002.sql:8 -- runs in the migration transaction" in lines
    assert "  OBX001,OBX002 tests/* -- tests must" in lines


def test_an_unreadable_or_foreign_guardrails_report_is_missing_with_the_reason(
    tmp_path: Path,
) -> None:
    """Broken JSON, or JSON without the expected fields: MISSING, never a crash."""
    broken, foreign = tmp_path / "broken.json", tmp_path / "foreign.json"
    broken.write_text("{")
    foreign.write_text(json.dumps({"findings": [{"path": "x"}]}))

    assert guardrails_part(broken).missing == (
        "broken.json: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)",
    )
    assert guardrails_part(foreign).missing == (
        "foreign.json: unexpected layout (KeyError('disposition'))",
    )
    assert role_usage_part(foreign).missing == (
        "foreign.json: unexpected layout (KeyError('database_usages'))",
    )


def test_without_a_report_both_parts_are_missing_naming_what_writes_it(tmp_path: Path) -> None:
    """No JSON from the gate: evidence never runs the checks itself, it says what is missing."""
    absent = tmp_path / "absent.json"

    parts = [role_usage_part(absent), guardrails_part(absent)]

    expected = "absent.json: not found (`outbox-guardrails check --json` writes it)"
    assert [part.missing for part in parts] == [(expected,), (expected,)]
