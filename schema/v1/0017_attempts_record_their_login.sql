-- Who wrote each attempt (issue 19, part 2). An attempt names the worker_id its caller chose:
-- two logins recording as one worker were indistinguishable. Now each attempt records the
-- database login whose session wrote it, as the operator log and the ordering history do.
--
-- session_user, not current_user: the relayer switches to symphony_executor (SET ROLE) and
-- the recording functions run as outbox_owner (SECURITY DEFINER); neither changes the
-- session's login. No function names the column, so the default is what every insert gets:
-- a relayer's completion, a lease repair's requeue, a re-drive's nothing (it writes no
-- attempt). Rows written before this file keep NULL: nobody knows who wrote them, and the
-- append-only ledger must not be rewritten to guess (a default given with ADD COLUMN would
-- stamp every old row with the migrating login).

-- The whole file runs in one transaction (the migrator's): names resolve only in pg_catalog
-- unless schema-qualified, a lock wait gives up instead of queueing the database behind it,
-- and no statement runs unbounded.
SET LOCAL search_path = pg_catalog, pg_temp;
SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '30min';

ALTER TABLE public.payment_outbox_attempts ADD COLUMN recorded_by text;
ALTER TABLE public.payment_outbox_attempts ALTER COLUMN recorded_by SET DEFAULT session_user;
COMMENT ON COLUMN public.payment_outbox_attempts.recorded_by IS
    'The database login whose session wrote the attempt (NULL: written before schema 0017).';
