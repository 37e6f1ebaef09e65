"""Proofs: on an ordered rail, a participant's items are claimable one at a time, in sequence.

The items of one (participant, rail) on an ordered rail form a lane. Only its head (the
lowest-sequence live item) is claimable; a retry or a lease repair keeps the head; a terminal
outcome (DISPATCHED or FAILED) releases the next item at once. Unordered rails, and the other
lanes, are not held up. What an item promises is fixed when it is enqueued. The last proofs
race an enqueue against its head's completion, both ways round, with real transactions.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Final, LiteralString

import psycopg
import pytest

from outbox_db import (
    AppendOnlyViolation,
    AttemptState,
    InvalidInput,
    OutboxStore,
    Outcome,
    PermissionDenied,
    RetryableConflict,
    Role,
)
from outbox_db.testonly import (
    expire_lease,
    query_no_role,
    session_login,
    wait_for_lock_waiters,
)
from outbox_db.testonly.factories import make_request

if TYPE_CHECKING:
    from uuid import UUID

    from outbox_db import ClaimedItem, EnqueueResult
    from outbox_db.testonly.pytest_plugin import Database

ORDERED: Final = "ordered-rail"
UNORDERED: Final = "rtp"
DEADLINE_SECONDS: Final = 30.0
HISTORY: LiteralString = "SELECT to_jsonb(o)::text FROM public.outbox_rail_ordering AS o"
LANE_STATE: LiteralString = """
SELECT sequence_id, ordered, awaiting_predecessor FROM public.payment_outbox_pending
WHERE outbox_id = %s
"""


@pytest.fixture
def ordered_rail(outbox_operator: OutboxStore) -> str:
    """ORDERED is an ordered rail from now on."""
    outbox_operator.set_rail_ordering(ORDERED, ordered=True, reason="the rail needs order")
    return ORDERED


def enqueue(store: OutboxStore, participant: str, rail: str, count: int) -> list[EnqueueResult]:
    """`count` new items of `participant` on `rail`, in sequence order."""
    return [
        store.enqueue(make_request(participant_id=participant, rail_type=rail))
        for _ in range(count)
    ]


def claim(store: OutboxStore) -> dict[UUID, ClaimedItem]:
    """Everything claimable now, by outbox_id."""
    return {item.outbox_id: item for item in store.claim("w", batch_size=1000, lease_seconds=30)}


def finish(store: OutboxStore, item: ClaimedItem, state: AttemptState) -> None:
    """Record `state` for a held item (a retry is due again at once)."""
    outcome = Outcome(lease=item.lease, state=state, retry_delay_seconds=0)
    assert store.complete("w", outcome).lease_held


# --- who is claimable ---------------------------------------------------------------------------


@pytest.mark.usefixtures("ordered_rail")
def test_only_each_lanes_head_is_claimable_and_other_items_are_not_held_up(
    outbox_store: OutboxStore,
) -> None:
    """Of a participant's 3 ordered items only the first is claimed; its unordered items and another participant's head are claimed alongside."""
    lane = enqueue(outbox_store, "p1", ORDERED, 3)
    loose = enqueue(outbox_store, "p1", UNORDERED, 2)
    other = enqueue(outbox_store, "p2", ORDERED, 1)

    claimed = claim(outbox_store)

    assert set(claimed) == {lane[0].outbox_id, other[0].outbox_id} | {i.outbox_id for i in loose}
    assert claim(outbox_store) == {}


@pytest.mark.usefixtures("ordered_rail")
def test_a_retry_keeps_the_head_and_its_followers_wait(
    outbox_database: Database, outbox_store: OutboxStore
) -> None:
    """RETRYABLE (due again at once) and then a lease repair: the head is claimed again, never the next item."""
    head, follower = enqueue(outbox_store, "p1", ORDERED, 2)
    (first,) = claim(outbox_store).values()
    finish(outbox_store, first, AttemptState.RETRYABLE)

    (second,) = claim(outbox_store).values()
    assert (second.outbox_id, second.attempt_count) == (head.outbox_id, 1)

    expire_lease(outbox_database.url, second.outbox_id)
    assert [r.outbox_id for r in outbox_store.repair("repairer", batch_size=10)] == [head.outbox_id]
    (third,) = claim(outbox_store).values()
    assert (third.outbox_id, third.attempt_count) == (head.outbox_id, 2)
    assert follower.outbox_id not in claim(outbox_store)


@pytest.mark.usefixtures("ordered_rail")
@pytest.mark.parametrize("state", [AttemptState.DISPATCHED, AttemptState.FAILED])
def test_a_terminal_outcome_releases_the_next_item_at_once(
    outbox_database: Database, outbox_store: OutboxStore, state: AttemptState
) -> None:
    """DISPATCHED or FAILED (order is the promise, not success): the next item is claimable in the same instant, the one after still waits."""
    lane = enqueue(outbox_store, "p1", ORDERED, 3)
    (head,) = claim(outbox_store).values()

    finish(outbox_store, head, state)

    assert set(claim(outbox_store)) == {lane[1].outbox_id}
    assert query_no_role(outbox_database.url, LANE_STATE, [lane[2].outbox_id]) == [
        (lane[2].sequence_id, True, True)
    ]


@pytest.mark.usefixtures("ordered_rail")
def test_a_lease_repair_at_the_retry_ceiling_releases_the_next_item(
    outbox_database: Database, outbox_store: OutboxStore
) -> None:
    """A head whose lease lapses at the ceiling ends FAILED through repair; that too is terminal."""
    query_no_role(outbox_database.url, "UPDATE public.payment_outbox_settings SET max_attempts = 1")
    lane = enqueue(outbox_store, "p1", ORDERED, 2)
    (head,) = claim(outbox_store).values()
    expire_lease(outbox_database.url, head.outbox_id)

    (repaired,) = outbox_store.repair("repairer", batch_size=10)

    assert repaired.new_state == AttemptState.FAILED
    assert set(claim(outbox_store)) == {lane[1].outbox_id}


@pytest.mark.usefixtures("ordered_rail")
def test_a_redrive_joins_the_end_of_its_lane(
    outbox_store: OutboxStore, outbox_operator: OutboxStore
) -> None:
    """A FAILED head re-driven while its lane still holds items: the re-drive waits behind them."""
    failed, second, third = enqueue(outbox_store, "p1", ORDERED, 3)
    (head,) = claim(outbox_store).values()
    finish(outbox_store, head, AttemptState.FAILED)

    redrive = outbox_operator.redrive(failed.outbox_id, reason="account fixed")

    order = []
    while claimed := claim(outbox_store):
        (item,) = claimed.values()
        order.append(item.outbox_id)
        finish(outbox_store, item, AttemptState.DISPATCHED)
    assert order == [second.outbox_id, third.outbox_id, redrive.redrive_outbox_id]


def test_an_item_keeps_the_promise_it_was_enqueued_with(
    outbox_database: Database, outbox_store: OutboxStore, outbox_operator: OutboxStore
) -> None:
    """Ordered items enqueued before the rail is switched back drain in order; items enqueued after are not ordered, and do not wait for the old lane."""
    outbox_operator.set_rail_ordering(ORDERED, ordered=True, reason="order needed")
    old = enqueue(outbox_store, "p1", ORDERED, 2)
    outbox_operator.set_rail_ordering(ORDERED, ordered=False, reason="the rail reorders itself now")
    new = enqueue(outbox_store, "p1", ORDERED, 2)

    assert set(claim(outbox_store)) == {old[0].outbox_id} | {i.outbox_id for i in new}
    assert query_no_role(outbox_database.url, LANE_STATE, [new[1].outbox_id]) == [
        (new[1].sequence_id, False, False)
    ]


@pytest.mark.usefixtures("ordered_rail")
def test_a_batch_enqueue_forms_each_lane_in_request_order(outbox_store: OutboxStore) -> None:
    """One batch with two lanes interleaved, behind an item already live: each lane drains in its sequence order, one at a time."""
    (live,) = enqueue(outbox_store, "p1", ORDERED, 1)
    requests = [
        make_request(participant_id=participant, rail_type=ORDERED)
        for _ in range(3)
        for participant in ("p1", "p2")
    ]
    batch = outbox_store.enqueue_many(requests)
    lanes: dict[str, list[UUID]] = {"p1": [live.outbox_id], "p2": []}
    for request, result in zip(requests, batch, strict=True):
        lanes[request.participant_id].append(result.outbox_id)

    drained: dict[str, list[UUID]] = {"p1": [], "p2": []}
    while claimed := claim(outbox_store):
        assert len({item.participant_id for item in claimed.values()}) == len(claimed)
        for item in claimed.values():
            drained[item.participant_id].append(item.outbox_id)
            finish(outbox_store, item, AttemptState.DISPATCHED)
    assert drained == lanes


@pytest.mark.usefixtures("ordered_rail")
def test_the_status_view_counts_waiting_items_apart_from_due_ones(
    outbox_store: OutboxStore,
) -> None:
    """A lane of 3 with its head leased: 1 leased, 2 waiting, 0 due; the oldest due age ignores them."""
    enqueue(outbox_store, "p1", ORDERED, 3)
    claim(outbox_store)

    (total, rail) = outbox_store.status()

    assert rail.rail_type == ORDERED
    for row in (total, rail):
        assert (row.due_count, row.waiting_count, row.leased_count, row.pending_count) == (
            0,
            2,
            1,
            3,
        )
        assert row.oldest_due_age_seconds == 0


# --- who decides which rails are ordered ----------------------------------------------------------


def test_the_operator_switches_a_rail_and_the_history_says_who_and_why(
    outbox_database: Database, outbox_operator: OutboxStore
) -> None:
    """Each switch appends an entry with the login, the database time and the reason; readers see the whole history."""
    on = outbox_operator.set_rail_ordering(ORDERED, ordered=True, reason="rail requires order")
    off = outbox_operator.set_rail_ordering(ORDERED, ordered=False, reason="rail reorders itself")

    with OutboxStore.connect(outbox_database.url, role=Role.READONLY, max_size=1) as reader:
        history = reader.rail_orderings()
    login = session_login(outbox_database.url)
    assert history == [on, off]
    assert [(e.rail_type, e.ordered, e.requested_by, e.reason) for e in history] == [
        (ORDERED, True, login, "rail requires order"),
        (ORDERED, False, login, "rail reorders itself"),
    ]
    assert on.entry_no < off.entry_no
    assert on.requested_at <= off.requested_at


def test_the_executor_may_not_switch_a_rail(
    outbox_database: Database, outbox_store: OutboxStore
) -> None:
    """A relayer or service (symphony_executor) switching a rail: 42501, nothing written."""
    before = query_no_role(outbox_database.url, HISTORY)

    with pytest.raises(PermissionDenied) as refused:
        outbox_store.set_rail_ordering(ORDERED, ordered=True, reason="not mine to decide")

    assert refused.value.sqlstate == "42501"
    assert query_no_role(outbox_database.url, HISTORY) == before


@pytest.mark.parametrize(
    ("rail", "reason", "sqlstate"),
    [
        ("", "why", "22023"),
        (ORDERED, " ", "22023"),
        ("r\n", "why", "22023"),
        (ORDERED, "a\x00b", "22021"),
    ],
)
def test_a_switch_without_a_rail_or_a_reason_is_refused(
    outbox_database: Database, outbox_operator: OutboxStore, rail: str, reason: str, sqlstate: str
) -> None:
    """Blank or control-character values (22023), a NUL byte (22021, the server's own refusal): nothing written."""
    before = query_no_role(outbox_database.url, HISTORY)

    with pytest.raises(InvalidInput) as refused:
        outbox_operator.set_rail_ordering(rail, ordered=True, reason=reason)

    assert refused.value.sqlstate == sqlstate
    assert query_no_role(outbox_database.url, HISTORY) == before


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE public.outbox_rail_ordering SET ordered = NOT ordered",
        "DELETE FROM public.outbox_rail_ordering",
        "TRUNCATE public.outbox_rail_ordering",
    ],
)
def test_nobody_rewrites_the_ordering_history(
    outbox_database: Database, outbox_operator: OutboxStore, statement: LiteralString
) -> None:
    """UPDATE, DELETE and TRUNCATE, even as owner: P0001 from the append-only trigger."""
    outbox_operator.set_rail_ordering(ORDERED, ordered=True, reason="kept for good")
    before = query_no_role(outbox_database.url, HISTORY)

    with pytest.raises(AppendOnlyViolation) as refused:
        query_no_role(outbox_database.url, statement)

    assert refused.value.sqlstate == "P0001"
    assert query_no_role(outbox_database.url, HISTORY) == before


