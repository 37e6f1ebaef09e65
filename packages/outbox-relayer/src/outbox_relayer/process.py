"""A relayer process: turns a RelayerConfig into running loops and runs them until stopped.

`outbox-relayer run` is this module behind flag parsing. The relay loop runs on the calling
thread and the repair loop on one of its own; both stop when the `stop` event is set (the CLI
sets it on SIGTERM or SIGINT) and the process then exits 0.
"""

from __future__ import annotations

import contextlib
import threading
from typing import TYPE_CHECKING, Final

import attrs
import structlog

from outbox_db import DatabaseUnavailable, OutboxStore, Role
from outbox_relayer.backoff import DatabaseRetry
from outbox_relayer.config import ConfigError
from outbox_relayer.lease_repair import LeaseRepairer, RepairCycle
from outbox_relayer.queue_metrics import QueueCollector
from outbox_relayer.rail_config import MAX_IN_FLIGHT, RailEndpoint, load_rails
from outbox_relayer.rail_slots import RailLimit
from outbox_relayer.rails import HttpRail, NoopRail
from outbox_relayer.relayer import Relayer, RelayerSettings
from outbox_relayer.signals import Metrics, Signals, start_metrics_server
from outbox_relayer.tracing import RelayTracing

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

    from outbox_relayer.config import RelayerConfig
    from outbox_relayer.rails import Rail

__all__ = ["NOOP_TARGET", "build_rails", "connect", "repair_once", "serve"]

NOOP_TARGET: Final = "noop"  # `--rail TYPE=noop`: the in-process rail that sends nothing
_log = structlog.get_logger("outbox_relayer")


def build_rails(config: RelayerConfig, targets: Mapping[str, str]) -> dict[str, Rail]:
    """The rails file's endpoints, then `targets` ({rail_type: URL or "noop"}) over them.

    `config.rail_lookups` turns outcome lookup on for those rail types (HTTP rails only).
    Each HTTP rail keeps at most its share of sends (its max_in_flight, else the process's
    concurrency) as connections.
    """
    endpoints = load_rails(config.rails_file) if config.rails_file is not None else {}
    for rail_type, target in targets.items():
        if target != NOOP_TARGET:
            endpoints[rail_type] = RailEndpoint(rail_type=rail_type, url=target)
    if unknown := sorted(config.rail_lookups - endpoints.keys()):
        msg = f"OUTBOX_RAIL_LOOKUP names {unknown[0]}, which has no HTTP rail configured"
        raise ConfigError(msg)
    for rail_type in config.rail_lookups:
        endpoints[rail_type] = attrs.evolve(endpoints[rail_type], lookup=True)
    rails: dict[str, Rail] = {
        name: HttpRail(end, connections=min(end.max_in_flight or MAX_IN_FLIGHT, config.concurrency))
        for name, end in endpoints.items()
    }
    rails.update({name: NoopRail() for name, target in targets.items() if target == NOOP_TARGET})
    return rails


def _looked_up(rails: Mapping[str, Rail]) -> list[str]:
    """The rail types whose unknown outcomes are looked up before a re-send."""
    return [
        name for name, rail in rails.items() if isinstance(rail, HttpRail) and rail.endpoint.lookup
    ]


def connect(config: RelayerConfig, stop: threading.Event) -> OutboxStore | None:
    """The executor's store, retrying with backoff while the database is unreachable.

    None when stopped before the database answered. Any other refusal (a wrong password, a
    missing database) is raised: retrying cannot fix it.
    """
    retry = DatabaseRetry(loop="connect")
    while not stop.is_set():
        try:
            # The relay and the repair loop each hold at most one connection at a time.
            return OutboxStore.connect(config.database_url.reveal(), role=Role.EXECUTOR, max_size=3)
        except DatabaseUnavailable as error:
            retry.failed(error, stop)
    return None


def repair_once(config: RelayerConfig) -> RepairCycle:
    """One lease repair cycle (`outbox-relayer repair --once`)."""
    with OutboxStore.connect(config.database_url.reveal(), role=Role.EXECUTOR) as store:
        signals = Signals()
        cycle = _repairer(config, store, signals).run_once()
        signals.flush("lease_repair")
        return cycle


