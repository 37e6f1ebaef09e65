"""Every proof that takes `outbox_store` runs against both APIs: [sync] and [async].

The async store is seen through `outbox_db.testonly.blocking`, so a proof is written once.
A proof marked `sync_api_only` uses what only the sync store has (wakeups, history).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

import pytest

from outbox_db import AsyncOutboxStore, OutboxStore, Role
from outbox_db.testonly.blocking import Blocking, EventLoopThread

if TYPE_CHECKING:
    from collections.abc import Iterator

    from outbox_db.testonly.pytest_plugin import Database

APIS = ("sync", "async")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """`outbox_store` of each API, or of the sync one for a proof marked sync_api_only."""
    if "outbox_store" in metafunc.fixturenames:
        sync_only = metafunc.definition.get_closest_marker("sync_api_only") is not None
        metafunc.parametrize("outbox_store", APIS[:1] if sync_only else APIS, indirect=True)


@pytest.fixture
def outbox_store(
    request: pytest.FixtureRequest, outbox_database: Database
) -> Iterator[OutboxStore]:
    """A store acting as symphony_executor on this test's database, of the API in the id."""
    if request.param == "sync":
        with OutboxStore.connect(outbox_database.url, role=Role.EXECUTOR, max_size=8) as store:
            yield store
        return
    loop = EventLoopThread()
    try:
        connect = AsyncOutboxStore.connect(outbox_database.url, role=Role.EXECUTOR, max_size=8)
        store = loop.run(connect)
        try:
            yield cast("OutboxStore", Blocking(store, loop))
        finally:
            loop.run(store.close())
    finally:
        loop.close()
