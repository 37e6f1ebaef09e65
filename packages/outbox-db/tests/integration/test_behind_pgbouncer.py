"""Proofs through a real PgBouncer (Debian's package) in transaction mode, started by the tests.

PgBouncer runs with fewer server connections than the proofs' client threads, so every
transaction may land on a server connection another client used last: whatever a store
left behind on one (a prepared statement, a role, a LISTEN) meets a stranger. A control
shows the same workload failing when the store does prepare, so the proof can fail.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Final

import psycopg
import pytest
import trustme
from psycopg_pool import ConnectionPool

from outbox_db import (
    ConnectionRejected,
    DatabaseUnavailable,
    ItemSelector,
    MigrationError,
    OutboxDatabaseError,
    OutboxStore,
    OutboxTransaction,
    Role,
    RoleNames,
    migrate,
)
from outbox_db.pooling import Route
from outbox_db.testonly import query_no_role
from outbox_db.testonly.factories import make_request
from outbox_db.testonly.pgbouncer import pgbouncer

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from outbox_db.testonly.pgbouncer import PgBouncer
    from outbox_db.testonly.pytest_plugin import Database

THREADS: Final = 4
PER_THREAD: Final = 50
ITEMS: Final = "SELECT count(*) FROM public.payment_outbox_pending"
# What a pool that prepares meets behind transaction pooling: its statement missing on the
# server connection it got (26000), another client's of the same name there (42P05), or
# PgBouncer dropping the client over the confusion (08P01).
PREPARED_STATEMENT_FAILURES: Final = frozenset({"26000", "42P05", "08P01"})


def enqueue_concurrently(store: OutboxStore) -> list[OutboxDatabaseError]:
    """THREADS threads enqueue PER_THREAD items each; the errors they met."""
    errors: list[OutboxDatabaseError] = []
    lock = threading.Lock()

    def enqueue_some(thread: int) -> None:
        for n in range(PER_THREAD):
            request = make_request(participant_id=f"bank-{thread}-{n % 3}")
            try:
                store.enqueue(request)
            except (OutboxDatabaseError, DatabaseUnavailable) as error:
                with lock:
                    errors.append(error)

    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(enqueue_some, range(THREADS)))
    return errors


def test_the_store_finds_the_pooler(outbox_database: Database, outbox_pgbouncer: PgBouncer) -> None:
    """PgBouncer's client-side process id is not the server's: the store knows it is pooled."""
    url = outbox_pgbouncer.url(outbox_database.url)
    with OutboxStore.connect(url, role=Role.PRODUCER) as pooled:
        assert pooled.route == Route(pooled=True)
    with OutboxStore.connect(outbox_database.url, role=Role.PRODUCER) as direct:
        assert direct.route == Route(pooled=False)


def test_concurrent_enqueues_through_transaction_pooling_all_land(
    outbox_database: Database, outbox_pgbouncer: PgBouncer
) -> None:
    """200 enqueues from 4 threads over 2 server connections: none fails, all are written."""
    url = outbox_pgbouncer.url(outbox_database.url)
    with OutboxStore.connect(url, role=Role.PRODUCER, max_size=THREADS) as store:
        errors = enqueue_concurrently(store)

    assert errors == []
    assert query_no_role(outbox_database.url, ITEMS) == [(THREADS * PER_THREAD,)]


def test_control_a_store_that_prepares_fails_through_transaction_pooling(
    outbox_database: Database, outbox_pgbouncer: PgBouncer
) -> None:
    """The same workload, from a store told it is direct (so it prepares), fails: a real control."""
    url = outbox_pgbouncer.url(outbox_database.url)
    pool: ConnectionPool[psycopg.Connection[tuple[object, ...]]] = ConnectionPool(
        url, min_size=THREADS, max_size=THREADS, kwargs={"autocommit": False}, open=True
    )
    direct = Route(pooled=False)
    with OutboxStore(pool, role=Role.PRODUCER, roles=RoleNames(), route=direct) as store:
        errors = enqueue_concurrently(store)

    assert {error.sqlstate for error in errors} & PREPARED_STATEMENT_FAILURES


def test_reads_and_a_joined_transaction_work_through_transaction_pooling(
    outbox_database: Database, outbox_pgbouncer: PgBouncer
) -> None:
    """Reads past psycopg's prepare threshold, and a joined service connection that prepares nothing.

    History reads several statements in one snapshot; the service's connection is its own.
    """
    url = outbox_pgbouncer.url(outbox_database.url)
    with psycopg.connect(url, prepare_threshold=None) as connection:
        connection.execute("SET LOCAL ROLE symphony_producer")
        created = OutboxTransaction.join(connection).enqueue(make_request())
    with OutboxStore.connect(url, role=Role.READONLY, max_size=2) as reader:
        for _ in range(10):
            total = reader.status()[0]
            (history,) = reader.history(ItemSelector(outbox_id=created.outbox_id))

    assert (total.pending_count, history.outbox_id) == (1, created.outbox_id)


def test_statement_pooling_is_refused_with_the_reason(outbox_database: Database) -> None:
    """Statement mode cannot carry a transaction: connect says so (08P01), nothing half-done."""
    with (
        pgbouncer(outbox_database.url, pool_mode="statement") as bouncer,
        pytest.raises(ConnectionRejected) as refused,
    ):
        OutboxStore.connect(bouncer.url(outbox_database.url), role=Role.PRODUCER)

    assert refused.value.sqlstate == "08P01"
    assert "statement mode" in str(refused.value)
    assert "pool_mode = transaction" in str(refused.value)


def test_migrate_refuses_a_pooler_and_names_the_fix(
    outbox_database: Database, outbox_pgbouncer: PgBouncer
) -> None:
    """Migrate holds a session lock: through PgBouncer it stops before touching anything."""
    applied = "SELECT count(*) FROM public.outbox_schema_migrations"
    before = query_no_role(outbox_database.url, applied)
    with pytest.raises(MigrationError, match="needs a direct connection") as refused:
        migrate(outbox_pgbouncer.url(outbox_database.url))

    assert "Point the URL at the server itself" in str(refused.value)
    assert query_no_role(outbox_database.url, applied) == before


@pytest.mark.parametrize(
    ("listen", "arrives"),
    [
        pytest.param(lambda bouncer, url: bouncer.url(url), False, id="listen-through-pgbouncer"),
        pytest.param(lambda _bouncer, url: url, True, id="listen-direct"),
    ],
)
def test_a_listener_knows_whether_notifications_reach_it(
    outbox_database: Database,
    outbox_pgbouncer: PgBouncer,
    listen: Callable[[PgBouncer, str], str],
    arrives: bool,
) -> None:
    """Behind transaction pooling LISTEN hears nothing, and the probe says so; a direct URL hears."""
    url = outbox_pgbouncer.url(outbox_database.url)
    with (
        OutboxStore.connect(url, role=Role.EXECUTOR) as store,
        store.wakeups(listen(outbox_pgbouncer, outbox_database.url)) as wakeups,
    ):
        assert wakeups.arrive() is arrives


def test_a_direct_store_hears_its_own_probe(outbox_store: OutboxStore) -> None:
    """Without a pooler the store's own URL carries notifications."""
    with outbox_store.wakeups() as wakeups:
        assert wakeups.arrive() is True


