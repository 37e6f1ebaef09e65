-- invariant: the database writes a digest of every ledger row as it inserts it, and the verifier names every row tampered with after a signed checkpoint
-- proofs: packages/outbox-evidence/tests/integration/test_ledger_tamper_evidence.py::test_the_database_digests_each_row_as_written_whatever_the_session
-- proofs: packages/outbox-evidence/tests/integration/test_ledger_tamper_evidence.py::test_the_verifier_names_each_row_the_owner_tampered_with
-- proofs: packages/outbox-evidence/tests/integration/test_ledger_tamper_evidence.py::test_verify_ledger_names_the_row_from_the_bundle_alone
-- proofs: packages/outbox-evidence/tests/integration/test_ledger_tamper_evidence.py::test_an_untouched_bundle_is_verified_by_each_checkpoints_rows_hash
-- The ledger as 0017 left it: attempts are written with no digest, so nothing commits to
-- what they held.
DROP TRIGGER payment_outbox_attempts_digest ON public.payment_outbox_attempts;
