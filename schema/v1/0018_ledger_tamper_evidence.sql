-- Tamper evidence for the ledger and the operator logs (issue 19, part 1). The ledger refuses
-- UPDATE, DELETE and TRUNCATE, but its owner can disable that trigger, or rewrite a column with
-- ALTER TABLE ... USING (which fires no row trigger), and nothing recorded what a row held.
--
-- Now the database writes, in the transaction that inserts each row of payment_outbox_attempts,
-- outbox_operator_log and outbox_rail_ordering, a SHA-256 digest of the row's canonical encoding
-- to outbox_row_digests (append-only too). A checkpoint exporter outside the database reads the
-- digests of every transaction no longer in flight (outbox_sealable_digests), chains them into a
-- checkpoint and signs it with a key the database never holds; `outbox-evidence verify-ledger`
-- recomputes every row's digest from its columns and compares it with the signed checkpoints
-- (docs/threat-model.md: what this proves and what it does not).
--
-- The structure: one digest per row, numbered by an identity (row_no), with the id of the
-- transaction that wrote it (written_by_xact). No writer touches a shared head: a relayer's
-- completion pays one digest row, not a lock. A checkpoint covers the transactions older than
-- its snapshot's xmin, the horizon below which no transaction is still in progress, so a row
-- committed later can never belong to a range already signed, whatever its row_no.
--
-- The canonical encoding of a row (outbox_row_digest): its fields as text, each NULL as "-" and
-- every other as its length in UTF-8 bytes, ":", the text; the first field names the table and
-- the encoding's version. Times are UTC with microseconds, whatever the session's TimeZone and
-- DateStyle; a payload is the SHA-256 (hex) of jsonb's text, so no encoding of a row carries
-- a payload's account numbers out of the database.
--
-- Rows already in the tables get their digests here, written by this migration's transaction.

