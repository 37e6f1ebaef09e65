"""Backoff: full-jitter delays within [0, min(cap, base * 2**(attempt-1))], Retry-After as a floor."""

from __future__ import annotations

import random
import statistics

import pytest

from outbox_relayer.backoff import MAX_RETRY_DELAY_SECONDS, Backoff


def seeded(seed: int = 7, **fields: float) -> Backoff:
    """A backoff whose draws are reproducible."""
    return Backoff(rng=random.Random(seed), **fields)  # noqa: S311 - jitter, not secrecy


def test_defaults_are_one_second_base_and_five_minute_cap() -> None:
    """Without arguments the backoff starts at 1 s and never draws above 300 s."""
    backoff = Backoff()
    assert (backoff.base_seconds, backoff.cap_seconds) == (1, 300)


@pytest.mark.parametrize("attempt", [1, 2, 3, 5, 8, 12, 40])
def test_delays_stay_within_zero_and_the_attempts_ceiling(attempt: int) -> None:
    """Every draw is a whole number of seconds in [0, min(cap, base * 2**(attempt-1))]."""
    backoff = seeded(base_seconds=2, cap_seconds=100)
    ceiling = min(100, 2 * 2 ** (attempt - 1))
    delays = [backoff.delay_seconds(attempt) for _ in range(500)]
    assert all(isinstance(delay, int) for delay in delays)
    assert min(delays) >= 0
    assert max(delays) <= ceiling


def test_the_ceiling_doubles_with_each_attempt_until_the_cap() -> None:
    """Doubling from the base: 1, 2, 4, 8 ... and then the cap, however many attempts follow."""
    backoff = Backoff(base_seconds=1, cap_seconds=60)
    expected = [1, 2, 4, 8, 16, 32, 60, 60, 60]
    assert expected == [backoff.ceiling(attempt) for attempt in range(1, 10)]


def test_a_huge_attempt_number_is_simply_capped() -> None:
    """No overflow: attempt 10,000 draws within the cap like attempt 10."""
    backoff = seeded(cap_seconds=300)
    assert backoff.ceiling(10_000) == 300
    assert 0 <= backoff.delay_seconds(10_000) <= 300


def test_later_attempts_wait_longer_on_average() -> None:
    """Growth: the mean delay of attempt n+1 is about twice that of attempt n, below the cap."""
    backoff = seeded(base_seconds=1, cap_seconds=10_000)
    means = [statistics.fmean(backoff.delay_seconds(n) for _ in range(4000)) for n in (4, 5, 6)]
    assert means[0] < means[1] < means[2]
    assert 1.7 < means[1] / means[0] < 2.3


def test_draws_are_spread_over_the_whole_range() -> None:
    """Full jitter, not equal jitter: draws cover 0..ceiling evenly, with mean near ceiling/2."""
    backoff = seeded(base_seconds=1, cap_seconds=300)
    delays = [backoff.delay_seconds(5) for _ in range(20_000)]  # ceiling 16
    assert set(range(17)) == set(delays)
    assert 7.6 < statistics.fmean(delays) < 8.4
    assert 0.4 < sum(delay <= 8 for delay in delays) / len(delays) < 0.6


def test_the_same_seed_gives_the_same_delays() -> None:
    """Determinism: an injected, seeded random.Random reproduces the sequence exactly."""
    first = seeded(42, base_seconds=1, cap_seconds=300)
    second = seeded(42, base_seconds=1, cap_seconds=300)
    expected = [first.delay_seconds(n) for n in range(1, 20)]
    assert expected == [second.delay_seconds(n) for n in range(1, 20)]


@pytest.mark.parametrize(
    ("retry_after", "expected_floor"),
    [(30.0, 30), (30.2, 31), (0.0, 0), (-5.0, 0), (float("nan"), 0)],
)
def test_retry_after_is_a_floor_rounded_up(retry_after: float, expected_floor: int) -> None:
    """The rail's Retry-After is never undercut; a fraction rounds up; nonsense is ignored."""
    backoff = seeded(base_seconds=1, cap_seconds=1)  # jitter draws only 0 or 1
    delays = [backoff.delay_seconds(1, retry_after) for _ in range(200)]
    assert min(delays) >= expected_floor
    assert max(delays) <= max(expected_floor, 1)


def test_retry_after_may_exceed_the_cap_but_not_the_database_maximum() -> None:
    """A rail asking for an hour gets an hour even with a 5 minute cap; a year becomes 7 days."""
    backoff = seeded(cap_seconds=300)
    assert backoff.delay_seconds(1, retry_after=3600.0) == 3600
    assert backoff.delay_seconds(1, retry_after=365 * 86_400.0) == MAX_RETRY_DELAY_SECONDS
    assert backoff.delay_seconds(1, retry_after=float("inf")) == MAX_RETRY_DELAY_SECONDS


def test_a_draw_below_retry_after_is_lifted_and_one_above_is_kept() -> None:
    """max(jittered, retry_after): the larger of the two wins."""
    backoff = seeded(base_seconds=1000, cap_seconds=1000)
    delays = [backoff.delay_seconds(1, retry_after=500.0) for _ in range(500)]
    assert min(delays) == 500
    assert max(delays) > 900


@pytest.mark.parametrize("attempt", [0, -1])
def test_attempts_are_counted_from_one(attempt: int) -> None:
    """Attempt 0 is a programming error, not a zero delay."""
    with pytest.raises(ValueError, match="1-based"):
        Backoff().delay_seconds(attempt)


@pytest.mark.parametrize(
    ("base", "cap"),
    [
        (0, 10),
        (-1, 10),
        (10, 5),
        (1, MAX_RETRY_DELAY_SECONDS + 1),
        (MAX_RETRY_DELAY_SECONDS + 1, 1),
    ],
)
def test_base_and_cap_must_fit_the_database_range(base: float, cap: float) -> None:
    """The base lies in (0, 604800] and the cap in [base, 604800]."""
    with pytest.raises(ValueError, match=r"seconds|must be"):
        Backoff(base_seconds=base, cap_seconds=cap)
