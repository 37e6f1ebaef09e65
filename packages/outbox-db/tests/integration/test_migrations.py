"""Proof: migrations apply once, refuse edited or unknown history, and converge legacy databases."""

from __future__ import annotations

import hashlib
from importlib import resources
from typing import TYPE_CHECKING, Any, Final, LiteralString
from uuid import UUID

import pytest
from click.testing import CliRunner

from outbox_db import ConstraintViolation, MigrationError, OutboxStore, migrate
from outbox_db.cli import main
from outbox_db.migrate import load_migrations
from outbox_db.records import RoleNames
from outbox_db.testonly import ledger, query_no_role
from outbox_db.testonly.factories import make_request

if TYPE_CHECKING:
    from outbox_db.testonly.pytest_plugin import Database

Rows = list[tuple[Any, ...]]

EDITED: Final = "v1/0002_payment_outbox.sql"
VIEW: Final = "views/outbox_status_view.sql"
UNSHIPPED: Final = "v1/0099_from_a_newer_release.sql"
NOT_THE_CHECKSUM: Final = "0" * 64
NO_DISPATCHING: Final = "payment_outbox_attempts_no_dispatching_insert"
DISPATCHING_AGE_INDEX: Final = "ix_attempts_dispatching_age"
# What the fixture holds: see the table in its header.
LEGACY_ATTEMPTS: Final = 16
LEGACY_DISPATCHING: Final = 9
LEGACY_PENDING: Final = frozenset(
    UUID(u)
    for u in (
        "e89aa967-6bce-4fdd-b7df-ae983caab784",
        "84581260-d43a-446b-8489-1c8987a74e67",
        "7908e58a-fe90-41bf-8f5e-a12c7ee8e6bb",
    )
)
IN_FLIGHT: Final = UUID("99c64e8a-7cb0-46b5-9698-9f3551f8e315")  # bank-alpha 4, DISPATCHING only
IN_FLIGHT_BRAVO: Final = UUID("2ae3b75a-cd90-4c2a-bd0d-013c6590c3d8")  # bank-bravo 2, likewise
COMPLETED: Final = UUID("959e289e-3e67-41bb-89d7-b976d6244fd5")  # bank-bravo 1, DISPATCHED
LAGGING_PARTICIPANT: Final = "bank-alpha"  # allocator at 6, history up to 7
CONSISTENT_PARTICIPANT: Final = "bank-bravo"  # allocator at 4, history up to 3


# One query per kind of catalogue object in schema public; ACLs sorted, NULL kept (it means
# the owner's default privileges, not none).
CATALOGUE: Final[dict[str, LiteralString]] = {
    "schema": """
        SELECT n.nspname, pg_get_userbyid(n.nspowner)::text,
            (SELECT array_agg(a::text ORDER BY a::text) FROM unnest(n.nspacl) AS a)
        FROM pg_namespace AS n WHERE n.nspname = 'public'""",
    "relations": """
        SELECT c.relname, c.relkind::text, pg_get_userbyid(c.relowner)::text,
            (SELECT array_agg(a::text ORDER BY a::text) FROM unnest(c.relacl) AS a),
            obj_description(c.oid, 'pg_class'), pg_get_viewdef(c.oid)
        FROM pg_class AS c
        WHERE c.relnamespace = 'public'::regnamespace AND c.relkind <> 'i'
        ORDER BY c.relname""",
    "columns": """
        SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
            pg_get_expr(d.adbin, d.adrelid), a.attidentity::text, a.attgenerated::text,
            col_description(c.oid, a.attnum),
            (SELECT array_agg(x::text ORDER BY x::text) FROM unnest(a.attacl) AS x)
        FROM pg_attribute AS a
        JOIN pg_class AS c ON c.oid = a.attrelid
        LEFT JOIN pg_attrdef AS d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p', 'v')
          AND a.attnum > 0 AND NOT a.attisdropped
        ORDER BY c.relname, a.attnum""",
    "constraints": """
        SELECT conrelid::regclass::text, conname, contype::text,
            pg_get_constraintdef(oid), convalidated, condeferrable, condeferred
        FROM pg_constraint WHERE connamespace = 'public'::regnamespace
        ORDER BY 1, 2""",
    "indexes": """
        SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'
        ORDER BY 1, 2""",
    "triggers": """
        SELECT t.tgrelid::regclass::text, t.tgname, pg_get_triggerdef(t.oid), t.tgenabled::text
        FROM pg_trigger AS t JOIN pg_class AS c ON c.oid = t.tgrelid
        WHERE c.relnamespace = 'public'::regnamespace AND NOT t.tgisinternal
        ORDER BY 1, 2""",
    "functions": """
        SELECT p.oid::regprocedure::text, pg_get_functiondef(p.oid),
            pg_get_userbyid(p.proowner)::text,
            (SELECT array_agg(a::text ORDER BY a::text) FROM unnest(p.proacl) AS a),
            obj_description(p.oid, 'pg_proc')
        FROM pg_proc AS p WHERE p.pronamespace = 'public'::regnamespace
        ORDER BY 1""",
    "types": """
        SELECT t.typname, t.typtype::text, pg_get_userbyid(t.typowner)::text,
            (SELECT array_agg(a::text ORDER BY a::text) FROM unnest(t.typacl) AS a),
            obj_description(t.oid, 'pg_type'),
            ARRAY(SELECT e.enumlabel::text FROM pg_enum AS e
                  WHERE e.enumtypid = t.oid ORDER BY e.enumsortorder)
        FROM pg_type AS t
        WHERE t.typnamespace = 'public'::regnamespace AND t.typtype IN ('d', 'e', 'r', 'm')
        ORDER BY 1""",
    "extensions": "SELECT extname, extversion FROM pg_extension ORDER BY 1",
}


