"""Raw SQL as the owner or as a named role, each call one transaction, errors typed."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, Final, LiteralString, cast

import psycopg
from psycopg import sql
from psycopg.rows import dict_row
from psycopg.types.string import TextLoader

from outbox_db.errors import translate

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from pathlib import Path
    from uuid import UUID

    from outbox_db.records import Role


# Every row of every outbox table, as JSON, optionally with the transaction that last wrote it
# (xmin): with versions, even a write that leaves the same values shows up as a difference.
_OUTBOX_ROWS: LiteralString = """
SELECT r.tbl, CASE WHEN %(versions)s THEN r.xmin::text END AS version, r.row_json
FROM (
    SELECT 'participant_outbox_sequences' AS tbl, s.xmin, to_jsonb(s)::text AS row_json
    FROM public.participant_outbox_sequences AS s
    UNION ALL
    SELECT 'payment_outbox_pending', p.xmin, to_jsonb(p)::text
    FROM public.payment_outbox_pending AS p
    UNION ALL
    SELECT 'payment_outbox_attempts', a.xmin, to_jsonb(a)::text
    FROM public.payment_outbox_attempts AS a
    UNION ALL
    SELECT 'payment_outbox_settings', st.xmin, to_jsonb(st)::text
    FROM public.payment_outbox_settings AS st
    UNION ALL
    SELECT 'outbox_operator_log', l.xmin, to_jsonb(l)::text
    FROM public.outbox_operator_log AS l
    UNION ALL
    SELECT 'outbox_terminal_outcomes', t.xmin, to_jsonb(t)::text
    FROM public.outbox_terminal_outcomes AS t
    UNION ALL
    SELECT 'outbox_ledger_archives', h.xmin, to_jsonb(h)::text
    FROM public.outbox_ledger_archives AS h
) AS r
ORDER BY 1, 3, 2
"""


def outbox_rows(url: str, *, versions: bool = False) -> list[tuple[Any, ...]]:
    """Every row of the outbox tables, in a stable order, to compare before and after."""
    return _run(url, None, _OUTBOX_ROWS, {"versions": versions})


def expire_lease(url: str, outbox_id: UUID) -> None:
    """Move one lease's expiry into the past, as the owner: time travel without sleeping."""
    _run(url, None, _EXPIRE_LEASE, [outbox_id])


_EXPIRE_LEASE: LiteralString = """
UPDATE public.payment_outbox_pending SET lease_expires_at = now() - interval '1 second'
WHERE outbox_id = %s
"""


def age_ledger(url: str, months: int) -> None:
    """Make the ledger look as if schema 0019 ran `months` months ago, as the owner.

    The legacy partition then ends `months` months back and each month since has its own, so
    a test can put items in a month past retention (`ledger_month` of a pending row) and
    archive it, without waiting for the calendar.
    """
    start = sql.SQL(_AGE_START).format(sql.Literal(months))
    try:
        with psycopg.connect(url, autocommit=True) as connection, connection.transaction():
            (since, owner) = cast("tuple[object, str]", connection.execute(start).fetchone())
            connection.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(owner)))
            for parent, first in _FIRST_PARTITIONS:
                names = {"parent": sql.Identifier(parent), "first": sql.Identifier(first)}
                connection.execute(sql.SQL(_DETACH_FIRST).format(**names))
                attach = sql.SQL(_ATTACH_FIRST).format(**names, since=sql.Literal(since))
                connection.execute(attach)
            connection.execute(_MAKE_MONTHS_SINCE, {"since": since})
    except psycopg.Error as error:
        raise translate(error) from error


