-- invariant: only the lease holder (token, worker, unexpired) records an outcome (P7002)
-- proofs: packages/outbox-db/tests/integration/test_leases.py::test_completion_without_the_lease_is_lease_lost
-- proofs: packages/outbox-db/tests/integration/test_leases.py::test_late_completion_after_repair_is_lease_lost
-- proofs: packages/outbox-db/tests/integration/test_leases.py::test_completion_after_expiry_is_lease_lost
-- proofs: packages/outbox-db/tests/adversarial/test_hostile_relayer.py::test_the_token_of_its_own_lease_does_not_open_another_item
-- proofs: packages/outbox-db/tests/adversarial/test_hostile_relayer.py::test_operators_planted_in_pg_temp_do_not_make_a_wrong_token_match
-- The shipped definition with its lease predicate replaced by TRUE, so it follows any change.
DO $sabotage$
DECLARE
    v_definition text := pg_catalog.pg_get_functiondef(
        'public.complete_outbox_attempts(text, uuid[], uuid[], text[], text[], text[], text[], text[], integer[], integer[])'::regprocedure
    );
    v_sabotaged text;
BEGIN
    v_sabotaged := pg_catalog.replace(
        v_definition,
        'WHERE p.lease_token = o.lease_token
          AND p.claimed_by = p_worker_id
          AND (p.lease_expires_at > v_now) IS TRUE',
        'WHERE TRUE'
    );
    IF v_sabotaged = v_definition THEN
        RAISE EXCEPTION 'sabotage found no lease predicate to remove';
    END IF;
    EXECUTE v_sabotaged;
END
$sabotage$;