def describe(url: str) -> dict[str, Rows]:
    """The catalogue of schema public at `url`: what two converged databases must share."""
    return {kind: query_no_role(url, query) for kind, query in CATALOGUE.items()}


def history(url: str) -> Rows:
    """The migration history as recorded, applied_at included."""
    return query_no_role(
        url, "SELECT filename, checksum, applied_at FROM public.outbox_schema_migrations ORDER BY 1"
    )


def recorded_checksums(url: str) -> dict[str, str]:
    """{filename: checksum} as the database recorded them."""
    return {name: checksum for name, checksum, _applied_at in history(url)}


# The ledger's columns as the legacy database has them (later migrations add columns, which
# old rows leave NULL: recorded_by, 0017).
LEGACY_COLUMNS: Final = (
    *("attempt_id", "outbox_id", "instruction_id", "participant_id", "sequence_id"),
    *("idempotency_key", "rail_type", "payload", "attempt_no", "state", "claimed_at"),
    *("completed_at", "rail_reference", "rail_code", "error_code", "error_message"),
    *("latency_ms", "worker_id"),
)
STATE: Final = LEGACY_COLUMNS.index("state")


def legacy_ledger(url: str) -> Rows:
    """Every attempt, in a stable order."""
    return ledger(url, *LEGACY_COLUMNS)


def dispatching(url: str) -> Rows:
    """The historical DISPATCHING attempts, in a stable order."""
    return [row for row in legacy_ledger(url) if row[STATE] == "DISPATCHING"]


def legacy_pending(url: str) -> Rows:
    """The pending rows, limited to the columns the DISPATCHING era had."""
    return query_no_role(
        url,
        "SELECT outbox_id, instruction_id, participant_id, sequence_id, idempotency_key, "
        "rail_type, payload, attempt_count, next_attempt_at, created_at "
        "FROM public.payment_outbox_pending ORDER BY outbox_id",
    )


def set_recorded_checksum(url: str, filename: str, checksum: str) -> None:
    """Rewrite one history row as the owner, as if the file had been edited since it ran."""
    query_no_role(
        url,
        "UPDATE public.outbox_schema_migrations SET checksum = %s WHERE filename = %s",
        (checksum, filename),
    )


def test_migrate_applies_every_shipped_file_in_order_with_its_checksum(
    outbox_empty_database: str,
) -> None:
    """On an empty database every shipped file runs once, in order, recorded with its SHA-256."""
    shipped = [migration.name for migration in load_migrations()]
    heard: list[str] = []

    report = migrate(outbox_empty_database, on_apply=heard.append)

    assert (tuple(shipped), 0, RoleNames()) == (report.applied, report.unchanged, report.roles)
    assert shipped == heard
    schema = resources.files("outbox_db").joinpath("schema")
    expected = {
        name: hashlib.sha256(schema.joinpath(name).read_bytes()).hexdigest() for name in shipped
    }
    assert expected == recorded_checksums(outbox_empty_database)
    by_time = query_no_role(
        outbox_empty_database,
        "SELECT filename FROM public.outbox_schema_migrations ORDER BY applied_at",
    )
    assert shipped == [name for (name,) in by_time]


