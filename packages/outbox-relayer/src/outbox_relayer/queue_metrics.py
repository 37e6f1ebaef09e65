"""Queue-wide figures for Prometheus, read from the database when Prometheus scrapes.

They describe the queue, not a process, so one process of a fleet exports them
(`outbox-relayer run --queue-metrics`, best the dedicated repairer); every relayer exporting
them would report the same queue N times. Each scrape reads outbox_queue_depth() (schema
0014) and outbox_unserved_rails (0013), both from the pending table, never the ledger. A
scrape that cannot reach the database answers `outbox_queue_scrape_ok 0` instead of failing
the whole page, so the relayer's own metrics still arrive.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Final

import structlog

from outbox_db import OutboxDatabaseError

if TYPE_CHECKING:
    from collections.abc import Iterator

    from prometheus_client.metrics_core import GaugeMetricFamily

    from outbox_db import OutboxStore, QueueDepth

__all__ = ["QueueCollector", "queue_metric_families"]

ITEMS: Final = "outbox_queue_items"
OLDEST_DUE: Final = "outbox_queue_oldest_due_age_seconds"
UNSERVED_ITEMS: Final = "outbox_queue_unserved_due_items"
UNSERVED_OLDEST: Final = "outbox_queue_unserved_oldest_due_seconds"
SCRAPE_SECONDS: Final = "outbox_queue_scrape_seconds"
SCRAPE_OK: Final = "outbox_queue_scrape_ok"
# The states an item of the queue is in, as outbox_queue_depth() counts them.
STATES: Final = ("due", "scheduled", "waiting", "leased", "expired_lease")
_log = structlog.get_logger("outbox_relayer.queue_metrics")


def queue_metric_families() -> list[GaugeMetricFamily]:
    """The families a scrape answers, empty: their names and help texts."""
    from prometheus_client.metrics_core import GaugeMetricFamily  # noqa: PLC0415 - optional extra

    return [
        GaugeMetricFamily(
            ITEMS,
            "Items in the queue by rail and state (queue-wide).",
            labels=["rail_type", "state"],
        ),
        GaugeMetricFamily(
            OLDEST_DUE, "Age of the oldest due item by rail (queue-wide).", labels=["rail_type"]
        ),
        GaugeMetricFamily(
            UNSERVED_ITEMS,
            "Due items of a rail no relayer announced in the last minute.",
            labels=["rail_type"],
        ),
        GaugeMetricFamily(
            UNSERVED_OLDEST,
            "Age of the oldest due item of a rail no relayer serves.",
            labels=["rail_type"],
        ),
        GaugeMetricFamily(SCRAPE_SECONDS, "Time the last queue read took."),
        GaugeMetricFamily(SCRAPE_OK, "1 when the last queue read answered, else 0."),
    ]


class QueueCollector:
    """A Prometheus collector that reads the queue's depth at each scrape."""

    def __init__(self, store: OutboxStore) -> None:
        self._store = store

    def describe(self) -> list[GaugeMetricFamily]:
        """The families, without reading the database (registration calls this)."""
        return queue_metric_families()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """One read of the queue: its families filled in, or scrape_ok 0 if it failed."""
        items, oldest, unserved_items, unserved_oldest, seconds, ok = queue_metric_families()
        started = time.perf_counter()
        try:
            depths = self._store.queue_depth()
            unserved = self._store.unserved_rails()
        except OutboxDatabaseError as error:
            _log.warning("queue_metrics_unavailable", error=type(error).__name__)
            ok.add_metric([], 0)
            yield ok
            return
        for depth in depths:
            for state, count in zip(STATES, _counts(depth), strict=True):
                items.add_metric([depth.rail_type, state], count)
            oldest.add_metric([depth.rail_type], depth.oldest_due_age_seconds)
        for rail in unserved:
            unserved_items.add_metric([rail.rail_type], rail.due_count)
            unserved_oldest.add_metric([rail.rail_type], rail.oldest_due_age_seconds)
        seconds.add_metric([], time.perf_counter() - started)
        ok.add_metric([], 1)
        yield from (items, oldest, unserved_items, unserved_oldest, seconds, ok)


def _counts(depth: QueueDepth) -> tuple[int, ...]:
    return (
        depth.due_count,
        depth.scheduled_count,
        depth.waiting_count,
        depth.leased_count,
        depth.expired_lease_count,
    )
