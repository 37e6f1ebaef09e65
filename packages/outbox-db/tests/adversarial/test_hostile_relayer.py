"""Attacks of a broken or hostile relayer: a login granted symphony_executor.

The threat model (docs/threat-model.md, "broken or hostile relayer") lets it claim, renew,
complete, release and repair, and nothing else. It attacks the lease: outcomes for items
that are finished, released or leased to someone else, a token reused after it was spent,
its own token on another item, NULLs and odd arrays where the functions expect values, the
functions' internals, payloads read past the claim, and look-alikes planted in pg_temp.
Each refusal carries its SQLSTATE and changes no row; what runs and is ignored changes none.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final, LiteralString

import pytest

from outbox_db import Role

if TYPE_CHECKING:
    from collections.abc import Callable

    from adversarial.conftest import Arena, Arenas, Params, Seeded

COMPLETE: Final[LiteralString] = (
    "SELECT * FROM public.complete_outbox_attempt(%s, %s, %s, %s, NULL, NULL, NULL, NULL, NULL, NULL)"
)
COMPLETE_BATCH: Final[LiteralString] = (
    "SELECT * FROM public.complete_outbox_attempts(%s, %s::uuid[], %s::uuid[], %s::text[],"
    " %s::text[], %s::text[], %s::text[], %s::text[], %s::int[], %s::int[])"
)
RENEW: Final[LiteralString] = "SELECT public.renew_outbox_lease(%s, %s, %s, %s)"
RELEASE: Final[LiteralString] = "SELECT * FROM public.release_outbox_leases(%s, %s, %s)"
CLAIM: Final[LiteralString] = "SELECT * FROM public.claim_outbox_batch(%s, %s, %s)"

# Each attempt with its SQLSTATE and its arguments, read from the seeded items.
REFUSALS: Final[dict[str, tuple[LiteralString, str, Callable[[Seeded], Params]]]] = {
    "complete-with-a-null-token": (
        COMPLETE,
        "P7002",
        lambda s: [s.held.outbox_id, None, "worker-held", "DISPATCHED"],
    ),
    "complete-with-a-null-worker": (
        COMPLETE,
        "22023",
        lambda s: [s.held.outbox_id, s.held.lease_token, None, "DISPATCHED"],
    ),
    "complete-a-dispatched-item-again": (
        COMPLETE,
        "P7002",
        lambda s: [s.dispatched.outbox_id, s.dispatched.lease_token, "worker-done", "DISPATCHED"],
    ),
    "turn-a-dispatched-item-failed": (
        COMPLETE,
        "P7002",
        lambda s: [s.dispatched.outbox_id, s.dispatched.lease_token, "worker-done", "FAILED"],
    ),
    "turn-a-failed-item-dispatched": (
        COMPLETE,
        "P7002",
        lambda s: [s.failed.outbox_id, s.failed.lease_token, "worker-done", "DISPATCHED"],
    ),
    "renew-a-finished-item-s-lease": (
        RENEW,
        "P7002",
        lambda s: [s.dispatched.outbox_id, s.dispatched.lease_token, "worker-done", 30],
    ),
    "renew-for-null-seconds": (
        RENEW,
        "22023",
        lambda s: [s.held.outbox_id, s.held.lease_token, "worker-held", None],
    ),
    "claim-a-null-batch": (CLAIM, "22023", lambda _: [None, "worker-evil", 30]),
    "claim-as-a-null-worker": (CLAIM, "22023", lambda _: [1000, None, 30]),
    "claim-for-null-seconds": (CLAIM, "22023", lambda _: [1000, "worker-evil", None]),
    "complete-one-item-twice-in-a-batch": (
        COMPLETE_BATCH,
        "22023",
        lambda s: [
            "worker-held",
            [s.held.outbox_id] * 2,
            [s.held.lease_token] * 2,
            ["DISPATCHED", "DISPATCHED"],
            *([[None, None]] * 6),
        ],
    ),
    "copy-the-queue-out": ("COPY public.payment_outbox_pending TO STDOUT", "42501", lambda _: None),
    "copy-the-payloads-out": (
        "COPY (SELECT payload FROM public.payment_outbox_pending) TO STDOUT",
        "42501",
        lambda _: None,
    ),
}

# Releases that must release nothing: the lease expired (repair owns it), it is another
# worker's, or the item is finished.
RELEASES: Final[dict[str, Callable[[Seeded], Params]]] = {
    "an-expired-lease": lambda s: [
        "worker-expired",
        [s.expired.outbox_id],
        [s.expired.lease_token],
    ],
    "another-worker-s-lease-with-its-token": lambda s: [
        "worker-evil",
        [s.held.outbox_id],
        [s.held.lease_token],
    ],
    "a-finished-item-s-lease": lambda s: [
        "worker-done",
        [s.dispatched.outbox_id],
        [s.dispatched.lease_token],
    ],
}
TWO_DIMENSIONAL_BATCH: Final[LiteralString] = """
SELECT lease_held FROM public.complete_outbox_attempts('worker-held',
    ARRAY[[pg_catalog.gen_random_uuid()], [pg_catalog.gen_random_uuid()]],
    ARRAY[[pg_catalog.gen_random_uuid()], [pg_catalog.gen_random_uuid()]],
    ARRAY[['DISPATCHED'], ['DISPATCHED']], ARRAY[[NULL], [NULL]]::text[],
    ARRAY[[NULL], [NULL]]::text[], ARRAY[[NULL], [NULL]]::text[], ARRAY[[NULL], [NULL]]::text[],
    ARRAY[[NULL], [NULL]]::int[], ARRAY[[NULL], [NULL]]::int[])
