"""Lease-health signals (DESIGN section 9): counted once per event, logged once per cycle.

The four signals are `expired_lease_count` (a gauge read from outbox_status_view),
`repair_requeued_count`, `lease_lost_count` (P7002) and `terminal_guard_hit_count` (23505 on
the terminal index). They are operational signals, logged at info or warning, never error.
Prometheus export is optional (`outbox-relayer[metrics]`); prometheus_client is imported only
when a `Metrics` is built, so the package works without it.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections import Counter
from typing import TYPE_CHECKING, Final, TextIO

import attrs
import structlog

from outbox_db import AttemptState

if TYPE_CHECKING:
    from collections.abc import Sequence
    from uuid import UUID
    from wsgiref.simple_server import WSGIServer

    from prometheus_client import CollectorRegistry

    from outbox_db import RepairedLease, UnservedRail

__all__ = [
    "LEASE_LOST_EVENT",
    "REPAIR_EVENT",
    "SIGNALS_EVENT",
    "TERMINAL_GUARD_EVENT",
    "UNSERVED_EVENT",
    "WAKEUPS_LOST_EVENT",
    "CycleSignals",
    "Metrics",
    "MetricsUnavailableError",
    "Signals",
    "configure_logging",
    "start_metrics_server",
]

SIGNALS_EVENT: Final = "outbox_signals"  # the one line per cycle
UNSERVED_EVENT: Final = "rails_unserved"  # due items on rails no relayer announced
LEASE_LOST_EVENT: Final = "LEASE_LOST_CONCURRENCY_EVENT"
TERMINAL_GUARD_EVENT: Final = "TERMINAL_GUARD_HIT_EVENT"
REPAIR_EVENT: Final = "lease_repaired"  # one line per repaired lease
WAKEUPS_LOST_EVENT: Final = "wakeups_lost"  # enqueue notifications do not arrive: polling
TERMINAL_INDEX: Final = "payment_outbox_attempts_one_terminal_per_outbox"
PREVIOUS_STATE: Final = "LEASED"  # what every repaired item was before its repair
SAMPLE_SIZE: Final = 5  # outbox_ids quoted in a warning; the count covers the rest
# Dispatch latency buckets in seconds, up to the longest rail timeout rail_config allows.
DISPATCH_BUCKETS: Final = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)

_LEASE_LOST: Final = "lease_lost_count"
_TERMINAL_GUARD: Final = "terminal_guard_hit_count"
_REQUEUED: Final = "repair_requeued_count"
_REPAIR_FAILED: Final = "repair_failed_count"
_log = structlog.get_logger("outbox_relayer.signals")


@attrs.frozen(kw_only=True)
class CycleSignals:
    """The counts one cycle moved (or running totals); expired_lease_count is None if unread."""

    cycle: str
    expired_lease_count: int | None = None
    repair_requeued_count: int = 0
    repair_failed_count: int = 0  # expired leases whose item had reached the retry ceiling
    lease_lost_count: int = 0
    terminal_guard_hit_count: int = 0

    @property
    def moved(self) -> bool:
        """Whether anything is worth a log line: an event, or expired leases waiting."""
        events = (self.repair_requeued_count, self.repair_failed_count, self.lease_lost_count)
        return any(events) or bool(self.terminal_guard_hit_count or self.expired_lease_count)


class MetricsUnavailableError(RuntimeError):
    """Prometheus metrics were asked for without prometheus-client installed."""


class Metrics:
    """The signals as Prometheus metrics, plus dispatch latency and outcomes by rail."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        try:
            import prometheus_client as prom  # noqa: PLC0415 - optional extra, imported on use
        except ImportError as error:
            msg = "metrics need prometheus-client: pip install 'outbox-relayer[metrics]'"
            raise MetricsUnavailableError(msg) from error
        self.registry = prom.REGISTRY if registry is None else registry
        self.lease_lost = prom.Counter(
            "outbox_relayer_lease_lost_total",
            "Completions refused with P7002.",
            registry=self.registry,
        )
        self.terminal_guard_hit = prom.Counter(
            "outbox_relayer_terminal_guard_hit_total",
            "23505 on the terminal index.",
            registry=self.registry,
        )
        self.repair_requeued = prom.Counter(
            "outbox_relayer_repair_requeued_total",
            "Expired leases repaired and requeued.",
            registry=self.registry,
        )
        self.repair_failed = prom.Counter(
            "outbox_relayer_repair_failed_total",
            "Expired leases repaired as FAILED.",
            registry=self.registry,
        )
        self.expired_leases = prom.Gauge(
            "outbox_relayer_expired_leases",
            "Expired leases awaiting repair (view total).",
            registry=self.registry,
        )
        self.dispatch_seconds = prom.Histogram(
            "outbox_relayer_dispatch_seconds",
            "Time a rail took to answer one dispatch.",
            ["rail_type"],
            buckets=DISPATCH_BUCKETS,
            registry=self.registry,
        )
        self.dispatch_outcomes = prom.Counter(
            "outbox_relayer_dispatch_outcomes_total",
            "Dispatch answers by rail and attempt state.",
            ["rail_type", "state"],
            registry=self.registry,
        )

        self.wakeups_lost = prom.Gauge(
            "outbox_relayer_wakeups_lost",
            "1 when enqueue notifications do not reach this relayer (it polls instead).",
            registry=self.registry,
        )
        self.send_window = prom.Gauge(
            "outbox_relayer_send_window",
            "Sends this relayer may have in flight to the rail now, from its answers.",
            ["rail_type"],
            registry=self.registry,
        )

    def dispatch(self, rail_type: str, state: str, latency_ms: int) -> None:
        """Record one dispatch: its latency and its outcome."""
        self.dispatch_seconds.labels(rail_type).observe(latency_ms / 1000)
        self.dispatch_outcomes.labels(rail_type, str(state)).inc()


