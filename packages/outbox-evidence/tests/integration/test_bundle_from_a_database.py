"""Proof: the bundle from a real database is deterministic, complete and verifiable."""

from __future__ import annotations

import json
from datetime import UTC
from pathlib import Path
from typing import TYPE_CHECKING, Final

import pytest
from click.testing import CliRunner, Result

from outbox_db import AttemptState, OutboxStore, Outcome, Role, RoleNames
from outbox_db.embedded import embedded_server
from outbox_db.harden import harden
from outbox_db.migrate import migrate
from outbox_db.records import OWNER_ROLE
from outbox_db.testonly import query_as, session_login
from outbox_db.testonly.factories import leased_item
from outbox_db.testonly.managed import grant_login, managed_database, unique_prefix
from outbox_evidence.catalog import DATABASE_PARTS
from outbox_evidence.cli import main

if TYPE_CHECKING:
    from outbox_db.testonly.pytest_plugin import Database, Server

ROOT: Final = Path(__file__).parents[4]
ENQUEUE: Final = "public.enqueue_payment_outbox(text,text,text,text,jsonb)"
DISABLE_TRIGGERS: Final = "ALTER TABLE public.payment_outbox_attempts DISABLE TRIGGER USER"
LOGIN_DDL: Final = (
    "ALTER TABLE public.payment_outbox_attempts ADD COLUMN recorded_by text DEFAULT SESSION_USER;"
)
PROOF: Final = (
    "packages/outbox-db/tests/integration/test_append_only.py::test_owner_cannot_mutate_the_ledger"
)
MANIFEST: Final = f"""
[sqlstates]
P0001 = "UPDATE/DELETE/TRUNCATE on the append-only ledger"

[[invariant]]
id = "append-only-ledger"
title = "The ledger is append-only"
sqlstate = "P0001"
proofs = ["{PROOF}"]
"""
JUNIT: Final = """<?xml version="1.0" encoding="utf-8"?><testsuites name="pytest tests">
<testsuite name="pytest" tests="1"><testcase
 classname="packages.outbox-db.tests.integration.test_append_only"
 name="test_owner_cannot_mutate_the_ledger[update]" time="0.3"/></testsuite></testsuites>
"""
GUARDRAILS: Final = {
    "tool": "outbox-guardrails",
    "version": "0.1.0",
    "enforce_no_db_query": True,
    "summary": {"error": 0, "exempt": 0, "waived": 0, "warning": 0, "waivers": 0},
    "findings": [],
    "waivers": [],
    "scope": [],
    "database_usages": {"areas": ["production", "tests"], "usages": []},
}


@pytest.fixture
def inputs(tmp_path: Path) -> list[str]:
    """Options of `generate` for a small, clean checkout: manifest, JUnit report, guardrails JSON."""
    checkout = tmp_path / "checkout"
    (checkout / "src").mkdir(parents=True)
    (checkout / "src" / "app.py").write_text("ANSWER = 42\n")
    (checkout / "proofs.toml").write_text(MANIFEST)
    (checkout / "unit.xml").write_text(JUNIT)
    (checkout / "guardrails.json").write_text(json.dumps(GUARDRAILS))
    return [
        *("--root", str(checkout), "--manifest", str(checkout / "proofs.toml")),
        *("--junit", str(checkout / "unit.xml")),
        *("--guardrails-json", str(checkout / "guardrails.json")),
        *("--isolation", str(checkout / "reports" / "isolation")),  # this checkout's: none
    ]


def generate(url: str, out: Path, inputs: list[str]) -> Result:
    """`outbox-evidence generate` against `url` into `out`."""
    return CliRunner().invoke(main, ["generate", "--url", url, "--out", str(out), *inputs])


