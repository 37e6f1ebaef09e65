-- The catalogue of read-only statements outbox_db.audit sends for the evidence bundle. They
-- run inside one REPEATABLE READ READ ONLY transaction as the database's auditor role
-- (symphony_auditor, prefixed on a database migrated with a role prefix; the switch is in
-- audit.py), after audit_search_path: with only pg_catalog searched, the pg_get_*def
-- functions and regclass / regprocedure casts name every outbox object with its schema, the
-- same way on every server.
-- "The outbox" is what its owner role owns in schema public (%(owner)s), plus the migration
-- history, which the migrating role owns. Python sorts the rows (the server's collation
-- must not decide the order of the evidence). Blocks start with "-- name: <name>".

-- name: audit_search_path
SET LOCAL search_path = pg_catalog, pg_temp;

-- name: grants
-- Privileges on the outbox relations, functions and schema public, with default ACLs made
-- explicit (NULL means the owner's defaults; grantee 0 is PUBLIC), and the members of the
-- outbox roles as privilege MEMBER (grantable: the member may grant the role on).
WITH objects AS (
    SELECT
        CASE c.relkind
            WHEN 'S' THEN 'sequence' WHEN 'v' THEN 'view' WHEN 'm' THEN 'view' ELSE 'table'
        END AS object_kind,
        c.oid::regclass::text AS object_name,
        coalesce(
            c.relacl,
            acldefault((CASE c.relkind WHEN 'S' THEN 's' ELSE 'r' END)::"char", c.relowner)
        ) AS acl
    FROM pg_class AS c
    WHERE c.relnamespace = 'public'::regnamespace
        AND c.relkind IN ('r', 'p', 'v', 'm', 'S')
        AND (pg_get_userbyid(c.relowner) = %(owner)s OR c.relname = 'outbox_schema_migrations')
    UNION ALL
    SELECT 'function', p.oid::regprocedure::text, coalesce(p.proacl, acldefault('f', p.proowner))
    FROM pg_proc AS p
    WHERE p.pronamespace = 'public'::regnamespace AND pg_get_userbyid(p.proowner) = %(owner)s
    UNION ALL
    SELECT 'schema', n.nspname::text, coalesce(n.nspacl, acldefault('n', n.nspowner))
    FROM pg_namespace AS n
    WHERE n.nspname = 'public'
)
SELECT o.object_kind, o.object_name,
    CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee)::text END AS grantee,
    a.privilege_type AS privilege, a.is_grantable AS grantable
FROM objects AS o, aclexplode(o.acl) AS a
UNION ALL
SELECT 'role', r.rolname::text, pg_get_userbyid(m.member)::text, 'MEMBER', m.admin_option
FROM pg_auth_members AS m
JOIN pg_roles AS r ON r.oid = m.roleid
WHERE r.rolname = %(owner)s OR r.rolname = ANY (%(groups)s);

-- name: function_definitions
SELECT p.oid::regprocedure::text AS signature, pg_get_userbyid(p.proowner)::text AS owner,
    p.prosecdef AS security_definer, pg_get_functiondef(p.oid) AS definition
FROM pg_proc AS p
WHERE p.pronamespace = 'public'::regnamespace AND p.prokind IN ('f', 'p')
    AND pg_get_userbyid(p.proowner) = %(owner)s;

-- name: constraint_columns
-- The columns a constraint covers (for the lease CHECK: the lease columns), in table order.
SELECT c.conrelid::regclass::text AS table_name, a.attname::text AS name,
    format_type(a.atttypid, a.atttypmod) AS data_type, a.attnotnull AS not_null,
    pg_get_expr(d.adbin, d.adrelid) AS default_value
FROM pg_constraint AS c
JOIN pg_attribute AS a ON a.attrelid = c.conrelid AND a.attnum = ANY (c.conkey)
LEFT JOIN pg_attrdef AS d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE c.connamespace = 'public'::regnamespace AND c.conname = %(constraint)s
ORDER BY a.attnum;

-- name: column
-- One column of an outbox table, as its DDL would declare it (NULL row: no such column).
SELECT a.attrelid::regclass::text AS table_name, a.attname::text AS name,
    format_type(a.atttypid, a.atttypmod) AS data_type, a.attnotnull AS not_null,
    pg_get_expr(d.adbin, d.adrelid) AS default_value
FROM pg_attribute AS a
LEFT JOIN pg_attrdef AS d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE a.attrelid = to_regclass(%(table)s) AND a.attname = %(column)s AND NOT a.attisdropped;

-- name: constraints
SELECT c.conrelid::regclass::text AS table_name, c.conname::text AS name,
    pg_get_constraintdef(c.oid) AS definition
FROM pg_constraint AS c
JOIN pg_class AS t ON t.oid = c.conrelid
WHERE t.relnamespace = 'public'::regnamespace AND pg_get_userbyid(t.relowner) = %(owner)s;

-- name: triggers
SELECT t.tgrelid::regclass::text AS table_name, t.tgname::text AS name,
    pg_get_triggerdef(t.oid) AS definition
FROM pg_trigger AS t
JOIN pg_class AS c ON c.oid = t.tgrelid
WHERE NOT t.tgisinternal AND c.relnamespace = 'public'::regnamespace
    AND pg_get_userbyid(c.relowner) = %(owner)s;

-- name: indexes
SELECT i.indrelid::regclass::text AS table_name, x.relname::text AS name,
    pg_get_indexdef(i.indexrelid) AS definition
FROM pg_index AS i
JOIN pg_class AS x ON x.oid = i.indexrelid
JOIN pg_class AS t ON t.oid = i.indrelid
WHERE t.relnamespace = 'public'::regnamespace AND pg_get_userbyid(t.relowner) = %(owner)s;

-- name: views
SELECT c.oid::regclass::text AS name, pg_get_viewdef(c.oid, TRUE) AS definition
FROM pg_class AS c
WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('v', 'm')
    AND pg_get_userbyid(c.relowner) = %(owner)s;

-- name: applied_migrations
SELECT filename, checksum FROM public.outbox_schema_migrations;

-- name: operator_log
-- Every operator action, oldest first (entry_no is the order they were recorded in).
SELECT entry_no, outbox_id, redrive_outbox_id, redrive_idempotency_key, redrive_generation,
    requested_by, requested_at, reason
FROM public.outbox_operator_log
ORDER BY entry_no;

-- name: rail_orderings
-- Every rail ordering switch, oldest first: the last entry of a rail is in force.
SELECT entry_no, rail_type, ordered, requested_by, requested_at, reason
FROM public.outbox_rail_ordering
ORDER BY entry_no;

-- name: dispatching_count
SELECT COUNT(*) FROM public.payment_outbox_attempts WHERE state = 'DISPATCHING';
