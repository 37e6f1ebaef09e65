"""A rail's send window: the floor, slow start while no queueing shows, never below 2 x BDP."""

from __future__ import annotations

import random

from outbox_relayer.send_window import BUCKET_SECONDS, MEMORY_SECONDS, SAMPLE, SendWindow


def answer_evenly(
    window: SendWindow, answers: int, *, over: float, latency: float, start: float = 1000.0
) -> float:
    """`answers` answers of `latency` s spread evenly over `over` s from `start`; the end.

    Each answer comes in the middle of its share of `over`, away from bucket boundaries.
    """
    for n in range(answers):
        window.answered(latency, start + over * (n + 0.5) / answers)
    return start + over


def test_a_rail_not_heard_from_gets_the_floor_and_the_cap_bounds_the_floor() -> None:
    """No answer yet: two claims' worth, or the rail's cap if lower."""
    assert SendWindow(floor=200, cap=1024).size(0.0) == 200
    assert SendWindow(floor=200, cap=64).size(0.0) == 64


def test_each_answer_without_queueing_grows_the_window_by_one_up_to_the_cap() -> None:
    """300 answers of a steady 10 ms, slowly enough that 2 x BDP stays small: 200 + 300."""
    window = SendWindow(floor=200, cap=1024)
    end = answer_evenly(window, 300, over=3.0, latency=0.010)
    assert window.size(end) == 500
    end = answer_evenly(window, 1000, over=5.0, latency=0.010, start=end)
    assert window.size(end) == 1024


def test_answers_slowing_as_the_window_grows_hold_it_where_it_is() -> None:
    """Quick answers, then a sample whose quickest is past 1.5 x 10 ms + 5 ms: growth stops.

    The window then holds, however many slow answers follow and however long: it never
    shrinks.
    """
    window = SendWindow(floor=200, cap=4096)
    end = answer_evenly(window, SAMPLE, over=1.0, latency=0.010)
    end = answer_evenly(window, SAMPLE, over=1.0, latency=0.025, start=end)
    held = window.size(end)
    assert held == 200 + 2 * SAMPLE - 1  # the slow sample's last answer found the verdict
    end = answer_evenly(window, 1000, over=5.0, latency=0.025, start=end)
    assert window.size(end) == held
    assert window.size(end + 10 * MEMORY_SECONDS) == held


def test_a_rail_whose_latency_varies_is_not_starved() -> None:
    """20 ms plus up to 400 ms at random: most sends wait far longer than the quickest.

    A window sized from the quickest answer alone would stay at the floor (2 x rate x 20 ms)
    while the slow sends held its slots; the quickest of each sample stays near 20 ms, so
    the window grows to the cap.
    """
    draw = random.Random(7)  # noqa: S311 - seeded latencies, not a secret
    window = SendWindow(floor=200, cap=1024)
    now = 1000.0
    for _ in range(2000):
        now += 0.001
        window.answered(0.020 + draw.uniform(0, 0.400), now)
    assert window.size(now) == 1024


def test_a_slow_rails_window_opens_to_the_cap_after_one_round_trip() -> None:
    """The floor's 200 sends come back together after 2 s: 2 x 2,000/s x 2 s is past the cap."""
    window = SendWindow(floor=200, cap=2_000)
    end = answer_evenly(window, 200, over=BUCKET_SECONDS / 2, latency=2.0)
    assert window.size(end) == 2_000


def test_the_bandwidth_delay_bound_uses_the_busiest_bucket_and_the_quickest_answer() -> None:
    """One 50 ms answer, then 400 of 500 ms in one bucket: 2 x 4,000/s x 50 ms.

    Slow start stopped at the second sample (500 ms is queueing next to 50 ms); the bound
    is what sizes the window.
    """
    window = SendWindow(floor=10, cap=10_000)
    window.answered(0.05, 1000.0)
    for _ in range(400):
        window.answered(0.5, 1003.55)
    assert window.size(1003.6) == 400


def test_the_bandwidth_delay_bound_is_forgotten_but_the_grown_window_is_not() -> None:
    """After MEMORY_SECONDS without answers, the bound goes; what slow start grew stays."""
    window = SendWindow(floor=200, cap=5_000)
    end = answer_evenly(window, 500, over=BUCKET_SECONDS / 2, latency=1.0)
    assert window.size(end) == 5_000  # 2 x 10,000/s x 1 s
    assert window.size(end + MEMORY_SECONDS + BUCKET_SECONDS) == 200 + 500
