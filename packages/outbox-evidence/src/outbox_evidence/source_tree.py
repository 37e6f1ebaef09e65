"""The parts the source tree answers for, read from the guardrails' JSON report: 06 and 07.

The gate's guardrails step writes the report (`outbox-guardrails check --json`); this
package reads it as a file and never runs the checks, so it needs no outbox-guardrails.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Final

from outbox_evidence.layout import GRANTS, GUARDRAILS, ROLE_USAGE, Part, verdict
from outbox_evidence.text import aligned, display_path, reason

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

__all__ = ["guardrails_part", "role_usage_part"]

BOUNDARY: Final = "packages/outbox-db"
PRODUCTION: Final = "production"
WRITTEN_BY: Final = "outbox-guardrails check --json"


def role_usage_part(report_json: Path) -> Part:
    """06_role_usage.txt: every role switch and connection, by kind of code and package."""
    return _from_report(ROLE_USAGE, report_json, _role_usage)


def guardrails_part(report_json: Path) -> Part:
    """07_guardrails.txt: the findings with their fate, the waivers and the scope file."""
    return _from_report(GUARDRAILS, report_json, _guardrails)


def _from_report(name: str, path: Path, render: Callable[[dict[str, Any], str], Part]) -> Part:
    """`render(document, source)` of the report at `path`, or the part MISSING with why."""
    if not path.exists():
        return Part.unavailable(name, f"{display_path(path)}: not found (`{WRITTEN_BY}` writes it)")
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        source = f"{display_path(path)} (written by `{WRITTEN_BY}`)"
        part = render(document, source)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        return Part.unavailable(name, f"{display_path(path)}: {reason(error)}")
    except (KeyError, TypeError, AttributeError) as error:  # another tool version's layout
        return Part.unavailable(name, f"{display_path(path)}: unexpected layout ({error!r})")
    return part


def _role_usage(document: dict[str, Any], source: str) -> Part:
    inventory = document["database_usages"]
    usages = inventory["usages"]
    outside = [
        f"{u['path']}:{u['line']} {u['kind']}"
        for u in usages
        if u["area"] == PRODUCTION and not u["in_boundary"]
    ]
    lines = [
        f"source: {source}",
        verdict(outside, f"production code switches roles and connects only inside {BOUNDARY}"),
        "found with the predicates of guardrail rules OBX002 (connections) and OBX003 (role",
        "switches), over Python, SQL files, SQL in Python strings and PL/pgSQL bodies.",
        f"grants as the catalog reports them: {GRANTS} (one line per object and grantee).",
    ]
    for area in inventory["areas"]:
        in_area = sorted((u for u in usages if u["area"] == area), key=_by_package)
        lines += ["", f"[{area}] {len(in_area)}"]
        lines += aligned(
            [[u["package"], u["kind"], f"{u['path']}:{u['line']}", u["detail"]] for u in in_area],
            "  ",
        )
    return Part.of(ROLE_USAGE, "\n".join(lines))


def _by_package(usage: dict[str, Any]) -> tuple[str, str, int]:
    return usage["package"], usage["path"], usage["line"]


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
