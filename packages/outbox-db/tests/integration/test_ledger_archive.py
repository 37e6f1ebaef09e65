"""Proofs: the ledger over years. Months leave the hot ledger whole, and every invariant stays.

Schema 0019 partitions the attempts by their item's month. A month past retention whose items
are all finished is detached (never DELETEd), written to a reproducible file whose SHA-256 the
database records in its digested archive log, and dropped only on request. One terminal per
item and one item per key hold for the life of the outbox, across the archive boundary,
because their registries are never archived. `age_ledger` makes a fresh database look months
old, so a test can reach a month past retention without the calendar.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from typing import TYPE_CHECKING, Final, LiteralString

import pytest
from click.testing import CliRunner

from outbox_db import (
    AttemptState,
    DatabaseTimeout,
    IdempotencyConflict,
    InvalidInput,
    LedgerMonthMissing,
    LedgerMonthRefused,
    OutboxStore,
    Outcome,
    PermissionDenied,
    Role,
    TerminalAlreadyRecorded,
)
from outbox_db.archiving import (
    ArchivedMonth,
    ArchiveError,
    ArchivePolicy,
    archive_file_name,
    archive_ledger,
    read_archive,
    restore_archive,
    write_archive,
)
from outbox_db.audit import CatalogAudit
from outbox_db.cli import main
from outbox_db.digests import row_digest
from outbox_db.testonly import age_ledger, query_as, query_no_role
from outbox_db.testonly.factories import make_request

if TYPE_CHECKING:
    from pathlib import Path
    from uuid import UUID

    from outbox_db import EnqueueRequest
    from outbox_db.testonly.pytest_plugin import Database

AGE: Final = 6  # the database looks this many months old
KEEP: Final = 3  # months kept in the ledger: those older than three months are archivable
WORKER: Final = "worker-archive"


# As the owner: this month's partitions gone, as on a database no relayer prepared for months.
DROP_THIS_MONTH: Final = """
DO $proof$
DECLARE
    v_month date := date_trunc('month', clock_timestamp() AT TIME ZONE 'UTC')::date;
    v_parent text;
    v_name text;
BEGIN
    FOR v_parent, v_name IN VALUES
        ('payment_outbox_attempts', public.outbox_ledger_partition(v_month)),
        ('outbox_row_digests', public.outbox_ledger_digests_partition(v_month))
    LOOP
        EXECUTE format('ALTER TABLE public.%I DETACH PARTITION public.%I', v_parent, v_name);
        EXECUTE format('DROP TABLE public.%I', v_name);
    END LOOP;
END
$proof$
"""


def month_ago(url: str, months: int) -> str:
    """The month `months` before this one (UTC), as the database counts: 'YYYY-MM'."""
    rows = query_no_role(
        url,
        "SELECT to_char(date_trunc('month', clock_timestamp() AT TIME ZONE 'UTC')"
        " - make_interval(months => %s), 'YYYY-MM')",
        [months],
    )
    return str(rows[0][0])


def move_pending_to(url: str, month: str) -> None:
    """Put every pending item in `month` (as if enqueued then), as the owner."""
    query_no_role(
        url, "UPDATE public.payment_outbox_pending SET ledger_month = %s::date", [f"{month}-01"]
    )


def relay(store: OutboxStore, state: AttemptState) -> list[UUID]:
    """Claim every due item and complete each with `state`: the items."""
    items = store.claim(WORKER, batch_size=100, lease_seconds=30)
    store.complete_batch(WORKER, [Outcome(lease=i.lease, state=state) for i in items])
    return [item.outbox_id for item in items]


def attempts_in_ledger(url: str, outbox_ids: list[UUID]) -> int:
    """How many attempts of `outbox_ids` the (hot) ledger holds."""
    rows = query_no_role(
        url,
        "SELECT count(*) FROM public.payment_outbox_attempts WHERE outbox_id = ANY(%s)",
        [outbox_ids],
    )
    return int(rows[0][0])


@pytest.fixture
def aged(outbox_database: Database) -> str:
    """This test's database, looking AGE months old."""
    age_ledger(outbox_database.url, AGE)
    return outbox_database.url


