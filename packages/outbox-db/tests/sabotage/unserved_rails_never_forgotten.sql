-- invariant: a rail counts as served only while a relayer announced it within the last minute
-- proofs: packages/outbox-db/tests/integration/test_rail_scoped_claims.py::test_a_rail_is_unserved_until_announced_and_again_a_minute_after_its_last_claim
-- A rail once announced stays served for good: relayers that have gone leave it looking
-- served, and its items wait unseen.
CREATE OR REPLACE VIEW public.outbox_unserved_rails AS
SELECT p.rail_type, count(*) AS due_count,
    extract(EPOCH FROM now() - min(p.next_attempt_at))::double precision
        AS oldest_due_age_seconds,
    NULL::timestamptz AS last_served_at
FROM public.payment_outbox_pending AS p
WHERE p.claimed_by IS NULL AND NOT p.awaiting_predecessor AND p.next_attempt_at <= now()
  AND NOT EXISTS (SELECT FROM public.outbox_rail_servers AS o WHERE o.rail_type = p.rail_type)
GROUP BY p.rail_type;
