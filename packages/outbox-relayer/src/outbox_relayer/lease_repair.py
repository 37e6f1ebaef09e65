"""Lease repair: records the expired leases of crashed or stalled workers and requeues their items.

`run_once()` is the whole job and what tests call: it repairs in batches of
`LEASE_REPAIR_BATCH_SIZE` until a batch comes back short, and returns what it did. `run()`
adds only timing (a jittered pause so several repairers do not move in step) and shutdown.
Several repairers may run at once: the database hands each expired lease to one of them
(SKIP LOCKED), and a repaired lease is gone, so nothing is repaired twice.

Each repairer also keeps the ledger's months made ahead (schema 0019), once an hour: an item is
refused at enqueue when its month has no partition, so a deployment whose relayers run never
meets that refusal, and no extra job is needed.
"""

from __future__ import annotations

import random
import time
from typing import TYPE_CHECKING, Final

import attrs
import structlog

from outbox_db import (
    AttemptState,
    DatabaseTimeout,
    DatabaseUnavailable,
    RetryableConflict,
    TerminalAlreadyRecorded,
)
from outbox_relayer.backoff import DatabaseRetry

if TYPE_CHECKING:
    import threading

    from outbox_db import OutboxStore
    from outbox_relayer.signals import Signals

__all__ = ["LeaseRepairer", "RepairCycle"]

_log = structlog.get_logger("outbox_relayer.lease_repair")
# Ledger months kept made ahead of this one, as the migration makes them (0019), and how often.
LEDGER_MONTHS_AHEAD: Final = 3
LEDGER_MONTHS_EVERY_SECONDS: Final = 3600.0


@attrs.frozen
class RepairCycle:
    """What one cycle did: leases requeued, items that reached the retry ceiling, batches run."""

    requeued: int
    failed: int
    batches: int


@attrs.define
class LeaseRepairer:
    """Runs repair_expired_leases for one worker id, reporting each repair as a signal."""

    store: OutboxStore
    signals: Signals
    worker_id: str
    batch_size: int
    lease_seconds: int  # the configured lease length, carried into the repair logs
    rng: random.Random = attrs.field(factory=random.Random)
    _months_due_at: float = attrs.field(default=0.0, init=False)

    def run_once(self) -> RepairCycle:
        """Read the expired-lease and unserved-rail gauges, then repair every expired lease."""
        self._prepare_ledger_months()
        self.signals.expired_leases(self.store.expired_lease_count())
        self.signals.unserved_rails(self.store.unserved_rails())
        requeued = failed = batches = 0
        while True:
            repaired = self.store.repair(self.worker_id, batch_size=self.batch_size)
            batches += 1
            self.signals.repair_requeued(repaired, self.lease_seconds)
            failed += sum(r.new_state is AttemptState.FAILED for r in repaired)
            requeued += sum(r.new_state is AttemptState.ZOMBIE_REQUEUE for r in repaired)
            if len(repaired) < self.batch_size:
                return RepairCycle(requeued=requeued, failed=failed, batches=batches)

    def _prepare_ledger_months(self) -> None:
        now = time.monotonic()
        if now < self._months_due_at:
            return
        try:
            made = self.store.prepare_ledger_months(LEDGER_MONTHS_AHEAD)
        except DatabaseTimeout as error:  # the ledger stayed locked past 1 s: the next cycle
            _log.info("ledger_months_not_prepared", error=str(error))
            return
        for partition in made:
            _log.info("ledger_month_prepared", partition=partition)
        self._months_due_at = now + LEDGER_MONTHS_EVERY_SECONDS

    def run(self, stop: threading.Event, interval_seconds: float) -> None:
        """Repair every `interval_seconds` (jittered by up to a fifth) until `stop` is set.

        A lost database pauses the loop with backoff; it never ends it.
        """
        retry = DatabaseRetry(loop="lease_repair")
        while not stop.is_set():
            try:
                self.run_once()
                retry.succeeded()
            except (DatabaseUnavailable, RetryableConflict) as error:
                retry.failed(error, stop)
                continue
            except TerminalAlreadyRecorded as error:
                # Only a terminal attempt written outside the functions gets here: an expired
                # lease whose item already ended. Repair cannot record it; an operator must.
                _log.warning("lease_repair_blocked", error=str(error), index=error.constraint)
            finally:
                self.signals.flush("lease_repair")
            stop.wait(interval_seconds * self.rng.uniform(0.8, 1.2))
