-- invariant: each attempt records the database login whose session wrote it
-- proofs: packages/outbox-db/tests/integration/test_attempt_logins.py
-- proofs: packages/outbox-evidence/tests/integration/test_bundle_from_a_database.py::test_a_bundle_from_a_migrated_database_is_complete_and_verifies
-- The ledger as 0016 had it in effect: nothing fills the column, so an attempt says only the
-- worker_id its caller chose.
ALTER TABLE public.payment_outbox_attempts ALTER COLUMN recorded_by DROP DEFAULT;
