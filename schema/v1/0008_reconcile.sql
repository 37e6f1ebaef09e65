-- Reconcile before re-dispatch (issue 9, part 2).
--
-- When an item comes back after its previous attempt left the outcome unknown (a lease
-- repair: the worker died or lost its lease mid-dispatch; or a send that timed out or lost
-- its connection after the request went out), the rail may already have executed it. A
-- relayer whose rail can be asked for the outcome of an idempotency key asks before sending
-- again. It decides from what the claim returns: claim_outbox_batch now also returns the
-- error_code of the item's last attempt (NULL for an item never attempted), read by the
-- ledger's (outbox_id, attempt_no) unique index, so the claim stays one statement.

-- The whole file runs in one transaction (the migrator's): names resolve only in pg_catalog
-- unless schema-qualified, a lock wait gives up instead of queueing the database behind it,
-- and no statement runs unbounded.
SET LOCAL search_path = pg_catalog, pg_temp;
SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '30min';

-- Leases up to batch_size due, unleased items to worker_id for lease_seconds. Never deletes,
-- never writes an attempt. An expired lease is not claimable: lease repair records it first.
-- Dropped and created (not replaced): the result gains a column, which a replace cannot do;
-- owner and grants are set again below.
-- guardrails: allow OBX009 -- a new OUT column needs drop and create; both in one transaction, no caller ever sees it missing
DROP FUNCTION public.claim_outbox_batch(integer, text, integer);
CREATE FUNCTION public.claim_outbox_batch(
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
    PERFORM public.outbox_require_range('batch_size', p_batch_size, 1, 1000);
    PERFORM public.outbox_require_text('worker_id', p_worker_id);
    PERFORM public.outbox_require_range('lease_seconds', p_lease_seconds, 1, 3600);

    RETURN QUERY
    WITH due AS (
        SELECT d.outbox_id
        FROM public.payment_outbox_pending AS d
        WHERE d.claimed_by IS NULL AND d.next_attempt_at <= now()
        ORDER BY d.next_attempt_at
        LIMIT p_batch_size
        FOR UPDATE SKIP LOCKED
    )
    UPDATE public.payment_outbox_pending AS p
    SET claimed_by = p_worker_id,
        lease_token = gen_random_uuid(),
        claimed_at = now(),
        lease_expires_at = now() + make_interval(secs => p_lease_seconds)
    FROM due
    WHERE p.outbox_id = due.outbox_id
    RETURNING p.outbox_id, p.instruction_id, p.participant_id, p.sequence_id,
        p.idempotency_key, p.rail_type, p.payload, p.attempt_count, p.lease_token,
        p.lease_expires_at,
        -- A first attempt has no ledger row to read: skip the probe.
        CASE WHEN p.attempt_count > 0 THEN (
            SELECT a.error_code
            FROM public.payment_outbox_attempts AS a
            WHERE a.outbox_id = p.outbox_id AND a.attempt_no = p.attempt_count
        ) END;
END
$function$;

ALTER FUNCTION public.claim_outbox_batch(integer, text, integer) OWNER TO outbox_owner;
REVOKE ALL ON FUNCTION public.claim_outbox_batch(integer, text, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.claim_outbox_batch(integer, text, integer)
    TO symphony_executor;
