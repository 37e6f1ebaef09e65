"""The command line: help everywhere, refusals as usage errors, and real processes that stop cleanly."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Final

import httpx
import pytest
import structlog
from click.testing import CliRunner

from outbox_relayer.cli import main
from outbox_relayer.testing import read_request_log

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

COMMANDS = [[], ["rail-sim"], ["run"], ["repair"]]
RELAYER: Final = str(Path(sys.executable).parent / "outbox-relayer")
PASSWORD: Final = "pw-4f9c2e-never-shown"  # noqa: S105 - a marker to look for, not a credential
# Nothing listens on port 1: every connection is refused at once, no database needed.
UNREACHABLE_URL: Final = f"postgresql://outbox:{PASSWORD}@127.0.0.1:1/payments"
# libpq cannot parse this one (a bad %-escape): connecting fails at once and is not retried, so
# a refusal that regressed past the start-up checks exits 1 here instead of hanging the test.
UNPARSABLE_URL: Final = f"postgresql://outbox:{PASSWORD}%zz@127.0.0.1:1/payments"


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "outbox-relayer")
def test_every_command_has_help(command: list[str]) -> None:
    """--help works on every command and says what it does."""
    result = CliRunner().invoke(main, [*command, "--help"])

    assert result.exit_code == 0
    assert "Usage:" in result.output


def test_fault_rates_above_one_in_total_are_a_usage_error() -> None:
    """rail-sim refuses fault rates that add up to more than 1, naming the options."""
    result = CliRunner().invoke(main, ["rail-sim", "--fail-rate", "0.6", "--drop-rate", "0.6"])

    assert result.exit_code == 2
    assert "--fail-rate + --timeout-rate + --drop-rate" in result.output


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=lambda s: s.name)
def test_rail_sim_process_answers_http_and_exits_0_on_signal(
    tmp_path: Path, stop: signal.Signals
) -> None:
    """`outbox-relayer rail-sim` prints its URL, serves POSTs, and stops cleanly on a signal."""
    log = tmp_path / "requests.jsonl"
    command = [str(Path(sys.executable).parent / "outbox-relayer"), "rail-sim", "--log", str(log)]
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as process:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        with httpx.Client() as client:
            answer = client.post(
                f"{url}/payments", content=b'{"amount":"1.00"}', headers={"Idempotency-Key": "k"}
            )
            stats = client.get(f"{url}/stats").json()
        process.send_signal(stop)
        _, stderr = process.communicate(timeout=30)

    assert process.returncode == 0, stderr
    assert answer.status_code == 201
    assert stats["requests"] == 1
    assert [line.idempotency_key for line in read_request_log(log)] == ["k"]
    assert json.loads(log.read_text(encoding="utf-8"))["reference"] == answer.json()["reference"]
    assert "rail-sim stopped: 1 requests, 1 keys, 0 absorbed" in stderr


@pytest.fixture
def _restore_structlog() -> Iterator[None]:
    """`run` and `repair` configure structlog for their output; put the defaults back."""
    yield
    structlog.reset_defaults()


def invoke(args: list[str], **env: str) -> tuple[int, str]:
    """Run the CLI in-process with only `env` of the relayer's settings set: (exit code, output)."""
    unset: dict[str, str | None] = {
        key: None for key in os.environ if key.startswith(("DATABASE_URL", "LEASE_", "OUTBOX_"))
    }
    result = CliRunner().invoke(main, args, env=unset | dict(env))
    return result.exit_code, result.output


def test_run_refuses_to_run_nothing() -> None:
    """`run --no-relay --no-repair` is a usage error (exit 2) that names both flags."""
    exit_code, output = invoke(["run", "--no-relay", "--no-repair"], DATABASE_URL=UNPARSABLE_URL)

    assert exit_code == 2
    assert "--no-relay and --no-repair together leave nothing to run" in output


@pytest.mark.usefixtures("_restore_structlog")
@pytest.mark.parametrize("command", [["run", "--rail", "rtp=noop"], ["repair", "--once"]])
def test_a_missing_database_url_is_a_usage_error_naming_it(command: list[str]) -> None:
    """Without DATABASE_URL (or --database-url) run and repair exit 2 saying DATABASE_URL is required."""
    exit_code, output = invoke(command)

    assert exit_code == 2
    assert "DATABASE_URL is required" in output


@pytest.mark.usefixtures("_restore_structlog")
@pytest.mark.parametrize(
    ("args", "env"),
    [
        (["--lease-seconds", "0"], {}),
        ([], {"LEASE_SECONDS": "abc"}),
        ([], {"LEASE_SECONDS": "3601"}),
    ],
    ids=["flag-0", "env-not-a-number", "env-above-range"],
)
def test_a_bad_lease_length_is_a_usage_error_naming_lease_seconds(
    args: list[str], env: dict[str, str]
) -> None:
    """A lease length that is not an integer in 1..3600, by flag or environment, exits 2 naming LEASE_SECONDS."""
    exit_code, output = invoke(
        ["run", "--rail", "rtp=noop", *args], DATABASE_URL=UNPARSABLE_URL, **env
    )

    assert exit_code == 2
    assert "invalid configuration: LEASE_SECONDS must be an integer in 1..3600" in output


