"""00_README.txt: the guide for an auditor who knows nothing of the project yet."""

from __future__ import annotations

import textwrap
from importlib import resources
from string import Template
from typing import TYPE_CHECKING, Final

from outbox_evidence.layout import CHECKSUMS, FILES, README, Part

if TYPE_CHECKING:
    from collections.abc import Sequence

    from outbox_evidence.manifest import Manifest

__all__ = ["readme_part"]

WIDTH: Final = 92
GUIDE: Final = Template(
    resources.files("outbox_evidence").joinpath("auditor_guide.txt").read_text(encoding="utf-8")
)


def readme_part(
    manifest: Manifest | None, manifest_problem: str | None, parts: Sequence[Part]
) -> Part:
    """The guide with this bundle's files, missing parts, invariants and SQLSTATE map filled in."""
    unknown = [f"  ({manifest_problem})"] if manifest_problem else []
    text = GUIDE.substitute(
        files=_files(),
        missing=_missing(parts),
        invariants="\n".join(_invariants(manifest) if manifest else unknown),
        sqlstates="\n".join(_sqlstates(manifest) if manifest else unknown),
    )
    return Part.of(README, text, [manifest_problem] if manifest_problem else [])


def _files() -> str:
    described = {**FILES, CHECKSUMS: "sha256sum of every other file, sorted by name"}
    del described[README]
    width = max(len(name) for name in described) + 4
    lines: list[str] = []
    for name, description in described.items():
        wrapped = _wrapped(description, " " * width)
        lines += [f"  {name:<{width - 2}}{wrapped[0].lstrip()}", *wrapped[1:]]
    return "\n".join(lines)


def _missing(parts: Sequence[Part]) -> str:
    reasons = [f"    {part.name}: {reason}" for part in parts for reason in part.missing]
    if not reasons:
        return ""
    return "\n  Missing from this bundle (the files say so too):\n" + "\n".join(reasons) + "\n"


def _invariants(manifest: Manifest) -> list[str]:
    lines: list[str] = []
    for invariant in manifest.invariants:
        expects = f"SQLSTATE {invariant.sqlstate}" if invariant.sqlstate else "no SQLSTATE"
        lines += ["", f"  {invariant.id} ({expects})", *_wrapped(invariant.title, "    ")]
        lines += [f"    proof: {node_id}" for node_id in invariant.proofs]
    return lines


def _sqlstates(manifest: Manifest) -> list[str]:
    lines: list[str] = []
    for state in manifest.sqlstates:
        proven = ", ".join(invariant.id for invariant in manifest.expecting(state.code))
        lines += ["", f"  {state.code}", *_wrapped(state.meaning, "    ")]
        lines += _wrapped(f"proven by: {proven or '-'}", "    ")
    return lines


def _wrapped(text: str, indent: str) -> list[str]:
    return textwrap.wrap(
        text,
        WIDTH,
        initial_indent=indent,
        subsequent_indent=indent,
        break_long_words=False,
        break_on_hyphens=False,  # ids like append-only-ledger stay whole
    )
