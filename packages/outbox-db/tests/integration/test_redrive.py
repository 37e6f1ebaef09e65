"""Proofs: an operator re-drives a FAILED item as a new, linked item, once, and only that.

A re-drive is enqueued like any item (next sequence number, due now) under the outbox's own
key `outbox:redrive:<outbox_id of the FAILED item>`, and recorded with who asked, when and why in the append-only operator
log; the FAILED item itself never changes. Every refusal is asserted on its SQLSTATE first
and shows that nothing was written (every row of every outbox table, with the transaction
that last wrote it, is the same before and after).
"""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
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
    RedriveRefused,
    Role,
    UnknownItem,
)
from outbox_db.testonly import (
    db_now,
    outbox_rows,
    query_as,
    query_no_role,
    session_login,
    wait_for_lock_waiters,
)
from outbox_db.testonly.factories import completed_item, leased_item, make_request

if TYPE_CHECKING:
    from collections.abc import Callable
    from uuid import UUID

    from outbox_db import ClaimedItem, Redrive
    from outbox_db.testonly.pytest_plugin import Database

RACERS: Final = 16
DEADLINE_SECONDS: Final = 30.0

ITEM: LiteralString = """
SELECT instruction_id, participant_id, sequence_id, idempotency_key, rail_type, payload,
    attempt_count, claimed_by, next_attempt_at <= now() AS due
FROM public.payment_outbox_pending WHERE outbox_id = %s
"""
LEDGER_OF: LiteralString = """
SELECT to_jsonb(a)::text, a.xmin::text FROM public.payment_outbox_attempts AS a
WHERE a.outbox_id = %s ORDER BY a.attempt_no
"""
LOG: LiteralString = """
SELECT entry_no, outbox_id, redrive_outbox_id, instruction_id, redrive_idempotency_key,
    redrive_generation, requested_by, requested_at, reason
FROM public.outbox_operator_log ORDER BY entry_no
"""
REDRIVE: LiteralString = "SELECT * FROM public.redrive_payment_outbox(%s, %s)"
LOG_MUTATIONS: Final[dict[str, LiteralString]] = {
    "update": "UPDATE public.outbox_operator_log SET reason = 'rewritten'",
    "delete": "DELETE FROM public.outbox_operator_log",
    "truncate": "TRUNCATE public.outbox_operator_log",
}


def failed_item(store: OutboxStore, **overrides: object) -> ClaimedItem:
    """A new item the rail refused for good: its one attempt is FAILED, its queue row gone."""
    request = make_request(**overrides)
    created = store.enqueue(request)
    claimed = store.claim("worker-1", batch_size=100, lease_seconds=30)
    item = next(item for item in claimed if item.outbox_id == created.outbox_id)
    store.complete(
        "worker-1",
        Outcome(lease=item.lease, state=AttemptState.FAILED, rail_code="422", error_code="REFUSED"),
    )
    return item


# --- what a re-drive makes ---------------------------------------------------------------------


def test_redrive_enqueues_a_new_item_for_the_instruction_under_the_derived_key(
    outbox_database: Database, outbox_store: OutboxStore, outbox_operator: OutboxStore
) -> None:
    """A new item: same instruction, participant, rail and payload, key 'outbox:redrive:<id>', the next sequence number, due now, no attempts; the FAILED item's ledger is untouched."""
    failed = failed_item(outbox_store)
    ledger_before = query_no_role(outbox_database.url, LEDGER_OF, [failed.outbox_id])
    before = db_now(outbox_database.url)

    redrive = outbox_operator.redrive(failed.outbox_id, reason="rail fixed the account mapping")

    after = db_now(outbox_database.url)
    assert (redrive.outbox_id, redrive.created) == (failed.outbox_id, True)
    assert redrive.redrive_outbox_id != failed.outbox_id
    assert redrive.idempotency_key == f"outbox:redrive:{failed.outbox_id}"
    assert (redrive.requested_by, redrive.reason) == (
        session_login(outbox_database.url),
        "rail fixed the account mapping",
    )
    assert before <= redrive.requested_at <= after
    assert query_no_role(outbox_database.url, ITEM, [redrive.redrive_outbox_id]) == [
        (
            failed.instruction_id,
            failed.participant_id,
            failed.sequence_id + 1,
            redrive.idempotency_key,
            failed.rail_type,
            failed.payload,
            0,
            None,
            True,
        )
    ]
    assert query_no_role(outbox_database.url, LEDGER_OF, [failed.outbox_id]) == ledger_before


