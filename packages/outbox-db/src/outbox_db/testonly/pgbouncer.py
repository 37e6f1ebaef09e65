"""A real PgBouncer (Debian's `pgbouncer`) in front of a test server, for the pooler proofs.

It listens on a unix socket in a private directory, like the embedded server, and runs as
the embedded server's OS user (PgBouncer refuses to run as root). Any database name passes
through to the server, so a test's own database is reached by swapping host and port.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Final

import attrs
import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from outbox_db.embedded import server_user
from outbox_db.errors import EmbeddedServerError

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["PgBouncer", "find_pgbouncer", "pgbouncer"]

PORT: Final = 6432
STARTUP_SECONDS: Final = 15.0
# Fewer server connections than the proofs' client threads: clients must share them, so
# whatever a transaction leaves on a server connection meets another client.
POOL_SIZE: Final = 2
CONFIG: Final = """\
[databases]
* = {upstream}

[pgbouncer]
listen_addr = {listen_addr}
listen_port = {port}
unix_socket_dir = {directory}
auth_type = trust
auth_file = {directory}/users.txt
pool_mode = {pool_mode}
default_pool_size = {pool_size}
max_client_conn = 400
logfile = {directory}/pgbouncer.log
ignore_startup_parameters = extra_float_digits,options
admin_users = pgbouncer
"""
# With TLS, clients may also connect over TCP on loopback, and must use TLS there.
TLS_CONFIG: Final = """\
client_tls_sslmode = require
client_tls_cert_file = {directory}/server.crt
client_tls_key_file = {directory}/server.key
"""
LOOPBACK: Final = "127.0.0.1"


@attrs.define
class PgBouncer:
    """A running PgBouncer; `url` reaches a database of the server through it."""

    directory: Path
    os_user: str | None
    port: int = PORT
    process: subprocess.Popen[bytes] | None = None

    def url(self, server_url: str) -> str:
        """`server_url` (any database on the server), through this PgBouncer's unix socket."""
        return make_conninfo(server_url, host=str(self.directory), port=str(self.port))

    def tls_url(self, server_url: str, **tls: str) -> str:
        """`server_url` through this PgBouncer over TCP as "localhost", with libpq's `tls`."""
        return make_conninfo(server_url, host="localhost", port=str(self.port), **tls)

    def start(self) -> None:
        """Start PgBouncer and wait until it accepts connections."""
        command = [find_pgbouncer(), str(self.directory / "pgbouncer.ini")]
        prefix = [] if self.os_user is None else ["runuser", "-u", self.os_user, "--"]
        # Its own log file has everything; stderr goes nowhere, so no pipe can fill and stall it.
        self.process = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
            [*prefix, *command], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        self._wait_until_accepting()

    def stop(self) -> None:
        """Stop at once (SIGTERM: clients' connections drop, as in a crash or redeploy)."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=STARTUP_SECONDS)
        self.process = None

    def restart(self) -> None:
        """Stop, then start again: every client connection is cut."""
        self.stop()
        self.start()

    def _wait_until_accepting(self) -> None:
        deadline = time.monotonic() + STARTUP_SECONDS
        probe = f"host={self.directory} port={self.port} dbname=pgbouncer user=pgbouncer"
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                break
            with contextlib.suppress(psycopg.OperationalError):
                psycopg.connect(probe, autocommit=True, connect_timeout=1).close()
                return
            time.sleep(0.05)
        log = self.directory / "pgbouncer.log"
        tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
        msg = f"pgbouncer did not start in {STARTUP_SECONDS:.0f} s:\n{tail}"
        raise EmbeddedServerError(msg)


def find_pgbouncer() -> str:
    """PgBouncer's binary: on PATH, or where Debian's package puts it."""
    found = shutil.which("pgbouncer") or shutil.which("pgbouncer", path="/usr/sbin")
    if found is None:
        msg = "pgbouncer not found: install Debian's pgbouncer (apt-get install pgbouncer)"
        raise EmbeddedServerError(msg)
    return found


@contextlib.contextmanager
def pgbouncer(
    server_url: str, *, pool_mode: str = "transaction", tls: tuple[bytes, bytes] | None = None
) -> Iterator[PgBouncer]:
    """PgBouncer in `pool_mode` in front of the server at `server_url`, for a block.

    `tls` (certificate chain and key, PEM) also opens a TCP port on loopback that requires
    TLS, for clients that verify the certificate (`tls_url`).
    """
    os_user = server_user()
    # In /tmp, not a private temporary directory: PgBouncer's user must traverse it.
    directory = Path(tempfile.mkdtemp(prefix="outbox-pgbouncer-", dir="/tmp"))
    port = PORT if tls is None else _free_port()
    try:
        if tls is not None:
            (directory / "server.crt").write_bytes(tls[0])
            (directory / "server.key").write_bytes(tls[1])
        _configure(directory, server_url, pool_mode, port, tls=tls is not None)
        _hand_over(directory, os_user)
        bouncer = PgBouncer(directory=directory, os_user=os_user, port=port)
        bouncer.start()
        try:
            yield bouncer
        finally:
            bouncer.stop()
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _configure(directory: Path, server_url: str, pool_mode: str, port: int, *, tls: bool) -> None:
    server = conninfo_to_dict(server_url)
    upstream = " ".join(
        f"{key}={server[key]}" for key in ("host", "port") if server.get(key) is not None
    )
    user, password = server.get("user") or "postgres", server.get("password") or ""
    (directory / "users.txt").write_text(f'"{user}" "{password}"\n"pgbouncer" ""\n')
    config = CONFIG.format(
        upstream=upstream,
        listen_addr=LOOPBACK if tls else "",
        port=port,
        directory=directory,
        pool_mode=pool_mode,
        pool_size=POOL_SIZE,
    )
    (directory / "pgbouncer.ini").write_text(
        config + (TLS_CONFIG.format(directory=directory) if tls else "")
    )


def _hand_over(directory: Path, os_user: str | None) -> None:
    """Give PgBouncer's user its directory and files (it runs unprivileged)."""
    if os_user is not None:
        entry = pwd.getpwnam(os_user)
        for path in (directory, *directory.iterdir()):
            os.chown(path, entry.pw_uid, entry.pw_gid)


def _free_port() -> int:
    """A TCP port on loopback nobody listens on now."""
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        return int(probe.getsockname()[1])
