"""Typed errors of the outbox boundary, so callers branch on meaning, never on driver details.

Each database error carries the SQLSTATE and constraint name and a message safe to show in
production: it never contains SQL or parameter values. The driver's error stays chained as
``__cause__`` for logs.
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import TYPE_CHECKING, ClassVar, Final, TypeVar

import psycopg

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

T = TypeVar("T")

__all__ = [
    "AppendOnlyViolation",
    "ConnectionRejected",
    "ConstraintViolation",
    "DatabaseTimeout",
    "DatabaseUnavailable",
    "EmbeddedServerError",
    "IdempotencyConflict",
    "InvalidCompletionState",
    "InvalidInput",
    "LeaseLost",
    "LedgerMonthMissing",
    "LedgerMonthRefused",
    "MigrationError",
    "OutboxDatabaseError",
    "OutboxError",
    "PermissionDenied",
    "RedriveRefused",
    "RetryableConflict",
    "TerminalAlreadyRecorded",
    "UnknownItem",
    "retry_serialization_failures",
    "sendable_url",
    "translate",
]

TERMINAL_INDEX: Final = "payment_outbox_attempts_one_terminal_per_outbox"
# The trigger functions that refuse UPDATE, DELETE and TRUNCATE of an append-only table: the
# ledger's (0002) and the one every later append-only table uses (0007, the operator log).
APPEND_ONLY_FUNCTIONS: Final = ("deny_outbox_attempts_mutation", "deny_append_only_mutation")


class OutboxError(Exception):
    """Base of every error this package raises."""


class EmbeddedServerError(OutboxError):
    """The embedded PostgreSQL server could not be found, started or stopped."""


class MigrationError(OutboxError):
    """The schema cannot be migrated safely (an applied file changed, or history is unknown)."""


class OutboxDatabaseError(OutboxError):
    """A database refusal, with its SQLSTATE and constraint name."""

    summary: ClassVar[str] = "the database refused the operation"

    def __init__(self, message: str, *, sqlstate: str | None, constraint: str | None) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate
        self.constraint = constraint


class InvalidInput(OutboxDatabaseError):
    """22023: an argument is out of range or malformed; nothing was written."""

    summary = "invalid argument"


class IdempotencyConflict(OutboxDatabaseError):
    """P7001: the idempotency key was already used with a different payload, rail or participant."""

    summary = "idempotency key already used with a different request"


class LeaseLost(OutboxDatabaseError):
    """P7002: the caller no longer holds the lease (expired, repaired, or wrong token/worker)."""

    summary = "lease not held"


class InvalidCompletionState(OutboxDatabaseError):
    """P7003: completion with a state that is not DISPATCHED, RETRYABLE or FAILED."""

    summary = "not a completion state"


class RedriveRefused(OutboxDatabaseError):
    """P7004: only a FAILED item can be re-driven; this one is pending, leased or DISPATCHED."""

    summary = "only a FAILED item can be re-driven"


class UnknownItem(OutboxDatabaseError):
    """P7005: no outbox item has this outbox_id, pending or in the ledger."""

    summary = "unknown outbox item"


class LedgerMonthRefused(OutboxDatabaseError):
    """P7007: a ledger month cannot be archived so (kept, pending items, not detached...)."""

    summary = "the ledger month cannot be archived now"


class LedgerMonthMissing(OutboxDatabaseError):
    """P7008: the ledger has no partition for this month; nothing was written."""

    summary = "the ledger has no partition for this month"


class TerminalAlreadyRecorded(OutboxDatabaseError):
    """23505 on the terminal index: the item already has its one terminal outcome."""

    summary = "the item already has a terminal outcome"


class AppendOnlyViolation(OutboxDatabaseError):
    """P0001 from an append-only trigger: the attempts ledger or the operator log cannot change."""

    summary = "append-only history cannot be changed"


class PermissionDenied(OutboxDatabaseError):
    """42501: the role's grants forbid the operation."""

    summary = "permission denied"


class ConstraintViolation(OutboxDatabaseError):
    """Class 23: a constraint of the schema refused the row."""

    summary = "constraint violated"


class RetryableConflict(OutboxDatabaseError):
    """40001 or 40P01: a serialization failure or deadlock; retry the whole transaction."""

    summary = "concurrent transactions conflicted; retry the whole transaction"


