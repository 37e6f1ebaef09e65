"""A rail's send window: the floor until it answers, then twice its bandwidth-delay product."""

from __future__ import annotations

from outbox_relayer.send_window import BUCKET_SECONDS, MEMORY_SECONDS, SendWindow


def answer_evenly(window: SendWindow, answers: int, *, over: float, latency: float) -> float:
    """`answers` answers of `latency` s spread evenly over `over` s from 1000.0; the end.

    Each answer comes in the middle of its share of `over`, away from bucket boundaries.
    """
    for n in range(answers):
        window.answered(latency, 1000.0 + over * (n + 0.5) / answers)
    return 1000.0 + over


def test_a_rail_not_heard_from_gets_the_floor_and_the_cap_bounds_the_floor() -> None:
    """No answer yet: two claims' worth, or the rail's cap if lower."""
    assert SendWindow(floor=200, cap=1024).size(0.0) == 200
    assert SendWindow(floor=200, cap=64).size(0.0) == 64


def test_a_quick_rail_stays_at_the_floor_however_many_answers_it_gives() -> None:
    """5,000 answers a second of 2 ms each: 10 in flight cover it, so the floor holds."""
    window = SendWindow(floor=200, cap=1024)
    end = answer_evenly(window, 5_000, over=1.0, latency=0.002)
    assert window.size(end) == 200


def test_a_full_window_answered_without_queueing_doubles() -> None:
    """400 sends of a 0.5 s rail answered over 0.5 s: 800 a second, so 2 x 800 x 0.5."""
    window = SendWindow(floor=200, cap=10_000)
    end = answer_evenly(window, 400, over=0.5, latency=0.5)
    assert window.size(end) == 800


def test_a_slow_rails_window_reaches_the_cap_after_one_round_trip() -> None:
    """The floor's 200 sends come back together after 2 s: the window opens to the cap."""
    window = SendWindow(floor=200, cap=2_000)
    end = answer_evenly(window, 200, over=BUCKET_SECONDS / 2, latency=2.0)
    assert window.size(end) == 2_000


def test_the_busiest_bucket_and_the_quickest_answer_size_the_window() -> None:
    """A burst and one quick answer among slow ones: the window uses the best of each."""
    window = SendWindow(floor=10, cap=10_000)
    window.answered(0.05, 1000.0)
    answer_evenly(window, 300, over=3.0, latency=0.2)  # 10 per bucket
    for _ in range(40):  # one bucket of 40
        window.answered(0.2, 1003.55)
    assert window.size(1003.6) == round(2 * (40 / BUCKET_SECONDS) * 0.05)


def test_a_rail_that_turned_slow_gets_its_window_once_its_quick_answers_are_forgotten() -> None:
    """Quick answers, then slow ones: the quick ones hold the window down for MEMORY_SECONDS."""
    window = SendWindow(floor=200, cap=5_000)
    end = answer_evenly(window, 1_000, over=BUCKET_SECONDS / 2, latency=0.002)
    slow_at = end + 5.0
    for _ in range(200):
        window.answered(2.0, slow_at)
    assert window.size(slow_at) == 200  # 10,000 a second x 2 ms x 2 = 40: the floor
    assert window.size(end + MEMORY_SECONDS + BUCKET_SECONDS) == 5_000  # 2,000/s x 2 s x 2
    assert window.size(slow_at + MEMORY_SECONDS + BUCKET_SECONDS) == 200  # silent: the floor
