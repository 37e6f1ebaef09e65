"""The files of a tree, read once, and what their paths say about them (package, test, script)."""

from __future__ import annotations

import subprocess
from functools import cached_property
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Final

import attrs

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["SourceFile", "list_files", "repository_root"]

DB_PACKAGE: Final = "packages/outbox-db/"
SCANNED_SUFFIXES: Final = frozenset(
    {".py", ".sql", ".md", ".rst", ".txt", ".toml", ".yaml", ".yml", ".cfg", ".ini"}
)
SKIPPED_DIRS: Final = frozenset(
    {
        ".git",
        ".nox",
        ".venv",
        "venv",
        "node_modules",
        "__pycache__",
        "build",
        "dist",
        "reports",
        ".mypy_cache",
        ".ruff_cache",
        ".pytest_cache",
        ".hypothesis",
    }
)
SCRIPT_FILES: Final = frozenset({"noxfile.py", "tasks.py"})
SCRIPT_DIRS: Final = frozenset({"scripts", "benchmarks"})


@attrs.frozen
class SourceFile:
    """One file of the tree, by its POSIX path relative to the scanned root."""

    path: str
    text: str

    @cached_property
    def lines(self) -> list[str]:
        """The file's lines, without line ends; lines[0] is line 1."""
        return self.text.splitlines()

    def line(self, number: int) -> str:
        """Line `number` (1-based), stripped; empty past the end."""
        return self.lines[number - 1].strip() if 0 < number <= len(self.lines) else ""

    @property
    def suffix(self) -> str:
        """The file's extension, lower case, with its dot."""
        return PurePosixPath(self.path).suffix.lower()

    @property
    def in_db_package(self) -> bool:
        """Inside packages/outbox-db, the only code allowed to talk to PostgreSQL."""
        return self.path.startswith(DB_PACKAGE)

    @property
    def is_test(self) -> bool:
        """In a tests/ directory (of any package, or the root), or a conftest."""
        parts = PurePosixPath(self.path).parts
        return "tests" in parts[:-1] or parts[-1] == "conftest.py"

    @property
    def is_script(self) -> bool:
        """A development script: the noxfile, invoke tasks, scripts/ or benchmarks/."""
        parts = PurePosixPath(self.path).parts
        return parts[-1] in SCRIPT_FILES or bool(SCRIPT_DIRS.intersection(parts[:-1]))

    @property
    def under_schema(self) -> bool:
        """A migration or view under the root's schema/ directory."""
        return self.path.startswith("schema/")


def repository_root(path: Path) -> Path:
    """The top of the git checkout holding `path`; outside one, `path` itself (or its folder)."""
    start = path if path.is_dir() else path.parent
    top = _git(start, "rev-parse", "--show-toplevel")
    return Path(top.strip()).resolve() if top is not None else start


def list_files(root: Path) -> list[SourceFile]:
    """The scannable files under `root`, sorted: git's view of the tree when it is a checkout."""
    return [
        SourceFile(path=name, text=(root / name).read_text(encoding="utf-8", errors="replace"))
        for name in sorted(_candidates(root))
        if PurePosixPath(name).suffix.lower() in SCANNED_SUFFIXES and (root / name).is_file()
    ]


def _candidates(root: Path) -> Iterator[str]:
    if repository_root(root) == root.resolve():
        listed = _git(root, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
        if listed is not None:
            yield from (name for name in listed.split("\0") if name and not _skipped(name))
            return
    for path in root.rglob("*"):
        name = path.relative_to(root).as_posix()
        if not _skipped(name) and path.is_file():
            yield name


def _skipped(name: str) -> bool:
    return bool(SKIPPED_DIRS.intersection(PurePosixPath(name).parts[:-1]))


def _git(directory: Path, *args: str) -> str | None:
    """The output of git in `directory`; None outside a checkout or without git."""
    try:
        return subprocess.run(  # noqa: S603 - fixed git subcommands, no shell
            ["git", "-C", str(directory), *args],  # noqa: S607 - git from PATH, like a developer's
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
