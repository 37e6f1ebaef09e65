"""Proof: rail auth secrets and database passwords never show in any output we produce.

Logs, errors, metrics and the evidence bundle are scanned.

A real `outbox-relayer run` process dispatches over real HTTP to a rail that demands an
Authorization header (read from the environment through the rails file) and first answers
401, so the auth-failure path runs and is recorded; it connects with an application login
whose password is in DATABASE_URL, and serves /metrics. Then the failure paths that print a
connection: `outbox-relayer repair --once`, `outbox-db status` and `outbox-evidence generate`
pointed at a database that does not exist, with the password in the URL. The test scans
every byte those processes wrote, the metrics page, every ledger row and the bundle: neither
secret may appear. Control: the rail received the secret on every request, and every item
was dispatched through the password URL, so the scan looked for secrets that were in use.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Final

from psycopg.conninfo import make_conninfo

from outbox_db.testonly import query_no_role, wait_for
from outbox_db.testonly.factories import make_request

if TYPE_CHECKING:
    from collections.abc import Iterator

    from outbox_db import OutboxStore
    from outbox_db.testonly.pytest_plugin import Application, Database

BIN: Final = Path(sys.executable).parent
ITEMS: Final = 5
DEADLINE_SECONDS: Final = 120.0


class Rail(http.server.BaseHTTPRequestHandler):
    """A rail that wants the secret header and refuses each key's first request with 401."""

    authorizations: ClassVar[list[str]] = []
    seen_keys: ClassVar[set[str]] = set()

    def do_POST(self) -> None:
        """Record the Authorization header; 401 the first time a key arrives, then 201."""
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.authorizations.append(self.headers.get("Authorization", ""))
        key = self.headers.get("Idempotency-Key", "")
        first = key not in self.seen_keys
        self.seen_keys.add(key)
        body = json.dumps({"error": "UNAUTHORIZED"} if first else {"reference": f"ref-{key}"})
        self.send_response(401 if first else 201)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002, ANN401 - stdlib's signature
        """Quiet: the test reads what the rail recorded, not its access log."""


@contextlib.contextmanager
def rail() -> Iterator[str]:
    """The rail on a free loopback port, its payments URL; stopped afterwards."""
    Rail.authorizations, Rail.seen_keys = [], set()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Rail)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/payments"
    finally:
        server.shutdown()
        server.server_close()


def free_port() -> int:
    """A loopback port nobody listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def environment(**extra: str) -> dict[str, str]:
    """The test's environment without outbox settings or libpq variables, plus `extra`."""
    kept = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("OUTBOX_", "LEASE_", "DATABASE_URL", "PG"))
    }
    return kept | {"OUTBOX_DB_TESTONLY": "1", "PYTHONUNBUFFERED": "1"} | extra


def dispatched(url: str, rail_type: str) -> int:
    """Items of `rail_type` with their DISPATCHED attempt."""
    ((count,),) = query_no_role(
        url,
        "SELECT count(*) FROM public.payment_outbox_attempts"
        " WHERE rail_type = %s AND state = 'DISPATCHED'",
        [rail_type],
    )
    return int(count)


def test_rail_secret_and_database_password_appear_nowhere(
    tmp_path: Path,
    outbox_database: Database,
    outbox_store: OutboxStore,
    outbox_application: Application,
) -> None:
    """Logs, errors, metrics, the ledger and the bundle hold neither secret; the rail got it."""
    rail_secret = f"rail-secret-{secrets.token_hex(16)}"
    rail_type = f"rtp-{secrets.token_hex(4)}"
    for _ in range(ITEMS):
        outbox_store.enqueue(make_request(rail_type=rail_type))
    outputs: list[bytes] = []
    with rail() as rail_url:
        rails_file = tmp_path / "rails.toml"
        rails_file.write_text(
            f'[rails.{rail_type}]\nurl = "{rail_url}"\ntimeout_seconds = 5\n'
            'auth_header = "Authorization"\nauth_secret_env = "RAIL_TOKEN"\n'
        )
        port = free_port()
        env = environment(
            DATABASE_URL=outbox_application.url,
            RAIL_TOKEN=f"Bearer {rail_secret}",
            OUTBOX_RETRY_BASE_SECONDS="1",
            OUTBOX_POLL_INTERVAL_SECONDS="0.2",
        )
        relayer = subprocess.Popen(
            [
                BIN / "outbox-relayer",
                "run",
                "--rails-file",
                rails_file,
                "--metrics-port",
                str(port),
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:

            def all_dispatched() -> bool:
                if dispatched(outbox_database.url, rail_type) >= ITEMS:
                    return True
                assert relayer.poll() is None, "the relayer exited early"
                return False

            assert wait_for(all_dispatched, DEADLINE_SECONDS, interval=0.2), (
                "items not dispatched in time"
            )
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics") as page:
                outputs.append(page.read())
            relayer.send_signal(signal.SIGTERM)
            stdout, stderr = relayer.communicate(timeout=60)
        finally:
            if relayer.poll() is None:
                relayer.kill()
                relayer.communicate()
    assert relayer.returncode == 0, stderr.decode(errors="replace")
    outputs += [stdout, stderr]

    # Control: the secret was sent on every request, and the auth-failure path ran.
    assert Rail.authorizations
    assert set(Rail.authorizations) == {f"Bearer {rail_secret}"}
    assert b"RAIL_AUTH_REJECTED" in stdout + stderr + _ledger(outbox_database.url)

    # The paths that report a connection failure, with the password in the URL.
    nowhere = make_conninfo(outbox_application.url, dbname="outbox_no_such_database")
    for command in (
        ["outbox-relayer", "repair", "--once"],
        ["outbox-db", "status", "--url", nowhere],
        ["outbox-evidence", "generate", "--out", str(tmp_path / "bundle"), "--url", nowhere],
    ):
        failed = subprocess.run(
            [BIN / command[0], *command[1:]],
            env=environment(DATABASE_URL=nowhere),
            capture_output=True,
            check=False,
            timeout=120,
        )
        assert failed.returncode == 1, failed.stderr.decode(errors="replace")
        assert b"outbox_no_such_database" in failed.stderr, "the failure is reported"
        outputs += [failed.stdout, failed.stderr]
    outputs += [path.read_bytes() for path in sorted((tmp_path / "bundle").iterdir())]
    outputs.append(_ledger(outbox_database.url))

    for secret in (rail_secret, outbox_application.password):
        leaks = [index for index, output in enumerate(outputs) if secret.encode() in output]
        assert leaks == [], f"a secret leaked into outputs {leaks}"


def _ledger(url: str) -> bytes:
    """Every ledger row as JSON text, error messages and rail codes included."""
    rows = query_no_role(url, "SELECT to_jsonb(a)::text FROM public.payment_outbox_attempts AS a")
    return "\n".join(str(row[0]) for row in rows).encode()
