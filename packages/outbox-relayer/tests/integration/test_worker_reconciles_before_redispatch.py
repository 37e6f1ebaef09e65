"""Proofs: with lookup on, an item whose outcome is unknown is looked up at the rail first.

The worker against a real database and the rail simulator over real HTTP, read back as
relaying.py describes: from the ledger, the queue and the rail's request log, never by time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, LiteralString, NamedTuple

import pytest

from outbox_db.testonly import query_no_role, wait_for
from outbox_db.testonly.factories import make_request
from outbox_relayer.rails import RECONCILED_PREFIX
from outbox_relayer.testing import Faults, RailSimulator, read_request_log
from relaying import (
    DEADLINE_SECONDS,
    RAIL,
    Relayers,
    Simulators,
    assert_repaired_then_dispatched_by_b,
    attempt_rows_of,
    repair_lapsed_lease,
)

if TYPE_CHECKING:
    from outbox_db import OutboxStore
    from outbox_db.testonly.pytest_plugin import Database


# --- reconcile before re-dispatch ----------------------------------------------------------------

DUE_NOW: LiteralString = "UPDATE public.payment_outbox_pending SET next_attempt_at = now()"


def posted_keys(simulator: RailSimulator) -> list[str | None]:
    """The key of every POST the rail received, in arrival order (lookups are not POSTs)."""
    return [line.idempotency_key for line in read_request_log(simulator.log_path)]


@pytest.mark.parametrize("lookup", [True, False], ids=["lookup", "no-lookup"])
def test_an_item_the_rail_executed_before_its_worker_died_is_reconciled_not_sent_again(
    outbox_database: Database,
    outbox_store: OutboxStore,
    simulators: Simulators,
    relayers: Relayers,
    lookup: bool,
) -> None:
    """A's send executes at the rail, then A's lease lapses unrecorded and is repaired: with lookup, B records the rail's outcome (reconciled:201) and sends nothing; without, B re-sends the same key and the rail absorbs it."""
    simulator = simulators.start()
    rail = simulators.rail(simulator, lookup=lookup)
    worker_a = relayers.build("relayer-a", {RAIL: rail})
    worker_b = relayers.build("relayer-b", {RAIL: rail})
    request = make_request()
    outbox_id = outbox_store.enqueue(request).outbox_id
    assert worker_a.step() == 1
    assert wait_for(lambda: simulator.stats().recorded_keys == 1, DEADLINE_SECONDS), (
        "the rail executed A's send"
    )
    repair_lapsed_lease(outbox_database, outbox_store, outbox_id)  # A dies holding the answer

    worker_b.drain()

    rail_code = f"{RECONCILED_PREFIX}201" if lookup else "201"
    assert_repaired_then_dispatched_by_b(outbox_database, simulator, outbox_id, rail_code)
    stats = simulator.stats()
    if lookup:
        assert posted_keys(simulator) == [request.idempotency_key], "no second POST"
        assert (stats.absorbed, stats.lookups) == (0, {"found": 1})
    else:
        assert posted_keys(simulator) == [request.idempotency_key] * 2, "re-sent, same key"
        assert (stats.absorbed, stats.lookups) == (1, {})


def test_an_item_whose_worker_died_before_sending_is_looked_up_then_sent_once(
    outbox_database: Database,
    outbox_store: OutboxStore,
    simulators: Simulators,
    relayers: Relayers,
) -> None:
    """A claims and dies before its send: after repair the lookup finds no outcome (404) and B sends the item once, under its key."""
    simulator = simulators.start()
    worker_b = relayers.build("relayer-b", {RAIL: simulators.rail(simulator, lookup=True)})
    request = make_request()
    outbox_id = outbox_store.enqueue(request).outbox_id
    assert len(outbox_store.claim("relayer-a", batch_size=10, lease_seconds=30)) == 1
    repair_lapsed_lease(outbox_database, outbox_store, outbox_id)

    worker_b.drain()

    assert_repaired_then_dispatched_by_b(outbox_database, simulator, outbox_id, "201")
    assert posted_keys(simulator) == [request.idempotency_key]
    assert simulator.stats().lookups == {"not_found": 1}


