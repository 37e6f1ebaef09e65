"""The relayer: leases due items, sends them to their rails concurrently, records the outcomes.

One thread (the caller of `run`) claims, renews and releases, and decides what to record; one
recorder thread runs the batch completions it hands over, one at a time, on a connection of
its own, so the next claim does not wait for the last completion (the two statements are
most of the database's work per item). A pool of `concurrency` threads runs the rails'
blocking sends and hands each answer back through a queue, so a turn costs what arrived,
not what is in flight. Each turn takes in the completion that finished, hands over the
answers that came back (one batch completion for all of them), renews the leases of
dispatches that have outlived half their lease, and claims more while there is room.

Nothing is lost on the way: an answer whose completion failed because the database was
unreachable stays held and is recorded when it returns (or, if the lease ran out meanwhile,
counted as a lost lease: lease repair requeues the item and the rail's idempotency key absorbs
the re-send). A completion refused because the lease was lost is counted and dropped, and
the loop carries on.
"""

from __future__ import annotations

import concurrent.futures
import queue
import time
from typing import TYPE_CHECKING, Final

import attrs
import structlog

from outbox_db import (
    AttemptState,
    DatabaseUnavailable,
    LeaseLost,
    Outcome,
    RetryableConflict,
    TerminalAlreadyRecorded,
)
from outbox_relayer.backoff import DatabaseRetry
from outbox_relayer.rail_slots import RailLimit, RailSlots
from outbox_relayer.rails import RailAnswer, outcome_unknown
from outbox_relayer.tracing import RelayTracing, now_ns

if TYPE_CHECKING:
    import threading
    from collections.abc import Callable, Mapping, Sequence
    from uuid import UUID

    from outbox_db import ClaimedItem, EnqueueWakeups, Lease, OutboxStore
    from outbox_relayer.backoff import Backoff
    from outbox_relayer.rails import Rail
    from outbox_relayer.signals import Signals

__all__ = ["RENEW_AFTER_FRACTION", "Relayer", "RelayerSettings"]

# A dispatch still running after this share of its lease renews the lease.
RENEW_AFTER_FRACTION: Final = 0.5
# Answers wait at most this long for others to share their batch completion.
RECORD_LINGER_SECONDS: Final = 0.05
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
    concurrency: int = 16
    lease_seconds: int = 30
    poll_interval_seconds: float = 1.0
    shutdown_grace_seconds: float = 10.0
    renew_leases: bool = True  # False only in drills: see RelayerConfig.renew_leases
    listen_url: str | None = attrs.field(default=None, repr=False)  # may hold a password
    # Per-rail caps (rail_slots.py); a rail without one may use every slot.
    rail_limits: Mapping[str, RailLimit] = attrs.field(factory=dict)


