"""Outcome lookup before a re-send: HttpRail.lookup against a live rail simulator.

Also the rule that decides when to ask, and how lookup is switched on (rails file, flag,
environment).
"""

from __future__ import annotations

import asyncio
import socket
from typing import TYPE_CHECKING

import pytest

from outbox_db import AttemptState, ClaimedItem
from outbox_relayer import RailConfigError, RailEndpoint, load_rails
from outbox_relayer.config import RelayerConfig
from outbox_relayer.rails import RECONCILED_PREFIX, UNKNOWN_OUTCOME_CODES, NoopRail, outcome_unknown
from outbox_relayer.testing import Faults, RailSimulator, read_request_log

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from relaying import BlockingRail


@pytest.fixture
def lookup_rail_for(
    blocking_rail: Callable[[RailEndpoint], BlockingRail],
) -> Callable[..., BlockingRail]:
    """HttpRails with lookup on, closed at teardown."""

    def build(url: str, *, lookup: bool = True, timeout_seconds: float = 5.0) -> BlockingRail:
        return blocking_rail(
            RailEndpoint(rail_type="rtp", url=url, timeout_seconds=timeout_seconds, lookup=lookup)
        )

    return build


def test_an_executed_key_is_looked_up_as_dispatched_with_its_reference_and_nothing_is_sent(
    simulator: RailSimulator,
    lookup_rail_for: Callable[..., BlockingRail],
    make_item: Callable[..., ClaimedItem],
) -> None:
    """GET by key returns the first answer: DISPATCHED, the same reference, rail_code reconciled:201; the rail got one POST."""
    item = make_item()
    rail = lookup_rail_for(simulator.payments_url)
    sent = rail.send(item)

    found = rail.lookup(item)

    assert found is not None
    assert (found.state, found.rail_reference, found.rail_code, found.error_code) == (
        AttemptState.DISPATCHED,
        sent.rail_reference,
        f"{RECONCILED_PREFIX}201",
        None,
    )
    assert len(read_request_log(simulator.log_path)) == 1
    assert simulator.stats().lookups == {"found": 1}


def test_a_refused_key_is_looked_up_as_failed(
    simulator: RailSimulator,
    lookup_rail_for: Callable[..., BlockingRail],
    make_item: Callable[..., ClaimedItem],
) -> None:
    """A key the rail refused (422) is a known outcome too: FAILED RAIL_REJECTED, reconciled:422."""
    item = make_item(payload={"simulate_status": 422})
    rail = lookup_rail_for(simulator.payments_url)
    rail.send(item)

    found = rail.lookup(item)

    assert found is not None
    assert (found.state, found.rail_code, found.error_code) == (
        AttemptState.FAILED,
        f"{RECONCILED_PREFIX}422",
        "RAIL_REJECTED",
    )


@pytest.mark.parametrize(
    "scenario",
    [
        (None, None, {"not_found": 1}),  # never sent: 404
        (Faults(lookup_fail_rate=1.0), {"n": 1}, {"failed": 1}),  # the lookup answered 503
        (None, {"simulate_status": 401}, {"found": 1}),  # kept, but "not now" is no outcome
    ],
    ids=["unknown-key", "lookup-503", "kept-retryable-answer"],
)
def test_no_final_outcome_at_the_rail_is_an_unknown_outcome(
    start_simulator: Callable[..., RailSimulator],
    lookup_rail_for: Callable[..., BlockingRail],
    make_item: Callable[..., ClaimedItem],
    scenario: tuple[Faults | None, dict[str, object] | None, dict[str, int]],
) -> None:
    """404, a failing lookup, or a stored answer that is not final: None, so the item is sent again."""
    faults, payload, lookups = scenario  # the payload first sent, if any; the lookups counted
    simulator = start_simulator(faults)
    rail = lookup_rail_for(simulator.payments_url)
    item = make_item(**({"payload": payload} if payload else {}))
    if payload is not None:
        rail.send(item)

    assert rail.lookup(item) is None
    assert simulator.stats().lookups == lookups


def test_a_lookup_that_cannot_reach_the_rail_is_an_unknown_outcome(
    start_simulator: Callable[..., RailSimulator],
    lookup_rail_for: Callable[..., BlockingRail],
    make_item: Callable[..., ClaimedItem],
) -> None:
    """Nothing listening on the rail's port: None, not an exception that would lose the item."""
    stopped = start_simulator()
    url = stopped.payments_url
    stopped.stop()

    assert lookup_rail_for(url).lookup(make_item()) is None


