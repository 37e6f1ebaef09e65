"""Three renderings of a report: for people, for the evidence bundle (JSON), for code scanning.

All three are deterministic: the same tree gives byte-identical output (sorted, no
timestamps, no absolute paths).
"""

from __future__ import annotations

import json
from importlib.metadata import version
from typing import TYPE_CHECKING, Any, Final

import attrs
from sarif_kit import Location, Result, SarifBuilder
from sarif_kit import Rule as SarifRule

from outbox_guardrails.inventory import Area
from outbox_guardrails.model import Disposition

if TYPE_CHECKING:
    from outbox_guardrails.engine import Outcome, Report
    from outbox_guardrails.model import Rule

__all__ = ["render_json", "render_sarif", "render_text"]

TOOL: Final = "outbox-guardrails"
_SARIF_LEVEL: Final = {
    Disposition.ERROR: "error",
    Disposition.WARNING: "warning",
    Disposition.WAIVED: "note",
    Disposition.EXEMPT: "note",
}
_SUPPRESSION: Final = {Disposition.WAIVED: "inSource", Disposition.EXEMPT: "external"}


def render_text(report: Report) -> str:
    """A summary for people: each finding with its snippet, why it is unsafe and how to fix it."""
    rules = {rule.id: rule for rule in report.rules}
    lines = [_headline(report), ""]
    for outcome in report.outcomes:
        if outcome.disposition in (Disposition.ERROR, Disposition.WARNING):
            lines += _finding_block(outcome, rules[outcome.finding.rule_id])
    quiet = [
        o for o in report.outcomes if o.disposition in (Disposition.WAIVED, Disposition.EXEMPT)
    ]
    if quiet:
        lines.append(f"waived or exempt ({len(quiet)}):")
        lines += [
            f"  {_where(o)} {o.finding.rule_id} [{o.disposition}] -- {o.because}" for o in quiet
        ]
        lines.append("")
    lines.append(f"inline waivers ({len(report.waivers)}):")
    lines += [f"  {w.path}:{w.line} {w.rule_id} -- {w.reason}" for w in report.waivers]
    lines.append(f"scope file entries ({len(report.scope)}):")
    lines += [f"  {e.path} {','.join(e.rules)} -- {e.reason}" for e in report.scope]
    return "\n".join(lines) + "\n"


def render_json(report: Report) -> str:
    """The whole report as stable JSON: rules, findings with their fate, waivers, scope, usages.

    `database_usages` lists every role switch and connection (allowed ones too) with its area;
    `areas` gives the areas in the order a reader shows them.
    """
    document = {
        "tool": TOOL,
        "version": version(TOOL),
        "enforce_no_db_query": report.enforce,
        "summary": {d.value: report.count(d) for d in Disposition}
        | {"waivers": len(report.waivers)},
        "rules": [attrs.asdict(rule) for rule in report.rules],
        "findings": [
            attrs.asdict(o.finding) | {"disposition": o.disposition.value, "because": o.because}
            for o in report.outcomes
        ],
        "waivers": [attrs.asdict(waiver) for waiver in report.waivers],
        "scope": [attrs.asdict(entry) for entry in report.scope],
        "database_usages": {
            "areas": [area.value for area in Area],
            "usages": [attrs.asdict(usage) for usage in report.usages],
        },
    }
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


def render_sarif(report: Report) -> str:
    """SARIF 2.1.0 for GitHub code scanning; waived and exempt findings carry suppressions."""
    builder = SarifBuilder(TOOL, tool_version=version(TOOL))
    for rule in report.rules:
        builder.add_rule(_sarif_rule(rule))
    for outcome in report.outcomes:
        builder.add_result(_sarif_result(outcome))
    log = builder.build()
    for result, outcome in zip(log["runs"][0]["results"], report.outcomes, strict=True):
        if kind := _SUPPRESSION.get(outcome.disposition):
            result["suppressions"] = [{"kind": kind, "justification": outcome.because}]
    return json.dumps(log, indent=2, sort_keys=True) + "\n"


def _headline(report: Report) -> str:
    counts = ", ".join(f"{report.count(d)} {d.value}" for d in Disposition)
    enforcement = "ENFORCE_NO_DB_QUERY=1" if report.enforce else "rules OBX001-OBX004 only warn"
    verdict = "FAILED" if report.failed else "passed"
    return f"{TOOL} {verdict}: {counts} ({enforcement})"


def _where(outcome: Outcome) -> str:
    return f"{outcome.finding.path}:{outcome.finding.line}:{outcome.finding.column}"


def _finding_block(outcome: Outcome, rule: Rule) -> list[str]:
    finding = outcome.finding
    detail = f" ({finding.detail})" if finding.detail else ""
    return [
        f"{_where(outcome)} {rule.id} {rule.name} [{outcome.disposition}]{detail}",
        f"    {finding.snippet}",
        f"    why: {rule.anti_pattern}",
        f"    fix: {rule.best_practice}",
        "",
    ]


def _sarif_rule(rule: Rule) -> SarifRule:
    help_text = "\n\n".join(
        [rule.summary, f"Anti-pattern: {rule.anti_pattern}", f"Best practice: {rule.best_practice}"]
    )
    level = "error" if not rule.gated else "warning"
    return SarifRule(
        id=rule.id,
        name=rule.name,
        short_description=rule.summary,
        full_description=help_text,
        default_level=level,
    )


def _sarif_result(outcome: Outcome) -> Result:
    finding = outcome.finding
    message: Any = f"{finding.rule_id}: {finding.detail or finding.snippet}"
    location = Location(
        uri=finding.path,
        start_line=finding.line,
        start_column=finding.column,
        snippet=finding.snippet,
    )
    return Result(
        rule_id=finding.rule_id,
        message=message,
        location=location,
        level=_SARIF_LEVEL[outcome.disposition],
    )
