-- invariant: the previous release's claim leaves alone a rail announced by rail-scoped relayers before it had an item
-- proofs: packages/outbox-db/tests/integration/test_rail_scoped_claims.py::test_the_previous_release_claim_leaves_a_rail_announced_before_its_first_item
-- The previous release's claim as 0012 had it: every rail, so a relayer that was never
-- configured for a new rail claims its items and records RAIL_NOT_CONFIGURED retries.
CREATE OR REPLACE FUNCTION public.claim_outbox_batch(
    p_batch_size integer,
    p_worker_id text,
    p_lease_seconds integer
)
RETURNS TABLE (
    outbox_id uuid,
    instruction_id text,
    participant_id text,
    sequence_id bigint,
    idempotency_key text,
    rail_type text,
    payload jsonb,
    attempt_count integer,
    lease_token uuid,
    lease_expires_at timestamptz,
    last_error_code text
)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET lock_timeout = '5s'
AS $function$
DECLARE
    v_now timestamptz := clock_timestamp();
    v_ids uuid[];
BEGIN
    PERFORM public.outbox_require_range('batch_size', p_batch_size, 1, 1000);
    PERFORM public.outbox_require_text('worker_id', p_worker_id);
    PERFORM public.outbox_require_range('lease_seconds', p_lease_seconds, 1, 3600);

    SELECT array_agg(d.outbox_id) INTO v_ids
    FROM (
        SELECT e.outbox_id
        FROM public.payment_outbox_pending AS e
        WHERE e.claimed_by IS NULL AND NOT e.awaiting_predecessor
          AND e.next_attempt_at <= v_now
        ORDER BY e.next_attempt_at
        LIMIT p_batch_size
        FOR UPDATE OF e SKIP LOCKED
    ) AS d;

    RETURN QUERY
    SELECT * FROM public.outbox_lease_items(v_ids, p_worker_id, p_lease_seconds, v_now);
END
$function$;
