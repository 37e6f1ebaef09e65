-- invariant: archived ledger months are verified with the live ledger against the same signed checkpoints
-- proofs: packages/outbox-evidence/tests/integration/test_archived_ledger_verification.py::test_archived_rows_verify_against_the_checkpoints_that_sealed_them
-- The archive log as an ordinary table: the file names and hashes it records are committed
-- to by nothing, so the log can be rewritten to point at another file.
DROP TRIGGER outbox_ledger_archives_digest ON public.outbox_ledger_archives;
