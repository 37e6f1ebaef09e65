-- The outbox schema as a fresh migration leaves it: what runs today.
-- GENERATED, do not edit. Change the schema with a new file under schema/v1 (or
-- schema/views), migrate a database without a role prefix, and regenerate:
--     outbox-db schema-snapshot --url URL > schema/current.sql
-- (docs/architecture.md#the-current-sql). For reading and review, not for running:
-- an index that backs a constraint appears twice.
-- Read on PostgreSQL 15; other major versions may print definitions otherwise.

-- Types -----------------------------------------------------------------------------------------
CREATE TYPE public.outbox_attempt_state AS ENUM ('DISPATCHING', 'DISPATCHED', 'RETRYABLE', 'FAILED', 'ZOMBIE_REQUEUE');

-- Tables ----------------------------------------------------------------------------------------
CREATE TABLE public.outbox_established_rails (
    rail_type text NOT NULL
);
CREATE TABLE public.outbox_idempotency_keys (
    rail_type text NOT NULL,
    idempotency_key text NOT NULL,
    instruction_id text NOT NULL,
    outbox_id uuid NOT NULL
);
CREATE TABLE public.outbox_ledger_archives (
    entry_no bigint GENERATED ALWAYS AS IDENTITY NOT NULL,
    ledger_month date NOT NULL,
    file_name text NOT NULL,
    row_count bigint NOT NULL,
    sha256 text NOT NULL,
    archived_by text NOT NULL DEFAULT SESSION_USER,
    archived_at timestamp with time zone NOT NULL DEFAULT clock_timestamp()
);
CREATE TABLE public.outbox_operator_log (
    entry_no bigint GENERATED ALWAYS AS IDENTITY NOT NULL,
    outbox_id uuid NOT NULL,
    redrive_outbox_id uuid NOT NULL,
    instruction_id text NOT NULL,
    redrive_idempotency_key text NOT NULL,
    redrive_generation integer NOT NULL,
    requested_by text NOT NULL,
    requested_at timestamp with time zone NOT NULL DEFAULT clock_timestamp(),
    reason text NOT NULL
);
CREATE TABLE public.outbox_rail_ordering (
    entry_no bigint GENERATED ALWAYS AS IDENTITY NOT NULL,
    rail_type text NOT NULL,
    ordered boolean NOT NULL,
    requested_by text NOT NULL,
    requested_at timestamp with time zone NOT NULL DEFAULT clock_timestamp(),
    reason text NOT NULL
);
CREATE TABLE public.outbox_rail_servers (
    rail_type text NOT NULL,
    worker_id text NOT NULL,
    seen_at timestamp with time zone NOT NULL
);
CREATE TABLE public.outbox_row_digests (
    row_no bigint NOT NULL DEFAULT nextval('public.outbox_row_digests_row_no_seq'::regclass),
    source text NOT NULL,
    row_key text NOT NULL,
    digest bytea NOT NULL,
    written_by_xact xid8 NOT NULL DEFAULT pg_current_xact_id(),
    ledger_month date NOT NULL DEFAULT '-infinity'::date
);
CREATE TABLE public.outbox_scoped_rails (
    rail_type text NOT NULL,
    announced_by text NOT NULL,
    announced_at timestamp with time zone NOT NULL DEFAULT clock_timestamp(),
    reason text NOT NULL DEFAULT 'announced before its first item'::text
);
CREATE TABLE public.outbox_terminal_outcomes (
    outbox_id uuid NOT NULL
);
CREATE TABLE public.participant_outbox_sequences (
    participant_id text NOT NULL,
    next_sequence_id bigint NOT NULL
);
CREATE TABLE public.payment_outbox_attempts (
    attempt_id uuid NOT NULL DEFAULT gen_random_uuid(),
    outbox_id uuid NOT NULL,
    instruction_id text NOT NULL,
    participant_id text NOT NULL,
    sequence_id bigint NOT NULL,
    idempotency_key text NOT NULL,
    rail_type text NOT NULL,
    payload jsonb NOT NULL,
    attempt_no integer NOT NULL,
    state public.outbox_attempt_state NOT NULL,
    claimed_at timestamp with time zone,
    completed_at timestamp with time zone NOT NULL DEFAULT clock_timestamp(),
    rail_reference text,
    rail_code text,
    error_code text,
    error_message text,
    latency_ms integer,
    worker_id text,
    recorded_by text DEFAULT SESSION_USER,
    ledger_month date NOT NULL DEFAULT '-infinity'::date
);
CREATE TABLE public.payment_outbox_pending (
    outbox_id uuid NOT NULL DEFAULT gen_random_uuid(),
    instruction_id text NOT NULL,
    participant_id text NOT NULL,
    sequence_id bigint NOT NULL,
    idempotency_key text NOT NULL,
    rail_type text NOT NULL,
    payload jsonb NOT NULL,
    attempt_count integer NOT NULL DEFAULT 0,
    next_attempt_at timestamp with time zone NOT NULL DEFAULT clock_timestamp(),
    created_at timestamp with time zone NOT NULL DEFAULT clock_timestamp(),
    claimed_by text,
    lease_token uuid,
    claimed_at timestamp with time zone,
    lease_expires_at timestamp with time zone,
    ordered boolean NOT NULL DEFAULT false,
    awaiting_predecessor boolean NOT NULL DEFAULT false,
    trace_context text DEFAULT public.outbox_valid_traceparent(current_setting('outbox.trace_context'::text, true)),
    ledger_month date NOT NULL DEFAULT public.outbox_current_ledger_month()
);
CREATE TABLE public.payment_outbox_settings (
    singleton boolean NOT NULL DEFAULT true,
    max_attempts integer NOT NULL DEFAULT 10
);

-- Constraints -----------------------------------------------------------------------------------
ALTER TABLE public.outbox_established_rails ADD CONSTRAINT outbox_established_rails_pkey PRIMARY KEY (rail_type);
ALTER TABLE public.outbox_idempotency_keys ADD CONSTRAINT outbox_idempotency_keys_one_item_per_instruction_key UNIQUE (instruction_id, idempotency_key);
ALTER TABLE public.outbox_idempotency_keys ADD CONSTRAINT outbox_idempotency_keys_one_item_per_rail_key PRIMARY KEY (rail_type, idempotency_key);
ALTER TABLE public.outbox_ledger_archives ADD CONSTRAINT outbox_ledger_archives_ledger_month_key UNIQUE (ledger_month);
ALTER TABLE public.outbox_ledger_archives ADD CONSTRAINT outbox_ledger_archives_pkey PRIMARY KEY (entry_no);
ALTER TABLE public.outbox_ledger_archives ADD CONSTRAINT outbox_ledger_archives_row_count_check CHECK ((row_count >= 0));
ALTER TABLE public.outbox_ledger_archives ADD CONSTRAINT outbox_ledger_archives_sha256_check CHECK ((sha256 ~ '^[0-9a-f]{64}$'::text));
ALTER TABLE public.outbox_operator_log ADD CONSTRAINT outbox_operator_log_generation_positive CHECK ((redrive_generation >= 1));
ALTER TABLE public.outbox_operator_log ADD CONSTRAINT outbox_operator_log_one_redrive_per_item UNIQUE (outbox_id);
ALTER TABLE public.outbox_operator_log ADD CONSTRAINT outbox_operator_log_pkey PRIMARY KEY (entry_no);
ALTER TABLE public.outbox_operator_log ADD CONSTRAINT outbox_operator_log_redrive_is_new CHECK ((redrive_outbox_id <> outbox_id));
ALTER TABLE public.outbox_operator_log ADD CONSTRAINT outbox_operator_log_redrive_item_unique UNIQUE (redrive_outbox_id);
ALTER TABLE public.outbox_rail_ordering ADD CONSTRAINT outbox_rail_ordering_pkey PRIMARY KEY (entry_no);
ALTER TABLE public.outbox_rail_servers ADD CONSTRAINT outbox_rail_servers_one_row_per_worker PRIMARY KEY (rail_type, worker_id);
ALTER TABLE public.outbox_row_digests ADD CONSTRAINT outbox_row_digests_one_per_row UNIQUE (source, row_key, ledger_month);
ALTER TABLE public.outbox_row_digests ADD CONSTRAINT outbox_row_digests_pkey PRIMARY KEY (row_no, ledger_month);
ALTER TABLE public.outbox_scoped_rails ADD CONSTRAINT outbox_scoped_rails_pkey PRIMARY KEY (rail_type);
ALTER TABLE public.participant_outbox_sequences ADD CONSTRAINT participant_outbox_sequences_next_positive CHECK ((next_sequence_id >= 1));
ALTER TABLE public.participant_outbox_sequences ADD CONSTRAINT participant_outbox_sequences_pkey PRIMARY KEY (participant_id);
ALTER TABLE public.payment_outbox_attempts ADD CONSTRAINT payment_outbox_attempts_attempt_no_positive CHECK ((attempt_no >= 1));
ALTER TABLE public.payment_outbox_attempts ADD CONSTRAINT payment_outbox_attempts_no_dispatching_insert CHECK ((state <> 'DISPATCHING'::public.outbox_attempt_state)) NOT VALID;
ALTER TABLE public.payment_outbox_attempts ADD CONSTRAINT payment_outbox_attempts_outbox_id_attempt_no_key UNIQUE (outbox_id, attempt_no, ledger_month);
ALTER TABLE public.payment_outbox_attempts ADD CONSTRAINT payment_outbox_attempts_pkey PRIMARY KEY (attempt_id, ledger_month);
ALTER TABLE public.payment_outbox_pending ADD CONSTRAINT payment_outbox_pending_attempt_count_nonnegative CHECK ((attempt_count >= 0));
ALTER TABLE public.payment_outbox_pending ADD CONSTRAINT payment_outbox_pending_instruction_id_idempotency_key_key UNIQUE (instruction_id, idempotency_key);
ALTER TABLE public.payment_outbox_pending ADD CONSTRAINT payment_outbox_pending_lease_consistent CHECK ((((claimed_by IS NULL) AND (lease_token IS NULL) AND (claimed_at IS NULL) AND (lease_expires_at IS NULL)) OR ((claimed_by IS NOT NULL) AND (lease_token IS NOT NULL) AND (claimed_at IS NOT NULL) AND (lease_expires_at IS NOT NULL))));
ALTER TABLE public.payment_outbox_pending ADD CONSTRAINT payment_outbox_pending_only_ordered_items_wait CHECK ((ordered OR (NOT awaiting_predecessor))) NOT VALID;
ALTER TABLE public.payment_outbox_pending ADD CONSTRAINT payment_outbox_pending_participant_id_sequence_id_key UNIQUE (participant_id, sequence_id);
ALTER TABLE public.payment_outbox_pending ADD CONSTRAINT payment_outbox_pending_payload_object CHECK ((jsonb_typeof(payload) = 'object'::text));
ALTER TABLE public.payment_outbox_pending ADD CONSTRAINT payment_outbox_pending_pkey PRIMARY KEY (outbox_id);
ALTER TABLE public.payment_outbox_pending ADD CONSTRAINT payment_outbox_pending_recheck_waiting TRIGGER DEFERRABLE INITIALLY DEFERRED;
ALTER TABLE public.payment_outbox_settings ADD CONSTRAINT payment_outbox_settings_max_attempts_check CHECK (((max_attempts >= 1) AND (max_attempts <= 1000)));
ALTER TABLE public.payment_outbox_settings ADD CONSTRAINT payment_outbox_settings_pkey PRIMARY KEY (singleton);
ALTER TABLE public.payment_outbox_settings ADD CONSTRAINT payment_outbox_settings_singleton_check CHECK (singleton);

-- Indexes (those backing a constraint too) ------------------------------------------------------
CREATE UNIQUE INDEX outbox_established_rails_pkey ON public.outbox_established_rails USING btree (rail_type);
CREATE UNIQUE INDEX outbox_idempotency_keys_one_item_per_instruction_key ON public.outbox_idempotency_keys USING btree (instruction_id, idempotency_key);
CREATE UNIQUE INDEX outbox_idempotency_keys_one_item_per_rail_key ON public.outbox_idempotency_keys USING btree (rail_type, idempotency_key);
CREATE UNIQUE INDEX outbox_ledger_archives_ledger_month_key ON public.outbox_ledger_archives USING btree (ledger_month);
CREATE UNIQUE INDEX outbox_ledger_archives_pkey ON public.outbox_ledger_archives USING btree (entry_no);
CREATE UNIQUE INDEX outbox_operator_log_one_redrive_per_item ON public.outbox_operator_log USING btree (outbox_id);
CREATE UNIQUE INDEX outbox_operator_log_pkey ON public.outbox_operator_log USING btree (entry_no);
CREATE UNIQUE INDEX outbox_operator_log_redrive_item_unique ON public.outbox_operator_log USING btree (redrive_outbox_id);
CREATE INDEX outbox_rail_ordering_latest ON public.outbox_rail_ordering USING btree (rail_type, entry_no DESC);
CREATE UNIQUE INDEX outbox_rail_ordering_pkey ON public.outbox_rail_ordering USING btree (entry_no);
CREATE UNIQUE INDEX outbox_rail_servers_one_row_per_worker ON public.outbox_rail_servers USING btree (rail_type, worker_id);
CREATE INDEX outbox_row_digests_by_xact ON ONLY public.outbox_row_digests USING btree (written_by_xact);
CREATE UNIQUE INDEX outbox_row_digests_one_per_row ON ONLY public.outbox_row_digests USING btree (source, row_key, ledger_month);
CREATE UNIQUE INDEX outbox_row_digests_pkey ON ONLY public.outbox_row_digests USING btree (row_no, ledger_month);
CREATE UNIQUE INDEX outbox_scoped_rails_pkey ON public.outbox_scoped_rails USING btree (rail_type);
CREATE UNIQUE INDEX payment_outbox_attempts_one_terminal_per_outbox ON public.outbox_terminal_outcomes USING btree (outbox_id);
CREATE UNIQUE INDEX participant_outbox_sequences_pkey ON public.participant_outbox_sequences USING btree (participant_id);
CREATE UNIQUE INDEX payment_outbox_attempts_outbox_id_attempt_no_key ON ONLY public.payment_outbox_attempts USING btree (outbox_id, attempt_no, ledger_month);
CREATE UNIQUE INDEX payment_outbox_attempts_pkey ON ONLY public.payment_outbox_attempts USING btree (attempt_id, ledger_month);
CREATE INDEX payment_outbox_pending_due ON public.payment_outbox_pending USING btree (next_attempt_at) WHERE ((claimed_by IS NULL) AND (NOT awaiting_predecessor));
CREATE UNIQUE INDEX payment_outbox_pending_instruction_id_idempotency_key_key ON public.payment_outbox_pending USING btree (instruction_id, idempotency_key);
CREATE INDEX payment_outbox_pending_lease_expiry ON public.payment_outbox_pending USING btree (lease_expires_at) WHERE (lease_expires_at IS NOT NULL);
CREATE INDEX payment_outbox_pending_ordered_lane ON public.payment_outbox_pending USING btree (participant_id, rail_type, sequence_id) WHERE ordered;
CREATE UNIQUE INDEX payment_outbox_pending_participant_id_sequence_id_key ON public.payment_outbox_pending USING btree (participant_id, sequence_id);
CREATE UNIQUE INDEX payment_outbox_pending_pkey ON public.payment_outbox_pending USING btree (outbox_id);
CREATE INDEX payment_outbox_pending_rail_due ON public.payment_outbox_pending USING btree (rail_type, next_attempt_at) WHERE ((claimed_by IS NULL) AND (NOT awaiting_predecessor));
CREATE UNIQUE INDEX payment_outbox_settings_pkey ON public.payment_outbox_settings USING btree (singleton);

-- Triggers --------------------------------------------------------------------------------------
CREATE TRIGGER outbox_idempotency_keys_append_only BEFORE DELETE OR UPDATE OR TRUNCATE ON public.outbox_idempotency_keys FOR EACH STATEMENT EXECUTE FUNCTION public.deny_append_only_mutation();
CREATE TRIGGER outbox_ledger_archives_append_only BEFORE DELETE OR UPDATE OR TRUNCATE ON public.outbox_ledger_archives FOR EACH STATEMENT EXECUTE FUNCTION public.deny_append_only_mutation();
CREATE TRIGGER outbox_ledger_archives_digest AFTER INSERT ON public.outbox_ledger_archives REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION public.outbox_digest_inserted_rows('entry_no', 'outbox_ledger_archive_fields');
CREATE TRIGGER outbox_operator_log_append_only BEFORE DELETE OR UPDATE OR TRUNCATE ON public.outbox_operator_log FOR EACH STATEMENT EXECUTE FUNCTION public.deny_append_only_mutation();
CREATE TRIGGER outbox_operator_log_digest AFTER INSERT ON public.outbox_operator_log REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION public.outbox_digest_inserted_rows('entry_no', 'outbox_operator_log_fields');
CREATE TRIGGER outbox_rail_ordering_append_only BEFORE DELETE OR UPDATE OR TRUNCATE ON public.outbox_rail_ordering FOR EACH STATEMENT EXECUTE FUNCTION public.deny_append_only_mutation();
CREATE TRIGGER outbox_rail_ordering_digest AFTER INSERT ON public.outbox_rail_ordering REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION public.outbox_digest_inserted_rows('entry_no', 'outbox_rail_ordering_fields');
CREATE TRIGGER outbox_row_digests_append_only BEFORE DELETE OR UPDATE OR TRUNCATE ON public.outbox_row_digests FOR EACH STATEMENT EXECUTE FUNCTION public.deny_append_only_mutation();
CREATE TRIGGER outbox_terminal_outcomes_append_only BEFORE DELETE OR UPDATE OR TRUNCATE ON public.outbox_terminal_outcomes FOR EACH STATEMENT EXECUTE FUNCTION public.deny_append_only_mutation();
CREATE TRIGGER payment_outbox_attempts_append_only BEFORE DELETE OR UPDATE OR TRUNCATE ON public.payment_outbox_attempts FOR EACH STATEMENT EXECUTE FUNCTION public.deny_outbox_attempts_mutation();
CREATE TRIGGER payment_outbox_attempts_digest AFTER INSERT ON public.payment_outbox_attempts REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION public.outbox_digest_attempts();
CREATE TRIGGER payment_outbox_attempts_scope_unconfigured_rail AFTER INSERT ON public.payment_outbox_attempts FOR EACH ROW WHEN ((new.error_code = 'RAIL_NOT_CONFIGURED'::text)) EXECUTE FUNCTION public.outbox_scope_unconfigured_rail();
CREATE TRIGGER payment_outbox_attempts_terminal AFTER INSERT ON public.payment_outbox_attempts REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION public.outbox_register_terminal_outcomes();
CREATE TRIGGER payment_outbox_pending_notify_enqueued AFTER INSERT ON public.payment_outbox_pending FOR EACH STATEMENT EXECUTE FUNCTION public.notify_outbox_items_enqueued();
CREATE CONSTRAINT TRIGGER payment_outbox_pending_recheck_waiting AFTER INSERT ON public.payment_outbox_pending DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN (new.awaiting_predecessor) EXECUTE FUNCTION public.outbox_recheck_waiting_item();
CREATE TRIGGER payment_outbox_pending_release_lane_successor AFTER DELETE ON public.payment_outbox_pending FOR EACH ROW WHEN (old.ordered) EXECUTE FUNCTION public.outbox_release_lane_successor();

-- Views -----------------------------------------------------------------------------------------
CREATE VIEW public.outbox_status_view AS
SELECT s.rail_type,
    count(*) FILTER (WHERE s.queued AND s.claimed_by IS NULL AND NOT s.awaiting_predecessor AND s.next_attempt_at <= now()) AS due_count,
    count(*) FILTER (WHERE s.queued AND s.claimed_by IS NULL AND NOT s.awaiting_predecessor AND s.next_attempt_at > now()) AS scheduled_count,
    count(*) FILTER (WHERE s.awaiting_predecessor) AS waiting_count,
    count(*) FILTER (WHERE s.lease_expires_at > now()) AS leased_count,
    count(*) FILTER (WHERE s.lease_expires_at <= now()) AS expired_lease_count,
    COALESCE(EXTRACT(epoch FROM now() - min(s.next_attempt_at) FILTER (WHERE s.queued AND s.claimed_by IS NULL AND NOT s.awaiting_predecessor AND s.next_attempt_at <= now())), 0::numeric)::double precision AS oldest_due_age_seconds,
    count(*) FILTER (WHERE s.state = 'DISPATCHED'::public.outbox_attempt_state) AS dispatched_count,
    count(*) FILTER (WHERE s.state = 'RETRYABLE'::public.outbox_attempt_state) AS retryable_count,
    count(*) FILTER (WHERE s.state = 'FAILED'::public.outbox_attempt_state) AS failed_count,
    count(*) FILTER (WHERE s.state = 'ZOMBIE_REQUEUE'::public.outbox_attempt_state) AS lease_repair_count
   FROM ( SELECT true AS queued,
            p.rail_type,
            p.claimed_by,
            p.next_attempt_at,
            p.lease_expires_at,
            p.awaiting_predecessor,
            NULL::public.outbox_attempt_state AS state
           FROM public.payment_outbox_pending p
        UNION ALL
         SELECT false,
            a.rail_type,
            NULL::text,
            NULL::timestamp with time zone,
            NULL::timestamp with time zone,
            false,
            a.state
           FROM public.payment_outbox_attempts a) s
  GROUP BY ROLLUP(s.rail_type);
CREATE VIEW public.outbox_unserved_rails AS
WITH RECURSIVE rails AS (
        ( SELECT p.rail_type
           FROM public.payment_outbox_pending p
          WHERE p.claimed_by IS NULL AND NOT p.awaiting_predecessor
          ORDER BY p.rail_type
         LIMIT 1)
        UNION ALL
         SELECT n.rail_type
           FROM rails r
             CROSS JOIN LATERAL ( SELECT p.rail_type
                   FROM public.payment_outbox_pending p
                  WHERE p.claimed_by IS NULL AND NOT p.awaiting_predecessor AND p.rail_type > r.rail_type
                  ORDER BY p.rail_type
                 LIMIT 1) n
        ), unserved AS (
         SELECT r.rail_type,
            s.last_served_at
           FROM rails r
             CROSS JOIN LATERAL ( SELECT max(o.seen_at) AS last_served_at
                   FROM public.outbox_rail_servers o
                  WHERE o.rail_type = r.rail_type) s
          WHERE s.last_served_at IS NULL OR s.last_served_at <= (now() - '00:01:00'::interval)
        )
 SELECT u.rail_type,
    d.due_count,
    EXTRACT(epoch FROM now() - d.oldest)::double precision AS oldest_due_age_seconds,
    u.last_served_at
   FROM unserved u
     CROSS JOIN LATERAL ( SELECT count(*) AS due_count,
            min(p.next_attempt_at) AS oldest
           FROM public.payment_outbox_pending p
          WHERE p.rail_type = u.rail_type AND p.claimed_by IS NULL AND NOT p.awaiting_predecessor AND p.next_attempt_at <= now()) d
  WHERE d.due_count > 0;

-- Functions -------------------------------------------------------------------------------------

-- public.claim_outbox_batch(integer,text,integer) (owner outbox_owner, SECURITY DEFINER)
CREATE OR REPLACE FUNCTION public.claim_outbox_batch(p_batch_size integer, p_worker_id text, p_lease_seconds integer)
 RETURNS TABLE(outbox_id uuid, instruction_id text, participant_id text, sequence_id bigint, idempotency_key text, rail_type text, payload jsonb, attempt_count integer, lease_token uuid, lease_expires_at timestamp with time zone, last_error_code text)
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'pg_temp'
 SET lock_timeout TO '5s'
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

-- public.claim_outbox_rails(text,integer,text[],integer[]) (owner outbox_owner, SECURITY DEFINER)
CREATE OR REPLACE FUNCTION public.claim_outbox_rails(p_worker_id text, p_lease_seconds integer, p_rail_types text[], p_limits integer[])
 RETURNS TABLE(outbox_id uuid, instruction_id text, participant_id text, sequence_id bigint, idempotency_key text, rail_type text, payload jsonb, attempt_count integer, lease_token uuid, lease_expires_at timestamp with time zone, last_error_code text)
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'pg_temp'
 SET lock_timeout TO '5s'
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

-- public.complete_outbox_attempt(uuid,uuid,text,text,text,text,text,text,integer,integer) (owner outbox_owner, SECURITY DEFINER)
CREATE OR REPLACE FUNCTION public.complete_outbox_attempt(p_outbox_id uuid, p_lease_token uuid, p_worker_id text, p_state text, p_rail_reference text, p_rail_code text, p_error_code text, p_error_message text, p_latency_ms integer, p_retry_delay_seconds integer)
 RETURNS TABLE(attempt_no integer, state public.outbox_attempt_state)
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'pg_temp'
 SET lock_timeout TO '5s'
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

-- public.complete_outbox_attempts(text,uuid[],uuid[],text[],text[],text[],text[],text[],integer[],integer[]) (owner outbox_owner, SECURITY DEFINER)
CREATE OR REPLACE FUNCTION public.complete_outbox_attempts(p_worker_id text, p_outbox_ids uuid[], p_lease_tokens uuid[], p_states text[], p_rail_references text[], p_rail_codes text[], p_error_codes text[], p_error_messages text[], p_latency_ms integer[], p_retry_delay_seconds integer[])
 RETURNS TABLE(outbox_id uuid, lease_held boolean, attempt_no integer, state public.outbox_attempt_state)
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'pg_temp'
 SET lock_timeout TO '5s'
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
            p.lease_expires_at - p.claimed_at AS lease, p.ledger_month
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
            WHERE a.outbox_id = h.outbox_id AND a.ledger_month = h.ledger_month
        ) AS n
    ),
    recorded AS (
        INSERT INTO public.payment_outbox_attempts (
            outbox_id, instruction_id, participant_id, sequence_id, idempotency_key,
            rail_type, payload, attempt_no, state, claimed_at, completed_at,
            rail_reference, rail_code, error_code, error_message, latency_ms, worker_id,
            ledger_month
        )
        SELECT d.outbox_id, d.instruction_id, d.participant_id, d.sequence_id,
            d.idempotency_key, d.rail_type, d.payload, d.attempt_no, d.state,
            d.claimed_at, v_now, d.rail_reference, d.rail_code, d.error_code,
            d.error_message, d.latency_ms, p_worker_id, d.ledger_month
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

-- public.deny_append_only_mutation() (owner outbox_owner)
CREATE OR REPLACE FUNCTION public.deny_append_only_mutation()
 RETURNS trigger
 LANGUAGE plpgsql
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'P0001',
              HINT = 'Record a new entry instead of changing history.';
END
$function$;

-- public.deny_outbox_attempts_mutation() (owner outbox_owner)
CREATE OR REPLACE FUNCTION public.deny_outbox_attempts_mutation()
 RETURNS trigger
 LANGUAGE plpgsql
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
BEGIN
    RAISE EXCEPTION 'payment_outbox_attempts is append-only: % refused', TG_OP
        USING ERRCODE = 'P0001',
              HINT = 'Record a new attempt instead of changing history.';
END
$function$;

-- public.enqueue_payment_outbox(text,text,text,text,jsonb) (owner outbox_owner, SECURITY DEFINER)
CREATE OR REPLACE FUNCTION public.enqueue_payment_outbox(p_instruction_id text, p_participant_id text, p_idempotency_key text, p_rail_type text, p_payload jsonb)
 RETURNS TABLE(outbox_id uuid, sequence_id bigint, created boolean)
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'pg_temp'
 SET lock_timeout TO '5s'
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

-- public.enqueue_payment_outbox_batch(text[],text[],text[],text[],jsonb[]) (owner outbox_owner, SECURITY DEFINER)
CREATE OR REPLACE FUNCTION public.enqueue_payment_outbox_batch(p_instruction_ids text[], p_participant_ids text[], p_idempotency_keys text[], p_rail_types text[], p_payloads jsonb[])
 RETURNS TABLE(outbox_id uuid, sequence_id bigint, created boolean)
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'pg_temp'
 SET plan_cache_mode TO 'force_custom_plan'
 SET lock_timeout TO '5s'
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

-- public.notify_outbox_items_enqueued() (owner outbox_owner)
CREATE OR REPLACE FUNCTION public.notify_outbox_items_enqueued()
 RETURNS trigger
 LANGUAGE plpgsql
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
BEGIN
    PERFORM pg_catalog.pg_notify('outbox_items_enqueued', '');
    RETURN NULL;
END
$function$;

-- public.outbox_announce_rails(text,text[],timestamp with time zone) (owner outbox_owner)
CREATE OR REPLACE FUNCTION public.outbox_announce_rails(p_worker_id text, p_rail_types text[], p_now timestamp with time zone)
 RETURNS void
 LANGUAGE plpgsql
 SET search_path TO 'pg_catalog', 'pg_temp'
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

-- public.outbox_archived_ledger_rows(date) (owner outbox_owner, SECURITY DEFINER)
CREATE OR REPLACE FUNCTION public.outbox_archived_ledger_rows(p_month date)
 RETURNS TABLE(source text, row_key text, fields text[], row_no bigint, digest bytea, written_by_xact xid8)
 LANGUAGE plpgsql
 STABLE SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'pg_temp'
 SET lock_timeout TO '5s'
AS $function$
BEGIN
    RETURN QUERY EXECUTE format(
        'SELECT ''payment_outbox_attempts''::text, a.attempt_id::text, '
            'public.outbox_attempt_fields(ROW(a.*)::public.payment_outbox_attempts), '
            'd.row_no, d.digest, d.written_by_xact '
        'FROM %s AS a '
        'LEFT JOIN public.%I AS d '
            'ON d.source = ''payment_outbox_attempts'' AND d.row_key = a.attempt_id::text '
        'ORDER BY d.row_no NULLS LAST, a.attempt_id',
        public.outbox_require_detached_month(p_month),
        coalesce(public.outbox_ledger_digests_partition(p_month), 'outbox_row_digests'));
END
$function$;

-- public.outbox_attempt_fields(public.payment_outbox_attempts) (owner outbox_owner)
CREATE OR REPLACE FUNCTION public.outbox_attempt_fields(a public.payment_outbox_attempts)
 RETURNS text[]
 LANGUAGE plpgsql
 STABLE
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
BEGIN
    RETURN ARRAY[
        'payment_outbox_attempts/1', a.attempt_id::text, a.outbox_id::text, a.instruction_id,
        a.participant_id, a.sequence_id::text, a.idempotency_key, a.rail_type,
        -- The payload by its hash: the bundle and the checkpoints carry no account numbers,
        -- and a payload rewritten still changes the row's digest.
        pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to(a.payload::text, 'UTF8')), 'hex'),
        a.attempt_no::text, a.state::text, public.outbox_utc_text(a.claimed_at),
        public.outbox_utc_text(a.completed_at), a.rail_reference, a.rail_code, a.error_code,
        a.error_message, a.latency_ms::text, a.worker_id, a.recorded_by
    ];
