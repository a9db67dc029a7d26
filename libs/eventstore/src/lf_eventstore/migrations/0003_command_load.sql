-- A command's one read (lf_eventstore.commands): lock the stream's head, then read its events after
-- the snapshot and the facts the command names, and the transaction's time, in one round trip.
--
-- A function, not one SELECT: in READ COMMITTED a statement reads one snapshot, taken before it
-- waited for the row lock, so a single statement that waited would miss the events its lock holder
-- committed meanwhile. Each statement of a VOLATILE function takes a fresh snapshot: the events and
-- facts are read after the lock is held, and include everything committed before it was granted.
--
-- p_key_sql finds the stream when the caller knows only something it owns (a reservation id);
-- p_facts_sql is the service's lookup (its inline read models, after the lock). Both get p_args as
-- $1 and are ours (code, never input).
CREATE FUNCTION command_load(p_stream_id text, p_key_sql text, p_facts_sql text, p_args jsonb)
RETURNS TABLE (
    found_stream_id  text,
    head_version     integer,
    head_snapshot    jsonb,
    snapshot_version integer,
    tail             jsonb,
    facts            jsonb,
    command_time     timestamptz
) LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    found_stream_id := p_stream_id;
    IF found_stream_id IS NULL AND p_key_sql IS NOT NULL THEN
        EXECUTE p_key_sql INTO found_stream_id USING p_args;
    END IF;
    IF found_stream_id IS NOT NULL THEN
        SELECT s.version, s.snapshot, s.snapshot_version INTO head_version, head_snapshot, snapshot_version
            FROM streams s WHERE s.stream_id = found_stream_id FOR UPDATE;
        IF FOUND THEN
            SELECT coalesce(jsonb_agg(jsonb_build_array(e.version, e.type, e.data) ORDER BY e.version), '[]')
                INTO tail
                FROM events e
                WHERE e.stream_id = found_stream_id AND e.version > coalesce(snapshot_version, 0);
        END IF;
    END IF;
    IF p_facts_sql IS NOT NULL THEN
        EXECUTE p_facts_sql INTO facts USING p_args;
    END IF;
    command_time := now();
    RETURN NEXT;
END $$;
