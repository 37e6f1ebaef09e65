"""The migrator's bookkeeping: file order, and the refusal to run over edited history."""

from __future__ import annotations

import pytest

from outbox_db import MigrationError
from outbox_db.migrate import Migration, _check_history, load_migrations


def test_shipped_files_come_versioned_in_order_then_repeatable() -> None:
    """v1 files apply in name order before the views, which are the only repeatable files."""
    migrations = load_migrations()
    versioned = [m.name for m in migrations if not m.repeatable]

    assert versioned == sorted(versioned)
    assert all(name.startswith("v1/") for name in versioned)
    assert [m.name for m in migrations if m.repeatable] == [
        "views/outbox_status_view.sql",
        "views/outbox_unserved_rails.sql",
    ]
    assert migrations.index(next(m for m in migrations if m.repeatable)) == len(versioned)


def test_an_edited_applied_file_is_refused() -> None:
    """A recorded checksum that no longer matches the shipped file stops the migration."""
    shipped = [Migration(name="v1/0001_a.sql", content=b"SELECT 1;", repeatable=False)]

    with pytest.raises(MigrationError, match=r"v1/0001_a\.sql"):
        _check_history({"v1/0001_a.sql": "0" * 64}, shipped)


def test_a_database_ahead_of_the_package_is_refused() -> None:
    """History naming a file this package does not ship means a newer release migrated it."""
    shipped = [Migration(name="v1/0001_a.sql", content=b"SELECT 1;", repeatable=False)]

    with pytest.raises(MigrationError, match=r"v1/0002_b\.sql"):
        _check_history({"v1/0002_b.sql": "0" * 64}, shipped)


def test_a_changed_repeatable_file_is_allowed() -> None:
    """Views are CREATE OR REPLACE definitions: a changed checksum means re-apply, not refuse."""
    shipped = [
        Migration(
            name="views/v.sql", content=b"CREATE OR REPLACE VIEW v AS SELECT 2;", repeatable=True
        )
    ]

    _check_history({"views/v.sql": "0" * 64}, shipped)
