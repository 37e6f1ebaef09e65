"""The test-only escape hatch refuses to load outside a test session."""

from __future__ import annotations

import os
import subprocess
import sys


def import_in_production(modules: str) -> subprocess.CompletedProcess[str]:
    """`import <modules>` in a fresh interpreter without the test sessions' variable."""
    env = {key: value for key, value in os.environ.items() if key != "OUTBOX_DB_TESTONLY"}
    return subprocess.run(
        [sys.executable, "-c", f"import {modules}"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def test_testonly_import_fails_without_the_test_session_variable() -> None:
    """A production process (no OUTBOX_DB_TESTONLY=1) cannot import outbox_db.testonly."""
    result = import_in_production("outbox_db.testonly")

    assert result.returncode == 1
    assert "ImportError: outbox_db.testonly is for tests only" in result.stderr


def test_production_api_imports_without_the_variable() -> None:
    """The public package itself needs no test variable (control for the refusal above)."""
    result = import_in_production("outbox_db, outbox_db.cli")

    assert (result.returncode, result.stderr) == (0, "")
