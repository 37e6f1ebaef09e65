"""The command line: help everywhere, clear errors, and never a password on screen."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from outbox_db.cli import main

COMMANDS = [
    [],
    ["migrate"],
    ["status"],
    ["inspect"],
    ["redrive"],
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
