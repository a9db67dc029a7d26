-- Message ids a consumer has applied (DESIGN §5). The row is inserted in the same transaction as
-- the handler's effect, so a redelivered or republished message takes effect once.
CREATE TABLE inbox (
    message_id  text PRIMARY KEY,
    routing_key text NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
);
