-- invariant: a ledger month leaves the hot ledger only past the months kept and once every item of it is finished
-- proofs: packages/outbox-db/tests/integration/test_ledger_archive.py::test_a_month_with_a_pending_item_stays_until_it_is_finished
-- The detach of 0019 without its pending-items check: a month leaves the ledger with items
-- still pending, whose next attempt then has no partition to go to.
CREATE OR REPLACE FUNCTION public.outbox_detach_ledger_month(p_month date, p_keep_months integer)
RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET lock_timeout = '1s'
AS $function$
DECLARE
    v_part record;
    v_kept_from date;
    v_rows bigint;
BEGIN
    PERFORM public.outbox_require_range('keep_months', p_keep_months, 3, 1200);
    SELECT * INTO v_part FROM public.outbox_ledger_month_partition(p_month);
    IF NOT v_part.attached THEN
        RAISE EXCEPTION 'ledger month % is already detached', p_month
            USING ERRCODE = 'P7007', COLUMN = 'ledger_month',
                  HINT = 'outbox-db archive finishes its archive.';
    END IF;
    v_kept_from := (date_trunc('month', clock_timestamp() AT TIME ZONE 'UTC')
        - make_interval(months => p_keep_months))::date;
    IF v_part.range_end > v_kept_from THEN
        RAISE EXCEPTION 'ledger month % is within the % months kept (from %)',
                p_month, p_keep_months, v_kept_from
            USING ERRCODE = 'P7007', COLUMN = 'ledger_month';
    END IF;
    EXECUTE format('ALTER TABLE public.payment_outbox_attempts DETACH PARTITION %s',
        v_part.partition);
    EXECUTE format('SELECT count(*) FROM %s', v_part.partition) INTO v_rows;
    RETURN v_rows;
END
$function$;
