"""Signals: each lease-health event counted once, one log line per cycle, Prometheus in step."""

from __future__ import annotations

import io
import json
import logging
import sys
import threading
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import httpx
import pytest
import structlog
from prometheus_client import CollectorRegistry
from structlog.testing import capture_logs

from outbox_db import AttemptState, RepairedLease
from outbox_relayer.signals import (
    LEASE_LOST_EVENT,
    REPAIR_EVENT,
    SAMPLE_SIZE,
    SIGNALS_EVENT,
    TERMINAL_GUARD_EVENT,
    CycleSignals,
    Metrics,
    MetricsUnavailableError,
    Signals,
    configure_logging,
    start_metrics_server,
)
from relaying import events

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture
def registry() -> CollectorRegistry:
    """A fresh registry per test, so no test sees another's counts."""
    return CollectorRegistry()


@pytest.fixture
def signals(registry: CollectorRegistry) -> Signals:
    """Signals exporting to the test's own registry."""
    return Signals(Metrics(registry))


@pytest.fixture
def _restore_structlog() -> Iterator[None]:
    """configure_logging changes global structlog and logging state; put the defaults back."""
    yield
    structlog.reset_defaults()
    root = logging.getLogger()
    for handler in [h for h in root.handlers if type(h).__name__ == "_ThroughStructlog"]:
        root.removeHandler(handler)


def repaired(
    state: AttemptState = AttemptState.ZOMBIE_REQUEUE, attempt_no: int = 2
) -> RepairedLease:
    """A lease that repair recorded, with defaults."""
    return RepairedLease(
        outbox_id=uuid.uuid4(),
        attempt_no=attempt_no,
        new_state=state,
        previous_holder="worker-1",
        lease_expired_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
    )


def value(registry: CollectorRegistry, name: str, **labels: str) -> float:
    """A sample's value read back from the registry (0 when never recorded)."""
    return registry.get_sample_value(name, labels) or 0.0


def test_each_event_is_counted_exactly_once(signals: Signals, registry: CollectorRegistry) -> None:
    """One call, one count: in the cycle, in the totals and in Prometheus."""
    signals.lease_lost(uuid.uuid4())
    signals.terminal_guard_hit(uuid.uuid4())
    signals.repair_requeued([repaired()], lease_seconds=30)
    signals.expired_leases(4)

    cycle = signals.flush("relay")

    assert cycle == CycleSignals(
        cycle="relay",
        expired_lease_count=4,
        repair_requeued_count=1,
        lease_lost_count=1,
        terminal_guard_hit_count=1,
    )
    assert value(registry, "outbox_relayer_lease_lost_total") == 1
    assert value(registry, "outbox_relayer_terminal_guard_hit_total") == 1
    assert value(registry, "outbox_relayer_repair_requeued_total") == 1
    assert value(registry, "outbox_relayer_expired_leases") == 4