@attrs.define
class _Held:
    """A lease this worker holds: its item, its dispatch, and when the lease was last set."""

    item: ClaimedItem
    dispatch: concurrent.futures.Future[RailAnswer]
    leased_at: float
    outcome: Outcome | None = None  # set once, when the answer arrives
    answered_at: float = 0.0
    trace: str | None = None  # the enqueue's traceparent, when tracing reads it


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
        self.rails = rails
        self.signals = signals
        self.settings = settings
        self.backoff = backoff
        self._clock = clock
        self._tracing = tracing or RelayTracing.off()
        self._held: dict[UUID, _Held] = {}
        self._answered: dict[UUID, _Held] = {}  # held and answered, oldest answer first
        self._recording: dict[UUID, _Held] = {}  # held, their completion running
        self._recorded: concurrent.futures.Future[list[tuple[UUID, bool]]] | None = None
        # Answers from the dispatchers; None when a completion finished (wakes the loop).
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
        self._dispatchers = concurrent.futures.ThreadPoolExecutor(
            max_workers=settings.concurrency, thread_name_prefix="outbox-dispatch"
        )
        self._recorder = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="outbox-record"
        )

    @property
    def held(self) -> int:
        """Leases this worker holds now: dispatching, or answered and not yet recorded."""
        return len(self._held)

    @property
    def _room(self) -> int:
        """Sends that may start: leases whose completion is running need no send slot."""
        return self.settings.concurrency - (len(self._held) - len(self._recording))

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
        self._collect_answers()
        self._record(force=False)
        self._renew_old_leases()
        claimed = 0
        while self._room > 0 and self._should_claim(wakeups):
            batch, more_due = self._claim()
            claimed += batch
            if not more_due:
                break
        if self._slots.announcement_due():
            claimed += self._claim(announce=True)[0]
        return claimed

    def drain(self, *, idle_turns: int = 2) -> None:
        """Relay until nothing is held and `idle_turns` claims in a row found nothing (tests)."""
        idle = 0
        while idle < idle_turns:
            self._more_due = True
            idle = idle + 1 if self.step() == 0 and not self._held else 0
            if self._held:
                self._collect_answers(timeout=MAX_WAIT_SECONDS)
        self._record(force=True)

    def shut_down(self) -> None:
        """Stop dispatching, and account for every held lease.

        Unstarted leases are given back; running sends get the grace period to finish and are
        recorded; a send still running after it keeps its lease, which expires into repair.
        """
        unstarted = [held for held in self._held.values() if held.dispatch.cancel()]
        self._release([held.item for held in unstarted])
        running = [held.dispatch for held in self._held.values() if not held.dispatch.done()]
        concurrent.futures.wait(running, timeout=self.settings.shutdown_grace_seconds)
        self._collect_answers()
        try:
            self._record(force=True)
        except (DatabaseUnavailable, RetryableConflict) as error:
            _log.warning("shutdown_record_failed", error=str(error), outcomes=len(self._held))
        abandoned = sum(not held.dispatch.done() for held in self._held.values())
        if abandoned:
            _log.warning(
                "shutdown_dispatches_still_running",
                count=abandoned,
                grace_seconds=self.settings.shutdown_grace_seconds,
                note="their leases expire and lease repair requeues the items",
            )
        self._dispatchers.shutdown(wait=False, cancel_futures=True)
        self._recorder.shutdown(wait=True)
        self.signals.flush(_CYCLE)
        _log.info(
            "relayer_stopped",
            worker_id=self.settings.worker_id,
            released=len(unstarted),
            abandoned=abandoned,
        )

    # --- claiming and dispatching ------------------------------------------------------------

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
        sending = self._held.keys() - self._recording.keys()
        plan = self._slots.plan(self._held[outbox_id].item.rail_type for outbox_id in sending)
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
        for item in items:
            trace = traces.get(item.outbox_id)
            dispatch = self._dispatchers.submit(self._dispatch, item, trace)
            self._held[item.outbox_id] = _Held(
                item=item, dispatch=dispatch, leased_at=now, trace=trace
            )
        return len(items), self._more_due

    def _dispatch(self, item: ClaimedItem, trace: str | None) -> RailAnswer:
        """Runs on a dispatch thread: send, then hand the answer to the relay loop."""
        with self._tracing.dispatching(item, trace):
            answer = self._send(item)
        self._answers.put((item.lease, answer))
        return answer

    def _send(self, item: ClaimedItem) -> RailAnswer:
        """Whatever happens comes back as an answer, never a raise."""
        started = time.monotonic()
        try:
            # The claim names only these rails; a database that broke that promise gets a
            # retry recorded (RAIL_CLIENT_ERROR, KeyError), never a dispatch that hangs.
            rail = self.rails[item.rail_type]
            known = self._reconciled(rail, item) if outcome_unknown(item) else None
            return known or rail.send(item)
        except Exception as error:  # noqa: BLE001 - a rail client's bug must not kill the worker
            _log.exception(
                "rail_client_failed", rail_type=item.rail_type, error=type(error).__name__
            )
            return RailAnswer(
                state=AttemptState.RETRYABLE,
                error_code="RAIL_CLIENT_ERROR",
                error_message=f"rail client raised {type(error).__name__}",
                latency_ms=round((time.monotonic() - started) * 1000),
            )

    def _reconciled(self, rail: Rail, item: ClaimedItem) -> RailAnswer | None:
        """The rail's outcome for a key whose last send may have executed, if it knows it.

        A lookup that raises is an unknown outcome, like a None: the item is sent again with
        the same key.
        """
        try:
            answer = rail.lookup(item)
        except Exception as error:  # noqa: BLE001 - a lookup's bug must not lose the item
            _log.warning("rail_lookup_failed", rail_type=item.rail_type, error=type(error).__name__)
            return None
        if answer is not None:
            _log.info(
                "outcome_reconciled",
                outbox_id=str(item.outbox_id),
                rail_type=item.rail_type,
                state=answer.state.value,
                rail_code=answer.rail_code,
            )
        return answer

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
        now = self._clock()
        for lease, answer in filter(None, arrived):
            held = self._held.get(lease.outbox_id)
            if held is None or held.item.lease != lease:
                continue
            held.outcome = self._outcome(held.item, answer)
            held.answered_at = now
            self._answered[lease.outbox_id] = held
            self.signals.dispatch(held.item.rail_type, answer.state, answer.latency_ms)

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

    # --- recording -----------------------------------------------------------------------------

    def _record(self, *, force: bool) -> None:
        """Hand answered items to the recorder in batches, once enough are in or they waited.

        One completion runs at a time; its result is taken in by a later turn. With `force`,
        everything answered is recorded before this returns.
        """
        self._settle(wait=force)
        while self._answered and self._recorded is None and (force or self._ready()):
            chunk = list(self._answered.values())[: self.settings.batch_size]
            self._recording = {held.item.outbox_id: held for held in chunk}
            for outbox_id in self._recording:
                del self._answered[outbox_id]
            outcomes = [held.outcome for held in chunk if held.outcome is not None]
            traces = {held.item.outbox_id: held.trace for held in chunk if held.trace}
            self._recorded = self._recorder.submit(self._complete, outcomes, traces)
            self._recorded.add_done_callback(lambda _: self._answers.put(None))
            self._settle(wait=force)

    def _ready(self) -> bool:
        """A batch is worth recording: its rails' sends all in, full, or it waited enough.

        Only sends of the answered items' rails are worth waiting for: a slow rail's sends
        in flight would otherwise make every answer of a fast rail wait out the linger.
        """
        answered_rails = {held.item.rail_type for held in self._answered.values()}
        sending = (self._held[i] for i in self._held.keys() - self._answered.keys())
        rails_in = all(held.item.rail_type not in answered_rails for held in sending)
        waited = self._clock() - next(iter(self._answered.values())).answered_at
        full = len(self._answered) >= self.settings.batch_size
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
                del self._held[outbox_id]
            if not was_recorded:
                self.signals.lease_lost(outbox_id)
        self.signals.flush(_CYCLE)

    def _complete(
        self, outcomes: Sequence[Outcome], traces: Mapping[UUID, str]
    ) -> list[tuple[UUID, bool]]:
        """(outbox_id, recorded) for each outcome.

        A terminal-guard refusal fails the whole batch statement, so then each outcome is
        recorded alone and only the refused one is affected.
        """
        worker_id = self.settings.worker_id
        with self._tracing.recording(traces, (outcome.lease.outbox_id for outcome in outcomes)):
            try:
                results = self.store.complete_batch(worker_id, outcomes)
            except TerminalAlreadyRecorded:
                return [self._complete_one(outcome) for outcome in outcomes]
        return [(result.outbox_id, result.lease_held) for result in results]

    def _complete_one(self, outcome: Outcome) -> tuple[UUID, bool]:
        outbox_id = outcome.lease.outbox_id
        try:
            self.store.complete(self.settings.worker_id, outcome)
        except LeaseLost:
            return outbox_id, False
        except TerminalAlreadyRecorded:
            # The item already has its terminal attempt: nothing more to record, and not a
            # lost lease. The signal says a second terminal was refused by the index.
            self.signals.terminal_guard_hit(outbox_id)
        return outbox_id, True

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
        for held in [h for h in stale if h.item.outbox_id not in self._recording]:
            try:
                self.store.renew(
                    self.settings.worker_id,
                    held.item.lease,
                    lease_seconds=self.settings.lease_seconds,
                )
            except LeaseLost:
                # Someone else holds the item now: drop this dispatch's outcome.
                held.dispatch.cancel()
                self._held.pop(held.item.outbox_id)
                self._answered.pop(held.item.outbox_id, None)
                self.signals.lease_lost(held.item.outbox_id)
                lost += 1
                continue
            held.leased_at = now
        if lost:
            self.signals.flush(_CYCLE)  # say so now: an idle worker may not record for a while

    def _release(self, items: Sequence[ClaimedItem]) -> None:
        if not items:
            return
        for item in items:
            del self._held[item.outbox_id]
        try:
            self.store.release(self.settings.worker_id, [item.lease for item in items])
        except (DatabaseUnavailable, RetryableConflict) as error:
            _log.warning(
                "release_failed",
                error=str(error),
                count=len(items),
                note="the leases expire and lease repair requeues the items",
            )

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
            self._collect_answers(RECORD_LINGER_SECONDS if self._answered else MAX_WAIT_SECONDS)
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
