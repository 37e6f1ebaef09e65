"""Proof: each outbox role gets exactly its SQLSTATE for everything it might try.

The attempts and their SQLSTATEs are a table, executor_boundary.toml next to this file, which
the evidence bundle lists too (13_executor_boundary.txt): direct DML and TRUNCATE on every
table, ALTER and DROP of the schema's objects, creating objects in schema public or a schema
of its own, switching to the owner or another role, calling each outbox function and the
internal helpers, replacing a function or unpinning its search_path, shadowing the tables
with temporary ones, and creating large objects before and after `outbox-db harden`. Each
runs once per role (producer, executor, readonly, auditor, operator) as an application would:
a login role granted only that role, its own session (so SET ROLE is judged against it, not
the test's superuser), after SET ROLE to it as outbox-db does. A refusal must carry exactly
the table's SQLSTATE and change no row; an attempt that runs (00000) must make the table's
check true, or, without a check, change no row.
"""

from __future__ import annotations

import contextlib
import os
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Final, LiteralString, cast

import attrs
import pytest

from outbox_db import AttemptState, OutboxDatabaseError, OutboxStore, Outcome, Role
from outbox_db.harden import harden
from outbox_db.testonly import expire_lease, outbox_rows, query_as, query_no_role
from outbox_db.testonly.factories import leased_item, make_request
from outbox_db.testonly.pytest_plugin import Database, application_login

if TYPE_CHECKING:
    from collections.abc import Iterator

    from outbox_db.testonly.pytest_plugin import Application, Server

TABLE: Final = tomllib.loads(
    (Path(__file__).parent / "executor_boundary.toml").read_text(encoding="utf-8")
)
ATTEMPTS: Final[list[dict[str, object]]] = TABLE["attempt"]
ROLES: Final = {role.name.lower(): role for role in Role}
NO_ERROR: Final = "00000"


def expected(attempt: dict[str, object], role: str) -> str:
    """The SQLSTATE the table expects for `role`: its by_role entry, else the attempt's."""
    by_role = attempt.get("by_role", {})
    assert isinstance(by_role, dict)
    return str(by_role.get(role, attempt["sqlstate"]))


CASES: Final = [
    pytest.param(attempt, role, id=f"{role}-{attempt['id']}")
    for attempt in ATTEMPTS
    for role in ROLES
]


def seed(url: str) -> list[tuple[object, ...]]:
    """A completed item, an expired lease and a due item; the rows as they stand."""
    with OutboxStore.connect(url, role=Role.EXECUTOR, max_size=1) as store:
        done = leased_item(store)
        store.complete("worker-1", Outcome(lease=done.lease, state=AttemptState.DISPATCHED))
        store.enqueue(make_request())
        (expired,) = store.claim("worker-1", batch_size=1, lease_seconds=30)
        expire_lease(url, expired.outbox_id)
        store.enqueue(make_request())
    return outbox_rows(url, versions=True)


@attrs.frozen
class Seeded:
    """A seeded database, its rows as seeded, and a login granted only one role."""

    database: Database
    rows: list[tuple[object, ...]]
    application: Application


class SeededPerRole:
    """One seeded database and login per role, made on first use, for the whole module.

    Only attempts that must change nothing run here (each case still checks that it did
    not); an attempt that writes, or needs the hardening, gets a database of its own.
    """

    def __init__(self, server: Server, template: str, stack: contextlib.ExitStack) -> None:
        self._server, self._template, self._stack = server, template, stack
        self._seeded: dict[Role, Seeded] = {}

    def __call__(self, role: Role) -> Seeded:
        """The role's seeded database and login, made now if this is the first use."""
        if role not in self._seeded:
            name = f"outbox_boundary_{os.getpid()}_{role.name.lower()}"
            self._stack.enter_context(self._server.janitor(name, template_dbname=self._template))
            database = Database(name=name, url=self._server.database_url(name))
            rows = seed(database.url)
            login = self._stack.enter_context(application_login(database, role))
            self._seeded[role] = Seeded(database=database, rows=rows, application=login)
        return self._seeded[role]


@pytest.fixture(scope="module")
def seeded_per_role(outbox_server: Server, outbox_template: str) -> Iterator[SeededPerRole]:
    """Seeded databases shared by the attempts that change nothing, dropped after the module."""
    with contextlib.ExitStack() as stack:
        yield SeededPerRole(outbox_server, outbox_template, stack)


def test_the_table_names_each_attempt_once_with_a_sqlstate_per_role() -> None:
    """Unique ids, five-character SQLSTATEs for known roles, a statement; checks only for runs."""
    ids = [attempt["id"] for attempt in ATTEMPTS]
    assert len(ids) == len(set(ids))
    for attempt in ATTEMPTS:
        by_role = attempt.get("by_role", {})
        assert isinstance(by_role, dict)
        assert set(by_role) <= set(ROLES)
        states = {expected(attempt, role) for role in ROLES}
        assert all(len(state) == 5 for state in states)
        assert str(attempt["sql"]).strip()
        if "check" in attempt:
            assert NO_ERROR in states


def test_every_role_is_in_the_table() -> None:
    """The table covers every role a store can act as, the producer among them."""
    assert set(ROLES) == {"producer", "executor", "readonly", "auditor", "operator"}


def changes_the_database(attempt: dict[str, object], role: str) -> bool:
    """Whether the attempt, as `role`, writes (its check) or hardens: then it gets its own."""
    runs_and_writes = expected(attempt, role) == NO_ERROR and "check" in attempt
    return runs_and_writes or attempt.get("harden") is True


@pytest.mark.parametrize(("attempt", "role"), CASES)
def test_role_attempt_gets_its_sqlstate(
    request: pytest.FixtureRequest,
    seeded_per_role: SeededPerRole,
    attempt: dict[str, object],
    role: str,
) -> None:
    """The attempt, as the role's login, gets exactly its SQLSTATE; a refusal changes nothing."""
    # The table is committed and reviewed like code: literal by construction.
    statement = cast("LiteralString", str(attempt["sql"]))  # type: ignore[redundant-cast]
    sqlstate = expected(attempt, role)
    with contextlib.ExitStack() as stack:
        if changes_the_database(attempt, role):
            database: Database = request.getfixturevalue("outbox_database")
            rows = seed(database.url)
            if attempt.get("harden") is True:
                assert harden(database.url).applied
            application = stack.enter_context(application_login(database, ROLES[role]))
        else:
            shared = seeded_per_role(ROLES[role])
            database, rows, application = shared.database, shared.rows, shared.application

        if sqlstate == NO_ERROR:
            query_as(application.url, application.role, statement)
        else:
            with pytest.raises(OutboxDatabaseError) as refused:
                query_as(application.url, application.role, statement)
            assert refused.value.sqlstate == sqlstate

        if sqlstate == NO_ERROR and "check" in attempt:
            check = cast("LiteralString", str(attempt["check"]))  # type: ignore[redundant-cast]
            assert query_no_role(database.url, check) == [(True,)]
        else:
            assert outbox_rows(database.url, versions=True) == rows
