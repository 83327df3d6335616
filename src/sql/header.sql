-- pg_wamarketing install script (assembled by the Makefile from src/sql/*.sql)

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION pg_wamarketing" to load this file. \quit

-- The schema belongs to the extension, so DROP EXTENSION removes it too.
CREATE SCHEMA wam;
COMMENT ON SCHEMA wam IS 'pg_wamarketing: WhatsApp marketing inside PostgreSQL';
