"""Contention on demand: the queue table locked by a session of its own."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, LiteralString

import psycopg

from outbox_db.errors import translate

if TYPE_CHECKING:
    from collections.abc import Iterator


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