def serve(
    config: RelayerConfig,
    stop: threading.Event,
    *,
    relay: bool = True,
    repair: bool = True,
    rail_targets: Mapping[str, str] | None = None,
) -> None:
    """Run the enabled loops until `stop` is set; return once both have shut down."""
    signals = Signals(_metrics(config))
    tracing = RelayTracing.on() if config.tracing else RelayTracing.off()
    rails = build_rails(config, rail_targets or {}) if relay else {}
    if relay and not rails:
        msg = "no rails configured: set OUTBOX_RAILS_FILE (--rails-file) or give --rail"
        raise ConfigError(msg)
    _log.info(
        "relayer_started",
        worker_id=config.worker_id,
        relay=relay,
        repair=repair,
        rail_types=sorted(rails),
        rail_limits={name: attrs.asdict(limit) for name, limit in _limits(rails).items()},
        lookup_rail_types=sorted(_looked_up(rails)),
        batch_size=config.batch_size,
        concurrency=config.concurrency,
        max_bytes_in_flight=config.max_bytes_in_flight,
        lease_seconds=config.lease_seconds,
        renew_leases=config.renew_leases,
        listen_url_set=config.listen_database_url is not None,
    )
    store = connect(config, stop)
    if store is None:
        return
    _log.info("database_connected", pooler=store.route.pooled)
    with (
        store,
        _exporting_queue(signals, store, enabled=config.queue_metrics),
        _repairing(config, store, signals, stop, enabled=repair),
    ):
        if relay:
            Relayer(
                store,
                rails=rails,
                signals=signals,
                settings=attrs.evolve(settings_of(config), rail_limits=_limits(rails)),
                backoff=config.backoff(),
                tracing=tracing,
            ).run(stop)
        else:
            stop.wait()
    _log.info("relayer_exited", worker_id=config.worker_id, **_totals(signals))


def _limits(rails: Mapping[str, Rail]) -> dict[str, RailLimit]:
    """The rails file's per-rail caps; a rail without any is capped by OUTBOX_CONCURRENCY alone."""
    endpoints = [rail.endpoint for rail in rails.values() if isinstance(rail, HttpRail)]
    return {
        end.rail_type: RailLimit(
            max_in_flight=end.max_in_flight or MAX_IN_FLIGHT, rate_per_second=end.rate_per_second
        )
        for end in endpoints
        if end.max_in_flight is not None or end.rate_per_second is not None
    }


def settings_of(config: RelayerConfig) -> RelayerSettings:
    """The relay loop's settings from the process configuration."""
    return RelayerSettings(
        worker_id=config.worker_id,
        batch_size=config.batch_size,
        concurrency=config.concurrency,
        lease_seconds=config.lease_seconds,
        poll_interval_seconds=config.poll_interval_seconds,
        shutdown_grace_seconds=config.shutdown_grace_seconds,
        max_bytes_in_flight=config.max_bytes_in_flight,
        renew_leases=config.renew_leases,
        listen_url=None
        if config.listen_database_url is None
        else config.listen_database_url.reveal(),
    )


@contextlib.contextmanager
def _repairing(
    config: RelayerConfig,
    store: OutboxStore,
    signals: Signals,
    stop: threading.Event,
    *,
    enabled: bool,
) -> Iterator[None]:
    """Run the repair loop on its own thread while the block runs; stop and join it after."""
    if not enabled:
        yield
        return
    thread = threading.Thread(
        target=_repairer(config, store, signals).run,
        args=(stop, config.repair_interval_seconds),
        name="outbox-lease-repair",
    )
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


@contextlib.contextmanager
def _exporting_queue(signals: Signals, store: OutboxStore, *, enabled: bool) -> Iterator[None]:
    """Serve the queue-wide figures from `store` on the metrics page while the block runs."""
    if not enabled or signals.metrics is None:
        yield
        return
    collector = QueueCollector(store)
    signals.metrics.registry.register(collector)
    try:
        yield
    finally:
        signals.metrics.registry.unregister(collector)


def _repairer(config: RelayerConfig, store: OutboxStore, signals: Signals) -> LeaseRepairer:
    return LeaseRepairer(
        store=store,
        signals=signals,
        worker_id=config.worker_id,
        batch_size=config.lease_repair_batch_size,
        lease_seconds=config.lease_seconds,
    )


def _metrics(config: RelayerConfig) -> Metrics | None:
    if config.metrics_port is None:
        return None
    metrics = Metrics()
    start_metrics_server(config.metrics_port, metrics.registry)
    return metrics


def _totals(signals: Signals) -> dict[str, int]:
    totals = signals.totals()
    return {
        "repair_requeued_count": totals.repair_requeued_count,
        "repair_failed_count": totals.repair_failed_count,
        "lease_lost_count": totals.lease_lost_count,
        "terminal_guard_hit_count": totals.terminal_guard_hit_count,
    }
