"""The parts the database answers for, read through outbox_db.audit as the auditor role."""

from __future__ import annotations

from datetime import UTC
from itertools import groupby
from typing import TYPE_CHECKING, Final

from outbox_db import OutboxDatabaseError, OutboxError
from outbox_db.audit import CatalogAudit
from outbox_evidence.layout import (
    FUNCTIONS,
    GRANTS,
    HARDENING,
    LEDGER_ROWS,
    MIGRATIONS,
    OPERATOR_LOG,
    REGRESSION,
    SCHEMA,
    Part,
    verdict,
)
from outbox_evidence.ledger_bundle import render_ledger_rows
from outbox_evidence.text import aligned

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from outbox_db.audit import ColumnDefinition, Grant, LeaseDdl, TableObject
    from outbox_db.records import RailOrdering

__all__ = ["DATABASE_PARTS", "NO_URL", "database_parts", "describe"]

NO_URL: Final = "no database URL (set OUTBOX_EVIDENCE_DB_URL or DATABASE_URL, or pass --url)"
# The functions DESIGN section 4 and its additions name; a missing one fails 02's verdict.
EXPECTED_FUNCTIONS: Final = (
    "claim_outbox_batch",
    "complete_outbox_attempt",
    "complete_outbox_attempts",
    "deny_append_only_mutation",
    "deny_outbox_attempts_mutation",
    "enqueue_payment_outbox",
    "notify_outbox_items_enqueued",
    "outbox_expired_lease_count",
    "outbox_require_range",
    "outbox_require_text",
    "redrive_payment_outbox",
    "release_outbox_leases",
    "renew_outbox_lease",
    "repair_expired_leases",
)
APPEND_ONLY_TRIGGER: Final = "payment_outbox_attempts_append_only"
OPERATOR_LOG_TRIGGER: Final = "outbox_operator_log_append_only"
RAIL_ORDERING_TRIGGER: Final = "outbox_rail_ordering_append_only"
TERMINAL_INDEX: Final = "payment_outbox_attempts_one_terminal_per_outbox"
STATUS_VIEW: Final = "public.outbox_status_view"
LEDGER_LOGIN_DDL: Final = "payment_outbox_attempts.recorded_by DEFAULT session_user"
SCHEMA_PASSED: Final = "lease CHECK, append-only trigger, terminal index, view, attempt login"


def database_parts(url: str | None) -> tuple[list[Part], list[str]]:
    """Every database part, and what went wrong in full (for stderr, not for the files)."""
    if url is None:
        return [Part.unavailable(name, NO_URL) for name in DATABASE_PARTS], [NO_URL]
    diagnostics: list[str] = []
    try:
        with CatalogAudit.open(url) as audit:
            parts = [
                _read(name, render, audit, diagnostics) for name, render in DATABASE_PARTS.items()
            ]
    except OutboxError as error:
        reason = describe(error)
        return [Part.unavailable(name, reason) for name in DATABASE_PARTS], [str(error)]
    return parts, diagnostics


def describe(error: OutboxError) -> str:
    """Why a read failed, safe to keep: no host, socket path or port (those differ per run)."""
    if isinstance(error, OutboxDatabaseError) and error.sqlstate is None:
        # libpq's reason is the last clause ("Connection refused"); the rest names the host.
        return f"{error.summary}: {str(error).splitlines()[0].rsplit(': ', 1)[-1]}"
    return str(error)


def _read(
    name: str, render: Callable[[CatalogAudit], str], audit: CatalogAudit, diagnostics: list[str]
) -> Part:
    try:
        return Part.of(name, render(audit))
    except OutboxDatabaseError as error:
        diagnostics.append(f"{name}: {error}")
        return Part.unavailable(name, describe(error))


def render_grants(audit: CatalogAudit) -> str:
    """One line per object and grantee, privileges joined; role lines list role members."""
    lines = [
        f"{kind} {name} {grantee} {','.join(_privilege(g) for g in grants)}"
        for (kind, name, grantee), grants in groupby(
            audit.grants(), key=lambda g: (g.object_kind, g.object_name, g.grantee)
        )
    ]
    legend = [
        f"read as {audit.auditor}; line: kind object grantee privileges (* = WITH GRANT OPTION).",
        "PUBLIC is every role. A role line names the role, one of its members, and MEMBER.",
        "",
    ]
    return "\n".join(legend + lines)


def _privilege(grant: Grant) -> str:
    return f"{grant.privilege}*" if grant.grantable else grant.privilege


