"""The vocabulary of a guardrail run: rules, findings, waivers and exemptions."""

from __future__ import annotations

import enum

import attrs

__all__ = ["Disposition", "Exemption", "Finding", "Rule", "Waiver"]


@attrs.frozen
class Rule:
    """One check: its id and name, and the help text the reports and SARIF show."""

    id: str  # "OBX005"
    name: str  # "delete-on-claim"
    summary: str  # what is forbidden, one line
    anti_pattern: str  # why it is unsafe
    best_practice: str  # how to fix it
    # Rules 1-4 only warn unless ENFORCE_NO_DB_QUERY=1, so a service can adopt them gradually.
    gated: bool = False


@attrs.frozen(order=True)
class Finding:
    """Where a rule matched: path relative to the scanned root, 1-based line and column."""

    path: str
    line: int
    column: int
    rule_id: str
    snippet: str
    detail: str = ""


class Disposition(enum.StrEnum):
    """What became of a finding."""

    ERROR = "error"  # fails the run
    WARNING = "warning"  # a gated rule without ENFORCE_NO_DB_QUERY=1
    WAIVED = "waived"  # an inline waiver with a reason covers it
    EXEMPT = "exempt"  # the scope file lists its path for this rule


@attrs.frozen(order=True)
class Waiver:
    """An inline `guardrails: allow OBXnnn -- reason` comment."""

    path: str
    line: int
    rule_id: str
    reason: str


@attrs.frozen
class Exemption:
    """A scope-file entry: paths that must contain what some rules forbid, and why."""

    path: str  # a glob relative to the root
    rules: tuple[str, ...]
    reason: str
