-- One rail-facing idempotency key means exactly one payment, and the payload reaches the rail
-- as enqueued (issue 16, parts 1 and 3).
--
-- Keys. The rail sees only the Idempotency-Key header, so a key must name one item per rail
-- for the life of the outbox: a rail that honours keys answers a second payment under a used
-- key as a replay of the first, and the ledger would record it DISPATCHED unpaid. Until now
-- uniqueness was (instruction_id, idempotency_key) among live items only, checked against
-- the ledger through a snapshot. outbox_idempotency_keys registers every key an item ever
-- took, completed items included, under two unique constraints: (rail_type, idempotency_key)
-- for the rail, (instruction_id, idempotency_key) for the contract callers already had. A
-- unique index does not depend on snapshots: a concurrent enqueue of the same key waits for
-- the first and then finds it (READ COMMITTED) or gets a serialization failure (40001 under
-- REPEATABLE READ and SERIALIZABLE), never a second item. The registry is append-only.
--
-- The same request again (same instruction, participant, rail and payload) returns the
-- existing item (created = false), as before; anything else under a taken key is P7001 with
-- nothing written. A key keeps naming its item after completion: a service that meant a new
-- payment must choose a new key.
--
-- Keys starting with "outbox:" belong to the outbox. A re-drive's key is
-- "outbox:redrive:<outbox_id of the FAILED item>": one re-drive per item (operator log), so
-- the key is new by construction, 51 characters whatever the original key, and no service can
-- take it first (enqueue refuses the prefix, 22023). Re-drives made before this migration
-- keep their "<key>:redrive:<n>" keys, as every existing item keeps its key.
--
-- Payloads: a JSON object of at most 1 MiB of JSON text (octet_length of jsonb's text form,
-- not the compressed size: a 16 MiB payload compressing below 1 MiB is refused) in which no
-- value sits deeper than 64 levels. 64: payment messages nest about a dozen levels, .NET's
-- System.Text.Json refuses more than 64 by default (serde_json 128), and a relayer decodes
-- far below Python's recursion limit. Deeper JSON than the server can parse at all (about
-- 100,000 levels) is 54001 before any function runs.
--
-- Existing databases: the registry is filled from every item (queue and ledger). Keys that
-- already name two items break the new rule; the migration then refuses with SQLSTATE P7006,
-- naming them (see docs/operations.md, "A migration refused with P7006").

