-- invariant: runtime roles reach the tables only through the functions (42501 otherwise)
-- proofs: packages/outbox-db/tests/integration/test_role_refusals.py::test_runtime_roles_cannot_write_outbox_tables_directly
-- proofs: packages/outbox-db/tests/integration/test_role_refusals.py::test_public_cannot_execute_outbox_functions
-- proofs: packages/outbox-db/tests/adversarial/test_careless_operator.py::test_a_reader_s_write_of_any_kind_is_refused
GRANT INSERT, UPDATE, DELETE, TRUNCATE ON public.payment_outbox_pending, public.payment_outbox_attempts,
    public.participant_outbox_sequences TO symphony_executor, symphony_readonly, symphony_auditor;
GRANT EXECUTE ON FUNCTION public.claim_outbox_batch(integer, text, integer) TO PUBLIC;
