"""On-call commands: the queue's status, items' histories, re-drives, rail ordering."""

from __future__ import annotations

import contextlib
import time
from typing import TYPE_CHECKING

import click
from rich.console import Console
from rich.live import Live

from outbox_db import _render
from outbox_db.cli._common import fail_clearly, json_option, url_option
from outbox_db.records import ItemSelector, Role
from outbox_db.store import OutboxStore

if TYPE_CHECKING:
    import uuid
    from collections.abc import Callable

    from rich.console import RenderableType

__all__ = ["inspect_command", "ordering_group", "redrive", "status"]


@click.command()
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
        fail_clearly(run, role=Role.READONLY)


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


@click.command(name="inspect")
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

    fail_clearly(run, role=Role.READONLY)


@click.command()
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

    fail_clearly(run, role=Role.OPERATOR)


@click.group(name="ordering")
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

    fail_clearly(run, role=Role.OPERATOR)


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

    fail_clearly(run, role=Role.READONLY)