# --- an enqueue racing its head's completion ------------------------------------------------------


@pytest.mark.usefixtures("ordered_rail")
def test_an_item_enqueued_while_its_head_completes_is_released_at_its_commit(
    outbox_database: Database, outbox_store: OutboxStore
) -> None:
    """The enqueue sees the head live and enters waiting; the completion commits first and cannot see the new item; at its commit the item releases itself."""
    enqueue(outbox_store, "p1", ORDERED, 1)
    (head,) = claim(outbox_store).values()

    request = make_request(participant_id="p1", rail_type=ORDERED)
    try:
        with outbox_store.transaction() as transaction:
            racer = transaction.enqueue(request)
            assert query_no_role(outbox_database.url, LANE_STATE, [racer.outbox_id]) == []
            finish(outbox_store, head, AttemptState.DISPATCHED)
    except RetryableConflict:
        # REPEATABLE READ or SERIALIZABLE: the commit's re-check meets the head deleted after
        # the snapshot (40001, nothing written); the caller's retry must then be due.
        racer = outbox_store.enqueue(request)

    assert set(claim(outbox_store)) == {racer.outbox_id}


@pytest.mark.usefixtures("ordered_rail")
def test_a_commit_meeting_its_heads_completion_in_flight_waits_for_it(
    outbox_database: Database, outbox_store: OutboxStore
) -> None:
    """The completion has deleted the head, uncommitted, when the enqueue commits: the commit waits on the head's row, then finds it gone and releases the item."""
    enqueue(outbox_store, "p1", ORDERED, 1)
    (head,) = claim(outbox_store).values()
    enqueued, commit = threading.Event(), threading.Event()
    racer: list[EnqueueResult] = []

    request = make_request(participant_id="p1", rail_type=ORDERED)

    def enqueue_and_commit_on_signal() -> None:
        try:
            with outbox_store.transaction() as transaction:
                racer.append(transaction.enqueue(request))
                enqueued.set()
                commit.wait(DEADLINE_SECONDS)
        except RetryableConflict:
            # REPEATABLE READ or SERIALIZABLE: the commit waited for the head's row, which the
            # completion then deleted (40001, nothing written); the caller's retry must be due.
            racer[:] = [outbox_store.enqueue(request)]

    enqueuer = threading.Thread(target=enqueue_and_commit_on_signal)
    with psycopg.connect(outbox_database.url) as completing:
        completing.execute("SET ROLE symphony_executor")
        enqueuer.start()
        assert enqueued.wait(DEADLINE_SECONDS)
        completing.execute(
            "SELECT public.complete_outbox_attempt(%s, %s, 'w', 'DISPATCHED',"
            " NULL, NULL, NULL, NULL, NULL, NULL)",
            [head.outbox_id, head.lease.lease_token],
        )
        commit.set()
        assert wait_for_lock_waiters(outbox_database.url, 1, DEADLINE_SECONDS)
        assert enqueuer.is_alive(), "the enqueue's commit waits for the completion"
    enqueuer.join(DEADLINE_SECONDS)

    assert not enqueuer.is_alive()
    assert set(claim(outbox_store)) == {racer[0].outbox_id}