# How many times in all a transaction is run while it fails with a serialization failure. Each
# failure means another transaction committed, so n racers fail n - 1 times at most; more is
# a conflict that never clears.
SERIALIZATION_ATTEMPTS: Final = 20
_SERIALIZATION_FAILURE: Final = "40001"
# Between runs, a pause drawn at random below a bound that doubles from 1 ms to 64 ms ("full
# jitter"): racers that failed together do not all run again together. Without it, 32 callers
# on one new participant under SERIALIZABLE once had one of them lose all 20 runs.
_FIRST_PAUSE_SECONDS: Final = 0.001
_LONGEST_PAUSE_SECONDS: Final = 0.064


def retry_serialization_failures(transaction: Callable[[], T]) -> T:
    """`transaction()`, run again after a short random pause while it raises 40001.

    Under REPEATABLE READ or SERIALIZABLE, a commit the transaction's snapshot missed (a key,
    a lease, a lane's next item taken meanwhile) is 40001 where READ COMMITTED waits and
    carries on; nothing of the failed run was written, and the outbox's promise is that a run
    in a new transaction gives READ COMMITTED's answer. `transaction` must be the whole
    transaction, begun and committed inside it. A deadlock (40P01, also RetryableConflict) is
    raised at once: no order of the outbox's own statements deadlocks, and one that did must
    be seen. The last attempt's 40001 is raised.
    """
    for failures in range(SERIALIZATION_ATTEMPTS - 1):
        try:
            return transaction()
        except RetryableConflict as conflict:
            _raise_unless_serialization_failure(conflict)
        time.sleep(_pause_seconds(failures))
    return transaction()


async def retry_serialization_failures_async(transaction: Callable[[], Awaitable[T]]) -> T:
    """`retry_serialization_failures` for a transaction run in a coroutine."""
    for failures in range(SERIALIZATION_ATTEMPTS - 1):
        try:
            return await transaction()
        except RetryableConflict as conflict:
            _raise_unless_serialization_failure(conflict)
        await asyncio.sleep(_pause_seconds(failures))
    return await transaction()


def _raise_unless_serialization_failure(conflict: RetryableConflict) -> None:
    if conflict.sqlstate != _SERIALIZATION_FAILURE:
        raise conflict


def _pause_seconds(failures: int) -> float:
    bound = min(_LONGEST_PAUSE_SECONDS, _FIRST_PAUSE_SECONDS * 2**failures)
    return random.uniform(0, bound)  # noqa: S311 - spreading retries apart, not a secret


class DatabaseUnavailable(OutboxDatabaseError):
    """The connection failed or the server is shutting down; the operation may be retried."""

    summary = "database unavailable"


class DatabaseTimeout(DatabaseUnavailable):
    """The server gave up on the operation; nothing of its transaction was kept: retry.

    57014 (statement_timeout, or a cancel), 55P03 (lock_timeout) or 25P03
    (idle_in_transaction_session_timeout, which also ends the session). A DatabaseUnavailable,
    so whatever retries an unreachable database retries this too.
    """

    summary = "the database timed out the operation"


class ConnectionRejected(OutboxDatabaseError):
    """The server refused us (no such database or role, bad password) or the URL is malformed.

    Retrying cannot help: an operator must fix the configuration.
    """

    summary = "database connection rejected"


# Text the driver cannot send (a NUL byte, a lone surrogate) is refused before it leaves, with
# the SQLSTATE PostgreSQL gives such text: character not in repertoire.
UNSENDABLE_TEXT: Final = "22021"
# A payload that is not JSON (NaN, an infinity, a value of no JSON type) is refused before it
# leaves with the SQLSTATE the server gives JSON it cannot read.
UNREADABLE_JSON: Final = "22P02"

