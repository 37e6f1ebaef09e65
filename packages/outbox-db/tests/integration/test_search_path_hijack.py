"""Proofs: a caller's hijacked search_path reaches none of the outbox functions' names.

An attacker (a member of symphony_executor) plants look-alikes of what the functions use in a
schema of its own and puts it first on its session's search_path. Every SECURITY DEFINER
function pins its search_path (test_role_grants.py), so enqueue still writes the real
table, claim still uses the real clock and random tokens, and completion still checks the
lease. The control shows the plants do resolve in that session, for the caller and for the
functions' owner.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Final, LiteralString

import pytest
from psycopg.conninfo import make_conninfo

from outbox_db import LeaseLost
from outbox_db.testonly import db_now, outbox_rows, query_as, query_no_role
from outbox_db.testonly.factories import leased_item, make_request
from outbox_db.testonly.pytest_plugin import throwaway_role

if TYPE_CHECKING:
    from collections.abc import Iterator

    from outbox_db import EnqueueRequest, OutboxStore
    from outbox_db.testonly.pytest_plugin import Database

Row = tuple[object, ...]

# The throwaway role's name arrives as the session setting outbox_proof.role.
CREATE_ATTACKER: Final = """
DO $proof$
DECLARE
    attacker text := pg_catalog.current_setting('outbox_proof.role');
BEGIN
    EXECUTE pg_catalog.format('CREATE ROLE %I NOLOGIN IN ROLE symphony_executor', attacker);
    EXECUTE pg_catalog.format('CREATE SCHEMA attacker AUTHORIZATION %I', attacker);
