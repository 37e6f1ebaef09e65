"""Text helpers that keep the bundle grep-friendly and free of what differs between runs."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["aligned", "display_path", "reason", "scrub"]

# What captured test output holds that differs between two runs of the same proofs.
_VOLATILE: Final = (
    (
        re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2})?"),
        "<time>",
    ),
    (
        re.compile(r"\b[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}\b"),
        "<uuid>",
    ),
    (re.compile(r"\b0x[0-9a-f]{6,}\b", re.IGNORECASE), "<address>"),
    (re.compile(r"\b\d+(?:\.\d+)?\s?(?:ms|s)\b"), "<duration>"),
    (re.compile(r"\b(pid|port)([=: ]+)\d+\b", re.IGNORECASE), r"\1\2<n>"),
    (re.compile(r"(?:127\.0\.0\.1|localhost):\d+"), "<loopback>"),
    (re.compile(r"(?<![\w.])/(?:tmp|var|home|root|run|private)/\S+"), "<path>"),
)


def scrub(text: str, root: Path) -> str:
    """`text` with the checkout's absolute path made relative and volatile tokens masked."""
    text = text.replace(f"{root.resolve()}/", "")
    for pattern, replacement in _VOLATILE:
        text = pattern.sub(replacement, text)
    return text


def aligned(rows: Sequence[Sequence[str]], indent: str = "") -> list[str]:
    """Rows as lines with left-aligned columns two spaces apart (the last column unpadded)."""
    if not rows:
        return []
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    return [
        indent
        + "  ".join([*(cell.ljust(w) for cell, w in zip(row, widths, strict=False)), row[-1]])
        for row in rows
    ]


def reason(error: Exception) -> str:
    """Why reading a file failed, without the path an OSError's text repeats."""
    return str(error.strerror) if isinstance(error, OSError) and error.strerror else str(error)


def display_path(path: Path) -> str:
    """How the bundle names an input file, never by an absolute path (those differ per machine).

    Relative as given; else relative to the working directory; else by its name alone.
    """
    if not path.is_absolute():
        return path.as_posix()
    try:
        return path.relative_to(Path.cwd()).as_posix()
    except ValueError:
        return path.name
