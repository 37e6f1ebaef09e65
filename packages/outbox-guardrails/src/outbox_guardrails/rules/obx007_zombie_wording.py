"""OBX007 zombie-wording: user-facing names say "lease repair", not "zombie".

Anti-pattern: the word "zombie", in any case and inside any name (``ZOMBIE_THRESHOLD_SECONDS``,
``zombie_count``, ``zombieRepair``), where users read it: docs (``.md``, ``.rst``, ``.txt``),
config files (``.toml``, ``.yaml``, ``.yml``, ``.ini``, ``.cfg``: keys, values and their
comments), Python string literals (log messages and labels, metric names, env-var names, CLI
options, docstrings) and the field names of a logging call (``log.info("...",
zombie_count=n)``), and SQL identifiers and string literals. The lease model replaced the
zombie requeue: the old word tells operators the old story and sends them to old runbooks.
Python identifiers and comments and SQL comments are not user-facing and pass. The ledger's
persisted state ``ZOMBIE_REQUEUE`` passes wherever it appears as a whole token; a new name
built on it (``ZOMBIE_REQUEUE_COUNT``) fails.

Best practice: say "lease repair" and use the lease names (``LEASE_SECONDS``,
``LEASE_REPAIR_BATCH_SIZE``, ``repair_requeued_count``); refer to the ledger state only by its
persisted value ``ZOMBIE_REQUEUE``.
"""

from __future__ import annotations

import ast
import re
from itertools import groupby
from typing import TYPE_CHECKING, Final, TypeAlias

import pglast

from outbox_guardrails.model import Rule
from outbox_guardrails.rules._util import finding

if TYPE_CHECKING:
    from collections.abc import Iterator

    from outbox_guardrails.model import Finding
    from outbox_guardrails.sources import SourceFile
    from outbox_guardrails.tree import Tree

RULE: Final = Rule(
    id="OBX007",
    name="zombie-wording",
    summary='No "zombie" in docs, config, log labels, metric or SQL names (ZOMBIE_REQUEUE passes).',
    anti_pattern=(
        "The lease model replaced the zombie requeue; the old word in user-facing names tells "
        "operators the old story and sends them to the wrong runbooks."
    ),
    best_practice=(
        'Say "lease repair" and use the lease names (LEASE_SECONDS, LEASE_REPAIR_BATCH_SIZE, '
        "repair_requeued_count); name the ledger state only by its value ZOMBIE_REQUEUE."
    ),
)
LEDGER_VALUE: Final = "ZOMBIE_REQUEUE"
TEXT_SUFFIXES: Final = frozenset({".md", ".rst", ".txt", ".toml", ".yaml", ".yml", ".ini", ".cfg"})
# Methods whose keyword names become log fields (logging, structlog): their keywords are labels.
LOG_METHODS: Final = frozenset(
    {
        "bind",
        "critical",
        "debug",
        "error",
        "exception",
        "fatal",
        "info",
        "log",
        "msg",
        "new",
        "warn",
        "warning",
    }
)
_WORD: Final = re.compile(r"\w*zombie\w*", re.IGNORECASE)
_SQL_NAMES: Final = frozenset({"IDENT", "UIDENT"})
_SQL_STRINGS: Final = frozenset({"SCONST", "USCONST"})

_Hit: TypeAlias = tuple[int, int, str]  # line, 1-based column, the offending word


def check(tree: Tree) -> Iterator[Finding]:
    """One finding per line that shows the word to users."""
    modules = {module.source.path: module.module for module in tree.python_modules}
    for source in tree.files:
        if source.suffix == ".py":
            hits = (
                _python_hits(source, modules[source.path]) if source.path in modules else iter(())
            )
        elif source.suffix == ".sql":
            hits = _sql_hits(source.text)
        else:
            hits = _text_hits(source.text) if source.suffix in TEXT_SUFFIXES else iter(())
        for line, group in groupby(sorted(set(hits)), key=lambda hit: hit[0]):
            on_line = list(group)
            words = ", ".join(dict.fromkeys(word for _, _, word in on_line))
            yield finding(RULE, source, line, on_line[0][1], f"says {words}")


def _offending(text: str) -> Iterator[re.Match[str]]:
    """The words of `text` built on "zombie", the ledger value excepted."""
    return (match for match in _WORD.finditer(text) if match.group() != LEDGER_VALUE)


def _text_hits(text: str, first_line: int = 1, first_column: int = 1) -> Iterator[_Hit]:
    """Every offending word of plain text that starts at (`first_line`, `first_column`)."""
    for offset, line in enumerate(text.split("\n")):
        for match in _offending(line):
            column = match.start() + (first_column if offset == 0 else 1)
            yield first_line + offset, column, match.group()


def _python_hits(source: SourceFile, module: ast.Module) -> Iterator[_Hit]:
    """String literals (docstrings and f-string parts included) and logging calls' field names."""
    for node in ast.walk(module):
        if (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and any(_offending(node.value))
        ):
            yield _literal_position(source, node, next(_offending(node.value)).group())
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in LOG_METHODS
        ):
            for keyword in node.keywords:
                if keyword.arg and any(_offending(keyword.arg)):
                    yield keyword.lineno, keyword.col_offset + 1, keyword.arg


def _literal_position(source: SourceFile, node: ast.Constant, word: str) -> _Hit:
    """Where `word` of a (possibly multi-line, possibly escaped) literal stands in the source."""
    end = node.end_lineno or node.lineno
    for line in range(node.lineno, end + 1):
        text = source.lines[line - 1] if line <= len(source.lines) else ""
        start = node.col_offset if line == node.lineno else 0
        for match in _offending(text[start:]):
            return line, start + match.start() + 1, match.group()
    return node.lineno, node.col_offset + 1, word


def _sql_hits(text: str, start: int = 0, end: int | None = None) -> Iterator[_Hit]:
    """Identifiers and string literals of the SQL in text[start:end]; not comments.

    A dollar-quoted string is a function or DO body: it is scanned as SQL in turn, so the
    comments inside it pass too.
    """
    end = len(text) if end is None else end
    try:
        tokens = pglast.parser.scan(text[start:end])
    except pglast.parser.ParseError:
        yield from _located(text, start, end)
        return
    for token in tokens:
        first, last = start + token.start, start + token.end + 1
        if token.name in _SQL_STRINGS and text.startswith("$", first):
            tag = text.index("$", first + 1) + 1 - first  # length of $$ or $name$
            yield from _sql_hits(text, first + tag, last - tag)
        elif token.name in _SQL_NAMES | _SQL_STRINGS:
            yield from _located(text, first, last)


def _located(text: str, start: int, end: int) -> Iterator[_Hit]:
    """The offending words of text[start:end], at their lines and columns in `text`."""
    line = text.count("\n", 0, start) + 1
    column = start - text.rfind("\n", 0, start)
    yield from _text_hits(text[start:end], line, column)
