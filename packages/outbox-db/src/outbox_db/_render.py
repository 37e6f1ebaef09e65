"""How the CLI shows the queue's status and items' histories: rich tables, or JSON for scripts."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Final
from uuid import UUID

import attrs
from rich.console import Group
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from collections.abc import Sequence

    from rich.console import RenderableType

    from outbox_db.records import (
        ItemHistory,
        LedgerAttempt,
        QueueStatus,
        RailOrdering,
        RedriveLink,
        UnservedRail,
    )

__all__ = [
    "history_json",
    "history_tables",
    "orderings_json",
    "orderings_table",
    "status_json",
    "status_tables",
]

ALL_RAILS: Final = "all rails"
# (field of QueueStatus, column heading), per table.
QUEUE_COLUMNS: Final = (
    ("due_count", "due"),
    ("scheduled_count", "scheduled"),
    ("waiting_count", "waiting"),
    ("leased_count", "leased"),
    ("expired_lease_count", "expired leases"),
    ("oldest_due_age_seconds", "oldest due age (s)"),
)
UNSERVED_COLUMNS: Final = (
    ("due_count", "due"),
    ("oldest_due_age_seconds", "oldest due age (s)"),
    ("last_served_at", "last served (UTC)"),
)
ATTEMPT_COLUMNS: Final = (
    ("dispatched_count", "DISPATCHED"),
    ("retryable_count", "RETRYABLE"),
    ("failed_count", "FAILED"),
    ("lease_repair_count", "lease repair"),
)
# The attempts table: (heading, whether it may wrap). Times are UTC; detail is the rail's
# reference and the error message.
ATTEMPT_HEADINGS: Final = (
    ("#", False),
    ("state", False),
    ("completed (UTC)", False),
    ("ms", False),
    ("worker", True),
    ("login", True),  # the database login that wrote the attempt (schema 0017)
    ("rail code", True),
    ("error code", True),
    ("detail", True),
)


def _json_value(_: object, __: object, value: object) -> object:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    return value


def _json(value: object) -> str:
    return json.dumps(value, sort_keys=True)


def status_json(rows: Sequence[QueueStatus], unserved: Sequence[UnservedRail]) -> str:
    """One line: {"total": figures, "rails": {rail_type: figures}, "unserved": {...}}."""
    figures = {row.rail_type: attrs.asdict(row, filter=_not_rail_type) for row in rows}
    total = figures.pop(None, {})
    waiting = {
        rail.rail_type: attrs.asdict(rail, filter=_not_rail_type, value_serializer=_json_value)
        for rail in unserved
    }
    return _json({"total": total, "rails": figures, "unserved": waiting})


def _not_rail_type(attribute: attrs.Attribute[object], _: object) -> bool:
    return attribute.name != "rail_type"


def status_tables(
    rows: Sequence[QueueStatus], unserved: Sequence[UnservedRail], caption: str | None = None
) -> RenderableType:
    """The queue, the rails nobody serves, and the attempts by state (all rails first)."""
    return Group(
        _status_table("queue", QUEUE_COLUMNS, rows),
        _status_table("due on rails no relayer serves", UNSERVED_COLUMNS, unserved),
        _status_table("attempts by state", ATTEMPT_COLUMNS, rows, caption),
    )


def _status_table(
    title: str,
    columns: Sequence[tuple[str, str]],
    rows: Sequence[QueueStatus] | Sequence[UnservedRail],
    caption: str | None = None,
) -> Table:
    table = Table(title=title, title_justify="left", caption=caption)
    table.add_column("rail")
    for _, heading in columns:
        table.add_column(heading, justify="right")
    for row in rows:
        figures = attrs.asdict(row)
        cells = [row.rail_type or ALL_RAILS, *(_cell(figures[name]) for name, _ in columns)]
        table.add_row(*map(Text, cells))
    return table


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.1f}"
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    return str(value)


def history_json(items: Sequence[ItemHistory]) -> str:
    """One line: {"items": [history, with its state]}."""
    return _json(
        {
            "items": [
                {**attrs.asdict(item, value_serializer=_json_value), "state": item.state}
                for item in items
            ]
        }
    )


def history_tables(items: Sequence[ItemHistory]) -> RenderableType:
    """Per item: what it is, its queue row, its re-drive links, then its attempts in order."""
    return Group(*(_item_view(item) for item in items))


def _item_view(item: ItemHistory) -> RenderableType:
    table = Table()
    for heading, wraps in ATTEMPT_HEADINGS:
        table.add_column(heading, no_wrap=not wraps, overflow="fold")
    for attempt in item.attempts:
        table.add_row(*map(Text, _attempt_cells(attempt)))
    # Operators' reasons and rails' messages are shown as written, never as rich markup.
    return Group(Text("\n".join(_item_lines(item))), table, Text())


def _item_lines(item: ItemHistory) -> list[str]:
    lines = [
        f"item {item.outbox_id}: {item.state}",
        f"instruction {item.instruction_id}  participant {item.participant_id}",
        f"sequence {item.sequence_id}  rail {item.rail_type}  key {item.idempotency_key}",
    ]
    if item.pending is not None:
        queue = item.pending
        lines.append(
            f"queued since {_cell(queue.created_at)} UTC, {queue.attempt_count} attempts so far, "
            + (
                f"leased by {queue.claimed_by} until {_cell(queue.lease_expires_at)} UTC"
                if queue.claimed_by
                else "waits for the earlier items of its lane (ordered rail)"
                if queue.awaiting_predecessor
                else f"due at {_cell(queue.next_attempt_at)} UTC"
            )
        )
    if (created := item.redrive_of) is not None:
        lines.append(f"re-drive of {created.outbox_id}: {_link(created)}")
    if (redriven := item.redriven_as) is not None:
        lines.append(f"re-driven as {redriven.redrive_outbox_id}: {_link(redriven)}")
    return lines


def orderings_json(entries: Sequence[RailOrdering]) -> str:
    """One line: {"rails": {rail_type: ordered now}, "history": [entries, oldest first]}."""
    return _json(
        {
            "rails": {entry.rail_type: entry.ordered for entry in entries},
            "history": [attrs.asdict(entry, value_serializer=_json_value) for entry in entries],
        }
    )


def orderings_table(entries: Sequence[RailOrdering]) -> RenderableType:
    """The ordering history, oldest first; the last entry of a rail is in force."""
    table = Table(
        title="rail ordering (the last entry of a rail is in force)", title_justify="left"
    )
    for heading in ("#", "rail", "ordered", "by", "at (UTC)", "reason"):
        table.add_column(heading, overflow="fold")
    for entry in entries:
        cells = (entry.entry_no, entry.rail_type, entry.ordered, entry.requested_by)
        table.add_row(*map(Text, map(_cell, (*cells, entry.requested_at, entry.reason))))
    return table


def _link(link: RedriveLink) -> str:
    return (
        f"by {link.requested_by} at {_cell(link.requested_at)} UTC"
        f" (operator log entry {link.entry_no}): {link.reason}"
    )


def _attempt_cells(attempt: LedgerAttempt) -> list[str]:
    detail = " / ".join(filter(None, (attempt.rail_reference, attempt.error_message)))
    return [
        _cell(value)
        for value in (
            attempt.attempt_no,
            str(attempt.state),
            attempt.completed_at,
            attempt.latency_ms,
            attempt.worker_id,
            attempt.recorded_by,
            attempt.rail_code,
            attempt.error_code,
            detail or None,
        )
    ]
