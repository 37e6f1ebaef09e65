-- The ledger over years (issue 19, part 3): attempts partitioned by the month their item was
-- created, so whole months leave the hot ledger (`outbox-db archive`: detached, written to a
-- checksummed file whose hash joins the tamper-evident chain, never DELETEd), while every
-- invariant stays enforced by the database:
--
-- * One terminal outcome per item, for the life of the outbox: a unique index on a
--   partitioned table must contain the partition key, so the guard moves to a compact
--   registry (outbox_terminal_outcomes: one uuid per finished item) that is never archived.
--   Its unique index keeps the name payment_outbox_attempts_one_terminal_per_outbox, so a
--   second terminal is still 23505 on that name, for this release's relayers and the last.
-- * One attempt number per item, and attempt numbers read from the item's own attempts:
--   every attempt of an item lives in one partition (its item's month, copied from the
--   pending row by the only two functions that record attempts), and a month is detached
--   only when none of its items is still pending, so no live item ever loses an attempt.
-- * Idempotency of a key for the life of the outbox: outbox_idempotency_keys (0010) is never
--   archived. A request under the key of an archived item gets P7001: never a second item.
-- * Append-only: every partition, and the parent, refuses UPDATE, DELETE and TRUNCATE
--   (statement triggers are per table, so each partition gets its own).
-- * Tamper evidence: digests and checkpoints are untouched; an archived month's rows travel
--   with their digests in the archive file, and the archive log (outbox_ledger_archives,
--   digested like the ledger) records each file's SHA-256 and row count.
--
-- Why the item's month and not the attempt's: an item's attempts stay together, so the two
-- per-item lookups of the hot path (the next attempt number, the last error) prune to one
-- partition, and retention counts from when a payment was asked for. Why not time-ordered
-- item ids (UUIDv7) as the partition key: every existing id is a random UUIDv4, which no
-- range of months can hold, and PostgreSQL 15 has no uuidv7().
--
-- The existing ledger becomes the first partition (payment_outbox_attempts_legacy, every
-- month before this migration) without copying a row: its keys are rebuilt with the
-- partition key, once. Items pending at the migration keep the legacy month.

