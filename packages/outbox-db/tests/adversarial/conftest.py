"""The adversarial suite's arena: a seeded database, an attacker's login, the state to compare.

Reuses the DB-backed fixtures of outbox_db.testonly.pytest_plugin (the server, the migrated
template, a clone per test, application logins granted one role). An arena is a clone seeded
with an item in every state an attacker might aim at, and a login granted only the attacking
actor's role; every attempt runs as that login after SET ROLE, as outbox-db does. A module
shares one arena per role for attempts that must change nothing (each attempt still compares
the state before and after itself); an attempt that writes, or a destructive owner attempt,
gets a fresh clone (`fresh_arena`).
"""

from __future__ import annotations

import contextlib
import itertools
import os
from typing import TYPE_CHECKING, Any, Final, LiteralString, TypeAlias

import attrs
import psycopg
import pytest
from psycopg import sql

from outbox_db import AttemptState, OutboxDatabaseError, OutboxStore, Outcome, Role, testonly
from outbox_db.errors import translate
from outbox_db.testonly import expire_lease, query_as, query_no_role
from outbox_db.testonly.factories import leased_item, make_request
from outbox_db.testonly.pytest_plugin import Database, application_login

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping, Sequence
    from uuid import UUID

    from outbox_db import ClaimedItem
    from outbox_db.testonly.pytest_plugin import Server

    Params: TypeAlias = Sequence[object] | Mapping[str, object] | None

OWNER: Final = "outbox_owner"
Row = tuple[Any, ...]
_arenas = itertools.count(1)

# Every row of every outbox table, with the transaction that last wrote it: a write that
# leaves the same values still shows up. Wider than testonly.outbox_rows: the key registry
# and the rail ordering history are what a squatter or a careless operator would change.
STATE: Final[LiteralString] = """
SELECT r.tbl, r.xmin::text, r.row_json FROM (
    SELECT 'participant_outbox_sequences' AS tbl, s.xmin, to_jsonb(s)::text AS row_json
    FROM public.participant_outbox_sequences AS s
    UNION ALL SELECT 'payment_outbox_pending', p.xmin, to_jsonb(p)::text
    FROM public.payment_outbox_pending AS p
    UNION ALL SELECT 'payment_outbox_attempts', a.xmin, to_jsonb(a)::text
    FROM public.payment_outbox_attempts AS a
    UNION ALL SELECT 'payment_outbox_settings', st.xmin, to_jsonb(st)::text
    FROM public.payment_outbox_settings AS st
    UNION ALL SELECT 'outbox_operator_log', l.xmin, to_jsonb(l)::text
    FROM public.outbox_operator_log AS l
    UNION ALL SELECT 'outbox_idempotency_keys', k.xmin, to_jsonb(k)::text
    FROM public.outbox_idempotency_keys AS k
    UNION ALL SELECT 'outbox_rail_ordering', o.xmin, to_jsonb(o)::text
    FROM public.outbox_rail_ordering AS o
) AS r
ORDER BY 1, 3, 2
"""
WAIT_SECONDS: Final = 10.0

# The internals of the outbox functions, each a way round a check if a caller could reach it:
# any item's payload by its id, the replay without the service-key check, the checks
# themselves, the ordered lanes' trigger functions. Only the owner executes them; a test that
# takes `internal_call` runs once per entry (the boundary table has the others).
INTERNAL_CALLS: Final[dict[str, LiteralString]] = {
    "outbox_item_of_key": "SELECT * FROM public.outbox_item_of_key(pg_catalog.gen_random_uuid())",
    "outbox_replay": "SELECT * FROM public.outbox_replay('ins', 'participant-a', 'key', 'rtp', '{}')",
    "outbox_require_payload": "SELECT public.outbox_require_payload('{}')",
    "outbox_require_service_key": "SELECT public.outbox_require_service_key('outbox:redrive:x')",
    "outbox_recheck_waiting_item": "SELECT public.outbox_recheck_waiting_item()",
    "outbox_release_lane_successor": "SELECT public.outbox_release_lane_successor()",
}


