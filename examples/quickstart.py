"""Quickstart: a service records payment instructions; a worker leases, dispatches, completes.

Uses only the public API of outbox-db. Run it with `nox -s demo`, or against a migrated
database: `python examples/quickstart.py --url postgresql://...`.
"""

from __future__ import annotations

import click

from outbox_db import AttemptState, EnqueueRequest, OutboxStore, Outcome

WORKER = "quickstart-worker"


@click.command()
@click.option("--url", envvar="DATABASE_URL", required=True, help="A migrated database.")
def main(url: str) -> None:
    """Enqueue four instructions, dispatch them once, and show what the ledger recorded."""
    with OutboxStore.connect(url) as store:
        for n, participant in enumerate(["bank-a", "bank-a", "bank-b", "bank-b"], start=1):
            request = EnqueueRequest(
                instruction_id=f"quickstart-{n}",
                participant_id=participant,
                idempotency_key=f"quickstart-{n}/v1",
                rail_type="rtp",
                payload={"amount": f"{n * 10}.00", "currency": "USD"},
            )
            with store.transaction() as tx:  # the service's own writes would share this
                item = tx.enqueue(request)
            click.echo(f"enqueued {request.instruction_id}: {participant} #{item.sequence_id}")

        leased = store.claim(WORKER, batch_size=10, lease_seconds=30)
        # A pretend rail: the last instruction times out and will be retried later.
        outcomes = [
            Outcome(lease=item.lease, state=AttemptState.DISPATCHED, rail_reference=f"rtp-{n}")
            if n < len(leased)
            else Outcome(
                lease=item.lease,
                state=AttemptState.RETRYABLE,
                error_code="TIMEOUT",
                retry_delay_seconds=60,
            )
            for n, item in enumerate(leased, start=1)
        ]
        for result in store.complete_batch(WORKER, outcomes):
            click.echo(f"attempt {result.attempt_no} of {result.outbox_id}: {result.state}")


if __name__ == "__main__":
    main()
