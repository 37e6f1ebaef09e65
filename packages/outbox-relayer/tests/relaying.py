"""Test support for the relayer: relayers, rail simulators, rails, and waiting on state.

Relayers as `outbox-relayer run` builds them, rails driven from a test's own thread.
For in-process proofs against rail-sim, and for sends to servers a test starts itself. No
wait here is about wall-clock duration: each polls state, with a generous deadline.

The worker proofs (test_worker_*.py) read every outcome back from the database as the owner
(the ledger and the pending table), and every dispatch goes through `HttpRail` to a
`RailSimulator` on loopback, whose request log says what the rail really received. Leases
lapse by backdating (`expire_lease`), never by sleeping; the retry schedule is pulled forward
as the owner; a relayer that must see time pass gets a clock the test advances.
"""

from __future__ import annotations

import contextlib
import random
import socket
import threading
import time
from typing import TYPE_CHECKING, Any, LiteralString, Self

import attrs
import pytest
from aiohttp import web

from outbox_db import OutboxStore, Role
from outbox_db.testonly import expire_lease, ledger, query_no_role
from outbox_relayer import Backoff, HttpRail, RailEndpoint, Relayer, RelayerSettings, Signals
from outbox_relayer.config import DEFAULT_BYTES_IN_FLIGHT
from outbox_relayer.testing import Faults, RailSimulator, read_request_log

if TYPE_CHECKING:
    import ssl
    from collections.abc import Callable, Iterator, Mapping, MutableMapping, Sequence
    from pathlib import Path
    from uuid import UUID

    from outbox_db import ClaimedItem
    from outbox_db.testonly.blocking import EventLoopThread
    from outbox_db.testonly.pytest_plugin import Database
    from outbox_relayer import Rail, RailAnswer
    from outbox_relayer.rail_slots import RailLimit
    from outbox_relayer.tracing import RelayTracing

RAIL = "rtp"
# Long enough that only a real failure runs into it; polling returns as soon as state is there.
DEADLINE_SECONDS = 15.0
# A terminal attempt for a pending item, written as the owner behind the worker's back.
PLANT_TERMINAL: LiteralString = """
INSERT INTO public.payment_outbox_attempts (
    outbox_id, instruction_id, participant_id, sequence_id, idempotency_key, rail_type,
    payload, attempt_no, state, rail_reference, worker_id)
SELECT outbox_id, instruction_id, participant_id, sequence_id, idempotency_key, rail_type,
    payload, attempt_count + 1, 'DISPATCHED', 'planted', 'planter'
FROM public.payment_outbox_pending WHERE outbox_id = %s
"""
# What the worker proofs read back, as the owner: the ledger's columns they assert on, per
# attempt, and the queue.
WORKER_COLUMNS = (
    *("outbox_id", "attempt_no", "state", "rail_reference", "rail_code", "error_code"),
    "worker_id",
)
ATTEMPT_COUNT: LiteralString = "SELECT count(*) FROM public.payment_outbox_attempts"
TERMINAL_COUNT: LiteralString = (
    "SELECT count(*) FROM public.payment_outbox_attempts WHERE state IN ('DISPATCHED', 'FAILED')"
)
PENDING: LiteralString = """
SELECT outbox_id, attempt_count, claimed_by FROM public.payment_outbox_pending ORDER BY outbox_id
"""
LEASED_COUNT: LiteralString = (
    "SELECT count(*) FROM public.payment_outbox_pending WHERE claimed_by IS NOT NULL"
)
LEASE_OF: LiteralString = """
SELECT lease_token, lease_expires_at FROM public.payment_outbox_pending WHERE outbox_id = %s
"""


class BlockingRail:
    """An HttpRail whose sends and lookups run on a test's event loop thread, and block."""

    def __init__(self, rail: HttpRail, loop: EventLoopThread) -> None:
        self.rail = rail
        self._loop = loop

    def send(self, item: ClaimedItem) -> RailAnswer:
        """The rail's answer to one POST of the item."""
        answer: RailAnswer = self._loop.run(self.rail.send(item))
        return answer

    def lookup(self, item: ClaimedItem) -> RailAnswer | None:
        """The rail's recorded outcome for the item's key, if it knows one."""
        found: RailAnswer | None = self._loop.run(self.rail.lookup(item))
        return found

    def close(self) -> None:
        """Close the rail's connections."""
        self._loop.run(self.rail.aclose())

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