-- The whole file runs in one transaction (the migrator's): names resolve only in pg_catalog
-- unless schema-qualified, a lock wait gives up instead of queueing the database behind it,
-- and no statement runs unbounded.
SET LOCAL search_path = pg_catalog, pg_temp;
SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '30min';

-- One terminal per item, for life ------------------------------------------------------------

CREATE TABLE public.outbox_terminal_outcomes (
    outbox_id uuid NOT NULL
);
COMMENT ON TABLE public.outbox_terminal_outcomes IS
    'Every item with a terminal attempt, never archived: one terminal outcome per item.';
INSERT INTO public.outbox_terminal_outcomes (outbox_id)
SELECT a.outbox_id
FROM public.payment_outbox_attempts AS a
WHERE a.state IN ('DISPATCHED', 'FAILED');
-- guardrails: allow OBX009 -- the same index, on the registry, is built below in this transaction
DROP INDEX public.payment_outbox_attempts_one_terminal_per_outbox;
-- No function has read it since 0010 took keys to their own registry.
-- guardrails: allow OBX009 -- no function has read it since 0010; CONCURRENTLY cannot run in a migration's transaction
DROP INDEX public.payment_outbox_attempts_terminal_by_key;
-- guardrails: allow OBX009 -- a new table, unread until this transaction commits
CREATE UNIQUE INDEX payment_outbox_attempts_one_terminal_per_outbox
    ON public.outbox_terminal_outcomes (outbox_id);
CREATE TRIGGER outbox_terminal_outcomes_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON public.outbox_terminal_outcomes
    FOR EACH STATEMENT
    EXECUTE FUNCTION public.deny_append_only_mutation();

CREATE FUNCTION public.outbox_register_terminal_outcomes()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $function$
BEGIN
    INSERT INTO public.outbox_terminal_outcomes (outbox_id)
    SELECT n.outbox_id FROM new_rows AS n WHERE n.state IN ('DISPATCHED', 'FAILED');
    RETURN NULL;
END
$function$;

-- The month of an item -----------------------------------------------------------------------

-- The partition that holds a month's attempts ('-infinity': every month before 0019).
CREATE FUNCTION public.outbox_ledger_partition(p_month date)
RETURNS text
LANGUAGE sql
STABLE
STRICT
SET search_path = pg_catalog, pg_temp
AS $function$
    SELECT CASE WHEN p_month = '-infinity' THEN 'payment_outbox_attempts_legacy'
        ELSE 'payment_outbox_attempts_' || pg_catalog.to_char(p_month, 'YYYY_MM') END;
$function$;

-- The partition that holds a month's attempt digests (NULL for '-infinity': those are kept in
-- outbox_row_digests_lifelong with the logs' digests).
CREATE FUNCTION public.outbox_ledger_digests_partition(p_month date)
RETURNS text
LANGUAGE sql
STABLE
STRICT
SET search_path = pg_catalog, pg_temp
AS $function$
    SELECT CASE WHEN p_month <> '-infinity'
        THEN 'outbox_row_digests_' || pg_catalog.to_char(p_month, 'YYYY_MM') END;
$function$;

-- The month a new item belongs to (UTC), refused when its partition is missing: better a
-- refused enqueue, before anything is sent, than a payment sent whose outcome has nowhere to
-- go. Partitions are made months ahead (outbox_prepare_ledger_months), so this is a backstop.
CREATE FUNCTION public.outbox_current_ledger_month()
RETURNS date
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, pg_temp
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

-- guardrails: allow OBX009 -- a constant default: no rewrite, and the column is new
ALTER TABLE public.payment_outbox_pending
    ADD COLUMN ledger_month date NOT NULL DEFAULT '-infinity';
ALTER TABLE public.payment_outbox_pending
    ALTER COLUMN ledger_month SET DEFAULT public.outbox_current_ledger_month();

-- The ledger, partitioned -------------------------------------------------------------------

-- guardrails: allow OBX009 -- a constant default: no rewrite; the table becomes a partition
ALTER TABLE public.payment_outbox_attempts
    ADD COLUMN ledger_month date NOT NULL DEFAULT '-infinity';
-- guardrails: allow OBX009 -- the parent takes the name in this transaction; no caller sees the gap
ALTER TABLE public.payment_outbox_attempts RENAME TO payment_outbox_attempts_legacy;
-- Its keys move to the parent with the partition key; a trigger with a transition table
-- (the digests) cannot sit on a partition, and row triggers are cloned from the parent.
-- guardrails: allow OBX009 -- re-created on the parent with the partition key, in this transaction
ALTER TABLE public.payment_outbox_attempts_legacy DROP CONSTRAINT payment_outbox_attempts_pkey;
ALTER TABLE public.payment_outbox_attempts_legacy
    -- guardrails: allow OBX009 -- re-created on the parent with the partition key, in this transaction
    DROP CONSTRAINT payment_outbox_attempts_outbox_id_attempt_no_key;
DROP TRIGGER payment_outbox_attempts_digest ON public.payment_outbox_attempts_legacy;
DROP TRIGGER payment_outbox_attempts_scope_unconfigured_rail
    ON public.payment_outbox_attempts_legacy;

-- An attempt's digest is written in its item's month (below: the digests are partitioned too).
-- guardrails: allow OBX009 -- same signature, dropped and created in one transaction: no caller ever sees it missing
DROP FUNCTION public.outbox_digest_attempts();
CREATE FUNCTION public.outbox_digest_attempts()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $function$
BEGIN
    INSERT INTO public.outbox_row_digests (source, row_key, digest, ledger_month)
    SELECT 'payment_outbox_attempts', n.attempt_id::text,
        public.outbox_row_digest(public.outbox_attempt_fields(n)), n.ledger_month
    FROM new_rows AS n;
    RETURN NULL;
END
$function$;

CREATE TABLE public.payment_outbox_attempts (
    LIKE public.payment_outbox_attempts_legacy INCLUDING DEFAULTS
) PARTITION BY RANGE (ledger_month);
ALTER TABLE public.payment_outbox_attempts
    ADD CONSTRAINT payment_outbox_attempts_pkey PRIMARY KEY (attempt_id, ledger_month),
    ADD CONSTRAINT payment_outbox_attempts_outbox_id_attempt_no_key
        UNIQUE (outbox_id, attempt_no, ledger_month),
    ADD CONSTRAINT payment_outbox_attempts_attempt_no_positive CHECK (attempt_no >= 1),
    ADD CONSTRAINT payment_outbox_attempts_no_dispatching_insert
        CHECK (state <> 'DISPATCHING') NOT VALID;
COMMENT ON TABLE public.payment_outbox_attempts IS
    'The attempts ledger, one partition per month of the items it records (0019).';
CREATE TRIGGER payment_outbox_attempts_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON public.payment_outbox_attempts
    FOR EACH STATEMENT
    EXECUTE FUNCTION public.deny_outbox_attempts_mutation();
CREATE TRIGGER payment_outbox_attempts_digest
    AFTER INSERT ON public.payment_outbox_attempts
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT
    EXECUTE FUNCTION public.outbox_digest_attempts();
CREATE TRIGGER payment_outbox_attempts_terminal
    AFTER INSERT ON public.payment_outbox_attempts
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT
    EXECUTE FUNCTION public.outbox_register_terminal_outcomes();
CREATE TRIGGER payment_outbox_attempts_scope_unconfigured_rail
    AFTER INSERT ON public.payment_outbox_attempts
    FOR EACH ROW
    WHEN (NEW.error_code = 'RAIL_NOT_CONFIGURED')
    EXECUTE FUNCTION public.outbox_scope_unconfigured_rail();

-- The row digests, partitioned the same way: an attempt's digest is written in its item's
-- month, so an archived month's digests leave the database with it (they travel in its file,
-- whose SHA-256 the digested archive log records). The digests of the operator and ordering
-- logs, of the archive log, and of the attempts of items older than 0019 stay for life in the
-- first partition (outbox_row_digests_lifelong, the table of 0018). The identity of 0018
-- becomes a sequence the partitions share: row numbers keep counting from where they were.
-- guardrails: allow OBX009 -- a constant default: no rewrite; the table becomes a partition
ALTER TABLE public.outbox_row_digests
    ADD COLUMN ledger_month date NOT NULL DEFAULT '-infinity';
