"""Proof: enqueue is idempotent under any number of concurrent callers and burns no number.

Every racing caller runs in its own thread, on its own connection, with its transaction
already open when a barrier releases them all at once, and carries a correlation id (its
thread name) that every assertion message lists, so a failure names the callers involved.
"""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Final, LiteralString

import attrs
import psycopg
import pytest

from outbox_db import (
    AttemptState,
    EnqueueRequest,
    EnqueueResult,
    IdempotencyConflict,
    OutboxError,
    OutboxStore,
    OutboxTransaction,
    RetryableConflict,
    retry_serialization_failures,
)
from outbox_db.testonly import outbox_rows, query_no_role
from outbox_db.testonly.factories import complete_only_item, make_request

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from outbox_db.testonly.pytest_plugin import Database

CALLERS: Final = 32
ROUNDS: Final = 20
DISTINCT_KEY_ROUNDS: Final = 5
# Long enough for 32 connections on a loaded machine; short enough that a lost thread fails
# the test instead of hanging it.
BARRIER_TIMEOUT_SECONDS: Final = 30.0

# The participant's allocator (1 when it has none yet) and every number its items hold.
ALLOCATOR: LiteralString = """
SELECT
    coalesce(
        (SELECT s.next_sequence_id FROM public.participant_outbox_sequences AS s
         WHERE s.participant_id = %(participant_id)s),
        1
    ),
    ARRAY(
        SELECT DISTINCT u.sequence_id
        FROM (
            SELECT p.sequence_id FROM public.payment_outbox_pending AS p
            WHERE p.participant_id = %(participant_id)s
            UNION ALL
            SELECT a.sequence_id FROM public.payment_outbox_attempts AS a
            WHERE a.participant_id = %(participant_id)s
        ) AS u
        ORDER BY u.sequence_id
    )
"""

PENDING_FOR_KEY: LiteralString = """
SELECT outbox_id, participant_id, sequence_id FROM public.payment_outbox_pending
WHERE instruction_id = %(instruction_id)s AND idempotency_key = %(idempotency_key)s
"""


class ServiceFailedError(Exception):
    """The service's own work failed after it enqueued: its transaction must roll back."""

    def __init__(self, item: EnqueueResult) -> None:
        super().__init__("the service failed after enqueueing")
        self.item = item


@attrs.frozen
class Call:
    """One racing caller: its correlation id, its backend, what it asked and what it got."""

    correlation_id: str
    backend_pid: int
    request: EnqueueRequest
    result: EnqueueResult | None
    error: Exception | None

    def __str__(self) -> str:
        outcome = repr(self.error) if self.error is not None else repr(self.result)
        return f"{self.correlation_id} pid={self.backend_pid} {outcome}"


def enqueue_together(
    store: OutboxStore, requests: Sequence[EnqueueRequest], label: str
) -> list[Call]:
    """Each request from its own thread and connection, released at once in open transactions."""
    barrier = threading.Barrier(len(requests), timeout=BARRIER_TIMEOUT_SECONDS)

    def call(index: int, request: EnqueueRequest) -> Call:
        correlation_id = f"{label}-caller{index:02d}-{uuid.uuid4().hex[:8]}"
        threading.current_thread().name = correlation_id
        backend_pid, released = -1, False

        def attempt() -> EnqueueResult:
            nonlocal backend_pid, released
            with store.transaction() as tx:
                if not released:  # the first attempt's connection is the caller's own
                    backend_pid = tx.connection.info.backend_pid
                    barrier.wait()
                    released = True
                return tx.enqueue(request)

        try:
            # Retried on 40001, as a caller must: under REPEATABLE READ or SERIALIZABLE a
            # racer gets 40001 where READ COMMITTED waits; the retry must give the same answer.
            result = retry_serialization_failures(attempt)
        except Exception as error:  # noqa: BLE001 - every failure is reported with its caller
            if not released:
                barrier.abort()  # never leave the other callers waiting for one that failed
            return Call(correlation_id, backend_pid, request, None, error)
        return Call(correlation_id, backend_pid, request, result, None)

    with ThreadPoolExecutor(max_workers=len(requests)) as threads:
        return list(threads.map(call, range(len(requests)), requests))


def report(calls: Sequence[Call]) -> str:
    """One line per caller, for assertion messages."""
    return "\n".join(str(call) for call in calls)


