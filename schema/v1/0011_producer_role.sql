-- Least privilege for producers (issue 16, part 2): a role that can enqueue and nothing else.
--
-- Until now an application that enqueues was granted symphony_executor, the relayer's role:
-- it could claim every participant's items (reading their payloads) and record outcomes, so
-- a compromised producer could mark any payment DISPATCHED with a forged rail reference.
--   symphony_producer  NEW: EXECUTE on enqueue_payment_outbox and enqueue_payment_outbox_batch
--                      (each returns the item it made or found: a producer reads back its own
--                      result, nothing else); no table, view or other function
--   symphony_executor  the relayer: claim, renew, complete, release, repair, expired-lease
--                      count (unchanged), and enqueue for now (see below)
--
-- Rolling deploy: symphony_executor KEEPS EXECUTE on the two enqueue functions, so an
-- application of the previous release, whose login is granted symphony_executor, keeps
-- enqueuing while it is narrowed (GRANT symphony_producer TO app_login; REVOKE
-- symphony_executor FROM app_login; docs/roles.md). That grant is deprecated: a later
-- migration revokes enqueue from symphony_executor, once no application relies on it.
--
-- The enqueue functions are granted by signature: an earlier migration may have dropped and
-- re-created them (a new function starts with no grants), and this file must not depend on
-- what that migration granted. Both grants are repeated here, so the outcome is the same
-- whatever came before.

-- The whole file runs in one transaction (the migrator's): names resolve only in pg_catalog
-- unless schema-qualified, a lock wait gives up instead of queueing the database behind it,
-- and no statement runs unbounded.
SET LOCAL search_path = pg_catalog, pg_temp;
SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '30min';

-- Roles are cluster-wide: another database on this server may have made it already.
DO $roles$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'symphony_producer') THEN
        CREATE ROLE symphony_producer NOLOGIN;
    END IF;
END
$roles$;

-- A role made by another database's migration may carry grants from there; in this database
-- it gets exactly these. USAGE to resolve the schema-qualified function names. (The status
-- view is not listed: repeatable files run after this one, and it grants the producer nothing.)
GRANT USAGE ON SCHEMA public TO symphony_producer;
REVOKE ALL ON public.participant_outbox_sequences, public.payment_outbox_pending,
    public.payment_outbox_attempts, public.payment_outbox_settings,
    public.outbox_operator_log, public.outbox_rail_ordering, public.outbox_schema_migrations
    FROM symphony_producer;

REVOKE ALL ON FUNCTION
    public.enqueue_payment_outbox(text, text, text, text, jsonb),
    public.enqueue_payment_outbox_batch(text[], text[], text[], text[], jsonb[])
FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
    public.enqueue_payment_outbox(text, text, text, text, jsonb),
    public.enqueue_payment_outbox_batch(text[], text[], text[], text[], jsonb[])
TO symphony_producer;
-- Deprecated, kept for the rolling deploy (see the header); a later migration revokes it.
GRANT EXECUTE ON FUNCTION
    public.enqueue_payment_outbox(text, text, text, text, jsonb),
    public.enqueue_payment_outbox_batch(text[], text[], text[], text[], jsonb[])
TO symphony_executor;
