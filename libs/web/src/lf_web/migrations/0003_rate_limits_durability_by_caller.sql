-- rate_limit_admit no longer turns synchronous_commit off itself: a set_config inside a function
-- covers the caller's whole transaction, and a caller running it inside a transaction that records
-- money would silently lose that transaction's WAL flush. RateLimiter.check, which owns the
-- admission's transaction (one autocommit statement), says so in its statement (lf_pg.WITHOUT_FLUSH).
CREATE OR REPLACE FUNCTION rate_limit_admit(p_key text, p_limit integer, p_period_us bigint,
                                            OUT allowed boolean, OUT remaining integer,
                                            OUT retry_us bigint, OUT reset_us bigint, OUT now_us bigint)
LANGUAGE plpgsql AS $$
DECLARE
    stored bigint[];
    recent bigint[];
BEGIN
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
