-- invariant: an enqueue decides its key by the key registry's unique index, never by its snapshot: under any isolation level and interleaving one item per key, the same request gets it, another gets P7001 or 40001 (0010)
-- proofs: packages/outbox-db/tests/integration/test_isolation_specs.py::test_isolation_spec_gives_the_expected_output[key_taken_after_the_snapshot]
-- proofs: packages/outbox-db/tests/integration/test_isolation_specs.py::test_isolation_spec_gives_the_expected_output[batch_waits_behind_a_sequence_row]
-- proofs: packages/outbox-db/tests/integration/test_isolation_specs.py::test_isolation_spec_gives_the_expected_output[batch_races_a_single_enqueue]
-- proofs: packages/outbox-db/tests/integration/test_one_key_one_payment.py::test_a_snapshot_older_than_the_key_gets_a_retryable_conflict_never_a_second_item
-- proofs: packages/outbox-db/tests/integration/test_one_key_one_payment.py::test_a_batch_racing_a_single_enqueue_of_the_same_request_gets_its_item
-- The fix of schema 0010 absent: both enqueues as 0009 shipped them, which look for the key
-- in the statement's snapshot of the queue and the ledger and rely on the queue's unique
-- (instruction_id, idempotency_key), which forgets an item once it completes.
CREATE OR REPLACE FUNCTION public.enqueue_payment_outbox(
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
    v_ordered boolean;
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

    -- On an ordered rail the item enters its lane waiting; the re-check at commit releases it
    -- if no earlier item of the lane is live then.
    v_ordered := public.outbox_rail_is_ordered(p_rail_type);
    RETURN QUERY
    INSERT INTO public.payment_outbox_pending AS p (
        outbox_id, instruction_id, participant_id, sequence_id, idempotency_key,
        rail_type, payload, ordered, awaiting_predecessor
    )
    VALUES (
        gen_random_uuid(), p_instruction_id, p_participant_id, v_sequence_id,
        p_idempotency_key, p_rail_type, p_payload, v_ordered, v_ordered
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

CREATE OR REPLACE FUNCTION public.enqueue_payment_outbox_batch(
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
AS $function$
DECLARE
    v_count integer := coalesce(cardinality(p_instruction_ids), 0);
    v_argument text;
    v_value text;
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
    -- One set-based pass instead of a function call per value; the first value it finds is
    -- refused by outbox_require_text itself, so the error is the single enqueue's. The
    -- predicate is outbox_require_text's (0003).
    SELECT a.argument, a.value INTO v_argument, v_value
    FROM (
        SELECT 'instruction_id', v FROM unnest(p_instruction_ids) AS v
        UNION ALL
        SELECT 'participant_id', v FROM unnest(p_participant_ids) AS v
        UNION ALL
        SELECT 'idempotency_key', v FROM unnest(p_idempotency_keys) AS v
        UNION ALL
        SELECT 'rail_type', v FROM unnest(p_rail_types) AS v
    ) AS a(argument, value)
    WHERE a.value IS NULL OR a.value !~ '[^[:space:]]' OR a.value ~ '[[:cntrl:]]'
        OR length(a.value) > 255
    LIMIT 1;
    IF FOUND THEN
        PERFORM public.outbox_require_text(v_argument, v_value);
    END IF;
    IF EXISTS (
        SELECT FROM unnest(p_payloads) AS v WHERE v IS NULL OR jsonb_typeof(v) <> 'object'
    ) THEN
        RAISE EXCEPTION 'payload must be a JSON object'
            USING ERRCODE = '22023', COLUMN = 'payload';
    END IF;
    IF EXISTS (SELECT FROM unnest(p_payloads) AS v WHERE pg_column_size(v) > 1048576) THEN
        RAISE EXCEPTION 'payload must be at most 1 MiB'
            USING ERRCODE = '22023', COLUMN = 'payload';
    END IF;

    RETURN QUERY
    WITH request AS (
        SELECT r.*,
            min(r.position) OVER (PARTITION BY r.instruction_id, r.idempotency_key) AS first
        FROM unnest(
            p_instruction_ids, p_participant_ids, p_idempotency_keys, p_rail_types, p_payloads
        ) WITH ORDINALITY AS r(
            instruction_id, participant_id, idempotency_key, rail_type, payload, position
        )
    ),
    stored AS (
        SELECT q.instruction_id, q.idempotency_key, k.*
        FROM request AS q
        CROSS JOIN LATERAL (
            SELECT p.outbox_id, p.participant_id, p.sequence_id, p.rail_type, p.payload
            FROM public.payment_outbox_pending AS p
            WHERE p.instruction_id = q.instruction_id
              AND p.idempotency_key = q.idempotency_key
            UNION ALL
            SELECT a.outbox_id, a.participant_id, a.sequence_id, a.rail_type, a.payload
            FROM public.payment_outbox_attempts AS a
            WHERE a.instruction_id = q.instruction_id
              AND a.idempotency_key = q.idempotency_key
              AND a.state IN ('DISPATCHED', 'FAILED')
            LIMIT 1
        ) AS k
        WHERE q.position = q.first
    ),
    fresh AS (
        SELECT q.*,
            row_number() OVER (PARTITION BY q.participant_id ORDER BY q.position) AS rank,
            count(*) OVER (PARTITION BY q.participant_id) AS participant_count
        FROM request AS q
        WHERE q.position = q.first
          AND NOT EXISTS (
              SELECT FROM stored AS s
              WHERE s.instruction_id = q.instruction_id
                AND s.idempotency_key = q.idempotency_key
          )
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
        -- releases each lane's head (see the header: this statement's snapshot predates its
        -- wait for the sequence rows above; the re-check's does not).
        SELECT gen_random_uuid(), f.instruction_id, f.participant_id,
            n.next_sequence_id - f.participant_count + f.rank - 1, f.idempotency_key,
            f.rail_type, f.payload, r.ordered, r.ordered
        FROM fresh AS f
        JOIN numbered AS n ON n.participant_id = f.participant_id
        JOIN rail AS r ON r.rail_type = f.rail_type
        ORDER BY f.position
        ON CONFLICT (instruction_id, idempotency_key) DO NOTHING
        RETURNING p.outbox_id, p.instruction_id, p.idempotency_key, p.participant_id,
            p.sequence_id, p.rail_type, p.payload
    ),
    item AS (
        SELECT i.*, TRUE AS created FROM inserted AS i
        UNION ALL
        SELECT s.outbox_id, s.instruction_id, s.idempotency_key, s.participant_id,
            s.sequence_id, s.rail_type, s.payload, FALSE
        FROM stored AS s
    )
    -- A request that asks something else than its key's item has no row here.
    SELECT it.outbox_id, it.sequence_id, it.created AND q.position = q.first
    FROM request AS q
    JOIN item AS it
        ON it.instruction_id = q.instruction_id AND it.idempotency_key = q.idempotency_key
       AND it.participant_id = q.participant_id AND it.rail_type = q.rail_type
       AND it.payload = q.payload
    ORDER BY q.position;

    -- Short by a request that conflicts with its key's item, or whose key a concurrent
    -- transaction inserted first: either way the key is taken, as in the single enqueue.
    GET DIAGNOSTICS v_returned = ROW_COUNT;
    IF v_returned <> v_count THEN
        RAISE EXCEPTION 'idempotency key already used with a different request'
            USING ERRCODE = 'P7001',
                  HINT = 'Use a new idempotency key for a different instruction.';
    END IF;
END
$function$;
