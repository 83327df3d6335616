-- pg_wamarketing install script (assembled by the Makefile from src/sql/*.sql)

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION pg_wamarketing" to load this file. \quit

-- The schema belongs to the extension, so DROP EXTENSION removes it too.
CREATE SCHEMA wam;
COMMENT ON SCHEMA wam IS 'pg_wamarketing: WhatsApp marketing inside PostgreSQL';

-- Internal, trigger and type-support functions and internal tables live apart
-- from the public API.  No user role may use the schema: the SECURITY DEFINER
-- functions (owned by wam_definer, see security.sql) call into it, and
-- operators, casts, aggregates and triggers reach it by OID.
CREATE SCHEMA wam_internal;
COMMENT ON SCHEMA wam_internal IS 'pg_wamarketing internals: not an API, may change in any release';
REVOKE ALL ON SCHEMA wam_internal FROM PUBLIC;

-- The extension's own advisory locks (src/wam_lock.h): pg_locks shows them as
-- locktype 'advisory' with objsubid 22432 + space, a value SQL's
-- pg_advisory_lock() functions never use, so no role can block them.
CREATE FUNCTION wam_internal.lock_key(space integer, key bigint) RETURNS void
	AS 'MODULE_PATHNAME', 'wam_lock_key' LANGUAGE C VOLATILE STRICT;
COMMENT ON FUNCTION wam_internal.lock_key(integer, bigint) IS 'internal: transaction-scoped lock of a key in one of the extension''s lock spaces (1 tag blocks, 2 order statistics, 3 referral persons, 4 inbound wamids, 5 customers'' contact pressure, 6 portfolios'' messaging limits)';

REVOKE EXECUTE ON FUNCTION wam_internal.lock_key(integer, bigint) FROM PUBLIC;

-- The check of arguments that must not be null, for the PL/pgSQL functions:
-- PERFORM wam_internal.refuse_null(customer IS NULL, 'customer') raises "customer must
-- not be null" (22004).  Every role may run it: it only reports on the
-- arguments it is given, and every function here, definer or not, calls it.
CREATE FUNCTION wam_internal.refuse_null(is_null boolean, what text) RETURNS void
	AS 'MODULE_PATHNAME', 'wam_refuse_null' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION wam_internal.refuse_null(boolean, text) IS 'internal: raises "<what> must not be null" (null_value_not_allowed) when is_null';
