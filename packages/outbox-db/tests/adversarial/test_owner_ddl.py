"""Attacks of the owner with DDL (outbox_owner): prevented only where PostgreSQL can, else detected?

The owner owns every outbox object, so it may drop or switch off any guard; nothing in the
schema can stop it (docs/threat-model.md, "owner with DDL"). What can be asked is whether
the evidence bundle notices. Each attempt runs on a throwaway clone, as outbox_owner (SET
ROLE from the test's superuser), and then the database parts of the bundle are generated
from the clone as `outbox-evidence generate` does (read as symphony_auditor): a detected
attack fails the verdict of the file that must show it, naming what was removed.

Attacks nothing detects today are the gaps: each is a test asserting the detection it
should have, marked xfail(strict) with the gap as its reason, so that closing a gap turns
its test into a failure until the mark goes. A precondition that the attack took effect
raises AttackNotInEffect, which the xfail does not swallow.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final, LiteralString

import pytest

from outbox_evidence.catalog import database_parts
from outbox_evidence.layout import (
    FUNCTIONS,
    GRANTS,
    LEDGER_ROWS,
    OPERATOR_LOG,
    REGRESSION,
    SCHEMA,
    VERDICT_FAIL_LINE,
)
from outbox_evidence.ledger_bundle import checkpoints_part, ledger_part

if TYPE_CHECKING:
    from collections.abc import Callable

    from adversarial.conftest import Arena, Params

OWNER: Final = "outbox_owner"
Script = tuple[LiteralString, ...]
COMPLETE_SIGNATURE: Final = "public.complete_outbox_attempt(uuid, uuid, text, text, text, text, text, text, integer, integer)"
APPEND_ONLY: Final = "payment_outbox_attempts_append_only"
LEDGER_TRIGGER_ENABLED: Final[LiteralString] = (
    # On the table itself, not its partitions (schema 0019), whose triggers keep the name.
    "SELECT t.tgenabled = 'O' FROM pg_catalog.pg_trigger AS t"
    " JOIN pg_catalog.pg_class AS c ON c.oid = t.tgrelid"
    " WHERE t.tgname = %s AND NOT c.relispartition"
)
FORGE_DISPATCHING: Final[LiteralString] = (
    # guardrails: allow OBX006 -- the owner's attack the regression verdict must catch
    "INSERT INTO public.payment_outbox_attempts (outbox_id, instruction_id, participant_id,"
    " sequence_id, idempotency_key, rail_type, payload, attempt_no, state)"
    " SELECT outbox_id, instruction_id, participant_id, sequence_id, idempotency_key,"
    " rail_type, payload, attempt_count + 1, 'DISPATCHING'"
    " FROM public.payment_outbox_pending WHERE claimed_by = 'worker-held'"
)
FORGE_DISPATCHED: Final[LiteralString] = FORGE_DISPATCHING.replace("'DISPATCHING'", "'DISPATCHED'")
TAMPER_LEDGER: Final[LiteralString] = (
    "UPDATE public.payment_outbox_attempts SET rail_reference = 'forged' WHERE state = 'FAILED'"
)
RESTORE_APPEND_ONLY: Final[LiteralString] = (
    "CREATE TRIGGER payment_outbox_attempts_append_only"
    " BEFORE DELETE OR UPDATE OR TRUNCATE ON public.payment_outbox_attempts"
    " FOR EACH STATEMENT EXECUTE FUNCTION public.deny_outbox_attempts_mutation()"
)
NO_RANGE_CHECK: Final[LiteralString] = """
CREATE OR REPLACE FUNCTION public.outbox_require_range(
    p_argument text, p_value integer, p_low integer, p_high integer)
RETURNS void LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp
AS $$ BEGIN END $$
"""


class AttackNotInEffect(Exception):
    """The attack did not do what the test needs; a gap's xfail must not swallow this."""


def evidence_failures(url: str) -> dict[str, list[str]]:
    """The failed verdicts of the bundle's database parts, by file (empty: nothing detected).

    With 15_ledger.txt, each row checked against the digest the database wrote with it (no
    exporter's checkpoints here: what a bundle generated without `--checkpoints` says).
    """
    parts, diagnostics = database_parts(url)
    assert diagnostics == [], diagnostics
    (rows,) = (part for part in parts if part.name == LEDGER_ROWS)
    parts.append(ledger_part(rows, checkpoints_part(None, [])))
    return {
        part.name: [match[0] for match in VERDICT_FAIL_LINE.finditer(part.content)]
        for part in parts
    }


def detected(url: str, file: str, needle: str) -> bool:
    """Whether `file`'s verdict fails and names `needle`."""
    return any(needle in line for line in evidence_failures(url)[file])


def attack(arena: Arena, script: Script) -> None:
    """Run `script` as outbox_owner in one transaction (committed)."""
    steps: list[tuple[LiteralString, Params]] = [(statement, None) for statement in script]
    arena.script(*steps)


