"""Proofs: no client session can hold the outbox hostage, whatever it does with its transaction.

Every lock wait inside the outbox's functions is bounded by the function itself (5 s), so a
service transaction left idle after an enqueue, or a re-drive left open in psql, makes the
participant's next enqueue fail fast with 55P03 (DatabaseTimeout, retryable) instead of
queueing behind it without bound, even for a caller that asked to wait forever. A service that
forces its ordered item's commit-time re-check to run early (SET CONSTRAINTS ALL IMMEDIATE)
and idles holds no lock a completion or lease repair needs; the follower it commits later is
released by the next lease repair. A completion under REPEATABLE READ or SERIALIZABLE whose
snapshot cannot see a follower gets 40001 and, retried, releases it.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Final, LiteralString

import psycopg
import pytest

from outbox_db import (
    AttemptState,
    DatabaseTimeout,
    OutboxStore,
    OutboxTransaction,
    Outcome,
    RetryableConflict,
    Role,
)
from outbox_db.errors import translate
from outbox_db.testonly import expire_lease, outbox_rows, query_no_role
from outbox_db.testonly.factories import make_request

if TYPE_CHECKING:
    from collections.abc import Iterator
    from uuid import UUID

    from outbox_db import ClaimedItem
    from outbox_db.testonly.pytest_plugin import Database

ORDERED: Final = "ordered-rail"
# The caller asks to wait forever; the test's own net is the statement timeout (57014), so a
# missing bound fails the SQLSTATE assertion instead of hanging the run.
PATIENT_CALLER: Final = "-c lock_timeout=0 -c statement_timeout=20s"
WAITING: LiteralString = (
    "SELECT awaiting_predecessor FROM public.payment_outbox_pending WHERE outbox_id = %s"
)
COMPLETE_ONE: LiteralString = (
    "SELECT * FROM public.complete_outbox_attempt(%s, %s, 'w', 'DISPATCHED',"
    " NULL, NULL, NULL, NULL, NULL, NULL)"
)


@contextlib.contextmanager
def session(database: Database, role: Role, options: str = "") -> Iterator[psycopg.Connection]:
    """A raw client session as `role`, in a transaction left open until the block ends."""
    with psycopg.connect(database.url, options=options) as connection:
        connection.execute(f"SET ROLE {role.value}")
        yield connection


def failed_item(store: OutboxStore, participant: str) -> UUID:
    """An item of `participant` whose only attempt failed (a re-drive candidate)."""
    store.enqueue(make_request(participant_id=participant))
    (item,) = store.claim("w", batch_size=1, lease_seconds=30)
    store.complete("w", Outcome(lease=item.lease, state=AttemptState.FAILED))
    return item.outbox_id


def claim_all(store: OutboxStore) -> dict[UUID, ClaimedItem]:
    """Everything claimable now, by outbox_id."""
    return {item.outbox_id: item for item in store.claim("w", batch_size=1000, lease_seconds=30)}


def enqueue_as_patient_caller(database: Database, participant: str) -> str | None:
    """The SQLSTATE a producer asking to wait forever gets for an enqueue of `participant`."""
    with session(database, Role.PRODUCER, PATIENT_CALLER) as connection:
        try:
            OutboxTransaction.join(connection).enqueue(make_request(participant_id=participant))
        except DatabaseTimeout as error:
            return error.sqlstate
    return None


# --- bounded waits ------------------------------------------------------------------------------


def test_an_enqueue_behind_an_idle_service_transaction_gives_up_at_the_bound(
    outbox_database: Database,
) -> None:
    """An idle transaction holds participant p1's sequence row: the next enqueue of p1 waits at most the outbox's bound, then 55P03 with nothing written; retried after, it succeeds."""
    with session(outbox_database, Role.PRODUCER) as idle:
        OutboxTransaction.join(idle).enqueue(make_request(participant_id="p1"))
        before = outbox_rows(outbox_database.url)

        assert enqueue_as_patient_caller(outbox_database, "p1") == "55P03"
        assert outbox_rows(outbox_database.url) == before
        assert enqueue_as_patient_caller(outbox_database, "p2") is None  # others are not held
        idle.commit()

    assert enqueue_as_patient_caller(outbox_database, "p1") is None


def test_an_enqueue_behind_a_redrive_left_open_gives_up_at_the_bound(
    outbox_database: Database, outbox_store: OutboxStore
) -> None:
    """An operator's re-drive, left open in its session, holds the participant: enqueues and re-drives of p1 get 55P03 at the bound, not an endless wait."""
    first, second = failed_item(outbox_store, "p1"), failed_item(outbox_store, "p1")
    with session(outbox_database, Role.OPERATOR) as psql:
        psql.execute("SELECT public.redrive_payment_outbox(%s, 'left open')", [first])

        assert enqueue_as_patient_caller(outbox_database, "p1") == "55P03"
        with (
            session(outbox_database, Role.OPERATOR, PATIENT_CALLER) as other,
            pytest.raises(psycopg.Error) as refused,
        ):
            other.execute("SELECT public.redrive_payment_outbox(%s, 'second')", [second])
        assert refused.value.sqlstate == "55P03"
        assert isinstance(translate(refused.value), DatabaseTimeout)


# --- ordered lanes against hostile services -----------------------------------------------------


