-- invariant: only the outbox writes its own error codes (LEASE_EXPIRED, RETRY_CEILING_REACHED, LEGACY_DISPATCHING_REQUEUED); a relayer's is refused (22023)
-- proofs: packages/outbox-db/tests/integration/test_ledger_records_facts.py::test_a_relayer_may_not_write_the_outboxs_own_codes
-- The caps and the control characters stay checked: only the reserved codes go.
CREATE OR REPLACE FUNCTION public.outbox_require_outcome_text(
    p_rail_references text[], p_rail_codes text[], p_error_codes text[], p_error_messages text[]
)
RETURNS void
LANGUAGE plpgsql
IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $function$
BEGIN
    IF EXISTS (
        SELECT FROM (
            VALUES (p_rail_references), (p_rail_codes), (p_error_codes), (p_error_messages)
        ) AS t(texts)
        WHERE public.outbox_control_character_at(t.texts) IS NOT NULL
            OR EXISTS (SELECT FROM unnest(t.texts) AS v WHERE length(v) > 1000)
    ) THEN
        RAISE EXCEPTION 'outcome text too long or with control characters'
            USING ERRCODE = '22023';
    END IF;
END
$function$;