@pytest.fixture
def old_month(aged: str, outbox_store: OutboxStore) -> tuple[str, list[EnqueueRequest]]:
    """Three items of a month past retention, all DISPATCHED: (month, their requests)."""
    month = month_ago(aged, KEEP + 1)
    requests = [make_request() for _ in range(3)]
    outbox_store.enqueue_many(requests)
    move_pending_to(aged, month)
    relay(outbox_store, AttemptState.DISPATCHED)
    return month, requests


def test_a_month_past_retention_is_archived_and_leaves_the_ledger(
    aged: str,
    old_month: tuple[str, list[EnqueueRequest]],
    outbox_operator: OutboxStore,
    tmp_path: Path,
) -> None:
    """Detached, written with its digests, its SHA-256 recorded; the hot ledger no longer has it."""
    month, _ = old_month
    done = archive_ledger(outbox_operator, tmp_path, ArchivePolicy(keep_months=KEEP))

    archived = {a.month: a for a in done}
    assert set(archived) >= {"legacy", month}
    path = tmp_path / archive_file_name(month)
    assert archived[month].rows == 3
    assert hashlib.sha256(path.read_bytes()).hexdigest() == archived[month].sha256
    rows = read_archive(path)
    assert len(rows) == 3
    assert all(r.fields is not None and row_digest(r.fields) == r.digest for r in rows)
    assert not any("amount" in str(r.fields) for r in rows), "payloads travel as their hash"
    months = {m.ledger_month: m for m in outbox_operator.ledger_months()}
    assert months[month].attached is False
    assert months[month].archive_sha256 == archived[month].sha256
    assert months[month].archive_rows == 3
    assert query_no_role(aged, "SELECT count(*) FROM public.payment_outbox_attempts") == [(0,)]
    # A second run finds nothing left to do, and changes nothing.
    assert archive_ledger(outbox_operator, tmp_path, ArchivePolicy(keep_months=KEEP)) == []


def test_the_same_rows_always_give_the_same_archive_bytes(
    old_month: tuple[str, list[EnqueueRequest]],
    outbox_operator: OutboxStore,
    tmp_path: Path,
) -> None:
    """Reproducible: written twice from the database, the file is the same, byte for byte."""
    month, _ = old_month
    outbox_operator.detach_ledger_month(month, keep_months=KEEP)
    rows = outbox_operator.archived_ledger_rows(month)
    first = write_archive(rows, tmp_path / "first.jsonl.gz")
    again = write_archive(outbox_operator.archived_ledger_rows(month), tmp_path / "again.jsonl.gz")
    assert first == again
    assert (tmp_path / "first.jsonl.gz").read_bytes() == (tmp_path / "again.jsonl.gz").read_bytes()


def test_a_month_with_a_pending_item_stays_until_it_is_finished(
    aged: str, outbox_store: OutboxStore, outbox_operator: OutboxStore, tmp_path: Path
) -> None:
    """P7007 names the pending items; once they end, the next run archives the month."""
    month = month_ago(aged, KEEP + 2)
    outbox_store.enqueue_many([make_request(), make_request()])
    move_pending_to(aged, month)
    (retried, *_) = relay(outbox_store, AttemptState.RETRYABLE)

    with pytest.raises(LedgerMonthRefused) as refused:
        outbox_operator.detach_ledger_month(month, keep_months=KEEP)
    assert refused.value.sqlstate == "P7007"
    assert "2 items" in str(refused.value)
    assert month not in {
        a.month for a in archive_ledger(outbox_operator, tmp_path, ArchivePolicy(keep_months=KEEP))
    }

    relay(outbox_store, AttemptState.DISPATCHED)
    (done,) = [
        a
        for a in archive_ledger(outbox_operator, tmp_path, ArchivePolicy(keep_months=KEEP))
        if a.month == month
    ]
    assert done.rows == 4  # two RETRYABLE, two DISPATCHED: every attempt of the month
    assert attempts_in_ledger(aged, [retried]) == 0