def test_tls_verify_full_carries_the_outbox_and_a_stranger_certificate_is_refused(
    outbox_database: Database, tmp_path: Path
) -> None:
    """sslmode=verify-full in the URL: TLS to the pooler, the outbox works; another CA: refused.

    The refusal is a configuration error (ConnectionRejected), not an outage to retry.
    """
    authority, stranger = trustme.CA(), trustme.CA()
    leaf = authority.issue_cert("localhost")
    trusted, untrusted = tmp_path / "ca.pem", tmp_path / "stranger.pem"
    authority.cert_pem.write_to_path(str(trusted))
    stranger.cert_pem.write_to_path(str(untrusted))
    chain = b"".join(blob.bytes() for blob in leaf.cert_chain_pems)
    with pgbouncer(outbox_database.url, tls=(chain, leaf.private_key_pem.bytes())) as bouncer:
        url = bouncer.tls_url(outbox_database.url, sslmode="verify-full", sslrootcert=str(trusted))
        with OutboxStore.connect(url, role=Role.PRODUCER) as store:
            created = store.enqueue(make_request())
        with psycopg.connect(url) as connection:
            encrypted = connection.pgconn.ssl_in_use
        wrong = bouncer.tls_url(
            outbox_database.url, sslmode="verify-full", sslrootcert=str(untrusted)
        )
        with pytest.raises(ConnectionRejected, match="certificate"):
            OutboxStore.connect(wrong, role=Role.PRODUCER)

    assert encrypted is True
    assert created.created is True


def test_session_pooling_keeps_its_wakeups(outbox_database: Database) -> None:
    """In session mode a client keeps its server connection: LISTEN hears, enqueues land."""
    with pgbouncer(outbox_database.url, pool_mode="session") as bouncer:
        url = bouncer.url(outbox_database.url)
        with OutboxStore.connect(url, role=Role.EXECUTOR) as store, store.wakeups() as wakeups:
            store.enqueue(make_request())
            arrived = wakeups.arrive()

    assert store.route.pooled is True  # the modes look alike from the client: nothing prepared
    assert arrived is True
