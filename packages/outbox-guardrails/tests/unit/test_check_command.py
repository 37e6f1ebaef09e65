"""The command line: help, exit codes, enforcement from the environment, report files."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest
from click.testing import CliRunner

from outbox_guardrails.cli import main

if TYPE_CHECKING:
    from pathlib import Path


@pytest.mark.parametrize("command", [[], ["check"], ["rules"]], ids=["main", "check", "rules"])
def test_every_command_has_help(command: list[str]) -> None:
    """--help works everywhere."""
    result = CliRunner().invoke(main, [*command, "--help"])

    assert result.exit_code == 0
    assert "Usage:" in result.output


def test_gated_rules_fail_only_under_enforce_no_db_query(tmp_path: Path) -> None:
    """Without ENFORCE_NO_DB_QUERY=1 a role switch warns (exit 0); with it, the run fails (exit 1)."""
    (tmp_path / "db.py").write_text('SWITCH = "SET ROLE admin"\n')

    advisory = CliRunner().invoke(main, ["check", str(tmp_path)], env={"ENFORCE_NO_DB_QUERY": "0"})
    enforced = CliRunner().invoke(main, ["check", str(tmp_path)], env={"ENFORCE_NO_DB_QUERY": "1"})

    assert (advisory.exit_code, enforced.exit_code) == (0, 1)
    assert "[warning]" in advisory.output
    assert "[error]" in enforced.output


def test_json_and_sarif_files_are_written_alongside_the_text(tmp_path: Path) -> None:
    """--json and --sarif write their reports; stdout keeps the chosen format."""
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "clean.py").write_text("X = 1\n")

    result = CliRunner().invoke(
        main,
        [
            "check",
            str(tree),
            "--json",
            str(tmp_path / "r.json"),
            "--sarif",
            str(tmp_path / "r.sarif"),
        ],
    )

    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "r.json").read_text())["summary"]["error"] == 0
    assert json.loads((tmp_path / "r.sarif").read_text())["version"] == "2.1.0"
    assert result.output.startswith("outbox-guardrails passed")


def test_rules_lists_every_rule_with_its_fix() -> None:
    """`rules` names each rule and how to fix a finding."""
    result = CliRunner().invoke(main, ["rules"])

    assert result.exit_code == 0
    assert "OBX003 role-switch" in result.output
    assert "fix: " in result.output
