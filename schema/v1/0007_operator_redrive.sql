-- Operator re-drive of a FAILED item (issue 9, part 3).
--
-- A FAILED item is terminal and stays so: its ledger and its pending-row history never
-- change. An operator may ask for the instruction to be sent again; that creates a NEW item
-- for the same instruction, enqueued exactly as enqueue_payment_outbox does (the
-- participant's next sequence number, due now, a wake-up at commit), under a derived
-- idempotency key: the failed item's key + ':redrive:1' (a re-drive of a re-drive that
-- failed too: the original key + ':redrive:2', and so on). The derived key is new to the
-- rail, so the rail treats the re-drive as a new payment.
--
-- Who asked (the session's login), when (the database clock), which item, the new item and
-- why are recorded in outbox_operator_log, append-only like the ledger. Its rows are the
-- link between a failed item and its re-drive, both ways (one re-drive per item).
--
-- SQLSTATEs: P7004 the item is not FAILED (pending, leased, DISPATCHED); P7005 no such item;
-- 22023 a missing item id or a blank reason; P0001 UPDATE/DELETE/TRUNCATE of the log.

-- The whole file runs in one transaction (the migrator's): names resolve only in pg_catalog
-- unless schema-qualified, a lock wait gives up instead of queueing the database behind it,
-- and no statement runs unbounded.
SET LOCAL search_path = pg_catalog, pg_temp;
SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '30min';

-- symphony_operator: re-drives FAILED items, nothing else (DESIGN section 6). An operator's
-- login is granted it, and symphony_readonly to inspect what it re-drives.
DO $roles$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'symphony_operator') THEN
        CREATE ROLE symphony_operator NOLOGIN;
    END IF;
END
$roles$;
GRANT USAGE ON SCHEMA public TO symphony_operator;

CREATE TABLE public.outbox_operator_log (
    entry_no bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- The FAILED item and the item that re-drives it.
    outbox_id uuid NOT NULL,
    redrive_outbox_id uuid NOT NULL,
    instruction_id text NOT NULL,
    redrive_idempotency_key text NOT NULL,
    -- 1 for a re-drive of an original item, n + 1 for a re-drive of re-drive n.
    redrive_generation integer NOT NULL,
    requested_by text NOT NULL,
    requested_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    reason text NOT NULL,
    CONSTRAINT outbox_operator_log_one_redrive_per_item UNIQUE (outbox_id),
    CONSTRAINT outbox_operator_log_redrive_item_unique UNIQUE (redrive_outbox_id),
    CONSTRAINT outbox_operator_log_redrive_is_new CHECK (redrive_outbox_id <> outbox_id),
    CONSTRAINT outbox_operator_log_generation_positive CHECK (redrive_generation >= 1)
);

-- The ledger's mechanism (0002) for any append-only table: UPDATE, DELETE and TRUNCATE are
-- refused for everyone, owner included, with SQLSTATE P0001 and this function named in the
-- error context.
CREATE FUNCTION public.deny_append_only_mutation()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $function$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'P0001',
              HINT = 'Record a new entry instead of changing history.';
END
$function$;

CREATE TRIGGER outbox_operator_log_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON public.outbox_operator_log
    FOR EACH STATEMENT EXECUTE FUNCTION public.deny_append_only_mutation();

-- Re-drives the FAILED item p_outbox_id: returns its re-drive, created now or by an earlier
-- call (created = false; the reason of that earlier call is the one kept). Concurrent calls
-- for one item queue on its FAILED attempt's row lock, so the second finds the first's entry.
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
    v_root_key text;
    v_item record;
BEGIN
    IF p_outbox_id IS NULL THEN
        RAISE EXCEPTION 'outbox_id must not be null'
            USING ERRCODE = '22023', COLUMN = 'outbox_id';
    END IF;
    PERFORM public.outbox_require_text('reason', p_reason);

    SELECT a.instruction_id, a.participant_id, a.idempotency_key, a.rail_type, a.payload
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

    -- A failed re-drive keeps the original key as its root: key:redrive:1, key:redrive:2, ...
    SELECT l.redrive_generation + 1,
        left(l.redrive_idempotency_key,
            -length(':redrive:' || l.redrive_generation::text))
    INTO v_generation, v_root_key
    FROM public.outbox_operator_log AS l
    WHERE l.redrive_outbox_id = p_outbox_id;
    IF NOT FOUND THEN
        v_generation := 1;
        v_root_key := v_failed.idempotency_key;
    END IF;

    SELECT e.outbox_id, e.created INTO v_item
    FROM public.enqueue_payment_outbox(
        v_failed.instruction_id, v_failed.participant_id,
        v_root_key || ':redrive:' || v_generation::text, v_failed.rail_type, v_failed.payload
    ) AS e;
    IF NOT v_item.created THEN
        -- The derived key belongs to an item this function did not create.
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
        p_outbox_id, v_item.outbox_id, v_failed.instruction_id,
        v_root_key || ':redrive:' || v_generation::text, v_generation, session_user, p_reason
    )
    RETURNING l.outbox_id, l.redrive_outbox_id, l.redrive_idempotency_key, TRUE,
        l.requested_by, l.requested_at, l.reason;
END
$function$;

ALTER TABLE public.outbox_operator_log OWNER TO outbox_owner;
ALTER FUNCTION public.deny_append_only_mutation() OWNER TO outbox_owner;
ALTER FUNCTION public.redrive_payment_outbox(uuid, text) OWNER TO outbox_owner;

REVOKE ALL ON FUNCTION
    public.deny_append_only_mutation(),
    public.redrive_payment_outbox(uuid, text)
FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.redrive_payment_outbox(uuid, text) TO symphony_operator;

REVOKE ALL ON public.outbox_operator_log
    FROM PUBLIC, symphony_executor, symphony_readonly, symphony_auditor, symphony_operator;
GRANT SELECT ON public.outbox_operator_log TO symphony_readonly, symphony_auditor;
