-- invariant: a rail-scoped claim leases at most its limit of each rail: no lease waits in the relayer for a slot
-- proofs: packages/outbox-db/tests/integration/test_rail_scoped_claims.py::test_each_rail_gets_at_most_its_limit
-- proofs: packages/outbox-relayer/tests/integration/test_worker_dispatches_and_retries.py::test_a_slow_rail_holds_no_more_leases_than_its_slots_and_leaves_the_rest_to_a_fast_one
-- The claim of 0013 taking every due item of each named rail, whatever the limit.
CREATE OR REPLACE FUNCTION public.claim_outbox_rails(
    p_worker_id text,
    p_lease_seconds integer,
    p_rail_types text[],
    p_limits integer[]
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
    v_rails integer := coalesce(cardinality(p_rail_types), 0);
    v_ids uuid[];
BEGIN
    PERFORM public.outbox_require_text('worker_id', p_worker_id);
    PERFORM public.outbox_require_range('lease_seconds', p_lease_seconds, 1, 3600);
    PERFORM public.outbox_require_range('rail_count', v_rails, 1, 100);
    IF public.outbox_invalid_identifier_at(p_rail_types) IS NOT NULL
        OR (SELECT count(DISTINCT r) FROM unnest(p_rail_types) AS r) <> v_rails THEN
        RAISE EXCEPTION 'rail_types must be distinct identifiers of at most 255 characters'
            USING ERRCODE = '22023', COLUMN = 'rail_types';
    END IF;
    IF coalesce(cardinality(p_limits), 0) <> v_rails
        OR EXISTS (SELECT FROM unnest(p_limits) AS l WHERE l IS NULL OR l < 0) THEN
        RAISE EXCEPTION 'limits must give each rail type a count of at least 0'
            USING ERRCODE = '22023', COLUMN = 'limits';
    END IF;
    PERFORM public.outbox_require_range(
        'batch_size', (SELECT sum(l)::integer FROM unnest(p_limits) AS l), 0, 1000
    );
    PERFORM public.outbox_announce_rails(p_worker_id, p_rail_types, v_now);

    SELECT array_agg(d.outbox_id) INTO v_ids
    FROM unnest(p_rail_types, p_limits) AS r(rail_type, max_items)
    CROSS JOIN LATERAL (
        SELECT e.outbox_id
        FROM public.payment_outbox_pending AS e
        WHERE e.rail_type = r.rail_type
          AND e.claimed_by IS NULL AND NOT e.awaiting_predecessor
          AND e.next_attempt_at <= v_now
        ORDER BY e.next_attempt_at
        LIMIT 1000
        FOR UPDATE SKIP LOCKED
    ) AS d;

    RETURN QUERY
    SELECT * FROM public.outbox_lease_items(v_ids, p_worker_id, p_lease_seconds, v_now);
END
$function$;
