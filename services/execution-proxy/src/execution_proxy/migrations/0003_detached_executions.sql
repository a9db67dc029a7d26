-- Cancelling internal streamed executions (application/detached.py).

-- Whether an execution was cut short by its caller's cancel (read model: ExecutionSucceeded's
-- `cancelled`, or ExecutionFailed with code `cancelled`).
ALTER TABLE executions ADD COLUMN cancelled boolean NOT NULL DEFAULT false;

-- One row per execution id that a detached execution started under (an internal streamed call with
-- a referenceId), or that a cancel named: the one place where a start and a cancel meet, whichever
-- comes first, on any replica. Each side upserts its own column and reads the other's in the same
-- statement (the row lock orders them): a cancel that finds started_at set stops a running
-- execution; a start that finds cancel_requested_at set is refused (execute.cancelled) before
-- anything is reserved. Not a read model (the log holds ended executions only) and not history:
-- rows go after a day (Executions.prune_outputs), as the outputs kept for retries do.
CREATE TABLE execution_controls (
    execution_id        uuid PRIMARY KEY,
    reference_id        text NOT NULL,
    started_at          timestamptz,
    cancel_requested_at timestamptz,
    created_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX execution_controls_by_age ON execution_controls (created_at);
