-- The outbox data model (DESIGN section 3): the per-participant sequence allocator, the hot
-- work queue with its lease, and the append-only attempts ledger.
--
-- Written to converge: on an empty database it creates everything; on a database made by the
-- DISPATCHING-era schema (same tables, no lease columns, ix_attempts_dispatching_age, old
-- DISPATCHING rows) it adds what is missing and keeps every historical row.

-- The whole file runs in one transaction (the migrator's): names resolve only in pg_catalog
-- unless schema-qualified, a lock wait gives up instead of queueing the database behind it,
-- and no statement runs unbounded.
SET LOCAL search_path = pg_catalog, pg_temp;
SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '30min';

-- Attempt outcomes as persisted in the ledger.
--   DISPATCHING     historical reads only. The lease on payment_outbox_pending is the
--                   in-flight state now; inserting DISPATCHING is refused by the CHECK
--                   payment_outbox_attempts_no_dispatching_insert (SQLSTATE 23514).
--   DISPATCHED      terminal: the rail accepted the instruction.
--   RETRYABLE       the attempt failed in a way worth retrying; the item was rescheduled.
--   FAILED          terminal: refused by the rail, or the retry ceiling was reached.
--   ZOMBIE_REQUEUE  the ledger's persisted name for a lease-repair requeue (kept for
--                   compatibility with existing ledgers; everywhere else: "lease repair").
DO $enum$
BEGIN
    IF NOT EXISTS (
        SELECT FROM pg_catalog.pg_type
        WHERE typname = 'outbox_attempt_state' AND typnamespace = 'public'::regnamespace
    ) THEN
        CREATE TYPE public.outbox_attempt_state AS ENUM (
            'DISPATCHING', 'DISPATCHED', 'RETRYABLE', 'FAILED', 'ZOMBIE_REQUEUE'
        );
    END IF;
END
$enum$;
COMMENT ON TYPE public.outbox_attempt_state IS
    'Attempt outcomes. DISPATCHING is deprecated: historical reads only, inserts refused '
    'by CHECK payment_outbox_attempts_no_dispatching_insert; in-flight is lease state on '
    'payment_outbox_pending. ZOMBIE_REQUEUE is the persisted name of a lease-repair requeue.';

-- guardrails: allow OBX008 -- adopts the DISPATCHING-era table (DESIGN 3); nobody but the outbox roles can create in public (0001)
CREATE TABLE IF NOT EXISTS public.participant_outbox_sequences (
    participant_id text PRIMARY KEY,
    next_sequence_id bigint NOT NULL
);

-- guardrails: allow OBX008 -- adopts the DISPATCHING-era table (DESIGN 3); nobody but the outbox roles can create in public (0001)
CREATE TABLE IF NOT EXISTS public.payment_outbox_pending (
    outbox_id uuid PRIMARY KEY,
    instruction_id text NOT NULL,
    participant_id text NOT NULL,
    sequence_id bigint NOT NULL,
    idempotency_key text NOT NULL,
    rail_type text NOT NULL,
    payload jsonb NOT NULL,
    attempt_count integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    UNIQUE (instruction_id, idempotency_key),
    UNIQUE (participant_id, sequence_id)
);

-- guardrails: allow OBX008 -- adopts the DISPATCHING-era table (DESIGN 3); nobody but the outbox roles can create in public (0001)
CREATE TABLE IF NOT EXISTS public.payment_outbox_attempts (
    attempt_id uuid PRIMARY KEY,
    outbox_id uuid NOT NULL,
    instruction_id text NOT NULL,
    participant_id text NOT NULL,
    sequence_id bigint NOT NULL,
    idempotency_key text NOT NULL,
    rail_type text NOT NULL,
    payload jsonb NOT NULL,
    attempt_no integer NOT NULL,
    state public.outbox_attempt_state NOT NULL,
    claimed_at timestamptz,
    completed_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    rail_reference text,
    rail_code text,
    error_code text,
    error_message text,
    latency_ms integer,
    worker_id text,
    UNIQUE (outbox_id, attempt_no)
);

-- Sequences allocated before this schema may sit behind numbers already used, or be missing
-- for a participant with history; a new item must never collide with history.
INSERT INTO public.participant_outbox_sequences AS s (participant_id, next_sequence_id)
SELECT history.participant_id, pg_catalog.max(history.sequence_id) + 1
FROM (
    SELECT participant_id, sequence_id FROM public.payment_outbox_pending
    UNION ALL
    SELECT participant_id, sequence_id FROM public.payment_outbox_attempts
) AS history
GROUP BY history.participant_id
ON CONFLICT (participant_id) DO UPDATE SET next_sequence_id = EXCLUDED.next_sequence_id
WHERE s.next_sequence_id < EXCLUDED.next_sequence_id;

ALTER TABLE public.participant_outbox_sequences
    ADD CONSTRAINT participant_outbox_sequences_next_positive CHECK (next_sequence_id >= 1);