-- The whole file runs in one transaction (the migrator's): names resolve only in pg_catalog
-- unless schema-qualified, a lock wait gives up instead of queueing the database behind it,
-- and no statement runs unbounded.
SET LOCAL search_path = pg_catalog, pg_temp;
SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '30min';

-- Every key an item ever took. Written by enqueue and re-drive only.
CREATE TABLE public.outbox_idempotency_keys (
    rail_type text NOT NULL,
    idempotency_key text NOT NULL,
    instruction_id text NOT NULL,
    outbox_id uuid NOT NULL,
    CONSTRAINT outbox_idempotency_keys_one_item_per_rail_key
        PRIMARY KEY (rail_type, idempotency_key),
    CONSTRAINT outbox_idempotency_keys_one_item_per_instruction_key
        UNIQUE (instruction_id, idempotency_key)
);

CREATE TRIGGER outbox_idempotency_keys_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON public.outbox_idempotency_keys
    FOR EACH STATEMENT EXECUTE FUNCTION public.deny_append_only_mutation();

-- Existing keys that name more than one item stop the migration, each named (first 50).
DO $conflicts$
DECLARE
    v_report text;
    v_count bigint;
BEGIN
    -- Lock the queue against enqueues until commit, so nothing registers around the backfill.
    LOCK TABLE public.payment_outbox_pending IN SHARE ROW EXCLUSIVE MODE;
    CREATE TEMPORARY TABLE pg_temp.outbox_existing_item ON COMMIT DROP AS
    SELECT p.outbox_id, p.instruction_id, p.idempotency_key, p.rail_type
    FROM public.payment_outbox_pending AS p
    UNION
    SELECT a.outbox_id, a.instruction_id, a.idempotency_key, a.rail_type
    FROM public.payment_outbox_attempts AS a;

    WITH taken_twice AS (
        SELECT 'rail ' || pg_catalog.quote_literal(i.rail_type) AS scope, i.idempotency_key,
            pg_catalog.array_agg(i.outbox_id ORDER BY i.outbox_id) AS items
        FROM pg_temp.outbox_existing_item AS i
        GROUP BY i.rail_type, i.idempotency_key
        HAVING pg_catalog.count(*) > 1
        UNION ALL
        SELECT 'instruction ' || pg_catalog.quote_literal(i.instruction_id), i.idempotency_key,
            pg_catalog.array_agg(i.outbox_id ORDER BY i.outbox_id)
        FROM pg_temp.outbox_existing_item AS i
        GROUP BY i.instruction_id, i.idempotency_key
        HAVING pg_catalog.count(*) > 1
    )
    SELECT pg_catalog.count(*),
        pg_catalog.string_agg(
            pg_catalog.format('%s, key %L: items %s', t.scope, t.idempotency_key, t.items),
            E'\n'
        ) FILTER (WHERE t.rank <= 50)
    INTO v_count, v_report
    FROM (
        SELECT t.*, pg_catalog.row_number() OVER (ORDER BY t.scope, t.idempotency_key) AS rank
        FROM taken_twice AS t
    ) AS t;

    IF v_count > 0 THEN
        RAISE EXCEPTION '% idempotency keys already name more than one item', v_count
            USING ERRCODE = 'P7006',
                  DETAIL = v_report,
                  HINT = 'Each is a key the rail may have answered as a replay of another '
                      'payment. See docs/operations.md, "A migration refused with P7006".';
    END IF;

    INSERT INTO public.outbox_idempotency_keys (rail_type, idempotency_key, instruction_id,
        outbox_id)
    SELECT i.rail_type, i.idempotency_key, i.instruction_id, i.outbox_id
    FROM pg_temp.outbox_existing_item AS i;
END
$conflicts$;

-- The item behind a registered key, from either of its homes: the queue, or the ledger once
-- it left the queue (a completion commits both sides at once, so one statement sees one).
CREATE FUNCTION public.outbox_item_of_key(p_outbox_id uuid)
RETURNS TABLE (participant_id text, sequence_id bigint, payload jsonb)
LANGUAGE sql
STABLE
SET search_path = pg_catalog, pg_temp
AS $function$
    SELECT i.participant_id, i.sequence_id, i.payload
    FROM (
        SELECT p.participant_id, p.sequence_id, p.payload, 0 AS home
        FROM public.payment_outbox_pending AS p
        WHERE p.outbox_id = p_outbox_id
        UNION ALL
        (SELECT a.participant_id, a.sequence_id, a.payload, 1
        FROM public.payment_outbox_attempts AS a
        WHERE a.outbox_id = p_outbox_id
        ORDER BY a.attempt_no DESC
        LIMIT 1)
    ) AS i
    ORDER BY i.home
    LIMIT 1;
$function$;

-- A payload the outbox accepts (see the header), else 22023 naming what is wrong.
CREATE FUNCTION public.outbox_require_payload(p_payload jsonb)
RETURNS void
LANGUAGE plpgsql
IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $function$
BEGIN
    IF p_payload IS NULL OR jsonb_typeof(p_payload) <> 'object' THEN
        RAISE EXCEPTION 'payload must be a JSON object'
            USING ERRCODE = '22023', COLUMN = 'payload';
    END IF;
    IF octet_length(p_payload::text) > 1048576 THEN
        RAISE EXCEPTION 'payload must be at most 1 MiB (1,048,576 bytes) of JSON text'
            USING ERRCODE = '22023', COLUMN = 'payload';
    END IF;
    IF jsonb_path_exists(p_payload, 'strict $.**{65}') THEN
        RAISE EXCEPTION 'payload must not nest values deeper than 64 levels'
            USING ERRCODE = '22023', COLUMN = 'payload';
    END IF;
END
$function$;

-- A key a service may choose: a valid identifier outside the outbox's own "outbox:" keys.
CREATE FUNCTION public.outbox_require_service_key(p_idempotency_key text)
RETURNS void
LANGUAGE plpgsql
IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $function$
BEGIN
    PERFORM public.outbox_require_text('idempotency_key', p_idempotency_key);
    IF starts_with(p_idempotency_key, 'outbox:') THEN
        RAISE EXCEPTION 'idempotency_key must not start with "outbox:" (the outbox''s own keys)'
            USING ERRCODE = '22023', COLUMN = 'idempotency_key';
    END IF;
END
$function$;

-- The answer to a request whose key is already registered: its item if the request is the
-- same (instruction, participant, rail, payload), else P7001.
CREATE FUNCTION public.outbox_replay(
    p_instruction_id text,
    p_participant_id text,
    p_idempotency_key text,
    p_rail_type text,
    p_payload jsonb
)
RETURNS TABLE (outbox_id uuid, sequence_id bigint, created boolean)
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $function$
BEGIN
    RETURN QUERY
    SELECT k.outbox_id, i.sequence_id, FALSE
    FROM public.outbox_idempotency_keys AS k
    CROSS JOIN LATERAL public.outbox_item_of_key(k.outbox_id) AS i
    WHERE k.rail_type = p_rail_type AND k.idempotency_key = p_idempotency_key
      AND k.instruction_id = p_instruction_id
      AND i.participant_id = p_participant_id AND i.payload = p_payload;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'idempotency key already used with a different request'
            USING ERRCODE = 'P7001',
                  HINT = 'Use a new idempotency key for a different instruction.';
    END IF;
END
$function$;

-- The enqueue of one item, for a service (enqueue_payment_outbox) and for a re-drive. The
-- identifiers are the callers' to check (a re-drive's come from a stored item); the payload
-- is checked here, so a re-drive meets today's limits too. The key is registered first: a
-- taken key costs no sequence number.
CREATE FUNCTION public.outbox_enqueue_item(
    p_instruction_id text,
    p_participant_id text,
    p_idempotency_key text,
    p_rail_type text,
    p_payload jsonb
)
RETURNS TABLE (outbox_id uuid, sequence_id bigint, created boolean)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $function$
DECLARE
    v_outbox_id uuid := gen_random_uuid();
    v_sequence_id bigint;
    v_ordered boolean;
