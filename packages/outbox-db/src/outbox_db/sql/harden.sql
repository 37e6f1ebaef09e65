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
