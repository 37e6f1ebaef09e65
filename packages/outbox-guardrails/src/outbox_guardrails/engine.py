"""Runs every rule over a tree and decides what each finding means for the run."""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

from outbox_guardrails.inventory import Usage, database_usages
from outbox_guardrails.model import Disposition, Exemption, Finding, Rule, Waiver
from outbox_guardrails.rules import ALL_RULES, WAIVER_RULE
from outbox_guardrails.suppression import (
    find_waivers,
    is_exempt,
    is_waived,
    load_scope,
    malformed_waivers,
)
from outbox_guardrails.tree import Tree

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

__all__ = ["Outcome", "Report", "check"]


@attrs.frozen(order=True)
class Outcome:
    """A finding and what became of it."""

    finding: Finding
    disposition: Disposition
    because: str = ""  # the waiver's or exemption's reason


@attrs.frozen
class Report:
    """Everything a run found, sorted, with the rules, waivers and scope it ran with.

    `usages` is the tree's inventory of database access, allowed places included: what the
    evidence bundle lists from the JSON report (06_role_usage.txt).
    """

    enforce: bool
    rules: tuple[Rule, ...]
    outcomes: tuple[Outcome, ...]
    waivers: tuple[Waiver, ...]
    scope: tuple[Exemption, ...]
    usages: tuple[Usage, ...] = ()

    @property
    def failed(self) -> bool:
        """Whether any finding fails the run."""
        return any(outcome.disposition is Disposition.ERROR for outcome in self.outcomes)

    def count(self, disposition: Disposition) -> int:
        """How many findings ended with `disposition`."""
        return sum(outcome.disposition is disposition for outcome in self.outcomes)


def check(root: Path, *, enforce: bool, only: Sequence[str] = ()) -> Report:
    """Scan `root` (limited to the relative paths `only`, when given).

    `enforce` (ENFORCE_NO_DB_QUERY=1) turns the gated rules' warnings into errors. Paths stay
    relative to `root`, which is what tells a rule where a file sits (outbox-db, tests, ...).
    """
    tree = Tree.load(root, only=only)
    scope = load_scope(root)
    waivers = sorted(waiver for source in tree.files for waiver in find_waivers(source))
    findings = [finding for module in ALL_RULES for finding in module.check(tree)]
    findings += [
        Finding(path=source.path, line=line, column=1, rule_id=WAIVER_RULE.id, snippet=comment)
        for source in tree.files
        for line, comment in malformed_waivers(source)
    ]
    rules = {module.RULE.id: module.RULE for module in ALL_RULES} | {WAIVER_RULE.id: WAIVER_RULE}
    outcomes = sorted(
        _decide(f, rules[f.rule_id], waivers, scope, enforce=enforce) for f in set(findings)
    )
    return Report(
        enforce=enforce,
        rules=tuple(sorted(rules.values(), key=lambda rule: rule.id)),
        outcomes=tuple(outcomes),
        waivers=tuple(waivers),
        scope=tuple(scope),
        usages=tuple(database_usages(tree)),
    )


def _decide(
    finding: Finding, rule: Rule, waivers: list[Waiver], scope: list[Exemption], *, enforce: bool
) -> Outcome:
    if exemption := is_exempt(finding, scope):
        return Outcome(finding, Disposition.EXEMPT, exemption.reason)
    if waiver := is_waived(finding, waivers):
        return Outcome(finding, Disposition.WAIVED, waiver.reason)
    if rule.gated and not enforce:
        return Outcome(finding, Disposition.WARNING)
    return Outcome(finding, Disposition.ERROR)
