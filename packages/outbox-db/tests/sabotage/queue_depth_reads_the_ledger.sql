-- invariant: a metrics scrape reads the queue alone, never the ledger, and counts what the status view counts
-- proofs: packages/outbox-db/tests/integration/test_queue_depth.py::test_queue_depth_never_reads_the_ledger
-- The depth taken from the status view (which aggregates the whole ledger in the same pass).
CREATE OR REPLACE FUNCTION public.outbox_queue_depth()
RETURNS TABLE (
    rail_type text,
    due_count bigint,
    scheduled_count bigint,
    waiting_count bigint,
    leased_count bigint,
    expired_lease_count bigint,
    oldest_due_age_seconds double precision
)
LANGUAGE sql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $function$
    SELECT v.rail_type, v.due_count, v.scheduled_count, v.waiting_count, v.leased_count,
        v.expired_lease_count, v.oldest_due_age_seconds
    FROM public.outbox_status_view AS v
    WHERE v.rail_type IS NOT NULL
    ORDER BY v.rail_type;
$function$;
