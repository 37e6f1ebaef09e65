"""Proofs: `outbox-db harden` takes the large-object functions from every outbox role.

It also records every DDL statement on the outbox's objects where their owner cannot touch it.

Without it, PUBLIC (so every outbox role) may create large objects that outlive the session:
the finding executor_boundary.toml records as lo-create. The step needs a superuser, refuses
anyone else (42501) without changing a thing, can run again, and its effect is read from the
catalog ACLs by the auditor (the evidence bundle's 14_hardening.txt), never from a log.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

import pytest
from click.testing import CliRunner

from outbox_db import PermissionDenied, Role
from outbox_db.audit import CatalogAudit
from outbox_db.cli import main
from outbox_db.harden import SuperuserRequired, harden
from outbox_db.records import OWNER_ROLE
from outbox_db.testonly import query_as, query_no_role, session_login
from outbox_db.testonly.pytest_plugin import application_login

if TYPE_CHECKING:
    from outbox_db.testonly.pytest_plugin import Database

CREATORS: Final = {"lo_create(oid)", "lo_creat(integer)", "lo_from_bytea(oid,bytea)"}
PUBLIC_MAY_CREATE: Final = (
    "SELECT pg_catalog.has_function_privilege('public', 'pg_catalog.lo_create(oid)', 'EXECUTE')"
)
# What an owner hiding a ledger rewrite would run (docs/threat-model.md, the owner with DDL).
OWNER_DDL: Final = (
    "ALTER TABLE public.payment_outbox_attempts DISABLE TRIGGER USER",
    "ALTER TABLE public.payment_outbox_attempts ENABLE TRIGGER USER",
    "ALTER TABLE public.payment_outbox_attempts ALTER rail_reference TYPE text USING 'FORGED'",
)
OWNER_ATTACKS_ON_THE_RECORD: Final = (
    "DELETE FROM outbox_ddl.ddl_log",
    "ALTER EVENT TRIGGER outbox_record_ddl DISABLE",
    "DROP EVENT TRIGGER outbox_record_drops",
)


def test_an_unhardened_database_lets_every_role_create_large_objects(
    outbox_database: Database,
) -> None:
    """Control: as migrated, PUBLIC and every outbox role may execute lo_create; not applied."""
    with CatalogAudit.open(outbox_database.url) as audit:
        state = audit.hardening()

    assert state.applied is False
    creators = {f.signature: f for f in state.functions if f.signature in CREATORS}
    assert creators.keys() == CREATORS
    for function in creators.values():
        assert function.public_may_execute is True
        assert set(function.roles_may_execute) == {role.value for role in Role}


def test_harden_refuses_a_login_that_is_not_a_superuser(outbox_database: Database) -> None:
    """An executor's login gets 42501 (SuperuserRequired) and PUBLIC keeps its EXECUTE."""
    with application_login(outbox_database, Role.EXECUTOR) as application:
        with pytest.raises(SuperuserRequired) as refused:
            harden(application.url)
        result = CliRunner().invoke(main, ["harden", "--url", application.url])

    assert refused.value.sqlstate == "42501"
    assert application.name in str(refused.value)
    assert result.exit_code == 1
    assert "needs a superuser login" in result.output
    assert application.password not in result.output
    assert query_no_role(outbox_database.url, PUBLIC_MAY_CREATE) == [(True,)]


def test_harden_leaves_no_role_a_large_object_function(outbox_database: Database) -> None:
    """After harden, neither PUBLIC nor any outbox role may execute a large-object function."""
    state = harden(outbox_database.url)

    assert state.executable == []
    assert state.applied is True
    assert {f.signature for f in state.functions} >= CREATORS
    assert query_no_role(outbox_database.url, PUBLIC_MAY_CREATE) == [(False,)]


def test_harden_runs_again_and_the_auditor_reads_it_from_the_catalog(
    outbox_database: Database,
) -> None:
    """A second run changes nothing and says applied; the auditor's catalog read agrees."""
    first = harden(outbox_database.url)
    result = CliRunner().invoke(main, ["harden", "--url", outbox_database.url])

    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0] == "superuser hardening: applied"
    with CatalogAudit.open(outbox_database.url) as audit:
        assert audit.hardening() == first


def test_the_owners_ddl_is_recorded_where_the_owner_cannot_touch_it(
    outbox_database: Database,
) -> None:
    """After harden, the owner's DISABLE TRIGGER and ALTER ... USING are recorded, with its login.

    The owner can neither delete the record nor disable or drop the event triggers (42501);
    the auditor reads the record.
    """
    harden(outbox_database.url)
    for statement in OWNER_DDL:
        query_as(outbox_database.url, OWNER_ROLE, statement)

    with CatalogAudit.open(outbox_database.url) as audit:
        state = audit.hardening()
    refusals = []
    for attack in OWNER_ATTACKS_ON_THE_RECORD:
        with pytest.raises(PermissionDenied) as refused:
            query_as(outbox_database.url, OWNER_ROLE, attack)
        refusals.append(refused.value.sqlstate)

    assert state.ddl_recorded is True
    assert state.applied is True
    recorded = [(s.command_tag, s.object_identity) for s in state.ddl_log]
    assert recorded == [("ALTER TABLE", "public.payment_outbox_attempts")] * len(OWNER_DDL)
    assert {s.login for s in state.ddl_log} == {session_login(outbox_database.url)}
    assert refusals == ["42501"] * len(OWNER_ATTACKS_ON_THE_RECORD)
    assert len(query_no_role(outbox_database.url, "SELECT * FROM outbox_ddl.ddl_log")) == 3


def test_an_unhardened_database_records_no_ddl(outbox_database: Database) -> None:
    """Control: as migrated, no event trigger records the owner's DDL; not applied."""
    query_as(outbox_database.url, OWNER_ROLE, OWNER_DDL[0])

    with CatalogAudit.open(outbox_database.url) as audit:
        state = audit.hardening()

    assert (state.ddl_recorded, state.ddl_log) == (False, ())


def test_harden_refuses_a_record_schema_the_owner_made_first(outbox_database: Database) -> None:
    """An outbox_ddl schema the owner owns (to edit the record later): 42501, nothing changed."""
    query_no_role(outbox_database.url, "CREATE SCHEMA outbox_ddl AUTHORIZATION outbox_owner")

    with pytest.raises(SuperuserRequired) as refused:
        harden(outbox_database.url)

    assert refused.value.sqlstate == "42501"
    assert "outbox_ddl" in str(refused.value)
    assert query_no_role(outbox_database.url, PUBLIC_MAY_CREATE) == [(True,)]
    with CatalogAudit.open(outbox_database.url) as audit:
        assert audit.hardening().ddl_recorded is False
