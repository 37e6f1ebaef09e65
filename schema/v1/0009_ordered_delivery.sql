-- Ordered delivery per participant, opt-in per rail (issue 9, part 1).
--
-- A rail an operator marks as ordered dispatches each participant's items on it strictly by
-- sequence_id. The items of one (participant, rail) on an ordered rail form a lane: only the
-- lane's head (its lowest-sequence live item) is claimable; the others wait with
-- awaiting_predecessor set, outside the claim's index, so a deep lane costs the claim
-- nothing. When the head leaves the queue (DISPATCHED or FAILED: dispatch order is the
-- promise, not success) the next item of the lane is released at once and idle relayers are
-- woken. A retry or a lease repair keeps the head in place, so its followers keep waiting.
-- A re-drive is enqueued like any item: the participant's next number, at the lane's end.
--
-- Whether an item is ordered is decided when it is enqueued and kept with it (`ordered`):
-- turning a rail's ordering on or off changes what new items promise, never what an item
-- already enqueued was promised. Lanes hold ordered items only; an unordered item left from
-- before the switch neither waits nor holds anyone up.
--
-- Who waits for whom. An enqueue cannot decide by itself whether its item heads the lane:
-- the head's completion may be running (the enqueue cannot see the deletion yet, the
-- completion cannot see the uncommitted item), and a batch's snapshot predates its wait for
-- the sequence rows (it cannot see an item committed by the transaction it waited for). So
-- every ordered item enters its lane waiting and re-checks at its commit (a deferred
-- constraint trigger), taking a KEY SHARE lock on the lane's last live item: a completion
-- deleting that item either committed already (the re-check sees it gone and the item
-- releases itself) or waits for the enqueue's commit (microseconds: the lock is taken at
-- commit) and then, with a fresh snapshot, sees the item and releases it. A completion never waits for an open service
-- transaction, and the claim is the same single statement as before, plus one predicate.
--
-- Unordered rails pay one lookup of the rail's ordering per enqueue (per distinct rail in a
-- batch) and nothing else: their rows never fire the two triggers (WHEN clauses on the row),
-- and the claim reads the same index entries for them as before (nox -s bench measures both).

