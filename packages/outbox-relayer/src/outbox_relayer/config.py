"""The relayer's settings: read once from the environment and CLI flags, validated at start-up.

There is no retry-ceiling setting: how many attempts an item gets is the database's
`payment_outbox_settings.max_attempts`, so every relayer and repairer applies the same limit.
"""

from __future__ import annotations

import math
import os
import random
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Self

import attrs

from outbox_db.payloads import MAX_PAYLOAD_BYTES
from outbox_relayer.backoff import (
    DEFAULT_RETRY_BASE_SECONDS,
    DEFAULT_RETRY_CAP_SECONDS,
    MAX_RETRY_DELAY_SECONDS,
    Backoff,
)
from outbox_relayer.rail_config import MAX_IN_FLIGHT, Secret

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

__all__ = [
    "DEFAULT_BYTES_IN_FLIGHT",
    "DEFAULT_CONCURRENCY",
    "RECOMMENDED_CONCURRENCY",
    "ConfigError",
    "RelayerConfig",
    "default_worker_id",
]

MAX_BATCH_SIZE: Final = 1000  # claim_outbox_batch and repair_expired_leases refuse more
MAX_LEASE_SECONDS: Final = 3600  # ... and a longer lease
MAX_IDENTIFIER_LENGTH: Final = 255  # worker_id, as the database checks identifiers
_DATABASE_URL_SCHEMES: Final = ("postgresql://", "postgres://")
# Sends in flight per process, at most: each rail's window (send_window.py) grows to it while
# the rail's answers show no queueing. The default is kind to a rail that sets no
# max_in_flight; a rail that takes more reaches about concurrency / its latency sends a
# second (docs/scaling.md).
DEFAULT_CONCURRENCY: Final = 256
RECOMMENDED_CONCURRENCY: Final = 1024  # what `nox -s bench` runs one relayer with
# Payload bytes claimed and not yet recorded (the stored JSON text): 2,000 sends of 1 MiB
# payloads wait for room instead of taking 2 GiB.
DEFAULT_BYTES_IN_FLIGHT: Final = 128 * 1024 * 1024
MAX_BYTES_IN_FLIGHT: Final = 16 * 1024 * 1024 * 1024


class ConfigError(ValueError):
    """A setting is missing or out of range; the message names the key, never a secret."""


def default_worker_id() -> str:
    """hostname-pid: unique per process, and says where a lease holder runs."""
    return f"{socket.gethostname()}-{os.getpid()}"


def _number(key: str, kind: type[int | float], low: float, high: float) -> Callable[..., None]:
    """An attrs validator: `kind` within [low, high], else a ConfigError naming the key."""
    what = "an integer" if kind is int else "a number"
    message = f"{key} must be {what} in {low:g}..{high:g}"

    def check(_: object, __: attrs.Attribute[Any], value: object) -> None:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(message)
        if (kind is int and not isinstance(value, int)) or not low <= value <= high:
            raise ConfigError(message)

    return check


def _optional_port(_: object, __: attrs.Attribute[int | None], value: int | None) -> None:
    if value is not None:
        _number("OUTBOX_METRICS_PORT", int, 1, 65535)(_, __, value)


def _identifier(_: object, __: attrs.Attribute[str], value: object) -> None:
    if (
        not isinstance(value, str)
        or not value.strip()
        or len(value) > MAX_IDENTIFIER_LENGTH
        or any(not c.isprintable() for c in value)
    ):
        msg = "OUTBOX_WORKER_ID must be 1..255 printable characters, not blank"
        raise ConfigError(msg)


def _database_url(_: object, field: attrs.Attribute[Any], value: object) -> None:
    key = field.metadata["env"]
    text = value.reveal().strip() if isinstance(value, Secret) else ""
    if not text:
        msg = f"{key} is required"
        raise ConfigError(msg)
    if "://" in text and not text.startswith(_DATABASE_URL_SCHEMES):
        # Only the accepted forms are named: the value may hold a password.
        msg = f"{key} must be a postgresql:// URL or a libpq key=value string"
        raise ConfigError(msg)


def _cap_at_least_base(instance: RelayerConfig, _: attrs.Attribute[int], value: int) -> None:
    if value < instance.retry_base_seconds:
        msg = "OUTBOX_RETRY_CAP_SECONDS must be at least OUTBOX_RETRY_BASE_SECONDS"
        raise ConfigError(msg)


_SWITCH: Final = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