@attrs.define
class HeaderRecorder:
    """A rail on loopback that answers every POST 201 with a reference and keeps its headers.

    Served over HTTPS with `tls` (a server context; one that requires a client certificate
    makes it an mTLS rail).
    """

    loop: EventLoopThread
    tls: ssl.SSLContext | None = None
    requests: list[dict[str, str]] = attrs.Factory(list)
    url: str = ""
    _runner: web.AppRunner | None = None

    def __enter__(self) -> Self:
        self.loop.run(self._start())
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._runner is not None:
            self.loop.run(self._runner.cleanup())

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_post("/payments", self._answer)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        listener = socket.create_server(("127.0.0.1", 0))
        await web.SockSite(self._runner, listener, ssl_context=self.tls).start()
        scheme = "https" if self.tls is not None else "http"
        self.url = f"{scheme}://localhost:{listener.getsockname()[1]}/payments"

    async def _answer(self, request: web.Request) -> web.Response:
        self.requests.append(dict(request.headers))
        return web.json_response({"reference": f"ref-{len(self.requests)}"}, status=201)


def drain(  # noqa: PLR0913 - what the proofs vary, keyword-only
    store: OutboxStore,
    simulator: RailSimulator,
    *,
    rail_type: str,
    worker_id: str = "relayer-1",
    tracing: RelayTracing | None = None,
    traceparent: bool = False,
) -> None:
    """One relayer relays items of `rail_type` to `simulator` until nothing is due.

    With `tracing`, its spans; with `traceparent`, the rail opts in to the trace header.
    """
    endpoint = RailEndpoint(
        rail_type=rail_type,
        url=simulator.payments_url,
        timeout_seconds=10.0,
        traceparent=traceparent,
    )
    relayer = Relayer(
        store,
        rails={rail_type: HttpRail(endpoint)},  # shut_down closes it
        signals=Signals(),
        settings=RelayerSettings(worker_id=worker_id, shutdown_grace_seconds=5.0),
        backoff=Backoff(rng=random.Random(1)),  # noqa: S311 - jitter, not secrecy
        tracing=tracing,
    )
    try:
        relayer.drain()
    finally:
        relayer.shut_down()


class Simulators:
    """Rail simulators, stopped at teardown, and the HttpRails that reach them."""

    def __init__(self, stack: contextlib.ExitStack, tmp_path: Path) -> None:
        self._stack = stack
        self._tmp_path = tmp_path
        self._started = 0

    def start(self, faults: Faults | None = None) -> RailSimulator:
        """A simulator on a free loopback port, logging every request to its own file."""
        self._started += 1
        log_path = self._tmp_path / f"rail-sim-{self._started}.jsonl"
        return self._stack.enter_context(RailSimulator(faults=faults, log_path=log_path))

    def rail(
        self,
        simulator: RailSimulator,
        rail_type: str = RAIL,
        *,
        lookup: bool = False,
        timeout_seconds: float = 10.0,
    ) -> HttpRail:
        """The production HTTP rail pointed at `simulator` (`lookup`: outcomes looked up)."""
        endpoint = RailEndpoint(
            rail_type=rail_type,
            url=simulator.payments_url,
            timeout_seconds=timeout_seconds,
            lookup=lookup,
        )
        return HttpRail(endpoint)  # each relayer's shut_down closes its connections


class Relayers:
    """Relayers on the test's store; each is shut down at teardown, before its rails close."""

    def __init__(self, store: OutboxStore) -> None:
        self.store = store
        self._built: list[Relayer] = []

    def build(  # noqa: PLR0913 - the settings a proof varies, each with the production default
        self,
        worker_id: str,
        rails: Mapping[str, Rail],
        *,
        signals: Signals | None = None,
        backoff: Backoff | None = None,
        clock: Callable[[], float] = time.monotonic,
        batch_size: int = 100,
        concurrency: int = 16,
        lease_seconds: int = 30,
        poll_interval_seconds: float = 1.0,
        rail_limits: Mapping[str, RailLimit] | None = None,
        shutdown_grace_seconds: float = 5.0,
        max_bytes_in_flight: int = DEFAULT_BYTES_IN_FLIGHT,
    ) -> Relayer:
        """A relayer as `outbox-relayer run` builds it, with the given settings."""
        settings = RelayerSettings(
            worker_id=worker_id,
            batch_size=batch_size,
            concurrency=concurrency,
            lease_seconds=lease_seconds,
            poll_interval_seconds=poll_interval_seconds,
            shutdown_grace_seconds=shutdown_grace_seconds,
            max_bytes_in_flight=max_bytes_in_flight,
            rail_limits=rail_limits or {},
        )
        relayer = Relayer(
            self.store,
            rails=rails,
            signals=Signals() if signals is None else signals,
            settings=settings,
            backoff=seeded_backoff(1) if backoff is None else backoff,
            clock=clock,
        )
        self._built.append(relayer)
        return relayer

    def shut_down_all(self) -> None:
        """Shut every relayer down (a second shut_down after `run` is harmless)."""
        for relayer in self._built:
            relayer.shut_down()


