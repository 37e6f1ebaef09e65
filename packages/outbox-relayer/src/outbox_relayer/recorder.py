"""The batch recorder: answered items' outcomes, appended to the ledger in batch completions.

One completion runs at a time, on a thread and a connection of its own, so the next claim
does not wait for the last completion (the two statements are most of the database's work
per item). Answers wait up to RECORD_LINGER_SECONDS for others to share their completion,
unless their rails' sends are all in or the batch is full.

Nothing is lost on the way: when the database is unreachable, the completion's items go back
to the answered, first in line, and are recorded when it returns (or, if the lease ran out
meanwhile, counted as a lost lease: lease repair requeues the item and the rail's idempotency
key absorbs the re-send). A completion refused because the lease was lost is counted and
dropped.
"""

from __future__ import annotations

import concurrent.futures
import time
from typing import TYPE_CHECKING, Final

import attrs

from outbox_db import DatabaseUnavailable, LeaseLost, RetryableConflict, TerminalAlreadyRecorded

if TYPE_CHECKING:
    from collections.abc import Callable, KeysView, Sequence, ValuesView
    from uuid import UUID

    from outbox_db import ClaimedItem, OutboxStore, Outcome
    from outbox_relayer.dispatch import Send
    from outbox_relayer.signals import Signals
    from outbox_relayer.tracing import RelayTracing

__all__ = ["RECORD_LINGER_SECONDS", "Held", "HeldLeases", "Recorder"]

# Answers wait at most this long for others to share their batch completion.
RECORD_LINGER_SECONDS: Final = 0.05
_CYCLE: Final = "relay"


@attrs.define
class Held:
    """A lease this worker holds: its item, its send, and when the lease was last set."""

    item: ClaimedItem
    dispatch: Send
    leased_at: float
    outcome: Outcome | None = None  # set once, when the answer arrives
    answered_at: float = 0.0
    trace: str | None = None  # the enqueue's traceparent, when tracing reads it


class HeldLeases:
    """The leases a worker holds, by outbox_id, and the payload bytes they hold together."""

    def __init__(self) -> None:
        self._by_id: dict[UUID, Held] = {}
        self.payload_bytes = 0  # the stored JSON text of every held item's payload

    def __len__(self) -> int:
        return len(self._by_id)

    def __getitem__(self, outbox_id: UUID) -> Held:
        return self._by_id[outbox_id]

    def get(self, outbox_id: UUID) -> Held | None:
        """The lease held on the item, if any."""
        return self._by_id.get(outbox_id)

    def keys(self) -> KeysView[UUID]:
        """The held items' ids."""
        return self._by_id.keys()

    def values(self) -> ValuesView[Held]:
        """The held leases, oldest claim first."""
        return self._by_id.values()

    def add(self, held: Held) -> None:
        """Hold a new lease on an item.

        It replaces an older lease on the item whose completion (a retry with no delay)
        committed before this worker took in its result.
        """
        if (replaced := self._by_id.get(held.item.outbox_id)) is not None:
            self.payload_bytes -= len(replaced.item.payload_json)
        self._by_id[held.item.outbox_id] = held
        self.payload_bytes += len(held.item.payload_json)

    def remove(self, outbox_id: UUID) -> None:
        """Let go of the item's lease."""
        held = self._by_id.pop(outbox_id)
        self.payload_bytes -= len(held.item.payload_json)


