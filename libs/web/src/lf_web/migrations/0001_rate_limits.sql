-- Rate limits shared by every replica of a service: one row per key, GCRA.
-- tat_us is the key's theoretical arrival time in microseconds since the Unix epoch; a key whose
-- tat_us is in the past is as good as absent, so rows can be deleted at any time.
CREATE TABLE rate_limits (
    key    text PRIMARY KEY,
    tat_us bigint NOT NULL
);

-- One call per check. The row lock serialises concurrent checks of a key; the database clock is the
-- only clock, so replicas with skewed clocks still agree. Integer arithmetic only: the emission
-- interval is period/limit rounded down and the burst is exactly `limit` intervals, so a burst of
-- `limit` requests always passes and the next one never does.
-- Returns the decision, the key's TAT after the call (unchanged when refused) and the clock used.
CREATE FUNCTION rate_limit_take(p_key text, p_limit integer, p_period_us bigint,
                                OUT allowed boolean, OUT tat bigint, OUT now_us bigint)
LANGUAGE plpgsql AS $$
DECLARE
    step   bigint := p_period_us / p_limit;
    stored bigint;
BEGIN
    now_us := (extract(epoch FROM clock_timestamp()) * 1000000)::bigint;
    INSERT INTO rate_limits AS r (key, tat_us) VALUES (p_key, now_us)
    ON CONFLICT (key) DO UPDATE SET tat_us = r.tat_us
    RETURNING r.tat_us INTO stored;
    tat := greatest(stored, now_us) + step;
    allowed := tat - now_us <= step * p_limit;
    IF allowed THEN
        UPDATE rate_limits SET tat_us = tat WHERE key = p_key;
    ELSE
        tat := stored;
    END IF;
END;
$$;
