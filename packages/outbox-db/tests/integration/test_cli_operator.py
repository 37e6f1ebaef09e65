"""`outbox-db redrive` and `outbox-db inspect`: an operator's commands, on a real database.

`redrive` acts as symphony_operator; `inspect` and `status` with symphony_readonly's rights
only, which a login that is a member of symphony_readonly and of nothing else proves.
"""

from __future__ import annotations

import json
import uuid
from typing import TYPE_CHECKING, Final, LiteralString

import pytest
from click.testing import CliRunner, Result
from psycopg.conninfo import make_conninfo

from outbox_db import AttemptState, OutboxStore, Role
from outbox_db.cli import main
from outbox_db.testonly import outbox_rows, query_no_role
from outbox_db.testonly.factories import completed_item, make_request

if TYPE_CHECKING:
    from collections.abc import Iterator

    from outbox_db import ClaimedItem
    from outbox_db.testonly.pytest_plugin import Database

# The throwaway login's name and password reach the DO blocks as session settings, so every
# statement stays a literal.
CREATE_READER: Final = """
DO $proof$
BEGIN
    EXECUTE pg_catalog.format(
        'CREATE ROLE %I LOGIN PASSWORD %L IN ROLE symphony_readonly',
        pg_catalog.current_setting('outbox_proof.role'),
        pg_catalog.current_setting('outbox_proof.password')
    );
END
$proof$
"""
DROP_READER: Final = """
DO $proof$
BEGIN
    EXECUTE pg_catalog.format(
        'DROP ROLE IF EXISTS %I', pg_catalog.current_setting('outbox_proof.role')
    );
END
$proof$
"""
ITEM_KEYS: Final = [
    "attempts",
    "idempotency_key",
    "instruction_id",
    "outbox_id",
    "participant_id",
    "pending",
    "rail_type",
    "redrive_of",
    "redriven_as",
    "sequence_id",
    "state",
]
ATTEMPT_KEYS: Final = sorted(
    [
        "attempt_no",
        "claimed_at",
        "completed_at",
        "error_code",
        "error_message",
        "idempotency_key",
        "instruction_id",
        "latency_ms",
        "outbox_id",
        "participant_id",
        "payload",
        "rail_code",
        "rail_reference",
        "rail_type",
        "recorded_by",
        "state",
        "worker_id",
    ]
)
# rich sizes its tables to COLUMNS when output is not a terminal.
WIDE: Final = {"COLUMNS": "200"}
LINK_KEYS: Final = [
    "entry_no",
    "outbox_id",
    "reason",
    "redrive_generation",
    "redrive_idempotency_key",
    "redrive_outbox_id",
    "requested_at",
    "requested_by",
]


def run(url: str, *arguments: str) -> Result:
    """`outbox-db ARGUMENTS --url URL`."""
    return CliRunner().invoke(main, [*arguments, "--url", url])


def failed_item(store: OutboxStore) -> ClaimedItem:
    """A new item the rail refused for good, after 12 ms, worker-1 holding it."""
    return completed_item(
        store,
        AttemptState.FAILED,
        rail_code="422",
        error_code="ACCOUNT_CLOSED",
        error_message="beneficiary account closed",
        latency_ms=12,
    )


def redriven_by_the_cli(url: str, store: OutboxStore) -> ClaimedItem:
    """A FAILED item, re-driven with `outbox-db redrive ID --reason fixed`."""
    failed = failed_item(store)
    result = run(url, "redrive", str(failed.outbox_id), "--reason", "fixed")
    assert result.exit_code == 0, result.output
    return failed


def inspected(url: str, *selector: str) -> list[dict[str, object]]:
    """The items `inspect SELECTOR --json` prints."""
    result = run(url, "inspect", *selector, "--json")
    assert result.exit_code == 0, result.output
    (line,) = result.output.splitlines()
    document = json.loads(line)
    assert list(document) == ["items"]
    items = document["items"]
    assert isinstance(items, list)
    return items


# --- redrive -------------------------------------------------------------------------------------


