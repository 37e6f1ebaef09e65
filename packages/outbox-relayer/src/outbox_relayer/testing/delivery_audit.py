"""The end-to-end delivery audit: the ledger against what the rail received, key by key.

A rail that dedupes by idempotency key shows one effect per key whatever the relayers did,
so its word alone proves nothing. This audit holds the two records against each other: each
item ended exactly once in the ledger; every request the rail received carried a key of
those items and the item's exact bytes; the keys the rail acted on (a 2xx) are exactly the
items the ledger says DISPATCHED; and each DISPATCHED attempt names the rail's first
reference for its key. The end-to-end proof and `nox -s demo` both run it.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from typing import TYPE_CHECKING, Final

import attrs

from outbox_db import AttemptState
from outbox_db.payloads import canonical_json

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence
    from uuid import UUID

    from outbox_db import LedgerAttempt
    from outbox_relayer.testing.railsim import LoggedRequest

__all__ = ["DeliveryAudit", "audit_delivery", "lane_order_problems"]

TERMINAL: Final = frozenset({AttemptState.DISPATCHED, AttemptState.FAILED})
# What relayers and lease repair record today; DISPATCHING is history only.
RECORDED: Final = TERMINAL | {AttemptState.RETRYABLE, AttemptState.ZOMBIE_REQUEUE}
SAMPLES: Final = 3  # ids quoted per problem; the count covers the rest
# Recorded by a relayer of a release before schema 0013 that had no configuration for the
# rail: it answered for the rail without sending anything.
NOT_SENT: Final = "RAIL_NOT_CONFIGURED"


@attrs.frozen(kw_only=True)
class DeliveryAudit:
    """What the audit counted, and every discrepancy it found (none: the run is sound)."""

    items: int
    attempts: int
    dispatched: int
    failed: int
    lease_repairs: int
    rail_requests: int
    rail_effects: int  # keys the rail acted on (answered 2xx at least once)
    absorbed: int  # repeats of a key the rail answered with its first outcome
    problems: tuple[str, ...]

    @property
    def passed(self) -> bool:
        """No discrepancy between the ledger and the rail."""
        return not self.problems


def audit_delivery(
    keys: Mapping[UUID, str],
    ledger: Sequence[LedgerAttempt],
    requests: Sequence[LoggedRequest],
) -> DeliveryAudit:
    """Audit the items `keys` ({outbox_id: idempotency_key}) against their ledger and rail log.

    `ledger` is every attempt of the items' rail (`OutboxStore.ledger`), `requests` the rail
    simulator's request log (`read_request_log`).
    """
    history: dict[UUID, list[LedgerAttempt]] = defaultdict(list)
    for attempt in ledger:
        history[attempt.outbox_id].append(attempt)
    strangers = history.keys() - keys.keys()
    audited = {outbox_id: history[outbox_id] for outbox_id in history.keys() & keys.keys()}
    sent: dict[str, list[LoggedRequest]] = defaultdict(list)
    for request in requests:
        sent[request.idempotency_key or ""].append(request)
    effects = {key for key, answers in sent.items() if any(_acted(r) for r in answers)}
    dispatched = {i for i, h in audited.items() if h[-1].state is AttemptState.DISPATCHED}
    problems = [
        *_problem("ledger rows of no audited item", strangers),
        *_ledger_problems(keys, audited),
        *_rail_problems(keys, audited, sent),
        *_effect_problems(keys, dispatched, effects),
    ]
    return DeliveryAudit(
        items=len(keys),
        attempts=len(ledger),
        dispatched=len(dispatched),
        failed=sum(h[-1].state is AttemptState.FAILED for h in audited.values()),
        lease_repairs=sum(a.state is AttemptState.ZOMBIE_REQUEUE for a in ledger),
        rail_requests=len(requests),
        rail_effects=len(effects),
        absorbed=sum(request.absorbed for request in requests),
        problems=tuple(problems),
    )


def lane_order_problems(
    lanes: Mapping[str, tuple[str, int]], requests: Sequence[LoggedRequest]
) -> tuple[str, ...]:
    """Ordered lanes whose items the rail did not receive strictly in sequence order.

    `lanes` maps each ordered item's idempotency key to its lane (participant and rail) and
    sequence_id. Per lane, the keys in the order the rail received them, with repeats of one
    key in a row (retries) folded, must be the lane's keys in sequence order, each once: no
    item reaches the rail before the one ahead of it ended, none comes back after the next
    one started, and none is skipped (in a run where every item reaches the rail).
    """
    received: dict[str, list[str]] = defaultdict(list)
    for request in sorted(requests, key=lambda logged: logged.seq):
        key = request.idempotency_key or ""
        if key in lanes and received[lanes[key][0]][-1:] != [key]:
            received[lanes[key][0]].append(key)
    expected: dict[str, list[str]] = defaultdict(list)
    for key, (lane, _) in sorted(lanes.items(), key=lambda entry: entry[1]):
        expected[lane].append(key)
    disordered = [lane for lane, keys in expected.items() if received.get(lane) != keys]
    return tuple(_problem("lanes the rail received out of sequence order", disordered))


def _ledger_problems(
    keys: Mapping[UUID, str], history: Mapping[UUID, list[LedgerAttempt]]
) -> Iterable[str]:
    """Each item: attempts 1..n under its own key, states recorded today, one terminal, last."""
    yield from _problem("items without a ledger row", keys.keys() - history.keys())
    numbering, keyed, states, ended = [], [], [], []
    for outbox_id, attempts in history.items():
        if [a.attempt_no for a in attempts] != list(range(1, len(attempts) + 1)):
            numbering.append(outbox_id)
        if {a.idempotency_key for a in attempts} != {keys[outbox_id]}:
            keyed.append(outbox_id)
        if not {a.state for a in attempts} <= RECORDED:
            states.append(outbox_id)
        terminal = [a.state in TERMINAL for a in attempts]
        if sum(terminal) != 1 or not terminal[-1]:
            ended.append(outbox_id)
    yield from _problem("items whose attempts are not numbered 1..n", numbering)
    yield from _problem("items recorded under another idempotency key", keyed)
    yield from _problem("items with an attempt state no relayer records", states)
    yield from _problem("items without exactly one terminal attempt, last", ended)


def _rail_problems(
    keys: Mapping[UUID, str],
    history: Mapping[UUID, list[LedgerAttempt]],
    sent: Mapping[str, list[LoggedRequest]],
) -> Iterable[str]:
    """Every request is an audited key with the item's bytes; every recorded send reached it."""
    yield from _problem(
        "rail requests with a key of no audited item", sent.keys() - {*keys.values()}
    )
    changed, unsent, misreferenced = [], [], []
    for outbox_id, attempts in history.items():
        requests = sent.get(keys[outbox_id], [])
        whole = hashlib.sha256(canonical_json(attempts[0].payload).encode()).hexdigest()
        if {request.payload_sha256 for request in requests} - {whole}:
            changed.append(outbox_id)
        if len(requests) < sum(map(_answered_by_the_rail, attempts)):
            unsent.append(outbox_id)
        # The reference of the key's one effect; a dropped first answer carried none.
        first = next((r.reference for r in requests if r.reference and _acted(r)), None)
        expected = [first if a.state is AttemptState.DISPATCHED else None for a in attempts]
        if [a.rail_reference for a in attempts] != expected:
            misreferenced.append(outbox_id)
    yield from _problem("items re-sent with other bytes under the same key", changed)
    yield from _problem("items with more recorded answers than rail requests", unsent)
    yield from _problem("items whose DISPATCHED reference is not the rail's first", misreferenced)