@pytest.fixture
def owner(fresh_arena: Callable[[str], Arena]) -> Arena:
    """A throwaway clone, seeded, where the owner may destroy what it likes."""
    arena = fresh_arena(OWNER)
    assert not any(evidence_failures(arena.database.url).values()), "a clean clone passes"
    return arena


DETECTED: Final = [
    pytest.param(
        (f"DROP TRIGGER {APPEND_ONLY} ON public.payment_outbox_attempts",),
        SCHEMA,
        APPEND_ONLY,
        id="drop-the-ledger-s-append-only-trigger",
    ),
    pytest.param(
        (f"DROP TRIGGER {APPEND_ONLY} ON public.payment_outbox_attempts", TAMPER_LEDGER),
        SCHEMA,
        APPEND_ONLY,
        id="drop-the-trigger-and-rewrite-the-ledger",
    ),
    pytest.param(
        ("DROP INDEX public.payment_outbox_attempts_one_terminal_per_outbox",),
        SCHEMA,
        "payment_outbox_attempts_one_terminal_per_outbox",
        id="drop-the-terminal-index",
    ),
    pytest.param(
        (
            (
                "ALTER TABLE public.payment_outbox_pending"
                " DROP CONSTRAINT payment_outbox_pending_lease_consistent"
            ),
        ),
        SCHEMA,
        "lease CHECK",
        id="drop-the-lease-check",
    ),
    pytest.param(
        ("DROP VIEW public.outbox_status_view",),
        SCHEMA,
        "public.outbox_status_view",
        id="drop-the-status-view",
    ),
    pytest.param(
        ("DROP TRIGGER outbox_operator_log_append_only ON public.outbox_operator_log",),
        OPERATOR_LOG,
        "outbox_operator_log_append_only",
        id="drop-the-operator-log-s-trigger",
    ),
    pytest.param(
        ("DROP TRIGGER outbox_rail_ordering_append_only ON public.outbox_rail_ordering",),
        OPERATOR_LOG,
        "outbox_rail_ordering_append_only",
        id="drop-the-rail-ordering-s-trigger",
    ),
    pytest.param(
        ("DROP FUNCTION public.renew_outbox_lease(uuid, uuid, text, integer)",),
        FUNCTIONS,
        "renew_outbox_lease",
        id="drop-a-function",
    ),
    pytest.param(
        (
            (
                "ALTER TABLE public.payment_outbox_attempts"
                " DROP CONSTRAINT payment_outbox_attempts_no_dispatching_insert"
            ),
            FORGE_DISPATCHING,
        ),
        REGRESSION,
        "DISPATCHING",
        id="drop-the-dispatching-check-and-write-one",
    ),
]


@pytest.mark.parametrize(("script", "file", "needle"), DETECTED)
def test_an_owner_s_removal_of_a_guard_fails_the_evidence(
    owner: Arena, script: Script, file: str, needle: str
) -> None:
    """The attack runs (the owner may), and the bundle's verdict for `file` fails, naming it."""
    attack(owner, script)
    assert detected(owner.database.url, file, needle)


@pytest.mark.parametrize(
    ("statement", "sqlstate"),
    [
        pytest.param(
            "SET LOCAL session_replication_role = replica", "42501", id="triggers-off-by-replica"
        ),
        pytest.param("ALTER ROLE outbox_owner SUPERUSER", "42501", id="make-itself-superuser"),
        pytest.param("ALTER ROLE outbox_owner BYPASSRLS", "42501", id="bypass-row-security"),
        pytest.param("CREATE ROLE outbox_shadow_owner LOGIN", "42501", id="create-a-login"),
        pytest.param(
            "UPDATE public.outbox_schema_migrations SET checksum = 'forged'",
            "42501",
            id="rewrite-the-migration-history",
        ),
        pytest.param(
            "DELETE FROM public.outbox_schema_migrations",
            "42501",
            id="erase-the-migration-history",
        ),
    ],
)
def test_what_the_owner_cannot_do_either(
    owner: Arena, statement: LiteralString, sqlstate: str
) -> None:
    """Triggers off for its session, superuser powers, logins of its own, the history: 42501.

    The migration history belongs to the migrating login, not to outbox_owner.
    """
    owner.refused(statement, sqlstate)


def gap(reason: str) -> pytest.MarkDecorator:
    """An attack no verdict of the evidence bundle detects today (see the module docstring)."""
    return pytest.mark.xfail(strict=True, raises=AssertionError, reason=f"gap: {reason}")


def trigger_disabled(arena: Arena, name: str) -> None:
    """Raise AttackNotInEffect unless trigger `name` no longer fires in an ordinary session."""
    if arena.as_owner(LEDGER_TRIGGER_ENABLED, [name]) != [(False,)]:
        raise AttackNotInEffect(name)


