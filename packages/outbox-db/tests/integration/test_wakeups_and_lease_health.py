"""Proofs: a committed enqueue wakes a listener, an uncommitted one does not.

Also: the cheap expired-lease count the relayer reads every cycle agrees with the status view.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from outbox_db import DatabaseUnavailable
from outbox_db.testonly import expire_lease, query_no_role
from outbox_db.testonly.factories import leased_item, make_request

if TYPE_CHECKING:
    from outbox_db import OutboxStore
    from outbox_db.testonly.pytest_plugin import Database

# Long enough that a missed notification fails the test instead of racing it.
WAIT_SECONDS = 5.0


class _Rollback(Exception):
    pass


def enqueue_then_roll_back(store: OutboxStore) -> None:
    """Enqueue one item in a transaction that then fails."""
    with store.transaction() as transaction:
        transaction.enqueue(make_request())
        raise _Rollback


def test_committed_enqueue_wakes_a_listener(outbox_store: OutboxStore) -> None:
    """One committed enqueue: one wake-up."""
    with outbox_store.wakeups() as wakeups:
        assert wakeups.drain() == 0  # opens the connection and LISTENs
        outbox_store.enqueue(make_request())
        assert wakeups.wait(WAIT_SECONDS)
        assert not wakeups.wait(0.05), "one enqueue, one wake-up"


def test_a_batch_in_one_transaction_wakes_once(outbox_store: OutboxStore) -> None:
    """PostgreSQL folds a transaction's identical notifications into one."""
    with outbox_store.wakeups() as wakeups:
        wakeups.drain()
        with outbox_store.transaction() as transaction:
            for _ in range(5):
                transaction.enqueue(make_request())
        assert wakeups.wait(WAIT_SECONDS)
        assert wakeups.drain() == 0


def test_rolled_back_enqueue_and_replays_wake_nobody(outbox_store: OutboxStore) -> None:
    """No new item, no wake-up: a rollback and a replay of an existing key stay silent."""
    request = make_request()
    outbox_store.enqueue(request)
    with outbox_store.wakeups() as wakeups:
        wakeups.drain()
        with pytest.raises(_Rollback):
            enqueue_then_roll_back(outbox_store)
        assert outbox_store.enqueue(request).created is False
        assert not wakeups.wait(0.5)


def test_wait_returns_when_the_enqueue_commits_not_before(outbox_store: OutboxStore) -> None:
    """A listener is not woken for work it could not yet claim."""
    with outbox_store.wakeups() as wakeups:
        wakeups.drain()
        with outbox_store.transaction() as transaction:
            transaction.enqueue(make_request())
            assert not wakeups.wait(0.2), "uncommitted work must not wake anyone"
        assert wakeups.wait(WAIT_SECONDS)


def test_a_broken_listener_raises_unavailable_then_reconnects(
    outbox_store: OutboxStore, outbox_database: Database
) -> None:
    """A lost connection is an error the caller sees, and the next call listens again."""
    with outbox_store.wakeups() as wakeups:
        wakeups.drain()
        query_no_role(
            outbox_database.url,
            "SELECT pg_catalog.pg_terminate_backend(pid) FROM pg_catalog.pg_stat_activity"
            " WHERE application_name = 'outbox-db-listen' AND datname = current_database()",
        )
        with pytest.raises(DatabaseUnavailable):
            wakeups.wait(WAIT_SECONDS)
        assert wakeups.drain() == 0  # a new connection, listening again
        outbox_store.enqueue(make_request())
        assert wakeups.wait(WAIT_SECONDS)


def test_expired_lease_count_matches_the_status_view(
    outbox_store: OutboxStore, outbox_database: Database
) -> None:
    """The pending-only count and the view's total agree, and repair brings both to zero."""
    held = leased_item(outbox_store, "worker-a")
    expired = leased_item(outbox_store, "worker-b")
    outbox_store.enqueue(make_request())  # due, never leased
    assert outbox_store.expired_lease_count() == 0

    expire_lease(outbox_database.url, expired.outbox_id)

    assert outbox_store.expired_lease_count() == 1
    (total, *_) = outbox_store.status()
    assert total.expired_lease_count == 1
    assert held.outbox_id != expired.outbox_id
    outbox_store.repair("repairer", batch_size=10)
    assert outbox_store.expired_lease_count() == 0
