"""Proofs: each role can do what DESIGN section 6 grants it, and the catalog grants no more.

The positive controls of test_role_refusals.py: the readers read, the executor runs the
outbox through its functions, the producer enqueues. The catalog checks read every function
in schema public: only the executor and the producer execute the outbox's functions, nothing
is PUBLIC's, and every SECURITY DEFINER function pins its search_path.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final, LiteralString

import pytest

from outbox_db import AttemptState, OutboxStore, Outcome, Role
from outbox_db.testonly import expire_lease, query_as, query_no_role
from outbox_db.testonly.boundaries import (
    CALLS,
    ENQUEUE_FUNCTIONS,
    HELPER_CALLS,
    READERS,
    RELATIONS,
)
from outbox_db.testonly.factories import make_request

if TYPE_CHECKING:
    from outbox_db.testonly.pytest_plugin import Database

PINNED_SEARCH_PATH: Final = "search_path=pg_catalog, pg_temp"

# What the readers may read, each as a query whose result does not depend on the clock, so
# the reader's result can be compared with the owner's.
READS: Final[dict[str, LiteralString]] = {
    "payment_outbox_pending": "SELECT outbox_id, lease_token FROM public.payment_outbox_pending"
    " ORDER BY outbox_id",
    "payment_outbox_attempts": "SELECT attempt_id, state::text"
    " FROM public.payment_outbox_attempts ORDER BY attempt_id",
    "outbox_status_view": "SELECT rail_type, leased_count, expired_lease_count,"
    " dispatched_count FROM public.outbox_status_view ORDER BY rail_type NULLS FIRST",
}

FUNCTION_CATALOG: Final = """
SELECT p.proname::text, p.prosecdef, p.proconfig, p.proacl::text[],
    EXISTS (
        SELECT FROM pg_catalog.aclexplode(
            coalesce(p.proacl, pg_catalog.acldefault('f', p.proowner))
        ) AS acl
        WHERE acl.grantee = 0 AND acl.privilege_type = 'EXECUTE'
    ) AS public_can_execute,
    pg_catalog.has_function_privilege('symphony_executor', p.oid, 'EXECUTE'),
    pg_catalog.has_function_privilege('symphony_readonly', p.oid, 'EXECUTE'),
    pg_catalog.has_function_privilege('symphony_auditor', p.oid, 'EXECUTE'),
    pg_catalog.has_function_privilege('symphony_producer', p.oid, 'EXECUTE')
FROM pg_catalog.pg_proc AS p
WHERE p.pronamespace = 'public'::regnamespace
ORDER BY p.proname
"""


def test_catalog_grants_execute_to_the_executor_only(outbox_database: Database) -> None:
    """No function in public is PUBLIC's; the executor runs the outbox, the producer enqueues."""
    rows = query_no_role(outbox_database.url, FUNCTION_CATALOG)
    by_name = {str(row[0]): row for row in rows}
    assert set(CALLS) | set(HELPER_CALLS) <= by_name.keys()

    public_grants = {name: row[3] for name, row in by_name.items() if row[4]}
    assert public_grants == {}, "PUBLIC may execute these (proacl shown; None: the default)"
    for acl in (row[3] for row in rows):
        assert acl is not None
        assert isinstance(acl, list)
        assert not [item for item in acl if str(item).startswith("=")]

    executor, readonly, auditor, producer = (
        {name for name, row in by_name.items() if row[column]} for column in (5, 6, 7, 8)
    )
    assert set(CALLS) <= executor
    assert not executor & set(HELPER_CALLS)
    # Readers may read the queue depth (aggregates, for a metrics exporter) and the ledger's
    # months (0019); the auditor also reads the ledger's rows and digests (the checkpoint
    # exporter, the bundle: 0018). Nothing else, and nothing that writes.
    assert readonly == {"outbox_queue_depth", "outbox_ledger_months"}
    assert auditor == {
        "outbox_queue_depth",
        "outbox_ledger_months",
        "outbox_ledger_rows",
        "outbox_sealable_digests",
    }
    # The producer enqueues and nothing else; the executor still enqueues (deprecated, 0011).
    assert producer == ENQUEUE_FUNCTIONS
    assert producer <= executor


