"""HTTP requests through libcurl's multi interface (pycurl), driven by one asyncio event loop.

A relayer's sends are thousands of small requests at once. libcurl runs each transfer (the
connection pool, TLS, HTTP parsing, timeouts) in C, so a send costs the event loop about
half the CPU aiohttp's client took (`http_clients.py`, docs/scaling.md "Sending over HTTP"),
and the relay loop and the recorder keep the rest. A `CurlClient` serves the event loop it
was opened on: its sockets are that loop's readers and writers, its timer that loop's.

Every request is HTTP/1.1 (one request per connection at a time, as the rail's connection
cap counts them), with no proxy from the environment, no redirect, no cookie and no
`Expect: 100-continue` wait. A POST is sent once: curl re-sends a request whose kept-alive
connection died before any answer, and a payment's send must be one recorded attempt, so
its body cannot be rewound for that.
"""

from __future__ import annotations

import asyncio
import functools
import io
import re
import ssl
from collections.abc import Mapping
from typing import TYPE_CHECKING, Final

import attrs
import pycurl

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence
    from pathlib import Path

__all__ = ["Answer", "CurlClient", "TlsFiles", "TransferFailed"]

# curl's codes for a transfer that never got an answer started: the connection (or its TLS
# handshake) failed, or the rail closed it without answering.
_CONNECTION_CODES: Final = frozenset(
    getattr(pycurl, name)
    for name in (
        "E_COULDNT_RESOLVE_HOST",
        "E_SEND_FAIL_REWIND",  # a kept-alive connection died before any answer: not re-sent
        "E_COULDNT_CONNECT",
        "E_GOT_NOTHING",
        "E_SEND_ERROR",
        "E_RECV_ERROR",
        "E_SSL_CONNECT_ERROR",
        "E_PEER_FAILED_VERIFICATION",
        "E_SSL_CERTPROBLEM",
        "E_SSL_CIPHER",
        "E_SSL_CACERT_BADFILE",
        "E_SSL_ISSUER_ERROR",
    )
)
_CODE_NAMES: Final = {
    value: name
    for name, value in sorted(vars(pycurl).items(), reverse=True)
    if name.startswith("E_") and isinstance(value, int)
}


_LINE_BREAKS: Final = re.compile(r"[\r\n\x00]")


class TransferFailed(Exception):
    """A request that ended without a (complete) answer; `code` is curl's error code."""

    def __init__(self, code: int) -> None:
        self.code = code
        self.name = _CODE_NAMES.get(code, f"E_{code}")
        super().__init__(self.name)  # never curl's message: it can name the URL

    @property
    def timed_out(self) -> bool:
        """Whether the rail's timeout ended it."""
        return self.code == pycurl.E_OPERATION_TIMEDOUT

    @property
    def connection_failed(self) -> bool:
        """Whether no answer began: connecting, the TLS handshake, or the rail hung up."""
        return self.code in _CONNECTION_CODES


class _Headers(Mapping[str, str]):
    """The answer's header lines, parsed (names case-insensitive) only if one is asked for."""

    def __init__(self, lines: Sequence[bytes]) -> None:
        self._lines = lines

    @functools.cached_property
    def _parsed(self) -> dict[str, str]:
        parsed: dict[str, str] = {}
        for line in self._lines:
            if line.startswith(b"HTTP/"):  # a new answer (after a 1xx): its headers only
                parsed.clear()
                continue
            name, colon, value = line.decode("latin-1").partition(":")
            if colon:
                parsed[name.strip().lower()] = value.strip()
        return parsed

    def __getitem__(self, name: str) -> str:
        return self._parsed[name.lower()]

    def __iter__(self) -> Iterator[str]:
        return iter(self._parsed)

    def __len__(self) -> int:
        return len(self._parsed)


@attrs.frozen
class Answer:
    """The rail's answer: status, headers and at most the client's `max_answer_bytes` of body."""

    status: int
    headers: Mapping[str, str]
    body: bytes


