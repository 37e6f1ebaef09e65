"""`outbox-db status` reads the view with the readonly role's rights only."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from click.testing import CliRunner

from outbox_db import AttemptState, Outcome
from outbox_db.cli import main
from outbox_db.testonly.factories import leased_item, make_request

if TYPE_CHECKING:
    from outbox_db import OutboxStore
    from outbox_db.testonly.pytest_plugin import Database


def test_status_json_reports_the_queue_per_rail_and_in_total(
    outbox_database: Database, outbox_store: OutboxStore
) -> None:
    """One JSON object per line: the total (rail_type null) first, then each rail."""
    item = leased_item(outbox_store)
    outbox_store.complete("worker-1", Outcome(lease=item.lease, state=AttemptState.DISPATCHED))
    outbox_store.enqueue(make_request(rail_type="sepa"))

    result = CliRunner().invoke(main, ["status", "--url", outbox_database.url, "--json"])

    assert result.exit_code == 0, result.output
    rows = {row["rail_type"]: row for row in map(json.loads, result.output.splitlines())}
    assert list(rows) == [None, "rtp", "sepa"]
    assert (rows[None]["due_count"], rows[None]["dispatched_count"]) == (1, 1)
    assert (rows["sepa"]["due_count"], rows["rtp"]["dispatched_count"]) == (1, 1)


def test_status_table_names_every_figure(outbox_database: Database) -> None:
    """The table lists each figure, the lease-repair count under its lease name."""
    result = CliRunner().invoke(main, ["status", "--url", outbox_database.url])

    assert result.exit_code == 0, result.output
    for figure in ("due", "leased", "expired lease", "oldest due age seconds", "lease repair"):
        assert figure in result.output
    # guardrails: allow OBX007 -- proves the status output never says the retired word
    assert "zombie" not in result.output.lower()


def test_regression_passes_on_a_database_the_functions_wrote(
    outbox_database: Database, outbox_store: OutboxStore
) -> None:
    """After enqueue, claim and completion: no DISPATCHING row, count 0, exit 0."""
    item = leased_item(outbox_store)
    outbox_store.complete("worker-1", Outcome(lease=item.lease, state=AttemptState.DISPATCHED))

    result = CliRunner().invoke(main, ["regression", "--url", outbox_database.url])

    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1] == "regression count: 0"
