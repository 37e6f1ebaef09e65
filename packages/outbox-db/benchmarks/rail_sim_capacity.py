"""Rail-sim's capacity: the POSTs per second `wrk` gets answered by `outbox-relayer rail-sim`.

The relayer's HTTP figures (relayer_drain.py's relayer_rail_sim) are bounded by the slower of
the relayer and the simulator; this measures the simulator, so bench_summary.py can say which
bound a figure met. Variants, each a fresh `rail-sim` process without faults driven by `wrk`
(2 threads, as many as cores; both share the host, as the relayers and the simulator do),
every request a POST /payments with a JSON body and an Idempotency-Key of its own
(rail_sim_post.lua), their runs interleaved:
- latency_0ms: answers at once, 64 connections (enough to keep it busy): the most it serves;
- latency_50ms: each answer 50 ms late, 1,000 connections: a waiting answer is a timer on the
  event loop, not a thread, so 1,000 wait at once (at most 20,000 answers/s).

A run fails, rather than reporting a flattered figure, if wrk saw any error (a refused
connection, a timeout, a non-2xx answer) or the simulator absorbed a repeated key.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any, Final

import attrs
import click
import httpx

from bench_common import Figure, enough_descriptors, interleaved, report
from relayer_drain import rail_sim

FIGURE: Final = "rail_sim_capacity"
UNIT: Final = "requests/s"
SCRIPT: Final = Path(__file__).with_name("rail_sim_post.lua")
THREADS: Final = 2
WRK_MISSING: Final = (
    "wrk is not on PATH, and rail-sim's capacity is measured with it: run .ci/provision "
    "(it installs Debian's or Ubuntu's package wrk), or apt-get install wrk"
)


@attrs.define
class Load:
    """One variant: `connections` keeping rail-sim (answering `latency_ms` late) busy."""

    wrk: str
    latency_ms: int
    connections: int
    seconds: int
    p99_ms: list[float] = attrs.field(factory=list)

    def measure(self) -> float:
        """Requests per second of one wrk run against a fresh simulator."""
        with rail_sim("--latency-ms", str(self.latency_ms)) as simulator:
            result = self.run_wrk(simulator.payments_url)
            stats = httpx.get(simulator.payments_url.removesuffix("/payments") + "/stats").json()
        if any(result["errors"].values()) or stats["absorbed"]:
            msg = f"wrk saw errors {result['errors']}, rail-sim absorbed {stats['absorbed']}"
            raise click.ClickException(msg)
        self.p99_ms.append(result["p99_ms"])
        seconds = float(result["duration_us"]) / 1e6
        return float(result["requests"]) / seconds

    def run_wrk(self, url: str) -> dict[str, Any]:
        """The figures of one wrk run (the JSON line its script prints last)."""
        command = [
            self.wrk,
            f"--threads={THREADS}",
            f"--connections={self.connections}",
            f"--duration={self.seconds}s",
            "--timeout=10s",
            f"--script={SCRIPT}",
            url,
            "--",
            uuid.uuid4().hex,
        ]
        done = subprocess.run(command, check=False, capture_output=True, text=True)  # noqa: S603
        if done.returncode:
            msg = f"wrk exited {done.returncode}: {done.stderr.strip()[-2000:]}"
            raise click.ClickException(msg)
        result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
        return result

    def details(self) -> dict[str, object]:
        """How it was loaded, and the worst p99 answer time of its runs."""
        return {
            "latency_ms": self.latency_ms,
            "connections": self.connections,
            "wrk_threads": THREADS,
            "seconds": self.seconds,
            "p99_ms": max(self.p99_ms),
        }


@click.command()
@click.option("--seconds", default=10, show_default=True, help="Seconds of load per run.")
@click.option("--runs", default=3, show_default=True, help="Runs per variant (median).")
@click.option("--quick", is_flag=True, help="One run of 2 seconds per variant (CI smoke).")
# `nox -s bench -- ...` hands the same options to every benchmark: these two are taken, and
# mean nothing here (no database; a run lasts --seconds, not a number of items).
@click.option("--url", envvar="DATABASE_URL", help="Not used: rail-sim needs no database.")
@click.option("--items", type=int, help="Not used: a run lasts --seconds.")
def main(seconds: int, runs: int, url: str | None, items: int | None, *, quick: bool) -> None:
    """Measure rail-sim's capacity with wrk: at 0 ms (64 connections), at 50 ms (1,000)."""
    del url, items  # accepted for the shared command line only
    wrk = shutil.which("wrk")
    if wrk is None:
        raise click.ClickException(WRK_MISSING)
    seconds, runs = (2, 1) if quick else (seconds, runs)
    loads = {
        "latency_0ms": Load(wrk, latency_ms=0, connections=64, seconds=seconds),
        "latency_50ms": Load(wrk, latency_ms=50, connections=1_000, seconds=seconds),
    }
    enough_descriptors(max(load.connections for load in loads.values()))
    values = interleaved(
        runs, [(f"{FIGURE} {label}", load.measure) for label, load in loads.items()], UNIT
    )
    figures = [
        Figure(FIGURE, label, values[f"{FIGURE} {label}"], load.details(), UNIT)
        for label, load in loads.items()
    ]
    report(FIGURE, figures, settings={})


if __name__ == "__main__":
    main()
