"""Load a committed SQL fixture into a database as its owner: `python load_sql.py URL FILE`."""

from __future__ import annotations

import sys
from pathlib import Path

from outbox_db.testonly import run_sql_file

if __name__ == "__main__":
    url, fixture = sys.argv[1:3]
    run_sql_file(url, Path(fixture))
