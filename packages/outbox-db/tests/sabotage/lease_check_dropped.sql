-- invariant: the four lease columns are all set or all NULL (CHECK, 23514)
-- proofs: packages/outbox-db/tests/integration/test_leases.py::test_inconsistent_lease_columns_are_refused
ALTER TABLE public.payment_outbox_pending DROP CONSTRAINT payment_outbox_pending_lease_consistent;
