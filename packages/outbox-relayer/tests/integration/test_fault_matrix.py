"""The fault matrix's runner, end to end on a small run, so `nox -s faults` never rots.

The same code as `python -m fault_matrix`: real relayer processes against a rail-sim process,
then the delivery audit and the scenario's judgement.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

from fault_matrix.matrix import BY_NAME, run_scenario

if TYPE_CHECKING:
    from pathlib import Path

    from outbox_db.testonly.pytest_plugin import Database

# Every answer 150 ms after its request, no jitter: a lease the rail has acted on stays
# unanswered long enough for the kill to land while the relayer still holds it (with a
# jittered latency near 0 the relayer could record the answer first, and nothing would be
# redelivered), and a 400-item run is still draining when the kill is due.
SLOW_RAIL = ("--latency-ms", "150")


def test_baseline_runs_clean(outbox_database: Database, tmp_path: Path) -> None:
    """No fault: every item ends once, nothing absorbed, no signal moved."""
    result = run_scenario(BY_NAME["baseline"], outbox_database.url, items=300, seed=8, out=tmp_path)

    assert result.problems == ()
    assert (result.items, result.lost, result.double_terminal) == (300, 0, 0)
    assert (result.injected, result.recovered, result.absorbed) == (0, 0, 0)


def test_a_killed_relayer_is_redelivered_under_its_key(
    outbox_database: Database, tmp_path: Path
) -> None:
    """A relayer SIGKILLed holding acted-on leases: its items come back, the rail absorbs the repeats."""
    scenario = attrs.evolve(BY_NAME["sigkill"], latency=SLOW_RAIL)

    result = run_scenario(scenario, outbox_database.url, items=400, seed=8, out=tmp_path)

    assert result.problems == ()
    assert (result.lost, result.double_terminal) == (0, 0)
    assert result.injected == 1
    assert result.absorbed > 0
    assert result.recovered > 0


def test_a_run_that_misses_its_expectation_fails(outbox_database: Database, tmp_path: Path) -> None:
    """The judgement can fail: a fault-free run judged as one that must redeliver."""
    scenario = attrs.evolve(BY_NAME["baseline"], redelivery=True)

    result = run_scenario(scenario, outbox_database.url, items=100, seed=8, out=tmp_path)

    assert not result.passed
    assert result.problems == ("no duplicate absorbed by the rail: the fault caused no redelivery",)


def test_relayers_through_pgbouncer_ride_out_its_restart_and_say_wakeups_are_lost(
    outbox_database: Database, tmp_path: Path
) -> None:
    """Relayer processes through a real PgBouncer, restarted mid-drain: every item ends once.

    Each relayer logs wakeups_lost (transaction pooling drops notifications) and polls.
    """
    result = run_scenario(
        BY_NAME["pgbouncer"], outbox_database.url, items=200, seed=8, out=tmp_path
    )

    assert result.problems == ()
    assert (result.items, result.lost, result.double_terminal) == (200, 0, 0)
    assert result.injected == 1
