-- invariant: every lock wait inside the outbox's functions is bounded by the function itself, so an idle client transaction cannot hold a participant's enqueues and re-drives without bound (55P03)
-- proofs: packages/outbox-db/tests/integration/test_hostile_sessions.py::test_an_enqueue_behind_an_idle_service_transaction_gives_up_at_the_bound
-- proofs: packages/outbox-db/tests/integration/test_hostile_sessions.py::test_an_enqueue_behind_a_redrive_left_open_gives_up_at_the_bound
-- Without the functions' own lock_timeout, the caller's setting decides: a caller that asks
-- to wait forever queues behind the idle transaction until something else gives up.
ALTER FUNCTION public.enqueue_payment_outbox(text, text, text, text, jsonb) RESET lock_timeout;
ALTER FUNCTION public.enqueue_payment_outbox_batch(text[], text[], text[], text[], jsonb[])
    RESET lock_timeout;
ALTER FUNCTION public.redrive_payment_outbox(uuid, text) RESET lock_timeout;