def test_redrive_prints_the_new_item_and_then_the_same_one_again(
    outbox_database: Database, outbox_store: OutboxStore
) -> None:
    """First call: 're-driven as NEW (key outbox:redrive:OLD)'; second: 'already re-driven as NEW'."""
    failed = failed_item(outbox_store)

    first = run(outbox_database.url, "redrive", str(failed.outbox_id), "--reason", "rail fixed")
    again = run(outbox_database.url, "redrive", str(failed.outbox_id), "--reason", "once more")

    assert (first.exit_code, again.exit_code) == (0, 0), first.output + again.output
    ((new_id,),) = query_no_role(
        outbox_database.url, "SELECT redrive_outbox_id FROM public.outbox_operator_log"
    )
    expected = f"{failed.outbox_id} re-driven as {new_id} (key outbox:redrive:{failed.outbox_id})"
    assert first.output.startswith(expected)
    assert again.output.startswith(
        f"{failed.outbox_id} already re-driven as {new_id} (key outbox:redrive:{failed.outbox_id})"
    )


@pytest.mark.parametrize(
    ("target", "message"),
    [
        (
            "pending",
            (
                "Error: only a FAILED item can be re-driven: the item is pending, not FAILED"
                " [SQLSTATE P7004]"
            ),
        ),
        (
            "unknown",
            "Error: unknown outbox item: no outbox item has this outbox_id [SQLSTATE P7005]",
        ),
        (
            "blank-reason",
            (
                "Error: invalid argument: reason must be a non-blank string of at most 255"
                " characters, without control characters [SQLSTATE 22023]"
            ),
        ),
    ],
)
def test_a_refused_redrive_exits_1_with_the_reason_and_writes_nothing(
    outbox_database: Database, outbox_store: OutboxStore, target: str, message: str
) -> None:
    """Not FAILED, unknown, or no reason: one line with the SQLSTATE, exit 1, nothing written."""
    failed = failed_item(outbox_store)
    outbox_id, reason = {
        "pending": (outbox_store.enqueue(make_request()).outbox_id, "retry"),
        "unknown": (uuid.uuid4(), "retry"),
        "blank-reason": (failed.outbox_id, "  "),
    }[target]
    snapshot = outbox_rows(outbox_database.url, versions=True)

    result = run(outbox_database.url, "redrive", str(outbox_id), "--reason", reason)

    assert (result.exit_code, result.output) == (1, f"{message}\n")
    assert outbox_rows(outbox_database.url, versions=True) == snapshot


# --- inspect -------------------------------------------------------------------------------------


def test_inspect_json_shows_the_history_and_the_link_both_ways(
    outbox_database: Database, outbox_store: OutboxStore
) -> None:
    """By id, instruction or key: attempts with codes, latency and worker; links both ways."""
    failed = redriven_by_the_cli(outbox_database.url, outbox_store)

    (original,) = inspected(outbox_database.url, str(failed.outbox_id))
    both = inspected(outbox_database.url, "--instruction", failed.instruction_id)
    (redriven,) = inspected(outbox_database.url, "--key", f"outbox:redrive:{failed.outbox_id}")

    assert both == [original, redriven]
    for item in both:
        assert sorted(item) == ITEM_KEYS
    assert (original["state"], original["pending"], original["redrive_of"]) == (
        "FAILED",
        None,
        None,
    )
    attempts = original["attempts"]
    assert isinstance(attempts, list)
    (attempt,) = attempts
    assert sorted(attempt) == ATTEMPT_KEYS
    assert (
        attempt["attempt_no"],
        attempt["state"],
        attempt["rail_code"],
        attempt["error_code"],
        attempt["latency_ms"],
        attempt["worker_id"],
    ) == (1, "FAILED", "422", "ACCOUNT_CLOSED", 12, "worker-1")
    link = original["redriven_as"]
    assert isinstance(link, dict)
    assert sorted(link) == LINK_KEYS
    assert (link["redrive_outbox_id"], link["reason"]) == (redriven["outbox_id"], "fixed")
    assert redriven["redrive_of"] == link
    assert (redriven["state"], redriven["attempts"], redriven["redriven_as"]) == (
        "pending",
        [],
        None,
    )
    assert redriven["sequence_id"] == failed.sequence_id + 1


