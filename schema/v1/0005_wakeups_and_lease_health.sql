-- What a running relayer needs beyond the seeds' functions (DESIGN section 4):
--
-- 1. Wake-ups: every statement that inserts pending items notifies channel
--    outbox_items_enqueued when its transaction commits, so idle relayers (LISTEN) claim at
--    once instead of at their next poll. A notification carries nothing: it says "look",
--    never which item, so a lost one only delays work until the next poll. PostgreSQL folds
--    identical notifications of one transaction into one, so a batch enqueue wakes once.
-- 2. Lease health: outbox_expired_lease_count() counts expired leases from the pending
--    table alone (through its lease-expiry index), so a relayer can read the signal every
--    cycle without the status view's scan of the whole ledger.

-- The whole file runs in one transaction (the migrator's): names resolve only in pg_catalog
-- unless schema-qualified, a lock wait gives up instead of queueing the database behind it,
-- and no statement runs unbounded.
SET LOCAL search_path = pg_catalog, pg_temp;
SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '30min';

-- Runs as a trigger only (PostgreSQL refuses a direct call), with the inserting role's
-- rights; pg_notify needs none.
CREATE FUNCTION public.notify_outbox_items_enqueued()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $function$
BEGIN
    PERFORM pg_catalog.pg_notify('outbox_items_enqueued', '');
    RETURN NULL;
END
$function$;
ALTER FUNCTION public.notify_outbox_items_enqueued() OWNER TO outbox_owner;
REVOKE ALL ON FUNCTION public.notify_outbox_items_enqueued() FROM PUBLIC;

CREATE TRIGGER payment_outbox_pending_notify_enqueued
    AFTER INSERT ON public.payment_outbox_pending
    FOR EACH STATEMENT EXECUTE FUNCTION public.notify_outbox_items_enqueued();

CREATE FUNCTION public.outbox_expired_lease_count()
RETURNS bigint
LANGUAGE sql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $function$
    SELECT count(*)
    FROM public.payment_outbox_pending AS p
    WHERE p.lease_expires_at <= pg_catalog.now();
$function$;
ALTER FUNCTION public.outbox_expired_lease_count() OWNER TO outbox_owner;
REVOKE ALL ON FUNCTION public.outbox_expired_lease_count() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.outbox_expired_lease_count() TO symphony_executor;
