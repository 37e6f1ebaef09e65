-- invariant: claiming leases an item and never deletes it (a crashed claimer loses nothing)
-- proofs: packages/outbox-db/tests/integration/test_leases.py::test_holder_completes_and_the_item_leaves_the_queue
-- proofs: packages/outbox-db/tests/integration/test_leases.py::test_claim_takes_only_due_unleased_rows_and_writes_no_attempt
-- proofs: packages/outbox-db/tests/integration/test_lease_repair.py::test_repair_requeues_the_same_item_once_with_the_next_attempt_number
-- The DISPATCHING-era claim: the item leaves the queue when claimed, so a worker that dies
-- before recording its outcome takes the item with it.
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
AS $function$
BEGIN
    RETURN QUERY
    WITH due AS (
        SELECT d.outbox_id
        FROM public.payment_outbox_pending AS d
        WHERE d.claimed_by IS NULL AND d.next_attempt_at <= now()
        ORDER BY d.next_attempt_at
        LIMIT p_batch_size
        FOR UPDATE SKIP LOCKED
    )
    DELETE FROM public.payment_outbox_pending AS p
    USING due
    WHERE p.outbox_id = due.outbox_id
    RETURNING p.outbox_id, p.instruction_id, p.participant_id, p.sequence_id,
        p.idempotency_key, p.rail_type, p.payload, p.attempt_count, gen_random_uuid(),
        now() + make_interval(secs => p_lease_seconds), NULL::text;
END
$function$;
