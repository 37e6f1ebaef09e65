-- Queue depth for metrics (issue 17, part 4): per rail, how many items are due, scheduled,
-- waiting behind an ordered lane's head, leased and past their lease, and how long the
-- oldest due item has waited. From the pending table alone, in one pass: a scrape never
-- reads the ledger, however many years it holds (outbox_status_view, which also counts the
-- ledger's outcomes, is for people, not for a scraper every 15 s).
--
-- Aggregates only (no payload, no identifier), so the relayer's role may call it: one relayer
-- process of a fleet exports it (`--queue-metrics`), so the fleet does not report it N times.
-- One instant for every row (now(): the caller's transaction is this one statement), like
-- the status view, so the counts add up.

-- The whole file runs in one transaction (the migrator's): names resolve only in pg_catalog
-- unless schema-qualified, a lock wait gives up instead of queueing the database behind it,
-- and no statement runs unbounded.
SET LOCAL search_path = pg_catalog, pg_temp;
SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '30min';

CREATE FUNCTION public.outbox_queue_depth()
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
SET lock_timeout = '5s'
AS $function$
    SELECT
        p.rail_type,
        count(*) FILTER (WHERE p.claimed_by IS NULL AND NOT p.awaiting_predecessor
                           AND p.next_attempt_at <= pg_catalog.now()),
        count(*) FILTER (WHERE p.claimed_by IS NULL AND NOT p.awaiting_predecessor
                           AND p.next_attempt_at > pg_catalog.now()),
        count(*) FILTER (WHERE p.awaiting_predecessor),
        count(*) FILTER (WHERE p.lease_expires_at > pg_catalog.now()),
        count(*) FILTER (WHERE p.lease_expires_at <= pg_catalog.now()),
        coalesce(pg_catalog.date_part('epoch', pg_catalog.now() - min(p.next_attempt_at)
            FILTER (WHERE p.claimed_by IS NULL AND NOT p.awaiting_predecessor
                      AND p.next_attempt_at <= pg_catalog.now())), 0)::double precision
    FROM public.payment_outbox_pending AS p
    GROUP BY p.rail_type
    ORDER BY p.rail_type;
$function$;
ALTER FUNCTION public.outbox_queue_depth() OWNER TO outbox_owner;
REVOKE ALL ON FUNCTION public.outbox_queue_depth() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.outbox_queue_depth()
    TO symphony_executor, symphony_readonly, symphony_auditor;