def test_two_servers_with_one_schema_give_byte_identical_bundles(
    tmp_path: Path, inputs: list[str]
) -> None:
    """Separate clusters, separate sockets, same schema and inputs: the same bytes, complete."""
    results: list[Result] = []
    for name in ("first", "second"):
        with embedded_server(durable=False) as server:
            migrate(server.url)
            results.append(generate(server.url, tmp_path / name, inputs))

    assert [r.exit_code for r in results] == [0, 0], [r.stderr for r in results]
    first = {p.name: p.read_bytes() for p in (tmp_path / "first").iterdir()}
    second = {p.name: p.read_bytes() for p in (tmp_path / "second").iterdir()}
    assert first == second
    assert [name for name, data in first.items() if b"/tmp/" in data] == []


def test_a_server_without_the_outbox_roles_is_named_as_the_reason(
    tmp_path: Path, inputs: list[str]
) -> None:
    """Never migrated: no symphony_auditor to act as; each database part says so; exit 1."""
    with embedded_server(durable=False) as server:
        result = generate(server.url, tmp_path / "bundle", inputs)

    assert result.exit_code == 1
    grants = (tmp_path / "bundle" / "01_grants.txt").read_text().splitlines()
    assert grants[1] == (
        "# MISSING: cannot act as symphony_auditor: is the database migrated, and the login"
        " role a member of symphony_auditor? [SQLSTATE 22023]"
    )
    assert "Traceback" not in result.output


def test_a_bundle_from_a_migrated_database_is_complete_and_verifies(
    outbox_database: Database, tmp_path: Path, inputs: list[str]
) -> None:
    """Every part present, every verdict PASS, the proof PASSED: verify exits 0."""
    out = tmp_path / "bundle"

    generated = generate(outbox_database.url, out, inputs)
    verified = CliRunner().invoke(main, ["verify", str(out)])

    assert generated.exit_code == 0, generated.stderr
    assert (verified.exit_code, verified.stdout) == (0, f"outbox-evidence verify: {out}: OK\n")
    grants = (out / "01_grants.txt").read_text().splitlines()
    assert (
        "function public.enqueue_payment_outbox(text,text,text,text,jsonb) symphony_executor EXECUTE"
        in grants
    )
    assert "result: 0" in (out / "08_regression.txt").read_text().splitlines()
    schema = (out / "03_schema.sql").read_text().splitlines()
    assert LOGIN_DDL in schema, "who wrote each attempt: the column and its default"
    assert (out / "11_operator_log.txt").read_text().splitlines()[2:] == [
        (
            "verdict: PASS (append-only (outbox_operator_log_append_only,"
            " outbox_rail_ordering_append_only), 0 re-drives, 0 rail ordering switches)"
        ),
        "read as symphony_auditor from public.outbox_operator_log, oldest first",
        "",
        "(no re-drive recorded)",
        "",
        (
            "read as symphony_auditor from public.outbox_rail_ordering, oldest first"
            " (the last entry of a rail is in force; a rail without one is unordered)"
        ),
        "",
        "(no rail ordering recorded: every rail is unordered)",
    ]


@pytest.mark.usefixtures("outbox_database")  # the seed roles exist in the cluster too
def test_a_database_with_a_role_prefix_gives_a_bundle_in_its_own_role_names(
    outbox_server: Server, tmp_path: Path, inputs: list[str]
) -> None:
    """A managed database migrated with a prefix: complete, every verdict PASS, its names.

    Its auditor login, granted only the prefixed auditor role, reads the bundle; every file
    read from the catalog names the database's roles, never a seed name (the guide in
    00_README.txt names the roles by their seed names, and says how a prefix shows).
    """
    with managed_database(outbox_server, unique_prefix()) as database:
        migrate(database.owner_url, role_prefix=database.roles.prefix)
        out = tmp_path / "bundle"

        generated = generate(grant_login(database, Role.AUDITOR), out, inputs)
        verified = CliRunner().invoke(main, ["verify", str(out)])

    assert generated.exit_code == 0, generated.stderr
    assert verified.exit_code == 0, verified.output
    roles, bundle = database.roles, {p.name: p.read_text() for p in out.iterdir()}
    grants = bundle["01_grants.txt"].splitlines()
    assert f"read as {roles.of(Role.AUDITOR)}" in grants[2]
    assert f"function {ENQUEUE} {roles.of(Role.PRODUCER)} EXECUTE" in grants, (
        "the producer's grant, under its prefixed name"
    )
    seed = {*RoleNames().groups, RoleNames().owner}
    catalog = {name: bundle[name] for name in DATABASE_PARTS}
    assert [f"{n}: {w}" for n, text in catalog.items() for w in seed if f" {w}" in text] == []
    assert "payments_b_symphony_executor" in bundle["00_README.txt"]


