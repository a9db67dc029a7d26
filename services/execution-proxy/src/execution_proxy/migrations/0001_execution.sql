-- Read models of the execution log, and the outputs kept for idempotent retries.

-- Inline: one row per ended execution (GET of an execution, idempotent retries by reference id,
-- reports). The catalogue needs none: it is one small aggregate, read whole (application/catalogue.py).
CREATE TABLE executions (
    execution_id        uuid PRIMARY KEY,
    lenser_id           uuid,
    funding             text NOT NULL,
    payer_id            uuid,
    kind                text NOT NULL CHECK (kind IN ('chat', 'image')),
    provider            text NOT NULL,
    model               text NOT NULL,
    streamed            boolean NOT NULL,
    reference_id        text,
    reservation_id      uuid,
    reserved_credits    bigint NOT NULL,
    key_id              uuid,
    status              text NOT NULL CHECK (status IN ('succeeded', 'failed')),
    input_tokens        bigint NOT NULL DEFAULT 0,
    output_tokens       bigint NOT NULL DEFAULT 0,
    cache_read_tokens   bigint NOT NULL DEFAULT 0,
    cache_write_tokens  bigint NOT NULL DEFAULT 0,
    units               bigint NOT NULL DEFAULT 0,
    usage_source        text,
    cost_usd            numeric,
    credits_charged     bigint NOT NULL DEFAULT 0,
    overrun_credits     bigint NOT NULL DEFAULT 0,
    client_disconnected boolean NOT NULL DEFAULT false,
    latency_ms          bigint,
    error_code          text,
    started_at          timestamptz NOT NULL,
    finished_at         timestamptz NOT NULL
);
CREATE INDEX executions_by_lenser ON executions (lenser_id, finished_at DESC);

-- What an execution answered, kept for a day so that a retried internal execution (same
-- referenceId) answers what the first attempt did. Not in the log, which is forever: prompts and
-- answers are the callers' data. Not a read model either: it cannot be rebuilt, and once pruned
-- a retry answers the recorded usage and charge without the content.
CREATE TABLE execution_outputs (
    execution_id uuid PRIMARY KEY,
    output       jsonb NOT NULL,
    recorded_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX execution_outputs_by_age ON execution_outputs (recorded_at);
