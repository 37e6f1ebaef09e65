-- The catalogue of statements outbox-db sends. Each one names an outbox function or reads a
-- view; none writes a table directly. Blocks start with "-- name: <name>". Integer arguments
-- are cast to the function's type: a value beyond it is then 22003, not "no such function".

-- name: enqueue
SELECT outbox_id, sequence_id, created
FROM public.enqueue_payment_outbox(
    %(instruction_id)s, %(participant_id)s, %(idempotency_key)s, %(rail_type)s, %(payload)s
);

-- name: enqueue_batch
SELECT outbox_id, sequence_id, created
FROM public.enqueue_payment_outbox_batch(
    %(instruction_ids)s, %(participant_ids)s, %(idempotency_keys)s, %(rail_types)s,
    %(payloads)s
);

-- name: claim
-- The payload travels as text: the client decodes it item by item (exact numbers), so one
-- it cannot decode never fails the batch whose leases this statement commits.
SELECT outbox_id, instruction_id, participant_id, sequence_id, idempotency_key, rail_type,
    payload::text AS payload_json, attempt_count, lease_token, lease_expires_at,
    last_error_code
FROM public.claim_outbox_batch(
    %(batch_size)s::integer, %(worker_id)s, %(lease_seconds)s::integer
);

-- name: claim_rails
-- The rail-scoped claim (0013): up to limits[i] items of rail_types[i]. Payload as above.
SELECT outbox_id, instruction_id, participant_id, sequence_id, idempotency_key, rail_type,
    payload::text AS payload_json, attempt_count, lease_token, lease_expires_at,
    last_error_code
FROM public.claim_outbox_rails(
    %(worker_id)s, %(lease_seconds)s::integer, %(rail_types)s::text[], %(limits)s::integer[]
);

-- name: complete
SELECT %(outbox_id)s::uuid AS outbox_id, TRUE AS lease_held, attempt_no, state::text
FROM public.complete_outbox_attempt(
    %(outbox_id)s, %(lease_token)s, %(worker_id)s, %(state)s, %(rail_reference)s,
    %(rail_code)s, %(error_code)s, %(error_message)s, %(latency_ms)s::integer,
    %(retry_delay_seconds)s::integer
);

-- name: complete_batch
SELECT outbox_id, lease_held, attempt_no, state::text
FROM public.complete_outbox_attempts(
    %(worker_id)s, %(outbox_ids)s::uuid[], %(lease_tokens)s::uuid[], %(states)s::text[],
    %(rail_references)s::text[], %(rail_codes)s::text[], %(error_codes)s::text[],
    %(error_messages)s::text[], %(latency_ms)s::integer[], %(retry_delay_seconds)s::integer[]
);

-- name: renew
SELECT public.renew_outbox_lease(
    %(outbox_id)s, %(lease_token)s, %(worker_id)s, %(lease_seconds)s::integer
) AS lease_expires_at;

-- name: release
SELECT outbox_id
FROM public.release_outbox_leases(
    %(worker_id)s, %(outbox_ids)s::uuid[], %(lease_tokens)s::uuid[]
);

-- name: repair
SELECT outbox_id, attempt_no, new_state::text, previous_holder, lease_expired_at
FROM public.repair_expired_leases(%(batch_size)s::integer, %(worker_id)s);

-- name: status
SELECT rail_type, due_count, scheduled_count, waiting_count, leased_count, expired_lease_count,
    oldest_due_age_seconds, dispatched_count, retryable_count, failed_count,
    lease_repair_count
FROM public.outbox_status_view
ORDER BY rail_type NULLS FIRST;

-- name: unserved_rails
SELECT rail_type, due_count, oldest_due_age_seconds, last_served_at
FROM public.outbox_unserved_rails
ORDER BY rail_type;

-- name: redrive
SELECT outbox_id, redrive_outbox_id, idempotency_key, created, requested_by, requested_at,
    reason
FROM public.redrive_payment_outbox(%(outbox_id)s, %(reason)s);

-- name: set_rail_ordering
SELECT entry_no, rail_type, ordered, requested_by, requested_at, reason
FROM public.set_outbox_rail_ordering(%(rail_type)s, %(ordered)s, %(reason)s);

