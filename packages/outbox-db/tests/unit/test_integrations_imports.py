"""outbox-db depends on no framework: its integrations import theirs only when called."""

from __future__ import annotations

import subprocess
import sys

FRAMEWORKS = ("django", "fastapi", "sqlalchemy", "starlette")
LOADED = (
    "import sys, outbox_db, outbox_db.integrations.django, outbox_db.integrations.sqlalchemy\n"
    f"print(sorted(m for m in sys.modules if m.partition('.')[0] in {FRAMEWORKS!r}))"
)


def test_importing_outbox_db_and_its_integrations_loads_no_framework() -> None:
    """A service without SQLAlchemy or Django imports all of outbox-db; nothing loads them."""
    result = subprocess.run(
        [sys.executable, "-c", LOADED], capture_output=True, text=True, check=False
    )

    assert (result.returncode, result.stderr, result.stdout) == (0, "", "[]\n")
