"""`outbox-guardrails`: check a tree and report in text, JSON or SARIF."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Final

import click

from outbox_guardrails.engine import check
from outbox_guardrails.reports import render_json, render_sarif, render_text
from outbox_guardrails.rules import ALL_RULES, WAIVER_RULE
from outbox_guardrails.sources import repository_root

RENDERERS: Final = {"text": render_text, "json": render_json, "sarif": render_sarif}


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="outbox-guardrails")
def main() -> None:
    """Static checks that keep unsafe database patterns out of the outbox (no database needed)."""


@main.command(name="check")
@click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.option(
    "--format",
    "output_format",
    type=click.Choice(sorted(RENDERERS)),
    default="text",
    show_default=True,
)
@click.option(
    "--json",
    "json_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write JSON here.",
)
@click.option(
    "--sarif",
    "sarif_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write SARIF here.",
)
@click.option(
    "--enforce/--no-enforce",
    default=None,
    help="Make OBX001-OBX004 errors (default: on when ENFORCE_NO_DB_QUERY=1, else warnings).",
)
def check_command(
    paths: tuple[Path, ...],
    output_format: str,
    json_file: Path | None,
    sarif_file: Path | None,
    *,
    enforce: bool | None,
) -> None:
    """Scan the repository holding each PATH (default: the whole repository); exit 1 on failure.

    Paths are classified and reported relative to the repository root (git's top level, or
    the first PATH outside a checkout), so a rule knows where a file sits wherever you start.
    """
    enforced = enforce if enforce is not None else os.environ.get("ENFORCE_NO_DB_QUERY") == "1"
    started = time.perf_counter()
    targets = [path.resolve() for path in paths] or [Path.cwd()]
    root = repository_root(targets[0])
    only = [] if not paths else [target.relative_to(root).as_posix() for target in targets]
    report = check(root, enforce=enforced, only=only)
    for file, render in ((json_file, render_json), (sarif_file, render_sarif)):
        if file is not None:
            file.parent.mkdir(parents=True, exist_ok=True)
            file.write_text(render(report), encoding="utf-8")
    click.echo(RENDERERS[output_format](report), nl=False)
    click.echo(f"checked in {time.perf_counter() - started:.2f}s", err=True)
    raise SystemExit(1 if report.failed else 0)


@main.command(name="rules")
def rules_command() -> None:
    """List the rules with what each forbids and how to fix it."""
    for rule in [WAIVER_RULE, *(module.RULE for module in ALL_RULES)]:
        gate = " (warning unless ENFORCE_NO_DB_QUERY=1)" if rule.gated else ""
        click.echo(
            f"{rule.id} {rule.name}{gate}\n    {rule.summary}\n    fix: {rule.best_practice}\n"
        )
