"""A payment rail on loopback: honours idempotency keys, logs every request, fails on cue."""

from __future__ import annotations

import contextlib
import json
import socket
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Self
from urllib.parse import unquote

import attrs

from outbox_relayer._simulated_rail import (
    Faults,
    LoggedRequest,
    SimulatedRail,
    SimulatorStats,
)

if TYPE_CHECKING:
    from types import TracebackType

__all__ = ["Faults", "LoggedRequest", "RailSimulator", "SimulatorStats", "read_request_log"]

PAYMENTS_PATH: Final = "/payments"
MAX_BODY_BYTES: Final = 2 * 1024 * 1024


def read_request_log(path: Path) -> list[LoggedRequest]:
    """Every request a simulator logged to `path`, in arrival order."""
    with path.open(encoding="utf-8") as lines:
        return [LoggedRequest(**json.loads(line)) for line in lines if line.strip()]


class _Handler(BaseHTTPRequestHandler):
    """One request: POST /payments, GET /payments/<key>, GET /stats."""

    protocol_version = "HTTP/1.1"  # keep-alive, as a real rail and httpx's pool expect
    disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms stalls
    server: _Server

    def do_POST(self) -> None:
        """POST /payments: the rail's one write, deduplicated by Idempotency-Key."""
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            self.close_connection = True
            self._send(413, {"error": "PAYLOAD_TOO_LARGE"})
            return
        raw = self.rfile.read(length)
        if len(raw) < length:
            # The client went away mid-request (a killed worker): a real rail acts on nothing
            # it did not fully receive, so neither record nor answer.
            self.close_connection = True
            return
        if self.path != PAYMENTS_PATH:
            self._send(404, {"error": "NOT_FOUND"})
            return
        state = self.server.state
        decision = state.decide(
            self.headers.get("Idempotency-Key"), raw, traceparent=self.headers.get("traceparent")
        )
        if decision.delay_seconds:
            state.stopping.wait(decision.delay_seconds)
        if decision.fault == "drop":
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        if decision.fault == "timeout":
            state.stopping.wait(state.faults.hang_seconds)
        self._send(decision.status, decision.body, decision.headers)

    def do_GET(self) -> None:
        """GET /stats, or GET /payments/<url-quoted key>: the key's recorded outcome."""
        state = self.server.state
        if self.path == "/stats":
            self._send(200, attrs.asdict(state.stats()))
            return
        prefix = PAYMENTS_PATH + "/"
        if not self.path.startswith(prefix):
            self._send(404, {"error": "NOT_FOUND"})
            return
        self._send(*state.lookup(unquote(self.path.removeprefix(prefix))))

    def _send(
        self, status: int, body: dict[str, object], headers: dict[str, str] | None = None
    ) -> None:
        data = json.dumps(body, sort_keys=True).encode()
        with contextlib.suppress(OSError):  # the client may have given up (a timeout fault)
            self.send_response(status)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        """Silent: the JSON request log is the record, not stderr."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # socketserver's default backlog of 5 resets connections when a few relayers open their
    # pools at once: a failure no rail would show, and one the request log could not see.
    request_queue_size = 1024

    def __init__(self, address: tuple[str, int], state: SimulatedRail) -> None:
        super().__init__(address, _Handler)
        self.state = state

    def handle_error(self, request: Any, client_address: Any) -> None:  # noqa: ANN401 - base signature
        """A client that hangs up mid-answer is normal here (timeouts, drops); a bug is not."""
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


class RailSimulator:
    """The simulator in a background thread: `with RailSimulator() as rail:` then `rail.url`."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        faults: Faults | None = None,
        log_path: Path | None = None,
        replay_status: int | None = None,
    ) -> None:
        self.faults = faults or Faults()
        self.replay_status = replay_status  # None: a repeat gets the first status; else this one
        self._address = (host, port)
        self._log_path = log_path
        self._running: tuple[_Server, threading.Thread] | None = None

    @property
    def log_path(self) -> Path:
        """The JSON-lines request log (a fresh temporary file unless one was given)."""
        if self._log_path is None:
            self._log_path = Path(tempfile.mkdtemp(prefix="rail-sim-")) / "requests.jsonl"
        return self._log_path

    @property
    def url(self) -> str:
        """The base URL, e.g. http://127.0.0.1:41234."""
        host, port = self._server().server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def payments_url(self) -> str:
        """Where a rail POSTs payments."""
        return self.url + PAYMENTS_PATH

    def stats(self) -> SimulatorStats:
        """The counts since start, read in-process (GET /stats serves the same)."""
        return self._server().state.stats()

    def start(self) -> Self:
        """Bind (port 0: a free one) and serve from a daemon thread."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        state = SimulatedRail(self.faults, self.log_path, self.replay_status)
        try:
            server = _Server(self._address, state)
        except OSError:
            state.close()
            raise
        thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="rail-sim",
            daemon=True,
        )
        thread.start()
        self._running = (server, thread)
        return self

    def stop(self) -> None:
        """Wake hanging answers, stop serving, close the socket and the log."""
        if self._running is None:
            return
        server, thread = self._running
        self._running = None
        server.state.stopping.set()
        server.shutdown()
        server.server_close()
        thread.join()
        server.state.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _server(self) -> _Server:
        if self._running is None:
            msg = "the rail simulator is not running"
            raise RuntimeError(msg)
        return self._running[0]
