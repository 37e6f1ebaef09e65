"""Proofs: Django's `transaction.atomic()` carries the outbox items (join_atomic).

A service on Django's PostgreSQL backend over psycopg 3 writes its row through Django's
cursor and enqueues through ``outbox_db.integrations.django.join_atomic()``: the row and the
item commit with the atomic block, an exception in the block leaves neither, and a refused
enqueue (IdempotencyConflict) is undone alone, so the block goes on to commit the rest.
Outside an atomic block (Django's autocommit) and on another backend it is refused before
anything is sent.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final, LiteralString

import django
import pytest
from django.conf import settings
from django.db import connections, transaction
from psycopg.conninfo import conninfo_to_dict

from outbox_db import IdempotencyConflict, OutboxError
from outbox_db.integrations.django import join_atomic
from outbox_db.testonly.factories import duplicate_of, make_request

if TYPE_CHECKING:
    from collections.abc import Iterator

    from integration.conftest import ServiceDatabase

SERVICE: Final = "default"
OTHER_BACKEND: Final = "sqlite"
RECORD_ORDER: LiteralString = "INSERT INTO public.service_orders VALUES (%s)"


class _Abandoned(Exception):
    """Whatever makes a view give up before its commit."""


@pytest.fixture(scope="module", autouse=True)
def _django_settings() -> Iterator[None]:
    """Minimal settings, once per process: the service's database and a SQLite one."""
    if not settings.configured:
        settings.configure(
            DATABASES={
                # Pointed at each test's database by `service` below.
                SERVICE: {"ENGINE": "django.db.backends.postgresql", "NAME": "unset"},
                OTHER_BACKEND: {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"},
            },
            USE_TZ=True,
        )
        django.setup()
    yield
    connections.close_all()


@pytest.fixture
def service(service_database: ServiceDatabase) -> Iterator[ServiceDatabase]:
    """Django's default database is this test's, as the service's producer login."""
    parts = conninfo_to_dict(service_database.login_url)
    connection = connections[SERVICE]
    connection.settings_dict.update(
        NAME=parts["dbname"],
        USER=parts["user"],
        PASSWORD=parts.get("password", ""),
        HOST=parts.get("host", ""),
        PORT=parts.get("port", ""),
    )
    yield service_database
    connection.close()


def record_order(order_id: str) -> None:
    """The service's own row, through Django's cursor on its default database."""
    with connections[SERVICE].cursor() as cursor:
        cursor.execute(RECORD_ORDER, [order_id])


def record_then_abandon() -> None:
    """The row and the item in one atomic block, which then fails before its commit."""
    with transaction.atomic():
        record_order("order-1")
        assert join_atomic().enqueue(make_request()).created
        raise _Abandoned


def test_the_atomic_block_commits_the_row_and_the_item_together(service: ServiceDatabase) -> None:
    """One `transaction.atomic()` block: the row and the item are committed by its end."""
    request = make_request()
    with transaction.atomic():
        record_order("order-1")
        created = join_atomic().enqueue(request)

    assert created.created
    assert (["order-1"], [request.instruction_id]) == service.committed()


def test_an_exception_in_the_block_leaves_neither_the_row_nor_the_item(
    service: ServiceDatabase,
) -> None:
    """Both written, then the block fails: Django's rollback takes both."""
    with pytest.raises(_Abandoned):
        record_then_abandon()

    assert service.committed() == ([], [])


def test_a_caught_conflict_leaves_the_block_to_commit_the_rest(service: ServiceDatabase) -> None:
    """Row, item, refused duplicate, row, item: the block's commit keeps all but the duplicate."""
    first, second = make_request(), make_request()
    with transaction.atomic():
        record_order("order-1")
        join_atomic().enqueue(first)
        with pytest.raises(IdempotencyConflict) as refused:
            join_atomic().enqueue(duplicate_of(first))
        record_order("order-2")  # would fail with 25P02 had the conflict aborted the transaction
        join_atomic().enqueue(second)

    assert refused.value.sqlstate == "P7001"
    expected = (["order-1", "order-2"], sorted([first.instruction_id, second.instruction_id]))
    assert expected == service.committed()


def test_outside_an_atomic_block_it_is_refused_with_the_fix(service: ServiceDatabase) -> None:
    """Django's autocommit would commit the item at once, whatever the view then does."""
    with pytest.raises(OutboxError) as refused:
        join_atomic().enqueue(make_request())

    assert "transaction.atomic(" in str(refused.value)
    assert service.committed() == ([], [])


def test_another_backend_is_refused_with_the_fix() -> None:
    """SQLite stands in for any backend but PostgreSQL over psycopg 3 (psycopg2 included)."""
    with transaction.atomic(using=OTHER_BACKEND), pytest.raises(OutboxError) as refused:
        join_atomic(using=OTHER_BACKEND)

    assert "django.db.backends.postgresql" in str(refused.value)