def _switch(text: str) -> bool:
    """true/false (also 1/0, yes/no, any case); anything else is a ValueError."""
    try:
        return _SWITCH[text.lower()]
    except KeyError:
        raise ValueError(text) from None


def _renewal(_: object, __: attrs.Attribute[bool], value: object) -> None:
    if not isinstance(value, bool):
        msg = "OUTBOX_RENEW_LEASES must be true or false"
        raise ConfigError(msg)


def _tracing(_: object, __: attrs.Attribute[bool], value: object) -> None:
    if not isinstance(value, bool):
        msg = "OUTBOX_TRACING must be true or false"
        raise ConfigError(msg)


def _queue_metrics(instance: RelayerConfig, _: attrs.Attribute[bool], value: object) -> None:
    if not isinstance(value, bool):
        msg = "OUTBOX_QUEUE_METRICS must be true or false"
        raise ConfigError(msg)
    if value and instance.metrics_port is None:
        msg = "OUTBOX_QUEUE_METRICS needs OUTBOX_METRICS_PORT (the figures are served there)"
        raise ConfigError(msg)


def _to_secret(value: str | Secret) -> Secret:
    return value if isinstance(value, Secret) else Secret(value)


def _to_optional_secret(value: str | Secret | None) -> Secret | None:
    return None if value is None else _to_secret(value)


def _to_path(value: str | Path | None) -> Path | None:
    return None if value is None else Path(value)


def _rail_types(value: str | Iterable[str]) -> frozenset[str]:
    """Rail types from a comma-separated environment value, or from repeated flags."""
    parts = value.split(",") if isinstance(value, str) else value
    return frozenset(part.strip() for part in parts if part.strip())


def _env(key: str, parse: Callable[[str], object] = str) -> dict[str, object]:
    return {"env": key, "parse": parse}


def _numeric(
    key: str,
    kind: type[int | float],
    default: float,
    low: float,
    high: float,
    *checks: Callable[..., None],
) -> Any:  # noqa: ANN401 - attrs.field's own return type
    """A numeric setting read from `key`, parsed as `kind`, within [low, high]."""
    return attrs.field(
        default=default,
        validator=[_number(key, kind, low, high), *checks],
        metadata=_env(key, kind),
    )


