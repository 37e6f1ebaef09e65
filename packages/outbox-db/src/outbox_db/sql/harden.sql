-- The optional superuser hardening (`outbox-db harden`) and the catalog facts that say whether
-- it is in effect. Blocks start with "-- name: <name>".
--
-- Why a superuser: the server-side large-object functions live in pg_catalog, owned by the
-- bootstrap superuser, and PostgreSQL grants EXECUTE on most of them to PUBLIC. Any login of
-- the outbox (a producer or a relayer, say) can create large objects that outlive its
-- session (lo_create(0), lo_from_bytea), fill the disk with them, and stage data in the
-- database outside every outbox table and grant.
-- Only the functions' owner, a superuser, can revoke that: a migrating owner that is not
-- superuser gets a WARNING ("no privileges could be revoked") and nothing changes. So the
-- step is not a migration: it is run on purpose, per database (pg_proc is per database), and
-- the evidence bundle reads its effect from the catalog ACLs (never from a log an ordinary
-- login could write).

-- name: harden_search_path
SET LOCAL search_path = pg_catalog, pg_temp;

-- name: harden_login
-- is_superuser follows the current user (the login here: no SET ROLE in this session).
SELECT current_user::text AS login, current_setting('is_superuser') = 'on' AS superuser;

-- name: revoke_large_object_functions
-- Every server-side large-object function, grouped by what it gives a caller. The outbox and
-- its roles use none; a database whose own applications use large objects grants EXECUTE on
-- the ones they need to their roles, explicitly, after this step.
REVOKE ALL ON FUNCTION
    -- create objects that persist after the session
    pg_catalog.lo_creat(integer),
    pg_catalog.lo_create(oid),
    pg_catalog.lo_from_bytea(oid, bytea),
    -- change or remove objects (a caller's own, or any under lo_compat_privileges)
    pg_catalog.lo_put(oid, bigint, bytea),
    pg_catalog.lowrite(integer, bytea),
    pg_catalog.lo_truncate(integer, integer),
    pg_catalog.lo_truncate64(integer, bigint),
    pg_catalog.lo_unlink(oid),
    -- read objects, open and move over them
    pg_catalog.lo_open(oid, integer),
    pg_catalog.loread(integer, integer),
    pg_catalog.lo_get(oid),
    pg_catalog.lo_get(oid, bigint, integer),
    pg_catalog.lo_lseek(integer, integer, integer),
    pg_catalog.lo_lseek64(integer, bigint, integer),
    pg_catalog.lo_tell(integer),
    pg_catalog.lo_tell64(integer),
    pg_catalog.lo_close(integer),
    -- server files (superuser-only already; listed so it stays so)
    pg_catalog.lo_import(text),
    pg_catalog.lo_import(text, oid),
    pg_catalog.lo_export(oid, text)
FROM PUBLIC;

-- name: large_object_privileges
-- Who may execute each server-side large-object function, as the catalog says now: PUBLIC
-- (from the ACL, NULL meaning the built-in default, which grants PUBLIC) and each of the
-- database's outbox group roles, under the names this database gives them (has_function_
-- privilege: directly, through PUBLIC or through a granted role). The selection is every
-- pg_catalog function named lo_* or loread/lowrite, not the list above: a function a newer
-- server adds, and the step does not revoke, shows up as not hardened. (The percent sign is
-- doubled: the statement takes parameters.)
SELECT p.oid::regprocedure::text AS signature,
    EXISTS (
        SELECT FROM aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) AS acl
        WHERE acl.grantee = 0 AND acl.privilege_type = 'EXECUTE'
    ) AS public_may_execute,
    coalesce(
        array_agg(r.rolname::text ORDER BY r.rolname)
            FILTER (WHERE has_function_privilege(r.oid, p.oid, 'EXECUTE')),
        '{}'
    ) AS roles_may_execute
FROM pg_proc AS p
LEFT JOIN pg_roles AS r ON r.rolname = ANY (%(groups)s)
WHERE p.pronamespace = 'pg_catalog'::regnamespace
    AND (p.proname LIKE 'lo\_%%' OR p.proname IN ('loread', 'lowrite'))
GROUP BY p.oid, p.proacl, p.proowner;

-- name: lo_compat_privileges
-- On, the server skips the per-object privilege checks of large objects (off by default).
SELECT current_setting('lo_compat_privileges') = 'on' AS lo_compat_privileges;