-- The lease: who holds the item, the token that proves it, when it was taken and when it
-- lapses. All set while leased, all NULL otherwise.
ALTER TABLE public.payment_outbox_pending
    ALTER COLUMN outbox_id SET DEFAULT pg_catalog.gen_random_uuid(),
    ADD COLUMN IF NOT EXISTS claimed_by text,
    ADD COLUMN IF NOT EXISTS lease_token uuid,
    ADD COLUMN IF NOT EXISTS claimed_at timestamptz,
    ADD COLUMN IF NOT EXISTS lease_expires_at timestamptz,
    ADD CONSTRAINT payment_outbox_pending_lease_consistent CHECK (
        (claimed_by IS NULL AND lease_token IS NULL
            AND claimed_at IS NULL AND lease_expires_at IS NULL)
        OR (claimed_by IS NOT NULL AND lease_token IS NOT NULL
            AND claimed_at IS NOT NULL AND lease_expires_at IS NOT NULL)
    ),
    ADD CONSTRAINT payment_outbox_pending_payload_object CHECK (
        pg_catalog.jsonb_typeof(payload) = 'object'
    ),
    ADD CONSTRAINT payment_outbox_pending_attempt_count_nonnegative CHECK (attempt_count >= 0);

-- Claim scans unleased rows by due time; the partial index keeps that cost independent of
-- how many leased rows the queue holds.
CREATE INDEX payment_outbox_pending_due
    ON public.payment_outbox_pending (next_attempt_at) WHERE claimed_by IS NULL;
-- Lease repair looks only at leased rows, oldest expiry first.
CREATE INDEX payment_outbox_pending_lease_expiry
    ON public.payment_outbox_pending (lease_expires_at) WHERE lease_expires_at IS NOT NULL;

ALTER TABLE public.payment_outbox_attempts
    ALTER COLUMN attempt_id SET DEFAULT pg_catalog.gen_random_uuid(),
    ADD CONSTRAINT payment_outbox_attempts_attempt_no_positive CHECK (attempt_no >= 1),
    -- NOT VALID: historical DISPATCHING rows stay, every new row is checked.
    ADD CONSTRAINT payment_outbox_attempts_no_dispatching_insert CHECK (
        state <> 'DISPATCHING'::public.outbox_attempt_state
    ) NOT VALID;

-- The DISPATCHING-era age index is obsolete: in-flight is lease state now.
-- guardrails: allow OBX009 -- CONCURRENTLY cannot run in the migration transaction, which already locks the ledger (ALTER TABLE above)
DROP INDEX IF EXISTS public.ix_attempts_dispatching_age;

-- At most one terminal outcome per item, whatever the workers do.
CREATE UNIQUE INDEX payment_outbox_attempts_one_terminal_per_outbox
    ON public.payment_outbox_attempts (outbox_id)
    WHERE state IN ('DISPATCHED', 'FAILED');
-- Enqueue finds a completed item by its key here, so a replay after completion returns it.
CREATE INDEX payment_outbox_attempts_terminal_by_key
    ON public.payment_outbox_attempts (instruction_id, idempotency_key)
    WHERE state IN ('DISPATCHED', 'FAILED');

-- The ledger is append-only: UPDATE, DELETE and TRUNCATE are refused for everyone,
-- owner included, with SQLSTATE P0001 and this function named in the error context.
CREATE FUNCTION public.deny_outbox_attempts_mutation()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $function$
BEGIN
    RAISE EXCEPTION 'payment_outbox_attempts is append-only: % refused', TG_OP
        USING ERRCODE = 'P0001',
              HINT = 'Record a new attempt instead of changing history.';
END
$function$;
REVOKE ALL ON FUNCTION public.deny_outbox_attempts_mutation() FROM PUBLIC;

CREATE OR REPLACE TRIGGER payment_outbox_attempts_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON public.payment_outbox_attempts
    FOR EACH STATEMENT EXECUTE FUNCTION public.deny_outbox_attempts_mutation();

-- Tunables the database enforces, so no worker can loosen them.
CREATE TABLE public.payment_outbox_settings (
    singleton boolean PRIMARY KEY DEFAULT TRUE CHECK (singleton),
    -- Attempts an item may make, lease repairs included, before it ends FAILED.
    max_attempts integer NOT NULL DEFAULT 10 CHECK (max_attempts BETWEEN 1 AND 1000)
);
INSERT INTO public.payment_outbox_settings DEFAULT VALUES;

ALTER TABLE public.participant_outbox_sequences OWNER TO outbox_owner;
ALTER TABLE public.payment_outbox_pending OWNER TO outbox_owner;
ALTER TABLE public.payment_outbox_attempts OWNER TO outbox_owner;
ALTER TABLE public.payment_outbox_settings OWNER TO outbox_owner;
ALTER TYPE public.outbox_attempt_state OWNER TO outbox_owner;
ALTER FUNCTION public.deny_outbox_attempts_mutation() OWNER TO outbox_owner;

-- Exactly the grants below, whatever an older schema had granted.
REVOKE ALL ON public.participant_outbox_sequences, public.payment_outbox_pending,
    public.payment_outbox_attempts, public.payment_outbox_settings
    FROM PUBLIC, symphony_executor, symphony_readonly, symphony_auditor;
GRANT SELECT ON public.payment_outbox_pending, public.payment_outbox_attempts
    TO symphony_readonly, symphony_auditor;
GRANT SELECT ON public.payment_outbox_settings TO symphony_auditor;
