"""Invoke tasks for people: a development database by hand. They call the package CLIs."""

from __future__ import annotations

import os
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


@task(
    help={
        "url": "database URL (default: $OUTBOX_EVIDENCE_DB_URL, $DATABASE_URL, else the embedded"
        " server's)"
    }
)
def evidence(c: Context, url: str = "") -> None:
    """Write reports/outbox-evidence/ from the last test reports, then verify it."""
    target = (
        url
        or os.environ.get("OUTBOX_EVIDENCE_DB_URL")
        or os.environ.get("DATABASE_URL")
        or c.run("outbox-db embedded url", hide=True).stdout.strip()
    )
    junit = " ".join(f"--junit reports/junit/{tier}.xml" for tier in ("unit", "integration"))
    c.run(f"outbox-evidence generate --url '{target}' {junit}", warn=True)
    c.run("outbox-evidence verify")


namespace = Collection(evidence, Collection("db", up, url, down, migrate))
