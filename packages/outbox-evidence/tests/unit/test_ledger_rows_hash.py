"""verify-ledger's rows hash (checkpoint /2): one hash per checkpoint, the verdict of recomputing.

No database: rows as the database gives them, checkpoints chained and signed with a real key
as the exporter does, the bundle's 16 and 17 written as `outbox-evidence generate` writes
them. Each tampering must be named exactly as recomputing every row names it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs
import pytest
from click.testing import CliRunner

from outbox_db.digests import DigestedRow, row_digest, row_to_json
from outbox_evidence.cli import main
from outbox_evidence.exporter import CheckpointStore
from outbox_evidence.layout import LEDGER_CHECKPOINTS, LEDGER_ROWS, Part
from outbox_evidence.ledger import chain
from outbox_evidence.ledger_bundle import checkpoints_part, grouped_rows, verify_bundle_ledger
from outbox_evidence.signing import SigningKey

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from pathlib import Path

LEDGER = "payment_outbox_attempts"
PER_CHECKPOINT = 10


def attempt(number: int, *, state: str = "DISPATCHED") -> DigestedRow:
    """An attempt row as outbox_row_fields gives it, with the digest the database wrote."""
    fields: list[str | None] = [f"{number:08x}-0000-4000-8000-000000000000", f"ins-{number}"]
    fields.append("bank-a")
    fields += [str(number), f"key-{number}", "rtp", "1", state, "2026-12-05 10:00:00+00", None]
    return DigestedRow(
        source=LEDGER,
        row_key=str(number),
        fields=fields,
        row_no=number + 1,
        digest=row_digest(fields),
        written_by_xact=1000 + number,
    )


@attrs.frozen
class Ledger:
    """A bundle's 16 and 17 over `rows`, sealed PER_CHECKPOINT at a time."""

    bundle: Path
    key: SigningKey
    store: CheckpointStore

    def verify(self, *, recompute: bool = False) -> tuple[list[str], str]:
        """verify-ledger's problems and summary, against the bundle's own checkpoints."""
        return verify_bundle_ledger(self.bundle, None, [self.key.public], recompute=recompute)

    def named(self, *, recompute: bool = False) -> set[str]:
        """What each problem names: `problem: table key` (or the checkpoint)."""
        return {": ".join(p.split(": ")[:2]) for p in self.verify(recompute=recompute)[0]}

    def edit(self, name: str, change: Callable[[str], str]) -> None:
        """Rewrite one of the bundle's files."""
        path = self.bundle / name
        path.write_text(change(path.read_text(encoding="utf-8")), encoding="utf-8")


def sealed(tmp_path: Path, rows: Sequence[DigestedRow]) -> Ledger:
    """`rows` sealed by the exporter's chain in checkpoints of PER_CHECKPOINT, and bundled."""
    key = SigningKey.generate()
    store = CheckpointStore(tmp_path / "checkpoints")
    previous = None
    for start in range(0, len(rows), PER_CHECKPOINT):
        batch = rows[start : start + PER_CHECKPOINT]
        horizon = max(r.written_by_xact or 0 for r in batch) + 1
        previous = key.sign(chain(previous, batch, horizon, "2026-12-05T10:00:00+00:00"))
        store.add(previous, key.public)
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    rows_part = Part.of(LEDGER_ROWS, "\n".join(row_to_json(row) for row in rows))
    for part in (
        grouped_rows(rows_part, store.directory),
        checkpoints_part(store.directory, [key.public]),
    ):
        (bundle / part.name).write_bytes(part.content.encode())
    return Ledger(bundle, key, store)


@pytest.fixture
def ledger(tmp_path: Path) -> Ledger:
    """30 attempts in three signed /2 checkpoints."""
    return sealed(tmp_path, [attempt(n) for n in range(3 * PER_CHECKPOINT)])


def line(number: int) -> str:
    """Attempt `number`'s line in 16."""
    return row_to_json(attempt(number)) + "\n"


def test_an_unchanged_ledger_is_verified_by_one_hash_per_checkpoint(ledger: Ledger) -> None:
    """No row is recomputed; `--recompute` recomputes each and finds nothing either."""
    problems, summary = ledger.verify()
    key = str(ledger.key.public)
    recomputed = CliRunner().invoke(
        main, ["verify-ledger", str(ledger.bundle), "--public-key", key, "--recompute"]
    )

    assert problems == []
    assert "30 verified by their checkpoint's rows hash, 0 recomputed one by one" in summary
    assert recomputed.exit_code == 0, recomputed.output
    assert "0 verified by their checkpoint's rows hash, 30 recomputed" in recomputed.stdout


# A well-formed row with its own digest, claiming a transaction a checkpoint already sealed.
FORGED = attrs.evolve(attempt(99), written_by_xact=1005)