END
$function$;

-- public.outbox_control_character_at(text[]) (owner outbox_owner)
CREATE OR REPLACE FUNCTION public.outbox_control_character_at(p_values text[])
 RETURNS bigint
 LANGUAGE plpgsql
 IMMUTABLE
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
BEGIN
    RETURN (
        SELECT min(v.position)
        FROM unnest(p_values) WITH ORDINALITY AS v(value, position)
        WHERE v.value ~ '[\u0001-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]'
    );
END
$function$;

-- public.outbox_current_ledger_month() (owner outbox_owner)
CREATE OR REPLACE FUNCTION public.outbox_current_ledger_month()
 RETURNS date
 LANGUAGE plpgsql
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
DECLARE
    v_month date := date_trunc('month', clock_timestamp() AT TIME ZONE 'UTC')::date;
BEGIN
    IF to_regclass('public.' || public.outbox_ledger_partition(v_month)) IS NULL THEN
        RAISE EXCEPTION 'the ledger has no partition for %', to_char(v_month, 'YYYY-MM')
            USING ERRCODE = 'P7008',
                  HINT = 'Run outbox-db migrate, or a relayer (its lease repair prepares '
                      'months ahead); nothing was written.';
    END IF;
    RETURN v_month;
END
$function$;

-- public.outbox_detach_ledger_month(date,integer) (owner outbox_owner, SECURITY DEFINER)
CREATE OR REPLACE FUNCTION public.outbox_detach_ledger_month(p_month date, p_keep_months integer)
 RETURNS bigint
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'pg_temp'
 SET lock_timeout TO '1s'
