"""Puts items' histories together from the reads of one snapshot: queue, ledger and log."""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING
from uuid import UUID  # noqa: TC003 - attrs resolves annotations at runtime

import attrs

from outbox_db.records import ItemHistory

if TYPE_CHECKING:
    from collections.abc import Sequence

    from outbox_db.records import LedgerAttempt, PendingState, RedriveLink

__all__ = ["ItemIdentity", "assemble"]


@attrs.frozen(kw_only=True)
class ItemIdentity:
    """What an item is, the same in its queue row and in each of its attempts."""

    outbox_id: UUID
    instruction_id: str
    participant_id: str
    sequence_id: int
    idempotency_key: str
    rail_type: str


def assemble(
    items: Sequence[ItemIdentity],
    pending: Sequence[PendingState],
    attempts: Sequence[LedgerAttempt],
    links: Sequence[RedriveLink],
) -> list[ItemHistory]:
    """One history per item, in the items' order, each with its attempts in attempt order."""
    queued = {row.outbox_id: row for row in pending}
    by_item: defaultdict[UUID, list[LedgerAttempt]] = defaultdict(list)
    for attempt in attempts:
        by_item[attempt.outbox_id].append(attempt)
    created_by = {link.redrive_outbox_id: link for link in links}
    redriven_by = {link.outbox_id: link for link in links}
    return [
        ItemHistory(
            **attrs.asdict(item),
            pending=queued.get(item.outbox_id),
            attempts=tuple(by_item[item.outbox_id]),
            redrive_of=created_by.get(item.outbox_id),
            redriven_as=redriven_by.get(item.outbox_id),
        )
        for item in items
    ]
