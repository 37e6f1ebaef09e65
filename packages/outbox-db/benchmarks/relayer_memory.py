"""A relayer's memory with 2,000 sends in flight: its peak RSS, holding 1 KiB payloads.

One `outbox-relayer run` process (default settings, concurrency IN_FLIGHT) drains a backlog
of items whose payloads carry a 1,000-character memo (about 1.1 KiB each) to `outbox-relayer
rail-sim` answering every POST LATENCY_MS late: longer than claiming IN_FLIGHT items takes,
so IN_FLIGHT sends wait at once, wave after wave. The figure is the relayer's peak RSS
(VmHWM) per run, with the most requests rail-sim held at once in that run: every answer
waits LATENCY_MS, so the requests that arrived within LATENCY_MS of each other were all in
flight together (a lower bound: an answer that is late on a busy host holds its send longer).
When the relayer does not accept IN_FLIGHT sends at once, the figure is reported as not
measured, saying the most it accepts.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Final

import click

from bench_common import (
    Figure,
    bench_options,
    durability,
    enough_descriptors,
    interleaved,
    migrated_template,
    report,
    server,
)
from outbox_relayer.testing import read_request_log
from relayer_drain import Drain, rail_sim, relayer_to

if TYPE_CHECKING:
    from pathlib import Path

FIGURE: Final = "relayer_peak_rss_in_flight"
VARIANT: Final = "relayer_rail_sim"
IN_FLIGHT: Final = 2_000
LATENCY_MS: Final = 2_000
MEMO: Final = {"memo": "x" * 1_000}  # with the rest of the payload, over 1 KiB
WAVES: Final = 2  # at least: the second wave runs on whatever the first left allocated


def most_at_once(log: Path, latency_ms: int) -> int:
    """The most requests in `log` that arrived within `latency_ms` of each other."""
    arrivals = sorted(request.monotonic for request in read_request_log(log))
    earliest = most = 0
    for latest, arrived in enumerate(arrivals):
        while arrivals[earliest] <= arrived - latency_ms / 1000:
            earliest += 1
        most = max(most, latest - earliest + 1)
    return most


def measure_run(admin_url: str, items: int, in_flight: list[int]) -> float:
    """One drain against a fresh rail-sim: the relayer's peak RSS (MiB); its sends at once."""
    with rail_sim("--latency-ms", str(LATENCY_MS)) as simulator:
        target = relayer_to(simulator.payments_url)
        drain = Drain(admin_url, items, 1, target, concurrency=IN_FLIGHT, payload_extra=MEMO)
        drain.measure()
        in_flight.append(most_at_once(simulator.log, LATENCY_MS))
    return drain.peak_rss_mb[0]


@click.command()
@bench_options(default_items=10_000)
def main(url: str | None, items: int, runs: int) -> None:
    """Measure a relayer's peak RSS with 2,000 sends of 1 KiB payloads in flight."""
    items = max(items, WAVES * IN_FLIGHT)
    enough_descriptors(IN_FLIGHT)  # the relayer's connections, and rail-sim's
    in_flight: list[int] = []
    with server(url) as admin_url:
        settings = durability(admin_url)
        migrated_template(admin_url)
        measure = functools.partial(measure_run, admin_url, items, in_flight)
        values = interleaved(runs, [(FIGURE, measure)], "MiB")[FIGURE]
    details = {
        "items": items,
        "concurrency": IN_FLIGHT,
        "in_flight": min(in_flight),  # in the run that held the fewest at once
        "memo_characters": len(MEMO["memo"]),
        "rail_latency_ms": LATENCY_MS,
    }
    figure = Figure(FIGURE, VARIANT, values, details, "MiB")
    report("relayer_memory", [figure], settings=settings)


if __name__ == "__main__":
    main()
