"""`nox -s demo`: the outbox doing its job end to end, watched live, then audited.

The example service (payments_service.py) records a few thousand payment instructions for
several participants, each with its outbox item in the same transaction. Two relayers and a
lease repairer, real `outbox-relayer` processes, dispatch them to the rail simulator, which
answers some requests 503 and drops some connections after acting. One relayer is SIGKILLed
midway, holding leases, and restarted two seconds later as a supervisor would. Progress
comes from the status view (`OutboxStore.status`) and the processes' signal logs; at the end
the ledger is audited against the rail's request log (`audit_delivery`). Only the public API
and CLIs of the outbox packages are used.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Final

import attrs
import click
from rich.console import Console, Group
from rich.live import Live
from rich.progress import track
from rich.table import Table

from outbox_db import OutboxStore, QueueStatus, Role, migrate
from outbox_relayer.testing import DeliveryAudit, audit_delivery, read_request_log
from payments_service import PaymentInstruction, PaymentsService

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence
    from uuid import UUID

BIN: Final = Path(sys.executable).parent  # the outbox CLIs installed next to this Python
RAILS: Final = ("rtp", "sepa-instant")
RAIL_FAULTS: Final = ("--fail-rate", "0.05", "--drop-rate", "0.01", "--seed", "7")
RAIL_LATENCY: Final = ("--latency-ms", "5", "--latency-jitter-ms", "15")
# Short leases and retries, so a killed relayer's items come back within seconds.
SETTINGS: Final = {
    "LEASE_SECONDS": "5",
    "OUTBOX_RETRY_BASE_SECONDS": "1",
    "OUTBOX_RETRY_CAP_SECONDS": "3",
    "OUTBOX_POLL_INTERVAL_SECONDS": "0.2",
}
SIGNALS: Final = (
    "repair_requeued_count",
    "repair_failed_count",
    "lease_lost_count",
    "terminal_guard_hit_count",
)
RESTART_AFTER_SECONDS: Final = 2.0  # a supervisor's restart delay (systemd RestartSec)
DRAIN_SECONDS: Final = 150.0
STOP_SECONDS: Final = 30.0
console = Console()


@attrs.define
class Process:
    """One `outbox-relayer` process; its JSON logs go to a file the display reads."""

    name: str
    args: tuple[str, ...]
    popen: subprocess.Popen[bytes]
    log: Path
    state: str = "running"


@attrs.define
class Fleet:
    """The relayer processes of the demo, and the signals their logs have reported so far."""

    folder: Path
    env: dict[str, str]
    processes: list[Process] = attrs.Factory(list)
    signals: Counter[str] = attrs.Factory(Counter)
    _read: dict[Path, int] = attrs.Factory(dict)

    def start(self, name: str, *args: str, program: Sequence[str] = ()) -> Process:
        """`outbox-relayer run <args>` with JSON logs to <folder>/<name>.log.

        `program` runs in place of `outbox-relayer` (a launcher that takes its arguments).
        """
        log = self.folder / f"{name}.log"
        with log.open("wb") as out:
            command = [*(program or [str(BIN / "outbox-relayer")]), "run", "--worker-id", name]
            command += args
            popen = subprocess.Popen(command, env=self.env, stdout=out, stderr=subprocess.STDOUT)  # noqa: S603
        process = Process(name, args, popen, log)
        self.processes.append(process)
        return process

    def restart(self, process: Process) -> Process:
        """A new process with the same arguments, as a supervisor would start it."""
        return self.start(f"{process.name}-restarted", *process.args)

    def kill(self, process: Process) -> None:
        """SIGKILL: no shutdown path runs, its leases stay until they expire."""
        process.popen.kill()
        process.popen.wait(timeout=STOP_SECONDS)
        process.state = "SIGKILLed"

    def stop(self) -> None:
        """SIGTERM every process still running and wait for each; a failed exit is an error."""
        running = [p for p in self.processes if p.popen.poll() is None]
        for process in running:
            process.popen.send_signal(signal.SIGTERM)
        for process in running:
            code = process.popen.wait(timeout=STOP_SECONDS)
            process.state = f"stopped (exit {code})"
            if code != 0:
                msg = f"{process.name} exited {code}: see {process.log}"
                raise click.ClickException(msg)

    def read_signals(self) -> Counter[str]:
        """Add up the `outbox_signals` lines logged since the last read, of every process."""
        for process in self.processes:
            with process.log.open("rb") as log:
                log.seek(self._read.get(process.log, 0))
                chunk = log.read()
            complete = chunk.rfind(b"\n") + 1  # a line being written is read next time
            self._read[process.log] = self._read.get(process.log, 0) + complete
            for line in chunk[:complete].splitlines():
                entry = json.loads(line) if line.startswith(b"{") else {}
                if entry.get("event") == "outbox_signals":
                    self.signals.update({name: entry.get(name, 0) for name in SIGNALS})
        return self.signals


@contextlib.contextmanager
def rail_simulator(folder: Path) -> Iterator[tuple[str, Path]]:
    """`outbox-relayer rail-sim` as a process: (its payments URL, its request log)."""
    log = folder / "rail-requests.jsonl"
    command = [str(BIN / "outbox-relayer"), "rail-sim", *RAIL_FAULTS, *RAIL_LATENCY]
    popen = subprocess.Popen(  # noqa: S603 - our own CLI, fixed arguments
        [*command, "--log", str(log)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    try:
        assert popen.stdout is not None  # noqa: S101 - PIPE was asked for
        url = popen.stdout.readline().decode().strip()  # the first line is its URL
        if not url.startswith("http"):
            msg = "the rail simulator did not start"
            raise click.ClickException(msg)
        yield f"{url}/payments", log
    finally:
        popen.send_signal(signal.SIGTERM)
        popen.wait(timeout=STOP_SECONDS)


def instructions(count: int, participants: int) -> Iterator[PaymentInstruction]:
    """`count` payment instructions spread over `participants` banks and both rails."""
    draw = random.Random(7)  # noqa: S311 - demo amounts, not secrets
    for n in range(1, count + 1):
        yield PaymentInstruction(
            instruction_id=f"pay-{n:05d}",
            participant_id=f"bank-{n % participants + 1:02d}",
            creditor_account=f"DE{draw.randrange(10**20):020d}",
            amount=Decimal(draw.randrange(100, 500_000)) / 100,
            currency="EUR",
            rail_type=RAILS[n % len(RAILS)],
        )


def enqueue(url: str, count: int, participants: int) -> dict[UUID, str]:
    """Submit every instruction through the example service: {outbox_id: idempotency_key}."""
    keys: dict[UUID, str] = {}
    with OutboxStore.connect(url, role=Role.PRODUCER) as store:  # enqueues, nothing else
        service = PaymentsService(store)
        batch = instructions(count, participants)
        for instruction in track(batch, total=count, description="enqueue", console=console):
            keys[service.submit(instruction).outbox_id] = instruction.idempotency_key
    return keys


def status_view(total: QueueStatus, signals: Counter[str], fleet: Fleet, items: int) -> Group:
    """What an operator would watch: the queue, the ledger, the signals, the processes."""
    ended = total.dispatched_count + total.failed_count
    figures = Table("", "items", title=f"outbox: {ended} of {items} items ended")
    for label, value in [
        ("pending: due now", total.due_count),
        ("pending: waiting to retry", total.scheduled_count),
        ("pending: behind an earlier item (ordered rail)", total.waiting_count),
        ("pending: leased (being sent)", total.leased_count),
        ("pending: lease expired, awaiting repair", total.expired_lease_count),
        ("dispatched", total.dispatched_count),
        ("failed", total.failed_count),
        ("retries recorded (RETRYABLE attempts)", total.retryable_count),
        (
            "lease repairs (signal)",
            signals["repair_requeued_count"] + signals["repair_failed_count"],
        ),
        ("leases lost (signal)", signals["lease_lost_count"]),
        ("terminal guard hits (signal)", signals["terminal_guard_hit_count"]),
    ]:
        figures.add_row(label, str(value))
    processes = Table("process", "pid", "state", title="relayers")
    for process in fleet.processes:
        processes.add_row(process.name, str(process.popen.pid), process.state)
    return Group(figures, processes)


def drained(total: QueueStatus, items: int) -> bool:
    """Nothing pending and every item ended (the database holds only the demo's items)."""
    ended = total.dispatched_count + total.failed_count
    return total.pending_count == 0 and ended == items


def watch(url: str, fleet: Fleet, items: int) -> None:
    """Refresh the view until the queue drains; kill relayer-a a third of the way, restart it."""
    victim = next(process for process in fleet.processes if process.name == "relayer-a")
    killed_at: float | None = None
    deadline = time.monotonic() + DRAIN_SECONDS
    with OutboxStore.connect(url, role=Role.READONLY) as reader, Live(console=console) as live:
        while True:
            (total, *_) = reader.status()
            live.update(status_view(total, fleet.read_signals(), fleet, items))
            if drained(total, items):
                return
            ended = total.dispatched_count + total.failed_count
            if killed_at is None and ended >= items // 3:
                fleet.kill(victim)
                killed_at = time.monotonic()
                console.log(f"SIGKILLed {victim.name}: its leases come back through lease repair")
            elif killed_at and time.monotonic() - killed_at > RESTART_AFTER_SECONDS:
                console.log(f"restarted {victim.name} as {fleet.restart(victim).name}")
                killed_at = 0.0  # restarted once
            if time.monotonic() > deadline:
                msg = f"the queue did not drain within {DRAIN_SECONDS:g} s"
                raise click.ClickException(msg)
            time.sleep(0.5)


def audit_table(audit: DeliveryAudit) -> Table:
    """The audit's counts and verdict, for people."""
    table = Table("check", "result", title="delivery audit: ledger against the rail's log")
    table.add_row("items / ledger attempts", f"{audit.items} / {audit.attempts}")
    table.add_row("ended DISPATCHED / FAILED", f"{audit.dispatched} / {audit.failed}")
    table.add_row("lease repairs", str(audit.lease_repairs))
    table.add_row("rail requests / effects", f"{audit.rail_requests} / {audit.rail_effects}")
    table.add_row("repeats the rail absorbed", str(audit.absorbed))
    for problem in audit.problems:
        table.add_row("[red]PROBLEM[/red]", problem)
    verdict = "[green]PASS[/green]: one terminal per item, one effect per key at the rail"
    table.add_row("verdict", verdict if audit.passed else "[red]FAIL[/red]")
    return table


def prepare(url: str, out: Path) -> None:
    """Migrate, refuse a database that already has outbox items, install the service."""
    console.rule("migrate")
    report = migrate(url, on_apply=lambda name: console.print(f"applied {name}"))
    console.print(f"{len(report.applied)} applied, {report.unchanged} already in place")
    with OutboxStore.connect(url, role=Role.READONLY) as reader:
        (total, *_) = reader.status()
    if any(value for name, value in attrs.asdict(total).items() if name != "rail_type"):
        msg = "the demo needs a database without outbox items: `nox -s demo` makes its own"
        raise click.ClickException(msg)
    PaymentsService.install(url)
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)


