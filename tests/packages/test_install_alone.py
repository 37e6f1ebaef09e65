"""Each package built (sdist, then a wheel from the sdist) and installed alone, where it works.

A service installs one package, not the monorepo: each test makes a clean virtualenv with
only that package's wheel and its declared dependencies (a sibling it depends on comes from
its own freshly built wheel, everything else from the package index), then uses it as a user
would, through its console script. `nox -s packages` runs this, outside the gate.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Final, LiteralString

import pytest

from outbox_db.testonly import query_no_role, wait_for

if TYPE_CHECKING:
    from collections.abc import Iterator


ROOT: Final = Path(__file__).parents[2]
PACKAGES: Final = ("outbox-db", "outbox-evidence", "outbox-guardrails", "outbox-relayer")
# Each package and the siblings it declares (besides what the index has).
SIBLINGS: Final = {
    "outbox-db": (),
    "outbox-evidence": ("outbox-db",),  # it reads the guardrails' report, not their code
    "outbox-guardrails": (),
    "outbox-relayer": ("outbox-db",),
}
VERSION: Final = (ROOT / "release" / "VERSION").read_text(encoding="utf-8").strip()
DRAIN_SECONDS: Final = 60.0
MIGRATE: Final = "import sys; from outbox_db import migrate; migrate(sys.argv[1])"
ENQUEUE: Final = """
import sys
from outbox_db import EnqueueRequest, OutboxStore
with OutboxStore.connect(sys.argv[1]) as store:
    for n in range(int(sys.argv[2])):
        store.enqueue(EnqueueRequest(instruction_id=f"alone-{n}", participant_id="bank-a",
            idempotency_key=f"alone-{n}/v1", rail_type="rtp", payload={"amount": "1.00"}))
"""
LEDGER: LiteralString = (
    "SELECT state::text, count(*) FROM public.payment_outbox_attempts GROUP BY 1 ORDER BY 1"
)
PENDING: LiteralString = "SELECT count(*) FROM public.payment_outbox_pending"
# What a shell passes on, less the test session's settings and its virtualenv.
INHERITED: Final = {
    key: value
    for key, value in os.environ.items()
    if not key.startswith(("OUTBOX_", "LEASE_", "DATABASE_URL", "PYTHON", "VIRTUAL_ENV", "PATH"))
}


def uv() -> str:
    """The uv next to this interpreter (the test group installs it), else on PATH."""
    beside = Path(sys.executable).parent / "uv"
    found = str(beside) if beside.exists() else shutil.which("uv")
    assert found, "uv builds and installs the packages (it is in the test group)"
    return found


def run(
    *args: str | Path, expect: int = 0, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a command in a clean environment; fail with its output unless it exits `expect`."""
    command = [str(arg) for arg in args]
    # The command's own bin first (a console script's siblings), none of the session's settings.
    clean = INHERITED | {"PATH": f"{Path(command[0]).parent}:{os.defpath}"} | (env or {})
    result = subprocess.run(
        command, capture_output=True, text=True, check=False, env=clean, cwd=cwd
    )
    output = f"{result.stdout}\n{result.stderr}"
    assert result.returncode == expect, f"{command[:2]} exited {result.returncode}:\n{output}"
    return result


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every package built by `uv build`: the sdist first, then the wheel from that sdist."""
    out = tmp_path_factory.mktemp("dist")
    for package in PACKAGES:
        run(uv(), "build", "--quiet", "--out-dir", out, ROOT / "packages" / package)
    return out


def install_alone(package: str, dist: Path, folder: Path, *, extra: str = "") -> Path:
    """A new virtualenv with `package`'s wheel (with `extra`), its siblings' and declared deps."""
    venv = folder / f"venv-{package}"
    run(uv(), "venv", "--quiet", "--python", sys.executable, venv)
    install(venv / "bin", dist, package, extra=extra)
    return venv / "bin"


def install(bin_dir: Path, dist: Path, package: str, *, extra: str = "") -> None:
    """`package`'s wheel (with `extra`, when given) and its siblings' into `bin_dir`'s venv."""
    wheel = _wheel(dist, package)
    wanted = f"{package}[{extra}] @ {wheel.as_uri()}" if extra else str(wheel)
    siblings = [_wheel(dist, name) for name in SIBLINGS[package]]
    run(uv(), "pip", "install", "--quiet", "--python", bin_dir / "python", wanted, *siblings)


def _wheel(dist: Path, package: str) -> Path:
    (wheel,) = dist.glob(f"{package.replace('-', '_')}-{VERSION}-py3-none-any.whl")
    return wheel


def test_every_package_builds_an_sdist_and_a_wheel_of_the_one_version(dist: Path) -> None:
    """Eight files: an sdist and a wheel per package, all of release/VERSION."""
    expected = {
        name
        for package in PACKAGES
        for name in (
            f"{package.replace('-', '_')}-{VERSION}.tar.gz",
            f"{package.replace('-', '_')}-{VERSION}-py3-none-any.whl",
        )
    }
    assert expected == {path.name for path in dist.glob("outbox_*")}


def test_outbox_db_alone_migrates_and_enqueues_without_the_command_lines_packages(
    dist: Path, tmp_path: Path, outbox_empty_database: str
) -> None:
    """`pip install outbox-db`: no click or rich; migrate and enqueue from Python all the same."""
    bin_dir = install_alone("outbox-db", dist, tmp_path)
    for module in ("click", "rich"):
        run(bin_dir / "python", "-c", f"import {module}", expect=1)

    run(bin_dir / "python", "-c", MIGRATE, outbox_empty_database)
    run(bin_dir / "python", "-c", ENQUEUE, outbox_empty_database, "3")

    assert query_no_role(outbox_empty_database, PENDING) == [(3,)]


