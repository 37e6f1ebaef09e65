"""Proofs: no role can do what DESIGN section 6 does not grant it; each refusal is 42501.

Every refusal is asserted on its SQLSTATE first; the driver's message (chained as
``__cause__``) then names the refused object, so a refusal of the wrong object (a schema, say)
cannot pass for the right one. Each write refusal also shows that no row changed; the
positive controls are in test_role_grants.py, so a database that refuses everything fails
there.

The role granted nothing (`nobody`) is cluster-wide: it gets a unique name, reaches the SQL
that creates and drops it through a session setting (so every statement stays a literal),
and is dropped with everything it owns after its test.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final, LiteralString

import pytest

from outbox_db import PermissionDenied, Role
from outbox_db.testonly import outbox_rows, query_as, query_no_role
from outbox_db.testonly.boundaries import (
    CALLS,
    ENQUEUE_FUNCTIONS,
    HELPER_CALLS,
    READERS,
    RELATIONS,
    RUNTIME_ROLES,
    VIEWS,
    WRITES,
)
from outbox_db.testonly.pytest_plugin import throwaway_role

if TYPE_CHECKING:
    from collections.abc import Iterator

    from outbox_db.testonly.pytest_plugin import Database, ThrowawayRole

Row = tuple[object, ...]

# A look-alike an attacker would plant next to the outbox functions if it could create in
# public: a caller passing an untyped literal payload could resolve to it instead.
PLANT_OVERLOAD: Final = (
    "CREATE FUNCTION public.enqueue_payment_outbox(text, text, text, text, json)"
    " RETURNS void LANGUAGE sql"
    " AS $$ UPDATE public.payment_outbox_settings SET max_attempts = 1000 $$"
)

# The throwaway role's name arrives as the session setting outbox_proof.role.
CREATE_NOBODY: Final = """
DO $proof$
BEGIN
    EXECUTE pg_catalog.format(
        'CREATE ROLE %I NOLOGIN', pg_catalog.current_setting('outbox_proof.role')
    );
END
$proof$
"""


def driver_message(error: BaseException) -> str:
    """The driver's primary message, chained as ``__cause__``: it names the refused object."""
    diagnostics = getattr(error.__cause__, "diag", None)
    return str(getattr(diagnostics, "message_primary", None) or "")


@pytest.fixture
def nobody(outbox_database: Database) -> Iterator[ThrowawayRole]:
    """A fresh role granted nothing: it holds exactly what PUBLIC holds."""
    with throwaway_role(outbox_database, CREATE_NOBODY) as role:
        memberships = query_no_role(
            role.url,
            "SELECT count(*) FROM pg_catalog.pg_auth_members"
            " WHERE member = pg_catalog.current_setting('outbox_proof.role')::regrole",
        )
        assert memberships == [(0,)]
        yield role


@pytest.mark.parametrize(
    ("role", "table", "statement"),
    [
        pytest.param(role, table, statement, id=f"{role.name.lower()}-{verb}-{table}")
        for role in RUNTIME_ROLES
        for table, verbs in WRITES.items()
        for verb, statement in verbs.items()
    ],
)
def test_runtime_roles_cannot_write_outbox_tables_directly(
    outbox_database: Database, seeded: list[Row], role: Role, table: str, statement: LiteralString
) -> None:
    """No runtime role may INSERT, UPDATE, DELETE or TRUNCATE an outbox table (42501, no change)."""
    with pytest.raises(PermissionDenied) as refused:
        query_as(outbox_database.url, role, statement)

    assert refused.value.sqlstate == "42501"
    assert driver_message(refused.value) == f"permission denied for table {table}"
    assert outbox_rows(outbox_database.url, versions=True) == seeded


@pytest.mark.parametrize(
    ("role", "function", "statement"),
    [
        pytest.param(role, function, statement, id=f"{role.name.lower()}-{function}")
        for role in READERS
        for function, statement in CALLS.items()
    ],
)
def test_readers_cannot_execute_outbox_functions(
    outbox_database: Database,
    seeded: list[Row],
    role: Role,
    function: str,
    statement: LiteralString,
) -> None:
    """symphony_readonly and symphony_auditor cannot execute any outbox function (42501)."""
    with pytest.raises(PermissionDenied) as refused:
        query_as(outbox_database.url, role, statement)

    assert refused.value.sqlstate == "42501"
    assert driver_message(refused.value) == f"permission denied for function {function}"
    assert outbox_rows(outbox_database.url, versions=True) == seeded


