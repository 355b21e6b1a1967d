-- FinSent Monitor: the store's two roles, least privilege (PostgreSQL 13 or later).
--
--   writer (default name finsent)            the scoring daemons: owns the tables, which `finsent run` creates
--   reader (default name finsent_dashboard)  the dashboard: SELECT on every table; INSERT/UPDATE on feedback,
--                                            INSERT/DELETE on watchlists, and an incident's acknowledgement columns
--   (model_versions, the served-model history, is the daemons' to write and the dashboard's to read, like windows)
--
-- Idempotent, and it converges: run it as a superuser (not as either role) on the finsent database
--   1. once before the first daemon starts (roles, schema rights, default privileges), and
--   2. again after the daemon has created or upgraded the schema (the grants on feedback, which must exist).
--   psql -v ON_ERROR_STOP=1 -d finsent -f deploy/postgres/roles.sql
-- Other role names: PGOPTIONS='-c finsent.writer_role=NAME -c finsent.reader_role=NAME' psql ...
-- No password is set here: set them from your secret store with set-passwords.sql (deploy/README.md, "Security").
DO $roles$
DECLARE
    writer text := coalesce(nullif(current_setting('finsent.writer_role', true), ''), 'finsent');
    reader text := coalesce(nullif(current_setting('finsent.reader_role', true), ''), 'finsent_dashboard');
    db text := current_database();
    seq text;
    r text;
BEGIN
    IF writer = reader THEN
        RAISE EXCEPTION 'the writer and the dashboard need two different roles (both are %)', writer;
    END IF;
    IF current_user IN (writer, reader) THEN
        RAISE EXCEPTION 'run roles.sql as an administrator, not as the role % it restricts', current_user;
    END IF;

    -- 1. the roles: may log in, nothing else (no superuser, CREATEDB, CREATEROLE, replication or RLS bypass)
    FOREACH r IN ARRAY ARRAY[writer, reader] LOOP
        IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = r) THEN
            EXECUTE format('CREATE ROLE %I LOGIN', r);
        END IF;
        IF EXISTS (SELECT FROM pg_roles WHERE rolname = r
                   AND (rolsuper OR rolcreatedb OR rolcreaterole OR rolreplication OR rolbypassrls)) THEN
            EXECUTE format('ALTER ROLE %I NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS', r);
        END IF;
        IF EXISTS (SELECT FROM pg_roles WHERE rolname = r AND NOT rolcanlogin) THEN
            EXECUTE format('ALTER ROLE %I LOGIN', r);
        END IF;
    END LOOP;
    -- a dashboard query cannot hold the store for long
    EXECUTE format('ALTER ROLE %I IN DATABASE %I SET statement_timeout = %L', reader, db, '30s');
    EXECUTE format('ALTER ROLE %I IN DATABASE %I SET idle_in_transaction_session_timeout = %L', reader, db, '60s');

    -- 2. the database: only these two roles (and administrators) may connect; temporary tables for the writer only
    EXECUTE format('REVOKE ALL ON DATABASE %I FROM PUBLIC', db);
    EXECUTE format('GRANT CONNECT, TEMPORARY ON DATABASE %I TO %I', db, writer);
    EXECUTE format('REVOKE ALL ON DATABASE %I FROM %I', db, reader);
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO %I', db, reader);

    -- 3. the schema: the writer creates the tables (and so owns them); the reader may only look things up in it
    REVOKE CREATE ON SCHEMA public FROM PUBLIC;
    EXECUTE format('GRANT USAGE, CREATE ON SCHEMA public TO %I', writer);
    EXECUTE format('REVOKE CREATE ON SCHEMA public FROM %I', reader);
    EXECUTE format('GRANT USAGE ON SCHEMA public TO %I', reader);

    -- 4. every table the writer creates from now on (schema upgrades too) is readable by the dashboard
    EXECUTE format('ALTER DEFAULT PRIVILEGES FOR ROLE %I IN SCHEMA public GRANT SELECT ON TABLES TO %I', writer, reader);

    -- 5. the tables that exist now: read everything, write nothing ...
    EXECUTE format('REVOKE ALL ON ALL TABLES IN SCHEMA public FROM %I', reader);
    EXECUTE format('REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM %I', reader);
    EXECUTE format('GRANT SELECT ON ALL TABLES IN SCHEMA public TO %I', reader);

    -- ... but analysts' corrections (feedback) ...
    IF to_regclass('public.feedback') IS NULL THEN
        RAISE NOTICE 'no feedback table yet: start a daemon once (it creates the schema), then run roles.sql again';
    ELSE
        EXECUTE format('GRANT SELECT, INSERT, UPDATE ON public.feedback TO %I', reader);
        seq := pg_get_serial_sequence('public.feedback', 'id');
        IF seq IS NOT NULL THEN
            EXECUTE format('GRANT USAGE ON SEQUENCE %s TO %I', seq, reader);
        END IF;
    END IF;

    -- ... analysts' watchlists (each adds and removes the tickers they follow) ...
    IF to_regclass('public.watchlists') IS NOT NULL THEN
        EXECUTE format('GRANT SELECT, INSERT, DELETE ON public.watchlists TO %I', reader);
    END IF;

    -- ... and acknowledgements of incidents (the columns an analyst sets, nothing the daemon computes).
    IF to_regclass('public.incidents') IS NOT NULL THEN
        EXECUTE format('GRANT UPDATE (status, acknowledged_by, note, updated_at) ON public.incidents TO %I', reader);
    END IF;
END
$roles$;
