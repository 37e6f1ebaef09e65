"""The relayer as `outbox-relayer run` builds it, for in-process proofs against rail-sim."""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

from outbox_relayer import Backoff, HttpRail, RailEndpoint, Relayer, RelayerSettings, Signals

if TYPE_CHECKING:
    from outbox_db import OutboxStore
    from outbox_relayer import RailSimulator
    from outbox_relayer.tracing import RelayTracing


def drain(  # noqa: PLR0913 - what the proofs vary, keyword-only
    store: OutboxStore,
    simulator: RailSimulator,
    *,
    rail_type: str,
    worker_id: str = "relayer-1",
    tracing: RelayTracing | None = None,
    traceparent: bool = False,
) -> None:
    """One relayer relays items of `rail_type` to `simulator` until nothing is due.

    With `tracing`, its spans; with `traceparent`, the rail opts in to the trace header.
    """
    endpoint = RailEndpoint(
        rail_type=rail_type,
        url=simulator.payments_url,
        timeout_seconds=10.0,
        traceparent=traceparent,
    )
    with HttpRail(endpoint) as rail:
        relayer = Relayer(
            store,
            rails={rail_type: rail},
            signals=Signals(),
            settings=RelayerSettings(worker_id=worker_id, shutdown_grace_seconds=5.0),
            backoff=Backoff(rng=random.Random(1)),  # noqa: S311 - jitter, not secrecy
            tracing=tracing,
        )
        try:
            relayer.drain()
        finally:
            relayer.shut_down()
