"""`outbox-relayer`: run a relayer, run lease repair, or simulate a rail."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TextIO

import attrs
import click

from outbox_db import OutboxError
from outbox_relayer import process
from outbox_relayer.config import (
    DEFAULT_BYTES_IN_FLIGHT,
    DEFAULT_CONCURRENCY,
    RECOMMENDED_CONCURRENCY,
    ConfigError,
    RelayerConfig,
)
from outbox_relayer.open_files import allow_open_files
from outbox_relayer.process import NOOP_TARGET
from outbox_relayer.rail_config import MAX_IN_FLIGHT, RailConfigError
from outbox_relayer.signals import MetricsUnavailableError, configure_logging
from outbox_relayer.testing.cli import rail_sim
from outbox_relayer.tracing import TracingUnavailableError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from types import FrameType

_URL_SCHEMES: Final = ("http://", "https://")
# Open files a relayer needs beyond a socket per send: database connections, logs, metrics.
FILES_BESIDES_SENDS: Final = 256


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="outbox-relayer")
def main() -> None:
    """Dispatch outbox items to payment rails."""


main.add_command(rail_sim)  # a rail for tests and demos: outbox_relayer.testing


def _settings_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Flags shared by `run` and `repair`; each overrides its environment key when given."""
    options = [
        click.option("--database-url", help="PostgreSQL URL (env DATABASE_URL)."),
        click.option("--worker-id", help="Lease holder's name (env OUTBOX_WORKER_ID)."),
        click.option("--lease-seconds", type=int, help="Lease length (env LEASE_SECONDS)."),
        click.option(
            "--lease-repair-batch-size",
            type=int,
            help="Leases repaired per statement (env LEASE_REPAIR_BATCH_SIZE).",
        ),
        click.option(
            "--log-format",
            type=click.Choice(["auto", "json", "console"]),
            default="auto",
            show_default=True,
            help="auto: JSON unless stdout is a terminal.",
        ),
    ]
    return functools.reduce(lambda wrapped, option: option(wrapped), reversed(options), command)


@main.command()
@_settings_options
@click.option(
    "--listen-database-url",
    help="A direct PostgreSQL URL for LISTEN, when DATABASE_URL reaches PgBouncer in "
    "transaction mode (env OUTBOX_LISTEN_DATABASE_URL).",
)
@click.option("--rails-file", type=click.Path(path_type=Path), help="env OUTBOX_RAILS_FILE.")
@click.option(
    "--rail",
    "rail_targets",
    multiple=True,
    metavar="TYPE=URL",
    help="Send rail_type TYPE to URL (repeatable; over the rails file). URL 'noop' answers "
    "DISPATCHED without sending: for measuring the relayer alone.",
)
@click.option(
    "--rail-lookup",
    "rail_lookups",
    multiple=True,
    metavar="TYPE",
    help="Before re-sending an item of rail_type TYPE whose last attempt left the outcome "
    "unknown (lease repair, timeout, lost connection), ask the rail for its key's outcome "
    "(GET URL/<key>) and record a known one instead of sending (repeatable; env "
    "OUTBOX_RAIL_LOOKUP, comma-separated; or `lookup = true` in the rails file).",
)
@click.option("--relay/--no-relay", default=True, show_default=True, help="Dispatch items.")
@click.option("--repair/--no-repair", default=True, show_default=True, help="Repair leases.")
@click.option("--batch-size", type=int, help="Items per claim (env OUTBOX_BATCH_SIZE).")
@click.option(
    "--concurrency",
    type=int,
    help=f"Sends in flight at most (env OUTBOX_CONCURRENCY; default {DEFAULT_CONCURRENCY}, "
    f"recommended {RECOMMENDED_CONCURRENCY} for rails that take it, at most {MAX_IN_FLIGHT}). "
    "Each rail starts at two batches in flight and grows to this cap as its answers come "
    "back without queueing; one process reaches about concurrency / the rail's latency "
    "sends a second, on at most four database connections.",
)
@click.option(
    "--max-bytes-in-flight",
    type=int,
    help="Payload bytes claimed and not yet recorded, at most: no more is claimed past it "
    f"(env OUTBOX_MAX_BYTES_IN_FLIGHT; default {DEFAULT_BYTES_IN_FLIGHT // 2**20} MiB).",
)
@click.option(
    "--poll-interval",
    "poll_interval_seconds",
    type=float,
    help="Seconds between claims when idle and not notified (env OUTBOX_POLL_INTERVAL_SECONDS).",
)
@click.option(
    "--repair-interval",
    "repair_interval_seconds",
    type=float,
    help="Seconds between repair cycles (env OUTBOX_REPAIR_INTERVAL_SECONDS).",
)
@click.option(
    "--shutdown-grace",
    "shutdown_grace_seconds",
    type=float,
    help="Seconds running sends get to finish on SIGTERM (env OUTBOX_SHUTDOWN_GRACE_SECONDS).",
)
@click.option(
    "--metrics-port", type=int, help="Serve Prometheus /metrics (env OUTBOX_METRICS_PORT)."
)
@click.option(
    "--tracing/--no-tracing",
    default=None,
    help="OpenTelemetry spans of claim, dispatch and record, in the enqueues' traces (env "
    "OUTBOX_TRACING; needs outbox-relayer[otel] and an OpenTelemetry SDK set up).",
)
@click.option(
    "--queue-metrics/--no-queue-metrics",
    default=None,
    help="Also serve the queue-wide figures (outbox_queue_*, read at each scrape); one "
    "process of a fleet, best the repairer (env OUTBOX_QUEUE_METRICS; needs --metrics-port).",
)
@click.option(
    "--renew-leases/--no-renew-leases",
    default=None,
    help="Renew the lease of a send past half of it (default; env OUTBOX_RENEW_LEASES). Off "
    "only in drills: a send that outlives its lease is then repaired and sent again.",
)
def run(
    *,
    log_format: str,
    rail_targets: tuple[str, ...],
    rail_lookups: tuple[str, ...],
    relay: bool,
    repair: bool,
    **flags: Any,  # noqa: ANN401 - RelayerConfig fields, validated there
) -> None:
    """Relay and repair until SIGTERM or Ctrl-C, then shut down gracefully and exit 0.

    Settings come from the environment (see the package README) with these flags winning.
    On a stop, running sends get the shutdown grace; the leases of those still running then
    expire into lease repair.
    """
    if not (relay or repair):
        msg = "--no-relay and --no-repair together leave nothing to run"
        raise click.UsageError(msg)
    targets = _rail_targets(rail_targets)
    config = _config(log_format, flags | {"rail_lookups": rail_lookups or None})
    allow_open_files(config.concurrency + FILES_BESIDES_SENDS)  # a socket per send in flight
    with _stop_on_signals() as stop, _clear_errors():
        process.serve(config, stop, relay=relay, repair=repair, rail_targets=targets)


