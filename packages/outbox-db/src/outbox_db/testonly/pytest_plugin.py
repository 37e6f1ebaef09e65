"""Pytest fixtures for DB-backed proofs: one server, one migrated template, a clone per test.

The server comes from DATABASE_URL, or is an embedded throwaway one started for the session.
The schema is migrated once into a template database; each test gets its own database
cloned from it (pytest-postgresql's janitor does the cloning). With --outbox-require-db, a
run in which no DB-backed test passed fails instead of going green on nothing.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import os
import secrets
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Final, LiteralString

import attrs
import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from pytest_postgresql.janitor import DatabaseJanitor

from outbox_db import embedded
from outbox_db.errors import EmbeddedServerError, OutboxError
from outbox_db.migrate import migrate
from outbox_db.records import Role
from outbox_db.store import OutboxStore
from outbox_db.testonly._access import query_no_role, run_sql_file
from outbox_db.testonly.pgbouncer import PgBouncer, pgbouncer

if TYPE_CHECKING:
    from collections.abc import Callable, Generator, Iterator

# A test that uses either of these is DB-backed (counted by --outbox-require-db).
# Proof controls: a sabotage migration applied to the template, so the proofs must fail.
SABOTAGE_ENV: Final = "OUTBOX_SABOTAGE"
DB_FIXTURES: Final = frozenset({"outbox_database", "outbox_shared_database"})
_passed_db_tests = pytest.StashKey[int]()
_names = itertools.count(1)


@attrs.frozen
class Server:
    """A PostgreSQL server the tests may create databases on."""

    url: str

    def janitor(self, dbname: str, **options: object) -> DatabaseJanitor:
        """pytest-postgresql's janitor for `dbname` on this server."""
        parts = conninfo_to_dict(self.url)
        return DatabaseJanitor(
            user=str(parts.get("user") or "postgres"),
            host=str(parts.get("host") or "localhost"),
            port=str(parts.get("port") or "5432"),
            password=str(parts["password"]) if parts.get("password") else None,
            dbname=dbname,
            maintenance_dbname=str(parts.get("dbname") or "postgres"),
            **options,  # type: ignore[arg-type]
        )

    def database_url(self, dbname: str) -> str:
        """The URL of another database on this server."""
        return make_conninfo(self.url, dbname=dbname)


@attrs.frozen
class Database:
    """A freshly cloned, migrated database that belongs to one test."""

    name: str
    url: str


def pytest_addoption(parser: pytest.Parser) -> None:
    """Register --outbox-require-db."""
    parser.addoption(
        "--outbox-require-db",
        action="store_true",
        help="fail the run when no DB-backed test passed (the integration session sets it)",
    )


def pytest_configure(config: pytest.Config) -> None:
    """Start counting passed DB-backed tests."""
    config.stash[_passed_db_tests] = 0


@attrs.frozen
class Sabotage:
    """A proof control's sabotage file: what it removes and which proofs must then fail."""

    path: Path
    invariant: str
    proofs: tuple[str, ...]  # pytest node ids or prefixes, relative to the repository root

    @classmethod
    def read(cls, path: Path) -> Sabotage:
        """Parse the `-- invariant:` and `-- proofs:` header lines."""
        fields = [
            line.removeprefix("-- ").partition(": ")
            for line in path.read_text(encoding="utf-8").splitlines()
            if line.startswith(("-- invariant: ", "-- proofs: "))
        ]
        invariant = next((value for key, _, value in fields if key == "invariant"), "")
        proofs = tuple(value for key, _, value in fields if key == "proofs")
        if not invariant or not proofs:
            msg = f"{path}: a sabotage names its invariant and at least one proof"
            raise pytest.UsageError(msg)
        return cls(path=path, invariant=invariant, proofs=proofs)


