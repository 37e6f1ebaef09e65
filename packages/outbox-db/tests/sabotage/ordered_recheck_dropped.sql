-- invariant: an ordered item that enters its lane waiting re-checks its lane at commit, so a head completing meanwhile never strands it
-- proofs: packages/outbox-db/tests/integration/test_ordered_delivery.py::test_an_item_enqueued_while_its_head_completes_is_released_at_its_commit
-- proofs: packages/outbox-db/tests/integration/test_ordered_delivery.py::test_a_commit_meeting_its_heads_completion_in_flight_waits_for_it
-- Without the deferred re-check, the enqueue's decision ("a head is live: wait") is final,
-- and a completion that cannot see the uncommitted item leaves it waiting for ever.
DROP TRIGGER payment_outbox_pending_recheck_waiting ON public.payment_outbox_pending;
