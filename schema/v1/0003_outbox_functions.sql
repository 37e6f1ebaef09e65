-- The only write path to the outbox (DESIGN section 4). Every function is SECURITY DEFINER,
-- owned by outbox_owner, with search_path pinned to pg_catalog, pg_temp (pg_temp last) and
-- every outbox object schema-qualified, so no schema a caller can write to is ever searched.
-- EXECUTE is revoked from PUBLIC in this same transaction and granted to symphony_executor.
--
-- Limits (documented in README; errors carry SQLSTATE 22023 and the argument's name in the
-- error's COLUMN field; messages never echo values):
--   identifiers (instruction_id, participant_id, idempotency_key, rail_type, worker_id):
--     not blank (any whitespace), no control characters, at most 255 characters
--   payload: a JSON object of at most 1 MiB
--   batch_size: 1..1000          lease_seconds: 1..3600
--   retry_delay_seconds: 0..604800 (7 days)          latency_ms: >= 0
--
-- Other SQLSTATEs: P7001 idempotency conflict, P7002 lease not held, P7003 not a completion
-- state.

-- The whole file runs in one transaction (the migrator's): names resolve only in pg_catalog
-- unless schema-qualified, a lock wait gives up instead of queueing the database behind it,
-- and no statement runs unbounded.
SET LOCAL search_path = pg_catalog, pg_temp;
SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '30min';

-- The DISPATCHING-era functions: claim deleted the pending row and wrote DISPATCHING.
-- guardrails: allow OBX009 -- the old enqueue returned uuid; a new return type needs drop and create
DROP FUNCTION IF EXISTS public.enqueue_payment_outbox(text, text, text, text, jsonb);
-- guardrails: allow OBX009 -- the delete-on-claim claim must not survive; old relayers are stopped (0004)
DROP FUNCTION IF EXISTS public.claim_outbox_batch(integer, text);

CREATE FUNCTION public.outbox_require_text(p_argument text, p_value text)
RETURNS void
LANGUAGE plpgsql
IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $function$
BEGIN
    -- Blank means whitespace of any kind; control characters have no place in an identifier.
    IF p_value IS NULL OR p_value !~ '[^[:space:]]' OR p_value ~ '[[:cntrl:]]'
        OR length(p_value) > 255 THEN
        RAISE EXCEPTION '% must be a non-blank string of at most 255 characters, '
            'without control characters', p_argument
            USING ERRCODE = '22023', COLUMN = p_argument;
    END IF;
END
$function$;

-- Argument types match the callers' exactly, so no other overload could be a better match.
CREATE FUNCTION public.outbox_require_range(
    p_argument text, p_value integer, p_low integer, p_high integer
)
RETURNS void
LANGUAGE plpgsql
IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $function$
BEGIN
    IF p_value IS NULL OR p_value < p_low OR p_value > p_high THEN
        RAISE EXCEPTION '% must be between % and %', p_argument, p_low, p_high
            USING ERRCODE = '22023', COLUMN = p_argument;
    END IF;
END
$function$;

-- Creates the item for (instruction_id, idempotency_key), or returns the one that exists,
-- also after it completed and left the pending table. Concurrent callers serialize on the
-- participant's sequence row, so exactly one item and one sequence number result; a number
-- is never burned (a replay gives back the one it took while holding the row lock).
CREATE FUNCTION public.enqueue_payment_outbox(
    p_instruction_id text,
    p_participant_id text,
    p_idempotency_key text,
    p_rail_type text,
    p_payload jsonb
)
RETURNS TABLE (outbox_id uuid, sequence_id bigint, created boolean)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $function$
DECLARE
    v_sequence_id bigint;
    v_existing record;
BEGIN
    PERFORM public.outbox_require_text('instruction_id', p_instruction_id);
    PERFORM public.outbox_require_text('participant_id', p_participant_id);
    PERFORM public.outbox_require_text('idempotency_key', p_idempotency_key);
    PERFORM public.outbox_require_text('rail_type', p_rail_type);
    IF p_payload IS NULL OR jsonb_typeof(p_payload) <> 'object' THEN
        RAISE EXCEPTION 'payload must be a JSON object'
            USING ERRCODE = '22023', COLUMN = 'payload';
    END IF;
    IF pg_column_size(p_payload) > 1048576 THEN
        RAISE EXCEPTION 'payload must be at most 1 MiB'
            USING ERRCODE = '22023', COLUMN = 'payload';
    END IF;

    -- Take the participant's next number and, with it, the row lock that serializes this
    -- participant's enqueues until commit.
    INSERT INTO public.participant_outbox_sequences AS s (participant_id, next_sequence_id)
    VALUES (p_participant_id, 2)
    ON CONFLICT (participant_id)
        DO UPDATE SET next_sequence_id = s.next_sequence_id + 1
    RETURNING s.next_sequence_id - 1 INTO v_sequence_id;

    -- One snapshot over both homes of an item: pending, or completed in the ledger. A
    -- completion commits its delete and its terminal attempt together, so one of the two
    -- is always visible.
    SELECT k.outbox_id, k.participant_id, k.sequence_id, k.rail_type, k.payload
    INTO v_existing
    FROM (
        SELECT p.outbox_id, p.participant_id, p.sequence_id, p.rail_type, p.payload
        FROM public.payment_outbox_pending AS p
        WHERE p.instruction_id = p_instruction_id AND p.idempotency_key = p_idempotency_key
        UNION ALL
        SELECT a.outbox_id, a.participant_id, a.sequence_id, a.rail_type, a.payload
        FROM public.payment_outbox_attempts AS a
        WHERE a.instruction_id = p_instruction_id AND a.idempotency_key = p_idempotency_key
          AND a.state IN ('DISPATCHED', 'FAILED')
    ) AS k
    LIMIT 1;

    IF FOUND THEN
        IF v_existing.participant_id <> p_participant_id
            OR v_existing.rail_type <> p_rail_type
            OR v_existing.payload <> p_payload THEN
            RAISE EXCEPTION 'idempotency key already used with a different request'
                USING ERRCODE = 'P7001',
                      HINT = 'Use a new idempotency key for a different instruction.';
        END IF;
        UPDATE public.participant_outbox_sequences AS s
        SET next_sequence_id = s.next_sequence_id - 1
        WHERE s.participant_id = p_participant_id;
        RETURN QUERY SELECT v_existing.outbox_id, v_existing.sequence_id, FALSE;
        RETURN;
    END IF;

    RETURN QUERY
    INSERT INTO public.payment_outbox_pending AS p (
        outbox_id, instruction_id, participant_id, sequence_id, idempotency_key,
        rail_type, payload
    )
    VALUES (
        gen_random_uuid(), p_instruction_id, p_participant_id, v_sequence_id,
        p_idempotency_key, p_rail_type, p_payload
    )
    -- Same key, another participant, concurrently: a conflicting request, not a replay.
    ON CONFLICT (instruction_id, idempotency_key) DO NOTHING
    RETURNING p.outbox_id, p.sequence_id, TRUE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'idempotency key already used with a different request'
            USING ERRCODE = 'P7001',
                  HINT = 'Use a new idempotency key for a different instruction.';
    END IF;
END
$function$;

-- Leases up to batch_size due, unleased items to worker_id for lease_seconds. Never deletes,
-- never writes an attempt. An expired lease is not claimable: lease repair records it first.
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
    lease_expires_at timestamptz
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
        p.lease_expires_at;
END
$function$;

-- Records the outcomes of several leased items in one statement. For each item whose lease
-- worker_id still holds (token matches, not expired) it appends attempt last + 1; a terminal
-- outcome removes the pending row, RETRYABLE clears the lease and reschedules, and RETRYABLE
-- at the retry ceiling is recorded as FAILED. Items whose lease is not held are reported
-- with lease_held = false and nothing is written for them.
CREATE FUNCTION public.complete_outbox_attempts(
    p_worker_id text,
    p_outbox_ids uuid[],
    p_lease_tokens uuid[],
    p_states text[],
    p_rail_references text[],
    p_rail_codes text[],
    p_error_codes text[],
    p_error_messages text[],
    p_latency_ms integer[],
    p_retry_delay_seconds integer[]
)
RETURNS TABLE (
    outbox_id uuid, lease_held boolean, attempt_no integer, state public.outbox_attempt_state
)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $function$
DECLARE
    v_count integer := coalesce(cardinality(p_outbox_ids), 0);
    v_max_attempts integer;
BEGIN
    PERFORM public.outbox_require_text('worker_id', p_worker_id);
    PERFORM public.outbox_require_range('batch_size', v_count, 0, 1000);
    IF coalesce(cardinality(p_lease_tokens), 0) <> v_count
        OR coalesce(cardinality(p_states), 0) <> v_count
        OR coalesce(cardinality(p_rail_references), 0) <> v_count
        OR coalesce(cardinality(p_rail_codes), 0) <> v_count
        OR coalesce(cardinality(p_error_codes), 0) <> v_count
        OR coalesce(cardinality(p_error_messages), 0) <> v_count
        OR coalesce(cardinality(p_latency_ms), 0) <> v_count
        OR coalesce(cardinality(p_retry_delay_seconds), 0) <> v_count THEN
        RAISE EXCEPTION 'completion arrays must all have the same length'
            USING ERRCODE = '22023', COLUMN = 'outbox_ids';
    END IF;
    IF EXISTS (
        SELECT FROM unnest(p_states) AS s
        WHERE s IS NULL OR s NOT IN ('DISPATCHED', 'RETRYABLE', 'FAILED')
    ) THEN
        RAISE EXCEPTION 'state must be DISPATCHED, RETRYABLE or FAILED'
            USING ERRCODE = 'P7003', COLUMN = 'state';
    END IF;
    IF EXISTS (SELECT FROM unnest(p_outbox_ids) AS i WHERE i IS NULL)
        OR (SELECT count(DISTINCT i) FROM unnest(p_outbox_ids) AS i) <> v_count THEN
        RAISE EXCEPTION 'outbox_ids must be distinct and not null'
            USING ERRCODE = '22023', COLUMN = 'outbox_ids';
    END IF;
    IF EXISTS (SELECT FROM unnest(p_latency_ms) AS l WHERE l < 0) THEN
        RAISE EXCEPTION 'latency_ms must not be negative'
            USING ERRCODE = '22023', COLUMN = 'latency_ms';
    END IF;
    IF EXISTS (
        SELECT FROM unnest(p_retry_delay_seconds) AS r WHERE r < 0 OR r > 604800
    ) THEN
        RAISE EXCEPTION 'retry_delay_seconds must be between 0 and 604800'
            USING ERRCODE = '22023', COLUMN = 'retry_delay_seconds';
    END IF;

    SELECT st.max_attempts INTO v_max_attempts FROM public.payment_outbox_settings AS st;

    RETURN QUERY
    WITH outcome AS (
        SELECT *
        FROM unnest(
            p_outbox_ids, p_lease_tokens, p_states, p_rail_references, p_rail_codes,
            p_error_codes, p_error_messages, p_latency_ms, p_retry_delay_seconds
        ) AS o(
            outbox_id, lease_token, state, rail_reference, rail_code, error_code,
            error_message, latency_ms, retry_delay_seconds
        )
    ),
    held AS (
        SELECT p.outbox_id, p.instruction_id, p.participant_id, p.sequence_id,
            p.idempotency_key, p.rail_type, p.payload, p.claimed_at
        FROM public.payment_outbox_pending AS p
        JOIN outcome AS o ON o.outbox_id = p.outbox_id
        WHERE p.lease_token = o.lease_token
          AND p.claimed_by = p_worker_id
          AND p.lease_expires_at > now()
        ORDER BY p.outbox_id
        FOR UPDATE OF p
    ),
    decided AS (
        SELECT h.*, o.rail_reference, o.rail_code, o.error_message, o.latency_ms,
            o.retry_delay_seconds, n.attempt_no,
            CASE WHEN o.state = 'RETRYABLE' AND n.attempt_no >= v_max_attempts
                THEN 'RETRY_CEILING_REACHED' ELSE o.error_code END AS error_code,
            CASE WHEN o.state = 'RETRYABLE' AND n.attempt_no >= v_max_attempts
                THEN 'FAILED' ELSE o.state END::public.outbox_attempt_state AS state
        FROM held AS h
        JOIN outcome AS o ON o.outbox_id = h.outbox_id
        CROSS JOIN LATERAL (
            SELECT coalesce(max(a.attempt_no), 0) + 1 AS attempt_no
            FROM public.payment_outbox_attempts AS a
            WHERE a.outbox_id = h.outbox_id
        ) AS n
    ),
    recorded AS (
        INSERT INTO public.payment_outbox_attempts (
            outbox_id, instruction_id, participant_id, sequence_id, idempotency_key,
            rail_type, payload, attempt_no, state, claimed_at, completed_at,
            rail_reference, rail_code, error_code, error_message, latency_ms, worker_id
        )
        SELECT d.outbox_id, d.instruction_id, d.participant_id, d.sequence_id,
            d.idempotency_key, d.rail_type, d.payload, d.attempt_no, d.state,
            d.claimed_at, now(), d.rail_reference, d.rail_code, d.error_code,
            d.error_message, d.latency_ms, p_worker_id
        FROM decided AS d
        RETURNING payment_outbox_attempts.outbox_id, payment_outbox_attempts.attempt_no,
            payment_outbox_attempts.state
    ),
    finished AS (
        DELETE FROM public.payment_outbox_pending AS p
        WHERE p.outbox_id IN (
            SELECT d.outbox_id FROM decided AS d WHERE d.state <> 'RETRYABLE'
        )
    ),
    rescheduled AS (
        UPDATE public.payment_outbox_pending AS p
        SET claimed_by = NULL,
            lease_token = NULL,
            claimed_at = NULL,
            lease_expires_at = NULL,
            attempt_count = d.attempt_no,
            next_attempt_at = now()
                + make_interval(secs => coalesce(d.retry_delay_seconds, 0))
        FROM decided AS d
        WHERE p.outbox_id = d.outbox_id AND d.state = 'RETRYABLE'
    )
    SELECT o.outbox_id, r.outbox_id IS NOT NULL, r.attempt_no, r.state
    FROM outcome AS o
    LEFT JOIN recorded AS r ON r.outbox_id = o.outbox_id;
END
$function$;

-- One outcome for one leased item: complete_outbox_attempts with a single element, raising
-- P7002 when the lease is not held (wrong token, another worker, expired or already done).
CREATE FUNCTION public.complete_outbox_attempt(
    p_outbox_id uuid,
    p_lease_token uuid,
    p_worker_id text,
    p_state text,
    p_rail_reference text,
    p_rail_code text,
    p_error_code text,
    p_error_message text,
    p_latency_ms integer,
    p_retry_delay_seconds integer
)
RETURNS TABLE (attempt_no integer, state public.outbox_attempt_state)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $function$
DECLARE
    v_result record;
BEGIN
    IF p_outbox_id IS NULL THEN
        RAISE EXCEPTION 'outbox_id must not be null'
            USING ERRCODE = '22023', COLUMN = 'outbox_id';
    END IF;
    SELECT c.lease_held, c.attempt_no, c.state INTO v_result
    FROM public.complete_outbox_attempts(
        p_worker_id, ARRAY[p_outbox_id], ARRAY[p_lease_token], ARRAY[p_state],
        ARRAY[p_rail_reference], ARRAY[p_rail_code], ARRAY[p_error_code],
        ARRAY[p_error_message], ARRAY[p_latency_ms], ARRAY[p_retry_delay_seconds]
    ) AS c;
    IF NOT v_result.lease_held THEN
        RAISE EXCEPTION 'lease not held: expired, taken over, or token mismatch'
            USING ERRCODE = 'P7002',
                  HINT = 'Drop this outcome; the item is recorded by whoever holds it now.';
    END IF;
    RETURN QUERY SELECT v_result.attempt_no, v_result.state;
END
$function$;

-- Extends a held, unexpired lease by lease_seconds from now, for a dispatch that outlives
-- a good part of its lease. An expired lease cannot be renewed: repair may already own it.
CREATE FUNCTION public.renew_outbox_lease(
    p_outbox_id uuid,
    p_lease_token uuid,
    p_worker_id text,
    p_lease_seconds integer
)
RETURNS timestamptz
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $function$
DECLARE
    v_expires_at timestamptz;
BEGIN
    PERFORM public.outbox_require_text('worker_id', p_worker_id);
    PERFORM public.outbox_require_range('lease_seconds', p_lease_seconds, 1, 3600);
    UPDATE public.payment_outbox_pending AS p
    SET lease_expires_at = now() + make_interval(secs => p_lease_seconds)
    WHERE p.outbox_id = p_outbox_id
      AND p.lease_token = p_lease_token
      AND p.claimed_by = p_worker_id
      AND p.lease_expires_at > now()
    RETURNING p.lease_expires_at INTO v_expires_at;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'lease not held: expired, taken over, or token mismatch'
            USING ERRCODE = 'P7002',
                  HINT = 'Stop working on this item; lease repair will record it.';
    END IF;
    RETURN v_expires_at;
END
$function$;

-- Gives back held, unexpired leases of items whose dispatch never started (a worker shutting
-- down), without recording an attempt: the items are due again at once. Returns the items
-- released; leases not held are skipped. A started dispatch must be completed, never
-- released: its outcome is unknown.
CREATE FUNCTION public.release_outbox_leases(
    p_worker_id text,
    p_outbox_ids uuid[],
    p_lease_tokens uuid[]
)
RETURNS TABLE (outbox_id uuid)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $function$
BEGIN
    PERFORM public.outbox_require_text('worker_id', p_worker_id);
    PERFORM public.outbox_require_range(
        'batch_size', coalesce(cardinality(p_outbox_ids), 0), 0, 1000
    );
    IF coalesce(cardinality(p_lease_tokens), 0) <> coalesce(cardinality(p_outbox_ids), 0) THEN
        RAISE EXCEPTION 'outbox_ids and lease_tokens must have the same length'
            USING ERRCODE = '22023', COLUMN = 'lease_tokens';
    END IF;

    RETURN QUERY
    UPDATE public.payment_outbox_pending AS p
    SET claimed_by = NULL, lease_token = NULL, claimed_at = NULL, lease_expires_at = NULL
    FROM unnest(p_outbox_ids, p_lease_tokens) AS r(outbox_id, lease_token)
    WHERE p.outbox_id = r.outbox_id
      AND p.lease_token = r.lease_token
      AND p.claimed_by = p_worker_id
      AND p.lease_expires_at > now()
    RETURNING p.outbox_id;
END
$function$;

-- Lease repair: for up to batch_size items whose lease expired, appends a ZOMBIE_REQUEUE
-- attempt (last + 1) and clears the lease, so the same outbox_id is due again. The repair
-- counts toward the retry ceiling: at the ceiling the attempt is FAILED and the item leaves
-- the queue, so a payload that crashes workers cannot circulate forever. Rows another
-- repairer holds are skipped, and a repaired lease is gone, so nothing is repaired twice.
CREATE FUNCTION public.repair_expired_leases(
    p_batch_size integer,
    p_worker_id text
)
RETURNS TABLE (
    outbox_id uuid,
    attempt_no integer,
    new_state public.outbox_attempt_state,
    previous_holder text,
    lease_expired_at timestamptz
)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $function$
DECLARE
    v_max_attempts integer;
BEGIN
    PERFORM public.outbox_require_range('batch_size', p_batch_size, 1, 1000);
    PERFORM public.outbox_require_text('worker_id', p_worker_id);
    SELECT st.max_attempts INTO v_max_attempts FROM public.payment_outbox_settings AS st;

    RETURN QUERY
    WITH expired AS (
        SELECT e.outbox_id, e.instruction_id, e.participant_id, e.sequence_id,
            e.idempotency_key, e.rail_type, e.payload, e.claimed_by, e.claimed_at,
            e.lease_expires_at
        FROM public.payment_outbox_pending AS e
        WHERE e.lease_expires_at <= now()
        ORDER BY e.lease_expires_at
        LIMIT p_batch_size
        FOR UPDATE SKIP LOCKED
    ),
    decided AS (
        SELECT x.*, n.attempt_no,
            CASE WHEN n.attempt_no >= v_max_attempts THEN 'FAILED'
                ELSE 'ZOMBIE_REQUEUE' END::public.outbox_attempt_state AS state
        FROM expired AS x
        CROSS JOIN LATERAL (
            SELECT coalesce(max(a.attempt_no), 0) + 1 AS attempt_no
            FROM public.payment_outbox_attempts AS a
            WHERE a.outbox_id = x.outbox_id
        ) AS n
    ),
    recorded AS (
        INSERT INTO public.payment_outbox_attempts (
            outbox_id, instruction_id, participant_id, sequence_id, idempotency_key,
            rail_type, payload, attempt_no, state, claimed_at, completed_at,
            error_code, error_message, worker_id
        )
        SELECT d.outbox_id, d.instruction_id, d.participant_id, d.sequence_id,
            d.idempotency_key, d.rail_type, d.payload, d.attempt_no, d.state,
            d.claimed_at, now(),
            CASE WHEN d.state = 'FAILED' THEN 'RETRY_CEILING_REACHED'
                ELSE 'LEASE_EXPIRED' END,
            'lease expired; recorded by lease repair worker ' || p_worker_id,
            d.claimed_by
        FROM decided AS d
    ),
    finished AS (
        DELETE FROM public.payment_outbox_pending AS p
        WHERE p.outbox_id IN (SELECT d.outbox_id FROM decided AS d WHERE d.state = 'FAILED')
    ),
    requeued AS (
        UPDATE public.payment_outbox_pending AS p
        SET claimed_by = NULL,
            lease_token = NULL,
            claimed_at = NULL,
            lease_expires_at = NULL,
            attempt_count = greatest(p.attempt_count, d.attempt_no)
        FROM decided AS d
        WHERE p.outbox_id = d.outbox_id AND d.state = 'ZOMBIE_REQUEUE'
    )
    SELECT d.outbox_id, d.attempt_no, d.state, d.claimed_by, d.lease_expires_at
    FROM decided AS d
    ORDER BY d.lease_expires_at, d.outbox_id;
END
$function$;

ALTER FUNCTION public.outbox_require_text(text, text) OWNER TO outbox_owner;
ALTER FUNCTION public.outbox_require_range(text, integer, integer, integer) OWNER TO outbox_owner;
ALTER FUNCTION public.enqueue_payment_outbox(text, text, text, text, jsonb)
    OWNER TO outbox_owner;
ALTER FUNCTION public.claim_outbox_batch(integer, text, integer) OWNER TO outbox_owner;
ALTER FUNCTION public.complete_outbox_attempts(
    text, uuid[], uuid[], text[], text[], text[], text[], text[], integer[], integer[]
) OWNER TO outbox_owner;
ALTER FUNCTION public.complete_outbox_attempt(
    uuid, uuid, text, text, text, text, text, text, integer, integer
) OWNER TO outbox_owner;
ALTER FUNCTION public.renew_outbox_lease(uuid, uuid, text, integer) OWNER TO outbox_owner;
ALTER FUNCTION public.release_outbox_leases(text, uuid[], uuid[]) OWNER TO outbox_owner;
ALTER FUNCTION public.repair_expired_leases(integer, text) OWNER TO outbox_owner;

REVOKE ALL ON FUNCTION
    public.outbox_require_text(text, text),
    public.outbox_require_range(text, integer, integer, integer),
    public.enqueue_payment_outbox(text, text, text, text, jsonb),
    public.claim_outbox_batch(integer, text, integer),
    public.complete_outbox_attempts(
        text, uuid[], uuid[], text[], text[], text[], text[], text[], integer[], integer[]
    ),
    public.complete_outbox_attempt(
        uuid, uuid, text, text, text, text, text, text, integer, integer
    ),
    public.renew_outbox_lease(uuid, uuid, text, integer),
    public.release_outbox_leases(text, uuid[], uuid[]),
    public.repair_expired_leases(integer, text)
FROM PUBLIC;

GRANT EXECUTE ON FUNCTION
    public.enqueue_payment_outbox(text, text, text, text, jsonb),
    public.claim_outbox_batch(integer, text, integer),
    public.complete_outbox_attempts(
        text, uuid[], uuid[], text[], text[], text[], text[], text[], integer[], integer[]
    ),
    public.complete_outbox_attempt(
        uuid, uuid, text, text, text, text, text, text, integer, integer
    ),
    public.renew_outbox_lease(uuid, uuid, text, integer),
    public.release_outbox_leases(text, uuid[], uuid[]),
    public.repair_expired_leases(integer, text)
TO symphony_executor;
