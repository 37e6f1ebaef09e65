-- invariant: the enqueue's trace context is stored with the item, outside the payload, and handed only to its holder
-- proofs: packages/outbox-db/tests/integration/test_trace_context.py
-- proofs: packages/outbox-relayer/tests/integration/test_tracing.py::test_a_send_continues_the_enqueue_trace_and_the_rail_receives_it
-- The column no longer takes the transaction's trace context: every item is stored without one.
ALTER TABLE public.payment_outbox_pending ALTER COLUMN trace_context DROP DEFAULT;
