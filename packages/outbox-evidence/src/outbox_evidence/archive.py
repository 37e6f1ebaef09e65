"""The bundle as one reproducible archive: the same bundle always gives the same bytes.

Entries are sorted, and every field that would record when or by whom the archive was made
(mtimes, owners, permissions, the gzip header's time and file name) is fixed.
"""

from __future__ import annotations

import gzip
import io
import tarfile
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["pack"]

_FILE_MODE: Final = 0o644
_DIRECTORY_MODE: Final = 0o755


def pack(bundle: Path, archive: Path) -> int:
    """Write `bundle` (a directory of files) to `archive` as .tar.gz; returns the file count."""
    files = sorted(path for path in bundle.rglob("*") if path.is_file())
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        tar.addfile(_entry(bundle.name, tarfile.DIRTYPE, _DIRECTORY_MODE, 0))
        for path in files:
            data = path.read_bytes()
            name = f"{bundle.name}/{path.relative_to(bundle).as_posix()}"
            tar.addfile(_entry(name, tarfile.REGTYPE, _FILE_MODE, len(data)), io.BytesIO(data))
    archive.parent.mkdir(parents=True, exist_ok=True)
    with (
        archive.open("wb") as raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as compressed,
    ):
        compressed.write(buffer.getvalue())
    return len(files)


def _entry(name: str, kind: bytes, mode: int, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.size = kind, mode, size
    info.mtime = info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info
