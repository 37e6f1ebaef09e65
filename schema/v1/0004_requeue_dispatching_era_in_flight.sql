-- Lease repair for the items a DISPATCHING-era database had in flight when it was migrated.
--
-- The old claim deleted the pending row and wrote a DISPATCHING attempt, so an item in flight
-- lived only in the ledger: its last attempt is DISPATCHING, it has no terminal outcome and
-- no pending row. Nothing in the lease model would ever pick it up again, and a replay of its
-- key would create a second item. Like repair_expired_leases, this appends the next attempt
-- (ZOMBIE_REQUEUE, or FAILED at the retry ceiling) and puts the same outbox_id back in the
-- queue, due now; the relayer dispatches it again with the same idempotency key.
--
-- Migrate with the DISPATCHING-era relayers stopped. On a database without such items (every
-- new one) this changes nothing.

-- The whole file runs in one transaction (the migrator's): names resolve only in pg_catalog
-- unless schema-qualified, a lock wait gives up instead of queueing the database behind it,
-- and no statement runs unbounded.
SET LOCAL search_path = pg_catalog, pg_temp;
SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '30min';

WITH last_attempt AS (
    SELECT DISTINCT ON (a.outbox_id)
        a.outbox_id, a.instruction_id, a.participant_id, a.sequence_id, a.idempotency_key,
        a.rail_type, a.payload, a.attempt_no, a.state, a.claimed_at, a.worker_id
    FROM public.payment_outbox_attempts AS a
    ORDER BY a.outbox_id, a.attempt_no DESC
),
stranded AS (
    SELECT s.*, s.attempt_no + 1 AS requeue_no,
        CASE WHEN s.attempt_no + 1 >= settings.max_attempts THEN 'FAILED'
            ELSE 'ZOMBIE_REQUEUE' END::public.outbox_attempt_state AS requeue_state
    FROM last_attempt AS s
    CROSS JOIN public.payment_outbox_settings AS settings
    WHERE s.state = 'DISPATCHING'
      AND NOT EXISTS (
          SELECT FROM public.payment_outbox_pending AS p WHERE p.outbox_id = s.outbox_id
      )
      AND NOT EXISTS (
          SELECT FROM public.payment_outbox_attempts AS t
          WHERE t.outbox_id = s.outbox_id AND t.state IN ('DISPATCHED', 'FAILED')
      )
),
recorded AS (
    INSERT INTO public.payment_outbox_attempts (
        outbox_id, instruction_id, participant_id, sequence_id, idempotency_key, rail_type,
        payload, attempt_no, state, claimed_at, completed_at, error_code, error_message,
        worker_id
    )
    SELECT outbox_id, instruction_id, participant_id, sequence_id, idempotency_key, rail_type,
        payload, requeue_no, requeue_state, claimed_at, pg_catalog.now(),
        CASE WHEN requeue_state = 'FAILED' THEN 'RETRY_CEILING_REACHED'
            ELSE 'LEGACY_DISPATCHING_REQUEUED' END,
        'in flight when the DISPATCHING era ended; recorded by migration 0004',
        worker_id
    FROM stranded
)
INSERT INTO public.payment_outbox_pending (
    outbox_id, instruction_id, participant_id, sequence_id, idempotency_key, rail_type,
    payload, attempt_count, next_attempt_at
)
SELECT outbox_id, instruction_id, participant_id, sequence_id, idempotency_key, rail_type,
    payload, requeue_no, pg_catalog.now()
FROM stranded
WHERE requeue_state = 'ZOMBIE_REQUEUE';
