"""Proofs: each role can do exactly what DESIGN section 6 grants it; anything else is 42501.

Every refusal is asserted on its SQLSTATE first; the driver's message (chained as
``__cause__``) then names the refused object, so a refusal of the wrong object (a schema, say)
cannot pass for the right one. Each write refusal also shows that no row changed, and each
group of refusals has a positive control, so a database that refuses everything fails too.

Throwaway roles are cluster-wide: each gets a unique name, reaches the SQL that creates and
drops it through a session setting (so every statement stays a literal), and is dropped with
everything it owns after its test.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Final, LiteralString

import pytest
from psycopg.conninfo import make_conninfo

from outbox_db import AttemptState, LeaseLost, OutboxStore, Outcome, PermissionDenied, Role
from outbox_db.testonly import expire_lease, outbox_rows, query_as, query_no_role
from outbox_db.testonly.factories import leased_item, make_request

if TYPE_CHECKING:
    from collections.abc import Iterator

    from outbox_db import EnqueueRequest
    from outbox_db.testonly.pytest_plugin import Database

PINNED_SEARCH_PATH: Final = "search_path=pg_catalog, pg_temp"
READERS: Final = (Role.READONLY, Role.AUDITOR)
RUNTIME_ROLES: Final = (Role.PRODUCER, Role.EXECUTOR, *READERS)

# Direct writes, one per table and verb. Each would change the seeded rows if it were allowed,
# and none reads a column, so the only privilege it needs is the one its verb names.
WRITES: Final[dict[str, dict[str, LiteralString]]] = {
    "participant_outbox_sequences": {
        "insert": "INSERT INTO public.participant_outbox_sequences"
        " (participant_id, next_sequence_id) VALUES ('participant-forged', 1)",
        "update": "UPDATE public.participant_outbox_sequences SET next_sequence_id = 1000",
        "delete": "DELETE FROM public.participant_outbox_sequences",
        "truncate": "TRUNCATE public.participant_outbox_sequences",
    },
    "payment_outbox_pending": {
        "insert": "INSERT INTO public.payment_outbox_pending"
        " (instruction_id, participant_id, sequence_id, idempotency_key, rail_type, payload)"
        " VALUES ('ins-forged', 'participant-a', 1000, 'key-forged', 'rtp', '{}')",
        "update": "UPDATE public.payment_outbox_pending SET payload = '{\"forged\": true}'",
        "delete": "DELETE FROM public.payment_outbox_pending",
        "truncate": "TRUNCATE public.payment_outbox_pending",
    },
    "outbox_terminal_outcomes": {
        "insert": "INSERT INTO public.outbox_terminal_outcomes (outbox_id)"
        " VALUES (pg_catalog.gen_random_uuid())",
        "update": "UPDATE public.outbox_terminal_outcomes SET outbox_id = pg_catalog.gen_random_uuid()",
        "delete": "DELETE FROM public.outbox_terminal_outcomes",
        "truncate": "TRUNCATE public.outbox_terminal_outcomes",
    },
    "payment_outbox_attempts": {
        "insert": "INSERT INTO public.payment_outbox_attempts"
        " (outbox_id, instruction_id, participant_id, sequence_id, idempotency_key, rail_type,"
        " payload, attempt_no, state)"
        " VALUES (pg_catalog.gen_random_uuid(), 'ins-forged', 'participant-a', 1000,"
        " 'key-forged', 'rtp', '{}', 1, 'DISPATCHED')",
        "update": "UPDATE public.payment_outbox_attempts SET state = 'FAILED'",
        "delete": "DELETE FROM public.payment_outbox_attempts",
        "truncate": "TRUNCATE public.payment_outbox_attempts",
    },
    "payment_outbox_settings": {
        "insert": "INSERT INTO public.payment_outbox_settings (singleton, max_attempts)"
        " VALUES (FALSE, 1000)",
        "update": "UPDATE public.payment_outbox_settings SET max_attempts = 1000",
        "delete": "DELETE FROM public.payment_outbox_settings",
        "truncate": "TRUNCATE public.payment_outbox_settings",
    },
}

# One call per outbox function, with arguments that would change the seeded state if the call
# were allowed: enqueue adds an item, claim leases the due one, repair records the expired one.
CALLS: Final[dict[str, LiteralString]] = {
    "enqueue_payment_outbox": "SELECT * FROM public.enqueue_payment_outbox("
    "'ins-forged', 'participant-a', 'key-forged', 'rtp', '{\"amount\": \"1.00\"}')",
    "enqueue_payment_outbox_batch": "SELECT * FROM public.enqueue_payment_outbox_batch("
    "ARRAY['ins-forged-batch'], ARRAY['participant-a'], ARRAY['key-forged-batch'], ARRAY['rtp'],"
    ' ARRAY[\'{"amount": "1.00"}\'::jsonb])',
    "claim_outbox_batch": "SELECT * FROM public.claim_outbox_batch(1000, 'worker-forged', 3600)",
    "claim_outbox_rails": "SELECT * FROM public.claim_outbox_rails("
    "'worker-forged', 3600, ARRAY['rtp'], ARRAY[1000])",
    "complete_outbox_attempt": "SELECT * FROM public.complete_outbox_attempt("
    "pg_catalog.gen_random_uuid(), pg_catalog.gen_random_uuid(), 'worker-forged', 'FAILED',"
    " NULL, NULL, NULL, NULL, NULL, NULL)",
    "complete_outbox_attempts": "SELECT * FROM public.complete_outbox_attempts('worker-forged',"
    " ARRAY[pg_catalog.gen_random_uuid()], ARRAY[pg_catalog.gen_random_uuid()],"
    " ARRAY['FAILED'], ARRAY[NULL], ARRAY[NULL], ARRAY[NULL], ARRAY[NULL], ARRAY[NULL]::int[],"
    " ARRAY[NULL]::int[])",
    "renew_outbox_lease": "SELECT public.renew_outbox_lease("
    "pg_catalog.gen_random_uuid(), pg_catalog.gen_random_uuid(), 'worker-forged', 3600)",
    "release_outbox_leases": "SELECT * FROM public.release_outbox_leases('worker-forged',"
    " ARRAY[pg_catalog.gen_random_uuid()], ARRAY[pg_catalog.gen_random_uuid()])",
    "repair_expired_leases": "SELECT * FROM public.repair_expired_leases(1000, 'worker-forged')",
    "outbox_expired_lease_count": "SELECT public.outbox_expired_lease_count()",
}
# Internal validators the functions above call as their owner; nobody else may call them.
HELPER_CALLS: Final[dict[str, LiteralString]] = {
    "outbox_require_text": "SELECT public.outbox_require_text('worker_id', 'worker-forged')",
    "outbox_require_range": "SELECT public.outbox_require_range('batch_size', 1, 1, 1000)",
}
# A look-alike an attacker would plant next to the outbox functions if it could create in
# public: a caller passing an untyped literal payload could resolve to it instead.
PLANT_OVERLOAD: Final = (
    "CREATE FUNCTION public.enqueue_payment_outbox(text, text, text, text, json)"
    " RETURNS void LANGUAGE sql"
    " AS $$ UPDATE public.payment_outbox_settings SET max_attempts = 1000 $$"
)

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
RELATIONS: Final[dict[str, LiteralString]] = {
    "participant_outbox_sequences": "SELECT * FROM public.participant_outbox_sequences",
    "payment_outbox_pending": "SELECT * FROM public.payment_outbox_pending",
    "payment_outbox_attempts": "SELECT * FROM public.payment_outbox_attempts",
    "payment_outbox_settings": "SELECT * FROM public.payment_outbox_settings",
    "outbox_status_view": "SELECT * FROM public.outbox_status_view",
    "outbox_rail_servers": "SELECT * FROM public.outbox_rail_servers",
    "outbox_scoped_rails": "SELECT * FROM public.outbox_scoped_rails",
    "outbox_established_rails": "SELECT * FROM public.outbox_established_rails",
    "outbox_unserved_rails": "SELECT * FROM public.outbox_unserved_rails",
}
VIEWS: Final = frozenset({"outbox_status_view", "outbox_unserved_rails"})

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

# The throwaway role's name arrives as the session setting outbox_proof.role.
CREATE_NOBODY: Final = """
DO $proof$
BEGIN
    EXECUTE pg_catalog.format(
        'CREATE ROLE %I NOLOGIN', pg_catalog.current_setting('outbox_proof.role')
    );
