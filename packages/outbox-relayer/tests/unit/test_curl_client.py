"""The rails' HTTP client (libcurl on the event loop) against real servers on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from typing import TYPE_CHECKING

import pytest
import trustme
from aiohttp import web

from outbox_db import AttemptState, ClaimedItem
from outbox_relayer import RailEndpoint
from outbox_relayer.curl_client import CurlClient, TlsFiles, TransferFailed
from outbox_relayer.rails import MAX_ANSWER_BYTES
from outbox_relayer.testing import Faults, RailSimulator, read_request_log
from relaying import BlockingRail, HeaderRecorder

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterator
    from pathlib import Path

    from outbox_db.testonly.blocking import EventLoopThread


@contextlib.contextmanager
def _serving(
    loop: EventLoopThread, handler: Callable[[web.Request], Awaitable[web.Response]]
) -> Iterator[str]:
    """`handler` answering POST /payments on loopback, until the block ends: its URL."""

    async def start() -> tuple[web.AppRunner, str]:
        app = web.Application()
        app.router.add_post("/payments", handler)
        runner = web.AppRunner(app)
        await runner.setup()
        listener = socket.create_server(("127.0.0.1", 0))
        await web.SockSite(runner, listener).start()
        return runner, f"http://127.0.0.1:{listener.getsockname()[1]}/payments"

    runner, url = loop.run(start())
    try:
        yield url
    finally:
        loop.run(runner.cleanup())


@pytest.fixture
def big_answer(loop: EventLoopThread) -> Iterator[str]:
    """A server answering every POST 503 with a Retry-After in lower case and a 1 MiB body."""

    async def answer(_: web.Request) -> web.Response:
        return web.Response(status=503, body=b"x" * 2**20, headers={"retry-after": "7"})

    with _serving(loop, answer) as url:
        yield url


async def _client() -> CurlClient:
    return CurlClient(
        timeout_seconds=5, connections=4, max_answer_bytes=MAX_ANSWER_BYTES, tls=TlsFiles()
    )


def test_an_answer_is_read_up_to_the_limit_and_its_headers_in_any_case(
    loop: EventLoopThread,
    big_answer: str,
    blocking_rail: Callable[[RailEndpoint], BlockingRail],
    make_item: Callable[..., ClaimedItem],
) -> None:
    """A 1 MiB answer is cut at MAX_ANSWER_BYTES, still classified, its retry-after read."""

    async def post() -> tuple[int, int]:
        client = await _client()
        try:
            answer = await client.request(big_answer, headers=[], body=b"{}")
        finally:
            client.close()
        return answer.status, len(answer.body)

    assert loop.run(post()) == (503, MAX_ANSWER_BYTES)
    answer = blocking_rail(RailEndpoint(rail_type="rtp", url=big_answer)).send(make_item())
    assert (answer.state, answer.error_code) == (AttemptState.RETRYABLE, "RAIL_UNAVAILABLE")
    assert answer.retry_after_seconds == 7.0


def test_proxy_variables_of_the_environment_are_not_used(
    monkeypatch: pytest.MonkeyPatch,
    start_simulator: Callable[..., RailSimulator],
    rail_for: Callable[..., BlockingRail],
    make_item: Callable[..., ClaimedItem],
) -> None:
    """A payment goes to the rail's URL only, never through a proxy the environment names."""
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")  # discard: nothing answers there
    simulator = start_simulator()

    answer = rail_for(simulator).send(make_item())

    assert answer.state is AttemptState.DISPATCHED
    assert simulator.stats().requests == 1


def test_a_large_payload_is_sent_without_waiting_for_100_continue(
    loop: EventLoopThread,
    blocking_rail: Callable[[RailEndpoint], BlockingRail],
    make_item: Callable[..., ClaimedItem],
) -> None:
    """A body over 1 MiB goes at once: no `Expect: 100-continue` for a rail to leave unanswered."""
    with HeaderRecorder(loop) as rail_server:
        rail = blocking_rail(RailEndpoint(rail_type="rtp", url=rail_server.url))
        answer = rail.send(make_item(payload={"memo": "m" * 1_200_000}))

    assert answer.state is AttemptState.DISPATCHED
    assert "Expect" not in rail_server.requests[0]
    assert answer.latency_ms < 1000


def test_the_systems_cas_verify_a_rail_without_a_ca_file(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    loop: EventLoopThread,
    blocking_rail: Callable[[RailEndpoint], BlockingRail],
    make_item: Callable[..., ClaimedItem],
) -> None:
    """Without `ca_file`, the CAs Python's ssl module trusts (here SSL_CERT_FILE's) are used."""
    authority = trustme.CA()
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("localhost").configure_cert(server)
    bundle = tmp_path / "system-cas.pem"
    authority.cert_pem.write_to_path(str(bundle))
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))

    with HeaderRecorder(loop, tls=server) as rail_server:
        rail = blocking_rail(RailEndpoint(rail_type="rtp", url=rail_server.url))
        answer = rail.send(make_item())
        rail.close()  # before the server: its TLS shutdown waits for the idle client

    assert (answer.state, answer.rail_reference) == (AttemptState.DISPATCHED, "ref-1")


