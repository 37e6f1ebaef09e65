-- invariant: outcome text is within its documented caps and free of control characters (22023)
-- proofs: packages/outbox-db/tests/integration/test_ledger_records_facts.py::test_outcome_text_over_its_cap_is_refused_and_at_its_cap_recorded
-- proofs: packages/outbox-db/tests/integration/test_ledger_records_facts.py::test_outcome_text_with_control_characters_is_refused
-- The reserved codes stay refused: only the caps and the control characters go.
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
        SELECT FROM unnest(p_error_codes) AS c
        WHERE c IN ('LEASE_EXPIRED', 'RETRY_CEILING_REACHED', 'LEGACY_DISPATCHING_REQUEUED')
    ) THEN
        RAISE EXCEPTION 'error_code must not be one the outbox writes itself'
            USING ERRCODE = '22023', COLUMN = 'error_code';
    END IF;
END
$function$;
