-- A rail added out of order waits instead of failing (issue 17, part 3). 0013 leaves to
-- rail-scoped relayers a rail they announced before its first item. Enqueue on a new rail
-- before any relayer of this release announced it, and the previous release's relayers,
-- never configured for it, claimed its items and recorded RAIL_NOT_CONFIGURED retries until
-- they were FAILED.
--
-- Now the ledger itself scopes such a rail: the first RAIL_NOT_CONFIGURED attempt recorded on
-- a rail that had no item when this file was applied puts it in outbox_scoped_rails, in the
-- transaction that records the attempt. The previous release's claim leaves it alone from
-- then on; the items wait, due, in outbox_unserved_rails (and the OutboxRailUnserved alert)
-- until a relayer that has the rail claims them. Each item the previous release claimed
-- before that keeps one RETRYABLE attempt; none is sent (the previous relayer never sent to
-- a rail it lacked).
--
-- Only a relayer of the previous release records RAIL_NOT_CONFIGURED: this release's claims
-- take only the rails a relayer has. A rail that had items when this file was applied
-- (outbox_established_rails) is left as it was: the previous release serves it, and one
-- misconfigured relayer of that release must not take it from the rest of the fleet.

-- The whole file runs in one transaction (the migrator's): names resolve only in pg_catalog
-- unless schema-qualified, a lock wait gives up instead of queueing the database behind it,
-- and no statement runs unbounded.
SET LOCAL search_path = pg_catalog, pg_temp;
SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '30min';

CREATE TABLE public.outbox_established_rails (
    rail_type text PRIMARY KEY
);

-- Every rail an item ever took (the keys' primary key starts with the rail: one index probe
-- per rail, not a scan of every key), less the rails 0013 already scoped.
INSERT INTO public.outbox_established_rails (rail_type)
WITH RECURSIVE rails AS (
    (
        SELECT k.rail_type
        FROM public.outbox_idempotency_keys AS k
        ORDER BY k.rail_type
        LIMIT 1
    )
    UNION ALL
    SELECT n.rail_type
    FROM rails AS r
    CROSS JOIN LATERAL (
        SELECT k.rail_type
        FROM public.outbox_idempotency_keys AS k
        WHERE k.rail_type > r.rail_type
        ORDER BY k.rail_type
        LIMIT 1
    ) AS n
)
SELECT r.rail_type
FROM rails AS r
WHERE NOT EXISTS (SELECT FROM public.outbox_scoped_rails AS s WHERE s.rail_type = r.rail_type);

-- Why a rail is scoped: announced before its first item (0013), or a relayer lacked it.
ALTER TABLE public.outbox_scoped_rails
    ADD COLUMN reason text NOT NULL DEFAULT 'announced before its first item';

CREATE FUNCTION public.outbox_scope_unconfigured_rail()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $function$
BEGIN
    INSERT INTO public.outbox_scoped_rails (rail_type, announced_by, announced_at, reason)
    SELECT NEW.rail_type, coalesce(NEW.worker_id, 'unknown'), clock_timestamp(),
        'RAIL_NOT_CONFIGURED recorded by a relayer without the rail'
    WHERE NOT EXISTS (
        SELECT FROM public.outbox_established_rails AS e WHERE e.rail_type = NEW.rail_type
    )
    ON CONFLICT (rail_type) DO NOTHING;
    RETURN NULL;
END
$function$;

-- Fires only for the rare miss; every other attempt pays the WHEN test alone.
CREATE TRIGGER payment_outbox_attempts_scope_unconfigured_rail
    AFTER INSERT ON public.payment_outbox_attempts
    FOR EACH ROW
    WHEN (NEW.error_code = 'RAIL_NOT_CONFIGURED')
    EXECUTE FUNCTION public.outbox_scope_unconfigured_rail();

ALTER TABLE public.outbox_established_rails OWNER TO outbox_owner;
REVOKE ALL ON public.outbox_established_rails FROM PUBLIC;
GRANT SELECT ON public.outbox_established_rails TO symphony_readonly, symphony_auditor;
ALTER FUNCTION public.outbox_scope_unconfigured_rail() OWNER TO outbox_owner;
REVOKE ALL ON FUNCTION public.outbox_scope_unconfigured_rail() FROM PUBLIC;
