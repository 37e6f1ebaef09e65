"""Attacks of a careless (or compromised) operator: symphony_operator, and symphony_readonly.

The threat model (docs/threat-model.md, "careless operator") lets the operator re-drive a
FAILED item and switch a rail's ordering, and the reader read. The operator here re-drives
what is not FAILED (a re-drive still pending, an expired or repaired lease), passes a lease
token for an item id, a NULL or a reason with control characters, switches a rail with no
name, and signs as someone else; the reader tries every write a reader's session might
reach: row and table locks, the append-only records, their sequence, DDL on the tables,
re-granting what it holds. Each refusal carries its SQLSTATE and changes no row.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final, LiteralString

import pytest

from outbox_db import OutboxStore, Role

if TYPE_CHECKING:
    from collections.abc import Callable

    from adversarial.conftest import Arena, Arenas, Params, Seeded

REDRIVE: Final[LiteralString] = "SELECT * FROM public.redrive_payment_outbox(%s, %s)"
ORDERING: Final[LiteralString] = "SELECT * FROM public.set_outbox_rail_ordering(%s, %s, %s)"

OPERATOR_REFUSALS: Final[dict[str, tuple[LiteralString, str, Callable[[Seeded], Params]]]] = {
    "redrive-a-null-item": (REDRIVE, "22023", lambda _: [None, "rail refused"]),
    "redrive-without-a-reason": (REDRIVE, "22023", lambda s: [s.failed.outbox_id, None]),
    "redrive-with-a-newline-in-the-reason": (
        REDRIVE,
        "22023",
        lambda s: [s.failed.outbox_id, "ticket 7\nDROP TABLE"],
    ),
    "redrive-with-a-tab-in-the-reason": (
        REDRIVE,
        "22023",
        lambda s: [s.failed.outbox_id, "ticket\t7"],
    ),
    "redrive-the-lease-token-for-the-item": (
        REDRIVE,
        "P7005",
        lambda s: [s.failed.lease_token, "rail refused"],
    ),
    "redrive-an-expired-lease-not-yet-repaired": (
        REDRIVE,
        "P7004",
        lambda s: [s.expired.outbox_id, "looks stuck"],
    ),
    "order-an-empty-rail-name": (ORDERING, "22023", lambda _: ["", True, "ordered lanes"]),
    "order-a-blank-rail-name": (ORDERING, "22023", lambda _: ["   ", True, "ordered lanes"]),
    "order-a-rail-name-with-a-newline": (
        ORDERING,
        "22023",
        lambda _: ["rtp\n", True, "ordered lanes"],
    ),
    "order-neither-on-nor-off": (ORDERING, "22023", lambda _: ["rtp", None, "ordered lanes"]),
    "order-without-a-reason": (ORDERING, "22023", lambda _: ["rtp", True, None]),
    "order-with-an-empty-reason": (ORDERING, "22023", lambda _: ["rtp", True, ""]),
}

# Every write a reader's session might reach beyond the tables' DML (test_role_refusals.py
# and executor_boundary.toml have that): each 42501.
READER_REFUSALS: Final[dict[str, LiteralString]] = {
    "lock-queue-rows-for-update": "SELECT outbox_id FROM public.payment_outbox_pending FOR UPDATE",
    "lock-ledger-rows-for-key-share": "SELECT attempt_id FROM public.payment_outbox_attempts FOR KEY SHARE",
    "lock-the-queue-exclusive": "LOCK TABLE public.payment_outbox_pending IN EXCLUSIVE MODE",
    "lock-the-key-registry-row-exclusive": "LOCK TABLE public.outbox_idempotency_keys IN ROW EXCLUSIVE MODE",
    "update-the-operator-log": "UPDATE public.outbox_operator_log SET reason = 'rewritten'",
    "delete-the-operator-log": "DELETE FROM public.outbox_operator_log",
    "truncate-the-operator-log": "TRUNCATE public.outbox_operator_log",
    "update-the-rail-ordering": "UPDATE public.outbox_rail_ordering SET ordered = NOT ordered",
    "delete-the-rail-ordering": "DELETE FROM public.outbox_rail_ordering",
    "truncate-the-rail-ordering": "TRUNCATE public.outbox_rail_ordering",
    "update-the-key-registry": "UPDATE public.outbox_idempotency_keys SET instruction_id = 'ins-evil'",
    "truncate-the-key-registry": "TRUNCATE public.outbox_idempotency_keys",
    "nextval-the-operator-log": "SELECT pg_catalog.nextval('public.outbox_operator_log_entry_no_seq')",
    "setval-the-operator-log": "SELECT pg_catalog.setval('public.outbox_operator_log_entry_no_seq', 1)",
    "copy-a-server-file-into-the-ledger": "COPY public.payment_outbox_attempts FROM '/dev/null'",
    "comment-on-the-ledger": "COMMENT ON TABLE public.payment_outbox_attempts IS 'rewritten'",
    "index-the-ledger": "CREATE INDEX ON public.payment_outbox_attempts (worker_id)",
    "trigger-on-the-ledger": "CREATE TRIGGER forged BEFORE INSERT ON public.payment_outbox_attempts FOR EACH ROW EXECUTE FUNCTION public.deny_outbox_attempts_mutation()",
    "row-security-on-the-queue": "ALTER TABLE public.payment_outbox_pending ENABLE ROW LEVEL SECURITY",
    "policy-hiding-the-queue": "CREATE POLICY hide ON public.payment_outbox_pending USING (false)",
    "rule-swallowing-ledger-inserts": "CREATE RULE swallow AS ON INSERT TO public.payment_outbox_attempts DO INSTEAD NOTHING",
    "reindex-the-ledger": "REINDEX TABLE public.payment_outbox_attempts",
    "cluster-the-ledger": "CLUSTER public.payment_outbox_attempts USING payment_outbox_attempts_pkey",
}
ACLS: Final[LiteralString] = """
SELECT c.relname::text, c.relacl::text FROM pg_catalog.pg_class AS c
WHERE c.relnamespace = 'public'::regnamespace ORDER BY 1
"""


@pytest.fixture(scope="module")
def operator(arenas: Arenas) -> Arena:
    """The operator's shared arena: attempts here must change nothing."""
    return arenas.shared(Role.OPERATOR)