def test_the_operator_log_links_the_failed_item_and_its_redrive(
    outbox_database: Database, outbox_store: OutboxStore, outbox_operator: OutboxStore
) -> None:
    """One log entry: the FAILED item, the new item, the instruction, the key, who, when, why."""
    failed = failed_item(outbox_store)

    redrive = outbox_operator.redrive(failed.outbox_id, reason="customer confirmed")

    assert query_no_role(outbox_database.url, LOG) == [
        (
            1,
            failed.outbox_id,
            redrive.redrive_outbox_id,
            failed.instruction_id,
            redrive.idempotency_key,
            1,
            redrive.requested_by,
            redrive.requested_at,
            "customer confirmed",
        )
    ]


def test_the_redrive_is_claimed_with_the_derived_key(
    outbox_store: OutboxStore, outbox_operator: OutboxStore
) -> None:
    """What a relayer claims next is the re-drive, carrying the derived key to the rail."""
    failed = failed_item(outbox_store)
    redrive = outbox_operator.redrive(failed.outbox_id, reason="retry after rail outage")

    (claimed,) = outbox_store.claim("worker-2", batch_size=10, lease_seconds=30)

    assert (claimed.outbox_id, claimed.idempotency_key, claimed.attempt_count) == (
        redrive.redrive_outbox_id,
        f"outbox:redrive:{failed.outbox_id}",
        0,
    )
    assert (claimed.instruction_id, claimed.payload) == (failed.instruction_id, failed.payload)


def test_a_failed_redrive_is_redriven_under_the_next_generation_key(
    outbox_database: Database, outbox_store: OutboxStore, outbox_operator: OutboxStore
) -> None:
    """A re-drive that fails too is re-driven under its own id's key, logged as generation 2."""
    failed = failed_item(outbox_store)
    first = outbox_operator.redrive(failed.outbox_id, reason="first try")
    (claimed,) = outbox_store.claim("worker-1", batch_size=10, lease_seconds=30)
    outbox_store.complete("worker-1", Outcome(lease=claimed.lease, state=AttemptState.FAILED))

    second = outbox_operator.redrive(first.redrive_outbox_id, reason="second try")

    assert second.idempotency_key == f"outbox:redrive:{first.redrive_outbox_id}"
    generations = [(row[1], row[5]) for row in query_no_role(outbox_database.url, LOG)]
    assert generations == [(failed.outbox_id, 1), (first.redrive_outbox_id, 2)]


# --- once per item -------------------------------------------------------------------------------


def test_redriving_again_returns_the_first_redrive_and_writes_nothing(
    outbox_database: Database, outbox_store: OutboxStore, outbox_operator: OutboxStore
) -> None:
    """A second re-drive of one item returns the first one (created=False, its reason kept)."""
    failed = failed_item(outbox_store)
    first = outbox_operator.redrive(failed.outbox_id, reason="first ask")
    snapshot = outbox_rows(outbox_database.url, versions=True)

    again = outbox_operator.redrive(failed.outbox_id, reason="second ask")

    assert again.created is False
    assert again.redrive_outbox_id == first.redrive_outbox_id
    assert (again.idempotency_key, again.reason, again.requested_at) == (
        first.idempotency_key,
        "first ask",
        first.requested_at,
    )
    assert outbox_rows(outbox_database.url, versions=True) == snapshot


