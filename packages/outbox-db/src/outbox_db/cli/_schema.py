"""The schema's commands: migrate, harden, the regression query, the schema snapshot."""

from __future__ import annotations

import click

from outbox_db.audit import CatalogAudit
from outbox_db.cli._common import fail_clearly, url_option
from outbox_db.harden import harden as harden_database
from outbox_db.migrate import migrate
from outbox_db.records import Role
from outbox_db.schema_snapshot import schema_snapshot

__all__ = ["harden", "migrate_command", "regression", "schema_snapshot_command"]


@click.command(name="migrate")
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

    fail_clearly(run)


@click.command()
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

    fail_clearly(run)


@click.command(name="schema-snapshot")
@url_option
def schema_snapshot_command(url: str) -> None:
    """Print the schema of a freshly migrated database, as schema/current.sql holds it.

    Tables, constraints, indexes, triggers, views, every function in full and the grants,
    read from the catalog as symphony_auditor in a fixed order. Run it on a database just
    migrated without a role prefix, on PostgreSQL 15 (the version the committed file names):
    outbox-db schema-snapshot --url URL > schema/current.sql
    """
    fail_clearly(lambda: click.echo(schema_snapshot(url), nl=False))


@click.command()
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

    fail_clearly(run)
