"""`outbox-db`: migrate, harden, show the queue's status, inspect and re-drive items, dev server.

Needs the `cli` extra (click and rich); the console script enters through
outbox_db.__main__, which says so in one line when they are missing. One module per kind of
command: the schema's (_schema), on-call's (_queue), the ledger's months (_ledger), the
development server's (_embedded); what they share is _common.
"""

from __future__ import annotations

import click

from outbox_db.cli._embedded import embedded_group
from outbox_db.cli._ledger import archive, months, restore_archive_command
from outbox_db.cli._queue import inspect_command, ordering_group, redrive, status
from outbox_db.cli._schema import harden, migrate_command, regression, schema_snapshot_command

__all__ = ["main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="outbox-db")
def main() -> None:
    """The database side of the payments outbox.

    Each command acts as one of the database's outbox roles; on a database migrated with a
    role prefix, every symphony_* name below carries that prefix.
    """


for command in (
    migrate_command,
    harden,
    regression,
    schema_snapshot_command,
    status,
    inspect_command,
    redrive,
    ordering_group,
    months,
    archive,
    restore_archive_command,
    embedded_group,
):
    main.add_command(command)