_BY_SQLSTATE: Final[dict[str, type[OutboxDatabaseError]]] = {
    "22023": InvalidInput,
    "22003": InvalidInput,  # an integer argument beyond its type
    UNSENDABLE_TEXT: InvalidInput,
    UNREADABLE_JSON: InvalidInput,  # a payload that is not JSON (NaN, Infinity)
    "54001": InvalidInput,  # JSON nested deeper than the server can parse (~100,000 levels)
    "22P05": InvalidInput,  # a payload with a character jsonb cannot hold (\u0000)
    "P7001": IdempotencyConflict,
    "P7002": LeaseLost,
    "P7003": InvalidCompletionState,
    "P7004": RedriveRefused,
    "P7005": UnknownItem,
    "P7007": LedgerMonthRefused,
    "P7008": LedgerMonthMissing,
    "42501": PermissionDenied,
    "40001": RetryableConflict,
    "40P01": RetryableConflict,
    "57014": DatabaseTimeout,
    "55P03": DatabaseTimeout,
    "25P03": DatabaseTimeout,
}
# Our own functions raise these with messages that carry no caller data (a ledger month's name
# and counts at most); anything else gets the summary.
_OWN_MESSAGES: Final = frozenset(
    {"22023", "P7001", "P7002", "P7003", "P7004", "P7005", "P7007", "P7008"}
)
_UNAVAILABLE_PREFIXES: Final = ("08", "57P")
# libpq's own refusals of a configuration: a bad URL, or a certificate that fails verification
# (sslmode=verify-ca/verify-full: a wrong CA, an expired certificate, another host name).
_WRONG_CONFIGURATION: Final = ("connection option", "invalid dsn", "certificate")
# A server's FATAL refusal at connect time that passes by itself; any other is a rejection.
_TRANSIENT_REFUSALS: Final = (
    "starting up",
    "shutting down",
    "in recovery",
    "too many clients",
    "connection slots are reserved",
    "terminating connection",
)


def translate(error: psycopg.Error | UnicodeEncodeError) -> OutboxDatabaseError:
    """The typed error for a driver error; raise it ``from`` the original."""
    if isinstance(error, UnicodeEncodeError) or (
        isinstance(error, psycopg.DataError) and error.diag.sqlstate is None
    ):
        message = "invalid argument: text with a NUL byte or an unencodable character"
        return InvalidInput(
            f"{message} [SQLSTATE {UNSENDABLE_TEXT}]", sqlstate=UNSENDABLE_TEXT, constraint=None
        )
    diag = error.diag
    sqlstate, constraint = diag.sqlstate, diag.constraint_name
    kind = _classify(error, sqlstate, constraint)
    own = sqlstate in _OWN_MESSAGES and diag.column_name is not None
    detail = diag.message_primary if own or kind is AppendOnlyViolation else None
    if kind in (DatabaseUnavailable, ConnectionRejected) and sqlstate is None:
        # libpq's connection failures name host and reason, never a password or a query.
        detail = str(error).strip().splitlines()[0] if str(error).strip() else None
    message = f"{kind.summary}: {detail}" if detail else kind.summary
    if sqlstate is not None:
        message += f" [SQLSTATE {sqlstate}]"
    return kind(message, sqlstate=sqlstate, constraint=constraint)


def sendable_url(url: str) -> str:
    """`url`, or ConnectionRejected if it is not valid UTF-8 (invalid bytes in argv or env).

    The message never quotes the URL: it may hold a password.
    """
    try:
        url.encode()
    except UnicodeEncodeError:
        msg = f"{ConnectionRejected.summary}: the database URL is not valid UTF-8"
        raise ConnectionRejected(msg, sqlstate=None, constraint=None) from None
    return url


def _classify(
    error: psycopg.Error, sqlstate: str | None, constraint: str | None
) -> type[OutboxDatabaseError]:
    if sqlstate in _BY_SQLSTATE:
        return _BY_SQLSTATE[sqlstate]
    if sqlstate == "23505" and constraint == TERMINAL_INDEX:
        return TerminalAlreadyRecorded
    context = error.diag.context or ""
    if sqlstate == "P0001" and any(name in context for name in APPEND_ONLY_FUNCTIONS):
        return AppendOnlyViolation
    if sqlstate is not None and sqlstate.startswith("23"):
        return ConstraintViolation
    if isinstance(error, psycopg.OperationalError):
        return _connection_failure(error, sqlstate)
    return OutboxDatabaseError


def _connection_failure(
    error: psycopg.OperationalError, sqlstate: str | None
) -> type[OutboxDatabaseError]:
    if sqlstate is None:
        return ConnectionRejected if _rejected(str(error)) else DatabaseUnavailable
    if sqlstate.startswith(_UNAVAILABLE_PREFIXES):
        return DatabaseUnavailable
    return OutboxDatabaseError


def _rejected(libpq_message: str) -> bool:
    """Whether libpq's connection failure says the configuration is wrong, not the network."""
    if any(wrong in libpq_message for wrong in _WRONG_CONFIGURATION):
        return True
    _, fatal, refusal = libpq_message.partition("FATAL:")
    return bool(fatal) and not any(reason in refusal for reason in _TRANSIENT_REFUSALS)