def test_security_definer_functions_pin_search_path(outbox_database: Database) -> None:
    """Every SECURITY DEFINER function in public pins search_path to exactly pg_catalog, pg_temp."""
    rows = query_no_role(outbox_database.url, FUNCTION_CATALOG)
    definers = {str(row[0]): row[2] for row in rows if row[1]}
    assert set(CALLS) <= definers.keys()

    search_paths = {
        name: [item for item in (config or []) if str(item).startswith("search_path=")]
        for name, config in definers.items()
        if config is None or isinstance(config, list)
    }
    assert search_paths == {name: [PINNED_SEARCH_PATH] for name in definers}


# --- positive controls ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "statement"),
    [
        pytest.param(role, query, id=f"{role.name.lower()}-{name}")
        for role in READERS
        for name, query in READS.items()
    ]
    + [pytest.param(Role.AUDITOR, RELATIONS["payment_outbox_settings"], id="auditor-settings")],
)
@pytest.mark.usefixtures("seeded")
def test_readers_can_read_queue_ledger_and_view(
    outbox_database: Database, role: Role, statement: LiteralString
) -> None:
    """symphony_readonly and symphony_auditor read the queue, the ledger and the status view."""
    seen = query_as(outbox_database.url, role, statement)

    assert seen
    assert seen == query_no_role(outbox_database.url, statement)


def test_executor_does_its_job_through_the_functions(
    outbox_database: Database, outbox_store: OutboxStore
) -> None:
    """symphony_executor enqueues, claims, renews, completes, releases and repairs via functions."""
    first, second, third = (outbox_store.enqueue(make_request()) for _ in range(3))
    claimed = {
        item.outbox_id: item
        for item in outbox_store.claim("worker-1", batch_size=10, lease_seconds=30)
    }
    assert claimed.keys() == {first.outbox_id, second.outbox_id, third.outbox_id}

    lease = claimed[first.outbox_id]
    assert outbox_store.renew("worker-1", lease.lease, lease_seconds=60) > lease.lease_expires_at
    done = outbox_store.complete(
        "worker-1", Outcome(lease=lease.lease, state=AttemptState.DISPATCHED)
    )
    assert (done.attempt_no, done.state) == (1, AttemptState.DISPATCHED)
    assert outbox_store.release("worker-1", [claimed[second.outbox_id].lease]) == [second.outbox_id]
    expire_lease(outbox_database.url, third.outbox_id)
    repaired = outbox_store.repair("repair-1", batch_size=10)
    assert [(r.outbox_id, r.new_state) for r in repaired] == [
        (third.outbox_id, AttemptState.ZOMBIE_REQUEUE)
    ]
    again = outbox_store.claim("worker-2", batch_size=10, lease_seconds=30)
    results = outbox_store.complete_batch(
        "worker-2", [Outcome(lease=item.lease, state=AttemptState.FAILED) for item in again]
    )
    assert {(r.outbox_id, r.lease_held, r.state) for r in results} == {
        (second.outbox_id, True, AttemptState.FAILED),
        (third.outbox_id, True, AttemptState.FAILED),
    }
    (total, *_) = outbox_store.status()
    assert (total.rail_type, total.dispatched_count, total.failed_count) == (None, 1, 2)


def test_producer_enqueues_and_reads_back_its_own_result(outbox_database: Database) -> None:
    """symphony_producer enqueues, one and many, and gets each item back; replay returns it."""
    request = make_request()
    with OutboxStore.connect(outbox_database.url, role=Role.PRODUCER, max_size=1) as producer:
        first = producer.enqueue(request)
        replay = producer.enqueue(request)
        batch = producer.enqueue_many([make_request(), make_request()])

    assert (first.created, replay.created, replay.outbox_id) == (True, False, first.outbox_id)
    assert [result.created for result in batch] == [True, True]
    pending = query_no_role(
        outbox_database.url, "SELECT count(*) FROM public.payment_outbox_pending"
    )
    assert pending == [(3,)]
