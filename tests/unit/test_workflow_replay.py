"""The workflow replay reads each step's `if:` as GitHub would, and refuses what it cannot.

A guessed `if:` would replay a workflow GitHub never runs; these pin its reading of the
workflow's own conditions, leg by leg (the replay itself runs in `nox -s workflow_replay`).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import pytest
import yaml

if TYPE_CHECKING:
    from types import ModuleType

ROOT: Final = Path(__file__).parents[2]


@pytest.fixture(scope="module")
def replay() -> ModuleType:
    """tests/workflow/replay.py, loaded from its path (a script, not a package)."""
    spec = importlib.util.spec_from_file_location("replay", ROOT / "tests/workflow/replay.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def steps(replay: ModuleType) -> dict[str, dict[str, Any]]:
    """The gate job's steps by name (or action)."""
    job = yaml.safe_load(replay.WORKFLOW.read_text())["jobs"][replay.JOB]
    return {str(step.get("name") or step.get("uses")): step for step in job["steps"]}


def due(replay: ModuleType, step: dict[str, Any], leg: str, *, failed: bool) -> bool:
    """Whether the replay runs `step` on matrix leg `leg`, after a failure or not."""
    condition = str(step.get("if", "success()"))
    return bool(replay._condition(condition, {"postgres": leg}, failed=failed))  # noqa: SLF001


def test_after_a_failure_only_the_evidence_steps_are_due(
    replay: ModuleType, steps: dict[str, dict[str, Any]]
) -> None:
    """`!cancelled()` and `always()` steps run on; a plain step does not."""
    assert not due(replay, steps["install nox and uv (pinned)"], "16", failed=True)
    assert due(replay, steps["integration"], "16", failed=True)
    assert due(replay, steps["evidence"], "16", failed=True)
    assert due(replay, steps["install nox and uv (pinned)"], "16", failed=False)


def test_the_sarif_goes_up_from_the_15_leg_and_nothing_goes_to_a_release(
    replay: ModuleType, steps: dict[str, dict[str, Any]]
) -> None:
    """`matrix.postgres == '15'` is read per leg; a tag condition is false on a branch push."""
    sarif = steps["guardrail findings to code scanning"]
    release = steps["attach the bundle to the release (kept past the artifact's 14 days)"]

    assert due(replay, sarif, "15", failed=False)
    assert not due(replay, sarif, "18", failed=False)
    assert not due(replay, release, "15", failed=False)


@pytest.mark.parametrize(
    "condition", ["github.event_name == 'push'", "failure()", "matrix.postgres != '15'"]
)
def test_a_condition_it_does_not_know_is_refused(replay: ModuleType, condition: str) -> None:
    """Never guessed: the replay stops, naming the condition."""
    with pytest.raises(SystemExit, match="an `if:` it does not know"):
        replay._condition(condition, {"postgres": "15"}, failed=False)  # noqa: SLF001


def test_a_run_step_gets_its_matrix_value_and_nothing_else(replay: ModuleType) -> None:
    """`${{ matrix.postgres }}` is the leg; a secret or context it cannot know is refused."""
    assert replay._substitute("v=${{ matrix.postgres }}", {"postgres": "17"}) == "v=17"  # noqa: SLF001
    with pytest.raises(SystemExit, match="an expression it does not know"):
        replay._substitute("${{ secrets.TOKEN }}", {"postgres": "17"})  # noqa: SLF001
