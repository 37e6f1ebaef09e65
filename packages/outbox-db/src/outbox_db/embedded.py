"""A throwaway PostgreSQL server from the machine's own binaries, so a fresh clone needs no setup.

The server listens only on a unix socket inside a private directory (no TCP port to collide
on), which lives in the system temporary directory, owned by the server's OS user: initdb
refuses to run as root, so as root the server runs as an unprivileged user instead of
weakening PostgreSQL; otherwise it runs as the caller.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shlex
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Final

import attrs

from outbox_db.errors import EmbeddedServerError

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping, Sequence

__all__ = [
    "EmbeddedServer",
    "attach",
    "embedded_server",
    "find_bindir",
    "server_flags",
    "server_user",
    "start",
    "stop",
]

DEBIAN_BINARIES: Final = Path("/usr/lib/postgresql")
UNPRIVILEGED_USERS: Final = ("postgres", "outbox-postgres")
SUPERUSER: Final = "postgres"
PORT: Final = 5432
# Durable settings are PostgreSQL's defaults; tests may trade durability for speed.
FAST_SETTINGS: Final = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}
BASE_SETTINGS: Final = {"max_connections": "200", "listen_addresses": "''"}
BINDIR_RECORD: Final = "bindir"  # in the server's directory: the binaries that started it


@attrs.frozen
class EmbeddedServer:
    """A running embedded server: where it lives and how to reach it."""

    directory: Path
    bindir: Path
    os_user: str | None

    @property
    def data_dir(self) -> Path:
        """The cluster's data directory."""
        return self.directory / "data"

    @property
    def url(self) -> str:
        """Connection URL for the superuser over the private unix socket."""
        return f"postgresql://{SUPERUSER}@/postgres?host={self.directory}&port={PORT}"

    def is_running(self) -> bool:
        """Whether the postmaster of this directory answers."""
        result = _run_as(self, [str(self.bindir / "pg_ctl"), "status", "-D", str(self.data_dir)])
        return result.returncode == 0


def find_bindir() -> Path:
    """The PostgreSQL binaries: $OUTBOX_PG_BINDIR, pg_config's bindir, or Debian's newest."""
    candidates: list[Path] = []
    if configured := os.environ.get("OUTBOX_PG_BINDIR"):
        candidates.append(Path(configured))
    if pg_config := shutil.which("pg_config"):
        with contextlib.suppress(subprocess.CalledProcessError):
            out = subprocess.run(  # noqa: S603 - pg_config from PATH, fixed arguments
                [pg_config, "--bindir"], capture_output=True, text=True, check=True
            )
            candidates.append(Path(out.stdout.strip()))
    if DEBIAN_BINARIES.is_dir():
        versions = sorted(DEBIAN_BINARIES.iterdir(), key=_version_key, reverse=True)
        candidates.extend(version / "bin" for version in versions)
    for candidate in candidates:
        if (candidate / "initdb").is_file() and (candidate / "pg_ctl").is_file():
            return candidate
    msg = (
        "no PostgreSQL server binaries found "
        "(install Debian's 'postgresql' or set OUTBOX_PG_BINDIR)"
    )
    raise EmbeddedServerError(msg)


def start(
    directory: Path | None = None,
    *,
    durable: bool = True,
    settings: Mapping[str, str] | None = None,
    bindir: Path | None = None,
) -> EmbeddedServer:
    """Initialise a cluster in `directory` (a new temporary one by default) and start it.

    `bindir` picks the server's binaries (default: `find_bindir()`); it is recorded in the
    directory, so `attach` stops the server with the binaries that started it.
    """
    os_user = server_user()
    base = directory or Path(tempfile.mkdtemp(prefix="outbox-pg-", dir=_shared_tmp()))
    server = EmbeddedServer(directory=base, bindir=bindir or find_bindir(), os_user=os_user)
    base.mkdir(mode=0o700, parents=True, exist_ok=True)
    if os_user is not None:
        entry = pwd.getpwnam(os_user)
        os.chown(base, entry.pw_uid, entry.pw_gid)
    if not (server.data_dir / "PG_VERSION").exists():
        _initdb(server, durable=durable)
    (base / BINDIR_RECORD).write_text(str(server.bindir), encoding="utf-8")
    options = {**BASE_SETTINGS, "unix_socket_directories": f"'{base}'", "port": str(PORT)}
    options |= {} if durable else FAST_SETTINGS
    flags = " ".join(
        [f"-c {name}={value}" for name, value in options.items()] + server_flags(settings or {})
    )
    log = base / "server.log"
    _check(
        server, ["pg_ctl", "start", "-w", "-D", str(server.data_dir), "-l", str(log), "-o", flags]
    )
    return server


