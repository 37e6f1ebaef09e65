"""Proof: the audit reads report the catalog as it is, as symphony_auditor, one read at a time."""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

import pytest

from outbox_db import (
    AttemptState,
    DatabaseUnavailable,
    OutboxStore,
    Outcome,
    PermissionDenied,
    Role,
)
from outbox_db.audit import CatalogAudit, Grant
from outbox_db.migrate import load_migrations
from outbox_db.testonly import query_no_role
from outbox_db.testonly.factories import leased_item

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from outbox_db.testonly.pytest_plugin import Database

LEGACY_DISPATCHING: Final = 9  # DISPATCHING rows in the fixture (see its header)
WORKER_FUNCTIONS: Final = frozenset(
    {
        "claim_outbox_batch",
        "claim_outbox_rails",
        "complete_outbox_attempt",
        "complete_outbox_attempts",
        "enqueue_payment_outbox",
        "enqueue_payment_outbox_batch",
        "outbox_expired_lease_count",
        "outbox_prepare_ledger_months",
        "outbox_queue_depth",
        "outbox_trace_contexts",
        "release_outbox_leases",
        "renew_outbox_lease",
        "repair_expired_leases",
    }
)
PRODUCER_FUNCTIONS: Final = frozenset({"enqueue_payment_outbox", "enqueue_payment_outbox_batch"})
# Re-drive and rail ordering; archiving ledger months past retention (0019).
OPERATOR_FUNCTIONS: Final = frozenset(
    {
        "outbox_archived_ledger_rows",
        "outbox_detach_ledger_month",
        "outbox_drop_archived_ledger_month",
        "outbox_ledger_months",
        "outbox_record_ledger_archive",
        "redrive_payment_outbox",
        "set_outbox_rail_ordering",
    }
)
# Aggregates a metrics exporter reads with a reader's login (schema 0014), the ledger's months
# (0019).
READER_FUNCTIONS: Final = frozenset({"outbox_ledger_months", "outbox_queue_depth"})
# The ledger's rows and digests (0018), for the checkpoint exporter and the bundle: read only.
AUDITOR_FUNCTIONS: Final = frozenset({"outbox_ledger_rows", "outbox_sealable_digests"})
INTERNAL_FUNCTIONS: Final = frozenset(
    {
        "deny_append_only_mutation",
        "deny_outbox_attempts_mutation",
        "notify_outbox_items_enqueued",
        "outbox_announce_rails",
        "outbox_enqueue_item",
        "outbox_control_character_at",
        "outbox_invalid_identifier_at",
        "outbox_lock_items_for_snapshot",
        "outbox_item_of_key",
        "outbox_lease_items",
        "outbox_rail_is_ordered",
        "outbox_recheck_waiting_item",
        "outbox_release_lane_successor",
        "outbox_release_stalled_lanes",
        "outbox_replay",
        "outbox_scope_unconfigured_rail",
        "outbox_require_payload",
        "outbox_require_latency",
        "outbox_require_outcome_text",
        "outbox_require_range",
        "outbox_require_service_key",
        "outbox_require_text",
        "outbox_valid_traceparent",
        # 0018: the digest triggers and the canonical encoding they share
        "outbox_attempt_fields",
        "outbox_digest_attempts",
        "outbox_operator_log_fields",
        "outbox_rail_ordering_fields",
        "outbox_row_digest",
        "outbox_tamper_evident_rows",
        "outbox_utc_text",
        # 0019: the ledger's months, the terminal registry, one digest trigger for the logs
        "outbox_current_ledger_month",
        "outbox_digest_inserted_rows",
        "outbox_ledger_archive_fields",
        "outbox_ledger_digests_partition",
        "outbox_ledger_month_partition",
        "outbox_ledger_partition",
        "outbox_make_ledger_partition",
        "outbox_register_terminal_outcomes",
        "outbox_require_detached_month",
    }
)


@pytest.fixture
def audit(outbox_database: Database) -> Iterator[CatalogAudit]:
    """An audit snapshot of this test's freshly migrated database."""
    with CatalogAudit.open(outbox_database.url) as snapshot:
        yield snapshot


def function_name(grant: Grant) -> str:
    """public.claim_outbox_batch(integer,text,integer) -> claim_outbox_batch."""
    return grant.object_name.removeprefix("public.").split("(", 1)[0]


