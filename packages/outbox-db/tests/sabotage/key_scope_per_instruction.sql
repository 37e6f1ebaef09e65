-- invariant: a rail-facing idempotency key names one item per rail for the life of the outbox (P7001)
-- proofs: packages/outbox-db/tests/integration/test_one_key_one_payment.py
-- proofs: packages/outbox-relayer/tests/integration/test_promise_at_the_rail.py::test_a_key_reaches_the_rail_for_one_payment_only
ALTER TABLE public.outbox_idempotency_keys
    DROP CONSTRAINT outbox_idempotency_keys_one_item_per_rail_key;
