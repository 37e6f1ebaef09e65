"""The example service's promise: its own row and its outbox item commit together, or neither."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, LiteralString

import pytest

from outbox_db import OutboxStore, Role
from outbox_db.testonly import query_no_role
from payments_service import PaymentInstruction, PaymentsService

if TYPE_CHECKING:
    from outbox_db.testonly.pytest_plugin import Database

SERVICE_ROWS: LiteralString = (
    "SELECT instruction_id, amount FROM payments_service.payment_instructions"
)
OUTBOX_ITEMS: LiteralString = (
    "SELECT instruction_id, idempotency_key, payload FROM public.payment_outbox_pending"
)
INSTRUCTION = PaymentInstruction(
    instruction_id="pay-1",
    participant_id="bank-a",
    creditor_account="DE89370400440532013000",
    amount=Decimal("12.34"),
    currency="EUR",
    rail_type="rtp",
)


class _Abandoned(Exception):
    """Whatever makes a service give up before its commit."""


def record_then_abandon(store: OutboxStore) -> None:
    """Record the instruction and its item in one transaction, then fail before the commit."""
    with store.transaction() as tx:
        assert PaymentsService.record(tx, INSTRUCTION).created
        raise _Abandoned


@pytest.fixture
def service_url(outbox_database: Database) -> str:
    """A migrated database with the example service's schema installed."""
    PaymentsService.install(outbox_database.url)
    return outbox_database.url


def test_a_submitted_instruction_leaves_its_row_and_its_item(service_url: str) -> None:
    """One submit: the service's row and the outbox item, with the instruction's key and payload."""
    with OutboxStore.connect(service_url, role=Role.PRODUCER) as store:
        result = PaymentsService(store).submit(INSTRUCTION)

    assert result.created
    assert query_no_role(service_url, SERVICE_ROWS) == [("pay-1", Decimal("12.34"))]
    expected_payload = {
        "instruction_id": "pay-1",
        "debtor_participant": "bank-a",
        "creditor_account": "DE89370400440532013000",
        "amount": "12.34",
        "currency": "EUR",
    }
    assert query_no_role(service_url, OUTBOX_ITEMS) == [("pay-1", "pay-1/v1", expected_payload)]


def test_a_rollback_leaves_neither_the_row_nor_the_item(service_url: str) -> None:
    """Both writes done, then the transaction fails before its commit: nothing of either stays."""
    with (
        OutboxStore.connect(service_url, role=Role.PRODUCER) as store,
        pytest.raises(_Abandoned),
    ):
        record_then_abandon(store)

    assert query_no_role(service_url, SERVICE_ROWS) == []
    assert query_no_role(service_url, OUTBOX_ITEMS) == []
