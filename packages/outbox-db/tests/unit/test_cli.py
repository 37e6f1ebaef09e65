"""The command line: help everywhere, clear errors, and never a password on screen."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from click.testing import CliRunner

from outbox_db import embedded
from outbox_db.cli import main

if TYPE_CHECKING:
    from pathlib import Path

COMMANDS = [
    [],
    ["migrate"],
    ["status"],
    ["inspect"],
    ["redrive"],
    ["regression"],
    ["embedded"],
    ["embedded", "up"],
    ["embedded", "binaries"],
    ["embedded", "url"],
    ["embedded", "down"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "outbox-db")
def test_every_command_has_help(command: list[str]) -> None:
    """--help works on every command and says what it does."""
    result = CliRunner().invoke(main, [*command, "--help"])

    assert result.exit_code == 0
    assert "Usage:" in result.output


def test_migrate_without_a_url_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    """No --url and no DATABASE_URL is a usage error naming the option."""
    monkeypatch.delenv("DATABASE_URL", raising=False)

    result = CliRunner().invoke(main, ["migrate"])

    assert result.exit_code == 2
    assert "--url" in result.output


@pytest.mark.parametrize(
    "command",
    [
        ["migrate"],
        ["status"],
        ["inspect", "--instruction", "ins-1"],
        ["redrive", "00000000-0000-4000-8000-000000000001", "--reason", "retry"],
    ],
    ids=lambda c: c[0],
)
def test_unreachable_database_is_one_line_without_the_password(command: list[str]) -> None:
    """A refused connection exits 1 with the reason, and the URL's password is not printed."""
    url = "postgresql://payments:s3cret-pw@127.0.0.1:1/payments"

    result = CliRunner().invoke(main, [*command, "--url", url])

    assert result.exit_code == 1
    assert "database unavailable" in result.output
    assert "s3cret-pw" not in result.output


@pytest.mark.parametrize(
    ("arguments", "complaint"),
    [
        (["inspect"], "give exactly one of OUTBOX_ID, --instruction, --key"),
        (
            ["inspect", "00000000-0000-4000-8000-000000000001", "--key", "k"],
            "give exactly one of OUTBOX_ID, --instruction, --key",
        ),
        (["inspect", "not-a-uuid"], "'not-a-uuid' is not a valid UUID"),
        (["redrive", "not-a-uuid", "--reason", "retry"], "'not-a-uuid' is not a valid UUID"),
        (["redrive", "00000000-0000-4000-8000-000000000001"], "Missing option '--reason'"),
        (["redrive", "--reason", "retry"], "Missing argument 'OUTBOX_ID'"),
        (["status", "--interval", "5"], "--interval needs --watch"),
        (["status", "--watch", "--interval", "0.1"], "0.1 is not in the range x>=0.5"),
    ],
    ids=[
        "inspect-nothing",
        "inspect-two-selectors",
        "inspect-bad-id",
        "redrive-bad-id",
        "redrive-no-reason",
        "redrive-no-id",
        "interval-without-watch",
        "interval-too-short",
    ],
)
def test_bad_arguments_are_usage_errors_before_any_connection(
    arguments: list[str], complaint: str
) -> None:
    """Exit 2 naming what is wrong; the URL (unreachable here) is never even tried."""
    url = "postgresql://payments:s3cret-pw@127.0.0.1:1/payments"

    result = CliRunner().invoke(main, [*arguments, "--url", url])

    assert result.exit_code == 2, result.output
    assert complaint in result.output
    assert "database unavailable" not in result.output


class _StoppedServer:
    """An embedded server that is not running, whose start is recorded instead of run."""

    url = "postgresql://postgres@/postgres?host=/tmp/x&port=5432"

    def __init__(self, *, running: bool = False) -> None:
        self.running = running
        self.started_with: dict[str, object] = {}

    def is_running(self) -> bool:
        return self.running

    def start(self, _directory: object, **options: object) -> _StoppedServer:
        self.started_with = options
        return self


def test_embedded_up_passes_each_set_to_the_server(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """--set NAME=VALUE, repeated, reaches the server's start as settings (spaces kept)."""
    server = _StoppedServer()
    monkeypatch.setattr(embedded, "attach", lambda _directory, _bindir=None: server)
    monkeypatch.setattr(embedded, "start", server.start)
    arguments = ["embedded", "up", "--fast", "--dir", str(tmp_path)]
    arguments += ["--set", "default_transaction_isolation=repeatable read", "--set", "a.b=c=d"]

    result = CliRunner().invoke(main, arguments)

    assert result.exit_code == 0, result.output
    expected = {"default_transaction_isolation": "repeatable read", "a.b": "c=d"}
    assert {"durable": False, "settings": expected, "bindir": None} == server.started_with


def test_embedded_up_starts_the_binaries_of_bin_dir(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """--bin-dir reaches the server's start; with --pg-version too it is a usage error."""
    server = _StoppedServer()
    monkeypatch.setattr(embedded, "attach", lambda _directory, _bindir=None: server)
    monkeypatch.setattr(embedded, "start", server.start)
    arguments = ["embedded", "up", "--dir", str(tmp_path / "server"), "--bin-dir", str(tmp_path)]

    both = CliRunner().invoke(main, [*arguments, "--pg-version", "16"])
    result = CliRunner().invoke(main, arguments)

    assert both.exit_code == 2, both.output
    assert "not both" in both.output
    assert result.exit_code == 0, result.output
    assert server.started_with["bindir"] == tmp_path


@pytest.mark.parametrize(("pair", "running"), [("no-equals", False), ("fsync=off", True)])
def test_embedded_up_refuses_a_set_it_cannot_apply(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, pair: str, *, running: bool
) -> None:
    """A pair without `=` is a usage error (2); a server already running is not restarted (1)."""
    server = _StoppedServer(running=running)
    monkeypatch.setattr(embedded, "attach", lambda _directory, _bindir=None: server)
    monkeypatch.setattr(embedded, "start", server.start)

    result = CliRunner().invoke(main, ["embedded", "up", "--dir", str(tmp_path), "--set", pair])

    assert result.exit_code == (1 if running else 2), result.output
    assert "already running" in result.output if running else "not name=value" in result.output
    assert server.started_with == {}
