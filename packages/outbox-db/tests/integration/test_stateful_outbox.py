"""Proof: a hypothesis state machine drives the real outbox and checks its invariants each step.

Every example gets its own database cloned from the migrated template (retry ceiling lowered
to 3, so the ceiling is reached within a few steps) and interleaves, through the store's
public API as symphony_executor: enqueues of new keys for several participants, replays and
conflicting reuses of old keys, claims by several workers, completions in every state (alone
and in batches, with held and stale leases), lease expiry (the lease is moved into the past
as the owner, never slept for), repair, renewal and release. A model predicts each answer;
after every step the database, read as the owner, must keep every invariant:

- at most one terminal attempt (DISPATCHED or FAILED) per item;
- each item's attempt numbers are 1..n, without gaps;
- the lease columns of every pending row are all NULL or all set;
- every enqueued item is pending or has its terminal attempt: never both, never neither;
- each participant's sequence numbers are 1..n without gaps, and its allocator says n + 1;
- the ledger only grows: every row seen before is still there, unchanged;
- on the ordered rail (one of the two), an item waits exactly while an earlier item of its
  participant's lane is pending, so a claim only ever takes a lane's head.

Failing examples are kept in `.hypothesis/` at the repository root, so the next run replays
them first.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, LiteralString, cast

import attrs
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.database import DirectoryBasedExampleDatabase
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from outbox_db import (
    AttemptState,
    IdempotencyConflict,
    LeaseLost,
    OutboxStore,
    Outcome,
    Role,
)
from outbox_db.testonly import expire_lease, outbox_rows, query_no_role
from outbox_db.testonly.factories import make_request

if TYPE_CHECKING:
    from uuid import UUID

    from outbox_db import ClaimedItem, EnqueueRequest
    from outbox_db.testonly.pytest_plugin import Server

ROOT: Final = Path(__file__).parents[4]
MAX_ATTEMPTS: Final = 3
LEASE_SECONDS: Final = 600  # never lapses by itself during a run: expiry is always a step
PARTICIPANTS: Final = ("participant-a", "participant-b", "participant-c")
WORKERS: Final = ("worker-1", "worker-2", "worker-3")
RAILS: Final = ("rtp", "ach")
ORDERED_RAIL: Final = "rtp"  # its items are dispatched in each participant's sequence order
ORDER_RAIL: LiteralString = (
    "SELECT public.set_outbox_rail_ordering('rtp', true, 'the state machine orders rtp')"
)
COMPLETION_STATES: Final = (AttemptState.DISPATCHED, AttemptState.RETRYABLE, AttemptState.FAILED)
TERMINAL: Final = frozenset({"DISPATCHED", "FAILED"})
# Sized for the gate (integration tier): about 20 s on a busy 2-core machine.
SETTINGS: Final = settings(
    max_examples=int(os.environ.get("OUTBOX_STATEFUL_EXAMPLES", "30")),
    stateful_step_count=40,
    deadline=None,
    database=DirectoryBasedExampleDatabase(ROOT / ".hypothesis" / "examples"),
    suppress_health_check=[HealthCheck.too_slow],
)
_clones = itertools.count(1)

# The whole database as the owner sees it, in one snapshot.
SNAPSHOT: LiteralString = """
SELECT
    (SELECT coalesce(json_agg(json_build_object(
        'attempt_id', a.attempt_id, 'outbox_id', a.outbox_id, 'attempt_no', a.attempt_no,
        'state', a.state, 'row', to_jsonb(a)::text)), '[]')
     FROM public.payment_outbox_attempts AS a),
    (SELECT coalesce(json_agg(json_build_object(
        'outbox_id', p.outbox_id, 'participant_id', p.participant_id,
        'sequence_id', p.sequence_id, 'rail_type', p.rail_type, 'ordered', p.ordered,
        'awaiting_predecessor', p.awaiting_predecessor, 'claimed_by', p.claimed_by,
        'lease_token', p.lease_token, 'lease_fields_set', num_nonnulls(
            p.claimed_by, p.lease_token, p.claimed_at, p.lease_expires_at))), '[]')
     FROM public.payment_outbox_pending AS p),
    (SELECT coalesce(json_object_agg(s.participant_id, s.next_sequence_id), '{}')
     FROM public.participant_outbox_sequences AS s)
