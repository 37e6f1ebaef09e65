"""Sends on an event loop of their own: thousands in flight on one thread, each answer handed on.

The relay loop (relayer.py) claims, renews and records on its own thread, with the database
calls it has always made. The sends run here, as tasks on one event loop in a thread of its
own, so a send in flight costs a task and a socket, not a thread, and one process keeps
thousands in flight. No database call ever runs on this loop: cancelling a send (its lease
lost, the shutdown grace over) cannot leave a transaction half done.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import TYPE_CHECKING

import structlog

from outbox_db import AttemptState
from outbox_relayer.rails import RailAnswer, outcome_unknown

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping, Sequence

    from outbox_db import ClaimedItem, Lease
    from outbox_relayer.rails import Rail
    from outbox_relayer.tracing import RelayTracing

__all__ = ["Dispatcher", "Send"]

_log = structlog.get_logger("outbox_relayer.dispatch")


class Send:
    """One item's send: `done` once answered or cancelled.

    `task` and `cancelled` are the loop's own: read and written on its thread only.
    """

    __slots__ = ("_loop", "cancelled", "done", "task")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.task: asyncio.Task[None] | None = None
        self.cancelled = False
        self.done = False

    def cancel(self) -> None:
        """Stop the send (its answer, if one comes, is never handed on)."""
        self._loop.call_soon_threadsafe(self._cancel)

    def _cancel(self) -> None:
        self.cancelled = True
        if self.task is None:
            self.done = True  # never started
        else:
            self.task.cancel()


class Dispatcher:
    """Runs each submitted item's send and hands `(lease, answer)` to `answered`.

    `answered` is called on the loop's thread, so it must be quick and thread-safe (the relay
    loop gives a queue's `put`). `close` cancels what still runs and closes the rails.
    """

    def __init__(
        self,
        rails: Mapping[str, Rail],
        *,
        tracing: RelayTracing,
        answered: Callable[[Lease, RailAnswer], None],
    ) -> None:
        self._rails = rails
        self._tracing = tracing
        self._answered = answered
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="outbox-dispatch", daemon=True
        )
        self._thread.start()

    def submit(self, claimed: Sequence[tuple[ClaimedItem, str | None]]) -> list[Send]:
        """Start a send of each (item, its trace): one hand-over to the loop for a whole claim."""
        sends = [Send(self._loop) for _ in claimed]
        self._loop.call_soon_threadsafe(self._start, list(zip(sends, claimed, strict=True)))
        return sends

    def wait(self, sends: Iterable[Send], timeout: float) -> None:
        """Return once every one of `sends` is done, or after `timeout` seconds."""
        running = [send for send in sends if not send.done]
        if running:
            waited = asyncio.run_coroutine_threadsafe(self._ended(running, timeout), self._loop)
            waited.result()

    def close(self) -> None:
        """Cancel the sends still running, close the rails' connections, stop the loop."""
        if self._loop.is_closed():
            return
        asyncio.run_coroutine_threadsafe(self._closed(), self._loop).result()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()

    def _start(self, sends: list[tuple[Send, tuple[ClaimedItem, str | None]]]) -> None:
        for send, (item, trace) in sends:
            if not send.cancelled:
                send.task = self._loop.create_task(self._dispatch(send, item, trace))

    @staticmethod
    async def _ended(sends: list[Send], seconds: float) -> None:
        if tasks := [send.task for send in sends if send.task is not None]:
            await asyncio.wait(tasks, timeout=seconds)

    async def _closed(self) -> None:
        running = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
        for rail in self._rails.values():
            await rail.aclose()

    async def _dispatch(self, send: Send, item: ClaimedItem, trace: str | None) -> None:
        try:
            with self._tracing.dispatching(item, trace):
                answer = await self._send(item)
            self._answered(item.lease, answer)
        finally:
            send.done = True

    async def _send(self, item: ClaimedItem) -> RailAnswer:
        """Whatever happens comes back as an answer, never a raise (a cancel aside)."""
        started = time.monotonic()
        try:
            # The claim names only these rails; a database that broke that promise gets a
            # retry recorded (RAIL_CLIENT_ERROR, KeyError), never a dispatch that hangs.
            rail = self._rails[item.rail_type]
            known = await self._reconciled(rail, item) if outcome_unknown(item) else None
            return known or await rail.send(item)
        except Exception as error:  # noqa: BLE001 - a rail client's bug must not kill the worker
            _log.exception(
                "rail_client_failed", rail_type=item.rail_type, error=type(error).__name__
            )
            return RailAnswer(
                state=AttemptState.RETRYABLE,
                error_code="RAIL_CLIENT_ERROR",
                error_message=f"rail client raised {type(error).__name__}",
                latency_ms=round((time.monotonic() - started) * 1000),
            )

    async def _reconciled(self, rail: Rail, item: ClaimedItem) -> RailAnswer | None:
        """The rail's outcome for a key whose last send may have executed, if it knows it.

        A lookup that raises is an unknown outcome, like a None: the item is sent again with
        the same key.
        """
        try:
            answer = await rail.lookup(item)
        except Exception as error:  # noqa: BLE001 - a lookup's bug must not lose the item
            _log.warning("rail_lookup_failed", rail_type=item.rail_type, error=type(error).__name__)
            return None
        if answer is not None:
            _log.info(
                "outcome_reconciled",
                outbox_id=str(item.outbox_id),
                rail_type=item.rail_type,
                state=answer.state.value,
                rail_code=answer.rail_code,
            )
        return answer