@pytest.mark.usefixtures("ordered_rail")
def test_a_batch_that_waited_for_an_earlier_enqueue_of_its_lane_queues_behind_it(
    outbox_database: Database, outbox_store: OutboxStore
) -> None:
    """A batch blocked on the participant's sequence row by an open enqueue: once that commits, the batch's item waits behind it, never beside it (a batch is one statement, its snapshot older than the wait)."""
    blocked, batch = threading.Event(), []

    def enqueue_batch() -> None:
        blocked.set()
        request = make_request(participant_id="p1", rail_type=ORDERED)
        # Under REPEATABLE READ or SERIALIZABLE the sequence row the batch waited for was
        # updated after its snapshot: 40001, which the store retries in a new transaction.
        batch.extend(outbox_store.enqueue_many([request]))

    with outbox_store.transaction() as transaction:
        first = transaction.enqueue(make_request(participant_id="p1", rail_type=ORDERED))
        batcher = threading.Thread(target=enqueue_batch)
        batcher.start()
        assert blocked.wait(DEADLINE_SECONDS)
        assert wait_for_lock_waiters(outbox_database.url, 1, DEADLINE_SECONDS)
    batcher.join(DEADLINE_SECONDS)

    ((second,),) = [batch]
    assert second.sequence_id == first.sequence_id + 1
    assert set(claim(outbox_store)) == {first.outbox_id}
    assert query_no_role(outbox_database.url, LANE_STATE, [second.outbox_id]) == [
        (second.sequence_id, True, True)
    ]