-- DDL recording. The owner of the outbox's objects can disable the ledger's triggers or
-- rewrite a column with ALTER TABLE ... USING, which no row trigger sees (the ledger's
-- digests make the rows' change evident; this says who issued which statement, and when).
-- Only a superuser may create an event trigger, and only a superuser may drop or disable one,
-- so the record lives in a schema, a table and functions the superuser running `harden` owns:
-- the owner's DDL is recorded where the owner can neither write nor delete. It keeps the
-- command, the object and the login (session_user) of every DDL statement on an object in
-- schema public, and the statement's text for forensics (the bundle shows no statement text).

-- name: ddl_schema_owner
-- The schema's owner, if it exists, and whether a superuser: a schema someone else made first
-- would let its owner edit the record, so harden refuses it.
SELECT r.rolname::text AS owner, r.rolsuper AS superuser
FROM pg_namespace AS n
JOIN pg_roles AS r ON r.oid = n.nspowner
WHERE n.nspname = 'outbox_ddl';

-- name: create_ddl_record
CREATE SCHEMA IF NOT EXISTS outbox_ddl;
REVOKE ALL ON SCHEMA outbox_ddl FROM PUBLIC;
CREATE TABLE IF NOT EXISTS outbox_ddl.ddl_log (
    entry_no bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    recorded_at timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    login text NOT NULL DEFAULT pg_catalog."session_user"(),
    command_tag text NOT NULL,
    object_type text,
    object_identity text,
    statement text
);
REVOKE ALL ON outbox_ddl.ddl_log FROM PUBLIC;
CREATE OR REPLACE FUNCTION outbox_ddl.record_ddl()
RETURNS event_trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $function$
BEGIN
    INSERT INTO outbox_ddl.ddl_log (command_tag, object_type, object_identity, statement)
    SELECT c.command_tag, c.object_type, c.object_identity, pg_catalog.current_query()
    FROM pg_catalog.pg_event_trigger_ddl_commands() AS c
    WHERE c.schema_name = 'public';
END
$function$;
CREATE OR REPLACE FUNCTION outbox_ddl.record_drop()
RETURNS event_trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $function$
BEGIN
    INSERT INTO outbox_ddl.ddl_log (command_tag, object_type, object_identity, statement)
    SELECT TG_TAG, o.object_type, o.object_identity, pg_catalog.current_query()
    FROM pg_catalog.pg_event_trigger_dropped_objects() AS o
    WHERE o.schema_name = 'public' AND o.original;
END
$function$;
REVOKE ALL ON FUNCTION outbox_ddl.record_ddl(), outbox_ddl.record_drop() FROM PUBLIC;
DROP EVENT TRIGGER IF EXISTS outbox_record_ddl;
DROP EVENT TRIGGER IF EXISTS outbox_record_drops;
CREATE EVENT TRIGGER outbox_record_ddl ON ddl_command_end
    EXECUTE FUNCTION outbox_ddl.record_ddl();
CREATE EVENT TRIGGER outbox_record_drops ON sql_drop
    EXECUTE FUNCTION outbox_ddl.record_drop();

-- name: ddl_recording
-- Whether both event triggers exist, fire (not disabled) and run a function a superuser owns,
-- and no outbox role (the owner included) may write to the record: a table harden found
-- already made, with grants of its own, counts as not recording.
SELECT count(*) = 2 AND NOT EXISTS (
    SELECT FROM pg_roles AS o
    WHERE o.rolname = ANY (%(roles)s)
        AND to_regnamespace('outbox_ddl') IS NOT NULL
        AND has_schema_privilege(o.oid, 'outbox_ddl', 'USAGE')
        AND has_table_privilege(o.oid, 'outbox_ddl.ddl_log', 'INSERT, UPDATE, DELETE, TRUNCATE')
) AS installed
FROM pg_event_trigger AS e
JOIN pg_proc AS p ON p.oid = e.evtfoid
JOIN pg_roles AS r ON r.oid = p.proowner
WHERE e.evtname IN ('outbox_record_ddl', 'outbox_record_drops')
    AND e.evtenabled <> 'D'
    AND r.rolsuper;

-- name: ddl_log
-- The recorded statements, oldest first, when the reader may read them (the auditor, once
-- harden granted it); none otherwise.
SELECT l.entry_no, l.recorded_at, l.login, l.command_tag, l.object_type, l.object_identity
FROM outbox_ddl.ddl_log AS l
ORDER BY l.entry_no;

-- name: ddl_log_readable
-- In this order: naming a table in a schema the reader may not use is an error.
SELECT CASE
    WHEN to_regnamespace('outbox_ddl') IS NULL THEN false
    WHEN NOT has_schema_privilege('outbox_ddl', 'USAGE') THEN false
    WHEN to_regclass('outbox_ddl.ddl_log') IS NULL THEN false
    ELSE has_table_privilege('outbox_ddl.ddl_log', 'SELECT')
END AS readable;

-- name: grant_ddl_log
-- The auditor reads the record (the bundle's 14_hardening.txt); nobody else.
GRANT USAGE ON SCHEMA outbox_ddl TO {auditor};
GRANT SELECT ON outbox_ddl.ddl_log TO {auditor};