def test_inspect_table_shows_the_lease_the_attempts_and_the_links(
    outbox_database: Database, outbox_store: OutboxStore
) -> None:
    """The text view names the state, the lease holder, each attempt and both link directions."""
    failed = redriven_by_the_cli(outbox_database.url, outbox_store)
    (redrive,) = outbox_store.claim("worker-7", batch_size=1, lease_seconds=30)

    result = CliRunner().invoke(
        main,
        ["inspect", "--instruction", failed.instruction_id, "--url", outbox_database.url],
        env=WIDE,
    )

    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert f"item {failed.outbox_id}: FAILED" in lines[0]
    assert f"re-driven as {redrive.outbox_id}: by " in result.output
    assert f"item {redrive.outbox_id}: leased" in result.output
    assert "leased by worker-7 until" in result.output
    assert f"re-drive of {failed.outbox_id}: by " in result.output
    assert "beneficiary account closed" in result.output
    assert "ACCOUNT_CLOSED" in result.output


def test_inspect_of_nothing_exits_1(outbox_database: Database) -> None:
    """No item matches: one line saying so, exit 1."""
    result = run(outbox_database.url, "inspect", "--key", "no-such-key")

    assert (result.exit_code, result.output) == (1, "Error: no outbox item matches\n")


# --- the readonly role's rights suffice, and are all it takes -----------------------------------


@pytest.fixture
def reader_url(outbox_database: Database) -> Iterator[str]:
    """A login that is a member of symphony_readonly and of nothing else; dropped afterwards."""
    name, password = f"outbox_reader_{uuid.uuid4().hex[:12]}", uuid.uuid4().hex
    settings = make_conninfo(
        outbox_database.url,
        options=f"-c outbox_proof.role={name} -c outbox_proof.password={password}",
    )
    query_no_role(settings, CREATE_READER)
    try:
        yield make_conninfo(outbox_database.url, user=name, password=password)
    finally:
        query_no_role(settings, DROP_READER)


@pytest.mark.parametrize(
    ("command", "shown"),
    [
        (["status"], "FAILED"),
        (["status", "--json"], '"failed_count": 1'),
        (["inspect", "--key", "KEY"], "FAILED"),
        (["inspect", "--key", "KEY", "--json"], '"state": "FAILED"'),
    ],
    ids=["status", "status-json", "inspect", "inspect-json"],
)
def test_status_and_inspect_work_for_a_readonly_login(
    outbox_store: OutboxStore, reader_url: str, command: list[str], shown: str
) -> None:
    """A login granted only symphony_readonly runs status and inspect (exit 0)."""
    failed = failed_item(outbox_store)
    arguments = [failed.idempotency_key if part == "KEY" else part for part in command]

    result = CliRunner().invoke(main, [*arguments, "--url", reader_url], env=WIDE)

    assert result.exit_code == 0, result.output
    assert shown in result.output


def test_a_readonly_login_cannot_redrive(
    outbox_database: Database, outbox_store: OutboxStore, reader_url: str
) -> None:
    """The same login's redrive is refused (42501, naming the role it lacks); nothing written."""
    failed = failed_item(outbox_store)
    snapshot = outbox_rows(outbox_database.url, versions=True)

    result = run(reader_url, "redrive", str(failed.outbox_id), "--reason", "not allowed")

    assert result.exit_code == 1
    assert result.output == (
        f"Error: permission denied [SQLSTATE 42501] (is the login a member of {Role.OPERATOR}?)\n"
    )
    assert outbox_rows(outbox_database.url, versions=True) == snapshot


