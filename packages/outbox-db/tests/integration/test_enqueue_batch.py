"""Proof: the batch enqueue is the single enqueue, item for item, at a fraction of the cost.

`enqueue_many` runs enqueue_payment_outbox_batch, one set-based statement per 10,000
requests. Its promise is equivalence: the same results, sequence numbers, rows and errors as
one enqueue_payment_outbox per request in the same transaction. The equivalence proof runs
both paths from the same database state (the single path in a transaction rolled back
afterwards) over a mix of new keys, repeats within the batch and replays of stored items.
"""

from __future__ import annotations

import random
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Final, LiteralString

import attrs
import pytest

from outbox_db import (
    AttemptState,
    EnqueueRequest,
    EnqueueResult,
    IdempotencyConflict,
    InvalidInput,
    OutboxStore,
    OutboxTransaction,
    Outcome,
    retry_serialization_failures,
)
from outbox_db.store import MAX_ENQUEUE_BATCH
from outbox_db.testonly import outbox_rows, query_no_role
from outbox_db.testonly.factories import make_request

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from outbox_db.testonly.pytest_plugin import Database

PARTICIPANTS: Final = [f"participant-{n}" for n in range(7)]
BATCHES_RACING: Final = 8
RACING_ROUNDS: Final = 10

# Every pending row by key, with what the equivalence proof compares.
PENDING_ROWS: LiteralString = """
SELECT instruction_id, idempotency_key, participant_id, sequence_id, rail_type, payload
FROM public.payment_outbox_pending
ORDER BY instruction_id, idempotency_key
"""
# Per participant: the allocator's next number and every number its items hold, in order.
NUMBERS: LiteralString = """
SELECT s.participant_id, s.next_sequence_id,
    ARRAY(SELECT p.sequence_id FROM public.payment_outbox_pending AS p
          WHERE p.participant_id = s.participant_id ORDER BY p.sequence_id)
FROM public.participant_outbox_sequences AS s
ORDER BY s.participant_id
"""


def mixed_requests(store: OutboxStore, rng: random.Random) -> list[EnqueueRequest]:
    """New keys over several participants, repeats within the batch and replays of stored items.

    Two stored items first: one still pending, one completed (left the queue).
    """
    pending, completed = make_request(), make_request()
    store.enqueue_many([pending, completed])
    (item, _) = store.claim("worker-1", batch_size=2, lease_seconds=30)
    done = Outcome(lease=item.lease, state=AttemptState.DISPATCHED)
    store.complete("worker-1", done)
    stored = [pending, completed]
    requests: list[EnqueueRequest] = []
    for _ in range(300):
        roll = rng.random()
        if roll < 0.1 and requests:
            requests.append(rng.choice(requests))
        elif roll < 0.15:
            requests.append(rng.choice(stored))
        else:
            requests.append(make_request(participant_id=rng.choice(PARTICIPANTS)))
    return requests