_AGE_START: LiteralString = """
SELECT (date_trunc('month', clock_timestamp() AT TIME ZONE 'UTC')
    - make_interval(months => {}))::date,
    (SELECT tableowner FROM pg_catalog.pg_tables
     WHERE schemaname = 'public' AND tablename = 'payment_outbox_attempts')
"""
# The partitions of every month before 0019, of the ledger and of its row digests.
_FIRST_PARTITIONS: Final = (
    ("payment_outbox_attempts", "payment_outbox_attempts_legacy"),
    ("outbox_row_digests", "outbox_row_digests_lifelong"),
)
_DETACH_FIRST: LiteralString = "ALTER TABLE public.{parent} DETACH PARTITION public.{first}"
_ATTACH_FIRST: LiteralString = """
ALTER TABLE public.{parent} ATTACH PARTITION public.{first} FOR VALUES FROM (MINVALUE) TO ({since})
"""
_MAKE_MONTHS_SINCE: LiteralString = """
SELECT public.outbox_make_ledger_partition(m::date)
FROM pg_catalog.generate_series(
    %(since)s::date,
    (date_trunc('month', clock_timestamp() AT TIME ZONE 'UTC') - interval '1 month')::date,
    interval '1 month'
) AS m
"""


def query_no_role(
    url: str,
    statement: LiteralString,
    params: Sequence[object] | Mapping[str, object] | None = None,
) -> list[tuple[Any, ...]]:
    """Run `statement` as the login user (the owner in tests); rows if it returns any."""
    return _run(url, None, statement, params)


def session_login(url: str) -> str:
    """The login role of `url`'s connections: what the database records as who acted."""
    ((name,),) = query_no_role(url, "SELECT session_user::text")
    return str(name)


def db_now(url: str) -> datetime:
    """The database clock (its transaction's now()), read as the owner in a fresh session.

    Read before and after an action, it brackets the timestamps the action's own now() wrote.
    """
    ((now,),) = query_no_role(url, "SELECT pg_catalog.now()")
    if not isinstance(now, datetime):
        msg = f"now() returned {now!r}"
        raise TypeError(msg)
    return now


# Every column of every attempt, in one order that needs no clock: by item, then attempt (the
# attempt_id breaks a tie the DISPATCHING era left: an attempt number recorded twice).
_LEDGER: LiteralString = """
SELECT a.* FROM public.payment_outbox_attempts AS a
WHERE %(outbox_id)s::uuid IS NULL OR a.outbox_id = %(outbox_id)s::uuid
ORDER BY a.outbox_id, a.attempt_no, a.attempt_id
"""


def ledger(url: str, *columns: str, outbox_id: UUID | None = None) -> list[tuple[Any, ...]]:
    """The attempts ledger, read as the owner: a tuple of `columns` per attempt, by item.

    Every column when none are named; only `outbox_id`'s attempts when it is given.
    """
    try:
        with psycopg.connect(url, autocommit=True, row_factory=dict_row) as connection:
            # ledger_month (0019) is a date, '-infinity' for the legacy month: no Python date.
            connection.adapters.register_loader("date", TextLoader)
            rows = connection.execute(_LEDGER, {"outbox_id": outbox_id}).fetchall()
    except psycopg.Error as error:
        raise translate(error) from error
    return [tuple(row[column] for column in columns or row) for row in rows]


def run_sql_file(url: str, path: Path) -> None:
    """Run a committed SQL file (a fixture, a sabotage) as the login user, in one transaction."""
    # Files committed to the repository and reviewed like code: literal by construction.
    query_no_role(url, cast("LiteralString", path.read_text(encoding="utf-8")))  # type: ignore[redundant-cast]


def query_as(
    url: str,
    role: Role | str,
    statement: LiteralString,
    params: Sequence[object] | Mapping[str, object] | None = None,
) -> list[tuple[Any, ...]]:
    """Run `statement` after SET LOCAL ROLE `role`; refusals raise the typed error."""
    return _run(url, str(role), statement, params)


def _run(
    url: str,
    role: str | None,
    statement: LiteralString,
    params: Sequence[object] | Mapping[str, object] | None,
) -> list[tuple[Any, ...]]:
    try:
        with psycopg.connect(url, autocommit=True) as connection, connection.transaction():
            if role is not None:
                connection.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(role)))
            cursor = connection.execute(statement, params)
            return cursor.fetchall() if cursor.description else []
    except psycopg.Error as error:
        raise translate(error) from error
