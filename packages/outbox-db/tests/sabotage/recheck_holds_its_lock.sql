-- invariant: an ordered item's commit-time re-check keeps no lock, so a service that runs it early and idles holds neither the head's completion nor its lease repair
-- proofs: packages/outbox-db/tests/integration/test_hostile_sessions.py::test_a_service_idling_after_an_early_recheck_holds_no_head_and_its_item_is_released
-- 0009's re-check: its KEY SHARE lock on the lane's last live item lasts until the enqueue
-- commits, which SET CONSTRAINTS ALL IMMEDIATE and an idle session put off without bound.
CREATE OR REPLACE FUNCTION public.outbox_recheck_waiting_item()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $function$
BEGIN
    PERFORM
    FROM public.payment_outbox_pending AS e
    WHERE e.participant_id = NEW.participant_id AND e.rail_type = NEW.rail_type
      AND e.ordered AND e.sequence_id < NEW.sequence_id
    ORDER BY e.sequence_id DESC
    LIMIT 1
    FOR KEY SHARE;
    IF NOT FOUND THEN
        UPDATE public.payment_outbox_pending AS p
        SET awaiting_predecessor = false
        WHERE p.outbox_id = NEW.outbox_id AND p.awaiting_predecessor;
    END IF;
    RETURN NULL;
END
$function$;
