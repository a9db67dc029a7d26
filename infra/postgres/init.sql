-- The platform's database and one role per service (DESIGN §1, §9).
--
-- docker compose runs this once, as the superuser, when the data volume is new
-- (/docker-entrypoint-initdb.d). It is idempotent, so it can also be run by hand against a local
-- server: psql -v ON_ERROR_STOP=1 "postgresql://postgres@127.0.0.1:5432/postgres" -f infra/postgres/init.sql
--
-- Each service logs in as its own role and owns exactly two schemas: its own and the shadow
-- schema `<schema>_rebuild` where projection rebuilds fill fresh tables before swapping them in.
-- No role can use another's schemas. The service creates its tables itself
-- (`python -m <pkg> migrate`, also run by `serve`), as its role, so it owns every object it uses.
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
BEGIN
    FOR s IN SELECT * FROM (VALUES
        ('wallet_api',      'wallet',    'wallet_api_dev'),
        ('execution_proxy', 'execution', 'execution_proxy_dev'),
        ('billing_webhook', 'billing',   'billing_webhook_dev'),
        ('lightning_jobs',  'lightning', 'lightning_jobs_dev'),
        ('platform_api',    'platform',  'platform_api_dev')
    ) AS service (role, schema, password) LOOP
        IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = s.role) THEN
            EXECUTE format('CREATE ROLE %I LOGIN PASSWORD %L', s.role, s.password);
        END IF;
        -- Whatever the role was before (e.g. created NOLOGIN by a test run of lf_pg.migrate).
        EXECUTE format(
            'ALTER ROLE %I LOGIN PASSWORD %L NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS',
            s.role, s.password);
        EXECUTE format('ALTER ROLE %I IN DATABASE lenserfight SET search_path = %I', s.role, s.schema);

        -- CREATE on the database only because lf_pg.migrate always issues
        -- `CREATE SCHEMA IF NOT EXISTS`, which PostgreSQL authorises before noticing that the
        -- schema exists. It lets a role add schemas of its own, never touch another's.
        EXECUTE format('GRANT CONNECT, TEMPORARY, CREATE ON DATABASE lenserfight TO %I', s.role);

        EXECUTE format('CREATE SCHEMA IF NOT EXISTS %I AUTHORIZATION %I', s.schema, s.role);
        EXECUTE format('CREATE SCHEMA IF NOT EXISTS %I AUTHORIZATION %I', s.schema || '_rebuild', s.role);
        EXECUTE format('ALTER SCHEMA %I OWNER TO %I', s.schema, s.role);
        EXECUTE format('ALTER SCHEMA %I OWNER TO %I', s.schema || '_rebuild', s.role);
        EXECUTE format('REVOKE ALL ON SCHEMA %I, %I FROM PUBLIC', s.schema, s.schema || '_rebuild');
    END LOOP;
END
$$;
