-- The partner provisioning records (one per lenser and partner), inline: a provision's answer is
-- read from here as soon as its command commits. Tokens are kept sealed (lf_web.sealing, purpose
-- partner-token): `tokens` holds ciphertexts and wrapped data keys, never a token in clear.
CREATE TABLE partner_provisions (
    lenser_id           uuid NOT NULL,
    partner             text NOT NULL,
    email               text NOT NULL,
    display_name        text NOT NULL,
    starter_credits     bigint NOT NULL CHECK (starter_credits >= 0),
    account_id          text,
    tokens              jsonb,
    requested_at        timestamptz NOT NULL,
    provisioned_at      timestamptz,
    tokens_refreshed_at timestamptz,
    claims_sent         int NOT NULL DEFAULT 0,
    last_claim_at       timestamptz,
    PRIMARY KEY (lenser_id, partner)
);
