-- invariant: a checkpoint seals only transactions no longer in progress: a row committed after it lands in the next one
-- proofs: packages/outbox-evidence/tests/integration/test_ledger_tamper_evidence.py::test_no_checkpoint_seals_a_row_whose_transaction_is_still_open
-- proofs: packages/outbox-evidence/tests/integration/test_ledger_tamper_evidence.py::test_concurrent_writers_and_checkpoints_seal_every_row_once
-- The horizon taken at the snapshot's xmax (every transaction id assigned so far) instead of
-- its xmin: a transaction still open when the checkpoint is taken commits its row below the
-- sealed horizon, in no checkpoint.
CREATE OR REPLACE FUNCTION public.outbox_sealable_digests(p_after xid8)
RETURNS TABLE (
    horizon xid8, row_no bigint, source text, row_key text, digest bytea,
    written_by_xact xid8, fields text[]
)
LANGUAGE sql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET lock_timeout = '5s'
AS $function$
    WITH snapshot AS (
        SELECT pg_catalog.pg_snapshot_xmax(pg_catalog.pg_current_snapshot()) AS horizon
    )
    SELECT s.horizon, d.row_no, d.source, d.row_key, d.digest, d.written_by_xact, r.fields
    FROM snapshot AS s
    LEFT JOIN public.outbox_row_digests AS d
        ON d.written_by_xact >= p_after
        AND d.written_by_xact < s.horizon
    LEFT JOIN public.outbox_tamper_evident_rows() AS r
        ON r.source = d.source AND r.row_key = d.row_key
    ORDER BY d.row_no;
$function$;