-- guardrails: allow OBX009 -- the parent takes the name in this transaction; no caller sees the gap
ALTER TABLE public.outbox_row_digests RENAME TO outbox_row_digests_lifelong;
-- guardrails: allow OBX009 -- re-created on the parent with the partition key, in this transaction
ALTER TABLE public.outbox_row_digests_lifelong DROP CONSTRAINT outbox_row_digests_pkey;
-- guardrails: allow OBX009 -- re-created on the parent with the partition key, in this transaction
ALTER TABLE public.outbox_row_digests_lifelong DROP CONSTRAINT outbox_row_digests_one_per_row;
-- guardrails: allow OBX009 -- re-created on the parent, in this transaction
DROP INDEX public.outbox_row_digests_by_xact;
-- guardrails: allow OBX009 -- a sequence the partitions share replaces it, in this transaction; only triggers insert
ALTER TABLE public.outbox_row_digests_lifelong ALTER COLUMN row_no DROP IDENTITY;
CREATE SEQUENCE public.outbox_row_digests_row_no_seq AS bigint;
SELECT pg_catalog.setval(
    'public.outbox_row_digests_row_no_seq', coalesce(max(l.row_no), 0) + 1, false
)
FROM public.outbox_row_digests_lifelong AS l;

CREATE TABLE public.outbox_row_digests (
    row_no bigint NOT NULL DEFAULT pg_catalog.nextval('public.outbox_row_digests_row_no_seq'),
    source text NOT NULL,
    row_key text NOT NULL,
    digest bytea NOT NULL,
    written_by_xact xid8 NOT NULL DEFAULT pg_catalog.pg_current_xact_id(),
    ledger_month date NOT NULL DEFAULT '-infinity',
    CONSTRAINT outbox_row_digests_pkey PRIMARY KEY (row_no, ledger_month),
    CONSTRAINT outbox_row_digests_one_per_row UNIQUE (source, row_key, ledger_month)
) PARTITION BY RANGE (ledger_month);
ALTER SEQUENCE public.outbox_row_digests_row_no_seq OWNED BY public.outbox_row_digests.row_no;
-- A checkpoint reads the transactions between two horizons.
-- guardrails: allow OBX009 -- a new table, unread until this transaction commits
CREATE INDEX outbox_row_digests_by_xact ON public.outbox_row_digests (written_by_xact);
COMMENT ON TABLE public.outbox_row_digests IS
    'One SHA-256 per ledger, log and archive-log row, written with the row; by month (0019).';