def render_functions(audit: CatalogAudit) -> str:
    """An index of the functions, then each definition as PostgreSQL prints it."""
    functions = audit.function_definitions()
    present = {f.signature.removeprefix("public.").split("(", 1)[0] for f in functions}
    absent = [f"not in the catalog: {name}" for name in EXPECTED_FUNCTIONS if name not in present]
    lines = [
        f"-- {verdict(absent, f'the {len(EXPECTED_FUNCTIONS)} outbox functions are present')}",
        *(
            f"-- {f.signature} owner={f.owner}{' SECURITY DEFINER' if f.security_definer else ''}"
            for f in functions
        ),
    ]
    lines += [f"\n-- {f.signature}\n{f.definition};" for f in functions]
    return "\n".join(lines)


def render_schema(audit: CatalogAudit) -> str:
    """Lease DDL, constraints, triggers, indexes and views, each as runnable DDL."""
    lease = audit.lease_ddl()
    triggers, indexes = audit.trigger_bindings(), audit.index_definitions()
    views = audit.view_definitions()
    login = audit.ledger_login_column()
    absent = [
        f"not in the catalog: {name}"
        for name, found in (
            ("lease CHECK", lease.check is not None),
            (APPEND_ONLY_TRIGGER, any(t.name == APPEND_ONLY_TRIGGER for t in triggers)),
            (TERMINAL_INDEX, any(i.name == TERMINAL_INDEX for i in indexes)),
            (STATUS_VIEW, any(v.name == STATUS_VIEW for v in views)),
            (f"{LEDGER_LOGIN_DDL} (who wrote each attempt)", _records_login(login)),
        )
        if not found
    ]
    others = [c for c in audit.constraints() if lease.check is None or c.name != lease.check.name]
    return "\n".join(
        [
            f"-- {verdict(absent, SCHEMA_PASSED)}",
            "",
            "-- The lease: the columns its CHECK covers, and the CHECK.",
            _lease_statement(lease),
            "",
            "-- Who wrote each attempt: the session's login, whatever worker_id it gave.",
            f"ALTER TABLE {login.table_name} ADD COLUMN {login.declaration};"
            if login
            else "-- (no such column in the catalog)",
            "",
            "-- The other constraints of the outbox tables (NOT VALID: checks new rows only).",
            *(
                f"ALTER TABLE {c.table_name} ADD CONSTRAINT {c.name} {c.definition};"
                for c in others
            ),
            "",
            f"-- Triggers ({APPEND_ONLY_TRIGGER} is the append-only guard).",
            *_statements(triggers),
            "",
            f"-- Indexes ({TERMINAL_INDEX} is the terminal guard).",
            *_statements(indexes),
            "",
            "-- Views.",
            *(f"CREATE VIEW {v.name} AS\n{v.definition}" for v in views),
        ]
    )


def _records_login(column: ColumnDefinition | None) -> bool:
    return column is not None and (column.default_value or "").lower() == "session_user"


def _lease_statement(lease: LeaseDdl) -> str:
    if lease.check is None:
        return "-- (no lease CHECK in the catalog)"
    clauses = [f"    ADD COLUMN {column.declaration}" for column in lease.columns]
    clauses.append(f"    ADD CONSTRAINT {lease.check.name} {lease.check.definition}")
    return f"ALTER TABLE {lease.check.table_name}\n" + ",\n".join(clauses) + ";"


def _statements(objects: Sequence[TableObject]) -> list[str]:
    return [f"{o.definition};" for o in objects]


def render_regression(audit: CatalogAudit) -> str:
    """The regression query, verbatim, its result, and the verdict (non-zero fails)."""
    result = audit.dispatching_count()
    problems = (
        [f"{result.count} ledger rows in the retired DISPATCHING state"] if result.count else []
    )
    return "\n".join(
        [
            verdict(problems, "no ledger row in the retired DISPATCHING state"),
            f"query: {result.query}",
            f"role: {audit.auditor}",
            f"result: {result.count}",
        ]
    )


def render_migrations(audit: CatalogAudit) -> str:
    """Every schema file applied or shipped, with its status and applied SHA-256."""
    history = audit.migration_history()
    problems = [f"{m.filename}: {m.status}" for m in history if m.status != "ok"]
    rows = [[m.status, m.filename, m.applied_checksum or "-"] for m in history]
    return "\n".join(
        [
            verdict(problems, "every shipped schema file is applied with its shipped checksum"),
            f"server: PostgreSQL {audit.server_version()}",
            f"read as {audit.auditor} from public.outbox_schema_migrations",
            "",
            *aligned([["status", "file", "applied sha256"], *rows]),
        ]
    )