AS $function$
DECLARE
    v_part record;
    v_kept_from date;
    v_open bigint;
    v_rows bigint;
BEGIN
    PERFORM public.outbox_require_range('keep_months', p_keep_months, 3, 1200);
    SELECT * INTO v_part FROM public.outbox_ledger_month_partition(p_month);
    IF NOT v_part.attached THEN
        RAISE EXCEPTION 'ledger month % is already detached', p_month
            USING ERRCODE = 'P7007', COLUMN = 'ledger_month',
                  HINT = 'outbox-db archive finishes its archive.';
    END IF;
    v_kept_from := (date_trunc('month', clock_timestamp() AT TIME ZONE 'UTC')
        - make_interval(months => p_keep_months))::date;
    IF v_part.range_end > v_kept_from THEN
        RAISE EXCEPTION 'ledger month % is within the % months kept (from %)',
                p_month, p_keep_months, v_kept_from
            USING ERRCODE = 'P7007', COLUMN = 'ledger_month';
    END IF;
    SELECT count(*) INTO v_open FROM public.payment_outbox_pending AS p
    WHERE p.ledger_month = p_month;
    IF v_open > 0 THEN
        RAISE EXCEPTION '% items of ledger month % are still pending', v_open, p_month
            USING ERRCODE = 'P7007', COLUMN = 'ledger_month',
                  HINT = 'A month leaves the ledger once every item of it is finished.';
    END IF;
    EXECUTE format('ALTER TABLE public.payment_outbox_attempts DETACH PARTITION %s',
        v_part.partition);
    IF p_month <> '-infinity' THEN
        EXECUTE format('ALTER TABLE public.outbox_row_digests DETACH PARTITION public.%I',
            public.outbox_ledger_digests_partition(p_month));
    END IF;
    EXECUTE format('SELECT count(*) FROM %s', v_part.partition) INTO v_rows;
    RETURN v_rows;