def test_a_cancelled_request_leaves_the_client_serving_the_next(
    loop: EventLoopThread, start_simulator: Callable[..., RailSimulator]
) -> None:
    """Cancelling a send mid-flight (a lease lost) stops its transfer; the next one is served."""
    slow = start_simulator(Faults(latency_ms=5_000))
    fast = start_simulator()

    async def cancel_then_send() -> tuple[bool, int]:
        client = await _client()
        try:
            stuck = asyncio.ensure_future(
                client.request(slow.payments_url, headers=_headers("k-1"), body=b"{}")
            )
            await asyncio.sleep(0.2)
            stuck.cancel()
            await asyncio.gather(stuck, return_exceptions=True)
            answer = await client.request(fast.payments_url, headers=_headers("k-2"), body=b"{}")
        finally:
            client.close()
        return stuck.cancelled(), answer.status

    assert loop.run(cancel_then_send()) == (True, 201)


def test_a_refused_connection_is_named_by_curls_code_never_its_message(
    loop: EventLoopThread, start_simulator: Callable[..., RailSimulator]
) -> None:
    """The failure's text is curl's code name: curl's own message names the host and port."""
    stopped = start_simulator()
    url = stopped.payments_url
    stopped.stop()

    async def post() -> TransferFailed:
        client = await _client()
        try:
            await client.request(url, headers=[], body=b"{}")
        except TransferFailed as failure:
            return failure
        finally:
            client.close()
        pytest.fail("a closed port answered")

    failure = loop.run(post())
    assert (str(failure), failure.connection_failed) == ("E_COULDNT_CONNECT", True)


def test_a_send_whose_kept_alive_connection_dies_unanswered_is_not_sent_again(
    loop: EventLoopThread,
    blocking_rail: Callable[[RailEndpoint], BlockingRail],
    make_item: Callable[..., ClaimedItem],
) -> None:
    """The rail acts on the second POST of a connection and hangs up: one request, one retry.

    curl would re-send such a request on a new connection by itself; a payment's send must
    be the one attempt the ledger records, so it is RAIL_CONNECTION_ERROR and the relayer's
    own retry (recorded, with backoff, and the same key) sends it again.
    """
    received: list[str] = []

    async def act_then_hang_up_on_the_second(request: web.Request) -> web.Response:
        received.append(request.headers["Idempotency-Key"])
        if len(received) == 2 and request.transport is not None:
            request.transport.close()
        return web.json_response({"reference": f"ref-{len(received)}"}, status=201)

    with _serving(loop, act_then_hang_up_on_the_second) as url:
        rail = blocking_rail(RailEndpoint(rail_type="rtp", url=url))
        first, second = rail.send(make_item()), rail.send(make_item())
        rail.close()

    assert first.state is AttemptState.DISPATCHED
    assert (second.state, second.error_code) == (AttemptState.RETRYABLE, "RAIL_CONNECTION_ERROR")
    assert second.error_message == "connection failed: E_SEND_FAIL_REWIND"
    assert len(received) == 2


def test_a_key_beyond_ascii_reaches_the_rail_as_utf8(
    start_simulator: Callable[..., RailSimulator],
    rail_for: Callable[..., BlockingRail],
    make_item: Callable[..., ClaimedItem],
) -> None:
    """Keys are text: one with accents is sent (as UTF-8) and the rail records it as given."""
    simulator = start_simulator()

    answer = rail_for(simulator).send(make_item(idempotency_key="clé-ü-1"))

    assert answer.state is AttemptState.DISPATCHED
    assert [entry.idempotency_key for entry in read_request_log(simulator.log_path)] == ["clé-ü-1"]


@pytest.mark.parametrize("forged", ["k\r\nX-Forged: 1", "k\nX-Forged: 1", "k\x00"])
def test_a_header_with_a_line_break_is_refused_before_anything_is_sent(
    forged: str, loop: EventLoopThread, start_simulator: Callable[..., RailSimulator]
) -> None:
    """The database refuses such keys; the client refuses them too: no forged header leaves."""
    simulator = start_simulator()

    async def post() -> None:
        client = await _client()
        try:
            await client.request(simulator.payments_url, headers=_headers(forged), body=b"{}")
        finally:
            client.close()

    with pytest.raises(ValueError, match="line break"):
        loop.run(post())
    assert simulator.stats().requests == 0


def _headers(key: str) -> list[str]:
    return ["Content-Type: application/json", f"Idempotency-Key: {key}"]
