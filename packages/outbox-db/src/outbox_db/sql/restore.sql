-- A ledger month's archive file loaded into any PostgreSQL database for an audit's queries
-- (`outbox-db restore-archive`): one typed row per attempt, as outbox_attempt_fields (0018)
-- encodes it, the payload by its SHA-256. Not part of the outbox schema: a scratch table,
-- made if missing. Blocks start with "-- name: <name>".

-- name: create_archived_attempts
CREATE TABLE IF NOT EXISTS public.outbox_archived_attempts (
    attempt_id uuid PRIMARY KEY,
    outbox_id uuid NOT NULL,
    instruction_id text NOT NULL,
    participant_id text NOT NULL,
    sequence_id bigint NOT NULL,
    idempotency_key text NOT NULL,
    rail_type text NOT NULL,
    payload_sha256 text NOT NULL,
    attempt_no integer NOT NULL,
    state text NOT NULL,
    claimed_at timestamptz,
    completed_at timestamptz NOT NULL,
    rail_reference text,
    rail_code text,
    error_code text,
    error_message text,
    latency_ms integer,
    worker_id text,
    recorded_by text,
    row_no bigint,
    digest bytea NOT NULL,
    archive_file text NOT NULL
);

-- name: insert_archived_attempt
-- One row; a row already restored (the same attempt_id) is left as it is.
INSERT INTO public.outbox_archived_attempts VALUES (
    %s::uuid, %s::uuid, %s, %s, %s::bigint, %s, %s, %s, %s::integer, %s, %s::timestamptz,
    %s::timestamptz, %s, %s, %s, %s, %s::integer, %s, %s, %s, %s, %s
)
ON CONFLICT (attempt_id) DO NOTHING;