def test_outbox_db_without_its_cli_extra_names_it_and_with_it_migrates(
    dist: Path, tmp_path: Path, outbox_empty_database: str
) -> None:
    """`outbox-db migrate` needs `outbox-db[cli]`: one line saying so, then it works once added."""
    bin_dir = install_alone("outbox-db", dist, tmp_path)

    refused = run(bin_dir / "outbox-db", "migrate", "--url", outbox_empty_database, expect=1)
    install(bin_dir, dist, "outbox-db", extra="cli")
    run(bin_dir / "outbox-db", "migrate", "--url", outbox_empty_database)

    assert refused.stderr == (
        "outbox-db: the command line needs click and rich: pip install 'outbox-db[cli]'\n"
    )
    assert query_no_role(outbox_empty_database, PENDING) == [(0,)]


def test_outbox_relayer_alone_drains_against_rail_sim(
    dist: Path, tmp_path: Path, outbox_empty_database: str
) -> None:
    """`pip install outbox-relayer`: its rail-sim and its relayer dispatch every item once."""
    bin_dir = install_alone("outbox-relayer", dist, tmp_path)
    run(bin_dir / "outbox-db", "migrate", "--url", outbox_empty_database)  # outbox-db came along
    run(bin_dir / "python", "-c", ENQUEUE, outbox_empty_database, "20")
    env = INHERITED | {"PATH": f"{bin_dir}:{os.defpath}", "DATABASE_URL": outbox_empty_database}

    with (
        started(bin_dir / "outbox-relayer", "rail-sim", env=env) as rail_url,
        started(bin_dir / "outbox-relayer", "run", "--rail", f"rtp={rail_url}/payments", env=env),
    ):
        _wait_until_drained(outbox_empty_database)

    assert query_no_role(outbox_empty_database, LEDGER) == [("DISPATCHED", 20)]


def test_outbox_relayer_without_the_metrics_extra_says_which_extra(
    dist: Path, tmp_path: Path
) -> None:
    """Metrics asked for without `outbox-relayer[metrics]`: exit 2 naming the extra to install."""
    bin_dir = install_alone("outbox-relayer", dist, tmp_path)
    run(bin_dir / "python", "-c", "import prometheus_client", expect=1)

    result = run(
        *(bin_dir / "outbox-relayer", "run", "--metrics-port", "9091", "--rail", "rtp=noop"),
        expect=2,
        env={"DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"},
    )

    assert "pip install 'outbox-relayer[metrics]'" in result.stderr


def test_outbox_guardrails_alone_checks_a_tree_without_a_database(
    dist: Path, tmp_path: Path
) -> None:
    """`pip install outbox-guardrails`: no outbox-db, no driver, and it still finds a finding."""
    bin_dir = install_alone("outbox-guardrails", dist, tmp_path)
    for module in ("outbox_db", "psycopg"):
        run(bin_dir / "python", "-c", f"import {module}", expect=1)
    tree = tmp_path / "service"
    (tree / "app").mkdir(parents=True)
    (tree / "app" / "clean.py").write_text("def handler() -> int:\n    return 1\n")
    run(bin_dir / "outbox-guardrails", "check", "--enforce", tree)

    (tree / "app" / "payments.py").write_text("import psycopg\n")
    result = run(bin_dir / "outbox-guardrails", "check", "--enforce", tree, expect=1)

    assert "OBX001" in result.stdout


def test_outbox_evidence_alone_generates_a_bundle(
    dist: Path, tmp_path: Path, outbox_empty_database: str
) -> None:
    """`pip install outbox-evidence`: generate a bundle of a migrated database; verify reads it.

    Without outbox-guardrails (nor pglast): without their report, its two parts say MISSING.
    """
    bin_dir = install_alone("outbox-evidence", dist, tmp_path)
    for module in ("outbox_guardrails", "pglast"):
        run(bin_dir / "python", "-c", f"import {module}", expect=1)
    run(bin_dir / "python", "-c", MIGRATE, outbox_empty_database)  # auditors need no outbox-db[cli]
    bundle = tmp_path / "bundle"

    result = run(
        *(bin_dir / "outbox-evidence", "generate", "--url", outbox_empty_database, "--out", bundle),
        *("--guardrails-json", tmp_path / "not-written.json"),
        expect=1,  # no JUnit XML nor guardrails report: those parts say MISSING, the rest is there
        cwd=ROOT,
    )

    assert "05_test_results.txt: MISSING" in result.stderr
    assert "07_guardrails.txt: MISSING" in result.stderr
    assert "symphony_executor" in (bundle / "01_grants.txt").read_text(encoding="utf-8")
    assert "verdict: PASS" in (bundle / "08_regression.txt").read_text(encoding="utf-8")
    assert (bundle / "SHA256SUMS").is_file()


@contextlib.contextmanager
def started(*args: str | Path, env: dict[str, str]) -> Iterator[str]:
    """Run `args` in the background for the block: yields its first line; SIGTERM at the end."""
    popen = subprocess.Popen(
        [str(arg) for arg in args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        yield popen.stdout.readline().strip() if popen.stdout else ""
    finally:
        popen.send_signal(signal.SIGTERM)
        popen.communicate(timeout=30)


def _wait_until_drained(url: str) -> None:
    """Poll until nothing is pending and 20 terminal attempts are in; fail on the deadline."""
    drained = wait_for(lambda: query_no_role(url, PENDING) == [(0,)], DRAIN_SECONDS, interval=0.2)
    assert drained, f"not drained within {DRAIN_SECONDS:g} s"
