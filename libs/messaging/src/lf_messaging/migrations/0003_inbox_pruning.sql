-- The inbox is pruned by age (lf_messaging.pruning): the oldest rows first, found by index.
CREATE INDEX IF NOT EXISTS inbox_received_at ON inbox (received_at);