BEGIN
    PERFORM public.outbox_require_payload(p_payload);

    INSERT INTO public.outbox_idempotency_keys AS k (
        rail_type, idempotency_key, instruction_id, outbox_id
    )
    VALUES (p_rail_type, p_idempotency_key, p_instruction_id, v_outbox_id)
    ON CONFLICT DO NOTHING;
    IF NOT FOUND THEN
        -- A new statement, so under READ COMMITTED it sees the key's committed owner.
        RETURN QUERY SELECT * FROM public.outbox_replay(
            p_instruction_id, p_participant_id, p_idempotency_key, p_rail_type, p_payload
        );
        RETURN;
    END IF;

    -- The participant's next number, and with it the row lock that serializes this
    -- participant's enqueues until commit.
    INSERT INTO public.participant_outbox_sequences AS s (participant_id, next_sequence_id)
    VALUES (p_participant_id, 2)
    ON CONFLICT (participant_id)
        DO UPDATE SET next_sequence_id = s.next_sequence_id + 1
    RETURNING s.next_sequence_id - 1 INTO v_sequence_id;

    -- On an ordered rail the item enters its lane waiting; the re-check at commit releases it
    -- if no earlier item of the lane is live then (0009).
    v_ordered := public.outbox_rail_is_ordered(p_rail_type);
    INSERT INTO public.payment_outbox_pending AS p (
        outbox_id, instruction_id, participant_id, sequence_id, idempotency_key,
        rail_type, payload, ordered, awaiting_predecessor
    )
    VALUES (
        v_outbox_id, p_instruction_id, p_participant_id, v_sequence_id,
        p_idempotency_key, p_rail_type, p_payload, v_ordered, v_ordered
    );
    RETURN QUERY SELECT v_outbox_id, v_sequence_id, TRUE;
