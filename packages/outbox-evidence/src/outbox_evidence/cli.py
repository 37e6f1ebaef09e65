"""`outbox-evidence`: generate the audit evidence bundle, and verify one."""

from __future__ import annotations

from pathlib import Path
from typing import Final

import click

from outbox_evidence.archive import pack
from outbox_evidence.bundle import BundleError, Inputs, build, write
from outbox_evidence.controls import DEFAULT_CONTROLS, render_controls
from outbox_evidence.ledger_cli import (
    ARCHIVE_OPTION,
    checkpoint_command,
    checkpoint_key_command,
    verify_ledger_command,
)
from outbox_evidence.reliability import DEFAULT_BOUNDARY, DEFAULT_ISOLATION
from outbox_evidence.signing import KeyError_, PublicKey
from outbox_evidence.verify import verify

DEFAULT_OUT: Final = Path("reports/outbox-evidence")
DEFAULT_ARCHIVE: Final = Path("reports/outbox-evidence.tar.gz")
DEFAULT_MANIFEST: Final = Path("proofs.toml")
DEFAULT_GUARDRAILS_JSON: Final = Path("reports/guardrails/guardrails.json")
PathType: Final = click.Path(path_type=Path)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="outbox-evidence")
def main() -> None:
    """A deterministic evidence bundle for the payments outbox that an auditor can re-check."""


@main.command()
@click.option(
    "--url",
    envvar=["OUTBOX_EVIDENCE_DB_URL", "DATABASE_URL"],
    show_envvar=True,
    help=(
        "Database to read the catalog from, as symphony_auditor (under the database's role "
        "prefix, if it has one). Never written anywhere."
    ),
)
@click.option(
    "--out",
    type=PathType,
    default=DEFAULT_OUT,
    show_default=True,
    help="Bundle directory, replaced on each run.",
)
@click.option(
    "--junit",
    type=PathType,
    multiple=True,
    help="JUnit XML of a test run (repeatable), e.g. reports/junit/integration.xml.",
)
@click.option(
    "--manifest",
    type=PathType,
    default=DEFAULT_MANIFEST,
    show_default=True,
    help="The invariant-to-proof manifest.",
)
@click.option(
    "--guardrails-json",
    type=PathType,
    default=DEFAULT_GUARDRAILS_JSON,
    show_default=True,
    help="The guardrails report (`outbox-guardrails check --json`): its findings and its "
    "inventory of database access; absent: both parts MISSING.",
)
@click.option(
    "--proof-controls",
    type=PathType,
    default=Path(DEFAULT_CONTROLS),
    show_default=True,
    help="JUnit XML of `nox -s proof_controls`, one per sabotage; absent: listed as not run.",
)
@click.option(
    "--isolation",
    type=PathType,
    default=Path(DEFAULT_ISOLATION),
    show_default=True,
    help="JSON reports of the isolation specs, one per spec; absent: listed as not run.",
)
@click.option(
    "--boundary",
    type=PathType,
    default=Path(DEFAULT_BOUNDARY),
    show_default=True,
    help="The roles' boundary table (attempt -> SQLSTATE per role) whose results to list; "
    "relative to --root.",
)
@click.option(
    "--root",
    type=PathType,
    default=Path(),
    help="The repository the proofs and reports belong to (default: the working directory).",
)
@click.option(
    "--checkpoints",
    type=PathType,
    default=None,
    help="The checkpoint exporter's directory: its signed checkpoints and keys go in the bundle "
    "and the ledger is verified against them.",
)
@click.option(
    "--public-key",
    "public_keys",
    multiple=True,
    help="A key trusted to sign checkpoints, 'ed25519:<hex>' (repeatable).",
)
@ARCHIVE_OPTION
def generate(  # noqa: PLR0913, PLR0917 - one parameter per documented option
    url: str | None,
    out: Path,
    junit: tuple[Path, ...],
    manifest: Path,
    guardrails_json: Path,
    proof_controls: Path,
    isolation: Path,
    boundary: Path,
    root: Path,
    checkpoints: Path | None,
    public_keys: tuple[str, ...],
    archive: Path | None,
) -> None:
    """Write the bundle to OUT; exit 1 (after writing what it can) when a part is missing."""
    try:
        keys = tuple(PublicKey.parse(text) for text in public_keys)
    except KeyError_ as error:
        raise click.BadParameter(str(error), param_hint="--public-key") from error
    inputs = Inputs(
        root=root.resolve(),
        url=url,
        junit=junit,
        manifest=manifest,
        guardrails_json=guardrails_json,
        proof_controls=proof_controls,
        isolation=isolation,
        boundary=root.resolve() / boundary,
        checkpoints=checkpoints,
        public_keys=keys,
        archive=archive,
    )
    bundle = build(inputs)
    try:
        write(bundle, out)
    except (BundleError, OSError) as error:
        raise click.ClickException(str(error)) from error
    for diagnostic in bundle.diagnostics:
        click.echo(f"outbox-evidence: database: {diagnostic}", err=True)
    for name, reason in bundle.missing:
        click.echo(f"outbox-evidence: {name}: MISSING: {reason}", err=True)
    click.echo(f"outbox-evidence: wrote {len(bundle.parts) + 1} files to {out}", err=True)
    raise SystemExit(1 if bundle.missing else 0)


@main.command(name="verify")
@click.argument("directory", type=PathType, default=DEFAULT_OUT)
@click.option(
    "--manifest",
    type=PathType,
    default=None,
    help="Check the proofs against this manifest instead of the bundle's own copy.",
)
@ARCHIVE_OPTION
def verify_command(directory: Path, manifest: Path | None, archive: Path | None) -> None:
    """Check DIRECTORY's checksums, files, verdicts and proofs; exit 1 naming what is wrong."""
    problems = verify(directory, manifest, archive)
    for problem in problems:
        click.echo(f"outbox-evidence verify: {problem}", err=True)
    if problems:
        click.echo(f"outbox-evidence verify: {directory}: {len(problems)} problems", err=True)
        raise SystemExit(1)
    click.echo(f"outbox-evidence verify: {directory}: OK")


@main.command(name="pack")
@click.argument("directory", type=PathType, default=DEFAULT_OUT)
@click.option(
    "--out", type=PathType, default=DEFAULT_ARCHIVE, show_default=True, help="Archive to write."
)
def pack_command(directory: Path, out: Path) -> None:
    """Pack DIRECTORY into a reproducible .tar.gz: the same bundle gives the same bytes."""
    if not (directory / "SHA256SUMS").is_file():
        msg = f"{directory} is not an evidence bundle (no SHA256SUMS): run generate first"
        raise click.ClickException(msg)
    count = pack(directory, out)
    click.echo(f"outbox-evidence pack: {count} files from {directory} -> {out}")


@main.command(name="controls")
@click.argument("reports", type=PathType, default=Path(DEFAULT_CONTROLS))
def controls_command(reports: Path) -> None:
    """Summarise the proof controls' JUnit XML in REPORTS; exit 1 if a sabotage went unnoticed."""
    text, blind = render_controls(reports)
    click.echo(text)
    if blind or not reports.is_dir():
        raise SystemExit(1)


main.add_command(checkpoint_key_command)
main.add_command(checkpoint_command)
main.add_command(verify_ledger_command)
