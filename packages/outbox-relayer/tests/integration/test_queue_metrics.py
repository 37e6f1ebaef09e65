"""The queue-wide metrics a `--queue-metrics` process serves, scraped from a real database."""

from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, generate_latest

from outbox_db import OutboxStore, Role
from outbox_db.testonly.factories import make_request
from outbox_relayer.queue_metrics import QueueCollector

if TYPE_CHECKING:
    from outbox_db.testonly.pytest_plugin import Database


def scrape(store: OutboxStore) -> CollectorRegistry:
    """A registry with the queue collector of `store` registered, as the relayer does."""
    registry = CollectorRegistry()
    registry.register(QueueCollector(store))
    return registry


def test_a_scrape_reads_the_queue_by_rail_and_state(outbox_store: OutboxStore) -> None:
    """Due and leased items per rail, the oldest due age, and a successful read."""
    for rail in ("rtp", "rtp", "rtp", "ach"):
        outbox_store.enqueue(make_request(rail_type=rail))
    outbox_store.claim("worker-1", batch_size=1, lease_seconds=60)  # the oldest: an rtp item

    registry = scrape(outbox_store)

    def items(rail: str, state: str) -> float | None:
        return registry.get_sample_value("outbox_queue_items", {"rail_type": rail, "state": state})

    assert (items("rtp", "due"), items("rtp", "leased"), items("rtp", "expired_lease")) == (2, 1, 0)
    assert (items("ach", "due"), items("ach", "leased")) == (1, 0)
    assert registry.get_sample_value("outbox_queue_oldest_due_age_seconds", {"rail_type": "ach"})
    assert registry.get_sample_value("outbox_queue_scrape_ok") == 1
    assert (registry.get_sample_value("outbox_queue_scrape_seconds") or 0) > 0


def test_a_read_the_database_refuses_serves_scrape_ok_zero(outbox_database: Database) -> None:
    """A failing read (here: a role that may not read the depth, 42501) still answers the page."""
    with OutboxStore.connect(outbox_database.url, role=Role.PRODUCER) as producer:
        registry = scrape(producer)
        page = generate_latest(registry).decode()

    assert registry.get_sample_value("outbox_queue_scrape_ok") == 0
    assert "outbox_queue_items{" not in page


def test_a_rail_nobody_serves_is_gauged_by_the_exporter(outbox_store: OutboxStore) -> None:
    """Due items on a rail no relayer announced: its count and age, from the one exporter."""
    outbox_store.enqueue(make_request(rail_type="sepa"))

    registry = scrape(outbox_store)

    labels = {"rail_type": "sepa"}
    assert registry.get_sample_value("outbox_queue_unserved_due_items", labels) == 1
    assert registry.get_sample_value("outbox_queue_unserved_oldest_due_seconds", labels) is not None
