"""Proofs: a managed PostgreSQL, where the migrating login is a database owner with CREATEROLE.

RDS, Cloud SQL, Azure and Supabase give no superuser: each database is owned by a login with
CREATEROLE, and roles are cluster-wide. Two databases of one cluster, each owned by its own
CREATEROLE login (never a superuser), migrate with a role prefix each, on every server
version; a login granted one database's roles is refused in the other (42501); and a second
database on the seed names is refused naming the grant and the fix on PostgreSQL 16+, where
GRANT needs ADMIN OPTION (on 15 CREATEROLE may grant any role: the migrator reports the
sharing instead). SQLSTATEs are asserted first.

Every role and database here is made for the test, under a unique name, and dropped after it
(outbox_db.testonly.managed).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

import psycopg
import pytest
from click.testing import CliRunner
from psycopg import sql

from outbox_db import MigrationError, OutboxStore, PermissionDenied, Role, RoleNames, migrate
from outbox_db.audit import CatalogAudit
from outbox_db.cli import main
from outbox_db.harden import harden
from outbox_db.testonly import query_as, query_no_role
from outbox_db.testonly.factories import make_request
from outbox_db.testonly.managed import (
    ManagedDatabase,
    admin,
    as_login,
    grant_login,
    managed_database,
    unique_prefix,
)
from outbox_db.testonly.pytest_plugin import migrate_as_proven

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from outbox_db.testonly.pytest_plugin import Server

# The server's own outbox (seed role names, made by its superuser) is there, as in a cluster
# that already holds an outbox database; the fixture also counts these proofs as DB-backed.
pytestmark = pytest.mark.usefixtures("outbox_database")

CLAIM: Final = "SELECT outbox_id FROM public.claim_outbox_batch(10, 'intruder', 30)"
ENQUEUE: Final = "public.enqueue_payment_outbox(text,text,text,text,jsonb)"
LO_CREATE: Final = "lo_create(oid)"
READ_QUEUE: Final = "SELECT count(*) FROM public.payment_outbox_pending"


def claim_with_a_store(url: str) -> None:
    """What a relayer does: an executor store, one claim."""
    with OutboxStore.connect(url, role=Role.EXECUTOR) as store:
        store.claim("intruder", batch_size=10, lease_seconds=30)


@pytest.fixture
def two_databases(outbox_server: Server) -> Iterator[tuple[ManagedDatabase, ManagedDatabase]]:
    """Databases A and B of one cluster, each migrated by its own owner with its own prefix."""
    with (
        managed_database(outbox_server, unique_prefix()) as first,
        managed_database(outbox_server, unique_prefix()) as second,
    ):
        migrate_as_proven(first.owner_url, role_prefix=first.roles.prefix)
        migrate_as_proven(second.owner_url, role_prefix=second.roles.prefix)
        yield first, second


def test_two_databases_migrate_under_their_own_createrole_owners_and_work(
    outbox_server: Server,
) -> None:
    """Each owner migrates its database; a service enqueues and a relayer claims in each."""
    with (
        managed_database(outbox_server, unique_prefix()) as first,
        managed_database(outbox_server, unique_prefix()) as second,
    ):
        for database in (first, second):
            report = migrate(database.owner_url, role_prefix=database.roles.prefix)
            again = migrate(database.owner_url)  # the prefix is the database's, not a setting

            assert (report.roles, report.unchanged, report.shared_with) == (database.roles, 0, ())
            assert (again.roles, again.applied) == (database.roles, ())
            owner = query_no_role(database.owner_url, "SELECT current_setting('is_superuser')")
            assert owner == [("off",)]
            producer, relayer = (
                grant_login(database, Role.PRODUCER),
                grant_login(database, Role.EXECUTOR),
            )
            with OutboxStore.connect(producer, role=Role.PRODUCER) as store:
                enqueued = store.enqueue(make_request())
            with OutboxStore.connect(relayer, role=Role.EXECUTOR) as store:
                claimed = store.claim("relayer-1", batch_size=10, lease_seconds=30)
            assert [item.outbox_id for item in claimed] == [enqueued.outbox_id]


def test_a_login_granted_one_database_s_roles_is_refused_in_another(
    two_databases: tuple[ManagedDatabase, ManagedDatabase],
) -> None:
    """A's relayer, A's owner and A's role names have no authority in B: 42501 each."""
    first, second = two_databases
    relayer_of_first = grant_login(first, Role.EXECUTOR)
    with OutboxStore.connect(grant_login(second, Role.PRODUCER), role=Role.PRODUCER) as store:
        store.enqueue(make_request())
    in_second = as_login(relayer_of_first, second)
    first_owner_in_second = as_login(first.owner_url, second)

    attempts: dict[str, Callable[[], object]] = {
        "claim, as the login": lambda: query_no_role(in_second, CLAIM),
        "claim, as A's executor role": lambda: query_as(
            in_second, first.roles.of(Role.EXECUTOR), CLAIM
        ),
        "claim, as B's executor role": lambda: query_as(
            in_second, second.roles.of(Role.EXECUTOR), CLAIM
        ),
        "store as executor": lambda: claim_with_a_store(in_second),
        "A's owner reads B's queue": lambda: query_no_role(first_owner_in_second, READ_QUEUE),
        "A's owner as B's owner role": lambda: query_as(
            first_owner_in_second, second.roles.owner, READ_QUEUE
        ),
    }
    refused = {}
    for name, attempt in attempts.items():
        with pytest.raises(PermissionDenied) as caught:
            attempt()
        refused[name] = caught.value.sqlstate

    assert refused == dict.fromkeys(attempts, "42501")
    # Positive controls: in A the same login may claim (nothing is due there); B's owner reads.
    assert query_as(relayer_of_first, first.roles.of(Role.EXECUTOR), CLAIM) == []
    assert query_no_role(second.owner_url, READ_QUEUE) == [(1,)]


