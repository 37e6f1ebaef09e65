"""Proofs: sends in flight on one event loop, within the payload budget, and cut at shutdown.

One relayer keeps a thousand sends in flight on a handful of threads and at most three
database connections, once a rail's answers show it needs them; the payload bytes it holds
never pass its budget; and when its shutdown grace runs out, the sends still running are
cancelled with no transaction open and their leases left to repair. Every send goes over real
HTTP to a rail simulator.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, LiteralString

from structlog.testing import capture_logs

from outbox_db.testonly import query_no_role, wait_for
from outbox_db.testonly.factories import make_request
from outbox_relayer import HttpRail, RailEndpoint
from outbox_relayer.rail_slots import CLAIMS_IN_WINDOW_FLOOR
from outbox_relayer.testing import Faults
from relaying import DEADLINE_SECONDS, RAIL, count, events, running

if TYPE_CHECKING:
    from outbox_db import OutboxStore
    from outbox_db.testonly.pytest_plugin import Database
    from relaying import Relayers, Simulators

DISPATCHED_COUNT: LiteralString = (
    "SELECT count(*) FROM public.payment_outbox_attempts WHERE state = 'DISPATCHED'"
)
ATTEMPT_COUNT: LiteralString = "SELECT count(*) FROM public.payment_outbox_attempts"
LEASED_COUNT: LiteralString = (
    "SELECT count(*) FROM public.payment_outbox_pending WHERE claimed_by IS NOT NULL"
)
# The relayer's own connections (its pool and its LISTEN), and those inside a transaction.
RELAYER_CONNECTIONS: LiteralString = """
SELECT count(*), count(*) FILTER (WHERE state LIKE 'idle in transaction%%' OR xact_start IS NOT NULL
    AND state <> 'active')
FROM pg_catalog.pg_stat_activity
WHERE datname = current_database() AND application_name LIKE 'outbox-db%%'
  AND pid <> pg_catalog.pg_backend_pid()
"""


def test_a_slow_rails_window_opens_to_a_thousand_sends_at_once_on_few_threads_and_connections(
    outbox_database: Database,
    outbox_store: OutboxStore,
    simulators: Simulators,
    relayers: Relayers,
) -> None:
    """A rail answering in 4 s, concurrency 1,000: two claims' worth first, then 1,000 at once.

    Nothing is known of the rail at first, so its window is the floor (200 at batch 100), and
    it stays there until they answer. Their answers show a rail 4 s away: the window opens to
    the cap, and the next 1,000 items are all sent before any of them is answered. On a fixed
    number of threads and at most three database connections; all then DISPATCHED.
    """
    simulator = simulators.start(Faults(latency_ms=4_000))
    floor, cap = CLAIMS_IN_WINDOW_FLOOR * 100, 1_000
    items = floor + cap
    outbox_store.enqueue_many([make_request() for _ in range(items)])
    rail = simulators.rail(simulator, timeout_seconds=60)
    worker = relayers.build("relayer-a", {RAIL: rail}, batch_size=100, concurrency=cap)
    threads_before = threading.active_count()

    with running(worker):
        floor_sent = wait_for(lambda: simulator.stats().requests == floor, DEADLINE_SECONDS)
        time.sleep(1.0)  # well within the rail's 4 s
        sent_before_an_answer = simulator.stats().requests
        all_sent = wait_for(lambda: simulator.stats().requests == items, 10)
        threads_sending = threading.active_count()
        connections = query_no_role(outbox_database.url, RELAYER_CONNECTIONS)
        answered_meanwhile = count(outbox_database.url, ATTEMPT_COUNT)
        drained = wait_for(lambda: count(outbox_database.url, DISPATCHED_COUNT) == items, 45)

    assert floor_sent
    assert sent_before_an_answer == floor, "no answer yet: the floor only"
    assert all_sent, f"{simulator.stats().requests} of {items} requests reached the rail"
    assert answered_meanwhile <= floor, "the last 1,000 all in flight at once: none answered"
    assert threads_sending - threads_before <= 4, "the run loop, the send loop, the recorder"
    ((open_connections, in_transaction),) = connections
    assert open_connections <= 3
    assert in_transaction == 0
    assert drained
    assert simulator.stats().unique_keys == items


def test_the_payload_bytes_held_never_pass_the_budget(
    outbox_database: Database,
    outbox_store: OutboxStore,
    simulators: Simulators,
    relayers: Relayers,
) -> None:
    """Payloads of 600 KiB, a budget of 1 MiB (one largest payload): one item held at a time.

    Whatever the concurrency; and every item is still sent and DISPATCHED.
    """
    simulator = simulators.start(Faults(latency_ms=100))
    budget = 1024 * 1024
    big = {"amount": "10.00", "currency": "USD", "memo": "x" * (600 * 1024)}
    outbox_store.enqueue_many([make_request(payload=big) for _ in range(8)])
    worker = relayers.build(
        "relayer-a",
        {RAIL: simulators.rail(simulator)},
        concurrency=100,
        max_bytes_in_flight=budget,
    )
    held: list[tuple[int, int]] = []

    def sample() -> bool:
        held.append((worker.held, worker.held_bytes))
        return count(outbox_database.url, DISPATCHED_COUNT) == 8

    with running(worker):
        drained = wait_for(sample, 30)

    assert drained
    assert max(items for items, _ in held) == 1
    assert 600 * 1024 < max(size for _, size in held) <= budget
    assert simulator.stats().unique_keys == 8


def test_sends_still_running_after_the_grace_are_cancelled_and_their_leases_left_to_repair(
    outbox_database: Database,
    outbox_store: OutboxStore,
    simulators: Simulators,
    relayers: Relayers,
) -> None:
    """A rail that never answers: stop returns once the grace is over, the sends cancelled.

    No transaction is open and nothing recorded: their leases stay, for lease repair.
    """
    simulator = simulators.start(Faults(timeout_rate=1.0, hang_seconds=120))
    endpoint = RailEndpoint(rail_type=RAIL, url=simulator.payments_url, timeout_seconds=120)
    outbox_store.enqueue_many([make_request() for _ in range(20)])
    worker = relayers.build(
        "relayer-a", {RAIL: HttpRail(endpoint)}, concurrency=20, shutdown_grace_seconds=0.5
    )

    with capture_logs() as logs, running(worker) as stop:
        assert wait_for(lambda: simulator.stats().requests == 20, DEADLINE_SECONDS), (
            "all 20 sends in flight"
        )
        stop.set()

    (still_running,) = events(logs, "shutdown_dispatches_still_running")
    assert still_running["count"] == 20
    ((_, in_transaction),) = query_no_role(outbox_database.url, RELAYER_CONNECTIONS)
    assert in_transaction == 0
    assert count(outbox_database.url, ATTEMPT_COUNT) == 0
    assert count(outbox_database.url, LEASED_COUNT) == 20
    assert not any(thread.name == "outbox-dispatch" for thread in threading.enumerate())
