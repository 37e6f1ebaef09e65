"""Load a committed SQL fixture into a database as its owner: `python load_sql.py URL FILE`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import LiteralString, cast

from outbox_db.testonly import query_no_role

if __name__ == "__main__":
    url, fixture = sys.argv[1:3]
    # A committed fixture, reviewed like code: literal by construction.
    query_no_role(url, cast("LiteralString", Path(fixture).read_text(encoding="utf-8")))  # type: ignore[redundant-cast]