def test_concurrent_recording_loses_and_doubles_nothing(
    signals: Signals, registry: CollectorRegistry
) -> None:
    """Eight dispatch threads recording at once: the counts are exactly the events."""
    threads_n, per_thread = 8, 500
    start = threading.Barrier(threads_n)

    def record() -> None:
        start.wait()
        for _ in range(per_thread):
            signals.lease_lost(uuid.uuid4())
            signals.terminal_guard_hit(uuid.uuid4())

    threads = [threading.Thread(target=record) for _ in range(threads_n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    cycle = signals.flush("relay")
    assert cycle.lease_lost_count == threads_n * per_thread
    assert cycle.terminal_guard_hit_count == threads_n * per_thread
    assert value(registry, "outbox_relayer_lease_lost_total") == threads_n * per_thread


def test_flushing_while_threads_record_counts_every_event_in_one_cycle(signals: Signals) -> None:
    """Flushes racing with recording: the per-cycle counts add up to the events, none twice."""
    done = threading.Event()
    flushed: list[CycleSignals] = []

    def flush_until_done() -> None:
        while not done.is_set():
            flushed.append(signals.flush("relay"))

    flusher = threading.Thread(target=flush_until_done)
    flusher.start()
    for _ in range(3000):
        signals.lease_lost(uuid.uuid4())
    done.set()
    flusher.join()
    flushed.append(signals.flush("relay"))

    assert sum(cycle.lease_lost_count for cycle in flushed) == 3000
    assert signals.totals().lease_lost_count == 3000


def test_a_spike_is_one_line_per_cycle_not_one_per_event(signals: Signals) -> None:
    """100 lost leases: one outbox_signals line at info and one warning, however many events."""
    with capture_logs() as logs:
        for _ in range(100):
            signals.lease_lost(uuid.uuid4())
        signals.flush("relay")

    assert len(logs) == 2
    (line,) = events(logs, SIGNALS_EVENT)
    assert line["log_level"] == "info"
    assert line == {
        "event": SIGNALS_EVENT,
        "log_level": "info",
        "cycle": "relay",
        "repair_requeued_count": 0,
        "repair_failed_count": 0,
        "lease_lost_count": 100,
        "terminal_guard_hit_count": 0,
    }


def test_lease_lost_is_one_warning_per_cycle_with_the_first_ids(signals: Signals) -> None:
    """LEASE_LOST_CONCURRENCY_EVENT at warning, with the count and the first few outbox_ids."""
    ids = [uuid.uuid4() for _ in range(SAMPLE_SIZE + 3)]
    with capture_logs() as logs:
        for outbox_id in ids:
            signals.lease_lost(outbox_id)
        signals.flush("relay")

    (warning,) = events(logs, LEASE_LOST_EVENT)
    assert warning["log_level"] == "warning"
    assert warning["lease_lost_count"] == len(ids)
    assert warning["outbox_ids"] == [str(outbox_id) for outbox_id in ids[:SAMPLE_SIZE]]


def test_a_terminal_guard_hit_is_a_warning_naming_the_index(signals: Signals) -> None:
    """23505 on the terminal index: one warning per cycle, never an error."""
    outbox_id = uuid.uuid4()
    with capture_logs() as logs:
        signals.terminal_guard_hit(outbox_id)
        signals.flush("relay")

    (warning,) = events(logs, TERMINAL_GUARD_EVENT)
    assert warning["log_level"] == "warning"
    assert warning["index"] == "payment_outbox_attempts_one_terminal_per_outbox"
    assert warning["outbox_ids"] == [str(outbox_id)]
    assert {entry["log_level"] for entry in logs} <= {"info", "warning"}


def test_a_quiet_cycle_logs_nothing(signals: Signals) -> None:
    """No event and no expired lease: no line at all."""
    with capture_logs() as logs:
        cycle = signals.flush("relay")
    assert logs == []
    assert not cycle.moved


def test_counts_reset_per_cycle_and_totals_persist(signals: Signals) -> None:
    """Flushing resets the cycle's counts; totals() keeps adding up across flushes."""
    signals.lease_lost(uuid.uuid4())
    signals.lease_lost(uuid.uuid4())
    first = signals.flush("relay")
    signals.lease_lost(uuid.uuid4())
    signals.repair_requeued([repaired(), repaired()], lease_seconds=30)
    second = signals.flush("lease_repair")
    third = signals.flush("relay")

    assert (first.lease_lost_count, second.lease_lost_count, third.lease_lost_count) == (2, 1, 0)
    assert signals.totals() == CycleSignals(
        cycle="total", lease_lost_count=3, repair_requeued_count=2
    )


def test_each_repaired_lease_is_logged_with_its_fields(signals: Signals) -> None:
    """Per repaired item: outbox_id, attempt_no, previous_state LEASED, new_state, lease_seconds."""
    lease = repaired(attempt_no=3)
    with capture_logs() as logs:
        signals.repair_requeued([lease], lease_seconds=45)

    (entry,) = events(logs, REPAIR_EVENT)
    assert entry == {
        "event": REPAIR_EVENT,
        "log_level": "info",
        "outbox_id": str(lease.outbox_id),
        "attempt_no": 3,
        "previous_state": "LEASED",
        "new_state": "ZOMBIE_REQUEUE",
        "lease_seconds": 45,
        "previous_holder": "worker-1",
        "lease_expired_at": "2026-01-02T03:04:05+00:00",
    }


def test_a_repair_at_the_retry_ceiling_counts_as_failed_not_requeued(
    signals: Signals, registry: CollectorRegistry
) -> None:
    """An expired lease whose item had no attempts left ends FAILED: counted apart."""
    with capture_logs() as logs:
        signals.repair_requeued([repaired(AttemptState.FAILED), repaired()], lease_seconds=30)
        cycle = signals.flush("lease_repair")

    assert (cycle.repair_requeued_count, cycle.repair_failed_count) == (1, 1)
    assert [entry["new_state"] for entry in events(logs, REPAIR_EVENT)] == [
        "FAILED",
        "ZOMBIE_REQUEUE",
    ]
    assert value(registry, "outbox_relayer_repair_requeued_total") == 1
    assert value(registry, "outbox_relayer_repair_failed_total") == 1


def test_expired_leases_is_a_gauge_reported_in_the_cycle_that_read_it(
    signals: Signals, registry: CollectorRegistry
) -> None:
    """The view's count appears in that cycle's line; a cycle that did not read it omits it."""
    with capture_logs() as logs:
        signals.expired_leases(7)
        first = signals.flush("lease_repair")
        signals.lease_lost(uuid.uuid4())
        second = signals.flush("relay")

    lines = events(logs, SIGNALS_EVENT)
    assert lines[0]["expired_lease_count"] == 7
    assert "expired_lease_count" not in lines[1]
    assert (first.expired_lease_count, second.expired_lease_count) == (7, None)
    assert signals.totals().expired_lease_count == 7
    signals.expired_leases(0)
    assert value(registry, "outbox_relayer_expired_leases") == 0


def test_signals_work_without_metrics() -> None:
    """Signals() alone counts and logs; Prometheus is optional."""
    signals = Signals()
    signals.lease_lost(uuid.uuid4())
    signals.dispatch("rtp", AttemptState.DISPATCHED, 12)
    assert signals.flush("relay").lease_lost_count == 1


def test_dispatch_latency_and_outcomes_are_recorded_by_rail(
    signals: Signals, registry: CollectorRegistry
) -> None:
    """Each dispatch observes its latency in seconds and counts its outcome by rail and state."""
    signals.dispatch("rtp", AttemptState.DISPATCHED, 120)
    signals.dispatch("rtp", AttemptState.RETRYABLE, 80)
    signals.dispatch("ach", AttemptState.DISPATCHED, 2500)

    assert value(registry, "outbox_relayer_dispatch_seconds_count", rail_type="rtp") == 2
    assert value(registry, "outbox_relayer_dispatch_seconds_sum", rail_type="rtp") == pytest.approx(
        0.2
    )
    outcomes = "outbox_relayer_dispatch_outcomes_total"
    assert value(registry, outcomes, rail_type="rtp", state="DISPATCHED") == 1
    assert value(registry, outcomes, rail_type="rtp", state="RETRYABLE") == 1
    assert value(registry, outcomes, rail_type="ach", state="DISPATCHED") == 1


def test_the_send_window_is_a_gauge_by_rail(signals: Signals, registry: CollectorRegistry) -> None:
    """The last window each rail was given, not a sum."""
    signals.send_window("rtp", 200)
    signals.send_window("rtp", 800)
    signals.send_window("ach", 16)

    assert value(registry, "outbox_relayer_send_window", rail_type="rtp") == 800
    assert value(registry, "outbox_relayer_send_window", rail_type="ach") == 16


def test_metric_names_are_the_documented_ones(registry: CollectorRegistry) -> None:
    """Exactly these metrics, all lease-named, in the registry given."""
    Metrics(registry)
    names = {metric.name for metric in registry.collect()}
    assert names == {
        "outbox_relayer_lease_lost",
        "outbox_relayer_terminal_guard_hit",
        "outbox_relayer_repair_requeued",
        "outbox_relayer_repair_failed",
        "outbox_relayer_expired_leases",
        "outbox_relayer_dispatch_seconds",
        "outbox_relayer_dispatch_outcomes",
        "outbox_relayer_wakeups_lost",
        "outbox_relayer_send_window",
    }


def test_metrics_without_prometheus_client_say_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without the extra, asking for metrics fails with the install command."""
    monkeypatch.setitem(sys.modules, "prometheus_client", None)
    with pytest.raises(MetricsUnavailableError, match=r"outbox-relayer\[metrics\]"):
        Metrics(CollectorRegistry())
    with pytest.raises(MetricsUnavailableError):
        start_metrics_server(0)


def test_the_metrics_server_serves_the_registry(
    signals: Signals, registry: CollectorRegistry
) -> None:
    """start_metrics_server exposes the counters over HTTP for Prometheus to scrape."""
    signals.lease_lost(uuid.uuid4())
    server = start_metrics_server(0, registry, host="127.0.0.1")
    try:
        response = httpx.get(f"http://127.0.0.1:{server.server_port}/metrics", timeout=5)
    finally:
        server.shutdown()
        server.server_close()
    assert response.status_code == 200
    assert "outbox_relayer_lease_lost_total 1.0" in response.text


@pytest.mark.usefixtures("_restore_structlog")
def test_logs_are_json_lines_in_production() -> None:
    """Off a terminal (json=None, stream not a TTY) each signal is one JSON object per line."""
    stream = io.StringIO()
    configure_logging(stream=stream)
    signals = Signals()
    signals.lease_lost(uuid.uuid4())
    signals.flush("relay")

    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [line["event"] for line in lines] == [SIGNALS_EVENT, LEASE_LOST_EVENT]
    assert [line["level"] for line in lines] == ["info", "warning"]
    assert all("timestamp" in line for line in lines)


@pytest.mark.usefixtures("_restore_structlog")
def test_library_warnings_are_json_lines_too() -> None:
    """Psycopg's pool warning comes out as a JSON line naming its logger, not as raw stderr."""
    stream = io.StringIO()
    configure_logging(stream=stream)
    configure_logging(stream=stream)  # configured twice: still one line per record
    logging.getLogger("psycopg.pool").warning("discarding closed connection: %s", "<conn>")

    (line,) = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert (line["event"], line["level"], line["logger"]) == (
        "discarding closed connection: <conn>",
        "warning",
        "psycopg.pool",
    )


@pytest.mark.usefixtures("_restore_structlog")
def test_logs_are_readable_text_on_a_terminal() -> None:
    """json=False renders the human format: event name and key=value fields, not JSON."""
    stream = io.StringIO()
    configure_logging(json=False, stream=stream)
    signals = Signals()
    signals.terminal_guard_hit(uuid.uuid4())
    signals.flush("relay")

    text = stream.getvalue()
    assert TERMINAL_GUARD_EVENT in text
    assert "terminal_guard_hit_count=1" in text
    assert not text.lstrip().startswith("{")
