"""`outbox-db` (and `python -m outbox_db`): the command line, or one line naming its extra.

The command line needs click and rich, the `cli` extra; a service that only enqueues
installs `outbox-db` without them, and importing outbox_db never loads them.
"""

from __future__ import annotations

import importlib.util
import sys
from typing import Final

__all__ = ["main"]

CLI_EXTRA: Final = ("click", "rich")


def main() -> None:
    """Run the command line; without its extra, say which to install and exit 1."""
    if missing := [name for name in CLI_EXTRA if importlib.util.find_spec(name) is None]:
        sys.stderr.write(
            f"outbox-db: the command line needs {' and '.join(missing)}: "
            "pip install 'outbox-db[cli]'\n"
        )
        raise SystemExit(1)
    from outbox_db.cli import main as command_line  # noqa: PLC0415 - only once they are there

    command_line()


if __name__ == "__main__":
    main()
