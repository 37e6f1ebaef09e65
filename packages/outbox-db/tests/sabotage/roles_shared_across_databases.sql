-- invariant: a login granted one database's outbox roles has no authority in another database of the cluster (42501)
-- proofs: packages/outbox-db/tests/integration/test_managed_postgres.py::test_a_login_granted_one_database_s_roles_is_refused_in_another
-- What a role name left unprefixed, or a grant to "every relayer", would do: this database's
-- claim is granted to each executor role of the cluster, whichever database it serves.
DO $sabotage$
DECLARE
    executor text;
BEGIN
    FOR executor IN
        SELECT rolname FROM pg_catalog.pg_roles WHERE rolname LIKE '%symphony\_executor'
    LOOP
        EXECUTE pg_catalog.format(
            'GRANT EXECUTE ON FUNCTION public.claim_outbox_batch(integer, text, integer) TO %I',
            executor
        );
    END LOOP;
END
$sabotage$;
