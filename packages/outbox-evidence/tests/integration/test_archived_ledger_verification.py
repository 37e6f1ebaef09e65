"""Proofs: archived ledger months are verified with the live ledger, against the same checkpoints.

`outbox-db archive --drop` takes a month's rows out of the database; its file (rows and their
digests) and the archive log (digested, sealed like the ledger) are what remains. The verifier,
given the archive directory, puts the rows back and checks every one against the checkpoints:
an archive altered, cut short or missing is named, as a row altered in the database would be.
"""

from __future__ import annotations

import gzip
import json
from typing import TYPE_CHECKING, Final

import pytest

from outbox_db import AttemptState, OutboxStore, Outcome, Role
from outbox_db.archiving import ArchivePolicy, archive_file_name, archive_ledger
from outbox_db.records import OWNER_ROLE
from outbox_db.testonly import age_ledger, query_as, query_no_role
from outbox_db.testonly.factories import make_request
from outbox_evidence.exporter import CheckpointStore, run_once
from outbox_evidence.signing import SigningKey

if TYPE_CHECKING:
    from pathlib import Path

    from outbox_db.testonly.pytest_plugin import Database

KEEP: Final = 3
ARCHIVED_ITEMS: Final = 3


def relay_all(executor: OutboxStore) -> None:
    """Every due item claimed and DISPATCHED."""
    items = executor.claim("worker-1", batch_size=100, lease_seconds=30)
    executor.complete_batch(
        "worker-1", [Outcome(lease=i.lease, state=AttemptState.DISPATCHED) for i in items]
    )


@pytest.fixture
def exporter(tmp_path: Path) -> tuple[SigningKey, CheckpointStore]:
    """The checkpoint exporter's key and directory."""
    return SigningKey.generate(), CheckpointStore(tmp_path / "checkpoints")


def fill_an_old_month(url: str) -> str:
    """A database six months old, ARCHIVED_ITEMS dispatched five months ago and one this month."""
    age_ledger(url, 6)
    (month,) = query_no_role(
        url,
        "SELECT to_char(date_trunc('month', clock_timestamp() AT TIME ZONE 'UTC')"
        " - interval '5 months', 'YYYY-MM')",
    )[0]
    with OutboxStore.connect(url, role=Role.EXECUTOR) as executor:
        executor.enqueue_many([make_request() for _ in range(ARCHIVED_ITEMS)])
        query_no_role(
            url, "UPDATE public.payment_outbox_pending SET ledger_month = %s::date", [f"{month}-01"]
        )
        relay_all(executor)
        executor.enqueue(make_request())  # this month's: stays in the ledger
        relay_all(executor)
    return str(month)


@pytest.fixture
def sealed_then_archived(
    outbox_database: Database,
    exporter: tuple[SigningKey, CheckpointStore],
    tmp_path: Path,
) -> tuple[str, Path, str]:
    """The ledger sealed by a checkpoint first, then a month archived and dropped."""
    url = outbox_database.url
    month = fill_an_old_month(url)
    key, store = exporter
    sealed = run_once(url, key, store)
    assert (sealed.problems, sealed.unsealed) == ((), 0), "every row sealed before the archive"
    directory = tmp_path / "archive"
    with OutboxStore.connect(url, role=Role.OPERATOR) as operator:
        archive_ledger(operator, directory, ArchivePolicy(keep_months=KEEP, drop=True))
    return url, directory, str(month)


def findings_of(
    url: str, exporter: tuple[SigningKey, CheckpointStore], archive: Path | None
) -> list[str]:
    """One exporter run's problems (it also seals the archive log's new row)."""
    key, store = exporter
    return list(run_once(url, key, store, archive=archive).problems)