END
$function$;

-- public.outbox_digest_attempts() (owner outbox_owner)
CREATE OR REPLACE FUNCTION public.outbox_digest_attempts()
 RETURNS trigger
 LANGUAGE plpgsql
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
BEGIN
    INSERT INTO public.outbox_row_digests (source, row_key, digest, ledger_month)
    SELECT 'payment_outbox_attempts', n.attempt_id::text,
        public.outbox_row_digest(public.outbox_attempt_fields(n)), n.ledger_month
    FROM new_rows AS n;
    RETURN NULL;
END
$function$;

-- public.outbox_digest_inserted_rows() (owner outbox_owner)
CREATE OR REPLACE FUNCTION public.outbox_digest_inserted_rows()
 RETURNS trigger
 LANGUAGE plpgsql
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
BEGIN
    EXECUTE format(
        'INSERT INTO public.outbox_row_digests (source, row_key, digest) '
            'SELECT %L, n.%I::text, public.outbox_row_digest(public.%I(n)) FROM new_rows AS n',
        TG_TABLE_NAME, TG_ARGV[0], TG_ARGV[1]);
    RETURN NULL;
END
$function$;

-- public.outbox_drop_archived_ledger_month(date) (owner outbox_owner, SECURITY DEFINER)
CREATE OR REPLACE FUNCTION public.outbox_drop_archived_ledger_month(p_month date)
 RETURNS bigint
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'pg_temp'
 SET lock_timeout TO '5s'
AS $function$
DECLARE
    v_partition regclass := public.outbox_require_detached_month(p_month);
    v_recorded bigint;
    v_rows bigint;
BEGIN
    SELECT l.row_count INTO v_recorded
    FROM public.outbox_ledger_archives AS l
    WHERE l.ledger_month = p_month;
    EXECUTE format('SELECT count(*) FROM %s', v_partition) INTO v_rows;
    IF v_recorded IS DISTINCT FROM v_rows THEN
        RAISE EXCEPTION 'ledger month % has % rows and % recorded in an archive',
                p_month, v_rows, coalesce(v_recorded::text, 'none')
            USING ERRCODE = 'P7007', COLUMN = 'ledger_month',
                  HINT = 'outbox-db archive records its file first.';
    END IF;
    EXECUTE format('DROP TABLE %s', v_partition);
    IF p_month <> '-infinity' THEN
        EXECUTE format('DROP TABLE public.%I', public.outbox_ledger_digests_partition(p_month));
    END IF;
    RETURN v_rows;
END
$function$;

-- public.outbox_enqueue_item(text,text,text,text,jsonb) (owner outbox_owner)
CREATE OR REPLACE FUNCTION public.outbox_enqueue_item(p_instruction_id text, p_participant_id text, p_idempotency_key text, p_rail_type text, p_payload jsonb)
 RETURNS TABLE(outbox_id uuid, sequence_id bigint, created boolean)
 LANGUAGE plpgsql
 SET search_path TO 'pg_catalog', 'pg_temp'
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

-- public.outbox_expired_lease_count() (owner outbox_owner, SECURITY DEFINER)
CREATE OR REPLACE FUNCTION public.outbox_expired_lease_count()
 RETURNS bigint
 LANGUAGE sql
 STABLE SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
    SELECT count(*)
    FROM public.payment_outbox_pending AS p
    WHERE p.lease_expires_at <= pg_catalog.now();
$function$;

-- public.outbox_invalid_identifier_at(text[]) (owner outbox_owner)
CREATE OR REPLACE FUNCTION public.outbox_invalid_identifier_at(p_values text[])
 RETURNS bigint
 LANGUAGE plpgsql
 IMMUTABLE
 SET search_path TO 'pg_catalog', 'pg_temp'
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

-- public.outbox_item_of_key(uuid) (owner outbox_owner)
CREATE OR REPLACE FUNCTION public.outbox_item_of_key(p_outbox_id uuid)
 RETURNS TABLE(participant_id text, sequence_id bigint, payload jsonb)
 LANGUAGE sql
 STABLE
 SET search_path TO 'pg_catalog', 'pg_temp'
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

-- public.outbox_lease_items(uuid[],text,integer,timestamp with time zone) (owner outbox_owner)
CREATE OR REPLACE FUNCTION public.outbox_lease_items(p_outbox_ids uuid[], p_worker_id text, p_lease_seconds integer, p_now timestamp with time zone)
 RETURNS TABLE(outbox_id uuid, instruction_id text, participant_id text, sequence_id bigint, idempotency_key text, rail_type text, payload jsonb, attempt_count integer, lease_token uuid, lease_expires_at timestamp with time zone, last_error_code text)
 LANGUAGE plpgsql
 SET search_path TO 'pg_catalog', 'pg_temp'
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
            WHERE a.outbox_id = p.outbox_id AND a.ledger_month = p.ledger_month
                AND a.attempt_no = p.attempt_count
        ) END;
END
$function$;

-- public.outbox_ledger_archive_fields(public.outbox_ledger_archives) (owner outbox_owner)
CREATE OR REPLACE FUNCTION public.outbox_ledger_archive_fields(r public.outbox_ledger_archives)
 RETURNS text[]
 LANGUAGE plpgsql
 STABLE
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
BEGIN
    RETURN ARRAY[
        -- The month as ISO text whatever the session's DateStyle, as outbox_utc_text does times.
        'outbox_ledger_archives/1', r.entry_no::text,
        CASE WHEN r.ledger_month = '-infinity' THEN '-infinity'
            ELSE pg_catalog.to_char(r.ledger_month, 'YYYY-MM-DD') END,
        r.file_name, r.row_count::text, r.sha256, r.archived_by,
        public.outbox_utc_text(r.archived_at)
    ];
END
$function$;

-- public.outbox_ledger_digests_partition(date) (owner outbox_owner)
CREATE OR REPLACE FUNCTION public.outbox_ledger_digests_partition(p_month date)
 RETURNS text
 LANGUAGE sql
 STABLE STRICT
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
    SELECT CASE WHEN p_month <> '-infinity'
        THEN 'outbox_row_digests_' || pg_catalog.to_char(p_month, 'YYYY_MM') END;
$function$;

-- public.outbox_ledger_month_partition(date) (owner outbox_owner)
CREATE OR REPLACE FUNCTION public.outbox_ledger_month_partition(p_month date)
 RETURNS TABLE(partition regclass, attached boolean, range_end date)
 LANGUAGE plpgsql
 STABLE
 SET search_path TO 'pg_catalog', 'pg_temp'
 SET "DateStyle" TO 'ISO, YMD'
AS $function$
DECLARE
    v_partition regclass;
BEGIN
    IF p_month IS NULL OR (p_month <> '-infinity' AND p_month <> date_trunc('month', p_month)) THEN
        RAISE EXCEPTION 'a ledger month is the first day of a month, or -infinity (the legacy ledger)'
            USING ERRCODE = '22023', COLUMN = 'ledger_month';
    END IF;
    v_partition := to_regclass('public.' || public.outbox_ledger_partition(p_month));
    IF v_partition IS NULL THEN
        RAISE EXCEPTION 'the ledger has no partition for %', p_month
            USING ERRCODE = 'P7007', COLUMN = 'ledger_month',
                  HINT = 'It was never made, or it was archived and dropped.';
    END IF;
    RETURN QUERY
    SELECT v_partition, i.inhrelid IS NOT NULL,
        CASE WHEN p_month <> '-infinity' THEN (p_month + interval '1 month')::date
            ELSE substring(pg_get_expr(c.relpartbound, c.oid) FROM 'TO \(''([0-9-]+)''\)')::date
        END
    FROM pg_class AS c
    LEFT JOIN pg_inherits AS i
        ON i.inhrelid = c.oid AND i.inhparent = 'public.payment_outbox_attempts'::regclass
    WHERE c.oid = v_partition;
