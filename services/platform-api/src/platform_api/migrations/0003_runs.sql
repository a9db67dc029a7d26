-- Run status, the inline read model of each run's stream (projections/runs.py): one row per run
-- and one artifact per completed node. GET /v1/runs[/{runId}] reads these, never the log.
CREATE TABLE runs (
    run_id         uuid PRIMARY KEY,
    lenser_id      uuid NOT NULL,
    kind           text NOT NULL CHECK (kind IN ('lens', 'workflow')),
    lens_id        uuid,
    workflow_id    uuid,
    version        int NOT NULL,
    funding_source text NOT NULL,
    request_id     uuid NOT NULL,
    status         text NOT NULL,
    model_id       text,
    provider_key   text,
    started_at     timestamptz,
    completed_at   timestamptz,
    token_input    int,
    token_output   int,
    credit_cost    bigint,
    error_code     text,
    error_message  text,
    deadline_at    timestamptz,
    created_at     timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL
);
CREATE INDEX runs_by_lenser ON runs (lenser_id, created_at DESC, run_id);
-- What the deadline sweep reads: active runs that have a deadline.
CREATE INDEX runs_due ON runs (deadline_at) WHERE status IN ('queued', 'running');

CREATE TABLE run_artifacts (
    artifact_id       uuid PRIMARY KEY,
    run_id            uuid NOT NULL,
    node_id           text NOT NULL,
    artifact_kind     text NOT NULL,
    content_text      text,
    content_json      jsonb,
    is_primary_output boolean NOT NULL,
    visibility        text NOT NULL,
    created_at        timestamptz NOT NULL
);
CREATE INDEX run_artifacts_by_run ON run_artifacts (run_id, created_at, node_id);