def test_a_redrive_racing_an_uncommitted_one_waits_for_it_and_returns_it(
    outbox_database: Database, outbox_store: OutboxStore, outbox_operator: OutboxStore
) -> None:
    """A re-drive racing an uncommitted one of the same item waits, then returns it: one item, one log entry, no number burned."""
    failed = failed_item(outbox_store)
    with ThreadPoolExecutor(max_workers=1) as second_session:
        with psycopg.connect(outbox_database.url) as first_session:
            first_session.execute("SET LOCAL ROLE symphony_operator")
            (first_row,) = first_session.execute(REDRIVE, [failed.outbox_id, "first"]).fetchall()
            racing = second_session.submit(
                outbox_operator.redrive, failed.outbox_id, reason="second"
            )
            assert wait_for_lock_waiters(outbox_database.url, 1, DEADLINE_SECONDS), (
                "the second re-drive must wait for the first, not pass it"
            )
            assert not racing.done()
        # Leaving the block committed the first session's re-drive.
        second = racing.result(timeout=DEADLINE_SECONDS)

    assert (second.created, second.redrive_outbox_id, second.reason) == (
        False,
        first_row[1],
        "first",
    )
    assert [row[2] for row in query_no_role(outbox_database.url, LOG)] == [first_row[1]]
    (pending,) = query_no_role(
        outbox_database.url, "SELECT outbox_id, sequence_id FROM public.payment_outbox_pending"
    )
    assert pending == (first_row[1], failed.sequence_id + 1)


def test_concurrent_redrives_of_one_item_make_one_item(
    outbox_database: Database, outbox_store: OutboxStore, outbox_operator: OutboxStore
) -> None:
    """16 operators racing to re-drive one item: all get the same re-drive, one created it."""
    failed = failed_item(outbox_store)
    barrier = threading.Barrier(RACERS, timeout=DEADLINE_SECONDS)

    def redrive(index: int) -> Redrive:
        barrier.wait()
        return outbox_operator.redrive(failed.outbox_id, reason=f"operator {index}")

    with ThreadPoolExecutor(max_workers=RACERS) as threads:
        results = list(threads.map(redrive, range(RACERS)))

    assert len({result.redrive_outbox_id for result in results}) == 1
    assert sum(result.created for result in results) == 1
    assert len(query_no_role(outbox_database.url, LOG)) == 1
    sequences = query_no_role(
        outbox_database.url, "SELECT sequence_id FROM public.payment_outbox_pending"
    )
    assert sequences == [(failed.sequence_id + 1,)]


# --- refusals -----------------------------------------------------------------------------------


def pending_item(store: OutboxStore) -> UUID:
    """An item waiting in the queue."""
    return store.enqueue(make_request()).outbox_id


def leased(store: OutboxStore) -> UUID:
    """An item a worker holds."""
    return leased_item(store).outbox_id


def dispatched(store: OutboxStore) -> UUID:
    """An item the rail accepted."""
    return completed_item(store).outbox_id


@pytest.mark.parametrize(
    ("make", "state"),
    [(pending_item, "pending"), (leased, "leased"), (dispatched, "DISPATCHED")],
    ids=["pending", "leased", "dispatched"],
)
def test_redrive_of_an_item_that_is_not_failed_is_refused_and_writes_nothing(
    outbox_database: Database,
    outbox_store: OutboxStore,
    outbox_operator: OutboxStore,
    make: Callable[[OutboxStore], UUID],
    state: str,
) -> None:
    """Only a FAILED item can be re-driven: P7004, naming what the item is, nothing written."""
    outbox_id = make(outbox_store)
    snapshot = outbox_rows(outbox_database.url, versions=True)

    with pytest.raises(RedriveRefused) as refused:
        outbox_operator.redrive(outbox_id, reason="should not happen")

    assert refused.value.sqlstate == "P7004"
    assert str(refused.value) == (
        f"only a FAILED item can be re-driven: the item is {state}, not FAILED [SQLSTATE P7004]"
    )
    assert outbox_rows(outbox_database.url, versions=True) == snapshot