END
$function$;

-- public.outbox_ledger_months() (owner outbox_owner, SECURITY DEFINER)
CREATE OR REPLACE FUNCTION public.outbox_ledger_months()
 RETURNS TABLE(ledger_month text, partition_name text, attached boolean, range_end date, archive_file text, archive_rows bigint, archive_sha256 text)
 LANGUAGE sql
 STABLE SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'pg_temp'
 SET lock_timeout TO '5s'
 SET "DateStyle" TO 'ISO, YMD'
AS $function$
    WITH partitions AS (
        SELECT c.oid, c.relname,
            CASE WHEN c.relname = 'payment_outbox_attempts_legacy' THEN '-infinity'::date
                ELSE to_date(substring(c.relname FROM '(\d{4}_\d{2})$'), 'YYYY_MM') END AS month
        FROM pg_class AS c
        JOIN pg_namespace AS n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' AND c.relkind = 'r'
          AND c.relname ~ '^payment_outbox_attempts_(legacy|\d{4}_\d{2})$'
    )
    SELECT CASE WHEN m.month = '-infinity' THEN 'legacy' ELSE to_char(m.month, 'YYYY-MM') END,
        p.relname, i.inhrelid IS NOT NULL,
        CASE WHEN m.month <> '-infinity' THEN (m.month + interval '1 month')::date
            WHEN i.inhrelid IS NOT NULL THEN substring(
                pg_get_expr(p_class.relpartbound, p_class.oid) FROM 'TO \(''([0-9-]+)''\)'
            )::date
        END,
        l.file_name, l.row_count, l.sha256
    FROM (
        SELECT p.month FROM partitions AS p
        UNION
        SELECT l.ledger_month FROM public.outbox_ledger_archives AS l
    ) AS m
    LEFT JOIN partitions AS p ON p.month = m.month
    LEFT JOIN pg_class AS p_class ON p_class.oid = p.oid
    LEFT JOIN pg_inherits AS i
        ON i.inhrelid = p.oid AND i.inhparent = 'public.payment_outbox_attempts'::regclass
    LEFT JOIN public.outbox_ledger_archives AS l ON l.ledger_month = m.month
    ORDER BY m.month;
$function$;

-- public.outbox_ledger_partition(date) (owner outbox_owner)
CREATE OR REPLACE FUNCTION public.outbox_ledger_partition(p_month date)
 RETURNS text
 LANGUAGE sql
 STABLE STRICT
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
    SELECT CASE WHEN p_month = '-infinity' THEN 'payment_outbox_attempts_legacy'
        ELSE 'payment_outbox_attempts_' || pg_catalog.to_char(p_month, 'YYYY_MM') END;
$function$;

-- public.outbox_ledger_rows() (owner outbox_owner, SECURITY DEFINER)
CREATE OR REPLACE FUNCTION public.outbox_ledger_rows()
 RETURNS TABLE(source text, row_key text, fields text[], row_no bigint, digest bytea, written_by_xact xid8)
 LANGUAGE sql
 STABLE SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'pg_temp'
 SET lock_timeout TO '5s'
AS $function$
    SELECT coalesce(r.source, d.source), coalesce(r.row_key, d.row_key), r.fields, d.row_no,
        d.digest, d.written_by_xact
    FROM public.outbox_tamper_evident_rows() AS r
    FULL JOIN public.outbox_row_digests AS d
        ON d.source = r.source AND d.row_key = r.row_key
    ORDER BY d.row_no NULLS LAST, 1, 2;
$function$;

-- public.outbox_lock_items_for_snapshot(uuid[]) (owner outbox_owner)
CREATE OR REPLACE FUNCTION public.outbox_lock_items_for_snapshot(p_outbox_ids uuid[])
 RETURNS void
 LANGUAGE plpgsql
 SET search_path TO 'pg_catalog', 'pg_temp'
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

-- public.outbox_make_ledger_partition(date) (owner outbox_owner)
CREATE OR REPLACE FUNCTION public.outbox_make_ledger_partition(p_month date)
 RETURNS text
 LANGUAGE plpgsql
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
DECLARE
    v_parent text;
    v_name text;
    v_guard text;
BEGIN
    FOR v_parent, v_name, v_guard IN VALUES
        ('payment_outbox_attempts', public.outbox_ledger_partition(p_month),
            'deny_outbox_attempts_mutation'),
        ('outbox_row_digests', public.outbox_ledger_digests_partition(p_month),
            'deny_append_only_mutation')
    LOOP
        EXECUTE format(
            'CREATE TABLE public.%I (LIKE public.%I INCLUDING DEFAULTS INCLUDING CONSTRAINTS)',
            v_name, v_parent);
        EXECUTE format('REVOKE ALL ON public.%I FROM PUBLIC', v_name);
        EXECUTE format(
            'CREATE TRIGGER %I BEFORE UPDATE OR DELETE OR TRUNCATE ON public.%I '
                'FOR EACH STATEMENT EXECUTE FUNCTION public.%I()',
            v_parent || '_append_only', v_name, v_guard);
        EXECUTE format(
            'ALTER TABLE public.%I ATTACH PARTITION public.%I FOR VALUES FROM (%L) TO (%L)',
            v_parent, v_name, p_month, (p_month + interval '1 month')::date);
    END LOOP;
    RETURN public.outbox_ledger_partition(p_month);
END
$function$;

-- public.outbox_operator_log_fields(public.outbox_operator_log) (owner outbox_owner)
CREATE OR REPLACE FUNCTION public.outbox_operator_log_fields(o public.outbox_operator_log)
 RETURNS text[]
 LANGUAGE plpgsql
 STABLE
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
BEGIN
    RETURN ARRAY[
        'outbox_operator_log/1', o.entry_no::text, o.outbox_id::text, o.redrive_outbox_id::text,
        o.instruction_id, o.redrive_idempotency_key, o.redrive_generation::text,
        o.requested_by, public.outbox_utc_text(o.requested_at), o.reason
    ];
END
$function$;

-- public.outbox_prepare_ledger_months(integer) (owner outbox_owner, SECURITY DEFINER)
CREATE OR REPLACE FUNCTION public.outbox_prepare_ledger_months(p_months_ahead integer)
 RETURNS SETOF text
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'pg_temp'
 SET lock_timeout TO '1s'
AS $function$
DECLARE
    v_first date := date_trunc('month', clock_timestamp() AT TIME ZONE 'UTC')::date;
    v_month date;
    v_name text;
BEGIN
    PERFORM public.outbox_require_range('months_ahead', p_months_ahead, 0, 24);
    FOR v_month IN
        SELECT m::date
        FROM generate_series(v_first, v_first + make_interval(months => p_months_ahead),
            interval '1 month') AS m
    LOOP
        v_name := public.outbox_ledger_partition(v_month);
        CONTINUE WHEN to_regclass('public.' || v_name) IS NOT NULL;
        PERFORM public.outbox_make_ledger_partition(v_month);
        RETURN NEXT v_name;
    END LOOP;
END
$function$;

-- public.outbox_queue_depth() (owner outbox_owner, SECURITY DEFINER)
CREATE OR REPLACE FUNCTION public.outbox_queue_depth()
 RETURNS TABLE(rail_type text, due_count bigint, scheduled_count bigint, waiting_count bigint, leased_count bigint, expired_lease_count bigint, oldest_due_age_seconds double precision)
 LANGUAGE sql
 STABLE SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'pg_temp'
 SET lock_timeout TO '5s'
AS $function$
    SELECT
        p.rail_type,
        count(*) FILTER (WHERE p.claimed_by IS NULL AND NOT p.awaiting_predecessor
                           AND p.next_attempt_at <= pg_catalog.now()),
        count(*) FILTER (WHERE p.claimed_by IS NULL AND NOT p.awaiting_predecessor
                           AND p.next_attempt_at > pg_catalog.now()),
        count(*) FILTER (WHERE p.awaiting_predecessor),
        count(*) FILTER (WHERE p.lease_expires_at > pg_catalog.now()),
        count(*) FILTER (WHERE p.lease_expires_at <= pg_catalog.now()),
        coalesce(pg_catalog.date_part('epoch', pg_catalog.now() - min(p.next_attempt_at)
            FILTER (WHERE p.claimed_by IS NULL AND NOT p.awaiting_predecessor
                      AND p.next_attempt_at <= pg_catalog.now())), 0)::double precision
    FROM public.payment_outbox_pending AS p
    GROUP BY p.rail_type
    ORDER BY p.rail_type;
$function$;

-- public.outbox_rail_is_ordered(text) (owner outbox_owner)
CREATE OR REPLACE FUNCTION public.outbox_rail_is_ordered(p_rail_type text)
 RETURNS boolean
 LANGUAGE sql
 STABLE
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
    SELECT coalesce((
        SELECT o.ordered
        FROM public.outbox_rail_ordering AS o
        WHERE o.rail_type = p_rail_type
        ORDER BY o.entry_no DESC
        LIMIT 1
    ), false);
$function$;

-- public.outbox_rail_ordering_fields(public.outbox_rail_ordering) (owner outbox_owner)
CREATE OR REPLACE FUNCTION public.outbox_rail_ordering_fields(r public.outbox_rail_ordering)
 RETURNS text[]
 LANGUAGE plpgsql
 STABLE
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
BEGIN
    RETURN ARRAY[
        'outbox_rail_ordering/1', r.entry_no::text, r.rail_type, r.ordered::text,
        r.requested_by, public.outbox_utc_text(r.requested_at), r.reason
    ];
END
$function$;

-- public.outbox_recheck_waiting_item() (owner outbox_owner, SECURITY DEFINER)
CREATE OR REPLACE FUNCTION public.outbox_recheck_waiting_item()
 RETURNS trigger
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'pg_temp'
 SET lock_timeout TO '5s'
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

-- public.outbox_record_ledger_archive(date,text,text) (owner outbox_owner, SECURITY DEFINER)
CREATE OR REPLACE FUNCTION public.outbox_record_ledger_archive(p_month date, p_file_name text, p_sha256 text)
 RETURNS SETOF public.outbox_ledger_archives
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'pg_temp'
 SET lock_timeout TO '5s'
