-- Set (or rotate) the passwords of the writer and dashboard roles from secret files, as a superuser:
--   FINSENT_WRITER_PASSWORD_FILE=/run/secrets/finsent_db_password \
--   FINSENT_READER_PASSWORD_FILE=/run/secrets/finsent_dashboard_db_password \
--   psql -v ON_ERROR_STOP=1 -d finsent -f deploy/postgres/set-passwords.sql
-- Other role names: add -v writer_role=NAME -v reader_role=NAME. Leave a *_FILE variable unset to keep that
-- role's password. The passwords travel in files and on the connection, never on a command line; the server
-- stores SCRAM verifiers only (password_encryption = scram-sha-256, the default since PostgreSQL 14).
\if :{?writer_role}
\else
    \set writer_role finsent
\endif
\if :{?reader_role}
\else
    \set reader_role finsent_dashboard
\endif
\set QUIET on
\set ECHO none
-- keep the ALTER ROLE statements out of the server log whatever log_statement says
SET log_statement = 'none';
SET log_min_duration_statement = -1;
SET log_min_error_statement = panic;
SET password_encryption = 'scram-sha-256';
\set writer_file `printf %s "$FINSENT_WRITER_PASSWORD_FILE"`
\set reader_file `printf %s "$FINSENT_READER_PASSWORD_FILE"`
SELECT :'writer_file' <> '' AS has_writer, :'reader_file' <> '' AS has_reader \gset
\if :has_writer
    \set password `tr -d '\n' < "$FINSENT_WRITER_PASSWORD_FILE"`
    SELECT length(:'password') >= 16 AS long_enough \gset
    \if :long_enough
        ALTER ROLE :"writer_role" PASSWORD :'password';
    \else
        DO $$ BEGIN RAISE EXCEPTION 'the writer password file is missing or holds under 16 characters'; END $$;
    \endif
\endif
\if :has_reader
    \set password `tr -d '\n' < "$FINSENT_READER_PASSWORD_FILE"`
    SELECT length(:'password') >= 16 AS long_enough \gset
    \if :long_enough
        ALTER ROLE :"reader_role" PASSWORD :'password';
    \else
        DO $$ BEGIN RAISE EXCEPTION 'the reader password file is missing or holds under 16 characters'; END $$;
    \endif
\endif
\unset password
