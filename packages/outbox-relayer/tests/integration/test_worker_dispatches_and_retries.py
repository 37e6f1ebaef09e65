"""Proofs: the relayer worker dispatches each item once, retries, renews, keeps to rail slots.

The worker against a real database and the rail simulator over real HTTP, read back as
relaying.py describes: from the ledger, the queue and the rail's request log, never by time.
"""

from __future__ import annotations

import hashlib
import time
from typing import TYPE_CHECKING, LiteralString

from outbox_db.payloads import canonical_json
from outbox_db.testonly import query_no_role, wait_for
from outbox_db.testonly.factories import make_request
from outbox_relayer import CycleSignals, NoopRail
from outbox_relayer.rail_slots import RailLimit
from outbox_relayer.testing import Faults, read_request_log
from relaying import (
    ATTEMPT_COUNT,
    DEADLINE_SECONDS,
    LEASE_OF,
    PENDING,
    RAIL,
    Relayers,
    Simulators,
    TestClock,
    attempt_rows,
    attempt_rows_of,
    count,
    references_by_key,
    seeded_backoff,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

    import pytest

    from outbox_db import ClaimedItem, OutboxStore
    from outbox_db.testonly.pytest_plugin import Database
    from outbox_relayer.rails import RailAnswer


# --- dispatch ------------------------------------------------------------------------------------


def test_drain_dispatches_every_item_once_with_its_key_and_records_the_rails_reference(
    outbox_database: Database,
    outbox_store: OutboxStore,
    simulators: Simulators,
    relayers: Relayers,
) -> None:
    """200 items of 5 participants: one request each with its key and payload, one DISPATCHED attempt with the rail's reference, nothing pending."""
    simulator = simulators.start()
    items = {}
    for n in range(200):
        request = make_request(participant_id=f"participant-{n % 5}")
        items[request.idempotency_key] = (outbox_store.enqueue(request).outbox_id, request)
    relayer = relayers.build(
        "relayer-a", {RAIL: simulators.rail(simulator)}, batch_size=50, concurrency=16
    )

    relayer.drain()

    requests = read_request_log(simulator.log_path)
    assert sorted(line.idempotency_key or "" for line in requests) == sorted(items)
    for line in requests:
        _, request = items[line.idempotency_key or ""]
        assert (
            line.payload_sha256
            == hashlib.sha256(canonical_json(request.payload).encode()).hexdigest()
        )
        assert (line.status, line.absorbed, line.fault) == (201, False, None)
    references = references_by_key(simulator)
    assert sorted(attempt_rows(outbox_database.url)) == sorted(
        (outbox_id, 1, "DISPATCHED", references[key], "201", None, "relayer-a")
        for key, (outbox_id, _) in items.items()
    )
    assert len(set(references.values())) == 200
    assert query_no_role(outbox_database.url, PENDING) == []
    assert relayer.held == 0
    assert relayer.signals.totals() == CycleSignals(cycle="total")


# --- retries -------------------------------------------------------------------------------------


def test_rail_failures_are_retried_with_backoff_until_the_ceiling_ends_the_item_failed(
    outbox_database: Database,
    outbox_store: OutboxStore,
    simulators: Simulators,
    relayers: Relayers,
) -> None:
    """503 answers: RETRYABLE RAIL_UNAVAILABLE '503' rescheduled by the backoff's draw (within its ceiling); at max_attempts=3 the item ends FAILED."""
    simulator = simulators.start(Faults(fail_rate=1.0))
    seed = 5  # its second-round draws would pass the 90 s cap if the cap were not applied
    backoff = seeded_backoff(seed, base_seconds=60, cap_seconds=90)
    replica = seeded_backoff(seed, base_seconds=60, cap_seconds=90)
    worker = relayers.build("relayer-a", {RAIL: simulators.rail(simulator)}, backoff=backoff)
    ids = sorted(outbox_store.enqueue(make_request()).outbox_id for _ in range(3))
    query_no_role(outbox_database.url, "UPDATE public.payment_outbox_settings SET max_attempts = 3")
    schedule: LiteralString = """
        SELECT a.outbox_id, a.state::text, a.rail_code, a.error_code, a.worker_id,
            p.attempt_count, p.claimed_by,
            EXTRACT(EPOCH FROM p.next_attempt_at - a.completed_at)::float8
        FROM public.payment_outbox_attempts AS a
        JOIN public.payment_outbox_pending AS p USING (outbox_id)
        WHERE a.attempt_no = %s ORDER BY a.outbox_id
    """

    for attempt in (1, 2):
        worker.drain()
        rows = query_no_role(outbox_database.url, schedule, [attempt])
        assert [row[:7] for row in rows] == [
            (i, "RETRYABLE", "503", "RAIL_UNAVAILABLE", "relayer-a", attempt, None) for i in ids
        ]
        delays = sorted(row[7] for row in rows)
        assert delays == sorted(float(replica.delay_seconds(attempt)) for _ in ids)
        ceiling = min(90, 60 * 2 ** (attempt - 1))  # base doubled per failure, capped
        assert all(0 < delay <= ceiling for delay in delays), "moved on, within the ceiling"
        # Due now, as the owner: the proof does not wait out the backoff.
        query_no_role(
            outbox_database.url, "UPDATE public.payment_outbox_pending SET next_attempt_at = now()"
        )

    worker.drain()

    ledger_rows = attempt_rows(outbox_database.url)
    assert [row for row in ledger_rows if row[1] == 3] == [
        (i, 3, "FAILED", None, "503", "RETRY_CEILING_REACHED", "relayer-a") for i in ids
    ]
    assert len(ledger_rows) == 9
    assert query_no_role(outbox_database.url, PENDING) == []
    assert simulator.stats().by_status == {"503": 9}


def test_an_item_for_a_rail_that_is_not_configured_waits_unclaimed_and_is_shown_unserved(
    outbox_database: Database,
    outbox_store: OutboxStore,
    simulators: Simulators,
    relayers: Relayers,
) -> None:
    """rail_type with no rail configured: never claimed, no attempt, nothing sent; listed unserved."""
    simulator = simulators.start()
    worker = relayers.build("relayer-a", {RAIL: simulators.rail(simulator)})
    outbox_id = outbox_store.enqueue(make_request(rail_type="sepa")).outbox_id
    outbox_store.enqueue(make_request())

    worker.drain()

    assert attempt_rows_of(outbox_database.url, outbox_id) == []
    assert query_no_role(outbox_database.url, PENDING) == [(outbox_id, 0, None)]
    assert simulator.stats().requests == 1  # the rtp item, on the rail it was configured for
    assert [(rail.rail_type, rail.due_count) for rail in outbox_store.unserved_rails()] == [
        ("sepa", 1)
    ]


def test_a_slow_rail_holds_no_more_leases_than_its_slots_and_leaves_the_rest_to_a_fast_one(
    outbox_database: Database,
    outbox_store: OutboxStore,
    simulators: Simulators,
    relayers: Relayers,
) -> None:
    """max_in_flight 2 of 4: two slow items leased at a time, the fast rail sends meanwhile."""
    slow = simulators.start(Faults(latency_ms=1000))
    fast = simulators.start()
    rails = {"slow": simulators.rail(slow, "slow"), RAIL: simulators.rail(fast)}
    worker = relayers.build(
        "relayer-a", rails, concurrency=4, rail_limits={"slow": RailLimit(max_in_flight=2)}
    )
    for _ in range(6):
        outbox_store.enqueue(make_request(rail_type="slow"))
        outbox_store.enqueue(make_request())
    leased_slow = (
        "SELECT count(*) FROM public.payment_outbox_pending"
        " WHERE rail_type = 'slow' AND claimed_by IS NOT NULL"
    )

    worker.step()
    deadline = time.monotonic() + 0.9
    while fast.stats().requests < 6 and time.monotonic() < deadline:
        worker.step()
        assert count(outbox_database.url, leased_slow) <= 2
        time.sleep(0.02)

    assert fast.stats().requests == 6, "the fast rail drained while the slow one held its slots"
    assert slow.stats().requests == 2
    worker.drain()
    for simulator in (slow, fast):
        assert simulator.stats().unique_keys == simulator.stats().requests == 6
    assert count(outbox_database.url, leased_slow) == 0


def test_a_fast_rails_answers_are_recorded_without_waiting_for_a_slow_rails_sends(
    outbox_database: Database,
    outbox_store: OutboxStore,
    simulators: Simulators,
    relayers: Relayers,
) -> None:
    """Worker time stands still, so no answer ever waits out the linger: the fast rail's three answers are recorded while the slow send is still out, because only its own rail's sends are worth waiting for."""
    slow = simulators.start(Faults(latency_ms=3000))
    fast = simulators.start()
    rails = {"slow": simulators.rail(slow, "slow"), RAIL: simulators.rail(fast)}
    worker = relayers.build("relayer-a", rails, clock=lambda: 0.0)
    outbox_store.enqueue(make_request(rail_type="slow"))
    for _ in range(3):
        outbox_store.enqueue(make_request())
    fast_dispatched = (
        "SELECT count(*) FROM public.payment_outbox_attempts"
        " WHERE rail_type = 'rtp' AND state = 'DISPATCHED'"
    )

    assert worker.step() == 4
    deadline = time.monotonic() + DEADLINE_SECONDS
    while count(outbox_database.url, fast_dispatched) < 3 and time.monotonic() < deadline:
        worker.step()
        time.sleep(0.02)

    assert count(outbox_database.url, fast_dispatched) == 3
    assert count(outbox_database.url, ATTEMPT_COUNT) == 3, "the slow send is still out"
    assert fast.stats().requests == 3
    assert slow.stats().requests == 1


class _CountedRail(NoopRail):
    """Answers at once, like the no-op rail, and counts the sends that returned.

    No HTTP: the proof below is about when answers reach the ledger, not how they are sent.
    """

    def __init__(self) -> None:
        self.answered = 0

    async def send(self, item: ClaimedItem) -> RailAnswer:
        answer = await super().send(item)
        self.answered += 1
        return answer


def test_a_bursts_first_answers_are_recorded_before_its_last_claim(
    outbox_database: Database,
    outbox_store: OutboxStore,
    relayers: Relayers,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """30 items, batch 10, room for 30: one turn claims three times. Each claim waits until the sends of the ones before have answered, and the first ten are recorded with no further turn: answers are handed to the recorder between the claims of a burst, not only after the last."""
    outbox_store.enqueue_many([make_request() for _ in range(30)])
    rail = _CountedRail()
    worker = relayers.build("relayer-a", {RAIL: rail}, batch_size=10, concurrency=30)
    claim_rails, claimed = outbox_store.claim_rails, [0]

    def claim_once_answered(
        worker_id: str, *, limits: Mapping[str, int], lease_seconds: int
    ) -> list[ClaimedItem]:
        assert wait_for(lambda: rail.answered == claimed[0], DEADLINE_SECONDS)
        time.sleep(0.05)  # the send loop hands each answer back as its send returns
        items = claim_rails(worker_id, limits=limits, lease_seconds=lease_seconds)
        claimed[0] += len(items)
        return items

    monkeypatch.setattr(outbox_store, "claim_rails", claim_once_answered)

    assert worker.step() == 30
    assert wait_for(lambda: count(outbox_database.url, ATTEMPT_COUNT) >= 10, DEADLINE_SECONDS)


# --- lease renewal -------------------------------------------------------------------------------


def test_a_dispatch_outliving_half_its_lease_has_the_lease_renewed_and_its_outcome_recorded(
    outbox_database: Database,
    outbox_store: OutboxStore,
    simulators: Simulators,
    relayers: Relayers,
) -> None:
    """lease_seconds=2 and a send still running when half of it has passed: the step renews (lease_expires_at moves on), then the outcome is recorded, no lease lost."""
    simulator = simulators.start(Faults(latency_ms=1000))
    clock = TestClock()
    worker = relayers.build(
        "relayer-a", {RAIL: simulators.rail(simulator)}, clock=clock, lease_seconds=2
    )
    outbox_id = outbox_store.enqueue(make_request()).outbox_id
    assert worker.step() == 1
    ((_, claimed_until),) = query_no_role(outbox_database.url, LEASE_OF, [outbox_id])

    clock.advance(1.0)  # half of the 2-second lease, for the worker
    worker.step()

    ((_, renewed_until),) = query_no_role(outbox_database.url, LEASE_OF, [outbox_id])
    assert renewed_until > claimed_until, "the lease was renewed"
    assert count(outbox_database.url, ATTEMPT_COUNT) == 0, "while the send was still running"
    assert worker.held == 1
    worker.drain()
    (reference,) = references_by_key(simulator).values()
    assert attempt_rows_of(outbox_database.url, outbox_id) == [
        (1, "DISPATCHED", reference, "201", None, "relayer-a")
    ]
    assert worker.signals.totals() == CycleSignals(cycle="total")
