"""The proof-controls table: a sabotage that no proof noticed fails the verdict."""

from __future__ import annotations

from typing import TYPE_CHECKING

from outbox_evidence.controls import NOT_RUN, controls_part, render_controls

if TYPE_CHECKING:
    from pathlib import Path

CAUGHT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" tests="2" failures="1">
<properties><property name="sabotage" value="index_dropped"/>
<property name="invariant" value="one terminal attempt per item"/></properties>
<testcase classname="packages.outbox-db.tests.integration.test_terminal_guard" name="test_a">
<failure message="boom"/></testcase>
<testcase classname="packages.outbox-db.tests.integration.test_terminal_guard" name="test_b"/>
</testsuite></testsuites>
"""
UNNOTICED = CAUGHT.replace('<failure message="boom"/>', "").replace(
    "index_dropped", "trigger_dropped"
)


def test_every_caught_sabotage_passes_with_its_failed_proofs_listed(tmp_path: Path) -> None:
    """One sabotage, one of its two proofs failed: PASS, and the failed proof is named."""
    (tmp_path / "index_dropped.xml").write_text(CAUGHT)

    text, blind = render_controls(tmp_path)

    assert blind == []
    assert text.splitlines()[0].startswith("verdict: PASS")
    assert "  invariant: one terminal attempt per item" in text
    assert "  proofs run: 2, failed: 1" in text
    assert "  failed: packages/outbox-db/tests/integration/test_terminal_guard.py::test_a" in text


def test_a_sabotage_no_proof_noticed_fails_the_verdict(tmp_path: Path) -> None:
    """A sabotage whose proofs all passed is a proof that cannot fail: FAIL, naming it."""
    (tmp_path / "index_dropped.xml").write_text(CAUGHT)
    (tmp_path / "trigger_dropped.xml").write_text(UNNOTICED)

    text, blind = render_controls(tmp_path)

    assert blind == ["trigger_dropped: no proof failed"]
    assert text.splitlines()[0].startswith("verdict: FAIL (trigger_dropped: no proof failed")


def test_controls_that_never_ran_are_said_not_run(tmp_path: Path) -> None:
    """No reports: the bundle's part says NOT RUN, never PASS."""
    part = controls_part(tmp_path / "absent")

    assert NOT_RUN in part.content
    assert "verdict" not in part.content
