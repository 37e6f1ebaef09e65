-- The rails with due items that no relayer announced in the last 60 s (schema 0013): how many
-- items are due, how long the oldest has been, and when a relayer last announced the rail
-- (null: never, or not within the last hour). Cheap enough for every repair cycle: one probe
-- of payment_outbox_pending_rail_due per rail with claimable items (a loose index scan),
-- then a count over the due items of the unserved rails only.
-- Re-applied by the migrator whenever this file changes (a repeatable migration).
-- The whole file runs in one transaction (the migrator's): names resolve only in pg_catalog
-- unless schema-qualified, a lock wait gives up instead of queueing the database behind it,
-- and no statement runs unbounded.
SET LOCAL search_path = pg_catalog, pg_temp;
SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '30min';

DROP VIEW IF EXISTS public.outbox_unserved_rails;
CREATE VIEW public.outbox_unserved_rails AS
WITH RECURSIVE rails AS (
    (
        SELECT p.rail_type
        FROM public.payment_outbox_pending AS p
        WHERE p.claimed_by IS NULL AND NOT p.awaiting_predecessor
        ORDER BY p.rail_type
        LIMIT 1
    )
    UNION ALL
    SELECT n.rail_type
    FROM rails AS r
    CROSS JOIN LATERAL (
        SELECT p.rail_type
        FROM public.payment_outbox_pending AS p
        WHERE p.claimed_by IS NULL AND NOT p.awaiting_predecessor
          AND p.rail_type > r.rail_type
        ORDER BY p.rail_type
        LIMIT 1
    ) AS n
),
unserved AS (
    SELECT r.rail_type, s.last_served_at
    FROM rails AS r
    CROSS JOIN LATERAL (
        SELECT max(o.seen_at) AS last_served_at
        FROM public.outbox_rail_servers AS o
        WHERE o.rail_type = r.rail_type
    ) AS s
    WHERE s.last_served_at IS NULL OR s.last_served_at <= now() - interval '60 seconds'
)
SELECT u.rail_type, d.due_count,
    extract(EPOCH FROM now() - d.oldest)::double precision AS oldest_due_age_seconds,
    u.last_served_at
FROM unserved AS u
CROSS JOIN LATERAL (
    SELECT count(*) AS due_count, min(p.next_attempt_at) AS oldest
    FROM public.payment_outbox_pending AS p
    WHERE p.rail_type = u.rail_type
      AND p.claimed_by IS NULL AND NOT p.awaiting_predecessor
      AND p.next_attempt_at <= now()
) AS d
WHERE d.due_count > 0;

ALTER VIEW public.outbox_unserved_rails OWNER TO outbox_owner;
REVOKE ALL ON public.outbox_unserved_rails FROM PUBLIC;
GRANT SELECT ON public.outbox_unserved_rails
    TO symphony_executor, symphony_readonly, symphony_auditor;
