"""Proof: the database digests every ledger row as written; the verifier names every tampered row.

Each attack runs as outbox_owner on a real database after a signed checkpoint left it: the
trigger disabled and a row rewritten, a column rewritten by ALTER ... USING (no row trigger),
a row deleted, a row forged behind the digest trigger or into a sealed range, a row rewritten
with its digest, the database restored to before a checkpoint. `verify-ledger` reads only the
bundle and the checkpoint directory.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Final, LiteralString

import pytest
from click.testing import CliRunner

from outbox_db import AttemptState, OutboxStore, Outcome, Role
from outbox_db.audit import CatalogAudit
from outbox_db.digests import row_digest
from outbox_db.records import OWNER_ROLE
from outbox_db.testonly import query_as, query_no_role, uncommitted
from outbox_db.testonly.factories import leased_item, make_request
from outbox_evidence.cli import main
from outbox_evidence.exporter import CheckpointStore, run_once
from outbox_evidence.ledger import Problem, findings
from outbox_evidence.signing import SigningKey

if TYPE_CHECKING:
    from pathlib import Path

    from outbox_db.testonly.pytest_plugin import Database, Server

LEDGER: Final = "payment_outbox_attempts"
ORDERING: Final = "outbox_rail_ordering"
APPEND_ONLY: Final = "payment_outbox_attempts_append_only"
SET_ORDERING: Final[LiteralString] = "SELECT public.set_outbox_rail_ordering(%s, %s, %s)"
IBAN: Final = "DE89370400440532013000"  # an account number, never to leave the database


@pytest.fixture
def key() -> SigningKey:
    """The exporter's key for this test."""
    return SigningKey.generate()


@pytest.fixture
def store(tmp_path: Path) -> CheckpointStore:
    """The checkpoint directory: outside the database."""
    return CheckpointStore(tmp_path / "checkpoints")


@pytest.fixture
def ledger(outbox_database: Database) -> list[str]:
    """Three items, each with a terminal attempt, and one ordering switch: the attempt ids."""
    with OutboxStore.connect(outbox_database.url, role=Role.EXECUTOR) as executor:
        for state in (AttemptState.DISPATCHED, AttemptState.FAILED, AttemptState.DISPATCHED):
            item = leased_item(executor)
            executor.complete("worker-1", Outcome(lease=item.lease, state=state, latency_ms=5))
    with OutboxStore.connect(outbox_database.url, role=Role.OPERATOR) as operator:
        operator.set_rail_ordering("rtp", ordered=True, reason="lanes for rtp")
    return [str(row[0]) for row in attempt_ids(outbox_database.url)]


def attempt_ids(url: str) -> list[tuple[object, ...]]:
    """Every attempt id, oldest first."""
    return query_no_role(
        url, "SELECT attempt_id FROM public.payment_outbox_attempts ORDER BY completed_at"
    )


def as_owner(url: str, *statements: LiteralString) -> None:
    """Run `statements` as outbox_owner, each committed."""
    for statement in statements:
        query_as(url, OWNER_ROLE, statement)


def found(url: str, store: CheckpointStore) -> set[tuple[Problem, str, str]]:
    """What the verifier finds in the database's rows against the directory's checkpoints."""
    checkpoints, _ = store.load()
    with CatalogAudit.open(url) as audit:
        rows = audit.ledger_rows()
    return {(f.problem, f.source, f.row_key) for f in findings(rows, checkpoints)}


def one_more_attempt(url: str, state: AttemptState = AttemptState.DISPATCHED) -> None:
    """A new item leased and its terminal attempt recorded."""
    with OutboxStore.connect(url, role=Role.EXECUTOR) as executor:
        item = leased_item(executor)
        executor.complete("worker-1", Outcome(lease=item.lease, state=state))


def bundled(url: str, store: CheckpointStore, bundle: Path, *flags: str) -> None:
    """`outbox-evidence generate` from the database, with the checkpoint directory's."""
    generate = ["generate", "--url", url, "--out", str(bundle), "--checkpoints"]
    CliRunner().invoke(main, [*generate, str(store.directory), *flags])


def sealed(url: str, key: SigningKey, store: CheckpointStore) -> None:
    """One exporter run; it must find nothing and write a checkpoint."""
    report = run_once(url, key, store)
    assert report.problems == ()
    assert report.written is not None


