"""Proof: the outbox functions refuse bad arguments (22023, P7003) and write nothing when they do.

Each case runs against a queue holding a live lease, an expired lease and a due item, so an
argument check that was missing would show up as a lease taken, renewed, released, repaired
or completed, or an item or sequence number created.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any, Final, LiteralString

import attrs
import pytest
from psycopg.types.json import Jsonb

from outbox_db import (
    AttemptState,
    InvalidCompletionState,
    InvalidInput,
    Lease,
    Outcome,
    Role,
)
from outbox_db.testonly import expire_lease, outbox_rows, query_as
from outbox_db.testonly.factories import leased_item, make_request

if TYPE_CHECKING:
    from collections.abc import Callable

    from outbox_db import ClaimedItem, OutboxStore
    from outbox_db.testonly.pytest_plugin import Database

TOO_LONG: Final = "x" * 256
MIB: Final = 1024 * 1024
HELD_BY: Final = "worker-held"
JSON_TRUE: Final = Jsonb(True)  # noqa: FBT003 - the JSON value true, not a flag

ENQUEUE_AS_EXECUTOR: LiteralString = (
    "SELECT * FROM public.enqueue_payment_outbox(%s, %s, %s, %s, %s::jsonb)"
)


@attrs.frozen
class Scene:
    """A queue with something for every function to act on, were it to accept the call."""

    url: str
    store: OutboxStore
    held: ClaimedItem  # leased to HELD_BY, unexpired: complete, renew and release act on it

    def outcome(
        self,
        state: AttemptState = AttemptState.DISPATCHED,
        *,
        latency_ms: int | None = None,
        retry_delay_seconds: int | None = None,
    ) -> Outcome:
        """An outcome for the held lease."""
        return Outcome(
            lease=self.held.lease,
            state=state,
            latency_ms=latency_ms,
            retry_delay_seconds=retry_delay_seconds,
        )

    def enqueue_sql(self, *arguments: object) -> object:
        """Call enqueue_payment_outbox as symphony_executor, bypassing the store's typing."""
        return query_as(self.url, Role.EXECUTOR, ENQUEUE_AS_EXECUTOR, list(arguments))


@pytest.fixture
def scene(outbox_database: Database, outbox_store: OutboxStore) -> Scene:
    """A live lease, an expired lease awaiting repair, and a due unleased item."""
    expired = leased_item(outbox_store, "worker-expired")
    expire_lease(outbox_database.url, expired.outbox_id)
    held = leased_item(outbox_store, HELD_BY)
    outbox_store.enqueue(make_request())
    return Scene(url=outbox_database.url, store=outbox_store, held=held)


def enqueue_with(**overrides: object) -> Callable[[Scene], object]:
    """A case: enqueue a request with one field made bad."""
    return lambda scene: scene.store.enqueue(make_request(**overrides))


def identifier_cases(field: str) -> list[Any]:
    """Empty, blank and over-long values of one enqueue identifier."""
    return [
        pytest.param(field, enqueue_with(**{field: ""}), id=f"enqueue-{field}-empty"),
        pytest.param(field, enqueue_with(**{field: "   "}), id=f"enqueue-{field}-blank"),
        pytest.param(field, enqueue_with(**{field: TOO_LONG}), id=f"enqueue-{field}-256-chars"),
        pytest.param(
            field, enqueue_with(**{field: "\t\r\n"}), id=f"enqueue-{field}-blank-tab-newline"
        ),
        pytest.param(field, enqueue_with(**{field: "key\x07"}), id=f"enqueue-{field}-control-char"),
    ]


