-- Follower names follow one convention in every service: what the follower keeps or does, in
-- snake_case, without the service's name (checkpoints and leases live in the service's own schema,
-- and metrics are labelled by service): `ledger`, `relay`, `delivery_processor`. The rows of the
-- old names carry over, so neither follower starts again from the beginning of the log.
-- Deploy with the old version stopped: a replica still running under an old name would recreate
-- its row at the start of the log and replay it (the relay would publish every event again).
UPDATE follower_checkpoints SET name = 'relay' WHERE name = 'billing-webhook.relay';
UPDATE follower_checkpoints SET name = 'delivery_processor' WHERE name = 'billing-webhook.deliveries';
DELETE FROM follower_leases WHERE name IN ('billing-webhook.relay', 'billing-webhook.deliveries');
