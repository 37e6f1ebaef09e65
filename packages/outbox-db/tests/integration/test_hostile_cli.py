"""Proof: the command lines refuse hostile arguments with a clear message and exit code.

Hypothesis picks a command (outbox-db, outbox-relayer, outbox-evidence) and feeds one of its
arguments arbitrary bytes: invalid UTF-8, control characters, terminal escapes, SQL, numbers
beyond any integer type, negative and empty values. Each command runs as a real process, as
an operator would run it. It must exit 0 (the value was fine), 1 (refused, with a message)
or 2 (a usage error naming the option); never with a traceback. A refused command writes
nothing: the database it was pointed at keeps every row.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Final

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from outbox_db.testonly import expire_lease, outbox_rows
from outbox_db.testonly.factories import leased_item

if TYPE_CHECKING:
    from outbox_db import OutboxStore
    from outbox_db.testonly.pytest_plugin import Database

BIN: Final = Path(sys.executable).parent
VALUE: Final = b"{value}"
# Each command with the place of the hostile value; each ends by itself whatever the value.
COMMANDS: Final = {
    "db-status-url": [b"outbox-db", b"status", b"--url", VALUE],
    "db-regression-url": [b"outbox-db", b"regression", b"--url", VALUE],
    "db-migrate-url": [b"outbox-db", b"migrate", b"--url", VALUE],
    "relayer-repair-worker": [b"outbox-relayer", b"repair", b"--once", b"--worker-id", VALUE],
    "relayer-repair-batch": [
        *(b"outbox-relayer", b"repair", b"--once", b"--lease-repair-batch-size", VALUE),
    ],
    "relayer-repair-lease": [b"outbox-relayer", b"repair", b"--once", b"--lease-seconds", VALUE],
    "relayer-repair-url": [b"outbox-relayer", b"repair", b"--once", b"--database-url", VALUE],
    # A valid rail still ends: the batch size 0 that follows is refused.
    "relayer-run-rail": [b"outbox-relayer", b"run", b"--rail", VALUE, b"--batch-size", b"0"],
    "relayer-run-batch": [
        b"outbox-relayer",
        b"run",
        b"--rail",
        b"rtp=noop",
        b"--batch-size",
        VALUE,
    ],
    "evidence-verify-dir": [b"outbox-evidence", b"verify", VALUE],
    "evidence-verify-manifest": [
        *(b"outbox-evidence", b"verify", b"reports/no-bundle", b"--manifest", VALUE),
    ],
}
HOSTILE_BYTES: Final = st.one_of(
    st.binary(max_size=40).filter(lambda value: b"\x00" not in value),
    st.sampled_from(
        [
            b"",
            b"\xff\xfe\xfd",
            b"caf\xe9",
            b"\xed\xa0\x80",
            b"-1",
            b"0",
            b"99999999999999999999999999",
            b"1e309",
            b"nan",
            b"'; DROP TABLE public.payment_outbox_attempts; --",
            b"\x1b[31mred\x1b[0m",
            b"x" * 5000,
            b"postgresql://user:pw@/db?host=/nonexistent\xff",
        ]
    ),
)


@pytest.fixture
def expired_lease(outbox_database: Database, outbox_store: OutboxStore) -> None:
    """An expired lease, so a repair the refusal let through would have written something."""
    expired = leased_item(outbox_store, "worker-expired")
    expire_lease(outbox_database.url, expired.outbox_id)


def run(command: str, value: bytes, database_url: str) -> subprocess.CompletedProcess[bytes]:
    """The command as a process, the hostile value in its place, DATABASE_URL set."""
    name, *args = (value if part == VALUE else part for part in COMMANDS[command])
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OUTBOX_", "LEASE_"))}
    return subprocess.run(
        [BIN / name.decode(), *args],
        env=env | {"DATABASE_URL": database_url, "OUTBOX_DB_TESTONLY": "1"},
        capture_output=True,
        timeout=120,
        check=False,
    )


@pytest.mark.usefixtures("expired_lease")
@given(command=st.sampled_from(sorted(COMMANDS)), value=HOSTILE_BYTES)
# Invalid UTF-8 where each command reads a URL, a name, a number or a path, every run.
@example(command="db-status-url", value=b"\xff\xfe\xfd")
@example(command="relayer-repair-url", value=b"postgresql://u:pw@/db?host=/x\xe9")
@example(command="relayer-repair-worker", value=b"\xed\xa0\x80")
@example(command="relayer-run-batch", value=b"99999999999999999999999999")
@example(command="evidence-verify-dir", value=b"caf\xe9")
@settings(
    max_examples=int(os.environ.get("OUTBOX_HOSTILE_CLI_EXAMPLES", "10")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_hostile_arguments_get_a_clear_refusal_and_write_nothing(
    outbox_database: Database, command: str, value: bytes
) -> None:
    """Exit 0, 1 or 2 with a message, no traceback; a refusal leaves every row as it was."""
    before = outbox_rows(outbox_database.url, versions=True)

    finished = run(command, value, outbox_database.url)

    stderr = finished.stderr.decode(errors="replace")
    assert finished.returncode in {0, 1, 2}, stderr
    assert b"Traceback" not in finished.stderr + finished.stdout, stderr
    if finished.returncode:
        assert stderr.strip(), "a refusal says why"
        assert outbox_rows(outbox_database.url, versions=True) == before