-- The whole file runs in one transaction (the migrator's): names resolve only in pg_catalog
-- unless schema-qualified, a lock wait gives up instead of queueing the database behind it,
-- and no statement runs unbounded.
SET LOCAL search_path = pg_catalog, pg_temp;
SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '30min';

CREATE TABLE public.outbox_row_digests (
    row_no bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source text NOT NULL,
    row_key text NOT NULL,
    digest bytea NOT NULL,
    written_by_xact xid8 NOT NULL DEFAULT pg_catalog.pg_current_xact_id(),
    CONSTRAINT outbox_row_digests_one_per_row UNIQUE (source, row_key)
);
-- A checkpoint reads the transactions between two horizons.
CREATE INDEX outbox_row_digests_by_xact ON public.outbox_row_digests (written_by_xact);
COMMENT ON TABLE public.outbox_row_digests IS
    'One SHA-256 per ledger, operator-log and ordering-history row, written with the row.';

-- The helpers are PL/pgSQL, not SQL: the digest trigger calls them for every ledger row, and a
-- SQL function with SET search_path is never inlined, so each call would run its query through
-- the executor (and an ordered string_agg would sort each row's fields); PL/pgSQL evaluates
-- them as plain expressions, in about a third of the time (docs/scaling.md, "What tamper
-- evidence costs").
CREATE FUNCTION public.outbox_row_digest(p_fields text[])
RETURNS bytea
LANGUAGE plpgsql
STABLE
STRICT
SET search_path = pg_catalog, pg_temp
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

CREATE FUNCTION public.outbox_utc_text(p_at timestamptz)
RETURNS text
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $function$
BEGIN
    RETURN pg_catalog.to_char(p_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"');
END
$function$;

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

CREATE FUNCTION public.outbox_operator_log_fields(o public.outbox_operator_log)
RETURNS text[]
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $function$
BEGIN
    RETURN ARRAY[
        'outbox_operator_log/1', o.entry_no::text, o.outbox_id::text, o.redrive_outbox_id::text,
        o.instruction_id, o.redrive_idempotency_key, o.redrive_generation::text,
        o.requested_by, public.outbox_utc_text(o.requested_at), o.reason
    ];
END
$function$;

CREATE FUNCTION public.outbox_rail_ordering_fields(r public.outbox_rail_ordering)
RETURNS text[]
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $function$
BEGIN
    RETURN ARRAY[
        'outbox_rail_ordering/1', r.entry_no::text, r.rail_type, r.ordered::text,
        r.requested_by, public.outbox_utc_text(r.requested_at), r.reason
    ];
END
$function$;

-- Every row of the three tables with its key and canonical fields (the owner's helper).
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
    FROM public.outbox_rail_ordering AS r;
$function$;

-- Statement triggers: a batch completion writes its digests in one INSERT.
CREATE FUNCTION public.outbox_digest_attempts()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $function$
BEGIN
    INSERT INTO public.outbox_row_digests (source, row_key, digest)
    SELECT 'payment_outbox_attempts', n.attempt_id::text,
        public.outbox_row_digest(public.outbox_attempt_fields(n))
    FROM new_rows AS n;
    RETURN NULL;
END
$function$;

CREATE FUNCTION public.outbox_digest_operator_log()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $function$
BEGIN
    INSERT INTO public.outbox_row_digests (source, row_key, digest)
    SELECT 'outbox_operator_log', n.entry_no::text,
        public.outbox_row_digest(public.outbox_operator_log_fields(n))
    FROM new_rows AS n;
    RETURN NULL;
END
$function$;

CREATE FUNCTION public.outbox_digest_rail_ordering()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $function$
BEGIN
    INSERT INTO public.outbox_row_digests (source, row_key, digest)
    SELECT 'outbox_rail_ordering', n.entry_no::text,
        public.outbox_row_digest(public.outbox_rail_ordering_fields(n))
    FROM new_rows AS n;
    RETURN NULL;
END
$function$;

-- The rows already written, in a fixed order, by this transaction.
INSERT INTO public.outbox_row_digests (source, row_key, digest)
SELECT r.source, r.row_key, public.outbox_row_digest(r.fields)
FROM public.outbox_tamper_evident_rows() AS r
ORDER BY r.source, r.row_key;

CREATE TRIGGER payment_outbox_attempts_digest
    AFTER INSERT ON public.payment_outbox_attempts
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT
    EXECUTE FUNCTION public.outbox_digest_attempts();
CREATE TRIGGER outbox_operator_log_digest
    AFTER INSERT ON public.outbox_operator_log
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT
    EXECUTE FUNCTION public.outbox_digest_operator_log();
CREATE TRIGGER outbox_rail_ordering_digest
    AFTER INSERT ON public.outbox_rail_ordering
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT
    EXECUTE FUNCTION public.outbox_digest_rail_ordering();
CREATE TRIGGER outbox_row_digests_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON public.outbox_row_digests
    FOR EACH STATEMENT
    EXECUTE FUNCTION public.deny_append_only_mutation();

-- What a checkpoint may seal: the digests written by transactions from p_after (the previous
-- checkpoint's horizon) up to this snapshot's xmin, none of which is still in progress, with
-- each row's canonical fields as the table holds them now (NULL: no such row). One statement,
-- one snapshot: the horizon and the rows agree. A row of the horizon's own comes back with no
-- digest when nothing new is sealable.
CREATE FUNCTION public.outbox_sealable_digests(p_after xid8)
RETURNS TABLE (
    horizon xid8, row_no bigint, source text, row_key text, digest bytea,
    written_by_xact xid8, fields text[]
)
LANGUAGE sql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET lock_timeout = '5s'
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

-- Every row and every digest, matched by table and key: a row with no digest (inserted with
-- the trigger off) and a digest with no row (a row deleted) come back with the other side NULL.
CREATE FUNCTION public.outbox_ledger_rows()
RETURNS TABLE (
    source text, row_key text, fields text[], row_no bigint, digest bytea,
    written_by_xact xid8
)
LANGUAGE sql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET lock_timeout = '5s'
AS $function$
    SELECT coalesce(r.source, d.source), coalesce(r.row_key, d.row_key), r.fields, d.row_no,
        d.digest, d.written_by_xact
    FROM public.outbox_tamper_evident_rows() AS r
    FULL JOIN public.outbox_row_digests AS d
        ON d.source = r.source AND d.row_key = r.row_key
    ORDER BY d.row_no NULLS LAST, 1, 2;
$function$;

ALTER TABLE public.outbox_row_digests OWNER TO outbox_owner;
REVOKE ALL ON public.outbox_row_digests FROM PUBLIC;
GRANT SELECT ON public.outbox_row_digests TO symphony_auditor;

ALTER FUNCTION public.outbox_row_digest(text[]) OWNER TO outbox_owner;
ALTER FUNCTION public.outbox_utc_text(timestamptz) OWNER TO outbox_owner;
ALTER FUNCTION public.outbox_attempt_fields(public.payment_outbox_attempts) OWNER TO outbox_owner;
ALTER FUNCTION public.outbox_operator_log_fields(public.outbox_operator_log) OWNER TO outbox_owner;
ALTER FUNCTION public.outbox_rail_ordering_fields(public.outbox_rail_ordering)
    OWNER TO outbox_owner;
ALTER FUNCTION public.outbox_tamper_evident_rows() OWNER TO outbox_owner;
ALTER FUNCTION public.outbox_digest_attempts() OWNER TO outbox_owner;
ALTER FUNCTION public.outbox_digest_operator_log() OWNER TO outbox_owner;
ALTER FUNCTION public.outbox_digest_rail_ordering() OWNER TO outbox_owner;
ALTER FUNCTION public.outbox_sealable_digests(xid8) OWNER TO outbox_owner;
ALTER FUNCTION public.outbox_ledger_rows() OWNER TO outbox_owner;
REVOKE ALL ON FUNCTION
    public.outbox_row_digest(text[]),
    public.outbox_utc_text(timestamptz),
    public.outbox_attempt_fields(public.payment_outbox_attempts),
    public.outbox_operator_log_fields(public.outbox_operator_log),
    public.outbox_rail_ordering_fields(public.outbox_rail_ordering),
    public.outbox_tamper_evident_rows(),
    public.outbox_digest_attempts(),
    public.outbox_digest_operator_log(),
    public.outbox_digest_rail_ordering(),
    public.outbox_sealable_digests(xid8),
    public.outbox_ledger_rows()
FROM PUBLIC;
-- The checkpoint exporter and the evidence bundle read as the auditor; they write nothing.
GRANT EXECUTE ON FUNCTION public.outbox_sealable_digests(xid8), public.outbox_ledger_rows()
TO symphony_auditor;
