"""The relayer's HTTP client, chosen by measure: libcurl, aiohttp and httpx's AsyncClient.

Each variant is one asyncio event loop in this process POSTing `items` requests to a fresh
`outbox-relayer rail-sim` (answering at once) with the relayer's headers and a payload's
bytes, at most the relayer's recommended concurrency in flight, through one client with as
many connections: what the relayer's send loop does, without the database. The figure is
requests per second, with the process CPU per request next to it; the faster client is the
relayer's, and its rate is the ceiling of the relayer's drain through rail-sim on this host.
A run fails on any answer other than 201.
"""

from __future__ import annotations

import asyncio
import resource
import time
import uuid
from typing import TYPE_CHECKING, Final

import aiohttp
import attrs
import click
import httpx

from bench_common import Figure, bench_options, enough_descriptors, interleaved, report
from outbox_relayer.config import RECOMMENDED_CONCURRENCY
from outbox_relayer.curl_client import CurlClient, TlsFiles
from outbox_relayer.rails import MAX_ANSWER_BYTES
from relayer_drain import rail_sim

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Coroutine
    from typing import Any

FIGURE: Final = "http_client_rate"
UNIT: Final = "requests/s"
BODY: Final = b'{"amount":"10.00","creditor":"acct-1","currency":"USD"}'
CREATED: Final = 201


def headers() -> dict[str, str]:
    """The relayer's headers, with a key of its own."""
    key = str(uuid.uuid4())
    return {
        "Content-Type": "application/json",
        "Idempotency-Key": key,
        "X-Outbox-Id": key,
        "X-Instruction-Id": key,
    }


async def post_curl(url: str, items: int) -> None:
    """`items` POSTs through the relayer's own client (libcurl's multi interface, pycurl)."""
    client = CurlClient(
        timeout_seconds=60,
        connections=RECOMMENDED_CONCURRENCY,
        max_answer_bytes=MAX_ANSWER_BYTES,
        tls=TlsFiles(),
    )
    try:

        async def post() -> int:
            lines = [f"{name}: {value}" for name, value in headers().items()]
            return (await client.request(url, headers=lines, body=BODY)).status

        await all_created(post, items)
    finally:
        client.close()


async def post_aiohttp(url: str, items: int) -> None:
    """`items` POSTs through one aiohttp session, RECOMMENDED_CONCURRENCY at a time."""
    connector = aiohttp.TCPConnector(limit=RECOMMENDED_CONCURRENCY)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def post() -> int:
            async with session.post(url, data=BODY, headers=headers()) as answer:
                await answer.read()
                return answer.status

        await all_created(post, items)


async def post_httpx(url: str, items: int) -> None:
    """`items` POSTs through one httpx AsyncClient, RECOMMENDED_CONCURRENCY at a time."""
    limits = httpx.Limits(
        max_connections=RECOMMENDED_CONCURRENCY,
        max_keepalive_connections=RECOMMENDED_CONCURRENCY,
    )
    async with httpx.AsyncClient(limits=limits, timeout=60) as client:

        async def post() -> int:
            answer = await client.post(url, content=BODY, headers=headers())
            return answer.status_code

        await all_created(post, items)


async def all_created(post: Callable[[], Awaitable[int]], items: int) -> None:
    """Run `items` posts, at most RECOMMENDED_CONCURRENCY at once; fail on any non-201."""
    slots = asyncio.Semaphore(RECOMMENDED_CONCURRENCY)

    async def one() -> int:
        async with slots:
            return await post()

    statuses = await asyncio.gather(*(one() for _ in range(items)))
    if refused := [status for status in statuses if status != CREATED]:
        msg = f"{len(refused)} answers were not 201 (first: {refused[0]})"
        raise click.ClickException(msg)


@attrs.define
class Client:
    """One variant: a client's POSTs to a fresh rail-sim, and the CPU each took."""

    send: Callable[[str, int], Coroutine[Any, Any, None]]
    items: int
    cpu_us: list[float] = attrs.field(factory=list)

    def measure(self) -> float:
        """Requests per second of one run."""
        with rail_sim() as simulator:
            cpu, started = process_cpu(), time.monotonic()
            asyncio.run(self.send(simulator.payments_url, self.items))
            elapsed = time.monotonic() - started
            self.cpu_us.append((process_cpu() - cpu) / self.items * 1e6)
        return self.items / elapsed


def process_cpu() -> float:
    """This process's CPU seconds so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@click.command()
@bench_options(default_items=20_000)
def main(url: str | None, items: int, runs: int) -> None:  # noqa: ARG001 - no database here
    """Measure libcurl, aiohttp and httpx's AsyncClient POSTing to rail-sim at the relayer's."""
    enough_descriptors(2 * RECOMMENDED_CONCURRENCY)
    # httpx's pool serves a thousand connections an order of magnitude slower: a tenth of the
    # requests keeps its run as short as aiohttp's.
    clients = {
        "libcurl": Client(post_curl, items),
        "aiohttp": Client(post_aiohttp, items),
        "httpx_async": Client(post_httpx, max(items // 10, 1)),
    }
    values = interleaved(
        runs, [(f"{FIGURE} {name}", client.measure) for name, client in clients.items()], UNIT
    )
    figures = [
        Figure(
            FIGURE,
            name,
            values[f"{FIGURE} {name}"],
            {
                "items": client.items,
                "concurrency": RECOMMENDED_CONCURRENCY,
                "cpu_us_per_request": round(sorted(client.cpu_us)[len(client.cpu_us) // 2]),
            },
            UNIT,
        )
        for name, client in clients.items()
    ]
    report("http_clients", figures, settings={})


if __name__ == "__main__":
    main()
