-- Read models of the billing log, all inline: written in the transaction of the command or of the
-- delivery processor that recorded the events (read-your-writes). Rebuildable from the log.

-- The catalogue: credit packs by LemonSqueezy variant (also published as
-- billing.credit_pack_changed.v1 for wallet-api's GET /wallet/products).
CREATE TABLE credit_packs (
    variant_id      text PRIMARY KEY,
    product_id      text NOT NULL,
    name            text NOT NULL,
    price_cents     bigint NOT NULL CHECK (price_cents >= 0),
    credits_granted bigint NOT NULL CHECK (credits_granted > 0),
    test_mode       boolean NOT NULL,
    active          boolean NOT NULL,
    defined_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL
);

-- Checkout sessions: the lenser behind a delivery's custom_data.session_id.
CREATE TABLE checkout_sessions (
    session_id   uuid PRIMARY KEY,
    lenser_id    uuid NOT NULL,
    variant_id   text NOT NULL,
    checkout_id  text NOT NULL,
    checkout_url text NOT NULL,
    test_mode    boolean NOT NULL,
    status       text NOT NULL CHECK (status IN ('created', 'completed', 'expired')),
    order_id     text,
    expires_at   timestamptz NOT NULL,
    created_at   timestamptz NOT NULL,
    closed_at    timestamptz
);
CREATE INDEX checkout_sessions_due ON checkout_sessions (expires_at) WHERE status = 'created';

-- Every webhook delivery (one per distinct body) and where its processing stands.
CREATE TABLE deliveries (
    delivery_id   text PRIMARY KEY,
    event_name    text NOT NULL,
    resource_type text,
    resource_id   text,
    test_mode     boolean NOT NULL,
    status        text NOT NULL CHECK (status IN ('pending', 'processed', 'failed')),
    outcome       text,
    detail        text,
    attempts      integer NOT NULL DEFAULT 0,
    received_at   timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL
);
CREATE INDEX deliveries_recent ON deliveries (received_at DESC);
CREATE INDEX deliveries_failed ON deliveries (received_at DESC) WHERE status = 'failed';

-- Subscriptions: the newest known state (state_at is LemonSqueezy's updated_at).
CREATE TABLE subscriptions (
    subscription_id   text PRIMARY KEY,
    lenser_id         uuid,
    variant_id        text NOT NULL,
    product_id        text,
    status            text NOT NULL,
    cancelled         boolean NOT NULL,
    renews_at         timestamptz,
    ends_at           timestamptz,
    state_at          timestamptz NOT NULL,
    invoices_credited integer NOT NULL DEFAULT 0,
    credits_granted   bigint NOT NULL DEFAULT 0,
    updated_at        timestamptz NOT NULL
);
