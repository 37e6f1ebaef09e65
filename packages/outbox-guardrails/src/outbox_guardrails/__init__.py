"""outbox-guardrails: static checks that keep unsafe database patterns out of the outbox."""

from outbox_guardrails.engine import Outcome, Report, check
from outbox_guardrails.model import Disposition, Exemption, Finding, Rule, Waiver
from outbox_guardrails.reports import render_json, render_sarif, render_text

__all__ = [
    "Disposition",
    "Exemption",
    "Finding",
    "Outcome",
    "Report",
    "Rule",
    "Waiver",
    "check",
    "render_json",
    "render_sarif",
    "render_text",
]
