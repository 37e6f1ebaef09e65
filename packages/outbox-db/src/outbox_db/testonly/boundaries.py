"""The role boundary as SQL the proofs run: a write per table and verb, a call per function.

DESIGN section 6 grants each role what it needs; these tables are what the proofs try as
every role, expecting 42501 where the grants say no (test_role_refusals.py) and a result
where they say yes (test_role_grants.py). Each statement would change the seeded rows if it
were allowed, so a refusal is also seen to change nothing.
"""

from __future__ import annotations

from typing import Final, LiteralString

from outbox_db.records import Role

__all__ = [
    "CALLS",
    "ENQUEUE_FUNCTIONS",
    "HELPER_CALLS",
    "READERS",
    "RELATIONS",
    "RUNTIME_ROLES",
    "VIEWS",
    "WRITES",
]

READERS: Final = (Role.READONLY, Role.AUDITOR)
RUNTIME_ROLES: Final = (Role.PRODUCER, Role.EXECUTOR, *READERS)

# Direct writes, one per table and verb. Each would change the seeded rows if it were allowed,
# and none reads a column, so the only privilege it needs is the one its verb names.
WRITES: Final[dict[str, dict[str, LiteralString]]] = {
    "participant_outbox_sequences": {
        "insert": "INSERT INTO public.participant_outbox_sequences"
        " (participant_id, next_sequence_id) VALUES ('participant-forged', 1)",
        "update": "UPDATE public.participant_outbox_sequences SET next_sequence_id = 1000",
        "delete": "DELETE FROM public.participant_outbox_sequences",
        "truncate": "TRUNCATE public.participant_outbox_sequences",
    },
    "payment_outbox_pending": {
        "insert": "INSERT INTO public.payment_outbox_pending"
        " (instruction_id, participant_id, sequence_id, idempotency_key, rail_type, payload)"
        " VALUES ('ins-forged', 'participant-a', 1000, 'key-forged', 'rtp', '{}')",
        "update": "UPDATE public.payment_outbox_pending SET payload = '{\"forged\": true}'",
        "delete": "DELETE FROM public.payment_outbox_pending",
        "truncate": "TRUNCATE public.payment_outbox_pending",
    },
    "outbox_terminal_outcomes": {
        "insert": "INSERT INTO public.outbox_terminal_outcomes (outbox_id)"
        " VALUES (pg_catalog.gen_random_uuid())",
        "update": "UPDATE public.outbox_terminal_outcomes"
        " SET outbox_id = pg_catalog.gen_random_uuid()",
        "delete": "DELETE FROM public.outbox_terminal_outcomes",
        "truncate": "TRUNCATE public.outbox_terminal_outcomes",
    },
    "payment_outbox_attempts": {
        "insert": "INSERT INTO public.payment_outbox_attempts"
        " (outbox_id, instruction_id, participant_id, sequence_id, idempotency_key, rail_type,"
        " payload, attempt_no, state)"
        " VALUES (pg_catalog.gen_random_uuid(), 'ins-forged', 'participant-a', 1000,"
        " 'key-forged', 'rtp', '{}', 1, 'DISPATCHED')",
        "update": "UPDATE public.payment_outbox_attempts SET state = 'FAILED'",
        "delete": "DELETE FROM public.payment_outbox_attempts",
        "truncate": "TRUNCATE public.payment_outbox_attempts",
    },
    "payment_outbox_settings": {
        "insert": "INSERT INTO public.payment_outbox_settings (singleton, max_attempts)"
        " VALUES (FALSE, 1000)",
        "update": "UPDATE public.payment_outbox_settings SET max_attempts = 1000",
        "delete": "DELETE FROM public.payment_outbox_settings",
        "truncate": "TRUNCATE public.payment_outbox_settings",
    },
}

# One call per outbox function, with arguments that would change the seeded state if the call
# were allowed: enqueue adds an item, claim leases the due one, repair records the expired one.
CALLS: Final[dict[str, LiteralString]] = {
    "enqueue_payment_outbox": "SELECT * FROM public.enqueue_payment_outbox("
    "'ins-forged', 'participant-a', 'key-forged', 'rtp', '{\"amount\": \"1.00\"}')",
    "enqueue_payment_outbox_batch": "SELECT * FROM public.enqueue_payment_outbox_batch("
    "ARRAY['ins-forged-batch'], ARRAY['participant-a'], ARRAY['key-forged-batch'], ARRAY['rtp'],"
    ' ARRAY[\'{"amount": "1.00"}\'::jsonb])',
    "claim_outbox_batch": "SELECT * FROM public.claim_outbox_batch(1000, 'worker-forged', 3600)",
    "claim_outbox_rails": "SELECT * FROM public.claim_outbox_rails("
    "'worker-forged', 3600, ARRAY['rtp'], ARRAY[1000])",
    "complete_outbox_attempt": "SELECT * FROM public.complete_outbox_attempt("
    "pg_catalog.gen_random_uuid(), pg_catalog.gen_random_uuid(), 'worker-forged', 'FAILED',"
    " NULL, NULL, NULL, NULL, NULL, NULL)",
    "complete_outbox_attempts": "SELECT * FROM public.complete_outbox_attempts('worker-forged',"
    " ARRAY[pg_catalog.gen_random_uuid()], ARRAY[pg_catalog.gen_random_uuid()],"
    " ARRAY['FAILED'], ARRAY[NULL], ARRAY[NULL], ARRAY[NULL], ARRAY[NULL], ARRAY[NULL]::int[],"
    " ARRAY[NULL]::int[])",
    "renew_outbox_lease": "SELECT public.renew_outbox_lease("
    "pg_catalog.gen_random_uuid(), pg_catalog.gen_random_uuid(), 'worker-forged', 3600)",
    "release_outbox_leases": "SELECT * FROM public.release_outbox_leases('worker-forged',"
    " ARRAY[pg_catalog.gen_random_uuid()], ARRAY[pg_catalog.gen_random_uuid()])",
    "repair_expired_leases": "SELECT * FROM public.repair_expired_leases(1000, 'worker-forged')",
    "outbox_expired_lease_count": "SELECT public.outbox_expired_lease_count()",
}
# Internal validators the functions above call as their owner; nobody else may call them.
HELPER_CALLS: Final[dict[str, LiteralString]] = {
    "outbox_require_text": "SELECT public.outbox_require_text('worker_id', 'worker-forged')",
    "outbox_require_range": "SELECT public.outbox_require_range('batch_size', 1, 1, 1000)",
}
ENQUEUE_FUNCTIONS: Final = frozenset({"enqueue_payment_outbox", "enqueue_payment_outbox_batch"})
RELATIONS: Final[dict[str, LiteralString]] = {
    "participant_outbox_sequences": "SELECT * FROM public.participant_outbox_sequences",
    "payment_outbox_pending": "SELECT * FROM public.payment_outbox_pending",
    "payment_outbox_attempts": "SELECT * FROM public.payment_outbox_attempts",
    "payment_outbox_settings": "SELECT * FROM public.payment_outbox_settings",
    "outbox_status_view": "SELECT * FROM public.outbox_status_view",
    "outbox_rail_servers": "SELECT * FROM public.outbox_rail_servers",
    "outbox_scoped_rails": "SELECT * FROM public.outbox_scoped_rails",
    "outbox_established_rails": "SELECT * FROM public.outbox_established_rails",
    "outbox_unserved_rails": "SELECT * FROM public.outbox_unserved_rails",
}
VIEWS: Final = frozenset({"outbox_status_view", "outbox_unserved_rails"})
