"""What may be left as it is: inline waivers with a written reason, and the checked-in scope file.

A waiver is a comment `guardrails: allow OBX005 -- why this is safe here` on the finding's
line or the line above it (several ids may be listed, comma-separated). The scope file
(`guardrails-scope.toml` at the root) lists the paths that must contain what some rules
forbid, each with its rule ids and reason. Nothing else is exempt.
"""

from __future__ import annotations

import fnmatch
import io
import re
import tokenize
import tomllib
from typing import TYPE_CHECKING, Final

import pglast

from outbox_guardrails.model import Exemption, Finding, Waiver

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence
    from pathlib import Path

    from outbox_guardrails.sources import SourceFile

__all__ = [
    "SCOPE_FILE",
    "find_waivers",
    "is_exempt",
    "is_waived",
    "load_scope",
    "malformed_waivers",
]

SCOPE_FILE: Final = "guardrails-scope.toml"
_WAIVER: Final = re.compile(
    r"guardrails:\s*allow\s+(?P<ids>OBX\d{3}(?:\s*,\s*OBX\d{3})*)\s*(?:--\s*(?P<reason>.*\S))?"
)
_MENTION: Final = re.compile(r"guardrails:\s*allow\b")
# Comments in other files: HTML comments in Markdown/reST, '#' comments in config files.
_MARKUP_COMMENT: Final = re.compile(r"<!--(.*?)-->")
_HASH_COMMENT: Final = re.compile(r"#(.*)$")


def load_scope(root: Path) -> list[Exemption]:
    """The scope file's exemptions; none when the file is absent."""
    path = root / SCOPE_FILE
    if not path.exists():
        return []
    entries = tomllib.loads(path.read_text(encoding="utf-8")).get("exempt", [])
    return [
        Exemption(path=entry["path"], rules=tuple(entry["rules"]), reason=entry["reason"].strip())
        for entry in entries
    ]


def find_waivers(source: SourceFile) -> list[Waiver]:
    """Every well-formed waiver in the comments of `source`."""
    return [
        Waiver(path=source.path, line=line, rule_id=rule_id.strip(), reason=match["reason"])
        for line, match in _waiver_comments(source)
        if match["reason"]
        for rule_id in match["ids"].split(",")
    ]


def malformed_waivers(source: SourceFile) -> Iterator[tuple[int, str]]:
    """(line, comment) of waiver comments without a rule id or a reason: they waive nothing."""
    for line, comment in _comments(source):
        if _MENTION.search(comment):
            match = _WAIVER.search(comment)
            if match is None or not match["reason"]:
                yield line, comment.strip()


def is_waived(finding: Finding, waivers: Sequence[Waiver]) -> Waiver | None:
    """The waiver covering `finding`: same path and rule, on its line or the line above."""
    for waiver in waivers:
        if (
            waiver.path == finding.path
            and waiver.rule_id == finding.rule_id
            and finding.line in (waiver.line, waiver.line + 1)
        ):
            return waiver
    return None


def is_exempt(finding: Finding, scope: Sequence[Exemption]) -> Exemption | None:
    """The scope entry covering `finding`'s path for its rule."""
    for exemption in scope:
        if finding.rule_id in exemption.rules and fnmatch.fnmatchcase(finding.path, exemption.path):
            return exemption
    return None


def _waiver_comments(source: SourceFile) -> Iterator[tuple[int, re.Match[str]]]:
    for line, comment in _comments(source):
        if match := _WAIVER.search(comment):
            yield line, match


def _comments(source: SourceFile) -> Iterator[tuple[int, str]]:
    """(line, text) of each comment: Python's tokenizer, PostgreSQL's scanner, else by syntax."""
    if source.suffix == ".py":
        yield from _python_comments(source.text)
    elif source.suffix == ".sql":
        yield from _sql_comments(source.text)
    else:
        pattern = _MARKUP_COMMENT if source.suffix in {".md", ".rst"} else _HASH_COMMENT
        for line, text in enumerate(source.lines, start=1):
            yield from ((line, match[1]) for match in pattern.finditer(text))


def _python_comments(text: str) -> Iterator[tuple[int, str]]:
    try:
        for token in tokenize.generate_tokens(io.StringIO(text).readline):
            if token.type == tokenize.COMMENT:
                yield token.start[0], token.string
    except (tokenize.TokenError, SyntaxError):
        return


def _sql_comments(text: str) -> Iterator[tuple[int, str]]:
    try:
        tokens = pglast.parser.scan(text)
    except pglast.parser.ParseError:
        return
    for token in tokens:
        if token.name in {"SQL_COMMENT", "C_COMMENT"}:
            yield text.count("\n", 0, token.start) + 1, text[token.start : token.end + 1]
