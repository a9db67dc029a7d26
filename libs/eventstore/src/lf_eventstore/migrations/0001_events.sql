-- The append-only log of this schema and its stream heads (DESIGN §3).
CREATE TABLE events (
    position       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    transaction_id xid8 NOT NULL DEFAULT pg_current_xact_id(),
    stream_id      text NOT NULL,
    version        integer NOT NULL,
    event_id       uuid NOT NULL UNIQUE,
    type           text NOT NULL,
    data           jsonb NOT NULL,
    metadata       jsonb NOT NULL DEFAULT '{}',
    recorded_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (stream_id, version)
);
-- Readers walk the log in commit-safe order: (transaction_id, position).
CREATE INDEX events_reading_order ON events (transaction_id, position);

CREATE TABLE streams (
    stream_id        text PRIMARY KEY,
    version          integer NOT NULL DEFAULT 0,
    snapshot         jsonb,
    snapshot_version integer
);

CREATE FUNCTION events_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'events are append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
END $$;

CREATE TRIGGER events_append_only_rows BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION events_refuse_change();
CREATE TRIGGER events_append_only_truncate BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_refuse_change();

-- One wake-up per appending statement; readers then read from their checkpoint.
CREATE FUNCTION events_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify(TG_TABLE_SCHEMA || '_events', '');
    RETURN NULL;
END $$;

CREATE TRIGGER events_notify_on_append AFTER INSERT ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_notify();
