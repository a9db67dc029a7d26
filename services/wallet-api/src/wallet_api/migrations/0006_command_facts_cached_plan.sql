-- command_facts (0005) as PL/pgSQL, same answer: a LANGUAGE sql function that cannot be inlined
-- (this one cannot: command_load calls it through EXECUTE) has its body planned again on every call
-- before PostgreSQL 18, four subqueries each command; PL/pgSQL keeps the plan for the session. It
-- took command_load from 0.56 to 0.24 ms per command (docs/benchmarks.md, the statement list).
CREATE OR REPLACE FUNCTION command_facts(needs jsonb) RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN jsonb_build_object(
        'reservations', coalesce((
            SELECT jsonb_agg(to_jsonb(r)) FROM reservations r
            WHERE r.reservation_id IN (
                SELECT id::uuid FROM jsonb_array_elements_text(needs -> 'reservations') AS id)
        ), '[]'),
        'references', coalesce((
            SELECT jsonb_agg(to_jsonb(r)) FROM reservations r
            WHERE r.lenser_id = (needs ->> 'lenser_id')::uuid
              AND r.reference_id IN (SELECT jsonb_array_elements_text(needs -> 'references'))
        ), '[]'),
        'deposits', coalesce((
            SELECT jsonb_agg(jsonb_build_array(d.source, d.reference_id, d.amount, d.reversed))
            FROM deposits d
            WHERE d.lenser_id = (needs ->> 'lenser_id')::uuid
              AND (d.source, d.reference_id) IN (
                  SELECT k ->> 0, k ->> 1 FROM jsonb_array_elements(needs -> 'deposits') AS k)
        ), '[]'),
        'refused', coalesce((
            SELECT jsonb_agg(o.order_id) FROM refused_purchases o
            WHERE o.lenser_id = (needs ->> 'lenser_id')::uuid
              AND o.order_id IN (SELECT jsonb_array_elements_text(needs -> 'refused'))
        ), '[]')
    );
END $$;