@attrs.frozen(kw_only=True)
class TlsFiles:
    """The CAs a rail is verified against (None: the system's), and the client certificate."""

    ca_file: Path | None = None
    client_cert_file: Path | None = None
    client_key_file: Path | None = None

    def options(self) -> list[tuple[int, str]]:
        """The curl options for them; the system's CAs are the ones Python's ssl module uses."""
        system = ssl.get_default_verify_paths()
        found = [
            (pycurl.CAINFO, self.ca_file or system.cafile),
            (pycurl.CAPATH, None if self.ca_file else system.capath),
            (pycurl.SSLCERT, self.client_cert_file),
            (pycurl.SSLKEY, self.client_key_file),
        ]
        return [(option, str(value)) for option, value in found if value is not None]


class _Body:
    """Collects an answer's body up to a limit; past it, the transfer stops (the rest unread)."""

    __slots__ = ("chunks", "room", "truncated")

    def __init__(self, limit: int) -> None:
        self.chunks: list[bytes] = []
        self.room = limit
        self.truncated = False

    def write(self, chunk: bytes) -> int | None:
        if len(chunk) <= self.room:
            self.chunks.append(chunk)
            self.room -= len(chunk)
            return None
        self.chunks.append(chunk[: self.room])
        self.room, self.truncated = 0, True
        return 0  # fewer bytes than given: curl ends the transfer (E_WRITE_ERROR)


def _header_line(line: str) -> bytes:
    """`Name: value` as UTF-8 (as aiohttp sent it); a line break or NUL would forge headers."""
    if _LINE_BREAKS.search(line):
        msg = "a header line holds a line break or NUL"
        raise ValueError(msg)
    return line.encode()


def _no_rewind(_offset: int, _origin: int) -> int:
    return pycurl.SEEKFUNC_CANTSEEK


