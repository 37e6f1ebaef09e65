"""Proofs: the server's timeouts reach callers as DatabaseTimeout, and nothing of them is kept.

statement_timeout (57014), lock_timeout (55P03) and idle_in_transaction_session_timeout
(25P03) end the transaction; a relayer retries a DatabaseUnavailable, so the timeouts are
one (a DatabaseTimeout), never an unknown error that would stop it. The queue is locked from
a session of its own (`queue_locked`), so the claim and the completion truly wait.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from outbox_db import AttemptState, DatabaseTimeout, DatabaseUnavailable, OutboxStore, Outcome
from outbox_db.errors import translate
from outbox_db.testonly import queue_locked
from outbox_db.testonly.factories import leased_item, make_request

if TYPE_CHECKING:
    from outbox_db.testonly.pytest_plugin import Database


def store_with(database: Database, setting: str) -> OutboxStore:
    """A store whose every session runs with `setting` (libpq options, as a deployment would)."""
    return OutboxStore.connect(make_conninfo(database.url, options=f"-c {setting}"))


@pytest.mark.parametrize(
    ("setting", "sqlstate"),
    [("statement_timeout=200", "57014"), ("lock_timeout=200", "55P03")],
    ids=["statement_timeout", "lock_timeout"],
)
def test_a_claim_that_times_out_claims_nothing(
    outbox_database: Database, setting: str, sqlstate: str
) -> None:
    """The claim waits for the locked queue, times out: DatabaseTimeout, the item still due."""
    with store_with(outbox_database, setting) as store:
        created = store.enqueue(make_request())
        with queue_locked(outbox_database.url), pytest.raises(DatabaseTimeout) as timed_out:
            store.claim("worker-1", batch_size=10, lease_seconds=30)

        assert timed_out.value.sqlstate == sqlstate
        assert isinstance(timed_out.value, DatabaseUnavailable)  # what a relayer retries
        (item,) = store.claim("worker-1", batch_size=10, lease_seconds=30)
        assert item.outbox_id == created.outbox_id
        assert item.attempt_count == 0


@pytest.mark.parametrize(
    ("setting", "sqlstate"),
    [("statement_timeout=200", "57014"), ("lock_timeout=200", "55P03")],
    ids=["statement_timeout", "lock_timeout"],
)
def test_a_completion_that_times_out_records_nothing_and_keeps_the_lease(
    outbox_database: Database, setting: str, sqlstate: str
) -> None:
    """The completion times out; the lease is still held, and the retried completion is the one."""
    with store_with(outbox_database, setting) as store:
        item = leased_item(store)
        outcome = Outcome(lease=item.lease, state=AttemptState.DISPATCHED, rail_reference="r-1")
        with queue_locked(outbox_database.url), pytest.raises(DatabaseTimeout) as timed_out:
            store.complete_batch("worker-1", [outcome])

        assert timed_out.value.sqlstate == sqlstate
        (result,) = store.complete_batch("worker-1", [outcome])
        assert (result.lease_held, result.attempt_no, result.state) == (
            True,
            1,
            AttemptState.DISPATCHED,
        )


def test_a_session_ended_idle_in_a_transaction_is_a_database_timeout(
    outbox_database: Database,
) -> None:
    """25P03 ends the session; the next statement's error translates to DatabaseTimeout."""
    url = make_conninfo(outbox_database.url, options="-c idle_in_transaction_session_timeout=100")
    with psycopg.connect(url) as connection:
        connection.execute("SELECT 1")
        time.sleep(1.0)  # idle inside the transaction, well past the timeout
        with pytest.raises(psycopg.Error) as ended:
            connection.execute("SELECT 1")

    translated = translate(ended.value)
    assert (type(translated), translated.sqlstate) == (DatabaseTimeout, "25P03")
