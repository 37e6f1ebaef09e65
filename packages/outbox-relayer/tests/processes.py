"""Relayer processes as an operator runs them, for the proofs that start `outbox-relayer`.

Each process gets a cleaned environment and its own stdout and stderr files; every process a
test starts is killed at teardown, whatever the outcome. A run's items carry ids and a
rail_type unique to the run, so proofs on the shared database tell their rows apart. Waits
poll state with generous deadlines and fail at once if a watched process died.

The proofs (test_relayer_process_*.py) start the console script as an operator would (JSON
logs on stdout, settings from the environment and flags) against a real PostgreSQL and a rail
simulator in the test's process (a real HTTP server on loopback). Claims are proved from the
ledger and the pending table, read as the owner, and from the simulator's request log: never
from what a process says about itself. No assertion is about wall-clock time.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, LiteralString

import pytest

from outbox_db import OutboxStore, Role, retry_serialization_failures
from outbox_db.testonly import query_no_role, wait_for
from outbox_db.testonly.factories import make_request

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping, Sequence
    from uuid import UUID

    from outbox_db.testonly.pytest_plugin import Database

RELAYER: Final = str(Path(sys.executable).parent / "outbox-relayer")
# Settings a process would otherwise inherit from the developer's or CI's environment.
SETTING_PREFIXES: Final = ("DATABASE_URL", "LEASE_", "OUTBOX_")
# Long enough that only a real failure runs into them; polling returns as soon as state is there.
START_SECONDS: Final = 30.0
DRAIN_SECONDS: Final = 120.0
STOP_SECONDS: Final = 30.0

# What a run's items are doing: still pending (leased or not), and ended.
PROGRESS: LiteralString = """
SELECT (SELECT count(*) FROM public.payment_outbox_pending WHERE rail_type = %(rail)s),
       (SELECT count(*) FROM public.payment_outbox_attempts
        WHERE rail_type = %(rail)s AND state IN ('DISPATCHED', 'FAILED'))
"""
PENDING: LiteralString = """
SELECT outbox_id, attempt_count, claimed_by FROM public.payment_outbox_pending
WHERE rail_type = %s ORDER BY outbox_id
"""
HELD_KEYS: LiteralString = """
SELECT idempotency_key FROM public.payment_outbox_pending WHERE claimed_by = %s
"""
DISPATCHING_ROWS: LiteralString = (
    "SELECT count(*) FROM public.payment_outbox_attempts WHERE state = 'DISPATCHING'"
)


class Process:
    """One `outbox-relayer` process; its stdout (JSON logs) and stderr go to files."""

    def __init__(
        self, name: str, args: Sequence[str], env: Mapping[str, str], folder: Path
    ) -> None:
        self.name = name
        self.stdout_path = folder / f"{name}.stdout"
        self.stderr_path = folder / f"{name}.stderr"
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            self.popen = subprocess.Popen([RELAYER, *args], env=env, stdout=out, stderr=err)

    @property
    def alive(self) -> bool:
        """Whether the process is still running."""
        return self.popen.poll() is None

    def logs(self, event: str | None = None) -> list[dict[str, Any]]:
        """Its JSON log lines so far, or only those of one event."""
        lines = self.stdout_path.read_text(encoding="utf-8").splitlines()
        entries = [json.loads(line) for line in lines if line.startswith("{")]
        return [entry for entry in entries if event is None or entry.get("event") == event]

    def has_logged(self, event: str) -> bool:
        """Whether a log line of `event` is out (safe while the process is still writing)."""
        return f'"event": "{event}"' in self.stdout_path.read_text(encoding="utf-8")

    def stderr(self) -> str:
        """What it wrote to stderr (tracebacks, usage errors)."""
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")

    def stop(self, signum: signal.Signals = signal.SIGTERM) -> int:
        """Send `signum` and wait for the exit; returns the exit code."""
        self.popen.send_signal(signum)
        return self.popen.wait(timeout=STOP_SECONDS)

    def kill(self) -> None:
        """SIGKILL: no shutdown path runs, as in a crash or an OOM kill."""
        self.popen.kill()
        self.popen.wait(timeout=STOP_SECONDS)

    def describe(self) -> str:
        """Its name, exit code and the end of its stderr, for a failure message."""
        return f"{self.name} (exit {self.popen.returncode}): {self.stderr()[-2000:]}"


class Processes:
    """Starts relayer processes for one test; every one still running is killed at teardown."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.started: list[Process] = []

    def start(self, name: str, *args: str, database_url: str, **env: str) -> Process:
        """`outbox-relayer <args>` with DATABASE_URL and `env` over a cleaned environment."""
        inherited = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(SETTING_PREFIXES) or key == "OUTBOX_DB_TESTONLY"
        }
        environment = inherited | {"DATABASE_URL": database_url, "PYTHONUNBUFFERED": "1"} | env
        process = Process(name, args, environment, self.folder)
        self.started.append(process)
        return process

    def kill_all(self) -> None:
        """SIGKILL whatever still runs, and reap everything."""
        for process in self.started:
            if process.alive:
                process.popen.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.popen.wait(timeout=STOP_SECONDS)