def test_a_month_within_retention_is_refused(aged: str, outbox_operator: OutboxStore) -> None:
    """P7007: the months kept stay, whatever the caller asks; fewer than three cannot be kept."""
    with pytest.raises(LedgerMonthRefused) as refused:
        outbox_operator.detach_ledger_month(month_ago(aged, KEEP - 1), keep_months=KEEP)
    assert refused.value.sqlstate == "P7007"
    with pytest.raises(InvalidInput) as too_few:
        outbox_operator.detach_ledger_month(month_ago(aged, 5), keep_months=2)
    assert too_few.value.sqlstate == "22023"


def test_an_archived_key_is_never_paid_twice(
    old_month: tuple[str, list[EnqueueRequest]],
    outbox_store: OutboxStore,
    outbox_operator: OutboxStore,
    tmp_path: Path,
) -> None:
    """The key registry is never archived: a request under an archived item's key gets P7001."""
    month, requests = old_month
    archive_ledger(outbox_operator, tmp_path, ArchivePolicy(keep_months=KEEP, drop=True))
    assert month not in {
        m.ledger_month for m in outbox_operator.ledger_months() if m.partition_name
    }

    with pytest.raises(IdempotencyConflict) as refused:
        outbox_store.enqueue(requests[0])
    assert refused.value.sqlstate == "P7001"
    assert outbox_store.claim(WORKER, batch_size=10, lease_seconds=30) == []


def test_one_terminal_per_item_holds_across_the_archive(
    aged: str,
    old_month: tuple[str, list[EnqueueRequest]],
    outbox_operator: OutboxStore,
    tmp_path: Path,
) -> None:
    """A second terminal for an archived item, written by the owner: 23505 on the terminal index."""
    month, _ = old_month
    (row,) = read_archive_of(
        archive_ledger(outbox_operator, tmp_path, ArchivePolicy(keep_months=KEEP)), month
    )[:1]
    forged: LiteralString = """
        INSERT INTO public.payment_outbox_attempts (
            outbox_id, instruction_id, participant_id, sequence_id, idempotency_key,
            rail_type, payload, attempt_no, state, worker_id, ledger_month)
        VALUES (%s, 'i', 'p', 1, 'k', 'rtp', '{}', 9, 'FAILED', 'intruder',
            date_trunc('month', clock_timestamp() AT TIME ZONE 'UTC')::date)
    """
    with pytest.raises(TerminalAlreadyRecorded) as refused:
        query_no_role(aged, forged, [row])
    assert refused.value.sqlstate == "23505"
    assert refused.value.constraint == "payment_outbox_attempts_one_terminal_per_outbox"


def read_archive_of(done: list[ArchivedMonth], month: str) -> list[str]:
    """The outbox_ids in `month`'s archive file, from a run's result."""
    (archived,) = [a for a in done if a.month == month]
    return [str(r.fields[2]) for r in read_archive(archived.path) if r.fields is not None]


def test_drop_needs_the_recorded_file(
    old_month: tuple[str, list[EnqueueRequest]],
    outbox_operator: OutboxStore,
    tmp_path: Path,
) -> None:
    """--drop refuses a month whose file is missing or altered; the detached table stays."""
    month, _ = old_month
    archive_ledger(outbox_operator, tmp_path, ArchivePolicy(keep_months=KEEP))
    path = tmp_path / archive_file_name(month)
    path.write_bytes(path.read_bytes() + b"\n")
    with pytest.raises(ArchiveError, match="differs from the archive recorded"):
        archive_ledger(outbox_operator, tmp_path, ArchivePolicy(keep_months=KEEP, drop=True))
    months = {m.ledger_month: m for m in outbox_operator.ledger_months()}
    assert months[month].partition_name is not None