END
$proof$
"""
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
DROP_THROWAWAY: Final = """
DO $proof$
DECLARE
    throwaway text := pg_catalog.current_setting('outbox_proof.role');
BEGIN
    IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) throwaway)
    THEN
        EXECUTE pg_catalog.format('DROP OWNED BY %I', throwaway);
        EXECUTE pg_catalog.format('DROP ROLE %I', throwaway);
    END IF;
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
class ThrowawayRole:
    """A role that exists for one test: its name, and URLs of the test's database."""

    name: str
    url: str  # the owner's session, with outbox_proof.role naming this role
    hijacked_url: str  # a session whose search_path puts the attacker's schema first


Row = tuple[object, ...]


def db_now(url: str) -> datetime:
    """The database clock, read as the owner in a session nobody tampered with."""
    ((now,),) = query_no_role(url, "SELECT pg_catalog.now()")
    assert isinstance(now, datetime)
    return now


def driver_message(error: BaseException) -> str:
    """The driver's primary message, chained as ``__cause__``: it names the refused object."""
    diagnostics = getattr(error.__cause__, "diag", None)
    return str(getattr(diagnostics, "message_primary", None) or "")


def tables_in(rows: list[Row]) -> set[object]:
    """The tables a snapshot holds rows of."""
    return {row[0] for row in rows}


