-- Rail-scoped claims (issue 17, part 3): a relayer claims only items of the rails it can send
-- to, at most as many per rail as it can start now, and an item on a rail nobody serves waits,
-- with no attempt recorded, where the on-call can see it.
--
-- claim_outbox_rails(worker, lease, rail_types[], limits[]) is the new claim: up to limits[i]
-- due items of rail_types[i] each, oldest first per rail. Its caller passes what it has free
-- per rail (a slot, and, when the rail has a rate, a token), so nothing it leases waits in
-- the relayer for a slot while its lease runs.
--
-- Who serves a rail. Every rail-scoped claim announces its rails: outbox_rail_servers holds
-- (rail_type, worker_id, seen_at), refreshed by the claim when its row is 10 s old or more
-- (so a busy relayer writes it once per 10 s per rail, not once per claim) and pruned of rows
-- an hour old. A rail is served while a relayer announced it within the last 60 s (relayers
-- claim at least every 20 s, idle or not); the view outbox_unserved_rails (schema/views/)
-- lists the rails with due items and no such relayer.
--
-- The previous release's claim. claim_outbox_batch(batch, worker, lease) keeps its signature
-- and still claims every rail, but one kind: a rail a rail-scoped relayer announced before
-- the rail had any item (a rail added with this release's relayers: outbox_scoped_rails).
-- Relayers of the previous release were never configured for such a rail, and would record
-- RAIL_NOT_CONFIGURED retries until its items were FAILED; now they leave it alone and
-- every rail they did serve stays theirs to claim during a rolling deploy. It goes in the
-- release after next (packages/outbox-db/CHANGELOG.md).

-- The whole file runs in one transaction (the migrator's): names resolve only in pg_catalog
-- unless schema-qualified, a lock wait gives up instead of queueing the database behind it,
-- and no statement runs unbounded.
SET LOCAL search_path = pg_catalog, pg_temp;
SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '30min';

CREATE TABLE public.outbox_rail_servers (
    rail_type text NOT NULL,
    worker_id text NOT NULL,
    seen_at timestamptz NOT NULL,
    CONSTRAINT outbox_rail_servers_one_row_per_worker PRIMARY KEY (rail_type, worker_id)
);

CREATE TABLE public.outbox_scoped_rails (
    rail_type text PRIMARY KEY,
    announced_by text NOT NULL,
    announced_at timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp()
);

-- The rail-scoped claim's index: one range per rail, oldest first. The live queue is small
-- by design, so the build is short.
-- guardrails: allow OBX009 -- built with the claim that uses it, in this transaction; the live queue is small by design
CREATE INDEX payment_outbox_pending_rail_due
    ON public.payment_outbox_pending (rail_type, next_attempt_at)
    WHERE claimed_by IS NULL AND NOT awaiting_predecessor;

-- Leases the given items (locked by the caller's FOR UPDATE SKIP LOCKED) to p_worker_id and
-- returns them as both claims do, each with its last attempt's error code.
CREATE FUNCTION public.outbox_lease_items(
    p_outbox_ids uuid[], p_worker_id text, p_lease_seconds integer, p_now timestamptz
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
SET search_path = pg_catalog, pg_temp
AS $function$
BEGIN
    RETURN QUERY
    UPDATE public.payment_outbox_pending AS p
    SET claimed_by = p_worker_id,
        lease_token = gen_random_uuid(),
        claimed_at = p_now,
        lease_expires_at = p_now + make_interval(secs => p_lease_seconds)
    WHERE p.outbox_id = ANY (p_outbox_ids)
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

-- Records that p_worker_id serves p_rail_types (see the header). A rail with no item yet is
-- also recorded as scoped: the previous release's claim leaves it alone from now on.
CREATE FUNCTION public.outbox_announce_rails(
    p_worker_id text, p_rail_types text[], p_now timestamptz
)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $function$
BEGIN
    IF NOT EXISTS (
        SELECT FROM unnest(p_rail_types) AS r(rail_type)
        WHERE NOT EXISTS (
            SELECT FROM public.outbox_rail_servers AS s
            WHERE s.rail_type = r.rail_type AND s.worker_id = p_worker_id
              AND s.seen_at > p_now - interval '10 seconds'
        )
    ) THEN
        RETURN;  -- announced within 10 s: nothing to write
    END IF;
    INSERT INTO public.outbox_scoped_rails (rail_type, announced_by, announced_at)
    SELECT r.rail_type, p_worker_id, p_now
    FROM unnest(p_rail_types) AS r(rail_type)
    WHERE NOT EXISTS (
        SELECT FROM public.outbox_idempotency_keys AS k WHERE k.rail_type = r.rail_type
    )
    ON CONFLICT DO NOTHING;
    INSERT INTO public.outbox_rail_servers (rail_type, worker_id, seen_at)
    SELECT r.rail_type, p_worker_id, p_now
    FROM unnest(p_rail_types) AS r(rail_type)
    ON CONFLICT ON CONSTRAINT outbox_rail_servers_one_row_per_worker
        DO UPDATE SET seen_at = EXCLUDED.seen_at;
    -- Rows of relayers gone for an hour; one another pruner holds are left to it.
    DELETE FROM public.outbox_rail_servers AS s
    WHERE (s.rail_type, s.worker_id) IN (
        SELECT o.rail_type, o.worker_id
        FROM public.outbox_rail_servers AS o
        WHERE o.seen_at < p_now - interval '1 hour'
        FOR UPDATE SKIP LOCKED
    );
END
$function$;

CREATE FUNCTION public.claim_outbox_rails(
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
        LIMIT r.max_items
        FOR UPDATE SKIP LOCKED
    ) AS d;

    RETURN QUERY
    SELECT * FROM public.outbox_lease_items(v_ids, p_worker_id, p_lease_seconds, v_now);
END
$function$;

-- The claim of 0012, leaving alone the rails only rail-scoped relayers serve (see the header).
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
          AND NOT EXISTS (
              SELECT FROM public.outbox_scoped_rails AS s WHERE s.rail_type = e.rail_type
          )
        ORDER BY e.next_attempt_at
        LIMIT p_batch_size
        FOR UPDATE OF e SKIP LOCKED
    ) AS d;

    RETURN QUERY
    SELECT * FROM public.outbox_lease_items(v_ids, p_worker_id, p_lease_seconds, v_now);
END
$function$;

ALTER TABLE public.outbox_rail_servers OWNER TO outbox_owner;
ALTER TABLE public.outbox_scoped_rails OWNER TO outbox_owner;
REVOKE ALL ON public.outbox_rail_servers, public.outbox_scoped_rails FROM PUBLIC;
GRANT SELECT ON public.outbox_rail_servers, public.outbox_scoped_rails
    TO symphony_readonly, symphony_auditor;
ALTER FUNCTION public.outbox_lease_items(uuid[], text, integer, timestamptz)
    OWNER TO outbox_owner;
ALTER FUNCTION public.outbox_announce_rails(text, text[], timestamptz) OWNER TO outbox_owner;
ALTER FUNCTION public.claim_outbox_rails(text, integer, text[], integer[]) OWNER TO outbox_owner;
ALTER FUNCTION public.claim_outbox_batch(integer, text, integer) OWNER TO outbox_owner;
REVOKE ALL ON FUNCTION
    public.outbox_lease_items(uuid[], text, integer, timestamptz),
    public.outbox_announce_rails(text, text[], timestamptz),
    public.claim_outbox_rails(text, integer, text[], integer[]),
    public.claim_outbox_batch(integer, text, integer)
FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
    public.claim_outbox_rails(text, integer, text[], integer[]),
    public.claim_outbox_batch(integer, text, integer)
TO symphony_executor;
