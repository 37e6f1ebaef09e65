"""A blocking view of the async gateway, so that one proof runs against both APIs.

The proofs are written against OutboxStore. `blocking(AsyncOutboxStore)` answers the same
calls by running the async store's coroutines on an event loop of its own, in a thread, and
returning their results (or raising their errors): what is proven is the async code path,
with no second suite to keep in step. Several threads may call at once, as proofs of
concurrency do; their coroutines then run concurrently on the one loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import threading
from typing import TYPE_CHECKING, Any, Final, Self

import psycopg

from outbox_db.async_store import AsyncEnqueueWakeups

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine, Iterator

__all__ = ["Blocking", "EventLoopThread"]

# Objects a proof reaches through the view and uses in turn (a transaction's connection, the
# cursor its execute returns, a listener): seen blocking too, `with` included.
_ASYNC_KINDS: Final = (psycopg.AsyncConnection, psycopg.AsyncCursor, AsyncEnqueueWakeups)


class EventLoopThread:
    """An event loop running in a daemon thread; `run` waits for a coroutine's result."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, coroutine: Coroutine[Any, Any, Any]) -> Any:  # noqa: ANN401 -- the coroutine's
        """Run `coroutine` on the loop; its result, or its error, once it is done."""
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()

    def close(self) -> None:
        """Stop the loop and its thread."""
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()


class Blocking:
    """The methods of an async gateway object, each returning its awaited result.

    `transaction()` gives a blocking view of the AsyncOutboxTransaction, entered and left on
    the loop, as the sync store's context manager is.
    """

    def __init__(self, target: object, loop: EventLoopThread) -> None:
        self._target = target
        self._loop = loop

    def __enter__(self) -> Self:
        self._loop.run(self._target.__aenter__())  # type: ignore[attr-defined]
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._loop.run(self._target.__aexit__(*exc_info))  # type: ignore[attr-defined]

    def __getattr__(self, name: str) -> Any:  # noqa: ANN401 -- whatever the target has
        if name == "transaction":
            return self._transaction
        found = getattr(self._target, name)
        return self._blocking(found) if callable(found) else self._seen(found)

    def _blocking(self, method: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: object, **kwargs: object) -> object:
            result = method(*args, **kwargs)
            return self._seen(self._loop.run(result) if inspect.iscoroutine(result) else result)

        return call

    def _seen(self, found: object) -> object:
        return Blocking(found, self._loop) if isinstance(found, _ASYNC_KINDS) else found

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[Blocking]:
        manager = self._target.transaction()  # type: ignore[attr-defined]
        transaction = self._loop.run(manager.__aenter__())
        try:
            yield Blocking(transaction, self._loop)
        except BaseException as error:
            if not self._loop.run(manager.__aexit__(type(error), error, error.__traceback__)):
                raise
        else:
            self._loop.run(manager.__aexit__(None, None, None))