def test_a_lookup_without_an_answer_within_the_timeout_is_an_unknown_outcome(
    lookup_rail_for: Callable[..., BlockingRail], make_item: Callable[..., ClaimedItem]
) -> None:
    """A rail that accepts the connection and never answers: the lookup times out, None."""
    with socket.create_server(("127.0.0.1", 0)) as silent:  # listens, never reads or answers
        port = silent.getsockname()[1]
        rail = lookup_rail_for(f"http://127.0.0.1:{port}/payments", timeout_seconds=0.2)

        assert rail.lookup(make_item()) is None


def test_a_key_with_url_characters_is_looked_up_by_its_quoted_form(
    simulator: RailSimulator,
    lookup_rail_for: Callable[..., BlockingRail],
    make_item: Callable[..., ClaimedItem],
) -> None:
    """A key with '/', '?', '#' and spaces reaches the rail as one path segment."""
    item = make_item(idempotency_key="ins 1/v2?x=#y")
    rail = lookup_rail_for(simulator.payments_url)
    rail.send(item)

    found = rail.lookup(item)

    assert found is not None
    assert found.state is AttemptState.DISPATCHED


def test_without_lookup_no_rail_is_asked(
    simulator: RailSimulator,
    lookup_rail_for: Callable[..., BlockingRail],
    make_item: Callable[..., ClaimedItem],
) -> None:
    """Lookup is opt-in: an HttpRail without it and the no-op rail answer None and send no GET."""
    item = make_item()
    rail = lookup_rail_for(simulator.payments_url, lookup=False)
    rail.send(item)

    assert rail.lookup(item) is None
    assert asyncio.run(NoopRail().lookup(item)) is None
    assert simulator.stats().lookups == {}


@pytest.mark.parametrize(
    ("attempt_count", "last_error_code", "unknown"),
    [
        (0, None, False),  # a first send
        (1, "LEASE_EXPIRED", True),  # lease repair: the worker died or lost its lease mid-send
        (1, "LEGACY_DISPATCHING_REQUEUED", True),
        (2, "RAIL_TIMEOUT", True),
        (1, "RAIL_CONNECTION_ERROR", True),
        (1, "RAIL_PROTOCOL_ERROR", True),
        (1, "RAIL_CLIENT_ERROR", True),
        (1, "RAIL_UNAVAILABLE", False),  # a 5xx answer: the rail did not execute it
        (1, "RAIL_THROTTLED", False),
        (1, "RAIL_NOT_CONFIGURED", False),  # never sent
    ],
)
def test_only_an_attempt_that_may_have_executed_unseen_is_looked_up(
    make_item: Callable[..., ClaimedItem],
    attempt_count: int,
    last_error_code: str | None,
    unknown: bool,
) -> None:
    """The rule the relayer applies to what the claim returned (attempt_count, last error code)."""
    item = make_item(attempt_count=attempt_count, last_error_code=last_error_code)

    assert outcome_unknown(item) is unknown
    assert (last_error_code in UNKNOWN_OUTCOME_CODES) is unknown


def test_lookup_is_read_from_the_rails_file_and_must_be_a_boolean(tmp_path: Path) -> None:
    """`lookup = true` turns it on for that rail; any other type names the key."""
    path = tmp_path / "rails.toml"
    path.write_text(
        '[rails.rtp]\nurl = "https://rtp"\nlookup = true\n[rails.book]\nurl = "https://book"\n'
    )
    assert {name: end.lookup for name, end in load_rails(path).items()} == {
        "rtp": True,
        "book": False,
    }

    path.write_text('[rails.rtp]\nurl = "https://rtp"\nlookup = "yes"\n')
    with pytest.raises(RailConfigError, match=r"rails\.rtp\.lookup must be true or false"):
        load_rails(path)


def test_rail_lookups_come_from_the_environment_or_the_flags() -> None:
    """OUTBOX_RAIL_LOOKUP is comma-separated; repeated --rail-lookup flags win; default none."""
    url = {"DATABASE_URL": "postgresql://relayer@db/payments"}
    assert RelayerConfig.from_env(url).rail_lookups == frozenset()
    from_env = RelayerConfig.from_env(url | {"OUTBOX_RAIL_LOOKUP": "rtp, book,"})
    assert from_env.rail_lookups == {"rtp", "book"}
    flagged = RelayerConfig.from_env(url | {"OUTBOX_RAIL_LOOKUP": "rtp"}, rail_lookups=("ach",))
    assert flagged.rail_lookups == {"ach"}