END
$proof$
"""

# The attacker's look-alikes of what the outbox functions use, in a schema it owns. A function
# that resolved names through the caller's search_path would read this stopped clock (in the
# past, so an expired lease would look held), mint this "random" id, use these equalities (a
# wrong token or worker would match) and read or write this table.
STOPPED_CLOCK: Final = datetime(2000, 1, 1, tzinfo=UTC)
CONSTANT_UUID: Final = uuid.UUID("00000000-0000-4000-8000-000000000666")
PLANTS: Final[tuple[LiteralString, ...]] = (
    (
        "CREATE FUNCTION attacker.now() RETURNS timestamptz LANGUAGE sql STABLE"
        " AS $$ SELECT timestamptz '2000-01-01 00:00:00+00' $$"
    ),
    (
        "CREATE FUNCTION attacker.gen_random_uuid() RETURNS uuid LANGUAGE sql"
        " AS $$ SELECT uuid '00000000-0000-4000-8000-000000000666' $$"
    ),
    (
        "CREATE FUNCTION attacker.always_equal(text, text) RETURNS boolean LANGUAGE sql IMMUTABLE"
        " AS $$ SELECT true $$"
    ),
    (
        "CREATE OPERATOR attacker.= (LEFTARG = text, RIGHTARG = text,"
        " FUNCTION = attacker.always_equal)"
    ),
    (
        "CREATE FUNCTION attacker.always_equal(uuid, uuid) RETURNS boolean LANGUAGE sql IMMUTABLE"
        " AS $$ SELECT true $$"
    ),
    (
        "CREATE OPERATOR attacker.= (LEFTARG = uuid, RIGHTARG = uuid,"
        " FUNCTION = attacker.always_equal)"
    ),
    (
        "CREATE TABLE attacker.payment_outbox_pending ("
        " outbox_id uuid, instruction_id text, participant_id text, sequence_id bigint,"
        " idempotency_key text, rail_type text, payload jsonb, attempt_count integer DEFAULT 0,"
        " next_attempt_at timestamptz, created_at timestamptz, claimed_by text, lease_token uuid,"
        " claimed_at timestamptz, lease_expires_at timestamptz)"
    ),
    # Usable by everyone, the functions' owner included: functions are executable by PUBLIC
    # by default; the schema and the table are opened to PUBLIC here.
    "GRANT USAGE ON SCHEMA attacker TO PUBLIC",
    "GRANT ALL ON attacker.payment_outbox_pending TO PUBLIC",
    (
        "INSERT INTO attacker.payment_outbox_pending"
        " (outbox_id, instruction_id, participant_id, sequence_id, idempotency_key, rail_type,"
        " payload, next_attempt_at, created_at)"
        " VALUES ('00000000-0000-4000-8000-00000000dec0', 'ins-decoy', 'participant-a', 1,"
        " 'key-decoy', 'rtp', '{}', '1999-01-01', '1999-01-01')"
    ),
)
# The attacker's schema first and pg_catalog after it: unqualified names resolve to the plants.
HIJACKED_SEARCH_PATH: Final = "attacker,pg_catalog,public"
DECOY_TABLE: Final = "SELECT to_jsonb(d)::text FROM attacker.payment_outbox_pending AS d"

ENQUEUE: Final = (
    "SELECT outbox_id, sequence_id, created"
    " FROM public.enqueue_payment_outbox(%s, %s, %s, %s, %s::jsonb)"
)
CLAIM: Final = (
    "SELECT outbox_id, lease_token, lease_expires_at"
    " FROM public.claim_outbox_batch(%s, %s, %s) ORDER BY outbox_id"
)
COMPLETE: Final = (
    "SELECT attempt_no, state::text FROM public.complete_outbox_attempt("
    "%s, %s, %s, 'DISPATCHED', NULL, NULL, NULL, NULL, NULL, NULL)"
)


@dataclasses.dataclass(frozen=True)
class Attacker:
    """A role that exists for one test, and a session whose search_path puts its schema first."""

    name: str
    hijacked_url: str


@pytest.fixture
def attacker(outbox_database: Database) -> Iterator[Attacker]:
    """A member of symphony_executor that owns schema `attacker`, planted with look-alikes."""
    with throwaway_role(outbox_database, CREATE_ATTACKER) as role:
        for plant in PLANTS:
            query_as(outbox_database.url, role.name, plant)
        options = f"-c search_path={HIJACKED_SEARCH_PATH}"
        yield Attacker(
            name=role.name, hijacked_url=make_conninfo(outbox_database.url, options=options)
        )


def hijacked_enqueue(attacker: Attacker, request: EnqueueRequest) -> Row:
    """Enqueue `request` as the attacker, from a session with the hijacked search_path."""
    (row,) = query_as(
        attacker.hijacked_url,
        attacker.name,
        ENQUEUE,
        [
            request.instruction_id,
            request.participant_id,
            request.idempotency_key,
            request.rail_type,
            json.dumps(dict(request.payload)),
        ],
    )
    return row


@pytest.mark.parametrize("resolver", ["attacker", "outbox_owner"])
def test_hijack_is_armed_for_the_caller_and_the_function_owner(
    attacker: Attacker, resolver: str
) -> None:
    """Control: in the hijacked session unqualified names resolve to the plants, as owner too."""
    # A SECURITY DEFINER function resolves names as its owner: the plants must reach it as well.
    ((now, minted, text_equal, uuid_equal, decoys),) = query_as(
        attacker.hijacked_url,
        attacker.name if resolver == "attacker" else resolver,
        "SELECT now(), gen_random_uuid(), 'same' = 'different',"
        " pg_catalog.gen_random_uuid() = pg_catalog.gen_random_uuid(),"
        " (SELECT count(*) FROM payment_outbox_pending)",
    )

    assert (now, minted, text_equal, uuid_equal, decoys) == (
        STOPPED_CLOCK,
        CONSTANT_UUID,
        True,
        True,
        1,
    )


def test_hijacked_enqueue_writes_the_real_table(
    outbox_database: Database, attacker: Attacker
) -> None:
    """With the caller's search_path hijacked, enqueue still mints real ids into the real table."""
    decoy = query_no_role(outbox_database.url, DECOY_TABLE)
    first_request, second_request = make_request(), make_request()
    before = db_now(outbox_database.url)

    first = hijacked_enqueue(attacker, first_request)
    second = hijacked_enqueue(attacker, second_request)
    replay = hijacked_enqueue(attacker, first_request)

    after = db_now(outbox_database.url)
    assert (first[1:], second[1:], replay) == ((1, True), (2, True), (first[0], 1, False))
    assert first[0] != second[0]
    assert CONSTANT_UUID not in {first[0], second[0]}
    stored = query_no_role(
        outbox_database.url,
        "SELECT outbox_id, instruction_id, created_at FROM public.payment_outbox_pending"
        " ORDER BY sequence_id",
    )
    assert [row[:2] for row in stored] == [
        (first[0], first_request.instruction_id),
        (second[0], second_request.instruction_id),
    ]
    for _, _, created_at in stored:
        assert isinstance(created_at, datetime)
        assert before <= created_at <= after
    assert query_no_role(outbox_database.url, DECOY_TABLE) == decoy