-- The whole file runs in one transaction (the migrator's): names resolve only in pg_catalog
-- unless schema-qualified, a lock wait gives up instead of queueing the database behind it,
-- and no statement runs unbounded.
SET LOCAL search_path = pg_catalog, pg_temp;
SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '30min';

-- Which rails are ordered, as an append-only history: the latest entry of a rail_type is in
-- force, and every change says who made it, when and why (the evidence bundle lists it).
CREATE TABLE public.outbox_rail_ordering (
    entry_no bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    rail_type text NOT NULL,
    ordered boolean NOT NULL,
    requested_by text NOT NULL,
    requested_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    reason text NOT NULL
);
CREATE INDEX outbox_rail_ordering_latest
    ON public.outbox_rail_ordering (rail_type, entry_no DESC);

CREATE TRIGGER outbox_rail_ordering_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON public.outbox_rail_ordering
    FOR EACH STATEMENT EXECUTE FUNCTION public.deny_append_only_mutation();

-- The lane state of a pending item. Existing rows take the defaults (unordered, not
-- waiting), which satisfy the CHECK; new rows are checked.
ALTER TABLE public.payment_outbox_pending
    ADD COLUMN ordered boolean NOT NULL DEFAULT false,
    ADD COLUMN awaiting_predecessor boolean NOT NULL DEFAULT false,
    ADD CONSTRAINT payment_outbox_pending_only_ordered_items_wait CHECK (
        ordered OR NOT awaiting_predecessor
    ) NOT VALID;

-- The claim's index leaves waiting items out, so the claim never reads them. payment_outbox_
-- pending holds live items only (a completed item leaves it), so the build is short.
-- guardrails: allow OBX009 -- the claim's index must change with the claim in this transaction; the live queue is small by design
DROP INDEX public.payment_outbox_pending_due;
-- guardrails: allow OBX009 -- built in the same transaction as the claim that uses it; the live queue is small by design
CREATE INDEX payment_outbox_pending_due
    ON public.payment_outbox_pending (next_attempt_at)
    WHERE claimed_by IS NULL AND NOT awaiting_predecessor;
-- A lane's items by sequence: its head, its last item. Ordered rows only.
-- guardrails: allow OBX009 -- a new index over rows that exist only from this migration on (ordered is false for every existing row)
CREATE INDEX payment_outbox_pending_ordered_lane
    ON public.payment_outbox_pending (participant_id, rail_type, sequence_id)
    WHERE ordered;

-- Whether new items on p_rail_type are ordered: the rail's latest entry, unordered if none.
CREATE FUNCTION public.outbox_rail_is_ordered(p_rail_type text)
RETURNS boolean
LANGUAGE sql
STABLE
SET search_path = pg_catalog, pg_temp
AS $function$
    SELECT coalesce((
        SELECT o.ordered
        FROM public.outbox_rail_ordering AS o
        WHERE o.rail_type = p_rail_type
        ORDER BY o.entry_no DESC
        LIMIT 1
    ), false);
$function$;

-- Marks p_rail_type ordered or not for items enqueued from now on, and records who asked and
-- why. Returns the entry. Items already enqueued keep what they were promised.
CREATE FUNCTION public.set_outbox_rail_ordering(
    p_rail_type text, p_ordered boolean, p_reason text
)
RETURNS TABLE (
    entry_no bigint,
    rail_type text,
    ordered boolean,
    requested_by text,
    requested_at timestamptz,
    reason text
)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $function$
BEGIN
    PERFORM public.outbox_require_text('rail_type', p_rail_type);
    PERFORM public.outbox_require_text('reason', p_reason);
    IF p_ordered IS NULL THEN
        RAISE EXCEPTION 'ordered must be true or false'
            USING ERRCODE = '22023', COLUMN = 'ordered';
    END IF;
    RETURN QUERY
    INSERT INTO public.outbox_rail_ordering AS o (rail_type, ordered, requested_by, reason)
    VALUES (p_rail_type, p_ordered, session_user, p_reason)
    RETURNING o.entry_no, o.rail_type, o.ordered, o.requested_by, o.requested_at, o.reason;
END
$function$;

-- Deferred to the enqueue's commit, for every item that entered its lane (waiting): if no
-- ordered item is live below it any more, it is the head. The KEY SHARE lock on the lane's
-- last live item makes a completion deleting that item wait for this commit (see the
-- header); a row deleted meanwhile is skipped and the next one locked instead.
CREATE FUNCTION public.outbox_recheck_waiting_item()
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

CREATE CONSTRAINT TRIGGER payment_outbox_pending_recheck_waiting
    AFTER INSERT ON public.payment_outbox_pending
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW WHEN (NEW.awaiting_predecessor)
    EXECUTE FUNCTION public.outbox_recheck_waiting_item();

-- When an ordered item leaves the queue (terminal), its lane's next item becomes the head
-- and the relayers are woken (the enqueue channel: "look", nothing more).
CREATE FUNCTION public.outbox_release_lane_successor()
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

CREATE TRIGGER payment_outbox_pending_release_lane_successor
    AFTER DELETE ON public.payment_outbox_pending
    FOR EACH ROW WHEN (OLD.ordered)
    EXECUTE FUNCTION public.outbox_release_lane_successor();

-- The claim of 0008, and one predicate more: a waiting item is not claimable (and is not in
-- the due index, which the predicate matches).
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
AS $function$
BEGIN
    PERFORM public.outbox_require_range('batch_size', p_batch_size, 1, 1000);
    PERFORM public.outbox_require_text('worker_id', p_worker_id);
    PERFORM public.outbox_require_range('lease_seconds', p_lease_seconds, 1, 3600);

    RETURN QUERY
    WITH due AS (
        SELECT d.outbox_id
        FROM public.payment_outbox_pending AS d
        WHERE d.claimed_by IS NULL AND NOT d.awaiting_predecessor
          AND d.next_attempt_at <= now()
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

-- Both enqueues of 0003/0006, and on an ordered rail the item joins its lane (marked lines).
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

ALTER TABLE public.outbox_rail_ordering OWNER TO outbox_owner;
ALTER FUNCTION public.outbox_rail_is_ordered(text) OWNER TO outbox_owner;
ALTER FUNCTION public.set_outbox_rail_ordering(text, boolean, text) OWNER TO outbox_owner;
ALTER FUNCTION public.outbox_recheck_waiting_item() OWNER TO outbox_owner;
ALTER FUNCTION public.outbox_release_lane_successor() OWNER TO outbox_owner;
ALTER FUNCTION public.claim_outbox_batch(integer, text, integer) OWNER TO outbox_owner;
ALTER FUNCTION public.enqueue_payment_outbox(text, text, text, text, jsonb)
    OWNER TO outbox_owner;
ALTER FUNCTION public.enqueue_payment_outbox_batch(text[], text[], text[], text[], jsonb[])
    OWNER TO outbox_owner;

REVOKE ALL ON FUNCTION
    public.outbox_rail_is_ordered(text),
    public.set_outbox_rail_ordering(text, boolean, text),
    public.outbox_recheck_waiting_item(),
    public.outbox_release_lane_successor(),
    public.claim_outbox_batch(integer, text, integer),
    public.enqueue_payment_outbox(text, text, text, text, jsonb),
    public.enqueue_payment_outbox_batch(text[], text[], text[], text[], jsonb[])
FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
    public.claim_outbox_batch(integer, text, integer),
    public.enqueue_payment_outbox(text, text, text, text, jsonb),
    public.enqueue_payment_outbox_batch(text[], text[], text[], text[], jsonb[])
TO symphony_executor;
-- Choosing which rails are ordered is an operator's decision, recorded like a re-drive.
GRANT EXECUTE ON FUNCTION public.set_outbox_rail_ordering(text, boolean, text)
    TO symphony_operator;

REVOKE ALL ON public.outbox_rail_ordering
    FROM PUBLIC, symphony_executor, symphony_readonly, symphony_auditor, symphony_operator;
GRANT SELECT ON public.outbox_rail_ordering TO symphony_readonly, symphony_auditor;