@pytest.fixture(scope="module")
def reader(arenas: Arenas) -> Arena:
    """The reader's shared arena."""
    return arenas.shared(Role.READONLY)


@pytest.mark.parametrize(
    ("statement", "sqlstate", "arguments"),
    OPERATOR_REFUSALS.values(),
    ids=OPERATOR_REFUSALS.keys(),
)
def test_a_careless_redrive_or_ordering_switch_is_refused_and_writes_nothing(
    operator: Arena, statement: LiteralString, sqlstate: str, arguments: Callable[[Seeded], Params]
) -> None:
    """NULLs, control characters, blank names, the wrong id, a lease not FAILED: each its SQLSTATE."""
    operator.refused(statement, sqlstate, arguments(operator.seeded))


def test_the_functions_internals_are_not_the_operator_s_to_call(
    operator: Arena, internal_call: LiteralString
) -> None:
    """An operator reads no payload and takes no key past the re-drive: 42501."""
    operator.refused(internal_call, "42501")


@pytest.mark.parametrize("statement", READER_REFUSALS.values(), ids=READER_REFUSALS.keys())
def test_a_reader_s_write_of_any_kind_is_refused(reader: Arena, statement: LiteralString) -> None:
    """Row locks, table locks, the append-only records, their sequence, DDL: 42501."""
    reader.refused(statement, "42501")


@pytest.mark.parametrize(
    "statement",
    [
        pytest.param("GRANT SELECT ON public.payment_outbox_attempts TO PUBLIC", id="regrant"),
        pytest.param("ANALYZE public.payment_outbox_attempts", id="analyze"),
    ],
)
def test_what_a_reader_is_only_warned_about_changes_nothing(
    reader: Arena, statement: LiteralString
) -> None:
    """Re-granting what it holds (no grant option) and ANALYZE (not the owner): warnings only.

    PostgreSQL answers both with a WARNING, not an error: no privilege and no row changes.
    """
    acls = reader.as_owner(ACLS)
    reader.ignored(statement)
    assert reader.as_owner(ACLS) == acls


@pytest.fixture
def fresh(fresh_arena: Callable[[Role | str], Arena]) -> Arena:
    """The operator's arena on this test's own clone."""
    return fresh_arena(Role.OPERATOR)


def test_a_redrive_still_pending_cannot_be_redriven(fresh: Arena) -> None:
    """Re-driving the re-drive before it ends: P7004 (it is pending), nothing written."""
    ((_, redrive_id, *_),) = fresh.attempt(REDRIVE, [fresh.seeded.failed.outbox_id, "rail fixed"])
    fresh.refused(REDRIVE, "P7004", [redrive_id, "impatient"])


def test_a_repaired_lease_cannot_be_redriven(fresh: Arena) -> None:
    """The expired lease, repaired (ZOMBIE_REQUEUE, due again): P7004, it is not FAILED."""
    with OutboxStore.connect(fresh.database.url, max_size=1) as repairer:
        (repaired,) = repairer.repair("repairer", batch_size=10)
    assert repaired.outbox_id == fresh.seeded.expired.outbox_id
    fresh.refused(REDRIVE, "P7004", [repaired.outbox_id, "looks stuck"])


def test_the_redrive_is_signed_by_the_login_whatever_the_session_claims(fresh: Arena) -> None:
    """application_name 'on-call-admin' and the group role: requested_by is the login."""
    (entry,) = fresh.script(
        ("SET LOCAL application_name = 'on-call-admin'", None),
        (REDRIVE, [fresh.seeded.failed.outbox_id, "rail fixed"]),
    )
    requested_by = entry[4]
    assert requested_by == fresh.login
    logged = fresh.as_owner("SELECT requested_by FROM public.outbox_operator_log")
    assert logged == [(fresh.login,)]
