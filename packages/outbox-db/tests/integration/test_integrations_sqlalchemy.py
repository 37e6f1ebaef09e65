"""Proofs: a SQLAlchemy 2 session's own transaction carries the outbox items.

A service writes its rows with the ORM over the psycopg 3 dialect and enqueues through
``outbox_db.integrations.sqlalchemy``: ``join_session(session)`` for a Session,
``await join_async_session(session)`` for an AsyncSession. The row and the item commit
together, an exception in the block leaves neither, and a refused enqueue
(IdempotencyConflict) is undone alone, so the session's transaction goes on to commit the
rest. A session that cannot carry the item (another driver, AUTOCOMMIT, no transaction) is
refused before anything is sent.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import create_engine
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from outbox_db import IdempotencyConflict, OutboxError
from outbox_db.integrations.sqlalchemy import join_async_session, join_session
from outbox_db.testonly.factories import duplicate_of, make_request

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator

    from sqlalchemy import Engine

    from integration.conftest import ServiceDatabase
    from outbox_db import EnqueueRequest, EnqueueResult


class Base(DeclarativeBase):
    """The service's ORM models."""


class Order(Base):
    """The service's own row, in the table the fixture made (service_orders)."""

    __tablename__ = "service_orders"
    order_id: Mapped[str] = mapped_column(primary_key=True)


class _Abandoned(Exception):
    """Whatever makes a service give up before its commit."""


@pytest.fixture
def engine(service_database: ServiceDatabase) -> Iterator[Engine]:
    """The service's engine: the psycopg 3 dialect, logged in as its producer login."""
    engine = create_engine(service_database.login_as_url("postgresql+psycopg"))
    yield engine
    engine.dispose()


def record_then_abandon(engine: Engine) -> None:
    """The row (flushed) and the item in one session block, which then fails before its commit."""
    with Session(engine) as session, session.begin():
        session.add(Order(order_id="order-1"))
        session.flush()
        assert join_session(session).enqueue(make_request()).created
        raise _Abandoned


def test_the_session_commits_the_row_and_the_item_together(
    service_database: ServiceDatabase, engine: Engine
) -> None:
    """One `session.begin()` block: the ORM row and the item are committed by its end."""
    request = make_request()
    with Session(engine) as session, session.begin():
        session.add(Order(order_id="order-1"))
        created = join_session(session).enqueue(request)

    assert created.created
    assert (["order-1"], [request.instruction_id]) == service_database.committed()


def test_an_exception_in_the_block_leaves_neither_the_row_nor_the_item(
    service_database: ServiceDatabase, engine: Engine
) -> None:
    """Both written (the row flushed), then the block fails: the session's rollback takes both."""
    with pytest.raises(_Abandoned):
        record_then_abandon(engine)

    assert service_database.committed() == ([], [])


def test_a_caught_conflict_leaves_the_session_to_commit_the_rest(
    service_database: ServiceDatabase, engine: Engine
) -> None:
    """Row, item, refused duplicate, row, item: the commit keeps all but the duplicate."""
    first, second = make_request(), make_request()
    with Session(engine) as session, session.begin():
        session.add(Order(order_id="order-1"))
        session.flush()
        join_session(session).enqueue(first)
        with pytest.raises(IdempotencyConflict) as refused:
            join_session(session).enqueue(duplicate_of(first))
        session.add(Order(order_id="order-2"))
        session.flush()  # would fail with 25P02 had the conflict aborted the transaction
        join_session(session).enqueue(second)

    assert refused.value.sqlstate == "P7001"
    expected = (["order-1", "order-2"], sorted([first.instruction_id, second.instruction_id]))
    assert expected == service_database.committed()


def test_a_session_on_another_driver_is_refused_with_the_url_to_use() -> None:
    """SQLite stands in for any driver but psycopg 3 (psycopg2 included): nothing to join."""
    with Session(create_engine("sqlite://")) as session, pytest.raises(OutboxError) as refused:
        join_session(session)

    assert "postgresql+psycopg://" in str(refused.value)


def test_an_autocommit_session_is_refused(
    service_database: ServiceDatabase, engine: Engine
) -> None:
    """AUTOCOMMIT would commit the item at once, whatever the service's work then does."""
    autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
    with Session(autocommit) as session, pytest.raises(OutboxError) as refused:
        join_session(session).enqueue(make_request())

    assert "AUTOCOMMIT" in str(refused.value)
    assert service_database.committed() == ([], [])


