-- invariant: after `outbox-db harden`, no outbox role can create a large object (42501), and the catalog says so
-- proofs: packages/outbox-db/tests/integration/test_executor_boundary.py::test_role_attempt_gets_its_sqlstate[producer-lo-create-hardened]
-- proofs: packages/outbox-db/tests/integration/test_executor_boundary.py::test_role_attempt_gets_its_sqlstate[executor-lo-from-bytea-hardened]
-- proofs: packages/outbox-db/tests/integration/test_harden.py::test_harden_leaves_no_role_a_large_object_function
-- A grant to the roles themselves, which revoking PUBLIC's does not remove: the hardening
-- must be judged by what each role may execute, not by PUBLIC's ACL entry alone.
GRANT EXECUTE ON FUNCTION pg_catalog.lo_create(oid), pg_catalog.lo_from_bytea(oid, bytea)
    TO symphony_producer, symphony_executor;
