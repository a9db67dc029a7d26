-- The platform's database and two roles per service (DESIGN §1, §9).
--
-- docker compose runs this once, as the superuser, when the data volume is new
-- (/docker-entrypoint-initdb.d). It is idempotent, so it can also be run by hand against a local
-- server (and on a database made before the owner/runtime split, whose schemas it hands over):
-- psql -v ON_ERROR_STOP=1 "postgresql://postgres@127.0.0.1:5432/postgres" -f infra/postgres/init.sql
--
-- Per service:
-- - the owner `<role>_owner` owns its schema and the shadow schema `<schema>_rebuild` where
--   projection rebuilds fill fresh tables before swapping them in. It runs `python -m <pkg>
--   migrate` (compose: the one-shot `<service>-migrate`, with MIGRATE_DATABASE_URL) and rebuilds, so
--   it owns every object in them.
-- - the runtime role `<role>` is what the service serves as (DATABASE_URL). It may use its schema
--   and do on each table only what migrate grants it: on `events` only INSERT and SELECT. It cannot
--   alter, drop or disable a trigger on anything, create tables, or see another service's schema.
-- The passwords are development values; a real deployment sets its own.

\set ON_ERROR_STOP on

SELECT 'CREATE DATABASE lenserfight'
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'lenserfight')
\gexec

\connect lenserfight

-- Nobody gets anything in this database by default: no connecting, no temporary tables, and no
-- objects in the public schema.
REVOKE ALL ON DATABASE lenserfight FROM PUBLIC;
REVOKE CREATE ON SCHEMA public FROM PUBLIC;

DO $$
DECLARE
    s record;
    owner text;
BEGIN
    FOR s IN SELECT * FROM (VALUES
        ('wallet_api',      'wallet',    'wallet_api_dev'),
        ('execution_proxy', 'execution', 'execution_proxy_dev'),
        ('billing_webhook', 'billing',   'billing_webhook_dev'),
        ('lightning_jobs',  'lightning', 'lightning_jobs_dev'),
        ('platform_api',    'platform',  'platform_api_dev')
    ) AS service (role, schema, password) LOOP
        owner := s.role || '_owner';
        IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = s.role) THEN
            EXECUTE format('CREATE ROLE %I LOGIN PASSWORD %L', s.role, s.password);
        END IF;
        IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = owner) THEN
            EXECUTE format('CREATE ROLE %I LOGIN PASSWORD %L', owner, owner || '_dev');
        END IF;
        -- Whatever the roles were before (e.g. created NOLOGIN by a test run of lf_pg.migrate).
        EXECUTE format(
            'ALTER ROLE %I LOGIN PASSWORD %L NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS',
            s.role, s.password);
        EXECUTE format(
            'ALTER ROLE %I LOGIN PASSWORD %L NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS',
            owner, owner || '_dev');
        EXECUTE format('ALTER ROLE %I IN DATABASE lenserfight SET search_path = %I', s.role, s.schema);
        EXECUTE format('ALTER ROLE %I IN DATABASE lenserfight SET search_path = %I', owner, s.schema);

        -- Connecting, and temporary tables for the runtime role (`verify` replays into them): the
        -- schemas are made here, so nobody needs CREATE on the database (an earlier version of
        -- this file granted it to the service's role).
        EXECUTE format('REVOKE ALL ON DATABASE lenserfight FROM %I', s.role);
        EXECUTE format('GRANT CONNECT ON DATABASE lenserfight TO %I, %I', s.role, owner);
        EXECUTE format('GRANT TEMPORARY ON DATABASE lenserfight TO %I', s.role);

        EXECUTE format('CREATE SCHEMA IF NOT EXISTS %I AUTHORIZATION %I', s.schema, owner);
        EXECUTE format('CREATE SCHEMA IF NOT EXISTS %I AUTHORIZATION %I', s.schema || '_rebuild', owner);
        -- Schemas made before the split belong to the runtime role, with every table in them:
        -- all of it goes to the owner (the next migrate grants the runtime role its share back).
        EXECUTE format('REASSIGN OWNED BY %I TO %I', s.role, owner);
        EXECUTE format('ALTER SCHEMA %I OWNER TO %I', s.schema, owner);
        EXECUTE format('ALTER SCHEMA %I OWNER TO %I', s.schema || '_rebuild', owner);
        EXECUTE format('REVOKE ALL ON SCHEMA %I, %I FROM PUBLIC', s.schema, s.schema || '_rebuild');
        EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I', s.schema, s.role);
    END LOOP;
END
$$;