AS $function$
DECLARE
    v_rows bigint;
BEGIN
    PERFORM public.outbox_require_text('file_name', p_file_name);
    IF p_sha256 IS NULL OR p_sha256 !~ '^[0-9a-f]{64}$' THEN
        RAISE EXCEPTION 'sha256 must be 64 lowercase hex digits'
            USING ERRCODE = '22023', COLUMN = 'sha256';
    END IF;
    EXECUTE format('SELECT count(*) FROM %s', public.outbox_require_detached_month(p_month))
    INTO v_rows;
    RETURN QUERY
    INSERT INTO public.outbox_ledger_archives AS l (ledger_month, file_name, row_count, sha256)
    VALUES (p_month, p_file_name, v_rows, p_sha256)
    RETURNING l.*;
END
$function$;

-- public.outbox_register_terminal_outcomes() (owner outbox_owner)
CREATE OR REPLACE FUNCTION public.outbox_register_terminal_outcomes()
 RETURNS trigger
 LANGUAGE plpgsql
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
BEGIN
    INSERT INTO public.outbox_terminal_outcomes (outbox_id)
    SELECT n.outbox_id FROM new_rows AS n WHERE n.state IN ('DISPATCHED', 'FAILED');
    RETURN NULL;
END
$function$;

-- public.outbox_release_lane_successor() (owner outbox_owner, SECURITY DEFINER)
CREATE OR REPLACE FUNCTION public.outbox_release_lane_successor()
 RETURNS trigger
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'pg_temp'
 SET lock_timeout TO '5s'
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

-- public.outbox_release_stalled_lanes() (owner outbox_owner)
CREATE OR REPLACE FUNCTION public.outbox_release_stalled_lanes()
 RETURNS integer
 LANGUAGE plpgsql
 SET search_path TO 'pg_catalog', 'pg_temp'
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

-- public.outbox_replay(text,text,text,text,jsonb) (owner outbox_owner)
CREATE OR REPLACE FUNCTION public.outbox_replay(p_instruction_id text, p_participant_id text, p_idempotency_key text, p_rail_type text, p_payload jsonb)
 RETURNS TABLE(outbox_id uuid, sequence_id bigint, created boolean)
 LANGUAGE plpgsql
 STABLE
 SET search_path TO 'pg_catalog', 'pg_temp'
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

-- public.outbox_require_detached_month(date) (owner outbox_owner)
CREATE OR REPLACE FUNCTION public.outbox_require_detached_month(p_month date)
 RETURNS regclass
 LANGUAGE plpgsql
 STABLE
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
DECLARE
    v_part record;
BEGIN
    SELECT * INTO v_part FROM public.outbox_ledger_month_partition(p_month);
    IF v_part.attached THEN
        RAISE EXCEPTION 'ledger month % is still in the ledger', p_month
            USING ERRCODE = 'P7007', COLUMN = 'ledger_month',
                  HINT = 'outbox-db archive detaches it first.';
    END IF;
    RETURN v_part.partition;
END
$function$;

-- public.outbox_require_latency(integer,interval) (owner outbox_owner)
CREATE OR REPLACE FUNCTION public.outbox_require_latency(p_latency_ms integer, p_lease interval)
 RETURNS integer
 LANGUAGE plpgsql
 IMMUTABLE
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
BEGIN
    IF p_latency_ms > extract(epoch FROM p_lease) * 1000 THEN
        RAISE EXCEPTION 'latency_ms must not be longer than the lease it was measured in'
            USING ERRCODE = '22023', COLUMN = 'latency_ms';
    END IF;
    RETURN p_latency_ms;
END
$function$;

-- public.outbox_require_outcome_text(text[],text[],text[],text[]) (owner outbox_owner)
CREATE OR REPLACE FUNCTION public.outbox_require_outcome_text(p_rail_references text[], p_rail_codes text[], p_error_codes text[], p_error_messages text[])
 RETURNS void
 LANGUAGE plpgsql
 IMMUTABLE
 SET search_path TO 'pg_catalog', 'pg_temp'
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

-- public.outbox_require_payload(jsonb) (owner outbox_owner)
CREATE OR REPLACE FUNCTION public.outbox_require_payload(p_payload jsonb)
 RETURNS void
 LANGUAGE plpgsql
 IMMUTABLE
 SET search_path TO 'pg_catalog', 'pg_temp'
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

-- public.outbox_require_range(text,integer,integer,integer) (owner outbox_owner)
CREATE OR REPLACE FUNCTION public.outbox_require_range(p_argument text, p_value integer, p_low integer, p_high integer)
 RETURNS void
 LANGUAGE plpgsql
 IMMUTABLE
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
BEGIN
    IF p_value IS NULL OR p_value < p_low OR p_value > p_high THEN
        RAISE EXCEPTION '% must be between % and %', p_argument, p_low, p_high
            USING ERRCODE = '22023', COLUMN = p_argument;
    END IF;
END
$function$;

-- public.outbox_require_service_key(text) (owner outbox_owner)
CREATE OR REPLACE FUNCTION public.outbox_require_service_key(p_idempotency_key text)
 RETURNS void
 LANGUAGE plpgsql
 IMMUTABLE
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
BEGIN
    PERFORM public.outbox_require_text('idempotency_key', p_idempotency_key);
    IF starts_with(p_idempotency_key, 'outbox:') THEN
        RAISE EXCEPTION 'idempotency_key must not start with "outbox:" (the outbox''s own keys)'
            USING ERRCODE = '22023', COLUMN = 'idempotency_key';
    END IF;
END
$function$;

-- public.outbox_require_text(text,text) (owner outbox_owner)
CREATE OR REPLACE FUNCTION public.outbox_require_text(p_argument text, p_value text)
 RETURNS void
 LANGUAGE plpgsql
 IMMUTABLE
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
BEGIN
    IF public.outbox_invalid_identifier_at(ARRAY[p_value]) IS NOT NULL THEN
        RAISE EXCEPTION '% must be a non-blank string of at most 255 characters, '
            'without control characters', p_argument
            USING ERRCODE = '22023', COLUMN = p_argument;
    END IF;
END
$function$;

-- public.outbox_row_digest(text[]) (owner outbox_owner)
CREATE OR REPLACE FUNCTION public.outbox_row_digest(p_fields text[])
 RETURNS bytea
 LANGUAGE plpgsql
 STABLE STRICT
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
DECLARE
    v_field text;
    v_encoded text := '';
BEGIN
    FOREACH v_field IN ARRAY p_fields LOOP  -- in order, as outbox_evidence.ledger encodes
        v_encoded := v_encoded || CASE
            WHEN v_field IS NULL THEN '-'
            ELSE pg_catalog.octet_length(pg_catalog.convert_to(v_field, 'UTF8'))::text
                || ':' || v_field
        END;
    END LOOP;
    RETURN pg_catalog.sha256(pg_catalog.convert_to(v_encoded, 'UTF8'));
END
$function$;

-- public.outbox_scope_unconfigured_rail() (owner outbox_owner)
CREATE OR REPLACE FUNCTION public.outbox_scope_unconfigured_rail()
 RETURNS trigger
 LANGUAGE plpgsql
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
BEGIN
    INSERT INTO public.outbox_scoped_rails (rail_type, announced_by, announced_at, reason)
    SELECT NEW.rail_type, coalesce(NEW.worker_id, 'unknown'), clock_timestamp(),
        'RAIL_NOT_CONFIGURED recorded by a relayer without the rail'
    WHERE NOT EXISTS (
        SELECT FROM public.outbox_established_rails AS e WHERE e.rail_type = NEW.rail_type
    )
    ON CONFLICT (rail_type) DO NOTHING;
    RETURN NULL;
END
$function$;

-- public.outbox_sealable_digests(xid8) (owner outbox_owner, SECURITY DEFINER)
CREATE OR REPLACE FUNCTION public.outbox_sealable_digests(p_after xid8)
 RETURNS TABLE(horizon xid8, row_no bigint, source text, row_key text, digest bytea, written_by_xact xid8, fields text[])
 LANGUAGE sql
 STABLE SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'pg_temp'
 SET lock_timeout TO '5s'
AS $function$
    WITH snapshot AS (
        SELECT pg_catalog.pg_snapshot_xmin(pg_catalog.pg_current_snapshot()) AS horizon
    )
    SELECT s.horizon, d.row_no, d.source, d.row_key, d.digest, d.written_by_xact, r.fields
    FROM snapshot AS s
    LEFT JOIN public.outbox_row_digests AS d
        ON d.written_by_xact >= p_after
        AND d.written_by_xact < s.horizon
    LEFT JOIN public.outbox_tamper_evident_rows() AS r
        ON r.source = d.source AND r.row_key = d.row_key
    ORDER BY d.row_no;
$function$;

-- public.outbox_tamper_evident_rows() (owner outbox_owner)
CREATE OR REPLACE FUNCTION public.outbox_tamper_evident_rows()
 RETURNS TABLE(source text, row_key text, fields text[])
 LANGUAGE sql
 STABLE
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
    SELECT 'payment_outbox_attempts', a.attempt_id::text, public.outbox_attempt_fields(a)
    FROM public.payment_outbox_attempts AS a
    UNION ALL
    SELECT 'outbox_operator_log', o.entry_no::text, public.outbox_operator_log_fields(o)
    FROM public.outbox_operator_log AS o
    UNION ALL
    SELECT 'outbox_rail_ordering', r.entry_no::text, public.outbox_rail_ordering_fields(r)
    FROM public.outbox_rail_ordering AS r
    UNION ALL
    SELECT 'outbox_ledger_archives', l.entry_no::text, public.outbox_ledger_archive_fields(l)
    FROM public.outbox_ledger_archives AS l;
$function$;

-- public.outbox_trace_contexts(text,uuid[]) (owner outbox_owner, SECURITY DEFINER)
CREATE OR REPLACE FUNCTION public.outbox_trace_contexts(p_worker_id text, p_outbox_ids uuid[])
 RETURNS TABLE(outbox_id uuid, trace_context text)
 LANGUAGE sql
 STABLE SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'pg_temp'
 SET lock_timeout TO '5s'
AS $function$
    SELECT p.outbox_id, p.trace_context
    FROM public.payment_outbox_pending AS p
    WHERE p.outbox_id = ANY (p_outbox_ids)
      AND p.claimed_by = p_worker_id
      AND p.trace_context IS NOT NULL;