@pytest.fixture
def ordered_rail(outbox_operator: OutboxStore) -> str:
    """ORDERED is an ordered rail from now on."""
    outbox_operator.set_rail_ordering(ORDERED, ordered=True, reason="the rail needs order")
    return ORDERED


@contextlib.contextmanager
def follower_rechecked_early(database: Database) -> Iterator[UUID]:
    """A service enqueues the next item of p1's lane, runs its re-check now and idles.

    READ COMMITTED, whatever the server's default: the interleaving under test is the
    re-check's lock. (A SERIALIZABLE service may instead fail its commit with 40001, the
    head's deletion having made it a pivot; retried, its item finds the head gone.)
    """
    with session(database, Role.PRODUCER) as service:
        service.execute("SET TRANSACTION ISOLATION LEVEL READ COMMITTED")
        follower = OutboxTransaction.join(service).enqueue(
            make_request(participant_id="p1", rail_type=ORDERED)
        )
        service.execute("SET CONSTRAINTS ALL IMMEDIATE")
        yield follower.outbox_id
        service.commit()


@pytest.mark.parametrize("head_leaves_by", ["completion", "lease repair at the ceiling"])
@pytest.mark.usefixtures("ordered_rail")
def test_a_service_idling_after_an_early_recheck_holds_no_head_and_its_item_is_released(
    outbox_database: Database, outbox_store: OutboxStore, head_leaves_by: str
) -> None:
    """The head leaves the queue while the service idles (neither waits for it: a wait would end in 55P03); the follower it then commits waits behind nothing, and the next lease repair releases it."""
    outbox_store.enqueue(make_request(participant_id="p1", rail_type=ORDERED))
    (head,) = claim_all(outbox_store).values()
    with follower_rechecked_early(outbox_database) as follower:
        if head_leaves_by == "completion":
            outcome = Outcome(lease=head.lease, state=AttemptState.DISPATCHED)
            assert outbox_store.complete("w", outcome).lease_held
        else:
            query_no_role(
                outbox_database.url, "UPDATE public.payment_outbox_settings SET max_attempts = 1"
            )
            expire_lease(outbox_database.url, head.outbox_id)
            (repaired,) = outbox_store.repair("repairer", batch_size=10)
            assert (repaired.outbox_id, repaired.new_state) == (head.outbox_id, "FAILED")

    assert query_no_role(outbox_database.url, WAITING, [follower]) == [(True,)]
    assert claim_all(outbox_store) == {}
    outbox_store.repair("repairer", batch_size=10)
    assert set(claim_all(outbox_store)) == {follower}


@pytest.mark.parametrize("isolation", ["REPEATABLE READ", "SERIALIZABLE"])
@pytest.mark.usefixtures("ordered_rail")
def test_a_completion_blind_to_a_committed_follower_fails_retryably_and_its_retry_releases_it(
    outbox_database: Database, outbox_store: OutboxStore, isolation: str
) -> None:
    """The relayer's transaction took its snapshot before the follower committed: completing the head there is 40001, nothing written; the retry releases the follower at once."""
    outbox_store.enqueue(make_request(participant_id="p1", rail_type=ORDERED))
    (head,) = claim_all(outbox_store).values()
    with session(outbox_database, Role.EXECUTOR) as relayer:
        relayer.execute(f"SET TRANSACTION ISOLATION LEVEL {isolation}")
        relayer.execute("SELECT 1")  # the snapshot
        follower = outbox_store.enqueue(make_request(participant_id="p1", rail_type=ORDERED))
        with pytest.raises(psycopg.Error) as conflict:
            relayer.execute(COMPLETE_ONE, [head.outbox_id, head.lease.lease_token])
        assert conflict.value.sqlstate == "40001"
        assert isinstance(translate(conflict.value), RetryableConflict)
        relayer.rollback()  # the role went with the transaction: take it again

        relayer.execute("SET ROLE symphony_executor")
        relayer.execute(f"SET TRANSACTION ISOLATION LEVEL {isolation}")
        relayer.execute(COMPLETE_ONE, [head.outbox_id, head.lease.lease_token])
        relayer.commit()

    assert set(claim_all(outbox_store)) == {follower.outbox_id}


@pytest.mark.parametrize("isolation", ["REPEATABLE READ", "SERIALIZABLE"])
def test_a_completion_whose_snapshot_predates_its_claim_fails_retryably_not_as_lease_lost(
    outbox_database: Database, outbox_store: OutboxStore, isolation: str
) -> None:
    """The snapshot sees the item unleased: 40001, nothing written, not a false P7002; the retry records the outcome."""
    outbox_store.enqueue(make_request())
    with session(outbox_database, Role.EXECUTOR) as relayer:
        relayer.execute(f"SET TRANSACTION ISOLATION LEVEL {isolation}")
        relayer.execute("SELECT 1")  # the snapshot, before the claim
        (item,) = claim_all(outbox_store).values()
        with pytest.raises(psycopg.Error) as conflict:
            relayer.execute(COMPLETE_ONE, [item.outbox_id, item.lease.lease_token])
        assert conflict.value.sqlstate == "40001"
        relayer.rollback()

        relayer.execute("SET ROLE symphony_executor")
        relayer.execute(f"SET TRANSACTION ISOLATION LEVEL {isolation}")
        (recorded,) = relayer.execute(
            COMPLETE_ONE, [item.outbox_id, item.lease.lease_token]
        ).fetchall()
        relayer.commit()
    assert recorded == (1, "DISPATCHED")
