-- invariant: after `outbox-db harden`, every DDL statement on an outbox object is recorded where the outbox's owner can neither delete the record nor stop the recording (42501)
-- proofs: packages/outbox-db/tests/integration/test_harden.py::test_the_owners_ddl_is_recorded_where_the_owner_cannot_touch_it
-- A superuser made the record's table before harden and let the owner delete from it: harden
-- keeps an existing table, so the record must be judged by what the owner may do to it.
CREATE SCHEMA outbox_ddl;
CREATE TABLE outbox_ddl.ddl_log (
    entry_no bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    recorded_at timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    login text NOT NULL DEFAULT pg_catalog."session_user"(),
    command_tag text NOT NULL,
    object_type text,
    object_identity text,
    statement text
);
GRANT USAGE ON SCHEMA outbox_ddl TO outbox_owner;
GRANT SELECT, DELETE ON outbox_ddl.ddl_log TO outbox_owner;
