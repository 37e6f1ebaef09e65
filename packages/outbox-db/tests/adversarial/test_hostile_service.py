"""Attacks of a hostile service: a login granted symphony_producer, trying to pay twice or pry.

The threat model (docs/threat-model.md, "hostile service") grants it two functions, the
enqueues. It attacks them with JSON PostgreSQL refuses or reads oddly, with requests that
replay or re-route another participant's payment, with the internal functions behind them,
with look-alikes planted in the one schema it may create in (pg_temp) and with a wake-up it
forges. Each refusal carries its SQLSTATE and changes no row of any outbox table; what the
database accepts is asserted as it is, with the reason it keeps the promise.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Final, LiteralString

import pytest

from outbox_db import IdempotencyConflict, OutboxDatabaseError, OutboxStore, Role
from outbox_db.testonly.factories import make_request

if TYPE_CHECKING:
    from collections.abc import Callable

    from adversarial.conftest import Arena, Arenas, Params, Seeded
    from outbox_db import ClaimedItem, EnqueueRequest, EnqueueResult

ENQUEUE: Final[LiteralString] = "SELECT * FROM public.enqueue_payment_outbox(%s, %s, %s, %s, %s)"
EVIL: Final = "participant-evil"
WAIT_SECONDS: Final = 10.0


def evil_enqueue(payload: LiteralString) -> LiteralString:
    """An enqueue of the attacker's own new request with `payload` as JSON text."""
    return (
        "SELECT * FROM public.enqueue_payment_outbox("
        "'ins-evil', 'participant-evil', 'key-evil', 'rtp', '" + payload + "')"
    )


def nested_arrays(levels: int) -> LiteralString:
    """`{"a": [[...1...]]}`: the innermost 1 sits `levels` levels below the object."""
    return '{"a": ' + "[" * (levels - 1) + "1" + "]" * (levels - 1) + "}"


# JSON the server refuses before any function runs, or the payload check refuses: nothing written.
ODD_JSON: Final = [
    pytest.param(evil_enqueue('{"memo": "a\\u0000b"}'), "22P05", id="nul-escape"),
    pytest.param(evil_enqueue('{"memo": "\\ud800"}'), "22P02", id="lone-high-surrogate"),
    pytest.param(evil_enqueue('{"memo": "\\udc00"}'), "22P02", id="lone-low-surrogate"),
    pytest.param(evil_enqueue('{"memo": "\\ude00\\ud83d"}'), "22P02", id="swapped-surrogates"),
    pytest.param(evil_enqueue('{"amount": 1e1000000}'), "22003", id="number-beyond-numeric"),
    pytest.param(evil_enqueue(nested_arrays(65)), "22023", id="arrays-65-levels"),
    pytest.param(
        evil_enqueue('{"a": ' + "[" * 64 + "{}" + "]" * 64 + "}"),
        "22023",
        id="empty-object-at-level-65",
    ),
]

BATCH: Final[LiteralString] = (
    "SELECT * FROM public.enqueue_payment_outbox_batch(%s, %s, %s, %s, %s::jsonb[])"
)


def replay_of(item: ClaimedItem, **changes: str) -> list[object]:
    """The enqueue arguments that made `item`, with `changes` applied."""
    fields = {
        "instruction_id": item.instruction_id,
        "participant_id": item.participant_id,
        "idempotency_key": item.idempotency_key,
        "rail_type": item.rail_type,
        "payload": item.payload_json,
    }
    return list((fields | changes).values())


# Requests built from a seeded item that is still live (held by worker-held): P7001 each.
REPLAYS: Final[dict[str, Callable[[Seeded], Params]]] = {
    "re-route-to-another-rail": lambda s: replay_of(s.held, rail_type="sepa"),
    "claim-it-for-another-participant": lambda s: replay_of(s.held, participant_id=EVIL),
    "raise-the-amount": lambda s: replay_of(s.held, payload='{"amount": "1000000.00"}'),
    "same-key-another-instruction": lambda s: replay_of(s.dispatched, instruction_id="ins-evil"),
}


@pytest.fixture(scope="module")
def arena(arenas: Arenas) -> Arena:
    """The producer's shared arena: attempts here must change nothing."""
    return arenas.shared(Role.PRODUCER)


