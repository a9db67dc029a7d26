-- Executions cut short before the provider finished its answer.

-- Whether the provider did not finish its answer (read model: ExecutionSucceeded's `cut_short`;
-- events recorded before it existed: their `cancelled`). A retry answered from such a record gets
-- the beginning of an answer: platform-api stops the node and retries it as a new attempt.
ALTER TABLE executions ADD COLUMN cut_short boolean NOT NULL DEFAULT false;
UPDATE executions SET cut_short = true WHERE cancelled AND status = 'succeeded';
