"""Invoke tasks for people: a development database by hand. They call the package CLIs."""

from __future__ import annotations

from typing import TYPE_CHECKING

from invoke.collection import Collection
from invoke.tasks import task

if TYPE_CHECKING:
    from invoke.context import Context


@task(help={"fast": "fsync off: quicker, not durable (never for benchmarks)"})
def up(c: Context, fast: bool = False) -> None:  # noqa: FBT001, FBT002 - invoke maps flags to booleans
    """Start the embedded PostgreSQL (or reuse the running one) and print its URL."""
    c.run(f"outbox-db embedded up {'--fast' if fast else '--durable'}")


@task
def url(c: Context) -> None:
    """Print the URL of the running embedded PostgreSQL."""
    c.run("outbox-db embedded url")


@task
def down(c: Context) -> None:
    """Stop the embedded PostgreSQL and delete its data."""
    c.run("outbox-db embedded down")


@task(help={"url": "database URL (default: the embedded server's)"})
def migrate(c: Context, url: str = "") -> None:
    """Apply the schema to URL, or to the embedded server."""
    target = url or c.run("outbox-db embedded url", hide=True).stdout.strip()
    c.run(f"outbox-db migrate --url '{target}'")


namespace = Collection(Collection("db", up, url, down, migrate))
