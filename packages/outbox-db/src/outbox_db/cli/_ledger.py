"""The ledger's months: list them, and archive those past retention (schema 0019)."""

from __future__ import annotations

import json
from pathlib import Path

import attrs
import click
from rich.console import Console
from rich.table import Table

from outbox_db._month_calls import MONTH
from outbox_db.archiving import (
    DEFAULT_KEEP_MONTHS,
    MIN_KEEP_MONTHS,
    ArchivePolicy,
    archive_ledger,
    restore_archive,
)
from outbox_db.cli._common import fail_clearly, json_option, url_option
from outbox_db.records import Role
from outbox_db.store import OutboxStore

__all__ = ["archive", "months", "restore_archive_command"]


@click.command()
@url_option
@json_option
def months(url: str, *, as_json: bool) -> None:
    """Every month of the ledger, as symphony_readonly: in the ledger, detached, archived.

    "legacy" is the ledger as it was before schema 0019, every earlier month in one partition.
    """

    def run() -> None:
        with OutboxStore.connect(url, role=Role.READONLY, max_size=1) as store:
            found = store.ledger_months()
        if as_json:
            for month in found:
                click.echo(json.dumps(attrs.asdict(month), default=str))
            return
        table = Table(title="ledger months", title_justify="left")
        for heading in ("month", "partition", "in the ledger", "archive", "rows", "sha256"):
            table.add_column(heading, overflow="fold")
        for month in found:
            cells = (month.partition_name or "(dropped)", "yes" if month.attached else "no")
            archive = (month.archive_file, month.archive_rows, month.archive_sha256)
            table.add_row(
                month.ledger_month, *cells, *("" if a is None else str(a) for a in archive)
            )
        Console().print(table)

    fail_clearly(run, role=Role.READONLY)


@click.command()
@url_option
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, writable=True, path_type=Path),
    required=True,
    help="Where the archive files go (ledger-YYYY-MM.jsonl.gz); created if missing.",
)
@click.option(
    "--keep-months",
    type=click.IntRange(min=MIN_KEEP_MONTHS),
    default=DEFAULT_KEEP_MONTHS,
    show_default=True,
    envvar="OUTBOX_LEDGER_KEEP_MONTHS",
    help="Months kept in the ledger, this one excluded ($OUTBOX_LEDGER_KEEP_MONTHS).",
)
@click.option(
    "--through",
    metavar="YYYY-MM",
    default=None,
    callback=lambda _, __, value: _month(value),
    help="Archive no month after this one (a backlog, a month per run); default: every one due.",
)
@click.option(
    "--drop",
    is_flag=True,
    help="Drop each archived month from the database once its file is written and recorded.",
)
def archive(
    url: str, directory: Path, *, keep_months: int, through: str | None, drop: bool
) -> None:
    """Archive the ledger's months older than --keep-months, as symphony_operator.

    A month whose items are all finished leaves the ledger (detached, never DELETEd); its
    rows and their digests go to a reproducible file whose SHA-256 the database records in
    its digested archive log; with --drop the detached month then leaves the database. A
    month with items still pending stays, and is named. Safe to run again after a failure:
    each month resumes where it stopped. Payloads travel as their SHA-256 only.
    """

    def run() -> None:
        with OutboxStore.connect(url, role=Role.OPERATOR, max_size=1) as store:
            policy = ArchivePolicy(keep_months=keep_months, through=through, drop=drop)
            done = archive_ledger(store, directory, policy, report=click.echo)
        click.echo(f"{len(done)} months archived" if done else "nothing to archive")

    fail_clearly(run, role=Role.OPERATOR)


def _month(value: str | None) -> str | None:
    if value is not None and MONTH.match(value) is None:
        msg = f"a month is YYYY-MM (2026-01), not {value!r}"
        raise click.BadParameter(msg)
    return value


@click.command(name="restore-archive")
@url_option
@click.argument(
    "files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
def restore_archive_command(url: str, files: tuple[Path, ...]) -> None:
    """Load archived ledger months (FILES) into --url's outbox_archived_attempts, for SQL.

    For an audit: any PostgreSQL database will do (a scratch one; the table is made if
    missing, rows already there are kept). Each file's rows are checked against their digests
    first; a file with a row that does not match restores nothing. To verify the archive
    against the signed checkpoints, use outbox-evidence verify-ledger --archive.
    """

    def run() -> None:
        for path in files:
            click.echo(f"{path}: {restore_archive(url, path)} attempts restored")

    fail_clearly(run)