class TestClock:
    """The relayer's monotonic clock plus an offset: the test makes time pass for the worker."""

    __test__ = False  # not a test class

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        """Now, as the worker sees it."""
        return time.monotonic() + self.offset

    def advance(self, seconds: float) -> None:
        """Move the worker's time forward by `seconds`, at once."""
        self.offset += seconds


@contextlib.contextmanager
def running(relayer: Relayer) -> Iterator[threading.Event]:
    """`relayer.run(stop)` on a thread of its own; stopped and joined when the block ends."""
    stop = threading.Event()
    failures: list[BaseException] = []

    def run() -> None:
        try:
            relayer.run(stop)
        except BaseException as error:
            failures.append(error)
            raise

    thread = threading.Thread(target=run, name="relayer-under-test")
    thread.start()
    try:
        yield stop
    finally:
        stop.set()
        thread.join(timeout=DEADLINE_SECONDS)
    assert not thread.is_alive(), "run() did not return after stop was set"
    assert failures == [], "run() raised"


def count(url: str, statement: LiteralString, params: list[object] | None = None) -> int:
    """The single number a count query returns."""
    ((value,),) = query_no_role(url, statement, params)
    return int(value)


def attempt_rows(url: str) -> list[tuple[Any, ...]]:
    """(outbox_id, attempt_no, state, rail_reference, rail_code, error_code, worker_id) rows."""
    return ledger(url, *WORKER_COLUMNS)


def attempt_rows_of(url: str, outbox_id: UUID) -> list[tuple[Any, ...]]:
    """The ledger rows of one item, without its outbox_id."""
    return ledger(url, *WORKER_COLUMNS[1:], outbox_id=outbox_id)


def references_by_key(simulator: RailSimulator) -> dict[str | None, str | None]:
    """The reference the simulator answered for each idempotency key (the first answer kept)."""
    return {
        line.idempotency_key: line.reference
        for line in read_request_log(simulator.log_path)
        if not line.absorbed
    }


def repair_lapsed_lease(database: Database, store: OutboxStore, outbox_id: UUID) -> None:
    """The holder died: its lease lapses (moved into the past) and lease repair requeues it."""
    expire_lease(database.url, outbox_id)
    store.repair("repairer", batch_size=10)


def assert_repaired_then_dispatched_by_b(
    database: Database, simulator: RailSimulator, outbox_id: UUID, rail_code: str
) -> None:
    """A's lease was repaired, then B recorded DISPATCHED with the rail's one reference."""
    (reference,) = references_by_key(simulator).values()
    assert attempt_rows_of(database.url, outbox_id) == [
        (1, "ZOMBIE_REQUEUE", None, None, "LEASE_EXPIRED", "relayer-a"),
        (2, "DISPATCHED", reference, rail_code, None, "relayer-b"),
    ]


def events(logs: Sequence[MutableMapping[str, Any]], name: str) -> list[MutableMapping[str, Any]]:
    """The captured log entries of one event."""
    return [entry for entry in logs if entry["event"] == name]


def seeded_backoff(seed: int, *, base_seconds: float = 1, cap_seconds: float = 300) -> Backoff:
    """A Backoff whose draws a second one with the same seed reproduces."""
    return Backoff(
        base_seconds=base_seconds,
        cap_seconds=cap_seconds,
        rng=random.Random(seed),  # noqa: S311 - jitter, not secrecy
    )


@pytest.fixture(name="simulators")
def simulators_fixture(tmp_path: Path) -> Iterator[Simulators]:
    """Starts simulators for the test; stops them afterwards."""
    with contextlib.ExitStack() as stack:
        yield Simulators(stack, tmp_path)


@pytest.fixture(name="second_store")
def second_store_fixture(outbox_database: Database) -> Iterator[OutboxStore]:
    """Another executor store on the same database: connections the worker does not own."""
    with OutboxStore.connect(outbox_database.url, role=Role.EXECUTOR, max_size=2) as store:
        yield store


@pytest.fixture(name="relayers")
def relayers_fixture(
    outbox_store: OutboxStore,
    simulators: Simulators,  # noqa: ARG001 - requested so that it is torn down after these
) -> Iterator[Relayers]:
    """Builds relayers; torn down before `simulators`, so running sends can finish."""
    built = Relayers(outbox_store)
    yield built
    built.shut_down_all()
