"""RelayerConfig: named defaults, env and CLI overrides, and start-up errors that name the key."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import attrs
import pytest

from outbox_relayer.backoff import Backoff
from outbox_relayer.config import ConfigError, RelayerConfig

PASSWORD = "pw-5c1e-SECRET"  # noqa: S105 - a made-up password to look for
URL = f"postgresql://relayer:{PASSWORD}@db.internal:5432/outbox"
BASE_ENV = {"DATABASE_URL": URL}

# key, field, default, a valid override as text, its parsed value, invalid texts
KEYS = [
    ("LEASE_SECONDS", "lease_seconds", 30, "3600", 3600, ["0", "3601", "-1", "1.5", "abc"]),
    ("LEASE_REPAIR_BATCH_SIZE", "lease_repair_batch_size", 100, "1", 1, ["0", "1001", "ten"]),
    ("OUTBOX_BATCH_SIZE", "batch_size", 100, "1000", 1000, ["0", "1001", "2.0"]),
    ("OUTBOX_CONCURRENCY", "concurrency", 256, "2000", 2000, ["0", "4097", "x"]),
    (
        "OUTBOX_MAX_BYTES_IN_FLIGHT",
        "max_bytes_in_flight",
        128 * 2**20,
        "4194304",
        4 * 2**20,
        ["1048575", str(16 * 2**30 + 1), "1e9x"],
    ),
    (
        "OUTBOX_POLL_INTERVAL_SECONDS",
        "poll_interval_seconds",
        1.0,
        "0.25",
        0.25,
        ["0", "301", "nan", "inf", "soon"],
    ),
    (
        "OUTBOX_REPAIR_INTERVAL_SECONDS",
        "repair_interval_seconds",
        5.0,
        "30",
        30.0,
        ["0.05", "3601", "-1"],
    ),
    ("OUTBOX_RETRY_BASE_SECONDS", "retry_base_seconds", 1, "2", 2, ["0", "604801", "0.5"]),
    ("OUTBOX_RETRY_CAP_SECONDS", "retry_cap_seconds", 300, "604800", 604800, ["604801", "0"]),
    (
        "OUTBOX_SHUTDOWN_GRACE_SECONDS",
        "shutdown_grace_seconds",
        10.0,
        "0",
        0.0,
        ["-1", "3601", "later"],
    ),
    ("OUTBOX_METRICS_PORT", "metrics_port", None, "9464", 9464, ["0", "65536", "http"]),
    ("OUTBOX_WORKER_ID", "worker_id", None, "relayer-a", "relayer-a", ["x" * 256, "a\tb"]),
]
VALID = [(key, field, text, value) for key, field, _, text, value, _ in KEYS]
NUMERIC = [entry for entry in VALID if entry[0] != "OUTBOX_WORKER_ID"]
INVALID = [(key, text) for key, *_, bad in KEYS for text in bad]


def test_defaults_are_the_documented_ones() -> None:
    """Only DATABASE_URL is required; every other key has its named default."""
    config = RelayerConfig.from_env(BASE_ENV)
    for _, field, default, *_ in KEYS:
        if default is not None:
            assert getattr(config, field) == default, field
    assert config.metrics_port is None
    assert config.rails_file is None


def test_the_default_worker_id_is_hostname_and_pid() -> None:
    """A lease holder's id says which host and process hold it."""
    config = RelayerConfig.from_env(BASE_ENV)
    assert config.worker_id == f"{socket.gethostname()}-{os.getpid()}"


@pytest.mark.parametrize(("key", "field", "text", "value"), VALID)
def test_each_key_is_read_from_the_environment(
    key: str, field: str, text: str, value: object
) -> None:
    """A valid environment value replaces the default, parsed to the field's type."""
    config = RelayerConfig.from_env(BASE_ENV | {key: text})
    assert getattr(config, field) == value
    assert type(getattr(config, field)) is type(value)


@pytest.mark.parametrize(("key", "field", "_text", "value"), VALID)
def test_a_cli_flag_wins_over_the_environment(
    key: str, field: str, _text: str, value: object
) -> None:
    """Overrides by field name beat the environment; the env value here would be invalid."""
    config = RelayerConfig.from_env(BASE_ENV | {key: "not valid"}, **{field: value})
    assert getattr(config, field) == value


