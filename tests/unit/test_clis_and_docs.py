"""Every outbox CLI answers --help, and the docs match them: each command and flag shown exists.

Commands are read from code spans and code blocks of README.md and docs/, and from the
deploy/ files (the systemd unit, the container entrypoint); each is resolved through the
CLI's click groups, and each `--flag` after it must be an option of that command.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Final

import click
import pytest
from click.testing import CliRunner

from outbox_db.cli import main as outbox_db
from outbox_evidence.cli import main as outbox_evidence
from outbox_guardrails.cli import main as outbox_guardrails
from outbox_relayer.cli import main as outbox_relayer

if TYPE_CHECKING:
    from collections.abc import Iterator

CLIS = {
    "outbox-db": outbox_db,
    "outbox-evidence": outbox_evidence,
    "outbox-guardrails": outbox_guardrails,
    "outbox-relayer": outbox_relayer,
}


def walk(command: click.Command, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """The argument path of `command` and of every command below it."""
    yield path
    if isinstance(command, click.Group):
        for name, sub in sorted(command.commands.items()):
            yield from walk(sub, (*path, name))


COMMANDS = [(cli, path) for cli, main in CLIS.items() for path in walk(main)]


def test_the_walk_finds_every_cli_and_their_commands() -> None:
    """The four CLIs with their known commands: a walk that found nothing would prove nothing."""
    found = {" ".join((cli, *path)) for cli, path in COMMANDS}
    expected = {
        "outbox-db migrate",
        "outbox-db embedded up",
        "outbox-relayer run",
        "outbox-relayer rail-sim",
        "outbox-guardrails check",
        "outbox-evidence verify",
    }
    assert expected <= found


@pytest.mark.parametrize(("cli", "path"), COMMANDS, ids=lambda v: " ".join(v) if v else "")
@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_every_command_answers_help(cli: str, path: tuple[str, ...], flag: str) -> None:
    """`<cli> <command...> --help` prints its usage and exits 0, touching nothing."""
    result = CliRunner().invoke(CLIS[cli], [*path, flag], prog_name=cli)

    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"Usage: {' '.join((cli, *path))}")


ROOT: Final = Path(__file__).parents[2]
DOCS: Final = sorted([ROOT / "README.md", *ROOT.glob("docs/*.md")])
DEPLOY: Final = [
    ROOT / "deploy/systemd/outbox-relayer@.service",
    ROOT / "deploy/container/entrypoint.sh",
]
CODE: Final = re.compile(r"```[^\n]*\n(.*?)```|`([^`\n]+)`", re.DOTALL)
COMMAND: Final = re.compile(r"(?<![\w.-])(outbox-(?:db|relayer|guardrails|evidence))(?=[\s`]|$)")
STOP: Final = {"|", "#", "\\", "&&", "&", ";", "(", ")"}


def code_lines(path: Path) -> list[str]:
    """The lines of `path` that hold code: its code spans and blocks, or all of a deploy file."""
    text = path.read_text(encoding="utf-8")
    if path.suffix != ".md":
        return text.splitlines()
    return [line for block, span in CODE.findall(text) for line in (block or span).splitlines()]


def mentions() -> list[tuple[str, str, list[str]]]:
    """(where, cli, the words after it up to the end of the command) for every mention."""
    found = []
    for path in [*DOCS, *DEPLOY]:
        for line in code_lines(path):
            for match in COMMAND.finditer(line):
                words = []
                for word in line[match.end() :].split():
                    if word in STOP or word.startswith(("#", "$", '"$')):
                        break
                    words.append(word.strip("[]()`'\","))
                found.append((path.relative_to(ROOT).as_posix(), match.group(1), words))
    return found


def problems_of(cli: str, words: list[str]) -> list[str]:
    """What in `cli words...` does not exist: an unknown command or flag."""
    command: click.Command = CLIS[cli]
    path = [cli]
    for word in words:
        if isinstance(command, click.Group) and word in command.commands:
            command = command.commands[word]
            path.append(word)
        elif isinstance(command, click.Group) and re.fullmatch(r"[a-z][a-z-]*", word):
            return [f"`{' '.join(path)}` has no command {word!r}"]
        elif word.startswith("--"):
            flag = word.split("=", 1)[0]
            names = {name for p in command.params for name in (*p.opts, *p.secondary_opts)}
            if flag not in names | {"--help"}:
                return [f"`{' '.join(path)}` has no option {flag}"]
    return []


MENTIONS = mentions()


def test_the_docs_show_commands_of_every_cli() -> None:
    """The reader finds each CLI in the docs (and this test has something to check)."""
    assert {cli for _, cli, _ in MENTIONS} == set(CLIS)
    assert len(MENTIONS) > 40


@pytest.mark.parametrize("where", sorted({where for where, _, _ in MENTIONS}))
def test_every_command_and_flag_shown_exists(where: str) -> None:
    """Each `outbox-*` command in the file resolves to a real command, with real flags."""
    problems = [
        problem
        for place, cli, words in MENTIONS
        if place == where
        for problem in problems_of(cli, words)
    ]

    assert problems == []


def test_an_unknown_flag_or_command_is_caught() -> None:
    """The checker itself fails on what does not exist."""
    assert problems_of("outbox-relayer", ["run", "--no-such-flag"]) == [
        "`outbox-relayer run` has no option --no-such-flag"
    ]
    assert problems_of("outbox-db", ["migrat"]) == ["`outbox-db` has no command 'migrat'"]
    assert problems_of("outbox-relayer", ["run", "--no-relay", "--rail", "rtp=noop"]) == []
