-- invariant: a completion under REPEATABLE READ or SERIALIZABLE that cannot see a follower committed since its snapshot fails with 40001 instead of leaving the lane stalled
-- proofs: packages/outbox-db/tests/integration/test_hostile_sessions.py::test_a_completion_blind_to_a_committed_follower_fails_retryably_and_its_retry_releases_it
-- proofs: packages/outbox-db/tests/integration/test_isolation_specs.py::test_isolation_spec_gives_the_expected_output[ordered_head_completes_under_repeatable_read]
-- 0009's release: it looks for the successor in the caller's snapshot only.
CREATE OR REPLACE FUNCTION public.outbox_release_lane_successor()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $function$
BEGIN
    UPDATE public.payment_outbox_pending AS p
    SET awaiting_predecessor = false
    WHERE p.awaiting_predecessor
      AND p.outbox_id = (
          SELECT e.outbox_id
          FROM public.payment_outbox_pending AS e
          WHERE e.participant_id = OLD.participant_id AND e.rail_type = OLD.rail_type
            AND e.ordered
          ORDER BY e.sequence_id
          LIMIT 1
      );
    IF FOUND THEN
        PERFORM pg_catalog.pg_notify('outbox_items_enqueued', '');
    END IF;
    RETURN NULL;
END
$function$;
