"""The SQL catalogues: every statement the package sends is named in one of them."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from outbox_db._catalogue import QUERIES, load
from outbox_db.audit import AUDIT_QUERIES

if TYPE_CHECKING:
    from collections.abc import Mapping

SOURCE = Path(__file__).parents[2] / "src" / "outbox_db"


def test_catalogue_splits_named_blocks_and_drops_the_preamble() -> None:
    """Text before the first name is commentary; each block is trimmed."""
    text = "-- preamble\n-- name: one\nSELECT 1;\n\n-- name: two\nSELECT 2;\n"

    assert dict(load(text)) == {"one": "SELECT 1;", "two": "SELECT 2;"}


@pytest.mark.parametrize(
    ("variable", "catalogue"), [("QUERIES", QUERIES), ("AUDIT_QUERIES", AUDIT_QUERIES)]
)
def test_every_query_the_code_names_exists(variable: str, catalogue: Mapping[str, str]) -> None:
    """A name used in the source that its catalogue lacks would fail only at run time."""
    used = {
        name
        for path in SOURCE.rglob("*.py")
        for name in re.findall(rf'\b{variable}\["(\w+)"\]', path.read_text())
    }

    assert used, "the scan found the package's query uses"
    assert used <= set(catalogue)


def test_store_queries_call_functions_and_never_write_tables() -> None:
    """The runtime statements call outbox functions or read the view; no DML on outbox tables."""
    runtime = {name: text for name, text in QUERIES.items() if not name.startswith("migration")}

    for name, text in runtime.items():
        assert not re.search(r"\b(INSERT|UPDATE|DELETE|TRUNCATE)\b", text, re.IGNORECASE), name