class Signals:
    """Thread-safe counters the worker's threads record into; `flush` closes a cycle.

    One instance may serve the relayer and the repair loop of a process: each event is counted
    in exactly one flush, whichever loop calls it.
    """

    def __init__(self, metrics: Metrics | None = None) -> None:
        self.metrics = metrics
        self._lock = threading.Lock()
        self._cycle: Counter[str] = Counter()
        self._totals: Counter[str] = Counter()
        self._samples: dict[str, list[str]] = {_LEASE_LOST: [], _TERMINAL_GUARD: []}
        self._expired: int | None = None
        self._last_expired: int | None = None

    def lease_lost(self, outbox_id: UUID) -> None:
        """A completion or renewal came back P7002: another holder owns the item now."""
        self._count(_LEASE_LOST, 1, outbox_id)
        if self.metrics is not None:
            self.metrics.lease_lost.inc()

    def terminal_guard_hit(self, outbox_id: UUID) -> None:
        """A completion hit the one-terminal-per-item index (23505): the item already ended."""
        self._count(_TERMINAL_GUARD, 1, outbox_id)
        if self.metrics is not None:
            self.metrics.terminal_guard_hit.inc()

    def repair_requeued(self, repaired: Sequence[RepairedLease], lease_seconds: int) -> None:
        """Log each repaired lease and count it as requeued, or failed at the retry ceiling."""
        for lease in repaired:
            _log_repair(lease, lease_seconds)
        failed = sum(lease.new_state is AttemptState.FAILED for lease in repaired)
        self._count(_REQUEUED, len(repaired) - failed)
        self._count(_REPAIR_FAILED, failed)
        if self.metrics is not None:
            self.metrics.repair_requeued.inc(len(repaired) - failed)
            self.metrics.repair_failed.inc(failed)

    def expired_leases(self, count: int) -> None:
        """The expired_lease_count of outbox_status_view's total row, read this cycle."""
        with self._lock:
            self._expired = self._last_expired = count
        if self.metrics is not None:
            self.metrics.expired_leases.set(count)

    def unserved_rails(self, rails: Sequence[UnservedRail]) -> None:
        """outbox_unserved_rails as read this cycle: warned once per cycle while not empty.

        Logged by every relayer's repair loop, where an on-call reads; the gauge is queue-wide
        and comes from the one `--queue-metrics` process (queue_metrics.py).
        """
        if rails:
            _log.warning(
                UNSERVED_EVENT,
                rails={rail.rail_type: rail.due_count for rail in rails},
                oldest_due_age_seconds=max(rail.oldest_due_age_seconds for rail in rails),
            )

    def dispatch(self, rail_type: str, state: str, latency_ms: int) -> None:
        """One rail answer, for the dispatch metrics (not a lease-health signal, not logged)."""
        if self.metrics is not None:
            self.metrics.dispatch(rail_type, state, latency_ms)

    def send_window(self, rail_type: str, size: int) -> None:
        """A rail's send window as a claim saw it (a gauge only: it moves with every answer)."""
        if self.metrics is not None:
            self.metrics.send_window.labels(rail_type).set(size)

    def wakeups(self, *, arrived: bool, poll_interval: float) -> None:
        """Whether a relayer's probe notification reached it; a warning when it did not."""
        if self.metrics is not None:
            self.metrics.wakeups_lost.set(0 if arrived else 1)
        if not arrived:
            _log.warning(
                WAKEUPS_LOST_EVENT,
                reason="a notification sent through DATABASE_URL did not reach the listener "
                "(a pooler in transaction mode drops them)",
                fix="set OUTBOX_LISTEN_DATABASE_URL to a direct URL of the server",
                poll_interval_seconds=poll_interval,
            )

    def flush(self, cycle: str) -> CycleSignals:
        """Close the cycle: log what moved in one line (plus a warning per kind), then reset."""
        with self._lock:
            counts, samples, expired = self._cycle, self._samples, self._expired
            self._cycle = Counter()
            self._samples = {_LEASE_LOST: [], _TERMINAL_GUARD: []}
            self._expired = None
        signals = CycleSignals(cycle=cycle, expired_lease_count=expired, **counts)
        _log_cycle(signals, samples)
        return signals

    def totals(self) -> CycleSignals:
        """Running totals since start, with the last expired-lease reading."""
        with self._lock:
            return CycleSignals(
                cycle="total", expired_lease_count=self._last_expired, **self._totals
            )

    def _count(self, name: str, amount: int, outbox_id: UUID | None = None) -> None:
        if amount == 0:
            return
        with self._lock:
            self._cycle[name] += amount
            self._totals[name] += amount
            sample = self._samples.get(name)
            if outbox_id is not None and sample is not None and len(sample) < SAMPLE_SIZE:
                sample.append(str(outbox_id))


