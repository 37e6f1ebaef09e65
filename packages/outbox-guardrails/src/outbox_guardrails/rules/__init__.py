"""The rules, one module each (OBXnnn_name.py): a RULE record and a check(tree) generator."""

from __future__ import annotations

import importlib
import pkgutil
from typing import TYPE_CHECKING, Protocol, cast

from outbox_guardrails.model import Rule

if TYPE_CHECKING:
    from collections.abc import Iterable

    from outbox_guardrails.model import Finding
    from outbox_guardrails.tree import Tree

__all__ = ["ALL_RULES", "WAIVER_RULE", "RuleModule"]


class RuleModule(Protocol):
    """What every rule module provides."""

    RULE: Rule

    def check(self, tree: Tree) -> Iterable[Finding]:
        """The findings of this rule in `tree`, before waivers and scope are applied."""
        ...


def _discover() -> tuple[RuleModule, ...]:
    """Every obxNNN_*.py module of this package, in rule-id order."""
    names = sorted(
        info.name for info in pkgutil.iter_modules(__path__) if info.name.startswith("obx")
    )
    return tuple(
        cast("RuleModule", importlib.import_module(f"{__name__}.{name}")) for name in names
    )


ALL_RULES: tuple[RuleModule, ...] = _discover()

WAIVER_RULE = Rule(
    id="OBX000",
    name="waiver-without-reason",
    summary="A guardrails waiver must name its rule ids and give a reason.",
    anti_pattern="A bare `allow OBX002` silences a check with no record of why it is safe.",
    best_practice="Write `guardrails: allow OBX002 -- <why it is safe here>`, or fix the finding.",
)
