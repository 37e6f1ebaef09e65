"""Proofs: the ledger records facts, not the caller's claims (schema 0012).

Times come from the clock when a row is written, not from the start of the caller's
transaction: a completion from an old transaction is not dated before its claim, and a lease
the clock has expired cannot be renewed (P7002). The database refuses with 22023, writing
nothing: a latency longer than the lease it was measured in; outcome text over its cap or with
control characters a terminal would act on; the error codes the outbox writes itself; and
identifiers made only of White_Space or Default_Ignorable characters. None of this depends on
the database's locale.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Final, LiteralString, cast

import attrs
import psycopg
import pytest
from psycopg import sql

from outbox_db import AttemptState, InvalidInput, LeaseLost, OutboxStore, Outcome, Role
from outbox_db.testonly import expire_lease, outbox_rows, query_no_role
from outbox_db.testonly.factories import leased_item, make_request
from outbox_db.testonly.pytest_plugin import migrate_as_proven

if TYPE_CHECKING:
    from collections.abc import Iterator

    from outbox_db import ClaimedItem
    from outbox_db.testonly.pytest_plugin import Database, Server

CAPS: Final = {"rail_reference": 255, "rail_code": 64, "error_code": 64, "error_message": 1000}
# What a terminal or a bidirectional display would act on: an ANSI colour, a bell, a C1 CSI,
# a right-to-left override.
CONTROLS: Final = {
    "ansi escape": "\x1b[31mPAID\x1b[0m",
    "bell": "ok\x07",
    "c1 csi": "ok\x9b2J",
    "rtl override": "ref-\u202egnp.exe",
    "newline": "line\nforged line",
}
SYSTEM_CODES: Final = ("LEASE_EXPIRED", "RETRY_CEILING_REACHED", "LEGACY_DISPATCHING_REQUEUED")
# Blank to a reader, not to a [[:space:]] test under every locale: no-break, figure and narrow
# spaces, zero-width space, BOM, ideographic space, Hangul fillers, a tag character.
INVISIBLE: Final = {
    "nbsp": "\u00a0",
    "figure space": "\u2007",
    "narrow nbsp": "\u202f",
    "zero width space": "\u200b",
    "bom": "\ufeff",
    "ideographic space": "\u3000\u3000",
    "hangul fillers": "\u115f\u3164",
    "tag space": "\U000e0020",
    "mixed": "\u00a0\u200b \u2060\t",
}
IDENTIFIERS: Final = ("instruction_id", "participant_id", "idempotency_key", "rail_type")
ATTEMPT_TIMES: LiteralString = """
SELECT claimed_at, completed_at FROM public.payment_outbox_attempts WHERE outbox_id = %s
"""
ATTEMPTS: LiteralString = "SELECT to_jsonb(a) FROM public.payment_outbox_attempts AS a"
LEASE_LAPSES_NOW: LiteralString = """
UPDATE public.payment_outbox_pending SET lease_expires_at = clock_timestamp()
WHERE outbox_id = %s
"""


@pytest.fixture
def old_transaction(outbox_database: Database) -> Iterator[psycopg.Connection]:
    """A relayer's transaction that began (and took its now()) a moment ago, still open.

    READ COMMITTED, whatever the server's default: under REPEATABLE READ a transaction older
    than the item cannot see its lease at all (P7002, schema 0012's header).
    """
    with psycopg.connect(outbox_database.url) as connection:
        connection.execute("SET ROLE symphony_executor")
        connection.execute("SET TRANSACTION ISOLATION LEVEL READ COMMITTED")
        connection.execute("SELECT now()")
        time.sleep(0.05)
        yield connection


def record(store: OutboxStore, item: ClaimedItem, **fields: object) -> None:
    """Record a DISPATCHED outcome for `item` with `fields` overriding the outcome's."""
    dispatched = Outcome(lease=item.lease, state=AttemptState.DISPATCHED)
    outcome = attrs.evolve(dispatched, **cast("dict[str, Any]", fields))
    store.complete("worker-1", outcome)


def attempts(database: Database) -> list[dict[str, object]]:
    """Every ledger row, as JSON objects."""
    return [row for (row,) in query_no_role(database.url, ATTEMPTS)]


def assert_refused(
    store: OutboxStore, database: Database, item: ClaimedItem, **fields: object
) -> None:
    """The outcome is refused with 22023 and nothing is written."""
    before = outbox_rows(database.url)
    with pytest.raises(InvalidInput) as refused:
        record(store, item, **fields)
    assert refused.value.sqlstate == "22023"
    assert outbox_rows(database.url) == before


# --- times --------------------------------------------------------------------------------------


def test_a_completion_from_an_old_transaction_is_dated_when_it_is_recorded(
    outbox_database: Database, outbox_store: OutboxStore, old_transaction: psycopg.Connection
) -> None:
    """The transaction began before the claim; the attempt is dated after the claim anyway."""
    item = leased_item(outbox_store)
    old_transaction.execute(
        "SELECT public.complete_outbox_attempt(%s, %s, 'worker-1', 'DISPATCHED',"
        " NULL, NULL, NULL, NULL, NULL, NULL)",
        [item.outbox_id, item.lease.lease_token],
    )
    old_transaction.commit()

    ((claimed_at, completed_at),) = query_no_role(
        outbox_database.url, ATTEMPT_TIMES, [item.outbox_id]
    )
    assert completed_at >= claimed_at


def test_a_lease_the_clock_expired_is_not_renewed_from_an_old_transaction(
    outbox_database: Database, outbox_store: OutboxStore, old_transaction: psycopg.Connection
) -> None:
    """To the old transaction's now() the lease is live; to the clock it has run out: P7002."""
    item = leased_item(outbox_store)
    query_no_role(outbox_database.url, LEASE_LAPSES_NOW, [item.outbox_id])
    with pytest.raises(psycopg.Error) as refused:
        old_transaction.execute(
            "SELECT public.renew_outbox_lease(%s, %s, 'worker-1', 30)",
            [item.outbox_id, item.lease.lease_token],
        )
    assert refused.value.sqlstate == "P7002"


def test_a_lease_the_clock_expired_is_not_renewed(
    outbox_database: Database, outbox_store: OutboxStore
) -> None:
    """The store's renewal of an expired lease is LeaseLost (P7002)."""
    item = leased_item(outbox_store)
    expire_lease(outbox_database.url, item.outbox_id)
    with pytest.raises(LeaseLost) as refused:
        outbox_store.renew("worker-1", item.lease, lease_seconds=30)
    assert refused.value.sqlstate == "P7002"


# --- latency ------------------------------------------------------------------------------------


@pytest.mark.parametrize("latency_ms", [1001, 23 * 24 * 3600 * 1000])
def test_a_latency_longer_than_its_lease_is_refused(
    outbox_database: Database, outbox_store: OutboxStore, latency_ms: int
) -> None:
    """A 1 s lease cannot have held a send of 1,001 ms (or 23 days)."""
    item = leased_item(outbox_store, lease_seconds=1)
    assert_refused(outbox_store, outbox_database, item, latency_ms=latency_ms)


def test_a_latency_as_long_as_its_lease_is_recorded(
    outbox_database: Database, outbox_store: OutboxStore
) -> None:
    """The bound is the lease itself, renewals included."""
    item = leased_item(outbox_store, lease_seconds=1)
    outbox_store.renew("worker-1", item.lease, lease_seconds=2)
    record(outbox_store, item, latency_ms=1500)
    assert [attempt["latency_ms"] for attempt in attempts(outbox_database)] == [1500]


# --- outcome text -------------------------------------------------------------------------------


@pytest.mark.parametrize("field", sorted(CAPS))
def test_outcome_text_over_its_cap_is_refused_and_at_its_cap_recorded(
    outbox_database: Database, outbox_store: OutboxStore, field: str
) -> None:
    """Each outcome field has a documented cap, in characters."""
    cap = CAPS[field]
    assert_refused(
        outbox_store, outbox_database, leased_item(outbox_store), **{field: "é" * (cap + 1)}
    )
    record(outbox_store, leased_item(outbox_store), **{field: "é" * cap})
    assert [attempt[field] for attempt in attempts(outbox_database)] == ["é" * cap]


@pytest.mark.parametrize("text", CONTROLS.values(), ids=CONTROLS.keys())
def test_outcome_text_with_control_characters_is_refused(
    outbox_database: Database, outbox_store: OutboxStore, text: str
) -> None:
    """Text `inspect` or a terminal would act on never reaches the ledger, in any field."""
    item = leased_item(outbox_store)
    for field in CAPS:
        assert_refused(outbox_store, outbox_database, item, **{field: text})


@pytest.mark.parametrize("code", SYSTEM_CODES)
def test_a_relayer_may_not_write_the_outboxs_own_codes(
    outbox_database: Database, outbox_store: OutboxStore, code: str
) -> None:
    """A forged "lease repair" attempt, on attempt 1 or any other, is refused."""
    item = leased_item(outbox_store)
    assert_refused(
        outbox_store, outbox_database, item, state=AttemptState.RETRYABLE, error_code=code
    )


# --- identifiers --------------------------------------------------------------------------------


@pytest.mark.parametrize("value", INVISIBLE.values(), ids=INVISIBLE.keys())
def test_an_identifier_of_invisible_characters_only_is_refused(
    outbox_database: Database, outbox_store: OutboxStore, value: str
) -> None:
    """Single and batch enqueues refuse it in every identifier (22023) and write nothing."""
    before = outbox_rows(outbox_database.url)
    for argument in IDENTIFIERS:
        request = make_request(**{argument: value})
        for enqueue in (
            outbox_store.enqueue,
            lambda r: outbox_store.enqueue_many([make_request(), r]),
        ):
            with pytest.raises(InvalidInput) as refused:
                enqueue(request)
            assert refused.value.sqlstate == "22023", argument
    assert outbox_rows(outbox_database.url) == before


def test_a_worker_id_of_invisible_characters_only_is_refused(outbox_store: OutboxStore) -> None:
    """Who holds a lease must be legible in the ledger."""
    outbox_store.enqueue(make_request())
    with pytest.raises(InvalidInput) as refused:
        outbox_store.claim("\u00a0\u200b", batch_size=1, lease_seconds=30)
    assert refused.value.sqlstate == "22023"


def test_invisible_characters_inside_an_identifier_are_kept(outbox_store: OutboxStore) -> None:
    """Only identifiers made of nothing visible are refused: spaces and joiners inside stay."""
    request = make_request(instruction_id="ins\u00a0001", idempotency_key="k\u200d1")
    assert outbox_store.enqueue(request).created


# --- independent of the locale ------------------------------------------------------------------


@pytest.fixture(params=["C", "C.UTF-8"])
def database_of_locale(outbox_server: Server, request: pytest.FixtureRequest) -> Iterator[str]:
    """A UTF-8 database with LC_CTYPE and LC_COLLATE `request.param`, migrated."""
    locale = str(request.param)
    name = sql.Identifier(f"outbox_locale_{locale.replace('.', '_').replace('-', '_').lower()}")
    with psycopg.connect(outbox_server.url, autocommit=True) as server:
        server.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(name))
        server.execute(
            sql.SQL(
                "CREATE DATABASE {} TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE {} LC_CTYPE {}"
            ).format(name, sql.Literal(locale), sql.Literal(locale))
        )
        try:
            url = outbox_server.database_url(name.as_string(server).strip('"'))
            migrate_as_proven(url)
            yield url
        finally:
            server.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(name))


@pytest.mark.parametrize("value", ["\u00a0", "\u202f", "ok\u0085", "ok\u009b", "\u2007\u200b"])
def test_identifiers_are_judged_the_same_under_every_locale(
    database_of_locale: str, value: str
) -> None:
    """C1 controls and Unicode blanks are refused whether the locale classifies them or not."""
    with OutboxStore.connect(database_of_locale, role=Role.PRODUCER, max_size=1) as store:
        with pytest.raises(InvalidInput) as refused:
            store.enqueue(make_request(participant_id=value))
        assert refused.value.sqlstate == "22023"
        assert store.enqueue(make_request(participant_id="p\u00a01")).created
