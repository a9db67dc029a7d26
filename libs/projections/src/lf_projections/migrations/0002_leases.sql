-- Which replica runs each log follower (DESIGN §3, §4): a row per follower, held until expires_at
-- and renewed by its holder in single short statements. It lives in the service's own schema, so
-- no other service's role can take or hold it (an advisory key is anyone's on the server).
CREATE TABLE follower_leases (
    name       text PRIMARY KEY,
    holder     text NOT NULL,
    expires_at timestamptz NOT NULL
);
