-- Fed by billing.credit_pack_changed.v1: what GET /wallet/products lists.
CREATE TABLE credit_packs (
    variant_id      text PRIMARY KEY,
    product_id      text NOT NULL,
    name            text NOT NULL,
    price_cents     bigint NOT NULL CHECK (price_cents >= 0),
    credits_granted bigint NOT NULL CHECK (credits_granted > 0),
    test_mode       boolean NOT NULL,
    active          boolean NOT NULL,
    updated_at      timestamptz NOT NULL
);
