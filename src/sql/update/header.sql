-- pg_wamarketing upgrade script, assembled by the Makefile from
-- src/sql/update/FROM--TO/*.sql (one part per change) and src/sql/security.sql.
\echo Use "ALTER EXTENSION pg_wamarketing UPDATE" to load this file. \quit
