"""The relayer: leases due items, sends them to their rails concurrently, records the outcomes.

One thread (the caller of `run`) claims, renews and decides what to record. The sends run on
the dispatcher's event loop (dispatch.py), thousands at once if the rails allow, and hand each
answer back through a queue, so a turn costs what arrived, not what is in flight. The batch
recorder (recorder.py) appends the outcomes on a thread and a connection of its own. Each turn
takes in the answers that came back, hands them to the recorder, renews the leases of sends
that have outlived half their lease, and claims more while there is room: a send slot in
the rail's window (rail_slots.py), and payload bytes under the budget (taking in answers
again between the claims of a burst).

A relayer holds at most three database connections, whatever its concurrency: the relay
loop's, the recorder's and the LISTEN for wake-ups; `outbox-relayer run` adds one for lease
repair, which shares the loop's pool (process.py: three pooled, and the LISTEN).
"""

from __future__ import annotations

import queue
import time
from typing import TYPE_CHECKING, Final

import attrs
import structlog

from outbox_db import AttemptState, DatabaseUnavailable, LeaseLost, Outcome, RetryableConflict
from outbox_db.payloads import MAX_PAYLOAD_BYTES
from outbox_relayer.backoff import DatabaseRetry
from outbox_relayer.config import DEFAULT_BYTES_IN_FLIGHT, DEFAULT_CONCURRENCY
from outbox_relayer.dispatch import Dispatcher
from outbox_relayer.rail_slots import RailLimit, RailSlots
from outbox_relayer.recorder import RECORD_LINGER_SECONDS, Held, HeldLeases, Recorder
from outbox_relayer.tracing import RelayTracing, now_ns

if TYPE_CHECKING:
    import threading
    from collections.abc import Callable, Mapping

    from outbox_db import ClaimedItem, EnqueueWakeups, Lease, OutboxStore
    from outbox_relayer.backoff import Backoff
    from outbox_relayer.rails import Rail, RailAnswer
    from outbox_relayer.signals import Signals

__all__ = ["RENEW_AFTER_FRACTION", "Relayer", "RelayerSettings"]

# A dispatch still running after this share of its lease renews the lease.
RENEW_AFTER_FRACTION: Final = 0.5
# Longest single wait, so a stop request is noticed promptly.
MAX_WAIT_SECONDS: Final = 0.25
# Leases are checked for renewal at most this often (and at least four times per horizon).
RENEWAL_CHECK_SECONDS: Final = 1.0
_CYCLE: Final = "relay"
_log = structlog.get_logger("outbox_relayer.relayer")


@attrs.frozen(kw_only=True)
class RelayerSettings:
    """The relayer loop's share of RelayerConfig (see config.py for keys and ranges)."""

    worker_id: str
    batch_size: int = 100
    concurrency: int = DEFAULT_CONCURRENCY
    lease_seconds: int = 30
    poll_interval_seconds: float = 1.0
    shutdown_grace_seconds: float = 10.0
    max_bytes_in_flight: int = DEFAULT_BYTES_IN_FLIGHT
    renew_leases: bool = True  # False only in drills: see RelayerConfig.renew_leases
    listen_url: str | None = attrs.field(default=None, repr=False)  # may hold a password
    # Per-rail caps (rail_slots.py); a rail without one may use every slot.
    rail_limits: Mapping[str, RailLimit] = attrs.field(factory=dict)


