"""Completes items' histories from the reads of one snapshot: queue, ledger and log."""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING

import attrs

if TYPE_CHECKING:
    from collections.abc import Sequence
    from uuid import UUID

    from outbox_db.records import ItemHistory, LedgerAttempt, PendingState, RedriveLink

__all__ = ["assemble"]


def assemble(
    items: Sequence[ItemHistory],
    pending: Sequence[PendingState],
    attempts: Sequence[LedgerAttempt],
    links: Sequence[RedriveLink],
) -> list[ItemHistory]:
    """Each item (its identity read) with its queue row, attempts in order and links."""
    queued = {row.outbox_id: row for row in pending}
    by_item: defaultdict[UUID, list[LedgerAttempt]] = defaultdict(list)
    for attempt in attempts:
        by_item[attempt.outbox_id].append(attempt)
    created_by = {link.redrive_outbox_id: link for link in links}
    redriven_by = {link.outbox_id: link for link in links}
    return [
        attrs.evolve(
            item,
            pending=queued.get(item.outbox_id),
            attempts=tuple(by_item[item.outbox_id]),
            redrive_of=created_by.get(item.outbox_id),
            redriven_as=redriven_by.get(item.outbox_id),
        )
        for item in items
    ]