def test_redrive_of_an_unknown_item_is_refused_and_writes_nothing(
    outbox_database: Database, outbox_store: OutboxStore, outbox_operator: OutboxStore
) -> None:
    """An outbox_id no item has: P7005, nothing written."""
    failed_item(outbox_store)
    snapshot = outbox_rows(outbox_database.url, versions=True)

    with pytest.raises(UnknownItem) as refused:
        outbox_operator.redrive(uuid.uuid4(), reason="typo in the id")

    assert refused.value.sqlstate == "P7005"
    assert outbox_rows(outbox_database.url, versions=True) == snapshot


@pytest.mark.parametrize(
    "reason", ["", "   ", "\t\n", "x" * 256], ids=["empty", "blank", "whitespace", "too-long"]
)
def test_redrive_without_a_usable_reason_is_refused_and_writes_nothing(
    outbox_database: Database, outbox_store: OutboxStore, outbox_operator: OutboxStore, reason: str
) -> None:
    """The reason is required: blank or over 255 characters is 22023 naming it, nothing written."""
    failed = failed_item(outbox_store)
    snapshot = outbox_rows(outbox_database.url, versions=True)

    with pytest.raises(InvalidInput) as refused:
        outbox_operator.redrive(failed.outbox_id, reason=reason)

    assert refused.value.sqlstate == "22023"
    assert refused.value.__cause__.diag.column_name == "reason"  # type: ignore[union-attr]
    assert outbox_rows(outbox_database.url, versions=True) == snapshot


def test_a_service_cannot_take_the_redrive_key_first(
    outbox_database: Database, outbox_store: OutboxStore, outbox_operator: OutboxStore
) -> None:
    """Enqueueing the key a re-drive will use is 22023 (the outbox's namespace), nothing written; the re-drive then gets it."""
    failed = failed_item(outbox_store)
    snapshot = outbox_rows(outbox_database.url, versions=True)
    squatter = make_request(
        instruction_id=failed.instruction_id,
        participant_id=failed.participant_id,
        idempotency_key=f"outbox:redrive:{failed.outbox_id}",
        rail_type=failed.rail_type,
        payload=failed.payload,
    )

    with pytest.raises(InvalidInput) as refused:
        outbox_store.enqueue(squatter)

    assert refused.value.sqlstate == "22023"
    assert refused.value.__cause__.diag.column_name == "idempotency_key"  # type: ignore[union-attr]
    assert outbox_rows(outbox_database.url, versions=True) == snapshot
    redrive = outbox_operator.redrive(failed.outbox_id, reason="namespace is ours")
    assert (redrive.created, redrive.idempotency_key) == (True, squatter.idempotency_key)


def test_the_old_derived_key_taken_by_a_service_no_longer_collides(
    outbox_store: OutboxStore, outbox_operator: OutboxStore
) -> None:
    """A service's `<key>:redrive:1` (the scheme before 0010) leaves the re-drive unaffected."""
    failed = failed_item(outbox_store)
    outbox_store.enqueue(
        make_request(
            instruction_id=f"{failed.instruction_id}-other",
            participant_id=failed.participant_id,
            idempotency_key=f"{failed.idempotency_key}:redrive:1",
            rail_type=failed.rail_type,
        )
    )

    redrive = outbox_operator.redrive(failed.outbox_id, reason="no collision")

    assert redrive.created


def test_an_item_with_a_255_character_key_can_be_redriven(
    outbox_store: OutboxStore, outbox_operator: OutboxStore
) -> None:
    """The re-drive's key is 51 characters whatever the original's: no 22023 for a key at the limit."""
    failed = failed_item(outbox_store, idempotency_key="k" * 255)

    redrive = outbox_operator.redrive(failed.outbox_id, reason="long key")

    assert redrive.created
    assert len(redrive.idempotency_key) == len("outbox:redrive:") + 36