class Relayer:
    """Dispatches this worker's leased items; `run` until stopped, or `step` for one turn."""

    def __init__(  # noqa: PLR0913 - the loop's collaborators, each injected for tests
        self,
        store: OutboxStore,
        *,
        rails: Mapping[str, Rail],
        signals: Signals,
        settings: RelayerSettings,
        backoff: Backoff,
        clock: Callable[[], float] = time.monotonic,
        tracing: RelayTracing | None = None,
    ) -> None:
        self.store = store
        self.signals = signals
        self.settings = settings
        self.backoff = backoff
        self._clock = clock
        self._tracing = tracing or RelayTracing.off()
        self._held = HeldLeases()
        # Answers from the sends; None when a completion finished (wakes the loop).
        self._answers: queue.SimpleQueue[tuple[Lease, RailAnswer] | None] = queue.SimpleQueue()
        self._next_renewal_check = 0.0
        self._more_due = True  # the last claim came back full, or none was made yet
        self._next_poll = 0.0
        self._slots = RailSlots(
            {
                rail: settings.rail_limits.get(rail, RailLimit(settings.concurrency))
                for rail in rails
            },
            concurrency=settings.concurrency,
            batch_size=settings.batch_size,
            clock=clock,
        )
        self._dispatcher = Dispatcher(
            rails,
            tracing=self._tracing,
            answered=lambda lease, answer: self._answers.put((lease, answer)),
        )
        self._recorder = Recorder(
            store,
            held=self._held,
            worker_id=settings.worker_id,
            batch_size=settings.batch_size,
            signals=signals,
            tracing=self._tracing,
            wake=lambda: self._answers.put(None),
            clock=clock,
        )

    @property
    def held(self) -> int:
        """Leases this worker holds now: dispatching, or answered and not yet recorded."""
        return len(self._held)

    @property
    def held_bytes(self) -> int:
        """The payload bytes of those leases (their stored JSON text), at most the budget."""
        return self._held.payload_bytes

    @property
    def _room(self) -> int:
        """Items a claim may take now: a send slot each, and payload bytes under the budget.

        Leases whose completion is running need no send slot. A claimed payload may be as
        large as the database allows, so the budget admits one such payload per item claimed
        (one at least, or a large payload would never be sent): the held bytes never exceed
        it, whatever the payloads turn out to be.
        """
        slots = self.settings.concurrency - (len(self._held) - self._recorder.recording)
        spare = (self.settings.max_bytes_in_flight - self._held.payload_bytes) // MAX_PAYLOAD_BYTES
        return min(slots, spare if self._held else max(1, spare))

    def run(self, stop: threading.Event) -> None:
        """Relay until `stop` is set, then shut down gracefully (see `shut_down`)."""
        retry = DatabaseRetry(loop=_CYCLE)
        with self.store.wakeups(self.settings.listen_url) as wakeups:
            self._check_wakeups(wakeups)
            while not stop.is_set():
                try:
                    self.step(wakeups)
                    retry.succeeded()
                except (DatabaseUnavailable, RetryableConflict) as error:
                    retry.failed(error, stop)
                    continue
                self._wait(wakeups, stop)
        self.shut_down()

    def step(self, wakeups: EnqueueWakeups | None = None) -> int:
        """One turn: record the answers in, renew old leases, claim if there is room.

        Returns how many items it claimed. Without `wakeups`, claims whenever there is room.
        """
        self._take_answers()
        self._renew_old_leases()
        claimed = 0
        while self._room > 0 and self._should_claim(wakeups):
            batch, more_due = self._claim()
            claimed += batch
            if not more_due:
                break
            # A burst takes several claims: its first answers need not wait for the last.
            self._take_answers()
        if self._slots.announcement_due():
            claimed += self._claim(announce=True)[0]
        return claimed

    def _take_answers(self) -> None:
        """Hand the answers that arrived to the recorder, which records them when ready."""
        self._collect_answers()
        self._recorder.record(force=False)

    def drain(self, *, idle_turns: int = 2) -> None:
        """Relay until nothing is held and `idle_turns` claims in a row found nothing (tests)."""
        idle = 0
        while idle < idle_turns:
            self._more_due = True
            idle = idle + 1 if self.step() == 0 and not self._held else 0
            if self._held:
                self._collect_answers(timeout=MAX_WAIT_SECONDS)
        self._recorder.record(force=True)

    def shut_down(self) -> None:
        """Stop claiming, and account for every held lease.

        Running sends get the grace period to finish and are recorded; a send still running
        after it is cancelled and keeps its lease, which expires into repair (it may have
        reached the rail: the re-send carries the same key). No database call is cancelled.
        """
        sends = [held.dispatch for held in self._held.values()]
        self._dispatcher.wait(sends, timeout=self.settings.shutdown_grace_seconds)
        self._collect_answers()
        try:
            self._recorder.record(force=True)
        except (DatabaseUnavailable, RetryableConflict) as error:
            _log.warning("shutdown_record_failed", error=str(error), outcomes=len(self._held))
        abandoned = sum(not held.dispatch.done for held in self._held.values())
        if abandoned:
            _log.warning(
                "shutdown_dispatches_still_running",
                count=abandoned,
                grace_seconds=self.settings.shutdown_grace_seconds,
                note="their leases expire and lease repair requeues the items",
            )
        self._dispatcher.close()
        self._recorder.close()
        self.signals.flush(_CYCLE)
        _log.info("relayer_stopped", worker_id=self.settings.worker_id, abandoned=abandoned)

    # --- claiming ------------------------------------------------------------------------------

    def _should_claim(self, wakeups: EnqueueWakeups | None) -> bool:
        """Claim when the last claim was full, an enqueue was announced, or the poll is due."""
        if wakeups is None or self._more_due:
            return True
        return wakeups.drain() > 0 or self._clock() >= self._next_poll

    def _claim(self, *, announce: bool = False) -> tuple[int, bool]:
        """Claim what the rails' free slots can start now; (items, whether more may be due).

        No slot free on any rail: no claim (and `_more_due` stays as it was, so the next
        free slot claims at once), unless the rails are due to be announced again.
        """
        sending = self._held.values()
        rails = (
            h.item.rail_type for h in sending if not self._recorder.is_recording(h.item.outbox_id)
        )
        plan = self._slots.plan(rails, most=max(0, self._room))
        for rail, window in self._slots.windows.items():
            self.signals.send_window(rail, window)
        if not announce and not any(plan.values()):
            return 0, False
        started = now_ns()
        worker_id = self.settings.worker_id
        items = self.store.claim_rails(
            worker_id, limits=plan, lease_seconds=self.settings.lease_seconds
        )
        traces = self._tracing.claimed(self.store, worker_id, items, started)
        now = self._clock()
        self._more_due = self._slots.claimed(plan, (item.rail_type for item in items))
        if not self._more_due:
            self._next_poll = now + self.settings.poll_interval_seconds
        claimed = [(item, traces.get(item.outbox_id)) for item in items]
        for (item, trace), send in zip(claimed, self._dispatcher.submit(claimed), strict=True):
            self._held.add(Held(item=item, dispatch=send, leased_at=now, trace=trace))
        return len(items), self._more_due

    def _collect_answers(self, timeout: float = 0.0) -> None:
        """Turn the answers that arrived (waiting up to `timeout` for the first) into outcomes.

        The retry delay is drawn here, once per answer. An answer for a lease lost meanwhile
        is dropped, also when this worker holds the item again under a new lease: it belongs
        to the old one.
        """
        arrived: list[tuple[Lease, RailAnswer] | None] = []
        try:
            arrived.append(
                self._answers.get(timeout=timeout) if timeout else self._answers.get_nowait()
            )
            while True:
                arrived.append(self._answers.get_nowait())
        except queue.Empty:
            if not arrived:
                return
        for lease, answer in filter(None, arrived):
            held = self._held.get(lease.outbox_id)
            if held is None or held.item.lease != lease:
                continue
            self._recorder.answered(held, self._outcome(held.item, answer))
            self.signals.dispatch(held.item.rail_type, answer.state, answer.latency_ms)
            self._slots.answered(held.item.rail_type, answer.latency_ms / 1000)

    def _outcome(self, item: ClaimedItem, answer: RailAnswer) -> Outcome:
        retry_delay = None
        if answer.state is AttemptState.RETRYABLE:
            retry_delay = self.backoff.delay_seconds(
                item.attempt_count + 1, answer.retry_after_seconds
            )
        return Outcome(
            lease=item.lease,
            state=answer.state,
            rail_reference=answer.rail_reference,
            rail_code=answer.rail_code,
            error_code=answer.error_code,
            error_message=answer.error_message,
            latency_ms=answer.latency_ms,
            retry_delay_seconds=retry_delay,
        )

    # --- leases ----------------------------------------------------------------------------------

    def _renew_old_leases(self) -> None:
        """Renew the lease of every item held past half of it (checked about once a second)."""
        now = self._clock()
        horizon = self.settings.lease_seconds * RENEW_AFTER_FRACTION
        if not self.settings.renew_leases or now < self._next_renewal_check:
            return
        self._next_renewal_check = now + min(RENEWAL_CHECK_SECONDS, horizon / 4)
        lost = 0
        stale = [h for h in self._held.values() if now - h.leased_at >= horizon]
        for held in [h for h in stale if not self._recorder.is_recording(h.item.outbox_id)]:
            try:
                self.store.renew(
                    self.settings.worker_id,
                    held.item.lease,
                    lease_seconds=self.settings.lease_seconds,
                )
            except LeaseLost:
                # Someone else holds the item now: stop this send, drop its outcome.
                held.dispatch.cancel()
                self._held.remove(held.item.outbox_id)
                self._recorder.forget(held.item.outbox_id)
                self.signals.lease_lost(held.item.outbox_id)
                lost += 1
                continue
            held.leased_at = now
        if lost:
            self.signals.flush(_CYCLE)  # say so now: an idle worker may not record for a while

    # --- waiting -------------------------------------------------------------------------------

    def _check_wakeups(self, wakeups: EnqueueWakeups) -> None:
        """Say once if enqueue notifications do not reach this relayer: then it polls."""
        try:
            arrived = wakeups.arrive()
        except DatabaseUnavailable:
            return  # the first claim reports the outage; polling covers the wake-ups meanwhile
        self.signals.wakeups(arrived=arrived, poll_interval=self.settings.poll_interval_seconds)

    def _wait(self, wakeups: EnqueueWakeups, stop: threading.Event) -> None:
        """Wait for answers while dispatching; when idle, for an enqueue or the next poll."""
        if self._held:
            waiting = self._recorder.waiting
            self._collect_answers(RECORD_LINGER_SECONDS if waiting else MAX_WAIT_SECONDS)
            return
        if self._more_due:
            return
        remaining = self._next_poll - self._clock()
        try:
            # Short slices: a blocked LISTEN would not notice a stop request.
            while remaining > 0 and not stop.is_set():
                if wakeups.wait(min(remaining, MAX_WAIT_SECONDS)):
                    self._more_due = True
                    return
                remaining = self._next_poll - self._clock()
        except DatabaseUnavailable:
            return  # the next claim finds out whether the database is back