class CurlClient:
    """One libcurl multi handle on the running event loop: at most `connections` at once.

    A request waiting for a free connection waits within its timeout. Cancelling a request
    removes its transfer (its connection is closed, not reused).
    """

    def __init__(
        self, *, timeout_seconds: float, connections: int, max_answer_bytes: int, tls: TlsFiles
    ) -> None:
        self._loop = asyncio.get_running_loop()
        self._max_answer_bytes = max_answer_bytes
        self._options: list[tuple[int, int | str]] = [
            (pycurl.NOSIGNAL, 1),
            (pycurl.TIMEOUT_MS, max(1, round(timeout_seconds * 1000))),
            (pycurl.PROXY, ""),  # "" disables the proxy variables of the environment
            (pycurl.PROTOCOLS, pycurl.PROTO_HTTP | pycurl.PROTO_HTTPS),
            (pycurl.HTTP_VERSION, pycurl.CURL_HTTP_VERSION_1_1),
            *tls.options(),
        ]
        self._multi = pycurl.CurlMulti()
        self._multi.setopt(pycurl.M_SOCKETFUNCTION, self._watch)
        self._multi.setopt(pycurl.M_TIMERFUNCTION, self._schedule)
        self._multi.setopt(pycurl.M_MAX_TOTAL_CONNECTIONS, connections)
        self._multi.setopt(pycurl.M_MAXCONNECTS, connections)
        self._timer: asyncio.TimerHandle | None = None
        self._watched: dict[int, int] = {}  # socket: the POLL_* events watched on it
        self._idle: list[pycurl.Curl] = []  # handles of finished requests, reset for the next
        self._running: dict[pycurl.Curl, tuple[asyncio.Future[None], _Body]] = {}

    async def request(
        self, url: str, *, headers: Sequence[str], body: bytes | None = None
    ) -> Answer:
        """POST `body` (GET without one); raises TransferFailed when no whole answer came."""
        lines = [*map(_header_line, headers), b"Expect:"]  # refused before anything is sent
        handle = self._idle.pop() if self._idle else pycurl.Curl()
        received = _Body(self._max_answer_bytes)
        header_lines: list[bytes] = []
        try:
            for option, value in self._options:
                handle.setopt(option, value)
            handle.setopt(pycurl.URL, url)
            handle.setopt(pycurl.HTTPHEADER, lines)
            if body is not None:
                # Read from a stream that cannot rewind, not handed over whole (POSTFIELDS): a
                # request on a kept-alive connection that dies unanswered is then a failure
                # (E_SEND_FAIL_REWIND), never re-sent by curl behind the ledger's back.
                handle.setopt(pycurl.POST, 1)
                handle.setopt(pycurl.POSTFIELDSIZE_LARGE, len(body))
                handle.setopt(pycurl.READFUNCTION, io.BytesIO(body).read)
                handle.setopt(pycurl.SEEKFUNCTION, _no_rewind)
            handle.setopt(pycurl.WRITEFUNCTION, received.write)
            handle.setopt(pycurl.HEADERFUNCTION, header_lines.append)
            done: asyncio.Future[None] = self._loop.create_future()
            self._multi.add_handle(handle)
            self._running[handle] = (done, received)
            await done
            status = handle.getinfo(pycurl.RESPONSE_CODE)
            return Answer(status, _Headers(header_lines), b"".join(received.chunks))
        finally:
            if self._running.pop(handle, None) is not None:  # cancelled: stop its transfer
                self._multi.remove_handle(handle)
            handle.reset()  # its options cleared; the connection it used stays in the pool
            self._idle.append(handle)

    def close(self) -> None:
        """Stop every transfer and close every connection."""
        for handle, (done, _) in list(self._running.items()):
            self._multi.remove_handle(handle)
            done.cancel()
        self._running.clear()
        if self._timer is not None:
            self._timer.cancel()
        for fd in list(self._watched):
            self._watch(pycurl.POLL_REMOVE, fd, None, None)
        self._multi.close()
        for handle in self._idle:
            handle.close()
        self._idle.clear()

    def _watch(self, what: int, fd: int, _multi: object, _data: object) -> None:
        """The socket callback of curl: watch `fd` for what curl now waits on, and only that."""
        wanted = 0 if what == pycurl.POLL_REMOVE else what
        watched = self._watched.pop(fd, 0)
        if wanted:
            self._watched[fd] = wanted
        for event, add, remove, selected in (
            (pycurl.POLL_IN, self._loop.add_reader, self._loop.remove_reader, pycurl.CSELECT_IN),
            (pycurl.POLL_OUT, self._loop.add_writer, self._loop.remove_writer, pycurl.CSELECT_OUT),
        ):
            if wanted & event and not watched & event:
                add(fd, self._act, fd, selected)
            elif watched & event and not wanted & event:
                remove(fd)

    def _schedule(self, milliseconds: int) -> None:
        """The timer callback of curl: act on its timeouts after `milliseconds` (-1: no timer)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if milliseconds >= 0:
            self._timer = self._loop.call_later(
                milliseconds / 1000, self._act, pycurl.SOCKET_TIMEOUT, 0
            )

    def _act(self, fd: int, events: int) -> None:
        """Let curl progress on `fd` (or on its timeouts), then settle what finished."""
        self._multi.socket_action(fd, events)
        while True:
            queued, succeeded, failed = self._multi.info_read()
            for handle in succeeded:
                self._settle(handle, None)
            for handle, code, _message in failed:
                self._settle(handle, code)
            if not queued:
                return

    def _settle(self, handle: pycurl.Curl, code: int | None) -> None:
        self._multi.remove_handle(handle)
        done, received = self._running.pop(handle)
        if done.done():
            return
        if code is None or (code == pycurl.E_WRITE_ERROR and received.truncated):
            done.set_result(None)
        else:
            done.set_exception(TransferFailed(code))