END
$function$;

-- guardrails: allow OBX009 -- same signature, dropped and created in one transaction: no caller ever sees it missing
DROP FUNCTION public.enqueue_payment_outbox(text, text, text, text, jsonb);
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
BEGIN
    PERFORM public.outbox_require_text('instruction_id', p_instruction_id);
    PERFORM public.outbox_require_text('participant_id', p_participant_id);
    PERFORM public.outbox_require_service_key(p_idempotency_key);
    PERFORM public.outbox_require_text('rail_type', p_rail_type);
    RETURN QUERY SELECT * FROM public.outbox_enqueue_item(
        p_instruction_id, p_participant_id, p_idempotency_key, p_rail_type, p_payload
    );
END
$function$;

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
AS $function$
DECLARE
    v_count integer := coalesce(cardinality(p_instruction_ids), 0);
    v_argument text;
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
    -- One set-based pass instead of a function call per value; the first value it finds is
    -- refused by the single enqueue's own check, so the error is the single enqueue's. The
    -- predicates are outbox_require_text's (0003), outbox_require_service_key's and
    -- outbox_require_payload's.
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
        OR (a.argument = 'idempotency_key' AND starts_with(a.value, 'outbox:'))
    LIMIT 1;
    IF FOUND AND v_argument = 'idempotency_key' THEN
        PERFORM public.outbox_require_service_key(v_value);
    ELSIF FOUND THEN
        PERFORM public.outbox_require_text(v_argument, v_value);
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

-- The re-drive of 0007 with the outbox's own key for the new item (see the header).
-- guardrails: allow OBX009 -- same signature, dropped and created in one transaction: no caller ever sees it missing
DROP FUNCTION public.redrive_payment_outbox(uuid, text);
CREATE FUNCTION public.redrive_payment_outbox(p_outbox_id uuid, p_reason text)
RETURNS TABLE (
    outbox_id uuid,
    redrive_outbox_id uuid,
    idempotency_key text,
    created boolean,
    requested_by text,
    requested_at timestamptz,
    reason text
)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $function$
DECLARE
    v_failed record;
    v_state text;
    v_generation integer;
    v_key text := 'outbox:redrive:' || p_outbox_id::text;
    v_item record;