@main.command()
@_settings_options
@click.option("--once", is_flag=True, help="One cycle, print what it did as JSON, and exit.")
@click.option(
    "--repair-interval",
    "repair_interval_seconds",
    type=float,
    help="Seconds between cycles (env OUTBOX_REPAIR_INTERVAL_SECONDS).",
)
def repair(*, log_format: str, once: bool, **flags: Any) -> None:  # noqa: ANN401
    """Repair expired leases: record each one and requeue its item (or fail it at the ceiling).

    Without --once, repeats every repair interval until SIGTERM or Ctrl-C.
    """
    # With --once stdout carries only the result; the logs go to stderr.
    config = _config(log_format, flags, stream=sys.stderr if once else None)
    with _clear_errors():
        if once:
            click.echo(json.dumps(attrs.asdict(process.repair_once(config))))
            return
        with _stop_on_signals() as stop:
            process.serve(config, stop, relay=False, repair=True)


def _rail_targets(values: tuple[str, ...]) -> dict[str, str]:
    targets: dict[str, str] = {}
    for value in values:
        rail_type, _, target = (part.strip() for part in value.partition("="))
        if not rail_type or not (target == NOOP_TARGET or target.startswith(_URL_SCHEMES)):
            # Only the type is echoed: a URL may carry credentials.
            msg = f"--rail takes TYPE=http(s)://... or TYPE=noop (rail type {rail_type!r})"
            raise click.BadParameter(msg, param_hint="--rail")
        targets[rail_type] = target
    return targets


def _config(
    log_format: str, flags: dict[str, Any], *, stream: TextIO | None = None
) -> RelayerConfig:
    configure_logging(json=None if log_format == "auto" else log_format == "json", stream=stream)
    with _clear_errors():
        return RelayerConfig.from_env(os.environ, **flags)


@contextlib.contextmanager
def _stop_on_signals() -> Iterator[threading.Event]:
    """An event that SIGTERM and SIGINT set; the loops notice it and shut down."""
    stop = threading.Event()

    def request_stop(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextlib.contextmanager
def _clear_errors() -> Iterator[None]:
    """Refusals a user can fix become one clear line and exit 1, not a traceback."""
    try:
        yield
    except (
        ConfigError,
        RailConfigError,
        MetricsUnavailableError,
        TracingUnavailableError,
    ) as error:
        msg = f"invalid configuration: {error}"
        raise click.UsageError(msg) from None
    except OutboxError as error:
        raise click.ClickException(str(error)) from None
