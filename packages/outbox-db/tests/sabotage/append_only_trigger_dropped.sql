-- invariant: the attempts ledger is append-only (UPDATE, DELETE, TRUNCATE refused, P0001)
-- proofs: packages/outbox-db/tests/integration/test_append_only.py
DROP TRIGGER payment_outbox_attempts_append_only ON public.payment_outbox_attempts;