@attrs.frozen(kw_only=True)
class RelayerConfig:
    """Every setting of a relayer process; `from_env` is the usual way to build one.

    Environment keys (the README lists defaults and ranges): LEASE_SECONDS,
    LEASE_REPAIR_BATCH_SIZE, OUTBOX_BATCH_SIZE, OUTBOX_CONCURRENCY, OUTBOX_MAX_BYTES_IN_FLIGHT,
    OUTBOX_POLL_INTERVAL_SECONDS,
    OUTBOX_REPAIR_INTERVAL_SECONDS, OUTBOX_RETRY_BASE_SECONDS, OUTBOX_RETRY_CAP_SECONDS,
    OUTBOX_SHUTDOWN_GRACE_SECONDS, OUTBOX_RAILS_FILE, OUTBOX_RAIL_LOOKUP, OUTBOX_WORKER_ID,
    DATABASE_URL, OUTBOX_LISTEN_DATABASE_URL, OUTBOX_METRICS_PORT, OUTBOX_QUEUE_METRICS,
    OUTBOX_TRACING, OUTBOX_RENEW_LEASES.
    """

    database_url: Secret = attrs.field(
        converter=_to_secret, validator=_database_url, metadata=_env("DATABASE_URL")
    )
    # A direct URL for LISTEN when DATABASE_URL reaches a pooler in transaction mode, where
    # notifications never arrive (the relayer finds out at start and polls instead).
    listen_database_url: Secret | None = attrs.field(
        default=None,
        converter=_to_optional_secret,
        validator=attrs.validators.optional(_database_url),
        metadata=_env("OUTBOX_LISTEN_DATABASE_URL"),
    )
    lease_seconds: int = _numeric("LEASE_SECONDS", int, 30, 1, MAX_LEASE_SECONDS)
    lease_repair_batch_size: int = _numeric("LEASE_REPAIR_BATCH_SIZE", int, 100, 1, MAX_BATCH_SIZE)
    batch_size: int = _numeric("OUTBOX_BATCH_SIZE", int, 100, 1, MAX_BATCH_SIZE)
    concurrency: int = _numeric("OUTBOX_CONCURRENCY", int, DEFAULT_CONCURRENCY, 1, MAX_IN_FLIGHT)
    # The payload bytes claimed and not yet recorded, at most (relayer.py's `_room`).
    max_bytes_in_flight: int = _numeric(
        "OUTBOX_MAX_BYTES_IN_FLIGHT",
        int,
        DEFAULT_BYTES_IN_FLIGHT,
        MAX_PAYLOAD_BYTES,
        MAX_BYTES_IN_FLIGHT,
    )
    poll_interval_seconds: float = _numeric("OUTBOX_POLL_INTERVAL_SECONDS", float, 1.0, 0.01, 300)
    repair_interval_seconds: float = _numeric(
        "OUTBOX_REPAIR_INTERVAL_SECONDS", float, 5.0, 0.1, MAX_LEASE_SECONDS
    )
    retry_base_seconds: int = _numeric(
        "OUTBOX_RETRY_BASE_SECONDS", int, DEFAULT_RETRY_BASE_SECONDS, 1, MAX_RETRY_DELAY_SECONDS
    )
    retry_cap_seconds: int = _numeric(
        "OUTBOX_RETRY_CAP_SECONDS",
        int,
        DEFAULT_RETRY_CAP_SECONDS,
        1,
        MAX_RETRY_DELAY_SECONDS,
        _cap_at_least_base,
    )
    shutdown_grace_seconds: float = _numeric(
        "OUTBOX_SHUTDOWN_GRACE_SECONDS", float, 10.0, 0, MAX_LEASE_SECONDS
    )
    rails_file: Path | None = attrs.field(
        default=None, converter=_to_path, metadata=_env("OUTBOX_RAILS_FILE")
    )
    # Rail types whose outcomes are looked up before a re-send (over the rails file's `lookup`).
    rail_lookups: frozenset[str] = attrs.field(
        factory=frozenset, converter=_rail_types, metadata=_env("OUTBOX_RAIL_LOOKUP", _rail_types)
    )
    worker_id: str = attrs.field(
        factory=default_worker_id, validator=_identifier, metadata=_env("OUTBOX_WORKER_ID")
    )
    metrics_port: int | None = attrs.field(
        default=None, validator=_optional_port, metadata=_env("OUTBOX_METRICS_PORT", int)
    )
    # Export the queue-wide figures (outbox_queue_*) on /metrics: one process of a fleet.
    queue_metrics: bool = attrs.field(
        default=False, validator=_queue_metrics, metadata=_env("OUTBOX_QUEUE_METRICS", _switch)
    )
    # Spans of claim, dispatch and record, continuing the enqueues' traces (tracing.py).
    tracing: bool = attrs.field(
        default=False, validator=_tracing, metadata=_env("OUTBOX_TRACING", _switch)
    )
    # A drill and test knob, never for production: false stops lease renewal, so a send that
    # outlives its lease is repaired and sent again (the fault matrix's slow-rail drill).
    renew_leases: bool = attrs.field(
        default=True, validator=_renewal, metadata=_env("OUTBOX_RENEW_LEASES", _switch)
    )

    @classmethod
    def from_env(cls, environ: Mapping[str, str], **overrides: object) -> Self:
        """Settings from `environ`, with CLI flags (by field name) winning; None means unset.

        An empty environment value counts as unset. Raises ConfigError naming the first bad key.
        """
        fields = attrs.fields_dict(cls)
        if unknown := sorted(set(overrides) - set(fields)):
            msg = f"unknown setting: {unknown[0]}"
            raise TypeError(msg)
        values: dict[str, object] = {}
        for name, field in fields.items():
            value = overrides.get(name)
            if value is None:
                value = _parsed(field, environ)
            if value is not None:
                values[name] = value
        if "database_url" not in values:
            msg = "DATABASE_URL is required"
            raise ConfigError(msg)
        return cls(**values)  # type: ignore[arg-type]

    def backoff(self, rng: random.Random | None = None) -> Backoff:
        """The retry backoff these settings describe."""
        return Backoff(
            base_seconds=self.retry_base_seconds,
            cap_seconds=self.retry_cap_seconds,
            rng=random.Random() if rng is None else rng,  # noqa: S311 - jitter, not secrecy
        )


def _parsed(field: attrs.Attribute[Any], environ: Mapping[str, str]) -> object:
    """The field's environment value, parsed; None when unset or empty."""
    key: str = field.metadata["env"]
    text = environ.get(key, "").strip()
    if not text:
        return None
    parse: Callable[[str], object] = field.metadata["parse"]
    try:
        value = parse(text)
    except ValueError:
        value = math.nan  # not a number: fails the field's range check, which names the range
    return value
