"""retry_serialization_failures: a transaction is run again on 40001 only, and not for ever."""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING

import pytest

from outbox_db import RetryableConflict, retry_serialization_failures
from outbox_db.errors import SERIALIZATION_ATTEMPTS

if TYPE_CHECKING:
    from collections.abc import Callable


def failing(sqlstate: str, times: int) -> tuple[list[int], Callable[[], str]]:
    """A transaction that raises RetryableConflict(`sqlstate`) `times` times, then returns."""
    runs: list[int] = []
    counter = itertools.count(1)

    def transaction() -> str:
        runs.append(next(counter))
        if len(runs) <= times:
            raise RetryableConflict("conflict", sqlstate=sqlstate, constraint=None)
        return "committed"

    return runs, transaction


def test_a_serialization_failure_is_run_again_until_it_commits() -> None:
    """Three 40001s, then the fourth run commits and its result is returned."""
    runs, transaction = failing("40001", 3)
    assert retry_serialization_failures(transaction) == "committed"
    assert runs == [1, 2, 3, 4]


def test_a_deadlock_is_raised_at_once() -> None:
    """40P01 is never retried: a deadlock must be seen."""
    runs, transaction = failing("40P01", 1)
    with pytest.raises(RetryableConflict) as raised:
        retry_serialization_failures(transaction)
    assert (raised.value.sqlstate, runs) == ("40P01", [1])


def test_a_conflict_that_never_clears_is_raised_after_the_last_attempt() -> None:
    """Bounded: the last attempt's 40001 reaches the caller."""
    runs, transaction = failing("40001", SERIALIZATION_ATTEMPTS)
    with pytest.raises(RetryableConflict) as raised:
        retry_serialization_failures(transaction)
    assert (raised.value.sqlstate, len(runs)) == ("40001", SERIALIZATION_ATTEMPTS)


def test_runs_are_paused_at_random_below_a_bound_doubling_to_64_ms(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Racers that failed together must not all run again at once: a pause before each rerun."""
    pauses: list[float] = []
    monkeypatch.setattr("outbox_db.errors.time.sleep", pauses.append)
    runs, transaction = failing("40001", SERIALIZATION_ATTEMPTS)
    with pytest.raises(RetryableConflict):
        retry_serialization_failures(transaction)

    assert len(pauses) == len(runs) - 1
    bounds = [min(0.064, 0.001 * 2**failures) for failures in range(len(pauses))]
    assert all(0 <= pause <= bound for pause, bound in zip(pauses, bounds, strict=True))
    assert len(set(pauses)) == len(pauses), "drawn at random, not a fixed schedule"