def test_a_second_database_on_the_seed_names_names_the_grant_and_the_fix(
    outbox_server: Server,
) -> None:
    """The seed roles exist (another login made them): 16+ refuses naming GRANT and the fix."""
    with managed_database(outbox_server, unique_prefix()) as database:
        version = query_no_role(database.owner_url, "SHOW server_version_num")[0][0]
        if int(version) >= 160000:
            with pytest.raises(MigrationError) as refused:
                migrate(database.owner_url)

            assert isinstance(refused.value.__cause__, psycopg.Error)
            assert refused.value.__cause__.diag.sqlstate == "42501"
            assert "GRANT outbox_owner TO CURRENT_USER" in str(refused.value)
            assert "--role-prefix" in str(refused.value)
        else:  # CREATEROLE grants any role on 15: it succeeds, and says the roles are shared
            report = migrate(database.owner_url)

            assert report.roles == RoleNames()
            assert report.shared_with != ()
            admin(
                outbox_server,
                sql.SQL("REVOKE outbox_owner FROM {}").format(sql.Identifier(database.owner)),
            )


def test_the_audit_and_harden_act_as_and_check_the_database_s_own_roles(
    outbox_server: Server,
) -> None:
    """A prefixed database's own roles throughout: no seed name anywhere.

    Its auditor login reads the evidence and the regression count as its auditor role, of
    what its owner role owns; harden checks its roles (a direct grant to its executor keeps
    the hardening 'not applied').
    """
    with managed_database(outbox_server, unique_prefix()) as database:
        migrate_as_proven(database.owner_url, role_prefix=database.roles.prefix)
        roles, auditor = database.roles, grant_login(database, Role.AUDITOR)
        as_superuser = outbox_server.database_url(database.name)
        query_no_role(
            as_superuser,
            f"GRANT EXECUTE ON FUNCTION pg_catalog.{LO_CREATE} TO {roles.of(Role.EXECUTOR)}",
        )

        hardened = harden(as_superuser)
        with CatalogAudit.open(auditor) as audit:
            reader, grants = audit.auditor, audit.grants()
            owners = {function.owner for function in audit.function_definitions()}
            count, hardening = audit.dispatching_count().count, audit.hardening()
        regression = CliRunner().invoke(main, ["regression", "--url", auditor])

        assert reader == roles.of(Role.AUDITOR)
        assert owners == {roles.owner}
        assert ("function", ENQUEUE, roles.of(Role.PRODUCER), "EXECUTE") in {
            (g.object_kind, g.object_name, g.grantee, g.privilege) for g in grants
        }
        assert ("role", roles.of(Role.AUDITOR), auditor_login(database), "MEMBER") in {
            (g.object_kind, g.object_name, g.grantee, g.privilege) for g in grants
        }
        seed_named = {*RoleNames().groups, RoleNames().owner}
        assert [g for g in grants if {g.grantee, g.object_name} & seed_named] == []
        assert (regression.exit_code, count) == (0, 0), regression.output
        assert "regression count: 0" in regression.output
        for state in (hardened, hardening):
            assert not state.applied
            assert [(f.signature, f.roles_may_execute) for f in state.executable] == [
                (LO_CREATE, (roles.of(Role.EXECUTOR),))
            ]


def auditor_login(database: ManagedDatabase) -> str:
    """The login grant_login made for the auditor role."""
    return f"{database.roles.prefix}{Role.AUDITOR.name.lower()}"
