"""Contention on demand: the queue table locked by a session of its own."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any, LiteralString

import psycopg

from outbox_db.errors import translate

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence


# EXCLUSIVE blocks every write of the queue (claims, completions, renewals, repairs: each
# needs ROW SHARE or ROW EXCLUSIVE) while reads (the status view, the ledger) go on.
_LOCK_QUEUE: LiteralString = "LOCK TABLE public.payment_outbox_pending IN EXCLUSIVE MODE"


@contextlib.contextmanager
def queue_locked(url: str) -> Iterator[None]:
    """Hold an EXCLUSIVE lock on the pending table for the block, as the login user.

    Writers of the queue wait for it: their lock_timeout or statement_timeout fires, or
    they carry on when the block ends (the lock goes with the transaction's commit).
    """
    try:
        with psycopg.connect(url) as connection:  # one transaction, committed at the end
            connection.execute(_LOCK_QUEUE)
            yield
    except psycopg.Error as error:
        raise translate(error) from error


@contextlib.contextmanager
def uncommitted(
    url: str, statement: LiteralString, params: Sequence[Any] | None = None
) -> Iterator[None]:
    """Run `statement` as the login user in a transaction left open for the block, then commit.

    What it wrote is in flight for the block's duration: written before, committed after
    whatever the block does.
    """
    try:
        with psycopg.connect(url) as connection:  # one transaction, committed at the end
            connection.execute(statement, params)
            yield
    except psycopg.Error as error:
        raise translate(error) from error
