-- Session status, the inline read model of each session's stream (projections/sessions.py).
-- GET /api/sessions/{id} and the session watcher read it, never the log.
CREATE TABLE sessions (
    session_id           uuid PRIMARY KEY,
    state                text NOT NULL,
    balance_sats         bigint NOT NULL DEFAULT 0,
    minimum_balance_sats bigint NOT NULL,
    deposit_payment_hash text NOT NULL,
    deposit_invoice      text NOT NULL,
    deposit_amount_sats  bigint NOT NULL,
    topup_payment_hash   text,
    topup_invoice        text,
    topup_amount_sats    bigint,
    -- What an expired session owes back (its balance then): claimable like a job's refund.
    owed_sats            bigint NOT NULL DEFAULT 0,
    refund_state         text NOT NULL DEFAULT 'not_applicable',
    -- The owed balance's claim being paid and since when (the watcher asks the backend about a
    -- claim left unsettled: a crash between the payment and its report).
    refund_payment_hash  text,
    refund_claimed_at    timestamptz,
    last_activity_at     timestamptz,
    -- Requests reserved and not yet settled, and the latest of their leases: past it with some
    -- still open, their process died, and the watcher releases them.
    open_requests        integer NOT NULL DEFAULT 0,
    leases_until         timestamptz,
    created_at           timestamptz NOT NULL,
    updated_at           timestamptz NOT NULL
);
-- What the session watcher reads: sessions waiting on an invoice, and live ones that may expire.
CREATE INDEX sessions_pending ON sessions (updated_at)
    WHERE state IN ('awaiting_payment', 'active', 'paused');
CREATE INDEX sessions_refund_claimed ON sessions (refund_claimed_at) WHERE refund_claimed_at IS NOT NULL;
CREATE INDEX sessions_open_requests ON sessions (leases_until) WHERE open_requests > 0;
