-- invariant: a service cannot enqueue a key in the outbox's own "outbox:" namespace (22023)
-- proofs: packages/outbox-db/tests/integration/test_redrive.py::test_a_service_cannot_take_the_redrive_key_first
CREATE OR REPLACE FUNCTION public.outbox_require_service_key(p_idempotency_key text)
RETURNS void
LANGUAGE plpgsql
IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $function$
BEGIN
    PERFORM public.outbox_require_text('idempotency_key', p_idempotency_key);
END
$function$;
