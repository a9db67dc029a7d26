-- Job status, the inline read model of each job's stream (projections/jobs.py): one row per job.
-- GET /api/jobs/{id} and the invoice watcher read it, never the log.
CREATE TABLE jobs (
    job_id              uuid PRIMARY KEY,
    state               text NOT NULL,
    request             text NOT NULL,
    eval_payment_hash   text NOT NULL,
    eval_invoice        text NOT NULL,
    eval_amount_sats    bigint NOT NULL,
    work_payment_hash   text,
    work_invoice        text,
    work_amount_sats    bigint,
    pricing             jsonb,
    reason              text,
    result              text,
    error_message       text,
    cost_ledger         jsonb,
    refund_amount_sats  bigint,
    refund_state        text NOT NULL DEFAULT 'not_applicable',
    -- The refund claim being paid (its invoice's hash) and since when: the watcher asks the backend
    -- about a claim left unsettled (a crash between the payment and its report).
    refund_payment_hash text,
    refund_claimed_at   timestamptz,
    step_lease_until    timestamptz,
    created_at          timestamptz NOT NULL,
    completed_at        timestamptz,
    updated_at          timestamptz NOT NULL
);
-- What the invoice watcher reads: jobs waiting on a payment, or on a step whose claim may lapse.
CREATE INDEX jobs_pending ON jobs (updated_at)
    WHERE state IN ('awaiting_eval_payment', 'awaiting_work_payment', 'evaluating', 'executing');

CREATE INDEX jobs_refund_claimed ON jobs (refund_claimed_at) WHERE refund_claimed_at IS NOT NULL;

-- The sats ledger, inline too (projections/ledger.py): every sat in and out of a job as balanced
-- postings (one event's lines sum to zero, so all of them do: the trial balance).
CREATE TABLE ledger_postings (
    event_id    uuid NOT NULL,
    line        smallint NOT NULL,
    job_id      uuid NOT NULL,
    account     text NOT NULL,
    amount      bigint NOT NULL,
    recorded_at timestamptz NOT NULL,
    PRIMARY KEY (event_id, line)
);
CREATE INDEX ledger_postings_account ON ledger_postings (account);
CREATE INDEX ledger_postings_job ON ledger_postings (job_id);

-- LIGHTNING_BACKEND=stub: the invoices a stub "node" issued, paid through the dev route
-- (POST /api/dev/stub/pay/{paymentHash}), and the refunds it "paid". An outside system's state,
-- not ours: LNbits holds the same in production, so this is no event log.
CREATE TABLE stub_invoices (
    payment_hash    text PRIMARY KEY,
    payment_request text NOT NULL,
    amount_sats     bigint NOT NULL,
    memo            text NOT NULL,
    paid_at         timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE stub_payments (
    payment_hash    text PRIMARY KEY,
    payment_request text NOT NULL,
    amount_sats     bigint NOT NULL,
    paid_at         timestamptz NOT NULL DEFAULT now()
);
