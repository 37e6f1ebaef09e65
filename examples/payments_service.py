"""An example payments service: its own row and its outbox item commit together, or neither.

The template a team copies. The service keeps each payment instruction in a table of its own
(schema `payments_service`, created by `install`) and, in the same transaction, enqueues the
outbox item a relayer will dispatch to the rail. It uses only the public API of outbox-db:
`OutboxStore.transaction()` hands out the transaction, `tx.connection` carries the service's
own statement and `tx.enqueue` the item. If anything fails before the commit, both are gone.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final, LiteralString

import attrs

from outbox_db import EnqueueRequest, EnqueueResult, OutboxStore

if TYPE_CHECKING:
    from decimal import Decimal

    from outbox_db import OutboxTransaction

# The service's own schema: a table in a schema of its own, writable by the role its
# transactions run as: symphony_producer, which may enqueue and nothing else of the outbox
# (OutboxStore.connect(url, role=Role.PRODUCER) switches to it for every transaction).
SERVICE_SCHEMA: LiteralString = """
CREATE SCHEMA IF NOT EXISTS payments_service;
CREATE TABLE IF NOT EXISTS payments_service.payment_instructions (
    instruction_id text PRIMARY KEY,
    participant_id text NOT NULL,
    creditor_account text NOT NULL,
    amount numeric(18, 2) NOT NULL CHECK (amount > 0),
    currency char(3) NOT NULL,
    rail_type text NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
);
GRANT USAGE ON SCHEMA payments_service TO symphony_producer;
GRANT SELECT, INSERT ON payments_service.payment_instructions TO symphony_producer;
"""
RECORD_INSTRUCTION: LiteralString = """
INSERT INTO payments_service.payment_instructions
    (instruction_id, participant_id, creditor_account, amount, currency, rail_type)
VALUES (%(instruction_id)s, %(participant_id)s, %(creditor_account)s, %(amount)s,
    %(currency)s, %(rail_type)s)
"""
KEY_VERSION: Final = "v1"  # a new key version would mean a deliberately new instruction


@attrs.frozen(kw_only=True)
class PaymentInstruction:
    """A payment the service accepted: who pays whom, how much, over which rail."""

    instruction_id: str
    participant_id: str  # the paying bank; the outbox keeps a gapless sequence per participant
    creditor_account: str
    amount: Decimal
    currency: str
    rail_type: str

    @property
    def idempotency_key(self) -> str:
        """The key the rail dedupes on: the same for every re-send of this instruction."""
        return f"{self.instruction_id}/{KEY_VERSION}"

    def outbox_request(self) -> EnqueueRequest:
        """The outbox item for this instruction; the payload is what the rail receives."""
        return EnqueueRequest(
            instruction_id=self.instruction_id,
            participant_id=self.participant_id,
            idempotency_key=self.idempotency_key,
            rail_type=self.rail_type,
            payload={
                "instruction_id": self.instruction_id,
                "debtor_participant": self.participant_id,
                "creditor_account": self.creditor_account,
                "amount": str(self.amount),
                "currency": self.currency,
            },
        )


class PaymentsService:
    """Accepts payment instructions: one transaction writes the service's row and the item.

    Give it a store acting as the producer: ``OutboxStore.connect(url, role=Role.PRODUCER)``.
    """

    def __init__(self, store: OutboxStore) -> None:
        self._store = store

    @staticmethod
    def install(url: str) -> None:
        """Create the service's schema and table, as the login role (run once, like a migration)."""
        with OutboxStore.connect(url, role=None) as owner, owner.transaction() as tx:
            # guardrails: allow OBX002 -- the example service's own DDL, not the outbox's
            tx.connection.execute(SERVICE_SCHEMA)

    def submit(self, instruction: PaymentInstruction) -> EnqueueResult:
        """Record `instruction` and enqueue its outbox item in one transaction of their own."""
        with self._store.transaction() as tx:
            return self.record(tx, instruction)

    @staticmethod
    def record(tx: OutboxTransaction, instruction: PaymentInstruction) -> EnqueueResult:
        """Both writes inside `tx`, a transaction the caller may share with more of its work.

        The enqueue comes last: it holds the participant's sequence lock until the commit.
        """
        row = attrs.asdict(instruction)
        # guardrails: allow OBX002 -- the service's own row, in the outbox transaction
        tx.connection.execute(RECORD_INSTRUCTION, row)
        return tx.enqueue(instruction.outbox_request())
