"""Proofs: a rail-facing idempotency key names exactly one item, for the life of the outbox.

The rail sees only the Idempotency-Key header, so a second instruction under a key its rail
already has (pending or completed) is refused with P7001 and nothing written; the same key
on another rail is another payment; a replay of the same request returns its item. The
registry's unique index decides, not a snapshot: concurrent callers make one item, a batch
racing a single enqueue of the same request gets that item, and a REPEATABLE READ or
SERIALIZABLE caller whose snapshot predates the key gets a serialization failure (40001),
never a second item. A database whose keys already name two items refuses the migration
(P7006), naming them.
"""

from __future__ import annotations

import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Final, LiteralString

import attrs
import psycopg
import pytest

from outbox_db import (
    AttemptState,
    IdempotencyConflict,
    MigrationError,
    OutboxStore,
    OutboxTransaction,
    RetryableConflict,
    migrate,
    retry_serialization_failures,
)
from outbox_db.testonly import outbox_rows, query_no_role, wait_for_lock_waiters
from outbox_db.testonly.factories import complete_only_item, make_request

if TYPE_CHECKING:
    from collections.abc import Iterator

    from outbox_db.records import EnqueueRequest, EnqueueResult
    from outbox_db.testonly.pytest_plugin import Database, Server

RACERS: Final = 16
ISOLATION: Final[dict[str, LiteralString]] = {
    "REPEATABLE READ": "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ",
    "SERIALIZABLE": "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE",
}
WAIT_SECONDS: Final = 10.0


def second_instruction(
    first: EnqueueRequest,
    *,
    instruction_id: str | None = None,
    participant_id: str | None = None,
    rail_type: str | None = None,
) -> EnqueueRequest:
    """Another payment under `first`'s key (on its rail unless `rail_type` says otherwise)."""
    return attrs.evolve(
        first,
        instruction_id=instruction_id or f"{first.instruction_id}-other",
        participant_id=participant_id or first.participant_id,
        rail_type=rail_type or first.rail_type,
    )


@pytest.mark.parametrize("first_state", ["pending", "DISPATCHED", "FAILED"])
@pytest.mark.parametrize("participant", ["same", "other"])
def test_a_second_instruction_under_a_used_key_is_refused_and_writes_nothing(
    outbox_database: Database, outbox_store: OutboxStore, first_state: str, participant: str
) -> None:
    """Same rail and key, another instruction: P7001 whether the first is pending or completed."""
    first = make_request()
    outbox_store.enqueue(first)
    if first_state != "pending":
        complete_only_item(outbox_store, AttemptState(first_state))
    other = participant == "other"
    intruder = second_instruction(
        first, participant_id="participant-b" if other else "participant-a"
    )
    before = outbox_rows(outbox_database.url, versions=True)

    for attempt in (outbox_store.enqueue, lambda r: outbox_store.enqueue_many([r])):
        with pytest.raises(IdempotencyConflict) as refused:
            attempt(intruder)
        assert refused.value.sqlstate == "P7001"
    assert outbox_rows(outbox_database.url, versions=True) == before


def test_the_same_key_on_another_rail_is_another_payment(outbox_store: OutboxStore) -> None:
    """Each rail sees its own keys: one key on two rails makes two items."""
    first = make_request(rail_type="rtp")
    other_rail = second_instruction(first, rail_type="ach")

    results = [outbox_store.enqueue(first), outbox_store.enqueue(other_rail)]

    assert [result.created for result in results] == [True, True]
    assert results[0].outbox_id != results[1].outbox_id


def test_a_batch_with_two_instructions_under_one_key_is_refused_whole(
    outbox_database: Database, outbox_store: OutboxStore
) -> None:
    """Within one batch too: P7001, and none of the batch's items is written."""
    first = make_request()
    before = outbox_rows(outbox_database.url, versions=True)

    with pytest.raises(IdempotencyConflict) as refused:
        outbox_store.enqueue_many([make_request(), first, second_instruction(first)])

    assert refused.value.sqlstate == "P7001"
    assert outbox_rows(outbox_database.url, versions=True) == before


def test_concurrent_instructions_racing_for_one_key_make_one_item(
    outbox_database: Database,
) -> None:
    """16 instructions released at once under one key: one item, every other caller P7001."""
    first = make_request()
    requests = [second_instruction(first, instruction_id=f"racer-{n}") for n in range(RACERS)]
    barrier = threading.Barrier(RACERS, timeout=30)

    def race(request: EnqueueRequest) -> EnqueueResult | Exception:
        released = False

        def attempt() -> EnqueueResult | Exception:
            nonlocal released
            with store.transaction() as tx:
                if not released:
                    barrier.wait()
                    released = True
                try:
                    return tx.enqueue(request)
                except IdempotencyConflict as error:
                    return error

        # Retried on 40001, as a caller must (a REPEATABLE READ or SERIALIZABLE default).
        return retry_serialization_failures(attempt)

    with (
        OutboxStore.connect(outbox_database.url, min_size=RACERS, max_size=RACERS) as store,
        ThreadPoolExecutor(max_workers=RACERS) as threads,
    ):
        outcomes = list(threads.map(race, requests))

    created = [o for o in outcomes if not isinstance(o, Exception)]
    assert [result.created for result in created] == [True], outcomes
    assert all(
        isinstance(o, IdempotencyConflict) and o.sqlstate == "P7001"
        for o in outcomes
        if isinstance(o, Exception)
    ), outcomes
    rows = query_no_role(
        outbox_database.url,
        "SELECT count(*) FROM public.payment_outbox_pending WHERE idempotency_key = %s",
        [first.idempotency_key],
    )
    assert rows == [(1,)]


