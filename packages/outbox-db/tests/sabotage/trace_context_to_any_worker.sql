-- invariant: the enqueue's trace context is stored with the item, outside the payload, and handed only to its holder
-- proofs: packages/outbox-db/tests/integration/test_trace_context.py::test_the_enqueues_trace_context_reaches_the_holder_only
-- Any worker reads any item's trace context, held or not.
CREATE OR REPLACE FUNCTION public.outbox_trace_contexts(p_worker_id text, p_outbox_ids uuid[])
RETURNS TABLE (outbox_id uuid, trace_context text)
LANGUAGE sql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $function$
    SELECT p.outbox_id, p.trace_context
    FROM public.payment_outbox_pending AS p
    WHERE p.outbox_id = ANY (p_outbox_ids) AND p.trace_context IS NOT NULL;
$function$;
