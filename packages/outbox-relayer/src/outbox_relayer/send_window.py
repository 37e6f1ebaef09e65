"""How many sends one rail may have in flight: it grows while the rail shows no queueing.

Sends beyond what a rail can take add no throughput: they only wait, in the rail's queue and
in our event loop, and each holds a connection the rail must serve. A relayer that opened its
whole cap at once (a thousand connections to a rail answering in a millisecond) spent its
first tenth of a second connecting. So each rail starts at a floor and grows the way TCP
slow start does, one send per answer (doubling each round trip), while its answers show no
queueing: the quickest of its last 64 answers no slower than 1.5 times the quickest of the
last 10 s, plus 5 ms (HyStart's signal). Queueing holds the window where it is. It never
shrinks: a window sized from the quickest answers alone would shrink to the floor for a
rail whose latency merely varies (most answers quick, some slow), and starve it.

The window is also at least twice the rail's bandwidth-delay product (the most answers in
any 100 ms of the last 10 s, as a rate, times the quickest answer): a rail seconds away
shows it with its first answers, and opens to its cap after one round trip instead of
several. The floor is two claims' worth (capped by the rail's own cap), so claims stay full
batches, and a rail not yet heard from starts there.
"""

from __future__ import annotations

import collections
import math
from typing import Final

__all__ = [
    "BUCKET_SECONDS",
    "GAIN",
    "MEMORY_SECONDS",
    "QUEUEING_FACTOR",
    "QUEUEING_SLACK_SECONDS",
    "SAMPLE",
    "SendWindow",
]

# Answers are counted per bucket of this length: the rate is the busiest bucket's.
BUCKET_SECONDS: Final = 0.1
# How long an answer counts towards the rate and the quickest latency.
MEMORY_SECONDS: Final = 10.0
# The window's least multiple of the bandwidth-delay product.
GAIN: Final = 2.0
# Queueing: the quickest of the last SAMPLE answers beyond this multiple of the quickest of
# the last MEMORY_SECONDS, plus slack. Whole buckets would react too late: a rail answering
# in milliseconds gives hundreds of answers, each growing the window, in one bucket.
SAMPLE: Final = 64
QUEUEING_FACTOR: Final = 1.5
QUEUEING_SLACK_SECONDS: Final = 0.005


class SendWindow:
    """One rail's send window, from the answers it gave: at least `floor`, at most `cap`."""

    def __init__(self, *, floor: int, cap: int) -> None:
        self.floor = min(floor, cap)
        self.cap = cap
        self._grown = self.floor
        # (bucket number, answers in it, quickest of them in seconds), oldest first.
        self._buckets: collections.deque[tuple[int, int, float]] = collections.deque()
        self._quickest = math.inf  # of the buckets kept
        # The answers since the last verdict: how many, and the quickest of them.
        self._sampled, self._sample_quickest = 0, math.inf
        self._queueing = False  # the last sample's verdict

    def answered(self, latency_seconds: float, now: float) -> None:
        """Count one answer that took `latency_seconds`, arriving at `now` (monotonic)."""
        bucket = math.floor(now / BUCKET_SECONDS)
        if self._buckets and self._buckets[-1][0] == bucket:
            _, answers, quickest = self._buckets[-1]
            self._buckets[-1] = (bucket, answers + 1, min(quickest, latency_seconds))
        else:
            self._buckets.append((bucket, 1, latency_seconds))
        self._quickest = min(self._quickest, latency_seconds)
        self._forget(bucket)
        self._judge(latency_seconds)
        if not self._queueing:
            self._grown = min(self.cap, self._grown + 1)

    def size(self, now: float) -> int:
        """The sends this rail may have in flight now."""
        self._forget(math.floor(now / BUCKET_SECONDS))
        if not self._buckets:
            return self._grown
        busiest = max(answers for _, answers, _ in self._buckets) / BUCKET_SECONDS
        product = math.ceil(GAIN * busiest * self._quickest)
        return max(self._grown, min(self.cap, product))

    def _judge(self, latency_seconds: float) -> None:
        """Every SAMPLE answers: whether the quickest of them was slow next to the quickest seen."""
        self._sampled += 1
        self._sample_quickest = min(self._sample_quickest, latency_seconds)
        if self._sampled == SAMPLE:
            limit = QUEUEING_FACTOR * self._quickest + QUEUEING_SLACK_SECONDS
            self._queueing = self._sample_quickest > limit
            self._sampled, self._sample_quickest = 0, math.inf

    def _forget(self, bucket: int) -> None:
        oldest = bucket - round(MEMORY_SECONDS / BUCKET_SECONDS)
        if self._buckets and self._buckets[0][0] <= oldest:
            while self._buckets and self._buckets[0][0] <= oldest:
                self._buckets.popleft()
            self._quickest = min((quickest for _, _, quickest in self._buckets), default=math.inf)
