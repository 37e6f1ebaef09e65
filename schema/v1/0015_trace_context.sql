-- Trace context (issue 17, part 4): the W3C traceparent of the service's enqueue is stored
-- with the item, outside the payload, so a relayer can continue the service's trace (its
-- spans, and a `traceparent` header to rails that opt in) and idempotency never compares it.
--
-- The enqueue functions keep their signatures (a service or relayer of the previous release
-- keeps working): the caller sets `outbox.trace_context` for its transaction
-- (set_config(..., true), as OutboxStore does when a request carries a trace context) and the
-- column's default takes it. Anything but a valid version-00 traceparent is stored as NULL:
-- telemetry never refuses a payment. A replay inserts nothing, so it keeps the first trace.

-- The whole file runs in one transaction (the migrator's): names resolve only in pg_catalog
-- unless schema-qualified, a lock wait gives up instead of queueing the database behind it,
-- and no statement runs unbounded.
SET LOCAL search_path = pg_catalog, pg_temp;
SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '30min';

-- p_value when it is a version-00 W3C traceparent with non-zero ids, else NULL.
CREATE FUNCTION public.outbox_valid_traceparent(p_value text)
RETURNS text
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $function$
    SELECT CASE
        WHEN p_value ~ '^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$'
         AND substr(p_value, 4, 32) <> repeat('0', 32)
         AND substr(p_value, 37, 16) <> repeat('0', 16)
        THEN p_value
    END;
$function$;
ALTER FUNCTION public.outbox_valid_traceparent(text) OWNER TO outbox_owner;
REVOKE ALL ON FUNCTION public.outbox_valid_traceparent(text) FROM PUBLIC;

-- Adding a nullable column with a non-volatile default rewrites nothing: PostgreSQL 11+
-- evaluates it once for the existing items (NULL here: the migrator sets no trace) and
-- stores that in the catalog; new items take the enqueuing transaction's setting.
ALTER TABLE public.payment_outbox_pending
    ADD COLUMN trace_context text
    -- guardrails: allow OBX009 -- a STABLE default: no rewrite since PostgreSQL 11 (above)
    DEFAULT public.outbox_valid_traceparent(pg_catalog.current_setting('outbox.trace_context', true));

-- The trace contexts of items `p_worker_id` holds now: what a relayer reads after a claim,
-- when it traces. Another worker's items, or items no longer held, are not answered.
CREATE FUNCTION public.outbox_trace_contexts(p_worker_id text, p_outbox_ids uuid[])
RETURNS TABLE (outbox_id uuid, trace_context text)
LANGUAGE sql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET lock_timeout = '5s'
AS $function$
    SELECT p.outbox_id, p.trace_context
    FROM public.payment_outbox_pending AS p
    WHERE p.outbox_id = ANY (p_outbox_ids)
      AND p.claimed_by = p_worker_id
      AND p.trace_context IS NOT NULL;
$function$;
ALTER FUNCTION public.outbox_trace_contexts(text, uuid[]) OWNER TO outbox_owner;
REVOKE ALL ON FUNCTION public.outbox_trace_contexts(text, uuid[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.outbox_trace_contexts(text, uuid[]) TO symphony_executor;