@pytest.mark.parametrize(("key", "text"), INVALID)
def test_an_invalid_value_stops_start_up_naming_the_key_and_range(key: str, text: str) -> None:
    """ConfigError names the key; numeric keys also give the accepted range."""
    with pytest.raises(ConfigError, match=key) as caught:
        RelayerConfig.from_env(BASE_ENV | {key: text})
    if key != "OUTBOX_WORKER_ID":
        assert ".." in str(caught.value)
    assert PASSWORD not in str(caught.value)


@pytest.mark.parametrize(("key", "field", "_text", "_value"), NUMERIC)
def test_an_invalid_cli_flag_is_refused_like_an_environment_value(
    key: str, field: str, _text: str, _value: object
) -> None:
    """Overrides go through the same validation: a wrong type or a bool names the key."""
    for bad in (True, "12", -1):
        with pytest.raises(ConfigError, match=key):
            RelayerConfig.from_env(BASE_ENV, **{field: bad})


@pytest.mark.parametrize("bad", ["", " ", 12, "x" * 256])
def test_an_invalid_worker_id_flag_is_refused(bad: object) -> None:
    """--worker-id is checked like the database checks identifiers."""
    with pytest.raises(ConfigError, match="OUTBOX_WORKER_ID"):
        RelayerConfig.from_env(BASE_ENV, worker_id=bad)


def test_an_empty_value_counts_as_unset() -> None:
    """`LEASE_SECONDS=` in a compose file leaves the default in place."""
    config = RelayerConfig.from_env(BASE_ENV | {"LEASE_SECONDS": " ", "OUTBOX_METRICS_PORT": ""})
    assert config.lease_seconds == 30
    assert config.metrics_port is None


def test_a_cli_flag_of_none_means_not_given() -> None:
    """Click passes None for a flag the user left out: the environment value stays."""
    config = RelayerConfig.from_env(BASE_ENV | {"LEASE_SECONDS": "45"}, lease_seconds=None)
    assert config.lease_seconds == 45


def test_the_retry_cap_must_be_at_least_the_base() -> None:
    """A cap below the base would make the base meaningless; the error names the cap key."""
    env = BASE_ENV | {"OUTBOX_RETRY_BASE_SECONDS": "60", "OUTBOX_RETRY_CAP_SECONDS": "30"}
    with pytest.raises(ConfigError, match="OUTBOX_RETRY_CAP_SECONDS"):
        RelayerConfig.from_env(env)


def test_the_backoff_follows_the_retry_settings() -> None:
    """config.backoff() builds the Backoff the worker uses."""
    env = BASE_ENV | {"OUTBOX_RETRY_BASE_SECONDS": "2", "OUTBOX_RETRY_CAP_SECONDS": "120"}
    backoff = RelayerConfig.from_env(env).backoff()
    assert backoff == Backoff(base_seconds=2, cap_seconds=120)


def test_the_rails_file_is_a_path() -> None:
    """OUTBOX_RAILS_FILE is the path load_rails reads; its existence is checked there."""
    config = RelayerConfig.from_env(BASE_ENV | {"OUTBOX_RAILS_FILE": "/etc/outbox/rails.toml"})
    assert config.rails_file == Path("/etc/outbox/rails.toml")
    assert RelayerConfig.from_env(BASE_ENV, rails_file="r.toml").rails_file == Path("r.toml")


def test_there_is_no_attempt_ceiling_setting() -> None:
    """The retry ceiling is payment_outbox_settings.max_attempts in the database, not config."""
    names = {field.name for field in attrs.fields(RelayerConfig)}
    assert not {name for name in names if "attempt" in name or "ceiling" in name}
    with pytest.raises(TypeError, match="max_attempts"):
        RelayerConfig.from_env(BASE_ENV, max_attempts=5)


@pytest.mark.parametrize("environ", [{}, {"DATABASE_URL": ""}, {"DATABASE_URL": "  "}])
def test_database_url_is_required(environ: dict[str, str]) -> None:
    """Without DATABASE_URL the relayer does not start."""
    with pytest.raises(ConfigError, match="DATABASE_URL is required"):
        RelayerConfig.from_env(environ)


@pytest.mark.parametrize(
    "url", [URL, f"postgres://u:{PASSWORD}@h/db", f"host=h dbname=outbox password={PASSWORD}"]
)
def test_database_url_accepts_urls_and_key_value_strings(url: str) -> None:
    """Both forms libpq understands are accepted, and kept as given."""
    config = RelayerConfig.from_env({"DATABASE_URL": url})
    assert config.database_url.reveal() == url


def test_the_database_password_never_shows_in_repr_or_str() -> None:
    """The whole URL is a Secret: repr and str of the config show asterisks only."""
    config = RelayerConfig.from_env(BASE_ENV)
    assert PASSWORD not in repr(config)
    assert PASSWORD not in str(config)
    assert "db.internal" not in repr(config)
    assert "********" in repr(config)