@click.command()
@click.option("--url", envvar="DATABASE_URL", required=True, help="A database of its own.")
@click.option("--instructions", "count", type=click.IntRange(1, 100_000), default=4000)
@click.option("--participants", type=click.IntRange(1, 1000), default=8)
@click.option(
    "--out", type=click.Path(path_type=Path), default=Path("reports/demo"), show_default=True
)
def main(url: str, count: int, participants: int, out: Path) -> None:
    """Run the example service, two relayers and a repairer; kill one; watch; audit."""
    started = time.monotonic()
    prepare(url, out)
    console.rule(f"enqueue {count} instructions for {participants} participants")
    keys = enqueue(url, count, participants)
    console.rule("relay: 2 relayers and a repairer; relayer-a is SIGKILLed a third of the way")
    settings = {k: v for k, v in os.environ.items() if not k.startswith(("LEASE_", "OUTBOX_"))}
    fleet = Fleet(out, settings | SETTINGS | {"DATABASE_URL": url})
    with rail_simulator(out) as (rail_url, request_log):
        rails = [arg for rail in RAILS for arg in ("--rail", f"{rail}={rail_url}")]
        fleet.start("repairer", "--no-relay", "--repair-interval", "1")
        for name in ("relayer-a", "relayer-b"):
            # Claims of 16 while fewer than 8 are held: a relayer always holds leases mid-run.
            fleet.start(name, "--no-repair", "--concurrency", "8", "--batch-size", "16", *rails)
        try:
            watch(url, fleet, len(keys))
        finally:
            fleet.stop()
    console.line()
    console.rule("final status (outbox-db status)")
    subprocess.run([str(BIN / "outbox-db"), "status", "--url", url], check=True)  # noqa: S603
    with OutboxStore.connect(url, role=Role.READONLY) as reader:
        audit = audit_delivery(keys, reader.ledger(), read_request_log(request_log))
    console.print(audit_table(audit))
    console.print(f"logs and the rail's request log: {out}/  ({time.monotonic() - started:.0f} s)")
    if not audit.passed:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