@contextlib.contextmanager
def throwaway_role(database: Database, create: LiteralString) -> Iterator[ThrowawayRole]:
    """Create a uniquely named role with `create`; drop it and all it owns afterwards."""
    name = f"outbox_proof_{uuid.uuid4().hex}"
    role = ThrowawayRole(
        name=name,
        url=make_conninfo(database.url, options=f"-c outbox_proof.role={name}"),
        hijacked_url=make_conninfo(database.url, options=f"-c search_path={HIJACKED_SEARCH_PATH}"),
    )
    query_no_role(role.url, create)
    try:
        yield role
    finally:
        query_no_role(role.url, DROP_THROWAWAY)


@pytest.fixture
def seeded(outbox_database: Database, outbox_store: OutboxStore) -> list[Row]:
    """Rows in every table: one completed item, one expired lease, one due item; the snapshot."""
    completed = leased_item(outbox_store)
    outbox_store.complete("worker-1", Outcome(lease=completed.lease, state=AttemptState.DISPATCHED))
    outbox_store.enqueue(make_request())
    (expired,) = outbox_store.claim("worker-1", batch_size=1, lease_seconds=30)
    expire_lease(outbox_database.url, expired.outbox_id)
    outbox_store.enqueue(make_request())
    rows = outbox_rows(outbox_database.url, versions=True)
    assert tables_in(rows) == set(WRITES), "every table must hold a row a write could change"
    return rows


@pytest.fixture
def nobody(outbox_database: Database) -> Iterator[ThrowawayRole]:
    """A fresh role granted nothing: it holds exactly what PUBLIC holds."""
    with throwaway_role(outbox_database, CREATE_NOBODY) as role:
        memberships = query_no_role(
            role.url,
            "SELECT count(*) FROM pg_catalog.pg_auth_members"
            " WHERE member = pg_catalog.current_setting('outbox_proof.role')::regrole",
        )
        assert memberships == [(0,)]
        yield role


