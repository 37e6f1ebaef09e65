"""Owner access without a role, for tests only: never shipped, refused outside test sessions.

Proofs need what production code must never do: read and write as the schema's owner (to
backdate a lease, plant a legacy row) or send raw SQL as a given role (to show it is refused).
This package is left out of the wheel, refuses to import unless OUTBOX_DB_TESTONLY=1 (set
only by the test sessions), and the guardrails allow importing it only from tests.
"""

from __future__ import annotations

import os

if os.environ.get("OUTBOX_DB_TESTONLY") != "1":
    msg = "outbox_db.testonly is for tests only (the test sessions set OUTBOX_DB_TESTONLY=1)"
    raise ImportError(msg)

from outbox_db.testonly._access import (
    age_ledger,
    db_now,
    expire_lease,
    ledger,
    outbox_rows,
    query_as,
    query_no_role,
    run_sql_file,
    session_login,
)
from outbox_db.testonly._contention import queue_locked, uncommitted
from outbox_db.testonly._waiting import lock_waiters, wait_for, wait_for_lock_waiters

__all__ = [
    "age_ledger",
    "db_now",
    "expire_lease",
    "ledger",
    "lock_waiters",
    "outbox_rows",
    "query_as",
    "query_no_role",
    "queue_locked",
    "run_sql_file",
    "session_login",
    "uncommitted",
    "wait_for",
    "wait_for_lock_waiters",
]
