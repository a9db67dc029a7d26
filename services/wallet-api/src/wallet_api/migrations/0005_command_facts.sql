-- What a wallet command reads besides its wallet, in the command's one read: lf_eventstore's
-- command_load runs it after the wallet's stream is locked (application/facts.py names the needs).
-- Reservations by id (captures, releases, extensions) or by reference id (a reserve's retry),
-- deposits by (source, key) (a grant's or an order's idempotency), refused orders.
CREATE FUNCTION command_facts(needs jsonb) RETURNS jsonb LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
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
    )
$$;
