"""Proofs: a payload is refused at enqueue when too deep or too large, and kept exact otherwise.

Depth: no value deeper than 64 levels (22023, column payload, nothing written). Size: at most
1 MiB of JSON text, measured on the text, not the compressed value (a 16 MiB payload that
compresses below 1 MiB is refused). JSON too deep for the server to parse at all is 54001, an
InvalidInput. Numbers come back from the claim as they went in: fractions as Decimal, digit
for digit, never through a binary float.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Final

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from outbox_db import AttemptState, InvalidInput, OutboxStore, Outcome, Role
from outbox_db.payloads import MAX_PAYLOAD_BYTES, MAX_PAYLOAD_DEPTH, canonical_json, loads
from outbox_db.testonly import outbox_rows, query_as
from outbox_db.testonly.factories import make_request

if TYPE_CHECKING:
    from outbox_db.testonly.pytest_plugin import Database

# Built by the server, so no client limit stands in the way: 16 MiB of one repeated letter.
SIXTEEN_MIB_BUILT_IN_THE_DATABASE: Final = """
SELECT * FROM public.enqueue_payment_outbox('ins-big', 'participant-a', 'key-big', 'rtp',
    pg_catalog.jsonb_build_object('blob', pg_catalog.repeat('x', 16 * 1024 * 1024)))
"""
NESTED_100000_DEEP: Final = """
SELECT * FROM public.enqueue_payment_outbox('ins-deep', 'participant-a', 'key-deep', 'rtp',
    ('{"a":' || pg_catalog.repeat('[', 100000) || pg_catalog.repeat(']', 100000) || '}')::jsonb)
"""


def nested(depth: int) -> dict[str, object]:
    """An object whose innermost value sits `depth` levels below it."""
    value: object = 1
    for _ in range(depth - 1):
        value = [value]
    return {"a": value}


def refused(outbox_database: Database, store: OutboxStore, payload: dict[str, object]) -> None:
    """Both enqueues refuse `payload` with 22023 on column payload and write nothing."""
    before = outbox_rows(outbox_database.url, versions=True)
    for enqueue in (store.enqueue, lambda r: store.enqueue_many([r])):
        with pytest.raises(InvalidInput) as refusal:
            enqueue(make_request(payload=payload))
        assert refusal.value.sqlstate == "22023"
        assert refusal.value.__cause__.diag.column_name == "payload"  # type: ignore[union-attr]
    assert outbox_rows(outbox_database.url, versions=True) == before


def test_a_payload_at_the_depth_limit_is_accepted(outbox_store: OutboxStore) -> None:
    """64 levels: enqueued, and claimed back whole."""
    outbox_store.enqueue(make_request(payload=nested(MAX_PAYLOAD_DEPTH)))

    (item,) = outbox_store.claim("worker-1", batch_size=1, lease_seconds=30)

    assert item.payload == nested(MAX_PAYLOAD_DEPTH)


def test_a_payload_beyond_the_depth_limit_is_refused(
    outbox_database: Database, outbox_store: OutboxStore
) -> None:
    """65 levels (and 2,000, which once stranded a whole claimed batch): 22023, nothing written."""
    refused(outbox_database, outbox_store, nested(MAX_PAYLOAD_DEPTH + 1))
    refused(outbox_database, outbox_store, nested(900))


def test_a_payload_over_1_mib_of_text_is_refused_however_well_it_compresses(
    outbox_database: Database, outbox_store: OutboxStore
) -> None:
    """Just over 1 MiB of text, which TOAST compresses to a few KiB: 22023."""
    refused(outbox_database, outbox_store, {"blob": "x" * MAX_PAYLOAD_BYTES})


def test_a_payload_of_1_mib_of_text_is_accepted(outbox_store: OutboxStore) -> None:
    """The limit is inclusive: 1,048,576 bytes of jsonb text (`{"blob": "..."}`) enqueue."""
    text_overhead = len('{"blob": ""}')

    created = outbox_store.enqueue(
        make_request(payload={"blob": "x" * (MAX_PAYLOAD_BYTES - text_overhead)})
    )

    assert created.created


def test_a_payload_built_in_the_database_is_measured_as_text(outbox_database: Database) -> None:
    """16 MiB assembled server-side (the compressed-size loophole): 22023, nothing written."""
    before = outbox_rows(outbox_database.url, versions=True)

    with pytest.raises(InvalidInput) as refusal:
        query_as(outbox_database.url, Role.EXECUTOR, SIXTEEN_MIB_BUILT_IN_THE_DATABASE)

    assert refusal.value.sqlstate == "22023"
    assert outbox_rows(outbox_database.url, versions=True) == before


def test_json_too_deep_for_the_server_is_invalid_input(outbox_database: Database) -> None:
    """100,000 levels fail in the server's parser: 54001, mapped to InvalidInput."""
    with pytest.raises(InvalidInput) as refusal:
        query_as(outbox_database.url, Role.EXECUTOR, NESTED_100000_DEEP)

    assert refusal.value.sqlstate == "54001"


numbers = st.one_of(
    st.decimals(allow_nan=False, allow_infinity=False, places=18),
    st.decimals(min_value=Decimal("-1e30"), max_value=Decimal("1e30"), allow_nan=False, places=0),
    st.integers(min_value=-(10**40), max_value=10**40),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(
        [
            Decimal("1.000000000000000001"),
            Decimal("12345678901234567.89"),
            Decimal("-0"),
            Decimal("1E+2"),
            Decimal("1.10"),
            Decimal("0.00000015"),
        ]
    ),
)


@given(values=st.lists(numbers, min_size=1, max_size=8))
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_numbers_come_back_from_the_claim_with_the_same_value(
    outbox_store: OutboxStore, values: list[object]
) -> None:
    """Every number, as the claim returns it and as it would be sent, equals what was enqueued."""
    payload = {"amounts": values, "total": values[0]}
    outbox_store.enqueue(make_request(payload=payload))
    (item,) = outbox_store.claim("worker-1", batch_size=1, lease_seconds=30)
    try:
        expected = [Decimal(repr(v)) if isinstance(v, float) else v for v in values]
        for claimed in (item.payload, loads(canonical_json(item.payload))):
            assert claimed["amounts"] == expected
            assert claimed["total"] == expected[0]
            assert not any(isinstance(v, float) for v in claimed["amounts"])
    finally:  # out of the queue, so the next example claims its own item
        outbox_store.complete("worker-1", Outcome(lease=item.lease, state=AttemptState.DISPATCHED))