-- name: rail_orderings
-- The whole ordering history, oldest first: the last entry of a rail is the one in force.
SELECT entry_no, rail_type, ordered, requested_by, requested_at, reason
FROM public.outbox_rail_ordering
ORDER BY entry_no;

-- name: savepoint
-- An enqueue inside a transaction it shares (OutboxTransaction): a refused enqueue (a key
-- conflict, an invalid request) is undone alone, and the transaction around stays usable.
SAVEPOINT outbox_enqueue;

-- name: release_savepoint
RELEASE SAVEPOINT outbox_enqueue;

-- name: rollback_to_savepoint
ROLLBACK TO SAVEPOINT outbox_enqueue;

-- name: read_snapshot
-- Several reads that must describe one moment (an item may leave the queue for the ledger
-- between two statements otherwise).
SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY;

-- name: history_items
-- The items the selector names (exactly one of the three is not null). An item is either in
-- the queue or has its terminal attempt in the ledger (the homes enqueue looks in), so the
-- ledger is read through its terminal indexes: by outbox_id or instruction_id without a scan.
SELECT outbox_id, instruction_id, participant_id, sequence_id, idempotency_key, rail_type
FROM (
    SELECT p.outbox_id, p.instruction_id, p.participant_id, p.sequence_id, p.idempotency_key,
        p.rail_type
    FROM public.payment_outbox_pending AS p
    UNION
    SELECT a.outbox_id, a.instruction_id, a.participant_id, a.sequence_id, a.idempotency_key,
        a.rail_type
    FROM public.payment_outbox_attempts AS a
    WHERE a.state IN ('DISPATCHED', 'FAILED')
) AS i
WHERE outbox_id = %(outbox_id)s
    OR instruction_id = %(instruction_id)s
    OR idempotency_key = %(idempotency_key)s
ORDER BY instruction_id, participant_id, sequence_id;

-- name: history_pending
SELECT outbox_id, attempt_count, next_attempt_at, created_at, claimed_by, claimed_at,
    lease_expires_at, ordered, awaiting_predecessor
FROM public.payment_outbox_pending
WHERE outbox_id = ANY(%(outbox_ids)s::uuid[]);

-- name: history_attempts
SELECT outbox_id, instruction_id, participant_id, idempotency_key, rail_type, payload,
    attempt_no, state::text, claimed_at, completed_at, rail_reference, rail_code, error_code,
    error_message, latency_ms, worker_id, recorded_by
FROM public.payment_outbox_attempts
WHERE outbox_id = ANY(%(outbox_ids)s::uuid[])
ORDER BY outbox_id, attempt_no;

-- name: history_links
-- Operator log entries that re-drove one of the items, or created one of them.
SELECT entry_no, outbox_id, redrive_outbox_id, redrive_idempotency_key, redrive_generation,
    requested_by, requested_at, reason
FROM public.outbox_operator_log
WHERE outbox_id = ANY(%(outbox_ids)s::uuid[]) OR redrive_outbox_id = ANY(%(outbox_ids)s::uuid[])
ORDER BY entry_no;

-- name: ledger
-- Every attempt of one rail_type (or of all, when NULL) in ledger order: what an end-to-end
-- audit compares with what the rail received. Needs symphony_readonly or symphony_auditor.
SELECT outbox_id, instruction_id, participant_id, idempotency_key, rail_type, payload,
    attempt_no, state::text, claimed_at, completed_at, rail_reference, rail_code, error_code,
    error_message, latency_ms, worker_id, recorded_by
FROM public.payment_outbox_attempts
WHERE %(rail_type)s::text IS NULL OR rail_type = %(rail_type)s::text
ORDER BY outbox_id, attempt_no;

-- name: migrations_table
CREATE TABLE IF NOT EXISTS public.outbox_schema_migrations (
    filename text PRIMARY KEY,
    checksum text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);

-- name: migrations_lock
-- One migrator at a time per database; released when the migrator disconnects.
SELECT pg_advisory_lock(hashtext('outbox_schema_migrations'));

-- name: migration_search_path
-- Each file runs with only pg_catalog searched: an object or operator planted in a schema
-- others can write cannot capture an unqualified name while a superuser migrates.
SET LOCAL search_path = pg_catalog, pg_temp;

-- name: migrations_applied
SELECT filename, checksum FROM public.outbox_schema_migrations ORDER BY filename;

