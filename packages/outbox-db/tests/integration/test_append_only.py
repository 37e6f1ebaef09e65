"""Proof: the attempts ledger is append-only for everyone, the owner included (P0001)."""

from __future__ import annotations

from typing import TYPE_CHECKING, LiteralString

import pytest

from outbox_db import AppendOnlyViolation
from outbox_db.testonly import ledger, query_no_role
from outbox_db.testonly.factories import completed_item

if TYPE_CHECKING:
    from outbox_db import OutboxStore
    from outbox_db.testonly.pytest_plugin import Database

MUTATIONS: list[LiteralString] = [
    "UPDATE public.payment_outbox_attempts SET state = 'FAILED'",
    "DELETE FROM public.payment_outbox_attempts",
    "TRUNCATE public.payment_outbox_attempts",
]


@pytest.mark.parametrize("statement", MUTATIONS, ids=["update", "delete", "truncate"])
def test_owner_cannot_mutate_the_ledger(
    outbox_database: Database, outbox_store: OutboxStore, statement: LiteralString
) -> None:
    """UPDATE, DELETE and TRUNCATE of the ledger fail with P0001 raised by the trigger, even as owner."""
    completed_item(outbox_store)
    before = ledger(outbox_database.url)

    with pytest.raises(AppendOnlyViolation) as refused:
        query_no_role(outbox_database.url, statement)

    assert refused.value.sqlstate == "P0001"
    # P0001 is also PL/pgSQL's default code: the trigger function must be the one refusing.
    assert "deny_outbox_attempts_mutation" in (refused.value.__cause__.diag.context or "")  # type: ignore[union-attr]
    assert before == ledger(outbox_database.url)
    assert len(before) == 1
