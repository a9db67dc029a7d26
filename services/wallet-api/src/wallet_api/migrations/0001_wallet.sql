-- Read models of the wallet log. Inline ones are written in the command's transaction
-- (read-your-writes); the ledger is written by its follower.

-- Inline: one row per wallet, what GET /wallet/balance shows.
CREATE TABLE balances (
    lenser_id         uuid PRIMARY KEY,
    balance           bigint NOT NULL DEFAULT 0 CHECK (balance >= 0),
    reserved          bigint NOT NULL DEFAULT 0 CHECK (reserved >= 0 AND reserved <= balance),
    lifetime_deposits bigint NOT NULL DEFAULT 0,
    lifetime_spent    bigint NOT NULL DEFAULT 0,
    frozen            boolean NOT NULL DEFAULT false,
    daily_limit       bigint,
    monthly_limit     bigint,
    opened_at         timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL
);

-- Inline: every reservation, for idempotent retries (one per reference id) and expiry.
CREATE TABLE reservations (
    reservation_id uuid PRIMARY KEY,
    lenser_id      uuid NOT NULL,
    reference_id   text NOT NULL,
    amount         bigint NOT NULL CHECK (amount > 0),
    status         text NOT NULL CHECK (status IN ('reserved', 'captured', 'released', 'expired')),
    captured       bigint,
    overrun        bigint,
    expires_at     timestamptz NOT NULL,
    created_at     timestamptz NOT NULL,
    closed_at      timestamptz,
    UNIQUE (lenser_id, reference_id)
);
CREATE INDEX reservations_due ON reservations (expires_at) WHERE status = 'reserved';

-- Inline: credits that came in from outside, one row per order or grant key.
CREATE TABLE deposits (
    lenser_id    uuid NOT NULL,
    source       text NOT NULL CHECK (source IN ('purchase', 'grant')),
    reference_id text NOT NULL,
    amount       bigint NOT NULL,
    reversed     bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (lenser_id, source, reference_id)
);

-- Async: the double-entry ledger. Every event that moves credits becomes postings between
-- accounts that sum to zero; user accounts are 'user:<id>:available' and 'user:<id>:reserved'.
CREATE TABLE ledger_postings (
    event_id    uuid NOT NULL,
    line        smallint NOT NULL,
    position    bigint NOT NULL,
    account     text NOT NULL,
    amount      bigint NOT NULL,
    recorded_at timestamptz NOT NULL,
    PRIMARY KEY (event_id, line)
);
CREATE INDEX ledger_postings_account ON ledger_postings (account);

-- Async: what GET /wallet/transactions lists: events that changed the balance.
CREATE TABLE transactions (
    id             uuid PRIMARY KEY,
    lenser_id      uuid NOT NULL,
    position       bigint NOT NULL,
    tx_type        text NOT NULL,
    amount         bigint NOT NULL CHECK (amount > 0),
    direction      smallint NOT NULL CHECK (direction IN (1, -1)),
    balance_after  bigint NOT NULL,
    description    text NOT NULL,
    reference_type text NOT NULL,
    reference_id   text NOT NULL,
    created_at     timestamptz NOT NULL
);
CREATE INDEX transactions_by_lenser ON transactions (lenser_id, position DESC);

-- Fed by execution.model_price_changed.v1; seeded so /wallet/pricing answers before any arrive.
CREATE TABLE model_prices (
    key                 text PRIMARY KEY,
    name                text NOT NULL,
    provider            text NOT NULL,
    unit_type           text NOT NULL CHECK (unit_type IN ('tokens', 'image')),
    sample_cost_usd     numeric(18, 8) NOT NULL,
    sample_cost_credits bigint NOT NULL,
    active              boolean NOT NULL DEFAULT true,
    updated_at          timestamptz NOT NULL DEFAULT now()
);
INSERT INTO model_prices (key, name, provider, unit_type, sample_cost_usd, sample_cost_credits) VALUES
    ('claude-sonnet-4-6', 'Claude Sonnet 4.6', 'anthropic', 'tokens', 0.0105, 2),
    ('claude-haiku-4-5', 'Claude Haiku 4.5', 'anthropic', 'tokens', 0.0035, 1),
    ('gpt-4o', 'GPT-4o', 'openai', 'tokens', 0.00875, 1),
    ('gpt-4o-mini', 'GPT-4o mini', 'openai', 'tokens', 0.000525, 1),
    ('gemini-2.5-flash', 'Gemini 2.5 Flash', 'gemini', 'tokens', 0.00135, 1),
    ('fal-ai/flux/schnell', 'FLUX.1 [schnell]', 'fal', 'image', 0.003, 1),
    ('local-echo', 'Local (deterministic)', 'local', 'tokens', 0, 1);