def test_the_database_digests_each_row_as_written_whatever_the_session(
    outbox_database: Database, ledger: list[str]
) -> None:
    """Every ledger, operator-log and ordering row has the digest of its canonical fields.

    A writer's TimeZone and DateStyle do not change the encoding: the times are UTC text.
    """
    query_no_role(
        outbox_database.url,
        "SET LOCAL TimeZone = 'Asia/Kathmandu'; SET LOCAL DateStyle = 'SQL, DMY';"
        " SELECT public.set_outbox_rail_ordering('rtp', false, 'back to one lane')",
    )
    with CatalogAudit.open(outbox_database.url) as audit:
        rows = audit.ledger_rows()

    assert [(r.source, r.digest is not None) for r in rows].count((LEDGER, True)) == len(ledger)
    assert [r.source for r in rows].count(ORDERING) == 2
    assert all(r.fields is not None and r.digest == row_digest(r.fields) for r in rows)
    assert all(r.written_by_xact is not None for r in rows)
    assert [r.row_no for r in rows] == sorted(r.row_no for r in rows if r.row_no is not None)


def test_an_untouched_ledger_verifies_against_its_checkpoints(
    outbox_database: Database, ledger: list[str], key: SigningKey, store: CheckpointStore
) -> None:
    """Checkpoints chain; every row sealed once; nothing found; an idle run writes nothing."""
    sealed(outbox_database.url, key, store)
    one_more_attempt(outbox_database.url)
    sealed(outbox_database.url, key, store)
    idle = run_once(outbox_database.url, key, store)

    checkpoints, _ = store.load()
    assert idle.written is None
    assert idle.problems == ()
    assert [c.number for c in checkpoints] == [1, 2]
    assert checkpoints[1].previous_head == checkpoints[0].head
    assert sum(len(c.leaves) for c in checkpoints) == len(ledger) + 2  # + ordering, + attempt


def test_an_untouched_bundle_is_verified_by_each_checkpoints_rows_hash(
    outbox_database: Database,
    ledger: list[str],
    key: SigningKey,
    store: CheckpointStore,
    tmp_path: Path,
) -> None:
    """The bundle's rows, read as the auditor, are byte for byte the lines each checkpoint signed.

    The exporter reads what it seals through outbox_sealable_digests, the bundle its rows
    through outbox_audit_ledger_rows: every row of both checkpoints verifies by their hashes.
    """
    sealed(outbox_database.url, key, store)
    one_more_attempt(outbox_database.url)
    sealed(outbox_database.url, key, store)
    bundle = tmp_path / "bundle"
    bundled(outbox_database.url, store, bundle)

    checked = CliRunner().invoke(
        main, ["verify-ledger", str(bundle), "--public-key", str(key.public)]
    )

    assert checked.exit_code == 0, checked.output
    rows = len(ledger) + 2  # + the ordering switch, + the last attempt
    assert f"{rows} verified by their checkpoint's rows hash, 0 recomputed" in checked.stdout


ATTACKS: Final = [
    pytest.param(
        (
            f"ALTER TABLE public.payment_outbox_attempts DISABLE TRIGGER {APPEND_ONLY}",
            (
                "UPDATE public.payment_outbox_attempts SET state = 'FAILED',"
                " completed_at = completed_at - interval '1 day' WHERE state = 'DISPATCHED'"
            ),
            f"ALTER TABLE public.payment_outbox_attempts ENABLE TRIGGER {APPEND_ONLY}",
        ),
        Problem.MODIFIED,
        [0, 2],
        id="disable-the-trigger-and-update",
    ),
    pytest.param(
        (
            (
                "ALTER TABLE public.payment_outbox_attempts"
                " ALTER COLUMN rail_reference TYPE text USING 'FORGED'"
            ),
        ),
        Problem.MODIFIED,
        [0, 1, 2],
        id="alter-column-using",
    ),
    pytest.param(
        (
            f"ALTER TABLE public.payment_outbox_attempts DISABLE TRIGGER {APPEND_ONLY}",
            "DELETE FROM public.payment_outbox_attempts WHERE state = 'FAILED'",
            f"ALTER TABLE public.payment_outbox_attempts ENABLE TRIGGER {APPEND_ONLY}",
        ),
        Problem.DELETED,
        [1],
        id="delete-a-row",
    ),
]


@pytest.mark.parametrize(("script", "problem", "victims"), ATTACKS)
def test_the_verifier_names_each_row_the_owner_tampered_with(  # noqa: PLR0913, PLR0917 - fixtures
    outbox_database: Database,
    ledger: list[str],
    key: SigningKey,
    store: CheckpointStore,
    script: tuple[LiteralString, ...],
    problem: Problem,
    victims: list[int],
) -> None:
    """After a checkpoint left the database, each row the owner changed is named, none other."""
    sealed(outbox_database.url, key, store)
    as_owner(outbox_database.url, *script)

    assert found(outbox_database.url, store) == {(problem, LEDGER, ledger[i]) for i in victims}
    assert run_once(outbox_database.url, key, store).problems != ()


