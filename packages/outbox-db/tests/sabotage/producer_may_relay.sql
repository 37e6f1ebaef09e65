-- invariant: symphony_producer enqueues and nothing else: it cannot claim (reading every participant's payload), record an outcome, renew, release or repair (42501)
-- proofs: packages/outbox-db/tests/integration/test_role_refusals.py::test_producer_cannot_execute_relayer_functions
-- proofs: packages/outbox-db/tests/integration/test_role_grants.py::test_catalog_grants_execute_to_the_executor_only
-- proofs: packages/outbox-db/tests/integration/test_executor_boundary.py::test_role_attempt_gets_its_sqlstate[producer-call-claim_outbox_batch]
-- proofs: packages/outbox-db/tests/integration/test_executor_boundary.py::test_role_attempt_gets_its_sqlstate[producer-call-complete_outbox_attempt]
-- The finding of issue 16 put back: the producer may run the relayer's functions. Granted
-- per function, not as membership of symphony_executor: roles are cluster-wide, and a
-- sabotage must not outlive the database it is applied to.
GRANT EXECUTE ON FUNCTION
    public.claim_outbox_batch(integer, text, integer),
    public.complete_outbox_attempt(uuid, uuid, text, text, text, text, text, text, integer, integer),
    public.complete_outbox_attempts(
        text, uuid[], uuid[], text[], text[], text[], text[], text[], integer[], integer[]
    ),
    public.renew_outbox_lease(uuid, uuid, text, integer),
    public.release_outbox_leases(text, uuid[], uuid[]),
    public.repair_expired_leases(integer, text)
TO symphony_producer;
