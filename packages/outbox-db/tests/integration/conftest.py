"""Fixtures of the outbox-db proofs: the store of each API, and a service's database.

Every proof that takes `outbox_store` or `reader_store` runs against both APIs, [sync] and
[async]: the async store is seen through `outbox_db.testonly.blocking`, so a proof is
written once.
`service_database` gives the framework integration proofs a service's table and its
producer login; `seeded`, rows in every table for the role-boundary proofs to compare.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, LiteralString, cast
from urllib.parse import urlencode

import attrs
import pytest
from psycopg.conninfo import conninfo_to_dict

from outbox_db import AsyncOutboxStore, OutboxStore, Role
from outbox_db.testonly import expire_lease, outbox_rows, query_no_role
from outbox_db.testonly.blocking import Blocking, EventLoopThread
from outbox_db.testonly.boundaries import WRITES
from outbox_db.testonly.factories import completed_item, make_request
from outbox_db.testonly.pytest_plugin import application_login

if TYPE_CHECKING:
    from collections.abc import Iterator

    from outbox_db.testonly.pytest_plugin import Database

APIS = ("sync", "async")
# What a service would grant its producer login: its own table (docs/adopting.md, step 1).
SERVICE_TABLE: LiteralString = """
CREATE TABLE public.service_orders (order_id text PRIMARY KEY);
GRANT SELECT, INSERT ON public.service_orders TO symphony_producer
"""
ORDERS: LiteralString = "SELECT order_id FROM public.service_orders ORDER BY 1"
ITEMS: LiteralString = "SELECT instruction_id FROM public.payment_outbox_pending ORDER BY 1"


# The stores a proof may take, each of both APIs, and the role each acts as.
STORES = {"outbox_store": Role.EXECUTOR, "reader_store": Role.READONLY}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Each store a proof takes, of each API."""
    for name in STORES.keys() & set(metafunc.fixturenames):
        metafunc.parametrize(name, APIS, indirect=True)


@pytest.fixture
def outbox_store(
    request: pytest.FixtureRequest, outbox_database: Database
) -> Iterator[OutboxStore]:
    """A store acting as symphony_executor on this test's database, of the API in the id."""
    with store_of(request.param, outbox_database.url, STORES["outbox_store"]) as store:
        yield store


@pytest.fixture
def reader_store(
    request: pytest.FixtureRequest, outbox_database: Database
) -> Iterator[OutboxStore]:
    """A store acting as symphony_readonly on this test's database, of the API in the id."""
    with store_of(request.param, outbox_database.url, STORES["reader_store"]) as store:
        yield store


@contextlib.contextmanager
def store_of(api: str, url: str, role: Role) -> Iterator[OutboxStore]:
    """An OutboxStore, or an AsyncOutboxStore seen blocking, acting as `role` on `url`."""
    if api == "sync":
        with OutboxStore.connect(url, role=role, max_size=8) as store:
            yield store
        return
    loop = EventLoopThread()
    try:
        store = loop.run(AsyncOutboxStore.connect(url, role=role, max_size=8))
        try:
            yield cast("OutboxStore", Blocking(store, loop))
        finally:
            loop.run(store.close())
    finally:
        loop.close()


@attrs.frozen
class ServiceDatabase:
    """A migrated database with a service's table, and the service's login (a producer)."""

    owner_url: str
    login_url: str  # a login granted symphony_producer only, the way docs/adopting.md says
    login_user: str

    def committed(self) -> tuple[list[str], list[str]]:
        """The service's orders and the outbox items' instruction ids, both as committed."""
        orders = [order for (order,) in query_no_role(self.owner_url, ORDERS)]
        items = [instruction for (instruction,) in query_no_role(self.owner_url, ITEMS)]
        return orders, items

    def login_as_url(self, scheme: str) -> str:
        """The login as a URL with `scheme` (postgresql+psycopg), every part in its query."""
        parts = conninfo_to_dict(self.login_url)
        return f"{scheme}:///?{urlencode({key: str(value) for key, value in parts.items()})}"


@pytest.fixture
def service_database(outbox_database: Database) -> Iterator[ServiceDatabase]:
    """This test's database with the service's table, and a producer login dropped afterwards."""
    query_no_role(outbox_database.url, SERVICE_TABLE)
    with application_login(outbox_database, Role.PRODUCER) as login:
        yield ServiceDatabase(
            owner_url=outbox_database.url, login_url=login.url, login_user=login.name
        )


@pytest.fixture
def seeded(outbox_database: Database, outbox_store: OutboxStore) -> list[tuple[object, ...]]:
    """Rows in every table: one completed item, one expired lease, one due item; the snapshot."""
    completed_item(outbox_store)
    outbox_store.enqueue(make_request())
    (expired,) = outbox_store.claim("worker-1", batch_size=1, lease_seconds=30)
    expire_lease(outbox_database.url, expired.outbox_id)
    outbox_store.enqueue(make_request())
    rows = outbox_rows(outbox_database.url, versions=True)
    tables = {row[0] for row in rows}
    assert tables == set(WRITES), "every table must hold a row a write could change"
    return rows
