"""A rolling deploy that adds a rail, with relayers of the previous release really running.

`nox -s rolling_deploy` installs the previous release (noxfile.py's PREVIOUS_RELEASE) into a
virtualenv of its own and names its bin folder in OUTBOX_PREVIOUS_RELEASE_BIN. Its relayers
(`outbox-relayer run` of that release, its rails file with `rtp` only, claiming with
claim_outbox_batch) run as processes beside this release's, on one database; each rail is a
rail simulator in this process. What happened is read from the ledger and the simulators'
request logs (`audit_delivery`), never from what a process says.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING, Final, LiteralString

import pytest

from demo import Fleet, Process
from outbox_db import OutboxStore, Role, migrate
from outbox_db.testonly import query_no_role, wait_for
from outbox_db.testonly.factories import make_request
from outbox_relayer.testing import RailSimulator, audit_delivery, read_request_log

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping
    from uuid import UUID

    from outbox_db.testonly.pytest_plugin import Database, Server

RAILS: Final = ("rtp", "sepa")  # sepa is the rail the deploy adds
ITEMS: Final = 40  # per rail and batch
RELAYER_FLAGS: Final = ("--concurrency", "4", "--poll-interval", "0.2", "--log-format", "json")
SECONDS: Final = 60.0  # polls return as soon as the state is there
PENDING: LiteralString = "SELECT count(*) FROM public.payment_outbox_pending"
SCOPED: LiteralString = "SELECT rail_type FROM public.outbox_scoped_rails ORDER BY 1"
UNSERVED: LiteralString = "SELECT rail_type FROM public.outbox_unserved_rails ORDER BY 1"
MOST_ATTEMPTS: LiteralString = "SELECT max(attempt_count) FROM public.payment_outbox_pending"
QUIET_SECONDS: Final = 2.0  # ten of the previous relayers' polls
# Attempts per (worker release, rail, state, error code): the deploy's whole story.
ATTEMPTS: LiteralString = """
SELECT CASE WHEN worker_id LIKE 'previous-%%' THEN 'previous' ELSE 'current' END, rail_type,
    state::text, coalesce(error_code, ''), count(*)
FROM public.payment_outbox_attempts GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4
"""


@pytest.fixture
def previous_bin() -> Path:
    """The previous release's bin folder (outbox-db, outbox-relayer); never skipped."""
    found = os.environ.get("OUTBOX_PREVIOUS_RELEASE_BIN")
    if not found:
        pytest.fail("OUTBOX_PREVIOUS_RELEASE_BIN is unset: `nox -s rolling_deploy` builds it")
    return Path(found)


@pytest.fixture
def empty_url(outbox_server: Server) -> Iterator[str]:
    """A database with nothing in it, for the previous release's migrator; dropped after."""
    name = f"outbox_rolling_{os.getpid()}"
    with outbox_server.janitor(name):
        yield outbox_server.database_url(name)


@pytest.fixture
def simulators(tmp_path: Path) -> Iterator[dict[str, RailSimulator]]:
    """One rail simulator per rail, each with its request log."""
    with contextlib.ExitStack() as stack:
        yield {
            rail: stack.enter_context(RailSimulator(log_path=tmp_path / f"{rail}.jsonl"))
            for rail in RAILS
        }


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[Fleet]:
    """Relayer processes (JSON logs in tmp_path); whatever still runs is killed at teardown."""
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(("OUTBOX_", "LEASE_"))}
    started = Fleet(tmp_path, inherited | {"PYTHONUNBUFFERED": "1"})
    try:
        yield started
    finally:
        for process in started.processes:
            if process.popen.poll() is None:
                started.kill(process)


def rails_file(folder: Path, simulators: Mapping[str, RailSimulator], *rails: str) -> Path:
    """A rails file naming `rails`, each sent to its simulator."""
    path = folder / f"rails-{'-'.join(rails)}.toml"
    tables = (f'[rails.{r}]\nurl = "{simulators[r].payments_url}"\n' for r in rails)
    path.write_text("\n".join(tables), encoding="utf-8")
    return path


def start_previous(fleet: Fleet, previous_bin: Path, url: str, rails: Path) -> list[Process]:
    """Two relayers of the previous release with its configuration (rtp only)."""
    program = [str(previous_bin / "outbox-relayer")]
    args = ("--database-url", url, "--rails-file", str(rails), *RELAYER_FLAGS)
    return [fleet.start(f"previous-{n}", *args, program=program) for n in range(2)]


def start_current(fleet: Fleet, url: str, rails: Path) -> Process:
    """A relayer of this release with the new rail in its rails file."""
    return fleet.start(
        "current-0", "--database-url", url, "--rails-file", str(rails), *RELAYER_FLAGS
    )


def enqueue(url: str, rail: str) -> dict[UUID, str]:
    """ITEMS items on `rail`, as a service of this release enqueues them: {outbox_id: key}."""
    with OutboxStore.connect(url, role=Role.PRODUCER) as store:
        requests = [make_request(rail_type=rail) for _ in range(ITEMS)]
        return {store.enqueue(r).outbox_id: r.idempotency_key for r in requests}


