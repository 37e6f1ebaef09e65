"""Proof: a relayer process SIGKILLed mid-batch costs no item and no second payment.

Real `outbox-relayer` processes against a real PostgreSQL and a rail simulator, started and
read back as processes.py describes: from the ledger, the queue and the rail's request log.
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from datetime import datetime
from typing import TYPE_CHECKING, LiteralString

import pytest

from outbox_db import AttemptState, OutboxStore, Role
from outbox_db.testonly import query_no_role
from outbox_relayer.rails import RECONCILED_PREFIX, UNKNOWN_OUTCOME_CODES
from outbox_relayer.testing import (
    Faults,
    RailSimulator,
    audit_delivery,
    read_request_log,
)
from processes import (
    DISPATCHING_ROWS,
    DRAIN_SECONDS,
    HELD_KEYS,
    PENDING,
    Process,
    Processes,
    enqueue_run,
    progress,
    rail_of,
    wait_until,
)

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from outbox_db import LedgerAttempt
    from outbox_relayer.testing import LoggedRequest

# What a dead worker held: its leases not yet repaired, and those repaired since (a lease
# repair records the previous holder as the attempt's worker_id). One statement, one snapshot.
HELD_AT_DEATH: LiteralString = """
SELECT idempotency_key FROM public.payment_outbox_pending WHERE claimed_by = %(worker)s
UNION
SELECT idempotency_key FROM public.payment_outbox_attempts
WHERE worker_id = %(worker)s AND state = 'ZOMBIE_REQUEUE'
"""


class AnsweredKeys:
    """Keys the simulator answered 2xx, read incrementally from its request log."""

    def __init__(self, log_path: Path) -> None:
        self.log_path = log_path
        self.keys: set[str] = set()
        self._offset = 0

    def poll(self) -> set[str]:
        """Read the lines appended since the last poll; every 2xx key so far."""
        with contextlib.suppress(FileNotFoundError), self.log_path.open("rb") as log:
            log.seek(self._offset)
            chunk = log.read()
            complete = chunk.rfind(b"\n") + 1  # a line being written is read next time
            self._offset += complete
            for line in chunk[:complete].splitlines():
                entry = json.loads(line)
                if entry["status"] is not None and 200 <= entry["status"] < 300:
                    self.keys.add(entry["idempotency_key"])
        return self.keys


def kill_holding_an_answered_lease(
    relayer: Process, worker_id: str, url: str, answered: AnsweredKeys
) -> set[str]:
    """SIGKILL `relayer` once it holds a lease on a key the rail answered 2xx.

    Returns the keys it held at death that the rail had answered: each one's outcome dies
    with the process, so the item must be redelivered. Empty if the relayer recorded the
    outcome in the instant between the check and the kill (then the caller tries again).
    """

    def holds_an_answered_lease() -> bool:
        held = {key for (key,) in query_no_role(url, HELD_KEYS, [worker_id])}
        return bool(held & answered.poll())

    wait_until(
        holds_an_answered_lease,
        f"lease of {worker_id} on a key the rail answered",
        watch=[relayer],
        interval=0.005,
    )
    relayer.kill()
    held = {key for (key,) in query_no_role(url, HELD_AT_DEATH, {"worker": worker_id})}
    return held & answered.poll()


def executed_before_an_unknown_outcome(
    ledger: Sequence[LedgerAttempt], requests: Sequence[LoggedRequest]
) -> set[str]:
    """Keys the rail executed before an attempt of theirs was recorded with an unknown outcome.

    Executed: the rail kept an outcome for the key (a POST answered without a fault). An
    unknown outcome: a lease repair (after a kill), a timeout or a lost connection. Until that
    attempt is recorded nobody else may send the item, so an execution before it is the first
    dispatch of a worker that died (or lost its answer), and the next claimer can look it up.
    """
    executed: dict[str, datetime] = {}
    for request in requests:
        if request.idempotency_key and request.status is not None and request.fault is None:
            executed.setdefault(request.idempotency_key, datetime.fromisoformat(request.wall_time))
    return {
        attempt.idempotency_key
        for attempt in ledger
        if attempt.error_code in UNKNOWN_OUTCOME_CODES
        and attempt.idempotency_key in executed
        and executed[attempt.idempotency_key] < attempt.completed_at
    }


@pytest.mark.parametrize("lookup", [False, True], ids=["resend", "lookup"])
def test_crash_mid_batch_redelivers_under_the_same_key_and_ends_each_item_once(
    shared_url: str,
    processes: Processes,
    tmp_path: Path,
    lookup: bool,
) -> None:
    """5,000 items, 2 relayers (one SIGKILLed holding answered leases), a repairer, a 10%-5xx rail: each item ends once, each key pays once. Without lookup the rail absorbs the re-sends of keys it executed; with lookup it gets no second POST for them, and every such item is reconciled."""
    run = uuid.uuid4().hex[:12]
    created = enqueue_run(shared_url, run, items=5000, participants=50)
    faults = Faults(fail_rate=0.1, latency_ms=2, latency_jitter_ms=3)
    with RailSimulator(faults=faults, log_path=tmp_path / "rail.jsonl") as rail:
        answered = AnsweredKeys(rail.log_path)
        settings = {
            "database_url": shared_url,
            "LEASE_SECONDS": "3",
            "OUTBOX_RETRY_BASE_SECONDS": "1",
            "OUTBOX_RETRY_CAP_SECONDS": "2",
        }
        relay = ["run", "--no-repair", "--rail", f"{rail_of(run)}={rail.payments_url}"]
        relay += ["--poll-interval", "0.2", "--log-format", "json"]
        relay += ["--rail-lookup", rail_of(run)] if lookup else []

        def relayer(worker_id: str) -> Process:
            return processes.start(worker_id, *relay, "--worker-id", worker_id, **settings)

        started = time.monotonic()
        repairer = processes.start(
            f"{run}-repairer",
            *["run", "--no-relay", "--repair-interval", "0.5", "--log-format", "json"],
            *["--worker-id", f"{run}-repairer"],
            **settings,
        )
        steady = relayer(f"{run}-relayer-b")
        kills, crashing = 0, relayer(f"{run}-relayer-a0")
        held_at_death: set[str] = set()
        while not held_at_death:
            assert kills < 5, "the relayer recorded every answer before each of 5 kills"
            victim = crashing.name  # its worker id
            held_at_death = kill_holding_an_answered_lease(crashing, victim, shared_url, answered)
            kills += 1
            crashing = relayer(f"{run}-relayer-a{kills}")  # the restart: a new process
        survivors = [repairer, steady, crashing]
        wait_until(  # their stop signals are handled from here on
            lambda: all(process.has_logged("relayer_started") for process in survivors),
            "start of every process",
            watch=survivors,
        )
        wait_until(
            lambda: progress(shared_url, run) == (0, len(created)),
            f"terminal attempt for every one of the run's {len(created)} items",
            seconds=DRAIN_SECONDS,
            watch=survivors,
            interval=0.25,
        )
        elapsed = time.monotonic() - started
        exits = {process.name: process.stop() for process in survivors}
        requests = read_request_log(rail.log_path)

    assert exits == dict.fromkeys(exits, 0)
    with OutboxStore.connect(shared_url, role=Role.READONLY) as reader:
        ledger = reader.ledger(rail_of(run))
    audit = audit_delivery(created, ledger, requests)
    assert audit.problems == ()
    assert audit.dispatched == audit.rail_effects == len(created)
    assert query_no_role(shared_url, PENDING, [rail_of(run)]) == []
    assert query_no_role(shared_url, DISPATCHING_ROWS) == [(0,)]
    repairs = {
        (attempt.idempotency_key, attempt.worker_id)
        for attempt in ledger
        if attempt.state is AttemptState.ZOMBIE_REQUEUE
    }
    assert repairs, "no lease was repaired"
    absorbed_keys = {request.idempotency_key for request in requests if request.absorbed}
    reconciled = {
        attempt.idempotency_key
        for attempt in ledger
        if (attempt.rail_code or "").startswith(RECONCILED_PREFIX)
    }
    for key in held_at_death:
        # An answer that died with the relayer: the lease repaired, then either the item sent
        # again under the same key and the repeat absorbed by the rail instead of paying
        # twice, or (lookup) the rail's outcome for the key recorded without a second POST.
        assert (key, victim) in repairs
        assert key in (reconciled if lookup else absorbed_keys)
    executed_unseen = executed_before_an_unknown_outcome(ledger, requests)
    if lookup:
        assert audit.absorbed == 0, "a second POST for a key the rail had executed"
        assert reconciled == executed_unseen
    else:
        assert audit.absorbed > 0
        assert reconciled == set()
    print(  # noqa: T201 - the run's figures, shown with -s
        f"\nend to end ({'lookup' if lookup else 'resend'}): {len(created)} items, {kills} kills, "
        f"{audit.absorbed} absorbed duplicates, {len(reconciled)} reconciled of "
        f"{len(executed_unseen)} executed before an unknown outcome, {len(requests)} requests, "
        f"{len(repairs)} lease repairs, {elapsed:.1f} s"
    )