-- name: migration_record
INSERT INTO public.outbox_schema_migrations (filename, checksum)
VALUES (%(filename)s, %(checksum)s)
ON CONFLICT (filename) DO UPDATE SET checksum = EXCLUDED.checksum, applied_at = now();

-- name: server_version
SELECT current_setting('server_version') AS server_version;

-- name: expired_lease_count
SELECT public.outbox_expired_lease_count() AS expired_lease_count;

-- name: listen_enqueued
-- The channel every new pending item is announced on at commit (0005).
LISTEN outbox_items_enqueued;

-- name: backend_pid
-- The server process answering; a pooler (PgBouncer) gives its clients another number.
SELECT pg_backend_pid();

-- name: announce_wakeup_probe
-- A notification on the enqueue channel that a listener can recognise by its payload: does
-- what an enqueue announces reach it? (Listeners take any notification as "claim now".)
SELECT true AS sent FROM pg_notify('outbox_items_enqueued', %(token)s);

-- name: queue_depth
-- Per rail, from the pending table alone (0014): what a metrics scrape reads.
SELECT rail_type, due_count, scheduled_count, waiting_count, leased_count,
       expired_lease_count, oldest_due_age_seconds
FROM public.outbox_queue_depth();

-- name: set_trace_context
-- The trace context the transaction's next inserts of items take (0015); '' clears it.
SELECT set_config('outbox.trace_context', %(trace_context)s, true);

-- name: trace_contexts
SELECT outbox_id, trace_context FROM public.outbox_trace_contexts(%(worker_id)s, %(outbox_ids)s);

-- name: outbox_owner
-- Who owns the outbox's tables names the database's roles (RoleNames.of_owner); NULL before
-- the first migration. Any login may read the catalog.
SELECT pg_catalog.pg_get_userbyid(c.relowner) AS owner
FROM pg_catalog.pg_class AS c
WHERE c.oid = pg_catalog.to_regclass('public.payment_outbox_pending');

-- name: role_member
-- Whether the current login is already a member of the role (NULL: no such role).
SELECT pg_catalog.pg_has_role(CURRENT_USER, r.oid, 'MEMBER') AS member
FROM pg_catalog.pg_roles AS r
WHERE r.rolname = %(role)s;

-- name: owner_serves_databases
-- The other databases of the cluster with objects the role owns: databases sharing its
-- authority. pg_shdepend is a shared catalog any login may read.
SELECT DISTINCT d.datname
FROM pg_catalog.pg_shdepend AS s
JOIN pg_catalog.pg_database AS d ON d.oid = s.dbid
JOIN pg_catalog.pg_roles AS r ON r.oid = s.refobjid
WHERE r.rolname = %(role)s AND s.deptype = 'o' AND d.datname <> pg_catalog.current_database()
ORDER BY 1;

-- name: prepare_ledger_months
-- This month's ledger partition and the next %(months_ahead)s months' (0019): those created.
SELECT partition_name FROM public.outbox_prepare_ledger_months(%(months_ahead)s) AS partition_name;

-- name: ledger_months
-- Every ledger month: its partition, whether still in the ledger, and its archive (0019).
SELECT ledger_month, partition_name, attached, range_end, archive_file, archive_rows,
    archive_sha256
FROM public.outbox_ledger_months();

-- name: detach_ledger_month
-- Take month %(month)s out of the ledger, past %(keep_months)s months kept and with no item
-- pending: the rows it holds.
SELECT public.outbox_detach_ledger_month(%(month)s::date, %(keep_months)s) AS row_count;

-- name: archived_ledger_rows
-- A detached month's rows with their digests, as its archive file holds them. xid8 as text.
SELECT source, row_key, fields, row_no, digest, written_by_xact::text AS written_by_xact
FROM public.outbox_archived_ledger_rows(%(month)s::date);

-- name: record_ledger_archive
SELECT entry_no,
    CASE WHEN ledger_month = '-infinity' THEN 'legacy'
        ELSE to_char(ledger_month, 'YYYY-MM') END AS ledger_month,
    file_name, row_count, sha256, archived_by, archived_at
FROM public.outbox_record_ledger_archive(%(month)s::date, %(file_name)s, %(sha256)s);

-- name: drop_archived_ledger_month
SELECT public.outbox_drop_archived_ledger_month(%(month)s::date) AS row_count;