def test_readonly_reads_exactly_the_queue_the_ledger_the_view_and_the_operator_logs(
    outbox_database: Database,
) -> None:
    """What inspect and status need (rails served and unserved included), and which item holds a key, is all symphony_readonly may SELECT."""
    rows = query_no_role(outbox_database.url, READABLE_BY_READONLY)

    assert sorted(row[0] for row in rows) == [
        "outbox_established_rails",
        "outbox_idempotency_keys",
        "outbox_ledger_archives",
        "outbox_operator_log",
        "outbox_rail_ordering",
        "outbox_rail_servers",
        "outbox_scoped_rails",
        "outbox_status_view",
        "outbox_terminal_outcomes",
        "outbox_unserved_rails",
        "payment_outbox_attempts",
        "payment_outbox_pending",
    ]


READABLE_BY_READONLY: LiteralString = """
SELECT c.relname::text FROM pg_catalog.pg_class AS c
WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p', 'v')
    AND pg_catalog.has_table_privilege('symphony_readonly', c.oid, 'SELECT')
"""


# --- ordering ------------------------------------------------------------------------------------


def test_ordering_set_and_show_keep_who_asked_and_why(outbox_database: Database) -> None:
    """`ordering set` prints the entry; `ordering show --json` gives the rail's mode and the history."""
    on = run(outbox_database.url, "ordering", "set", "rtp", "--ordered", "--reason", "rail rule")
    off = run(outbox_database.url, "ordering", "set", "rtp", "--unordered", "--reason", "relaxed")
    shown = run(outbox_database.url, "ordering", "show", "--json")
    table = CliRunner().invoke(main, ["ordering", "show", "--url", outbox_database.url], env=WIDE)

    assert on.exit_code == off.exit_code == shown.exit_code == table.exit_code == 0
    assert on.output.startswith("rail rtp: new items ordered (entry 1) by ")
    assert off.output.startswith("rail rtp: new items unordered (entry 2) by ")
    document = json.loads(shown.output)
    assert document["rails"] == {"rtp": False}
    assert [(e["entry_no"], e["ordered"], e["reason"]) for e in document["history"]] == [
        (1, True, "rail rule"),
        (2, False, "relaxed"),
    ]
    assert "rail rule" in table.output
    assert "relaxed" in table.output


def test_ordering_set_needs_a_mode_and_a_reason(outbox_database: Database) -> None:
    """Without --ordered/--unordered or --reason: usage error (exit 2), nothing recorded."""
    no_mode = run(outbox_database.url, "ordering", "set", "rtp", "--reason", "why")
    no_reason = run(outbox_database.url, "ordering", "set", "rtp", "--ordered")
    blank = run(outbox_database.url, "ordering", "set", "rtp", "--ordered", "--reason", " ")

    assert (no_mode.exit_code, no_reason.exit_code) == (2, 2)
    assert blank.exit_code == 1
    assert blank.output.startswith("Error: invalid argument: reason must be a non-blank string")
    assert blank.output.endswith("[SQLSTATE 22023]\n")
    assert query_no_role(
        outbox_database.url, "SELECT count(*) FROM public.outbox_rail_ordering"
    ) == [(0,)]


def test_a_readonly_login_cannot_switch_a_rail(reader_url: str) -> None:
    """`ordering set` as a symphony_readonly login: exit 1 naming the operator role."""
    result = run(reader_url, "ordering", "set", "rtp", "--ordered", "--reason", "not allowed")

    assert result.exit_code == 1
    assert f"(is the login a member of {Role.OPERATOR}?)" in result.output


def test_inspect_says_an_item_waits_for_its_lane(
    outbox_database: Database, outbox_store: OutboxStore
) -> None:
    """The second item of an ordered lane is shown waiting, not due."""
    run(outbox_database.url, "ordering", "set", "rtp", "--ordered", "--reason", "rail rule")
    outbox_store.enqueue(make_request(participant_id="p1"))
    second = outbox_store.enqueue(make_request(participant_id="p1"))

    result = CliRunner().invoke(
        main, ["inspect", str(second.outbox_id), "--url", outbox_database.url], env=WIDE
    )

    assert result.exit_code == 0, result.output
    assert "waits for the earlier items of its lane (ordered rail)" in result.output
    (item,) = inspected(outbox_database.url, str(second.outbox_id))
    assert item["pending"]["awaiting_predecessor"] is True  # type: ignore[index]
