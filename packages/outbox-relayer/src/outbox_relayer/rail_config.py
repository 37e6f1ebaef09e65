"""Rail endpoints per rail_type, read from a TOML file; credentials never shown."""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Final

import attrs

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["DEFAULT_TIMEOUT_SECONDS", "RailConfigError", "RailEndpoint", "Secret", "load_rails"]

DEFAULT_TIMEOUT_SECONDS: Final = 10.0
MAX_TIMEOUT_SECONDS: Final = 300.0
MAX_IN_FLIGHT: Final = 4096  # OUTBOX_CONCURRENCY's own ceiling: sends on one event loop
MAX_RATE_PER_SECOND: Final = 10_000.0


class RailConfigError(ValueError):
    """The rails file is invalid; the message names the offending key, never a secret."""


@attrs.frozen(repr=False)
class Secret:
    """A credential whose repr and str never reveal it; `reveal()` is the one way in."""

    _value: str

    def reveal(self) -> str:
        """The secret itself, for the one header that needs it."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__


@attrs.frozen(kw_only=True)
class RailEndpoint:
    """How to reach the rail for one rail_type: URL, timeout and an optional auth header.

    `lookup`: the rail answers `GET <url>/<key>` with a key's outcome, so an item whose last
    attempt left the outcome unknown is looked up before it is sent again. `traceparent`: the
    rail receives the dispatch span's W3C `traceparent` header when the relayer traces.
    `max_in_flight` and `rate_per_second` cap the rail's sends in one relayer process (None:
    no cap of its own, OUTBOX_CONCURRENCY is the cap). Over HTTPS, `ca_file` replaces the
    system's CAs for verifying the rail, and `client_cert_file` (with `client_key_file`, unless
    the certificate file holds the key too) is presented to a rail that asks for one (mTLS).
    """

    rail_type: str
    url: str
    timeout_seconds: float = attrs.field(
        default=DEFAULT_TIMEOUT_SECONDS,
        validator=[attrs.validators.gt(0.0), attrs.validators.le(MAX_TIMEOUT_SECONDS)],
    )
    auth_header: str | None = None
    auth_secret: Secret | None = None
    lookup: bool = False
    traceparent: bool = False  # send the dispatch span's W3C traceparent header
    max_in_flight: int | None = None
    rate_per_second: float | None = None
    ca_file: Path | None = None
    client_cert_file: Path | None = None
    client_key_file: Path | None = None

    def __attrs_post_init__(self) -> None:
        if (self.auth_header is None) != (self.auth_secret is None):
            msg = f"rail {self.rail_type}: auth_header and auth_secret go together"
            raise ValueError(msg)
        if self.client_key_file is not None and self.client_cert_file is None:
            msg = f"rail {self.rail_type}: client_key_file needs client_cert_file"
            raise ValueError(msg)


_ENDPOINT_KEYS: Final = frozenset(
    {
        "url",
        "timeout_seconds",
        "lookup",
        "auth_header",
        "auth_secret_env",
        "auth_secret_file",
        "max_in_flight",
        "rate_per_second",
        "traceparent",
        "ca_file",
        "client_cert_file",
        "client_key_file",
    }
)


def load_rails(path: Path, *, environ: Mapping[str, str] | None = None) -> dict[str, RailEndpoint]:
    """Read `[rails.<rail_type>]` tables from a TOML file; see the package README for keys."""
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        msg = f"cannot read rails file {path}: {error.strerror}"
        raise RailConfigError(msg) from error
    except tomllib.TOMLDecodeError as error:
        msg = f"rails file {path} is not valid TOML: {error}"
        raise RailConfigError(msg) from error
    rails = document.get("rails")
    if not isinstance(rails, dict) or not rails:
        msg = f"rails file {path} has no [rails.<rail_type>] table"
        raise RailConfigError(msg)
    env = os.environ if environ is None else environ
    return {name: _endpoint(name, table, env) for name, table in rails.items()}


def _endpoint(rail_type: str, table: object, environ: Mapping[str, str]) -> RailEndpoint:
    prefix = f"rails.{rail_type}"
    if not isinstance(table, dict):
        msg = f"{prefix} must be a table"
        raise RailConfigError(msg)
    if unknown := sorted(set(table) - _ENDPOINT_KEYS):
        msg = f"{prefix}.{unknown[0]} is not a known key ({', '.join(sorted(_ENDPOINT_KEYS))})"
        raise RailConfigError(msg)
    url = table.get("url")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        msg = f"{prefix}.url must be an http:// or https:// URL"
        raise RailConfigError(msg)
    timeout = table.get("timeout_seconds", DEFAULT_TIMEOUT_SECONDS)
    if (
        isinstance(timeout, bool)
        or not isinstance(timeout, int | float)
        or not 0 < timeout <= MAX_TIMEOUT_SECONDS
    ):
        msg = f"{prefix}.timeout_seconds must be a number of seconds in (0, 300]"
        raise RailConfigError(msg)
    header, secret = _auth(prefix, table, environ)
    return RailEndpoint(
        rail_type=rail_type,
        url=url,
        timeout_seconds=float(timeout),
        auth_header=header,
        auth_secret=secret,
        lookup=_switch(prefix, table, "lookup"),
        traceparent=_switch(prefix, table, "traceparent"),
        max_in_flight=_max_in_flight(prefix, table.get("max_in_flight")),
        rate_per_second=_rate(prefix, table.get("rate_per_second")),
        **_tls_files(prefix, table, https=url.startswith("https://")),
    )


def _tls_files(prefix: str, table: Mapping[str, object], *, https: bool) -> dict[str, Path]:
    """The TLS files the table names (only for an https:// rail), each a readable path."""
    named = {
        key: table[key]
        for key in ("ca_file", "client_cert_file", "client_key_file")
        if key in table
    }
    if named and not https:
        msg = f"{prefix}.{next(iter(named))} needs an https:// url"
        raise RailConfigError(msg)
    if "client_key_file" in named and "client_cert_file" not in named:
        msg = f"{prefix}.client_key_file needs {prefix}.client_cert_file"
        raise RailConfigError(msg)
    files = {}
    for key, value in named.items():
        if not isinstance(value, str) or not Path(value).is_file():
            msg = f"{prefix}.{key} must name a readable file"
            raise RailConfigError(msg)
        files[key] = Path(value)
    return files


def _switch(prefix: str, table: Mapping[str, object], key: str) -> bool:
    value = table.get(key, False)
    if not isinstance(value, bool):
        msg = f"{prefix}.{key} must be true or false"
        raise RailConfigError(msg)
    return value


def _max_in_flight(prefix: str, value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_IN_FLIGHT:
        msg = f"{prefix}.max_in_flight must be an integer in 1..{MAX_IN_FLIGHT}"
        raise RailConfigError(msg)
    return value


def _rate(prefix: str, value: object) -> float | None:
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not 0 < value <= MAX_RATE_PER_SECOND
    ):
        msg = f"{prefix}.rate_per_second must be a number of sends per second in (0, 10000]"
        raise RailConfigError(msg)
    return float(value)


def _auth(
    prefix: str, table: dict[str, object], environ: Mapping[str, str]
) -> tuple[str | None, Secret | None]:
    header, env_name, file_name = (
        table.get(key) for key in ("auth_header", "auth_secret_env", "auth_secret_file")
    )
    if header is None and env_name is None and file_name is None:
        return None, None
    if not isinstance(header, str) or not re.fullmatch(r"[A-Za-z0-9-]+", header):
        msg = f"{prefix}.auth_header must name an HTTP header when a secret is configured"
        raise RailConfigError(msg)
    if (env_name is None) == (file_name is None):
        msg = f"{prefix}.auth_secret_env or {prefix}.auth_secret_file: give exactly one"
        raise RailConfigError(msg)
    if isinstance(env_name, str):
        value = environ.get(env_name, "")
        source = f"{prefix}.auth_secret_env: environment variable {env_name}"
    elif isinstance(file_name, str):
        value = _read_secret_file(prefix, Path(file_name))
        source = f"{prefix}.auth_secret_file: {file_name}"
    else:
        msg = f"{prefix}.auth_secret_env / auth_secret_file must be a string"
        raise RailConfigError(msg)
    if not value.strip() or any(c in value.strip() for c in "\r\n"):
        msg = f"{source} is empty or spans several lines"
        raise RailConfigError(msg)
    return header, Secret(value.strip())


def _read_secret_file(prefix: str, path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        # Only the path and the reason: never the content.
        reason = error.strerror if isinstance(error, OSError) else "not UTF-8 text"
        msg = f"{prefix}.auth_secret_file: cannot read {path}: {reason}"
        raise RailConfigError(msg) from None
