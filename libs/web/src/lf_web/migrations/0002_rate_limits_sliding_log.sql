-- A limit of N per period admits at most N requests in ANY window of that period (GCRA's burst
-- plus refill let about 2N through in a rolling period). Each key keeps the times of its admissions
-- still inside the period, at most N of them: a request is admitted while fewer than N are.
-- expires_us: when the key's newest admission leaves its period; past it the row is as good as
-- absent, and prune_rate_limits deletes it.
DROP FUNCTION rate_limit_take(text, integer, bigint);
ALTER TABLE rate_limits DROP COLUMN tat_us,
    ADD COLUMN admitted_us bigint[] NOT NULL DEFAULT '{}',
    ADD COLUMN expires_us bigint NOT NULL DEFAULT 0;
CREATE INDEX rate_limits_expires ON rate_limits (expires_us);

-- One call per check. The row lock serialises concurrent checks of a key; the database clock is the
-- only clock, so replicas with skewed clocks still agree. Microseconds, integers only.
-- Returns the decision, how many more the window admits now, when the next request can pass
-- (retry_us, = now_us when it can at once) and when the whole allowance is back (reset_us).
CREATE FUNCTION rate_limit_admit(p_key text, p_limit integer, p_period_us bigint,
                                 OUT allowed boolean, OUT remaining integer,
                                 OUT retry_us bigint, OUT reset_us bigint, OUT now_us bigint)
LANGUAGE plpgsql AS $$
DECLARE
    stored bigint[];
    recent bigint[];
BEGIN
    -- A rate-limit row lost in a crash only forgets a few admissions: not worth a WAL flush.
    PERFORM set_config('synchronous_commit', 'off', true);
    now_us := (extract(epoch FROM clock_timestamp()) * 1000000)::bigint;
    INSERT INTO rate_limits AS r (key) VALUES (p_key)
    ON CONFLICT (key) DO UPDATE SET admitted_us = r.admitted_us
    RETURNING r.admitted_us INTO stored;
    -- The window is (now - period, now]: an admission at t counts until t + period.
    recent := ARRAY(SELECT t FROM unnest(stored) AS t WHERE t > now_us - p_period_us ORDER BY t);
    allowed := coalesce(cardinality(recent), 0) < p_limit;
    IF allowed THEN
        recent := recent || now_us;
    END IF;
    remaining := p_limit - cardinality(recent);
    retry_us := CASE WHEN remaining > 0 THEN now_us ELSE recent[1] + p_period_us END;
    reset_us := recent[cardinality(recent)] + p_period_us;
    UPDATE rate_limits SET admitted_us = recent, expires_us = reset_us WHERE key = p_key;
END;
$$;

-- Bookkeeping, not history: rows whose admissions have all left their period. Returns how many.
CREATE FUNCTION prune_rate_limits(p_batch integer DEFAULT 10000) RETURNS integer
LANGUAGE sql AS $$
    WITH expired AS (
        SELECT key FROM rate_limits
        WHERE expires_us < (extract(epoch FROM clock_timestamp()) * 1000000)::bigint
        ORDER BY expires_us LIMIT p_batch FOR UPDATE SKIP LOCKED
    ), deleted AS (
        DELETE FROM rate_limits USING expired WHERE rate_limits.key = expired.key RETURNING 1
    )
    SELECT count(*)::integer FROM deleted;
$$;
