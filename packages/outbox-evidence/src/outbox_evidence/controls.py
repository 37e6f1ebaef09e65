"""Proof controls: each sabotage migration removed one invariant; its proofs must have failed.

`nox -s proof_controls` runs the proofs of each sabotage (packages/outbox-db/tests/sabotage)
with the invariant removed and keeps one JUnit XML per sabotage, in which the pytest plugin
recorded the suite properties `sabotage` and `invariant`. A sabotage none of whose proofs
failed is a proof that cannot fail: the verdict is FAIL.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from outbox_evidence.junit import CaseOutcome, load_junit
from outbox_evidence.layout import PROOF_CONTROLS, Part, verdict

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["DEFAULT_CONTROLS", "controls_part", "render_controls"]

DEFAULT_CONTROLS: Final = "reports/proof-controls"
NOT_RUN: Final = "NOT RUN: `nox -s proof_controls` had not run when this bundle was made"


def render_controls(reports: Path) -> tuple[str, list[str]]:
    """The table (verdict first) from `reports`' JUnit files, and the sabotages no proof caught."""
    blocks, blind = [], []
    for path in sorted(reports.glob("*.xml")):
        report = load_junit(path)
        properties = dict(report.properties)
        name = properties.get("sabotage", path.stem)
        failed = sorted(case.node_id for case in report.cases if case.outcome is CaseOutcome.FAILED)
        if not failed:
            blind.append(
                f"{name}: no proof failed" + (f" ({report.error})" if report.error else "")
            )
        blocks += [
            f"sabotage: {name}",
            f"  invariant: {properties.get('invariant', 'unknown')}",
            f"  proofs run: {len(report.cases)}, failed: {len(failed)}",
            *(f"  failed: {node_id}" for node_id in failed),
        ]
    if not blocks:
        return NOT_RUN, []
    passed = "every sabotage made at least one of its proofs fail"
    return "\n".join([verdict(blind, passed), "", *blocks]), blind


def controls_part(reports: Path) -> Part:
    """10_proof_controls.txt: the table, or NOT RUN when the controls have not run."""
    text, _ = render_controls(reports) if reports.is_dir() else (NOT_RUN, [])
    return Part.of(PROOF_CONTROLS, text)