def test_a_batch_racing_a_single_enqueue_of_the_same_request_gets_its_item(
    outbox_database: Database, outbox_store: OutboxStore
) -> None:
    """The batch waits for the open single enqueue, then returns its item (created=False), not P7001."""
    request = make_request()
    with outbox_store.transaction() as single:
        mine = single.enqueue(request)
        with (
            OutboxStore.connect(outbox_database.url) as batch_store,
            ThreadPoolExecutor(max_workers=1) as thread,
        ):
            batch = thread.submit(batch_store.enqueue_many, [request])
            assert wait_for_lock_waiters(outbox_database.url, 1, WAIT_SECONDS)
            single.connection.commit()
            (theirs,) = batch.result(timeout=WAIT_SECONDS)

    assert (theirs.outbox_id, theirs.created) == (mine.outbox_id, False)


@pytest.mark.parametrize("isolation", ["REPEATABLE READ", "SERIALIZABLE"])
def test_a_snapshot_older_than_the_key_gets_a_retryable_conflict_never_a_second_item(
    outbox_database: Database, outbox_store: OutboxStore, isolation: str
) -> None:
    """The key was taken and completed after the caller's snapshot: 40001, and on retry P7001."""
    first = make_request()
    intruder = second_instruction(first, participant_id="participant-b")
    with psycopg.connect(outbox_database.url) as connection:
        connection.execute(ISOLATION[isolation])
        connection.execute("SELECT 1")  # the snapshot is taken here
        outbox_store.enqueue(first)
        complete_only_item(outbox_store, AttemptState.DISPATCHED)

        with pytest.raises(RetryableConflict) as conflict:
            OutboxTransaction.join(connection).enqueue(intruder)
        assert conflict.value.sqlstate == "40001"
        connection.rollback()

        with pytest.raises(IdempotencyConflict) as refused:
            OutboxTransaction.join(connection).enqueue(intruder)
        assert refused.value.sqlstate == "P7001"


# --- existing databases ----------------------------------------------------------------------

BEFORE_REGISTRY: Final = "v1/0010_one_key_one_payment.sql"
DUPLICATE_KEY: Final = """
INSERT INTO public.payment_outbox_pending
    (instruction_id, participant_id, sequence_id, idempotency_key, rail_type, payload)
VALUES ('ins-a', 'participant-a', 1, 'shared-key', 'rtp', '{}'),
       ('ins-b', 'participant-b', 1, 'shared-key', 'rtp', '{}')
"""


@pytest.fixture
def database_before_the_registry(
    outbox_server: Server, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """A new database migrated up to 0009, as an existing installation is."""
    name = "outbox_before_registry"
    with outbox_server.janitor(name):
        url = outbox_server.database_url(name)
        migrator = sys.modules["outbox_db.migrate"]  # the package exports migrate(), the function
        shipped = migrator.load_migrations()
        older = [m for m in shipped if not m.repeatable and m.name < BEFORE_REGISTRY]
        with monkeypatch.context() as patch:
            patch.setattr(migrator, "load_migrations", lambda: older)
            migrate(url)
        yield url


def test_a_database_whose_key_names_two_items_refuses_the_migration_naming_it(
    database_before_the_registry: str,
) -> None:
    """P7006 names the rail, the key and both items; nothing of 0010 is applied."""
    query_no_role(database_before_the_registry, DUPLICATE_KEY)
    items = sorted(
        str(row[0])
        for row in query_no_role(
            database_before_the_registry, "SELECT outbox_id FROM public.payment_outbox_pending"
        )
    )

    with pytest.raises(MigrationError) as refused:
        migrate(database_before_the_registry)

    assert isinstance(refused.value.__cause__, psycopg.Error)
    assert refused.value.__cause__.diag.sqlstate == "P7006"
    message = str(refused.value)
    assert "rail 'rtp', key 'shared-key'" in message
    assert all(item in message for item in items)
    applied = query_no_role(
        database_before_the_registry,
        "SELECT count(*) FROM public.outbox_schema_migrations WHERE filename = %s",
        [BEFORE_REGISTRY],
    )
    assert applied == [(0,)]


def test_items_in_flight_during_the_upgrade_keep_their_keys(
    database_before_the_registry: str,
) -> None:
    """Items enqueued before 0010 are registered as they are: a replay finds them, an intruder is refused."""
    with OutboxStore.connect(database_before_the_registry) as store:
        request = make_request()
        before = store.enqueue(request)
        migrate(database_before_the_registry)

        assert store.enqueue(request) == attrs.evolve(before, created=False)
        with pytest.raises(IdempotencyConflict):
            store.enqueue(second_instruction(request))
        (claimed,) = store.claim("worker-1", batch_size=1, lease_seconds=30)
    assert claimed.idempotency_key == request.idempotency_key
