-- Lensers' own provider keys (BYOK).

-- Inline read model of the byok-key streams: what GET /execute/keys lists and what resolving a key
-- checks (owner, provider, status). Never the secret.
CREATE TABLE byok_keys (
    key_id     uuid PRIMARY KEY,
    lenser_id  uuid NOT NULL,
    provider   text NOT NULL,
    label      text,
    suffix     text NOT NULL,
    status     text NOT NULL CHECK (status IN ('active', 'revoked')),
    created_at timestamptz NOT NULL,
    revoked_at timestamptz
);
CREATE INDEX byok_keys_by_lenser ON byok_keys (lenser_id, created_at DESC);

-- The encrypted secrets (adapters/envelope.py): each under its own data key, the data key wrapped
-- by the master key named by master_key_id. NOT a read model: it cannot be rebuilt from the log
-- (the log never holds a secret), so no projection owns it and a rebuild leaves it alone.
-- Crypto-shredding: revoking a key DELETEs its row in the transaction that records KeyRevoked
-- (the runtime role has DELETE here by default), so a revoked key can never be decrypted again,
-- whatever backups of the log exist. Rotating the master key rewrites only master_key_id,
-- wrapped_data_key and data_key_nonce (`python -m execution_proxy keys rewrap`).
CREATE TABLE byok_key_material (
    key_id           uuid PRIMARY KEY,
    master_key_id    text NOT NULL,
    wrapped_data_key bytea NOT NULL,
    data_key_nonce   bytea NOT NULL,
    secret_nonce     bytea NOT NULL,
    ciphertext       bytea NOT NULL,
    stored_at        timestamptz NOT NULL DEFAULT now()
);
-- Rotation finds the rows not yet under the current master key.
CREATE INDEX byok_key_material_by_master ON byok_key_material (master_key_id);