def test_a_session_without_a_transaction_is_refused_with_the_fix(engine: Engine) -> None:
    """A session made with autobegin=False has no transaction until `session.begin()`."""
    with Session(engine, autobegin=False) as session, pytest.raises(OutboxError) as refused:
        join_session(session)

    assert "session.begin()" in str(refused.value)


# --- AsyncSession (postgresql+psycopg_async://), each proof one asyncio.run -----------------


@contextlib.asynccontextmanager
async def session_block(
    service_database: ServiceDatabase, **options: object
) -> AsyncIterator[AsyncSession]:
    """An AsyncSession in a `session.begin()` block, its engine disposed of before the loop ends."""
    engine = create_async_engine(
        service_database.login_as_url("postgresql+psycopg_async"), **options
    )
    try:
        async with AsyncSession(engine) as session, session.begin():
            yield session
    finally:
        await engine.dispose()


async def commit_async(service_database: ServiceDatabase, request: EnqueueRequest) -> EnqueueResult:
    """One AsyncSession block: an ORM row and the item."""
    async with session_block(service_database) as session:
        session.add(Order(order_id="order-1"))
        return await (await join_async_session(session)).enqueue(request)


async def abandon_async(service_database: ServiceDatabase) -> None:
    """The row (flushed) and the item in one AsyncSession block, which then fails."""
    async with session_block(service_database) as session:
        session.add(Order(order_id="order-1"))
        await session.flush()
        assert (await (await join_async_session(session)).enqueue(make_request())).created
        raise _Abandoned


async def conflict_async(
    service_database: ServiceDatabase, first: EnqueueRequest, second: EnqueueRequest
) -> str | None:
    """Row, item, refused duplicate (its SQLSTATE returned), row, item, in one AsyncSession block."""
    async with session_block(service_database) as session:
        session.add(Order(order_id="order-1"))
        await session.flush()
        outbox = await join_async_session(session)
        await outbox.enqueue(first)
        with pytest.raises(IdempotencyConflict) as refused:
            await outbox.enqueue(duplicate_of(first))
        session.add(Order(order_id="order-2"))
        await session.flush()  # would fail with 25P02 had the conflict aborted the transaction
        await outbox.enqueue(second)
    return refused.value.sqlstate


async def join_autocommit_async(service_database: ServiceDatabase) -> None:
    """join_async_session on an AsyncSession whose engine is in AUTOCOMMIT."""
    async with session_block(service_database, isolation_level="AUTOCOMMIT") as session:
        await join_async_session(session)


def test_an_async_session_commits_the_row_and_the_item_together(
    service_database: ServiceDatabase,
) -> None:
    """AsyncSession: the ORM row and the item are committed by the end of the block."""
    request = make_request()
    created = asyncio.run(commit_async(service_database, request))

    assert created.created
    assert (["order-1"], [request.instruction_id]) == service_database.committed()


def test_an_exception_in_an_async_session_block_leaves_neither(
    service_database: ServiceDatabase,
) -> None:
    """AsyncSession: both written, then the block fails; the rollback takes both."""
    with pytest.raises(_Abandoned):
        asyncio.run(abandon_async(service_database))

    assert service_database.committed() == ([], [])


def test_a_caught_conflict_leaves_the_async_session_to_commit_the_rest(
    service_database: ServiceDatabase,
) -> None:
    """AsyncSession: the commit keeps both rows and both items, all but the duplicate."""
    first, second = make_request(), make_request()
    sqlstate = asyncio.run(conflict_async(service_database, first, second))

    assert sqlstate == "P7001"
    expected = (["order-1", "order-2"], sorted([first.instruction_id, second.instruction_id]))
    assert expected == service_database.committed()


def test_an_autocommit_async_session_is_refused(service_database: ServiceDatabase) -> None:
    """AsyncSession in AUTOCOMMIT: the item would commit at once, so nothing is joined."""
    with pytest.raises(OutboxError) as refused:
        asyncio.run(join_autocommit_async(service_database))

    assert "AUTOCOMMIT" in str(refused.value)
