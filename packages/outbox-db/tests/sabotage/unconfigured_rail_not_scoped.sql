-- invariant: after a relayer without a new rail records RAIL_NOT_CONFIGURED on it, the previous release's claim leaves the rail to relayers that have it
-- proofs: packages/outbox-db/tests/integration/test_rail_scoped_claims.py::test_a_miss_by_a_relayer_without_a_new_rail_leaves_the_rail_to_relayers_that_have_it
-- The ledger as 0015 had it: a miss scopes nothing, so the previous release keeps claiming
-- the new rail and records RAIL_NOT_CONFIGURED retries until its items are FAILED.
DROP TRIGGER payment_outbox_attempts_scope_unconfigured_rail ON public.payment_outbox_attempts;