CREATE TRIGGER outbox_row_digests_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON public.outbox_row_digests
    FOR EACH STATEMENT
    EXECUTE FUNCTION public.deny_append_only_mutation();

-- The first partitions: every earlier month's rows, not one copied.
DO $do$
DECLARE
    v_first date := date_trunc('month', clock_timestamp() AT TIME ZONE 'UTC')::date;
BEGIN
    EXECUTE pg_catalog.format(
        'ALTER TABLE public.payment_outbox_attempts ATTACH PARTITION '
            'public.payment_outbox_attempts_legacy FOR VALUES FROM (MINVALUE) TO (%L)',
        v_first
    );
    EXECUTE pg_catalog.format(
        'ALTER TABLE public.outbox_row_digests ATTACH PARTITION '
            'public.outbox_row_digests_lifelong FOR VALUES FROM (MINVALUE) TO (%L)',
        v_first
    );
END
$do$;


-- A row's fields take the parent's row type; the legacy table's type is its own now.
-- guardrails: allow OBX009 -- its twin for the parent's row type is created below, in this transaction
DROP FUNCTION public.outbox_attempt_fields(public.payment_outbox_attempts_legacy);

CREATE FUNCTION public.outbox_attempt_fields(a public.payment_outbox_attempts)
RETURNS text[]
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
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

-- Months made ahead --------------------------------------------------------------------------

-- A month's partitions of the ledger and of the row digests, each created on its own and then
-- attached, which takes a SHARE UPDATE EXCLUSIVE lock on the parent: recording outcomes goes
-- on meanwhile. Statement triggers are not inherited, so each partition refuses UPDATE,
-- DELETE and TRUNCATE itself.
CREATE FUNCTION public.outbox_make_ledger_partition(p_month date)
RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
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

-- This month's partition and the next p_months_ahead months', those missing; returns what it
-- made. The relayers' lease repair calls it hourly (a lock wait over 1 s: 55P03, next hour).
CREATE FUNCTION public.outbox_prepare_ledger_months(p_months_ahead integer)
RETURNS SETOF text
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET lock_timeout = '1s'
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

-- The archive ---------------------------------------------------------------------------------