"""


@attrs.define
class Item:
    """What the model expects of one enqueued item."""

    request: EnqueueRequest
    outbox_id: UUID
    sequence_id: int
    number: int  # creation order in this example: what choices sort by (ids differ per run)
    due_since: int  # the model's clock when it last became due; claims take the oldest first
    attempts: int = 0
    done: bool = False
    holder: str | None = None
    token: UUID | None = None
    expired_at: int | None = None  # the model's clock when its lease was moved into the past
    due: bool = True  # unleased and next_attempt_at <= now


class OutboxMachine(RuleBasedStateMachine):
    """The outbox driven through its public API, next to a model of what it must answer."""

    requests = Bundle("requests")

    def __init__(self, server: Server, template: str) -> None:
        super().__init__()
        self._resources = contextlib.ExitStack()
        name = f"outbox_stateful_{os.getpid()}_{next(_clones)}"
        self._resources.enter_context(server.janitor(name, template_dbname=template))
        self.url = server.database_url(name)
        query_no_role(
            self.url, "UPDATE public.payment_outbox_settings SET max_attempts = %s", [MAX_ATTEMPTS]
        )
        query_no_role(self.url, ORDER_RAIL)
        self.store = self._resources.enter_context(
            OutboxStore.connect(self.url, role=Role.EXECUTOR, max_size=2)
        )
        self.items: dict[UUID, Item] = {}
        self.next_sequence = dict.fromkeys(PARTICIPANTS, 1)
        self.held: dict[tuple[str, UUID], ClaimedItem] = {}  # what each worker believes it holds
        self.clock = itertools.count(1)
        self.ledger: dict[str, str] = {}

    def _held_in_order(self) -> list[tuple[str, UUID]]:
        """Held leases in an order that replays: hypothesis must draw the same choice again."""
        return sorted(self.held, key=lambda held: (held[0], self.items[held[1]].number))

    def teardown(self) -> None:
        """Close the store and drop this example's database."""
        self._resources.close()

    # --- enqueue --------------------------------------------------------------------------

    @initialize(target=requests)
    def first_enqueue(self) -> EnqueueRequest:
        """Every run starts with one item, so the other rules have something to act on."""
        return self._enqueue(PARTICIPANTS[0], RAILS[0])

    @rule(
        target=requests,
        participant=st.sampled_from(PARTICIPANTS),
        rail=st.sampled_from(RAILS),
    )
    def enqueue_new(self, participant: str, rail: str) -> EnqueueRequest:
        """A new key creates an item with the participant's next sequence number."""
        return self._enqueue(participant, rail)

    def _enqueue(self, participant: str, rail: str) -> EnqueueRequest:
        request = make_request(participant_id=participant, rail_type=rail)
        result = self.store.enqueue(request)
        assert result.created
        assert result.sequence_id == self.next_sequence[participant]
        self.next_sequence[participant] += 1
        self.items[result.outbox_id] = Item(
            request=request,
            outbox_id=result.outbox_id,
            sequence_id=result.sequence_id,
            number=len(self.items),
            due_since=next(self.clock),
        )
        return request

    @rule(request=requests)
    def enqueue_again(self, request: EnqueueRequest) -> None:
        """A replay returns the same item, pending or completed, and burns no number."""
        result = self.store.enqueue(request)
        item = self._item_of(request)
        assert (result.created, result.outbox_id, result.sequence_id) == (
            False,
            item.outbox_id,
            item.sequence_id,
        )

    @rule(request=requests, change=st.sampled_from(["payload", "rail_type", "participant_id"]))
    def enqueue_conflicting(self, request: EnqueueRequest, change: str) -> None:
        """The same key with another payload, rail or participant is P7001 and writes nothing."""
        conflicting = {
            "payload": attrs.evolve(request, payload={**request.payload, "changed": True}),
            "rail_type": attrs.evolve(request, rail_type=f"{request.rail_type}-other"),
            "participant_id": attrs.evolve(
                request, participant_id=f"{request.participant_id}-other"
            ),
        }[change]
        before = outbox_rows(self.url, versions=True)
        with pytest.raises(IdempotencyConflict) as refused:
            self.store.enqueue(conflicting)
        assert refused.value.sqlstate == "P7001"
        assert outbox_rows(self.url, versions=True) == before

    # --- claim, complete, renew, release -------------------------------------------------

    @rule(worker=st.sampled_from(WORKERS), batch_size=st.integers(1, 4))
    def claim(self, worker: str, batch_size: int) -> None:
        """A claim leases the oldest due, unleased items that head their lane, as many as asked and available."""
        due = {
            item.outbox_id: item
            for item in self.items.values()
            if item.due and not item.done and not self._waits(item)
        }
        claimed = self.store.claim(worker, batch_size=batch_size, lease_seconds=LEASE_SECONDS)
        taken = {c.outbox_id for c in claimed}
        assert taken <= due.keys()
        assert len(taken) == min(batch_size, len(due))
        # Oldest first; items that became due in one transaction tie, and any of them may go.
        left = [item.due_since for outbox_id, item in due.items() if outbox_id not in taken]
        if left:
            assert max(due[outbox_id].due_since for outbox_id in taken) <= min(left)
        for leased in claimed:
            item = self.items[leased.outbox_id]
            assert leased.attempt_count == item.attempts
            item.holder, item.token, item.due, item.expired_at = (
                worker,
                leased.lease_token,
                False,
                None,
            )
            self.held[worker, leased.outbox_id] = leased

    @precondition(lambda self: self.held)
    @rule(data=st.data(), state=st.sampled_from(COMPLETION_STATES), delay=st.sampled_from([0, 600]))
    def complete(self, data: st.DataObject, state: AttemptState, delay: int) -> None:
        """The holder records an outcome; a stale lease (expired, repaired, done) is P7002."""
        worker, outbox_id = data.draw(st.sampled_from(self._held_in_order()), label="lease")
        leased = self.held.pop((worker, outbox_id))
        outcome = Outcome(lease=leased.lease, state=state, retry_delay_seconds=delay)
        if not self._holds(worker, leased):
            before = outbox_rows(self.url, versions=True)
            with pytest.raises(LeaseLost) as lost:
                self.store.complete(worker, outcome)
            assert lost.value.sqlstate == "P7002"
            assert outbox_rows(self.url, versions=True) == before
            return
        result = self.store.complete(worker, outcome)
        assert result.lease_held
        assert (result.attempt_no, result.state) == self._record(
            outbox_id, state, delay, next(self.clock)
        )

    @precondition(lambda self: self.held)
    @rule(worker=st.sampled_from(WORKERS), state=st.sampled_from(COMPLETION_STATES))
    def complete_batch(self, worker: str, state: AttemptState) -> None:
        """A batch records every held lease of the worker and reports the stale ones as lost."""
        mine = [self.held[w, outbox_id] for w, outbox_id in self._held_in_order() if w == worker]
        for leased in mine:
            del self.held[worker, leased.outbox_id]
        holds = {leased.outbox_id: self._holds(worker, leased) for leased in mine}
        results = self.store.complete_batch(
            worker, [Outcome(lease=leased.lease, state=state) for leased in mine]
        )
        assert {r.outbox_id: r.lease_held for r in results} == holds
        now = next(self.clock)  # one statement: every item it reschedules is due at one time
        for result in results:
            expected = (
                self._record(result.outbox_id, state, 0, now) if result.lease_held else (None, None)
            )
            assert (result.attempt_no, result.state) == expected

    @precondition(lambda self: self.held)
    @rule(data=st.data())
    def renew(self, data: st.DataObject) -> None:
        """A held lease is extended; a stale one is P7002 and the worker lets go of it."""
        worker, outbox_id = data.draw(st.sampled_from(self._held_in_order()), label="lease")
        leased = self.held[worker, outbox_id]
        if self._holds(worker, leased):
            expires = self.store.renew(worker, leased.lease, lease_seconds=LEASE_SECONDS)
            assert expires >= leased.lease_expires_at
            return
        del self.held[worker, outbox_id]
        with pytest.raises(LeaseLost) as lost:
            self.store.renew(worker, leased.lease, lease_seconds=LEASE_SECONDS)
        assert lost.value.sqlstate == "P7002"

    @precondition(lambda self: self.held)
    @rule(worker=st.sampled_from(WORKERS))
    def release(self, worker: str) -> None:
        """Release gives back the worker's held leases, due again at once, and skips stale ones."""
        mine = [self.held[w, outbox_id] for w, outbox_id in self._held_in_order() if w == worker]
        expected = {leased.outbox_id for leased in mine if self._holds(worker, leased)}
        released = self.store.release(worker, [leased.lease for leased in mine])
        assert set(released) == expected
        for leased in mine:
            del self.held[worker, leased.outbox_id]
        for outbox_id in expected:
            item = self.items[outbox_id]
            item.holder, item.token, item.due = None, None, True

    # --- expiry and repair ---------------------------------------------------------------

    @precondition(lambda self: any(i.holder and i.expired_at is None for i in self.items.values()))
    @rule(data=st.data())
    def expire(self, data: st.DataObject) -> None:
        """A lease lapses: moved into the past as the owner, as a crashed worker's would."""
        leased = [
            i.outbox_id
            for i in sorted(self.items.values(), key=lambda i: i.number)
            if i.holder and i.expired_at is None
        ]
        outbox_id = data.draw(st.sampled_from(leased), label="expiring")
        expire_lease(self.url, outbox_id)
        self.items[outbox_id].expired_at = next(self.clock)

    @rule(batch_size=st.integers(1, 3))
    def repair(self, batch_size: int) -> None:
        """Repair records the oldest expired leases once each, requeues or fails them at the ceiling."""
        expired = sorted(
            (i for i in self.items.values() if i.expired_at is not None),
            key=lambda item: item.expired_at or 0,
        )[:batch_size]
        repaired = self.store.repair("repairer", batch_size=batch_size)
        expected = []
        for item in expired:
            attempt_no = item.attempts + 1
            state = (
                AttemptState.FAILED if attempt_no >= MAX_ATTEMPTS else AttemptState.ZOMBIE_REQUEUE
            )
            expected.append((item.outbox_id, attempt_no, state, item.holder))
            item.attempts, item.holder, item.token, item.expired_at = attempt_no, None, None, None
            item.done, item.due = state is AttemptState.FAILED, state is not AttemptState.FAILED
        got = [(r.outbox_id, r.attempt_no, r.new_state, r.previous_holder) for r in repaired]
        assert got == expected

    # --- the model ----------------------------------------------------------------------

    def _item_of(self, request: EnqueueRequest) -> Item:
        (item,) = (i for i in self.items.values() if i.request == request)
        return item

    def _waits(self, item: Item) -> bool:
        """Whether an earlier item of its ordered lane is still pending."""
        return item.request.rail_type == ORDERED_RAIL and any(
            other.request.rail_type == ORDERED_RAIL
            and other.request.participant_id == item.request.participant_id
            and other.sequence_id < item.sequence_id
            and not other.done
            for other in self.items.values()
        )

    def _holds(self, worker: str, leased: ClaimedItem) -> bool:
        """Whether the database still has this lease: same holder and token, not expired."""
        item = self.items[leased.outbox_id]
        return (
            item.holder == worker
            and item.token == leased.lease_token
            and item.expired_at is None
            and not item.done
        )

    def _record(
        self, outbox_id: UUID, state: AttemptState, delay: int, now: int
    ) -> tuple[int, AttemptState]:
        """The model's side of an outcome recorded at `now`: (attempt_no, recorded state)."""
        item = self.items[outbox_id]
        item.attempts += 1
        if state is AttemptState.RETRYABLE and item.attempts >= MAX_ATTEMPTS:
            state = AttemptState.FAILED
        item.holder, item.token = None, None
        item.done = state is not AttemptState.RETRYABLE
        item.due = not item.done and delay == 0
        if item.due:
            item.due_since = now
        return item.attempts, state

    # --- invariants, after every step -----------------------------------------------------

    @invariant()
    def database_keeps_every_invariant(self) -> None:
        """The six invariants of the module docstring, and the model's view of the queue."""
        ((attempts, pending, allocators),) = query_no_role(self.url, SNAPSHOT)
        self._ledger_only_grows(attempts)
        by_item: dict[str, list[dict[str, Any]]] = {}
        for attempt in attempts:
            by_item.setdefault(attempt["outbox_id"], []).append(attempt)
        terminal = {
            outbox_id
            for outbox_id, rows in by_item.items()
            if any(row["state"] in TERMINAL for row in rows)
        }
        for outbox_id, rows in by_item.items():
            numbers = sorted(row["attempt_no"] for row in rows)
            assert numbers == list(range(1, len(rows) + 1)), f"attempt gap: {outbox_id}"
            assert sum(row["state"] in TERMINAL for row in rows) <= 1, f"two terminals: {outbox_id}"
        for row in pending:
            assert row["lease_fields_set"] in {0, 4}, f"half a lease: {row}"
        pending_ids = {row["outbox_id"] for row in pending}
        enqueued = {str(outbox_id) for outbox_id in self.items}
        assert pending_ids.isdisjoint(terminal), "an item both pending and terminal"
        assert pending_ids | terminal == enqueued, "an item lost, or one nobody enqueued"
        self._sequences_are_gapless(pending, attempts, allocators)
        self._queue_matches_the_model(pending, terminal)
        self._lanes_wait_in_order(pending)

    def _lanes_wait_in_order(self, pending: list[dict[str, Any]]) -> None:
        """Ordered exactly on the ordered rail; waiting exactly behind a pending earlier item."""
        for row in pending:
            ordered = row["rail_type"] == ORDERED_RAIL
            behind = any(
                other["ordered"]
                and (other["participant_id"], other["rail_type"])
                == (row["participant_id"], row["rail_type"])
                and other["sequence_id"] < row["sequence_id"]
                for other in pending
            )
            assert (row["ordered"], row["awaiting_predecessor"]) == (ordered, ordered and behind), (
                f"lane state: {row}"
            )

    def _ledger_only_grows(self, attempts: list[dict[str, Any]]) -> None:
        now = {row["attempt_id"]: row["row"] for row in attempts}
        changed = {key for key, row in self.ledger.items() if now.get(key) != row}
        assert not changed, f"ledger rows changed or vanished: {sorted(changed)}"
        self.ledger = now

    def _sequences_are_gapless(
        self,
        pending: list[dict[str, Any]],
        attempts: list[dict[str, Any]],
        allocators: dict[str, int],
    ) -> None:
        numbers: dict[str, set[int]] = {}
        for row in pending:
            numbers.setdefault(row["participant_id"], set()).add(row["sequence_id"])
        for item in self.items.values():
            if item.done:
                numbers.setdefault(item.request.participant_id, set()).add(item.sequence_id)
        ledger_numbers = {
            (json.loads(row["row"])["participant_id"], json.loads(row["row"])["sequence_id"])
            for row in attempts
        }
        assert ledger_numbers <= {(p, n) for p, ns in numbers.items() for n in ns}
        for participant, taken in numbers.items():
            assert taken == set(range(1, len(taken) + 1)), f"sequence gap: {participant}"
            assert allocators[participant] == len(taken) + 1, f"allocator: {participant}"

    def _queue_matches_the_model(self, pending: list[dict[str, Any]], terminal: set[str]) -> None:
        expected_pending = {
            str(item.outbox_id): (item.holder, str(item.token) if item.token else None)
            for item in self.items.values()
            if not item.done
        }
        actual = {row["outbox_id"]: (row["claimed_by"], row["lease_token"]) for row in pending}
        assert actual == expected_pending
        assert terminal == {str(i.outbox_id) for i in self.items.values() if i.done}


def test_random_interleavings_keep_every_invariant(
    outbox_server: Server, outbox_template: str
) -> None:
    """Enqueue, claim, complete, expire, repair, renew and release in any order: invariants hold."""
    # Hypothesis calls any factory of machines; its annotation asks for the class itself.
    factory = cast("type[OutboxMachine]", lambda: OutboxMachine(outbox_server, outbox_template))
    run_state_machine_as_test(factory, settings=SETTINGS)
