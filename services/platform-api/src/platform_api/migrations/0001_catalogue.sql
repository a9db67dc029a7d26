-- Read models of the catalogue's log, all inline (written in the command's own statement, so a
-- lens is readable, and usable in a workflow, as soon as its POST has answered).

-- One row per lens: who owns it, its latest version, whether others may see and use it.
CREATE TABLE lenses (
    lens_id    uuid PRIMARY KEY,
    owner_id   uuid NOT NULL,
    name       text NOT NULL,
    version    int NOT NULL CHECK (version >= 1),
    published  boolean NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);
CREATE INDEX lenses_by_owner ON lenses (owner_id, created_at DESC, lens_id);

-- Every version of every lens, as written (a run pins one).
CREATE TABLE lens_versions (
    lens_id    uuid NOT NULL,
    version    int NOT NULL,
    definition jsonb NOT NULL,
    created_at timestamptz NOT NULL,
    PRIMARY KEY (lens_id, version)
);

CREATE TABLE workflows (
    workflow_id uuid PRIMARY KEY,
    owner_id    uuid NOT NULL,
    name        text NOT NULL,
    version     int NOT NULL CHECK (version >= 1),
    published   boolean NOT NULL,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL
);
CREATE INDEX workflows_by_owner ON workflows (owner_id, created_at DESC, workflow_id);

-- Each version with its nodes' versions pinned, its nesting depth and every workflow it includes
-- (at any depth): what a new workflow naming it as a sub-workflow is checked against.
CREATE TABLE workflow_versions (
    workflow_id uuid NOT NULL,
    version     int NOT NULL,
    definition  jsonb NOT NULL,
    depth       int NOT NULL CHECK (depth >= 1),
    includes    uuid[] NOT NULL,
    created_at  timestamptz NOT NULL,
    PRIMARY KEY (workflow_id, version)
);

-- What a workflow command reads besides its own stream (lf_eventstore's command_load runs it after
-- the stream lock): the lenses and workflows its nodes name, each with its owner, whether it is
-- published, and per version what the checks need (parameter names; depth and includes).
-- PL/pgSQL, not LANGUAGE sql: command_load calls it through EXECUTE, and a SQL function it cannot
-- inline is planned again on every call (before PostgreSQL 18); PL/pgSQL keeps its plan per session.
CREATE FUNCTION command_facts(needs jsonb) RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN jsonb_build_object(
        'lenses', coalesce((
            SELECT jsonb_agg(jsonb_build_object(
                'lens_id', l.lens_id, 'owner_id', l.owner_id, 'published', l.published,
                'parameters', (
                    SELECT jsonb_object_agg(v.version, (
                        SELECT coalesce(jsonb_agg(p ->> 'name'), '[]')
                        FROM jsonb_array_elements(v.definition -> 'parameters') AS p))
                    FROM lens_versions v WHERE v.lens_id = l.lens_id)))
            FROM lenses l
            WHERE l.lens_id IN (SELECT id::uuid FROM jsonb_array_elements_text(needs -> 'lenses') AS id)
        ), '[]'),
        'workflows', coalesce((
            SELECT jsonb_agg(jsonb_build_object(
                'workflow_id', w.workflow_id, 'owner_id', w.owner_id, 'published', w.published,
                'versions', (
                    SELECT jsonb_object_agg(v.version, jsonb_build_object(
                        'depth', v.depth, 'includes', to_jsonb(v.includes)))
                    FROM workflow_versions v WHERE v.workflow_id = w.workflow_id)))
            FROM workflows w
            WHERE w.workflow_id IN (
                SELECT id::uuid FROM jsonb_array_elements_text(needs -> 'workflows') AS id)
        ), '[]')
    );
END $$;
