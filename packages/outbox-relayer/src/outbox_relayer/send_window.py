"""How many sends one rail should have in flight: enough to cover its latency, no more.

Sends beyond the rail's bandwidth-delay product (the answers it gives a second times the
time one takes) add no throughput: they only wait, in the rail's queue and in our event
loop, and each holds a connection the rail must serve. So the window is measured, the way
TCP BBR sizes its congestion window: twice the most answers seen in 100 ms (as a rate) times
the quickest answer, both over the last 10 s. A window that is full while the rail answers
at once lets twice as many out the next round, so a slow rail's window doubles each round
trip up to the cap; a quick one stays near the floor.

The floor is two claims' worth (capped by the rail's own cap): claims stay full batches,
and a relayer that has seen no answer yet starts there rather than opening its whole cap
of connections at once. The 10 s memory lets a rail that turned slow get its larger window
once its quick answers are older than that.
"""

from __future__ import annotations

import collections
import math
from typing import Final

__all__ = ["BUCKET_SECONDS", "GAIN", "MEMORY_SECONDS", "SendWindow"]

# Answers are counted per bucket of this length: the rate is the busiest bucket's.
BUCKET_SECONDS: Final = 0.1
# How long an answer counts towards the rate and the quickest latency.
MEMORY_SECONDS: Final = 10.0
# Sends in flight per bandwidth-delay product: room to find more, and to absorb bursts.
GAIN: Final = 2.0


class SendWindow:
    """One rail's send window, from the answers it gave: at least `floor`, at most `cap`."""

    def __init__(self, *, floor: int, cap: int) -> None:
        self.floor = min(floor, cap)
        self.cap = cap
        # (bucket number, answers in it, quickest of them in seconds), oldest first.
        self._buckets: collections.deque[tuple[int, int, float]] = collections.deque()

    def answered(self, latency_seconds: float, now: float) -> None:
        """Count one answer that took `latency_seconds`, arriving at `now` (monotonic)."""
        bucket = math.floor(now / BUCKET_SECONDS)
        if self._buckets and self._buckets[-1][0] == bucket:
            _, answers, quickest = self._buckets[-1]
            self._buckets[-1] = (bucket, answers + 1, min(quickest, latency_seconds))
        else:
            self._buckets.append((bucket, 1, latency_seconds))
        self._forget(bucket)

    def size(self, now: float) -> int:
        """The sends this rail may have in flight now."""
        self._forget(math.floor(now / BUCKET_SECONDS))
        if not self._buckets:
            return self.floor
        busiest = max(answers for _, answers, _ in self._buckets) / BUCKET_SECONDS
        quickest = min(latency for _, _, latency in self._buckets)
        return max(self.floor, min(self.cap, math.ceil(GAIN * busiest * quickest)))

    def _forget(self, bucket: int) -> None:
        oldest = bucket - round(MEMORY_SECONDS / BUCKET_SECONDS)
        while self._buckets and self._buckets[0][0] <= oldest:
            self._buckets.popleft()