def test_the_drop_is_refused_before_the_archive_is_recorded(
    old_month: tuple[str, list[EnqueueRequest]],
    outbox_operator: OutboxStore,
) -> None:
    """P7007: a detached month leaves the database only once its archive is recorded."""
    month, _ = old_month
    outbox_operator.detach_ledger_month(month, keep_months=KEEP)
    with pytest.raises(LedgerMonthRefused) as refused:
        outbox_operator.drop_archived_ledger_month(month)
    assert refused.value.sqlstate == "P7007"


@pytest.mark.parametrize("role", [Role.EXECUTOR, Role.PRODUCER, Role.READONLY, Role.AUDITOR])
def test_only_the_operator_archives(
    aged: str, old_month: tuple[str, list[EnqueueRequest]], role: Role
) -> None:
    """42501 for the relayer, a producer and the readers: nothing detached."""
    month, _ = old_month
    with (
        OutboxStore.connect(aged, role=role, max_size=1) as store,
        pytest.raises(PermissionDenied) as refused,
    ):
        store.detach_ledger_month(month, keep_months=KEEP)
    assert refused.value.sqlstate == "42501"
    attached = query_no_role(
        aged,
        "SELECT count(*) FROM pg_inherits WHERE inhrelid = to_regclass(%s)",
        [f"public.payment_outbox_attempts_{month.replace('-', '_')}"],
    )
    assert attached == [(1,)]


def test_the_relayers_make_months_ahead_and_an_enqueue_without_its_month_is_refused(
    outbox_database: Database, outbox_store: OutboxStore
) -> None:
    """Missing this month's partition, enqueue gets P7008 and writes nothing; preparing fixes it."""
    url = outbox_database.url
    this_month = f"payment_outbox_attempts_{month_ago(url, 0).replace('-', '_')}"
    query_no_role(url, DROP_THIS_MONTH)

    with pytest.raises(LedgerMonthMissing) as refused:
        outbox_store.enqueue(make_request())
    assert refused.value.sqlstate == "P7008"
    assert query_no_role(url, "SELECT count(*) FROM public.payment_outbox_pending") == [(0,)]

    assert outbox_store.prepare_ledger_months(3) == [this_month]
    assert outbox_store.prepare_ledger_months(3) == []
    outbox_store.enqueue(make_request())


def test_a_busy_ledger_makes_detach_give_up_not_wait(
    aged: str, old_month: tuple[str, list[EnqueueRequest]], outbox_operator: OutboxStore
) -> None:
    """A transaction reading the ledger holds DETACH off: 55P03 after 1 s, nothing detached."""
    import psycopg  # noqa: PLC0415 - the hostile session only

    month, _ = old_month
    with psycopg.connect(aged) as hostile:
        hostile.execute("SELECT count(*) FROM public.payment_outbox_attempts")
        with pytest.raises(DatabaseTimeout) as refused:
            outbox_operator.detach_ledger_month(month, keep_months=KEEP)
    assert refused.value.sqlstate == "55P03"
    assert {m.ledger_month: m.attached for m in outbox_operator.ledger_months()}[month] is True


