"""The packed bundle: reproducible bytes, every file in it, nothing about who packed it when."""

from __future__ import annotations

import os
import tarfile
from typing import TYPE_CHECKING

from outbox_evidence.archive import pack

if TYPE_CHECKING:
    from pathlib import Path


def make_bundle(folder: Path) -> Path:
    """A small bundle directory with files written in unsorted order."""
    bundle = folder / "outbox-evidence"
    bundle.mkdir()
    for name, text in (
        ("SHA256SUMS", "sums\n"),
        ("01_grants.txt", "g\n"),
        ("00_README.txt", "r\n"),
    ):
        (bundle / name).write_text(text)
    return bundle


def test_the_same_bundle_packs_to_the_same_bytes(tmp_path: Path) -> None:
    """Packed twice, with the files' mtimes and the clock changed between: identical archives."""
    bundle = make_bundle(tmp_path)
    first, second = tmp_path / "a.tar.gz", tmp_path / "b.tar.gz"
    pack(bundle, first)
    for path in bundle.iterdir():
        os.utime(path, (1_000_000_000, 1_000_000_000))

    pack(bundle, second)

    assert first.read_bytes() == second.read_bytes()


def test_the_archive_holds_every_file_sorted_with_fixed_metadata(tmp_path: Path) -> None:
    """Entries sorted under the bundle's name, contents intact, mtime 0 and no owner."""
    bundle = make_bundle(tmp_path)
    archive = tmp_path / "bundle.tar.gz"

    assert pack(bundle, archive) == 3

    with tarfile.open(archive) as tar:
        members = tar.getmembers()
        names = [member.name for member in members]
        readme = tar.extractfile("outbox-evidence/00_README.txt")
        assert readme is not None
        assert readme.read() == b"r\n"
    assert names == [
        "outbox-evidence",
        "outbox-evidence/00_README.txt",
        "outbox-evidence/01_grants.txt",
        "outbox-evidence/SHA256SUMS",
    ]
    assert {(m.mtime, m.uid, m.gid, m.uname, m.gname) for m in members} == {(0, 0, 0, "", "")}
