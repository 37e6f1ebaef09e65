"""Proofs: hostile input to every public outbox-db function is refused clearly and writes nothing.

Hypothesis feeds the store's public methods (and OutboxTransaction.enqueue) malformed values:
identifiers empty, blank, huge, with NUL bytes, control characters or lone surrogates (what
invalid UTF-8 from a command line becomes in Python), batch sizes, lease lengths and delays
negative or beyond any integer type, payloads of the wrong JSON type, huge, nested deeply,
with NUL characters or non-finite numbers, unknown states and leases nobody holds. Each call
either succeeds (the value was valid after all) or raises one of outbox-db's typed errors
with its SQLSTATE in the message (bad arguments: InvalidInput), never a driver error, a bare
exception or a misleading "no such function"; and a refused call leaves every row of every
outbox table as it was.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any, Final

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from outbox_db import (
    AttemptState,
    EnqueueRequest,
    InvalidInput,
    Lease,
    OutboxDatabaseError,
    Outcome,
)
from outbox_db.testonly import expire_lease, outbox_rows
from outbox_db.testonly.factories import leased_item, make_request

if TYPE_CHECKING:
    from collections.abc import Callable

    from outbox_db import ClaimedItem, OutboxStore
    from outbox_db.testonly.pytest_plugin import Database

# Refusals a caller can act on, each with its SQLSTATE (docs/proofs.md, SQLSTATE map): bad
# arguments are InvalidInput whatever told them apart (the functions' checks 22023, an integer
# beyond its type 22003, text that cannot be sent 22021, JSON the server cannot read 22P02 /
# 22P05).
INVALID_ARGUMENT: Final = frozenset({"22023", "22003", "22021", "22P02", "22P05"})
OTHER_REFUSALS: Final = frozenset({"P7001", "P7002", "P7003"})
HOSTILE: Final = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def nested(depth: int) -> dict[str, object]:
    """A JSON object `depth` levels deep."""
    document: dict[str, object] = {"leaf": True}
    for _ in range(depth):
        document = {"child": document}
    return document


identifiers = st.one_of(
    st.text(max_size=20),
    st.just(""),
    st.text(alphabet=" \t\r\n\v\f", min_size=1, max_size=5),
    st.text(min_size=256, max_size=400),
    st.text(max_size=10).map(lambda text: f"id\x00{text}"),
    st.text(alphabet=st.characters(categories=["Cc"]), min_size=1, max_size=5),
    st.text(alphabet=st.characters(categories=["Cs"]), min_size=1, max_size=3),
)
integers = st.one_of(
    st.integers(-10, 10),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.sampled_from([0, -1, 1001, 3601, 604801, 2**31, -(2**31) - 1, 2**63, -(2**63) - 1]),
)
json_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.text(max_size=5).map(lambda text: f"nul\x00{text}"),
)
json_documents = st.recursive(
    json_leaves,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
payloads = st.one_of(
    st.dictionaries(st.text(max_size=10), json_documents, max_size=5),
    st.just({"blob": "x" * (1024 * 1024 + 1)}),
    st.integers(1, 200).map(nested),
)


@pytest.fixture
def store(outbox_database: Database, outbox_store: OutboxStore) -> OutboxStore:
    """A queue with a live lease, an expired lease and a due item for hostile calls to hit."""
    expired = leased_item(outbox_store, "worker-expired")
    expire_lease(outbox_database.url, expired.outbox_id)
    leased_item(outbox_store, "worker-held")
    outbox_store.enqueue(make_request())
    return outbox_store


def refused_cleanly(url: str, call: Callable[[], object]) -> None:
    """`call` succeeds, or raises a typed error with its SQLSTATE and writes nothing."""
    before = outbox_rows(url, versions=True)
    refused: OutboxDatabaseError | None = None
    try:
        call()
    except OutboxDatabaseError as error:
        refused = error
    if refused is None:
        return
    allowed = INVALID_ARGUMENT if isinstance(refused, InvalidInput) else OTHER_REFUSALS
    assert refused.sqlstate in allowed, f"{type(refused).__name__}: {refused}"
    assert f"[SQLSTATE {refused.sqlstate}]" in str(refused)
    assert outbox_rows(url, versions=True) == before


@given(
    request=st.builds(
        EnqueueRequest,
        instruction_id=identifiers,
        participant_id=identifiers,
        idempotency_key=identifiers,
        rail_type=identifiers,
        payload=payloads,
    )
)
@settings(HOSTILE)
def test_hostile_enqueue_is_refused_cleanly(
    outbox_database: Database, store: OutboxStore, request: EnqueueRequest
) -> None:
    """Enqueue, alone or in a transaction, refuses bad fields and writes nothing."""
    refused_cleanly(outbox_database.url, lambda: store.enqueue(request))

    def in_transaction() -> None:
        with store.transaction() as tx:
            tx.enqueue(request)

    refused_cleanly(outbox_database.url, in_transaction)


@given(worker_id=identifiers, batch_size=integers, lease_seconds=integers)
@settings(HOSTILE)
def test_hostile_claim_and_repair_are_refused_cleanly(
    outbox_database: Database,
    store: OutboxStore,
    worker_id: str,
    batch_size: int,
    lease_seconds: int,
) -> None:
    """Claim and repair refuse bad workers, batch sizes and lease lengths with 22023."""
    refused_cleanly(
        outbox_database.url,
        lambda: store.claim(worker_id, batch_size=batch_size, lease_seconds=lease_seconds),
    )
    refused_cleanly(outbox_database.url, lambda: store.repair(worker_id, batch_size=batch_size))


@given(
    worker_id=identifiers,
    outcome=st.fixed_dictionaries(
        {
            "state": st.one_of(st.sampled_from(list(AttemptState)), st.text(max_size=12)),
            "text": st.one_of(st.none(), identifiers),
            "number": st.one_of(st.none(), integers),
        }
    ),
    lease_seconds=integers,
    known=st.booleans(),
)
@settings(HOSTILE)
def test_hostile_completion_renewal_and_release_are_refused_cleanly(  # noqa: PLR0913, PLR0917 - one per kind of value
    outbox_database: Database,
    store: OutboxStore,
    worker_id: str,
    outcome: dict[str, Any],
    lease_seconds: int,
    known: bool,
) -> None:
    """Complete, complete_batch, renew and release refuse bad values with their SQLSTATE."""
    held: ClaimedItem | None = None
    if known and (claimed := store.claim("worker-hostile", batch_size=1, lease_seconds=60)):
        held = claimed[0]
    lease = held.lease if held else Lease(outbox_id=uuid.uuid4(), lease_token=uuid.uuid4())
    text, number = outcome["text"], outcome["number"]
    hostile = Outcome(
        lease=lease,
        state=outcome["state"],
        rail_reference=text,
        rail_code=text,
        error_code=text,
        error_message=text,
        latency_ms=number,
        retry_delay_seconds=number,
    )
    url = outbox_database.url
    refused_cleanly(url, lambda: store.complete(worker_id, hostile))
    refused_cleanly(url, lambda: store.complete_batch(worker_id, [hostile]))
    refused_cleanly(url, lambda: store.renew(worker_id, lease, lease_seconds=lease_seconds))
    refused_cleanly(url, lambda: store.release(worker_id, [lease]))
