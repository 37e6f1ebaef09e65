"""A payment rail on loopback: honours idempotency keys, logs every request, fails on cue."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Self

from outbox_relayer.testing._simulated_rail import (
    PAYMENTS_PATH,
    Faults,
    LoggedRequest,
    SimulatedRail,
    SimulatorStats,
)

if TYPE_CHECKING:
    from types import TracebackType

    from outbox_relayer.testing._rail_server import RailServer

__all__ = ["Faults", "LoggedRequest", "RailSimulator", "SimulatorStats", "read_request_log"]


def read_request_log(path: Path) -> list[LoggedRequest]:
    """Every request a simulator logged to `path`, in arrival order."""
    with path.open(encoding="utf-8") as lines:
        return [LoggedRequest(**json.loads(line)) for line in lines if line.strip()]


class RailSimulator:
    """The simulator on an event loop in a background thread: `with RailSimulator() as rail:`."""

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
        self._running: RailServer | None = None

    @property
    def log_path(self) -> Path:
        """The JSON-lines request log (a fresh temporary file unless one was given)."""
        if self._log_path is None:
            self._log_path = Path(tempfile.mkdtemp(prefix="rail-sim-")) / "requests.jsonl"
        return self._log_path

    @property
    def url(self) -> str:
        """The base URL, e.g. http://127.0.0.1:41234."""
        host, port = self._started().address
        return f"http://{host}:{port}"

    @property
    def payments_url(self) -> str:
        """Where a rail POSTs payments."""
        return self.url + PAYMENTS_PATH

    def stats(self) -> SimulatorStats:
        """The counts since start, read in-process (GET /stats serves the same)."""
        return self._started().state.stats()

    def start(self) -> Self:
        """Bind (port 0: a free one) here, so a taken port raises OSError; serve from a thread."""
        # aiohttp.web is imported here, not with outbox_relayer: relayer processes never serve.
        from outbox_relayer.testing._rail_server import RailServer  # noqa: PLC0415

        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        state = SimulatedRail(self.faults, self.log_path, self.replay_status)
        try:
            self._running = RailServer(state, self._address)
        except OSError:
            state.close()
            raise
        return self

    def stop(self) -> None:
        """Wake waiting answers, stop serving, close the socket and the log."""
        if self._running is None:
            return
        server, self._running = self._running, None
        server.stop()
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

    def _started(self) -> RailServer:
        if self._running is None:
            msg = "the rail simulator is not running"
            raise RuntimeError(msg)
        return self._running