@pytest.mark.parametrize(
    ("function", "statement"),
    [
        pytest.param(function, statement, id=function)
        for function, statement in CALLS.items()
        if function not in ENQUEUE_FUNCTIONS
    ],
)
def test_producer_cannot_execute_relayer_functions(
    outbox_database: Database, seeded: list[Row], function: str, statement: LiteralString
) -> None:
    """symphony_producer cannot claim, complete, renew, release or repair (42501, no change)."""
    with pytest.raises(PermissionDenied) as refused:
        query_as(outbox_database.url, Role.PRODUCER, statement)

    assert refused.value.sqlstate == "42501"
    assert driver_message(refused.value) == f"permission denied for function {function}"
    assert outbox_rows(outbox_database.url, versions=True) == seeded


@pytest.mark.usefixtures("seeded")
@pytest.mark.parametrize("relation", sorted(RELATIONS))
def test_producer_cannot_read_outbox_relations(outbox_database: Database, relation: str) -> None:
    """symphony_producer reads no table and not the status view: no other participant's payload."""
    with pytest.raises(PermissionDenied) as refused:
        query_as(outbox_database.url, Role.PRODUCER, RELATIONS[relation])

    assert refused.value.sqlstate == "42501"
    kind = "view" if relation in VIEWS else "table"
    assert driver_message(refused.value) == f"permission denied for {kind} {relation}"


@pytest.mark.usefixtures("seeded")
@pytest.mark.parametrize("role", READERS, ids=lambda role: role.name.lower())
def test_readers_cannot_read_participant_sequences(outbox_database: Database, role: Role) -> None:
    """symphony_readonly and symphony_auditor cannot SELECT participant_outbox_sequences (42501)."""
    with pytest.raises(PermissionDenied) as refused:
        query_as(outbox_database.url, role, RELATIONS["participant_outbox_sequences"])

    assert refused.value.sqlstate == "42501"
    assert driver_message(refused.value) == (
        "permission denied for table participant_outbox_sequences"
    )


@pytest.mark.parametrize(
    ("function", "statement"),
    [pytest.param(name, call, id=name) for name, call in (CALLS | HELPER_CALLS).items()],
)
def test_public_cannot_execute_outbox_functions(
    outbox_database: Database,
    seeded: list[Row],
    nobody: ThrowawayRole,
    function: str,
    statement: LiteralString,
) -> None:
    """A role granted nothing (PUBLIC's privileges only) cannot execute any outbox function."""
    with pytest.raises(PermissionDenied) as refused:
        query_as(outbox_database.url, nobody.name, statement)

    assert refused.value.sqlstate == "42501"
    assert driver_message(refused.value) == f"permission denied for function {function}"
    assert outbox_rows(outbox_database.url, versions=True) == seeded


@pytest.mark.usefixtures("seeded")
@pytest.mark.parametrize(
    ("relation", "statement"),
    [pytest.param(name, query, id=name) for name, query in RELATIONS.items()],
)
def test_public_cannot_read_outbox_relations(
    outbox_database: Database, nobody: ThrowawayRole, relation: str, statement: LiteralString
) -> None:
    """A role granted nothing cannot read any outbox table or the status view (42501)."""
    with pytest.raises(PermissionDenied) as refused:
        query_as(outbox_database.url, nobody.name, statement)

    assert refused.value.sqlstate == "42501"
    kind = "view" if relation in VIEWS else "table"
    assert driver_message(refused.value) == f"permission denied for {kind} {relation}"


@pytest.mark.parametrize("who", ["executor", "readonly", "auditor", "public"])
def test_only_the_owner_creates_objects_in_schema_public(
    outbox_database: Database, nobody: ThrowawayRole, who: str
) -> None:
    """No runtime role, nor PUBLIC, may CREATE in schema public (42501): no look-alike overloads."""
    # Were it allowed, look-alike overloads next to the outbox functions could capture calls
    # (CVE-2018-1058); 0001 revokes CREATE on public from PUBLIC even where PostgreSQL 14 grants it.
    role = nobody.name if who == "public" else Role[who.upper()].value
    with pytest.raises(PermissionDenied) as refused:
        query_as(outbox_database.url, role, PLANT_OVERLOAD)

    assert refused.value.sqlstate == "42501"
    assert driver_message(refused.value) == "permission denied for schema public"
    (public_may_create,) = query_no_role(
        outbox_database.url,
        "SELECT EXISTS (SELECT FROM pg_catalog.pg_namespace AS n,"
        " pg_catalog.aclexplode(coalesce(n.nspacl, pg_catalog.acldefault('n', n.nspowner)))"
        " AS acl WHERE n.nspname = 'public' AND acl.grantee = 0"
        " AND acl.privilege_type = 'CREATE')",
    )
    assert public_may_create == (False,)
