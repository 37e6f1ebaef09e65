"""Proofs at the rail's request log: one key, one payment; every number as enqueued.

A relayer drains to the rail simulator over real HTTP; the simulator's log records each
request's key and the SHA-256 of its body, so the assertions are what the rail saw.

- A second instruction under a key its rail already has is refused at enqueue: the rail
  gets one request for the key, the first instruction's, and the ledger one DISPATCHED.
- Money never passes through a float: the body carries 1.000000000000000001 and
  12345678901234567.89 digit for digit (the digest is of the literal expected body).
- A stored payload the relayer cannot decode (2,000 levels, written before the database
  limited depth) fails alone, PAYLOAD_UNREADABLE, and never reaches the rail; the items
  claimed with it are dispatched.
"""

from __future__ import annotations

import hashlib
from decimal import Decimal
from typing import TYPE_CHECKING, Final, LiteralString

import pytest

from outbox_db import IdempotencyConflict, OutboxStore
from outbox_db.testonly import query_no_role
from outbox_db.testonly.factories import make_request
from outbox_relayer.testing import RailSimulator, read_request_log
from relaying import drain

if TYPE_CHECKING:
    from pathlib import Path

    from outbox_db.testonly.pytest_plugin import Database

RAIL: Final = "rtp"
TERMINAL: LiteralString = """
SELECT instruction_id, state::text, error_code FROM public.payment_outbox_attempts
WHERE state IN ('DISPATCHED', 'FAILED') ORDER BY instruction_id
"""
# Written as the owner, past enqueue's checks: an item stored before the depth limit existed.
DEEP_ITEM: LiteralString = """
INSERT INTO public.payment_outbox_pending
    (instruction_id, participant_id, sequence_id, idempotency_key, rail_type, payload)
VALUES ('ins-deep', 'participant-deep', 1, 'key-deep', 'rtp',
    ('{"a":' || repeat('[', 2000) || repeat(']', 2000) || '}')::jsonb)
"""


def sha256(body: bytes) -> str:
    """The digest the simulator logs for a body."""
    return hashlib.sha256(body).hexdigest()


def test_a_key_reaches_the_rail_for_one_payment_only(
    outbox_database: Database, outbox_store: OutboxStore, tmp_path: Path
) -> None:
    """The second instruction under the key is refused; the rail sees the first, once."""
    first = make_request(rail_type=RAIL, payload={"amount": "10.00", "to": "alice"})
    second = make_request(
        rail_type=RAIL, idempotency_key=first.idempotency_key, payload={"amount": "99.00"}
    )
    outbox_store.enqueue(first)
    with pytest.raises(IdempotencyConflict) as refused:
        outbox_store.enqueue(second)
    assert refused.value.sqlstate == "P7001"

    with RailSimulator(log_path=tmp_path / "rail.jsonl") as simulator:
        drain(outbox_store, simulator, rail_type=RAIL)

    log = read_request_log(simulator.log_path)
    assert [(line.idempotency_key, line.status) for line in log] == [(first.idempotency_key, 201)]
    assert log[0].payload_sha256 == sha256(b'{"amount":"10.00","to":"alice"}')
    terminal = query_no_role(outbox_database.url, TERMINAL)
    assert terminal == [(first.instruction_id, "DISPATCHED", None)]


def test_money_reaches_the_rail_digit_for_digit(outbox_store: OutboxStore, tmp_path: Path) -> None:
    """Decimal amounts and a 30-digit integer arrive exactly, not as 1.0 and 1.2345678901234568e+16."""
    payload = {
        "amount": Decimal("1.000000000000000001"),
        "total": Decimal("12345678901234567.89"),
        "units": 123456789012345678901234567890,
        "fee": Decimal("0.10"),
    }
    outbox_store.enqueue(make_request(rail_type=RAIL, payload=payload))

    with RailSimulator(log_path=tmp_path / "rail.jsonl") as simulator:
        drain(outbox_store, simulator, rail_type=RAIL)

    (sent,) = read_request_log(simulator.log_path)
    expected = (
        b'{"amount":1.000000000000000001,"fee":0.10,'
        b'"total":12345678901234567.89,"units":123456789012345678901234567890}'
    )
    assert (sent.status, sent.payload_sha256) == (201, sha256(expected))


def test_an_undecodable_payload_fails_alone_and_never_reaches_the_rail(
    outbox_database: Database, outbox_store: OutboxStore, tmp_path: Path
) -> None:
    """2,000 levels deep among five good items: it ends FAILED, they are dispatched."""
    good = [make_request(rail_type=RAIL) for _ in range(5)]
    for request in good:
        outbox_store.enqueue(request)
    query_no_role(outbox_database.url, DEEP_ITEM)

    with RailSimulator(log_path=tmp_path / "rail.jsonl") as simulator:
        drain(outbox_store, simulator, rail_type=RAIL)

    log = read_request_log(simulator.log_path)
    assert sorted(line.idempotency_key or "" for line in log) == sorted(
        request.idempotency_key for request in good
    )
    terminal = {row[0]: row[1:] for row in query_no_role(outbox_database.url, TERMINAL)}
    assert terminal.pop("ins-deep") == ("FAILED", "PAYLOAD_UNREADABLE")
    assert terminal == {request.instruction_id: ("DISPATCHED", None) for request in good}