@pytest.fixture(name="processes")
def processes_fixture(tmp_path: Path) -> Iterator[Processes]:
    """Relayer processes for the test, never left running, whatever the test's outcome."""
    started = Processes(tmp_path)
    try:
        yield started
    finally:
        started.kill_all()


@pytest.fixture(name="shared_url")
def shared_url_fixture(outbox_shared_database: Database) -> str:
    """The session's shared database: this test's rows are told apart by a per-run rail_type."""
    return outbox_shared_database.url


def wait_until(
    condition: Callable[[], bool],
    what: str,
    *,
    seconds: float = START_SECONDS,
    watch: Sequence[Process] = (),
    interval: float = 0.05,
) -> None:
    """Poll until `condition` holds; fail naming `what` on the deadline or if a process died."""

    def holds_or_died() -> bool:
        # A SERIALIZABLE default may cancel a poll's read as a pivot (40001): read again.
        if retry_serialization_failures(condition):
            return True
        if dead := [process for process in watch if not process.alive]:
            pytest.fail(f"{dead[0].describe()}\nexited while waiting for {what}")
        return False

    if not wait_for(holds_or_died, seconds, interval=interval):
        pytest.fail(f"no {what} within {seconds:g} s")


def enqueue_run(url: str, run: str, items: int, participants: int) -> dict[UUID, str]:
    """`items` new items over `participants`, ids and rail_type unique to `run`: {outbox_id: key}.

    Item n's payload is `payload(n)`; its key ends in `-n`.
    """
    created: dict[UUID, str] = {}
    with OutboxStore.connect(url, role=Role.EXECUTOR) as store:
        for start in range(0, items, 1000):
            with store.transaction() as tx:
                for n in range(start, min(start + 1000, items)):
                    request = make_request(
                        instruction_id=f"{run}-ins-{n}",
                        participant_id=f"{run}-participant-{n % participants}",
                        idempotency_key=f"{run}-key-{n}",
                        rail_type=rail_of(run),
                        payload=payload(n),
                    )
                    result = tx.enqueue(request)
                    assert result.created
                    created[result.outbox_id] = request.idempotency_key
    return created


def payload(n: int) -> dict[str, object]:
    """The payload of a run's item n."""
    return {"amount": f"{n % 997 + 1}.00", "currency": "USD", "n": n}


def rail_of(run: str) -> str:
    """The run's own rail_type: relayers of this run send only it, and nothing else reaches it."""
    return f"rtp-{run}"


def progress(url: str, run: str) -> tuple[int, int]:
    """(pending items, items with a terminal attempt) of the run."""
    return progress_of(url, rail_of(run))


def progress_of(url: str, rail: str) -> tuple[int, int]:
    """(pending items, items with a terminal attempt) on `rail`."""
    ((pending, ended),) = query_no_role(url, PROGRESS, {"rail": rail})
    return pending, ended