@pytest.mark.usefixtures("_restore_structlog")
def test_run_without_rails_is_a_usage_error_before_any_connection() -> None:
    """`run` with no --rail and no rails file exits 2 'no rails configured', without reaching the database."""
    exit_code, output = invoke(["run"], DATABASE_URL=UNPARSABLE_URL)

    assert exit_code == 2
    assert "no rails configured" in output
    assert "relayer_started" not in output


@pytest.mark.parametrize(
    "value",
    ["rtp", "rtp=", "=http://127.0.0.1:1/payments", "rtp=localhost:8080/payments", "rtp=ftp://x"],
)
def test_a_rail_without_type_and_http_target_is_a_usage_error(value: str) -> None:
    """--rail needs TYPE=http(s)://... or TYPE=noop: anything else exits 2 before configuration is read."""
    exit_code, output = invoke(["run", "--rail", value], DATABASE_URL=UNPARSABLE_URL)

    assert exit_code == 2
    assert "Invalid value for --rail: --rail takes TYPE=http(s)://... or TYPE=noop" in output


@pytest.mark.usefixtures("_restore_structlog")
@pytest.mark.parametrize(
    ("args", "env"),
    [
        (["run", "--rail", "rtp=noop", "--lease-seconds", "0"], {"DATABASE_URL": UNPARSABLE_URL}),
        (["run", "--rail", "rtp=noop", "--database-url", UNPARSABLE_URL, "--batch-size", "0"], {}),
        (["run"], {"DATABASE_URL": UNPARSABLE_URL}),
        (["run", "--rail", "rtp"], {"DATABASE_URL": UNPARSABLE_URL}),
        (["run", "--rail", "rtp=noop"], {"DATABASE_URL": f"mysql://outbox:{PASSWORD}@db/payments"}),
        (["repair", "--once", "--lease-repair-batch-size", "0"], {"DATABASE_URL": UNPARSABLE_URL}),
    ],
    ids=[
        "bad-lease",
        "bad-batch-flag-url",
        "no-rails",
        "bad-rail",
        "bad-scheme",
        "repair-bad-batch",
    ],
)
def test_refusals_never_show_the_database_password(args: list[str], env: dict[str, str]) -> None:
    """Whatever run or repair refuses, the password in the database URL is not in the output."""
    exit_code, output = invoke(args, **env)

    assert exit_code == 2
    assert "Error:" in output
    assert PASSWORD not in output


def test_repair_once_on_an_unreachable_database_exits_1_without_the_password() -> None:
    """`repair --once` that cannot connect exits 1 with 'database unavailable' and no password."""
    process = subprocess.run(
        [RELAYER, "repair", "--once", "--log-format", "json"],
        env=_clean_env({"DATABASE_URL": UNREACHABLE_URL}),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert process.returncode == 1, process.stderr
    assert "Error: database unavailable" in process.stderr
    assert PASSWORD not in process.stdout + process.stderr


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=lambda s: s.name)
def test_run_waits_for_an_unreachable_database_and_stops_on_signal(
    tmp_path: Path, stop: signal.Signals
) -> None:
    """`run` keeps retrying a database it cannot reach (logging database_unavailable), exits 0 on a signal, and never shows the password."""
    stdout = tmp_path / "stdout.jsonl"
    with stdout.open("wb") as out:
        process = subprocess.Popen(
            [RELAYER, "run", "--rail", "rtp=noop", "--log-format", "json"],
            env=_clean_env({"DATABASE_URL": UNREACHABLE_URL}),
            stdout=out,
            stderr=subprocess.PIPE,
            text=True,
        )
    try:
        deadline = time.monotonic() + 30
        while '"database_unavailable"' not in stdout.read_text(encoding="utf-8"):
            assert process.poll() is None, "run exited instead of retrying the database"
            assert time.monotonic() < deadline, "no database_unavailable line within 30 s"
            time.sleep(0.05)
        process.send_signal(stop)
        _, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()

    assert process.returncode == 0, stderr
    logs = [json.loads(line) for line in stdout.read_text(encoding="utf-8").splitlines()]
    unavailable = [entry for entry in logs if entry["event"] == "database_unavailable"]
    assert unavailable[0]["loop"] == "connect"
    assert "127.0.0.1" in unavailable[0]["error"]
    assert PASSWORD not in stdout.read_text(encoding="utf-8") + stderr


def _clean_env(settings: Mapping[str, str]) -> dict[str, str]:
    """This process's environment without the relayer's settings, plus `settings`."""
    inherited = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DATABASE_URL", "LEASE_", "OUTBOX_"))
    }
    return inherited | dict(settings)