def results_of(calls: Sequence[Call]) -> list[EnqueueResult]:
    """The callers' results, after checking that none of them failed or shared a connection."""
    assert [str(call) for call in calls if call.result is None] == [], report(calls)
    assert len(calls) == len({call.backend_pid for call in calls}), (
        f"every caller must have its own connection\n{report(calls)}"
    )
    return [call.result for call in calls if call.result is not None]


def pending_for(url: str, request: EnqueueRequest) -> list[tuple[Any, ...]]:
    """The pending rows of the request's (instruction_id, idempotency_key)."""
    key = {"instruction_id": request.instruction_id, "idempotency_key": request.idempotency_key}
    return query_no_role(url, PENDING_FOR_KEY, key)


def assert_no_number_burned(url: str, participant_id: str, context: str = "") -> None:
    """The allocator's next number is the highest used + 1, and the numbers used are 1..highest."""
    ((next_sequence_id, used),) = query_no_role(url, ALLOCATOR, {"participant_id": participant_id})
    assert list(range(1, next_sequence_id)) == used, (
        f"{participant_id}: next_sequence_id={next_sequence_id}, used={used}\n{context}"
    )


@pytest.fixture
def wide_store(outbox_database: Database) -> Iterator[OutboxStore]:
    """A store with one open connection per racing caller, so none waits for the pool."""
    with OutboxStore.connect(outbox_database.url, min_size=CALLERS, max_size=CALLERS) as store:
        yield store


@pytest.mark.parametrize(
    "fresh_participant",
    [True, False],
    ids=["new-participant-each-round", "one-participant-across-rounds"],
)
def test_concurrent_replays_make_one_item_and_burn_no_number(
    outbox_database: Database, wide_store: OutboxStore, *, fresh_participant: bool
) -> None:
    """32 callers racing with one request get one outbox_id and one sequence_id; one created it."""
    for round_no in range(1, ROUNDS + 1):
        participant_id = f"participant-r{round_no:02d}" if fresh_participant else "participant-a"
        request = make_request(participant_id=participant_id)
        calls = enqueue_together(wide_store, [request] * CALLERS, f"replay-r{round_no:02d}")
        results = results_of(calls)
        context = f"round {round_no}\n{report(calls)}"

        assert len({result.outbox_id for result in results}) == 1, context
        assert len({result.sequence_id for result in results}) == 1, context
        assert sum(result.created for result in results) == 1, context
        expected_sequence_id = 1 if fresh_participant else round_no
        assert expected_sequence_id == results[0].sequence_id, context
        expected_row = (results[0].outbox_id, participant_id, expected_sequence_id)
        assert [expected_row] == pending_for(outbox_database.url, request), context
        assert_no_number_burned(outbox_database.url, participant_id, context)


def test_concurrent_new_keys_take_numbers_one_to_n(
    outbox_database: Database, wide_store: OutboxStore
) -> None:
    """32 callers racing with 32 keys of a new participant get sequence numbers exactly 1..32."""
    for round_no in range(1, DISTINCT_KEY_ROUNDS + 1):
        participant_id = f"participant-n{round_no:02d}"
        requests = [make_request(participant_id=participant_id) for _ in range(CALLERS)]
        calls = enqueue_together(wide_store, requests, f"new-keys-r{round_no:02d}")
        results = results_of(calls)
        context = f"round {round_no}\n{report(calls)}"

        assert all(result.created for result in results), context
        assert list(range(1, CALLERS + 1)) == sorted(result.sequence_id for result in results), (
            context
        )
        assert len({result.outbox_id for result in results}) == CALLERS, context
        for call in calls:
            assert call.result is not None
            expected_row = (call.result.outbox_id, participant_id, call.result.sequence_id)
            assert [expected_row] == pending_for(outbox_database.url, call.request), context
        assert_no_number_burned(outbox_database.url, participant_id, context)