def test_the_exporters_directory_verifies_as_the_bundles_checkpoints_do(ledger: Ledger) -> None:
    """`verify-ledger --checkpoints DIR`: the same rows hashes, read from the directory."""
    problems, summary = verify_bundle_ledger(
        ledger.bundle, ledger.store.directory, [ledger.key.public]
    )

    assert problems == []
    assert "30 verified by their checkpoint's rows hash, 0 recomputed" in summary


TAMPERING: dict[str, tuple[str, Callable[[str], str]]] = {
    "a column rewritten, the group's size kept": (
        LEDGER_ROWS,
        lambda text: text.replace(line(12), line(12).replace('"ins-12"', '"inx-12"')),
    ),
    "a column rewritten to another length": (
        LEDGER_ROWS,
        lambda text: text.replace(line(12), line(12).replace("DISPATCHED", "FAILED")),
    ),
    "a row deleted": (LEDGER_ROWS, lambda text: text.replace(line(3), "")),
    "a row forged into a sealed range": (
        LEDGER_ROWS,
        lambda text: text.replace(line(5), line(5) + row_to_json(FORGED) + "\n"),
    ),
    "a row's place rewritten": (
        LEDGER_ROWS,
        lambda text: text.replace(line(2), line(2).replace('"row_no":3,', '"row_no":33,')),
    ),
    "a row repeated after the groups": (LEDGER_ROWS, lambda text: text + line(7)),
    "a checkpoint's leaves rewritten": (
        LEDGER_CHECKPOINTS,
        lambda text: text.replace(attempt(21).digest.hex(), attempt(22).digest.hex()),  # type: ignore[union-attr]
    ),
}


@pytest.mark.parametrize("tampering", TAMPERING)
def test_each_tampering_is_named_as_recomputing_every_row_names_it(
    ledger: Ledger, tampering: str
) -> None:
    """The group that no longer hashes as signed is recomputed: the same rows are named."""
    ledger.edit(*TAMPERING[tampering])

    named = ledger.named()

    assert named
    assert named == ledger.named(recompute=True)


def test_a_group_line_that_lies_about_its_size_costs_only_the_hash(ledger: Ledger) -> None:
    """Its rows are read one by one instead, and all still verify."""
    ledger.edit(LEDGER_ROWS, lambda text: text.replace("10 rows, ", "10 rows, 1", 1))

    problems, summary = ledger.verify()

    assert problems == []
    assert "20 verified by their checkpoint's rows hash, 10 recomputed one by one" in summary


def test_a_checkpoint_from_an_untrusted_key_is_not_taken_at_its_hash(ledger: Ledger) -> None:
    """Under another key, no group counts as hashed: every row is recomputed and it fails."""
    stranger = SigningKey.generate().public

    problems, summary = verify_bundle_ledger(ledger.bundle, None, [stranger])

    assert "checkpoint 1: signed by untrusted key" in problems[0]
    assert "0 verified by their checkpoint's rows hash" in summary


def test_a_row_unlike_its_digest_when_sealed_leaves_its_checkpoint_without_a_rows_hash(
    tmp_path: Path,
) -> None:
    """The exporter signs no rows hash over such a row, so recomputing names it, as before."""
    rows = [attempt(n) for n in range(2 * PER_CHECKPOINT)]
    rows[4] = attrs.evolve(rows[4], fields=attempt(4, state="FAILED").fields)
    ledger = sealed(tmp_path, rows)

    problems, summary = ledger.verify()

    assert problems == [f"modified: {LEDGER} 4: its columns differ from those sealed"]
    assert "10 verified by their checkpoint's rows hash, 10 recomputed one by one" in summary


def test_a_checkpoint_of_format_1_still_verifies_row_by_row(tmp_path: Path) -> None:
    """Checkpoints written before /2 carry no rows hash: their rows are recomputed, and pass."""
    key = SigningKey.generate()
    store = CheckpointStore(tmp_path / "checkpoints")
    rows = [attempt(n) for n in range(PER_CHECKPOINT)]
    old = attrs.evolve(chain(None, rows, 2000, "2026-01-01T00:00:00+00:00"), rows_sha256=None)
    store.add(key.sign(old), key.public)
    (tmp_path / "bundle").mkdir()
    rows_part = Part.of(LEDGER_ROWS, "\n".join(row_to_json(row) for row in rows))
    for part in (grouped_rows(rows_part, store.directory), checkpoints_part(store.directory, [])):
        (tmp_path / "bundle" / part.name).write_bytes(part.content.encode())

    problems, summary = verify_bundle_ledger(tmp_path / "bundle", None, [key.public])

    assert problems == []
    assert (
        '"format":"outbox-ledger-checkpoint/1"'
        in (store.directory / "checkpoint-00000001.json").read_text()
    )
    assert "0 verified by their checkpoint's rows hash, 10 recomputed one by one" in summary