def _answered_by_the_rail(attempt: LedgerAttempt) -> bool:
    """Every attempt is an answer the rail gave, but a lease repair's and a missing rail's."""
    return attempt.state is not AttemptState.ZOMBIE_REQUEUE and attempt.error_code != NOT_SENT


def _effect_problems(
    keys: Mapping[UUID, str], dispatched: set[UUID], effects: set[str]
) -> Iterable[str]:
    """The keys the rail acted on are exactly the keys of the items the ledger DISPATCHED."""
    dispatched_keys = {keys[outbox_id] for outbox_id in dispatched}
    yield from _problem("DISPATCHED items the rail never acted on", dispatched_keys - effects)
    yield from _problem(
        "keys the rail acted on that the ledger does not DISPATCH", effects - dispatched_keys
    )


def _acted(request: LoggedRequest) -> bool:
    """A 2xx answer, or a first request recorded and then dropped (the rail acted, unheard)."""
    if request.status is None:
        return request.fault == "drop" and not request.absorbed
    return 200 <= request.status < 300  # noqa: PLR2004


def _problem(what: str, offenders: Iterable[object]) -> Iterable[str]:
    found = sorted(str(offender) for offender in offenders)
    if found:
        shown = ", ".join(found[:SAMPLES]) + (", ..." if len(found) > SAMPLES else "")
        yield f"{len(found)} {what}: {shown}"