class Recorder:
    """Records the outcomes of the relay loop's held items; `record` once per turn.

    `held` is the relay loop's own map of held leases: an item leaves it when its outcome is
    recorded. `wake` is called (on the recorder's thread) when a completion has finished.
    """

    def __init__(  # noqa: PLR0913 - the recorder's collaborators, each injected for tests
        self,
        store: OutboxStore,
        *,
        held: HeldLeases,
        worker_id: str,
        batch_size: int,
        signals: Signals,
        tracing: RelayTracing,
        wake: Callable[[], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._held = held
        self._worker_id = worker_id
        self._batch_size = batch_size
        self._signals = signals
        self._tracing = tracing
        self._wake = wake
        self._clock = clock
        self._answered: dict[UUID, Held] = {}  # held and answered, oldest answer first
        self._recording: dict[UUID, Held] = {}  # held, their completion running
        self._recorded: concurrent.futures.Future[list[tuple[UUID, bool]]] | None = None
        self._thread = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="outbox-record"
        )

    @property
    def recording(self) -> int:
        """Held items whose completion is running now (they need no send slot)."""
        return len(self._recording)

    @property
    def waiting(self) -> bool:
        """Whether answered items wait for their completion to start."""
        return bool(self._answered)

    def is_recording(self, outbox_id: UUID) -> bool:
        """Whether the item's completion is running now."""
        return outbox_id in self._recording

    def answered(self, held: Held, outcome: Outcome) -> None:
        """Queue a held item's outcome for recording."""
        held.outcome = outcome
        held.answered_at = self._clock()
        self._answered[held.item.outbox_id] = held

    def forget(self, outbox_id: UUID) -> None:
        """Drop a waiting outcome: its lease is lost, the outcome belongs to nobody now."""
        self._answered.pop(outbox_id, None)

    def record(self, *, force: bool) -> None:
        """Hand answered items to the recorder's thread in batches, once enough are in.

        One completion runs at a time; its result is taken in by a later call. With `force`,
        everything answered is recorded before this returns.
        """
        self._settle(wait=force)
        while self._answered and self._recorded is None and (force or self._ready()):
            chunk = list(self._answered.values())[: self._batch_size]
            self._recording = {held.item.outbox_id: held for held in chunk}
            for outbox_id in self._recording:
                del self._answered[outbox_id]
            outcomes = [held.outcome for held in chunk if held.outcome is not None]
            traces = {held.item.outbox_id: held.trace for held in chunk if held.trace}
            self._recorded = self._thread.submit(self._complete, outcomes, traces)
            self._recorded.add_done_callback(lambda _: self._wake())
            self._settle(wait=force)

    def close(self) -> None:
        """Wait for a running completion's thread to end."""
        self._thread.shutdown(wait=True)

    def _ready(self) -> bool:
        """A batch is worth recording: its rails' sends all in, full, or it waited enough.

        Only sends of the answered items' rails are worth waiting for: a slow rail's sends
        in flight would otherwise make every answer of a fast rail wait out the linger.
        """
        answered_rails = {held.item.rail_type for held in self._answered.values()}
        sending = (self._held[i] for i in self._held.keys() - self._answered.keys())
        rails_in = all(held.item.rail_type not in answered_rails for held in sending)
        waited = self._clock() - next(iter(self._answered.values())).answered_at
        full = len(self._answered) >= self._batch_size
        return rails_in or full or waited >= RECORD_LINGER_SECONDS

    def _settle(self, *, wait: bool) -> None:
        """Take in the running completion's result once it has ended (`wait`: wait for it).

        When the database was unreachable, its items go back to the answered, first in line.
        """
        recorded, chunk = self._recorded, self._recording
        if recorded is None or not (wait or recorded.done()):
            return
        self._recorded, self._recording = None, {}
        try:
            results = recorded.result()
        except (DatabaseUnavailable, RetryableConflict):
            self._answered = chunk | self._answered
            raise
        for outbox_id, was_recorded in results:
            # Only the lease this completion was for: an item retried with no delay may
            # already be held again, under a new lease, by a claim made meanwhile.
            if self._held.get(outbox_id) is chunk[outbox_id]:
                self._held.remove(outbox_id)
            if not was_recorded:
                self._signals.lease_lost(outbox_id)
        self._signals.flush(_CYCLE)

    def _complete(
        self, outcomes: Sequence[Outcome], traces: dict[UUID, str]
    ) -> list[tuple[UUID, bool]]:
        """(outbox_id, recorded) for each outcome.

        A terminal-guard refusal fails the whole batch statement, so then each outcome is
        recorded alone and only the refused one is affected.
        """
        with self._tracing.recording(traces, (outcome.lease.outbox_id for outcome in outcomes)):
            try:
                results = self._store.complete_batch(self._worker_id, outcomes)
            except TerminalAlreadyRecorded:
                return [self._complete_one(outcome) for outcome in outcomes]
        return [(result.outbox_id, result.lease_held) for result in results]

    def _complete_one(self, outcome: Outcome) -> tuple[UUID, bool]:
        outbox_id = outcome.lease.outbox_id
        try:
            self._store.complete(self._worker_id, outcome)
        except LeaseLost:
            return outbox_id, False
        except TerminalAlreadyRecorded:
            # The item already has its terminal attempt: nothing more to record, and not a
            # lost lease. The signal says a second terminal was refused by the index.
            self._signals.terminal_guard_hit(outbox_id)
        return outbox_id, True