@pytest.fixture
def attacker(outbox_database: Database) -> Iterator[ThrowawayRole]:
    """A member of symphony_executor that owns schema `attacker`, planted with look-alikes."""
    with throwaway_role(outbox_database, CREATE_ATTACKER) as role:
        for plant in PLANTS:
            query_as(outbox_database.url, role.name, plant)
        yield role


def hijacked_enqueue(attacker: ThrowawayRole, request: EnqueueRequest) -> Row:
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


# --- refusals ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "table", "statement"),
    [
        pytest.param(role, table, statement, id=f"{role.name.lower()}-{verb}-{table}")
        for role in RUNTIME_ROLES
        for table, verbs in WRITES.items()
        for verb, statement in verbs.items()
    ],
)
def test_runtime_roles_cannot_write_outbox_tables_directly(
    outbox_database: Database, seeded: list[Row], role: Role, table: str, statement: LiteralString
) -> None:
    """No runtime role may INSERT, UPDATE, DELETE or TRUNCATE an outbox table (42501, no change)."""
    with pytest.raises(PermissionDenied) as refused:
        query_as(outbox_database.url, role, statement)

    assert refused.value.sqlstate == "42501"
    assert driver_message(refused.value) == f"permission denied for table {table}"
    assert outbox_rows(outbox_database.url, versions=True) == seeded


@pytest.mark.parametrize(
    ("role", "function", "statement"),
    [
        pytest.param(role, function, statement, id=f"{role.name.lower()}-{function}")
        for role in READERS
        for function, statement in CALLS.items()
    ],
)
def test_readers_cannot_execute_outbox_functions(
    outbox_database: Database,
    seeded: list[Row],
    role: Role,
    function: str,
    statement: LiteralString,
) -> None:
    """symphony_readonly and symphony_auditor cannot execute any outbox function (42501)."""
    with pytest.raises(PermissionDenied) as refused:
        query_as(outbox_database.url, role, statement)

    assert refused.value.sqlstate == "42501"
    assert driver_message(refused.value) == f"permission denied for function {function}"
    assert outbox_rows(outbox_database.url, versions=True) == seeded


ENQUEUE_FUNCTIONS: Final = frozenset({"enqueue_payment_outbox", "enqueue_payment_outbox_batch"})


@pytest.mark.parametrize(
    ("function", "statement"),
    [
        pytest.param(function, statement, id=function)
        for function, statement in CALLS.items()
        if function not in ENQUEUE_FUNCTIONS
    ],
)
def test_producer_cannot_execute_relayer_functions(
    outbox_database: Database, seeded: list[Row], function: str, statement: LiteralString
) -> None:
    """symphony_producer cannot claim, complete, renew, release or repair (42501, no change)."""
    with pytest.raises(PermissionDenied) as refused:
        query_as(outbox_database.url, Role.PRODUCER, statement)

    assert refused.value.sqlstate == "42501"
    assert driver_message(refused.value) == f"permission denied for function {function}"
    assert outbox_rows(outbox_database.url, versions=True) == seeded


@pytest.mark.usefixtures("seeded")
@pytest.mark.parametrize("relation", sorted(RELATIONS))
def test_producer_cannot_read_outbox_relations(outbox_database: Database, relation: str) -> None:
    """symphony_producer reads no table and not the status view: no other participant's payload."""
    with pytest.raises(PermissionDenied) as refused:
        query_as(outbox_database.url, Role.PRODUCER, RELATIONS[relation])

    assert refused.value.sqlstate == "42501"
    kind = "view" if relation in VIEWS else "table"
    assert driver_message(refused.value) == f"permission denied for {kind} {relation}"


