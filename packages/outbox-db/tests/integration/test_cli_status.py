"""`outbox-db status` reads the view with the readonly role's rights only."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Final

import attrs
from click.testing import CliRunner

from outbox_db import AttemptState, Outcome, QueueStatus
from outbox_db.cli import main
from outbox_db.testonly.factories import leased_item, make_request

if TYPE_CHECKING:
    import pytest

    from outbox_db import OutboxStore
    from outbox_db.testonly.pytest_plugin import Database

FIGURES = sorted(field.name for field in attrs.fields(QueueStatus) if field.name != "rail_type")
WIDE: Final = {"COLUMNS": "200"}


def test_status_json_reports_the_queue_per_rail_and_in_total(
    outbox_database: Database, outbox_store: OutboxStore
) -> None:
    """One JSON document: the total and each rail, every figure of the status view in each.

    No relayer has announced sepa, so its due item is also listed as unserved.
    """
    item = leased_item(outbox_store)
    outbox_store.complete("worker-1", Outcome(lease=item.lease, state=AttemptState.DISPATCHED))
    outbox_store.enqueue(make_request(rail_type="sepa"))

    result = CliRunner().invoke(main, ["status", "--url", outbox_database.url, "--json"])

    assert result.exit_code == 0, result.output
    (line,) = result.output.splitlines()
    status = json.loads(line)
    assert sorted(status) == ["rails", "total", "unserved"]
    assert status["unserved"]["sepa"]["due_count"] == 1
    assert status["unserved"]["sepa"]["last_served_at"] is None
    assert sorted(status["rails"]) == ["rtp", "sepa"]
    for figures in (status["total"], *status["rails"].values()):
        assert sorted(figures) == FIGURES
    assert (status["total"]["due_count"], status["total"]["dispatched_count"]) == (1, 1)
    assert (status["rails"]["sepa"]["due_count"], status["rails"]["rtp"]["dispatched_count"]) == (
        1,
        1,
    )


def test_status_table_names_every_figure(outbox_database: Database) -> None:
    """The tables list each figure, the lease-repair count under its lease name (a wide terminal: rich wraps headings at 80 columns)."""
    result = CliRunner().invoke(main, ["status", "--url", outbox_database.url], env=WIDE)

    assert result.exit_code == 0, result.output
    figures = ("due", "waiting", "leased", "expired leases", "oldest due age", "lease repair")
    assert "no relayer serves" in result.output
    for figure in (*figures, "FAILED"):
        assert figure in result.output
    # guardrails: allow OBX007 -- proves the status output never says the retired word
    assert "zombie" not in result.output.lower()


def test_status_watch_refreshes_until_interrupted(
    outbox_database: Database, outbox_store: OutboxStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--watch --json prints a fresh document every --interval; Ctrl-C ends it with exit 0."""
    pauses: list[float] = []

    def pause(seconds: float) -> None:
        """Between refreshes: enqueue one item, and after the second pause press Ctrl-C."""
        pauses.append(seconds)
        if len(pauses) == 3:
            raise KeyboardInterrupt
        outbox_store.enqueue(make_request())

    monkeypatch.setattr(time, "sleep", pause)
    args = ["status", "--url", outbox_database.url, "--json", "--watch", "--interval", "0.5"]

    result = CliRunner().invoke(main, args)

    assert result.exit_code == 0, result.output
    due = [json.loads(line)["total"]["due_count"] for line in result.output.splitlines()]
    assert (due, pauses) == ([0, 1, 2], [0.5, 0.5, 0.5])


def test_status_watch_redraws_the_tables(
    outbox_database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--watch without --json redraws the tables in place until Ctrl-C; exit 0."""

    def interrupt(_: float) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(time, "sleep", interrupt)

    result = CliRunner().invoke(main, ["status", "--url", outbox_database.url, "--watch"])

    assert result.exit_code == 0, result.output
    assert "attempts by state" in result.output
    assert "Ctrl-C to stop" in result.output


def test_regression_passes_on_a_database_the_functions_wrote(
    outbox_database: Database, outbox_store: OutboxStore
) -> None:
    """After enqueue, claim and completion: no DISPATCHING row, count 0, exit 0."""
    item = leased_item(outbox_store)
    outbox_store.complete("worker-1", Outcome(lease=item.lease, state=AttemptState.DISPATCHED))

    result = CliRunner().invoke(main, ["regression", "--url", outbox_database.url])

    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1] == "regression count: 0"
