"""Contention on demand (the queue table locked by a session of its own) and its answer (retry)."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Final, LiteralString, TypeVar

import psycopg

from outbox_db.errors import RetryableConflict, translate

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

T = TypeVar("T")
# A proof's racers conflict a handful of times at most; more is a conflict that never clears.
RETRIES: Final = 20

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


def retried(transaction: Callable[[], T]) -> T:
    """`transaction()`, run again while it raises a serialization failure (40001).

    Under REPEATABLE READ or SERIALIZABLE a racer may get 40001 where READ COMMITTED waits and
    carries on; the outbox's promise is that the retry then gives READ COMMITTED's answer. A
    deadlock (40P01, also RetryableConflict) is raised: proofs that no order deadlocks must
    see it.
    """
    for _ in range(RETRIES):
        try:
            return transaction()
        except RetryableConflict as conflict:
            if conflict.sqlstate != "40001":
                raise
    return transaction()
