"""Proofs: a relayer claims only its rails, at most its limit of each, and rails nobody serves show.

Schema 0013. The previous release's claim (claim_outbox_batch) keeps every rail it could
serve, but leaves alone a rail a rail-scoped relayer announced before it had any item, and
(0016) a rail new since 0016 once a relayer recorded RAIL_NOT_CONFIGURED on it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, LiteralString

import pytest

from outbox_db import AttemptState, InvalidInput, Outcome, Role
from outbox_db.testonly import query_as, query_no_role
from outbox_db.testonly.factories import make_request

if TYPE_CHECKING:
    from outbox_db import ClaimedItem, OutboxStore
    from outbox_db.testonly.pytest_plugin import Database

ATTEMPTS: LiteralString = "SELECT count(*) FROM public.payment_outbox_attempts"
SCOPED: LiteralString = "SELECT rail_type, reason FROM public.outbox_scoped_rails ORDER BY 1"
# What 0016 found: rails with items when it was applied (none in a fresh test database).
ESTABLISH: LiteralString = "INSERT INTO public.outbox_established_rails VALUES (%s)"
CLAIM: LiteralString = "SELECT count(*) FROM public.claim_outbox_rails('worker-1', 30, %s, %s)"
# A relayer's announcement, as if it had last claimed a minute and a second ago.
AGE_ANNOUNCEMENTS: LiteralString = (
    "UPDATE public.outbox_rail_servers SET seen_at = seen_at - interval '61 seconds'"
)


def enqueue(store: OutboxStore, rail_type: str, count: int) -> None:
    """`count` new items on `rail_type`."""
    for _ in range(count):
        store.enqueue(make_request(rail_type=rail_type))


def attempts(url: str) -> int:
    """Attempts in the ledger, of every item."""
    ((count,),) = query_no_role(url, ATTEMPTS)
    return int(count)


def test_a_rail_scoped_claim_takes_only_its_rails_and_records_nothing_for_others(
    outbox_database: Database, outbox_store: OutboxStore
) -> None:
    """Items of a rail the claimer does not name stay due, with no attempt recorded."""
    enqueue(outbox_store, "rtp", 2)
    enqueue(outbox_store, "sepa", 2)

    claimed = outbox_store.claim_rails("worker-1", limits={"rtp": 10}, lease_seconds=30)

    assert sorted(item.rail_type for item in claimed) == ["rtp", "rtp"]
    assert outbox_store.claim_rails("worker-2", limits={"rtp": 10}, lease_seconds=30) == []
    assert attempts(outbox_database.url) == 0
    (sepa,) = outbox_store.unserved_rails()
    assert (sepa.rail_type, sepa.due_count) == ("sepa", 2)


def test_each_rail_gets_at_most_its_limit(outbox_store: OutboxStore) -> None:
    """limits[i] items of rail i at most, 0 meaning none; the oldest of each rail first."""
    enqueue(outbox_store, "rtp", 3)
    enqueue(outbox_store, "sepa", 3)
    enqueue(outbox_store, "swift", 1)

    claimed = outbox_store.claim_rails(
        "worker-1", limits={"rtp": 1, "sepa": 2, "swift": 0}, lease_seconds=30
    )

    assert sorted(item.rail_type for item in claimed) == ["rtp", "sepa", "sepa"]


@pytest.mark.parametrize(
    ("rail_types", "limits"),
    [
        pytest.param([], [], id="no-rail"),
        pytest.param(["rtp", "rtp"], [1, 1], id="duplicate-rail"),
        pytest.param(["rtp", " "], [1, 1], id="blank-rail"),
        pytest.param(["rtp", "sepa"], [1], id="limits-shorter"),
        pytest.param(["rtp"], [-1], id="negative-limit"),
        pytest.param(["rtp"], [None], id="null-limit"),
        pytest.param(["rtp", "sepa"], [600, 401], id="over-1000-items"),
    ],
)
def test_a_malformed_rail_claim_is_refused_with_22023(
    outbox_database: Database, rail_types: list[str], limits: list[int | None]
) -> None:
    """Nothing claimed, nothing announced: the arguments are checked first."""
    with pytest.raises(InvalidInput) as refused:
        query_as(outbox_database.url, Role.EXECUTOR, CLAIM, [rail_types, limits])

    assert refused.value.sqlstate == "22023"
    assert query_no_role(outbox_database.url, "SELECT * FROM public.outbox_rail_servers") == []


def test_a_rail_is_unserved_until_announced_and_again_a_minute_after_its_last_claim(
    outbox_database: Database, outbox_store: OutboxStore
) -> None:
    """outbox_unserved_rails: due items of rails no relayer claimed for in the last 60 s."""
    enqueue(outbox_store, "sepa", 1)
    (never,) = outbox_store.unserved_rails()
    assert (never.rail_type, never.due_count, never.last_served_at) == ("sepa", 1, None)

    # A relayer with no free slot for the rail still announces it.
    assert outbox_store.claim_rails("worker-1", limits={"sepa": 0}, lease_seconds=30) == []
    assert outbox_store.unserved_rails() == []

    query_no_role(outbox_database.url, AGE_ANNOUNCEMENTS)
    (gone,) = outbox_store.unserved_rails()
    assert (gone.rail_type, gone.due_count) == ("sepa", 1)
    assert gone.last_served_at is not None


def test_the_previous_release_claim_leaves_a_rail_announced_before_its_first_item(
    outbox_database: Database, outbox_store: OutboxStore
) -> None:
    """A rail added with rail-scoped relayers is theirs; rails that had items stay shared."""
    enqueue(outbox_store, "rtp", 1)
    outbox_store.claim_rails("worker-new", limits={"rtp": 0, "instant": 0}, lease_seconds=30)
    enqueue(outbox_store, "instant", 2)
    enqueue(outbox_store, "rtp", 1)

    claimed = outbox_store.claim("worker-old", batch_size=100, lease_seconds=30)

    assert sorted(item.rail_type for item in claimed) == ["rtp", "rtp"]
    assert attempts(outbox_database.url) == 0
    new = outbox_store.claim_rails("worker-new", limits={"instant": 10}, lease_seconds=30)
    assert [item.rail_type for item in new] == ["instant", "instant"]


def test_a_miss_by_a_relayer_without_a_new_rail_leaves_the_rail_to_relayers_that_have_it(
    outbox_database: Database, outbox_store: OutboxStore
) -> None:
    """One RAIL_NOT_CONFIGURED on a rail new since 0016 is all: its items wait, unserved.

    The previous release claims a rail enqueued on before any relayer announced it; after
    its first miss there, its claim leaves the rail to relayers that have it. A miss on a
    rail that had items when 0016 was applied scopes nothing.
    """
    query_no_role(outbox_database.url, ESTABLISH, ["rtp"])
    for rail_type in ("sepa", "rtp", "sepa"):
        enqueue(outbox_store, rail_type, 1)

    missed = outbox_store.claim("worker-old", batch_size=2, lease_seconds=30)
    outbox_store.complete_batch("worker-old", [not_configured(item) for item in missed])
    again = outbox_store.claim("worker-old", batch_size=100, lease_seconds=30)

    assert sorted(item.rail_type for item in missed) == ["rtp", "sepa"]  # oldest first
    assert query_no_role(outbox_database.url, SCOPED) == [
        ("sepa", "RAIL_NOT_CONFIGURED recorded by a relayer without the rail")
    ]
    assert [item.rail_type for item in again] == ["rtp"], "rtp stays the old release's"
    (waiting,) = outbox_store.unserved_rails()
    assert (waiting.rail_type, waiting.due_count) == ("sepa", 2)
    served = outbox_store.claim_rails("worker-new", limits={"sepa": 10}, lease_seconds=30)
    assert [item.rail_type for item in served] == ["sepa", "sepa"]
    assert attempts(outbox_database.url) == 2


def not_configured(item: ClaimedItem) -> Outcome:
    """What a relayer of the previous release records for a rail it has no configuration for."""
    return Outcome(
        lease=item.lease,
        state=AttemptState.RETRYABLE,
        error_code="RAIL_NOT_CONFIGURED",
        error_message=f"no rail configured for {item.rail_type}",
        retry_delay_seconds=0,
    )
