"""`outbox-db`: migrate a database, show the queue's status, run an embedded server by hand."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Final

import attrs
import click
from rich.console import Console
from rich.table import Table

from outbox_db import embedded
from outbox_db.audit import CatalogAudit
from outbox_db.errors import OutboxError
from outbox_db.migrate import migrate
from outbox_db.records import QueueStatus, Role
from outbox_db.store import OutboxStore

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence


DEFAULT_EMBEDDED_DIR: Final = Path(tempfile.gettempdir()) / f"outbox-embedded-{os.getuid()}"
URL_HELP: Final = "PostgreSQL URL (default: $DATABASE_URL). Its password is never printed."
STATUS_FIGURES: Final = [
    field.name for field in attrs.fields(QueueStatus) if field.name != "rail_type"
]

url_option = click.option("--url", envvar="DATABASE_URL", required=True, help=URL_HELP)
dir_option = click.option(
    "--dir",
    "directory",
    type=click.Path(path_type=Path, file_okay=False),
    default=DEFAULT_EMBEDDED_DIR,
    show_default=True,
    help="Directory holding the embedded server's data and socket.",
)


def _fail_clearly(action: Callable[[], None]) -> None:
    """Turn the boundary's errors into a one-line message and exit status 1."""
    try:
        action()
    except OutboxError as error:
        raise click.ClickException(str(error)) from error


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="outbox-db")
def main() -> None:
    """The database side of the payments outbox."""


@main.command(name="migrate")
@url_option
def migrate_command(url: str) -> None:
    """Apply the shipped schema (schema/v1 then views) to the database, each file once."""

    def run() -> None:
        report = migrate(url, on_apply=lambda name: click.echo(f"applied {name}"))
        click.echo(f"{len(report.applied)} applied, {report.unchanged} already in place")

    _fail_clearly(run)


@main.command()
@url_option
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line, for scripts.")
@click.option(
    "--watch", type=click.FloatRange(min=0.5), help="Refresh every N seconds until Ctrl-C."
)
def status(url: str, *, as_json: bool, watch: float | None) -> None:
    """Show outbox_status_view (due, leased, expired leases, attempts) as symphony_readonly."""

    def run() -> None:
        with OutboxStore.connect(url, role=Role.READONLY) as store:
            while True:
                _print_status(store.status(), as_json=as_json)
                if watch is None:
                    return
                time.sleep(watch)

    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C ends --watch
        _fail_clearly(run)


@main.command()
@url_option
def regression(url: str) -> None:
    """The gate's regression query: ledger rows in the retired DISPATCHING state must be 0.

    Prints the query and its count, as symphony_auditor; exits 1 when the count is not 0.
    """

    def run() -> None:
        with CatalogAudit.open(url) as audit:
            result = audit.dispatching_count()
        click.echo(f"regression query: {result.query}")
        click.echo(f"regression count: {result.count}")
        if result.count:
            msg = f"{result.count} DISPATCHING rows: migrate (0004 requeues them), find the writer"
            raise click.ClickException(msg)

    _fail_clearly(run)


def _print_status(rows: Sequence[QueueStatus], *, as_json: bool) -> None:
    if as_json:
        for row in rows:
            click.echo(json.dumps(attrs.asdict(row), sort_keys=True))
        return
    # One column per rail (the total first), one row per figure: fits any terminal width.
    table = Table(title="outbox status")
    table.add_column("")
    for row in rows:
        table.add_column(row.rail_type or "all rails", justify="right")
    columns = [attrs.asdict(row) for row in rows]
    for name in STATUS_FIGURES:
        table.add_row(
            name.removesuffix("_count").replace("_", " "), *(_cell(c[name]) for c in columns)
        )
    Console().print(table)


def _cell(value: object) -> str:
    return f"{value:.1f}" if isinstance(value, float) else str(value)


@main.group(name="embedded")
def embedded_group() -> None:
    """A throwaway PostgreSQL server from this machine's binaries (for development)."""


@embedded_group.command()
@dir_option
@click.option("--durable/--fast", default=True, help="fsync on (default) or off for speed.")
def up(directory: Path, *, durable: bool) -> None:
    """Start the server (creating it if needed) and print its URL."""

    def run() -> None:
        server = embedded.attach(directory)
        if not server.is_running():
            server = embedded.start(directory, durable=durable)
        click.echo(server.url)

    _fail_clearly(run)


@embedded_group.command()
@dir_option
def url(directory: Path) -> None:
    """Print the URL of the running server."""

    def run() -> None:
        server = embedded.attach(directory)
        if not server.is_running():
            msg = f"no embedded server is running in {directory} (start one with 'embedded up')"
            raise click.ClickException(msg)
        click.echo(server.url)

    _fail_clearly(run)


@embedded_group.command()
@dir_option
def down(directory: Path) -> None:
    """Stop the server and delete its directory."""
    _fail_clearly(lambda: embedded.stop(embedded.attach(directory)))