def wait_until(condition: Callable[[], bool], what: str, fleet: Fleet) -> None:
    """Poll until `condition` holds; fail naming `what` on the deadline or if a relayer died."""

    def holds_or_died() -> bool:
        if condition():
            return True
        if dead := [p for p in fleet.processes if p.popen.poll() is not None]:
            pytest.fail(f"{dead[0].name} exited {dead[0].popen.returncode}: see {dead[0].log}")
        return False

    if not wait_for(holds_or_died, SECONDS, interval=0.1):
        pytest.fail(f"no {what} within {SECONDS:g} s")


def drained(url: str) -> Callable[[], bool]:
    """Whether nothing is pending."""
    return lambda: query_no_role(url, PENDING) == [(0,)]


def audited(
    url: str, keys: Mapping[str, dict[UUID, str]], simulators: Mapping[str, RailSimulator]
) -> None:
    """Each rail's items against its ledger and its simulator's log: one effect per key."""
    with OutboxStore.connect(url, role=Role.READONLY) as reader:
        for rail, rail_keys in keys.items():
            requests = read_request_log(simulators[rail].log_path)
            audit = audit_delivery(rail_keys, reader.ledger(rail), requests)
            assert audit.problems == (), rail
            assert audit.dispatched == audit.rail_effects == len(rail_keys), rail


def test_the_documented_order_fails_nothing_and_sends_nothing_twice(
    previous_bin: Path,
    empty_url: str,
    simulators: dict[str, RailSimulator],
    fleet: Fleet,
    tmp_path: Path,
) -> None:
    """adopting.md's order with the previous release running throughout: its migrator's schema, its relayers draining while this release migrates, then a relayer of this release with sepa starts and sepa items are enqueued only once it announced the rail."""
    url = empty_url
    subprocess.run([previous_bin / "outbox-db", "migrate", "--url", url], check=True)
    previous = start_previous(fleet, previous_bin, url, rails_file(tmp_path, simulators, "rtp"))
    keys = {"rtp": enqueue(url, "rtp"), "sepa": {}}

    migrate(url)  # 1. migrate, while the previous release relays
    keys["rtp"] |= enqueue(url, "rtp")
    wait_until(drained(url), "drain by the previous release on the migrated schema", fleet)
    start_current(fleet, url, rails_file(tmp_path, simulators, *RAILS))  # 2. and 3.
    wait_until(lambda: query_no_role(url, SCOPED) == [("sepa",)], "sepa announced", fleet)
    keys["rtp"] |= enqueue(url, "rtp")  # 4. services enqueue on the new rail
    keys["sepa"] = enqueue(url, "sepa")
    wait_until(drained(url), "drain of both rails", fleet)

    assert all(process.popen.poll() is None for process in previous), "they ran throughout"
    fleet.stop()
    counts = {row[:4]: row[4] for row in query_no_role(url, ATTEMPTS)}
    assert {state for _, _, state, _ in counts} == {"DISPATCHED"}, counts
    assert ("current", "sepa", "DISPATCHED", "") in counts
    assert counts[("previous", "rtp", "DISPATCHED", "")] >= 2 * ITEMS  # the first two batches
    assert ("previous", "sepa", "DISPATCHED", "") not in counts
    audited(url, keys, simulators)


def test_enqueueing_on_the_new_rail_before_a_relayer_announced_it_fails_nothing(
    previous_bin: Path,
    outbox_database: Database,
    simulators: dict[str, RailSimulator],
    fleet: Fleet,
    tmp_path: Path,
) -> None:
    """The order not followed: sepa items enqueued while only the previous release relays. Its relayers claim some and record RAIL_NOT_CONFIGURED once each; the first such attempt scopes the rail (0016), so they claim no more: the items wait, listed as unserved, until a relayer of this release that has sepa starts and sends each once. Nothing FAILED."""
    url = outbox_database.url
    start_previous(fleet, previous_bin, url, rails_file(tmp_path, simulators, "rtp"))
    keys = {"sepa": enqueue(url, "sepa")}
    wait_until(lambda: query_no_role(url, SCOPED) == [("sepa",)], "sepa scoped by a miss", fleet)
    wait_until(lambda: query_no_role(url, UNSERVED) == [("sepa",)], "sepa shown unserved", fleet)
    missed = attempted(url, "previous", None)
    time.sleep(QUIET_SECONDS)  # the previous relayers poll every 0.2 s meanwhile

    assert attempted(url, "previous", None) == missed, "no claim of sepa after the miss"
    assert query_no_role(url, MOST_ATTEMPTS) == [(1,)], "one miss per item at most"
    start_current(fleet, url, rails_file(tmp_path, simulators, *RAILS))
    wait_until(drained(url), "drain of sepa by this release", fleet)
    fleet.stop()

    counts = {row[:4]: row[4] for row in query_no_role(url, ATTEMPTS)}
    assert counts == {
        ("previous", "sepa", "RETRYABLE", "RAIL_NOT_CONFIGURED"): missed,
        ("current", "sepa", "DISPATCHED", ""): ITEMS,
    }
    audited(url, keys, simulators)


def attempted(url: str, release: str, state: str | None) -> int:
    """The sepa attempts by the relayers of `release` ("previous", "current") in `state` (any)."""
    return sum(
        n
        for who, rail, recorded, _, n in query_no_role(url, ATTEMPTS)
        if who == release and rail == "sepa" and state in {None, recorded}
    )