ENQUEUE_CASES: Final = [
    *identifier_cases("instruction_id"),
    *identifier_cases("participant_id"),
    *identifier_cases("idempotency_key"),
    *identifier_cases("rail_type"),
    pytest.param(
        "instruction_id",
        lambda scene: scene.enqueue_sql(None, "participant-a", "key-x", "rtp", Jsonb({})),
        id="enqueue-instruction_id-null",
    ),
    # The store only accepts mappings; the database must refuse other JSON on its own.
    pytest.param(
        "payload",
        lambda scene: scene.enqueue_sql("ins-x", "participant-a", "key-x", "rtp", Jsonb([1, 2])),
        id="enqueue-payload-array",
    ),
    pytest.param(
        "payload",
        lambda scene: scene.enqueue_sql("ins-x", "participant-a", "key-x", "rtp", Jsonb("10.00")),
        id="enqueue-payload-string",
    ),
    pytest.param(
        "payload",
        lambda scene: scene.enqueue_sql("ins-x", "participant-a", "key-x", "rtp", Jsonb(10)),
        id="enqueue-payload-number",
    ),
    pytest.param(
        "payload",
        lambda scene: scene.enqueue_sql("ins-x", "participant-a", "key-x", "rtp", JSON_TRUE),
        id="enqueue-payload-boolean",
    ),
    pytest.param(
        "payload",
        lambda scene: scene.enqueue_sql("ins-x", "participant-a", "key-x", "rtp", Jsonb(None)),
        id="enqueue-payload-json-null",
    ),
    pytest.param(
        "payload",
        lambda scene: scene.enqueue_sql("ins-x", "participant-a", "key-x", "rtp", None),
        id="enqueue-payload-sql-null",
    ),
    pytest.param(
        "payload", enqueue_with(payload={"blob": "x" * MIB}), id="enqueue-payload-over-1MiB"
    ),
]


def claim_with(
    *, worker_id: str = "w", batch_size: int = 10, lease_seconds: int = 30
) -> Callable[[Scene], object]:
    """A case: claim with one argument made bad."""
    return lambda scene: scene.store.claim(
        worker_id, batch_size=batch_size, lease_seconds=lease_seconds
    )


def repair_with(*, worker_id: str = "repairer", batch_size: int = 10) -> Callable[[Scene], object]:
    """A case: lease repair with one argument made bad."""
    return lambda scene: scene.store.repair(worker_id, batch_size=batch_size)


def renew_with(*, worker_id: str = HELD_BY, lease_seconds: int = 30) -> Callable[[Scene], object]:
    """A case: renew the held lease with one argument made bad."""
    return lambda scene: scene.store.renew(worker_id, scene.held.lease, lease_seconds=lease_seconds)


def unknown_leases(count: int) -> list[Lease]:
    """Leases of items that do not exist, to make a batch too large."""
    return [Lease(outbox_id=uuid.uuid4(), lease_token=uuid.uuid4()) for _ in range(count)]


WORKER_CASES: Final = [
    pytest.param("batch_size", claim_with(batch_size=0), id="claim-batch_size-0"),
    pytest.param("batch_size", claim_with(batch_size=-1), id="claim-batch_size-negative"),
    pytest.param("batch_size", claim_with(batch_size=1001), id="claim-batch_size-1001"),
    pytest.param("lease_seconds", claim_with(lease_seconds=0), id="claim-lease_seconds-0"),
    pytest.param("lease_seconds", claim_with(lease_seconds=3601), id="claim-lease_seconds-3601"),
    pytest.param("worker_id", claim_with(worker_id=""), id="claim-worker_id-empty"),
    pytest.param("worker_id", claim_with(worker_id="   "), id="claim-worker_id-blank"),
    pytest.param("worker_id", claim_with(worker_id=TOO_LONG), id="claim-worker_id-256-chars"),
    pytest.param("batch_size", repair_with(batch_size=0), id="repair-batch_size-0"),
    pytest.param("batch_size", repair_with(batch_size=1001), id="repair-batch_size-1001"),
    pytest.param("worker_id", repair_with(worker_id="  "), id="repair-worker_id-blank"),
    pytest.param("lease_seconds", renew_with(lease_seconds=0), id="renew-lease_seconds-0"),
    pytest.param("lease_seconds", renew_with(lease_seconds=3601), id="renew-lease_seconds-3601"),
    pytest.param("worker_id", renew_with(worker_id=""), id="renew-worker_id-empty"),
    pytest.param(
        "worker_id",
        lambda scene: scene.store.release(" ", [scene.held.lease]),
        id="release-worker_id-blank",
    ),
    pytest.param(
        "batch_size",
        lambda scene: scene.store.release(HELD_BY, [scene.held.lease, *unknown_leases(1000)]),
        id="release-1001-leases",
    ),
]