BEGIN
    IF p_outbox_id IS NULL THEN
        RAISE EXCEPTION 'outbox_id must not be null'
            USING ERRCODE = '22023', COLUMN = 'outbox_id';
    END IF;
    PERFORM public.outbox_require_text('reason', p_reason);

    SELECT a.instruction_id, a.participant_id, a.rail_type, a.payload
    INTO v_failed
    FROM public.payment_outbox_attempts AS a
    WHERE a.outbox_id = p_outbox_id AND a.state = 'FAILED'
    FOR UPDATE;
    IF NOT FOUND THEN
        SELECT CASE WHEN p.claimed_by IS NULL THEN 'pending' ELSE 'leased' END INTO v_state
        FROM public.payment_outbox_pending AS p
        WHERE p.outbox_id = p_outbox_id;
        IF NOT FOUND THEN
            SELECT a.state::text INTO v_state
            FROM public.payment_outbox_attempts AS a
            WHERE a.outbox_id = p_outbox_id
            ORDER BY a.attempt_no DESC
            LIMIT 1;
        END IF;
        IF v_state IS NULL THEN
            RAISE EXCEPTION 'no outbox item has this outbox_id'
                USING ERRCODE = 'P7005', COLUMN = 'outbox_id';
        END IF;
        RAISE EXCEPTION 'the item is %, not FAILED', v_state
            USING ERRCODE = 'P7004', COLUMN = 'outbox_id',
                  HINT = 'Wait for its terminal outcome; a DISPATCHED item needs no re-drive.';
    END IF;

    RETURN QUERY
    SELECT l.outbox_id, l.redrive_outbox_id, l.redrive_idempotency_key, FALSE,
        l.requested_by, l.requested_at, l.reason
    FROM public.outbox_operator_log AS l
    WHERE l.outbox_id = p_outbox_id;
    IF FOUND THEN
        RETURN;
    END IF;

    SELECT coalesce((
        SELECT l.redrive_generation + 1
        FROM public.outbox_operator_log AS l
        WHERE l.redrive_outbox_id = p_outbox_id
    ), 1) INTO v_generation;

    SELECT e.outbox_id, e.created INTO v_item
    FROM public.outbox_enqueue_item(
        v_failed.instruction_id, v_failed.participant_id, v_key, v_failed.rail_type,
        v_failed.payload
    ) AS e;
    IF NOT v_item.created THEN
        -- Unreachable while the operator log allows one re-drive per item; kept as a guard.
        RAISE EXCEPTION 'the derived idempotency key is already used by another item'
            USING ERRCODE = 'P7001', COLUMN = 'outbox_id',
                  HINT = 'Inspect the instruction: its items show who holds the key.';
    END IF;

    RETURN QUERY
    INSERT INTO public.outbox_operator_log AS l (
        outbox_id, redrive_outbox_id, instruction_id, redrive_idempotency_key,
        redrive_generation, requested_by, reason
    )
    VALUES (
        p_outbox_id, v_item.outbox_id, v_failed.instruction_id, v_key, v_generation,
        session_user, p_reason
    )
    RETURNING l.outbox_id, l.redrive_outbox_id, l.redrive_idempotency_key, TRUE,
        l.requested_by, l.requested_at, l.reason;
END
$function$;

ALTER TABLE public.outbox_idempotency_keys OWNER TO outbox_owner;
ALTER FUNCTION public.outbox_item_of_key(uuid) OWNER TO outbox_owner;
ALTER FUNCTION public.outbox_require_payload(jsonb) OWNER TO outbox_owner;
ALTER FUNCTION public.outbox_require_service_key(text) OWNER TO outbox_owner;
ALTER FUNCTION public.outbox_replay(text, text, text, text, jsonb) OWNER TO outbox_owner;
ALTER FUNCTION public.outbox_enqueue_item(text, text, text, text, jsonb) OWNER TO outbox_owner;
ALTER FUNCTION public.enqueue_payment_outbox(text, text, text, text, jsonb)
    OWNER TO outbox_owner;
ALTER FUNCTION public.enqueue_payment_outbox_batch(text[], text[], text[], text[], jsonb[])
    OWNER TO outbox_owner;
ALTER FUNCTION public.redrive_payment_outbox(uuid, text) OWNER TO outbox_owner;

REVOKE ALL ON FUNCTION
    public.outbox_item_of_key(uuid),
    public.outbox_require_payload(jsonb),
    public.outbox_require_service_key(text),
    public.outbox_replay(text, text, text, text, jsonb),
    public.outbox_enqueue_item(text, text, text, text, jsonb),
    public.enqueue_payment_outbox(text, text, text, text, jsonb),
    public.enqueue_payment_outbox_batch(text[], text[], text[], text[], jsonb[]),
    public.redrive_payment_outbox(uuid, text)
FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
    public.enqueue_payment_outbox(text, text, text, text, jsonb),
    public.enqueue_payment_outbox_batch(text[], text[], text[], text[], jsonb[])
TO symphony_executor;
GRANT EXECUTE ON FUNCTION public.redrive_payment_outbox(uuid, text) TO symphony_operator;

REVOKE ALL ON public.outbox_idempotency_keys
    FROM PUBLIC, symphony_executor, symphony_readonly, symphony_auditor, symphony_operator;
GRANT SELECT ON public.outbox_idempotency_keys TO symphony_readonly, symphony_auditor;
