-- invariant: when an ordered item reaches a terminal outcome, its lane's next item is released
-- proofs: packages/outbox-db/tests/integration/test_ordered_delivery.py::test_a_terminal_outcome_releases_the_next_item_at_once
-- proofs: packages/outbox-db/tests/integration/test_ordered_delivery.py::test_a_lease_repair_at_the_retry_ceiling_releases_the_next_item
-- Without the release, a lane stops at its first terminal item.
DROP TRIGGER payment_outbox_pending_release_lane_successor ON public.payment_outbox_pending;
