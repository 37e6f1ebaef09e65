-- invariant: only a FAILED item can be re-driven (P7004 otherwise, nothing written)
-- proofs: packages/outbox-db/tests/integration/test_redrive.py::test_redrive_of_an_item_that_is_not_failed_is_refused_and_writes_nothing
-- The shipped definition with its FAILED condition widened to any terminal outcome, so a
-- DISPATCHED payment could be sent again under a new key.
DO $sabotage$
DECLARE
    v_definition text := pg_catalog.pg_get_functiondef(
        'public.redrive_payment_outbox(uuid, text)'::regprocedure
    );
    v_sabotaged text;
BEGIN
    v_sabotaged := pg_catalog.replace(
        v_definition,
        'WHERE a.outbox_id = p_outbox_id AND a.state = ''FAILED''',
        'WHERE a.outbox_id = p_outbox_id AND a.state IN (''FAILED'', ''DISPATCHED'')'
    );
    IF v_sabotaged = v_definition THEN
        RAISE EXCEPTION 'sabotage found no FAILED condition to widen';
    END IF;
    EXECUTE v_sabotaged;
END
$sabotage$;
