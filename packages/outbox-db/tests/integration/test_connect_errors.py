"""Proofs: a connection the server refuses for good is told apart from one that may come back.

A relayer retries DatabaseUnavailable forever, so a wrong database, role or URL must never be
reported as one: it would retry a configuration mistake instead of stopping with its reason.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from psycopg.conninfo import make_conninfo

from outbox_db import ConnectionRejected, DatabaseUnavailable, OutboxStore

if TYPE_CHECKING:
    from pathlib import Path

    from outbox_db.testonly.pytest_plugin import Server


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"dbname": "no_such_database"}, 'database "no_such_database" does not exist'),
        ({"user": "no_such_role"}, 'role "no_such_role" does not exist'),
        ({"port": "not-a-port"}, 'invalid integer value "not-a-port"'),
    ],
    ids=["database", "role", "url"],
)
def test_a_refusal_for_good_is_connection_rejected(
    outbox_server: Server, change: dict[str, str], reason: str
) -> None:
    """No such database or role, or a malformed URL: ConnectionRejected, naming the reason."""
    with pytest.raises(ConnectionRejected) as rejected:
        OutboxStore.connect(make_conninfo(outbox_server.url, **change), timeout=5)

    assert rejected.value.sqlstate is None  # libpq's own failure: no server SQLSTATE
    assert reason in str(rejected.value)
    assert not isinstance(rejected.value, DatabaseUnavailable)


def test_no_server_listening_is_database_unavailable(outbox_server: Server, tmp_path: Path) -> None:
    """A socket directory with no server in it: DatabaseUnavailable, which callers retry."""
    url = make_conninfo(outbox_server.url, host=str(tmp_path), port="5432")

    with pytest.raises(DatabaseUnavailable):
        OutboxStore.connect(url, timeout=5)