@functools.cache
def _sabotage_in_force() -> Sabotage | None:
    path = os.environ.get(SABOTAGE_ENV)
    return Sabotage.read(Path(path)) if path else None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under a sabotage, run only the proofs it names (the rest would prove nothing here)."""
    sabotage = _sabotage_in_force()
    if sabotage is None:
        return
    root = config.rootpath
    kept: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    for item in items:
        node_id = "::".join([item.path.relative_to(root).as_posix(), *item.nodeid.split("::")[1:]])
        named = any(
            node_id == p or node_id.startswith((f"{p}::", f"{p}[")) for p in sabotage.proofs
        )
        (kept if named else dropped).append(item)
    config.hook.pytest_deselected(items=dropped)
    items[:] = kept


@pytest.fixture(scope="session", autouse=True)
def _sabotage_properties(record_testsuite_property: Callable[[str, object], None]) -> None:
    """Name the sabotage and its invariant in the JUnit XML, for the evidence bundle."""
    if sabotage := _sabotage_in_force():
        record_testsuite_property("sabotage", sabotage.path.stem)
        record_testsuite_property("invariant", sabotage.invariant)


def pytest_report_header(config: pytest.Config) -> str:  # noqa: ARG001 - hook signature
    """Name the PostgreSQL the proofs run on, with its version."""
    url = os.environ.get("DATABASE_URL")
    if url:
        with psycopg.connect(url) as connection:
            version = connection.execute("SHOW server_version").fetchone()
        return f"outbox: PostgreSQL {version[0] if version else '?'} from DATABASE_URL"
    try:
        postgres = embedded.find_bindir() / "postgres"
    except EmbeddedServerError as missing:
        return f"outbox: {missing}"
    version_text = subprocess.run(  # noqa: S603 - the server binary's own --version
        [str(postgres), "--version"], capture_output=True, text=True, check=False
    ).stdout.strip()
    return f"outbox: embedded {version_text} (DATABASE_URL unset)"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Count each DB-backed test whose call phase passed."""
    report: pytest.TestReport = yield
    if (
        call.when == "call"
        and report.passed
        and DB_FIXTURES & set(getattr(item, "fixturenames", ()))
    ):
        item.config.stash[_passed_db_tests] += 1
    return report


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail a --outbox-require-db run in which no DB-backed test passed."""
    passed = session.config.stash[_passed_db_tests]
    if session.config.getoption("--outbox-require-db") and passed == 0 and exitstatus == 0:
        session.config.get_terminal_writer().line(
            "outbox: no DB-backed test passed; a DB-backed run must prove something", red=True
        )
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(scope="session")
def outbox_server() -> Iterator[Server]:
    """DATABASE_URL's server, or an embedded one (fsync off: tests need speed, not durability)."""
    if url := os.environ.get("DATABASE_URL"):
        yield Server(url=url)
        return
    with embedded.embedded_server(durable=False) as server:
        yield Server(url=server.url)


def migrate_as_proven(url: str, role_prefix: str | None = None) -> None:
    """Migrate `url` to the shipped schema, then apply the sabotage in force, if any.

    For a proof that needs a database of its own making (another locale, roles of its own):
    under `nox -s proof_controls` it must meet the sabotaged schema like every other proof.
    """
    migrate(url, role_prefix=role_prefix)
    if sabotage := _sabotage_in_force():
        try:
            run_sql_file(url, sabotage.path)
        except OutboxError as error:
            # Its proofs would all error in setup and read as failed: a control that
            # controls nothing. Stop the run instead, so the control reports no failed proof.
            pytest.exit(f"{sabotage.path.name} could not be applied: {error}", returncode=3)


@pytest.fixture(scope="session")
def outbox_template(outbox_server: Server) -> Iterator[str]:
    """A database migrated once to the shipped schema, marked as a template for clones."""
    name = f"outbox_template_{os.getpid()}"
    janitor = outbox_server.janitor(name, as_template=True)
    janitor.drop()
    with janitor:
        migrate_as_proven(outbox_server.database_url(name))
        yield name


@pytest.fixture
def outbox_database(outbox_server: Server, outbox_template: str) -> Iterator[Database]:
    """This test's own migrated database, cloned from the template and dropped afterwards."""
    name = f"outbox_test_{os.getpid()}_{next(_names)}"
    with outbox_server.janitor(name, template_dbname=outbox_template):
        yield Database(name=name, url=outbox_server.database_url(name))


@pytest.fixture
def outbox_empty_database(outbox_server: Server) -> Iterator[str]:
    """The URL of an empty database on the test server (no schema), dropped afterwards."""
    name = f"outbox_empty_{os.getpid()}_{next(_names)}"
    with outbox_server.janitor(name):
        yield outbox_server.database_url(name)


# The DISPATCHING era's schema and rows, committed; relative to the repository root.
LEGACY_SQL: Final = "packages/outbox-db/tests/fixtures/legacy_dispatching_era.sql"


@pytest.fixture
def outbox_legacy_database(outbox_empty_database: str, pytestconfig: pytest.Config) -> str:
    """A database holding the committed DISPATCHING-era schema and rows, not migrated."""
    run_sql_file(outbox_empty_database, pytestconfig.rootpath / LEGACY_SQL)
    return outbox_empty_database


@pytest.fixture
def outbox_migrated_legacy_database(outbox_legacy_database: str) -> str:
    """The DISPATCHING-era database migrated to the shipped schema: its DISPATCHING rows stay."""
    migrate(outbox_legacy_database)
    return outbox_legacy_database


