-- stanceline's three roles: run once by a database administrator, in the database stanceline
-- uses (managed Postgres services often refuse CREATE ROLE to the user that migrates):
--
--   psql "$ADMIN_DATABASE_URL" -v ON_ERROR_STOP=1 \
--        -v owner_password="$OWNER_PASSWORD" -v writer_password="$WRITER_PASSWORD" \
--        -v reader_password="$READER_PASSWORD" -f deploy/roles.sql
--
-- stanceline_owner   owns the tables: `stanceline migrate` and `stanceline rebuild` (a rebuild
--                    builds new tables in a shadow schema and swaps them in, which is DDL).
-- stanceline_writer  the projector and the operator tools (replay, dlq, status): reads and
--                    writes rows, creates nothing.
-- stanceline_reader  `stanceline api`: SELECT only.
--
-- Running it again changes passwords and re-grants; it never drops anything.

SELECT format('CREATE ROLE %I LOGIN', name)
  FROM (VALUES ('stanceline_owner'), ('stanceline_writer'), ('stanceline_reader')) AS r(name)
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = r.name)
\gexec

ALTER ROLE stanceline_owner LOGIN NOSUPERUSER NOCREATEROLE PASSWORD :'owner_password';
ALTER ROLE stanceline_writer LOGIN NOSUPERUSER NOCREATEROLE NOCREATEDB PASSWORD :'writer_password';
ALTER ROLE stanceline_reader LOGIN NOSUPERUSER NOCREATEROLE NOCREATEDB PASSWORD :'reader_password';

SELECT format('GRANT CONNECT ON DATABASE %I TO stanceline_owner, stanceline_writer, stanceline_reader',
              current_database())
\gexec
-- The rebuild's shadow and retired schemas.
SELECT format('GRANT CREATE ON DATABASE %I TO stanceline_owner', current_database())
\gexec

GRANT USAGE, CREATE ON SCHEMA public TO stanceline_owner;
GRANT USAGE ON SCHEMA public TO stanceline_writer, stanceline_reader;

-- Every table and sequence the owner creates from now on, in any schema (the migrations',
-- and the tables a rebuild swaps in), carries these grants from the moment it exists.
ALTER DEFAULT PRIVILEGES FOR ROLE stanceline_owner
    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO stanceline_writer;
ALTER DEFAULT PRIVILEGES FOR ROLE stanceline_owner
    GRANT USAGE, SELECT ON SEQUENCES TO stanceline_writer;
ALTER DEFAULT PRIVILEGES FOR ROLE stanceline_owner
    GRANT SELECT ON TABLES TO stanceline_reader;

-- Tables that already exist, for a deployment that migrated as another role before.
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO stanceline_writer;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO stanceline_writer;
GRANT SELECT ON ALL TABLES IN SCHEMA public TO stanceline_reader;
