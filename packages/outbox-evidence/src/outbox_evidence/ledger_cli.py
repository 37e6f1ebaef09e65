"""The ledger's tamper evidence on the command line: checkpoint-key, checkpoint, verify-ledger."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Final

import click

from outbox_db.errors import OutboxError
from outbox_evidence.exporter import (
    CheckpointStore,
    ExportReport,
    StoreError,
    metrics_text,
    run_once,
)
from outbox_evidence.ledger_bundle import verify_bundle_ledger
from outbox_evidence.signing import KeyError_, PublicKey, SigningKey

__all__ = [
    "ARCHIVE_OPTION",
    "checkpoint_command",
    "checkpoint_key_command",
    "verify_ledger_command",
]

PathType: Final = click.Path(path_type=Path)
KEY_FILE_ENV: Final = "OUTBOX_CHECKPOINT_KEY_FILE"
ARCHIVE_OPTION: Final = click.option(
    "--archive",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="OUTBOX_LEDGER_ARCHIVE_DIR",
    show_envvar=True,
    default=None,
    help="The archived ledger months (outbox-db archive --dir): their rows are verified with "
    "the live ones; without it an archived row reads as deleted.",
)


@click.command(name="checkpoint-key")
@click.argument("path", type=PathType)
def checkpoint_key_command(path: Path) -> None:
    """Make a new Ed25519 checkpoint key at PATH (mode 0600) and print its public key.

    Give the public key to whoever verifies (auditors, the evidence bundle); keep PATH with the
    exporter only, never in the database's host or in a repository.
    """
    key = SigningKey.generate()
    try:
        key.save(path)
    except FileExistsError as error:
        msg = f"{path} exists: a key is never overwritten (rotate to a new path)"
        raise click.ClickException(msg) from error
    except OSError as error:
        msg = f"{path}: {error.strerror}"
        raise click.ClickException(msg) from error
    click.echo(str(key.public))
    click.echo(f"outbox-evidence checkpoint-key: key id {key.public.key_id} -> {path}", err=True)


@click.command(name="checkpoint")
@click.option(
    "--url",
    envvar=["OUTBOX_EVIDENCE_DB_URL", "DATABASE_URL"],
    show_envvar=True,
    required=True,
    help="Database to read, as symphony_auditor (read only). Never written anywhere.",
)
@click.option(
    "--key-file",
    type=PathType,
    envvar=KEY_FILE_ENV,
    show_envvar=True,
    required=True,
    help="The Ed25519 private key (PKCS#8 PEM, mode 0600) that signs checkpoints.",
)
@click.option(
    "--dir",
    "directory",
    type=PathType,
    required=True,
    help="Where checkpoints are kept, one file each, never rewritten (ship it to write-once "
    "storage).",
)
@click.option(
    "--metrics-file",
    type=PathType,
    default=None,
    help="Write the metrics here after each run (node_exporter's textfile collector).",
)
@click.option(
    "--every",
    type=click.FloatRange(min=1),
    default=None,
    help="Run every SECONDS until stopped; default: once.",
)
@ARCHIVE_OPTION
def checkpoint_command(  # noqa: PLR0913 - one parameter per option
    url: str,
    key_file: Path,
    *,
    directory: Path,
    metrics_file: Path | None,
    every: float | None,
    archive: Path | None,
) -> None:
    """Seal and sign the rows written since the last checkpoint, then verify every row.

    Exit 1 when a run finds a row modified, deleted, inserted or reordered, or a checkpoint
    that does not chain or verify (each named on stderr).
    """
    try:
        key = SigningKey.load(key_file)
    except KeyError_ as error:
        raise click.ClickException(str(error)) from error
    store = CheckpointStore(directory)
    while True:
        report = _run(url, key, store, metrics_file, archive)
        if every is None:
            raise SystemExit(1 if report.problems else 0)
        time.sleep(every)


def _run(
    url: str, key: SigningKey, store: CheckpointStore, metrics: Path | None, archive: Path | None
) -> ExportReport:
    try:
        report = run_once(url, key, store, archive=archive)
    except (OutboxError, StoreError) as error:
        raise click.ClickException(str(error)) from error
    if metrics is not None:
        partial = metrics.with_suffix(".partial")
        partial.write_text(metrics_text(report, dt.datetime.now(tz=dt.UTC)), encoding="utf-8")
        partial.replace(metrics)
    written = report.written
    done = f"checkpoint {written.number}, {len(written.leaves)} rows" if written else "nothing new"
    click.echo(
        f"outbox-evidence checkpoint: {done}; {report.rows} rows verified against "
        f"{report.checkpoints} checkpoints, {report.unsealed} not yet sealed, "
        f"{len(report.problems)} problems",
        err=True,
    )
    for problem in report.problems:
        click.echo(f"outbox-evidence checkpoint: {problem}", err=True)
    return report


@click.command(name="verify-ledger")
@click.argument("bundle", type=PathType, default=Path("reports/outbox-evidence"))
@click.option(
    "--checkpoints",
    type=PathType,
    default=None,
    help="A checkpoint directory to verify against, instead of the bundle's own checkpoints.",
)
@click.option(
    "--public-key",
    "public_keys",
    multiple=True,
    help="A trusted key, 'ed25519:<hex>' (repeatable: old and new keys after a rotation); "
    "default: the keys the bundle carries.",
)
@ARCHIVE_OPTION
@click.option(
    "--recompute",
    is_flag=True,
    help="Recompute every row's digest one by one, also where its checkpoint's rows hash "
    "already matches.",
)
def verify_ledger_command(
    bundle: Path,
    checkpoints: Path | None,
    public_keys: tuple[str, ...],
    archive: Path | None,
    *,
    recompute: bool,
) -> None:
    """Verify every row of BUNDLE's ledger against the signed checkpoints; no database.

    The rows of a checkpoint that signed their hash (format /2) are verified by that one hash
    while they are unchanged; any other row is recomputed from its columns. Names every row
    modified, deleted, inserted or reordered, and every checkpoint that does not chain or
    verify; exit 1 if there is one.
    """
    try:
        keys = [PublicKey.parse(text) for text in public_keys]
        problems, summary = verify_bundle_ledger(
            bundle, checkpoints, keys or None, archive, recompute=recompute
        )
    except (KeyError_, StoreError, OSError, ValueError) as error:
        raise click.ClickException(str(error)) from error
    for problem in problems:
        click.echo(f"outbox-evidence verify-ledger: {problem}", err=True)
    click.echo(f"outbox-evidence verify-ledger: {summary}")
    if problems:
        raise SystemExit(1)