@pytest.fixture(scope="session")
def outbox_shared_database(outbox_server: Server) -> Database:
    """The server's own database (DATABASE_URL's), migrated; what a test leaves there stays.

    Tests using it must scope their assertions to the rows they created (unique ids per run).
    """
    migrate(outbox_server.url)
    name = str(conninfo_to_dict(outbox_server.url).get("dbname") or "postgres")
    return Database(name=name, url=outbox_server.url)


@pytest.fixture(scope="session")
def outbox_pgbouncer(outbox_server: Server) -> Iterator[PgBouncer]:
    """A real PgBouncer in transaction mode in front of the test server (`url(database)`)."""
    with pgbouncer(outbox_server.url) as bouncer:
        yield bouncer


@pytest.fixture
def outbox_store(outbox_database: Database) -> Iterator[OutboxStore]:
    """A store acting as symphony_executor on this test's database."""
    with OutboxStore.connect(outbox_database.url, role=Role.EXECUTOR, max_size=8) as store:
        yield store


@pytest.fixture
def outbox_operator(outbox_database: Database) -> Iterator[OutboxStore]:
    """A store acting as symphony_operator on this test's database, for up to 16 callers."""
    with OutboxStore.connect(
        outbox_database.url, role=Role.OPERATOR, min_size=1, max_size=16
    ) as store:
        yield store


# The login role's name, password and group role reach the DO block as session settings, so
# the SQL stays literal; roles are cluster-wide, so each test makes and drops its own.
CREATE_APPLICATION: Final = """
DO $proof$
BEGIN
    EXECUTE pg_catalog.format(
        'CREATE ROLE %I LOGIN PASSWORD %L IN ROLE %I',
        pg_catalog.current_setting('outbox_proof.role'),
        pg_catalog.current_setting('outbox_proof.password'),
        pg_catalog.current_setting('outbox_proof.member_of')
    );
END
$proof$
"""
DROP_APPLICATION: Final = """
DO $proof$
BEGIN
    EXECUTE pg_catalog.format('DROP OWNED BY %I', pg_catalog.current_setting('outbox_proof.role'));
    EXECUTE pg_catalog.format('DROP ROLE %I', pg_catalog.current_setting('outbox_proof.role'));
END
$proof$
"""


@attrs.frozen
class Application:
    """An application's login role, granted one outbox role (`role`) and nothing else."""

    name: str
    password: str
    url: str  # this test's database, as this login, the password in the URL
    role: Role = Role.EXECUTOR


@contextlib.contextmanager
def application_login(database: Database, role: Role) -> Iterator[Application]:
    """A login role with a password, a member of `role` only, dropped afterwards."""
    name, password = f"outbox_app_{secrets.token_hex(8)}", secrets.token_hex(16)
    settings = (
        f"-c outbox_proof.role={name} -c outbox_proof.password={password}"
        f" -c outbox_proof.member_of={role.value}"
    )
    owner = make_conninfo(database.url, options=settings)
    query_no_role(owner, CREATE_APPLICATION)
    try:
        url = make_conninfo(database.url, user=name, password=password)
        yield Application(name=name, password=password, url=url, role=role)
    finally:
        query_no_role(owner, DROP_APPLICATION)


@pytest.fixture
def outbox_application(outbox_database: Database) -> Iterator[Application]:
    """A login role with a password, a member of symphony_executor only, for this test."""
    with application_login(outbox_database, Role.EXECUTOR) as application:
        yield application


# The role's name reaches the DO block as the session setting outbox_proof.role.
DROP_THROWAWAY: Final = """
DO $proof$
DECLARE
    throwaway text := pg_catalog.current_setting('outbox_proof.role');
BEGIN
    IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) throwaway)
    THEN
        EXECUTE pg_catalog.format('DROP OWNED BY %I', throwaway);
        EXECUTE pg_catalog.format('DROP ROLE %I', throwaway);
    END IF;
END
$proof$
"""


@attrs.frozen
class ThrowawayRole:
    """A role (no login) that exists for one test: its name, and the owner's session naming it."""

    name: str
    url: str  # the owner's session on the test's database, outbox_proof.role naming this role


@contextlib.contextmanager
def throwaway_role(database: Database, create: LiteralString) -> Iterator[ThrowawayRole]:
    """Create a uniquely named role with `create`; drop it and all it owns afterwards.

    `create` reads the role's name from the session setting outbox_proof.role, so it stays a
    literal; roles are cluster-wide, hence the unique name.
    """
    name = f"outbox_proof_{secrets.token_hex(16)}"
    role = ThrowawayRole(
        name=name, url=make_conninfo(database.url, options=f"-c outbox_proof.role={name}")
    )
    query_no_role(role.url, create)
    try:
        yield role
    finally:
        query_no_role(role.url, DROP_THROWAWAY)
