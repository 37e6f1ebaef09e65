"""The rail simulator's HTTP side: aiohttp's server on an event loop of its own thread.

Imported only when a simulator starts: aiohttp takes a fifth of a second to import, and
every relayer process imports outbox_relayer without ever serving a rail.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from typing import TYPE_CHECKING, Final
from urllib.parse import unquote

import attrs
from aiohttp import web

from outbox_relayer.testing._simulated_rail import PAYMENTS_PATH

if TYPE_CHECKING:
    from outbox_relayer.testing._simulated_rail import SimulatedRail

__all__ = ["RailServer"]

MAX_BODY_BYTES: Final = 2 * 1024 * 1024
# A backlog as deep as the kernel allows (it caps it at net.core.somaxconn): a thousand
# clients connecting at once, or a few relayers opening their pools, must all be accepted,
# never reset before the request log could see them.
BACKLOG: Final = 4096
# stop() wakes every waiting answer first, so the handlers finish at once; this only bounds
# a stop behind a client that will not read its answer.
SHUTDOWN_SECONDS: Final = 2.0


class _Waits:
    """Answers waiting (latency, a timeout fault) on the event loop; stop() ends them all."""

    def __init__(self) -> None:
        self.stopping = False
        self._waiting: set[asyncio.Future[None]] = set()

    async def sleep(self, seconds: float) -> None:
        """Wait `seconds`, or less if the simulator stops: a timer, never a thread."""
        if self.stopping or seconds <= 0:
            return
        woken = asyncio.get_running_loop().create_future()
        timer = woken.get_loop().call_later(seconds, _wake, woken)
        self._waiting.add(woken)
        try:
            await woken
        finally:
            timer.cancel()
            self._waiting.discard(woken)

    def wake_all(self) -> None:
        """End every wait now and any later one at once (the simulator is stopping)."""
        self.stopping = True
        for woken in self._waiting:
            _wake(woken)


def _wake(woken: asyncio.Future[None]) -> None:
    if not woken.done():
        woken.set_result(None)


class _LogFlusher:
    """At most one flush of the request log per turn of the event loop, however many ask."""

    def __init__(self, state: SimulatedRail) -> None:
        self._state = state
        self._due = False

    def flush_soon(self) -> None:
        """Flush once the requests that arrived in this turn of the loop are all logged."""
        if not self._due:
            self._due = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._due = False
        self._state.flush_log()


@attrs.frozen
class _Routes:
    """One request: POST /payments, GET /payments/<key>, GET /stats."""

    state: SimulatedRail
    waits: _Waits
    log: _LogFlusher

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        """Dispatch on the method, as the rail's API has one write and two reads."""
        if request.method == "POST":
            return await self.post(request)
        if request.method == "GET":
            return self.get(request)
        return _json(501, {"error": "UNSUPPORTED_METHOD"})

    async def post(self, request: web.BaseRequest) -> web.StreamResponse:
        """POST /payments: the rail's one write, deduplicated by Idempotency-Key."""
        length = request.content_length or 0
        if length > MAX_BODY_BYTES:
            return _json(413, {"error": "PAYLOAD_TOO_LARGE"}, close=True)
        try:
            raw = await request.content.readexactly(length)
        except (asyncio.IncompleteReadError, ConnectionError):
            # The client went away mid-request (a killed worker): a real rail acts on nothing
            # it did not fully receive, so neither record nor answer.
            return _hang_up(request)
        if request.raw_path != PAYMENTS_PATH:
            return _json(404, {"error": "NOT_FOUND"})
        headers = request.headers
        decision = self.state.decide(
            headers.get("Idempotency-Key"), raw, traceparent=headers.get("traceparent")
        )
        # A reader (a proof, tail -f) sees a request's line as it arrives, before any answer.
        # An answer that waits lets its line share one write with the others that arrived in
        # the same turn of the event loop; one given at once is flushed now.
        if decision.delay_seconds or decision.fault == "timeout":
            self.log.flush_soon()
        else:
            self.state.flush_log()
        await self.waits.sleep(decision.delay_seconds)
        if decision.fault == "drop":
            return _hang_up(request)
        if decision.fault == "timeout":
            await self.waits.sleep(self.state.faults.hang_seconds)
        return _json(decision.status, decision.body, decision.headers)

    def get(self, request: web.BaseRequest) -> web.StreamResponse:
        """GET /stats, or GET /payments/<url-quoted key>: the key's recorded outcome."""
        path = request.raw_path
        if path == "/stats":
            return _json(200, attrs.asdict(self.state.stats()))
        prefix = PAYMENTS_PATH + "/"
        if not path.startswith(prefix):
            return _json(404, {"error": "NOT_FOUND"})
        return _json(*self.state.lookup(unquote(path.removeprefix(prefix))))


def _hang_up(request: web.BaseRequest) -> web.Response:
    """Close the connection unanswered; aiohttp then drops the answer returned for it."""
    if request.transport is not None:
        request.transport.close()
    return _json(500, {"error": "NEVER_SENT"})


def _json(
    status: int,
    body: dict[str, object],
    headers: dict[str, str] | None = None,
    *,
    close: bool = False,
) -> web.Response:
    answer = web.Response(
        status=status,
        body=json.dumps(body, sort_keys=True).encode(),
        content_type="application/json",
        headers=headers,
    )
    if close:
        answer.force_close()
    return answer


class RailServer:
    """Serves a SimulatedRail from a daemon thread's event loop, until stop()."""

    def __init__(self, state: SimulatedRail, address: tuple[str, int]) -> None:
        """Bind `address` (port 0: a free one) first: a taken port raises OSError here."""
        listening = socket.create_server(address, backlog=BACKLOG)
        host, port = listening.getsockname()[:2]
        self.address: Final = (str(host), int(port))
        self.state = state
        self._routes = _Routes(state, _Waits(), _LogFlusher(state))
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="rail-sim", daemon=True)
        self._thread.start()
        serving = asyncio.run_coroutine_threadsafe(_serve(self._routes, listening), self._loop)
        self._runner = serving.result()

    def stop(self) -> None:
        """Wake waiting answers, stop serving and close the connections, end the thread."""
        self._loop.call_soon_threadsafe(self._routes.waits.wake_all)
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()


async def _serve(routes: _Routes, listening: socket.socket) -> web.ServerRunner:
    """Serve `routes` on the bound socket, from the loop that runs them (aiohttp needs it)."""
    server = web.Server(routes.handle, access_log=None)
    runner = web.ServerRunner(server, shutdown_timeout=SHUTDOWN_SECONDS)
    await runner.setup()
    await web.SockSite(runner, listening, backlog=BACKLOG).start()
    return runner