@pytest.mark.usefixtures("ledger")
def test_a_row_forged_behind_the_digest_trigger_is_named(
    outbox_database: Database, key: SigningKey, store: CheckpointStore
) -> None:
    """A DISPATCHED attempt inserted with the digest trigger off: no digest, INSERTED."""
    sealed(outbox_database.url, key, store)
    as_owner(
        outbox_database.url,
        "ALTER TABLE public.payment_outbox_attempts DISABLE TRIGGER payment_outbox_attempts_digest",
        "INSERT INTO public.payment_outbox_attempts (attempt_id, outbox_id, instruction_id,"
        " participant_id, sequence_id, idempotency_key, rail_type, payload, attempt_no, state)"
        " VALUES ('00000000-0000-4000-8000-000000000001', gen_random_uuid(), 'forged', 'p',"
        " 1, 'forged-key', 'rtp', '{}', 1, 'DISPATCHED')",
        "ALTER TABLE public.payment_outbox_attempts ENABLE TRIGGER payment_outbox_attempts_digest",
    )

    assert found(outbox_database.url, store) == {
        (Problem.INSERTED, LEDGER, "00000000-0000-4000-8000-000000000001")
    }


@pytest.mark.usefixtures("ledger")
def test_a_row_forged_into_a_sealed_range_is_named(
    outbox_database: Database, key: SigningKey, store: CheckpointStore
) -> None:
    """A forged row with a digest claiming an old transaction: below the horizon, unsealed."""
    sealed(outbox_database.url, key, store)
    (first_xact,) = query_no_role(
        outbox_database.url, "SELECT min(written_by_xact)::text FROM public.outbox_row_digests"
    )[0]
    as_owner(
        outbox_database.url,
        "ALTER TABLE public.payment_outbox_attempts DISABLE TRIGGER payment_outbox_attempts_digest",
        "INSERT INTO public.payment_outbox_attempts (attempt_id, outbox_id, instruction_id,"
        " participant_id, sequence_id, idempotency_key, rail_type, payload, attempt_no, state)"
        " VALUES ('00000000-0000-4000-8000-000000000002', gen_random_uuid(), 'forged', 'p',"
        " 1, 'forged-key', 'rtp', '{}', 1, 'DISPATCHED')",
        "ALTER TABLE public.payment_outbox_attempts ENABLE TRIGGER payment_outbox_attempts_digest",
    )
    query_as(
        outbox_database.url,
        OWNER_ROLE,
        "INSERT INTO public.outbox_row_digests (source, row_key, digest, written_by_xact)"
        " SELECT 'payment_outbox_attempts', a.attempt_id::text,"
        " public.outbox_row_digest(public.outbox_attempt_fields(a)), %s::xid8"
        " FROM public.payment_outbox_attempts AS a WHERE a.instruction_id = 'forged'",
        [first_xact],
    )

    assert found(outbox_database.url, store) == {
        (Problem.INSERTED, LEDGER, "00000000-0000-4000-8000-000000000002")
    }


def test_a_row_rewritten_with_its_digest_is_named(
    outbox_database: Database, ledger: list[str], key: SigningKey, store: CheckpointStore
) -> None:
    """Row and digest rewritten together (both triggers off): the signed leaf still differs."""
    sealed(outbox_database.url, key, store)
    as_owner(
        outbox_database.url,
        f"ALTER TABLE public.payment_outbox_attempts DISABLE TRIGGER {APPEND_ONLY}",
        "ALTER TABLE public.outbox_row_digests DISABLE TRIGGER outbox_row_digests_append_only",
        "UPDATE public.payment_outbox_attempts SET rail_reference = 'forged' WHERE state = 'FAILED'",
        "UPDATE public.outbox_row_digests AS d"
        " SET digest = public.outbox_row_digest(public.outbox_attempt_fields(a))"
        " FROM public.payment_outbox_attempts AS a"
        " WHERE d.row_key = a.attempt_id::text AND a.state = 'FAILED'",
    )

    assert found(outbox_database.url, store) == {(Problem.MODIFIED, LEDGER, ledger[1])}


def test_a_database_restored_to_before_a_checkpoint_is_named(
    outbox_server: Server,
    outbox_database: Database,
    ledger: list[str],
    key: SigningKey,
    store: CheckpointStore,
) -> None:
    """A point-in-time restore to before checkpoint 2 (a clone taken then): its rows DELETED."""
    sealed(outbox_database.url, key, store)
    restored = f"{outbox_database.name}_restored"
    with outbox_server.janitor(restored, template_dbname=outbox_database.name):
        one_more_attempt(outbox_database.url, AttemptState.FAILED)
        sealed(outbox_database.url, key, store)
        (lost,) = set(map(str, (row[0] for row in attempt_ids(outbox_database.url)))) - set(ledger)

        assert found(outbox_server.database_url(restored), store) == {
            (Problem.DELETED, LEDGER, lost)
        }