def test_concurrent_same_key_from_two_participants_is_one_item_and_conflicts(
    outbox_database: Database, wide_store: OutboxStore
) -> None:
    """When two participants race for one key, one item is made and the other side gets P7001."""
    for round_no in range(1, ROUNDS + 1):
        mine = make_request(participant_id="participant-a")
        theirs = attrs.evolve(mine, participant_id="participant-b")
        calls = enqueue_together(
            wide_store, [mine, theirs] * (CALLERS // 2), f"two-r{round_no:02d}"
        )
        context = f"round {round_no}\n{report(calls)}"
        ((outbox_id, winner, sequence_id),) = pending_for(outbox_database.url, mine)

        for call in calls:
            if call.request.participant_id == winner:
                assert call.result is not None, context
                assert (outbox_id, sequence_id) == (
                    call.result.outbox_id,
                    call.result.sequence_id,
                ), context
            else:
                assert isinstance(call.error, IdempotencyConflict), context
                assert call.error.sqlstate == "P7001", context
        assert sum(bool(call.result and call.result.created) for call in calls) == 1, context
        assert_no_number_burned(outbox_database.url, "participant-a", context)
        assert_no_number_burned(outbox_database.url, "participant-b", context)


@pytest.mark.parametrize("state", [AttemptState.DISPATCHED, AttemptState.FAILED], ids=str)
def test_replay_after_completion_returns_the_item_and_writes_nothing(
    outbox_database: Database, outbox_store: OutboxStore, state: AttemptState
) -> None:
    """A completed item has left the queue; replaying its request returns it and creates nothing."""
    request = make_request()
    original = outbox_store.enqueue(request)
    complete_only_item(outbox_store, state)
    assert pending_for(outbox_database.url, request) == []
    before = outbox_rows(outbox_database.url)

    replay = outbox_store.enqueue(request)

    expected = EnqueueResult(
        outbox_id=original.outbox_id, sequence_id=original.sequence_id, created=False
    )
    assert expected == replay
    assert before == outbox_rows(outbox_database.url)


def test_replay_with_the_same_payload_in_another_key_order_is_the_same_request(
    outbox_store: OutboxStore,
) -> None:
    """Payloads compare as JSON objects, so key order in the caller's mapping does not matter."""
    request = make_request(payload={"amount": "10.00", "currency": "USD"})
    original = outbox_store.enqueue(request)

    replay = outbox_store.enqueue(
        attrs.evolve(request, payload={"currency": "USD", "amount": "10.00"})
    )

    assert attrs.evolve(original, created=False) == replay


@pytest.mark.parametrize("completed", [False, True], ids=["pending-item", "completed-item"])
@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"payload": {"amount": "99.00", "currency": "USD"}}, id="payload"),
        pytest.param({"rail_type": "ach"}, id="rail_type"),
        pytest.param({"participant_id": "participant-z"}, id="participant_id"),
    ],
)
def test_replay_with_a_different_request_is_a_conflict_and_writes_nothing(
    outbox_database: Database,
    outbox_store: OutboxStore,
    change: dict[str, Any],
    *,
    completed: bool,
) -> None:
    """Reusing a key with another payload, rail or participant raises P7001, never the old item."""
    request = make_request()
    outbox_store.enqueue(request)
    if completed:
        complete_only_item(outbox_store, AttemptState.DISPATCHED)
    before = outbox_rows(outbox_database.url)

    with pytest.raises(IdempotencyConflict) as conflict:
        outbox_store.enqueue(attrs.evolve(request, **change))

    assert conflict.value.sqlstate == "P7001"
    assert before == outbox_rows(outbox_database.url)


@pytest.fixture
def orders_table(outbox_database: Database) -> None:
    """A service's business table, writable by the role the store's transactions run as."""
    query_no_role(
        outbox_database.url,
        "CREATE TABLE public.test_orders (order_id text PRIMARY KEY, outbox_id uuid NOT NULL)",
    )
    query_no_role(
        outbox_database.url, "GRANT SELECT, INSERT ON public.test_orders TO symphony_executor"
    )


def orders(url: str) -> list[tuple[Any, ...]]:
    """The business rows, in order."""
    return query_no_role(
        url, "SELECT order_id, outbox_id FROM public.test_orders ORDER BY order_id"
    )


def place_order(store: OutboxStore, request: EnqueueRequest, *, fail: bool) -> EnqueueResult:
    """A service's unit of work: its business row and its outbox item in one transaction."""
    with store.transaction() as tx:
        item = tx.enqueue(request)
        tx.connection.execute(
            "INSERT INTO public.test_orders (order_id, outbox_id) VALUES (%s, %s)",
            [f"order-{request.instruction_id}", item.outbox_id],
        )
        if fail:
            raise ServiceFailedError(item)
    return item


def enqueue_joined(
    connection: psycopg.Connection[Any], request: EnqueueRequest, *, fail: bool
) -> EnqueueResult:
    """Enqueue inside the service's own transaction on its own connection."""
    with connection.transaction():
        item = OutboxTransaction.join(connection).enqueue(request)
        if fail:
            raise ServiceFailedError(item)
    return item


