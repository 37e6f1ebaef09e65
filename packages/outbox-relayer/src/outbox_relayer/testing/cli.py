"""`outbox-relayer rail-sim`: the rail simulator as a process of its own, until SIGTERM."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import TYPE_CHECKING, Final, NoReturn

import click

from outbox_relayer.open_files import allow_open_files
from outbox_relayer.testing.railsim import Faults, RailSimulator

if TYPE_CHECKING:
    from types import FrameType

__all__ = ["rail_sim"]

# Each client connection is an open file: a load test's 1,000 connections would meet the
# usual soft limit of 1,024 (then accept fails), while the hard limit is far higher.
OPEN_FILES: Final = 65_536
rate = click.FloatRange(0.0, 1.0)
milliseconds = click.FloatRange(min=0.0)


class _Stop(Exception):
    """Raised in the main thread by SIGTERM, so shutdown runs the same path as Ctrl-C."""


def _raise_stop(_signum: int, _frame: FrameType | None) -> NoReturn:
    raise _Stop


@click.command(name="rail-sim")
@click.option("--host", default="127.0.0.1", show_default=True, help="IPv4 address to bind.")
@click.option(
    "--port", type=click.IntRange(0, 65535), default=0, help="Port to bind; 0 picks a free one."
)
@click.option("--latency-ms", type=milliseconds, default=0.0, help="Added to every answer.")
@click.option("--latency-jitter-ms", type=milliseconds, default=0.0, help="Plus a uniform 0..N ms.")
@click.option("--fail-rate", type=rate, default=0.0, help="Share answered 503 (not recorded).")
@click.option(
    "--timeout-rate", type=rate, default=0.0, help="Share recorded but answered after --hang."
)
@click.option(
    "--drop-rate", type=rate, default=0.0, help="Share recorded, then the connection is dropped."
)
@click.option(
    "--throttle-rate",
    type=rate,
    default=0.0,
    help="Share answered 429 with a Retry-After of --retry-after seconds (not recorded).",
)
@click.option(
    "--retry-after",
    "retry_after_seconds",
    type=click.IntRange(min=0),
    default=1,
    show_default=True,
    help="Whole seconds in the Retry-After header of a --throttle-rate answer.",
)
@click.option(
    "--hang",
    "hang_seconds",
    type=click.FloatRange(min=0.0, min_open=True),
    default=30.0,
    show_default=True,
    help="Seconds a timed-out answer waits (longer than the client's timeout).",
)
@click.option(
    "--lookup-fail-rate",
    type=rate,
    default=0.0,
    help="Share of GET /payments/<key> lookups answered 503 (the outcome stays unknown).",
)
@click.option("--seed", type=int, help="Seed for the fault and latency draws (reproducible runs).")
@click.option(
    "--replay-409",
    "replay_409",
    is_flag=True,
    help="Answer repeats of a key with 409 and the first answer's body (default: first status).",
)
@click.option(
    "--log",
    "log_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="JSON-lines request log (default: a new file in the temp directory).",
)
def rail_sim(  # noqa: PLR0913 - one parameter per documented option
    *,
    host: str,
    port: int,
    latency_ms: float,
    latency_jitter_ms: float,
    fail_rate: float,
    timeout_rate: float,
    drop_rate: float,
    throttle_rate: float,
    retry_after_seconds: int,
    hang_seconds: float,
    lookup_fail_rate: float,
    seed: int | None,
    log_path: Path | None,
    replay_409: bool,
) -> None:
    """Run the rail simulator until SIGTERM or Ctrl-C; the first line printed is its URL.

    POST /payments (needs Idempotency-Key), GET /payments/<key>, GET /stats.
    """
    if fail_rate + timeout_rate + drop_rate + throttle_rate > 1.0:
        msg = "--fail-rate + --timeout-rate + --drop-rate + --throttle-rate must not exceed 1"
        raise click.UsageError(msg)
    faults = Faults(
        latency_ms=latency_ms,
        latency_jitter_ms=latency_jitter_ms,
        fail_rate=fail_rate,
        timeout_rate=timeout_rate,
        drop_rate=drop_rate,
        throttle_rate=throttle_rate,
        retry_after_seconds=retry_after_seconds,
        hang_seconds=hang_seconds,
        lookup_fail_rate=lookup_fail_rate,
        seed=seed,
    )
    simulator = RailSimulator(
        host=host,
        port=port,
        faults=faults,
        log_path=log_path,
        replay_status=409 if replay_409 else None,
    )
    allow_open_files(OPEN_FILES)
    previous = signal.signal(signal.SIGTERM, _raise_stop)
    try:
        _serve_until_stopped(simulator)
    except OSError as error:  # the address is taken or cannot be bound
        msg = f"cannot serve on {host}:{port}: {error.strerror}"
        raise click.ClickException(msg) from error
    finally:
        signal.signal(signal.SIGTERM, previous)


def _serve_until_stopped(simulator: RailSimulator) -> None:
    with simulator:
        click.echo(simulator.url)  # first line: the URL, for scripts
        click.echo(f"request log: {simulator.log_path}", err=True)
        try:
            while True:
                signal.pause()
        except (_Stop, KeyboardInterrupt):
            stats = simulator.stats()
    click.echo(
        f"rail-sim stopped: {stats.requests} requests, {stats.unique_keys} keys, "
        f"{stats.absorbed} absorbed",
        err=True,
    )
