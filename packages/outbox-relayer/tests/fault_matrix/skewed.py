"""`python -m fault_matrix.skewed SECONDS ARGS...`: `outbox-relayer ARGS...`, its clock moved.

time-machine moves the process's wall clock (time.time, datetime.now, what structlog stamps
log lines with) by SECONDS, ahead or behind, and lets it tick from there; time.monotonic is
left alone. The skew scenario runs relayers this way: every lease decision must come from
the database's clock, so a skewed relayer behaves exactly like a true one.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta

import time_machine

from outbox_relayer.cli import main


def run(argv: list[str]) -> None:
    """Travel by argv[0] seconds, then run the relayer's CLI with the rest."""
    skew = timedelta(seconds=float(argv[0]))
    with time_machine.travel(datetime.now(UTC) + skew, tick=True):
        main(args=argv[1:], prog_name="outbox-relayer")


if __name__ == "__main__":
    run(sys.argv[1:])
