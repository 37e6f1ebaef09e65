-- invariant: the ledger's and the leases' times are the clock's when a row is written, not the start of the caller's transaction
-- proofs: packages/outbox-db/tests/integration/test_ledger_records_facts.py::test_a_completion_from_an_old_transaction_is_dated_when_it_is_recorded
-- proofs: packages/outbox-db/tests/integration/test_ledger_records_facts.py::test_a_lease_the_clock_expired_is_not_renewed_from_an_old_transaction
-- Every function that reads the clock reads now() instead: the same text otherwise.
DO $sabotage$
DECLARE
    v_function regprocedure;
BEGIN
    FOR v_function IN
        SELECT p.oid::regprocedure FROM pg_catalog.pg_proc AS p
        WHERE p.pronamespace = 'public'::regnamespace AND p.prosrc LIKE '%clock_timestamp()%'
    LOOP
        EXECUTE replace(pg_catalog.pg_get_functiondef(v_function), 'clock_timestamp()', 'now()');
    END LOOP;
END
$sabotage$;
