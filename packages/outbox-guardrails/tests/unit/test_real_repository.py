"""The real repository: clean under ENFORCE_NO_DB_QUERY=1, and each rule catches a violation planted in it.

The tree is copied (git's view of it: tracked and untracked-but-not-ignored files), each
rule's `plant` from its fixture file is written at a plausible place, the check must fail
with that rule, and once the file is removed the copy must be clean again.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from outbox_guardrails import Disposition, check

REPOSITORY = Path(__file__).parents[4]
FIXTURES = Path(__file__).parents[1] / "fixtures"


def plants() -> list[Any]:
    """(rule id, plant) of every fixture file that has one."""
    loaded = [yaml.safe_load(path.read_text()) for path in sorted(FIXTURES.glob("OBX*.yml"))]
    return [
        pytest.param(data["rule"], data["plant"], id=data["rule"])
        for data in loaded
        if "plant" in data
    ]


def errors(root: Path, only: tuple[str, ...] = ()) -> list[tuple[str, str, int]]:
    """(rule, path, line) of every finding that fails the run (of the paths `only`, if given)."""
    report = check(root, enforce=True, only=only)
    return [
        (o.finding.rule_id, o.finding.path, o.finding.line)
        for o in report.outcomes
        if o.disposition is Disposition.ERROR
    ]


@pytest.fixture(scope="module")
def repository_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The repository's files as git sees them, in a scratch directory that is not a checkout."""
    copy = tmp_path_factory.mktemp("repository")
    listed = subprocess.run(
        [
            "git",
            "-C",
            str(REPOSITORY),
            "ls-files",
            "-z",
            "--cached",
            "--others",
            "--exclude-standard",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for name in filter(None, listed.split("\0")):
        source = REPOSITORY / name
        if source.is_file() and not source.is_symlink():
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, copy / name)
    return copy


def test_the_repository_is_clean_when_enforced() -> None:
    """The project's own tree has no failing finding under ENFORCE_NO_DB_QUERY=1."""
    assert errors(REPOSITORY) == []


@pytest.mark.parametrize(("rule_id", "plant"), plants())
def test_a_planted_violation_fails_and_its_removal_passes(
    repository_copy: Path, rule_id: str, plant: dict[str, str]
) -> None:
    """Planting the rule's violation in a copy of the repository fails the check; removing it passes.

    Only the planted path is checked, with the copy's real scope file and layout around it:
    the whole tree's cleanliness is the test above.
    """
    target = repository_copy / plant["path"]
    only = (plant["path"],)
    existed = target.read_text() if target.exists() else None
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(plant["source"])
    try:
        planted = errors(repository_copy, only)
    finally:
        if existed is None:
            target.unlink()
        else:
            target.write_text(existed)

    assert planted, f"{rule_id} did not catch {plant['path']}"
    assert {rule for rule, _, _ in planted} == {rule_id}
    assert errors(repository_copy, only) == []