def _log_repair(lease: RepairedLease, lease_seconds: int) -> None:
    _log.info(
        REPAIR_EVENT,
        outbox_id=str(lease.outbox_id),
        attempt_no=lease.attempt_no,
        previous_state=PREVIOUS_STATE,
        new_state=lease.new_state.value,  # ZOMBIE_REQUEUE is the ledger's value for a requeue
        lease_seconds=lease_seconds,
        previous_holder=lease.previous_holder,
        lease_expired_at=lease.lease_expired_at.isoformat(),
    )


def _log_cycle(signals: CycleSignals, samples: dict[str, list[str]]) -> None:
    if not signals.moved:
        return  # a quiet cycle logs nothing
    fields = attrs.asdict(signals)
    if signals.expired_lease_count is None:
        del fields["expired_lease_count"]
    _log.info(SIGNALS_EVENT, **fields)
    if signals.lease_lost_count:
        _log.warning(
            LEASE_LOST_EVENT,
            cycle=signals.cycle,
            lease_lost_count=signals.lease_lost_count,
            outbox_ids=samples[_LEASE_LOST],
        )
    if signals.terminal_guard_hit_count:
        _log.warning(
            TERMINAL_GUARD_EVENT,
            cycle=signals.cycle,
            terminal_guard_hit_count=signals.terminal_guard_hit_count,
            index=TERMINAL_INDEX,
            outbox_ids=samples[_TERMINAL_GUARD],
        )


def configure_logging(*, json: bool | None = None, stream: TextIO | None = None) -> None:
    """Structured logs to stdout: JSON when it is not a terminal (production), else readable."""
    out = sys.stdout if stream is None else stream
    render_json = not out.isatty() if json is None else json
    shared: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: list[structlog.typing.Processor] = (
        [structlog.processors.dict_tracebacks, structlog.processors.JSONRenderer()]
        if render_json
        else [structlog.dev.ConsoleRenderer(colors=out.isatty())]
    )
    structlog.configure(
        processors=shared + renderer,
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
        logger_factory=structlog.PrintLoggerFactory(out),
        cache_logger_on_first_use=False,
    )
    # Libraries' warnings (psycopg and its pool) go the same way: one line each, under
    # structlog's write lock, so they never split a line of the relayer's own.
    root = logging.getLogger()
    if not any(isinstance(handler, _ThroughStructlog) for handler in root.handlers):
        root.addHandler(_ThroughStructlog())


class _ThroughStructlog(logging.Handler):
    """Hands the standard library's log records (WARNING and up, by default) to structlog."""

    def emit(self, record: logging.LogRecord) -> None:
        structlog.get_logger().log(record.levelno, record.getMessage(), logger=record.name)


def start_metrics_server(
    port: int,
    registry: CollectorRegistry | None = None,
    host: str = "0.0.0.0",  # noqa: S104 - Prometheus scrapes from outside the host or pod
) -> WSGIServer:
    """Serve /metrics on a daemon thread; port 0 picks a free one (see `server_port`)."""
    try:
        import prometheus_client as prom  # noqa: PLC0415 - optional extra, imported on use
    except ImportError as error:
        msg = "metrics need prometheus-client: pip install 'outbox-relayer[metrics]'"
        raise MetricsUnavailableError(msg) from error
    server, _ = prom.start_http_server(
        port, addr=host, registry=prom.REGISTRY if registry is None else registry
    )
    return server