def test_a_failed_lookup_is_an_unknown_outcome_and_the_item_is_sent_again_under_its_key(
    outbox_database: Database,
    outbox_store: OutboxStore,
    simulators: Simulators,
    relayers: Relayers,
) -> None:
    """The rail executed A's send, but answers B's lookup 503: B re-sends the same key, the rail absorbs it, the item ends DISPATCHED with the first reference."""
    simulator = simulators.start(Faults(lookup_fail_rate=1.0))
    rail = simulators.rail(simulator, lookup=True)
    worker_a = relayers.build("relayer-a", {RAIL: rail})
    worker_b = relayers.build("relayer-b", {RAIL: rail})
    request = make_request()
    outbox_id = outbox_store.enqueue(request).outbox_id
    assert worker_a.step() == 1
    assert wait_for(lambda: simulator.stats().recorded_keys == 1, DEADLINE_SECONDS), (
        "the rail executed A's send"
    )
    repair_lapsed_lease(outbox_database, outbox_store, outbox_id)

    worker_b.drain()

    assert_repaired_then_dispatched_by_b(outbox_database, simulator, outbox_id, "201")
    assert posted_keys(simulator) == [request.idempotency_key] * 2
    stats = simulator.stats()
    assert (stats.absorbed, stats.lookups) == (1, {"failed": 1})


class UnansweredCase(NamedTuple):
    """A first send's fault, what the ledger records for it, and what the retry does."""

    faults: Faults
    first: tuple[str, str | None, str]  # state, rail_code, error_code
    second_rail_code: str
    lookups: dict[str, int]
    rail_timeout_seconds: float = 10.0


@pytest.mark.parametrize(
    "case",
    [
        # Seed 1 scripts the rail: the first POST faults, the second does not.
        UnansweredCase(
            Faults(drop_rate=0.5, seed=1),
            ("RETRYABLE", None, "RAIL_CONNECTION_ERROR"),
            f"{RECONCILED_PREFIX}201",
            {"found": 1},
        ),
        # The rail acts, then holds its answer (until it stops) past the client's 1 s timeout.
        UnansweredCase(
            Faults(timeout_rate=0.5, seed=1),
            ("RETRYABLE", None, "RAIL_TIMEOUT"),
            f"{RECONCILED_PREFIX}201",
            {"found": 1},
            rail_timeout_seconds=1.0,
        ),
        UnansweredCase(
            Faults(fail_rate=0.5, seed=1), ("RETRYABLE", "503", "RAIL_UNAVAILABLE"), "201", {}
        ),
    ],
    ids=["connection-lost-after-send", "timed-out-after-send", "answered-503"],
)
def test_after_a_send_without_an_answer_the_outcome_is_looked_up_but_not_after_a_503(
    outbox_database: Database,
    outbox_store: OutboxStore,
    simulators: Simulators,
    relayers: Relayers,
    case: UnansweredCase,
) -> None:
    """A connection dropped or a send timed out after the rail acted leaves the outcome unknown: the retry looks it up and records it without a POST. A 503 is a known non-execution: the retry just sends."""
    simulator = simulators.start(case.faults)
    rail = simulators.rail(simulator, lookup=True, timeout_seconds=case.rail_timeout_seconds)
    worker = relayers.build("relayer-a", {RAIL: rail})
    outbox_id = outbox_store.enqueue(make_request()).outbox_id
    worker.drain()
    query_no_role(outbox_database.url, DUE_NOW)  # the proof does not wait out the backoff

    worker.drain()

    # The rail's first (and only) reference: a dropped answer's reference is not in the log.
    assert [row[1:5] for row in attempt_rows_of(outbox_database.url, outbox_id)] == [
        (case.first[0], None, case.first[1], case.first[2]),
        ("DISPATCHED", "rsim-00000001", case.second_rail_code, None),
    ]
    assert len(posted_keys(simulator)) == (1 if case.lookups else 2)
    assert simulator.stats().lookups == case.lookups