# What any login may create (PUBLIC holds TEMP on the database): always-true equalities for
# the types the functions compare, first on the session's search_path. Were a function to
# resolve names through the caller's path, a changed payload, a wrong token or a stranger's
# worker id would compare equal.
PG_TEMP_PLANTS: Final[tuple[LiteralString, ...]] = (
    "CREATE FUNCTION pg_temp.always_equal(text, text) RETURNS boolean LANGUAGE sql AS 'SELECT true'",
    "CREATE OPERATOR pg_temp.= (LEFTARG = text, RIGHTARG = text, FUNCTION = pg_temp.always_equal)",
    "CREATE FUNCTION pg_temp.always_equal(uuid, uuid) RETURNS boolean LANGUAGE sql AS 'SELECT true'",
    "CREATE OPERATOR pg_temp.= (LEFTARG = uuid, RIGHTARG = uuid, FUNCTION = pg_temp.always_equal)",
    "CREATE FUNCTION pg_temp.always_equal(jsonb, jsonb) RETURNS boolean LANGUAGE sql AS 'SELECT true'",
    "CREATE OPERATOR pg_temp.= (LEFTARG = jsonb, RIGHTARG = jsonb, FUNCTION = pg_temp.always_equal)",
)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run a test that takes `internal_call` once per internal function."""
    if "internal_call" in metafunc.fixturenames:
        metafunc.parametrize(
            "internal_call", list(INTERNAL_CALLS.values()), ids=list(INTERNAL_CALLS)
        )


@attrs.frozen
class Seeded:
    """The seeded items: one per state an attack aims at (participant-a's, on rail rtp)."""

    dispatched: ClaimedItem  # DISPATCHED: its pending row is gone
    failed: ClaimedItem  # FAILED by the rail: what an operator may re-drive
    expired: ClaimedItem  # leased by worker-expired, its lease in the past, not repaired
    held: ClaimedItem  # leased by worker-held for ten minutes
    due: UUID  # enqueued, unleased, due now


def seed(url: str) -> Seeded:
    """One item in each state; the due one last, so each claim takes the item just enqueued."""
    with OutboxStore.connect(url, role=Role.EXECUTOR, max_size=1) as store:
        dispatched = leased_item(store, "worker-done")
        store.complete(
            "worker-done", Outcome(lease=dispatched.lease, state=AttemptState.DISPATCHED)
        )
        failed = leased_item(store, "worker-done")
        store.complete(
            "worker-done",
            Outcome(lease=failed.lease, state=AttemptState.FAILED, rail_code="422"),
        )
        expired = leased_item(store, "worker-expired")
        expire_lease(url, expired.outbox_id)
        held = leased_item(store, "worker-held", lease_seconds=600)
        due = store.enqueue(make_request()).outbox_id
    return Seeded(dispatched=dispatched, failed=failed, expired=expired, held=held, due=due)


@attrs.frozen
class Arena:
    """A seeded database and the attacker: a login granted `role` only, or the owner."""

    database: Database
    seeded: Seeded
    role: str  # the group role every attempt runs under (SET LOCAL ROLE)
    url: str  # the attacker's login (the owner's arena: the test superuser, acting as owner)
    login: str  # its session_user: what the database records as "who"

    def attempt(self, statement: LiteralString, params: Params = None) -> list[Row]:
        """Run `statement` as the attacker, in a transaction of its own; rows if any."""
        return query_as(self.url, self.role, statement, params)

    def script(self, *steps: tuple[LiteralString, Params]) -> list[Row]:
        """Run several statements as the attacker in one transaction; the last one's rows."""
        try:
            with psycopg.connect(self.url, autocommit=True) as connection, connection.transaction():
                connection.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(self.role)))
                cursor = connection.cursor()
                for statement, params in steps:
                    cursor.execute(statement, params)
                return cursor.fetchall() if cursor.description else []
        except psycopg.Error as error:
            raise translate(error) from error

    def state(self) -> list[Row]:
        """Every row of every outbox table, read as the schema's owner."""
        return query_no_role(self.database.url, STATE)

    def as_owner(self, statement: LiteralString, params: Params = None) -> list[Row]:
        """Run `statement` as the test's superuser: to look, or to set the scene."""
        return query_no_role(self.database.url, statement, params)

    def refused(
        self, statement: LiteralString, sqlstate: str, params: Params = None
    ) -> OutboxDatabaseError:
        """The attempt fails with exactly `sqlstate`, and no outbox row changes."""
        return self.script_refused(sqlstate, (statement, params))

    def script_refused(
        self, sqlstate: str, *steps: tuple[LiteralString, Params]
    ) -> OutboxDatabaseError:
        """The script fails with exactly `sqlstate`, and no outbox row changes."""
        before = self.state()
        with pytest.raises(OutboxDatabaseError) as refusal:
            self.script(*steps)
        assert refusal.value.sqlstate == sqlstate, str(refusal.value)
        assert self.state() == before
        return refusal.value

    def ignored(self, statement: LiteralString, params: Params = None) -> list[Row]:
        """The attempt runs without an error and changes no outbox row; its rows."""
        before = self.state()
        rows = self.attempt(statement, params)
        assert self.state() == before
        return rows

    def store(self) -> contextlib.AbstractContextManager[OutboxStore]:
        """A store on the attacker's login, acting as the attacker's role."""
        return OutboxStore.connect(self.url, role=Role(self.role), max_size=2)


