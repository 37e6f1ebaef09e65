"""Proofs: the batch recorder alone, against a real database, with a clock the test moves.

The recorder takes answered items of the relay loop's held leases and appends their outcomes
in batch completions, one running at a time on its own thread. Read back as the owner: what
the ledger holds, and what left the held leases.
"""

from __future__ import annotations

import asyncio
import threading
from typing import TYPE_CHECKING

import pytest

from outbox_db import AttemptState, Outcome
from outbox_db.testonly import expire_lease, ledger, query_no_role, wait_for
from outbox_db.testonly.factories import make_request
from outbox_relayer import Signals
from outbox_relayer.dispatch import Send
from outbox_relayer.recorder import RECORD_LINGER_SECONDS, Held, HeldLeases, Recorder
from outbox_relayer.tracing import RelayTracing
from relaying import DEADLINE_SECONDS, PLANT_TERMINAL, TestClock

if TYPE_CHECKING:
    from collections.abc import Iterator

    from outbox_db import ClaimedItem, OutboxStore
    from outbox_db.testonly.pytest_plugin import Database

WORKER = "relayer-a"


class Parts:
    """A recorder, the held leases it records from, and what it was given."""

    def __init__(self, store: OutboxStore, clock: TestClock) -> None:
        self.store = store
        self.held = HeldLeases()
        self.signals = Signals()
        self.woken = threading.Event()
        self.recorder = Recorder(
            store,
            held=self.held,
            worker_id=WORKER,
            batch_size=3,
            signals=self.signals,
            tracing=RelayTracing.off(),
            wake=self.woken.set,
            clock=clock,
        )
        self._loop = asyncio.new_event_loop()  # Send's: never run, no send is made here

    def lease(self, count: int, rail_type: str = "rtp") -> list[Held]:
        """`count` new items of `rail_type`, leased and held (as if their sends were running)."""
        self.store.enqueue_many([make_request(rail_type=rail_type) for _ in range(count)])
        items = self.store.claim_rails(WORKER, limits={rail_type: count}, lease_seconds=30)
        for item in items:
            self.held.add(Held(item=item, dispatch=Send(self._loop), leased_at=0.0))
        return [self.held[item.outbox_id] for item in items]

    def answer(self, held: Held) -> None:
        """The rail accepted the item."""
        self.recorder.answered(held, dispatched(held.item))

    def close(self) -> None:
        """Wait for the recorder's thread and close the unused loop."""
        self.recorder.close()
        self._loop.close()


def dispatched(item: ClaimedItem) -> Outcome:
    """A DISPATCHED outcome for the item's lease, with a reference naming it."""
    return Outcome(
        lease=item.lease,
        state=AttemptState.DISPATCHED,
        rail_reference=f"ref-{item.outbox_id}",
        rail_code="201",
        latency_ms=5,
    )


@pytest.fixture
def clock() -> TestClock:
    """The recorder's clock, moved by the test."""
    return TestClock()


@pytest.fixture
def parts(outbox_store: OutboxStore, clock: TestClock) -> Iterator[Parts]:
    """A recorder on the test's store."""
    built = Parts(outbox_store, clock)
    yield built
    built.close()


def recorded_attempts(database: Database) -> set[tuple[object, ...]]:
    """(outbox_id, state, rail_reference, worker_id) of every attempt."""
    return set(ledger(database.url, "outbox_id", "state", "rail_reference", "worker_id"))


def test_answers_are_recorded_in_batches_of_batch_size_and_leave_the_held_leases(
    outbox_database: Database, parts: Parts
) -> None:
    """Seven answers, batch size 3: three completions of 3, 3 and 1, each item once."""
    leased = parts.lease(7)
    for held in leased:
        parts.answer(held)

    parts.recorder.record(force=True)

    assert recorded_attempts(outbox_database) == {
        (held.item.outbox_id, "DISPATCHED", f"ref-{held.item.outbox_id}", WORKER) for held in leased
    }
    assert (len(parts.held), parts.held.payload_bytes) == (0, 0)
    assert parts.woken.is_set(), "a finished completion wakes the relay loop"


def test_an_answer_waits_for_its_rails_other_sends_until_the_linger_is_over(
    outbox_database: Database, parts: Parts, clock: TestClock
) -> None:
    """An answer waits while its rail's other send may join the batch, until the linger.

    The last rtp answer then goes at once: a send of another rail (sepa, still running) is not
    worth waiting for.
    """
    first, second = parts.lease(2)
    (slow,) = parts.lease(1, rail_type="sepa")
    parts.answer(first)

    parts.recorder.record(force=False)
    assert (parts.recorder.recording, recorded_attempts(outbox_database)) == (0, set())

    clock.advance(RECORD_LINGER_SECONDS)
    parts.recorder.record(force=False)
    assert wait_for(
        lambda: {row[0] for row in recorded_attempts(outbox_database)} == {first.item.outbox_id},
        DEADLINE_SECONDS,
    )
    parts.answer(second)
    parts.recorder.record(force=False)
    recorded = {first.item.outbox_id, second.item.outbox_id}
    assert wait_for(
        lambda: {row[0] for row in recorded_attempts(outbox_database)} == recorded, DEADLINE_SECONDS
    )
    parts.recorder.record(force=True)
    assert list(parts.held.keys()) == [slow.item.outbox_id]


def test_a_completion_refused_for_a_lost_lease_is_counted_and_the_item_let_go(
    outbox_database: Database, parts: Parts
) -> None:
    """A lease repaired away meanwhile: nothing recorded for it, one lost lease counted.

    The rest of its batch is recorded.
    """
    lost, kept = parts.lease(2)
    expire_lease(outbox_database.url, lost.item.outbox_id)
    parts.store.repair("repairer", batch_size=10)
    parts.answer(lost)
    parts.answer(kept)

    parts.recorder.record(force=True)

    states = {(row[0], row[1]) for row in recorded_attempts(outbox_database)}
    assert states == {(lost.item.outbox_id, "ZOMBIE_REQUEUE"), (kept.item.outbox_id, "DISPATCHED")}
    assert parts.signals.totals().lease_lost_count == 1
    assert len(parts.held) == 0


def test_a_terminal_guard_refusal_records_the_rest_of_the_batch_one_by_one(
    outbox_database: Database, parts: Parts
) -> None:
    """An item already ended fails the batch statement (23505): then each outcome goes alone.

    The recorder counts one guard hit and no lost lease, and records the others.
    """
    guarded, *others = parts.lease(3)
    query_no_role(outbox_database.url, PLANT_TERMINAL, [guarded.item.outbox_id])
    for held in (guarded, *others):
        parts.answer(held)

    parts.recorder.record(force=True)

    assert {
        row for row in recorded_attempts(outbox_database) if row[0] == guarded.item.outbox_id
    } == {(guarded.item.outbox_id, "DISPATCHED", "planted", "planter")}
    dispatched_by_us = {row[0] for row in recorded_attempts(outbox_database) if row[3] == WORKER}
    assert dispatched_by_us == {held.item.outbox_id for held in others}
    totals = parts.signals.totals()
    assert (totals.terminal_guard_hit_count, totals.lease_lost_count) == (1, 0)
    assert len(parts.held) == 0
