"""Waiting on state, never on time: each wait polls and ends as soon as the state is there."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, LiteralString

from outbox_db.testonly._access import query_no_role

if TYPE_CHECKING:
    from collections.abc import Callable

# Sessions of the test's database waiting for a heavyweight lock: a race a proof has set up.
_LOCK_WAITERS: LiteralString = """
SELECT count(*) FROM pg_catalog.pg_stat_activity
WHERE datname = pg_catalog.current_database() AND wait_event_type = 'Lock'
"""


def wait_for(
    condition: Callable[[], bool], deadline_seconds: float, *, interval: float = 0.02
) -> bool:
    """Whether `condition` became true before the deadline (polling state, not sleeping it out)."""
    ends = time.monotonic() + deadline_seconds
    while time.monotonic() < ends:
        if condition():
            return True
        time.sleep(interval)
    return False


def lock_waiters(url: str) -> int:
    """How many sessions of `url`'s database wait for a lock now."""
    ((count,),) = query_no_role(url, _LOCK_WAITERS)
    return int(count)


def wait_for_lock_waiters(url: str, count: int, deadline_seconds: float) -> bool:
    """Whether exactly `count` sessions of `url`'s database waited for a lock in time."""
    return wait_for(lambda: lock_waiters(url) == count, deadline_seconds)