class Arenas:
    """Makes arenas: shared ones (one per role, for the module) and fresh ones (per test)."""

    def __init__(self, server: Server, template: str, stack: contextlib.ExitStack) -> None:
        self._server, self._template, self._stack = server, template, stack
        self._shared: dict[str, Arena] = {}

    def shared(self, role: Role | str) -> Arena:
        """The module's arena for `role`, made on first use."""
        key = str(role)
        if key not in self._shared:
            name = f"outbox_adversarial_{os.getpid()}_{next(_arenas)}"
            self._stack.enter_context(self._server.janitor(name, template_dbname=self._template))
            database = Database(name=name, url=self._server.database_url(name))
            self._shared[key] = enter_arena(self._stack, database, role)
        return self._shared[key]


def enter_arena(stack: contextlib.ExitStack, database: Database, role: Role | str) -> Arena:
    """Seed `database` and give the attacker its login (the owner acts from the superuser)."""
    seeded = seed(database.url)
    if role == OWNER:
        return Arena(database, seeded, OWNER, database.url, login=OWNER)
    login = stack.enter_context(application_login(database, Role(role)))
    return Arena(database, seeded, str(role), login.url, login=login.name)


@pytest.fixture(scope="module")
def arenas(outbox_server: Server, outbox_template: str) -> Iterator[Arenas]:
    """The module's shared arenas, dropped after the module."""
    with contextlib.ExitStack() as stack:
        yield Arenas(outbox_server, outbox_template, stack)


@pytest.fixture
def fresh_arena(outbox_database: Database) -> Iterator[Callable[[Role | str], Arena]]:
    """An arena on this test's own clone, for attempts that write or destroy."""
    with contextlib.ExitStack() as stack:
        yield lambda role: enter_arena(stack, outbox_database, role)


@pytest.fixture
def planted_pg_temp() -> list[tuple[LiteralString, Params]]:
    """Script steps planting always-true equalities in pg_temp, put first on the search_path."""
    plants: list[tuple[LiteralString, Params]] = [(plant, None) for plant in PG_TEMP_PLANTS]
    return [*plants, ("SET LOCAL search_path = pg_temp, pg_catalog, public", None)]


@pytest.fixture
def wait_for_lock_waiters(outbox_database: Database) -> Callable[[int], None]:
    """Block until `count` sessions of this test's database wait for a lock (a race is set)."""

    def wait(count: int) -> None:
        waiting = testonly.wait_for_lock_waiters(outbox_database.url, count, WAIT_SECONDS)
        assert waiting, f"no {count} session(s) waiting for a lock"

    return wait
