-- invariant: a ledger month reads the same whatever the session's DateStyle: its bound is never lost and its archive row's digest never drifts
-- proofs: packages/outbox-db/tests/integration/test_ledger_archive.py::test_the_archive_is_the_same_whatever_the_operators_datestyle
-- The archive log's month encoded with the session's DateStyle, and the partitions' bounds
-- read back in it: in 'SQL, DMY' the legacy month's bound is lost (the detach is no longer
-- refused) and the archive row is digested in a form the verifier does not read back.
CREATE OR REPLACE FUNCTION public.outbox_ledger_archive_fields(r public.outbox_ledger_archives)
RETURNS text[]
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $function$
BEGIN
    RETURN ARRAY[
        'outbox_ledger_archives/1', r.entry_no::text, r.ledger_month::text, r.file_name,
        r.row_count::text, r.sha256, r.archived_by, public.outbox_utc_text(r.archived_at)
    ];
END
$function$;
ALTER FUNCTION public.outbox_ledger_month_partition(date) RESET datestyle;