def test_a_wrong_database_url_is_refused_without_echoing_it() -> None:
    """A mysql:// URL is refused; the message names the key and the accepted forms only."""
    with pytest.raises(ConfigError, match="DATABASE_URL") as caught:
        RelayerConfig.from_env({"DATABASE_URL": f"mysql://root:{PASSWORD}@h/db"})
    assert PASSWORD not in str(caught.value)
    assert PASSWORD not in repr(caught.value)
    assert caught.value.__cause__ is None


def test_an_error_in_another_key_does_not_echo_the_database_url() -> None:
    """Errors name their own key; the secret never travels with them."""
    with pytest.raises(ConfigError) as caught:
        RelayerConfig.from_env(BASE_ENV | {"LEASE_SECONDS": PASSWORD})
    assert PASSWORD not in str(caught.value)
    assert "LEASE_SECONDS" in str(caught.value)


@pytest.mark.parametrize(
    ("text", "value"), [("", True), ("true", True), ("YES", True), ("false", False), ("0", False)]
)
def test_lease_renewal_is_on_unless_switched_off(text: str, value: bool) -> None:
    """OUTBOX_RENEW_LEASES, a drill knob: on by default, true/false (1/0, yes/no) to switch."""
    config = RelayerConfig.from_env(BASE_ENV | {"OUTBOX_RENEW_LEASES": text})
    assert config.renew_leases is value


@pytest.mark.parametrize("bad", ["maybe", "2", "off-ish"])
def test_an_invalid_renewal_switch_stops_start_up_naming_the_key(bad: str) -> None:
    """Anything but a clear true or false is refused, not read as one."""
    with pytest.raises(ConfigError, match="OUTBOX_RENEW_LEASES must be true or false"):
        RelayerConfig.from_env(BASE_ENV | {"OUTBOX_RENEW_LEASES": bad})


def test_the_renewal_flag_wins_and_must_be_a_bool() -> None:
    """--no-renew-leases beats the environment; a non-bool override is refused."""
    env = BASE_ENV | {"OUTBOX_RENEW_LEASES": "true"}
    assert RelayerConfig.from_env(env, renew_leases=False).renew_leases is False
    with pytest.raises(ConfigError, match="OUTBOX_RENEW_LEASES"):
        RelayerConfig.from_env(env, renew_leases="false")


def test_queue_metrics_need_a_metrics_port() -> None:
    """OUTBOX_QUEUE_METRICS is served on the metrics page: without a port it stops start-up."""
    with pytest.raises(ConfigError, match="OUTBOX_QUEUE_METRICS needs OUTBOX_METRICS_PORT"):
        RelayerConfig.from_env(BASE_ENV | {"OUTBOX_QUEUE_METRICS": "true"})
    env = BASE_ENV | {"OUTBOX_QUEUE_METRICS": "true", "OUTBOX_METRICS_PORT": "9092"}
    assert RelayerConfig.from_env(env).queue_metrics is True
    assert RelayerConfig.from_env(BASE_ENV).queue_metrics is False


def test_the_listen_url_is_a_secret_like_the_database_url() -> None:
    """OUTBOX_LISTEN_DATABASE_URL: kept as given, never shown, refused in another scheme."""
    config = RelayerConfig.from_env(BASE_ENV | {"OUTBOX_LISTEN_DATABASE_URL": URL})
    assert config.listen_database_url is not None
    assert config.listen_database_url.reveal() == URL
    assert PASSWORD not in repr(config)
    with pytest.raises(ConfigError, match="OUTBOX_LISTEN_DATABASE_URL must be") as caught:
        RelayerConfig.from_env(BASE_ENV | {"OUTBOX_LISTEN_DATABASE_URL": f"mysql://{PASSWORD}@h"})
    assert PASSWORD not in str(caught.value)


@pytest.mark.parametrize(("text", "value"), [("", False), ("true", True), ("no", False)])
def test_tracing_is_off_unless_switched_on(text: str, value: bool) -> None:
    """OUTBOX_TRACING: off by default; anything but a clear switch is refused."""
    assert RelayerConfig.from_env(BASE_ENV | {"OUTBOX_TRACING": text}).tracing is value
    with pytest.raises(ConfigError, match="OUTBOX_TRACING must be true or false"):
        RelayerConfig.from_env(BASE_ENV | {"OUTBOX_TRACING": "sometimes"})