@pytest.mark.usefixtures("seeded")
@pytest.mark.parametrize("role", READERS, ids=lambda role: role.name.lower())
def test_readers_cannot_read_participant_sequences(outbox_database: Database, role: Role) -> None:
    """symphony_readonly and symphony_auditor cannot SELECT participant_outbox_sequences (42501)."""
    with pytest.raises(PermissionDenied) as refused:
        query_as(outbox_database.url, role, RELATIONS["participant_outbox_sequences"])

    assert refused.value.sqlstate == "42501"
    assert driver_message(refused.value) == (
        "permission denied for table participant_outbox_sequences"
    )


@pytest.mark.parametrize(
    ("function", "statement"),
    [pytest.param(name, call, id=name) for name, call in (CALLS | HELPER_CALLS).items()],
)
def test_public_cannot_execute_outbox_functions(
    outbox_database: Database,
    seeded: list[Row],
    nobody: ThrowawayRole,
    function: str,
    statement: LiteralString,
) -> None:
    """A role granted nothing (PUBLIC's privileges only) cannot execute any outbox function."""
    with pytest.raises(PermissionDenied) as refused:
        query_as(outbox_database.url, nobody.name, statement)

    assert refused.value.sqlstate == "42501"
    assert driver_message(refused.value) == f"permission denied for function {function}"
    assert outbox_rows(outbox_database.url, versions=True) == seeded


@pytest.mark.usefixtures("seeded")
@pytest.mark.parametrize(
    ("relation", "statement"),
    [pytest.param(name, query, id=name) for name, query in RELATIONS.items()],
)
def test_public_cannot_read_outbox_relations(
    outbox_database: Database, nobody: ThrowawayRole, relation: str, statement: LiteralString
) -> None:
    """A role granted nothing cannot read any outbox table or the status view (42501)."""
    with pytest.raises(PermissionDenied) as refused:
        query_as(outbox_database.url, nobody.name, statement)

    assert refused.value.sqlstate == "42501"
    kind = "view" if relation in VIEWS else "table"
    assert driver_message(refused.value) == f"permission denied for {kind} {relation}"


@pytest.mark.parametrize("who", ["executor", "readonly", "auditor", "public"])
def test_only_the_owner_creates_objects_in_schema_public(
    outbox_database: Database, nobody: ThrowawayRole, who: str
) -> None:
    """No runtime role, nor PUBLIC, may CREATE in schema public (42501): no look-alike overloads."""
    # Were it allowed, look-alike overloads next to the outbox functions could capture calls
    # (CVE-2018-1058); 0001 revokes CREATE on public from PUBLIC even where PostgreSQL 14 grants it.
    role = nobody.name if who == "public" else Role[who.upper()].value
    with pytest.raises(PermissionDenied) as refused:
        query_as(outbox_database.url, role, PLANT_OVERLOAD)

    assert refused.value.sqlstate == "42501"
    assert driver_message(refused.value) == "permission denied for schema public"
    (public_may_create,) = query_no_role(
        outbox_database.url,
        "SELECT EXISTS (SELECT FROM pg_catalog.pg_namespace AS n,"
        " pg_catalog.aclexplode(coalesce(n.nspacl, pg_catalog.acldefault('n', n.nspowner)))"
        " AS acl WHERE n.nspname = 'public' AND acl.grantee = 0"
        " AND acl.privilege_type = 'CREATE')",
    )
    assert public_may_create == (False,)


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


# --- search_path hijack -----------------------------------------------------------------------


@pytest.mark.parametrize("resolver", ["attacker", "outbox_owner"])
def test_hijack_is_armed_for_the_caller_and_the_function_owner(
    attacker: ThrowawayRole, resolver: str
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
    outbox_database: Database, attacker: ThrowawayRole
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
    outbox_database: Database, outbox_store: OutboxStore, attacker: ThrowawayRole
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
    outbox_database: Database, outbox_store: OutboxStore, attacker: ThrowawayRole
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
