-- Lease-aware health of the queue: one row per rail_type, plus a total row whose rail_type
-- is NULL (present even when both tables are empty). Queue figures come from
-- payment_outbox_pending (due, scheduled, waiting behind an earlier item of an ordered lane,
-- leased, expired leases, oldest due age); attempt
-- figures from the ledger, aggregated in the same pass: the months still in it, not those
-- archived (0019, which made the ledger a partitioned table this view follows). Nothing here derives from the
-- deprecated DISPATCHING state: in-flight is lease state.
-- Re-applied by the migrator whenever this file changes (a repeatable migration). Dropped
-- first: CREATE OR REPLACE cannot drop or rename the columns of an older definition (the
-- DISPATCHING era's view had DISPATCHING-derived ones).
-- The whole file runs in one transaction (the migrator's): names resolve only in pg_catalog
-- unless schema-qualified, a lock wait gives up instead of queueing the database behind it,
-- and no statement runs unbounded.
SET LOCAL search_path = pg_catalog, pg_temp;
SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '30min';

DROP VIEW IF EXISTS public.outbox_status_view;
CREATE VIEW public.outbox_status_view AS
SELECT
    s.rail_type,
    count(*) FILTER (
        WHERE s.queued AND s.claimed_by IS NULL AND NOT s.awaiting_predecessor
          AND s.next_attempt_at <= now()
    ) AS due_count,
    count(*) FILTER (
        WHERE s.queued AND s.claimed_by IS NULL AND NOT s.awaiting_predecessor
          AND s.next_attempt_at > now()
    ) AS scheduled_count,
    count(*) FILTER (WHERE s.awaiting_predecessor) AS waiting_count,
    count(*) FILTER (WHERE s.lease_expires_at > now()) AS leased_count,
    count(*) FILTER (WHERE s.lease_expires_at <= now()) AS expired_lease_count,
    coalesce(
        extract(EPOCH FROM now() - min(s.next_attempt_at) FILTER (
            WHERE s.queued AND s.claimed_by IS NULL AND NOT s.awaiting_predecessor
              AND s.next_attempt_at <= now()
        )),
        0
    )::double precision AS oldest_due_age_seconds,
    count(*) FILTER (WHERE s.state = 'DISPATCHED') AS dispatched_count,
    count(*) FILTER (WHERE s.state = 'RETRYABLE') AS retryable_count,
    count(*) FILTER (WHERE s.state = 'FAILED') AS failed_count,
    count(*) FILTER (WHERE s.state = 'ZOMBIE_REQUEUE') AS lease_repair_count
FROM (
    SELECT TRUE AS queued, p.rail_type, p.claimed_by, p.next_attempt_at, p.lease_expires_at,
        p.awaiting_predecessor, NULL::public.outbox_attempt_state AS state
    FROM public.payment_outbox_pending AS p
    UNION ALL
    SELECT FALSE, a.rail_type, NULL, NULL, NULL, FALSE, a.state
    FROM public.payment_outbox_attempts AS a
) AS s
GROUP BY ROLLUP (s.rail_type);

ALTER VIEW public.outbox_status_view OWNER TO outbox_owner;
REVOKE ALL ON public.outbox_status_view FROM PUBLIC;
GRANT SELECT ON public.outbox_status_view
    TO symphony_executor, symphony_readonly, symphony_auditor;