def in_one_transaction(
    store: OutboxStore, enqueue: Callable[[OutboxTransaction], list[EnqueueResult]]
) -> tuple[list[EnqueueResult], list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Results, pending rows and numbers after `enqueue`, then the transaction is rolled back."""
    with store.transaction() as transaction:
        results = enqueue(transaction)
        pending = transaction.connection.execute(PENDING_ROWS).fetchall()
        numbers = transaction.connection.execute(NUMBERS).fetchall()
        transaction.connection.rollback()
    return results, pending, numbers


def comparable(results: Sequence[EnqueueResult], created_ids: set[Any]) -> list[tuple[Any, ...]]:
    """Results with the ids of items created in the call blanked (new uuids differ per path)."""
    return [
        (None if r.outbox_id in created_ids else r.outbox_id, r.sequence_id, r.created)
        for r in results
    ]


def test_batch_is_one_enqueue_per_request(outbox_database: Database) -> None:
    """Same results, created flags, sequence numbers and rows as the single enqueue, in order.

    As the login role (the owner in tests), to read the tables inside the transaction; both
    functions are SECURITY DEFINER, so they act the same for every caller.
    """
    seed = random.randrange(2**32)  # noqa: S311 - test data, not secrecy
    with OutboxStore.connect(outbox_database.url, role=None) as store:
        requests = mixed_requests(store, random.Random(seed))  # noqa: S311
        singles, single_rows, single_numbers = in_one_transaction(
            store, lambda tx: [tx.enqueue(request) for request in requests]
        )
        batch, batch_rows, batch_numbers = in_one_transaction(
            store, lambda tx: tx.enqueue_many(requests)
        )

    context = f"seed {seed}"
    assert len(batch) == len(requests), context
    single_created = {r.outbox_id for r in singles if r.created}
    batch_created = {r.outbox_id for r in batch if r.created}
    assert comparable(singles, single_created) == comparable(batch, batch_created), context
    assert single_rows == batch_rows, context
    assert single_numbers == batch_numbers, context
    assert 0 < sum(r.created for r in batch) < len(requests), context


@pytest.mark.parametrize("stored", [False, True], ids=["within-the-batch", "stored-item"])
def test_conflicting_request_fails_the_whole_batch_and_writes_nothing(
    outbox_database: Database, outbox_store: OutboxStore, *, stored: bool
) -> None:
    """A key asked twice with different requests, in the batch or against a stored item: P7001."""
    first = make_request()
    if stored:
        outbox_store.enqueue(first)
    before = outbox_rows(outbox_database.url)
    batch = [make_request(), first, make_request(), attrs.evolve(first, rail_type="ach")]

    with pytest.raises(IdempotencyConflict) as conflict:
        outbox_store.enqueue_many(batch if not stored else batch[2:])

    assert conflict.value.sqlstate == "P7001"
    assert before == outbox_rows(outbox_database.url)


@pytest.mark.parametrize(
    ("change", "column"),
    [
        pytest.param({"idempotency_key": " "}, "idempotency_key", id="blank-key"),
        pytest.param({"participant_id": "a\x01b"}, "participant_id", id="control-character"),
        pytest.param({"rail_type": "r" * 256}, "rail_type", id="rail-type-too-long"),
        pytest.param({"instruction_id": ""}, "instruction_id", id="empty-instruction"),
        pytest.param({"payload": {"memo": "x" * (1 << 21)}}, "payload", id="payload-over-1-mib"),
    ],
)
def test_invalid_request_fails_the_whole_batch_and_writes_nothing(
    outbox_database: Database, outbox_store: OutboxStore, change: dict[str, Any], column: str
) -> None:
    """One bad request among good ones: 22023 naming the argument, and no row anywhere."""
    before = outbox_rows(outbox_database.url)
    batch = [make_request(), make_request(**change), make_request()]

    with pytest.raises(InvalidInput) as invalid:
        outbox_store.enqueue_many(batch)

    assert invalid.value.sqlstate == "22023"
    assert column == invalid.value.__cause__.diag.column_name  # type: ignore[union-attr]
    assert before == outbox_rows(outbox_database.url)


def test_empty_batch_is_no_statement(outbox_database: Database, outbox_store: OutboxStore) -> None:
    """Nothing to enqueue returns nothing and writes nothing."""
    before = outbox_rows(outbox_database.url)
    assert outbox_store.enqueue_many([]) == []
    assert before == outbox_rows(outbox_database.url)


def test_batches_larger_than_one_statement_are_split_and_stay_gapless(
    outbox_database: Database, outbox_store: OutboxStore
) -> None:
    """MAX_ENQUEUE_BATCH + 1 requests of one participant: two statements, numbers 1..N."""
    requests = [make_request(participant_id="big") for _ in range(MAX_ENQUEUE_BATCH + 1)]

    results = outbox_store.enqueue_many(requests)

    assert [r.sequence_id for r in results] == list(range(1, MAX_ENQUEUE_BATCH + 2))
    assert all(r.created for r in results)
    rows = query_no_role(outbox_database.url, NUMBERS)
    assert [(p, n, seq) for p, n, seq in rows if p == "big"] == [
        ("big", MAX_ENQUEUE_BATCH + 2, list(range(1, MAX_ENQUEUE_BATCH + 2)))
    ]


def test_racing_batches_over_shared_participants_never_deadlock_and_stay_gapless(
    outbox_database: Database,
) -> None:
    """Rounds of 8 batches over the same participants, each in its own order, released at once.

    Every batch bumps the participants' sequence rows in one order (by participant), so none
    waits for another in a cycle: all commit, and each participant holds 1..N without gaps.
    """
    barrier = threading.Barrier(BATCHES_RACING, timeout=30)

    def enqueue_batch(seed: int) -> list[EnqueueResult]:
        rng = random.Random(seed)  # noqa: S311 - test data, not secrecy
        requests = [make_request(participant_id=rng.choice(PARTICIPANTS)) for _ in range(200)]
        released = False

        def attempt() -> list[EnqueueResult]:
            nonlocal released
            with store.transaction() as transaction:
                if not released:
                    barrier.wait()
                    released = True
                return transaction.enqueue_many(requests)

        # Retried on 40001 (never on a deadlock), as a caller must: under REPEATABLE READ or
        # SERIALIZABLE a batch that waited for a sequence row gets 40001.
        return retry_serialization_failures(attempt)

    with (
        OutboxStore.connect(
            outbox_database.url, min_size=BATCHES_RACING, max_size=BATCHES_RACING
        ) as store,
        ThreadPoolExecutor(max_workers=BATCHES_RACING) as threads,
    ):
        for round_no in range(RACING_ROUNDS):
            seeds = range(round_no * BATCHES_RACING, (round_no + 1) * BATCHES_RACING)
            results = list(threads.map(enqueue_batch, seeds))
            assert sum(len(batch) for batch in results) == BATCHES_RACING * 200

    for participant, next_sequence_id, numbers in query_no_role(outbox_database.url, NUMBERS):
        assert numbers == list(range(1, next_sequence_id)), participant