def server_flags(settings: Mapping[str, str]) -> list[str]:
    """`-c name=value` for each setting, quoted for the shell pg_ctl starts the server with.

    A value may hold spaces (`default_transaction_isolation=repeatable read`).
    """
    return [f"-c {shlex.quote(f'{name}={value}')}" for name, value in settings.items()]


def stop(server: EmbeddedServer) -> None:
    """Stop the server (fast shutdown) and delete its directory."""
    looks_embedded = any(
        path.exists()
        for path in (
            server.data_dir / "PG_VERSION",
            server.directory / "server.log",
            server.directory / BINDIR_RECORD,
        )
    )
    if server.directory.exists() and any(server.directory.iterdir()) and not looks_embedded:
        msg = f"{server.directory} does not hold an embedded server; refusing to delete it"
        raise EmbeddedServerError(msg)
    if server.is_running():
        _check(server, ["pg_ctl", "stop", "-w", "-m", "fast", "-D", str(server.data_dir)])
    shutil.rmtree(server.directory, ignore_errors=True)


@contextlib.contextmanager
def embedded_server(
    *, durable: bool = True, settings: Mapping[str, str] | None = None
) -> Iterator[EmbeddedServer]:
    """A server for the duration of a block, removed afterwards whatever happens."""
    server = start(durable=durable, settings=settings)
    try:
        yield server
    finally:
        stop(server)


def attach(directory: Path, bindir: Path | None = None) -> EmbeddedServer:
    """The server previously started in `directory` (for `up`/`url`/`down` by hand).

    Its binaries: those it was started with, else `bindir`, else `find_bindir()`.
    """
    record = directory / BINDIR_RECORD
    recorded = Path(record.read_text(encoding="utf-8")) if record.is_file() else None
    chosen = recorded or bindir or find_bindir()
    return EmbeddedServer(directory=directory, bindir=chosen, os_user=server_user())


def _initdb(server: EmbeddedServer, *, durable: bool) -> None:
    args = ["initdb", "-D", str(server.data_dir), "-U", SUPERUSER, "-A", "trust", "-E", "UTF8"]
    args += ["--no-instructions"] if durable else ["--no-instructions", "--no-sync"]
    _check(server, args)


def _check(server: EmbeddedServer, args: Sequence[str]) -> None:
    command = [str(server.bindir / args[0]), *args[1:]]
    result = _run_as(server, command)
    if result.returncode != 0:
        log = server.directory / "server.log"
        tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
        msg = f"{args[0]} failed ({result.returncode}): {result.stderr.strip()}\n{tail}"
        raise EmbeddedServerError(msg)


def _run_as(server: EmbeddedServer, command: Sequence[str]) -> subprocess.CompletedProcess[str]:
    prefix = [] if server.os_user is None else ["runuser", "-u", server.os_user, "--"]
    return subprocess.run(  # noqa: S603 - fixed argv of PostgreSQL's own tools, no shell
        [*prefix, *command], capture_output=True, text=True, check=False, cwd="/"
    )


def server_user() -> str | None:
    """None (the caller) unless root; as root, an unprivileged user, created if missing."""
    if os.geteuid() != 0:
        return None
    for name in UNPRIVILEGED_USERS:
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name).pw_name
    name = UNPRIVILEGED_USERS[-1]
    subprocess.run(  # noqa: S603 - fixed argv
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],  # noqa: S607
        check=True,
        capture_output=True,
    )
    return name


def _shared_tmp() -> str:
    """A temporary directory the server's user can traverse (not a 0700 home's)."""
    tmp = Path(tempfile.gettempdir())
    return str(tmp if tmp.stat().st_mode & 0o001 else Path("/tmp"))  # noqa: S108 - world-traversable by design


def _version_key(path: Path) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", path.name)) or (0,)
