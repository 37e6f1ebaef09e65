"""Proof: a re-driven FAILED item reaches the rail again, over real HTTP, under the derived key.

A rail outage exhausts an item's retries (the ceiling is 1 here, so its first 503 ends it
FAILED); an operator re-drives it; a relayer against the recovered rail dispatches the new
item once, with `outbox:redrive:<failed outbox_id>`, and records it DISPATCHED. The FAILED item is untouched.
"""

from __future__ import annotations

import contextlib
import hashlib
from typing import TYPE_CHECKING, Final, LiteralString

from outbox_db import OutboxStore, Role
from outbox_db.payloads import canonical_json
from outbox_db.testonly import query_no_role
from outbox_db.testonly.factories import make_request
from outbox_relayer.testing import Faults, RailSimulator, read_request_log
from relaying import drain

if TYPE_CHECKING:
    from pathlib import Path

    from outbox_db.testonly.pytest_plugin import Database

RAIL: Final = "rtp"
LEDGER: LiteralString = """
SELECT outbox_id, attempt_no, state::text, idempotency_key, rail_reference, error_code
FROM public.payment_outbox_attempts ORDER BY completed_at, attempt_no
"""
RETRY_CEILING_ONE: LiteralString = "UPDATE public.payment_outbox_settings SET max_attempts = 1"


def test_a_redriven_item_is_dispatched_with_the_derived_key(
    outbox_database: Database, outbox_store: OutboxStore, tmp_path: Path
) -> None:
    """FAILED after an outage, re-driven, then dispatched once with outbox:redrive:<id>."""
    query_no_role(outbox_database.url, RETRY_CEILING_ONE)
    request = make_request(rail_type=RAIL)
    failed_id = outbox_store.enqueue(request).outbox_id
    with contextlib.ExitStack() as stack:
        down = stack.enter_context(
            RailSimulator(faults=Faults(fail_rate=1.0), log_path=tmp_path / "down.jsonl")
        )
        recovered = stack.enter_context(RailSimulator(log_path=tmp_path / "recovered.jsonl"))
        drain(outbox_store, down, rail_type=RAIL, worker_id="relayer-during-outage")
        with OutboxStore.connect(outbox_database.url, role=Role.OPERATOR) as operator:
            redrive = operator.redrive(failed_id, reason="rail outage over")

        drain(outbox_store, recovered, rail_type=RAIL, worker_id="relayer-after-outage")

    derived = f"outbox:redrive:{failed_id}"
    (sent,) = read_request_log(recovered.log_path)
    assert (sent.idempotency_key, sent.status, sent.absorbed) == (derived, 201, False)
    assert (
        sent.payload_sha256 == hashlib.sha256(canonical_json(request.payload).encode()).hexdigest()
    )
    assert [line.idempotency_key for line in read_request_log(down.log_path)] == [
        request.idempotency_key
    ]
    assert query_no_role(outbox_database.url, LEDGER) == [
        (failed_id, 1, "FAILED", request.idempotency_key, None, "RETRY_CEILING_REACHED"),
        (redrive.redrive_outbox_id, 1, "DISPATCHED", derived, sent.reference, None),
    ]
    assert query_no_role(outbox_database.url, "SELECT * FROM public.payment_outbox_pending") == []