UNDETECTED: Final = [
    pytest.param(
        (f"ALTER TABLE public.payment_outbox_attempts DISABLE TRIGGER {APPEND_ONLY}",),
        SCHEMA,
        APPEND_ONLY,
        id="disable-the-append-only-trigger",
        marks=gap("03_schema.sql reads pg_get_triggerdef, which omits tgenabled"),
    ),
    pytest.param(
        (f"ALTER TABLE public.payment_outbox_attempts ENABLE REPLICA TRIGGER {APPEND_ONLY}",),
        SCHEMA,
        APPEND_ONLY,
        id="make-the-append-only-trigger-replica-only",
        marks=gap("a replica-only trigger never fires on a primary; tgenabled is not read"),
    ),
    pytest.param(
        ("ALTER TABLE public.payment_outbox_attempts DISABLE TRIGGER ALL",),
        SCHEMA,
        APPEND_ONLY,
        id="disable-every-ledger-trigger",
        marks=gap("DISABLE TRIGGER ALL: tgenabled is not read"),
    ),
    pytest.param(
        ("ALTER TABLE public.outbox_operator_log DISABLE TRIGGER outbox_operator_log_append_only",),
        OPERATOR_LOG,
        "outbox_operator_log_append_only",
        id="disable-the-operator-log-s-trigger",
        marks=gap("11_operator_log.txt checks the trigger exists, not that it is enabled"),
    ),
]


@pytest.mark.parametrize(("script", "file", "needle"), UNDETECTED)
def test_a_guard_switched_off_fails_the_evidence(
    owner: Arena, script: Script, file: str, needle: str
) -> None:
    """The trigger is still there but fires no more: the bundle should say so."""
    attack(owner, script)
    trigger_disabled(owner, needle)
    assert detected(owner.database.url, file, needle)


def test_a_ledger_rewritten_behind_a_restored_trigger_fails_the_evidence(owner: Arena) -> None:
    """Drop the trigger, rewrite the FAILED attempt's rail reference, put the trigger back."""
    drop = f"DROP TRIGGER {APPEND_ONLY} ON public.payment_outbox_attempts"
    attack(owner, (drop, TAMPER_LEDGER, RESTORE_APPEND_ONLY))
    forged = owner.as_owner(
        "SELECT count(*) FROM public.payment_outbox_attempts WHERE rail_reference = 'forged'"
    )
    if forged != [(1,)]:
        raise AttackNotInEffect(TAMPER_LEDGER)
    assert any(evidence_failures(owner.database.url).values())


REWRITES: Final = [
    pytest.param(
        (f"ALTER FUNCTION {COMPLETE_SIGNATURE} SECURITY INVOKER",),
        id="completion-runs-as-the-caller",
        marks=gap("02_functions.sql checks only that the functions exist"),
    ),
    pytest.param(
        ("ALTER FUNCTION public.claim_outbox_batch(integer, text, integer) RESET search_path",),
        id="claim-search-path-unpinned",
        marks=gap("02_functions.sql checks only that the functions exist"),
    ),
    pytest.param(
        (NO_RANGE_CHECK,),
        id="range-check-emptied",
        marks=gap("function bodies are listed in 02_functions.sql but compared with nothing"),
    ),
    pytest.param(
        (
            (
                "ALTER TABLE public.outbox_idempotency_keys"
                " DROP CONSTRAINT outbox_idempotency_keys_one_item_per_rail_key"
            ),
        ),
        id="drop-one-key-one-payment",
        marks=gap("03_schema.sql's verdict does not cover the key registry's unique indexes"),
    ),
    pytest.param(
        ("DROP TRIGGER outbox_idempotency_keys_append_only ON public.outbox_idempotency_keys",),
        id="drop-the-key-registry-s-trigger",
        marks=gap("no verdict covers the key registry's append-only trigger"),
    ),
    pytest.param(
        ("GRANT INSERT, UPDATE ON public.payment_outbox_attempts TO symphony_executor",),
        id="grant-the-relayer-the-ledger",
        marks=gap(f"{GRANTS} lists privileges but has no verdict"),
    ),
    pytest.param(
        (
            (
                "GRANT EXECUTE ON FUNCTION public.outbox_enqueue_item(text, text, text, text, jsonb)"
                " TO PUBLIC"
            ),
        ),
        id="open-an-internal-to-public",
        marks=gap(f"{GRANTS} lists privileges but has no verdict"),
    ),
    pytest.param(
        (FORGE_DISPATCHED,),
        id="forge-a-dispatched-attempt-for-a-live-item",
        marks=gap("nothing checks the ledger against the queue (terminal yet still pending)"),
    ),
    pytest.param(
        (
            (
                "ALTER TABLE public.payment_outbox_attempts"
                " DROP CONSTRAINT payment_outbox_attempts_no_dispatching_insert"
            ),
        ),
        id="drop-the-dispatching-check-alone",
        marks=gap("03_schema.sql's verdict does not cover the DISPATCHING check"),
    ),
]


@pytest.mark.parametrize("script", REWRITES)
def test_a_weakened_function_grant_or_constraint_fails_the_evidence(
    owner: Arena, script: Script
) -> None:
    """The owner weakens a guard the verdicts do not cover: some verdict should fail."""
    attack(owner, script)  # a refusal would raise OutboxDatabaseError, which no xfail takes
    assert any(evidence_failures(owner.database.url).values())
