-- Where each log follower (async projection, relay) has read up to. Written in the same
-- transaction as the follower's effect, so an event takes effect exactly once.
CREATE TABLE follower_checkpoints (
    name           text PRIMARY KEY,
    transaction_id bigint NOT NULL DEFAULT 0,
    position       bigint NOT NULL DEFAULT 0,
    updated_at     timestamptz NOT NULL DEFAULT now()
);
