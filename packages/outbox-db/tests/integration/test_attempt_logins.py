"""Proofs: each attempt records the database login that wrote it (schema 0017).

The worker_id is whatever the caller says; the login is what PostgreSQL authenticated. Two
logins recording as one worker are told apart, a lease repair's requeue names the lost
lease's worker and the repairer's login, and readers of either API see it in the ledger and an item's history.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final, LiteralString

from outbox_db import AttemptState, ItemSelector, OutboxStore, Outcome, Role
from outbox_db.testonly import expire_lease, query_no_role
from outbox_db.testonly.factories import make_request
from outbox_db.testonly.pytest_plugin import application_login

if TYPE_CHECKING:
    from outbox_db.testonly.pytest_plugin import Database

WORKER: Final = "worker-1"
RECORDED: LiteralString = """
SELECT state::text, worker_id, recorded_by FROM public.payment_outbox_attempts
ORDER BY completed_at
"""


def dispatch_one(store: OutboxStore) -> None:
    """Claim one item as WORKER and record it DISPATCHED."""
    (item,) = store.claim(WORKER, batch_size=1, lease_seconds=30)
    store.complete(WORKER, Outcome(lease=item.lease, state=AttemptState.DISPATCHED))


def test_two_logins_recording_as_one_worker_are_told_apart(outbox_database: Database) -> None:
    """Both say worker-1; the ledger names each one's login."""
    url = outbox_database.url
    with (
        application_login(outbox_database, Role.EXECUTOR) as first,
        application_login(outbox_database, Role.EXECUTOR) as second,
    ):
        for login in (first, second):
            with OutboxStore.connect(login.url, role=Role.EXECUTOR) as store:
                store.enqueue(make_request())
                dispatch_one(store)

        assert query_no_role(url, RECORDED) == [
            ("DISPATCHED", WORKER, first.name),
            ("DISPATCHED", WORKER, second.name),
        ]


def test_a_lease_repair_names_the_repairer_s_login(outbox_database: Database) -> None:
    """The requeue row names the lost lease's worker and the login that repaired it."""
    with (
        application_login(outbox_database, Role.EXECUTOR) as holder,
        application_login(outbox_database, Role.EXECUTOR) as repairer,
    ):
        with OutboxStore.connect(holder.url, role=Role.EXECUTOR) as store:
            enqueued = store.enqueue(make_request())
            store.claim(WORKER, batch_size=1, lease_seconds=30)
        expire_lease(outbox_database.url, enqueued.outbox_id)
        with OutboxStore.connect(repairer.url, role=Role.EXECUTOR) as store:
            repaired = store.repair("repairer-1", batch_size=10)

        assert [lease.outbox_id for lease in repaired] == [enqueued.outbox_id]
        assert query_no_role(outbox_database.url, RECORDED) == [
            ("ZOMBIE_REQUEUE", WORKER, repairer.name)
        ]


def test_readers_see_the_login_in_the_ledger_and_the_history(
    outbox_database: Database, reader_store: OutboxStore
) -> None:
    """`ledger` and `history` carry it, with either API."""
    with (
        application_login(outbox_database, Role.EXECUTOR) as relayer,
        OutboxStore.connect(relayer.url, role=Role.EXECUTOR) as store,
    ):
        enqueued = store.enqueue(make_request())
        dispatch_one(store)

        (attempt,) = reader_store.ledger()
        (history,) = reader_store.history(ItemSelector(outbox_id=enqueued.outbox_id))

        assert (attempt.worker_id, attempt.recorded_by) == (WORKER, relayer.name)
        assert [a.recorded_by for a in history.attempts] == [relayer.name]
