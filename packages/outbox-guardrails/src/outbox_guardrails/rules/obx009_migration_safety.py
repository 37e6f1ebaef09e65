"""OBX009 migration-safety: squawk's verdict on every versioned migration, waived only inline.

Anti-pattern: a migration under ``schema/v1/`` that takes a lock a busy payments database
cannot afford (a plain ``CREATE INDEX`` or ``DROP INDEX`` on a populated table, a table
rewrite, a constraint validated under ``ACCESS EXCLUSIVE``), waits for a lock with no
``lock_timeout`` (every query queues behind it), or changes a column or drops a function in a
way that breaks the relayers still running the previous release during a rolling deploy.

Best practice: ``SET LOCAL lock_timeout`` and ``SET LOCAL statement_timeout`` at the top of a
migration; indexes built ``CONCURRENTLY`` (in their own migration: not in a transaction);
constraints added ``NOT VALID`` and validated later; a changed function signature under a new
name (STYLE habit 2). A deliberate exception carries ``-- guardrails: allow OBX009 -- <why
this is safe here>`` on its line or the line above; squawk's own ``squawk-ignore`` comments are
disabled, so every exception is listed and counted with a reason.

How: squawk (the ``squawk`` binary of the squawk-cli wheel, next to the running interpreter or
on PATH) reads every ``schema/v1/*.sql`` once, with its JSON reporter, as PostgreSQL 14 (the
oldest server we support), ``--assume-in-transaction`` (the migrator runs each file in its own
transaction, so squawk neither asks for ``IF NOT EXISTS`` on every statement nor for
``CONCURRENTLY`` where it cannot run), and the opt-in ``require-table-schema`` (we
schema-qualify every table, which the search_path hygiene of OBX008 relies on). Each violation
becomes a finding at the line squawk reports (the statement's, or the column's for a column
rule), with squawk's rule name, message and help as the detail. One rule is off:

- ``prefer-bigint-over-int``: our 32-bit integers are bounded counts the database checks
  (``attempt_no`` and ``attempt_count`` below ``max_attempts``, itself 1..1000,
  ``latency_ms``), never identifiers: identifiers are ``uuid`` and sequence numbers ``bigint``,
  and squawk's ``prefer-identity`` still catches a ``serial`` key. Waiving each count column
  would repeat one reason on every line.

When squawk cannot run, every migration fails with that reason: a migration check that
silently passes would be worse than none.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from outbox_guardrails.model import Rule
from outbox_guardrails.rules._util import finding

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from outbox_guardrails.model import Finding
    from outbox_guardrails.sources import SourceFile
    from outbox_guardrails.tree import Tree

RULE: Final = Rule(
    id="OBX009",
    name="migration-safety",
    summary="Migrations under schema/v1/ pass squawk, or carry an inline waiver with a reason.",
    anti_pattern=(
        "A migration that waits for or holds a heavy lock without a timeout, rewrites or "
        "blocks a busy table, or breaks the previous release stalls or breaks live payments."
    ),
    best_practice=(
        "Set lock_timeout and statement_timeout, build indexes CONCURRENTLY, add constraints "
        "NOT VALID, give changed functions new names; waive a deliberate exception inline."
    ),
)
MIGRATIONS: Final = "schema/v1/"
SQUAWK_OPTIONS: Final = (
    "--reporter=json",
    "--pg-version=14.0",
    "--assume-in-transaction",
    "--include=require-table-schema",
    "--exclude=prefer-bigint-over-int",
)
TIMEOUT_SECONDS: Final = 60
# squawk's own suppression comments, disabled: exceptions go through our waivers.
_SQUAWK_IGNORE: Final = re.compile(r"squawk-ignore", re.IGNORECASE)


def check(tree: Tree) -> Iterator[Finding]:
    """Squawk's violations in the versioned migrations, one finding each."""
    migrations = [s for s in tree.files if s.path.startswith(MIGRATIONS) and s.suffix == ".sql"]
    if not migrations:
        return
    binary = squawk_binary()
    if binary is None:
        for source in migrations:
            yield finding(RULE, source, 1, detail="squawk not found: install squawk-cli")
        return
    violations, failure = _run_squawk(binary, migrations)
    if failure:
        for source in migrations:
            yield finding(RULE, source, 1, detail=f"squawk failed: {failure}")
        return
    by_name = {_scratch_name(index): source for index, source in enumerate(migrations)}
    for violation in violations:
        found = by_name.get(Path(str(violation.get("file", ""))).name)
        if found is not None:
            yield finding(RULE, found, int(violation.get("line", 0)) + 1, detail=_detail(violation))


def squawk_binary() -> str | None:
    """The squawk of the running environment (the wheel's script), else the one on PATH."""
    beside = Path(sys.executable).parent / "squawk"
    return str(beside) if beside.is_file() else shutil.which("squawk")


def _run_squawk(binary: str, migrations: Sequence[SourceFile]) -> tuple[list[dict[str, Any]], str]:
    """(violations, "") of one squawk run over copies of the migrations, or ([], why it failed)."""
    with tempfile.TemporaryDirectory(prefix="guardrails-squawk-") as scratch:
        directory = Path(scratch)
        (directory / "squawk.toml").write_text("", encoding="utf-8")  # no stray config applies
        names = []
        for index, source in enumerate(migrations):
            names.append(_scratch_name(index))
            (directory / names[-1]).write_text(
                _SQUAWK_IGNORE.sub("squawk-disabled", source.text), encoding="utf-8"
            )
        try:
            completed = subprocess.run(  # noqa: S603 - our binary, our arguments, no shell
                [binary, "--config=squawk.toml", *SQUAWK_OPTIONS, *names],
                cwd=directory,
                capture_output=True,
                text=True,
                check=False,
                timeout=TIMEOUT_SECONDS,
            )
        except (OSError, subprocess.TimeoutExpired) as error:
            return [], f"{type(error).__name__}: {error}"
    if completed.returncode not in {0, 1}:
        return [], (completed.stderr or completed.stdout).strip()[:500]
    try:
        violations = json.loads(completed.stdout or "[]")
    except json.JSONDecodeError:
        return [], f"unreadable output: {completed.stdout[:200]!r}"
    return [v for v in violations if isinstance(v, dict)], ""


def _scratch_name(index: int) -> str:
    """Copies get neutral names: squawk's output then cannot be confused by odd paths."""
    return f"m{index:05d}.sql"


def _detail(violation: dict[str, Any]) -> str:
    rule = violation.get("rule_name", "squawk")
    message = str(violation.get("message", "")).strip()
    advice = str(violation.get("help") or "").strip()
    return f"{rule}: {message}" + (f" Help: {advice}" if advice else "")