def test_hijacked_claim_uses_the_real_clock_and_random_tokens(
    outbox_database: Database, outbox_store: OutboxStore, attacker: Attacker
) -> None:
    """With the caller's search_path hijacked, claim leases real rows by the real clock."""
    decoy = query_no_role(outbox_database.url, DECOY_TABLE)
    enqueued = {outbox_store.enqueue(make_request()).outbox_id for _ in range(2)}
    before = db_now(outbox_database.url)

    claimed = query_as(attacker.hijacked_url, attacker.name, CLAIM, [10, "worker-1", 30])

    after = db_now(outbox_database.url)
    assert {row[0] for row in claimed} == enqueued
    tokens = {row[1] for row in claimed}
    assert len(tokens) == 2
    assert CONSTANT_UUID not in tokens
    slack = timedelta(seconds=1)
    for _, _, expires_at in claimed:
        assert isinstance(expires_at, datetime)
        assert before + timedelta(seconds=30) - slack <= expires_at
        assert expires_at <= after + timedelta(seconds=30) + slack
    held = query_no_role(
        outbox_database.url,
        "SELECT outbox_id, lease_token, claimed_by FROM public.payment_outbox_pending"
        " ORDER BY outbox_id",
    )
    assert held == [(row[0], row[1], "worker-1") for row in claimed]
    assert query_no_role(outbox_database.url, DECOY_TABLE) == decoy


def test_hijacked_completion_still_checks_the_lease(
    outbox_database: Database, outbox_store: OutboxStore, attacker: Attacker
) -> None:
    """With the caller's search_path hijacked, a wrong token or worker still gets P7002."""
    item = leased_item(outbox_store)
    untouched = outbox_rows(outbox_database.url, versions=True)

    for token, worker in ((uuid.uuid4(), "worker-1"), (item.lease_token, "worker-2")):
        with pytest.raises(LeaseLost) as lost:
            query_as(
                attacker.hijacked_url, attacker.name, COMPLETE, [item.outbox_id, token, worker]
            )
        assert lost.value.sqlstate == "P7002"
    assert outbox_rows(outbox_database.url, versions=True) == untouched

    before = db_now(outbox_database.url)
    done = query_as(
        attacker.hijacked_url,
        attacker.name,
        COMPLETE,
        [item.outbox_id, item.lease_token, "worker-1"],
    )
    after = db_now(outbox_database.url)

    assert done == [(1, "DISPATCHED")]
    ledger = query_no_role(
        outbox_database.url,
        "SELECT outbox_id, state::text, completed_at FROM public.payment_outbox_attempts",
    )
    assert [row[:2] for row in ledger] == [(item.outbox_id, "DISPATCHED")]
    ((_, _, completed_at),) = ledger
    assert isinstance(completed_at, datetime)
    assert before <= completed_at <= after
    assert query_no_role(outbox_database.url, "SELECT * FROM public.payment_outbox_pending") == []
