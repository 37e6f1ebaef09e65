-- The promise against hostile and unusual callers (issue 16, parts 4 to 6): safety that does
-- not depend on the caller's isolation level, lock waits the outbox bounds itself, and a
-- ledger that records facts rather than the caller's claims.
--
-- Bounded waits. Every function a role can call, and the commit-time re-check of an ordered
-- item, runs with lock_timeout = 5s set by the function itself (a function's SET clause:
-- the caller's own setting does not reach inside, and is back when the function returns). A
-- wait beyond that is 55P03, which callers get as DatabaseTimeout, a retryable error: an
-- idle service transaction after an enqueue, or a re-drive left open in psql, makes the
-- participant's other enqueues fail fast and retry instead of queueing without bound. 5 s is
-- far above any wait the outbox itself causes (a completion holds a lane's head for
-- milliseconds) and well inside a relayer's 30 s lease.
--
-- Ordered lanes, whatever the isolation level and whatever the service does with its
-- transaction. 0009's re-check held a KEY SHARE lock on the lane's last live item until the
-- enqueue committed. Run early (SET CONSTRAINTS ALL IMMEDIATE) by a transaction that then
-- idles, that lock made the head's completion wait for a service's open transaction and
-- lease repair skip the head. Now the re-check waits for a completion in flight but keeps no
-- lock (the wait runs in a subtransaction that is rolled back). The ways a follower can still
-- be missed are each closed:
--   * a completion under REPEATABLE READ or SERIALIZABLE whose snapshot predates an enqueue
--     of the participant that has committed since: it cannot see the follower, so it fails
--     with 40001 instead (it probes the participant's sequence row, which every enqueue
--     updates); retried, it sees the follower and releases it;
--   * an enqueue that committed, or an early re-check whose transaction commits, after a
--     concurrent completion looked for a successor: lease repair releases every lane whose
--     head is waiting behind no live item (outbox_release_stalled_lanes), so such a lane
--     waits at most one repair interval (5 s by default) instead of forever.
--
-- Leases under REPEATABLE READ and SERIALIZABLE. A completion, renewal or release locks its
-- items first (outbox_lock_items_for_snapshot), so a lease its snapshot cannot see yet is
-- 40001 (retry) rather than "not held" (P7002): the same answers as READ COMMITTED.
--
-- Facts. Times are the clock's at the moment of writing (clock_timestamp(), not the start of
-- the caller's transaction): a caller holding an old transaction open can no longer record a
-- completion before its claim or renew a lease the clock has expired (P7002). The database
-- refuses, with 22023 and nothing written, independent of its locale:
--   * latency_ms longer than the lease it was measured in (lease_expires_at - claimed_at);
--   * outcome text over its cap: rail_reference 255, rail_code 64, error_code 64,
--     error_message 1,000 characters;
--   * control characters (C0, DEL, C1) and bidirectional overrides (U+202A-U+202E,
--     U+2066-U+2069) in outcome text and in identifiers, which `inspect` and terminals
--     would otherwise interpret;
--   * error codes the outbox writes itself: LEASE_EXPIRED, RETRY_CEILING_REACHED (lease
--     repair) and LEGACY_DISPATCHING_REQUEUED (0004);
--   * identifiers made only of White_Space or Default_Ignorable code points (U+00A0, U+2007,
--     U+202F, U+200B, U+FEFF ...): 0003's [[:space:]] test depended on the locale.

-- The whole file runs in one transaction (the migrator's): names resolve only in pg_catalog
-- unless schema-qualified, a lock wait gives up instead of queueing the database behind it,
-- and no statement runs unbounded.
SET LOCAL search_path = pg_catalog, pg_temp;
SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '30min';

-- Times from the clock when the row is written.
ALTER TABLE public.payment_outbox_pending
    ALTER COLUMN next_attempt_at SET DEFAULT pg_catalog.clock_timestamp(),
    ALTER COLUMN created_at SET DEFAULT pg_catalog.clock_timestamp();
ALTER TABLE public.payment_outbox_attempts
    ALTER COLUMN completed_at SET DEFAULT pg_catalog.clock_timestamp();
ALTER TABLE public.outbox_operator_log
    ALTER COLUMN requested_at SET DEFAULT pg_catalog.clock_timestamp();
ALTER TABLE public.outbox_rail_ordering
    ALTER COLUMN requested_at SET DEFAULT pg_catalog.clock_timestamp();

-- The position of the first of p_values holding a character a terminal or a bidirectional
-- display would act on (C0 controls, DEL, C1 controls, the bidirectional embeddings,
-- overrides and isolates), or null. Explicit code points, so the answer is the same under
-- every locale. One call per array, so a check of 10,000 values costs one function call.
CREATE FUNCTION public.outbox_control_character_at(p_values text[])
RETURNS bigint
LANGUAGE plpgsql
IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $function$
BEGIN
    RETURN (
        SELECT min(v.position)
        FROM unnest(p_values) WITH ORDINALITY AS v(value, position)
        WHERE v.value ~ '[\u0001-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]'
    );
END
$function$;

-- The position of the first of p_values that is no acceptable identifier, or null. An
-- identifier is present, at most 255 characters, without control characters, and not made
-- only of White_Space or Default_Ignorable code points (Unicode's DerivedCoreProperties;
-- listed here, not taken from the locale). PL/pgSQL, as the function above: a SQL function
-- with a SET clause is never inlined and cost twice as much (measured: one identifier checked
-- through outbox_require_text in 10 us, against 15 to 27 us, and 3 us for 0003's check).
CREATE FUNCTION public.outbox_invalid_identifier_at(p_values text[])
RETURNS bigint
LANGUAGE plpgsql
IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $function$
BEGIN
    RETURN least(
        public.outbox_control_character_at(p_values),
        (
            SELECT min(v.position)
            FROM unnest(p_values) WITH ORDINALITY AS v(value, position)
            WHERE v.value IS NULL OR length(v.value) > 255 OR v.value !~ (
                '[^\u0009-\u000d\u0020\u0085\u00a0\u00ad\u034f\u061c\u115f\u1160\u1680'
                '\u17b4\u17b5\u180b-\u180f\u2000-\u200f\u2028-\u202f\u205f-\u206f\u3000'
                '\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff0-\ufff8\U0001bca0-\U0001bca3'
                '\U0001d173-\U0001d17a\U000e0000-\U000e0fff]'
            )
        )
    );
END
$function$;

-- 0003's check, with the predicate above.
-- guardrails: allow OBX009 -- same signature, dropped and created in one transaction: no caller ever sees it missing
DROP FUNCTION public.outbox_require_text(text, text);
CREATE FUNCTION public.outbox_require_text(p_argument text, p_value text)
RETURNS void
LANGUAGE plpgsql
IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $function$
BEGIN
    IF public.outbox_invalid_identifier_at(ARRAY[p_value]) IS NOT NULL THEN
        RAISE EXCEPTION '% must be a non-blank string of at most 255 characters, '
            'without control characters', p_argument
            USING ERRCODE = '22023', COLUMN = p_argument;
    END IF;
END
$function$;

-- The claim of 0009 with the clock's time: a claim inside an old transaction no longer
-- writes a lease that began (and may have ended) before the claim.
-- guardrails: allow OBX009 -- same signature, dropped and created in one transaction: no caller ever sees it missing
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
SET lock_timeout = '5s'
AS $function$
DECLARE
    v_now timestamptz := clock_timestamp();
BEGIN
    PERFORM public.outbox_require_range('batch_size', p_batch_size, 1, 1000);
    PERFORM public.outbox_require_text('worker_id', p_worker_id);
    PERFORM public.outbox_require_range('lease_seconds', p_lease_seconds, 1, 3600);

    RETURN QUERY
    WITH due AS (
        SELECT d.outbox_id
        FROM public.payment_outbox_pending AS d
        WHERE d.claimed_by IS NULL AND NOT d.awaiting_predecessor
          AND d.next_attempt_at <= v_now
        ORDER BY d.next_attempt_at
        LIMIT p_batch_size
        FOR UPDATE SKIP LOCKED
    )
    UPDATE public.payment_outbox_pending AS p
    SET claimed_by = p_worker_id,
        lease_token = gen_random_uuid(),
        claimed_at = v_now,
        lease_expires_at = v_now + make_interval(secs => p_lease_seconds)
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

-- Under REPEATABLE READ or SERIALIZABLE, the items a lease function is about are locked
-- first: a change committed since the caller's snapshot (the claim that made the lease, a
-- completion, a repair) is then 40001, which a run in a new transaction answers as READ
-- COMMITTED would, instead of a lease the snapshot cannot see read as "not held" (P7002).
-- FOR UPDATE, the lock the completion takes anyway: two callers sharing a lock they both
-- then upgrade would deadlock. Under READ COMMITTED each statement sees the latest rows and
-- this does nothing. (An item enqueued after the snapshot has no row to lock: a transaction
-- that began before its item existed cannot see its lease at all, and gets P7002.)
CREATE FUNCTION public.outbox_lock_items_for_snapshot(p_outbox_ids uuid[])
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $function$
BEGIN
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        PERFORM
        FROM public.payment_outbox_pending AS p
        WHERE p.outbox_id = ANY (p_outbox_ids)
        ORDER BY p.outbox_id
        FOR UPDATE;
    END IF;
END
$function$;

-- latency_ms as recorded, or 22023 when it is longer than the lease it was measured in (the
-- lease as held when the outcome is recorded, renewals included).
CREATE FUNCTION public.outbox_require_latency(p_latency_ms integer, p_lease interval)
RETURNS integer
LANGUAGE plpgsql
IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $function$
BEGIN
    IF p_latency_ms > extract(epoch FROM p_lease) * 1000 THEN
        RAISE EXCEPTION 'latency_ms must not be longer than the lease it was measured in'
            USING ERRCODE = '22023', COLUMN = 'latency_ms';
    END IF;
    RETURN p_latency_ms;
END
$function$;

-- Outcome text a relayer may record: within its cap, free of control characters, and no
-- error code the outbox writes itself (lease repair's, 0004's requeue).
CREATE FUNCTION public.outbox_require_outcome_text(
    p_rail_references text[], p_rail_codes text[], p_error_codes text[], p_error_messages text[]
)
RETURNS void
LANGUAGE plpgsql
IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $function$
DECLARE
    v_argument text;
    v_cap integer;
BEGIN
    SELECT t.argument, t.cap INTO v_argument, v_cap
    FROM (
        VALUES ('rail_reference', p_rail_references, 255), ('rail_code', p_rail_codes, 64),
            ('error_code', p_error_codes, 64), ('error_message', p_error_messages, 1000)
    ) AS t(argument, texts, cap)
    WHERE public.outbox_control_character_at(t.texts) IS NOT NULL
        OR EXISTS (SELECT FROM unnest(t.texts) AS v WHERE length(v) > t.cap)
    LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION '% must be at most % characters, without control characters',
            v_argument, v_cap
            USING ERRCODE = '22023', COLUMN = v_argument;
    END IF;
    IF EXISTS (
        SELECT FROM unnest(p_error_codes) AS c
        WHERE c IN ('LEASE_EXPIRED', 'RETRY_CEILING_REACHED', 'LEGACY_DISPATCHING_REQUEUED')
    ) THEN
        RAISE EXCEPTION 'error_code must not be one the outbox writes itself '
            '(LEASE_EXPIRED, RETRY_CEILING_REACHED, LEGACY_DISPATCHING_REQUEUED)'
            USING ERRCODE = '22023', COLUMN = 'error_code';
    END IF;
END
$function$;

-- The completion of 0006, recording facts: the clock's time, outcome text within its caps
-- and free of control characters, no code the outbox writes itself, and a latency that fits
-- in the lease (checked per held item inside the statement, so a refusal writes nothing).
-- guardrails: allow OBX009 -- same signature, dropped and created in one transaction: no caller ever sees it missing
DROP FUNCTION public.complete_outbox_attempts(
    text, uuid[], uuid[], text[], text[], text[], text[], text[], integer[], integer[]
);
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
SET lock_timeout = '5s'
AS $function$
DECLARE
    v_now timestamptz := clock_timestamp();
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
    PERFORM public.outbox_require_outcome_text(
        p_rail_references, p_rail_codes, p_error_codes, p_error_messages
    );
    PERFORM public.outbox_lock_items_for_snapshot(p_outbox_ids);

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
            p.idempotency_key, p.rail_type, p.payload, p.claimed_at,
            p.lease_expires_at - p.claimed_at AS lease
        FROM outcome AS o
        JOIN public.payment_outbox_pending AS p ON p.outbox_id = o.outbox_id
        -- The expiry test is no index condition on purpose (0006): each row is found by
        -- its primary key, never by scanning every live lease.
        WHERE p.lease_token = o.lease_token
          AND p.claimed_by = p_worker_id
          AND (p.lease_expires_at > v_now) IS TRUE
        ORDER BY p.outbox_id
        FOR UPDATE OF p
    ),
    decided AS (
        SELECT h.*, o.rail_reference, o.rail_code, o.error_message,
            public.outbox_require_latency(o.latency_ms, h.lease) AS latency_ms,
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
            d.claimed_at, v_now, d.rail_reference, d.rail_code, d.error_code,
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
            next_attempt_at = v_now
                + make_interval(secs => coalesce(d.retry_delay_seconds, 0))
        FROM decided AS d
        WHERE p.outbox_id = d.outbox_id AND d.state = 'RETRYABLE'
    )
    SELECT o.outbox_id, r.outbox_id IS NOT NULL, r.attempt_no, r.state
    FROM outcome AS o
    LEFT JOIN recorded AS r ON r.outbox_id = o.outbox_id;
END
$function$;

-- 0003's renewal, by the clock: a lease the clock has expired is not renewed (P7002), even
-- for a caller whose transaction began while it was live.
-- guardrails: allow OBX009 -- same signature, dropped and created in one transaction: no caller ever sees it missing
DROP FUNCTION public.renew_outbox_lease(uuid, uuid, text, integer);
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
SET lock_timeout = '5s'
AS $function$
DECLARE
    v_now timestamptz := clock_timestamp();
    v_expires_at timestamptz;
BEGIN
    PERFORM public.outbox_require_text('worker_id', p_worker_id);
    PERFORM public.outbox_require_range('lease_seconds', p_lease_seconds, 1, 3600);
    PERFORM public.outbox_lock_items_for_snapshot(ARRAY[p_outbox_id]);
    UPDATE public.payment_outbox_pending AS p
    SET lease_expires_at = v_now + make_interval(secs => p_lease_seconds)
    WHERE p.outbox_id = p_outbox_id
      AND p.lease_token = p_lease_token
      AND p.claimed_by = p_worker_id
      AND p.lease_expires_at > v_now
    RETURNING p.lease_expires_at INTO v_expires_at;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'lease not held: expired, taken over, or token mismatch'
            USING ERRCODE = 'P7002',
                  HINT = 'Stop working on this item; lease repair will record it.';
    END IF;
    RETURN v_expires_at;
END
$function$;

-- 0003's release, by the clock.
-- guardrails: allow OBX009 -- same signature, dropped and created in one transaction: no caller ever sees it missing
DROP FUNCTION public.release_outbox_leases(text, uuid[], uuid[]);
CREATE FUNCTION public.release_outbox_leases(
    p_worker_id text,
    p_outbox_ids uuid[],
    p_lease_tokens uuid[]
)
RETURNS TABLE (outbox_id uuid)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET lock_timeout = '5s'
AS $function$
DECLARE
    v_now timestamptz := clock_timestamp();
BEGIN
    PERFORM public.outbox_require_text('worker_id', p_worker_id);
    PERFORM public.outbox_require_range(
        'batch_size', coalesce(cardinality(p_outbox_ids), 0), 0, 1000
    );
    IF coalesce(cardinality(p_lease_tokens), 0) <> coalesce(cardinality(p_outbox_ids), 0) THEN
        RAISE EXCEPTION 'outbox_ids and lease_tokens must have the same length'
            USING ERRCODE = '22023', COLUMN = 'lease_tokens';
    END IF;
    PERFORM public.outbox_lock_items_for_snapshot(p_outbox_ids);

    RETURN QUERY
    UPDATE public.payment_outbox_pending AS p
    SET claimed_by = NULL, lease_token = NULL, claimed_at = NULL, lease_expires_at = NULL
    FROM unnest(p_outbox_ids, p_lease_tokens) AS r(outbox_id, lease_token)
    WHERE p.outbox_id = r.outbox_id
      AND p.lease_token = r.lease_token
      AND p.claimed_by = p_worker_id
      AND p.lease_expires_at > v_now
    RETURNING p.outbox_id;
END
$function$;

-- Releases every lane whose first live item waits behind nothing: the backstop for a
-- follower no completion could see (see the header). Rows someone holds are skipped; a lane
-- skipped now is looked at again by the next repair. Wakes the relayers if it released any.
CREATE FUNCTION public.outbox_release_stalled_lanes()
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $function$
DECLARE
    v_released integer;
BEGIN
    -- One index probe per lane (a loose scan of the lane index): each lane's first live item.
    WITH RECURSIVE lane AS (
        (
            SELECT e.participant_id, e.rail_type, e.outbox_id, e.awaiting_predecessor
            FROM public.payment_outbox_pending AS e
            WHERE e.ordered
            ORDER BY e.participant_id, e.rail_type, e.sequence_id
            LIMIT 1
        )
        UNION ALL
        SELECT n.*
        FROM lane AS l
        CROSS JOIN LATERAL (
            SELECT e.participant_id, e.rail_type, e.outbox_id, e.awaiting_predecessor
            FROM public.payment_outbox_pending AS e
            WHERE e.ordered AND (e.participant_id, e.rail_type) > (l.participant_id, l.rail_type)
            ORDER BY e.participant_id, e.rail_type, e.sequence_id
            LIMIT 1
        ) AS n
    ),
    stalled AS (
        SELECT p.outbox_id
        FROM public.payment_outbox_pending AS p
        WHERE p.outbox_id IN (SELECT l.outbox_id FROM lane AS l WHERE l.awaiting_predecessor)
          AND p.awaiting_predecessor
        FOR UPDATE SKIP LOCKED
    )
    UPDATE public.payment_outbox_pending AS p
    SET awaiting_predecessor = false
    FROM stalled
    WHERE p.outbox_id = stalled.outbox_id;
    GET DIAGNOSTICS v_released = ROW_COUNT;
    IF v_released > 0 THEN
        PERFORM pg_notify('outbox_items_enqueued', '');
    END IF;
    RETURN v_released;
END
$function$;

-- 0003's lease repair, by the clock, and then the stalled-lane backstop.
-- guardrails: allow OBX009 -- same signature, dropped and created in one transaction: no caller ever sees it missing
DROP FUNCTION public.repair_expired_leases(integer, text);
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
SET lock_timeout = '5s'
AS $function$
DECLARE
    v_now timestamptz := clock_timestamp();
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
        WHERE e.lease_expires_at <= v_now
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
            d.claimed_at, v_now,
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

    PERFORM public.outbox_release_stalled_lanes();
END
$function$;

-- 0009's commit-time re-check, waiting for a completion in flight without keeping a lock
-- (see the header): the KEY SHARE lock is taken in a subtransaction that is then rolled
-- back, so a re-check run early by SET CONSTRAINTS ALL IMMEDIATE holds nothing while its
-- transaction idles. Under REPEATABLE READ or SERIALIZABLE, a predecessor a completion
-- deleted since the enqueue's snapshot is 40001 (retry the transaction), as before.
-- Dropped and created with its trigger (not replaced: a replace would keep whatever a planted
-- function of the same name carried), in this one transaction.
-- guardrails: allow OBX009 -- trigger and function replaced in one transaction: no enqueue ever commits without the re-check
DROP TRIGGER payment_outbox_pending_recheck_waiting ON public.payment_outbox_pending;
-- guardrails: allow OBX009 -- re-created below, in this transaction
DROP FUNCTION public.outbox_recheck_waiting_item();
CREATE FUNCTION public.outbox_recheck_waiting_item()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET lock_timeout = '5s'
AS $function$
DECLARE
    v_predecessor_live boolean;
BEGIN
    BEGIN
        PERFORM
        FROM public.payment_outbox_pending AS e
        WHERE e.participant_id = NEW.participant_id AND e.rail_type = NEW.rail_type
          AND e.ordered AND e.sequence_id < NEW.sequence_id
        ORDER BY e.sequence_id DESC
        LIMIT 1
        FOR KEY SHARE;
        v_predecessor_live := FOUND;
        -- Roll the subtransaction back: the wait is over, the lock is not wanted.
        RAISE EXCEPTION USING ERRCODE = 'P7999';
    EXCEPTION
        WHEN SQLSTATE 'P7999' THEN NULL;
    END;
    IF NOT v_predecessor_live THEN
        UPDATE public.payment_outbox_pending AS p
        SET awaiting_predecessor = false
        WHERE p.outbox_id = NEW.outbox_id AND p.awaiting_predecessor;
    END IF;
    RETURN NULL;
END
$function$;

CREATE CONSTRAINT TRIGGER payment_outbox_pending_recheck_waiting
    AFTER INSERT ON public.payment_outbox_pending
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW WHEN (NEW.awaiting_predecessor)
    EXECUTE FUNCTION public.outbox_recheck_waiting_item();

-- 0009's release of a lane's next item when its head leaves the queue. A transaction under
-- REPEATABLE READ or SERIALIZABLE sees only what committed before its snapshot: if an
-- enqueue of this participant committed since, its item may be the successor this cannot
-- see, so the completion fails with 40001 and its retry (a new snapshot) releases it. The
-- probe is the participant's sequence row, which every enqueue updates: locking it reports a
-- committed update as 40001 and never waits (NOWAIT; an enqueue still in flight re-checks
-- its lane itself at commit, and lease repair backs up both). Like the re-check's, the lock
-- is let go at once.
-- guardrails: allow OBX009 -- trigger and function replaced in one transaction: no completion ever commits without the release
DROP TRIGGER payment_outbox_pending_release_lane_successor ON public.payment_outbox_pending;
-- guardrails: allow OBX009 -- re-created below, in this transaction
DROP FUNCTION public.outbox_release_lane_successor();
CREATE FUNCTION public.outbox_release_lane_successor()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET lock_timeout = '5s'
AS $function$
BEGIN
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        BEGIN
            PERFORM
            FROM public.participant_outbox_sequences AS s
            WHERE s.participant_id = OLD.participant_id
            FOR SHARE NOWAIT;
            RAISE EXCEPTION USING ERRCODE = 'P7999';  -- a probe: keep no lock
        EXCEPTION
            WHEN lock_not_available OR SQLSTATE 'P7999' THEN NULL;
        END;
    END IF;
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

CREATE TRIGGER payment_outbox_pending_release_lane_successor
    AFTER DELETE ON public.payment_outbox_pending
    FOR EACH ROW WHEN (OLD.ordered)
    EXECUTE FUNCTION public.outbox_release_lane_successor();

-- The batch enqueue of 0010, with the identifier check above (the same predicate as the
-- single enqueue's, now one function) and a bounded lock wait.
-- guardrails: allow OBX009 -- same signature, dropped and created in one transaction: no caller ever sees it missing
DROP FUNCTION public.enqueue_payment_outbox_batch(text[], text[], text[], text[], jsonb[]);
CREATE FUNCTION public.enqueue_payment_outbox_batch(
    p_instruction_ids text[],
    p_participant_ids text[],
    p_idempotency_keys text[],
    p_rail_types text[],
    p_payloads jsonb[]
)
RETURNS TABLE (outbox_id uuid, sequence_id bigint, created boolean)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
-- Planned for each call's arrays: a cached generic plan guesses 10 requests and joins the
-- batch's steps row by row (quadratic in the batch size); with the arrays known the
-- planner hashes them. Planning costs well under a millisecond per call.
SET plan_cache_mode = force_custom_plan
SET lock_timeout = '5s'
AS $function$
DECLARE
    v_count integer := coalesce(cardinality(p_instruction_ids), 0);
    v_argument text;
    v_values text[];
    v_position bigint;
    v_value text;
    v_payload jsonb;
    v_registered uuid[];
    v_returned integer;
BEGIN
    PERFORM public.outbox_require_range('batch_size', v_count, 1, 10000);
    IF coalesce(cardinality(p_participant_ids), 0) <> v_count
        OR coalesce(cardinality(p_idempotency_keys), 0) <> v_count
        OR coalesce(cardinality(p_rail_types), 0) <> v_count
        OR coalesce(cardinality(p_payloads), 0) <> v_count THEN
        RAISE EXCEPTION 'request arrays must all have the same length'
            USING ERRCODE = '22023', COLUMN = 'instruction_ids';
    END IF;
    -- One set-based pass per argument instead of a function call per value; the first value
    -- refused is refused again by the single enqueue's own check, so the error is the single
    -- enqueue's. The predicates are outbox_require_text's (outbox_invalid_identifier_at),
    -- outbox_require_service_key's and outbox_require_payload's.
    FOR v_argument, v_values IN
        VALUES ('instruction_id', p_instruction_ids), ('participant_id', p_participant_ids),
            ('idempotency_key', p_idempotency_keys), ('rail_type', p_rail_types)
    LOOP
        v_position := public.outbox_invalid_identifier_at(v_values);
        IF v_position IS NOT NULL THEN
            PERFORM public.outbox_require_text(v_argument, v_values[v_position]);
        END IF;
    END LOOP;
    SELECT k INTO v_value FROM unnest(p_idempotency_keys) AS k WHERE starts_with(k, 'outbox:')
    LIMIT 1;
    IF FOUND THEN
        PERFORM public.outbox_require_service_key(v_value);
    END IF;
    SELECT v INTO v_payload
    FROM unnest(p_payloads) AS v
    WHERE v IS NULL OR jsonb_typeof(v) <> 'object' OR octet_length(v::text) > 1048576
        OR jsonb_path_exists(v, 'strict $.**{65}')
    LIMIT 1;
    IF FOUND THEN
        PERFORM public.outbox_require_payload(v_payload);
    END IF;

    -- Register the batch's keys, the first request of each (rail, key) in request order; a
    -- key taken before, or by another request of this batch, registers nothing.
    WITH registered AS (
        INSERT INTO public.outbox_idempotency_keys AS k (
            rail_type, idempotency_key, instruction_id, outbox_id
        )
        SELECT DISTINCT ON (r.rail_type, r.idempotency_key)
            r.rail_type, r.idempotency_key, r.instruction_id, gen_random_uuid()
        FROM unnest(p_instruction_ids, p_idempotency_keys, p_rail_types) WITH ORDINALITY
            AS r(instruction_id, idempotency_key, rail_type, position)
        ORDER BY r.rail_type, r.idempotency_key, r.position
        ON CONFLICT DO NOTHING
        RETURNING k.outbox_id
    )
    SELECT coalesce(array_agg(g.outbox_id), '{}') INTO v_registered FROM registered AS g;

    -- A new statement: under READ COMMITTED it sees the keys other transactions committed
    -- while the registration waited for them.
    RETURN QUERY
    WITH request AS (
        SELECT r.*, k.outbox_id, k.instruction_id AS key_instruction_id,
            k.outbox_id = ANY (v_registered) AS fresh,
            min(r.position) OVER (PARTITION BY r.rail_type, r.idempotency_key) AS first
        FROM unnest(
            p_instruction_ids, p_participant_ids, p_idempotency_keys, p_rail_types, p_payloads
        ) WITH ORDINALITY AS r(
            instruction_id, participant_id, idempotency_key, rail_type, payload, position
        )
        LEFT JOIN public.outbox_idempotency_keys AS k
            ON k.rail_type = r.rail_type AND k.idempotency_key = r.idempotency_key
    ),
    stored AS (
        SELECT q.outbox_id, i.participant_id, i.sequence_id, i.payload
        FROM request AS q
        CROSS JOIN LATERAL public.outbox_item_of_key(q.outbox_id) AS i
        WHERE NOT q.fresh AND q.position = q.first
    ),
    fresh AS (
        SELECT q.*,
            row_number() OVER (PARTITION BY q.participant_id ORDER BY q.position) AS rank,
            count(*) OVER (PARTITION BY q.participant_id) AS participant_count
        FROM request AS q
        WHERE q.fresh AND q.position = q.first
    ),
    rail AS (
        SELECT r.rail_type, public.outbox_rail_is_ordered(r.rail_type) AS ordered
        FROM (SELECT DISTINCT f.rail_type FROM fresh AS f) AS r
    ),
    numbered AS (
        -- One lock order for every batch (by participant), so two batches never deadlock
        -- on the sequence rows they both bump.
        INSERT INTO public.participant_outbox_sequences AS s (participant_id, next_sequence_id)
        SELECT f.participant_id, count(*) + 1
        FROM fresh AS f
        GROUP BY f.participant_id
        ORDER BY f.participant_id
        ON CONFLICT (participant_id)
            DO UPDATE SET next_sequence_id = s.next_sequence_id + EXCLUDED.next_sequence_id - 1
        RETURNING s.participant_id, s.next_sequence_id
    ),
    inserted AS (
        INSERT INTO public.payment_outbox_pending AS p (
            outbox_id, instruction_id, participant_id, sequence_id, idempotency_key,
            rail_type, payload, ordered, awaiting_predecessor
        )
        -- Every item of an ordered rail enters its lane waiting, and the re-check at commit
        -- releases each lane's head (0009).
        SELECT f.outbox_id, f.instruction_id, f.participant_id,
            n.next_sequence_id - f.participant_count + f.rank - 1, f.idempotency_key,
            f.rail_type, f.payload, r.ordered, r.ordered
        FROM fresh AS f
        JOIN numbered AS n ON n.participant_id = f.participant_id
        JOIN rail AS r ON r.rail_type = f.rail_type
        ORDER BY f.position
        RETURNING p.outbox_id, p.participant_id, p.sequence_id, p.payload
    ),
    item AS (
        SELECT i.*, TRUE AS created FROM inserted AS i
        UNION ALL
        SELECT s.*, FALSE FROM stored AS s
    )
    -- A request that asks something else than its key's item has no row here.
    SELECT it.outbox_id, it.sequence_id, it.created AND q.position = q.first
    FROM request AS q
    JOIN item AS it ON it.outbox_id = q.outbox_id
    WHERE q.instruction_id = q.key_instruction_id
      AND it.participant_id = q.participant_id AND it.payload = q.payload
    ORDER BY q.position;

    -- Short by a request whose key names another request's item: the key is taken, as in
    -- the single enqueue.
    GET DIAGNOSTICS v_returned = ROW_COUNT;
    IF v_returned <> v_count THEN
        RAISE EXCEPTION 'idempotency key already used with a different request'
            USING ERRCODE = 'P7001',
                  HINT = 'Use a new idempotency key for a different instruction.';
    END IF;
END
$function$;

-- The functions this file does not re-create get the same bound on their lock waits.
ALTER FUNCTION public.enqueue_payment_outbox(text, text, text, text, jsonb)
    SET lock_timeout = '5s';
ALTER FUNCTION public.complete_outbox_attempt(
    uuid, uuid, text, text, text, text, text, text, integer, integer
) SET lock_timeout = '5s';
ALTER FUNCTION public.redrive_payment_outbox(uuid, text) SET lock_timeout = '5s';
ALTER FUNCTION public.set_outbox_rail_ordering(text, boolean, text) SET lock_timeout = '5s';

ALTER FUNCTION public.outbox_control_character_at(text[]) OWNER TO outbox_owner;
ALTER FUNCTION public.outbox_invalid_identifier_at(text[]) OWNER TO outbox_owner;
ALTER FUNCTION public.outbox_require_text(text, text) OWNER TO outbox_owner;
ALTER FUNCTION public.outbox_require_latency(integer, interval) OWNER TO outbox_owner;
ALTER FUNCTION public.outbox_lock_items_for_snapshot(uuid[]) OWNER TO outbox_owner;
ALTER FUNCTION public.outbox_require_outcome_text(text[], text[], text[], text[])
    OWNER TO outbox_owner;
ALTER FUNCTION public.outbox_release_stalled_lanes() OWNER TO outbox_owner;
ALTER FUNCTION public.outbox_recheck_waiting_item() OWNER TO outbox_owner;
ALTER FUNCTION public.outbox_release_lane_successor() OWNER TO outbox_owner;
ALTER FUNCTION public.claim_outbox_batch(integer, text, integer) OWNER TO outbox_owner;
ALTER FUNCTION public.complete_outbox_attempts(
    text, uuid[], uuid[], text[], text[], text[], text[], text[], integer[], integer[]
) OWNER TO outbox_owner;
ALTER FUNCTION public.renew_outbox_lease(uuid, uuid, text, integer) OWNER TO outbox_owner;
ALTER FUNCTION public.release_outbox_leases(text, uuid[], uuid[]) OWNER TO outbox_owner;
ALTER FUNCTION public.repair_expired_leases(integer, text) OWNER TO outbox_owner;
ALTER FUNCTION public.enqueue_payment_outbox_batch(text[], text[], text[], text[], jsonb[])
    OWNER TO outbox_owner;

REVOKE ALL ON FUNCTION
    public.outbox_control_character_at(text[]),
    public.outbox_invalid_identifier_at(text[]),
    public.outbox_require_text(text, text),
    public.outbox_require_latency(integer, interval),
    public.outbox_lock_items_for_snapshot(uuid[]),
    public.outbox_require_outcome_text(text[], text[], text[], text[]),
    public.outbox_release_stalled_lanes(),
    public.outbox_recheck_waiting_item(),
    public.outbox_release_lane_successor(),
    public.claim_outbox_batch(integer, text, integer),
    public.complete_outbox_attempts(
        text, uuid[], uuid[], text[], text[], text[], text[], text[], integer[], integer[]
    ),
    public.renew_outbox_lease(uuid, uuid, text, integer),
    public.release_outbox_leases(text, uuid[], uuid[]),
    public.repair_expired_leases(integer, text),
    public.enqueue_payment_outbox_batch(text[], text[], text[], text[], jsonb[])
FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
    public.claim_outbox_batch(integer, text, integer),
    public.complete_outbox_attempts(
        text, uuid[], uuid[], text[], text[], text[], text[], text[], integer[], integer[]
    ),
    public.renew_outbox_lease(uuid, uuid, text, integer),
    public.release_outbox_leases(text, uuid[], uuid[]),
    public.repair_expired_leases(integer, text)
TO symphony_executor;
-- The batch enqueue as 0011 granted it: to the producer, and (deprecated) to the executor.
GRANT EXECUTE ON FUNCTION
    public.enqueue_payment_outbox_batch(text[], text[], text[], text[], jsonb[])
TO symphony_producer, symphony_executor;