def test_only_the_executor_and_owner_may_execute_outbox_functions(audit: CatalogAudit) -> None:
    """EXECUTE: executors, producers, operators and readers each their own functions; no PUBLIC.

    Executor: the worker functions; producer: enqueue; operator: re-drive and rail ordering;
    readers: the queue depth; the auditor also the ledger's rows and digests; the owner: all.
    """
    executes = {
        (function_name(g), g.grantee)
        for g in audit.grants()
        if g.object_kind == "function" and g.privilege == "EXECUTE"
    }

    expected = {
        (name, "outbox_owner")
        for name in WORKER_FUNCTIONS | OPERATOR_FUNCTIONS | INTERNAL_FUNCTIONS | AUDITOR_FUNCTIONS
    }
    expected |= {(name, "symphony_executor") for name in WORKER_FUNCTIONS}
    expected |= {(name, "symphony_auditor") for name in AUDITOR_FUNCTIONS}
    expected |= {(name, "symphony_producer") for name in PRODUCER_FUNCTIONS}
    expected |= {(name, "symphony_operator") for name in OPERATOR_FUNCTIONS}
    expected |= {
        (name, reader)
        for name in READER_FUNCTIONS
        for reader in ("symphony_readonly", "symphony_auditor")
    }
    assert expected == executes


def test_readers_may_only_select_and_nobody_else_touches_the_tables(audit: CatalogAudit) -> None:
    """Table and view privileges beyond their owners are SELECT for the readers, nothing else."""
    granted = {
        (g.object_name, g.grantee, g.privilege)
        for g in audit.grants()
        if g.object_kind in {"table", "view"} and g.grantee not in {"outbox_owner", "postgres"}
    }

    readers = {"symphony_readonly", "symphony_auditor"}
    expected = {
        (f"public.{relation}", reader, "SELECT")
        for relation in (
            "payment_outbox_pending",
            "payment_outbox_attempts",
            "outbox_status_view",
            "outbox_operator_log",
            "outbox_rail_ordering",
            "outbox_idempotency_keys",
            "outbox_rail_servers",
            "outbox_scoped_rails",
            "outbox_established_rails",
            "outbox_unserved_rails",
            "outbox_terminal_outcomes",
            "outbox_ledger_archives",
        )
        for reader in readers
    }
    expected |= {
        ("public.outbox_status_view", "symphony_executor", "SELECT"),
        ("public.outbox_unserved_rails", "symphony_executor", "SELECT"),
        ("public.payment_outbox_settings", "symphony_auditor", "SELECT"),
        ("public.outbox_schema_migrations", "symphony_auditor", "SELECT"),
        ("public.outbox_row_digests", "symphony_auditor", "SELECT"),
    }
    assert expected == granted


def test_every_outbox_function_is_defined_in_full(audit: CatalogAudit) -> None:
    """pg_get_functiondef of each, schema-qualified; the worker functions are SECURITY DEFINER."""
    functions = audit.function_definitions()

    by_name = {f.signature.removeprefix("public.").split("(", 1)[0]: f for f in functions}
    assert set(by_name) == (
        WORKER_FUNCTIONS | OPERATOR_FUNCTIONS | INTERNAL_FUNCTIONS | AUDITOR_FUNCTIONS
    )
    assert all(
        f.definition.startswith(f"CREATE OR REPLACE FUNCTION {f.signature.split('(')[0]}(")
        for f in functions
    )
    assert all(by_name[name].security_definer for name in WORKER_FUNCTIONS | OPERATOR_FUNCTIONS)
    assert "SET search_path TO 'pg_catalog', 'pg_temp'" in by_name["claim_outbox_batch"].definition


def test_lease_ddl_is_the_four_lease_columns_and_their_check(audit: CatalogAudit) -> None:
    """The lease columns are exactly those the consistency CHECK covers, nullable, in table order."""
    lease = audit.lease_ddl()

    assert [(c.name, c.data_type, c.not_null) for c in lease.columns] == [
        ("claimed_by", "text", False),
        ("lease_token", "uuid", False),
        ("claimed_at", "timestamp with time zone", False),
        ("lease_expires_at", "timestamp with time zone", False),
    ]
    assert lease.check is not None
    assert lease.check.name == "payment_outbox_pending_lease_consistent"
    assert lease.check.definition.startswith(
        "CHECK ((((claimed_by IS NULL) AND (lease_token IS NULL)"
    )


