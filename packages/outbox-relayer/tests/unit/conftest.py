"""Fixtures for the relayer's unit tests: claimed items and live rail simulators on loopback."""

from __future__ import annotations

import contextlib
import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import httpx
import pytest

from outbox_db import ClaimedItem
from outbox_db.payloads import canonical_json
from outbox_db.testonly.blocking import EventLoopThread
from outbox_relayer import HttpRail, RailEndpoint
from outbox_relayer.testing import Faults, RailSimulator
from relaying import BlockingRail

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping
    from pathlib import Path


@pytest.fixture
def make_item() -> Callable[..., ClaimedItem]:
    """A factory of leased items, each with a fresh outbox_id and lease token."""

    def make(*, payload: Mapping[str, object] | None = None, **overrides: object) -> ClaimedItem:
        """`payload` (a mapping) is stored as the database would: its JSON text."""
        fields: dict[str, object] = {
            "outbox_id": uuid.uuid4(),
            "instruction_id": "ins-1",
            "participant_id": "bank-a",
            "sequence_id": 1,
            "idempotency_key": f"key-{uuid.uuid4()}",
            "rail_type": "rtp",
            "payload_json": canonical_json(payload or {"amount": "10.00", "currency": "USD"}),
            "attempt_count": 0,
            "lease_token": uuid.uuid4(),
            "lease_expires_at": datetime.now(UTC) + timedelta(seconds=30),
        }
        return ClaimedItem(**(fields | overrides))  # type: ignore[arg-type]

    return make


@pytest.fixture
def start_simulator(tmp_path: Path) -> Iterator[Callable[..., RailSimulator]]:
    """Simulators started by the test, each logging to its own file, all stopped afterwards."""
    with contextlib.ExitStack() as stack:
        started = 0

        def start(
            faults: Faults | None = None, *, replay_status: int | None = None
        ) -> RailSimulator:
            nonlocal started
            started += 1
            simulator = RailSimulator(
                faults=faults,
                log_path=tmp_path / f"rail-sim-{started}.jsonl",
                replay_status=replay_status,
            )
            return stack.enter_context(simulator)

        yield start


@pytest.fixture
def simulator(start_simulator: Callable[..., RailSimulator]) -> RailSimulator:
    """A well-behaved simulator: no latency, no faults."""
    return start_simulator()


@pytest.fixture
def loop() -> Iterator[EventLoopThread]:
    """An event loop in a thread of its own, for the test's rails and servers."""
    running = EventLoopThread()
    yield running
    running.close()


@pytest.fixture
def blocking_rail(loop: EventLoopThread) -> Iterator[Callable[[RailEndpoint], BlockingRail]]:
    """HttpRails for endpoints, sending on the test's loop; closed at teardown."""
    with contextlib.ExitStack() as stack:

        def build(endpoint: RailEndpoint) -> BlockingRail:
            return stack.enter_context(BlockingRail(HttpRail(endpoint), loop))

        yield build


@pytest.fixture
def rail_for(
    blocking_rail: Callable[[RailEndpoint], BlockingRail],
) -> Callable[..., BlockingRail]:
    """HttpRails for simulators, closed at teardown."""

    def build(simulator: RailSimulator, *, timeout_seconds: float = 5.0) -> BlockingRail:
        url = simulator.payments_url
        return blocking_rail(
            RailEndpoint(rail_type="rtp", url=url, timeout_seconds=timeout_seconds)
        )

    return build


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    """One HTTP client for the test's own requests to a simulator (building one is slow)."""
    with httpx.Client() as http:
        yield http
