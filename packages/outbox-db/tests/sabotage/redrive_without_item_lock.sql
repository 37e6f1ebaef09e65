-- invariant: concurrent re-drives of one item make one new item (they queue on the item's FAILED attempt)
-- proofs: packages/outbox-db/tests/integration/test_redrive.py::test_a_redrive_racing_an_uncommitted_one_waits_for_it_and_returns_it
-- proofs: packages/outbox-db/tests/integration/test_redrive.py::test_concurrent_redrives_of_one_item_make_one_item
-- The shipped definition without the row lock that makes a second re-drive wait for the first.
DO $sabotage$
DECLARE
    v_definition text := pg_catalog.pg_get_functiondef(
        'public.redrive_payment_outbox(uuid, text)'::regprocedure
    );
    v_sabotaged text;
BEGIN
    v_sabotaged := pg_catalog.replace(
        v_definition,
        'WHERE a.outbox_id = p_outbox_id AND a.state = ''FAILED''
    FOR UPDATE;',
        'WHERE a.outbox_id = p_outbox_id AND a.state = ''FAILED'';'
    );
    IF v_sabotaged = v_definition THEN
        RAISE EXCEPTION 'sabotage found no row lock to remove';
    END IF;
    EXECUTE v_sabotaged;
END
$sabotage$;