$function$;

-- public.outbox_utc_text(timestamp with time zone) (owner outbox_owner)
CREATE OR REPLACE FUNCTION public.outbox_utc_text(p_at timestamp with time zone)
 RETURNS text
 LANGUAGE plpgsql
 STABLE
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
BEGIN
    RETURN pg_catalog.to_char(p_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"');
END
$function$;

-- public.outbox_valid_traceparent(text) (owner outbox_owner)
CREATE OR REPLACE FUNCTION public.outbox_valid_traceparent(p_value text)
 RETURNS text
 LANGUAGE sql
 IMMUTABLE PARALLEL SAFE
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
    SELECT CASE
        WHEN p_value ~ '^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$'
         AND substr(p_value, 4, 32) <> repeat('0', 32)
         AND substr(p_value, 37, 16) <> repeat('0', 16)
        THEN p_value
    END;
$function$;

-- public.redrive_payment_outbox(uuid,text) (owner outbox_owner, SECURITY DEFINER)
CREATE OR REPLACE FUNCTION public.redrive_payment_outbox(p_outbox_id uuid, p_reason text)
 RETURNS TABLE(outbox_id uuid, redrive_outbox_id uuid, idempotency_key text, created boolean, requested_by text, requested_at timestamp with time zone, reason text)
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'pg_temp'
 SET lock_timeout TO '5s'
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

-- public.release_outbox_leases(text,uuid[],uuid[]) (owner outbox_owner, SECURITY DEFINER)
CREATE OR REPLACE FUNCTION public.release_outbox_leases(p_worker_id text, p_outbox_ids uuid[], p_lease_tokens uuid[])
 RETURNS TABLE(outbox_id uuid)
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'pg_temp'
 SET lock_timeout TO '5s'
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

-- public.renew_outbox_lease(uuid,uuid,text,integer) (owner outbox_owner, SECURITY DEFINER)
CREATE OR REPLACE FUNCTION public.renew_outbox_lease(p_outbox_id uuid, p_lease_token uuid, p_worker_id text, p_lease_seconds integer)
 RETURNS timestamp with time zone
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'pg_temp'
 SET lock_timeout TO '5s'
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

-- public.repair_expired_leases(integer,text) (owner outbox_owner, SECURITY DEFINER)
CREATE OR REPLACE FUNCTION public.repair_expired_leases(p_batch_size integer, p_worker_id text)
 RETURNS TABLE(outbox_id uuid, attempt_no integer, new_state public.outbox_attempt_state, previous_holder text, lease_expired_at timestamp with time zone)
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'pg_temp'
 SET lock_timeout TO '5s'
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
            e.lease_expires_at, e.ledger_month
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
            WHERE a.outbox_id = x.outbox_id AND a.ledger_month = x.ledger_month
        ) AS n
    ),
    recorded AS (
        INSERT INTO public.payment_outbox_attempts (
            outbox_id, instruction_id, participant_id, sequence_id, idempotency_key,
            rail_type, payload, attempt_no, state, claimed_at, completed_at,
            error_code, error_message, worker_id, ledger_month
        )
        SELECT d.outbox_id, d.instruction_id, d.participant_id, d.sequence_id,
            d.idempotency_key, d.rail_type, d.payload, d.attempt_no, d.state,
            d.claimed_at, v_now,
            CASE WHEN d.state = 'FAILED' THEN 'RETRY_CEILING_REACHED'
                ELSE 'LEASE_EXPIRED' END,
            'lease expired; recorded by lease repair worker ' || p_worker_id,
            d.claimed_by, d.ledger_month
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

-- public.set_outbox_rail_ordering(text,boolean,text) (owner outbox_owner, SECURITY DEFINER)
CREATE OR REPLACE FUNCTION public.set_outbox_rail_ordering(p_rail_type text, p_ordered boolean, p_reason text)
 RETURNS TABLE(entry_no bigint, rail_type text, ordered boolean, requested_by text, requested_at timestamp with time zone, reason text)
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'pg_temp'
 SET lock_timeout TO '5s'
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

-- Grants and role memberships -------------------------------------------------------------------
GRANT EXECUTE ON FUNCTION public.claim_outbox_batch(integer,text,integer) TO outbox_owner;
GRANT EXECUTE ON FUNCTION public.claim_outbox_batch(integer,text,integer) TO symphony_executor;
GRANT EXECUTE ON FUNCTION public.claim_outbox_rails(text,integer,text[],integer[]) TO outbox_owner;
GRANT EXECUTE ON FUNCTION public.claim_outbox_rails(text,integer,text[],integer[]) TO symphony_executor;
GRANT EXECUTE ON FUNCTION public.complete_outbox_attempt(uuid,uuid,text,text,text,text,text,text,integer,integer) TO outbox_owner;
GRANT EXECUTE ON FUNCTION public.complete_outbox_attempt(uuid,uuid,text,text,text,text,text,text,integer,integer) TO symphony_executor;
GRANT EXECUTE ON FUNCTION public.complete_outbox_attempts(text,uuid[],uuid[],text[],text[],text[],text[],text[],integer[],integer[]) TO outbox_owner;
GRANT EXECUTE ON FUNCTION public.complete_outbox_attempts(text,uuid[],uuid[],text[],text[],text[],text[],text[],integer[],integer[]) TO symphony_executor;
GRANT EXECUTE ON FUNCTION public.deny_append_only_mutation() TO outbox_owner;
GRANT EXECUTE ON FUNCTION public.deny_outbox_attempts_mutation() TO outbox_owner;
GRANT EXECUTE ON FUNCTION public.enqueue_payment_outbox(text,text,text,text,jsonb) TO outbox_owner;
GRANT EXECUTE ON FUNCTION public.enqueue_payment_outbox(text,text,text,text,jsonb) TO symphony_executor;
GRANT EXECUTE ON FUNCTION public.enqueue_payment_outbox(text,text,text,text,jsonb) TO symphony_producer;
GRANT EXECUTE ON FUNCTION public.enqueue_payment_outbox_batch(text[],text[],text[],text[],jsonb[]) TO outbox_owner;
GRANT EXECUTE ON FUNCTION public.enqueue_payment_outbox_batch(text[],text[],text[],text[],jsonb[]) TO symphony_executor;
GRANT EXECUTE ON FUNCTION public.enqueue_payment_outbox_batch(text[],text[],text[],text[],jsonb[]) TO symphony_producer;
GRANT EXECUTE ON FUNCTION public.notify_outbox_items_enqueued() TO outbox_owner;
GRANT EXECUTE ON FUNCTION public.outbox_announce_rails(text,text[],timestamp with time zone) TO outbox_owner;
GRANT EXECUTE ON FUNCTION public.outbox_archived_ledger_rows(date) TO outbox_owner;
GRANT EXECUTE ON FUNCTION public.outbox_archived_ledger_rows(date) TO symphony_operator;
GRANT EXECUTE ON FUNCTION public.outbox_attempt_fields(public.payment_outbox_attempts) TO outbox_owner;
GRANT EXECUTE ON FUNCTION public.outbox_control_character_at(text[]) TO outbox_owner;
GRANT EXECUTE ON FUNCTION public.outbox_current_ledger_month() TO outbox_owner;
GRANT EXECUTE ON FUNCTION public.outbox_detach_ledger_month(date,integer) TO outbox_owner;
GRANT EXECUTE ON FUNCTION public.outbox_detach_ledger_month(date,integer) TO symphony_operator;
GRANT EXECUTE ON FUNCTION public.outbox_digest_attempts() TO outbox_owner;
GRANT EXECUTE ON FUNCTION public.outbox_digest_inserted_rows() TO outbox_owner;
GRANT EXECUTE ON FUNCTION public.outbox_drop_archived_ledger_month(date) TO outbox_owner;
GRANT EXECUTE ON FUNCTION public.outbox_drop_archived_ledger_month(date) TO symphony_operator;
GRANT EXECUTE ON FUNCTION public.outbox_enqueue_item(text,text,text,text,jsonb) TO outbox_owner;
GRANT EXECUTE ON FUNCTION public.outbox_expired_lease_count() TO outbox_owner;
GRANT EXECUTE ON FUNCTION public.outbox_expired_lease_count() TO symphony_executor;
GRANT EXECUTE ON FUNCTION public.outbox_invalid_identifier_at(text[]) TO outbox_owner;
GRANT EXECUTE ON FUNCTION public.outbox_item_of_key(uuid) TO outbox_owner;
GRANT EXECUTE ON FUNCTION public.outbox_lease_items(uuid[],text,integer,timestamp with time zone) TO outbox_owner;
GRANT EXECUTE ON FUNCTION public.outbox_ledger_archive_fields(public.outbox_ledger_archives) TO outbox_owner;
GRANT EXECUTE ON FUNCTION public.outbox_ledger_digests_partition(date) TO outbox_owner;
GRANT EXECUTE ON FUNCTION public.outbox_ledger_month_partition(date) TO outbox_owner;
GRANT EXECUTE ON FUNCTION public.outbox_ledger_months() TO outbox_owner;
GRANT EXECUTE ON FUNCTION public.outbox_ledger_months() TO symphony_auditor;
GRANT EXECUTE ON FUNCTION public.outbox_ledger_months() TO symphony_operator;
GRANT EXECUTE ON FUNCTION public.outbox_ledger_months() TO symphony_readonly;
GRANT EXECUTE ON FUNCTION public.outbox_ledger_partition(date) TO outbox_owner;
GRANT EXECUTE ON FUNCTION public.outbox_ledger_rows() TO outbox_owner;
GRANT EXECUTE ON FUNCTION public.outbox_ledger_rows() TO symphony_auditor;
GRANT EXECUTE ON FUNCTION public.outbox_lock_items_for_snapshot(uuid[]) TO outbox_owner;
GRANT EXECUTE ON FUNCTION public.outbox_make_ledger_partition(date) TO outbox_owner;
GRANT EXECUTE ON FUNCTION public.outbox_operator_log_fields(public.outbox_operator_log) TO outbox_owner;
GRANT EXECUTE ON FUNCTION public.outbox_prepare_ledger_months(integer) TO outbox_owner;
GRANT EXECUTE ON FUNCTION public.outbox_prepare_ledger_months(integer) TO symphony_executor;
GRANT EXECUTE ON FUNCTION public.outbox_queue_depth() TO outbox_owner;
GRANT EXECUTE ON FUNCTION public.outbox_queue_depth() TO symphony_auditor;
GRANT EXECUTE ON FUNCTION public.outbox_queue_depth() TO symphony_executor;
GRANT EXECUTE ON FUNCTION public.outbox_queue_depth() TO symphony_readonly;
GRANT EXECUTE ON FUNCTION public.outbox_rail_is_ordered(text) TO outbox_owner;
GRANT EXECUTE ON FUNCTION public.outbox_rail_ordering_fields(public.outbox_rail_ordering) TO outbox_owner;
GRANT EXECUTE ON FUNCTION public.outbox_recheck_waiting_item() TO outbox_owner;
GRANT EXECUTE ON FUNCTION public.outbox_record_ledger_archive(date,text,text) TO outbox_owner;
GRANT EXECUTE ON FUNCTION public.outbox_record_ledger_archive(date,text,text) TO symphony_operator;
GRANT EXECUTE ON FUNCTION public.outbox_register_terminal_outcomes() TO outbox_owner;
GRANT EXECUTE ON FUNCTION public.outbox_release_lane_successor() TO outbox_owner;
GRANT EXECUTE ON FUNCTION public.outbox_release_stalled_lanes() TO outbox_owner;
GRANT EXECUTE ON FUNCTION public.outbox_replay(text,text,text,text,jsonb) TO outbox_owner;
GRANT EXECUTE ON FUNCTION public.outbox_require_detached_month(date) TO outbox_owner;
GRANT EXECUTE ON FUNCTION public.outbox_require_latency(integer,interval) TO outbox_owner;
GRANT EXECUTE ON FUNCTION public.outbox_require_outcome_text(text[],text[],text[],text[]) TO outbox_owner;
GRANT EXECUTE ON FUNCTION public.outbox_require_payload(jsonb) TO outbox_owner;
GRANT EXECUTE ON FUNCTION public.outbox_require_range(text,integer,integer,integer) TO outbox_owner;
GRANT EXECUTE ON FUNCTION public.outbox_require_service_key(text) TO outbox_owner;
GRANT EXECUTE ON FUNCTION public.outbox_require_text(text,text) TO outbox_owner;
GRANT EXECUTE ON FUNCTION public.outbox_row_digest(text[]) TO outbox_owner;
GRANT EXECUTE ON FUNCTION public.outbox_scope_unconfigured_rail() TO outbox_owner;
GRANT EXECUTE ON FUNCTION public.outbox_sealable_digests(xid8) TO outbox_owner;
GRANT EXECUTE ON FUNCTION public.outbox_sealable_digests(xid8) TO symphony_auditor;
GRANT EXECUTE ON FUNCTION public.outbox_tamper_evident_rows() TO outbox_owner;
GRANT EXECUTE ON FUNCTION public.outbox_trace_contexts(text,uuid[]) TO outbox_owner;
GRANT EXECUTE ON FUNCTION public.outbox_trace_contexts(text,uuid[]) TO symphony_executor;
GRANT EXECUTE ON FUNCTION public.outbox_utc_text(timestamp with time zone) TO outbox_owner;
GRANT EXECUTE ON FUNCTION public.outbox_valid_traceparent(text) TO outbox_owner;
GRANT EXECUTE ON FUNCTION public.redrive_payment_outbox(uuid,text) TO outbox_owner;
GRANT EXECUTE ON FUNCTION public.redrive_payment_outbox(uuid,text) TO symphony_operator;
GRANT EXECUTE ON FUNCTION public.release_outbox_leases(text,uuid[],uuid[]) TO outbox_owner;
GRANT EXECUTE ON FUNCTION public.release_outbox_leases(text,uuid[],uuid[]) TO symphony_executor;
GRANT EXECUTE ON FUNCTION public.renew_outbox_lease(uuid,uuid,text,integer) TO outbox_owner;
GRANT EXECUTE ON FUNCTION public.renew_outbox_lease(uuid,uuid,text,integer) TO symphony_executor;
GRANT EXECUTE ON FUNCTION public.repair_expired_leases(integer,text) TO outbox_owner;
GRANT EXECUTE ON FUNCTION public.repair_expired_leases(integer,text) TO symphony_executor;
GRANT EXECUTE ON FUNCTION public.set_outbox_rail_ordering(text,boolean,text) TO outbox_owner;
GRANT EXECUTE ON FUNCTION public.set_outbox_rail_ordering(text,boolean,text) TO symphony_operator;
GRANT USAGE ON SCHEMA public TO PUBLIC;
GRANT CREATE, USAGE ON SCHEMA public TO outbox_owner;
GRANT CREATE, USAGE ON SCHEMA public TO pg_database_owner;
GRANT USAGE ON SCHEMA public TO symphony_auditor;
GRANT USAGE ON SCHEMA public TO symphony_executor;
GRANT USAGE ON SCHEMA public TO symphony_operator;
GRANT USAGE ON SCHEMA public TO symphony_producer;
GRANT USAGE ON SCHEMA public TO symphony_readonly;
GRANT SELECT, UPDATE, USAGE ON SEQUENCE public.outbox_ledger_archives_entry_no_seq TO outbox_owner;
GRANT SELECT, UPDATE, USAGE ON SEQUENCE public.outbox_operator_log_entry_no_seq TO outbox_owner;
GRANT SELECT, UPDATE, USAGE ON SEQUENCE public.outbox_rail_ordering_entry_no_seq TO outbox_owner;
GRANT SELECT, UPDATE, USAGE ON SEQUENCE public.outbox_row_digests_row_no_seq TO outbox_owner;
GRANT DELETE, INSERT, REFERENCES, SELECT, TRIGGER, TRUNCATE, UPDATE ON TABLE public.outbox_established_rails TO outbox_owner;
GRANT SELECT ON TABLE public.outbox_established_rails TO symphony_auditor;
GRANT SELECT ON TABLE public.outbox_established_rails TO symphony_readonly;
GRANT DELETE, INSERT, REFERENCES, SELECT, TRIGGER, TRUNCATE, UPDATE ON TABLE public.outbox_idempotency_keys TO outbox_owner;
GRANT SELECT ON TABLE public.outbox_idempotency_keys TO symphony_auditor;
GRANT SELECT ON TABLE public.outbox_idempotency_keys TO symphony_readonly;
GRANT DELETE, INSERT, REFERENCES, SELECT, TRIGGER, TRUNCATE, UPDATE ON TABLE public.outbox_ledger_archives TO outbox_owner;
GRANT SELECT ON TABLE public.outbox_ledger_archives TO symphony_auditor;
GRANT SELECT ON TABLE public.outbox_ledger_archives TO symphony_readonly;
GRANT DELETE, INSERT, REFERENCES, SELECT, TRIGGER, TRUNCATE, UPDATE ON TABLE public.outbox_operator_log TO outbox_owner;
GRANT SELECT ON TABLE public.outbox_operator_log TO symphony_auditor;
GRANT SELECT ON TABLE public.outbox_operator_log TO symphony_readonly;
GRANT DELETE, INSERT, REFERENCES, SELECT, TRIGGER, TRUNCATE, UPDATE ON TABLE public.outbox_rail_ordering TO outbox_owner;
GRANT SELECT ON TABLE public.outbox_rail_ordering TO symphony_auditor;
GRANT SELECT ON TABLE public.outbox_rail_ordering TO symphony_readonly;
GRANT DELETE, INSERT, REFERENCES, SELECT, TRIGGER, TRUNCATE, UPDATE ON TABLE public.outbox_rail_servers TO outbox_owner;
GRANT SELECT ON TABLE public.outbox_rail_servers TO symphony_auditor;
GRANT SELECT ON TABLE public.outbox_rail_servers TO symphony_readonly;
GRANT DELETE, INSERT, REFERENCES, SELECT, TRIGGER, TRUNCATE, UPDATE ON TABLE public.outbox_row_digests TO outbox_owner;
GRANT SELECT ON TABLE public.outbox_row_digests TO symphony_auditor;
GRANT DELETE, INSERT, REFERENCES, SELECT, TRIGGER, TRUNCATE, UPDATE ON TABLE public.outbox_scoped_rails TO outbox_owner;
GRANT SELECT ON TABLE public.outbox_scoped_rails TO symphony_auditor;
GRANT SELECT ON TABLE public.outbox_scoped_rails TO symphony_readonly;
GRANT DELETE, INSERT, REFERENCES, SELECT, TRIGGER, TRUNCATE, UPDATE ON TABLE public.outbox_terminal_outcomes TO outbox_owner;
GRANT SELECT ON TABLE public.outbox_terminal_outcomes TO symphony_auditor;
GRANT SELECT ON TABLE public.outbox_terminal_outcomes TO symphony_readonly;
GRANT DELETE, INSERT, REFERENCES, SELECT, TRIGGER, TRUNCATE, UPDATE ON TABLE public.participant_outbox_sequences TO outbox_owner;
GRANT DELETE, INSERT, REFERENCES, SELECT, TRIGGER, TRUNCATE, UPDATE ON TABLE public.payment_outbox_attempts TO outbox_owner;
GRANT SELECT ON TABLE public.payment_outbox_attempts TO symphony_auditor;
GRANT SELECT ON TABLE public.payment_outbox_attempts TO symphony_readonly;
GRANT DELETE, INSERT, REFERENCES, SELECT, TRIGGER, TRUNCATE, UPDATE ON TABLE public.payment_outbox_pending TO outbox_owner;
GRANT SELECT ON TABLE public.payment_outbox_pending TO symphony_auditor;
GRANT SELECT ON TABLE public.payment_outbox_pending TO symphony_readonly;
GRANT DELETE, INSERT, REFERENCES, SELECT, TRIGGER, TRUNCATE, UPDATE ON TABLE public.payment_outbox_settings TO outbox_owner;
GRANT SELECT ON TABLE public.payment_outbox_settings TO symphony_auditor;
GRANT DELETE, INSERT, REFERENCES, SELECT, TRIGGER, TRUNCATE, UPDATE ON TABLE public.outbox_status_view TO outbox_owner;
GRANT SELECT ON TABLE public.outbox_status_view TO symphony_auditor;
GRANT SELECT ON TABLE public.outbox_status_view TO symphony_executor;
GRANT SELECT ON TABLE public.outbox_status_view TO symphony_readonly;
GRANT DELETE, INSERT, REFERENCES, SELECT, TRIGGER, TRUNCATE, UPDATE ON TABLE public.outbox_unserved_rails TO outbox_owner;
GRANT SELECT ON TABLE public.outbox_unserved_rails TO symphony_auditor;
GRANT SELECT ON TABLE public.outbox_unserved_rails TO symphony_executor;
GRANT SELECT ON TABLE public.outbox_unserved_rails TO symphony_readonly;
