"""The FastAPI example's promise: its row and its outbox item commit together, or neither.

Requests go through httpx's ASGI transport to the app (its startup opening an
AsyncOutboxStore on this test's database), so routing, validation and status codes are the
real ones. A caught IdempotencyConflict answers 409 after the same transaction recorded the
refusal: the transaction stayed usable.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import TYPE_CHECKING, LiteralString

import attrs
import httpx
import pytest

from fastapi_service import create_app, install, record
from outbox_db import AsyncOutboxStore, Role
from outbox_db.testonly import query_no_role
from payments_service import PaymentInstruction

if TYPE_CHECKING:
    from outbox_db.testonly.pytest_plugin import Database

SERVICE_ROWS: LiteralString = (
    "SELECT instruction_id, amount FROM payments_service.payment_instructions"
)
REFUSALS: LiteralString = (
    "SELECT instruction_id, amount, sqlstate FROM payments_service.refused_instructions"
)
OUTBOX_ITEMS: LiteralString = (
    "SELECT instruction_id, idempotency_key FROM public.payment_outbox_pending"
)
INSTRUCTION = PaymentInstruction(
    instruction_id="pay-1",
    participant_id="bank-a",
    creditor_account="DE89370400440532013000",
    amount=Decimal("12.34"),
    currency="EUR",
    rail_type="rtp",
)
PAYMENT = {field: str(value) for field, value in attrs.asdict(INSTRUCTION).items()}  # the JSON body


class _Abandoned(Exception):
    """Whatever makes a handler give up before its commit."""


@pytest.fixture
def service_url(outbox_database: Database) -> str:
    """A migrated database with the example service's tables installed."""
    install(outbox_database.url)
    return outbox_database.url


async def post_in_turn(url: str, *payments: dict[str, str]) -> list[httpx.Response]:
    """POST each payment to /payments, one after the other, on an app started for them."""
    app = create_app(url)
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://payments") as client,
    ):
        return [await client.post("/payments", json=payment) for payment in payments]


async def record_then_abandon(url: str) -> None:
    """The example's row and item in one store transaction, which then fails before its commit."""
    async with (
        await AsyncOutboxStore.connect(url, role=Role.PRODUCER) as store,
        store.transaction() as tx,
    ):
        result = await record(tx, INSTRUCTION)
        assert result is not None
        assert result.created
        raise _Abandoned


def test_a_payment_answers_201_and_leaves_its_row_and_its_item(service_url: str) -> None:
    """One POST: 201 with the new item; the row and the item (the instruction's key) committed."""
    (created,) = asyncio.run(post_in_turn(service_url, PAYMENT))

    assert (created.status_code, created.json()["created"]) == (201, True)
    assert query_no_role(service_url, SERVICE_ROWS) == [("pay-1", Decimal("12.34"))]
    assert query_no_role(service_url, OUTBOX_ITEMS) == [("pay-1", "pay-1/v1")]


def test_the_same_payment_again_answers_200_with_the_same_item(service_url: str) -> None:
    """A replay (a client's retry) finds its row and its item: nothing is written twice."""
    first, again = asyncio.run(post_in_turn(service_url, PAYMENT, PAYMENT))

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == {"outbox_id": first.json()["outbox_id"], "created": False}
    assert query_no_role(service_url, SERVICE_ROWS) == [("pay-1", Decimal("12.34"))]
    assert query_no_role(service_url, OUTBOX_ITEMS) == [("pay-1", "pay-1/v1")]


def test_another_payment_under_a_used_id_answers_409_and_its_refusal_commits(
    service_url: str,
) -> None:
    """The conflict is undone alone: the transaction records the refusal, and commits it."""
    other = {**PAYMENT, "amount": "99.00"}
    first, refused = asyncio.run(post_in_turn(service_url, PAYMENT, other))

    assert (first.status_code, refused.status_code) == (201, 409)
    assert query_no_role(service_url, REFUSALS) == [("pay-1", Decimal("99.00"), "P7001")]
    assert query_no_role(service_url, SERVICE_ROWS) == [("pay-1", Decimal("12.34"))]
    assert query_no_role(service_url, OUTBOX_ITEMS) == [("pay-1", "pay-1/v1")]


def test_a_rollback_leaves_neither_the_row_nor_the_item(service_url: str) -> None:
    """Both writes done, then the transaction fails before its commit: nothing of either stays."""
    with pytest.raises(_Abandoned):
        asyncio.run(record_then_abandon(service_url))

    assert query_no_role(service_url, SERVICE_ROWS) == []
    assert query_no_role(service_url, OUTBOX_ITEMS) == []


def test_an_invalid_payment_answers_422_and_writes_nothing(service_url: str) -> None:
    """A float-looking amount with too many places never reaches the database."""
    (invalid,) = asyncio.run(post_in_turn(service_url, {**PAYMENT, "amount": "0.001"}))

    assert invalid.status_code == 422
    assert query_no_role(service_url, SERVICE_ROWS) == []
