-- The owner of a running detached execution (application/detached.py).

-- The process running a detached execution (a uuid of its own per process) and when it last said
-- it still does (refreshed every few seconds while it runs). A start on another replica that
-- finds a live owner does not call the provider (409 execute.running_elsewhere: ask again later);
-- one whose heartbeat is stale (the owner died) takes it over.
ALTER TABLE execution_controls ADD COLUMN owner uuid, ADD COLUMN heartbeat_at timestamptz;