@pytest.mark.parametrize(("statement", "sqlstate"), ODD_JSON)
def test_odd_json_is_refused_with_its_sqlstate_and_writes_nothing(
    arena: Arena, statement: LiteralString, sqlstate: str
) -> None:
    """NUL escapes, lone surrogates, unparseable numbers, nesting past 64 levels: refused."""
    arena.refused(statement, sqlstate)


def test_the_enqueue_internals_are_not_the_service_s_to_call(
    arena: Arena, internal_call: LiteralString
) -> None:
    """Payload lookups, replay, checks and lane triggers: 42501 for a service."""
    arena.refused(internal_call, "42501")


@pytest.mark.parametrize("replay", REPLAYS.values(), ids=REPLAYS.keys())
def test_replaying_another_payment_s_key_with_any_change_is_refused(
    arena: Arena, replay: Callable[[Seeded], Params]
) -> None:
    """Another rail, participant, payload or instruction under a used key: P7001, nothing written."""
    arena.refused(ENQUEUE, "P7001", replay(arena.seeded))


@pytest.mark.parametrize(
    ("keys", "payloads", "sqlstate"),
    [
        pytest.param(
            ["key-evil-1", "outbox:redrive:forged"],
            ['{"n": 1}', '{"n": 2}'],
            "22023",
            id="redrive-key-in-a-batch",
        ),
        pytest.param(
            ["key-evil", "key-evil"],
            ['{"n": 1}', '{"n": 2}'],
            "P7001",
            id="one-request-two-payloads",
        ),
    ],
)
def test_a_batch_smuggling_one_bad_request_is_refused_whole(
    arena: Arena, keys: list[str], payloads: list[str], sqlstate: str
) -> None:
    """A good request next to the outbox's own key, or a request twice with two payloads."""
    params = [["ins-evil"] * 2, [EVIL] * 2, keys, ["rtp"] * 2, payloads]
    arena.refused(BATCH, sqlstate, params)


def test_a_batch_over_ten_thousand_requests_is_refused(arena: Arena) -> None:
    """10,001 requests in one call: 22023 before any is looked at."""
    count = 10_001
    params = [
        [f"ins-{n}" for n in range(count)],
        [EVIL] * count,
        [f"key-{n}" for n in range(count)],
        ["rtp"] * count,
        ["{}"] * count,
    ]
    arena.refused(BATCH, "22023", params)


SHADOW_REGISTRY: Final[LiteralString] = (
    "CREATE TEMP TABLE outbox_idempotency_keys"
    " (rail_type text, idempotency_key text, instruction_id text, outbox_id uuid)"
)


def test_operators_planted_in_pg_temp_do_not_make_a_changed_replay_equal(
    arena: Arena, planted_pg_temp: list[tuple[LiteralString, Params]]
) -> None:
    """Always-true `=` for jsonb and text and an empty shadow key registry: still P7001.

    pg_temp is the one schema every login may create in; the functions pin their search_path
    and PostgreSQL never looks for functions or operators in pg_temp.
    """
    raise_amount = replay_of(arena.seeded.held, payload='{"amount": "1000000.00"}')
    steps = [*planted_pg_temp, (SHADOW_REGISTRY, None), (ENQUEUE, raise_amount)]
    arena.script_refused("P7001", *steps)


def test_a_forged_wake_up_costs_relayers_one_empty_claim_and_writes_nothing(arena: Arena) -> None:
    """NOTIFY outbox_items_enqueued is open to every login: it wakes listeners, changes nothing.

    The notification carries no data a relayer reads (it claims to find out what is due), so
    a forger buys a relayer one claim round trip per notification it sends.
    """
    with OutboxStore.connect(arena.database.url, max_size=1) as relayer, relayer.wakeups() as woken:
        assert woken.drain() == 0  # listening from here
        arena.ignored("SELECT pg_catalog.pg_notify('outbox_items_enqueued', 'forged')")
        arena.ignored("NOTIFY outbox_items_enqueued")
        assert woken.wait(WAIT_SECONDS)


# --- attempts the database accepts, asserted as they are -----------------------------------


