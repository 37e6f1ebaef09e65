"""The command line: help everywhere, clear errors, and never a password on screen."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from outbox_db.cli import main

COMMANDS = [
    [],
    ["migrate"],
    ["status"],
    ["regression"],
    ["embedded"],
    ["embedded", "up"],
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


@pytest.mark.parametrize("command", [["migrate"], ["status"]])
def test_unreachable_database_is_one_line_without_the_password(command: list[str]) -> None:
    """A refused connection exits 1 with the reason, and the URL's password is not printed."""
    url = "postgresql://payments:s3cret-pw@127.0.0.1:1/payments"

    result = CliRunner().invoke(main, [*command, "--url", url])

    assert result.exit_code == 1
    assert "database unavailable" in result.output
    assert "s3cret-pw" not in result.output
