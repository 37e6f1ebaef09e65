"""Per-rail send slots: how many items of each rail a relayer may claim now.

Each rail has its own cap on sends in flight (`max_in_flight` in the rails file, at most the
process's OUTBOX_CONCURRENCY), under it a window grown from the rail's answers
(send_window.py), and optionally a rate (`rate_per_second`, a token bucket holding one
second's worth). A claim asks for no more of a rail than it can start at once: an item leased
to wait for a slot would spend its lease waiting, and a slow rail would hold items a faster
relayer could send. The room left under OUTBOX_CONCURRENCY is shared among the rails in
turn, one slot each round, so a rail with a deep backlog cannot take another's share.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import TYPE_CHECKING, Final

import attrs

from outbox_relayer.send_window import SendWindow

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

__all__ = ["ANNOUNCE_SECONDS", "CLAIMS_IN_WINDOW_FLOOR", "RailLimit", "RailSlots"]

# A relayer claims at least this often, idle or with every slot taken, so the database keeps
# seeing it serve its rails (outbox_unserved_rails counts a rail unserved after 60 s).
ANNOUNCE_SECONDS: Final = 20.0
# A rail's send window starts at this many full claims (or its cap, if lower).
CLAIMS_IN_WINDOW_FLOOR: Final = 2


@attrs.frozen
class RailLimit:
    """One rail's caps in one relayer process."""

    max_in_flight: int
    rate_per_second: float | None = None


class RailSlots:
    """The claim plan of one relayer: {rail_type: items to claim now}."""

    def __init__(
        self,
        limits: Mapping[str, RailLimit],
        *,
        concurrency: int,
        batch_size: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._limits = dict(limits)
        self._concurrency = concurrency
        self._batch_size = batch_size
        self._clock = clock
        self._tokens = {
            rail: max(1.0, limit.rate_per_second)
            for rail, limit in limits.items()
            if limit.rate_per_second is not None
        }
        self._windows = {
            rail: SendWindow(floor=CLAIMS_IN_WINDOW_FLOOR * batch_size, cap=limit.max_in_flight)
            for rail, limit in limits.items()
        }
        self._refilled_at = clock()
        self._last_claim = -ANNOUNCE_SECONDS
        # Each rail's window as the last plan sized it (what the relayer's gauge shows).
        self.windows = {rail: window.floor for rail, window in self._windows.items()}

    def plan(self, running: Iterable[str], *, most: int) -> dict[str, int]:
        """Items of each rail to claim, at most `most` in all, given the sends holding a slot.

        `running` gives a rail type per send in flight; `most` is what else bounds the claim
        (the payload bytes the relayer holds).
        """
        self._refill()
        in_flight = Counter(running)
        now = self._clock()
        self.windows = {rail: window.size(now) for rail, window in self._windows.items()}
        free = {rail: self._free(rail, in_flight[rail]) for rail in self._limits}
        room = min(self._batch_size, self._concurrency - sum(in_flight.values()), most)
        plan = dict.fromkeys(self._limits, 0)
        while room > 0 and any(plan[rail] < free[rail] for rail in plan):
            for rail in plan:
                if room > 0 and plan[rail] < free[rail]:
                    plan[rail] += 1
                    room -= 1
        return plan

    def claimed(self, plan: Mapping[str, int], rail_types: Iterable[str]) -> bool:
        """Take tokens for what a claim returned; True when a rail may have more due."""
        self._last_claim = self._clock()
        got = Counter(rail_types)
        for rail in self._tokens:
            self._tokens[rail] -= got[rail]
        return any(count and got[rail] == count for rail, count in plan.items())

    def answered(self, rail: str, latency_seconds: float) -> None:
        """One answer from `rail` that took `latency_seconds`: it sizes the rail's window."""
        if rail in self._windows:
            self._windows[rail].answered(latency_seconds, self._clock())

    def announcement_due(self) -> bool:
        """Whether the database has not seen this relayer claim for ANNOUNCE_SECONDS."""
        return self._clock() - self._last_claim >= ANNOUNCE_SECONDS

    def _free(self, rail: str, in_flight: int) -> int:
        free = max(0, self.windows[rail] - in_flight)
        if rail in self._tokens:
            free = min(free, int(self._tokens[rail]))
        return free

    def _refill(self) -> None:
        now = self._clock()
        elapsed, self._refilled_at = now - self._refilled_at, now
        for rail, tokens in self._tokens.items():
            rate = self._limits[rail].rate_per_second or 0.0
            self._tokens[rail] = min(max(1.0, rate), tokens + elapsed * rate)