COMPLETION_CASES: Final = [
    pytest.param(
        "latency_ms",
        lambda scene: scene.store.complete(HELD_BY, scene.outcome(latency_ms=-1)),
        id="complete-latency_ms-negative",
    ),
    pytest.param(
        "retry_delay_seconds",
        lambda scene: scene.store.complete(
            HELD_BY, scene.outcome(AttemptState.RETRYABLE, retry_delay_seconds=604801)
        ),
        id="complete-retry_delay_seconds-over-7-days",
    ),
    pytest.param(
        "worker_id",
        lambda scene: scene.store.complete("", scene.outcome()),
        id="complete-worker_id-empty",
    ),
    pytest.param(
        "latency_ms",
        lambda scene: scene.store.complete_batch(HELD_BY, [scene.outcome(latency_ms=-1)]),
        id="complete_batch-latency_ms-negative",
    ),
    pytest.param(
        "retry_delay_seconds",
        lambda scene: scene.store.complete_batch(
            HELD_BY, [scene.outcome(AttemptState.RETRYABLE, retry_delay_seconds=604801)]
        ),
        id="complete_batch-retry_delay_seconds-over-7-days",
    ),
    pytest.param(
        "retry_delay_seconds",
        lambda scene: scene.store.complete_batch(
            HELD_BY, [scene.outcome(AttemptState.RETRYABLE, retry_delay_seconds=-1)]
        ),
        id="complete_batch-retry_delay_seconds-negative",
    ),
    pytest.param(
        "outbox_ids",
        lambda scene: scene.store.complete_batch(HELD_BY, [scene.outcome(), scene.outcome()]),
        id="complete_batch-duplicate-outbox_ids",
    ),
    pytest.param(
        "batch_size",
        lambda scene: scene.store.complete_batch(
            HELD_BY,
            [
                scene.outcome(),
                *(
                    Outcome(lease=lease, state=AttemptState.DISPATCHED)
                    for lease in unknown_leases(1000)
                ),
            ],
        ),
        id="complete_batch-1001-outcomes",
    ),
]


@pytest.mark.parametrize(("column", "call"), ENQUEUE_CASES + WORKER_CASES + COMPLETION_CASES)
def test_bad_argument_is_refused_and_writes_nothing(
    scene: Scene, column: str, call: Callable[[Scene], object]
) -> None:
    """Every out-of-range or malformed argument raises 22023 naming it, and nothing changes."""
    before = outbox_rows(scene.url)

    with pytest.raises(InvalidInput) as refused:
        call(scene)

    assert refused.value.sqlstate == "22023"
    # The database names the refused argument in the error's COLUMN field.
    assert column == refused.value.__cause__.diag.column_name  # type: ignore[union-attr]
    assert TOO_LONG not in str(refused.value), "messages never echo the values they refuse"
    assert before == outbox_rows(scene.url)


@pytest.mark.parametrize(
    "field", ["instruction_id", "participant_id", "idempotency_key", "rail_type"]
)
def test_identifiers_of_255_characters_are_accepted(outbox_store: OutboxStore, field: str) -> None:
    """The identifier limit is inclusive: 255 characters is still a valid identifier."""
    assert outbox_store.enqueue(make_request(**{field: "x" * 255})).created


@pytest.mark.parametrize(
    ("batch_size", "lease_seconds"), [(1, 1), (1000, 3600)], ids=["lowest", "highest"]
)
def test_claim_limits_are_inclusive(
    outbox_store: OutboxStore, batch_size: int, lease_seconds: int
) -> None:
    """batch_size 1..1000 and lease_seconds 1..3600 are accepted at both ends."""
    outbox_store.enqueue(make_request())

    (item,) = outbox_store.claim("w", batch_size=batch_size, lease_seconds=lease_seconds)

    assert item.attempt_count == 0


@pytest.mark.parametrize("state", [AttemptState.DISPATCHING, AttemptState.ZOMBIE_REQUEUE], ids=str)
@pytest.mark.parametrize(
    "record",
    [
        pytest.param(
            lambda scene, state: scene.store.complete(HELD_BY, scene.outcome(state)),
            id="complete",
        ),
        pytest.param(
            lambda scene, state: scene.store.complete_batch(HELD_BY, [scene.outcome(state)]),
            id="complete_batch",
        ),
    ],
)
def test_non_completion_state_is_refused_and_the_lease_is_still_held(
    scene: Scene, state: AttemptState, record: Callable[[Scene, AttemptState], object]
) -> None:
    """Completing with DISPATCHING or ZOMBIE_REQUEUE raises P7003; the worker keeps its lease."""
    before = outbox_rows(scene.url)

    with pytest.raises(InvalidCompletionState) as refused:
        record(scene, state)

    assert refused.value.sqlstate == "P7003"
    assert before == outbox_rows(scene.url)
    # Still held: the same lease records a real outcome.
    result = scene.store.complete(HELD_BY, scene.outcome(AttemptState.DISPATCHED))
    assert (result.lease_held, result.attempt_no, result.state) == (
        True,
        1,
        AttemptState.DISPATCHED,
    )
