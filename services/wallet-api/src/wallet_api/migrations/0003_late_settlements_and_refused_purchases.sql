-- A settlement that arrives after its reservation expired is charged late (ExpiredReservationCharged):
-- the reservation closes as captured; what the balance could not cover is kept as uncollected.
ALTER TABLE reservations ADD COLUMN uncollected bigint;

-- Inline: paid orders that were not credited (PurchaseRefused), one row per order; what makes a
-- repeat refusal idempotent and what the operator report lists.
CREATE TABLE refused_purchases (
    lenser_id  uuid NOT NULL,
    order_id   text NOT NULL,
    credits    bigint NOT NULL CHECK (credits > 0),
    reason     text NOT NULL,
    refused_at timestamptz NOT NULL,
    PRIMARY KEY (lenser_id, order_id)
);