def test_second_migration_applies_nothing_and_changes_nothing(outbox_empty_database: str) -> None:
    """Migrating an up-to-date database applies no file and leaves catalogue and history as they were."""
    migrate(outbox_empty_database)
    before = (describe(outbox_empty_database), history(outbox_empty_database))
    heard: list[str] = []

    report = migrate(outbox_empty_database, on_apply=heard.append)

    assert ((), len(load_migrations())) == (report.applied, report.unchanged)
    assert heard == []
    assert before == (describe(outbox_empty_database), history(outbox_empty_database))


def test_migrate_refuses_an_edited_applied_migration(outbox_database: Database) -> None:
    """A versioned file whose checksum differs from the recorded one stops the run before any change."""
    url = outbox_database.url
    set_recorded_checksum(url, EDITED, NOT_THE_CHECKSUM)
    # A stale repeatable file as well: a migrator that went on would re-apply it.
    set_recorded_checksum(url, VIEW, NOT_THE_CHECKSUM)
    before = (describe(url), history(url))
    heard: list[str] = []

    with pytest.raises(MigrationError) as refused:
        migrate(url, on_apply=heard.append)

    assert EDITED in str(refused.value)
    assert "0003" not in str(refused.value)
    assert heard == []
    assert before == (describe(url), history(url))


def test_migrate_refuses_a_database_with_a_migration_it_does_not_ship(
    outbox_database: Database,
) -> None:
    """A history naming a file this package does not ship (a newer release) stops the run before any change."""
    url = outbox_database.url
    query_no_role(
        url,
        "INSERT INTO public.outbox_schema_migrations (filename, checksum) VALUES (%s, %s)",
        (UNSHIPPED, NOT_THE_CHECKSUM),
    )
    set_recorded_checksum(url, VIEW, NOT_THE_CHECKSUM)
    before = (describe(url), history(url))
    heard: list[str] = []

    with pytest.raises(MigrationError) as refused:
        migrate(url, on_apply=heard.append)

    assert UNSHIPPED in str(refused.value)
    assert heard == []
    assert before == (describe(url), history(url))


def test_changed_view_file_is_reapplied_and_versioned_files_are_not(
    outbox_database: Database,
) -> None:
    """A repeatable file whose recorded checksum differs runs again; versioned files stay applied once."""
    url = outbox_database.url
    set_recorded_checksum(url, VIEW, NOT_THE_CHECKSUM)
    # The view file grants SELECT: the grant coming back shows the file really ran again.
    query_no_role(url, "REVOKE SELECT ON public.outbox_status_view FROM symphony_readonly")
    versioned_before = [row for row in history(url) if row[0] != VIEW]
    heard: list[str] = []

    report = migrate(url, on_apply=heard.append)

    assert ((VIEW,), len(load_migrations()) - 1) == (report.applied, report.unchanged)
    assert heard == [VIEW]
    assert versioned_before == [row for row in history(url) if row[0] != VIEW]
    shipped_view = next(m for m in load_migrations() if m.name == VIEW)
    assert shipped_view.checksum == recorded_checksums(url)[VIEW]
    granted = (
        "SELECT has_table_privilege('symphony_readonly', 'public.outbox_status_view', 'SELECT')"
    )
    assert query_no_role(url, granted) == [(True,)]


def test_legacy_migration_drops_the_dispatching_age_index(outbox_legacy_database: str) -> None:
    """Migrating a DISPATCHING-era database drops ix_attempts_dispatching_age."""
    index = "SELECT indexname FROM pg_indexes WHERE schemaname = 'public' AND indexname = %s"
    assert query_no_role(outbox_legacy_database, index, (DISPATCHING_AGE_INDEX,)) == [
        (DISPATCHING_AGE_INDEX,)
    ]

    migrate(outbox_legacy_database)

    assert query_no_role(outbox_legacy_database, index, (DISPATCHING_AGE_INDEX,)) == []


