-- Roles of the outbox (DESIGN section 6). Group roles only (NOLOGIN): an application's
-- login role is granted one of them, and outbox-db switches to it with SET LOCAL ROLE.
--   outbox_owner       owns every outbox object; the SECURITY DEFINER functions run as it
--   symphony_executor  runtime: EXECUTE on the outbox functions, no direct DML
--   symphony_readonly  reads the queue, ledger and status view
--   symphony_auditor   reads what readonly reads, plus settings and migration history
-- Roles are cluster-wide, so creation tolerates a role another database already made.

-- The whole file runs in one transaction (the migrator's): names resolve only in pg_catalog
-- unless schema-qualified, a lock wait gives up instead of queueing the database behind it,
-- and no statement runs unbounded.
SET LOCAL search_path = pg_catalog, pg_temp;
SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '30min';

DO $roles$
DECLARE
    role_name text;
BEGIN
    FOREACH role_name IN ARRAY ARRAY[
        'outbox_owner', 'symphony_executor', 'symphony_readonly', 'symphony_auditor'
    ] LOOP
        IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = role_name) THEN
            EXECUTE pg_catalog.format('CREATE ROLE %I NOLOGIN', role_name);
        END IF;
    END LOOP;
END
$roles$;

-- The migrating role hands objects to outbox_owner (ALTER ... OWNER TO), which PostgreSQL
-- allows only to members of the new owner.
GRANT outbox_owner TO CURRENT_USER;
GRANT USAGE, CREATE ON SCHEMA public TO outbox_owner;
-- PostgreSQL 14 and databases upgraded from it let every role create in schema public. That
-- lets a caller plant an overload of a function the SECURITY DEFINER code calls by name, and
-- run it as outbox_owner (CVE-2018-1058); PostgreSQL 15 made this the default.
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO symphony_executor, symphony_readonly, symphony_auditor;
-- The migration history (created by the migrator before this file) is audit evidence.
GRANT SELECT ON public.outbox_schema_migrations TO symphony_auditor;
