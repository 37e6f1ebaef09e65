"""Proof: ordered lanes reach the rail in sequence order across relayer processes.

Real `outbox-relayer` processes against a real PostgreSQL and a rail simulator, started and
read back as processes.py describes: from the ledger, the queue and the rail's request log.
"""

from __future__ import annotations

import os
import time
import uuid
from typing import TYPE_CHECKING

from outbox_db import AttemptState, OutboxStore, Role
from outbox_db.testonly.factories import make_request
from outbox_relayer.testing import (
    Faults,
    RailSimulator,
    audit_delivery,
    lane_order_problems,
    read_request_log,
)
from processes import (
    DRAIN_SECONDS,
    Processes,
    payload,
    progress_of,
    wait_until,
)

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from pathlib import Path
    from uuid import UUID

    from outbox_db import LedgerAttempt


def ordered_proof_size() -> tuple[int, int]:
    """(participants, items each) on the ordered rail: OUTBOX_ORDERED_PROOF_SIZE, e.g. 200x50."""
    participants, items = os.environ.get("OUTBOX_ORDERED_PROOF_SIZE", "40x25").split("x")
    return int(participants), int(items)


def enqueue_lanes(
    url: str, run: str, rails: Mapping[str, int], items: int
) -> tuple[dict[UUID, str], dict[str, dict[str, tuple[str, int]]]]:
    """`items` per participant, `rails[rail]` participants per rail, round robin over all of them.

    Returns {outbox_id: key} and, per rail, each item's key -> (its participant, sequence_id).
    """
    created: dict[UUID, str] = {}
    lanes: dict[str, dict[str, tuple[str, int]]] = {rail: {} for rail in rails}
    requests = [
        make_request(
            instruction_id=f"{run}-{rail}-{p}-{n}",
            participant_id=f"{run}-{rail}-participant-{p}",
            idempotency_key=f"{run}-{rail}-{p}-key-{n}",
            rail_type=rail,
            payload=payload(n),
        )
        for n in range(items)
        for rail, participants in rails.items()
        for p in range(participants)
    ]
    with OutboxStore.connect(url, role=Role.EXECUTOR) as store:
        for start in range(0, len(requests), 1000):
            batch = requests[start : start + 1000]
            for request, result in zip(batch, store.enqueue_many(batch), strict=True):
                assert result.created
                created[result.outbox_id] = request.idempotency_key
                lane = (request.participant_id, result.sequence_id)
                lanes[request.rail_type][request.idempotency_key] = lane
    return created, lanes


def test_ordered_lanes_reach_the_rail_in_sequence_order_across_relayer_processes(
    shared_url: str, processes: Processes, tmp_path: Path
) -> None:
    """4 relayer processes, a rail with 20% 503s and 1-21 ms latency: every ordered lane's items reach the rail strictly in sequence order (retries in a row, nothing skipped), while the unordered rail's participants are sent out of order (it is not serialized); each item ends once, each key pays once."""
    run = uuid.uuid4().hex[:12]
    participants, items = ordered_proof_size()
    ordered, unordered = f"ord-{run}", f"rtp-{run}"
    with OutboxStore.connect(shared_url, role=Role.OPERATOR, max_size=1) as operator:
        operator.set_rail_ordering(ordered, ordered=True, reason="ordered delivery proof")
    created, lanes = enqueue_lanes(
        shared_url, run, {ordered: participants, unordered: participants // 4}, items
    )
    faults = Faults(fail_rate=0.2, latency_ms=1, latency_jitter_ms=20, seed=20261124)
    with RailSimulator(faults=faults, log_path=tmp_path / "rail.jsonl") as rail:
        relay = ["run", "--poll-interval", "0.2", "--log-format", "json"]
        relay += ["--rail", f"{ordered}={rail.payments_url}"]
        relay += ["--rail", f"{unordered}={rail.payments_url}"]
        settings = {
            "database_url": shared_url,
            "OUTBOX_CONCURRENCY": "64",
            "OUTBOX_RETRY_BASE_SECONDS": "1",
            "OUTBOX_RETRY_CAP_SECONDS": "2",
        }
        started = time.monotonic()
        relayers = [
            processes.start(f"{run}-relayer-{n}", *relay, "--worker-id", f"{run}-{n}", **settings)
            for n in range(4)
        ]
        total = len(lanes[ordered]) + len(lanes[unordered])
        wait_until(
            lambda: all(progress_of(shared_url, r) == (0, len(lanes[r])) for r in lanes),
            f"terminal attempt for every one of the run's {total} items",
            seconds=DRAIN_SECONDS * (1 + total // 5000),
            watch=relayers,
            interval=0.25,
        )
        elapsed = time.monotonic() - started
        exits = {process.name: process.stop() for process in relayers}
        requests = read_request_log(rail.log_path)

    assert exits == dict.fromkeys(exits, 0)
    with OutboxStore.connect(shared_url, role=Role.READONLY) as reader:
        ledgers = {r: reader.ledger(r) for r in lanes}
    audit = audit_delivery(created, [*ledgers[ordered], *ledgers[unordered]], requests)
    assert audit.problems == ()
    assert audit.dispatched == audit.rail_effects == total
    assert lane_order_problems(lanes[ordered], requests) == ()
    assert lane_order_problems(lanes[unordered], requests) != (), "the unordered rail was serial"
    retries = {r: sum(a.state is AttemptState.RETRYABLE for a in ledgers[r]) for r in lanes}
    assert retries[ordered] > 0
    spans = {r: rail_span_seconds(ledgers[r]) for r in lanes}
    print(  # noqa: T201 - the run's figures, shown with -s
        f"\nordered delivery: {participants} ordered lanes x {items} items and"
        f" {participants // 4} unordered participants x {items}, 4 relayer processes,"
        f" {len(requests)} rail requests; ordered rail {len(lanes[ordered])} items,"
        f" {retries[ordered]} retries, drained in {spans[ordered]:.1f} s; unordered rail"
        f" {len(lanes[unordered])} items, {retries[unordered]} retries, drained in"
        f" {spans[unordered]:.1f} s; whole run {elapsed:.1f} s"
    )


def rail_span_seconds(ledger: Sequence[LedgerAttempt]) -> float:
    """From the first claim to the last recorded attempt, by the database clock."""
    first = min(a.claimed_at for a in ledger if a.claimed_at is not None)
    return (max(a.completed_at for a in ledger) - first).total_seconds()
