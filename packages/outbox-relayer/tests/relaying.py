"""The relayer as `outbox-relayer run` builds it, and rails driven from a test's thread.

For in-process proofs against rail-sim, and for sends to servers a test starts itself.
"""

from __future__ import annotations

import random
import socket
from typing import TYPE_CHECKING, Self

import attrs
from aiohttp import web

from outbox_relayer import Backoff, HttpRail, RailEndpoint, Relayer, RelayerSettings, Signals

if TYPE_CHECKING:
    import ssl

    from outbox_db import ClaimedItem, OutboxStore
    from outbox_db.testonly.blocking import EventLoopThread
    from outbox_relayer import RailAnswer, RailSimulator
    from outbox_relayer.tracing import RelayTracing


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