def test_guards_are_reported_as_the_catalog_defines_them(audit: CatalogAudit) -> None:
    """The append-only triggers, the terminal partial unique index and the status view."""
    triggers = {t.name: t.definition for t in audit.trigger_bindings()}
    indexes = {i.name: i.definition for i in audit.index_definitions()}
    views = {v.name: v.definition for v in audit.view_definitions()}

    assert triggers["payment_outbox_attempts_append_only"] == (
        "CREATE TRIGGER payment_outbox_attempts_append_only BEFORE DELETE OR UPDATE OR TRUNCATE"
        " ON public.payment_outbox_attempts FOR EACH STATEMENT"
        " EXECUTE FUNCTION public.deny_outbox_attempts_mutation()"
    )
    assert triggers["outbox_operator_log_append_only"] == (
        "CREATE TRIGGER outbox_operator_log_append_only BEFORE DELETE OR UPDATE OR TRUNCATE"
        " ON public.outbox_operator_log FOR EACH STATEMENT"
        " EXECUTE FUNCTION public.deny_append_only_mutation()"
    )
    assert indexes["payment_outbox_attempts_one_terminal_per_outbox"].startswith(
        "CREATE UNIQUE INDEX payment_outbox_attempts_one_terminal_per_outbox"
        " ON public.outbox_terminal_outcomes USING btree (outbox_id)"
    )
    assert list(views) == ["public.outbox_status_view", "public.outbox_unserved_rails"]
    assert "DISPATCHING" not in views["public.outbox_status_view"]


def test_migration_history_matches_what_the_package_ships(audit: CatalogAudit) -> None:
    """Every shipped file is applied with its shipped SHA-256."""
    history = audit.migration_history()

    assert [(m.filename, m.applied_checksum, m.status) for m in history] == [
        (m.name, m.checksum, "ok") for m in sorted(load_migrations(), key=lambda m: m.name)
    ]


def test_regression_query_is_the_gate_s_and_counts_nothing_on_a_fresh_schema(
    audit: CatalogAudit,
) -> None:
    """The query text is reported verbatim; no DISPATCHING row exists after migration."""
    result = audit.dispatching_count()

    assert result.query == (
        "SELECT COUNT(*) FROM public.payment_outbox_attempts WHERE state = 'DISPATCHING';"
    )
    assert result.count == 0


def test_reads_run_as_the_auditor_and_a_refused_read_fails_alone(outbox_database: Database) -> None:
    """Without its grant on the history the auditor is refused (42501); the other reads still answer."""
    query_no_role(
        outbox_database.url,
        "REVOKE SELECT ON public.outbox_schema_migrations FROM symphony_auditor",
    )

    with CatalogAudit.open(outbox_database.url) as audit:
        with pytest.raises(PermissionDenied) as refused:
            audit.migration_history()
        grants = audit.grants()

    assert refused.value.sqlstate == "42501"
    assert ("public.outbox_schema_migrations", "symphony_auditor") not in {
        (g.object_name, g.grantee) for g in grants
    }


def test_an_unreachable_database_is_reported_as_unavailable(tmp_path: Path) -> None:
    """A socket directory without a server: DatabaseUnavailable, at once."""
    url = f"postgresql://postgres@/postgres?host={tmp_path}&port=5432"

    with pytest.raises(DatabaseUnavailable) as refused, CatalogAudit.open(url):
        pass

    assert refused.value.sqlstate is None
    assert "No such file or directory" in str(refused.value)


def test_regression_query_counts_historical_dispatching_rows(
    outbox_migrated_legacy_database: str,
) -> None:
    """A converged DISPATCHING-era ledger keeps its history, and the count shows it."""
    with CatalogAudit.open(outbox_migrated_legacy_database) as audit:
        result = audit.dispatching_count()

    assert result.count == LEGACY_DISPATCHING


def test_operator_log_is_read_as_the_auditor_oldest_first(outbox_database: Database) -> None:
    """Each re-drive's entry, in the order recorded, as the operator's store returned it."""
    with (
        OutboxStore.connect(outbox_database.url) as executor,
        OutboxStore.connect(outbox_database.url, role=Role.OPERATOR) as operator,
    ):
        failed = [leased_item(executor) for _ in range(2)]
        for item in failed:
            executor.complete("worker-1", Outcome(lease=item.lease, state=AttemptState.FAILED))
        redrives = [
            operator.redrive(item.outbox_id, reason=f"reason {n}") for n, item in enumerate(failed)
        ]

    with CatalogAudit.open(outbox_database.url) as audit:
        entries = audit.operator_log()

    assert [
        (e.entry_no, e.outbox_id, e.redrive_outbox_id, e.redrive_idempotency_key, e.reason)
        for e in entries
    ] == [
        (n + 1, r.outbox_id, r.redrive_outbox_id, r.idempotency_key, r.reason)
        for n, r in enumerate(redrives)
    ]