def render_operator_log(audit: CatalogAudit) -> str:
    """What operators did, oldest first: re-drives, then rail ordering switches.

    The verdict: both records are append-only.
    """
    bound = {t.name for t in audit.trigger_bindings()}
    missing = sorted({OPERATOR_LOG_TRIGGER, RAIL_ORDERING_TRIGGER} - bound)
    entries = audit.operator_log()
    switches = audit.rail_orderings()
    rows = [
        [
            str(entry.entry_no),
            entry.requested_at.astimezone(UTC).isoformat(),
            entry.requested_by,
            str(entry.outbox_id),
            str(entry.redrive_outbox_id),
            entry.redrive_idempotency_key,
            entry.reason,
        ]
        for entry in entries
    ]
    heading = ["entry", "requested at", "by", "FAILED item", "re-driven as", "new key", "reason"]
    problems = [f"not in the catalog: {name}" for name in missing]
    summary = (
        f"append-only ({OPERATOR_LOG_TRIGGER}, {RAIL_ORDERING_TRIGGER}), {len(entries)} "
        f"re-drives, {len(switches)} rail ordering switches"
    )
    return "\n".join(
        [
            verdict(problems, summary),
            f"read as {audit.auditor} from public.outbox_operator_log, oldest first",
            "",
            *(aligned([heading, *rows]) if rows else ["(no re-drive recorded)"]),
            "",
            (
                f"read as {audit.auditor} from public.outbox_rail_ordering, oldest first "
                "(the last entry of a rail is in force; a rail without one is unordered)"
            ),
            "",
            *_ordering_rows(switches),
        ]
    )


def _ordering_rows(switches: Sequence[RailOrdering]) -> list[str]:
    """The ordering history as aligned rows, or a line saying there is none."""
    if not switches:
        return ["(no rail ordering recorded: every rail is unordered)"]
    heading = ["entry", "requested at", "by", "rail", "new items", "reason"]
    rows = [
        [
            str(switch.entry_no),
            switch.requested_at.astimezone(UTC).isoformat(),
            switch.requested_by,
            switch.rail_type,
            "ordered" if switch.ordered else "unordered",
            switch.reason,
        ]
        for switch in switches
    ]
    return aligned([heading, *rows])


def render_hardening(audit: CatalogAudit) -> str:
    """Whether the superuser hardening is in effect, and who may execute each function.

    No verdict: the step is optional. The facts come from the ACLs, which only a superuser
    can change, so an ordinary login cannot make this file say "applied".
    """
    state = audit.hardening()
    rows = [
        [
            f.signature,
            "yes" if f.public_may_execute else "no",
            ",".join(f.roles_may_execute) or "-",
        ]
        for f in state.functions
    ]
    applied = "applied" if state.applied else "not applied"
    recording = "installed" if state.ddl_recorded else "not installed"
    ddl = [
        [
            str(d.entry_no),
            d.recorded_at.isoformat(),
            d.login,
            d.command_tag,
            d.object_identity or "-",
        ]
        for d in state.ddl_log
    ]
    return "\n".join(
        [
            (
                f"superuser hardening: {applied}"
                f" ({len(state.executable)} of {len(state.functions)} large-object functions"
                " executable by PUBLIC or an outbox role)"
            ),
            f"lo_compat_privileges: {'on' if state.lo_compat_privileges else 'off'}",
            (
                f"DDL recording: {recording} (event triggers outbox_record_ddl and"
                " outbox_record_drops, run by a superuser's functions, into outbox_ddl.ddl_log,"
                " which no outbox role may write); statements on outbox objects recorded:"
                f" {len(ddl)}"
            ),
            (
                f"read as {audit.auditor} from pg_proc: PUBLIC from the ACL, each outbox role with"
                " has_function_privilege (direct, through PUBLIC or a granted role)."
            ),
            "Optional step, per database: `outbox-db harden --url URL` as a superuser.",
            "",
            *aligned([["function", "PUBLIC", "outbox roles that may execute"], *rows]),
            *(
                ["", *aligned([["entry", "recorded at", "login", "command", "object"], *ddl])]
                if ddl
                else []
            ),
        ]
    )


DATABASE_PARTS: Final[dict[str, Callable[[CatalogAudit], str]]] = {
    GRANTS: render_grants,
    FUNCTIONS: render_functions,
    SCHEMA: render_schema,
    REGRESSION: render_regression,
    MIGRATIONS: render_migrations,
    OPERATOR_LOG: render_operator_log,
    HARDENING: render_hardening,
    LEDGER_ROWS: render_ledger_rows,
}