@pytest.mark.parametrize("replayed", ['{"amount": 10.00}', '{"amount": 1e1}', '{"amount": 10.0}'])
def test_a_replay_with_an_equal_number_gets_the_first_item_and_its_bytes(
    fresh_arena: Callable[[Role | str], Arena], replayed: LiteralString
) -> None:
    """Numbers compare by value in jsonb: 10.00 and 1e1 replay 10.0's item, whose bytes stay.

    The rail receives what was stored first, digit for digit, on every send: one payment.
    """
    arena = fresh_arena(Role.PRODUCER)
    ((first_id, _, created),) = arena.attempt(evil_enqueue('{"amount": 10.0}'))
    replay = arena.attempt(evil_enqueue(replayed))

    assert replay == [(first_id, replay[0][1], False)]
    assert created is True
    stored = arena.as_owner(
        "SELECT payload::text FROM public.payment_outbox_pending WHERE outbox_id = %s", [first_id]
    )
    assert stored == [('{"amount": 10.0}',)]


def test_duplicate_json_keys_keep_the_last_value_which_is_what_the_rail_gets(
    fresh_arena: Callable[[Role | str], Arena],
) -> None:
    """`{"amount": "1.00", "amount": "1000.00"}` is stored, claimed and sent as 1000.00.

    jsonb keeps the last of duplicate keys; a service that checked the first value of its
    own text checked something else than what is paid.
    """
    arena = fresh_arena(Role.PRODUCER)
    ((outbox_id, _, _),) = arena.attempt(evil_enqueue('{"amount": "1.00", "amount": "1000.00"}'))

    stored = arena.as_owner(
        "SELECT payload::text FROM public.payment_outbox_pending WHERE outbox_id = %s", [outbox_id]
    )
    assert stored == [('{"amount": "1000.00"}',)]


def test_a_squatted_key_refuses_the_rightful_payment(
    fresh_arena: Callable[[Role | str], Arena],
) -> None:
    """Keys are per rail, not per participant: the first taker of `ins-42/v1` on rtp keeps it.

    A hostile service that guesses another service's next key enqueues under it first; the
    rightful enqueue is P7001 and writes nothing (one key, one payment still holds).
    """
    arena = fresh_arena(Role.PRODUCER)
    squat = make_request(participant_id=EVIL, idempotency_key="ins-42/v1")
    rightful = make_request(instruction_id="ins-42", idempotency_key="ins-42/v1")
    with arena.store() as service:
        service.enqueue(squat)
        before = arena.state()
        with pytest.raises(IdempotencyConflict) as refused:
            service.enqueue(rightful)

    assert refused.value.sqlstate == "P7001"
    assert arena.state() == before


def enqueue_in_thread(
    store: OutboxStore, request: EnqueueRequest
) -> tuple[threading.Thread, list[EnqueueResult | OutboxDatabaseError]]:
    """Start `request`'s enqueue in a thread; its result (or typed error) lands in the list."""
    results: list[EnqueueResult | OutboxDatabaseError] = []

    def run() -> None:
        try:
            results.append(store.enqueue(request))
        except OutboxDatabaseError as error:
            results.append(error)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, results


@pytest.mark.parametrize("first_commits", [True, False], ids=["first-commits", "first-rolls-back"])
def test_two_connections_racing_one_key_with_two_payloads_make_one_item(
    fresh_arena: Callable[[Role | str], Arena],
    wait_for_lock_waiters: Callable[[int], None],
    first_commits: bool,
) -> None:
    """The second waits on the key; it gets P7001 if the first commits, the key if it rolls back."""
    arena = fresh_arena(Role.PRODUCER)
    first = make_request(participant_id=EVIL, payload={"amount": "1.00"})
    second = make_request(
        instruction_id=first.instruction_id,
        participant_id=EVIL,
        idempotency_key=first.idempotency_key,
        payload={"amount": "1000.00"},
    )

    with arena.store() as service:
        rollback = not first_commits
        try:
            with service.transaction() as transaction:
                transaction.enqueue(first)
                thread, results = enqueue_in_thread(service, second)
                wait_for_lock_waiters(1)
                if rollback:
                    raise _RollBack  # noqa: TRY301 - leaves the transaction the way a crash would
        except _RollBack:
            pass
        thread.join(WAIT_SECONDS)

    (result,) = results
    if first_commits:
        assert isinstance(result, IdempotencyConflict)
        assert result.sqlstate == "P7001"
    else:
        assert not isinstance(result, OutboxDatabaseError)
        assert result.created
    amounts = arena.as_owner(
        "SELECT payload ->> 'amount' FROM public.payment_outbox_pending WHERE participant_id = %s",
        [EVIL],
    )
    assert amounts == ([("1.00",)] if first_commits else [("1000.00",)])


class _RollBack(Exception):
    """Raised inside a transaction to roll it back."""
