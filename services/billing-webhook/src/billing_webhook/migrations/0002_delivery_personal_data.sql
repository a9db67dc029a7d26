-- Buyers' personal data from webhook deliveries (domain/personal_data.py), kept out of the log,
-- which is forever, and deleted by the service after DELIVERY_PERSONAL_DATA_RETENTION_DAYS.
-- Not a read model: it cannot be rebuilt, and once deleted it is gone, as it should be.
CREATE TABLE delivery_personal_data (
    delivery_id text PRIMARY KEY,
    data        jsonb NOT NULL,
    received_at timestamptz NOT NULL
);
CREATE INDEX delivery_personal_data_by_age ON delivery_personal_data (received_at);
