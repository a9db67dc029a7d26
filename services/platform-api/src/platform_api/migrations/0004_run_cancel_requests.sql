-- A cancel asked while nodes run (RunCancelRequested): the run stays 'running' until its running
-- nodes' workers have reported their charge; the deadline sweep ends one whose request is older
-- than CANCEL_GRACE_SECONDS.
ALTER TABLE runs ADD COLUMN cancel_requested_at timestamptz;
CREATE INDEX runs_cancel_requested ON runs (cancel_requested_at) WHERE status = 'running';