# --- the operator log is append-only, the re-drive the operator's alone --------------------------


@pytest.mark.parametrize("statement", LOG_MUTATIONS.values(), ids=LOG_MUTATIONS.keys())
def test_owner_cannot_change_the_operator_log(
    outbox_database: Database,
    outbox_store: OutboxStore,
    outbox_operator: OutboxStore,
    statement: LiteralString,
) -> None:
    """UPDATE, DELETE and TRUNCATE of the operator log fail with P0001 from its trigger, even as owner; the entry stays."""
    outbox_operator.redrive(failed_item(outbox_store).outbox_id, reason="recorded for good")
    before = query_no_role(outbox_database.url, LOG)

    with pytest.raises(AppendOnlyViolation) as refused:
        query_no_role(outbox_database.url, statement)

    assert refused.value.sqlstate == "P0001"
    assert "deny_append_only_mutation" in (refused.value.__cause__.diag.context or "")  # type: ignore[union-attr]
    assert query_no_role(outbox_database.url, LOG) == before
    assert len(before) == 1


@pytest.mark.parametrize("role", [Role.EXECUTOR, Role.READONLY, Role.AUDITOR], ids=str)
def test_runtime_roles_cannot_redrive(
    outbox_database: Database, outbox_store: OutboxStore, role: Role
) -> None:
    """The executor and both readers get 42501 for redrive_payment_outbox; nothing written."""
    failed = failed_item(outbox_store)
    snapshot = outbox_rows(outbox_database.url, versions=True)

    with pytest.raises(PermissionDenied) as refused:
        query_as(outbox_database.url, role, REDRIVE, [failed.outbox_id, "not mine to do"])

    assert refused.value.sqlstate == "42501"
    assert refused.value.__cause__.diag.message_primary == (  # type: ignore[union-attr]
        "permission denied for function redrive_payment_outbox"
    )
    assert outbox_rows(outbox_database.url, versions=True) == snapshot


OPERATOR_FORBIDDEN: Final[dict[str, LiteralString]] = {
    "enqueue": "SELECT * FROM public.enqueue_payment_outbox('i', 'p', 'k', 'rtp', '{}')",
    "claim": "SELECT * FROM public.claim_outbox_batch(10, 'operator', 30)",
    "read-queue": "SELECT count(*) FROM public.payment_outbox_pending",
    "read-ledger": "SELECT count(*) FROM public.payment_outbox_attempts",
    "read-log": "SELECT count(*) FROM public.outbox_operator_log",
    "write-log": "INSERT INTO public.outbox_operator_log (outbox_id, redrive_outbox_id,"
    " instruction_id, redrive_idempotency_key, redrive_generation, requested_by, reason)"
    " VALUES (gen_random_uuid(), gen_random_uuid(), 'i', 'k', 1, 'forged', 'forged')",
}


@pytest.mark.parametrize("statement", OPERATOR_FORBIDDEN.values(), ids=OPERATOR_FORBIDDEN.keys())
def test_the_operator_can_only_redrive_and_switch_rail_ordering(
    outbox_database: Database, outbox_store: OutboxStore, statement: LiteralString
) -> None:
    """symphony_operator may not enqueue, claim, read or write the tables (42501): it re-drives (and switches rail ordering, test_ordered_delivery.py)."""
    failed_item(outbox_store)
    snapshot = outbox_rows(outbox_database.url, versions=True)

    with pytest.raises(PermissionDenied) as refused:
        query_as(outbox_database.url, Role.OPERATOR, statement)

    assert refused.value.sqlstate == "42501"
    assert outbox_rows(outbox_database.url, versions=True) == snapshot