def test_archived_rows_verify_against_the_checkpoints_that_sealed_them(
    sealed_then_archived: tuple[str, Path, str], exporter: tuple[SigningKey, CheckpointStore]
) -> None:
    """With the archive: nothing found. Without it: each archive, and each sealed row, named."""
    url, directory, month = sealed_then_archived
    assert findings_of(url, exporter, directory) == []
    missing = findings_of(url, exporter, None)
    assert (
        f"archive {archive_file_name(month)}: not verified (no archive directory given)" in missing
    )
    deleted = [p for p in missing if p.startswith("deleted: payment_outbox_attempts ")]
    assert len(deleted) == ARCHIVED_ITEMS


def test_an_altered_archive_is_named_row_by_row(
    sealed_then_archived: tuple[str, Path, str], exporter: tuple[SigningKey, CheckpointStore]
) -> None:
    """A row rewritten in the file: its SHA-256 is not the one recorded, and the row is named."""
    url, directory, month = sealed_then_archived
    path = directory / archive_file_name(month)
    lines = gzip.decompress(path.read_bytes()).decode().splitlines()
    first = json.loads(lines[0])
    first["fields"][10] = "FAILED"  # the state: DISPATCHED rewritten
    path.write_bytes(gzip.compress("\n".join([json.dumps(first), *lines[1:]]).encode() + b"\n"))

    problems = findings_of(url, exporter, directory)
    assert any("its SHA-256 is not the one recorded" in p for p in problems)
    assert (
        f"modified: payment_outbox_attempts {first['row_key']}: its columns differ from those sealed"
        in problems
    )


def test_a_row_cut_from_an_archive_or_a_missing_archive_is_named(
    sealed_then_archived: tuple[str, Path, str], exporter: tuple[SigningKey, CheckpointStore]
) -> None:
    """A file short of a row: the count and the row; no file: the archive itself."""
    url, directory, month = sealed_then_archived
    path = directory / archive_file_name(month)
    lines = gzip.decompress(path.read_bytes()).decode().splitlines()
    path.write_bytes(gzip.compress(("\n".join(lines[1:]) + "\n").encode()))

    problems = findings_of(url, exporter, directory)
    assert f"archive {path.name}: {ARCHIVED_ITEMS - 1} rows, {ARCHIVED_ITEMS} recorded" in problems
    cut = json.loads(lines[0])["row_key"]
    assert any(p.startswith(f"deleted: payment_outbox_attempts {cut}") for p in problems)

    path.unlink()
    assert f"archive {path.name}: not in {directory}" in findings_of(url, exporter, directory)


def test_an_archive_log_naming_a_path_outside_the_directory_reads_nothing_there(
    sealed_then_archived: tuple[str, Path, str], exporter: tuple[SigningKey, CheckpointStore]
) -> None:
    """A log row the owner forged to name '../secret' is named as such, and nothing is read."""
    url, directory, _ = sealed_then_archived
    (directory.parent / "secret").write_text("not an archive")
    query_as(
        url,
        OWNER_ROLE,
        "INSERT INTO public.outbox_ledger_archives (ledger_month, file_name, row_count, sha256)"
        " VALUES ('2000-01-01', '../secret', 0, repeat('b', 64))",
    )

    problems = findings_of(url, exporter, directory)
    assert problems == ["archive '../secret': not a file name"]


def test_a_month_archived_before_any_checkpoint_sealed_it_is_named(
    outbox_database: Database, exporter: tuple[SigningKey, CheckpointStore], tmp_path: Path
) -> None:
    """Its digests left with it, unsealed: only the operator's log vouches for those rows."""
    url = outbox_database.url
    month = fill_an_old_month(url)
    directory = tmp_path / "archive"
    with OutboxStore.connect(url, role=Role.OPERATOR) as operator:
        archive_ledger(operator, directory, ArchivePolicy(keep_months=KEEP, drop=True))

    problems = findings_of(url, exporter, directory)
    unsealed = [p for p in problems if "before any checkpoint sealed it" in p]
    assert len(unsealed) == ARCHIVED_ITEMS, problems
    assert (directory / archive_file_name(month)).is_file()