def test_legacy_migration_keeps_every_historical_row(outbox_legacy_database: str) -> None:
    """Every legacy attempt, DISPATCHING ones included, and every pending row survives unchanged."""
    dispatching_before = dispatching(outbox_legacy_database)
    ledger_before = legacy_ledger(outbox_legacy_database)
    pending_before = legacy_pending(outbox_legacy_database)

    migrate(outbox_legacy_database)

    assert dispatching_before == dispatching(outbox_legacy_database)
    assert len(dispatching_before) == LEGACY_DISPATCHING
    ledger_after = legacy_ledger(outbox_legacy_database)
    assert [row for row in ledger_after if row in ledger_before] == ledger_before
    assert len(ledger_before) == LEGACY_ATTEMPTS
    recorded_by = "SELECT DISTINCT recorded_by FROM public.payment_outbox_attempts"
    assert query_no_role(outbox_legacy_database, recorded_by) == [(None,)], "nobody knows who: NULL"
    pending_after = legacy_pending(outbox_legacy_database)
    assert [row for row in pending_after if row in pending_before] == pending_before
    assert {row[0] for row in pending_before} == LEGACY_PENDING
    unleased = "SELECT count(*) FROM public.payment_outbox_pending WHERE lease_token IS NULL"
    assert [(len(LEGACY_PENDING) + 2,)] == query_no_role(outbox_legacy_database, unleased)


def test_legacy_in_flight_items_are_requeued_by_their_outbox_id(
    outbox_legacy_database: str,
) -> None:
    """Items the old claim left only in the ledger get their next attempt recorded and are due again."""
    last_attempts = (
        "SELECT outbox_id, attempt_no, state::text, error_code FROM public.payment_outbox_attempts"
        " WHERE outbox_id = ANY(%s) ORDER BY outbox_id, attempt_no"
    )
    in_flight = [IN_FLIGHT, IN_FLIGHT_BRAVO]
    before = query_no_role(outbox_legacy_database, last_attempts, (in_flight,))

    migrate(outbox_legacy_database)

    appended = [
        row
        for row in query_no_role(outbox_legacy_database, last_attempts, (in_flight,))
        if row not in before
    ]
    assert sorted(appended) == sorted(
        (outbox_id, 2, "ZOMBIE_REQUEUE", "LEGACY_DISPATCHING_REQUEUED") for outbox_id in in_flight
    )
    requeued = query_no_role(
        outbox_legacy_database,
        "SELECT outbox_id, attempt_count, claimed_by FROM public.payment_outbox_pending"
        " WHERE outbox_id = ANY(%s) AND next_attempt_at <= now() ORDER BY outbox_id",
        (in_flight,),
    )
    assert requeued == sorted((outbox_id, 2, None) for outbox_id in in_flight)


def test_dispatching_insert_is_refused_by_a_not_valid_check_after_legacy_migration(
    outbox_legacy_database: str,
) -> None:
    """After migration a new DISPATCHING attempt fails with 23514, while the unvalidated CHECK spares history."""
    migrate(outbox_legacy_database)

    with pytest.raises(ConstraintViolation) as refused:
        query_no_role(
            outbox_legacy_database,
            # guardrails: allow OBX006 -- the proof that the database refuses this insert (23514)
            "INSERT INTO public.payment_outbox_attempts (outbox_id, instruction_id, "
            "participant_id, sequence_id, idempotency_key, rail_type, payload, attempt_no, "
            "state, claimed_at, worker_id) "
            "SELECT outbox_id, instruction_id, participant_id, sequence_id, idempotency_key, "
            "rail_type, payload, attempt_no + 1, 'DISPATCHING', now(), 'legacy-relayer' "
            "FROM public.payment_outbox_attempts WHERE outbox_id = %s",
            (IN_FLIGHT,),
        )

    assert refused.value.sqlstate == "23514"
    assert refused.value.constraint == NO_DISPATCHING
    validated = (
        "SELECT convalidated FROM pg_constraint"
        " WHERE conname = %s AND conrelid = 'public.payment_outbox_attempts'::regclass"
    )
    assert query_no_role(outbox_legacy_database, validated, (NO_DISPATCHING,)) == [(False,)]
    assert len(dispatching(outbox_legacy_database)) == LEGACY_DISPATCHING