"""
SHADOW_SETTINGS: Final[tuple[LiteralString, ...]] = (
    "CREATE TEMP TABLE payment_outbox_settings (singleton boolean, max_attempts integer)",
    "INSERT INTO pg_temp.payment_outbox_settings VALUES (true, 1)",
    "SET LOCAL search_path = pg_temp, pg_catalog, public",
)


@pytest.fixture(scope="module")
def arena(arenas: Arenas) -> Arena:
    """The relayer's shared arena: attempts here must change nothing."""
    return arenas.shared(Role.EXECUTOR)


@pytest.fixture
def fresh(fresh_arena: Callable[[Role | str], Arena]) -> Arena:
    """The relayer's arena on this test's own clone, for attempts after a write."""
    return fresh_arena(Role.EXECUTOR)


def outcome_of(
    arena: Arena, state: str = "DISPATCHED", worker: str = "worker-held"
) -> list[object]:
    """COMPLETE's arguments: the held item, with its token, as `worker`, in `state`."""
    held = arena.seeded.held
    return [held.outbox_id, held.lease_token, worker, state]


@pytest.mark.parametrize(
    ("statement", "sqlstate", "arguments"), REFUSALS.values(), ids=REFUSALS.keys()
)
def test_a_relayer_s_out_of_bounds_call_is_refused_and_writes_nothing(
    arena: Arena, statement: LiteralString, sqlstate: str, arguments: Callable[[Seeded], Params]
) -> None:
    """Finished items, NULL tokens, workers and sizes, a doubled batch, COPY: each its SQLSTATE."""
    arena.refused(statement, sqlstate, arguments(arena.seeded))


def test_the_functions_internals_are_not_the_relayer_s_to_call(
    arena: Arena, internal_call: LiteralString
) -> None:
    """A relayer reads payloads only through its claim: the internals are 42501."""
    arena.refused(internal_call, "42501")


@pytest.mark.parametrize("arguments", RELEASES.values(), ids=RELEASES.keys())
def test_a_release_of_a_lease_it_does_not_hold_releases_nothing(
    arena: Arena, arguments: Callable[[Seeded], Params]
) -> None:
    """No row released, none changed: an expired lease stays for repair, which records it."""
    assert arena.ignored(RELEASE, arguments(arena.seeded)) == []


def test_two_dimensional_arrays_complete_nothing(arena: Arena) -> None:
    """A batch of 2x1 arrays is read as two unknown leases: both lost, nothing written."""
    assert arena.ignored(TWO_DIMENSIONAL_BATCH) == [(False,), (False,)]


def test_operators_planted_in_pg_temp_do_not_make_a_wrong_token_match(
    arena: Arena, planted_pg_temp: list[tuple[LiteralString, Params]]
) -> None:
    """Always-true `=` for uuid and text first on the path: a stranger's completion is P7002."""
    stranger = [arena.seeded.held.outbox_id, arena.seeded.dispatched.lease_token, "worker-evil"]
    arena.script_refused("P7002", *planted_pg_temp, (COMPLETE, [*stranger, "DISPATCHED"]))


@pytest.mark.parametrize(
    ("statement", "arguments"),
    [
        pytest.param(COMPLETE, lambda a: outcome_of(a, "DISPATCHED"), id="complete-again"),
        pytest.param(RENEW, lambda a: [*outcome_of(a)[:3], 30], id="renew"),
    ],
)
def test_a_token_is_spent_by_its_first_outcome(
    fresh: Arena, statement: LiteralString, arguments: Callable[[Arena], Params]
) -> None:
    """After RETRYABLE the item is due again and the old token opens nothing: P7002."""
    assert fresh.attempt(COMPLETE, outcome_of(fresh, "RETRYABLE")) == [(1, "RETRYABLE")]
    fresh.refused(statement, "P7002", arguments(fresh))


@pytest.mark.parametrize(
    ("statement", "arguments"),
    [
        pytest.param(COMPLETE, lambda a: outcome_of(a, "DISPATCHED"), id="complete"),
        pytest.param(RENEW, lambda a: [*outcome_of(a)[:3], 30], id="renew"),
    ],
)
def test_a_released_lease_is_gone(
    fresh: Arena, statement: LiteralString, arguments: Callable[[Arena], Params]
) -> None:
    """A relayer that released a lease cannot then record an outcome or renew it: P7002."""
    held = fresh.seeded.held
    released = fresh.attempt(RELEASE, ["worker-held", [held.outbox_id], [held.lease_token]])
    assert released == [(held.outbox_id,)]
    fresh.refused(statement, "P7002", arguments(fresh))


@pytest.mark.parametrize("worker", ["worker-evil", "worker-held"])
def test_the_token_of_its_own_lease_does_not_open_another_item(fresh: Arena, worker: str) -> None:
    """A real token of its own lease, on worker-held's item, as itself or as worker-held: P7002."""
    ((own_token,),) = fresh.attempt(
        "SELECT lease_token FROM public.claim_outbox_batch(1000, 'worker-evil', 30)"
    )
    held = fresh.seeded.held
    fresh.refused(COMPLETE, "P7002", [held.outbox_id, own_token, worker, "DISPATCHED"])


def test_settings_shadowed_in_pg_temp_do_not_move_the_retry_ceiling(fresh: Arena) -> None:
    """A temp payment_outbox_settings saying max_attempts = 1, first on the path: RETRYABLE stays.

    The functions name public.payment_outbox_settings; the shadow is never read.
    """
    steps = [(step, None) for step in SHADOW_SETTINGS]
    recorded = fresh.script(*steps, (COMPLETE, outcome_of(fresh, "RETRYABLE")))
    assert recorded == [(1, "RETRYABLE")]