-- One row per archived month: the file that holds its rows, their count, the file's SHA-256.
CREATE TABLE public.outbox_ledger_archives (
    entry_no bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    ledger_month date NOT NULL UNIQUE,
    file_name text NOT NULL,
    row_count bigint NOT NULL CHECK (row_count >= 0),
    sha256 text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    archived_by text NOT NULL DEFAULT session_user,
    archived_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
COMMENT ON TABLE public.outbox_ledger_archives IS
    'Each ledger month archived: its file, row count and SHA-256; append-only, digested.';
CREATE TRIGGER outbox_ledger_archives_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON public.outbox_ledger_archives
    FOR EACH STATEMENT
    EXECUTE FUNCTION public.deny_append_only_mutation();

CREATE FUNCTION public.outbox_ledger_archive_fields(r public.outbox_ledger_archives)
RETURNS text[]
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
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

-- One digest trigger for the tables off the hot path, named by its arguments (the key column,
-- the fields function); the ledger keeps its own, planned once (0018).
CREATE FUNCTION public.outbox_digest_inserted_rows()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $function$
BEGIN
    EXECUTE format(
        'INSERT INTO public.outbox_row_digests (source, row_key, digest) '
            'SELECT %L, n.%I::text, public.outbox_row_digest(public.%I(n)) FROM new_rows AS n',
        TG_TABLE_NAME, TG_ARGV[0], TG_ARGV[1]);
    RETURN NULL;
END
$function$;

DROP TRIGGER outbox_operator_log_digest ON public.outbox_operator_log;
DROP TRIGGER outbox_rail_ordering_digest ON public.outbox_rail_ordering;
-- guardrails: allow OBX009 -- internal trigger functions, replaced by one below in this transaction
DROP FUNCTION public.outbox_digest_operator_log();
-- guardrails: allow OBX009 -- internal trigger functions, replaced by one below in this transaction
DROP FUNCTION public.outbox_digest_rail_ordering();
CREATE TRIGGER outbox_operator_log_digest
    AFTER INSERT ON public.outbox_operator_log
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT
    EXECUTE FUNCTION public.outbox_digest_inserted_rows('entry_no', 'outbox_operator_log_fields');
CREATE TRIGGER outbox_rail_ordering_digest
    AFTER INSERT ON public.outbox_rail_ordering
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT
    EXECUTE FUNCTION public.outbox_digest_inserted_rows('entry_no', 'outbox_rail_ordering_fields');
CREATE TRIGGER outbox_ledger_archives_digest
    AFTER INSERT ON public.outbox_ledger_archives
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT
    EXECUTE FUNCTION public.outbox_digest_inserted_rows('entry_no', 'outbox_ledger_archive_fields');

-- guardrails: allow OBX009 -- same signature, dropped and created in one transaction: no caller ever sees it missing
DROP FUNCTION public.outbox_tamper_evident_rows();
CREATE FUNCTION public.outbox_tamper_evident_rows()
RETURNS TABLE (source text, row_key text, fields text[])
LANGUAGE sql
STABLE
SET search_path = pg_catalog, pg_temp
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

-- A month's partition, as the archive functions find it: whether it is still attached, and
-- where its range ends (the legacy partition's: the month 0019 ran in).
CREATE FUNCTION public.outbox_ledger_month_partition(p_month date)
RETURNS TABLE (partition regclass, attached boolean, range_end date)
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
SET datestyle = 'ISO, YMD'  -- the partition bound is read back as text: in one form only
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

CREATE FUNCTION public.outbox_require_detached_month(p_month date)
RETURNS regclass
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
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

-- Detach a month past retention whose items are all finished: its rows and their digests
-- leave the hot ledger and stay, append-only, in their own tables until its archive is
-- recorded and they are dropped.
-- DETACH waits for an ACCESS EXCLUSIVE lock on the ledger: at most 1 s, then 55P03 (retry).
CREATE FUNCTION public.outbox_detach_ledger_month(p_month date, p_keep_months integer)
RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET lock_timeout = '1s'
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

-- A detached month's rows with their digests, as the archive file holds them (the payload by
-- its hash, as in every checkpoint and bundle).
CREATE FUNCTION public.outbox_archived_ledger_rows(p_month date)
RETURNS TABLE (
    source text, row_key text, fields text[], row_no bigint, digest bytea,
    written_by_xact xid8
)
LANGUAGE plpgsql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET lock_timeout = '5s'
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

-- Record a detached month's archive file; the row count is the database's, not the caller's.
CREATE FUNCTION public.outbox_record_ledger_archive(
    p_month date, p_file_name text, p_sha256 text
)
RETURNS SETOF public.outbox_ledger_archives
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET lock_timeout = '5s'
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

-- Drop a detached month whose archive is recorded: its rows and their digests then live in
-- the file only (the legacy month's digests stay in outbox_row_digests_lifelong).
CREATE FUNCTION public.outbox_drop_archived_ledger_month(p_month date)
RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET lock_timeout = '5s'
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

-- Every ledger month: its partition (attached to the ledger, detached, or dropped) and its
-- archive, if recorded. For the operator's archive runs and the readers.
CREATE FUNCTION public.outbox_ledger_months()
RETURNS TABLE (
    ledger_month text, partition_name text, attached boolean, range_end date,
    archive_file text, archive_rows bigint, archive_sha256 text
)
LANGUAGE sql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET lock_timeout = '5s'
SET datestyle = 'ISO, YMD'  -- the partition bound is read back as text: in one form only
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

-- The two functions that record attempts, and the lease's last-error probe: the item's month
-- goes with each attempt, and each per-item lookup names it, so it reads one partition.

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

-- guardrails: allow OBX009 -- same signature, dropped and created in one transaction: no caller ever sees it missing
DROP FUNCTION public.outbox_lease_items(uuid[], text, integer, timestamptz);
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
            WHERE a.outbox_id = p.outbox_id AND a.ledger_month = p.ledger_month
                AND a.attempt_no = p.attempt_count
        ) END;
END
$function$;

-- Owners and grants ---------------------------------------------------------------------------

ALTER TABLE public.outbox_terminal_outcomes OWNER TO outbox_owner;
ALTER TABLE public.outbox_row_digests OWNER TO outbox_owner;
ALTER SEQUENCE public.outbox_row_digests_row_no_seq OWNER TO outbox_owner;
ALTER TABLE public.payment_outbox_attempts OWNER TO outbox_owner;
ALTER TABLE public.outbox_ledger_archives OWNER TO outbox_owner;
REVOKE ALL ON public.outbox_terminal_outcomes, public.payment_outbox_attempts,
    public.outbox_ledger_archives, public.outbox_row_digests FROM PUBLIC;
REVOKE ALL ON SEQUENCE public.outbox_row_digests_row_no_seq FROM PUBLIC;
-- Readers read the ledger through its parent, as every partition made later is read.
REVOKE ALL ON public.payment_outbox_attempts_legacy FROM symphony_readonly, symphony_auditor;
REVOKE ALL ON public.outbox_row_digests_lifelong FROM symphony_auditor;
GRANT SELECT ON public.outbox_row_digests TO symphony_auditor;
GRANT SELECT ON public.payment_outbox_attempts, public.outbox_terminal_outcomes,
    public.outbox_ledger_archives
TO symphony_readonly, symphony_auditor;

ALTER FUNCTION public.outbox_register_terminal_outcomes() OWNER TO outbox_owner;
ALTER FUNCTION public.outbox_digest_attempts() OWNER TO outbox_owner;
ALTER FUNCTION public.outbox_tamper_evident_rows() OWNER TO outbox_owner;
ALTER FUNCTION public.complete_outbox_attempts(
    text, uuid[], uuid[], text[], text[], text[], text[], text[], integer[], integer[]
) OWNER TO outbox_owner;
ALTER FUNCTION public.repair_expired_leases(integer, text) OWNER TO outbox_owner;
ALTER FUNCTION public.outbox_lease_items(uuid[], text, integer, timestamptz) OWNER TO outbox_owner;
ALTER FUNCTION public.outbox_ledger_partition(date) OWNER TO outbox_owner;
ALTER FUNCTION public.outbox_ledger_digests_partition(date) OWNER TO outbox_owner;
ALTER FUNCTION public.outbox_current_ledger_month() OWNER TO outbox_owner;
ALTER FUNCTION public.outbox_attempt_fields(public.payment_outbox_attempts) OWNER TO outbox_owner;
ALTER FUNCTION public.outbox_make_ledger_partition(date) OWNER TO outbox_owner;
ALTER FUNCTION public.outbox_prepare_ledger_months(integer) OWNER TO outbox_owner;
ALTER FUNCTION public.outbox_ledger_archive_fields(public.outbox_ledger_archives)
    OWNER TO outbox_owner;
ALTER FUNCTION public.outbox_digest_inserted_rows() OWNER TO outbox_owner;
ALTER FUNCTION public.outbox_ledger_month_partition(date) OWNER TO outbox_owner;
ALTER FUNCTION public.outbox_require_detached_month(date) OWNER TO outbox_owner;
ALTER FUNCTION public.outbox_detach_ledger_month(date, integer) OWNER TO outbox_owner;
ALTER FUNCTION public.outbox_archived_ledger_rows(date) OWNER TO outbox_owner;
ALTER FUNCTION public.outbox_record_ledger_archive(date, text, text) OWNER TO outbox_owner;
ALTER FUNCTION public.outbox_drop_archived_ledger_month(date) OWNER TO outbox_owner;
ALTER FUNCTION public.outbox_ledger_months() OWNER TO outbox_owner;
REVOKE ALL ON FUNCTION
    public.outbox_register_terminal_outcomes(),
    public.outbox_digest_attempts(),
    public.outbox_tamper_evident_rows(),
    public.complete_outbox_attempts(
        text, uuid[], uuid[], text[], text[], text[], text[], text[], integer[], integer[]
    ),
    public.repair_expired_leases(integer, text),
    public.outbox_lease_items(uuid[], text, integer, timestamptz),
    public.outbox_ledger_partition(date),
    public.outbox_ledger_digests_partition(date),
    public.outbox_current_ledger_month(),
    public.outbox_attempt_fields(public.payment_outbox_attempts),
    public.outbox_make_ledger_partition(date),
    public.outbox_prepare_ledger_months(integer),
    public.outbox_ledger_archive_fields(public.outbox_ledger_archives),
    public.outbox_digest_inserted_rows(),
    public.outbox_ledger_month_partition(date),
    public.outbox_require_detached_month(date),
    public.outbox_detach_ledger_month(date, integer),
    public.outbox_archived_ledger_rows(date),
    public.outbox_record_ledger_archive(date, text, text),
    public.outbox_drop_archived_ledger_month(date),
    public.outbox_ledger_months()
FROM PUBLIC;
-- The relayers keep months ahead (lease repair, hourly); the operator archives; a producer
-- and the relayer may do neither of the other.
GRANT EXECUTE ON FUNCTION
    public.outbox_prepare_ledger_months(integer),
    public.complete_outbox_attempts(
        text, uuid[], uuid[], text[], text[], text[], text[], text[], integer[], integer[]
    ),
    public.repair_expired_leases(integer, text)
TO symphony_executor;
GRANT EXECUTE ON FUNCTION
    public.outbox_detach_ledger_month(date, integer),
    public.outbox_archived_ledger_rows(date),
    public.outbox_record_ledger_archive(date, text, text),
    public.outbox_drop_archived_ledger_month(date),
    public.outbox_ledger_months()
TO symphony_operator;
GRANT EXECUTE ON FUNCTION public.outbox_ledger_months() TO symphony_readonly, symphony_auditor;

-- This month and the next three.
SELECT pg_catalog.count(*) FROM public.outbox_prepare_ledger_months(3);
