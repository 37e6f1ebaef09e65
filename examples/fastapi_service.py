"""An example FastAPI payments service: its row and its outbox item commit together, on asyncio.

The template for an asyncio service. `POST /payments` records the instruction in the
service's table (`payments_service.py`'s, installed by `install`) and enqueues its outbox
item in one transaction of `AsyncOutboxStore`. The same instruction again answers 200 with
its existing item. Another payment under an instruction id already used (so under that
payment's idempotency key) answers 409: the refused enqueue (IdempotencyConflict) is undone
alone, and the same transaction goes on to record the refusal. Serve `create_app(url)` with
any ASGI server; the store opens at startup and closes at shutdown.
"""

from __future__ import annotations

import contextlib
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Final, LiteralString
from uuid import UUID

import attrs
from fastapi import Depends, FastAPI, HTTPException, Request, Response, status
from pydantic import BaseModel, Field

from outbox_db import AsyncOutboxStore, IdempotencyConflict, OutboxStore, Role
from payments_service import PaymentInstruction, PaymentsService

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from outbox_db import AsyncOutboxTransaction, EnqueueResult

# What the refusals need beyond payments_service's schema: a table of their own.
REFUSALS_SCHEMA: LiteralString = """
CREATE TABLE IF NOT EXISTS payments_service.refused_instructions (
    instruction_id text NOT NULL,
    amount numeric(18, 2) NOT NULL,
    sqlstate text NOT NULL,
    refused_at timestamptz NOT NULL DEFAULT now()
);
GRANT INSERT ON payments_service.refused_instructions TO symphony_producer;
"""
# A replay of the same instruction finds its row there already: the enqueue then answers.
RECORD_INSTRUCTION: LiteralString = """
INSERT INTO payments_service.payment_instructions
    (instruction_id, participant_id, creditor_account, amount, currency, rail_type)
VALUES (%(instruction_id)s, %(participant_id)s, %(creditor_account)s, %(amount)s,
    %(currency)s, %(rail_type)s)
ON CONFLICT (instruction_id) DO NOTHING
"""
RECORD_REFUSAL: LiteralString = """
INSERT INTO payments_service.refused_instructions (instruction_id, amount, sqlstate)
VALUES (%(instruction_id)s, %(amount)s, %(sqlstate)s)
"""
ANOTHER_PAYMENT: Final = "instruction_id already names another payment"


class Payment(BaseModel):
    """The request body: a payment instruction."""

    instruction_id: str = Field(min_length=1, max_length=200)
    participant_id: str = Field(min_length=1, max_length=200)
    creditor_account: str = Field(min_length=1, max_length=64)
    amount: Decimal = Field(gt=0, max_digits=18, decimal_places=2)  # never a float
    currency: str = Field(pattern="^[A-Z]{3}$")
    rail_type: str = Field(min_length=1, max_length=64)


class Accepted(BaseModel):
    """The answer: the instruction's outbox item, and whether this request created it."""

    outbox_id: UUID
    created: bool


def install(url: str) -> None:
    """The service's tables, as the login role (run once, like a migration)."""
    PaymentsService.install(url)
    with OutboxStore.connect(url, role=None) as owner, owner.transaction() as tx:
        # guardrails: allow OBX002 -- the example service's own DDL, not the outbox's
        tx.connection.execute(REFUSALS_SCHEMA)


async def record(
    tx: AsyncOutboxTransaction, instruction: PaymentInstruction
) -> EnqueueResult | None:
    """The row and the item inside `tx`; None, and the refusal recorded, if the key is taken.

    The enqueue comes last: it holds the participant's sequence lock until the commit.
    """
    row = attrs.asdict(instruction)
    # guardrails: allow OBX002 -- the service's own row, in the outbox transaction
    await tx.connection.execute(RECORD_INSTRUCTION, row)
    try:
        return await tx.enqueue(instruction.outbox_request())
    except IdempotencyConflict as conflict:
        refusal = {**row, "sqlstate": conflict.sqlstate}
        # guardrails: allow OBX002 -- the service's own row: the transaction is still usable
        await tx.connection.execute(RECORD_REFUSAL, refusal)
        return None


def store_of(request: Request) -> AsyncOutboxStore:
    """The store the app opened at startup."""
    store: AsyncOutboxStore = request.app.state.store
    return store


async def submit(
    payment: Payment, response: Response, store: Annotated[AsyncOutboxStore, Depends(store_of)]
) -> Accepted:
    """201 with a new item, 200 with the existing one for a replay, 409 for another payment."""
    async with store.transaction() as tx:
        result = await record(tx, PaymentInstruction(**payment.model_dump()))
    if result is None:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=ANOTHER_PAYMENT)
    response.status_code = status.HTTP_201_CREATED if result.created else status.HTTP_200_OK
    return Accepted(outbox_id=result.outbox_id, created=result.created)


def create_app(url: str) -> FastAPI:
    """The service on `url`; its store, acting as the producer, lives as long as the app."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with await AsyncOutboxStore.connect(url, role=Role.PRODUCER) as store:
            app.state.store = store
            yield

    app = FastAPI(title="payments", lifespan=lifespan)
    app.add_api_route("/payments", submit, methods=["POST"], responses={409: {}})
    return app
