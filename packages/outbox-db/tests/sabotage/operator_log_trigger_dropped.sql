-- invariant: the operator log is append-only (UPDATE, DELETE, TRUNCATE refused, P0001)
-- proofs: packages/outbox-db/tests/integration/test_redrive.py::test_owner_cannot_change_the_operator_log
DROP TRIGGER outbox_operator_log_append_only ON public.outbox_operator_log;
