"""Root of every test run: marks the process as a test session and loads the DB fixtures."""

import os

# The test-only escape hatch imports only where this is set: in test sessions, never in production.
os.environ.setdefault("OUTBOX_DB_TESTONLY", "1")

pytest_plugins = ["outbox_db.testonly.pytest_plugin"]