def test_legacy_sequence_allocator_is_repaired_by_migration(outbox_legacy_database: str) -> None:
    """A participant whose allocator lagged its history gets a number above every used one; others keep theirs."""
    highest_used = query_no_role(
        outbox_legacy_database,
        "SELECT max(sequence_id) FROM (SELECT sequence_id FROM public.payment_outbox_pending "
        "WHERE participant_id = %(p)s UNION ALL SELECT sequence_id "
        "FROM public.payment_outbox_attempts WHERE participant_id = %(p)s) AS used",
        {"p": LAGGING_PARTICIPANT},
    )[0][0]

    migrate(outbox_legacy_database)
    with OutboxStore.connect(outbox_legacy_database) as store:
        lagging = store.enqueue(make_request(participant_id=LAGGING_PARTICIPANT))
        consistent = store.enqueue(make_request(participant_id=CONSISTENT_PARTICIPANT))

    assert lagging.created
    assert lagging.sequence_id > highest_used
    assert consistent.created
    assert consistent.sequence_id == 4


def test_replaying_a_legacy_completed_item_returns_it(outbox_legacy_database: str) -> None:
    """Enqueueing a key that completed in the DISPATCHING era returns that item and takes no number."""
    migrate(outbox_legacy_database)
    completed = make_request(
        instruction_id="ins-20240301-b001",
        participant_id=CONSISTENT_PARTICIPANT,
        idempotency_key="idem-b001",
        rail_type="fednow",
        payload={
            "amount": "2300.00",
            "currency": "USD",
            "debtor_account": "026009593-0038871223",
            "creditor_account": "021000021-4410098812",
            "end_to_end_id": "E2E-B-20240301-001",
        },
    )

    with OutboxStore.connect(outbox_legacy_database) as store:
        replayed = store.enqueue(completed)
        next_new = store.enqueue(make_request(participant_id=CONSISTENT_PARTICIPANT))

    assert replayed.outbox_id == COMPLETED
    assert (replayed.sequence_id, replayed.created) == (1, False)
    assert next_new.sequence_id == 4


def test_claim_after_legacy_migration_leases_without_deleting_or_recording(
    outbox_legacy_database: str,
) -> None:
    """Claiming legacy pending rows leases them in place: none leaves the queue, no attempt is written."""
    migrate(outbox_legacy_database)
    ledger_before = legacy_ledger(outbox_legacy_database)

    with OutboxStore.connect(outbox_legacy_database) as store:
        claimed = store.claim("worker-1", batch_size=10, lease_seconds=30)

    assert {item.outbox_id for item in claimed} == LEGACY_PENDING | {IN_FLIGHT, IN_FLIGHT_BRAVO}
    assert ledger_before == legacy_ledger(outbox_legacy_database)
    leases = query_no_role(
        outbox_legacy_database,
        "SELECT outbox_id, claimed_by, lease_token FROM public.payment_outbox_pending",
    )
    assert {(item.outbox_id, "worker-1", item.lease_token) for item in claimed} == set(leases)


def test_migrated_legacy_database_has_the_freshly_migrated_schema(
    outbox_legacy_database: str, outbox_database: Database
) -> None:
    """A DISPATCHING-era database, once migrated, has exactly the catalogue and history of a fresh one."""
    migrate(outbox_legacy_database)

    assert describe(outbox_database.url) == describe(outbox_legacy_database)
    assert recorded_checksums(outbox_database.url) == recorded_checksums(outbox_legacy_database)


def test_regression_query_counts_the_history_a_converged_database_keeps(
    outbox_legacy_database: str,
) -> None:
    """`outbox-db regression` on the migrated DISPATCHING-era database: its count, and exit 1."""
    migrate(outbox_legacy_database)
    kept = len(dispatching(outbox_legacy_database))

    result = CliRunner().invoke(main, ["regression", "--url", outbox_legacy_database])

    assert kept > 0, "the fixture keeps its historical DISPATCHING rows"
    assert result.exit_code == 1
    assert f"regression count: {kept}\n" in result.output
    assert "WHERE state = 'DISPATCHING'" in result.output
