"""Names that moved to outbox_relayer.testing: still found at their old path, with a warning.

Kept for one release, so code importing the old path keeps working while it moves; the
release after removes the old paths and this module.
"""

from __future__ import annotations

import importlib
import warnings
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Collection

__all__ = ["moved_to"]


def moved_to(new: str, old: str, names: Collection[str]) -> Callable[[str], Any]:
    """A module `__getattr__` for `old` that finds `names` in `new` and warns they moved."""

    def find_moved(name: str) -> Any:  # noqa: ANN401 - whichever object moved
        if name not in names:
            msg = f"module {old!r} has no attribute {name!r}"
            raise AttributeError(msg)
        warnings.warn(
            f"{old}.{name} moved to {new}.{name}; the old path goes in the next release",
            DeprecationWarning,
            stacklevel=2,
        )
        return getattr(importlib.import_module(new), name)

    return find_moved
