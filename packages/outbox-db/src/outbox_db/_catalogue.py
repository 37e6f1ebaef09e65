"""Loads the named SQL statements from sql/queries.sql once, so Python never builds SQL text."""

from __future__ import annotations

import re
from importlib import resources
from typing import TYPE_CHECKING, Final, LiteralString, cast

if TYPE_CHECKING:
    from collections.abc import Mapping

_NAME: Final = re.compile(r"^-- name: (\w+)\s*$", re.MULTILINE)


def load(text: str) -> Mapping[str, LiteralString]:
    """Split a catalogue into {name: statement}; text before the first name is a preamble."""
    parts = _NAME.split(text)[1:]
    names, bodies = parts[0::2], parts[1::2]
    # The statements come from a file shipped in this package: literal by construction.
    return {
        name: cast("LiteralString", body.strip()) for name, body in zip(names, bodies, strict=True)
    }


QUERIES: Final = load(resources.files("outbox_db").joinpath("sql/queries.sql").read_text())
