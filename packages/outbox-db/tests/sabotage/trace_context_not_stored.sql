-- invariant: the enqueue's trace context is stored with the item, outside the payload, and handed only to its holder
-- proofs: packages/outbox-db/tests/integration/test_trace_context.py
-- The column no longer takes the transaction's trace context: every item is stored without one.
ALTER TABLE public.payment_outbox_pending ALTER COLUMN trace_context DROP DEFAULT;
