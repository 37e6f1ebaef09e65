"""The command line: help everywhere, and rail-sim as a real process that answers and stops cleanly."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from outbox_relayer.cli import main
from outbox_relayer.railsim import read_request_log

COMMANDS = [[], ["rail-sim"]]


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