def test_the_operator_log_lists_each_redrive_and_still_verifies(
    outbox_database: Database, tmp_path: Path, inputs: list[str]
) -> None:
    """A re-drive's entry (time in UTC, who, both items, key, reason) and a rail ordering switch; regenerated: same bytes."""
    with OutboxStore.connect(outbox_database.url) as executor:
        item = leased_item(executor)
        executor.complete("worker-1", Outcome(lease=item.lease, state=AttemptState.FAILED))
    with OutboxStore.connect(outbox_database.url, role=Role.OPERATOR) as operator:
        redrive = operator.redrive(item.outbox_id, reason="rail outage over")
        switch = operator.set_rail_ordering("rtp", ordered=True, reason="rail needs order")

    generated = [generate(outbox_database.url, tmp_path / name, inputs) for name in ("a", "b")]
    verified = CliRunner().invoke(main, ["verify", str(tmp_path / "a")])

    assert [g.exit_code for g in generated] == [0, 0]
    assert verified.exit_code == 0, verified.output
    log = (tmp_path / "a" / "11_operator_log.txt").read_text()
    assert log == (tmp_path / "b" / "11_operator_log.txt").read_text()
    lines = log.splitlines()
    header, entry = lines[5:7]
    assert header.split() == [
        "entry", "requested", "at", "by", "FAILED", "item", "re-driven", "as", "new", "key", "reason"
    ]  # fmt: skip
    assert entry.split(maxsplit=6) == [
        "1",
        redrive.requested_at.astimezone(UTC).isoformat(),
        redrive.requested_by,
        str(item.outbox_id),
        str(redrive.redrive_outbox_id),
        redrive.idempotency_key,
        "rail outage over",
    ]
    assert lines[-1].split(maxsplit=5) == [
        "1",
        switch.requested_at.astimezone(UTC).isoformat(),
        switch.requested_by,
        "rtp",
        "ordered",
        "rail needs order",
    ]


def test_the_hardening_part_lists_the_owners_ddl_once_harden_records_it(
    outbox_database: Database, tmp_path: Path, inputs: list[str]
) -> None:
    """After `outbox-db harden`, the owner disabling the ledger's triggers shows in 14_hardening."""
    harden(outbox_database.url)
    query_as(outbox_database.url, OWNER_ROLE, DISABLE_TRIGGERS)

    generated = generate(outbox_database.url, tmp_path / "bundle", inputs)

    assert generated.exit_code == 0, generated.stderr
    text = (tmp_path / "bundle" / "14_hardening.txt").read_text()
    part = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert part[0].startswith("superuser hardening: applied")
    assert part[2].startswith("DDL recording: installed")
    assert part[2].endswith("statements on outbox objects recorded: 1")
    login = session_login(outbox_database.url)
    assert part[-1].split()[2:] == [login, "ALTER", "TABLE", "public.payment_outbox_attempts"]


def test_historical_dispatching_rows_fail_the_regression_verdict_and_verify(
    outbox_migrated_legacy_database: str, tmp_path: Path, inputs: list[str]
) -> None:
    """The regression count is evidence, not a gate of generate: the file and verify say FAIL."""
    out = tmp_path / "bundle"

    generated = generate(outbox_migrated_legacy_database, out, inputs)
    verified = CliRunner().invoke(main, ["verify", str(out)])

    assert generated.exit_code == 0, generated.stderr
    regression = (out / "08_regression.txt").read_text().splitlines()
    assert "result: 9" in regression
    assert verified.exit_code == 1
    assert (
        "outbox-evidence verify: 08_regression.txt: verdict: FAIL"
        " (9 ledger rows in the retired DISPATCHING state)"
    ) in verified.stderr.splitlines()
