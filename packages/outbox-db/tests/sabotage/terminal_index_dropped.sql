-- invariant: one terminal attempt per item (23505 on the terminal partial unique index)
-- proofs: packages/outbox-db/tests/integration/test_terminal_guard.py
DROP INDEX public.payment_outbox_attempts_one_terminal_per_outbox;