@pytest.mark.usefixtures("orders_table")
@pytest.mark.parametrize("history", [0, 1], ids=["new-participant", "participant-with-history"])
def test_rolled_back_service_transaction_leaves_no_item_and_burns_no_number(
    outbox_database: Database, outbox_store: OutboxStore, history: int
) -> None:
    """A business write and its enqueue roll back together; the next enqueue reuses the number."""
    url = outbox_database.url
    for _ in range(history):
        outbox_store.enqueue(make_request(participant_id="participant-r"))
    request = make_request(participant_id="participant-r")
    before = outbox_rows(url)

    with pytest.raises(ServiceFailedError) as failed:
        place_order(outbox_store, request, fail=True)

    doomed = failed.value.item
    assert doomed.sequence_id == history + 1
    assert orders(url) == []
    assert pending_for(url, request) == []
    assert before == outbox_rows(url)
    following = outbox_store.enqueue(make_request(participant_id="participant-r"))
    assert doomed.sequence_id == following.sequence_id
    assert_no_number_burned(url, "participant-r")
    # The key was never used: enqueueing it again creates the item.
    assert outbox_store.enqueue(request).created


@pytest.mark.usefixtures("orders_table")
def test_committed_service_transaction_keeps_the_business_row_and_the_item(
    outbox_database: Database, outbox_store: OutboxStore
) -> None:
    """A business write and its enqueue commit together."""
    request = make_request(participant_id="participant-c")

    item = place_order(outbox_store, request, fail=False)

    assert [(f"order-{request.instruction_id}", item.outbox_id)] == orders(outbox_database.url)
    assert [(item.outbox_id, "participant-c", 1)] == pending_for(outbox_database.url, request)
    assert_no_number_burned(outbox_database.url, "participant-c")


def test_join_refuses_an_autocommit_connection_outside_a_transaction(
    outbox_database: Database,
) -> None:
    """An autocommit connection would commit the item alone, apart from the business write."""
    with psycopg.connect(outbox_database.url, autocommit=True) as connection:
        with pytest.raises(OutboxError, match="inside a transaction"):
            OutboxTransaction.join(connection)
        assert [
            row for row in outbox_rows(outbox_database.url) if row[0] != "payment_outbox_settings"
        ] == []


def test_join_shares_the_service_transaction(outbox_database: Database) -> None:
    """A joined connection's enqueue rolls back, or commits, with the service's transaction."""
    request = make_request()
    with psycopg.connect(outbox_database.url, autocommit=True) as connection:
        with pytest.raises(ServiceFailedError) as failed:
            enqueue_joined(connection, request, fail=True)
        assert failed.value.item.created
        assert pending_for(outbox_database.url, request) == []

        joined = enqueue_joined(connection, request, fail=False)

    assert [(joined.outbox_id, request.participant_id, 1)] == pending_for(
        outbox_database.url, request
    )


def test_enqueues_for_two_participants_in_opposite_orders_deadlock_retryably(
    outbox_database: Database,
) -> None:
    """Opposite participant orders in two open transactions: one is RetryableConflict (40P01), one commits."""
    first, second = make_request(participant_id="p-east"), make_request(participant_id="p-west")
    both_hold_one = threading.Barrier(2, timeout=BARRIER_TIMEOUT_SECONDS)
    outcomes: dict[str, object] = {}

    def service(name: str, order: Sequence[EnqueueRequest]) -> None:
        try:
            with OutboxStore.connect(outbox_database.url) as store, store.transaction() as tx:
                tx.enqueue(order[0])
                both_hold_one.wait()
                tx.enqueue(order[1])
            outcomes[name] = "committed"
        except OutboxError as error:
            outcomes[name] = error

    with ThreadPoolExecutor(max_workers=2) as pool:
        pool.submit(service, "east-first", [first, second])
        pool.submit(service, "west-first", [second, first])

    losers = [o for o in outcomes.values() if isinstance(o, OutboxError)]
    assert [(type(o), o.sqlstate) for o in losers] == [(RetryableConflict, "40P01")]  # type: ignore[attr-defined]
    assert sorted(o for o in outcomes.values() if isinstance(o, str)) == ["committed"]
    pending = query_no_role(
        outbox_database.url,
        "SELECT participant_id, sequence_id FROM public.payment_outbox_pending ORDER BY 1",
    )
    assert pending == [("p-east", 1), ("p-west", 1)]
