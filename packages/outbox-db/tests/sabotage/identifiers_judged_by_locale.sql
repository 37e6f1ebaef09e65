-- invariant: no identifier is made only of White_Space or Default_Ignorable characters or carries a control character, under every locale (22023)
-- proofs: packages/outbox-db/tests/integration/test_ledger_records_facts.py::test_an_identifier_of_invisible_characters_only_is_refused
-- proofs: packages/outbox-db/tests/integration/test_ledger_records_facts.py::test_a_worker_id_of_invisible_characters_only_is_refused
-- proofs: packages/outbox-db/tests/integration/test_ledger_records_facts.py::test_identifiers_are_judged_the_same_under_every_locale
-- 0003's predicate: "blank" and "control" as the database's locale classifies them.
CREATE OR REPLACE FUNCTION public.outbox_invalid_identifier_at(p_values text[])
RETURNS bigint
LANGUAGE plpgsql
IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $function$
BEGIN
    RETURN (
        SELECT min(v.position)
        FROM unnest(p_values) WITH ORDINALITY AS v(value, position)
        WHERE v.value IS NULL OR length(v.value) > 255 OR v.value !~ '[^[:space:]]'
            OR v.value ~ '[[:cntrl:]]'
    );
END
$function$;