def test_an_archive_restores_into_a_table_for_the_audit_and_refuses_an_altered_row(
    old_month: tuple[str, list[EnqueueRequest]],
    outbox_operator: OutboxStore,
    outbox_database: Database,
    tmp_path: Path,
) -> None:
    """restore-archive: typed rows, payload by hash, idempotent; an altered row restores nothing."""
    month, requests = old_month
    archive_ledger(outbox_operator, tmp_path, ArchivePolicy(keep_months=KEEP, drop=True))
    path = tmp_path / archive_file_name(month)
    scratch = outbox_database.url  # any database will do: here, the outbox's own

    assert restore_archive(scratch, path) == 3
    assert restore_archive(scratch, path) == 3  # again: the rows already there are kept
    restored = query_no_role(
        scratch,
        "SELECT idempotency_key, state, length(payload_sha256), archive_file"
        " FROM public.outbox_archived_attempts ORDER BY idempotency_key",
    )
    assert restored == sorted((r.idempotency_key, "DISPATCHED", 64, path.name) for r in requests)

    lines = gzip.decompress(path.read_bytes()).decode().splitlines()
    forged = json.loads(lines[0])
    forged["fields"][10] = "FAILED"
    altered = tmp_path / "altered.jsonl.gz"
    altered.write_bytes(gzip.compress("\n".join([json.dumps(forged), *lines[1:]]).encode()))
    with pytest.raises(ArchiveError, match="1 rows do not match the digest"):
        restore_archive(scratch, altered)


def test_the_commands_list_archive_and_restore_months(
    aged: str, old_month: tuple[str, list[EnqueueRequest]], tmp_path: Path
) -> None:
    """outbox-db months, archive --through and restore-archive, as a user runs them."""
    month, _ = old_month
    runner = CliRunner()
    before = month_ago(aged, KEEP + 2)  # due too, but after --through's month: left

    archived = runner.invoke(
        main,
        [
            "archive",
            "--url",
            aged,
            "--dir",
            str(tmp_path),
            "--keep-months",
            str(KEEP),
            "--through",
            before,
            "--drop",
        ],
    )
    assert archived.exit_code == 0, archived.output
    assert f"{before}: detached" in archived.output
    assert f"{month}: detached" not in archived.output

    listed = runner.invoke(main, ["months", "--url", aged, "--json"])
    assert listed.exit_code == 0, listed.output
    months = {m["ledger_month"]: m for m in map(json.loads, listed.output.splitlines())}
    assert months[before]["partition_name"] is None
    assert months[month]["attached"] is True

    refused = runner.invoke(
        main, ["archive", "--url", aged, "--dir", str(tmp_path), "--keep-months", "2"]
    )
    assert refused.exit_code == 2
    assert "--keep-months" in refused.output


# As the operator, in a session whose DateStyle is not ISO (a psql user's, a role's default).
IN_DMY_SESSION_DETACH_LEGACY: Final = """
DO $proof$
BEGIN
    SET LOCAL DateStyle = 'SQL, DMY';
    PERFORM public.outbox_detach_ledger_month('-infinity', 7);
END
$proof$
"""
IN_DMY_SESSION_ARCHIVE: Final = """
DO $proof$
DECLARE
    v_month date := (date_trunc('month', clock_timestamp() AT TIME ZONE 'UTC')
        - interval '4 months')::date;
BEGIN
    SET LOCAL DateStyle = 'SQL, DMY';
    PERFORM public.outbox_detach_ledger_month(v_month, 3);
    PERFORM public.outbox_record_ledger_archive(v_month, 'ledger-dmy.jsonl.gz', repeat('a', 64));
END
$proof$
"""


def test_the_archive_is_the_same_whatever_the_operators_datestyle(
    aged: str,
    old_month: tuple[str, list[EnqueueRequest]],  # noqa: ARG001 - the month archived
) -> None:
    """An operator session in DateStyle 'SQL, DMY': month bounds read right, digests match.

    The legacy month is still refused (its bound is read back, not NULL), and the archive
    log's row, digested in that session, matches its fields read back in an ISO one.
    """
    with pytest.raises(LedgerMonthRefused) as refused:
        query_as(aged, Role.OPERATOR, IN_DMY_SESSION_DETACH_LEGACY)
    assert refused.value.sqlstate == "P7007"
    query_as(aged, Role.OPERATOR, IN_DMY_SESSION_ARCHIVE)

    with CatalogAudit.open(aged) as audit:
        logged = [r for r in audit.ledger_rows() if r.source == "outbox_ledger_archives"]
    assert len(logged) == 1
    assert all(r.fields is not None and row_digest(r.fields) == r.digest for r in logged)