def test_verify_ledger_names_the_row_from_the_bundle_alone(
    outbox_database: Database,
    ledger: list[str],
    key: SigningKey,
    store: CheckpointStore,
    tmp_path: Path,
) -> None:
    """Generate with --checkpoints, then verify-ledger and verify without the database: exit 1, named.

    The bundle carries each payload by its hash only: no account number leaves the database.
    """
    with OutboxStore.connect(outbox_database.url, role=Role.EXECUTOR) as executor:
        executor.enqueue(make_request(payload={"amount": "1.00", "creditor_iban": IBAN}))
        (item,) = executor.claim("worker-1", batch_size=1, lease_seconds=30)
        executor.complete("worker-1", Outcome(lease=item.lease, state=AttemptState.DISPATCHED))
    sealed(outbox_database.url, key, store)
    as_owner(
        outbox_database.url,
        "ALTER TABLE public.payment_outbox_attempts"
        " ALTER COLUMN error_message TYPE text USING 'FORGED'",
    )
    bundle = tmp_path / "bundle"
    runner = CliRunner()
    bundled(outbox_database.url, store, bundle, "--public-key", str(key.public))

    checked = runner.invoke(main, ["verify-ledger", str(bundle), "--public-key", str(key.public)])
    whole = runner.invoke(main, ["verify", str(bundle)])
    stranger = runner.invoke(
        main, ["verify-ledger", str(bundle), "--public-key", str(SigningKey.generate().public)]
    )

    assert checked.exit_code == 1
    for attempt in ledger:
        assert f"modified: {LEDGER} {attempt}: its columns differ" in checked.stderr
    assert "15_ledger.txt: verdict: FAIL (modified: payment_outbox_attempts" in whole.stderr
    assert stranger.exit_code == 1
    assert "checkpoint 1: signed by untrusted key" in stranger.stderr
    carrying = [path.name for path in bundle.iterdir() if IBAN in path.read_text("utf-8")]
    assert carrying == []


@pytest.mark.usefixtures("ledger")
def test_no_checkpoint_seals_a_row_whose_transaction_is_still_open(
    outbox_database: Database, key: SigningKey, store: CheckpointStore
) -> None:
    """A row written first, committed after a checkpoint, lands in the next one; nothing found.

    Its row number is below rows that committed before the checkpoint: a horizon by row number
    would have sealed past it, and it would read as forged into a sealed range.
    """
    with uncommitted(outbox_database.url, SET_ORDERING, ["slow", True, "first, committed last"]):
        query_no_role(outbox_database.url, SET_ORDERING, ["quick", True, "second, committed"])
        first = run_once(outbox_database.url, key, store)
    second = run_once(outbox_database.url, key, store)
    after = run_once(outbox_database.url, key, store)

    assert first.written is not None
    assert second.written is not None
    first_keys = {(leaf.source, leaf.row_key) for leaf in first.written.leaves}
    second_keys = {(leaf.source, leaf.row_key) for leaf in second.written.leaves}
    assert (ORDERING, "2") not in first_keys  # the open one
    assert (ORDERING, "3") not in first_keys  # above the open one's horizon
    assert {(ORDERING, "2"), (ORDERING, "3")} <= second_keys
    assert first.problems == second.problems == after.problems == ()


def test_concurrent_writers_and_checkpoints_seal_every_row_once(
    outbox_database: Database, key: SigningKey, store: CheckpointStore
) -> None:
    """8 writers, each committing its rows out of row order, across checkpoints: sealed once.

    Each writer writes a row, and before committing it writes and commits another.
    """
    url = outbox_database.url
    errors: list[BaseException] = []

    def write(worker: int) -> None:
        try:
            for n in range(8):
                with uncommitted(url, SET_ORDERING, [f"slow-{worker}", n % 2 == 0, f"n{n}"]):
                    query_no_role(url, SET_ORDERING, [f"quick-{worker}", n % 2 == 0, f"n{n}"])
        except BaseException as error:  # noqa: BLE001 - reported by the test thread
            errors.append(error)

    writers = [threading.Thread(target=write, args=(w,)) for w in range(8)]
    for writer in writers:
        writer.start()
    runs = []
    while any(w.is_alive() for w in writers):
        runs.append(run_once(outbox_database.url, key, store))
    for writer in writers:
        writer.join()
    runs.append(run_once(outbox_database.url, key, store))

    checkpoints, _ = store.load()
    leaves = [(leaf.source, leaf.row_key) for c in checkpoints for leaf in c.leaves]
    assert errors == []
    assert len(checkpoints) >= 2
    assert len(leaves) == len(set(leaves)) == 8 * 8 * 2
    assert [r.problems for r in runs if r.problems] == []
