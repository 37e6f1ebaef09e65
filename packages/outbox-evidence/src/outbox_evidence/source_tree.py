"""The parts the source tree answers for: role switches and connections, and the guardrails."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Final

from outbox_evidence.layout import GRANTS, GUARDRAILS, ROLE_USAGE, Part, verdict
from outbox_evidence.text import aligned, display_path, reason
from outbox_guardrails import check, render_json
from outbox_guardrails.inventory import Area, database_usages
from outbox_guardrails.tree import Tree

if TYPE_CHECKING:
    from pathlib import Path

    from outbox_guardrails.inventory import Usage

__all__ = ["guardrails_part", "role_usage_part"]

BOUNDARY: Final = "packages/outbox-db"


def role_usage_part(root: Path) -> Part:
    """06_role_usage.txt: every role switch and connection, by kind of code and package."""
    usages = database_usages(Tree.load(root))
    outside = [f"{u.path}:{u.line} {u.kind}" for u in usages if u.outside_boundary_in_production]
    lines = [
        verdict(outside, f"production code switches roles and connects only inside {BOUNDARY}"),
        "found with the predicates of guardrail rules OBX002 (connections) and OBX003 (role",
        "switches), over Python, SQL files, SQL in Python strings and PL/pgSQL bodies.",
        f"grants as the catalog reports them: {GRANTS} (one line per object and grantee).",
    ]
    for area in Area:
        in_area = sorted((u for u in usages if u.area is area), key=_by_package)
        lines += ["", f"[{area}] {len(in_area)}"]
        lines += aligned(
            [[u.package, u.kind, f"{u.path}:{u.line}", u.detail] for u in in_area], "  "
        )
    return Part.of(ROLE_USAGE, "\n".join(lines))


def _by_package(usage: Usage) -> tuple[str, str, int]:
    return usage.package, usage.path, usage.line


def guardrails_part(report_json: Path, root: Path) -> Part:
    """07_guardrails.txt from the gate's guardrails JSON, or from a check run now."""
    if report_json.exists():
        return _from_report(report_json)
    document = json.loads(render_json(check(root, enforce=True)))
    return _guardrails(document, "outbox-guardrails check run by generate (ENFORCE_NO_DB_QUERY=1)")


def _from_report(path: Path) -> Part:
    try:
        return _guardrails(
            json.loads(path.read_text(encoding="utf-8")),
            f"{display_path(path)} (written by `nox -s guardrails`)",
        )
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        return Part.unavailable(GUARDRAILS, f"{display_path(path)}: {reason(error)}")
    except (KeyError, TypeError, AttributeError) as error:  # another tool version's layout
        return Part.unavailable(GUARDRAILS, f"{display_path(path)}: unexpected layout ({error!r})")


def _guardrails(document: dict[str, Any], source: str) -> Part:
    return Part.of(GUARDRAILS, "\n".join([f"source: {source}", *_guardrails_lines(document)]))


def _guardrails_lines(document: dict[str, Any]) -> list[str]:
    return [*_summary(document), "", *_findings(document), "", *_waivers(document)]


def _summary(document: dict[str, Any]) -> list[str]:
    errors = [
        f"{f['path']}:{f['line']} {f['rule_id']}"
        for f in document.get("findings", [])
        if f["disposition"] == "error"
    ]
    summary = document.get("summary", {})
    enforce = "ENFORCE_NO_DB_QUERY=1" if document.get("enforce_no_db_query") else "not enforced"
    return [
        verdict(errors, "no finding fails the check"),
        f"tool: {document.get('tool')} {document.get('version')} ({enforce})",
        f"summary: {' '.join(f'{key}={summary[key]}' for key in sorted(summary))}",
    ]


def _findings(document: dict[str, Any]) -> list[str]:
    """Every finding with its fate; waived and exempt ones with the reason they may stay."""
    findings = sorted(
        document.get("findings", []), key=lambda f: (f["path"], f["line"], f["rule_id"])
    )
    return [
        "findings: disposition rule path:line:column -- why it may stay (waived or exempt)",
        *(
            f"  {f['disposition']} {f['rule_id']} {f['path']}:{f['line']}:{f['column']}"
            + (f" -- {f['because']}" if f["because"] else "")
            for f in findings
        ),
    ]


def _waivers(document: dict[str, Any]) -> list[str]:
    """The inline waivers and the scope file's entries, each with its reason."""
    waivers, scope = document.get("waivers", []), document.get("scope", [])
    return [
        f"inline waivers ({len(waivers)}): `guardrails: allow OBXnnn -- reason`",
        *(f"  {w['rule_id']} {w['path']}:{w['line']} -- {w['reason']}" for w in waivers),
        "",
        f"scope file entries ({len(scope)}): guardrails-scope.toml",
        *(f"  {','.join(e['rules'])} {e['path']} -- {e['reason']}" for e in scope),
    ]
