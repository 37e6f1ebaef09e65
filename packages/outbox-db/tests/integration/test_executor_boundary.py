"""Proof: symphony_executor is refused everything outside its grants, with the exact SQLSTATE.

The attempts and their SQLSTATEs are a table, executor_boundary.toml next to this file, which
the evidence bundle lists too (13_executor_boundary.txt): direct DML and TRUNCATE on every
table, ALTER and DROP of the schema's objects, creating objects in schema public or a schema
of its own, switching to the owner or another role, calling the internal helper functions,
replacing a function or unpinning its search_path, and shadowing the tables with temporary
ones. Each runs as an application would: a login role granted only symphony_executor, its
own session (so SET ROLE is judged against it, not the test's superuser), after SET ROLE
symphony_executor as outbox-db does. A refusal must carry exactly the table's SQLSTATE and
change no row; an attempt the table marks 00000 must leave the table's check true (the
outbox functions used the real tables).
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Final

import pytest

from outbox_db import AttemptState, OutboxDatabaseError, Outcome, Role
from outbox_db.testonly import expire_lease, outbox_rows, query_as, query_no_role
from outbox_db.testonly.factories import leased_item, make_request

if TYPE_CHECKING:
    from outbox_db import OutboxStore
    from outbox_db.testonly.pytest_plugin import Application, Database

TABLE: Final = tomllib.loads(
    (Path(__file__).parent / "executor_boundary.toml").read_text(encoding="utf-8")
)
ATTEMPTS: Final[list[dict[str, str]]] = TABLE["attempt"]
NO_ERROR: Final = "00000"


@pytest.fixture
def seeded(outbox_database: Database, outbox_store: OutboxStore) -> list[tuple[object, ...]]:
    """A completed item, an expired lease and a due item; the rows as they stand."""
    done = leased_item(outbox_store)
    outbox_store.complete("worker-1", Outcome(lease=done.lease, state=AttemptState.DISPATCHED))
    outbox_store.enqueue(make_request())
    (expired,) = outbox_store.claim("worker-1", batch_size=1, lease_seconds=30)
    expire_lease(outbox_database.url, expired.outbox_id)
    outbox_store.enqueue(make_request())
    return outbox_rows(outbox_database.url, versions=True)


def test_the_table_names_each_attempt_once_with_a_sqlstate() -> None:
    """Every attempt has a unique id, a SQLSTATE of five characters and a statement."""
    ids = [attempt["id"] for attempt in ATTEMPTS]
    assert len(ids) == len(set(ids))
    for attempt in ATTEMPTS:
        assert len(attempt["sqlstate"]) == 5
        assert attempt["sql"].strip()
        assert ("check" in attempt) == (attempt["sqlstate"] == NO_ERROR)


@pytest.mark.parametrize("attempt", ATTEMPTS, ids=[attempt["id"] for attempt in ATTEMPTS])
def test_executor_attempt_is_refused(
    outbox_database: Database,
    seeded: list[tuple[object, ...]],
    outbox_application: Application,
    attempt: dict[str, str],
) -> None:
    """The attempt, as symphony_executor, gets exactly its SQLSTATE and changes nothing."""
    if attempt["sqlstate"] == NO_ERROR:
        query_as(outbox_application.url, Role.EXECUTOR, attempt["sql"])
        assert query_no_role(outbox_database.url, attempt["check"]) == [(True,)]
        return

    with pytest.raises(OutboxDatabaseError) as refused:
        query_as(outbox_application.url, Role.EXECUTOR, attempt["sql"])

    assert refused.value.sqlstate == attempt["sqlstate"]
    assert outbox_rows(outbox_database.url, versions=True) == seeded
