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
COMMENT ON FUNCTION wam_internal.lock_key(integer, bigint) IS 'internal: transaction-scoped lock of a key in one of the extension''s lock spaces (1 tag blocks, 2 order statistics, 3 referral persons)';

REVOKE EXECUTE ON FUNCTION wam_internal.lock_key(integer, bigint) FROM PUBLIC;

-- The check of arguments that must not be null, for the PL/pgSQL functions:
-- PERFORM wam_internal.refuse_null(customer IS NULL, 'customer') raises "customer must
-- not be null" (22004).  Every role may run it: it only reports on the
-- arguments it is given, and every function here, definer or not, calls it.
CREATE FUNCTION wam_internal.refuse_null(is_null boolean, what text) RETURNS void
	AS 'MODULE_PATHNAME', 'wam_refuse_null' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION wam_internal.refuse_null(boolean, text) IS 'internal: raises "<what> must not be null" (null_value_not_allowed) when is_null';
-- src/sql/segment.sql: the wam.segment type (a set of customer ids)

-- segment type

CREATE TYPE wam.segment;

CREATE FUNCTION wam_internal.segment_in(cstring) RETURNS wam.segment
	AS 'MODULE_PATHNAME', 'wam_segment_in' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION wam_internal.segment_out(wam.segment) RETURNS cstring
	AS 'MODULE_PATHNAME', 'wam_segment_out' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION wam_internal.segment_recv(internal) RETURNS wam.segment
	AS 'MODULE_PATHNAME', 'wam_segment_recv' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION wam_internal.segment_send(wam.segment) RETURNS bytea
	AS 'MODULE_PATHNAME', 'wam_segment_send' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE TYPE wam.segment (
	INPUT = wam_internal.segment_in,
	OUTPUT = wam_internal.segment_out,
	RECEIVE = wam_internal.segment_recv,
	SEND = wam_internal.segment_send,
	INTERNALLENGTH = VARIABLE,
	ALIGNMENT = int4,
	STORAGE = external
);

COMMENT ON TYPE wam.segment IS 'set of customer ids (0 .. 4294967295) stored as a Roaring bitmap';

-- segment functions

CREATE FUNCTION wam.segment_cardinality(wam.segment) RETURNS bigint
	AS 'MODULE_PATHNAME', 'wam_segment_cardinality' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION wam.segment_cardinality(wam.segment) IS 'number of customers in the segment';

CREATE FUNCTION wam.segment_and_cardinality(wam.segment, wam.segment) RETURNS bigint
	AS 'MODULE_PATHNAME', 'wam_segment_and_cardinality' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION wam.segment_and_cardinality(wam.segment, wam.segment) IS 'size of the intersection, without building it';

CREATE FUNCTION wam.segment_or_cardinality(wam.segment, wam.segment) RETURNS bigint
	AS 'MODULE_PATHNAME', 'wam_segment_or_cardinality' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION wam.segment_or_cardinality(wam.segment, wam.segment) IS 'size of the union, without building it';

CREATE FUNCTION wam.segment_andnot_cardinality(wam.segment, wam.segment) RETURNS bigint
	AS 'MODULE_PATHNAME', 'wam_segment_andnot_cardinality' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION wam.segment_andnot_cardinality(wam.segment, wam.segment) IS 'size of the difference, without building it';

CREATE FUNCTION wam.segment_xor_cardinality(wam.segment, wam.segment) RETURNS bigint
	AS 'MODULE_PATHNAME', 'wam_segment_xor_cardinality' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION wam.segment_xor_cardinality(wam.segment, wam.segment) IS 'size of the symmetric difference, without building it';

CREATE FUNCTION wam.segment_jaccard(wam.segment, wam.segment) RETURNS double precision
	AS 'MODULE_PATHNAME', 'wam_segment_jaccard' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION wam.segment_jaccard(wam.segment, wam.segment) IS 'Jaccard similarity (1 for two empty segments)';

CREATE FUNCTION wam.segment_is_empty(wam.segment) RETURNS boolean
	AS 'MODULE_PATHNAME', 'wam_segment_is_empty' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION wam.segment_is_empty(wam.segment) IS 'true when the segment has no customers';

CREATE FUNCTION wam.segment_has(wam.segment, bigint) RETURNS boolean
	AS 'MODULE_PATHNAME', 'wam_segment_contains_id' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION wam.segment_has(wam.segment, bigint) IS 'true when the customer id is in the segment';

CREATE FUNCTION wam.segment_add(wam.segment, bigint) RETURNS wam.segment
	AS 'MODULE_PATHNAME', 'wam_segment_add' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION wam.segment_add(wam.segment, bigint) IS 'the segment with one customer id added';

CREATE FUNCTION wam.segment_remove(wam.segment, bigint) RETURNS wam.segment
	AS 'MODULE_PATHNAME', 'wam_segment_remove' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION wam.segment_remove(wam.segment, bigint) IS 'the segment with one customer id removed';

CREATE FUNCTION wam.segment_members(wam.segment) RETURNS SETOF bigint
	AS 'MODULE_PATHNAME', 'wam_segment_members' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
	ROWS 1000;
COMMENT ON FUNCTION wam.segment_members(wam.segment) IS 'the customer ids in ascending order, streamed';

CREATE FUNCTION wam.segment_to_array(wam.segment) RETURNS bigint[]
	AS 'MODULE_PATHNAME', 'wam_segment_to_int8_array' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION wam.segment_to_array(wam.segment) IS 'the customer ids as an ascending array';

CREATE FUNCTION wam.segment_min(wam.segment) RETURNS bigint
	AS 'MODULE_PATHNAME', 'wam_segment_min' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION wam.segment_min(wam.segment) IS 'smallest customer id, NULL when empty';

CREATE FUNCTION wam.segment_max(wam.segment) RETURNS bigint
	AS 'MODULE_PATHNAME', 'wam_segment_max' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION wam.segment_max(wam.segment) IS 'largest customer id, NULL when empty';

CREATE FUNCTION wam.segment_range(lo bigint, hi bigint) RETURNS wam.segment
	AS 'MODULE_PATHNAME', 'wam_segment_range' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION wam.segment_range(bigint, bigint) IS 'all customer ids in [lo, hi)';

CREATE FUNCTION wam.segment_split(wam.segment, buckets integer, seed bigint) RETURNS SETOF wam.segment
	AS 'MODULE_PATHNAME', 'wam_segment_split' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
	ROWS 2;
COMMENT ON FUNCTION wam.segment_split(wam.segment, integer, bigint) IS 'deterministic random split into equal-sized buckets';

-- operator functions

CREATE FUNCTION wam_internal.segment_and(wam.segment, wam.segment) RETURNS wam.segment
	AS 'MODULE_PATHNAME', 'wam_segment_and' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION wam_internal.segment_or(wam.segment, wam.segment) RETURNS wam.segment
	AS 'MODULE_PATHNAME', 'wam_segment_or' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION wam_internal.segment_andnot(wam.segment, wam.segment) RETURNS wam.segment
	AS 'MODULE_PATHNAME', 'wam_segment_andnot' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION wam_internal.segment_xor(wam.segment, wam.segment) RETURNS wam.segment
	AS 'MODULE_PATHNAME', 'wam_segment_xor' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION wam_internal.segment_contains(wam.segment, wam.segment) RETURNS boolean
	AS 'MODULE_PATHNAME', 'wam_segment_contains_segment' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION wam_internal.segment_contained_by(wam.segment, wam.segment) RETURNS boolean
	AS 'MODULE_PATHNAME', 'wam_segment_contained_by_segment' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION wam_internal.segment_contains_id(wam.segment, bigint) RETURNS boolean
	AS 'MODULE_PATHNAME', 'wam_segment_contains_id' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION wam_internal.segment_id_contained_by(bigint, wam.segment) RETURNS boolean
	AS 'MODULE_PATHNAME', 'wam_segment_id_contained_by' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION wam_internal.segment_overlaps(wam.segment, wam.segment) RETURNS boolean
	AS 'MODULE_PATHNAME', 'wam_segment_overlaps' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION wam_internal.segment_eq(wam.segment, wam.segment) RETURNS boolean
	AS 'MODULE_PATHNAME', 'wam_segment_eq' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
CREATE FUNCTION wam_internal.segment_ne(wam.segment, wam.segment) RETURNS boolean
	AS 'MODULE_PATHNAME', 'wam_segment_ne' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
CREATE FUNCTION wam_internal.segment_lt(wam.segment, wam.segment) RETURNS boolean
	AS 'MODULE_PATHNAME', 'wam_segment_lt' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION wam_internal.segment_le(wam.segment, wam.segment) RETURNS boolean
	AS 'MODULE_PATHNAME', 'wam_segment_le' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION wam_internal.segment_gt(wam.segment, wam.segment) RETURNS boolean
	AS 'MODULE_PATHNAME', 'wam_segment_gt' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION wam_internal.segment_ge(wam.segment, wam.segment) RETURNS boolean
	AS 'MODULE_PATHNAME', 'wam_segment_ge' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION wam_internal.segment_cmp(wam.segment, wam.segment) RETURNS integer
	AS 'MODULE_PATHNAME', 'wam_segment_cmp' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION wam_internal.segment_hash(wam.segment) RETURNS integer
	AS 'MODULE_PATHNAME', 'wam_segment_hash' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION wam_internal.segment_hash_extended(wam.segment, bigint) RETURNS bigint
	AS 'MODULE_PATHNAME', 'wam_segment_hash_extended' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION wam_internal.segment_and(wam.segment, wam.segment) IS 'implementation of & (intersection)';
COMMENT ON FUNCTION wam_internal.segment_or(wam.segment, wam.segment) IS 'implementation of | (union)';
COMMENT ON FUNCTION wam_internal.segment_andnot(wam.segment, wam.segment) IS 'implementation of - (difference, EXCLUDE)';
COMMENT ON FUNCTION wam_internal.segment_xor(wam.segment, wam.segment) IS 'implementation of # (symmetric difference)';
COMMENT ON FUNCTION wam_internal.segment_contains(wam.segment, wam.segment) IS 'implementation of @> (contains segment)';
COMMENT ON FUNCTION wam_internal.segment_contained_by(wam.segment, wam.segment) IS 'implementation of <@ (contained by segment)';
COMMENT ON FUNCTION wam_internal.segment_contains_id(wam.segment, bigint) IS 'implementation of @> (contains id)';
COMMENT ON FUNCTION wam_internal.segment_id_contained_by(bigint, wam.segment) IS 'implementation of <@ (id in segment)';
COMMENT ON FUNCTION wam_internal.segment_overlaps(wam.segment, wam.segment) IS 'implementation of && (overlap)';
COMMENT ON FUNCTION wam_internal.segment_eq(wam.segment, wam.segment) IS 'implementation of =';
COMMENT ON FUNCTION wam_internal.segment_ne(wam.segment, wam.segment) IS 'implementation of <>';
COMMENT ON FUNCTION wam_internal.segment_lt(wam.segment, wam.segment) IS 'implementation of < (member-list order)';
COMMENT ON FUNCTION wam_internal.segment_le(wam.segment, wam.segment) IS 'implementation of <= (member-list order)';
COMMENT ON FUNCTION wam_internal.segment_gt(wam.segment, wam.segment) IS 'implementation of > (member-list order)';
COMMENT ON FUNCTION wam_internal.segment_ge(wam.segment, wam.segment) IS 'implementation of >= (member-list order)';
COMMENT ON FUNCTION wam_internal.segment_cmp(wam.segment, wam.segment) IS 'btree support: compares member lists lexicographically';
COMMENT ON FUNCTION wam_internal.segment_hash(wam.segment) IS 'hash support';
COMMENT ON FUNCTION wam_internal.segment_hash_extended(wam.segment, bigint) IS 'hash support (64-bit, seeded)';

-- aggregate support functions

CREATE FUNCTION wam_internal.segment_agg_trans(wam.segment, bigint) RETURNS wam.segment
	AS 'MODULE_PATHNAME', 'wam_segment_agg_trans' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION wam_internal.segment_union_trans(wam.segment, wam.segment) RETURNS wam.segment
	AS 'MODULE_PATHNAME', 'wam_segment_union_trans' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION wam_internal.segment_intersect_trans(wam.segment, wam.segment) RETURNS wam.segment
	AS 'MODULE_PATHNAME', 'wam_segment_intersect_trans' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION wam_internal.segment_agg_trans(wam.segment, bigint) IS 'transition function of segment_agg (aggregate context only)';
COMMENT ON FUNCTION wam_internal.segment_union_trans(wam.segment, wam.segment) IS 'transition/combine function of union_agg and segment_agg (aggregate context only)';
COMMENT ON FUNCTION wam_internal.segment_intersect_trans(wam.segment, wam.segment) IS 'transition/combine function of intersect_agg (aggregate context only)';

-- aggregates

CREATE AGGREGATE wam.segment_agg(bigint) (
	SFUNC = wam_internal.segment_agg_trans,
	STYPE = wam.segment,
	COMBINEFUNC = wam_internal.segment_union_trans,
	PARALLEL = SAFE
);
COMMENT ON AGGREGATE wam.segment_agg(bigint) IS 'segment of all non-NULL customer ids';

CREATE AGGREGATE wam.segment_union_agg(wam.segment) (
	SFUNC = wam_internal.segment_union_trans,
	STYPE = wam.segment,
	COMBINEFUNC = wam_internal.segment_union_trans,
	PARALLEL = SAFE
);
COMMENT ON AGGREGATE wam.segment_union_agg(wam.segment) IS 'union of all non-NULL segments';

CREATE AGGREGATE wam.segment_intersect_agg(wam.segment) (
	SFUNC = wam_internal.segment_intersect_trans,
	STYPE = wam.segment,
	COMBINEFUNC = wam_internal.segment_intersect_trans,
	PARALLEL = SAFE
);
COMMENT ON AGGREGATE wam.segment_intersect_agg(wam.segment) IS 'intersection of all non-NULL segments';

-- cast functions

CREATE FUNCTION wam.segment(integer[]) RETURNS wam.segment
	AS 'MODULE_PATHNAME', 'wam_segment_from_int4_array' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION wam.segment(bigint[]) RETURNS wam.segment
	AS 'MODULE_PATHNAME', 'wam_segment_from_int8_array' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION wam.segment(bytea) RETURNS wam.segment
	AS 'MODULE_PATHNAME', 'wam_segment_from_bytea' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION wam.segment_is_valid(bytea) RETURNS boolean
	AS 'MODULE_PATHNAME', 'wam_segment_is_valid_bytea' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION wam.segment_is_valid(bytea) IS 'true when bytes are a valid Roaring portable serialization';
CREATE FUNCTION wam_internal.segment_to_int4_array(wam.segment) RETURNS integer[]
	AS 'MODULE_PATHNAME', 'wam_segment_to_int4_array' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION wam_internal.segment_to_int8_array(wam.segment) RETURNS bigint[]
	AS 'MODULE_PATHNAME', 'wam_segment_to_int8_array' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION wam.segment_to_bytea(wam.segment) RETURNS bytea
	AS 'MODULE_PATHNAME', 'wam_segment_to_bytea' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION wam.segment(integer[]) IS 'segment of the ids in an integer array';
COMMENT ON FUNCTION wam.segment(bigint[]) IS 'segment of the ids in a bigint array';
COMMENT ON FUNCTION wam.segment(bytea) IS 'segment from its Roaring portable serialization (validated)';
COMMENT ON FUNCTION wam_internal.segment_to_int4_array(wam.segment) IS 'members as integer[] (error if an id exceeds 2147483647)';
COMMENT ON FUNCTION wam_internal.segment_to_int8_array(wam.segment) IS 'members as bigint[]';
COMMENT ON FUNCTION wam.segment_to_bytea(wam.segment) IS 'Roaring portable serialization of the segment';

-- casts

CREATE CAST (integer[] AS wam.segment) WITH FUNCTION wam.segment(integer[]);
CREATE CAST (bigint[] AS wam.segment) WITH FUNCTION wam.segment(bigint[]);
CREATE CAST (bytea AS wam.segment) WITH FUNCTION wam.segment(bytea);
CREATE CAST (wam.segment AS integer[]) WITH FUNCTION wam_internal.segment_to_int4_array(wam.segment);
CREATE CAST (wam.segment AS bigint[]) WITH FUNCTION wam_internal.segment_to_int8_array(wam.segment);
CREATE CAST (wam.segment AS bytea) WITH FUNCTION wam.segment_to_bytea(wam.segment);

-- operators

CREATE OPERATOR wam.& (
	LEFTARG = wam.segment, RIGHTARG = wam.segment, PROCEDURE = wam_internal.segment_and,
	COMMUTATOR = OPERATOR(wam.&)
);
CREATE OPERATOR wam.| (
	LEFTARG = wam.segment, RIGHTARG = wam.segment, PROCEDURE = wam_internal.segment_or,
	COMMUTATOR = OPERATOR(wam.|)
);
CREATE OPERATOR wam.- (
	LEFTARG = wam.segment, RIGHTARG = wam.segment, PROCEDURE = wam_internal.segment_andnot
);
CREATE OPERATOR wam.# (
	LEFTARG = wam.segment, RIGHTARG = wam.segment, PROCEDURE = wam_internal.segment_xor,
	COMMUTATOR = OPERATOR(wam.#)
);
CREATE OPERATOR wam.@> (
	LEFTARG = wam.segment, RIGHTARG = wam.segment, PROCEDURE = wam_internal.segment_contains,
	COMMUTATOR = OPERATOR(wam.<@),
	RESTRICT = contsel, JOIN = contjoinsel
);
CREATE OPERATOR wam.<@ (
	LEFTARG = wam.segment, RIGHTARG = wam.segment, PROCEDURE = wam_internal.segment_contained_by,
	COMMUTATOR = OPERATOR(wam.@>),
	RESTRICT = contsel, JOIN = contjoinsel
);
CREATE OPERATOR wam.@> (
	LEFTARG = wam.segment, RIGHTARG = bigint, PROCEDURE = wam_internal.segment_contains_id,
	COMMUTATOR = OPERATOR(wam.<@),
	RESTRICT = contsel, JOIN = contjoinsel
);
CREATE OPERATOR wam.<@ (
	LEFTARG = bigint, RIGHTARG = wam.segment, PROCEDURE = wam_internal.segment_id_contained_by,
	COMMUTATOR = OPERATOR(wam.@>),
	RESTRICT = contsel, JOIN = contjoinsel
);
CREATE OPERATOR wam.&& (
	LEFTARG = wam.segment, RIGHTARG = wam.segment, PROCEDURE = wam_internal.segment_overlaps,
	COMMUTATOR = OPERATOR(wam.&&),
	RESTRICT = areasel, JOIN = areajoinsel
);
CREATE OPERATOR wam.= (
	LEFTARG = wam.segment, RIGHTARG = wam.segment, PROCEDURE = wam_internal.segment_eq,
	COMMUTATOR = OPERATOR(wam.=), NEGATOR = OPERATOR(wam.<>),
	RESTRICT = eqsel, JOIN = eqjoinsel, HASHES, MERGES
);
CREATE OPERATOR wam.<> (
	LEFTARG = wam.segment, RIGHTARG = wam.segment, PROCEDURE = wam_internal.segment_ne,
	COMMUTATOR = OPERATOR(wam.<>), NEGATOR = OPERATOR(wam.=),
	RESTRICT = neqsel, JOIN = neqjoinsel
);
CREATE OPERATOR wam.< (
	LEFTARG = wam.segment, RIGHTARG = wam.segment, PROCEDURE = wam_internal.segment_lt,
	COMMUTATOR = OPERATOR(wam.>), NEGATOR = OPERATOR(wam.>=),
	RESTRICT = scalarltsel, JOIN = scalarltjoinsel
);
CREATE OPERATOR wam.<= (
	LEFTARG = wam.segment, RIGHTARG = wam.segment, PROCEDURE = wam_internal.segment_le,
	COMMUTATOR = OPERATOR(wam.>=), NEGATOR = OPERATOR(wam.>),
	RESTRICT = scalarlesel, JOIN = scalarlejoinsel
);
CREATE OPERATOR wam.> (
	LEFTARG = wam.segment, RIGHTARG = wam.segment, PROCEDURE = wam_internal.segment_gt,
	COMMUTATOR = OPERATOR(wam.<), NEGATOR = OPERATOR(wam.<=),
	RESTRICT = scalargtsel, JOIN = scalargtjoinsel
);
CREATE OPERATOR wam.>= (
	LEFTARG = wam.segment, RIGHTARG = wam.segment, PROCEDURE = wam_internal.segment_ge,
	COMMUTATOR = OPERATOR(wam.<=), NEGATOR = OPERATOR(wam.<),
	RESTRICT = scalargesel, JOIN = scalargejoinsel
);

COMMENT ON OPERATOR wam.& (wam.segment, wam.segment) IS 'intersection (AND)';
COMMENT ON OPERATOR wam.| (wam.segment, wam.segment) IS 'union (OR)';
COMMENT ON OPERATOR wam.- (wam.segment, wam.segment) IS 'difference (EXCLUDE)';
COMMENT ON OPERATOR wam.# (wam.segment, wam.segment) IS 'symmetric difference';
COMMENT ON OPERATOR wam.@> (wam.segment, wam.segment) IS 'contains segment';
COMMENT ON OPERATOR wam.<@ (wam.segment, wam.segment) IS 'is contained by segment';
COMMENT ON OPERATOR wam.@> (wam.segment, bigint) IS 'contains customer id';
COMMENT ON OPERATOR wam.<@ (bigint, wam.segment) IS 'customer id is in segment';
COMMENT ON OPERATOR wam.&& (wam.segment, wam.segment) IS 'overlaps';
COMMENT ON OPERATOR wam.= (wam.segment, wam.segment) IS 'same members';
COMMENT ON OPERATOR wam.<> (wam.segment, wam.segment) IS 'different members';
COMMENT ON OPERATOR wam.< (wam.segment, wam.segment) IS 'less than (member lists compared lexicographically)';
COMMENT ON OPERATOR wam.<= (wam.segment, wam.segment) IS 'less than or equal (member lists compared lexicographically)';
COMMENT ON OPERATOR wam.> (wam.segment, wam.segment) IS 'greater than (member lists compared lexicographically)';
COMMENT ON OPERATOR wam.>= (wam.segment, wam.segment) IS 'greater than or equal (member lists compared lexicographically)';

-- operator classes: btree (ORDER BY, sort-based GROUP BY/DISTINCT, merge
-- joins) and hash (hash aggregation, hash joins, hash partitioning)

CREATE OPERATOR CLASS wam.segment_ops
	DEFAULT FOR TYPE wam.segment USING btree AS
	OPERATOR 1 wam.<,
	OPERATOR 2 wam.<=,
	OPERATOR 3 wam.=,
	OPERATOR 4 wam.>=,
	OPERATOR 5 wam.>,
	FUNCTION 1 wam_internal.segment_cmp(wam.segment, wam.segment);

CREATE OPERATOR CLASS wam.segment_hash_ops
	DEFAULT FOR TYPE wam.segment USING hash AS
	OPERATOR 1 wam.=,
	FUNCTION 1 wam_internal.segment_hash(wam.segment),
	FUNCTION 2 wam_internal.segment_hash_extended(wam.segment, bigint);
-- src/sql/core.sql: the core: roles, customers, consent, behaviour events,
-- orders and per-customer purchase statistics
-- roles

-- Roles are cluster-wide, so they may already exist (another database has the
-- extension); they are not extension members and survive DROP EXTENSION.
DO $roles$
BEGIN
	IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) 'wam_reader') THEN
		CREATE ROLE wam_reader NOLOGIN;
	END IF;
	IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) 'wam_operator') THEN
		CREATE ROLE wam_operator NOLOGIN;
	END IF;
	IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) 'wam_admin') THEN
		CREATE ROLE wam_admin NOLOGIN;
	END IF;
	IF NOT pg_catalog.pg_has_role('wam_operator', 'wam_reader', 'MEMBER') THEN
		GRANT wam_reader TO wam_operator;
	END IF;
	IF NOT pg_catalog.pg_has_role('wam_admin', 'wam_operator', 'MEMBER') THEN
		GRANT wam_operator TO wam_admin;
	END IF;
	-- wam_definer owns the SECURITY DEFINER functions (src/sql/security.sql):
	-- they run with its table privileges, never with the installing superuser's.
	-- Nobody logs in as it or is a member of it, so the only way to act as it is
	-- through those functions.
	IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) 'wam_definer') THEN
		CREATE ROLE wam_definer NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT NOREPLICATION NOBYPASSRLS;
	ELSIF EXISTS (SELECT FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) 'wam_definer'
				  AND (r.rolsuper OR r.rolbypassrls OR r.rolcanlogin OR r.rolcreaterole OR r.rolreplication))
		OR EXISTS (SELECT FROM pg_catalog.pg_auth_members m
				   WHERE m.roleid OPERATOR(pg_catalog.=) 'wam_definer'::pg_catalog.regrole
					  OR m.member OPERATOR(pg_catalog.=) 'wam_definer'::pg_catalog.regrole) THEN
		RAISE EXCEPTION 'role "wam_definer" has more rights than the extension allows'
			USING ERRCODE = 'insufficient_privilege',
				  DETAIL = 'It must be NOLOGIN, NOSUPERUSER, NOCREATEROLE, NOREPLICATION and NOBYPASSRLS, with no members and no memberships.',
				  HINT = 'Fix the role (ALTER ROLE, REVOKE) or drop it, then create the extension again.';
	END IF;
END
$roles$;
GRANT USAGE ON SCHEMA wam TO wam_reader, wam_definer;

-- customers

CREATE SEQUENCE wam.customer_id_seq MINVALUE 1 MAXVALUE 4294967295;

GRANT USAGE ON SEQUENCE wam.customer_id_seq TO wam_definer;
GRANT USAGE ON SEQUENCE wam.customer_id_seq TO wam_operator;

CREATE TABLE wam.customer (
	id bigint PRIMARY KEY DEFAULT pg_catalog.nextval('wam.customer_id_seq')
		CONSTRAINT customer_id_range CHECK (id >= 0 AND id <= 4294967295),
	phone text NOT NULL UNIQUE
		CONSTRAINT customer_phone_e164 CHECK (phone ~ '^[1-9][0-9]{6,14}$'),
	name text,
	locale text,
	time_zone text,
	consent_at timestamptz,
	consent_source text,
	opted_out_at timestamptz,
	opt_out_reason text,
	created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	first_order_at timestamptz,
	last_order_at timestamptz,
	last_inbound_at timestamptz,
	last_read_at timestamptz,
	CONSTRAINT customer_consent_source CHECK (consent_at IS NULL OR consent_source IS NOT NULL)
) WITH (fillfactor = 85);
COMMENT ON TABLE wam.customer IS 'customers: phone, name, locale, time zone, consent';
COMMENT ON COLUMN wam.customer.consent_at IS 'when the customer consented to WhatsApp marketing (NULL: never; such customers can be tagged but not messaged)';
COMMENT ON COLUMN wam.customer.opted_out_at IS 'when the customer opted out (non-NULL: never message)';

GRANT SELECT ON wam.customer TO wam_reader;
GRANT SELECT, INSERT, UPDATE ON wam.customer TO wam_definer;

-- behaviour events

CREATE TABLE wam.event (
	event_id bigint GENERATED ALWAYS AS IDENTITY,
	customer_id bigint NOT NULL REFERENCES wam.customer ON DELETE CASCADE,
	kind text NOT NULL CONSTRAINT event_kind CHECK (kind ~ '^[a-z][a-z0-9_]*$'),
	occurred_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	details jsonb,
	PRIMARY KEY (customer_id, event_id)
);
-- customer_id is included so that behaviour predicates ("event(kind) >= n
-- within 7d") read only the index (events are insert-only, so the visibility
-- map stays nearly all-visible): a third faster at 50 million events.
CREATE INDEX event_kind_time ON wam.event (kind, occurred_at) INCLUDE (customer_id);
COMMENT ON TABLE wam.event IS 'behaviour events (link_click, order, reply, ...)';

GRANT INSERT ON wam.event TO wam_operator;
GRANT SELECT ON wam.event TO wam_reader;
GRANT SELECT, INSERT ON wam.event TO wam_definer;
GRANT USAGE ON SEQUENCE wam.event_event_id_seq TO wam_definer;

-- customers

CREATE FUNCTION wam_internal.time_zone_name(name text) RETURNS text
	AS 'MODULE_PATHNAME', 'wam_time_zone_name' LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION wam_internal.time_zone_name(text) IS 'the time zone name as pg_timezone_names spells it (matched without case), NULL if it is not one (POSIX specifications such as UTC+8 are not names); the names are read once per session';

REVOKE EXECUTE ON FUNCTION wam_internal.time_zone_name(text) FROM PUBLIC;

CREATE FUNCTION wam.upsert_customer(phone text, name text DEFAULT NULL, locale text DEFAULT NULL,
									time_zone text DEFAULT NULL, default_country text DEFAULT NULL)
	RETURNS bigint
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	e164 text;
	zone text;
	loc text;
	parts text[];
	new_id bigint;
BEGIN
	IF phone IS NULL THEN
		RAISE EXCEPTION 'phone must not be null' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	-- raises 22023 with the reason for an invalid number or default country
	e164 := wam.normalize_phone(phone, default_country);
	-- the name goes into message templates, whose parameters may not hold
	-- line breaks or tabs (the Cloud API rejects the message)
	name := btrim(name);
	IF name ~ '[\x01-\x1f\x7f]' THEN
		RAISE EXCEPTION 'customer name must not contain control characters such as line breaks or tabs'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	-- locale: language[-Script][-REGION] (BCP 47; "_" as in WhatsApp's
	-- template languages works too), stored in the usual letter case
	locale := btrim(locale);
	IF locale <> '' THEN
		IF locale !~* '^[a-z]{2,3}([-_][a-z]{4})?([-_]([a-z]{2}|[0-9]{3}))?$'
		   OR (locale LIKE '%-%' AND locale LIKE '%\_%') THEN
			RAISE EXCEPTION 'invalid locale "%"', left(locale, 100)
				USING ERRCODE = 'invalid_parameter_value',
					  HINT = 'Use a language code with an optional script and region, e.g. en, pt-BR, zh-Hant-TW or pt_BR.';
		END IF;
		parts := regexp_split_to_array(locale, '[-_]');
		loc := lower(parts[1]);
		FOR i IN 2 .. cardinality(parts) LOOP
			loc := loc || CASE WHEN locale LIKE '%\_%' THEN '_' ELSE '-' END
				   || CASE WHEN length(parts[i]) = 4 THEN initcap(parts[i]) ELSE upper(parts[i]) END;
		END LOOP;
	ELSE
		loc := locale;
	END IF;
	time_zone := btrim(time_zone);
	IF time_zone <> '' THEN
		zone := wam_internal.time_zone_name(time_zone);
		IF zone IS NULL THEN
			RAISE EXCEPTION 'time zone "%" is not recognized', left(time_zone, 100)
				USING ERRCODE = 'invalid_parameter_value',
					  HINT = 'Use a name from pg_timezone_names, e.g. Asia/Hong_Kong or America/Sao_Paulo.';
		END IF;
	ELSE
		zone := time_zone;
	END IF;
	-- NULL keeps the stored value, '' clears it
	INSERT INTO wam.customer AS c (phone, name, locale, time_zone)
	VALUES (e164, nullif(name, ''), nullif(loc, ''), nullif(zone, ''))
	ON CONFLICT ON CONSTRAINT customer_phone_key DO UPDATE
	SET name = CASE WHEN name IS NULL THEN c.name ELSE EXCLUDED.name END,
		locale = CASE WHEN loc IS NULL THEN c.locale ELSE EXCLUDED.locale END,
		time_zone = CASE WHEN zone IS NULL THEN c.time_zone ELSE EXCLUDED.time_zone END
	RETURNING c.id INTO new_id;
	RETURN new_id;
END
$$;
COMMENT ON FUNCTION wam.upsert_customer(text, text, text, text, text) IS 'creates or updates a customer by phone; returns the customer id';

REVOKE EXECUTE ON FUNCTION wam.upsert_customer(text, text, text, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.upsert_customer(text, text, text, text, text) TO wam_operator;

-- orders and purchase statistics

CREATE TABLE wam.customer_order (
	customer_id bigint NOT NULL REFERENCES wam.customer ON DELETE CASCADE,
	order_id bigint GENERATED BY DEFAULT AS IDENTITY,
	ordered_at timestamptz NOT NULL,
	amount numeric NOT NULL
		CONSTRAINT customer_order_amount CHECK (amount >= 0 AND amount < 'Infinity'),
	currency text CONSTRAINT customer_order_currency CHECK (currency ~ '^[A-Z]{3}$'),
	coupon_used boolean NOT NULL DEFAULT false,
	units integer NOT NULL DEFAULT 1 CONSTRAINT customer_order_units CHECK (units > 0),
	details jsonb,
	recorded_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	PRIMARY KEY (customer_id, order_id)
);
CREATE INDEX customer_order_time ON wam.customer_order (customer_id, ordered_at);
COMMENT ON TABLE wam.customer_order IS 'orders (write with wam.record_order)';
COMMENT ON COLUMN wam.customer_order.units IS 'items in the order (details->>''units'', else the sum of details->''products''[].quantity, else 1): the unit price is amount / units';

REVOKE ALL ON wam.customer_order FROM PUBLIC;
GRANT SELECT ON wam.customer_order TO wam_reader;
GRANT SELECT, INSERT ON wam.customer_order TO wam_definer;
GRANT USAGE ON SEQUENCE wam.customer_order_order_id_seq TO wam_definer;

-- The statistics are maintained by statement triggers on wam.customer_order
-- from the new rows alone (never from all orders), so every way of writing
-- orders -- wam.record_order, a bulk INSERT ... SELECT, COPY -- keeps them
-- exact; updates and deletes of orders (corrections, refunds: rare) recompute
-- the customers concerned.
CREATE TABLE wam.customer_stats (
	customer_id bigint PRIMARY KEY REFERENCES wam.customer ON DELETE CASCADE,
	orders bigint NOT NULL,
	order_days integer NOT NULL,
	first_order_at timestamptz NOT NULL,
	last_order_at timestamptz NOT NULL,
	first_day date NOT NULL,
	last_day date NOT NULL,
	first_day_amount numeric NOT NULL,
	total_amount numeric NOT NULL,
	coupon_orders bigint NOT NULL,
	units bigint NOT NULL,
	recent_orders timestamptz[] NOT NULL DEFAULT '{}'
) WITH (fillfactor = 90);
COMMENT ON TABLE wam.customer_stats IS 'per-customer purchase statistics, maintained from each new order';
COMMENT ON COLUMN wam.customer_stats.order_days IS 'distinct purchase days (calendar days in the day_time_zone setting)';
COMMENT ON COLUMN wam.customer_stats.first_day_amount IS 'spend on the first purchase day (excluded from the Gamma-Gamma monetary value)';
COMMENT ON COLUMN wam.customer_stats.recent_orders IS 'times of the orders in the 30 days before the last update; count those after now() - 30 days for orders in the last 30 days';

REVOKE ALL ON wam.customer_stats FROM PUBLIC;
GRANT SELECT ON wam.customer_stats TO wam_reader;
GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON wam.customer_stats TO wam_definer;

-- purchase statistics maintenance

-- Statistics writers of one customer serialize on wam_internal.lock_key(2, customer
-- id), a transaction-level lock in the extension's own lock space.

-- The statistics as computed from all orders: the reference the incremental
-- maintenance is checked against, and what corrections and rebuilds write.
CREATE FUNCTION wam_internal.order_stats_from_orders(customers bigint[], zone text)
	RETURNS SETOF wam.customer_stats
	LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, wam, pg_temp
AS $$
	SELECT o.customer_id, count(*), count(DISTINCT o.day)::integer, min(o.ordered_at), max(o.ordered_at),
		   min(o.day), max(o.day), sum(o.amount) FILTER (WHERE o.day = o.first_day), sum(o.amount),
		   count(*) FILTER (WHERE o.coupon_used), sum(o.units),
		   coalesce(array_agg(o.ordered_at ORDER BY o.ordered_at)
						FILTER (WHERE o.ordered_at > now() - interval '30 days'), '{}')
	FROM (SELECT x.customer_id, x.ordered_at, x.amount, x.coupon_used, x.units,
				 (x.ordered_at AT TIME ZONE zone)::date AS day,
				 min((x.ordered_at AT TIME ZONE zone)::date) OVER (PARTITION BY x.customer_id) AS first_day
		  FROM wam.customer_order x
		  WHERE customers IS NULL OR x.customer_id = ANY (customers)) o
	GROUP BY o.customer_id
$$;
COMMENT ON FUNCTION wam_internal.order_stats_from_orders(bigint[], text) IS 'internal: purchase statistics recomputed from all orders of the given customers (NULL: all)';

REVOKE EXECUTE ON FUNCTION wam_internal.order_stats_from_orders(bigint[], text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam_internal.order_stats_from_orders(bigint[], text) TO wam_reader;

CREATE FUNCTION wam_internal.lock_order_stats(customers bigint[]) RETURNS void
	LANGUAGE plpgsql SET search_path = pg_catalog, wam, pg_temp
AS $$
BEGIN
	-- a lock per customer for a few customers, the whole table for many
	-- (a bulk load would exhaust the lock table)
	IF customers IS NULL OR cardinality(customers) > 64 THEN
		LOCK TABLE wam.customer_stats IN SHARE ROW EXCLUSIVE MODE;
	ELSE
		PERFORM wam_internal.lock_key(2, c)
		FROM (SELECT DISTINCT c FROM unnest(customers) c ORDER BY 1) x;
	END IF;
END
$$;
COMMENT ON FUNCTION wam_internal.lock_order_stats(bigint[]) IS 'internal: serializes statistics writers of the given customers (NULL: all)';

REVOKE EXECUTE ON FUNCTION wam_internal.lock_order_stats(bigint[]) FROM PUBLIC;

CREATE FUNCTION wam.recompute_order_stats(customers bigint[] DEFAULT NULL) RETURNS bigint
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	zone text := (SELECT s.day_time_zone FROM wam.rfm_config s);
	n bigint;
BEGIN
	PERFORM wam_internal.lock_order_stats(customers);
	IF customers IS NULL THEN
		DELETE FROM wam.customer_stats;
	ELSE
		DELETE FROM wam.customer_stats s WHERE s.customer_id = ANY (customers);
	END IF;
	INSERT INTO wam.customer_stats SELECT * FROM wam_internal.order_stats_from_orders(customers, zone);
	GET DIAGNOSTICS n = ROW_COUNT;
	UPDATE wam.customer c SET first_order_at = s.first_order_at, last_order_at = s.last_order_at
	FROM (SELECT k.id, st.first_order_at, st.last_order_at
		  FROM wam.customer k LEFT JOIN wam.customer_stats st ON st.customer_id = k.id
		  -- all: the customers with orders (others keep what they were given);
		  -- a list: also clears the first/last order of those left without orders
		  WHERE (customers IS NULL AND st.customer_id IS NOT NULL) OR k.id = ANY (customers)) s
	WHERE c.id = s.id
	  AND (c.first_order_at IS DISTINCT FROM s.first_order_at OR c.last_order_at IS DISTINCT FROM s.last_order_at);
	RETURN n;
END
$$;
COMMENT ON FUNCTION wam.recompute_order_stats(bigint[]) IS 'rebuilds purchase statistics from the orders (NULL: everyone)';

REVOKE EXECUTE ON FUNCTION wam.recompute_order_stats(bigint[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.recompute_order_stats(bigint[]) TO wam_admin;

CREATE FUNCTION wam.verify_order_stats()
	RETURNS TABLE (customers bigint, mismatched bigint, example bigint, ok boolean)
	LANGUAGE sql STABLE PARALLEL SAFE SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
	WITH truth AS (
		SELECT * FROM wam_internal.order_stats_from_orders(NULL, (SELECT day_time_zone FROM wam.rfm_config))
	), cmp AS (
		SELECT coalesce(s.customer_id, t.customer_id) AS customer_id,
			   s.customer_id IS NULL OR t.customer_id IS NULL
			   OR (s.orders, s.order_days, s.first_order_at, s.last_order_at, s.first_day, s.last_day,
				   s.first_day_amount, s.total_amount, s.coupon_orders, s.units,
				   wam_internal.count_since(s.recent_orders, now() - interval '30 days'))
				  IS DISTINCT FROM
				  (t.orders, t.order_days, t.first_order_at, t.last_order_at, t.first_day, t.last_day,
				   t.first_day_amount, t.total_amount, t.coupon_orders, t.units,
				   wam_internal.count_since(t.recent_orders, now() - interval '30 days'))
			   OR c.first_order_at IS DISTINCT FROM s.first_order_at
			   OR c.last_order_at IS DISTINCT FROM s.last_order_at AS bad
		FROM wam.customer_stats s
		FULL JOIN truth t ON t.customer_id = s.customer_id
		LEFT JOIN wam.customer c ON c.id = coalesce(s.customer_id, t.customer_id)
	)
	SELECT count(*), count(*) FILTER (WHERE bad), min(customer_id) FILTER (WHERE bad),
		   count(*) FILTER (WHERE bad) = 0
	FROM cmp
$$;
COMMENT ON FUNCTION wam.verify_order_stats() IS 'checks the purchase statistics against all orders';

REVOKE EXECUTE ON FUNCTION wam.verify_order_stats() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.verify_order_stats() TO wam_reader;

-- Statement trigger: merges the new orders into the statistics.  Only the
-- new rows are read, plus, for a purchase day strictly between a customer's
-- first and last, that day's earlier orders (index customer_order_time).
-- A single order (wam.record_order) takes a short path that updates the
-- customer's row in place; several are merged by one set-based statement.
-- The table's fillfactor leaves room for HOT updates of statistics rows.
CREATE FUNCTION wam_internal.order_stats_insert_trigger() RETURNS trigger
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
DECLARE
	zone text;
	n_rows bigint;
	customers bigint[];
	c bigint;
	t timestamptz;
	amt numeric;
	coupon boolean;
	n_units integer;
	d date;
	st wam.customer_stats;
	new_day boolean;
	recent_since timestamptz := now() - interval '30 days';
BEGIN
	-- restored rows already carry their effects (src/backup.c)
	IF wam_internal.restoring() THEN
		RETURN NULL;
	END IF;
	SELECT s.day_time_zone, x.n, o.customer_id, o.ordered_at, o.amount, o.coupon_used, o.units
	INTO zone, n_rows, c, t, amt, coupon, n_units
	FROM wam.rfm_config s
	CROSS JOIN (SELECT count(*) AS n FROM new_orders) x
	LEFT JOIN LATERAL (SELECT * FROM new_orders LIMIT 1) o ON true;

	IF n_rows = 1 THEN
		-- one order (wam.record_order): update the customer's row in place.
		-- The table lock comes first, so that the row is read after any bulk
		-- writer (SHARE ROW EXCLUSIVE, below) has committed; the customer's
		-- lock serializes writers of this customer.
		LOCK TABLE wam.customer_stats IN ROW EXCLUSIVE MODE;
		PERFORM wam_internal.lock_key(2, c);
		d := (t AT TIME ZONE zone)::date;
		SELECT * INTO st FROM wam.customer_stats s WHERE s.customer_id = c;
		IF NOT FOUND THEN
			INSERT INTO wam.customer_stats (customer_id, orders, order_days, first_order_at, last_order_at,
				first_day, last_day, first_day_amount, total_amount, coupon_orders, units, recent_orders)
			VALUES (c, 1, 1, t, t, d, d, amt, amt, coupon::integer, n_units,
					CASE WHEN t > recent_since THEN ARRAY[t] ELSE '{}' END);
			UPDATE wam.customer k SET first_order_at = t, last_order_at = t
			WHERE k.id = c AND (k.first_order_at IS DISTINCT FROM t OR k.last_order_at IS DISTINCT FROM t);
			RETURN NULL;
		END IF;
		IF d < st.first_day OR d > st.last_day THEN
			new_day := true;
		ELSIF d = st.first_day OR d = st.last_day THEN
			new_day := false;
		ELSE
			-- between the first and the last day: new unless it had orders before
			new_day := (SELECT count(*) FROM wam.customer_order x
						WHERE x.customer_id = c AND x.ordered_at >= (d::timestamp AT TIME ZONE zone)
						  AND x.ordered_at < ((d + 1)::timestamp AT TIME ZONE zone)) <= 1;
		END IF;
		st.first_day_amount := CASE WHEN d < st.first_day THEN amt
									WHEN d = st.first_day THEN st.first_day_amount + amt
									ELSE st.first_day_amount END;
		IF t > recent_since OR (cardinality(st.recent_orders) > 0 AND st.recent_orders[1] <= recent_since) THEN
			IF t > recent_since AND (cardinality(st.recent_orders) = 0
				OR (st.recent_orders[1] > recent_since AND st.recent_orders[cardinality(st.recent_orders)] <= t)) THEN
				st.recent_orders := st.recent_orders || t;
			ELSE
				st.recent_orders := ARRAY(SELECT y FROM unnest(st.recent_orders || t) y
										  WHERE y > recent_since ORDER BY y);
			END IF;
		END IF;
		WITH up AS (
			UPDATE wam.customer_stats s
			SET orders = st.orders + 1, order_days = st.order_days + new_day::integer,
				first_order_at = least(st.first_order_at, t), last_order_at = greatest(st.last_order_at, t),
				first_day = least(st.first_day, d), last_day = greatest(st.last_day, d),
				first_day_amount = st.first_day_amount, total_amount = st.total_amount + amt,
				coupon_orders = st.coupon_orders + coupon::integer, units = st.units + n_units,
				recent_orders = st.recent_orders
			WHERE s.customer_id = c
			RETURNING s.first_order_at, s.last_order_at
		)
		UPDATE wam.customer k SET first_order_at = up.first_order_at, last_order_at = up.last_order_at
		FROM up
		WHERE k.id = c
		  AND (k.first_order_at IS DISTINCT FROM up.first_order_at OR k.last_order_at IS DISTINCT FROM up.last_order_at);
		RETURN NULL;
	END IF;

	-- several orders (bulk loads, multi-row INSERTs): one set-based merge
	customers := ARRAY(SELECT DISTINCT n.customer_id FROM new_orders n ORDER BY 1 LIMIT 65);
	PERFORM wam_internal.lock_order_stats(customers);

	WITH o AS (
		SELECT n.customer_id, n.ordered_at, n.amount, n.coupon_used, n.units,
			   (n.ordered_at AT TIME ZONE zone)::date AS day
		FROM new_orders n
	), d AS (				-- the new orders per customer and day
		SELECT o.customer_id, o.day, count(*) AS orders, sum(o.amount) AS amount
		FROM o GROUP BY 1, 2
	), b AS (				-- the new orders per customer
		SELECT o.customer_id, count(*) AS orders, sum(o.amount) AS amount,
			   count(*) FILTER (WHERE o.coupon_used) AS coupon_orders, sum(o.units) AS units,
			   min(o.ordered_at) AS first_at, max(o.ordered_at) AS last_at,
			   min(o.day) AS first_day, max(o.day) AS last_day,
			   array_agg(o.ordered_at ORDER BY o.ordered_at)
				   FILTER (WHERE o.ordered_at > now() - interval '30 days') AS recent
		FROM o GROUP BY 1
	), nd AS (				-- how many of those days are new purchase days; spend on the batch's first day
		SELECT d.customer_id,
			   count(*) FILTER (WHERE CASE
				   WHEN s.customer_id IS NULL OR d.day < s.first_day OR d.day > s.last_day THEN true
				   WHEN d.day = s.first_day OR d.day = s.last_day THEN false
				   -- between the first and the last day: new unless it had orders before
				   ELSE (SELECT count(*) FROM wam.customer_order x
						 WHERE x.customer_id = d.customer_id
						   AND x.ordered_at >= (d.day::timestamp AT TIME ZONE zone)
						   AND x.ordered_at < ((d.day + 1)::timestamp AT TIME ZONE zone)) <= d.orders
				   END) AS new_days,
			   sum(d.amount) FILTER (WHERE d.day = b.first_day) AS first_day_amount
		FROM d
		JOIN b ON b.customer_id = d.customer_id
		LEFT JOIN wam.customer_stats s ON s.customer_id = d.customer_id
		GROUP BY d.customer_id
	), up AS (
		INSERT INTO wam.customer_stats AS t (customer_id, orders, order_days, first_order_at, last_order_at,
			first_day, last_day, first_day_amount, total_amount, coupon_orders, units, recent_orders)
		SELECT b.customer_id,
			   coalesce(s.orders, 0) + b.orders,
			   coalesce(s.order_days, 0) + nd.new_days,
			   least(s.first_order_at, b.first_at),
			   greatest(s.last_order_at, b.last_at),
			   least(s.first_day, b.first_day),
			   greatest(s.last_day, b.last_day),
			   CASE WHEN s.customer_id IS NULL OR b.first_day < s.first_day THEN nd.first_day_amount
					WHEN b.first_day = s.first_day THEN s.first_day_amount + nd.first_day_amount
					ELSE s.first_day_amount END,
			   coalesce(s.total_amount, 0) + b.amount,
			   coalesce(s.coupon_orders, 0) + b.coupon_orders,
			   coalesce(s.units, 0) + b.units,
			   CASE WHEN b.recent IS NULL
						 AND (s.recent_orders IS NULL OR cardinality(s.recent_orders) = 0
							  OR s.recent_orders[1] > now() - interval '30 days')
					THEN coalesce(s.recent_orders, '{}')
					ELSE ARRAY(SELECT x FROM unnest(coalesce(s.recent_orders, '{}') || coalesce(b.recent, '{}')) x
							   WHERE x > now() - interval '30 days' ORDER BY x) END
		FROM b
		JOIN nd ON nd.customer_id = b.customer_id
		LEFT JOIN wam.customer_stats s ON s.customer_id = b.customer_id
		ON CONFLICT (customer_id) DO UPDATE
		SET orders = EXCLUDED.orders, order_days = EXCLUDED.order_days,
			first_order_at = EXCLUDED.first_order_at, last_order_at = EXCLUDED.last_order_at,
			first_day = EXCLUDED.first_day, last_day = EXCLUDED.last_day,
			first_day_amount = EXCLUDED.first_day_amount, total_amount = EXCLUDED.total_amount,
			coupon_orders = EXCLUDED.coupon_orders, units = EXCLUDED.units,
			recent_orders = EXCLUDED.recent_orders
		RETURNING t.customer_id, t.first_order_at, t.last_order_at
	)
	UPDATE wam.customer c SET first_order_at = up.first_order_at, last_order_at = up.last_order_at
	FROM up
	WHERE c.id = up.customer_id
	  AND (c.first_order_at IS DISTINCT FROM up.first_order_at OR c.last_order_at IS DISTINCT FROM up.last_order_at);
	RETURN NULL;
END
$$;
COMMENT ON FUNCTION wam_internal.order_stats_insert_trigger() IS 'trigger: merges newly inserted orders into wam.customer_stats and wam.customer first/last order';

CREATE FUNCTION wam_internal.order_stats_change_trigger() RETURNS trigger
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
BEGIN
	-- corrections and refunds are rare: recompute the customers concerned
	IF TG_OP = 'DELETE' THEN
		PERFORM wam.recompute_order_stats(ARRAY(SELECT DISTINCT o.customer_id FROM old_orders o));
	ELSE
		PERFORM wam.recompute_order_stats(ARRAY(SELECT o.customer_id FROM old_orders o
												UNION SELECT n.customer_id FROM new_orders n));
	END IF;
	RETURN NULL;
END
$$;
COMMENT ON FUNCTION wam_internal.order_stats_change_trigger() IS 'trigger: recomputes the statistics of customers whose orders were updated or deleted';

CREATE FUNCTION wam_internal.order_stats_truncate_trigger() RETURNS trigger
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
BEGIN
	TRUNCATE wam.customer_stats;
	UPDATE wam.customer SET first_order_at = NULL, last_order_at = NULL
	WHERE first_order_at IS NOT NULL OR last_order_at IS NOT NULL;
	RETURN NULL;
END
$$;
COMMENT ON FUNCTION wam_internal.order_stats_truncate_trigger() IS 'trigger: empties the statistics with the orders';

CREATE TRIGGER order_stats_insert AFTER INSERT ON wam.customer_order
	REFERENCING NEW TABLE AS new_orders FOR EACH STATEMENT EXECUTE FUNCTION wam_internal.order_stats_insert_trigger();

REVOKE EXECUTE ON FUNCTION wam_internal.order_stats_insert_trigger() FROM PUBLIC;
CREATE TRIGGER order_stats_update AFTER UPDATE ON wam.customer_order
	REFERENCING OLD TABLE AS old_orders NEW TABLE AS new_orders
	FOR EACH STATEMENT EXECUTE FUNCTION wam_internal.order_stats_change_trigger();
CREATE TRIGGER order_stats_delete AFTER DELETE ON wam.customer_order
	REFERENCING OLD TABLE AS old_orders FOR EACH STATEMENT EXECUTE FUNCTION wam_internal.order_stats_change_trigger();

REVOKE EXECUTE ON FUNCTION wam_internal.order_stats_change_trigger() FROM PUBLIC;
CREATE TRIGGER order_stats_truncate AFTER TRUNCATE ON wam.customer_order
	FOR EACH STATEMENT EXECUTE FUNCTION wam_internal.order_stats_truncate_trigger();

REVOKE EXECUTE ON FUNCTION wam_internal.order_stats_truncate_trigger() FROM PUBLIC;

-- orders

CREATE FUNCTION wam.record_order(customer bigint, amount numeric, ordered_at timestamptz DEFAULT now(),
								 coupon_used boolean DEFAULT false, details jsonb DEFAULT NULL)
	RETURNS bigint
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	cfg wam.rfm_config;
	cur text;
	n_units integer;
	new_id bigint;
	old_tier text;
	new_tier text;
	bad_product bigint;
	bad_quantity jsonb;
BEGIN
	PERFORM wam_internal.refuse_null(customer IS NULL, 'customer');
	PERFORM wam_internal.refuse_null(amount IS NULL, 'order amount');
	IF amount < 0 OR amount = 'NaN' OR amount = 'Infinity' THEN
		RAISE EXCEPTION 'order amount must be a finite amount of at least 0, not %', amount
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Record refunds by correcting or deleting the order in wam.customer_order.';
	END IF;
	PERFORM wam_internal.refuse_null(ordered_at IS NULL OR coupon_used IS NULL, 'order time and coupon flag');
	IF details IS NOT NULL AND jsonb_typeof(details) <> 'object' THEN
		RAISE EXCEPTION 'order details must be a JSON object, not %', jsonb_typeof(details)
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	SELECT * INTO cfg FROM wam.rfm_config;
	IF NOT isfinite(ordered_at) AND ordered_at < now() THEN
		RAISE EXCEPTION 'order time must be finite, not %', ordered_at USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF ordered_at > now() + cfg.future_tolerance THEN
		RAISE EXCEPTION 'order time % is in the future', ordered_at
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = format('Orders may be at most %s ahead of the database clock (setting future_tolerance).',
								  cfg.future_tolerance);
	END IF;

	cur := upper(btrim(details ->> 'currency'));
	IF cur IS NOT NULL AND cur !~ '^[A-Z]{3}$' THEN
		RAISE EXCEPTION 'invalid currency "%"', details ->> 'currency'
			USING ERRCODE = 'invalid_parameter_value', HINT = 'Use an ISO 4217 code such as HKD.';
	END IF;
	IF cur IS NOT NULL AND cfg.currency IS NULL THEN
		-- the first order naming a currency fixes the program currency
		UPDATE wam.rfm_config SET currency = cur WHERE currency IS NULL;
		SELECT s.currency INTO cfg.currency FROM wam.rfm_config s;
	END IF;
	IF cur IS DISTINCT FROM cfg.currency AND cur IS NOT NULL THEN
		RAISE EXCEPTION 'order currency % differs from the program currency %', cur, cfg.currency
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = 'Scores and lifetime values add amounts up, so all orders of a program are in one currency.',
				  HINT = 'Convert the amount to the program currency before recording the order.';
	END IF;

	-- units: details->units, else the sum of details->products[].quantity
	-- (1 for a product without one), else 1; whole numbers below 10^9 only
	IF details IS NULL OR NOT (details ? 'units' OR details ? 'products') THEN
		n_units := 1;
	ELSIF details ? 'units' THEN
		n_units := CASE WHEN jsonb_typeof(details -> 'units') = 'number' AND (details ->> 'units') ~ '^[0-9]{1,9}$'
						THEN (details ->> 'units')::integer END;
	ELSIF jsonb_typeof(details -> 'products') = 'array' AND jsonb_array_length(details -> 'products') > 0 THEN
		-- every quantity is checked before any is cast, so a bad one is named
		-- instead of failing the cast inside the sum
		SELECT p.n - 1, p.q INTO bad_product, bad_quantity
		FROM jsonb_array_elements(details -> 'products') WITH ORDINALITY p(q, n)
		WHERE p.q -> 'quantity' IS NOT NULL
		  AND NOT (jsonb_typeof(p.q -> 'quantity') = 'number' AND p.q ->> 'quantity' ~ '^[0-9]{1,9}$')
		ORDER BY p.n LIMIT 1;
		IF FOUND THEN
			RAISE EXCEPTION 'invalid quantity % in order details products[%]', bad_quantity -> 'quantity', bad_product
				USING ERRCODE = 'invalid_parameter_value',
					  HINT = 'A quantity is a JSON number, a whole number from 0 to 999999999, e.g. {"products": [{"sku": "A1", "quantity": 2}]}.';
		END IF;
		SELECT least(sum(coalesce((p -> 'quantity' #>> '{}')::bigint, 1)), 2147483647)::integer
		INTO n_units
		FROM jsonb_array_elements(details -> 'products') p;
	END IF;
	IF n_units IS NULL OR n_units < 1 THEN
		RAISE EXCEPTION 'order units must be a positive whole number'
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = format('details->units is %s, details->products is %s.',
								  coalesce(details -> 'units', 'null'), coalesce(details -> 'products', 'null'));
	END IF;

	IF NOT EXISTS (SELECT FROM wam.customer c WHERE c.id = customer) THEN
		RAISE EXCEPTION 'customer % does not exist', customer USING ERRCODE = 'foreign_key_violation';
	END IF;
	IF cfg.mirror_tags THEN
		SELECT v.tier INTO old_tier FROM wam.customer_rfm v WHERE v.customer_id = customer;
	END IF;

	INSERT INTO wam.customer_order (customer_id, ordered_at, amount, currency, coupon_used, units, details)
	VALUES (customer, ordered_at, amount, coalesce(cur, cfg.currency), coupon_used, n_units, details)
	RETURNING order_id INTO new_id;
	-- the order event lets event rules react at once (R-T8)
	INSERT INTO wam.event (customer_id, kind, occurred_at, details)
	VALUES (customer, 'order', ordered_at,
			coalesce(details, '{}') || jsonb_build_object('order_id', new_id, 'amount', amount,
														  'currency', coalesce(cur, cfg.currency),
														  'coupon_used', coupon_used, 'units', n_units));

	IF cfg.mirror_tags THEN
		SELECT v.tier INTO new_tier FROM wam.customer_rfm v WHERE v.customer_id = customer;
		IF new_tier IS DISTINCT FROM old_tier THEN
			PERFORM wam_internal.rfm_mirror_customer(customer, old_tier, new_tier);
		END IF;
	END IF;
	RETURN new_id;
END
$$;
COMMENT ON FUNCTION wam.record_order(bigint, numeric, timestamptz, boolean, jsonb) IS 'records an order and updates the purchase statistics; returns its id';

REVOKE EXECUTE ON FUNCTION wam.record_order(bigint, numeric, timestamptz, boolean, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.record_order(bigint, numeric, timestamptz, boolean, jsonb) TO wam_operator;

CREATE TABLE wam.customer_user_id (
	user_id text PRIMARY KEY,
	customer_id bigint NOT NULL REFERENCES wam.customer ON DELETE CASCADE
);
COMMENT ON TABLE wam.customer_user_id IS 'business-scoped user ids seen with a customer''s phone';

REVOKE ALL ON wam.customer_user_id FROM PUBLIC;
GRANT SELECT ON wam.customer_user_id TO wam_reader;
GRANT SELECT, INSERT, UPDATE ON wam.customer_user_id TO wam_definer;

-- consent

CREATE FUNCTION wam.record_consent(customer bigint, source text) RETURNS timestamptz
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	result timestamptz;
BEGIN
	PERFORM wam_internal.refuse_null(customer IS NULL, 'customer');
	IF source IS NULL OR btrim(source) = '' THEN
		RAISE EXCEPTION 'the source of the consent must be recorded'
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Say where the customer agreed, e.g. ''website form'' or ''in-store sign-up''.';
	END IF;
	UPDATE wam.customer c SET consent_at = pg_catalog.now(), consent_source = source,
							  opted_out_at = NULL, opt_out_reason = NULL
	WHERE c.id = customer
	RETURNING c.consent_at INTO result;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'customer % does not exist', customer USING ERRCODE = 'foreign_key_violation';
	END IF;
	INSERT INTO wam.event (customer_id, kind, details)
	VALUES (customer, 'consent', jsonb_build_object('source', source));
	RETURN result;
END
$$;
COMMENT ON FUNCTION wam.record_consent(bigint, text) IS 'records a customer''s marketing consent and where it was given';

REVOKE EXECUTE ON FUNCTION wam.record_consent(bigint, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.record_consent(bigint, text) TO wam_operator;

CREATE FUNCTION wam.record_opt_out(customer bigint, reason text) RETURNS bigint
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	n bigint;
BEGIN
	PERFORM wam_internal.refuse_null(customer IS NULL, 'customer');
	IF reason IS NULL OR btrim(reason) = '' THEN
		RAISE EXCEPTION 'a reason for the opt-out must be recorded' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	UPDATE wam.customer c SET opted_out_at = coalesce(c.opted_out_at, pg_catalog.now()), opt_out_reason = reason
	WHERE c.id = customer;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'customer % does not exist', customer USING ERRCODE = 'foreign_key_violation';
	END IF;
	INSERT INTO wam.event (customer_id, kind, details)
	VALUES (customer, 'opt_out', jsonb_build_object('reason', reason));
	-- nothing more goes out to this customer
	UPDATE wam.outbox o SET status = 'cancelled', cancelled_at = pg_catalog.now(),
							error_detail = 'customer opted out'
	WHERE o.customer_id = customer AND o.status IN ('queued', 'retrying');
	GET DIAGNOSTICS n = ROW_COUNT;
	RETURN n;
END
$$;
COMMENT ON FUNCTION wam.record_opt_out(bigint, text) IS 'records an opt-out and cancels waiting messages; returns how many';

REVOKE EXECUTE ON FUNCTION wam.record_opt_out(bigint, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.record_opt_out(bigint, text) TO wam_operator;
-- src/sql/tags.sql: tags, dimensions, memberships and their bitmap blocks,
-- the tag log, tag health and automation rules
-- Customer rows are updated all day (order times, the 24-hour window, consent) in
-- columns without an index: free space on each page lets those be HOT updates that
-- touch neither the primary key nor the phone index.
ALTER SEQUENCE wam.customer_id_seq OWNED BY wam.customer.id;

-- tags

CREATE TABLE wam.tag_dimension (
	name text PRIMARY KEY,
	colour text NOT NULL CONSTRAINT tag_dimension_colour CHECK (colour ~ '^#[0-9a-f]{6}$'),
	builtin boolean NOT NULL DEFAULT false,
	description text
);
COMMENT ON TABLE wam.tag_dimension IS 'tag dimensions with their colour';
INSERT INTO wam.tag_dimension (name, colour, builtin, description) VALUES
	('spending power', '#d4a017', true, 'value tiers, RFM segments'),
	('interest', '#8e44ad', true, 'product and category interests'),
	('purchase stage', '#27ae60', true, 'lifecycle: browsing, cart, purchased, repeat'),
	('source channel', '#2e86de', true, 'where the contact came from'),
	('engagement', '#e67e22', true, 'activity and responsiveness');

GRANT SELECT ON wam.tag_dimension TO wam_reader;
GRANT SELECT, INSERT ON wam.tag_dimension TO wam_definer;

CREATE TABLE wam.tag (
	tag_id integer GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
	name text NOT NULL,
	normalized_name text NOT NULL UNIQUE,
	dimension text NOT NULL REFERENCES wam.tag_dimension ON UPDATE CASCADE,
	colour text CONSTRAINT tag_colour CHECK (colour ~ '^#[0-9a-f]{6}$'),
	description text,
	default_ttl interval CONSTRAINT tag_default_ttl CHECK (default_ttl > interval '0'),
	status text NOT NULL DEFAULT 'active' CONSTRAINT tag_status CHECK (status IN ('active', 'retired')),
	created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	created_by name NOT NULL DEFAULT CURRENT_USER,
	retired_at timestamptz,
	-- deferred: a data-only restore may load a merged tag before the tag it points to
	merged_into integer REFERENCES wam.tag DEFERRABLE INITIALLY DEFERRED,
	last_attached_at timestamptz,
	last_queried_at timestamptz,
	last_sent_at timestamptz
);
COMMENT ON TABLE wam.tag IS 'the tag dictionary; names unique after normalisation';

GRANT SELECT ON wam.tag TO wam_reader;
GRANT SELECT, INSERT, UPDATE ON wam.tag TO wam_definer;
GRANT USAGE ON SEQUENCE wam.tag_tag_id_seq TO wam_definer;

CREATE TABLE wam.tag_log (
	log_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	logged_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	actor name NOT NULL DEFAULT SESSION_USER,
	action text NOT NULL CONSTRAINT tag_log_action CHECK (action IN
		('create', 'rename', 'retire', 'reactivate', 'merge', 'create dimension')),
	tag_id integer,
	tag_name text NOT NULL,
	detail jsonb,
	reason text
);
COMMENT ON TABLE wam.tag_log IS 'log of tag dictionary changes: who, when, what, why';

GRANT SELECT ON wam.tag_log TO wam_reader;
GRANT SELECT, INSERT ON wam.tag_log TO wam_definer;
GRANT USAGE ON SEQUENCE wam.tag_log_log_id_seq TO wam_definer;

-- memberships

-- No foreign keys: only the functions below write this table (no role has
-- INSERT), they check customers and tags in bulk against the bitmaps, and a
-- trigger on wam.customer removes the memberships of deleted customers.  Row
-- by row foreign-key checks would triple the cost of tagging a million
-- customers.
CREATE TABLE wam.customer_tag (
	customer_id bigint NOT NULL,
	tag_id integer NOT NULL,
	attached_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	expires_at timestamptz,
	source text NOT NULL DEFAULT 'api'
		CONSTRAINT customer_tag_source CHECK (source IN ('import', 'rule', 'manual', 'api')),
	-- Tag first: a tag's rows are one contiguous, customer-ordered stretch
	-- of the key, so tagging or untagging a million customers walks that
	-- stretch in order instead of touching a leaf page per customer all over
	-- the index.  A customer's tags are found through the bitmaps or with
	-- one probe per tag (wam.customer_tags).
	PRIMARY KEY (tag_id, customer_id)
);
CREATE INDEX customer_tag_expiry ON wam.customer_tag (expires_at) WHERE expires_at IS NOT NULL;
COMMENT ON TABLE wam.customer_tag IS 'which customer holds which tag, since when, until when';

GRANT SELECT ON wam.customer_tag TO wam_reader;
GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON wam.customer_tag TO wam_definer;

-- Each tag's members, as bitmaps of 65,536 consecutive ids (one Roaring
-- container each).  Maintained by statement triggers on wam.customer_tag in
-- the same transaction, so a change writes at most one 8 KB chunk per tag and
-- id range instead of the tag's whole bitmap, and concurrent taggers only
-- wait for each other when they touch the same tag and id range.
CREATE TABLE wam.tag_chunk (
	tag_id integer NOT NULL,
	chunk integer NOT NULL,
	members wam.segment NOT NULL,
	PRIMARY KEY (tag_id, chunk)
);
COMMENT ON TABLE wam.tag_chunk IS 'tag members as bitmaps of 65,536 ids (tag 0: all customers)';

GRANT SELECT ON wam.tag_chunk TO wam_reader;
GRANT SELECT, INSERT, UPDATE, DELETE ON wam.tag_chunk TO wam_definer;

-- automation rules

CREATE TABLE wam.tag_rule (
	rule_id integer GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
	name text NOT NULL UNIQUE,
	enabled boolean NOT NULL DEFAULT true,
	on_event text,
	condition text,
	add_tags text[] NOT NULL DEFAULT '{}',
	remove_tags text[] NOT NULL DEFAULT '{}',
	description text,
	created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	last_run_at timestamptz,
	last_added bigint,
	last_removed bigint,
	CONSTRAINT tag_rule_has_effect CHECK (cardinality(add_tags) + cardinality(remove_tags) > 0),
	CONSTRAINT tag_rule_has_trigger CHECK (on_event IS NOT NULL OR condition IS NOT NULL)
);
-- Conditions are segment expressions, not SQL: rules run inside functions that
-- bypass the roles' table privileges (an order recorded through
-- wam.record_order fires the event rules), so a condition must be data that the
-- extension's own evaluator reads, never code that would run with those rights.
COMMENT ON TABLE wam.tag_rule IS 'automation rules that add and remove tags';

GRANT INSERT, UPDATE, DELETE ON wam.tag_rule TO wam_admin;
GRANT SELECT ON wam.tag_rule TO wam_reader;
GRANT SELECT, INSERT, UPDATE ON wam.tag_rule TO wam_definer;
GRANT USAGE ON SEQUENCE wam.tag_rule_rule_id_seq TO wam_definer;

-- tag name normalisation

-- ICU's root collation folds case the same way for every language; a
-- database without it (PostgreSQL built without ICU, or a non-UTF8 database)
-- falls back to its default collation, which in the C locale folds only ASCII.
DO $normalize$
DECLARE
	coll text := CASE WHEN pg_catalog.getdatabaseencoding() OPERATOR(pg_catalog.=) 'UTF8'
						   AND EXISTS (SELECT FROM pg_catalog.pg_collation
									   WHERE collname OPERATOR(pg_catalog.=) 'und-x-icu')
					  THEN ' COLLATE "und-x-icu"' ELSE '' END;
	nfkc text := CASE WHEN pg_catalog.getdatabaseencoding() OPERATOR(pg_catalog.=) 'UTF8'
					  THEN 'normalize(name, NFKC)' ELSE 'name' END;
BEGIN
	EXECUTE pg_catalog.format($f$
		CREATE FUNCTION wam.normalize_tag_name(name text) RETURNS text
			LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
			RETURN pg_catalog.regexp_replace(pg_catalog.lower(%s%s),
				'[[:space:][:punct:]+$^`|~<>=]+', '', 'g')$f$, nfkc, coll);
END
$normalize$;
COMMENT ON FUNCTION wam.normalize_tag_name(text) IS 'the form in which tag names must be unique';

-- bulk membership writers (C; internal, see src/tag_membership.c)

CREATE FUNCTION wam.segment_chunks(wam.segment) RETURNS TABLE (chunk integer, members wam.segment)
	AS 'MODULE_PATHNAME', 'wam_segment_chunks' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION wam.segment_chunks(wam.segment) IS 'the segment cut into blocks of 65,536 ids';
CREATE FUNCTION wam.segment_chunk_keys(wam.segment) RETURNS integer[]
	AS 'MODULE_PATHNAME', 'wam_segment_chunk_keys' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION wam.segment_chunk_keys(wam.segment) IS 'the blocks of 65,536 ids a segment has members in';
CREATE FUNCTION wam_internal.tag_blocks_segment(tag_id integer, only_blocks integer[] DEFAULT NULL)
	RETURNS wam.segment AS 'MODULE_PATHNAME', 'wam_tag_blocks_segment' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION wam_internal.tag_blocks_segment(integer, integer[]) IS 'internal: the union of a tag''s bitmap blocks (all, or the listed ones), assembled by copying their containers';

REVOKE EXECUTE ON FUNCTION wam_internal.tag_blocks_segment(integer, integer[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam_internal.tag_blocks_segment(integer, integer[]) TO wam_reader;
CREATE FUNCTION wam_internal.membership_insert(tag_id integer, who wam.segment, expires_at timestamptz, source text)
	RETURNS bigint AS 'MODULE_PATHNAME', 'wam_membership_insert' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION wam_internal.membership_insert(integer, wam.segment, timestamptz, text) IS 'internal: bulk insert of membership rows (bypasses triggers; used by wam.attach)';

REVOKE EXECUTE ON FUNCTION wam_internal.membership_insert(integer, wam.segment, timestamptz, text) FROM PUBLIC;
CREATE FUNCTION wam_internal.membership_delete(tag_id integer, who wam.segment) RETURNS bigint
	AS 'MODULE_PATHNAME', 'wam_membership_delete' LANGUAGE C VOLATILE STRICT;
COMMENT ON FUNCTION wam_internal.membership_delete(integer, wam.segment) IS 'internal: bulk delete of membership rows through the primary key (bypasses triggers; used by wam.detach)';

REVOKE EXECUTE ON FUNCTION wam_internal.membership_delete(integer, wam.segment) FROM PUBLIC;

-- wam_internal.lock_chunks takes transaction-scoped locks on the (tag, chunk) blocks a
-- segment touches, in ascending order, so that attach and detach of
-- overlapping customers serialize per block (and never deadlock) while
-- writers of other blocks of the same tag proceed in parallel.  They are the
-- locks wam.attach and wam.detach take (lock space 1, key tag << 32 | chunk).
CREATE FUNCTION wam_internal.lock_chunks(tag_id integer, who wam.segment) RETURNS bigint
	LANGUAGE sql VOLATILE STRICT SET search_path = pg_catalog, wam, pg_temp
AS $$
	SELECT count(wam_internal.lock_key(1, ((tag_id::bigint & x'ffffffff'::bigint) << 32) | c.chunk))
	FROM (SELECT k AS chunk FROM unnest(wam.segment_chunk_keys(who)) k ORDER BY k OFFSET 0) c;
$$;
COMMENT ON FUNCTION wam_internal.lock_chunks(integer, wam.segment) IS 'internal: locks on the membership blocks of a tag that a segment touches';

REVOKE EXECUTE ON FUNCTION wam_internal.lock_chunks(integer, wam.segment) FROM PUBLIC;

-- wam_internal.chunk_members reads only the blocks of a tag that a segment touches:
-- tagging one customer reads one 8 KB block, not the tag's whole bitmap.
CREATE FUNCTION wam_internal.chunk_members(tag_id integer, who wam.segment) RETURNS wam.segment
	LANGUAGE sql STABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, wam, pg_temp
RETURN wam_internal.tag_blocks_segment(tag_id, wam.segment_chunk_keys(who));
COMMENT ON FUNCTION wam_internal.chunk_members(integer, wam.segment) IS 'internal: members of a tag within the id blocks a segment touches';

REVOKE EXECUTE ON FUNCTION wam_internal.chunk_members(integer, wam.segment) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam_internal.chunk_members(integer, wam.segment) TO wam_reader;

-- wam_internal.chunks_add / wam_internal.chunks_remove apply a change to one tag's bitmap
-- blocks, in ascending block order so that concurrent writers take the row
-- locks in the same order and cannot deadlock on them.
CREATE FUNCTION wam_internal.chunks_add(tag_id integer, added wam.segment) RETURNS void
	LANGUAGE sql VOLATILE STRICT SET search_path = pg_catalog, wam, pg_temp
AS $$
	INSERT INTO wam.tag_chunk AS c (tag_id, chunk, members)
	SELECT tag_id, f.chunk, f.members FROM wam.segment_chunks(added) f ORDER BY f.chunk
	ON CONFLICT ON CONSTRAINT tag_chunk_pkey
	DO UPDATE SET members = c.members OPERATOR(wam.|) EXCLUDED.members;
$$;
COMMENT ON FUNCTION wam_internal.chunks_add(integer, wam.segment) IS 'internal: adds customers to the bitmap blocks of a tag';

REVOKE EXECUTE ON FUNCTION wam_internal.chunks_add(integer, wam.segment) FROM PUBLIC;

CREATE FUNCTION wam_internal.chunks_remove(tag_id integer, gone wam.segment) RETURNS void
	LANGUAGE plpgsql VOLATILE STRICT SET search_path = pg_catalog, wam, pg_temp
AS $$
DECLARE
	r record;
	now_empty boolean;
BEGIN
	FOR r IN SELECT g.chunk, g.members FROM wam.segment_chunks(gone) g ORDER BY g.chunk LOOP
		UPDATE wam.tag_chunk c SET members = c.members OPERATOR(wam.-) r.members
		WHERE c.tag_id = chunks_remove.tag_id AND c.chunk = r.chunk
		RETURNING wam.segment_is_empty(c.members) INTO now_empty;
		-- no empty blocks are kept
		IF now_empty THEN
			DELETE FROM wam.tag_chunk c WHERE c.tag_id = chunks_remove.tag_id AND c.chunk = r.chunk;
		END IF;
	END LOOP;
END
$$;
COMMENT ON FUNCTION wam_internal.chunks_remove(integer, wam.segment) IS 'internal: removes customers from the bitmap blocks of a tag';

REVOKE EXECUTE ON FUNCTION wam_internal.chunks_remove(integer, wam.segment) FROM PUBLIC;

-- membership bitmap maintenance (statement triggers with transition tables:
-- one pass per statement, not per row)

CREATE FUNCTION wam_internal.tag_chunk_add_trigger() RETURNS trigger
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
DECLARE
	r record;
BEGIN
	-- restored rows already carry their effects (src/backup.c)
	IF wam_internal.restoring() THEN
		RETURN NULL;
	END IF;
	FOR r IN SELECT n.tag_id, wam.segment_agg(n.customer_id) AS s
			 FROM new_rows n GROUP BY 1 ORDER BY 1
	LOOP
		PERFORM wam_internal.chunks_add(r.tag_id, r.s);
	END LOOP;
	RETURN NULL;
END
$$;

CREATE FUNCTION wam_internal.tag_chunk_remove_trigger() RETURNS trigger
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
DECLARE
	r record;
BEGIN
	FOR r IN SELECT o.tag_id, wam.segment_agg(o.customer_id) AS s
			 FROM old_rows o GROUP BY 1 ORDER BY 1
	LOOP
		PERFORM wam_internal.chunks_remove(r.tag_id, r.s);
	END LOOP;
	RETURN NULL;
END
$$;

CREATE FUNCTION wam_internal.customer_tag_refuse_rekey_trigger() RETURNS trigger
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
BEGIN
	-- Only an UPDATE that changes customer_id or tag_id moves a membership.
	IF EXISTS (SELECT FROM old_rows o LEFT JOIN new_rows n USING (customer_id, tag_id)
			   WHERE n.customer_id IS NULL) THEN
		RAISE EXCEPTION 'customer_id and tag_id of wam.customer_tag cannot be updated'
			USING ERRCODE = 'feature_not_supported',
				  HINT = 'Use wam.detach_tag() and wam.attach_tag().';
	END IF;
	RETURN NULL;
END
$$;

CREATE FUNCTION wam_internal.tag_chunk_truncate_trigger() RETURNS trigger
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
BEGIN
	DELETE FROM wam.tag_chunk WHERE tag_id <> 0;
	RETURN NULL;
END
$$;

CREATE TRIGGER customer_tag_insert AFTER INSERT ON wam.customer_tag
	REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION wam_internal.tag_chunk_add_trigger();
CREATE TRIGGER customer_tag_delete AFTER DELETE ON wam.customer_tag
	REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION wam_internal.tag_chunk_remove_trigger();
CREATE TRIGGER customer_tag_update AFTER UPDATE ON wam.customer_tag
	REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
	FOR EACH STATEMENT EXECUTE FUNCTION wam_internal.customer_tag_refuse_rekey_trigger();
CREATE TRIGGER customer_tag_truncate AFTER TRUNCATE ON wam.customer_tag
	FOR EACH STATEMENT EXECUTE FUNCTION wam_internal.tag_chunk_truncate_trigger();
-- Tag 0 of wam.tag_chunk is the set of all customers, kept by triggers on
-- wam.customer: membership checks and "all customers" are then bitmap
-- operations.
CREATE FUNCTION wam_internal.customer_chunk_add_trigger() RETURNS trigger
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
BEGIN
	-- restored rows already carry their effects (src/backup.c)
	IF wam_internal.restoring() THEN
		RETURN NULL;
	END IF;
	PERFORM wam_internal.chunks_add(0, s) FROM (SELECT wam.segment_agg(n.id) AS s FROM new_rows n) x
	WHERE s IS NOT NULL;
	RETURN NULL;
END
$$;

CREATE FUNCTION wam_internal.customer_chunk_remove_trigger() RETURNS trigger
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
BEGIN
	-- one primary-key probe per (tag, deleted customer)
	DELETE FROM wam.customer_tag ct USING wam.tag t, old_rows o
	WHERE ct.tag_id = t.tag_id AND ct.customer_id = o.id;
	PERFORM wam_internal.chunks_remove(0, s) FROM (SELECT wam.segment_agg(o.id) AS s FROM old_rows o) x
	WHERE s IS NOT NULL;
	RETURN NULL;
END
$$;

-- A row trigger on UPDATE OF id with a WHEN clause: it costs nothing on the
-- frequent updates of other columns (order times, consent, last inbound
-- message), unlike a statement trigger with transition tables, which would
-- collect every updated row of every such statement.
CREATE FUNCTION wam_internal.customer_refuse_rekey_trigger() RETURNS trigger
	LANGUAGE plpgsql SET search_path = pg_catalog, wam, pg_temp
AS $$
BEGIN
	RAISE EXCEPTION 'the id of a customer cannot be changed'
		USING ERRCODE = 'feature_not_supported',
			  DETAIL = 'Customer ids are the members of every segment.';
END
$$;

CREATE FUNCTION wam_internal.customer_chunk_truncate_trigger() RETURNS trigger
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
BEGIN
	TRUNCATE wam.customer_tag;
	DELETE FROM wam.tag_chunk WHERE tag_id = 0;
	RETURN NULL;
END
$$;

CREATE TRIGGER customer_insert AFTER INSERT ON wam.customer
	REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION wam_internal.customer_chunk_add_trigger();
CREATE TRIGGER customer_delete AFTER DELETE ON wam.customer
	REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION wam_internal.customer_chunk_remove_trigger();
CREATE TRIGGER customer_update BEFORE UPDATE OF id ON wam.customer
	FOR EACH ROW WHEN (OLD.id IS DISTINCT FROM NEW.id) EXECUTE FUNCTION wam_internal.customer_refuse_rekey_trigger();
CREATE TRIGGER customer_truncate AFTER TRUNCATE ON wam.customer
	FOR EACH STATEMENT EXECUTE FUNCTION wam_internal.customer_chunk_truncate_trigger();
COMMENT ON FUNCTION wam_internal.customer_chunk_add_trigger() IS 'trigger: adds new customers to the all-customers bitmap';

REVOKE EXECUTE ON FUNCTION wam_internal.customer_chunk_add_trigger() FROM PUBLIC;
COMMENT ON FUNCTION wam_internal.customer_chunk_remove_trigger() IS 'trigger: removes deleted customers from the all-customers bitmap and from every tag';

REVOKE EXECUTE ON FUNCTION wam_internal.customer_chunk_remove_trigger() FROM PUBLIC;
COMMENT ON FUNCTION wam_internal.customer_refuse_rekey_trigger() IS 'trigger: refuses to change a customer id';

REVOKE EXECUTE ON FUNCTION wam_internal.customer_refuse_rekey_trigger() FROM PUBLIC;
COMMENT ON FUNCTION wam_internal.customer_chunk_truncate_trigger() IS 'trigger: empties memberships and bitmaps with the customers';

REVOKE EXECUTE ON FUNCTION wam_internal.customer_chunk_truncate_trigger() FROM PUBLIC;

COMMENT ON FUNCTION wam_internal.tag_chunk_add_trigger() IS 'trigger: adds inserted memberships to the tag bitmaps';

REVOKE EXECUTE ON FUNCTION wam_internal.tag_chunk_add_trigger() FROM PUBLIC;
COMMENT ON FUNCTION wam_internal.tag_chunk_remove_trigger() IS 'trigger: removes deleted memberships from the tag bitmaps';

REVOKE EXECUTE ON FUNCTION wam_internal.tag_chunk_remove_trigger() FROM PUBLIC;
COMMENT ON FUNCTION wam_internal.customer_tag_refuse_rekey_trigger() IS 'trigger: refuses updates that would move a membership';

REVOKE EXECUTE ON FUNCTION wam_internal.customer_tag_refuse_rekey_trigger() FROM PUBLIC;
COMMENT ON FUNCTION wam_internal.tag_chunk_truncate_trigger() IS 'trigger: empties the tag bitmaps with the memberships';

REVOKE EXECUTE ON FUNCTION wam_internal.tag_chunk_truncate_trigger() FROM PUBLIC;

-- tag dictionary (admins only, R-T5; every change is logged, R-T12)

CREATE FUNCTION wam.tag_id(tag text, for_attach boolean DEFAULT false) RETURNS integer
	LANGUAGE plpgsql STABLE PARALLEL SAFE SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	t wam.tag;
BEGIN
	PERFORM wam_internal.refuse_null(tag IS NULL, 'tag name');
	SELECT * INTO t FROM wam.tag WHERE normalized_name = wam.normalize_tag_name(tag);
	IF NOT FOUND THEN
		RAISE EXCEPTION 'tag "%" does not exist', tag
			USING ERRCODE = 'undefined_object',
				  HINT = 'An administrator creates tags with wam.create_tag().';
	END IF;
	IF for_attach AND t.status = 'retired' THEN
		IF t.merged_into IS NOT NULL THEN
			RAISE EXCEPTION 'tag "%" was merged into "%"', t.name,
				(SELECT name FROM wam.tag WHERE tag_id = t.merged_into)
				USING ERRCODE = 'object_not_in_prerequisite_state';
		END IF;
		RAISE EXCEPTION 'tag "%" is retired', t.name
			USING ERRCODE = 'object_not_in_prerequisite_state',
				  HINT = 'An administrator can reactivate it with wam.reactivate_tag().';
	END IF;
	RETURN t.tag_id;
END
$$;
COMMENT ON FUNCTION wam.tag_id(text, boolean) IS 'id of a tag by name';

REVOKE EXECUTE ON FUNCTION wam.tag_id(text, boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.tag_id(text, boolean) TO wam_reader;

CREATE FUNCTION wam.create_tag(name text, dimension text, colour text DEFAULT NULL,
							   ttl interval DEFAULT NULL, description text DEFAULT NULL)
	RETURNS integer
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	norm text := wam.normalize_tag_name(name);
	existing wam.tag;
	new_id integer;
BEGIN
	PERFORM wam_internal.refuse_null(name IS NULL OR dimension IS NULL, 'tag name and dimension');
	IF norm = '' THEN
		RAISE EXCEPTION 'tag name "%" has no letters or digits', name USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF length(name) > 100 THEN
		RAISE EXCEPTION 'tag name is too long (% characters; the limit is 100)', length(name)
			USING ERRCODE = 'string_data_right_truncation';
	END IF;
	SELECT * INTO existing FROM wam.tag t WHERE t.normalized_name = norm;
	IF FOUND THEN
		RAISE EXCEPTION 'tag "%" already exists as "%"', name, existing.name
			USING ERRCODE = 'unique_violation',
				  DETAIL = format('Tag names are compared after normalisation; both are "%s"%s.', norm,
								  CASE WHEN existing.status = 'retired' THEN ' and the existing tag is retired' ELSE '' END);
	END IF;
	IF NOT EXISTS (SELECT FROM wam.tag_dimension d WHERE d.name = dimension) THEN
		RAISE EXCEPTION 'tag dimension "%" does not exist', dimension
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = format('Known dimensions: %s. Add one with wam.create_tag_dimension().',
								(SELECT string_agg(d.name, ', ' ORDER BY d.name) FROM wam.tag_dimension d));
	END IF;
	INSERT INTO wam.tag (name, normalized_name, dimension, colour, default_ttl, description)
	VALUES (btrim(name), norm, dimension, lower(colour), ttl, description)
	RETURNING tag_id INTO new_id;
	INSERT INTO wam.tag_log (action, tag_id, tag_name, detail)
	VALUES ('create', new_id, btrim(name),
			jsonb_strip_nulls(jsonb_build_object('dimension', dimension, 'colour', lower(colour), 'ttl', ttl::text)));
	RETURN new_id;
END
$$;
COMMENT ON FUNCTION wam.create_tag(text, text, text, interval, text) IS 'creates a tag in a dimension; returns its id';

REVOKE EXECUTE ON FUNCTION wam.create_tag(text, text, text, interval, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.create_tag(text, text, text, interval, text) TO wam_admin;

CREATE FUNCTION wam.create_tag_dimension(name text, colour text, description text DEFAULT NULL)
	RETURNS void
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
BEGIN
	INSERT INTO wam.tag_dimension (name, colour, description) VALUES (name, lower(colour), description);
	INSERT INTO wam.tag_log (action, tag_name, detail)
	VALUES ('create dimension', name, jsonb_build_object('colour', lower(colour)));
END
$$;
COMMENT ON FUNCTION wam.create_tag_dimension(text, text, text) IS 'adds a tag dimension with its colour';

REVOKE EXECUTE ON FUNCTION wam.create_tag_dimension(text, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.create_tag_dimension(text, text, text) TO wam_admin;

CREATE FUNCTION wam.rename_tag(tag text, new_name text, reason text DEFAULT NULL) RETURNS void
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	id integer := wam.tag_id(tag);
	old_name text;
	norm text := wam.normalize_tag_name(new_name);
	clash text;
BEGIN
	IF norm IS NULL OR norm = '' THEN
		RAISE EXCEPTION 'new tag name must have letters or digits' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	SELECT t.name INTO clash FROM wam.tag t WHERE t.normalized_name = norm AND t.tag_id <> id;
	IF FOUND THEN
		RAISE EXCEPTION 'tag "%" already exists as "%"', new_name, clash USING ERRCODE = 'unique_violation';
	END IF;
	SELECT t.name INTO old_name FROM wam.tag t WHERE t.tag_id = id FOR UPDATE;
	UPDATE wam.tag SET name = btrim(new_name), normalized_name = norm WHERE tag_id = id;
	INSERT INTO wam.tag_log (action, tag_id, tag_name, detail, reason)
	VALUES ('rename', id, btrim(new_name), jsonb_build_object('old_name', old_name), reason);
END
$$;
COMMENT ON FUNCTION wam.rename_tag(text, text, text) IS 'renames a tag (logged)';

REVOKE EXECUTE ON FUNCTION wam.rename_tag(text, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.rename_tag(text, text, text) TO wam_admin;

CREATE FUNCTION wam.retire_tag(tag text, reason text) RETURNS void
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	id integer := wam.tag_id(tag);
BEGIN
	IF reason IS NULL OR btrim(reason) = '' THEN
		RAISE EXCEPTION 'a reason is required to retire a tag' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	UPDATE wam.tag SET status = 'retired', retired_at = now() WHERE tag_id = id AND status = 'active';
	IF NOT FOUND THEN
		RAISE EXCEPTION 'tag "%" is already retired', tag USING ERRCODE = 'object_not_in_prerequisite_state';
	END IF;
	INSERT INTO wam.tag_log (action, tag_id, tag_name, reason)
	SELECT 'retire', id, t.name, reason FROM wam.tag t WHERE t.tag_id = id;
END
$$;
COMMENT ON FUNCTION wam.retire_tag(text, text) IS 'retires a tag: kept, but no longer attachable (logged)';

REVOKE EXECUTE ON FUNCTION wam.retire_tag(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.retire_tag(text, text) TO wam_admin;

CREATE FUNCTION wam.reactivate_tag(tag text, reason text) RETURNS void
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	id integer := wam.tag_id(tag);
BEGIN
	UPDATE wam.tag SET status = 'active', retired_at = NULL
	WHERE tag_id = id AND status = 'retired' AND merged_into IS NULL;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'tag "%" is not a retired, unmerged tag', tag USING ERRCODE = 'object_not_in_prerequisite_state';
	END IF;
	INSERT INTO wam.tag_log (action, tag_id, tag_name, reason)
	SELECT 'reactivate', id, t.name, reason FROM wam.tag t WHERE t.tag_id = id;
END
$$;
COMMENT ON FUNCTION wam.reactivate_tag(text, text) IS 'makes a retired tag attachable again (logged)';

REVOKE EXECUTE ON FUNCTION wam.reactivate_tag(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.reactivate_tag(text, text) TO wam_admin;

-- memberships

-- COST: reading a tag's blocks takes about a millisecond for a dense tag;
-- the planner must not think it as cheap as an operator and call it per row.
-- The search_path is pinned because the name lookup inlines
-- wam.normalize_tag_name, whose collation must not come from the caller.
CREATE FUNCTION wam.tag_members(tag text) RETURNS wam.segment
	AS 'MODULE_PATHNAME', 'wam_tag_members' LANGUAGE C STABLE STRICT PARALLEL SAFE COST 1000
	SET search_path = pg_catalog, wam, pg_temp;
COMMENT ON FUNCTION wam.tag_members(text) IS 'the customers holding a tag, as a segment';

REVOKE EXECUTE ON FUNCTION wam.tag_members(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.tag_members(text) TO wam_reader;

CREATE FUNCTION wam.all_customers() RETURNS wam.segment
	LANGUAGE sql STABLE PARALLEL SAFE SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
RETURN wam_internal.tag_blocks_segment(0);
COMMENT ON FUNCTION wam.all_customers() IS 'every customer id, as a segment';

REVOKE EXECUTE ON FUNCTION wam.all_customers() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.all_customers() TO wam_reader;

CREATE FUNCTION wam_internal.check_customers(who wam.segment) RETURNS void
	LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, wam, pg_temp
AS $$
DECLARE
	unknown wam.segment := who OPERATOR(wam.-) wam_internal.chunk_members(0, who);
BEGIN
	IF NOT wam.segment_is_empty(unknown) THEN
		RAISE EXCEPTION '% of the customers do not exist', wam.segment_cardinality(unknown)
			USING ERRCODE = 'foreign_key_violation',
				  DETAIL = format('For example customer %s.', wam.segment_min(unknown)),
				  HINT = 'Create customers with wam.upsert_customer(phone, ...) or wam.import_csv(...).';
	END IF;
END
$$;
COMMENT ON FUNCTION wam_internal.check_customers(wam.segment) IS 'raises an error when a segment names customers that do not exist';

REVOKE EXECUTE ON FUNCTION wam_internal.check_customers(wam.segment) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam_internal.check_customers(wam.segment) TO wam_reader;

-- wam.attach and wam.detach run their steps in one C call (src/tagging.c):
-- tag lookup, checks, advisory block locks, membership rows and bitmap
-- blocks, expiry refresh, last use.
CREATE FUNCTION wam.attach_tag(tag text, who wam.segment, ttl interval DEFAULT NULL, source text DEFAULT 'api')
	RETURNS bigint
	AS 'MODULE_PATHNAME', 'wam_attach'
	LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp;
COMMENT ON FUNCTION wam.attach_tag(text, wam.segment, interval, text) IS 'gives a tag to a segment''s customers; returns how many were new';

REVOKE EXECUTE ON FUNCTION wam.attach_tag(text, wam.segment, interval, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.attach_tag(text, wam.segment, interval, text) TO wam_operator;

CREATE FUNCTION wam.detach_tag(tag text, who wam.segment) RETURNS bigint
	AS 'MODULE_PATHNAME', 'wam_detach'
	LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp;
COMMENT ON FUNCTION wam.detach_tag(text, wam.segment) IS 'takes a tag from a segment''s customers; returns how many had it';

REVOKE EXECUTE ON FUNCTION wam.detach_tag(text, wam.segment) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.detach_tag(text, wam.segment) TO wam_operator;

CREATE FUNCTION wam.retag_customers(who wam.segment, add text[] DEFAULT '{}', remove text[] DEFAULT '{}',
						  source text DEFAULT 'api')
	RETURNS TABLE (tag text, added bigint, removed bigint)
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	t text;
	is_add boolean;
	both_ways text;
BEGIN
	SELECT string_agg(a, ', ') INTO both_ways FROM unnest(add) a
	WHERE wam.normalize_tag_name(a) IN (SELECT wam.normalize_tag_name(r) FROM unnest(remove) r);
	IF both_ways IS NOT NULL THEN
		RAISE EXCEPTION 'tags cannot be both added and removed: %', both_ways USING ERRCODE = 'invalid_parameter_value';
	END IF;
	-- resolve every name first, so an unknown tag changes nothing
	PERFORM wam.tag_id(a, true) FROM unnest(add) a;
	PERFORM wam.tag_id(r) FROM unnest(remove) r;
	-- Tags in id order, so concurrent retags lock the same blocks in the same
	-- order and cannot deadlock.
	FOR t, is_add IN
		SELECT x.name, x.is_add FROM (
			SELECT a AS name, true AS is_add, wam.tag_id(a) AS id FROM unnest(add) a
			UNION ALL
			SELECT r, false, wam.tag_id(r) FROM unnest(remove) r) x
		ORDER BY x.id
	LOOP
		tag := t;
		IF is_add THEN
			added := wam.attach_tag(t, who, NULL, source); removed := 0;
		ELSE
			added := 0; removed := wam.detach_tag(t, who);
		END IF;
		RETURN NEXT;
	END LOOP;
END
$$;
COMMENT ON FUNCTION wam.retag_customers(wam.segment, text[], text[], text) IS 'adds and removes tags for a segment; counts per tag';

REVOKE EXECUTE ON FUNCTION wam.retag_customers(wam.segment, text[], text[], text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.retag_customers(wam.segment, text[], text[], text) TO wam_operator;

CREATE FUNCTION wam.customer_tags(customer bigint) RETURNS text[]
	LANGUAGE plpgsql STABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	result text[];
BEGIN
	IF NOT EXISTS (SELECT FROM wam.customer c WHERE c.id = customer) THEN
		RAISE EXCEPTION 'customer % does not exist', customer USING ERRCODE = 'no_data_found';
	END IF;
	-- one primary-key probe (tag_id, customer_id) per tag
	SELECT coalesce(array_agg(t.name ORDER BY t.name), '{}') INTO result
	FROM wam.tag t
	WHERE EXISTS (SELECT FROM wam.customer_tag ct WHERE ct.tag_id = t.tag_id AND ct.customer_id = customer);
	RETURN result;
END
$$;
COMMENT ON FUNCTION wam.customer_tags(bigint) IS 'names of the tags a customer holds, sorted';

REVOKE EXECUTE ON FUNCTION wam.customer_tags(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.customer_tags(bigint) TO wam_reader;

CREATE FUNCTION wam.merge_tags(from_tag text, into_tag text, reason text) RETURNS bigint
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	src integer := wam.tag_id(from_tag);
	dst integer := wam.tag_id(into_tag, true);
	moved bigint;
BEGIN
	IF src = dst THEN
		RAISE EXCEPTION 'cannot merge a tag into itself' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF reason IS NULL OR btrim(reason) = '' THEN
		RAISE EXCEPTION 'a reason is required to merge tags' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	moved := wam.attach_tag(into_tag, wam.tag_members(from_tag), NULL, 'manual');
	DELETE FROM wam.customer_tag WHERE tag_id = src;
	UPDATE wam.tag SET status = 'retired', retired_at = now(), merged_into = dst WHERE tag_id = src;
	INSERT INTO wam.tag_log (action, tag_id, tag_name, detail, reason)
	SELECT 'merge', src, t.name, jsonb_build_object('into', (SELECT d.name FROM wam.tag d WHERE d.tag_id = dst),
													 'customers_moved', moved), reason
	FROM wam.tag t WHERE t.tag_id = src;
	RETURN moved;
END
$$;
COMMENT ON FUNCTION wam.merge_tags(text, text, text) IS 'moves one tag''s members to another and retires the first';

REVOKE EXECUTE ON FUNCTION wam.merge_tags(text, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.merge_tags(text, text, text) TO wam_admin;

CREATE FUNCTION wam.expire_tags() RETURNS bigint
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	n bigint;
BEGIN
	DELETE FROM wam.customer_tag WHERE expires_at <= now();
	GET DIAGNOSTICS n = ROW_COUNT;
	RETURN n;
END
$$;
COMMENT ON FUNCTION wam.expire_tags() IS 'removes expired tag attachments; returns how many';

REVOKE EXECUTE ON FUNCTION wam.expire_tags() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.expire_tags() TO wam_operator;

CREATE FUNCTION wam.verify_tag_index()
	RETURNS TABLE (tag text, members bigint, bitmap_members bigint, missing bigint, extra bigint,
				   misplaced bigint, ok boolean)
	LANGUAGE plpgsql STABLE SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
BEGIN
	RETURN QUERY
	WITH truth AS (
		SELECT ct.tag_id, wam.segment_agg(ct.customer_id) AS s FROM wam.customer_tag ct GROUP BY 1
		UNION ALL
		SELECT 0, wam.segment_agg(c.id) FROM wam.customer c HAVING count(*) > 0
	), chunks AS (
		SELECT c.tag_id, wam.segment_union_agg(c.members) AS s,
			   count(*) FILTER (WHERE wam.segment_is_empty(c.members)
					OR wam.segment_min(c.members) >> 16 <> c.chunk OR wam.segment_max(c.members) >> 16 <> c.chunk) AS bad
		FROM wam.tag_chunk c GROUP BY 1
	)
	SELECT CASE WHEN coalesce(tr.tag_id, ch.tag_id) = 0 THEN '(all customers)'
				ELSE coalesce(t.name, '#' || coalesce(tr.tag_id, ch.tag_id)) END,
		   coalesce(wam.segment_cardinality(tr.s), 0),
		   coalesce(wam.segment_cardinality(ch.s), 0),
		   coalesce(wam.segment_andnot_cardinality(tr.s, coalesce(ch.s, '{}')), 0),
		   coalesce(wam.segment_andnot_cardinality(ch.s, coalesce(tr.s, '{}')), 0),
		   coalesce(ch.bad, 0),
		   coalesce(tr.s = ch.s, false) AND coalesce(ch.bad, 0) = 0
	FROM truth tr FULL JOIN chunks ch ON ch.tag_id = tr.tag_id
	LEFT JOIN wam.tag t ON t.tag_id = coalesce(tr.tag_id, ch.tag_id)
	ORDER BY 1;
END
$$;
COMMENT ON FUNCTION wam.verify_tag_index() IS 'checks that tag bitmaps and rows agree, per tag';

REVOKE EXECUTE ON FUNCTION wam.verify_tag_index() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.verify_tag_index() TO wam_reader;

-- tag health (R-T2, R-T9)

CREATE VIEW wam.tag_health AS
WITH base AS (
	SELECT greatest(count(*), 1) AS customers FROM wam.customer
), sizes AS (
	SELECT c.tag_id, sum(wam.segment_cardinality(c.members)) AS members FROM wam.tag_chunk c GROUP BY 1
)
SELECT t.name AS tag,
	   t.dimension,
	   coalesce(t.colour, d.colour) AS colour,
	   t.status,
	   coalesce(s.members, 0)::bigint AS members,
	   round(100.0 * coalesce(s.members, 0) / b.customers, 2) AS share_percent,
	   greatest(t.last_sent_at, t.last_attached_at, t.created_at) AS last_used,
	   t.status = 'active' AND greatest(t.last_sent_at, t.last_attached_at, t.created_at)
		   < now() - interval '30 days' AS silent,
	   coalesce(s.members, 0) > 0.4 * b.customers AS overloaded
FROM wam.tag t
JOIN wam.tag_dimension d ON d.name = t.dimension
CROSS JOIN base b
LEFT JOIN sizes s ON s.tag_id = t.tag_id;
COMMENT ON VIEW wam.tag_health IS 'per tag: members, share, last use, silent and overloaded flags';

GRANT SELECT ON wam.tag_health TO wam_definer;
GRANT SELECT ON wam.tag_health TO wam_reader;

CREATE VIEW wam.tag_health_summary AS
SELECT count(*) FILTER (WHERE t.status = 'active') AS active_tags,
	   count(*) FILTER (WHERE t.status = 'retired') AS retired_tags,
	   (SELECT count(*) FROM wam.tag_health h WHERE h.silent) AS silent_tags,
	   (SELECT count(*) FROM wam.tag_health h WHERE h.overloaded) AS overloaded_tags,
	   CASE
		   WHEN count(*) FILTER (WHERE t.status = 'active') <= 20 THEN 'starting set (up to ~20 tags)'
		   WHEN count(*) FILTER (WHERE t.status = 'active') < 30 THEN 'too coarse once the base is large (under 30)'
		   WHEN count(*) FILTER (WHERE t.status = 'active') < 50 THEN 'growing (30-49)'
		   WHEN count(*) FILTER (WHERE t.status = 'active') <= 80 THEN 'healthy (50-80)'
		   WHEN count(*) FILTER (WHERE t.status = 'active') <= 100 THEN 'crowded (81-100)'
		   ELSE 'too many to manage (over 100)'
	   END AS band
FROM wam.tag t;
COMMENT ON VIEW wam.tag_health_summary IS 'number of active tags against the healthy range';

GRANT SELECT ON wam.tag_health_summary TO wam_definer;
GRANT SELECT ON wam.tag_health_summary TO wam_reader;

-- automation rules

CREATE FUNCTION wam.rule_audience(rule wam.tag_rule, only_customers bigint[] DEFAULT NULL)
	RETURNS wam.segment
	LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	result wam.segment;
	among wam.segment;
BEGIN
	IF only_customers IS NOT NULL THEN
		SELECT coalesce(wam.segment_agg(c), '{}') INTO among FROM unnest(only_customers) c;
	END IF;
	IF rule.condition IS NULL THEN
		RETURN coalesce(among, '{}');
	END IF;
	BEGIN
		result := wam.audience(rule.condition);
	EXCEPTION WHEN syntax_error OR undefined_object OR invalid_parameter_value THEN
		RAISE EXCEPTION 'condition of rule "%" is not a valid segment expression: %', rule.name, SQLERRM
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Fix it with UPDATE wam.tag_rule SET condition = ... or disable the rule.';
	END;
	IF among IS NOT NULL THEN
		result := result OPERATOR(wam.&) among;
	END IF;
	RETURN result;
END
$$;
COMMENT ON FUNCTION wam.rule_audience(wam.tag_rule, bigint[]) IS 'the customers a rule applies to';

REVOKE EXECUTE ON FUNCTION wam.rule_audience(wam.tag_rule, bigint[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.rule_audience(wam.tag_rule, bigint[]) TO wam_operator;

CREATE FUNCTION wam.create_tag_rule(name text, add_tags text[] DEFAULT '{}', remove_tags text[] DEFAULT '{}',
									condition text DEFAULT NULL, on_event text DEFAULT NULL,
									description text DEFAULT NULL)
	RETURNS integer
	LANGUAGE plpgsql SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	new_id integer;
	problem text;
BEGIN
	-- every tag must exist, so a rule never creates tags silently
	PERFORM wam.tag_id(a, true) FROM unnest(add_tags) a;
	PERFORM wam.tag_id(r) FROM unnest(remove_tags) r;
	IF condition IS NOT NULL THEN
		problem := wam.audience_problem(condition);
		IF problem IS NOT NULL THEN
			RAISE EXCEPTION 'invalid rule condition: %', problem
				USING ERRCODE = 'invalid_parameter_value',
					  HINT = 'The condition is a segment expression, e.g. ''VIP AND no interacted within 180d''.';
		END IF;
	END IF;
	INSERT INTO wam.tag_rule (name, add_tags, remove_tags, condition, on_event, description)
	VALUES (name, coalesce(add_tags, '{}'), coalesce(remove_tags, '{}'), condition, on_event, description)
	RETURNING rule_id INTO new_id;
	RETURN new_id;
END
$$;
COMMENT ON FUNCTION wam.create_tag_rule(text, text[], text[], text, text, text) IS 'defines an automation rule; returns its id';

REVOKE EXECUTE ON FUNCTION wam.create_tag_rule(text, text[], text[], text, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.create_tag_rule(text, text[], text[], text, text, text) TO wam_admin;

CREATE FUNCTION wam.run_tag_rules(only_rule text DEFAULT NULL)
	RETURNS TABLE (rule text, customers bigint, added bigint, removed bigint)
	-- definer: operators run the rules and the run records its counts in
	-- wam.tag_rule, but only admins may change rules (no UPDATE for operators)
	LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	r wam.tag_rule;
	who wam.segment;
BEGIN
	FOR r IN SELECT * FROM wam.tag_rule tr
			 WHERE tr.enabled AND tr.condition IS NOT NULL
			   AND (only_rule IS NULL OR tr.name = only_rule)
			 ORDER BY tr.rule_id
	LOOP
		who := wam.rule_audience(r);
		rule := r.name;
		customers := wam.segment_cardinality(who);
		SELECT coalesce(sum(x.added), 0), coalesce(sum(x.removed), 0) INTO added, removed
		FROM wam.retag_customers(who, r.add_tags, r.remove_tags, 'rule') x;
		UPDATE wam.tag_rule tr SET last_run_at = now(), last_added = added, last_removed = removed
		WHERE tr.rule_id = r.rule_id;
		RAISE NOTICE 'rule "%": % customers, % tags added, % removed', r.name, customers, added, removed;
		RETURN NEXT;
	END LOOP;
END
$$;
COMMENT ON FUNCTION wam.run_tag_rules(text) IS 'applies the condition rules; counts per rule';

REVOKE EXECUTE ON FUNCTION wam.run_tag_rules(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.run_tag_rules(text) TO wam_operator;

-- Event rules act inside the transaction that records the event, so "order
-- placed -> purchased, not cart abandoned" (R-T8) holds the moment the order
-- event commits.
CREATE FUNCTION wam_internal.event_rules_trigger() RETURNS trigger
	LANGUAGE plpgsql SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	r wam.tag_rule;
	ids bigint[];
BEGIN
	-- restored rows already carry their effects (src/backup.c)
	IF wam_internal.restoring() THEN
		RETURN NULL;
	END IF;
	FOR r IN SELECT tr.* FROM wam.tag_rule tr
			 WHERE tr.enabled AND tr.on_event IN (SELECT DISTINCT n.kind FROM new_events n)
			 ORDER BY tr.rule_id
	LOOP
		SELECT array_agg(DISTINCT n.customer_id) INTO ids FROM new_events n WHERE n.kind = r.on_event;
		PERFORM wam.retag_customers(wam.rule_audience(r, ids), r.add_tags, r.remove_tags, 'rule');
	END LOOP;
	RETURN NULL;
END
$$;
COMMENT ON FUNCTION wam_internal.event_rules_trigger() IS 'trigger: applies event-driven tag rules to the customers of newly inserted events';
CREATE TRIGGER event_rules AFTER INSERT ON wam.event
	REFERENCING NEW TABLE AS new_events FOR EACH STATEMENT EXECUTE FUNCTION wam_internal.event_rules_trigger();

REVOKE EXECUTE ON FUNCTION wam_internal.event_rules_trigger() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam_internal.event_rules_trigger() TO wam_operator;

CREATE FUNCTION wam.install_example_tag_rules() RETURNS SETOF text
	LANGUAGE plpgsql SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	t record;
BEGIN
	FOR t IN SELECT * FROM (VALUES
		('cart abandoned', 'purchase stage', NULL::interval),
		('purchased', 'purchase stage', NULL),
		('new customer', 'purchase stage', interval '60 days'),
		('growth-high', 'engagement', NULL),
		('growth-low', 'engagement', NULL),
		('about to churn', 'engagement', NULL),
		('high activity', 'engagement', NULL),
		('needs attention', 'engagement', NULL),
		('active customer', 'engagement', NULL),
		('high-value customer', 'spending power', NULL),
		('VIP', 'spending power', NULL),
		('historical stock - awaiting reactivation', 'engagement', NULL)) v(name, dimension, ttl)
	LOOP
		IF NOT EXISTS (SELECT FROM wam.tag WHERE normalized_name = wam.normalize_tag_name(t.name)) THEN
			PERFORM wam.create_tag(t.name, t.dimension, NULL, t.ttl);
			RETURN NEXT 'tag ' || t.name;
		END IF;
	END LOOP;

	-- R-T8: a successful order removes "cart abandoned" and adds "purchased" at once
	PERFORM wam.create_tag_rule('R-T8 order placed', '{purchased}', '{cart abandoned}',
		NULL, 'order', 'on an order event: remove cart abandoned, add purchased')
		WHERE NOT EXISTS (SELECT FROM wam.tag_rule tr WHERE tr.name = 'R-T8 order placed');
	-- R-T8: no marketing message opened for 60 days (customers of less than 60
	-- days are not counted as silent)
	PERFORM wam.create_tag_rule('R-T8 no read for 60 days', '{about to churn}', '{active customer}',
		'no read within 60d AND no created within 60d')
		WHERE NOT EXISTS (SELECT FROM wam.tag_rule tr WHERE tr.name = 'R-T8 no read for 60 days');
	-- R-T6: no message read for 14 days: high activity -> needs attention
	PERFORM wam.create_tag_rule('R-T6 no read for 14 days', '{needs attention}', '{high activity}',
		'"high activity" AND no read within 14d AND no created within 14d')
		WHERE NOT EXISTS (SELECT FROM wam.tag_rule tr WHERE tr.name = 'R-T6 no read for 14 days');
	-- R-T10: lifecycle after the first purchase
	PERFORM wam.create_tag_rule('R-T10 new customer (days 0-30)', '{new customer}', '{}',
		'first_order within 30d')
		WHERE NOT EXISTS (SELECT FROM wam.tag_rule tr WHERE tr.name = 'R-T10 new customer (days 0-30)');
	PERFORM wam.create_tag_rule('R-T10 growth-high (days 31-90, reads weekly)', '{growth-high}', '{growth-low}',
		'first_order within 90d EXCLUDE first_order within 30d AND event(message_read) within 7d')
		WHERE NOT EXISTS (SELECT FROM wam.tag_rule tr WHERE tr.name = 'R-T10 growth-high (days 31-90, reads weekly)');
	PERFORM wam.create_tag_rule('R-T10 growth-low (days 31-90, no read this week)', '{growth-low}', '{growth-high}',
		'first_order within 90d EXCLUDE first_order within 30d EXCLUDE event(message_read) within 7d')
		WHERE NOT EXISTS (SELECT FROM wam.tag_rule tr WHERE tr.name = 'R-T10 growth-low (days 31-90, no read this week)');
	PERFORM wam.create_tag_rule('R-T10 no second purchase after 90 days', '{about to churn}', '{new customer}',
		'first_order EXCLUDE first_order within 90d AND orders < 2')
		WHERE NOT EXISTS (SELECT FROM wam.tag_rule tr WHERE tr.name = 'R-T10 no second purchase after 90 days');
	-- R-T11: a VIP without interaction for 180 days is a sleeping VIP
	PERFORM wam.create_tag_rule('R-T11 sleeping VIP', '{historical stock - awaiting reactivation}', '{VIP}',
		'VIP AND no interacted within 180d AND no created within 180d')
		WHERE NOT EXISTS (SELECT FROM wam.tag_rule tr WHERE tr.name = 'R-T11 sleeping VIP');
	-- R-T14: three or more purchases make a high-value customer
	PERFORM wam.create_tag_rule('R-T14 three orders', '{high-value customer}', '{}',
		'orders >= 3')
		WHERE NOT EXISTS (SELECT FROM wam.tag_rule tr WHERE tr.name = 'R-T14 three orders');
	RETURN QUERY SELECT 'rule ' || name FROM wam.tag_rule ORDER BY rule_id;
END
$$;
COMMENT ON FUNCTION wam.install_example_tag_rules() IS 'creates the example tags and automation rules';

REVOKE EXECUTE ON FUNCTION wam.install_example_tag_rules() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.install_example_tag_rules() TO wam_admin;
-- src/sql/phone.sql: phone-number normalization (C)
-- IMMUTABLE: the result depends only on the arguments and on the numbering
-- data compiled into the library, which changes only with a new release.

CREATE FUNCTION wam.normalize_phone(raw text, default_country text DEFAULT NULL) RETURNS text
	AS 'MODULE_PATHNAME', 'wam_normalize_phone' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION wam.normalize_phone(text, text) IS 'phone number as E.164 digits without "+"; error if invalid';

CREATE FUNCTION wam.phone_problem(raw text, default_country text DEFAULT NULL) RETURNS text
	AS 'MODULE_PATHNAME', 'wam_phone_problem' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION wam.phone_problem(text, text) IS 'why a phone number is invalid, or NULL; never raises';

CREATE FUNCTION wam.phone_country(phone text) RETURNS text
	AS 'MODULE_PATHNAME', 'wam_phone_country_sql' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION wam.phone_country(text) IS 'ISO country code of an international number, or NULL';
-- src/sql/import.sql: contact import: the CSV/TXT reader (C) and the import of contacts


-- One row per record, the header included.  line_no is the physical line
-- the record starts on; fields are the fields with the quotes removed and
-- "" turned into "; problem is NULL, or says why the record could not be
-- read (fields is then NULL) and reading goes on with the next record.

CREATE FUNCTION wam.csv_rows(data text, delimiter text DEFAULT ',',
		max_record_bytes integer DEFAULT 1048576)
	RETURNS TABLE(line_no bigint, fields text[], problem text)
	AS 'MODULE_PATHNAME', 'wam_csv_rows_text' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
	ROWS 1000;
COMMENT ON FUNCTION wam.csv_rows(text, text, integer) IS 'records of CSV text as (line_no, fields, problem) rows';

CREATE FUNCTION wam.csv_rows(data bytea, delimiter text DEFAULT ',',
		max_record_bytes integer DEFAULT 1048576)
	RETURNS TABLE(line_no bigint, fields text[], problem text)
	AS 'MODULE_PATHNAME', 'wam_csv_rows_bytea' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
	ROWS 1000;
COMMENT ON FUNCTION wam.csv_rows(bytea, text, integer) IS 'records of raw CSV bytes, each checked for valid UTF-8';

-- imports

CREATE TABLE wam.import (
	import_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	started_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	imported_by name NOT NULL DEFAULT SESSION_USER,
	rows_read bigint NOT NULL DEFAULT 0,
	created bigint NOT NULL DEFAULT 0,
	updated bigint NOT NULL DEFAULT 0,
	duplicates bigint NOT NULL DEFAULT 0,
	failed bigint NOT NULL DEFAULT 0,
	failure_rate numeric NOT NULL DEFAULT 0,
	flagged boolean NOT NULL DEFAULT false
);
CREATE TABLE wam.import_error (
	import_id bigint NOT NULL REFERENCES wam.import ON DELETE CASCADE,
	line_no bigint NOT NULL,
	raw_phone text,
	reason text NOT NULL,
	PRIMARY KEY (import_id, line_no)
);
COMMENT ON TABLE wam.import IS 'one report per contact import';

GRANT SELECT ON wam.import TO wam_reader;
GRANT SELECT, INSERT, UPDATE ON wam.import TO wam_definer;
GRANT USAGE ON SEQUENCE wam.import_import_id_seq TO wam_definer;
COMMENT ON TABLE wam.import_error IS 'why each failed import row failed';

GRANT SELECT ON wam.import_error TO wam_reader;
GRANT SELECT, INSERT ON wam.import_error TO wam_definer;

-- contact import (R-I1 ... R-I8)

-- The columns of an import file, found by name in its header, and the checks
-- that reject the whole file.  width is the number of header fields: a row
-- with fewer is missing columns.
CREATE FUNCTION wam_internal.import_columns(header text[], default_country text,
		OUT phone integer, OUT tags integer, OUT name integer, OUT consent integer,
		OUT width integer)
	LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, wam, pg_temp
AS $$
BEGIN
	IF header IS NULL THEN
		RAISE EXCEPTION 'import has no header row' USING ERRCODE = 'invalid_parameter_value',
			HINT = 'The first line names the columns: phone, tags and optionally name and consent.';
	END IF;
	SELECT min(i) FILTER (WHERE h IN ('phone', 'phone number', 'phone_number', 'mobile', 'whatsapp', 'number')),
		   min(i) FILTER (WHERE h IN ('tags', 'tag')),
		   min(i) FILTER (WHERE h IN ('name', 'full name', 'full_name')),
		   min(i) FILTER (WHERE h IN ('consent', 'consent_source', 'consent source'))
	INTO phone, tags, name, consent
	FROM unnest(header) WITH ORDINALITY AS u(raw, i), lower(btrim(raw, E' \t\r\n\uFEFF')) AS h;
	IF phone IS NULL THEN
		RAISE EXCEPTION 'import has no phone column' USING ERRCODE = 'invalid_parameter_value',
			DETAIL = format('The header is: %s.', array_to_string(header, ', ')),
			HINT = 'Name the column "phone" (also accepted: phone number, mobile, whatsapp).';
	END IF;
	IF default_country IS NOT NULL THEN
		-- an unknown default country is an error for the whole import
		PERFORM wam.normalize_phone('+85291234567', default_country);
	END IF;
	width := cardinality(header);
END
$$;
COMMENT ON FUNCTION wam_internal.import_columns(text[], text) IS 'internal: the phone, tags, name and consent columns named by an import file''s header, and its width; raises when the file cannot be imported at all';

-- The whole import is one statement over the records of the file (exactly
-- one of text_data and byte_data is not null; wam.csv_rows is strict, so the
-- other one reads nothing).  Nothing is staged in temporary tables: this
-- function runs with its owner's privileges, and a temporary table, view or
-- trigger is the caller's own object (pg_temp is on the search path), so
-- reading or writing one would run the caller's code as the owner.
--
-- Each row's problem is the first of: malformed CSV, missing columns, an
-- invalid phone number, an unknown or retired tag.  Tags are resolved once
-- per distinct tags field, not per row (files repeat a few combinations).
-- Among the rows without a problem the first of each number wins; the later
-- ones are duplicates.
CREATE FUNCTION wam_internal.import_file(text_data text, byte_data bytea, default_country text,
		delimiter text)
	RETURNS TABLE (import_id bigint, rows_read bigint, created bigint, updated bigint,
				   duplicates bigint, failed bigint, failure_rate numeric, flagged boolean)
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	imp bigint;
	n_read bigint;
	n_created bigint;
	n_updated bigint;
	n_dup bigint;
	n_failed bigint;
BEGIN
	WITH rec AS MATERIALIZED (
		SELECT r.line_no, r.fields, r.problem FROM wam.csv_rows(text_data, delimiter) r
		UNION ALL
		SELECT r.line_no, r.fields, r.problem FROM wam.csv_rows(byte_data, delimiter) r
	),
	-- exactly one row: wam_internal.import_columns raises when there is no header
	hdr AS MATERIALIZED (
		SELECT f.line_no, c.phone, c.tags, c.name, c.consent, c.width
		FROM (SELECT 1) one
		LEFT JOIN (SELECT r.line_no, r.fields FROM rec r ORDER BY r.line_no LIMIT 1) f ON true
		CROSS JOIN LATERAL wam_internal.import_columns(f.fields, default_country) c
	),
	-- reads hdr, so it is inserted only once the header is accepted
	new_import AS (
		INSERT INTO wam.import (rows_read) SELECT 0 FROM hdr RETURNING wam.import.import_id AS id
	),
	line AS MATERIALIZED (
		SELECT r.line_no,
			   btrim(r.fields[h.phone]) AS raw_phone,
			   nullif(btrim(r.fields[h.name]), '') AS name,
			   nullif(btrim(r.fields[h.consent]), '') AS consent,
			   r.fields[h.tags] AS raw_tags,
			   CASE WHEN r.problem IS NOT NULL THEN 'malformed CSV: ' || r.problem
					WHEN cardinality(r.fields) < h.width THEN
						format('missing columns: %s of %s', cardinality(r.fields), h.width)
			   END AS problem
		FROM rec r, hdr h
		WHERE r.line_no > h.line_no
	),
	-- tags: every name must exist and be active; never created silently (R-I3)
	tag_set AS MATERIALIZED (
		SELECT s.raw_tags, x.problem, y.ids, y.ttls
		FROM (SELECT DISTINCT l.raw_tags FROM line l WHERE l.raw_tags IS NOT NULL) s
		CROSS JOIN LATERAL (
			SELECT array_agg(t.tag_id) AS ids,
				   CASE WHEN bool_or(t.tag_id IS NULL) THEN
							'unknown tag: ' || string_agg(u.n, ', ' ORDER BY u.o) FILTER (WHERE t.tag_id IS NULL)
						WHEN bool_or(t.status = 'retired') THEN
							'retired tag: ' || string_agg(u.n, ', ' ORDER BY u.o) FILTER (WHERE t.status = 'retired')
				   END AS problem
			FROM (SELECT btrim(v.n) AS n, v.o
				  FROM unnest(string_to_array(s.raw_tags, ',')) WITH ORDINALITY AS v(n, o)
				  WHERE btrim(v.n) <> '') u
			LEFT JOIN wam.tag t ON t.normalized_name = wam.normalize_tag_name(u.n)
		) x
		-- each tag once ("VIP, vip"), with its time to live
		CROSS JOIN LATERAL (
			SELECT coalesce(array_agg(t.tag_id ORDER BY t.tag_id), '{}') AS ids,
				   coalesce(array_agg(t.default_ttl ORDER BY t.tag_id), '{}') AS ttls
			FROM wam.tag t WHERE t.tag_id = ANY (x.ids)
		) y
	),
	checked AS MATERIALIZED (
		SELECT l.line_no, l.raw_phone, l.name, l.consent, l.raw_tags,
			   coalesce(l.problem, 'invalid phone number: ' || p.problem, ts.problem) AS problem,
			   CASE WHEN l.problem IS NULL AND p.problem IS NULL AND ts.problem IS NULL
					THEN wam.normalize_phone(l.raw_phone, default_country) END AS phone
		FROM line l
		-- (OFFSET 0: computed once per row, not once per use)
		CROSS JOIN LATERAL (SELECT CASE WHEN l.problem IS NULL
										THEN wam.phone_problem(l.raw_phone, default_country) END AS problem
							OFFSET 0) p
		LEFT JOIN tag_set ts ON ts.raw_tags = l.raw_tags
	),
	-- duplicates: the first occurrence of a number wins (R-I4)
	valid AS MATERIALIZED (
		SELECT c.line_no, c.raw_phone, c.phone, c.name, c.consent, c.raw_tags,
			   min(c.line_no) OVER (PARTITION BY c.phone) AS first_line
		FROM checked c WHERE c.phone IS NOT NULL
	),
	upserted AS (
		INSERT INTO wam.customer AS c (phone, name, consent_at, consent_source)
		SELECT v.phone, v.name, CASE WHEN v.consent IS NOT NULL THEN now() END, v.consent
		FROM valid v
		WHERE v.line_no = v.first_line
		ORDER BY v.line_no
		ON CONFLICT (phone) DO UPDATE
			SET name = coalesce(EXCLUDED.name, c.name),
				consent_at = CASE WHEN EXCLUDED.consent_source IS NOT NULL AND c.consent_at IS NULL
								  THEN EXCLUDED.consent_at ELSE c.consent_at END,
				consent_source = CASE WHEN EXCLUDED.consent_source IS NOT NULL AND c.consent_at IS NULL
									  THEN EXCLUDED.consent_source ELSE c.consent_source END
		RETURNING c.id, c.phone, (c.xmax = 0) AS inserted
	),
	-- every imported number gets exactly the file's tags (R-I7)
	attached AS (
		INSERT INTO wam.customer_tag AS ct (customer_id, tag_id, expires_at, source)
		SELECT u.id, x.tag_id, now() + x.ttl, 'import'
		FROM upserted u
		JOIN valid v ON v.phone = u.phone AND v.line_no = v.first_line
		JOIN tag_set ts ON ts.raw_tags = v.raw_tags
		CROSS JOIN LATERAL unnest(ts.ids, ts.ttls) AS x(tag_id, ttl)
		-- in primary-key order: each tag's new rows go to one place of the index
		ORDER BY x.tag_id, u.id
		ON CONFLICT (customer_id, tag_id) DO UPDATE SET expires_at = EXCLUDED.expires_at
			WHERE ct.expires_at IS DISTINCT FROM EXCLUDED.expires_at
	),
	touched AS (
		UPDATE wam.tag t SET last_attached_at = now()
		WHERE t.tag_id IN (SELECT t2.tag_id FROM wam.tag t2
						   WHERE t2.tag_id IN (SELECT unnest(ts.ids) FROM tag_set ts
											   WHERE ts.raw_tags IN (SELECT c.raw_tags FROM checked c
																	 WHERE c.problem IS NULL))
							 AND (t2.last_attached_at IS NULL OR t2.last_attached_at < now() - interval '1 hour')
						   FOR NO KEY UPDATE SKIP LOCKED)
	),
	failures AS (
		INSERT INTO wam.import_error (import_id, line_no, raw_phone, reason)
		SELECT i.id, e.line_no, left(e.raw_phone, 100), e.reason
		FROM new_import i,
			 (SELECT c.line_no, c.raw_phone, c.problem AS reason FROM checked c WHERE c.problem IS NOT NULL
			  UNION ALL
			  SELECT v.line_no, v.raw_phone, 'duplicate of line ' || v.first_line
			  FROM valid v WHERE v.line_no > v.first_line) e
		ORDER BY e.line_no
	)
	SELECT i.id, n.n_read, n.n_failed, d.n_dup, u.n_created, u.n_updated
	INTO imp, n_read, n_failed, n_dup, n_created, n_updated
	FROM new_import i,
		 (SELECT count(*) AS n_read, count(*) FILTER (WHERE c.problem IS NOT NULL) AS n_failed FROM checked c) n,
		 (SELECT count(*) AS n_dup FROM valid v WHERE v.line_no > v.first_line) d,
		 (SELECT count(*) FILTER (WHERE p.inserted) AS n_created,
				 count(*) FILTER (WHERE NOT p.inserted) AS n_updated FROM upserted p) u;

	UPDATE wam.import i
	SET rows_read = n_read, created = n_created, updated = n_updated, duplicates = n_dup,
		failed = n_failed,
		failure_rate = CASE WHEN n_read = 0 THEN 0 ELSE round(n_failed::numeric / n_read, 4) END,
		flagged = n_read > 0 AND n_failed::numeric / n_read > 0.10
	WHERE i.import_id = imp;
	RAISE NOTICE 'import %: % rows read, % customers created, % updated, % duplicates, % failed',
		imp, n_read, n_created, n_updated, n_dup, n_failed;

	RETURN QUERY SELECT i.import_id, i.rows_read, i.created, i.updated, i.duplicates, i.failed,
						i.failure_rate, i.flagged
				 FROM wam.import i WHERE i.import_id = imp;
END
$$;
COMMENT ON FUNCTION wam_internal.import_file(text, bytea, text, text) IS 'internal: the import behind wam.import_csv, of text_data or byte_data';

REVOKE EXECUTE ON FUNCTION wam_internal.import_file(text, bytea, text, text) FROM PUBLIC;

-- wam.csv_delimiter picks the delimiter from the header line: a comma unless
-- the header has none but has tabs (a TXT export) or semicolons (Excel in
-- many locales).
CREATE FUNCTION wam.csv_delimiter(header bytea) RETURNS text
	LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, wam, pg_temp
AS $$
	SELECT CASE
		WHEN position('\x2c'::bytea IN header) > 0 THEN ','
		WHEN position('\x09'::bytea IN header) > 0 THEN E'\t'
		WHEN position('\x3b'::bytea IN header) > 0 THEN ';'
		ELSE ',' END
$$;
COMMENT ON FUNCTION wam.csv_delimiter(bytea) IS 'delimiter of a contact file, judged from its header';

CREATE FUNCTION wam.import_csv(data text, default_country text DEFAULT NULL, delimiter text DEFAULT NULL)
	RETURNS TABLE (import_id bigint, rows_read bigint, created bigint, updated bigint,
				   duplicates bigint, failed bigint, failure_rate numeric, flagged boolean)
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
BEGIN
	PERFORM wam_internal.refuse_null(data IS NULL, 'import data');
	delimiter := coalesce(delimiter,
		wam.csv_delimiter(convert_to(split_part(left(data, 65536), E'\n', 1), 'UTF8')));
	RETURN QUERY SELECT * FROM wam_internal.import_file(data, NULL, default_country, delimiter);
END
$$;

CREATE FUNCTION wam.import_csv(data bytea, default_country text DEFAULT NULL, delimiter text DEFAULT NULL)
	RETURNS TABLE (import_id bigint, rows_read bigint, created bigint, updated bigint,
				   duplicates bigint, failed bigint, failure_rate numeric, flagged boolean)
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
DECLARE
	eol integer := position('\x0a'::bytea IN substring(data FROM 1 FOR 65536));
BEGIN
	PERFORM wam_internal.refuse_null(data IS NULL, 'import data');
	delimiter := coalesce(delimiter, wam.csv_delimiter(
		substring(data FROM 1 FOR CASE WHEN eol > 0 THEN eol ELSE 65536 END)));
	-- raw bytes: a line that is not valid UTF-8 fails alone, the others import
	RETURN QUERY SELECT * FROM wam_internal.import_file(NULL, data, default_country, delimiter);
END
$$;
COMMENT ON FUNCTION wam.import_csv(bytea, text, text) IS 'imports contacts from raw CSV bytes; returns the report';
COMMENT ON FUNCTION wam.import_csv(text, text, text) IS 'imports contacts from CSV text; returns the report';

REVOKE EXECUTE ON FUNCTION wam.import_csv(bytea, text, text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION wam.import_csv(text, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.import_csv(bytea, text, text) TO wam_operator;
GRANT EXECUTE ON FUNCTION wam.import_csv(text, text, text) TO wam_operator;
-- src/sql/segment_expr.sql: segment expressions (audiences): one line of text from tags
-- and behaviour to the customers it means, and saved segments; the language is
-- described in src/expr_parse.c and the README
-- saved segments

CREATE TABLE wam.saved_segment (
	normalized_name text PRIMARY KEY,
	name text NOT NULL,
	expression text NOT NULL,
	refs text[] NOT NULL DEFAULT '{}',
	description text,
	created timestamptz NOT NULL DEFAULT pg_catalog.now(),
	created_by name NOT NULL DEFAULT SESSION_USER,
	updated timestamptz NOT NULL DEFAULT pg_catalog.now(),
	updated_by name NOT NULL DEFAULT SESSION_USER
);
COMMENT ON TABLE wam.saved_segment IS 'saved segment expressions, used as @name';
COMMENT ON COLUMN wam.saved_segment.refs IS 'normalized names of the saved segments the expression names directly (@name), kept by wam.define_segment()';

REVOKE ALL ON wam.saved_segment FROM PUBLIC;
GRANT SELECT ON wam.saved_segment TO wam_reader;
GRANT SELECT, INSERT, UPDATE, DELETE ON wam.saved_segment TO wam_definer;

-- evaluation (C: src/expr_parse.c parses, src/expr_prepare.c prepares, src/expr_eval.c evaluates, src/expr_sql.c is the SQL interface)

-- The functions read tables through SPI on the caller's snapshot and with
-- the caller's privileges (SECURITY INVOKER: wam_reader can read what they
-- read); every query they run is constant text with parameters.
CREATE FUNCTION wam.audience(expr text) RETURNS wam.segment
	AS 'MODULE_PATHNAME', 'wam_expr_eval' LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION wam.audience(text) IS 'the customers a segment expression means';

REVOKE EXECUTE ON FUNCTION wam.audience(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.audience(text) TO wam_reader;

CREATE FUNCTION wam.audience_size(expr text) RETURNS bigint
	AS 'MODULE_PATHNAME', 'wam_expr_count' LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION wam.audience_size(text) IS 'how many customers a segment expression means';

REVOKE EXECUTE ON FUNCTION wam.audience_size(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.audience_size(text) TO wam_reader;

CREATE FUNCTION wam.audience_funnel(expr text)
	RETURNS TABLE (step integer, depth integer, expression text, customers bigint)
	AS 'MODULE_PATHNAME', 'wam_expr_explain' LANGUAGE C STABLE STRICT PARALLEL SAFE ROWS 10;
COMMENT ON FUNCTION wam.audience_funnel(text) IS 'customers at every step of a segment expression';

REVOKE EXECUTE ON FUNCTION wam.audience_funnel(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.audience_funnel(text) TO wam_reader;

CREATE FUNCTION wam.audience_problem(expr text) RETURNS text
	AS 'MODULE_PATHNAME', 'wam_expr_check' LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION wam.audience_problem(text) IS 'why a segment expression is invalid, or NULL';

REVOKE EXECUTE ON FUNCTION wam.audience_problem(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.audience_problem(text) TO wam_reader;

CREATE FUNCTION wam_internal.segment_references(expr text, self text DEFAULT NULL) RETURNS text[]
	AS 'MODULE_PATHNAME', 'wam_expr_references' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION wam_internal.segment_references(text, text) IS 'internal: validates an expression (for the saved segment self, if given: it must not reach self) and returns the normalized names of the saved segments it names directly';

REVOKE EXECUTE ON FUNCTION wam_internal.segment_references(text, text) FROM PUBLIC;

-- wam.segment_repeat_agg: the ids occurring at least (or exactly) n times,
-- with one bitmap per count level instead of a GROUP BY hash table; the
-- predicate "event(kind) >= n" uses it for n up to 16 (src/expr_agg.c)
CREATE FUNCTION wam_internal.segment_repeat_trans(internal, bigint, integer, boolean) RETURNS internal
	AS 'MODULE_PATHNAME', 'wam_expr_repeat_trans' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION wam_internal.segment_repeat_trans(internal, bigint, integer, boolean) IS 'transition function of wam.segment_repeat_agg';
CREATE FUNCTION wam_internal.segment_repeat_combine(internal, internal) RETURNS internal
	AS 'MODULE_PATHNAME', 'wam_expr_repeat_combine' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION wam_internal.segment_repeat_combine(internal, internal) IS 'combine function of wam.segment_repeat_agg';
CREATE FUNCTION wam_internal.segment_repeat_serial(internal) RETURNS bytea
	AS 'MODULE_PATHNAME', 'wam_expr_repeat_serial' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION wam_internal.segment_repeat_serial(internal) IS 'serialization function of wam.segment_repeat_agg';
CREATE FUNCTION wam_internal.segment_repeat_deserial(bytea, internal) RETURNS internal
	AS 'MODULE_PATHNAME', 'wam_expr_repeat_deserial' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION wam_internal.segment_repeat_deserial(bytea, internal) IS 'deserialization function of wam.segment_repeat_agg';
CREATE FUNCTION wam_internal.segment_repeat_final(internal) RETURNS wam.segment
	AS 'MODULE_PATHNAME', 'wam_expr_repeat_final' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION wam_internal.segment_repeat_final(internal) IS 'final function of wam.segment_repeat_agg';
CREATE AGGREGATE wam.segment_repeat_agg(id bigint, times integer, exactly boolean) (
	SFUNC = wam_internal.segment_repeat_trans,
	STYPE = internal,
	FINALFUNC = wam_internal.segment_repeat_final,
	COMBINEFUNC = wam_internal.segment_repeat_combine,
	SERIALFUNC = wam_internal.segment_repeat_serial,
	DESERIALFUNC = wam_internal.segment_repeat_deserial,
	PARALLEL = SAFE
);
COMMENT ON AGGREGATE wam.segment_repeat_agg(bigint, integer, boolean) IS 'ids occurring at least (or exactly) times times';

-- saved segment definitions (operators and admins)

-- wam.define_segment creates or replaces a saved segment.  The expression
-- must be valid now; it is stored as written and evaluated afresh every
-- time it is used.  Definitions serialize on a table lock, so two
-- concurrent definitions cannot build a cycle between them.
CREATE FUNCTION wam.define_segment(name text, expression text, description text DEFAULT NULL)
	RETURNS void
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	norm text := wam.normalize_tag_name(name);
	refs text[];
	via text;
	below integer;
	above integer;
BEGIN
	PERFORM wam_internal.refuse_null(name IS NULL OR expression IS NULL, 'saved segment name and expression');
	IF norm = '' THEN
		RAISE EXCEPTION 'saved segment name "%" has no letters or digits', name
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF length(name) > 100 THEN
		RAISE EXCEPTION 'saved segment name is too long (% characters; the limit is 100)', length(name)
			USING ERRCODE = 'string_data_right_truncation';
	END IF;
	LOCK TABLE wam.saved_segment IN SHARE ROW EXCLUSIVE MODE;
	-- raises what wam.audience() would raise for this expression, and
	-- for references back to this segment
	refs := wam_internal.segment_references(expression, name);
	-- (segment_references() refuses cycles; checked again on the stored refs)
	IF norm = ANY (refs) THEN
		RAISE EXCEPTION 'saved segment "%" cannot reference itself', name
			USING ERRCODE = 'invalid_recursion';
	END IF;
	SELECT s.name INTO via
	FROM unnest(refs) AS r(n) JOIN wam.saved_segment s ON s.normalized_name = r.n
	WHERE norm IN (WITH RECURSIVE reach(n) AS (
					   SELECT r.n
					   UNION
					   SELECT x.n FROM reach
					   JOIN wam.saved_segment s2 ON s2.normalized_name = reach.n
					   CROSS JOIN unnest(s2.refs) AS x(n))
				   SELECT reach.n FROM reach)
	ORDER BY 1 LIMIT 1;
	IF via IS NOT NULL THEN
		RAISE EXCEPTION 'saved segment "%" would reference itself through @%', name, via
			USING ERRCODE = 'invalid_recursion',
				  DETAIL = format('Saved segment "%s" references "%s", directly or through others.', via, name);
	END IF;
	-- the longest chain of saved segments through this one: those naming it
	-- (above), itself, those it names (below)
	WITH RECURSIVE down(n, lvl) AS (
		SELECT r.n, 1 FROM unnest(refs) AS r(n)
		UNION
		SELECT x.n, d.lvl + 1 FROM down d
		JOIN wam.saved_segment s ON s.normalized_name = d.n
		CROSS JOIN unnest(s.refs) AS x(n)
		WHERE d.lvl <= 32)
	SELECT coalesce(max(d.lvl), 0) INTO below FROM down d;
	WITH RECURSIVE up(n, lvl) AS (
		SELECT norm, 0
		UNION
		SELECT s.normalized_name, u.lvl + 1 FROM up u
		JOIN wam.saved_segment s ON u.n = ANY (s.refs)
		WHERE u.lvl <= 32)
	SELECT max(u.lvl) INTO above FROM up u;
	IF above + 1 + below > 32 THEN
		RAISE EXCEPTION 'saved segments would nest too deeply'
			USING ERRCODE = 'statement_too_complex',
				  DETAIL = format('The longest chain of saved segments through "%s" would have %s; the limit is 32.',
								  name, above + 1 + below);
	END IF;
	INSERT INTO wam.saved_segment AS s (normalized_name, name, expression, refs, description)
	VALUES (norm, btrim(name), expression, refs, description)
	ON CONFLICT (normalized_name) DO UPDATE
		SET name = EXCLUDED.name, expression = EXCLUDED.expression, refs = EXCLUDED.refs,
			description = coalesce(EXCLUDED.description, s.description),
			updated = pg_catalog.now(), updated_by = SESSION_USER;
END
$$;
COMMENT ON FUNCTION wam.define_segment(text, text, text) IS 'creates or replaces a saved segment';

REVOKE EXECUTE ON FUNCTION wam.define_segment(text, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.define_segment(text, text, text) TO wam_operator;

-- wam.drop_segment refuses to drop a segment that others use, unless
-- cascade, which drops those (recursively) too, like DROP ... CASCADE.
CREATE FUNCTION wam.drop_segment(name text, cascade boolean DEFAULT false)
	RETURNS integer
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	norm text := wam.normalize_tag_name(name);
	users text;
	dropped integer;
	r record;
BEGIN
	PERFORM wam_internal.refuse_null(name IS NULL OR cascade IS NULL, 'saved segment name');
	LOCK TABLE wam.saved_segment IN SHARE ROW EXCLUSIVE MODE;
	IF NOT EXISTS (SELECT FROM wam.saved_segment s WHERE s.normalized_name = norm) THEN
		RAISE EXCEPTION 'saved segment "%" does not exist', name USING ERRCODE = 'undefined_object';
	END IF;
	SELECT string_agg(format('"%s"', s.name), ', ' ORDER BY s.name) INTO users
	FROM wam.saved_segment s WHERE norm = ANY (s.refs);
	IF users IS NOT NULL AND NOT cascade THEN
		RAISE EXCEPTION 'cannot drop saved segment "%" because other saved segments reference it', name
			USING ERRCODE = 'dependent_objects_still_exist',
				  DETAIL = format('Referenced by %s.', users),
				  HINT = 'Redefine or drop them first, or drop them too with wam.drop_segment(name, cascade => true).';
	END IF;
	FOR r IN WITH RECURSIVE up(n) AS (
				 SELECT norm
				 UNION
				 SELECT s.normalized_name FROM up JOIN wam.saved_segment s ON up.n = ANY (s.refs))
			 SELECT s.name FROM wam.saved_segment s JOIN up ON s.normalized_name = up.n
			 WHERE s.normalized_name <> norm ORDER BY 1
	LOOP
		RAISE NOTICE 'drop cascades to saved segment "%"', r.name;
	END LOOP;
	WITH RECURSIVE up(n) AS (
		SELECT norm
		UNION
		SELECT s.normalized_name FROM up JOIN wam.saved_segment s ON up.n = ANY (s.refs))
	DELETE FROM wam.saved_segment s USING up WHERE s.normalized_name = up.n;
	GET DIAGNOSTICS dropped = ROW_COUNT;
	RETURN dropped;
END
$$;
COMMENT ON FUNCTION wam.drop_segment(text, boolean) IS 'drops a saved segment (and its users with cascade)';

REVOKE EXECUTE ON FUNCTION wam.drop_segment(text, boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.drop_segment(text, boolean) TO wam_operator;
-- src/sql/rfm.sql: RFM settings, cut points, scores, tier schemes and tier tags
-- settings

-- One row of settings, changed by administrators with wam.configure_rfm()
-- and listed by the view wam.rfm_settings.
CREATE TABLE wam.rfm_config (
	id boolean PRIMARY KEY DEFAULT true CONSTRAINT rfm_config_one_row CHECK (id),
	currency text CONSTRAINT rfm_config_currency CHECK (currency ~ '^[A-Z]{3}$'),
	day_time_zone text NOT NULL DEFAULT 'UTC',
	future_tolerance interval NOT NULL DEFAULT '5 minutes'
		CONSTRAINT rfm_config_future_tolerance CHECK (future_tolerance >= interval '0' AND future_tolerance <= interval '1 day'),
	tier_scheme text NOT NULL DEFAULT 'segment map',
	mirror_tags boolean NOT NULL DEFAULT false,
	tag_prefix text NOT NULL DEFAULT 'RFM '
		CONSTRAINT rfm_config_tag_prefix CHECK (length(tag_prefix) <= 40),
	high_frequency_orders_30d integer NOT NULL DEFAULT 2
		CONSTRAINT rfm_config_high_frequency CHECK (high_frequency_orders_30d >= 1),
	low_spend_order_value numeric NOT NULL DEFAULT 500
		CONSTRAINT rfm_config_low_spend CHECK (low_spend_order_value >= 0),
	high_spend_order_value numeric NOT NULL DEFAULT 500
		CONSTRAINT rfm_config_high_spend CHECK (high_spend_order_value >= 0),
	price_sensitive_coupon_share numeric NOT NULL DEFAULT 0.70
		CONSTRAINT rfm_config_coupon_share CHECK (price_sensitive_coupon_share > 0 AND price_sensitive_coupon_share <= 1),
	quality_price_ratio numeric NOT NULL DEFAULT 2
		CONSTRAINT rfm_config_quality_ratio CHECK (quality_price_ratio > 0),
	flag_min_orders integer NOT NULL DEFAULT 2
		CONSTRAINT rfm_config_flag_min_orders CHECK (flag_min_orders >= 1),
	catalogue_unit_price numeric
		CONSTRAINT rfm_config_catalogue_unit_price CHECK (catalogue_unit_price > 0),
	clv_min_customers integer NOT NULL DEFAULT 500
		CONSTRAINT rfm_config_clv_min_customers CHECK (clv_min_customers >= 2),
	clv_min_repeat_buyers integer NOT NULL DEFAULT 100
		CONSTRAINT rfm_config_clv_min_repeat_buyers CHECK (clv_min_repeat_buyers >= 1),
	clv_margin numeric NOT NULL DEFAULT 1
		CONSTRAINT rfm_config_clv_margin CHECK (clv_margin >= 0 AND clv_margin <= 1),
	cost_cap_horizon interval NOT NULL DEFAULT '1 year'
		CONSTRAINT rfm_config_cost_cap_horizon CHECK (cost_cap_horizon > interval '0'),
	cost_cap_share numeric NOT NULL DEFAULT 0.15
		CONSTRAINT rfm_config_cost_cap_share CHECK (cost_cap_share >= 0 AND cost_cap_share <= 1),
	push_cost numeric
		CONSTRAINT rfm_config_push_cost CHECK (push_cost >= 0),
	high_value_clv numeric NOT NULL DEFAULT 8000
		CONSTRAINT rfm_config_high_value_clv CHECK (high_value_clv >= 0),
	high_value_push_multiplier numeric NOT NULL DEFAULT 3
		CONSTRAINT rfm_config_high_value_multiplier CHECK (high_value_push_multiplier >= 1)
);
INSERT INTO wam.rfm_config DEFAULT VALUES;
COMMENT ON TABLE wam.rfm_config IS 'settings of orders, RFM, lifetime value and cost caps';
COMMENT ON COLUMN wam.rfm_config.currency IS 'ISO 4217 code of the program currency; NULL until the first order that names one (details->>''currency''); orders in another currency are refused';
COMMENT ON COLUMN wam.rfm_config.day_time_zone IS 'time zone whose calendar days count as purchase days (frequency = distinct purchase days); changing it recomputes all statistics';
COMMENT ON COLUMN wam.rfm_config.future_tolerance IS 'how far in the future an order time may be (clock skew) before wam.record_order refuses it';
COMMENT ON COLUMN wam.rfm_config.tier_scheme IS 'the tier scheme of wam.rfm_score, wam.refresh_rfm and the tier tags: ''segment map'' (11 named segments), ''value tiers'' (6) or one defined with wam.define_rfm_scheme';
COMMENT ON COLUMN wam.rfm_config.mirror_tags IS 'keep one tag per tier (dimension spending power) in step: at every refresh, and at once when an order moves a customer to another tier';
COMMENT ON COLUMN wam.rfm_config.tag_prefix IS 'tier tags are named tag_prefix || tier, e.g. "RFM Champions"';
COMMENT ON COLUMN wam.rfm_config.high_frequency_orders_30d IS 'orders in the last 30 days from which a customer is high-frequency (below: low-frequency)';
COMMENT ON COLUMN wam.rfm_config.low_spend_order_value IS 'average order value below which a high-frequency customer is low-spend';
COMMENT ON COLUMN wam.rfm_config.high_spend_order_value IS 'average order value from which a low-frequency customer is high-spend';
COMMENT ON COLUMN wam.rfm_config.price_sensitive_coupon_share IS 'share of orders with a coupon from which a customer is price-sensitive';
COMMENT ON COLUMN wam.rfm_config.quality_price_ratio IS 'average unit price, as a multiple of the catalogue average, from which a customer is quality-oriented';
COMMENT ON COLUMN wam.rfm_config.flag_min_orders IS 'orders a customer needs before the price-sensitive and quality-oriented flags apply';
COMMENT ON COLUMN wam.rfm_config.catalogue_unit_price IS 'the catalogue average unit price; NULL: the sales-weighted average unit price of all orders at the last wam.refresh_rfm';
COMMENT ON COLUMN wam.rfm_config.clv_min_customers IS 'customers with an order that wam.fit_clv needs; until a fit exists wam.clv uses the simple estimate';
COMMENT ON COLUMN wam.rfm_config.clv_min_repeat_buyers IS 'customers with a repeat purchase day that wam.fit_clv needs';
COMMENT ON COLUMN wam.rfm_config.clv_margin IS 'default gross margin applied by wam.clv (1 = revenue)';
COMMENT ON COLUMN wam.rfm_config.cost_cap_horizon IS 'horizon of the lifetime value that wam.cost_cap is a share of';
COMMENT ON COLUMN wam.rfm_config.cost_cap_share IS 'the largest reward or push cost as a share of the lifetime value';
COMMENT ON COLUMN wam.rfm_config.push_cost IS 'the normal cost of one push (e.g. a gift); NULL: only the share of lifetime value limits costs';
COMMENT ON COLUMN wam.rfm_config.high_value_clv IS 'lifetime value above which a customer may receive pushes costing high_value_push_multiplier times push_cost';
COMMENT ON COLUMN wam.rfm_config.high_value_push_multiplier IS 'the push cost multiple allowed for high-value customers';

-- tier schemes

CREATE TABLE wam.rfm_scheme (
	name text PRIMARY KEY CONSTRAINT rfm_scheme_name CHECK (btrim(name) <> ''),
	builtin boolean NOT NULL DEFAULT false,
	description text,
	tiers text[] NOT NULL DEFAULT '{}',
	tier_map text[] CONSTRAINT rfm_scheme_tier_map CHECK (cardinality(tier_map) = 125)
);
COMMENT ON TABLE wam.rfm_scheme IS 'tier schemes and the tier of each score cell';

CREATE TABLE wam.rfm_tier_rule (
	scheme text NOT NULL REFERENCES wam.rfm_scheme ON DELETE CASCADE ON UPDATE CASCADE,
	position integer NOT NULL,
	tier text NOT NULL CONSTRAINT rfm_tier_rule_tier CHECK (btrim(tier) <> '' AND tier <> 'Prospects'),
	r_min integer NOT NULL DEFAULT 1,
	r_max integer NOT NULL DEFAULT 5,
	f_min integer NOT NULL DEFAULT 1,
	f_max integer NOT NULL DEFAULT 5,
	m_min integer NOT NULL DEFAULT 1,
	m_max integer NOT NULL DEFAULT 5,
	fm_min numeric NOT NULL DEFAULT 1,
	fm_max numeric NOT NULL DEFAULT 5,
	segments text[],
	PRIMARY KEY (scheme, position),
	CONSTRAINT rfm_tier_rule_ranges CHECK (
		1 <= r_min AND r_min <= r_max AND r_max <= 5 AND
		1 <= f_min AND f_min <= f_max AND f_max <= 5 AND
		1 <= m_min AND m_min <= m_max AND m_max <= 5 AND
		1 <= fm_min AND fm_min <= fm_max AND fm_max <= 5)
);
COMMENT ON TABLE wam.rfm_tier_rule IS 'rules that map score ranges to tiers';

-- RFM cut points

CREATE TABLE wam.rfm_cut (
	id boolean PRIMARY KEY DEFAULT true CONSTRAINT rfm_cut_one_row CHECK (id),
	refreshed_at timestamptz NOT NULL,
	as_of timestamptz NOT NULL,
	source text NOT NULL CONSTRAINT rfm_cut_source CHECK (source IN ('statistics', 'orders')),
	customers bigint NOT NULL,
	r_cuts timestamptz[] NOT NULL,
	f_cuts bigint[] NOT NULL,
	m_cuts numeric[] NOT NULL,
	cells bigint[] NOT NULL,
	orders bigint NOT NULL,
	revenue numeric NOT NULL,
	unit_price numeric,
	repeat_orders_per_year float8 NOT NULL,
	refresh_ms float8 NOT NULL
);
COMMENT ON TABLE wam.rfm_cut IS 'cut points and base totals of the last RFM refresh';

REVOKE ALL ON wam.rfm_cut FROM PUBLIC;
GRANT SELECT ON wam.rfm_cut TO wam_reader;
GRANT SELECT, INSERT, UPDATE ON wam.rfm_cut TO wam_definer;

-- C functions: RFM quintiles

CREATE TYPE wam.rfm_cut_result AS (
	customers bigint,
	latest timestamptz,
	r_cuts timestamptz[],
	f_cuts bigint[],
	m_cuts numeric[],
	cells bigint[],
	orders bigint,
	revenue float8,
	unit_price float8,
	repeat_orders_per_year float8
);
COMMENT ON TYPE wam.rfm_cut_result IS 'result of wam_internal.rfm_cut_points: cut points, customers per (R, F, M) cell and base totals';

CREATE FUNCTION wam_internal.rfm_cut_points_trans(internal, timestamptz, timestamptz, timestamptz, bigint, numeric, bigint)
	RETURNS internal AS 'MODULE_PATHNAME', 'wam_rfm_cut_points_trans' LANGUAGE C IMMUTABLE CALLED ON NULL INPUT PARALLEL SAFE;
CREATE FUNCTION wam_internal.rfm_cut_points_final(internal) RETURNS wam.rfm_cut_result
	AS 'MODULE_PATHNAME', 'wam_rfm_cut_points_final' LANGUAGE C IMMUTABLE CALLED ON NULL INPUT PARALLEL SAFE;
CREATE AGGREGATE wam_internal.rfm_cut_points(as_of timestamptz, first_order_at timestamptz, last_order_at timestamptz,
									orders bigint, total numeric, units bigint) (
	SFUNC = wam_internal.rfm_cut_points_trans,
	STYPE = internal,
	FINALFUNC = wam_internal.rfm_cut_points_final,
	PARALLEL = SAFE
);
COMMENT ON FUNCTION wam_internal.rfm_cut_points_trans(internal, timestamptz, timestamptz, timestamptz, bigint, numeric, bigint) IS 'internal: transition function of wam_internal.rfm_cut_points (collects one customer)';

REVOKE EXECUTE ON FUNCTION wam_internal.rfm_cut_points_trans(internal, timestamptz, timestamptz, timestamptz, bigint, numeric, bigint) FROM PUBLIC;
COMMENT ON FUNCTION wam_internal.rfm_cut_points_final(internal) IS 'internal: final function of wam_internal.rfm_cut_points (cut points and cell counts)';

REVOKE EXECUTE ON FUNCTION wam_internal.rfm_cut_points_final(internal) FROM PUBLIC;
COMMENT ON AGGREGATE wam_internal.rfm_cut_points(timestamptz, timestamptz, timestamptz, bigint, numeric, bigint) IS 'internal: mid-rank quintile cut points of recency, frequency (1 order = 1, repeat buyers 2..5) and monetary value over one row per customer';

REVOKE EXECUTE ON FUNCTION wam_internal.rfm_cut_points(timestamptz, timestamptz, timestamptz, bigint, numeric, bigint) FROM PUBLIC;

-- scoring helpers

CREATE FUNCTION wam.rfm_level(v anyelement, cuts anyarray) RETURNS integer
	LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
	SELECT CASE WHEN v IS NOT NULL AND cuts IS NOT NULL THEN
		1 + (coalesce(v >= cuts[1], false))::integer + (coalesce(v >= cuts[2], false))::integer
		  + (coalesce(v >= cuts[3], false))::integer + (coalesce(v >= cuts[4], false))::integer END
$$;
COMMENT ON FUNCTION wam.rfm_level(anyelement, anyarray) IS 'score 1 to 5 of a value against 4 cut points';

REVOKE EXECUTE ON FUNCTION wam.rfm_level(anyelement, anyarray) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.rfm_level(anyelement, anyarray) TO wam_reader;

CREATE FUNCTION wam_internal.count_since(times timestamptz[], since timestamptz) RETURNS integer
	LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
	SELECT count(*)::integer FROM unnest(times) t WHERE t > since
$$;
COMMENT ON FUNCTION wam_internal.count_since(timestamptz[], timestamptz) IS 'how many of the times are after since';

REVOKE EXECUTE ON FUNCTION wam_internal.count_since(timestamptz[], timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam_internal.count_since(timestamptz[], timestamptz) TO wam_reader;

-- wam_internal.rfm_compile gives, for each of the 125 cells, the position of the
-- first rule of a scheme that matches it (NULL: none).  The rules of the
-- segment map use R and FM only; rules naming segments look them up in the
-- compiled segment map.
CREATE FUNCTION wam_internal.rfm_compile(scheme text) RETURNS integer[]
	LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, wam, pg_temp
AS $$
	SELECT array_agg((SELECT t.position FROM wam.rfm_tier_rule t
					  WHERE t.scheme = rfm_compile.scheme
						AND c.r BETWEEN t.r_min AND t.r_max
						AND c.f BETWEEN t.f_min AND t.f_max
						AND c.m BETWEEN t.m_min AND t.m_max
						AND (c.f + c.m) / 2.0 BETWEEN t.fm_min AND t.fm_max
						AND (t.segments IS NULL OR seg.map[c.cell] = ANY (t.segments))
					  ORDER BY t.position LIMIT 1) ORDER BY c.cell)
	FROM (SELECT r, f, m, (r - 1) * 25 + (f - 1) * 5 + m AS cell
		  FROM generate_series(1, 5) r, generate_series(1, 5) f, generate_series(1, 5) m) c
	LEFT JOIN (SELECT s.tier_map AS map FROM wam.rfm_scheme s WHERE s.name = 'segment map') seg ON true
$$;
COMMENT ON FUNCTION wam_internal.rfm_compile(text) IS 'internal: the winning rule position of a scheme for each (R, F, M) cell';

REVOKE EXECUTE ON FUNCTION wam_internal.rfm_compile(text) FROM PUBLIC;

CREATE FUNCTION wam_internal.rfm_store_scheme(scheme text) RETURNS void
	LANGUAGE plpgsql SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	positions integer[] := wam_internal.rfm_compile(scheme);
BEGIN
	UPDATE wam.rfm_scheme s
	SET tier_map = ARRAY(SELECT t.tier FROM unnest(positions) WITH ORDINALITY p(pos, cell)
						 LEFT JOIN wam.rfm_tier_rule t ON t.scheme = s.name AND t.position = p.pos
						 ORDER BY p.cell),
		tiers = ARRAY(SELECT t.tier FROM wam.rfm_tier_rule t WHERE t.scheme = s.name
					  GROUP BY t.tier ORDER BY min(t.position))
	WHERE s.name = scheme;
END
$$;
COMMENT ON FUNCTION wam_internal.rfm_store_scheme(text) IS 'internal: compiles a scheme''s rules into its tier map';

REVOKE EXECUTE ON FUNCTION wam_internal.rfm_store_scheme(text) FROM PUBLIC;

-- The segment map: the 11 segments of the widely copied RFM table with their
-- published R and FM = (F+M)/2 ranges.  The published ranges overlap (first
-- match wins), and in the published order New, Promising, Need attention and
-- Lost could never be assigned; this order (narrow segments first, Lost
-- narrowed to the lowest cell because with scores of 1..5 its published range
-- equals Hibernating's) makes every segment reachable and gives every cell a
-- segment whose published range contains it.
INSERT INTO wam.rfm_scheme (name, builtin, description) VALUES
	('segment map', true, 'the 11 named RFM segments by R and FM = (F+M)/2'),
	('value tiers', true, 'six value tiers grouping the segment map (R-R1)');
INSERT INTO wam.rfm_tier_rule (scheme, position, tier, r_min, r_max, fm_min, fm_max) VALUES
	('segment map', 1, 'Champions', 4, 5, 4, 5),
	('segment map', 2, 'Can''t lose them', 1, 1, 4, 5),
	('segment map', 3, 'Need attention', 2, 3, 2, 3),
	('segment map', 4, 'At risk', 1, 2, 2, 5),
	('segment map', 5, 'Loyal', 2, 5, 3, 5),
	('segment map', 6, 'Lost', 1, 1, 1, 1),
	('segment map', 7, 'Hibernating', 1, 2, 1, 2),
	('segment map', 8, 'About to sleep', 2, 3, 1, 2),
	('segment map', 9, 'Promising', 3, 4, 1, 1),
	('segment map', 10, 'New', 4, 5, 1, 1),
	('segment map', 11, 'Potential loyalist', 3, 5, 1, 3);
SELECT wam_internal.rfm_store_scheme('segment map');
INSERT INTO wam.rfm_tier_rule (scheme, position, tier, segments) VALUES
	('value tiers', 1, 'Champions', '{Champions}'),
	('value tiers', 2, 'Loyal', '{Loyal}'),
	('value tiers', 3, 'Potential', '{Potential loyalist,New,Promising}'),
	('value tiers', 4, 'Needs attention', '{Need attention,About to sleep}'),
	('value tiers', 5, 'At risk', '{At risk,Can''t lose them}'),
	('value tiers', 6, 'Dormant', '{Hibernating,Lost}');

REVOKE ALL ON wam.rfm_tier_rule FROM PUBLIC;
GRANT SELECT ON wam.rfm_tier_rule TO wam_reader;
GRANT SELECT, INSERT, DELETE ON wam.rfm_tier_rule TO wam_definer;
SELECT wam_internal.rfm_store_scheme('value tiers');
-- the segment map lists its segments in the conventional order, not rule order
UPDATE wam.rfm_scheme SET tiers = '{Champions,Loyal,Potential loyalist,New,Promising,Need attention,About to sleep,At risk,Can''t lose them,Hibernating,Lost}'
WHERE name = 'segment map';

REVOKE ALL ON wam.rfm_scheme FROM PUBLIC;
GRANT SELECT ON wam.rfm_scheme TO wam_reader;
GRANT SELECT, INSERT, UPDATE ON wam.rfm_scheme TO wam_definer;
ALTER TABLE wam.rfm_config ADD CONSTRAINT rfm_config_tier_scheme
	FOREIGN KEY (tier_scheme) REFERENCES wam.rfm_scheme ON UPDATE CASCADE;

REVOKE ALL ON wam.rfm_config FROM PUBLIC;
GRANT SELECT ON wam.rfm_config TO wam_reader;
GRANT SELECT, UPDATE ON wam.rfm_config TO wam_definer;

-- scores, segments, tiers and flags of every customer with an order

CREATE VIEW wam.customer_rfm AS
SELECT s.customer_id,
	   s.orders,
	   s.order_days,
	   s.first_order_at,
	   s.last_order_at,
	   s.total_amount,
	   round(s.total_amount / s.orders, 2) AS average_order_value,
	   round(s.coupon_orders::numeric / s.orders, 4) AS coupon_share,
	   CASE WHEN s.units > 0 THEN round(s.total_amount / s.units, 2) END AS average_unit_price,
	   CASE WHEN s.units > 0 AND p.unit_price > 0 THEN round(s.total_amount / s.units / p.unit_price, 2) END
		   AS unit_price_ratio,
	   x.orders_30d,
	   x.r,
	   x.f,
	   x.m,
	   p.segment_map[x.cell] AS segment,
	   p.tier_map[x.cell] AS tier,
	   x.orders_30d >= p.high_frequency_orders_30d
		   AND s.total_amount / s.orders < p.low_spend_order_value AS high_frequency_low_spend,
	   x.orders_30d < p.high_frequency_orders_30d
		   AND s.total_amount / s.orders >= p.high_spend_order_value AS low_frequency_high_spend,
	   s.orders >= p.flag_min_orders
		   AND s.coupon_orders >= p.price_sensitive_coupon_share * s.orders AS price_sensitive,
	   coalesce(s.orders >= p.flag_min_orders AND s.units > 0
		   AND s.total_amount / s.units >= p.quality_price_ratio * p.unit_price, false) AS quality_oriented
FROM wam.customer_stats s
-- the settings, cut points and tier maps: one row (LIMIT 1 tells the planner so)
CROSS JOIN (
	SELECT cfg.high_frequency_orders_30d, cfg.low_spend_order_value, cfg.high_spend_order_value,
		   cfg.price_sensitive_coupon_share, cfg.quality_price_ratio, cfg.flag_min_orders,
		   coalesce(cfg.catalogue_unit_price, k.unit_price) AS unit_price,
		   k.r_cuts, k.f_cuts, k.m_cuts, seg.tier_map AS segment_map, sch.tier_map
	FROM wam.rfm_config cfg
	LEFT JOIN wam.rfm_cut k ON true
	LEFT JOIN wam.rfm_scheme seg ON seg.name = 'segment map'
	LEFT JOIN wam.rfm_scheme sch ON sch.name = cfg.tier_scheme
	LIMIT 1
) p
CROSS JOIN LATERAL (
	SELECT y.*, (y.r - 1) * 25 + (y.f - 1) * 5 + y.m AS cell
	FROM (SELECT wam.rfm_level(s.last_order_at, p.r_cuts) AS r,
				 wam.rfm_level(s.orders, p.f_cuts) AS f,
				 wam.rfm_level(s.total_amount, p.m_cuts) AS m,
				 wam_internal.count_since(s.recent_orders, now() - interval '30 days') AS orders_30d) y
) x;
COMMENT ON VIEW wam.customer_rfm IS 'per buyer: statistics, current R/F/M scores, tier and flags';

REVOKE ALL ON wam.customer_rfm FROM PUBLIC;
GRANT SELECT ON wam.customer_rfm TO wam_definer;
GRANT SELECT ON wam.customer_rfm TO wam_reader;

CREATE VIEW wam.rfm_settings AS
SELECT a.attname::text AS setting,
	   j.value,
	   pg_catalog.format_type(a.atttypid, a.atttypmod) AS type,
	   pg_catalog.col_description(a.attrelid, a.attnum) AS description
FROM pg_catalog.pg_attribute a
JOIN wam.rfm_config s ON true
CROSS JOIN LATERAL (SELECT to_jsonb(s) ->> a.attname::text AS value) j
WHERE a.attrelid = 'wam.rfm_config'::regclass AND a.attnum > 0 AND NOT a.attisdropped AND a.attname <> 'id'
ORDER BY a.attnum;
COMMENT ON VIEW wam.rfm_settings IS 'order, RFM and lifetime-value settings with values and meaning';

REVOKE ALL ON wam.rfm_settings FROM PUBLIC;
GRANT SELECT ON wam.rfm_settings TO wam_definer;
GRANT SELECT ON wam.rfm_settings TO wam_reader;

-- configuration (admins)

CREATE FUNCTION wam.configure_rfm(setting text, value text) RETURNS text
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	col_type text;
	old_zone text := (SELECT s.day_time_zone FROM wam.rfm_config s);
	result text;
	constraint_name text;
	cast_state text;
BEGIN
	SELECT pg_catalog.format_type(a.atttypid, a.atttypmod) INTO col_type
	FROM pg_catalog.pg_attribute a
	WHERE a.attrelid = 'wam.rfm_config'::regclass AND a.attname = setting AND a.attnum > 0
	  AND NOT a.attisdropped AND a.attname <> 'id';
	IF NOT FOUND THEN
		RAISE EXCEPTION 'unknown setting "%"', setting
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = format('The settings are: %s.', (SELECT string_agg(r.setting, ', ') FROM wam.rfm_settings r));
	END IF;
	IF setting = 'currency' THEN
		value := upper(btrim(value));
		IF EXISTS (SELECT FROM wam.customer_order o WHERE o.currency IS DISTINCT FROM value) THEN
			RAISE EXCEPTION 'cannot change the program currency to %: orders in another currency exist',
				coalesce(value, 'NULL')
				USING ERRCODE = 'object_not_in_prerequisite_state',
					  DETAIL = format('For example order %s in %s.',
						  (SELECT min(o.order_id) FROM wam.customer_order o WHERE o.currency IS DISTINCT FROM value),
						  (SELECT coalesce(min(o.currency), 'no currency') FROM wam.customer_order o
						   WHERE o.currency IS DISTINCT FROM value)),
					  HINT = 'All orders of a program are in one currency.';
		END IF;
	ELSIF setting = 'day_time_zone' THEN
		IF value IS NULL OR NOT EXISTS (SELECT FROM pg_catalog.pg_timezone_names z WHERE z.name = value)
			AND NOT EXISTS (SELECT FROM pg_catalog.pg_timezone_abbrevs z WHERE z.abbrev = value) THEN
			RAISE EXCEPTION 'time zone "%" is not recognized', value
				USING ERRCODE = 'invalid_parameter_value',
					  HINT = 'Use a name from pg_timezone_names, e.g. Asia/Hong_Kong or UTC.';
		END IF;
	ELSIF setting = 'tier_scheme' THEN
		IF NOT EXISTS (SELECT FROM wam.rfm_scheme sc WHERE sc.name = value) THEN
			RAISE EXCEPTION 'tier scheme "%" does not exist', value
				USING ERRCODE = 'invalid_parameter_value',
					  HINT = format('The schemes are: %s. Define one with wam.define_rfm_scheme().',
									(SELECT string_agg(sc.name, ', ' ORDER BY sc.name) FROM wam.rfm_scheme sc));
		END IF;
	END IF;
	BEGIN
		EXECUTE format('UPDATE wam.rfm_config SET %I = $1::%s', setting, col_type) USING value;
	EXCEPTION WHEN data_exception THEN
		-- a value that is not of the setting's type (a cast error, 22P02 or
		-- 22003): say which setting and type instead of showing the internal UPDATE
		GET STACKED DIAGNOSTICS cast_state = RETURNED_SQLSTATE;
		RAISE EXCEPTION 'invalid value % for setting %', coalesce(quote_literal(value), 'NULL'), setting
			USING ERRCODE = cast_state,
				  DETAIL = format('The setting is of type %s: %s', col_type, SQLERRM),
				  HINT = format('The current value is %s; see wam.rfm_settings.',
								(SELECT coalesce(r.value, 'NULL') FROM wam.rfm_settings r WHERE r.setting = setting));
	WHEN check_violation OR not_null_violation THEN
		GET STACKED DIAGNOSTICS constraint_name = CONSTRAINT_NAME;
		RAISE EXCEPTION 'invalid value % for setting %', coalesce(quote_literal(value), 'NULL'), setting
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = CASE WHEN constraint_name <> '' THEN
							   format('The setting must satisfy %s.',
									  (SELECT pg_catalog.pg_get_constraintdef(c.oid) FROM pg_catalog.pg_constraint c
									   WHERE c.conrelid = 'wam.rfm_config'::regclass AND c.conname = constraint_name))
						   ELSE 'The setting must not be null.' END;
	END;
	EXECUTE format('SELECT %I::text FROM wam.rfm_config', setting) INTO result;
	IF setting = 'day_time_zone' AND result IS DISTINCT FROM old_zone THEN
		RAISE NOTICE 'purchase days are now counted in %: recomputing the statistics of % customers',
			result, (SELECT count(*) FROM wam.customer_stats);
		PERFORM wam.recompute_order_stats(NULL);
	ELSIF setting = 'mirror_tags' AND result = 'true' AND EXISTS (SELECT FROM wam.rfm_cut) THEN
		PERFORM wam.sync_rfm_tags();
	END IF;
	RETURN result;
END
$$;
COMMENT ON FUNCTION wam.configure_rfm(text, text) IS 'changes one RFM setting; returns the new value';

REVOKE EXECUTE ON FUNCTION wam.configure_rfm(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.configure_rfm(text, text) TO wam_admin;

CREATE FUNCTION wam.define_rfm_scheme(name text, rules jsonb, description text DEFAULT NULL)
	RETURNS TABLE (tier text, cells bigint)
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	rule jsonb;
	pos bigint;
	k text;
	rng numeric[];
	ranges numeric[];
	dims text[] := ARRAY['r', 'f', 'm', 'fm'];
	i integer;
	segs text[];
	known text[];
	positions integer[];
	bad integer;
	n_tiers integer;
BEGIN
	IF name IS NULL OR btrim(name) = '' THEN
		RAISE EXCEPTION 'scheme name must not be empty' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF EXISTS (SELECT FROM wam.rfm_scheme s WHERE s.name = name AND s.builtin) THEN
		RAISE EXCEPTION 'tier scheme "%" is built in and cannot be redefined', name
			USING ERRCODE = 'invalid_parameter_value', HINT = 'Define a scheme under another name.';
	END IF;
	IF rules IS NULL OR jsonb_typeof(rules) <> 'array' OR jsonb_array_length(rules) = 0 THEN
		RAISE EXCEPTION 'rules must be a non-empty JSON array of objects' USING ERRCODE = 'invalid_parameter_value',
			HINT = 'For example [{"tier": "VIP", "r": [4, 5], "f": [4, 5]}, ..., {"tier": "Others"}].';
	END IF;
	SELECT s.tiers INTO known FROM wam.rfm_scheme s WHERE s.name = 'segment map';

	DELETE FROM wam.rfm_tier_rule t WHERE t.scheme = name;
	INSERT INTO wam.rfm_scheme AS s (name, description) VALUES (name, description)
	ON CONFLICT ON CONSTRAINT rfm_scheme_pkey DO UPDATE SET description = EXCLUDED.description;

	FOR rule, pos IN SELECT e, o FROM jsonb_array_elements(rules) WITH ORDINALITY x(e, o) LOOP
		IF jsonb_typeof(rule) <> 'object' THEN
			RAISE EXCEPTION 'rule % is not a JSON object', pos USING ERRCODE = 'invalid_parameter_value';
		END IF;
		SELECT min(key) INTO k FROM jsonb_object_keys(rule) key
		WHERE key NOT IN ('tier', 'r', 'f', 'm', 'fm', 'segments');
		IF k IS NOT NULL THEN
			RAISE EXCEPTION 'rule % has an unknown key "%"', pos, k USING ERRCODE = 'invalid_parameter_value',
				HINT = 'The keys are tier, r, f, m, fm (ranges [low, high] or one number) and segments (names of the segment map).';
		END IF;
		IF jsonb_typeof(rule -> 'tier') IS DISTINCT FROM 'string' OR btrim(rule ->> 'tier') = '' THEN
			RAISE EXCEPTION 'rule % needs a tier name', pos USING ERRCODE = 'invalid_parameter_value';
		END IF;
		IF rule ->> 'tier' = 'Prospects' THEN
			RAISE EXCEPTION 'the tier name "Prospects" is reserved for customers without orders'
				USING ERRCODE = 'invalid_parameter_value';
		END IF;
		ranges := ARRAY[1, 5, 1, 5, 1, 5, 1, 5];
		FOR i IN 1 .. 4 LOOP
			CONTINUE WHEN NOT rule ? dims[i];
			rng := CASE jsonb_typeof(rule -> dims[i])
				WHEN 'number' THEN ARRAY[(rule ->> dims[i])::numeric, (rule ->> dims[i])::numeric]
				WHEN 'array' THEN CASE WHEN jsonb_array_length(rule -> dims[i]) = 2
										AND jsonb_typeof(rule -> dims[i] -> 0) = 'number'
										AND jsonb_typeof(rule -> dims[i] -> 1) = 'number'
								  THEN ARRAY[(rule -> dims[i] ->> 0)::numeric, (rule -> dims[i] ->> 1)::numeric] END
				END;
			IF rng IS NULL OR rng[1] > rng[2] OR rng[1] < 1 OR rng[2] > 5
			   OR (dims[i] <> 'fm' AND (rng[1] <> trunc(rng[1]) OR rng[2] <> trunc(rng[2]))) THEN
				RAISE EXCEPTION 'rule %: % must be a score from 1 to 5 or a range [low, high] of them, not %',
					pos, dims[i], rule -> dims[i] USING ERRCODE = 'invalid_parameter_value';
			END IF;
			ranges[2 * i - 1] := rng[1];
			ranges[2 * i] := rng[2];
		END LOOP;
		segs := NULL;
		IF rule ? 'segments' THEN
			IF jsonb_typeof(rule -> 'segments') <> 'array' OR jsonb_array_length(rule -> 'segments') = 0 THEN
				RAISE EXCEPTION 'rule %: segments must be a non-empty array of segment names', pos
					USING ERRCODE = 'invalid_parameter_value';
			END IF;
			segs := ARRAY(SELECT jsonb_array_elements_text(rule -> 'segments'));
			SELECT min(s) INTO k FROM unnest(segs) s WHERE s <> ALL (known);
			IF k IS NOT NULL THEN
				RAISE EXCEPTION 'rule %: unknown segment "%"', pos, k USING ERRCODE = 'invalid_parameter_value',
					HINT = format('The segments are: %s.', array_to_string(known, ', '));
			END IF;
		END IF;
		INSERT INTO wam.rfm_tier_rule (scheme, position, tier, r_min, r_max, f_min, f_max, m_min, m_max,
									   fm_min, fm_max, segments)
		VALUES (name, pos, btrim(rule ->> 'tier'), ranges[1], ranges[2], ranges[3], ranges[4], ranges[5], ranges[6],
				ranges[7], ranges[8], segs);
	END LOOP;

	positions := wam_internal.rfm_compile(name);
	SELECT min(c) INTO bad FROM unnest(positions) WITH ORDINALITY p(pos, c) WHERE p.pos IS NULL;
	IF bad IS NOT NULL THEN
		RAISE EXCEPTION 'no rule matches the scores R=% F=% M=%', (bad - 1) / 25 + 1, (bad - 1) / 5 % 5 + 1,
			(bad - 1) % 5 + 1
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Every customer needs a tier: end the rules with a catch-all such as {"tier": "Others"}.';
	END IF;
	SELECT min(t.position) INTO bad FROM wam.rfm_tier_rule t
	WHERE t.scheme = name AND t.position <> ALL (positions);
	IF bad IS NOT NULL THEN
		RAISE EXCEPTION 'rule % (tier "%") never applies: the rules before it match all its scores', bad,
			(SELECT t.tier FROM wam.rfm_tier_rule t WHERE t.scheme = name AND t.position = bad)
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	SELECT count(DISTINCT t.tier) INTO n_tiers FROM wam.rfm_tier_rule t WHERE t.scheme = name;
	IF n_tiers < 5 OR n_tiers > 7 THEN
		RAISE EXCEPTION 'a tier scheme has 5 to 7 tiers, not %', n_tiers
			USING ERRCODE = 'invalid_parameter_value', DETAIL = 'R-R1: customers are divided into 5-7 tiers.';
	END IF;
	PERFORM wam_internal.rfm_store_scheme(name);
	RETURN QUERY
	SELECT t.tier, count(*) FROM wam.rfm_scheme s, unnest(s.tier_map) t(tier)
	WHERE s.name = name GROUP BY t.tier ORDER BY array_position((SELECT s2.tiers FROM wam.rfm_scheme s2 WHERE s2.name = name), t.tier);
END
$$;
COMMENT ON FUNCTION wam.define_rfm_scheme(text, jsonb, text) IS 'defines or replaces a tier scheme of 5 to 7 tiers';

REVOKE EXECUTE ON FUNCTION wam.define_rfm_scheme(text, jsonb, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.define_rfm_scheme(text, jsonb, text) TO wam_admin;

CREATE FUNCTION wam.rfm_tier(r integer, f integer, m integer, scheme text DEFAULT NULL) RETURNS text
	LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, wam, pg_temp
AS $$
	SELECT s.tier_map[(r - 1) * 25 + (f - 1) * 5 + m]
	FROM wam.rfm_scheme s
	WHERE s.name = coalesce(scheme, (SELECT c.tier_scheme FROM wam.rfm_config c))
	  AND r BETWEEN 1 AND 5 AND f BETWEEN 1 AND 5 AND m BETWEEN 1 AND 5
$$;
COMMENT ON FUNCTION wam.rfm_tier(integer, integer, integer, text) IS 'tier of R, F, M scores in a scheme';

REVOKE EXECUTE ON FUNCTION wam.rfm_tier(integer, integer, integer, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.rfm_tier(integer, integer, integer, text) TO wam_reader;

-- RFM refresh and scores

CREATE FUNCTION wam.refresh_rfm(as_of timestamptz DEFAULT now())
	RETURNS TABLE (tier text, customers bigint)
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	started timestamptz := clock_timestamp();
	cfg wam.rfm_config;
	res wam.rfm_cut_result;
	src text := 'statistics';
	prospects bigint;
BEGIN
	IF as_of IS NULL THEN
		RAISE EXCEPTION 'as_of must not be null' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	SELECT * INTO cfg FROM wam.rfm_config;
	IF as_of > now() + cfg.future_tolerance OR NOT isfinite(as_of) THEN
		RAISE EXCEPTION 'cannot score as of %: it must be a finite time, not in the future', as_of
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	res := (SELECT wam_internal.rfm_cut_points(as_of, s.first_order_at, s.last_order_at, s.orders, s.total_amount, s.units)
			FROM wam.customer_stats s);
	IF res.latest > as_of THEN
		-- some orders are after as_of: score the base as it was then, from the orders
		src := 'orders';
		res := (SELECT wam_internal.rfm_cut_points(as_of, o.first_at, o.last_at, o.orders, o.total, o.units)
				FROM (SELECT x.customer_id, min(x.ordered_at) AS first_at, max(x.ordered_at) AS last_at,
							 count(*) AS orders, sum(x.amount) AS total, sum(x.units) AS units
					  FROM wam.customer_order x WHERE x.ordered_at <= as_of GROUP BY x.customer_id) o);
	END IF;
	IF res.customers = 0 THEN
		RAISE EXCEPTION 'no customer has ordered %', CASE src WHEN 'orders' THEN 'by ' || as_of ELSE 'yet' END
			USING ERRCODE = 'object_not_in_prerequisite_state',
				  HINT = 'Scores are quintiles of the customers with orders: record orders with wam.record_order() first.';
	END IF;
	INSERT INTO wam.rfm_cut AS k (refreshed_at, as_of, source, customers, r_cuts, f_cuts, m_cuts, cells, orders,
								  revenue, unit_price, repeat_orders_per_year, refresh_ms)
	VALUES (now(), as_of, src, res.customers, res.r_cuts, res.f_cuts, res.m_cuts, res.cells, res.orders,
			round(res.revenue::numeric, 2), round(res.unit_price::numeric, 4), res.repeat_orders_per_year,
			1000 * extract(epoch FROM clock_timestamp() - started))
	ON CONFLICT (id) DO UPDATE
	SET refreshed_at = EXCLUDED.refreshed_at, as_of = EXCLUDED.as_of, source = EXCLUDED.source,
		customers = EXCLUDED.customers, r_cuts = EXCLUDED.r_cuts, f_cuts = EXCLUDED.f_cuts,
		m_cuts = EXCLUDED.m_cuts, cells = EXCLUDED.cells, orders = EXCLUDED.orders, revenue = EXCLUDED.revenue,
		unit_price = EXCLUDED.unit_price, repeat_orders_per_year = EXCLUDED.repeat_orders_per_year,
		refresh_ms = EXCLUDED.refresh_ms;
	prospects := greatest(wam.segment_cardinality(wam.all_customers()) - res.customers, 0);
	IF cfg.mirror_tags THEN
		PERFORM wam.sync_rfm_tags();
	END IF;
	RETURN QUERY
	WITH counts AS (
		SELECT sc.tier_map[c.i] AS tier, sum(res.cells[c.i])::bigint AS n
		FROM wam.rfm_scheme sc, generate_subscripts(sc.tier_map, 1) c(i)
		WHERE sc.name = cfg.tier_scheme
		GROUP BY 1
	)
	SELECT x.tier, x.n FROM (
		SELECT t.tier, coalesce(c.n, 0) AS n, t.pos
		FROM wam.rfm_scheme sc, unnest(sc.tiers) WITH ORDINALITY t(tier, pos)
		LEFT JOIN counts c ON c.tier = t.tier
		WHERE sc.name = cfg.tier_scheme
		UNION ALL
		SELECT 'Prospects', prospects, 1000) x
	ORDER BY x.pos;
END
$$;
COMMENT ON FUNCTION wam.refresh_rfm(timestamptz) IS 'scores every buyer 1-5 by quintiles; returns customers per tier';

REVOKE EXECUTE ON FUNCTION wam.refresh_rfm(timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.refresh_rfm(timestamptz) TO wam_admin;

CREATE FUNCTION wam.rfm_score(customer bigint) RETURNS TABLE (r integer, f integer, m integer, tier text)
	LANGUAGE plpgsql STABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
BEGIN
	IF NOT EXISTS (SELECT FROM wam.customer c WHERE c.id = customer) THEN
		RAISE EXCEPTION 'customer % does not exist', customer USING ERRCODE = 'no_data_found';
	END IF;
	IF NOT EXISTS (SELECT FROM wam.rfm_cut) THEN
		RAISE EXCEPTION 'RFM scores are not computed yet'
			USING ERRCODE = 'object_not_in_prerequisite_state',
				  HINT = 'An administrator runs wam.refresh_rfm() (e.g. nightly); scores stay current in between.';
	END IF;
	RETURN QUERY SELECT v.r, v.f, v.m, v.tier FROM wam.customer_rfm v WHERE v.customer_id = customer;
	IF NOT FOUND THEN
		RETURN QUERY SELECT NULL::integer, NULL::integer, NULL::integer, 'Prospects'::text;
	END IF;
END
$$;
COMMENT ON FUNCTION wam.rfm_score(bigint) IS 'a customer''s current R, F, M scores and tier';

REVOKE EXECUTE ON FUNCTION wam.rfm_score(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.rfm_score(bigint) TO wam_reader;

CREATE FUNCTION wam.value_report()
	RETURNS TABLE (tier text, customers bigint, customer_share numeric, revenue numeric, revenue_share numeric,
				   average_revenue numeric)
	LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	buyers bigint;
	total numeric;
	scheme text := (SELECT c.tier_scheme FROM wam.rfm_config c);
BEGIN
	IF NOT EXISTS (SELECT FROM wam.rfm_cut) THEN
		RAISE EXCEPTION 'RFM scores are not computed yet'
			USING ERRCODE = 'object_not_in_prerequisite_state', HINT = 'An administrator runs wam.refresh_rfm().';
	END IF;
	SELECT count(*), coalesce(sum(s.total_amount), 0) INTO buyers, total FROM wam.customer_stats s;
	RETURN QUERY
	WITH per_tier AS (
		SELECT v.tier, count(*) AS n, sum(v.total_amount) AS revenue FROM wam.customer_rfm v GROUP BY v.tier
	), top AS (
		SELECT count(*) AS n, coalesce(sum(t.total_amount), 0) AS revenue
		FROM (SELECT s.total_amount FROM wam.customer_stats s
			  ORDER BY s.total_amount DESC, s.customer_id LIMIT ceil(0.2 * buyers)::bigint) t
	), rows AS (
		SELECT t.tier, coalesce(p.n, 0) AS n, coalesce(p.revenue, 0) AS revenue, t.pos
		FROM wam.rfm_scheme sc, unnest(sc.tiers) WITH ORDINALITY t(tier, pos)
		LEFT JOIN per_tier p ON p.tier = t.tier
		WHERE sc.name = scheme
		UNION ALL
		SELECT 'Prospects', greatest(wam.segment_cardinality(wam.all_customers()) - buyers, 0), 0, 1000
		UNION ALL
		SELECT 'top 20% of buyers', top.n, top.revenue, 1001 FROM top
		UNION ALL
		SELECT 'all buyers', buyers, total, 1002
	)
	SELECT x.tier, x.n,
		   CASE WHEN x.pos <> 1000 AND buyers > 0 THEN round(100.0 * x.n / buyers, 1) END,
		   round(x.revenue, 2),
		   CASE WHEN total > 0 THEN round(100 * x.revenue / total, 1) END,
		   CASE WHEN x.n > 0 AND x.pos <> 1000 THEN round(x.revenue / x.n, 2) END
	FROM rows x ORDER BY x.pos;
END
$$;
COMMENT ON FUNCTION wam.value_report() IS 'buyers and revenue per tier, and the top 20% revenue share';

REVOKE EXECUTE ON FUNCTION wam.value_report() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.value_report() TO wam_reader;

-- tier tags (dimension spending power)

CREATE FUNCTION wam.rfm_tier_tag(tier text) RETURNS text
	LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, wam, pg_temp
	RETURN (SELECT s.tag_prefix FROM wam.rfm_config s) || tier;
COMMENT ON FUNCTION wam.rfm_tier_tag(text) IS 'name of the tag that mirrors a tier';

REVOKE EXECUTE ON FUNCTION wam.rfm_tier_tag(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.rfm_tier_tag(text) TO wam_reader;

CREATE FUNCTION wam.sync_rfm_tags() RETURNS TABLE (tag text, added bigint, removed bigint)
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	scheme text := (SELECT c.tier_scheme FROM wam.rfm_config c);
	tags text[];
	adds bigint[];
	rems bigint[];
	t record;
	x record;
	stray wam.segment;
BEGIN
	IF NOT EXISTS (SELECT FROM wam.rfm_cut) THEN
		RAISE EXCEPTION 'RFM scores are not computed yet'
			USING ERRCODE = 'object_not_in_prerequisite_state', HINT = 'Run wam.refresh_rfm() first.';
	END IF;
	tags := ARRAY(SELECT wam.rfm_tier_tag(u.tier)
				  FROM wam.rfm_scheme sc, unnest(sc.tiers) WITH ORDINALITY u(tier, pos)
				  WHERE sc.name = scheme ORDER BY u.pos);
	adds := array_fill(0::bigint, ARRAY[cardinality(tags)]);
	rems := adds;
	FOR i IN 1 .. cardinality(tags) LOOP
		IF NOT EXISTS (SELECT FROM wam.tag g WHERE g.normalized_name = wam.normalize_tag_name(tags[i])) THEN
			PERFORM wam.create_tag(tags[i], 'spending power', NULL, NULL,
								   format('RFM tier of scheme "%s" (kept in step by wam.sync_rfm_tags)', scheme));
		END IF;
	END LOOP;
	FOR t IN
		SELECT u.pos, wam.rfm_tier_tag(u.tier) AS tag, coalesce(m.who, '{}'::wam.segment) AS who
		FROM wam.rfm_scheme sc, unnest(sc.tiers) WITH ORDINALITY u(tier, pos)
		LEFT JOIN (SELECT v.tier, wam.segment_agg(v.customer_id) AS who FROM wam.customer_rfm v GROUP BY v.tier) m
			ON m.tier = u.tier
		WHERE sc.name = scheme
		ORDER BY u.pos
	LOOP
		FOR x IN SELECT * FROM wam.retag_customers(t.who, ARRAY[t.tag], array_remove(tags, t.tag), 'rule') LOOP
			adds[array_position(tags, x.tag)] := adds[array_position(tags, x.tag)] + x.added;
			rems[array_position(tags, x.tag)] := rems[array_position(tags, x.tag)] + x.removed;
		END LOOP;
	END LOOP;
	-- customers holding a tier tag without having orders any more
	SELECT coalesce(wam.segment_union_agg(wam.tag_members(g)), '{}') INTO stray FROM unnest(tags) g;
	stray := stray OPERATOR(wam.-) (SELECT coalesce(wam.segment_agg(s.customer_id), '{}') FROM wam.customer_stats s);
	IF NOT wam.segment_is_empty(stray) THEN
		FOR x IN SELECT * FROM wam.retag_customers(stray, '{}', tags, 'rule') LOOP
			rems[array_position(tags, x.tag)] := rems[array_position(tags, x.tag)] + x.removed;
		END LOOP;
	END IF;
	RETURN QUERY SELECT u.tag, adds[u.pos], rems[u.pos] FROM unnest(tags) WITH ORDINALITY u(tag, pos) ORDER BY u.pos;
END
$$;
COMMENT ON FUNCTION wam.sync_rfm_tags() IS 'mirrors the tiers into tags; returns the changes per tag';

REVOKE EXECUTE ON FUNCTION wam.sync_rfm_tags() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.sync_rfm_tags() TO wam_admin;

CREATE FUNCTION wam_internal.rfm_mirror_customer(customer bigint, old_tier text, new_tier text) RETURNS void
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	add_tag text := wam.rfm_tier_tag(new_tier);
	remove_tag text := wam.rfm_tier_tag(old_tier);
BEGIN
	-- only tags that rfm_sync_tags created are touched
	IF add_tag IS NOT NULL AND NOT EXISTS (SELECT FROM wam.tag g WHERE g.normalized_name = wam.normalize_tag_name(add_tag)) THEN
		add_tag := NULL;
	END IF;
	IF remove_tag IS NOT NULL AND NOT EXISTS (SELECT FROM wam.tag g WHERE g.normalized_name = wam.normalize_tag_name(remove_tag)) THEN
		remove_tag := NULL;
	END IF;
	IF add_tag IS NOT NULL OR remove_tag IS NOT NULL THEN
		PERFORM wam.retag_customers(wam.segment(ARRAY[customer]),
						  CASE WHEN add_tag IS NULL THEN '{}' ELSE ARRAY[add_tag] END,
						  CASE WHEN remove_tag IS NULL THEN '{}' ELSE ARRAY[remove_tag] END, 'rule');
	END IF;
END
$$;
COMMENT ON FUNCTION wam_internal.rfm_mirror_customer(bigint, text, text) IS 'internal: moves one customer from the tag of their old tier to that of their new tier';

REVOKE EXECUTE ON FUNCTION wam_internal.rfm_mirror_customer(bigint, text, text) FROM PUBLIC;
-- src/sql/clv.sql: lifetime value (BG/NBD and Gamma-Gamma) and cost caps

-- lifetime-value fit

CREATE TABLE wam.clv_fit (
	id boolean PRIMARY KEY DEFAULT true CONSTRAINT clv_fit_one_row CHECK (id),
	fitted_at timestamptz NOT NULL,
	calibration_end timestamptz NOT NULL,
	time_unit interval NOT NULL,
	customers bigint NOT NULL,
	repeat_buyers bigint NOT NULL,
	bgnbd float8[] NOT NULL CONSTRAINT clv_fit_bgnbd CHECK (cardinality(bgnbd) = 4),
	gammagamma float8[] NOT NULL CONSTRAINT clv_fit_gammagamma CHECK (cardinality(gammagamma) = 3),
	bgnbd_log_likelihood float8 NOT NULL,
	gammagamma_log_likelihood float8 NOT NULL,
	bgnbd_penalizer float8 NOT NULL DEFAULT 0,
	gammagamma_penalizer float8 NOT NULL DEFAULT 0,
	evaluations integer NOT NULL,
	fit_ms float8 NOT NULL
);
COMMENT ON TABLE wam.clv_fit IS 'the last successful lifetime-value fit';

REVOKE ALL ON wam.clv_fit FROM PUBLIC;
GRANT SELECT ON wam.clv_fit TO wam_reader;
GRANT SELECT, INSERT, UPDATE ON wam.clv_fit TO wam_definer;

CREATE VIEW wam.clv_parameter AS
SELECT x.model, x.parameter, x.value, x.penalizer
FROM wam.clv_fit f
CROSS JOIN LATERAL (VALUES
	(1, 'bgnbd', 'r', f.bgnbd[1], f.bgnbd_penalizer), (2, 'bgnbd', 'alpha', f.bgnbd[2], f.bgnbd_penalizer),
	(3, 'bgnbd', 'a', f.bgnbd[3], f.bgnbd_penalizer), (4, 'bgnbd', 'b', f.bgnbd[4], f.bgnbd_penalizer),
	(5, 'gammagamma', 'p', f.gammagamma[1], f.gammagamma_penalizer),
	(6, 'gammagamma', 'q', f.gammagamma[2], f.gammagamma_penalizer),
	(7, 'gammagamma', 'v', f.gammagamma[3], f.gammagamma_penalizer)) x(pos, model, parameter, value, penalizer)
ORDER BY x.pos;
COMMENT ON VIEW wam.clv_parameter IS 'the fitted lifetime-value parameters, one row each';

REVOKE ALL ON wam.clv_parameter FROM PUBLIC;
GRANT SELECT ON wam.clv_parameter TO wam_definer;
GRANT SELECT ON wam.clv_parameter TO wam_reader;

-- C functions: lifetime-value models

CREATE FUNCTION wam_internal.bgnbd_fit_trans(internal, float8, float8, float8) RETURNS internal
	AS 'MODULE_PATHNAME', 'wam_bgnbd_fit_trans' LANGUAGE C IMMUTABLE CALLED ON NULL INPUT PARALLEL SAFE;
CREATE FUNCTION wam_internal.bgnbd_fit_final(internal) RETURNS float8[]
	AS 'MODULE_PATHNAME', 'wam_bgnbd_fit_final' LANGUAGE C IMMUTABLE CALLED ON NULL INPUT PARALLEL SAFE;
CREATE AGGREGATE wam.bgnbd_fit(frequency float8, recency float8, "T" float8) (
	SFUNC = wam_internal.bgnbd_fit_trans,
	STYPE = internal,
	FINALFUNC = wam_internal.bgnbd_fit_final,
	PARALLEL = SAFE
);
COMMENT ON FUNCTION wam_internal.bgnbd_fit_trans(internal, float8, float8, float8) IS 'internal: transition function of wam.bgnbd_fit (collects one customer)';
COMMENT ON FUNCTION wam_internal.bgnbd_fit_final(internal) IS 'internal: final function of wam.bgnbd_fit (the maximum-likelihood fit)';

REVOKE EXECUTE ON FUNCTION wam_internal.bgnbd_fit_final(internal) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam_internal.bgnbd_fit_final(internal) TO wam_reader;
COMMENT ON AGGREGATE wam.bgnbd_fit(float8, float8, float8) IS 'maximum-likelihood BG/NBD fit over customer histories';

CREATE FUNCTION wam_internal.bgnbd_fit_trans(internal, float8, float8, float8, float8) RETURNS internal
	AS 'MODULE_PATHNAME', 'wam_bgnbd_fit_trans' LANGUAGE C IMMUTABLE CALLED ON NULL INPUT PARALLEL SAFE;
CREATE AGGREGATE wam.bgnbd_fit(frequency float8, recency float8, "T" float8, penalizer float8) (
	SFUNC = wam_internal.bgnbd_fit_trans,
	STYPE = internal,
	FINALFUNC = wam_internal.bgnbd_fit_final,
	PARALLEL = SAFE
);
COMMENT ON FUNCTION wam_internal.bgnbd_fit_trans(internal, float8, float8, float8, float8) IS 'internal: transition function of wam.bgnbd_fit with a penalizer';

REVOKE EXECUTE ON FUNCTION wam_internal.bgnbd_fit_trans(internal, float8, float8, float8) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION wam_internal.bgnbd_fit_trans(internal, float8, float8, float8, float8) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam_internal.bgnbd_fit_trans(internal, float8, float8, float8) TO wam_reader;
GRANT EXECUTE ON FUNCTION wam_internal.bgnbd_fit_trans(internal, float8, float8, float8, float8) TO wam_reader;
COMMENT ON AGGREGATE wam.bgnbd_fit(float8, float8, float8, float8) IS 'BG/NBD fit with a penalizer (NULL: only when maximum likelihood degenerates)';

REVOKE EXECUTE ON FUNCTION wam.bgnbd_fit(float8, float8, float8) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION wam.bgnbd_fit(float8, float8, float8, float8) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.bgnbd_fit(float8, float8, float8) TO wam_reader;
GRANT EXECUTE ON FUNCTION wam.bgnbd_fit(float8, float8, float8, float8) TO wam_reader;

CREATE FUNCTION wam_internal.gammagamma_fit_trans(internal, float8, float8) RETURNS internal
	AS 'MODULE_PATHNAME', 'wam_gammagamma_fit_trans' LANGUAGE C IMMUTABLE CALLED ON NULL INPUT PARALLEL SAFE;
CREATE FUNCTION wam_internal.gammagamma_fit_final(internal) RETURNS float8[]
	AS 'MODULE_PATHNAME', 'wam_gammagamma_fit_final' LANGUAGE C IMMUTABLE CALLED ON NULL INPUT PARALLEL SAFE;
CREATE AGGREGATE wam.gammagamma_fit(frequency float8, monetary_value float8) (
	SFUNC = wam_internal.gammagamma_fit_trans,
	STYPE = internal,
	FINALFUNC = wam_internal.gammagamma_fit_final,
	PARALLEL = SAFE
);
COMMENT ON FUNCTION wam_internal.gammagamma_fit_trans(internal, float8, float8) IS 'internal: transition function of wam.gammagamma_fit (collects one repeat buyer)';
COMMENT ON FUNCTION wam_internal.gammagamma_fit_final(internal) IS 'internal: final function of wam.gammagamma_fit (the maximum-likelihood fit)';

REVOKE EXECUTE ON FUNCTION wam_internal.gammagamma_fit_final(internal) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam_internal.gammagamma_fit_final(internal) TO wam_reader;
COMMENT ON AGGREGATE wam.gammagamma_fit(float8, float8) IS 'maximum-likelihood Gamma-Gamma fit over repeat buyers';

CREATE FUNCTION wam_internal.gammagamma_fit_trans(internal, float8, float8, float8) RETURNS internal
	AS 'MODULE_PATHNAME', 'wam_gammagamma_fit_trans' LANGUAGE C IMMUTABLE CALLED ON NULL INPUT PARALLEL SAFE;
CREATE AGGREGATE wam.gammagamma_fit(frequency float8, monetary_value float8, penalizer float8) (
	SFUNC = wam_internal.gammagamma_fit_trans,
	STYPE = internal,
	FINALFUNC = wam_internal.gammagamma_fit_final,
	PARALLEL = SAFE
);
COMMENT ON FUNCTION wam_internal.gammagamma_fit_trans(internal, float8, float8, float8) IS 'internal: transition function of wam.gammagamma_fit with a penalizer';

REVOKE EXECUTE ON FUNCTION wam_internal.gammagamma_fit_trans(internal, float8, float8) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION wam_internal.gammagamma_fit_trans(internal, float8, float8, float8) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam_internal.gammagamma_fit_trans(internal, float8, float8) TO wam_reader;
GRANT EXECUTE ON FUNCTION wam_internal.gammagamma_fit_trans(internal, float8, float8, float8) TO wam_reader;
COMMENT ON AGGREGATE wam.gammagamma_fit(float8, float8, float8) IS 'Gamma-Gamma fit with a penalizer (NULL: only when maximum likelihood degenerates)';

REVOKE EXECUTE ON FUNCTION wam.gammagamma_fit(float8, float8) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION wam.gammagamma_fit(float8, float8, float8) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.gammagamma_fit(float8, float8) TO wam_reader;
GRANT EXECUTE ON FUNCTION wam.gammagamma_fit(float8, float8, float8) TO wam_reader;

CREATE FUNCTION wam.hyp2f1(a float8, b float8, c float8, z float8) RETURNS float8
	AS 'MODULE_PATHNAME', 'wam_hyp2f1' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION wam.hyp2f1(float8, float8, float8, float8) IS 'Gaussian hypergeometric function 2F1(a, b; c; z), 0 <= z < 1';

REVOKE EXECUTE ON FUNCTION wam.hyp2f1(float8, float8, float8, float8) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.hyp2f1(float8, float8, float8, float8) TO wam_reader;

CREATE FUNCTION wam.bgnbd_p_alive(params float8[], frequency float8, recency float8, "T" float8) RETURNS float8
	AS 'MODULE_PATHNAME', 'wam_bgnbd_p_alive' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION wam.bgnbd_p_alive(float8[], float8, float8, float8) IS 'BG/NBD probability that a customer is still active';

REVOKE EXECUTE ON FUNCTION wam.bgnbd_p_alive(float8[], float8, float8, float8) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.bgnbd_p_alive(float8[], float8, float8, float8) TO wam_reader;

CREATE FUNCTION wam.bgnbd_expected_purchases(params float8[], frequency float8, recency float8, "T" float8, t float8)
	RETURNS float8
	AS 'MODULE_PATHNAME', 'wam_bgnbd_expected_purchases' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION wam.bgnbd_expected_purchases(float8[], float8, float8, float8, float8) IS 'BG/NBD expected purchases in the next t time units';

REVOKE EXECUTE ON FUNCTION wam.bgnbd_expected_purchases(float8[], float8, float8, float8, float8) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.bgnbd_expected_purchases(float8[], float8, float8, float8, float8) TO wam_reader;

CREATE FUNCTION wam.gammagamma_expected_spend(params float8[], frequency float8, monetary_value float8) RETURNS float8
	AS 'MODULE_PATHNAME', 'wam_gammagamma_expected_spend' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION wam.gammagamma_expected_spend(float8[], float8, float8) IS 'Gamma-Gamma expected spend per purchase';

REVOKE EXECUTE ON FUNCTION wam.gammagamma_expected_spend(float8[], float8, float8) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.gammagamma_expected_spend(float8[], float8, float8) TO wam_reader;

-- lifetime value

CREATE FUNCTION wam_internal.clv_unit_days(calibration_end timestamptz, time_unit interval) RETURNS float8
	LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, wam, pg_temp
AS $$
DECLARE
	unit_days float8 := extract(epoch FROM time_unit) / 86400;
BEGIN
	PERFORM wam_internal.refuse_null(calibration_end IS NULL OR time_unit IS NULL, 'calibration end and time unit');
	IF NOT unit_days > 0 THEN
		RAISE EXCEPTION 'time unit must be a positive interval, not %', time_unit USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF NOT isfinite(calibration_end) THEN
		RAISE EXCEPTION 'calibration end must be finite, not %', calibration_end USING ERRCODE = 'invalid_parameter_value';
	END IF;
	RETURN unit_days;
END
$$;
COMMENT ON FUNCTION wam_internal.clv_unit_days(timestamptz, interval) IS 'internal: checks the calibration end and time unit of a lifetime-value summary; the time unit in days';

REVOKE EXECUTE ON FUNCTION wam_internal.clv_unit_days(timestamptz, interval) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam_internal.clv_unit_days(timestamptz, interval) TO wam_reader;

-- The summary from the statistics, for a calibration period that includes
-- every order.  A plain SQL function (no SET clause) so that it is inlined
-- into the callers' queries, which stream it into the fitting aggregates.
CREATE FUNCTION wam_internal.clv_summary_from_stats(cal_day date, unit_days float8)
	RETURNS TABLE (customer_id bigint, frequency integer, recency float8, "T" float8, monetary_value float8)
	LANGUAGE sql STABLE PARALLEL SAFE
AS $$
	SELECT s.customer_id, s.order_days - 1, (s.last_day - s.first_day) / unit_days,
		   (cal_day - s.first_day) / unit_days,
		   CASE WHEN s.order_days > 1
				THEN ((s.total_amount - s.first_day_amount) / (s.order_days - 1))::float8 ELSE 0 END
	FROM wam.customer_stats s
$$;
COMMENT ON FUNCTION wam_internal.clv_summary_from_stats(date, float8) IS 'internal: wam.clv_summary from the purchase statistics (calibration day on or after every purchase day; time unit in days)';

REVOKE EXECUTE ON FUNCTION wam_internal.clv_summary_from_stats(date, float8) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam_internal.clv_summary_from_stats(date, float8) TO wam_reader;

CREATE FUNCTION wam.clv_summary(calibration_end timestamptz DEFAULT now(), time_unit interval DEFAULT '1 day')
	RETURNS TABLE (customer_id bigint, frequency integer, recency float8, "T" float8, monetary_value float8)
	LANGUAGE plpgsql STABLE PARALLEL SAFE SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	zone text := (SELECT s.day_time_zone FROM wam.rfm_config s);
	cal_day date;
	unit_days float8;
BEGIN
	unit_days := wam_internal.clv_unit_days(calibration_end, time_unit);
	cal_day := (calibration_end AT TIME ZONE zone)::date;
	IF coalesce((SELECT max(s.last_day) FROM wam.customer_stats s), cal_day) <= cal_day THEN
		-- every order is in the calibration period: read the statistics
		RETURN QUERY SELECT * FROM wam_internal.clv_summary_from_stats(cal_day, unit_days);
	ELSE
		RETURN QUERY
		SELECT d.customer_id, (count(*) - 1)::integer, (max(d.day) - min(d.day)) / unit_days,
			   (cal_day - min(d.day)) / unit_days,
			   CASE WHEN count(*) > 1
					THEN ((sum(d.amount) - sum(d.amount) FILTER (WHERE d.day = d.first_day)) / (count(*) - 1))::float8
					ELSE 0 END
		FROM (SELECT y.customer_id, y.day, y.amount, min(y.day) OVER (PARTITION BY y.customer_id) AS first_day
			  FROM (SELECT x.customer_id, (x.ordered_at AT TIME ZONE zone)::date AS day, sum(x.amount) AS amount
					FROM wam.customer_order x
					WHERE x.ordered_at < ((cal_day + 1)::timestamp AT TIME ZONE zone)
					GROUP BY 1, 2) y) d
		GROUP BY d.customer_id;
	END IF;
END
$$;
COMMENT ON FUNCTION wam.clv_summary(timestamptz, interval) IS 'per buyer: frequency, recency, T and monetary value for the models';

REVOKE EXECUTE ON FUNCTION wam.clv_summary(timestamptz, interval) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.clv_summary(timestamptz, interval) TO wam_reader;

CREATE FUNCTION wam.fit_clv(calibration_end timestamptz DEFAULT now(), time_unit interval DEFAULT '1 day',
							penalizer float8 DEFAULT NULL)
	-- model, parameter, value, penalizer (0: maximum likelihood)
	RETURNS SETOF wam.clv_parameter
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	started timestamptz := clock_timestamp();
	cfg wam.rfm_config;
	n_customers bigint;
	n_repeat bigint;
	bg float8[];
	gg float8[];
	unit_days float8;
	cal_day date;
	from_stats boolean;
BEGIN
	SELECT * INTO cfg FROM wam.rfm_config;
	unit_days := wam_internal.clv_unit_days(calibration_end, time_unit);
	IF calibration_end > now() + cfg.future_tolerance THEN
		RAISE EXCEPTION 'calibration end % is in the future', calibration_end USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF NOT (penalizer >= 0 AND penalizer < 'Infinity') THEN
		RAISE EXCEPTION 'penalizer must be a finite number of at least 0, not %', penalizer
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = '0 fits by maximum likelihood; 0.001 to 0.1 suits small samples; NULL (the default) chooses.';
	END IF;
	cal_day := (calibration_end AT TIME ZONE cfg.day_time_zone)::date;
	-- Every order in the calibration period (the usual case, calibration_end
	-- = now()): fit straight from the statistics; else from the orders.
	SELECT coalesce(max(s.last_day) <= cal_day, true), count(*), count(*) FILTER (WHERE s.order_days > 1)
	INTO from_stats, n_customers, n_repeat
	FROM wam.customer_stats s;
	IF NOT from_stats THEN
		SELECT count(*), count(*) FILTER (WHERE s.frequency > 0) INTO n_customers, n_repeat
		FROM wam.clv_summary(calibration_end, time_unit) s;
	END IF;
	IF n_customers < cfg.clv_min_customers OR n_repeat < cfg.clv_min_repeat_buyers THEN
		RAISE EXCEPTION 'too few customers to fit the lifetime-value models: % with orders and % repeat buyers',
			n_customers, n_repeat
			USING ERRCODE = 'object_not_in_prerequisite_state',
				  DETAIL = format('A fit needs at least %s customers with orders and %s repeat buyers (settings clv_min_customers, clv_min_repeat_buyers).',
								  cfg.clv_min_customers, cfg.clv_min_repeat_buyers),
				  HINT = 'Until then wam.clv() uses the simple estimate: average order value x purchase frequency x horizon.';
	END IF;
	IF from_stats THEN
		SELECT wam.bgnbd_fit(s.frequency, s.recency, s."T", penalizer),
			   wam.gammagamma_fit(s.frequency, s.monetary_value, penalizer) FILTER (WHERE s.monetary_value > 0)
		INTO bg, gg
		FROM wam_internal.clv_summary_from_stats(cal_day, unit_days) s;
	ELSE
		SELECT wam.bgnbd_fit(s.frequency, s.recency, s."T", penalizer),
			   wam.gammagamma_fit(s.frequency, s.monetary_value, penalizer) FILTER (WHERE s.monetary_value > 0)
		INTO bg, gg
		FROM wam.clv_summary(calibration_end, time_unit) s;
	END IF;
	IF gg IS NULL THEN
		RAISE EXCEPTION 'cannot fit Gamma-Gamma: no repeat buyer spent anything on repeat purchases'
			USING ERRCODE = 'data_exception';
	END IF;
	IF gg[2] <= 1 THEN
		RAISE EXCEPTION 'the Gamma-Gamma fit has q = % <= 1: the mean spend per purchase is not finite',
			round(gg[2]::numeric, 4)
			USING ERRCODE = 'data_exception',
				  HINT = CASE WHEN gg[7] > 0
							  THEN format('The penalty shrinks q as well: try a smaller penalizer than %s, or NULL to choose one.', gg[7])
							  ELSE 'Spend per purchase is too heavy-tailed for the model; check for outlier orders.' END;
	END IF;
	INSERT INTO wam.clv_fit AS f (fitted_at, calibration_end, time_unit, customers, repeat_buyers, bgnbd, gammagamma,
								  bgnbd_log_likelihood, gammagamma_log_likelihood, bgnbd_penalizer,
								  gammagamma_penalizer, evaluations, fit_ms)
	VALUES (now(), calibration_end, time_unit, bg[7]::bigint, bg[8]::bigint, bg[1:4], gg[1:3], bg[5], gg[4],
			bg[9], gg[7], (bg[6] + gg[5])::integer, 1000 * extract(epoch FROM clock_timestamp() - started))
	ON CONFLICT (id) DO UPDATE
	SET fitted_at = EXCLUDED.fitted_at, calibration_end = EXCLUDED.calibration_end, time_unit = EXCLUDED.time_unit,
		customers = EXCLUDED.customers, repeat_buyers = EXCLUDED.repeat_buyers, bgnbd = EXCLUDED.bgnbd,
		gammagamma = EXCLUDED.gammagamma, bgnbd_log_likelihood = EXCLUDED.bgnbd_log_likelihood,
		gammagamma_log_likelihood = EXCLUDED.gammagamma_log_likelihood,
		bgnbd_penalizer = EXCLUDED.bgnbd_penalizer, gammagamma_penalizer = EXCLUDED.gammagamma_penalizer,
		evaluations = EXCLUDED.evaluations, fit_ms = EXCLUDED.fit_ms;
	RETURN QUERY SELECT p.* FROM wam.clv_parameter p;
END
$$;
COMMENT ON FUNCTION wam.fit_clv(timestamptz, interval, float8) IS 'fits BG/NBD and Gamma-Gamma to the orders and stores the fit (penalized when needed)';

REVOKE EXECUTE ON FUNCTION wam.fit_clv(timestamptz, interval, float8) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.fit_clv(timestamptz, interval, float8) TO wam_admin;

CREATE FUNCTION wam.clv_detail(customer bigint, horizon interval DEFAULT '1 year', margin numeric DEFAULT NULL)
	RETURNS TABLE (method text, frequency integer, recency float8, "T" float8, monetary_value float8,
				   p_alive float8, expected_purchases float8, spend_per_purchase numeric, clv numeric)
	LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	cfg wam.rfm_config;
	s wam.customer_stats;
	fit wam.clv_fit;
	unit_days float8;
	today date;
	opy float8;
	horizon_days float8;
BEGIN
	IF customer IS NULL THEN
		RETURN;
	END IF;
	SELECT * INTO cfg FROM wam.rfm_config;
	horizon := coalesce(horizon, interval '1 year');
	margin := coalesce(margin, cfg.clv_margin);
	horizon_days := extract(epoch FROM horizon) / 86400;
	IF NOT horizon_days > 0 OR NOT isfinite(horizon) THEN
		RAISE EXCEPTION 'horizon must be a positive interval, not %', horizon USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF margin < 0 OR margin > 1 THEN
		RAISE EXCEPTION 'margin must be between 0 and 1, not %', margin USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF NOT EXISTS (SELECT FROM wam.customer c WHERE c.id = customer) THEN
		RAISE EXCEPTION 'customer % does not exist', customer USING ERRCODE = 'no_data_found';
	END IF;
	SELECT * INTO s FROM wam.customer_stats st WHERE st.customer_id = customer;
	IF NOT FOUND THEN
		RETURN QUERY SELECT 'no orders'::text, NULL::integer, NULL::float8, NULL::float8, NULL::float8, NULL::float8,
							0::float8, NULL::numeric, 0::numeric;
		RETURN;
	END IF;
	SELECT * INTO fit FROM wam.clv_fit;
	IF FOUND THEN
		unit_days := extract(epoch FROM fit.time_unit) / 86400;
		today := greatest((now() AT TIME ZONE cfg.day_time_zone)::date, s.last_day);
		frequency := s.order_days - 1;
		recency := (s.last_day - s.first_day) / unit_days;
		"T" := (today - s.first_day) / unit_days;
		monetary_value := CASE WHEN frequency > 0
							   THEN ((s.total_amount - s.first_day_amount) / frequency)::float8 ELSE 0 END;
		-- a penalized fit says so: its predictions lean towards the base average
		method := CASE WHEN fit.bgnbd_penalizer > 0 OR fit.gammagamma_penalizer > 0
					   THEN 'bgnbd+gammagamma penalized' ELSE 'bgnbd+gammagamma' END;
		p_alive := wam.bgnbd_p_alive(fit.bgnbd, frequency, recency, "T");
		expected_purchases := wam.bgnbd_expected_purchases(fit.bgnbd, frequency, recency, "T", horizon_days / unit_days);
		spend_per_purchase := round(wam.gammagamma_expected_spend(fit.gammagamma, frequency, monetary_value)::numeric, 2);
	ELSE
		-- no fit yet: average order value x purchase frequency x horizon, the
		-- frequency being the base's repeat orders per customer-year (each
		-- customer counted for at least 30 days) as of the last refresh
		opy := (SELECT k.repeat_orders_per_year FROM wam.rfm_cut k);
		IF opy IS NULL THEN
			SELECT sum(st.orders - 1) / sum(greatest((now() AT TIME ZONE cfg.day_time_zone)::date - st.first_day, 30) / 365.25)
			INTO opy FROM wam.customer_stats st;
		END IF;
		method := 'simple';
		frequency := s.order_days - 1;
		expected_purchases := opy * horizon_days / 365.25;
		spend_per_purchase := round(s.total_amount / s.orders, 2);
	END IF;
	clv := round(margin * expected_purchases::numeric * spend_per_purchase, 2);
	RETURN NEXT;
END
$$;
COMMENT ON FUNCTION wam.clv_detail(bigint, interval, numeric) IS 'how a customer''s lifetime value is computed';

REVOKE EXECUTE ON FUNCTION wam.clv_detail(bigint, interval, numeric) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.clv_detail(bigint, interval, numeric) TO wam_reader;

CREATE FUNCTION wam.clv(customer bigint, horizon interval DEFAULT '1 year', margin numeric DEFAULT NULL) RETURNS numeric
	LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, wam, pg_temp
AS $$
	SELECT d.clv FROM wam.clv_detail(customer, horizon, margin) d
$$;
COMMENT ON FUNCTION wam.clv(bigint, interval, numeric) IS 'predicted value of a customer''s purchases in the horizon';

REVOKE EXECUTE ON FUNCTION wam.clv(bigint, interval, numeric) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.clv(bigint, interval, numeric) TO wam_reader;

CREATE FUNCTION wam.expected_purchases(customer bigint, horizon interval DEFAULT '1 year') RETURNS float8
	LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, wam, pg_temp
AS $$
	SELECT d.expected_purchases FROM wam.clv_detail(customer, horizon, NULL) d
$$;
COMMENT ON FUNCTION wam.expected_purchases(bigint, interval) IS 'expected purchases of a customer in the horizon';

REVOKE EXECUTE ON FUNCTION wam.expected_purchases(bigint, interval) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.expected_purchases(bigint, interval) TO wam_reader;

CREATE FUNCTION wam.p_alive(customer bigint) RETURNS float8
	LANGUAGE plpgsql STABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	d record;
BEGIN
	SELECT * INTO d FROM wam.clv_detail(customer, NULL, NULL) x;
	IF d.method = 'simple' THEN
		RAISE EXCEPTION 'no lifetime-value fit yet: P(alive) needs the BG/NBD model'
			USING ERRCODE = 'object_not_in_prerequisite_state', HINT = 'An administrator runs wam.fit_clv().';
	END IF;
	RETURN d.p_alive;
END
$$;
COMMENT ON FUNCTION wam.p_alive(bigint) IS 'probability that a customer is still active';

REVOKE EXECUTE ON FUNCTION wam.p_alive(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.p_alive(bigint) TO wam_reader;

-- cost caps (R-F4, R-R5)

CREATE FUNCTION wam.cost_cap_detail(customer bigint)
	RETURNS TABLE (cap numeric, clv numeric, method text, clv_share_cap numeric, push_cap numeric)
	LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	cfg wam.rfm_config;
BEGIN
	IF customer IS NULL THEN
		RETURN;
	END IF;
	SELECT * INTO cfg FROM wam.rfm_config;
	SELECT d.clv, d.method INTO clv, method FROM wam.clv_detail(customer, cfg.cost_cap_horizon, NULL) d;
	clv_share_cap := round(cfg.cost_cap_share * clv, 2);
	push_cap := round(cfg.push_cost * CASE WHEN clv > cfg.high_value_clv THEN cfg.high_value_push_multiplier ELSE 1 END, 2);
	cap := least(clv_share_cap, push_cap);
	RETURN NEXT;
END
$$;
COMMENT ON FUNCTION wam.cost_cap_detail(bigint) IS 'a customer''s cost cap and where it comes from';

REVOKE EXECUTE ON FUNCTION wam.cost_cap_detail(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.cost_cap_detail(bigint) TO wam_reader;

CREATE FUNCTION wam.cost_cap(customer bigint) RETURNS numeric
	LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, wam, pg_temp
AS $$
	SELECT d.cap FROM wam.cost_cap_detail(customer) d
$$;
COMMENT ON FUNCTION wam.cost_cap(bigint) IS 'largest reward or push cost allowed for a customer';

REVOKE EXECUTE ON FUNCTION wam.cost_cap(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.cost_cap(bigint) TO wam_reader;

CREATE FUNCTION wam.check_cost(customer bigint, cost numeric) RETURNS void
	LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	cfg wam.rfm_config;
	d record;
BEGIN
	IF customer IS NULL OR cost IS NULL THEN
		RAISE EXCEPTION 'customer and cost must not be null' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	IF cost < 0 OR cost = 'NaN' THEN
		RAISE EXCEPTION 'cost must not be negative, not %', cost USING ERRCODE = 'invalid_parameter_value';
	END IF;
	SELECT * INTO cfg FROM wam.rfm_config;
	SELECT * INTO d FROM wam.cost_cap_detail(customer) x;
	IF cost > d.cap THEN
		RAISE EXCEPTION 'cost % exceeds the cost cap of % for customer %', cost, d.cap, customer
			USING ERRCODE = 'check_violation',
				  DETAIL = format('The cap is %s%% of the lifetime value %s (%s, %s)%s.',
								  round(100 * cfg.cost_cap_share, 1), d.clv, d.method, cfg.cost_cap_horizon,
								  CASE WHEN d.push_cap IS NOT NULL AND d.push_cap < d.clv_share_cap
									   THEN format(', limited to %s by the per-push cost %s%s', d.push_cap, cfg.push_cost,
												   CASE WHEN d.clv > cfg.high_value_clv
														THEN format(' x %s for lifetime values above %s',
																	cfg.high_value_push_multiplier, cfg.high_value_clv)
														ELSE '' END)
									   ELSE '' END),
				  HINT = 'Settings cost_cap_share, push_cost, high_value_clv and high_value_push_multiplier.';
	END IF;
END
$$;
COMMENT ON FUNCTION wam.check_cost(bigint, numeric) IS 'raises an error when a cost exceeds the customer''s cost cap';

REVOKE EXECUTE ON FUNCTION wam.check_cost(bigint, numeric) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.check_cost(bigint, numeric) TO wam_reader;
-- src/sql/sender.sql: business numbers (senders), the outbound queue, payloads,
-- the sender worker's side and the delivery report
-- senders

CREATE TABLE wam.sender (
	sender_id integer GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
	name text NOT NULL UNIQUE,
	phone_number_id text NOT NULL UNIQUE,
	display_phone text,
	api_base_url text NOT NULL,
	rate_per_minute integer NOT NULL DEFAULT 150
		CONSTRAINT sender_rate CHECK (rate_per_minute BETWEEN 1 AND 3600000),
	burst integer CONSTRAINT sender_burst CHECK (burst BETWEEN 1 AND 100000),
	daily_limit integer CONSTRAINT sender_daily_limit CHECK (daily_limit IN (250, 2000, 10000, 100000)),
	warmup integer[],
	warmup_started_at timestamptz,
	paused boolean NOT NULL DEFAULT false,
	paused_reason text,
	paused_at timestamptz,
	created_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE wam.sender IS 'WhatsApp business numbers with their rate and limits';
COMMENT ON COLUMN wam.sender.burst IS 'token-bucket capacity: requests that may go out back to back after an idle period (NULL: one second''s worth of the rate)';
COMMENT ON COLUMN wam.sender.daily_limit IS 'messaging tier: unique recipients per moving 24 hours (NULL: not enforced)';
COMMENT ON COLUMN wam.sender.warmup IS 'warm-up schedule for a new number: daily limits for day 1, 2, ... after warmup_started_at, then daily_limit';

REVOKE ALL ON wam.sender FROM PUBLIC;
GRANT SELECT ON wam.sender TO wam_reader;
GRANT SELECT, INSERT, UPDATE ON wam.sender TO wam_definer;
GRANT USAGE ON SEQUENCE wam.sender_sender_id_seq TO wam_definer;

-- Secrets are kept apart so that a plain SELECT on wam.sender (or any view)
-- can never show them.  No CHECK, UNIQUE or NOT NULL constraint here on
-- purpose: a violation would print the failing row, token included, in the
-- error detail; wam.create_sender validates the values instead.
CREATE TABLE wam.sender_secret (
	sender_id integer PRIMARY KEY REFERENCES wam.sender ON DELETE CASCADE,
	access_token text,
	app_secret text
);
COMMENT ON TABLE wam.sender_secret IS 'access tokens and app secrets of the senders';

REVOKE ALL ON wam.sender_secret FROM PUBLIC;
GRANT SELECT ON wam.sender_secret TO wam_admin;
GRANT SELECT, INSERT, UPDATE ON wam.sender_secret TO wam_definer;

-- the queue

CREATE TABLE wam.outbox (
	message_id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
	sender_id integer NOT NULL REFERENCES wam.sender,
	customer_id bigint NOT NULL,
	recipient text NOT NULL,
	payload jsonb NOT NULL,
	campaign text,
	variant text,
	priority smallint NOT NULL DEFAULT 0,
	not_before timestamptz NOT NULL DEFAULT pg_catalog.now(),
	expires_at timestamptz,
	status text NOT NULL DEFAULT 'queued' CONSTRAINT outbox_status CHECK (status IN
		('queued', 'sending', 'sent', 'delivered', 'read', 'failed', 'retrying', 'uncertain',
		 'cancelled', 'expired')),
	attempts integer NOT NULL DEFAULT 0,
	pair_deferrals integer NOT NULL DEFAULT 0,
	next_attempt_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	wamid text,
	error_code integer,
	error_detail text,
	replies integer NOT NULL DEFAULT 0,
	created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	sending_at timestamptz,
	sent_at timestamptz,
	delivered_at timestamptz,
	read_at timestamptz,
	failed_at timestamptz,
	retrying_at timestamptz,
	uncertain_at timestamptz,
	cancelled_at timestamptz,
	expired_at timestamptz,
	replied_at timestamptz
);
-- the worker's claim order, over the waiting rows only
CREATE INDEX outbox_due ON wam.outbox (sender_id, priority DESC, next_attempt_at, message_id)
	WHERE status IN ('queued', 'retrying');
-- pair limit, daily tier and "sent in the last minute"; empty until a send
CREATE INDEX outbox_pair ON wam.outbox (sender_id, recipient, sending_at) WHERE sending_at IS NOT NULL;
CREATE INDEX outbox_sending ON wam.outbox (sender_id, sending_at) WHERE sending_at IS NOT NULL;
CREATE UNIQUE INDEX outbox_wamid ON wam.outbox (wamid) WHERE wamid IS NOT NULL;
CREATE INDEX outbox_customer ON wam.outbox (customer_id);
-- customers Meta refused a marketing message to (131049): new ones wait 24 h
CREATE INDEX outbox_ecosystem ON wam.outbox (failed_at) WHERE error_code = 131049;
-- reports select by enqueue time, which follows the insertion order: a BRIN index
-- costs next to nothing on a bulk enqueue
CREATE INDEX outbox_created ON wam.outbox USING brin (created_at);
COMMENT ON TABLE wam.outbox IS 'outbound messages with their status and transition times';

REVOKE ALL ON wam.outbox FROM PUBLIC;
GRANT SELECT ON wam.outbox TO wam_reader;
GRANT SELECT, INSERT, UPDATE ON wam.outbox TO wam_definer;
GRANT USAGE ON SEQUENCE wam.outbox_message_id_seq TO wam_definer;

CREATE FUNCTION wam_internal.outbox_wake_worker_trigger() RETURNS trigger
	AS 'MODULE_PATHNAME', 'wam_wake_sender_worker' LANGUAGE C;
COMMENT ON FUNCTION wam_internal.outbox_wake_worker_trigger() IS 'internal: wakes the sender worker when the transaction commits';

CREATE FUNCTION wam_internal.worker_sender_state(OUT sender_id integer, OUT state text, OUT rate_per_minute double precision,
										OUT in_flight integer, OUT last_error text, OUT last_error_at timestamptz,
										OUT capped_rate_per_minute double precision)
	RETURNS SETOF record
	AS 'MODULE_PATHNAME', 'wam_worker_sender_state' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION wam_internal.worker_sender_state() IS 'internal: the sender worker''s live state per sender (from shared memory; no rows when the worker is not running)';

REVOKE EXECUTE ON FUNCTION wam_internal.worker_sender_state() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam_internal.worker_sender_state() TO wam_reader;

CREATE FUNCTION wam.check_api_url(url text) RETURNS void
	AS 'MODULE_PATHNAME', 'wam_check_api_url' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION wam.check_api_url(text) IS 'raises an error unless a sender may use this API URL';

REVOKE EXECUTE ON FUNCTION wam.check_api_url(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.check_api_url(text) TO wam_admin;

CREATE FUNCTION wam.worker_pid() RETURNS integer
	AS 'MODULE_PATHNAME', 'wam_worker_pid' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION wam.worker_pid() IS 'process id of the sender worker, NULL when none runs';

REVOKE EXECUTE ON FUNCTION wam.worker_pid() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.worker_pid() TO wam_reader;

-- The URL a token goes to is checked wherever it is written, also by a direct
-- UPDATE of wam.sender (the worker checks again before it sends: the allowed
-- hosts may change later).
CREATE FUNCTION wam_internal.sender_check_url_trigger() RETURNS trigger
	LANGUAGE plpgsql SET search_path = pg_catalog, wam, pg_temp
AS $$
BEGIN
	-- a restored sender is not refused for this server's allowlist: the worker
	-- checks the URL again before each claim and pauses a sender it refuses
	IF NOT wam_internal.restoring() THEN
		PERFORM wam.check_api_url(NEW.api_base_url);
	END IF;
	RETURN NEW;
END
$$;
COMMENT ON FUNCTION wam_internal.sender_check_url_trigger() IS 'internal: refuses an api_base_url that wam.check_api_url refuses';
CREATE TRIGGER sender_check_url BEFORE INSERT OR UPDATE OF api_base_url ON wam.sender
	FOR EACH ROW EXECUTE FUNCTION wam_internal.sender_check_url_trigger();

REVOKE EXECUTE ON FUNCTION wam_internal.sender_check_url_trigger() FROM PUBLIC;

CREATE TRIGGER outbox_wake AFTER INSERT OR UPDATE OF status, next_attempt_at ON wam.outbox
	FOR EACH STATEMENT EXECUTE FUNCTION wam_internal.outbox_wake_worker_trigger();
CREATE TRIGGER sender_wake AFTER INSERT OR UPDATE ON wam.sender
	FOR EACH STATEMENT EXECUTE FUNCTION wam_internal.outbox_wake_worker_trigger();

REVOKE EXECUTE ON FUNCTION wam_internal.outbox_wake_worker_trigger() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam_internal.outbox_wake_worker_trigger() TO wam_operator;

-- sender administration

CREATE FUNCTION wam.sender_id(sender text) RETURNS integer
	LANGUAGE plpgsql STABLE SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	found_id integer;
	n integer;
BEGIN
	IF sender IS NULL THEN
		SELECT min(s.sender_id), count(*) INTO found_id, n FROM wam.sender s;
		IF n = 0 THEN
			RAISE EXCEPTION 'no sender exists'
				USING ERRCODE = 'undefined_object', HINT = 'Create one with wam.create_sender().';
		ELSIF n > 1 THEN
			RAISE EXCEPTION 'a sender must be named when there are several'
				USING ERRCODE = 'invalid_parameter_value',
					  DETAIL = format('There are %s senders.', n);
		END IF;
		RETURN found_id;
	END IF;
	SELECT s.sender_id INTO found_id FROM wam.sender s WHERE s.name = sender;
	IF found_id IS NULL THEN
		RAISE EXCEPTION 'sender "%" does not exist', sender USING ERRCODE = 'undefined_object';
	END IF;
	RETURN found_id;
END
$$;
COMMENT ON FUNCTION wam.sender_id(text) IS 'id of the named sender (NULL: the only one)';

REVOKE EXECUTE ON FUNCTION wam.sender_id(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.sender_id(text) TO wam_reader;

CREATE FUNCTION wam.create_sender(name text, phone_number_id text, access_token text, app_secret text,
								  api_base_url text DEFAULT 'https://graph.facebook.com/v23.0',
								  rate_per_minute integer DEFAULT 150)
	RETURNS integer
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	new_id integer;
	max_senders integer;
BEGIN
	-- Validate before any INSERT: a constraint violation would print the row.
	IF name IS NULL OR btrim(name) = '' THEN
		RAISE EXCEPTION 'sender name must not be empty' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF phone_number_id IS NULL OR phone_number_id !~ '^[0-9]{1,30}$' THEN
		RAISE EXCEPTION 'phone_number_id must be the numeric id of the business number'
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'It is the id Meta shows for the number, e.g. 106540352242922, not the phone number.';
	END IF;
	IF access_token IS NULL OR access_token = '' OR access_token ~ '[[:space:][:cntrl:]]' THEN
		RAISE EXCEPTION 'access token must be a non-empty string without whitespace'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF app_secret IS NULL OR app_secret = '' THEN
		RAISE EXCEPTION 'app secret must not be empty' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	-- the host the token goes to: https, in wam.sender_allowed_hosts, no IP address
	PERFORM wam.check_api_url(rtrim(api_base_url, '/'));
	IF rate_per_minute IS NULL OR rate_per_minute NOT BETWEEN 1 AND 3600000 THEN
		RAISE EXCEPTION 'rate_per_minute must be between 1 and 3600000' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF EXISTS (SELECT FROM wam.sender s WHERE s.name = name) THEN
		RAISE EXCEPTION 'sender "%" already exists', name USING ERRCODE = 'duplicate_object';
	END IF;
	IF EXISTS (SELECT FROM wam.sender s WHERE s.phone_number_id = phone_number_id) THEN
		RAISE EXCEPTION 'a sender with phone_number_id % already exists', phone_number_id
			USING ERRCODE = 'duplicate_object';
	END IF;
	-- The worker serves wam.worker_max_senders senders (its shared memory is sized
	-- by it): refuse more rather than leave one silently unserved.  The
	-- advisory lock orders concurrent calls without locking wam.sender,
	-- which the worker writes.
	max_senders := current_setting('wam.worker_max_senders', true)::integer;
	IF max_senders IS NOT NULL THEN
		PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('wam.create_sender'));
		IF (SELECT count(*) FROM wam.sender) >= max_senders THEN
			RAISE EXCEPTION 'cannot create more than % senders', max_senders
				USING ERRCODE = 'configuration_limit_exceeded',
					  DETAIL = 'The sender worker serves at most wam.worker_max_senders senders.',
					  HINT = 'Raise wam.worker_max_senders (needs a restart) or drop a sender.';
		END IF;
	END IF;
	INSERT INTO wam.sender (name, phone_number_id, api_base_url, rate_per_minute)
	VALUES (name, phone_number_id, rtrim(api_base_url, '/'), rate_per_minute)
	RETURNING sender_id INTO new_id;
	INSERT INTO wam.sender_secret (sender_id, access_token, app_secret)
	VALUES (new_id, access_token, app_secret);
	RETURN new_id;
END
$$;
COMMENT ON FUNCTION wam.create_sender(text, text, text, text, text, integer) IS 'registers a WhatsApp business number and its secrets';

REVOKE EXECUTE ON FUNCTION wam.create_sender(text, text, text, text, text, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.create_sender(text, text, text, text, text, integer) TO wam_admin;

CREATE FUNCTION wam.configure_sender(sender text, rate_per_minute integer DEFAULT NULL,
									  daily_limit integer DEFAULT NULL, warmup integer[] DEFAULT NULL,
									  burst integer DEFAULT NULL, access_token text DEFAULT NULL,
									  app_secret text DEFAULT NULL)
	RETURNS wam.sender
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	sid integer := wam.sender_id(sender);
	result wam.sender;
BEGIN
	IF rate_per_minute IS NOT NULL AND rate_per_minute NOT BETWEEN 1 AND 3600000 THEN
		RAISE EXCEPTION 'rate_per_minute must be between 1 and 3600000' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF daily_limit IS NOT NULL AND daily_limit NOT IN (0, 250, 2000, 10000, 100000) THEN
		RAISE EXCEPTION 'daily_limit must be a messaging tier: 250, 2000, 10000 or 100000'
			USING ERRCODE = 'invalid_parameter_value', HINT = '0 means unlimited; NULL keeps the current limit.';
	END IF;
	IF warmup IS NOT NULL AND cardinality(warmup) > 0
	   AND (array_ndims(warmup) <> 1 OR EXISTS (SELECT FROM unnest(warmup) w WHERE w IS NULL OR w < 1)) THEN
		RAISE EXCEPTION 'warmup must be a list of positive daily limits, one per day'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF burst IS NOT NULL AND burst NOT BETWEEN 1 AND 100000 THEN
		RAISE EXCEPTION 'burst must be between 1 and 100000' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF access_token IS NOT NULL AND (access_token = '' OR access_token ~ '[[:space:][:cntrl:]]') THEN
		RAISE EXCEPTION 'access token must be a non-empty string without whitespace'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF app_secret = '' THEN
		RAISE EXCEPTION 'app secret must not be empty' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF access_token IS NOT NULL OR app_secret IS NOT NULL THEN
		UPDATE wam.sender_secret s SET access_token = coalesce(access_token, s.access_token),
									   app_secret = coalesce(app_secret, s.app_secret)
		WHERE s.sender_id = sid;
	END IF;
	UPDATE wam.sender s SET
		rate_per_minute = coalesce(rate_per_minute, s.rate_per_minute),
		daily_limit = CASE WHEN daily_limit IS NULL THEN s.daily_limit ELSE nullif(daily_limit, 0) END,
		warmup = CASE WHEN warmup IS NULL THEN s.warmup WHEN cardinality(warmup) = 0 THEN NULL ELSE warmup END,
		-- a new schedule starts today
		warmup_started_at = CASE WHEN warmup IS NULL THEN s.warmup_started_at
								 WHEN cardinality(warmup) = 0 THEN NULL
								 WHEN warmup = s.warmup THEN s.warmup_started_at
								 ELSE pg_catalog.now() END,
		burst = coalesce(burst, s.burst)
	WHERE s.sender_id = sid
	RETURNING s.* INTO result;
	RETURN result;
END
$$;
COMMENT ON FUNCTION wam.configure_sender(text, integer, integer, integer[], integer, text, text) IS 'changes a sender''s limits or secrets; NULL keeps a value';

REVOKE EXECUTE ON FUNCTION wam.configure_sender(text, integer, integer, integer[], integer, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.configure_sender(text, integer, integer, integer[], integer, text, text) TO wam_admin;

CREATE FUNCTION wam.sender_daily_limit(s wam.sender) RETURNS integer
	LANGUAGE sql STABLE SET search_path = pg_catalog, wam, pg_temp
RETURN CASE
	WHEN s.warmup IS NOT NULL
		 AND floor(extract(epoch FROM pg_catalog.now() - s.warmup_started_at) / 86400) < cardinality(s.warmup)
	THEN least(s.warmup[1 + floor(extract(epoch FROM pg_catalog.now() - s.warmup_started_at) / 86400)::int],
			   coalesce(s.daily_limit, 2147483647))
	ELSE s.daily_limit END;
COMMENT ON FUNCTION wam.sender_daily_limit(wam.sender) IS 'the recipient limit in force today (NULL: unlimited)';

REVOKE EXECUTE ON FUNCTION wam.sender_daily_limit(wam.sender) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.sender_daily_limit(wam.sender) TO wam_reader;

CREATE FUNCTION wam.pause_sender(sender text, reason text) RETURNS void
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
BEGIN
	IF reason IS NULL OR btrim(reason) = '' THEN
		RAISE EXCEPTION 'a reason is required to pause a sender' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	UPDATE wam.sender SET paused = true, paused_reason = reason, paused_at = pg_catalog.now()
	WHERE sender_id = wam.sender_id(sender);
END
$$;
COMMENT ON FUNCTION wam.pause_sender(text, text) IS 'stops sending from a number until resumed';

REVOKE EXECUTE ON FUNCTION wam.pause_sender(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.pause_sender(text, text) TO wam_admin;

CREATE FUNCTION wam.resume_sender(name text) RETURNS boolean
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	was_paused boolean;
	sid integer := wam.sender_id(name);
BEGIN
	PERFORM wam_internal.refuse_null(name IS NULL, 'sender name');
	SELECT paused INTO was_paused FROM wam.sender WHERE sender_id = sid FOR UPDATE;
	UPDATE wam.sender SET paused = false, paused_reason = NULL, paused_at = NULL WHERE sender_id = sid;
	RETURN was_paused;
END
$$;
COMMENT ON FUNCTION wam.resume_sender(text) IS 'resumes a paused sender; returns whether it was paused';

REVOKE EXECUTE ON FUNCTION wam.resume_sender(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.resume_sender(text) TO wam_admin;

-- payloads and personalisation

CREATE FUNCTION wam.check_payload(payload jsonb) RETURNS boolean
	LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	kind text;
BEGIN
	IF payload IS NULL OR jsonb_typeof(payload) <> 'object' THEN
		RAISE EXCEPTION 'message payload must be a JSON object'
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'E.g. {"type": "template", "template": {"name": "spring_sale", "language": {"code": "en"}}} or {"type": "text", "text": {"body": "Hi {name}"}}.';
	END IF;
	kind := payload->>'type';
	IF kind IS NULL THEN
		RAISE EXCEPTION 'message payload has no "type"' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF payload ?| ARRAY['to', 'messaging_product', 'recipient_type', 'biz_opaque_callback_data'] THEN
		RAISE EXCEPTION 'message payload must not set "to", "messaging_product", "recipient_type" or "biz_opaque_callback_data"'
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = 'The sender worker fills them in from the customer and the queue row.';
	END IF;
	IF kind NOT IN ('template', 'text', 'interactive', 'image', 'video', 'document', 'audio', 'sticker',
					'location', 'contacts', 'reaction') THEN
		RAISE EXCEPTION 'unknown message type "%"', kind USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF jsonb_typeof(payload->kind) IS DISTINCT FROM 'object' THEN
		RAISE EXCEPTION 'message of type "%" needs an object "%"', kind, kind USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF kind = 'template' AND (jsonb_typeof(payload->'template'->'name') IS DISTINCT FROM 'string'
							  OR jsonb_typeof(payload->'template'->'language'->'code') IS DISTINCT FROM 'string') THEN
		RAISE EXCEPTION 'template message needs template.name and template.language.code'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF kind = 'text' THEN
		IF jsonb_typeof(payload->'text'->'body') IS DISTINCT FROM 'string' OR payload->'text'->>'body' = '' THEN
			RAISE EXCEPTION 'text message needs a non-empty text.body' USING ERRCODE = 'invalid_parameter_value';
		END IF;
		IF length(payload->'text'->>'body') > 4096 THEN
			RAISE EXCEPTION 'text.body is longer than 4096 characters' USING ERRCODE = 'string_data_right_truncation';
		END IF;
	END IF;
	RETURN kind = 'template';
END
$$;
COMMENT ON FUNCTION wam.check_payload(jsonb) IS 'validates a payload; true for a template, false for free-form';

REVOKE EXECUTE ON FUNCTION wam.check_payload(jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.check_payload(jsonb) TO wam_reader;

-- The options wam.enqueue and wam.enqueue_segment share, checked alike.
CREATE FUNCTION wam_internal.check_enqueue_options(not_before timestamptz, priority integer, vars jsonb)
	RETURNS void LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
BEGIN
	PERFORM wam_internal.refuse_null(not_before IS NULL, 'not_before');
	IF priority IS NULL OR priority NOT BETWEEN -100 AND 100 THEN
		RAISE EXCEPTION 'priority must be between -100 and 100' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF vars IS NOT NULL AND jsonb_typeof(vars) <> 'object' THEN
		RAISE EXCEPTION 'vars must be a JSON object of placeholder values' USING ERRCODE = 'invalid_parameter_value';
	END IF;
END
$$;
COMMENT ON FUNCTION wam_internal.check_enqueue_options(timestamptz, integer, jsonb) IS 'internal: checks the not_before, priority and vars options of wam.enqueue and wam.enqueue_segment';

REVOKE EXECUTE ON FUNCTION wam_internal.check_enqueue_options(timestamptz, integer, jsonb) FROM PUBLIC;

-- The placeholders a payload uses ({name}, {first_name}, {phone}, {locale},
-- {customer_id} come from the customer; any other {word} from vars).
CREATE FUNCTION wam.payload_placeholders(payload jsonb) RETURNS text[]
	LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN (SELECT coalesce(array_agg(DISTINCT m[1] ORDER BY m[1]), '{}')
		FROM regexp_matches(payload::text, '\{([a-z_][a-z0-9_]*)\}', 'g') m);
COMMENT ON FUNCTION wam.payload_placeholders(jsonb) IS 'the {placeholder} names used in a payload';

REVOKE EXECUTE ON FUNCTION wam.payload_placeholders(jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.payload_placeholders(jsonb) TO wam_reader;

-- Replace each {var} inside the payload's JSON text by its JSON-escaped value.
CREATE FUNCTION wam.render_payload(payload jsonb, names text[], vals text[]) RETURNS jsonb
	LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, wam, pg_temp
AS $$
DECLARE
	t text;
	i integer;
	v text;
BEGIN
	IF names IS NULL OR cardinality(names) = 0 THEN
		RETURN payload;
	END IF;
	t := payload::text;
	FOR i IN 1 .. cardinality(names) LOOP
		IF vals[i] IS NULL THEN
			RETURN NULL;
		END IF;
		v := to_json(vals[i])::text;
		t := replace(t, '{' || names[i] || '}', substr(v, 2, length(v) - 2));
	END LOOP;
	RETURN t::jsonb;
END
$$;
COMMENT ON FUNCTION wam.render_payload(jsonb, text[], text[]) IS 'the payload with placeholders replaced by the given values';

REVOKE EXECUTE ON FUNCTION wam.render_payload(jsonb, text[], text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.render_payload(jsonb, text[], text[]) TO wam_reader;

-- The same filling, in C, for one customer's fields (src/sender_payload.c):
-- what wam.enqueue and wam.enqueue_segment use, once per customer.
CREATE FUNCTION wam.render_customer_payload(payload jsonb, vars jsonb, customer_id bigint, phone text, name text,
										locale text)
	RETURNS jsonb
	AS 'MODULE_PATHNAME', 'wam_render_for_customer' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION wam.render_customer_payload(jsonb, jsonb, bigint, text, text, text) IS 'the payload with placeholders filled from a customer';

REVOKE EXECUTE ON FUNCTION wam.render_customer_payload(jsonb, jsonb, bigint, text, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.render_customer_payload(jsonb, jsonb, bigint, text, text, text) TO wam_reader;

CREATE FUNCTION wam_internal.customer_field(c wam.customer, field text) RETURNS text
	LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE field
	WHEN 'name' THEN nullif(btrim(c.name), '')
	WHEN 'first_name' THEN nullif(split_part(btrim(c.name), ' ', 1), '')
	WHEN 'phone' THEN '+' || c.phone
	WHEN 'locale' THEN c.locale
	WHEN 'customer_id' THEN c.id::text
	END;
COMMENT ON FUNCTION wam_internal.customer_field(wam.customer, text) IS 'the value of a customer placeholder ({name}, {first_name}, {phone}, {locale}, {customer_id}), NULL for other names';

REVOKE EXECUTE ON FUNCTION wam_internal.customer_field(wam.customer, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam_internal.customer_field(wam.customer, text) TO wam_reader;

-- enqueue

CREATE FUNCTION wam.enqueue_message(customer bigint, payload jsonb, sender text DEFAULT NULL,
							not_before timestamptz DEFAULT pg_catalog.now(), vars jsonb DEFAULT NULL,
							priority integer DEFAULT 0, expires_at timestamptz DEFAULT NULL,
							campaign text DEFAULT NULL, variant text DEFAULT NULL)
	RETURNS bigint
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	c wam.customer;
	sid integer;
	is_template boolean;
	names text[];
	vals text[];
	rendered jsonb;
	window_end timestamptz;
	blocked_until timestamptz;
	new_id bigint;
BEGIN
	PERFORM wam_internal.refuse_null(customer IS NULL, 'customer');
	PERFORM wam_internal.check_enqueue_options(not_before, priority, vars);
	is_template := wam.check_payload(payload);
	sid := wam.sender_id(sender);
	SELECT * INTO c FROM wam.customer x WHERE x.id = customer;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'customer % does not exist', customer USING ERRCODE = 'foreign_key_violation';
	END IF;
	IF c.opted_out_at IS NOT NULL THEN
		RAISE EXCEPTION 'customer % opted out of WhatsApp messages', customer
			USING ERRCODE = 'object_not_in_prerequisite_state',
				  DETAIL = format('Reason recorded: %s.', coalesce(c.opt_out_reason, 'none'));
	END IF;
	IF c.consent_at IS NULL THEN
		RAISE EXCEPTION 'customer % has not consented to WhatsApp marketing', customer
			USING ERRCODE = 'object_not_in_prerequisite_state',
				  HINT = 'Record the consent with wam.record_consent(customer, source) first.';
	END IF;
	IF NOT is_template THEN
		window_end := c.last_inbound_at + interval '24 hours';
		IF window_end IS NULL OR window_end <= greatest(not_before, pg_catalog.now()) THEN
			RAISE EXCEPTION 'customer %''s 24-hour window is closed: free-form messages are not allowed', customer
				USING ERRCODE = 'object_not_in_prerequisite_state',
					  DETAIL = CASE WHEN c.last_inbound_at IS NULL THEN 'The customer never wrote to the business.'
									ELSE format('The customer last wrote at %s.', c.last_inbound_at) END,
					  HINT = 'Send an approved template instead.';
		END IF;
	END IF;
	rendered := wam.render_customer_payload(payload, vars, c.id, c.phone, c.name, c.locale);
	IF rendered IS NULL THEN
		-- which placeholder has no value, for the message
		names := wam.payload_placeholders(payload);
		SELECT array_agg(coalesce(wam_internal.customer_field(c, n), vars->>n) ORDER BY ord) INTO vals
		FROM unnest(names) WITH ORDINALITY u(n, ord);
		RAISE EXCEPTION 'no value for placeholder {%} of customer %',
			(SELECT n FROM unnest(names, vals) u(n, v) WHERE v IS NULL LIMIT 1), customer
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Give a fallback in vars, e.g. {"name": "there"}.';
	END IF;
	-- Meta asks not to retry for 24 h after 131049 (per-user marketing cap).
	SELECT max(o.failed_at) + interval '24 hours' INTO blocked_until
	FROM wam.outbox o WHERE o.customer_id = customer AND o.error_code = 131049;
	INSERT INTO wam.outbox (sender_id, customer_id, recipient, payload, campaign, variant, priority,
							not_before, next_attempt_at, expires_at)
	VALUES (sid, customer, c.phone, rendered, campaign, variant, priority, not_before,
			greatest(not_before, blocked_until),
			CASE WHEN is_template THEN expires_at ELSE least(expires_at, window_end) END)
	RETURNING message_id INTO new_id;
	RETURN new_id;
END
$$;
COMMENT ON FUNCTION wam.enqueue_message(bigint, jsonb, text, timestamptz, jsonb, integer, timestamptz, text, text) IS 'queues one message to a customer; returns its id';

REVOKE EXECUTE ON FUNCTION wam.enqueue_message(bigint, jsonb, text, timestamptz, jsonb, integer, timestamptz, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.enqueue_message(bigint, jsonb, text, timestamptz, jsonb, integer, timestamptz, text, text) TO wam_operator;

CREATE FUNCTION wam.enqueue_segment(who wam.segment, template jsonb, sender text DEFAULT NULL,
									not_before timestamptz DEFAULT pg_catalog.now(), vars jsonb DEFAULT NULL,
									priority integer DEFAULT 0, expires_at timestamptz DEFAULT NULL,
									campaign text DEFAULT NULL, variant text DEFAULT NULL)
	RETURNS TABLE (queued bigint, not_found bigint, no_consent bigint, opted_out bigint,
				   window_closed bigint, missing_value bigint)
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	sid integer;
	is_template boolean;
	eligible bigint;
	now_ts timestamptz := pg_catalog.now();
BEGIN
	PERFORM wam_internal.refuse_null(who IS NULL, 'segment');
	PERFORM wam_internal.check_enqueue_options(not_before, priority, vars);
	is_template := wam.check_payload(template);
	sid := wam.sender_id(sender);

	-- One pass, set-based: the segment's members (ascending ids) joined to
	-- wam.customer by primary key, classified once (cand), the eligible ones
	-- inserted with their payload filled in C (wam.render_customer_payload parses
	-- the template once per statement), and the refusals counted from the
	-- same rows.  No ORDER BY: sorting a million rendered rows would spill to
	-- disk, and the nested loop already yields them in customer order.
	-- OFFSET 0 keeps the payload computed once per row (else the planner
	-- would copy the call into the WHERE clause).
	WITH cand AS (
		SELECT m.id, c.phone, c.name, c.locale, c.last_inbound_at,
			   CASE WHEN c.id IS NULL THEN 'not_found'
					WHEN c.opted_out_at IS NOT NULL THEN 'opted_out'
					WHEN c.consent_at IS NULL THEN 'no_consent'
					WHEN NOT is_template
						 AND (c.last_inbound_at IS NULL
							  OR c.last_inbound_at + interval '24 hours' <= greatest(not_before, now_ts))
					THEN 'window_closed' END AS refused
		FROM wam.segment_members(who) m(id)
			 LEFT JOIN wam.customer c ON c.id = m.id
	), ins AS (
		INSERT INTO wam.outbox (sender_id, customer_id, recipient, payload, campaign, variant, priority,
								not_before, next_attempt_at, expires_at)
		SELECT sid, x.id, x.phone, x.payload, campaign, variant, priority, not_before,
			   -- Meta asks not to retry for 24 h after 131049 (per-user marketing cap)
			   greatest(not_before, b.blocked_until),
			   CASE WHEN is_template THEN expires_at
					ELSE least(expires_at, x.last_inbound_at + interval '24 hours') END
		FROM (SELECT cand.id, cand.phone, cand.last_inbound_at,
					 wam.render_customer_payload(template, vars, cand.id, cand.phone, cand.name, cand.locale) AS payload
			  FROM cand WHERE cand.refused IS NULL
			  OFFSET 0) x
			 LEFT JOIN (SELECT o.customer_id, max(o.failed_at) + interval '24 hours' AS blocked_until
						FROM wam.outbox o
						WHERE o.error_code = 131049 AND o.failed_at > now_ts - interval '24 hours'
						GROUP BY 1) b ON b.customer_id = x.id
		WHERE x.payload IS NOT NULL
		RETURNING 1
	)
	SELECT (SELECT count(*) FROM ins),
		   count(*) FILTER (WHERE cand.refused = 'not_found'),
		   count(*) FILTER (WHERE cand.refused = 'no_consent'),
		   count(*) FILTER (WHERE cand.refused = 'opted_out'),
		   count(*) FILTER (WHERE cand.refused = 'window_closed'),
		   count(*) FILTER (WHERE cand.refused IS NULL)
	INTO queued, not_found, no_consent, opted_out, window_closed, eligible
	FROM cand;
	missing_value := eligible - queued;
	IF not_found + no_consent + opted_out + window_closed + missing_value > 0 THEN
		RAISE NOTICE 'queued % messages; refused: % unknown customers, % without consent, % opted out, % outside the 24-hour window, % missing a placeholder value',
			queued, not_found, no_consent, opted_out, window_closed, missing_value;
	END IF;
	RETURN NEXT;
END
$$;
COMMENT ON FUNCTION wam.enqueue_segment(wam.segment, jsonb, text, timestamptz, jsonb, integer, timestamptz, text, text) IS 'queues one message per customer of a segment; counts refusals';

REVOKE EXECUTE ON FUNCTION wam.enqueue_segment(wam.segment, jsonb, text, timestamptz, jsonb, integer, timestamptz, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.enqueue_segment(wam.segment, jsonb, text, timestamptz, jsonb, integer, timestamptz, text, text) TO wam_operator;

CREATE FUNCTION wam.cancel_message(message bigint) RETURNS boolean
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	st text;
BEGIN
	PERFORM wam_internal.refuse_null(message IS NULL, 'message');
	-- Only a waiting row is locked (the WHERE clause is rechecked after a
	-- wait): a row the worker has claimed is never locked here, so an open
	-- transaction that called wam.cancel cannot hold up the worker recording
	-- that message's result.
	UPDATE wam.outbox o SET status = 'cancelled', cancelled_at = pg_catalog.now()
	WHERE o.message_id = message AND o.status IN ('queued', 'retrying');
	IF FOUND THEN
		RETURN true;
	END IF;
	SELECT o.status INTO st FROM wam.outbox o WHERE o.message_id = message;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'message % does not exist', message USING ERRCODE = 'undefined_object';
	END IF;
	RETURN false;
END
$$;
COMMENT ON FUNCTION wam.cancel_message(bigint) IS 'cancels a waiting message; false if it is past that';

REVOKE EXECUTE ON FUNCTION wam.cancel_message(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.cancel_message(bigint) TO wam_operator;

CREATE FUNCTION wam.cancel_campaign(campaign text, sender text DEFAULT NULL) RETURNS bigint
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	n bigint;
	sid integer;
BEGIN
	PERFORM wam_internal.refuse_null(campaign IS NULL, 'campaign');
	IF sender IS NOT NULL THEN
		sid := wam.sender_id(sender);
	END IF;
	UPDATE wam.outbox o SET status = 'cancelled', cancelled_at = pg_catalog.now()
	WHERE o.campaign = campaign AND o.status IN ('queued', 'retrying')
	  AND (sid IS NULL OR o.sender_id = sid);
	GET DIAGNOSTICS n = ROW_COUNT;
	RETURN n;
END
$$;
COMMENT ON FUNCTION wam.cancel_campaign(text, text) IS 'cancels the waiting messages of a campaign; returns how many';

REVOKE EXECUTE ON FUNCTION wam.cancel_campaign(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.cancel_campaign(text, text) TO wam_operator;

CREATE FUNCTION wam.requeue_message(message bigint) RETURNS boolean
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
BEGIN
	PERFORM wam_internal.refuse_null(message IS NULL, 'message');
	UPDATE wam.outbox o SET status = 'queued', next_attempt_at = pg_catalog.now()
	WHERE o.message_id = message AND o.status = 'uncertain';
	RETURN FOUND;
END
$$;
COMMENT ON FUNCTION wam.requeue_message(bigint) IS 'sends an uncertain message again; false if not uncertain';

REVOKE EXECUTE ON FUNCTION wam.requeue_message(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.requeue_message(bigint) TO wam_admin;

-- the sender worker's side (called by the worker as superuser; no grants)

-- what to do with an API error code (reference: error code catalogue)
CREATE FUNCTION wam.error_action(code integer) RETURNS text
	LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN CASE
	WHEN code IN (4, 80007, 130429, 613) THEN 'throttle'
	WHEN code = 131056 THEN 'defer_recipient'
	WHEN code IN (1, 2, 131000, 131016, 131057, 133004) THEN 'retry'
	WHEN code IN (0, 190, 3, 10, 131005, 131048, 131064, 368, 131031, 131042, 131045, 131037,
				  133010, 33, 131063) OR code BETWEEN 200 AND 299 THEN 'pause'
	ELSE 'fail' END;
COMMENT ON FUNCTION wam.error_action(integer) IS 'the sender''s reaction to a Cloud API error code';

REVOKE EXECUTE ON FUNCTION wam.error_action(integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.error_action(integer) TO wam_reader;

CREATE FUNCTION wam_internal.worker_recover() RETURNS bigint
	LANGUAGE plpgsql SET search_path = pg_catalog, wam, pg_temp
AS $$
DECLARE
	n bigint;
BEGIN
	UPDATE wam.outbox SET status = 'uncertain', uncertain_at = pg_catalog.now(),
		error_detail = 'the sender worker stopped while the request was in flight; not resent (see wam.requeue_message)'
	WHERE status = 'sending';
	GET DIAGNOSTICS n = ROW_COUNT;
	RETURN n;
END
$$;
COMMENT ON FUNCTION wam_internal.worker_recover() IS 'internal: at worker start-up, rows left in sending may or may not have gone out: they become uncertain';

REVOKE EXECUTE ON FUNCTION wam_internal.worker_recover() FROM PUBLIC;

CREATE FUNCTION wam_internal.worker_senders()
	RETURNS TABLE (sender_id integer, url text, access_token text, rate_per_minute integer, burst integer,
				   paused boolean)
	LANGUAGE sql STABLE SET search_path = pg_catalog, wam, pg_temp
AS $$
	SELECT s.sender_id, s.api_base_url || '/' || s.phone_number_id || '/messages', k.access_token,
		   s.rate_per_minute, s.burst, s.paused
	FROM wam.sender s JOIN wam.sender_secret k USING (sender_id)
	ORDER BY s.sender_id;
$$;
COMMENT ON FUNCTION wam_internal.worker_senders() IS 'internal: what the sender worker needs to know about each sender';

REVOKE EXECUTE ON FUNCTION wam_internal.worker_senders() FROM PUBLIC;

CREATE FUNCTION wam_internal.claim_batch(sender integer, max_messages integer)
	RETURNS TABLE (message_id bigint, body text)
	LANGUAGE plpgsql SET search_path = pg_catalog, wam, pg_temp
	-- small batches with poor row estimates: JIT compilation would cost more than the query
	SET jit = off
AS $$
#variable_conflict use_variable
DECLARE
	s wam.sender;
	lim integer;
	used integer;
	new_allowed integer;
BEGIN
	SELECT * INTO s FROM wam.sender x WHERE x.sender_id = sender;
	IF NOT FOUND OR s.paused OR max_messages < 1 THEN
		RETURN;
	END IF;
	lim := wam.sender_daily_limit(s);
	IF lim IS NOT NULL THEN
		SELECT count(DISTINCT o.recipient) INTO used FROM wam.outbox o
		WHERE o.sender_id = sender AND o.sending_at > pg_catalog.now() - interval '24 hours';
		new_allowed := greatest(lim - used, 0);
	END IF;
	RETURN QUERY
	WITH cand AS MATERIALIZED (
		SELECT o.message_id, o.recipient, o.expires_at, o.priority, o.next_attempt_at
		FROM wam.outbox o
		WHERE o.sender_id = sender AND o.status IN ('queued', 'retrying')
		  AND o.next_attempt_at <= pg_catalog.now()
		ORDER BY o.priority DESC, o.next_attempt_at, o.message_id
		LIMIT max_messages * 4
		FOR UPDATE SKIP LOCKED
	), gone AS (
		UPDATE wam.outbox o SET status = 'expired', expired_at = pg_catalog.now()
		FROM cand WHERE o.message_id = cand.message_id AND cand.expires_at <= pg_catalog.now()
		RETURNING o.message_id
	), ok AS (
		-- one message per recipient, none within 6 s of the last one (pair limit)
		SELECT DISTINCT ON (cand.recipient) cand.*,
			   lim IS NOT NULL AND EXISTS (SELECT FROM wam.outbox p WHERE p.sender_id = sender
										   AND p.recipient = cand.recipient
										   AND p.sending_at > pg_catalog.now() - interval '24 hours') AS known
		FROM cand
		WHERE (cand.expires_at IS NULL OR cand.expires_at > pg_catalog.now())
		  AND NOT EXISTS (SELECT FROM wam.outbox p WHERE p.sender_id = sender AND p.recipient = cand.recipient
						  AND p.sending_at > pg_catalog.now() - interval '6 seconds')
		ORDER BY cand.recipient, cand.priority DESC, cand.next_attempt_at, cand.message_id
	), pick AS (
		SELECT ok.message_id FROM (
			SELECT ok.*, row_number() OVER (PARTITION BY ok.known
											ORDER BY ok.priority DESC, ok.next_attempt_at, ok.message_id) AS rn
			FROM ok) ok
		WHERE lim IS NULL OR ok.known OR ok.rn <= new_allowed
		ORDER BY ok.priority DESC, ok.next_attempt_at, ok.message_id
		LIMIT max_messages
	), upd AS (
		UPDATE wam.outbox o SET status = 'sending', sending_at = pg_catalog.now(), attempts = o.attempts + 1
		FROM pick WHERE o.message_id = pick.message_id
		RETURNING o.message_id, o.recipient, o.payload, o.priority, o.next_attempt_at
	)
	SELECT upd.message_id,
		   (upd.payload || jsonb_build_object('messaging_product', 'whatsapp', 'recipient_type', 'individual',
											  'to', '+' || upd.recipient,
											  'biz_opaque_callback_data', 'wam:' || upd.message_id))::text
	FROM upd ORDER BY upd.priority DESC, upd.next_attempt_at, upd.message_id;
END
$$;
COMMENT ON FUNCTION wam_internal.claim_batch(integer, integer) IS 'internal: the sender worker claims due messages of a sender (SKIP LOCKED), marks them sending and gets their request bodies; honours the pair limit and the daily tier, expires overdue rows';

REVOKE EXECUTE ON FUNCTION wam_internal.claim_batch(integer, integer) FROM PUBLIC;

CREATE FUNCTION wam_internal.next_due(sender integer) RETURNS timestamptz
	LANGUAGE sql STABLE SET search_path = pg_catalog, wam, pg_temp
AS $$
	SELECT min(o.next_attempt_at) FROM wam.outbox o
	WHERE o.sender_id = sender AND o.status IN ('queued', 'retrying');
$$;
COMMENT ON FUNCTION wam_internal.next_due(integer) IS 'internal: when the next waiting message of a sender is due';

REVOKE EXECUTE ON FUNCTION wam_internal.next_due(integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam_internal.next_due(integer) TO wam_reader;

-- Outcomes of a set of requests, as the worker saw them: outcome is 'http'
-- (a response came back: status and body), 'not_sent' (DNS, connect or TLS
-- failure: the request never left), 'not_sendable' (it never left, and no
-- retry can cure that: a bad URL, an unreadable wam.sender_ca_file; the sender is
-- paused) or 'uncertain' (timeout or connection loss after the request may
-- have left).
--
-- It never waits for a row lock: rows another session has locked (an open
-- transaction that ingested a status webhook for one of them, an operator
-- editing the sender) are skipped and returned in deferred, for the worker
-- to record later; a locked sender row is not paused this time (the next
-- error pauses it).
CREATE FUNCTION wam_internal.record_results(ids bigint[], outcomes text[], http_statuses integer[], bodies text[],
								   details text[])
	RETURNS TABLE (sender_id integer, throttled integer, paused_reason text, last_error text, deferred bigint[])
	LANGUAGE plpgsql SET search_path = pg_catalog, wam, pg_temp
	-- small batches with poor row estimates: JIT compilation would cost more than the query
	SET jit = off
AS $$
DECLARE
	max_attempts integer := coalesce(current_setting('wam.sender_max_attempts', true)::integer, 8);
	locked bigint[];
BEGIN
	locked := ARRAY(SELECT o.message_id FROM wam.outbox o WHERE o.message_id = ANY (ids)
					ORDER BY o.message_id FOR UPDATE SKIP LOCKED);
	IF to_regclass('pg_temp.wam_result') IS NULL THEN
	CREATE TEMP TABLE wam_result (
		message_id bigint, sender_id integer, outcome text, http integer, wamid text,
		code integer, detail text, action text, attempts integer, pair_deferrals integer
	) ON COMMIT DELETE ROWS;
	END IF;
	INSERT INTO wam_result
	SELECT r.id, o.sender_id, r.outcome, r.http,
		   CASE WHEN r.outcome = 'http' AND r.http BETWEEN 200 AND 299
				THEN nullif(j->'messages'->0->>'id', '') END,
		   CASE WHEN jsonb_typeof(j->'error'->'code') = 'number' THEN (j->'error'->>'code')::numeric::integer END,
		   left(replace(coalesce(j->'error'->'error_data'->>'details', j->'error'->>'message', r.detail,
								 CASE WHEN r.outcome = 'http'
									  THEN 'HTTP ' || r.http || coalesce(': ' || nullif(left(r.body, 200), ''), '') END),
						k.access_token, '[token]'), 1000),
		   NULL, o.attempts, o.pair_deferrals
	FROM unnest(ids, outcomes, http_statuses, bodies, details) AS r(id, outcome, http, body, detail)
	CROSS JOIN LATERAL wam_internal.try_jsonb(r.body) AS j
	JOIN wam.outbox o ON o.message_id = r.id
	LEFT JOIN wam.sender_secret k ON k.sender_id = o.sender_id
	WHERE r.id = ANY (locked);

	UPDATE wam_result SET action = CASE
		WHEN outcome = 'not_sent' THEN 'retry'
		WHEN outcome = 'not_sendable' THEN 'pause'
		WHEN outcome = 'uncertain' THEN 'uncertain'
		WHEN http BETWEEN 200 AND 299 THEN CASE WHEN wamid IS NULL THEN 'uncertain' ELSE 'sent' END
		WHEN code IS NOT NULL THEN wam.error_action(code)
		WHEN http = 429 THEN 'throttle'
		WHEN http IN (401, 403) THEN 'pause'
		WHEN http >= 500 OR http = 408 THEN 'retry'
		ELSE 'fail' END;
	UPDATE wam_result SET action = 'fail'
	WHERE action = 'retry' AND attempts >= max_attempts;
	UPDATE wam_result SET detail = 'accepted (HTTP ' || http || ') but the response carries no message id'
	WHERE action = 'uncertain' AND outcome = 'http';

	-- Only rows still in sending: a status webhook may have been faster.
	UPDATE wam.outbox o SET
		status = CASE r.action WHEN 'sent' THEN 'sent' WHEN 'uncertain' THEN 'uncertain'
							   WHEN 'fail' THEN 'failed' ELSE 'retrying' END,
		wamid = coalesce(o.wamid, r.wamid),
		sent_at = CASE WHEN r.action = 'sent' THEN pg_catalog.clock_timestamp() ELSE o.sent_at END,
		failed_at = CASE WHEN r.action = 'fail' THEN pg_catalog.clock_timestamp() ELSE o.failed_at END,
		uncertain_at = CASE WHEN r.action = 'uncertain' THEN pg_catalog.clock_timestamp() ELSE o.uncertain_at END,
		retrying_at = CASE WHEN r.action IN ('retry', 'throttle', 'defer_recipient', 'pause')
						   THEN pg_catalog.clock_timestamp() ELSE o.retrying_at END,
		error_code = CASE WHEN r.action = 'sent' THEN NULL ELSE r.code END,
		error_detail = CASE WHEN r.action = 'sent' THEN NULL ELSE r.detail END,
		-- throttling, pair deferrals and pauses are not the message's fault
		attempts = CASE WHEN r.action IN ('throttle', 'defer_recipient', 'pause') THEN o.attempts - 1
						ELSE o.attempts END,
		pair_deferrals = o.pair_deferrals + CASE WHEN r.action = 'defer_recipient' THEN 1 ELSE 0 END,
		next_attempt_at = pg_catalog.clock_timestamp() + CASE r.action
			WHEN 'retry' THEN least(interval '2 seconds' * 2 ^ greatest(r.attempts - 1, 0), interval '15 minutes')
							  * (0.5 + random())
			WHEN 'throttle' THEN interval '1 second' * (1 + random())
			WHEN 'defer_recipient' THEN interval '1 second' * 4 ^ least(r.pair_deferrals, 6)
			ELSE interval '0' END
	FROM wam_result r
	WHERE o.message_id = r.message_id AND o.status = 'sending';

	-- rows a webhook settled first still get their wamid
	UPDATE wam.outbox o SET wamid = r.wamid
	FROM wam_result r
	WHERE o.message_id = r.message_id AND o.status <> 'sending' AND o.wamid IS NULL AND r.wamid IS NOT NULL;

	UPDATE wam.sender s SET paused = true, paused_at = pg_catalog.now(),
		paused_reason = p.reason
	FROM (SELECT DISTINCT ON (r.sender_id) r.sender_id,
				 coalesce('error ' || r.code || ': ', '') || r.detail AS reason
		  FROM wam_result r WHERE r.action = 'pause' ORDER BY r.sender_id, r.message_id) p
	WHERE s.sender_id = p.sender_id AND NOT s.paused
	  AND s.sender_id IN (SELECT x.sender_id FROM wam.sender x
						  WHERE x.sender_id IN (SELECT r.sender_id FROM wam_result r WHERE r.action = 'pause')
						  FOR UPDATE SKIP LOCKED);

	RETURN QUERY
	WITH res AS (
		SELECT r.sender_id, (count(*) FILTER (WHERE r.action = 'throttle'))::integer AS throttled,
			   (array_agg(coalesce('error ' || r.code || ': ', '') || coalesce(r.detail, r.action)
						  ORDER BY r.message_id DESC) FILTER (WHERE r.action <> 'sent'))[1] AS last_error
		FROM wam_result r GROUP BY r.sender_id
	), d AS (
		SELECT o.sender_id, array_agg(o.message_id ORDER BY o.message_id) AS deferred_ids
		FROM wam.outbox o WHERE o.message_id = ANY (ids) AND o.message_id <> ALL (locked)
		GROUP BY o.sender_id
	)
	SELECT coalesce(res.sender_id, d.sender_id), coalesce(res.throttled, 0),
		   (SELECT s.paused_reason FROM wam.sender s WHERE s.sender_id = coalesce(res.sender_id, d.sender_id)
			AND s.paused),
		   res.last_error, d.deferred_ids
	FROM res FULL JOIN d ON d.sender_id = res.sender_id
	ORDER BY 1;
	DELETE FROM wam_result;
END
$$;
COMMENT ON FUNCTION wam_internal.record_results(bigint[], text[], integer[], text[], text[]) IS 'internal: the sender worker records the outcome of its requests and applies the reaction for each error code; rows locked by another session are skipped and returned as deferred';

REVOKE EXECUTE ON FUNCTION wam_internal.record_results(bigint[], text[], integer[], text[], text[]) FROM PUBLIC;

-- reporting

CREATE FUNCTION wam.delivery_report(since timestamptz, until timestamptz, sender text DEFAULT NULL)
	RETURNS TABLE (sender_name text, messages bigint, sent bigint, delivered bigint, read bigint, replied bigint,
				   failed bigint, failed_by_code jsonb, pending bigint, delivery_rate numeric, read_rate numeric,
				   reply_rate numeric, delivery_health text, read_health text, reply_health text)
	LANGUAGE plpgsql STABLE SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	sid integer;
BEGIN
	IF since IS NULL OR until IS NULL THEN
		RAISE EXCEPTION 'since and until must not be null' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	IF until < since THEN
		RAISE EXCEPTION 'until must not be before since' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF sender IS NOT NULL THEN
		sid := wam.sender_id(sender);
	END IF;
	RETURN QUERY
	WITH per AS (
		SELECT o.sender_id,
			   count(*) AS messages,
			   count(*) FILTER (WHERE o.sent_at IS NOT NULL OR o.wamid IS NOT NULL) AS sent,
			   count(*) FILTER (WHERE o.delivered_at IS NOT NULL) AS delivered,
			   count(*) FILTER (WHERE o.read_at IS NOT NULL) AS read,
			   count(*) FILTER (WHERE o.replies > 0) AS replied,
			   count(*) FILTER (WHERE o.status = 'failed') AS failed,
			   count(*) FILTER (WHERE o.status IN ('queued', 'sending', 'retrying', 'uncertain')) AS pending,
			   count(*) FILTER (WHERE o.sent_at IS NOT NULL OR o.wamid IS NOT NULL OR o.status = 'failed') AS attempted
		FROM wam.outbox o
		WHERE o.created_at >= since AND o.created_at < until AND (sid IS NULL OR o.sender_id = sid)
		GROUP BY o.sender_id
	), codes AS (
		SELECT x.sender_id, jsonb_object_agg(x.code, x.n ORDER BY x.code) AS by_code
		FROM (SELECT o.sender_id, coalesce(o.error_code::text, 'none') AS code, count(*) AS n
			  FROM wam.outbox o
			  WHERE o.created_at >= since AND o.created_at < until AND (sid IS NULL OR o.sender_id = sid)
				AND o.status = 'failed'
			  GROUP BY 1, 2) x
		GROUP BY x.sender_id
	), rates AS (
		SELECT per.*, coalesce(codes.by_code, '{}') AS by_code,
			   round(100.0 * per.delivered / nullif(per.attempted, 0), 1) AS d_rate,
			   round(100.0 * per.read / nullif(per.delivered, 0), 1) AS r_rate,
			   round(100.0 * per.replied / nullif(per.delivered, 0), 1) AS p_rate
		FROM per LEFT JOIN codes USING (sender_id)
	)
	SELECT s.name, r.messages, r.sent, r.delivered, r.read, r.replied, r.failed, r.by_code, r.pending,
		   r.d_rate, r.r_rate, r.p_rate,
		   CASE WHEN r.d_rate IS NULL THEN NULL WHEN r.d_rate < 95 THEN 'poor' WHEN r.d_rate < 98 THEN 'below normal'
				ELSE 'normal' END,
		   CASE WHEN r.r_rate IS NULL THEN NULL WHEN r.r_rate < 60 THEN 'low: check send time and opening'
				WHEN r.r_rate < 70 THEN 'below typical' WHEN r.r_rate <= 85 THEN 'typical' ELSE 'high' END,
		   CASE WHEN r.p_rate IS NULL THEN NULL WHEN r.p_rate > 5 THEN 'good' ELSE 'low' END
	FROM rates r JOIN wam.sender s USING (sender_id)
	ORDER BY s.name;
END
$$;
COMMENT ON FUNCTION wam.delivery_report(timestamptz, timestamptz, text) IS 'per sender: delivery, read and reply counts and rates';

REVOKE EXECUTE ON FUNCTION wam.delivery_report(timestamptz, timestamptz, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.delivery_report(timestamptz, timestamptz, text) TO wam_reader;

CREATE VIEW wam.worker_status AS
SELECT s.name AS sender,
	   CASE WHEN s.paused THEN 'paused'
			WHEN w.sender_id IS NULL THEN 'not running'
			ELSE w.state END AS state,
	   w.rate_per_minute AS current_rate_per_minute,
	   s.rate_per_minute AS configured_rate_per_minute,
	   w.capped_rate_per_minute,
	   coalesce(w.in_flight, 0) AS in_flight,
	   (SELECT count(*) FROM wam.outbox o
		WHERE o.sender_id = s.sender_id AND o.sending_at > pg_catalog.now() - interval '1 minute'
		  AND o.sent_at > pg_catalog.now() - interval '1 minute') AS sent_last_minute,
	   q.queue_depth,
	   q.oldest_queued_age,
	   (SELECT count(*) FROM wam.outbox o WHERE o.sender_id = s.sender_id AND o.status = 'uncertain') AS uncertain,
	   w.last_error,
	   w.last_error_at,
	   s.paused_reason
FROM wam.sender s
	 LEFT JOIN wam_internal.worker_sender_state() w ON w.sender_id = s.sender_id
	 CROSS JOIN LATERAL (SELECT count(*) AS queue_depth, pg_catalog.now() - min(o.created_at) AS oldest_queued_age
						 FROM wam.outbox o
						 WHERE o.sender_id = s.sender_id AND o.status IN ('queued', 'retrying')) q;
COMMENT ON VIEW wam.worker_status IS 'per sender: worker state, current, configured and capped rate, queue depth and last error';

REVOKE ALL ON wam.worker_status FROM PUBLIC;
GRANT SELECT ON wam.worker_status TO wam_definer;
GRANT SELECT ON wam.worker_status TO wam_reader;
-- src/sql/webhook.sql: webhook ingestion: verification, signatures, message statuses,
-- inbound messages and opt-out keywords

CREATE TABLE wam.webhook_verify_token (
	only_row boolean PRIMARY KEY DEFAULT true CONSTRAINT webhook_verify_token_one CHECK (only_row),
	token text
);
COMMENT ON TABLE wam.webhook_verify_token IS 'the verify token of the webhook endpoint';

REVOKE ALL ON wam.webhook_verify_token FROM PUBLIC;
GRANT SELECT ON wam.webhook_verify_token TO wam_admin;
GRANT SELECT, INSERT, UPDATE ON wam.webhook_verify_token TO wam_definer;

CREATE TABLE wam.opt_out_keyword (
	keyword text PRIMARY KEY,
	language text
);
COMMENT ON TABLE wam.opt_out_keyword IS 'inbound texts that opt the customer out';
INSERT INTO wam.opt_out_keyword (keyword, language) VALUES
	('stop', 'en'), ('stopall', 'en'), ('unsubscribe', 'en'), ('optout', 'en'), ('cancel', 'en'),
	('end', 'en'), ('quit', 'en'),
	('parar', 'es/pt'), ('baja', 'es'), ('cancelar', 'es/pt'), ('sair', 'pt'), ('descadastrar', 'pt'),
	('arret', 'fr'), ('arrêt', 'fr'), ('desabonner', 'fr'), ('désabonner', 'fr'),
	('stopp', 'de'), ('abmelden', 'de'), ('basta', 'it'), ('disiscriviti', 'it'),
	('退订', 'zh'), ('取消订阅', 'zh'), ('стоп', 'ru'), ('отписаться', 'ru'),
	('توقف', 'ar'), ('berhenti', 'id/ms'), ('hentikan', 'id');

REVOKE ALL ON wam.opt_out_keyword FROM PUBLIC;
GRANT INSERT, DELETE ON wam.opt_out_keyword TO wam_admin;
GRANT SELECT ON wam.opt_out_keyword TO wam_definer;
GRANT SELECT ON wam.opt_out_keyword TO wam_reader;

-- The normalised form inbound texts and keywords are compared in.
CREATE FUNCTION wam.normalize_keyword(t text) RETURNS text
	LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
	RETURN pg_catalog.lower(pg_catalog.regexp_replace(t, '[[:space:][:punct:]]+', '', 'g'));
COMMENT ON FUNCTION wam.normalize_keyword(text) IS 'inbound text as compared with the opt-out keywords';

REVOKE EXECUTE ON FUNCTION wam.normalize_keyword(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.normalize_keyword(text) TO wam_reader;

CREATE TABLE wam.inbound_message (
	wamid text PRIMARY KEY,
	sender_id integer REFERENCES wam.sender ON DELETE SET NULL,
	customer_id bigint,
	from_phone text,
	from_user_id text,
	received_at timestamptz NOT NULL,
	kind text,
	body text,
	context_wamid text,
	answered_message bigint,
	opted_out boolean NOT NULL DEFAULT false
);
CREATE INDEX inbound_message_customer ON wam.inbound_message (customer_id);
COMMENT ON TABLE wam.inbound_message IS 'inbound WhatsApp messages received by webhook';

REVOKE ALL ON wam.inbound_message FROM PUBLIC;
GRANT SELECT ON wam.inbound_message TO wam_reader;
GRANT SELECT, INSERT ON wam.inbound_message TO wam_definer;

-- small helpers (C, src/webhook.c and src/worker_shmem.c)

CREATE FUNCTION wam_internal.try_jsonb(text) RETURNS jsonb
	AS 'MODULE_PATHNAME', 'wam_try_jsonb' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION wam_internal.try_jsonb(text) IS 'the text as jsonb, or NULL when it is not valid JSON (never an error)';

REVOKE EXECUTE ON FUNCTION wam_internal.try_jsonb(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam_internal.try_jsonb(text) TO wam_reader;

CREATE FUNCTION wam_internal.hmac_sha256_matches(body text, signature text, secrets text[]) RETURNS integer
	AS 'MODULE_PATHNAME', 'wam_hmac_sha256_matches' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION wam_internal.hmac_sha256_matches(text, text, text[]) IS 'internal: position of the secret whose HMAC-SHA256 of body equals signature ("sha256=<hex>"), compared in constant time; 0 if none';

REVOKE EXECUTE ON FUNCTION wam_internal.hmac_sha256_matches(text, text, text[]) FROM PUBLIC;

CREATE FUNCTION wam.hmac_sha256(key text, message text) RETURNS text
	AS 'MODULE_PATHNAME', 'wam_hmac_sha256' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION wam.hmac_sha256(text, text) IS 'HMAC-SHA256 of message under key, as hex';

REVOKE EXECUTE ON FUNCTION wam.hmac_sha256(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.hmac_sha256(text, text) TO wam_reader;

CREATE FUNCTION wam_internal.webhook_max_body_bytes() RETURNS integer
	AS 'MODULE_PATHNAME', 'wam_webhook_max_body_bytes' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION wam_internal.webhook_max_body_bytes() IS 'internal: the setting wam.webhook_max_body_bytes in bytes (loads the library that defines it)';

REVOKE EXECUTE ON FUNCTION wam_internal.webhook_max_body_bytes() FROM PUBLIC;

-- webhooks

CREATE FUNCTION wam.configure_webhook(token text) RETURNS void
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
BEGIN
	IF token IS NULL OR length(token) < 8 THEN
		RAISE EXCEPTION 'verify token must have at least 8 characters' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	INSERT INTO wam.webhook_verify_token (token) VALUES (token)
	ON CONFLICT (only_row) DO UPDATE SET token = EXCLUDED.token;
END
$$;
COMMENT ON FUNCTION wam.configure_webhook(text) IS 'sets the webhook endpoint''s verify token';

REVOKE EXECUTE ON FUNCTION wam.configure_webhook(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.configure_webhook(text) TO wam_admin;

CREATE FUNCTION wam.webhook_challenge(mode text, token text, challenge text) RETURNS text
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	expected text;
BEGIN
	SELECT v.token INTO expected FROM wam.webhook_verify_token v;
	IF expected IS NULL THEN
		RAISE EXCEPTION 'no webhook verify token is set'
			USING ERRCODE = 'object_not_in_prerequisite_state',
				  HINT = 'Set it with wam.configure_webhook().';
	END IF;
	IF mode IS DISTINCT FROM 'subscribe' THEN
		RAISE EXCEPTION 'webhook verification mode must be "subscribe"' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF challenge IS NULL OR challenge = '' THEN
		RAISE EXCEPTION 'webhook verification challenge is missing' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	-- constant time: compare HMACs of both under the same key, not the strings
	IF token IS NULL OR wam_internal.hmac_sha256_matches(token, 'sha256=' || wam.hmac_sha256(expected, expected),
											  ARRAY[expected]) IS DISTINCT FROM 1 THEN
		RAISE EXCEPTION 'webhook verify token does not match' USING ERRCODE = 'invalid_authorization_specification';
	END IF;
	RETURN challenge;
END
$$;
COMMENT ON FUNCTION wam.webhook_challenge(text, text, text) IS 'answers Meta''s webhook verification request';

REVOKE EXECUTE ON FUNCTION wam.webhook_challenge(text, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.webhook_challenge(text, text, text) TO wam_operator;

-- the elements of a JSON array, nothing for anything else; in C for its row estimate
-- (ROWS 4: a webhook's entries, changes and statuses are a handful, and the ingestion's
-- plans must stay on index lookups of wam.outbox however large it grows)
CREATE FUNCTION wam_internal.json_elements(j jsonb) RETURNS SETOF jsonb
	AS 'MODULE_PATHNAME', 'wam_json_elements' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE ROWS 4;
COMMENT ON FUNCTION wam_internal.json_elements(jsonb) IS 'internal: elements of a JSON array, no rows for NULL or a non-array';

REVOKE EXECUTE ON FUNCTION wam_internal.json_elements(jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam_internal.json_elements(jsonb) TO wam_reader;

-- a webhook "timestamp" (a string of Unix seconds) as timestamptz; NULL when malformed
CREATE FUNCTION wam_internal.webhook_time(t text) RETURNS timestamptz
	LANGUAGE sql IMMUTABLE PARALLEL SAFE
	RETURN CASE WHEN t ~ '^[0-9]{1,11}$' THEN pg_catalog.to_timestamp(t::double precision) END;
COMMENT ON FUNCTION wam_internal.webhook_time(text) IS 'internal: a webhook timestamp (Unix seconds as a string) as timestamptz, NULL if malformed';

REVOKE EXECUTE ON FUNCTION wam_internal.webhook_time(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam_internal.webhook_time(text) TO wam_reader;

-- not STRICT, so that the planner inlines it (a STRICT function around a CASE is not inlined,
-- and each statement calling it would parse its body again)
CREATE FUNCTION wam_internal.status_rank(status text) RETURNS integer
	LANGUAGE sql IMMUTABLE PARALLEL SAFE
	RETURN CASE WHEN status IS NOT NULL THEN
		CASE status WHEN 'sent' THEN 1 WHEN 'delivered' THEN 2 WHEN 'read' THEN 3 ELSE 0 END END;
COMMENT ON FUNCTION wam_internal.status_rank(text) IS 'internal: statuses only move forward: sent < delivered < read (everything else ranks 0)';

REVOKE EXECUTE ON FUNCTION wam_internal.status_rank(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam_internal.status_rank(text) TO wam_reader;

-- No temporary tables: the changes of the body are held in variables and every statement
-- reads them from there, so nothing is resolved in pg_temp (a caller's temporary table of
-- the same name, with its triggers, would run with the definer's rights), and the planner
-- sees a few rows (wam_internal.json_elements, ROWS 4) and looks messages up by index, whatever
-- the size of wam.outbox.
CREATE FUNCTION wam.ingest_webhook(body text, signature text) RETURNS integer
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
	-- The plans are the same for every body (index lookups per status), but a custom plan
	-- for the actual arrays looks cheaper than the generic one, so the plan cache would
	-- plan the statements anew on every call: that was two thirds of a call's time.
	SET plan_cache_mode = force_generic_plan
AS $$
#variable_conflict use_variable
DECLARE
	secrets text[];
	matched integer;
	j jsonb;
	-- the "value" of each change for a sender whose app secret signed the body, and that sender
	sids integer[];
	vals jsonb[];
	has_contacts boolean := false;
	n_statuses integer := 0;
	has_messages boolean := false;
	-- every sender with an app secret (secrets), and its phone number id
	all_sids integer[];
	all_pnids text[];
	chs jsonb;
	ch jsonb;
	pos integer;
	-- the status of a body with only one
	st jsonb;
	st_rank integer;
	st_ts timestamptz;
	st_customer bigint;
	st_read_at timestamptz;
	read_customers bigint[];
	read_times timestamptz[];
	inbound wam.inbound_message[];
	n_status integer := 0;
	st_done boolean := false;
	n_message integer := 0;
	r record;
BEGIN
	PERFORM wam_internal.refuse_null(body IS NULL, 'webhook body');
	-- before the body is hashed or parsed
	IF octet_length(body) > wam_internal.webhook_max_body_bytes() THEN
		RAISE EXCEPTION 'webhook body is too large'
			USING ERRCODE = 'program_limit_exceeded',
				  DETAIL = format('The body has %s bytes; wam.webhook_max_body_bytes allows %s.',
								  octet_length(body), wam_internal.webhook_max_body_bytes());
	END IF;
	IF signature IS NULL OR signature = '' THEN
		RAISE EXCEPTION 'webhook signature is missing'
			USING ERRCODE = 'invalid_authorization_specification',
				  HINT = 'Pass the X-Hub-Signature-256 header ("sha256=<hex>").';
	END IF;
	-- senders sharing an app secret: wam_internal.hmac_sha256_matches hashes it once
	SELECT array_agg(k.app_secret), array_agg(s.sender_id), array_agg(s.phone_number_id)
	INTO secrets, all_sids, all_pnids
	FROM wam.sender s JOIN wam.sender_secret k ON k.sender_id = s.sender_id
	WHERE k.app_secret IS NOT NULL;
	matched := coalesce(wam_internal.hmac_sha256_matches(body, signature, secrets), 0);
	IF matched = 0 THEN
		RAISE EXCEPTION 'webhook signature does not match'
			USING ERRCODE = 'invalid_authorization_specification',
				  HINT = 'The signature is HMAC-SHA256 of the raw request body with a sender''s app secret; pass the body exactly as received.';
	END IF;
	j := wam_internal.try_jsonb(body);
	IF j IS NULL THEN
		RAISE EXCEPTION 'webhook body is not valid JSON' USING ERRCODE = 'invalid_text_representation';
	END IF;
	IF j->>'object' IS DISTINCT FROM 'whatsapp_business_account' THEN
		RAISE EXCEPTION 'webhook body is not a WhatsApp Business Account notification'
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = format('"object" is %s.', coalesce(j->'object', 'null'));
	END IF;

	-- only changes for senders whose app secret signed the body (walked with plain
	-- expressions: a query here cost as much as the status update)
	FOR e IN 0 .. CASE WHEN jsonb_typeof(j->'entry') = 'array' THEN jsonb_array_length(j->'entry') ELSE 0 END - 1 LOOP
		chs := j->'entry'->e->'changes';
		CONTINUE WHEN jsonb_typeof(chs) IS DISTINCT FROM 'array';
		FOR c IN 0 .. jsonb_array_length(chs) - 1 LOOP
			ch := chs->c;
			CONTINUE WHEN ch->>'field' IS DISTINCT FROM 'messages';
			pos := array_position(all_pnids, ch->'value'->'metadata'->>'phone_number_id');
			CONTINUE WHEN pos IS NULL OR secrets[pos] IS DISTINCT FROM secrets[matched];
			sids := sids || all_sids[pos];
			vals := vals || (ch->'value');
			has_contacts := has_contacts OR ch->'value' ? 'contacts';
			has_messages := has_messages OR ch->'value' ? 'messages';
			IF jsonb_typeof(ch->'value'->'statuses') = 'array' THEN
				n_statuses := n_statuses + jsonb_array_length(ch->'value'->'statuses');
			END IF;
		END LOOP;
	END LOOP;

	-- business-scoped user ids learnt from contacts that also carry the phone
	IF has_contacts THEN
		INSERT INTO wam.customer_user_id (user_id, customer_id)
		SELECT DISTINCT ON (ct->>'user_id') ct->>'user_id', c.id
		FROM unnest(vals) w(v)
			 CROSS JOIN LATERAL wam_internal.json_elements(w.v->'contacts') ct
			 JOIN wam.customer c ON c.phone = ct->>'wa_id'
		WHERE coalesce(ct->>'user_id', '') <> ''
		ORDER BY ct->>'user_id'
		ON CONFLICT (user_id) DO UPDATE SET customer_id = EXCLUDED.customer_id;
	END IF;

	-- statuses: forward only (sent < delivered < read); failed only before delivery
	IF n_statuses = 1 AND array_length(sids, 1) = 1 THEN
		-- Meta posts statuses one at a time, nearly all "sent", "delivered" or "read" of a
		-- message whose wamid is known: for these, the rules of the statement below for one
		-- status, by the wamid alone (its grouping and sorting cost twice the update itself).
		-- Anything else (a failure, a wamid not known yet) takes the statement below.
		st := vals[1]->'statuses'->0;
		st_rank := wam_internal.status_rank(st->>'status');
		IF st_rank > 0 THEN
			st_ts := coalesce(wam_internal.webhook_time(st->>'timestamp'), pg_catalog.now());
			UPDATE wam.outbox o SET
				-- a late "sent" does not undo a failure; delivery does
				status = CASE WHEN o.status = 'failed' AND st_rank < 2 THEN 'failed'
							  WHEN st_rank > wam_internal.status_rank(o.status) THEN (ARRAY['sent', 'delivered', 'read'])[st_rank]
							  ELSE o.status END,
				sent_at = coalesce(o.sent_at, st_ts),
				delivered_at = coalesce(o.delivered_at, CASE WHEN st_rank >= 2 THEN st_ts END),
				read_at = coalesce(o.read_at, CASE WHEN st_rank = 3 THEN st_ts END),
				error_detail = CASE WHEN st_rank > wam_internal.status_rank(o.status) THEN NULL ELSE o.error_detail END
			WHERE o.wamid = st->>'id'
			  -- a repeated status (Meta redelivers, a body is replayed) changes
			  -- nothing: not written and not counted (the same rules as above)
			  AND (st_rank > wam_internal.status_rank(o.status) AND NOT (o.status = 'failed' AND st_rank < 2 AND o.error_detail IS NULL)
				   OR o.sent_at IS NULL
				   OR st_rank >= 2 AND o.delivered_at IS NULL
				   OR st_rank = 3 AND o.read_at IS NULL)
			RETURNING o.customer_id, o.read_at INTO st_customer, st_read_at;
			GET DIAGNOSTICS n_status = ROW_COUNT;
			-- matched but unchanged: done, the statement below would not change it either
			st_done := n_status > 0 OR EXISTS (SELECT FROM wam.outbox o WHERE o.wamid = st->>'id');
			IF st_read_at IS NOT NULL THEN
				UPDATE wam.customer c SET last_read_at = st_read_at
				WHERE c.id = st_customer AND (c.last_read_at IS NULL OR c.last_read_at < st_read_at);
			END IF;
		END IF;
	END IF;
	IF n_statuses > 0 AND NOT st_done THEN
		WITH st AS (
			SELECT w.sender_id, s->>'id' AS wamid, s->>'status' AS status,
				   coalesce(wam_internal.webhook_time(s->>'timestamp'), pg_catalog.now()) AS ts,
				   CASE WHEN s->>'biz_opaque_callback_data' ~ '^wam:[0-9]{1,18}$'
						THEN substr(s->>'biz_opaque_callback_data', 5)::bigint END AS opaque_id,
				   CASE WHEN jsonb_typeof(s->'errors'->0->'code') = 'number'
						THEN (s->'errors'->0->>'code')::numeric::integer END AS code,
				   coalesce(s->'errors'->0->'error_data'->>'details', s->'errors'->0->>'title',
							s->'errors'->0->>'message') AS detail
			FROM unnest(sids, vals) w(sender_id, v) CROSS JOIN LATERAL wam_internal.json_elements(w.v->'statuses') s
			WHERE s->>'status' IN ('sent', 'delivered', 'read', 'failed')
		), m0 AS (
			SELECT coalesce(by_wamid.message_id, by_opaque.message_id) AS found_id, st.*
			FROM st
				 LEFT JOIN wam.outbox by_wamid ON by_wamid.wamid = st.wamid
				 -- only when the wamid is not known (a NULL key: no index descent)
				 LEFT JOIN wam.outbox by_opaque ON by_opaque.message_id = CASE WHEN by_wamid.message_id IS NULL
																			   THEN st.opaque_id END
											   AND by_opaque.sender_id = st.sender_id
											   AND (by_opaque.wamid IS NULL OR by_opaque.wamid = st.wamid)
		), m AS (
			-- a status without the callback data matches through another one of the same wamid
			SELECT coalesce(m0.found_id, max(m0.found_id) OVER (PARTITION BY m0.wamid)) AS message_id, m0.*
			FROM m0
		), f AS (
			-- the error of the earliest failure (if any): a window in the order the grouping
			-- needs anyway, instead of a sort per message and aggregate
			SELECT m.*, first_value(m.code) OVER w AS first_code, first_value(m.detail) OVER w AS first_detail
			FROM m WHERE m.message_id IS NOT NULL
			WINDOW w AS (PARTITION BY m.message_id ORDER BY m.status = 'failed' DESC, m.ts)
		), a AS (
			SELECT f.message_id, count(*) AS n, max(f.wamid) AS wamid,
				   max(wam_internal.status_rank(f.status)) AS best,
				   min(f.ts) AS sent_ts,
				   min(f.ts) FILTER (WHERE f.status IN ('delivered', 'read')) AS delivered_ts,
				   min(f.ts) FILTER (WHERE f.status = 'read') AS read_ts,
				   min(f.ts) FILTER (WHERE f.status = 'failed') AS failed_ts,
				   max(f.first_code) AS code, max(f.first_detail) AS detail
			FROM f GROUP BY f.message_id
		), u AS (
			UPDATE wam.outbox o SET
				status = CASE WHEN a.failed_ts IS NOT NULL AND greatest(a.best, wam_internal.status_rank(o.status)) < 2
								   AND o.status NOT IN ('cancelled', 'expired')
							  THEN 'failed'
							  -- a late "sent" does not undo a failure; delivery does
							  WHEN o.status = 'failed' AND a.best < 2 THEN 'failed'
							  WHEN a.best > wam_internal.status_rank(o.status)
							  THEN (ARRAY['sent', 'delivered', 'read'])[a.best]
							  ELSE o.status END,
				wamid = coalesce(o.wamid, a.wamid),
				sent_at = CASE WHEN a.best >= 1 THEN coalesce(o.sent_at, a.sent_ts) ELSE o.sent_at END,
				delivered_at = coalesce(o.delivered_at, a.delivered_ts),
				read_at = coalesce(o.read_at, a.read_ts),
				failed_at = CASE WHEN a.failed_ts IS NOT NULL AND greatest(a.best, wam_internal.status_rank(o.status)) < 2
									  AND o.status NOT IN ('cancelled', 'expired')
								 THEN coalesce(o.failed_at, a.failed_ts) ELSE o.failed_at END,
				error_code = CASE WHEN a.failed_ts IS NOT NULL AND greatest(a.best, wam_internal.status_rank(o.status)) < 2
									   AND o.status NOT IN ('cancelled', 'expired')
								  THEN a.code ELSE o.error_code END,
				error_detail = CASE WHEN a.failed_ts IS NOT NULL AND greatest(a.best, wam_internal.status_rank(o.status)) < 2
										 AND o.status NOT IN ('cancelled', 'expired')
									THEN a.detail
									WHEN a.best > wam_internal.status_rank(o.status) THEN NULL
									ELSE o.error_detail END
			FROM a WHERE o.message_id = a.message_id
			  -- only messages that change (a replay writes and counts nothing):
			  -- the new values of the SET list above, compared with the old
			  AND (o.status, o.wamid, o.sent_at, o.delivered_at, o.read_at, o.failed_at, o.error_code, o.error_detail)
				  IS DISTINCT FROM
				  (CASE WHEN a.failed_ts IS NOT NULL AND greatest(a.best, wam_internal.status_rank(o.status)) < 2
							 AND o.status NOT IN ('cancelled', 'expired')
						THEN 'failed'
						WHEN o.status = 'failed' AND a.best < 2 THEN 'failed'
						WHEN a.best > wam_internal.status_rank(o.status)
						THEN (ARRAY['sent', 'delivered', 'read'])[a.best]
						ELSE o.status END,
				   coalesce(o.wamid, a.wamid),
				   CASE WHEN a.best >= 1 THEN coalesce(o.sent_at, a.sent_ts) ELSE o.sent_at END,
				   coalesce(o.delivered_at, a.delivered_ts),
				   coalesce(o.read_at, a.read_ts),
				   CASE WHEN a.failed_ts IS NOT NULL AND greatest(a.best, wam_internal.status_rank(o.status)) < 2
							 AND o.status NOT IN ('cancelled', 'expired')
						THEN coalesce(o.failed_at, a.failed_ts) ELSE o.failed_at END,
				   CASE WHEN a.failed_ts IS NOT NULL AND greatest(a.best, wam_internal.status_rank(o.status)) < 2
							 AND o.status NOT IN ('cancelled', 'expired')
						THEN a.code ELSE o.error_code END,
				   CASE WHEN a.failed_ts IS NOT NULL AND greatest(a.best, wam_internal.status_rank(o.status)) < 2
							 AND o.status NOT IN ('cancelled', 'expired')
						THEN a.detail
						WHEN a.best > wam_internal.status_rank(o.status) THEN NULL
						ELSE o.error_detail END)
			RETURNING o.customer_id, o.read_at, a.n
		)
		SELECT coalesce(sum(u.n), 0), array_agg(u.customer_id) FILTER (WHERE u.read_at IS NOT NULL),
			   array_agg(u.read_at) FILTER (WHERE u.read_at IS NOT NULL)
		INTO n_status, read_customers, read_times FROM u;
		-- apart, so that a body without reads does not even open wam.customer
		IF read_customers IS NOT NULL THEN
			UPDATE wam.customer c SET last_read_at = x.read_at
			FROM (SELECT rt.customer_id, max(rt.read_at) AS read_at FROM unnest(read_customers, read_times) rt(customer_id, read_at)
				  GROUP BY 1) x
			WHERE c.id = x.customer_id AND (c.last_read_at IS NULL OR c.last_read_at < x.read_at);
		END IF;
	END IF;

	IF NOT has_messages THEN
		RETURN n_status;
	END IF;
	-- inbound messages, deduplicated by their wamid; the new ones are kept in "inbound"
	WITH msg AS (
		SELECT w.sender_id, m->>'id' AS wamid, nullif(m->>'from', '') AS from_phone,
			   coalesce(nullif(m->>'from_user_id', ''),
						(SELECT nullif(ct->>'user_id', '') FROM wam_internal.json_elements(w.v->'contacts') ct
						 WHERE ct->>'wa_id' = m->>'from' OR m->>'from' IS NULL LIMIT 1)) AS from_user_id,
			   coalesce(wam_internal.webhook_time(m->>'timestamp'), pg_catalog.now()) AS ts,
			   m->>'type' AS kind,
			   coalesce(m->'text'->>'body', m->'button'->>'text', m->'interactive'->'button_reply'->>'title',
						m->'interactive'->'list_reply'->>'title', m->'image'->>'caption') AS body,
			   m->'context'->>'id' AS context_wamid
		FROM unnest(sids, vals) w(sender_id, v) CROSS JOIN LATERAL wam_internal.json_elements(w.v->'messages') m
		WHERE coalesce(m->>'id', '') <> ''
	), who AS (
		SELECT msg.*, coalesce(c.id, bs.customer_id) AS customer_id
		FROM msg
			 LEFT JOIN wam.customer c ON c.phone = msg.from_phone
			 LEFT JOIN wam.customer_user_id bs ON bs.user_id = msg.from_user_id
	), ins AS (
		INSERT INTO wam.inbound_message AS im (wamid, sender_id, customer_id, from_phone, from_user_id,
											   received_at, kind, body, context_wamid, answered_message, opted_out)
		SELECT DISTINCT ON (who.wamid) who.wamid, who.sender_id, who.customer_id, who.from_phone, who.from_user_id,
			   who.ts, who.kind, who.body, who.context_wamid,
			   -- the message it quotes, else the last one sent to the customer in the 24 h before
			   coalesce((SELECT o.message_id FROM wam.outbox o WHERE o.wamid = who.context_wamid),
						(SELECT o.message_id FROM wam.outbox o
						 WHERE who.customer_id IS NOT NULL AND o.customer_id = who.customer_id
						   AND o.sender_id = who.sender_id
						   AND o.sent_at BETWEEN who.ts - interval '24 hours' AND who.ts
						 ORDER BY o.sent_at DESC LIMIT 1)),
			   who.customer_id IS NOT NULL AND who.body IS NOT NULL
			   AND EXISTS (SELECT FROM wam.opt_out_keyword k
						   WHERE wam.normalize_keyword(k.keyword) = wam.normalize_keyword(who.body))
		FROM who ORDER BY who.wamid
		ON CONFLICT (wamid) DO NOTHING
		RETURNING im
	)
	SELECT array_agg(ins.im), count(*) INTO inbound, n_message FROM ins;

	IF n_message > 0 THEN
		-- the customer wrote: the 24-hour window is open again
		UPDATE wam.customer c SET last_inbound_at = x.ts
		FROM (SELECT i.customer_id, max(i.received_at) AS ts FROM unnest(inbound) i
			  WHERE i.customer_id IS NOT NULL GROUP BY 1) x
		WHERE c.id = x.customer_id AND (c.last_inbound_at IS NULL OR c.last_inbound_at < x.ts);
		UPDATE wam.outbox o SET replies = o.replies + x.n, replied_at = coalesce(o.replied_at, x.ts)
		FROM (SELECT i.answered_message, count(*) AS n, min(i.received_at) AS ts FROM unnest(inbound) i
			  WHERE i.answered_message IS NOT NULL AND NOT i.opted_out GROUP BY 1) x
		WHERE o.message_id = x.answered_message;
		INSERT INTO wam.event (customer_id, kind, occurred_at, details)
		SELECT i.customer_id, CASE WHEN i.answered_message IS NOT NULL THEN 'reply' ELSE 'inbound_message' END,
			   i.received_at,
			   jsonb_strip_nulls(jsonb_build_object('wamid', i.wamid, 'type', i.kind, 'text', i.body,
													'answers', i.answered_message, 'sender_id', i.sender_id))
		FROM unnest(inbound) i WHERE i.customer_id IS NOT NULL
		ORDER BY i.received_at;
		FOR r IN SELECT DISTINCT ON (i.customer_id) i.customer_id, i.body FROM unnest(inbound) i
				 WHERE i.opted_out ORDER BY i.customer_id, i.received_at LOOP
			PERFORM wam.record_opt_out(r.customer_id, format('replied "%s" on WhatsApp', left(r.body, 100)));
		END LOOP;
	END IF;
	RETURN n_status + n_message;
END
$$;
COMMENT ON FUNCTION wam.ingest_webhook(text, text) IS 'verifies and applies a webhook POST; returns the updates applied';

REVOKE EXECUTE ON FUNCTION wam.ingest_webhook(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.ingest_webhook(text, text) TO wam_operator;
-- src/sql/referral.sql: referral programs: codes and links, the abuse-check
-- trigger (C), qualification by the invitee's first order, tiered rewards within
-- cost caps, review and report
-- The per-installation secret that keys the referral codes.  Only the
-- extension owner can read it: no role is granted anything on it.
CREATE TABLE wam.referral_secret (
	id boolean PRIMARY KEY DEFAULT true CONSTRAINT referral_secret_one_row CHECK (id),
	secret bytea NOT NULL CONSTRAINT referral_secret_length CHECK (length(secret) >= 32),
	created_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);
-- two version-4 UUIDs: 244 bits from the server's strong random source
INSERT INTO wam.referral_secret (secret)
SELECT pg_catalog.decode(pg_catalog.replace(pg_catalog.gen_random_uuid()::text || pg_catalog.gen_random_uuid()::text, '-', ''), 'hex');
COMMENT ON TABLE wam.referral_secret IS 'the secret key of the referral codes (never granted)';

REVOKE ALL ON wam.referral_secret FROM PUBLIC;
GRANT SELECT ON wam.referral_secret TO wam_definer;

CREATE TABLE wam.referral_program (
	id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	name text NOT NULL UNIQUE CONSTRAINT referral_program_name CHECK (btrim(name) <> '' AND length(name) <= 100),
	preset text,
	cap integer NOT NULL,
	velocity_per_hour integer NOT NULL,
	min_order numeric NOT NULL,
	qualify_window interval NOT NULL,
	hold interval NOT NULL,
	cost_cap_share numeric NOT NULL,
	flat_cost_cap numeric,
	ring_depth integer NOT NULL,
	signup_grace interval NOT NULL,
	tiers jsonb NOT NULL,
	business_number text,
	landing_url text,
	message text NOT NULL,
	starts_at timestamptz,
	ends_at timestamptz,
	benchmark jsonb,
	reward_template jsonb,
	sender text,
	created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	updated_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE wam.referral_program IS 'referral programs and their settings';

REVOKE ALL ON wam.referral_program FROM PUBLIC;
GRANT SELECT ON wam.referral_program TO wam_reader;
GRANT SELECT, INSERT, UPDATE ON wam.referral_program TO wam_definer;

-- One row per customer and program once the customer's code was issued:
-- the code, and the counters the abuse trigger locks and updates.
CREATE TABLE wam.referrer (
	customer_id bigint NOT NULL REFERENCES wam.customer ON DELETE CASCADE,
	program_id integer NOT NULL REFERENCES wam.referral_program ON DELETE CASCADE,
	code text NOT NULL UNIQUE,
	issued_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	status text NOT NULL DEFAULT 'active' CONSTRAINT referrer_status CHECK (status IN ('active', 'frozen')),
	frozen_at timestamptz,
	velocity_since timestamptz,
	recent_attempts timestamptz[] NOT NULL DEFAULT '{}',
	accepted integer NOT NULL DEFAULT 0,
	qualified integer NOT NULL DEFAULT 0,
	PRIMARY KEY (customer_id, program_id)
) WITH (fillfactor = 70);
COMMENT ON COLUMN wam.referrer.velocity_since IS 'when a review last cleared the referrer: invitations before it no longer count towards velocity_per_hour';
COMMENT ON COLUMN wam.referrer.recent_attempts IS 'times of the referrer''s latest invitations within the last hour (at most velocity_per_hour + 1 of them): the rolling-hour count, kept in the row the trigger locks anyway';
COMMENT ON TABLE wam.referrer IS 'issued referral codes with per-referrer counters';

REVOKE ALL ON wam.referrer FROM PUBLIC;
GRANT SELECT ON wam.referrer TO wam_reader;
GRANT SELECT, INSERT, UPDATE ON wam.referrer TO wam_definer;

CREATE TABLE wam.customer_fingerprint (
	customer_id bigint NOT NULL REFERENCES wam.customer ON DELETE CASCADE,
	kind text NOT NULL CONSTRAINT customer_fingerprint_kind CHECK (kind IN ('device', 'payment')),
	value_hash bytea NOT NULL,
	first_seen timestamptz NOT NULL DEFAULT pg_catalog.now(),
	PRIMARY KEY (customer_id, kind, value_hash)
);
COMMENT ON TABLE wam.customer_fingerprint IS 'hashed device and payment fingerprints per customer';

REVOKE ALL ON wam.customer_fingerprint FROM PUBLIC;
GRANT SELECT, INSERT ON wam.customer_fingerprint TO wam_definer;

CREATE TABLE wam.referral (
	id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	-- program and referrer are set by the trigger from the code's wam.referrer
	-- row; no foreign keys (each would lock the program row FOR KEY SHARE on
	-- every insert, from every session): deleting a referrer row (its
	-- customer or program deleted) deletes its referrals by trigger instead
	program_id integer,
	referrer_id bigint,
	invitee_id bigint NOT NULL REFERENCES wam.customer ON DELETE CASCADE,
	code text NOT NULL,
	source jsonb,
	created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	status text NOT NULL DEFAULT 'pending'
		CONSTRAINT referral_status CHECK (status IN ('pending', 'review', 'rejected', 'qualified', 'lapsed', 'revoked')),
	reason text CONSTRAINT referral_reason CHECK (reason IN (
		'mistyped code', 'unknown code', 'program inactive', 'self-referral', 'same phone',
		'shared device', 'shared payment', 'existing customer', 'already referred', 'ring', 'cap',
		'velocity', 'referrer frozen', 'review rejected', 'first order below minimum',
		'window passed', 'refund')),
	detail text,
	order_id bigint,
	qualified_at timestamptz,
	closed_at timestamptz,
	CONSTRAINT referral_rejected_reason CHECK (status <> 'rejected' OR reason IS NOT NULL)
);
CREATE INDEX referral_referrer_time ON wam.referral (referrer_id, created_at);
-- first valid referral wins: at most one live referral per invitee and program
CREATE UNIQUE INDEX referral_invitee_once ON wam.referral (invitee_id, program_id)
	WHERE status IN ('pending', 'qualified', 'review');
COMMENT ON TABLE wam.referral IS 'every referral attempt with its status and reason';
COMMENT ON COLUMN wam.referral.code IS 'the code in canonical form, or as typed when it is not a valid code';
COMMENT ON COLUMN wam.referral.source IS 'what the application knows about the attempt: phone (typed at sign-up), device and payment fingerprints, channel, utm_* ...';
COMMENT ON COLUMN wam.referral.order_id IS 'the invitee''s first order, which qualified (or failed to qualify) the referral';

REVOKE ALL ON wam.referral FROM PUBLIC;
GRANT SELECT ON wam.referral TO wam_reader;
GRANT SELECT, INSERT, UPDATE, DELETE ON wam.referral TO wam_definer;
GRANT USAGE ON SEQUENCE wam.referral_id_seq TO wam_definer;

CREATE TABLE wam.referral_review (
	id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	program_id integer NOT NULL REFERENCES wam.referral_program ON DELETE CASCADE,
	referrer_id bigint NOT NULL REFERENCES wam.customer ON DELETE CASCADE,
	kind text NOT NULL CONSTRAINT referral_review_kind CHECK (kind IN ('velocity')),
	opened_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	details jsonb,
	resolved_at timestamptz,
	resolution text CONSTRAINT referral_review_resolution CHECK (resolution IN ('accepted', 'rejected')),
	resolved_by name,
	note text,
	CONSTRAINT referral_review_resolved CHECK ((resolved_at IS NULL) = (resolution IS NULL))
);
CREATE UNIQUE INDEX referral_review_open ON wam.referral_review (program_id, referrer_id) WHERE resolved_at IS NULL;
COMMENT ON TABLE wam.referral_review IS 'referrers frozen for too many invitations, awaiting review';

REVOKE ALL ON wam.referral_review FROM PUBLIC;
GRANT SELECT ON wam.referral_review TO wam_reader;
GRANT SELECT, INSERT, UPDATE ON wam.referral_review TO wam_definer;
GRANT USAGE ON SEQUENCE wam.referral_review_id_seq TO wam_definer;

CREATE TABLE wam.referral_reward (
	id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	program_id integer NOT NULL REFERENCES wam.referral_program ON DELETE CASCADE,
	referrer_id bigint NOT NULL REFERENCES wam.customer ON DELETE CASCADE,
	tier integer NOT NULL,
	reward text NOT NULL,
	cost numeric NOT NULL,
	redemption_code text NOT NULL UNIQUE,
	status text NOT NULL CONSTRAINT referral_reward_status CHECK (status IN ('issued', 'held', 'revoked')),
	reason text,
	cost_cap numeric,
	spent_before numeric NOT NULL DEFAULT 0,
	created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	decided_at timestamptz,
	notify_status text NOT NULL
		CONSTRAINT referral_reward_notify_status CHECK (notify_status IN ('waiting', 'queued', 'refused', 'not configured', 'cancelled')),
	notify_detail text,
	-- no foreign key: old outbox rows may be purged without touching rewards
	message_id bigint,
	CONSTRAINT referral_reward_queued CHECK (notify_status <> 'queued' OR message_id IS NOT NULL)
);
CREATE UNIQUE INDEX referral_reward_tier_once ON wam.referral_reward (referrer_id, program_id, tier) WHERE status <> 'revoked';
-- rewards whose message could not be queued: what wam.notify_referral_reward retries
CREATE INDEX referral_reward_notify ON wam.referral_reward (created_at) WHERE notify_status IN ('refused', 'not configured');
CREATE UNIQUE INDEX referral_reward_message ON wam.referral_reward (message_id) WHERE message_id IS NOT NULL;
COMMENT ON TABLE wam.referral_reward IS 'rewards of referrers who reached a tier, with their message';
COMMENT ON COLUMN wam.referral_reward.notify_status IS 'the referrer''s message: waiting = held, not to be sent yet; queued = in wam.outbox as message_id (its delivery status is there); refused = the queue refused it (no consent, opted out, a placeholder without value: see notify_detail); not configured = the program has no reward_template or no usable sender; cancelled = the reward was revoked before the message went out';
COMMENT ON COLUMN wam.referral_reward.notify_detail IS 'why the message was not queued (the queue''s own refusal), or was cancelled';
COMMENT ON COLUMN wam.referral_reward.message_id IS 'the message of wam.outbox that tells the referrer the redemption code (campaign referral:<program>, variant tier <n>)';
COMMENT ON COLUMN wam.referral_reward.cost_cap IS 'the referrer''s reward budget when the reward was decided (flat_cost_cap, or cost_cap_share x lifetime value)';
COMMENT ON COLUMN wam.referral_reward.spent_before IS 'cost of the referrer''s rewards already issued (all programs) when this one was decided';

REVOKE ALL ON wam.referral_reward FROM PUBLIC;
GRANT SELECT ON wam.referral_reward TO wam_reader;
GRANT SELECT, INSERT, UPDATE ON wam.referral_reward TO wam_definer;
GRANT USAGE ON SEQUENCE wam.referral_reward_id_seq TO wam_definer;

-- C functions

CREATE FUNCTION wam_internal.referral_code_make(secret bytea, program integer, customer bigint, attempt integer) RETURNS text
	AS 'MODULE_PATHNAME', 'wam_referral_code_make' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION wam_internal.referral_code_make(bytea, integer, bigint, integer) IS 'internal: the referral code of (program, customer): HMAC-SHA256 under the secret, 10 Crockford base-32 symbols and a check symbol';

REVOKE EXECUTE ON FUNCTION wam_internal.referral_code_make(bytea, integer, bigint, integer) FROM PUBLIC;

CREATE FUNCTION wam.normalize_referral_code(code text) RETURNS text
	AS 'MODULE_PATHNAME', 'wam_referral_code_normalize' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION wam.normalize_referral_code(text) IS 'canonical form of a typed referral code; error on a typo';

REVOKE EXECUTE ON FUNCTION wam.normalize_referral_code(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.normalize_referral_code(text) TO wam_reader;

CREATE FUNCTION wam_internal.referral_attempts(times timestamptz[], at timestamptz, velocity integer) RETURNS timestamptz[]
	AS 'MODULE_PATHNAME', 'wam_referral_attempts' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION wam_internal.referral_attempts(timestamptz[], timestamptz, integer) IS 'internal: the rolling-hour attempt times of a referrer after an attempt at "at" (the newest velocity + 1 within the hour, ascending)';

REVOKE EXECUTE ON FUNCTION wam_internal.referral_attempts(timestamptz[], timestamptz, integer) FROM PUBLIC;

CREATE FUNCTION wam.redemption_code() RETURNS text
	AS 'MODULE_PATHNAME', 'wam_redemption_code' LANGUAGE C VOLATILE PARALLEL SAFE;
COMMENT ON FUNCTION wam.redemption_code() IS 'a fresh random 13-character redemption code';

REVOKE EXECUTE ON FUNCTION wam.redemption_code() FROM PUBLIC;

CREATE FUNCTION wam_internal.referral_check_trigger() RETURNS trigger
	AS 'MODULE_PATHNAME', 'wam_referral_check' LANGUAGE C;
COMMENT ON FUNCTION wam_internal.referral_check_trigger() IS 'trigger: the abuse checks of a referral attempt (code, self-referral, same phone, shared device or payment, existing customer, already referred, ring, cap, velocity freeze); sets program, referrer, status, reason and detail';

CREATE TRIGGER referral_check BEFORE INSERT ON wam.referral
	FOR EACH ROW EXECUTE FUNCTION wam_internal.referral_check_trigger();

REVOKE EXECUTE ON FUNCTION wam_internal.referral_check_trigger() FROM PUBLIC;

CREATE FUNCTION wam_internal.referrer_delete_trigger() RETURNS trigger
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
BEGIN
	DELETE FROM wam.referral r WHERE r.referrer_id = OLD.customer_id AND r.program_id = OLD.program_id;
	RETURN NULL;
END
$$;
COMMENT ON FUNCTION wam_internal.referrer_delete_trigger() IS 'trigger: a deleted referrer (customer or program deleted) takes its referrals along';
CREATE TRIGGER referrer_delete AFTER DELETE ON wam.referrer
	FOR EACH ROW EXECUTE FUNCTION wam_internal.referrer_delete_trigger();

REVOKE EXECUTE ON FUNCTION wam_internal.referrer_delete_trigger() FROM PUBLIC;

-- settings

-- The defaults (R-F3, R-F5) and the industry presets (R-F7).  A preset's
-- benchmark (reward, cost per invite, conversion, payback months) is kept in
-- the settings and compared with in wam.referral_report.
CREATE FUNCTION wam.referral_defaults(preset text DEFAULT NULL) RETURNS jsonb
	LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, wam, pg_temp
AS $$
DECLARE
	base jsonb := jsonb_build_object(
		'cap', 10, 'velocity_per_hour', 50, 'min_order', 199, 'qualify_window', '30 days',
		'hold', '14 days', 'cost_cap_share', 0.15, 'flat_cost_cap', NULL, 'ring_depth', 5,
		'signup_grace', '1 day',
		'tiers', '[{"at": 1, "reward": "50-unit coupon", "cost": 50},
				   {"at": 5, "reward": "free trial sample", "cost": 8},
				   {"at": 10, "reward": "full-size product", "cost": 60}]'::jsonb,
		'business_number', NULL, 'landing_url', NULL,
		'message', 'Hi! A friend invited me. My invitation code: {code}',
		'starts_at', NULL, 'ends_at', NULL, 'preset', NULL, 'benchmark', NULL,
		'reward_template', NULL, 'sender', NULL);
BEGIN
	RETURN base || CASE preset
		WHEN 'retail e-commerce' THEN jsonb_build_object('preset', preset,
			'tiers', '[{"at": 1, "reward": "50-unit coupon", "cost": 25},
					   {"at": 5, "reward": "free trial sample", "cost": 8},
					   {"at": 10, "reward": "full-size product", "cost": 60}]'::jsonb,
			'benchmark', '{"reward": "50-unit coupon", "cost_per_invite": [18, 25], "conversion": 0.28, "payback_months": 1.2}'::jsonb)
		WHEN 'online education' THEN jsonb_build_object('preset', preset,
			'tiers', '[{"at": 1, "reward": "7-day course trial", "cost": 8},
					   {"at": 3, "reward": "7-day membership", "cost": 8}]'::jsonb,
			'min_order', 0,
			'benchmark', '{"reward": "7-day course trial", "cost_per_invite": [6, 8], "conversion": 0.35, "payback_months": 2.5}'::jsonb)
		WHEN 'local services' THEN jsonb_build_object('preset', preset,
			'tiers', '[{"at": 1, "reward": "20% off the second booking", "cost": 40}]'::jsonb,
			'benchmark', '{"reward": "20% off the second booking", "cost_per_invite": [30, 40], "conversion": 0.22, "payback_months": 0.8}'::jsonb)
		ELSE '{}'::jsonb END;
END
$$;
COMMENT ON FUNCTION wam.referral_defaults(text) IS 'default program settings, optionally with a preset applied';

REVOKE EXECUTE ON FUNCTION wam.referral_defaults(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.referral_defaults(text) TO wam_reader;

-- Validates settings given by an administrator and merges them into base;
-- returns the complete normalized settings.
-- (PARALLEL UNSAFE: the EXCEPTION blocks start subtransactions)
CREATE FUNCTION wam_internal.referral_settings(given jsonb, base jsonb) RETURNS jsonb
	LANGUAGE plpgsql STABLE SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	known text[] := ARRAY['preset', 'cap', 'velocity_per_hour', 'min_order', 'qualify_window', 'hold',
						  'cost_cap_share', 'flat_cost_cap', 'ring_depth', 'signup_grace', 'tiers',
						  'business_number', 'landing_url', 'message', 'starts_at', 'ends_at', 'benchmark',
						  'reward_template', 'sender'];
	-- placeholders of reward_template besides the customer's ({name},
	-- {first_name}, {phone}, {locale}, {customer_id}) and its fallbacks
	reward_vars text[] := ARRAY['reward', 'redemption_code', 'tier', 'cost', 'program'];
	k text;
	v jsonb;
	s jsonb;
	lo integer;
	hi integer;
	iv interval;
	ts timestamptz;
	t jsonb;
	prev integer := 0;
	tiers jsonb := '[]';
BEGIN
	IF given IS NULL THEN
		given := '{}';
	END IF;
	IF jsonb_typeof(given) <> 'object' THEN
		RAISE EXCEPTION 'referral program settings must be a JSON object, not %', jsonb_typeof(given)
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	FOR k IN SELECT jsonb_object_keys(given) LOOP
		IF NOT k = ANY (known) THEN
			RAISE EXCEPTION 'unknown referral program setting "%"', k
				USING ERRCODE = 'invalid_parameter_value',
					  HINT = 'Known settings: ' || array_to_string(known, ', ') || '.';
		END IF;
	END LOOP;
	IF given ? 'preset' AND jsonb_typeof(given -> 'preset') <> 'null' THEN
		IF jsonb_typeof(given -> 'preset') <> 'string'
		   OR NOT (given ->> 'preset') IN ('retail e-commerce', 'online education', 'local services') THEN
			RAISE EXCEPTION 'unknown referral program preset %', given -> 'preset'
				USING ERRCODE = 'invalid_parameter_value',
					  HINT = 'Presets: retail e-commerce, online education, local services.';
		END IF;
		-- a preset resets what presets define; the other given keys override it
		base := base || jsonb_build_object('preset', given ->> 'preset')
			|| (SELECT jsonb_object_agg(d.key, d.value) FROM jsonb_each(wam.referral_defaults(given ->> 'preset')) d
				WHERE d.key IN ('tiers', 'min_order', 'benchmark'));
	END IF;
	s := base || (given - 'preset');

	-- whole numbers
	FOR k IN SELECT unnest(ARRAY['cap', 'velocity_per_hour', 'ring_depth']) LOOP
		v := s -> k;
		lo := CASE k WHEN 'ring_depth' THEN 2 ELSE 1 END;
		hi := CASE k WHEN 'ring_depth' THEN 20 ELSE 1000000 END;
		IF jsonb_typeof(v) IS DISTINCT FROM 'number' OR (v #>> '{}')::numeric <> trunc((v #>> '{}')::numeric)
		   OR (v #>> '{}')::numeric < lo OR (v #>> '{}')::numeric > hi THEN
			RAISE EXCEPTION 'referral program setting % must be a whole number from % to %, not %', k, lo, hi, v
				USING ERRCODE = 'invalid_parameter_value';
		END IF;
		s := jsonb_set(s, ARRAY[k], to_jsonb((v #>> '{}')::integer));
	END LOOP;
	-- amounts and shares
	FOR k IN SELECT unnest(ARRAY['min_order', 'cost_cap_share', 'flat_cost_cap']) LOOP
		v := s -> k;
		IF k = 'flat_cost_cap' AND jsonb_typeof(v) = 'null' THEN
			CONTINUE;
		END IF;
		IF jsonb_typeof(v) IS DISTINCT FROM 'number' OR (v #>> '{}')::numeric < 0
		   OR (k = 'cost_cap_share' AND (v #>> '{}')::numeric > 1) THEN
			RAISE EXCEPTION 'referral program setting % must be a number %, not %', k,
				(CASE k WHEN 'cost_cap_share' THEN 'from 0 to 1' ELSE 'of at least 0' END), v
				USING ERRCODE = 'invalid_parameter_value';
		END IF;
	END LOOP;
	-- intervals
	FOR k IN SELECT unnest(ARRAY['qualify_window', 'hold', 'signup_grace']) LOOP
		v := s -> k;
		BEGIN
			iv := (v #>> '{}')::interval;
		EXCEPTION WHEN invalid_datetime_format OR datetime_field_overflow OR interval_field_overflow THEN
			iv := NULL;
		END;
		IF jsonb_typeof(v) IS DISTINCT FROM 'string' OR iv IS NULL OR iv < interval '0'
		   OR (k = 'qualify_window' AND iv = interval '0') OR NOT isfinite(iv) THEN
			RAISE EXCEPTION 'referral program setting % must be a % interval such as "30 days", not %', k,
				(CASE k WHEN 'qualify_window' THEN 'positive' ELSE 'non-negative' END), v
				USING ERRCODE = 'invalid_parameter_value';
		END IF;
		s := jsonb_set(s, ARRAY[k], to_jsonb(iv::text));
	END LOOP;
	-- times
	FOR k IN SELECT unnest(ARRAY['starts_at', 'ends_at']) LOOP
		v := s -> k;
		IF jsonb_typeof(v) = 'null' THEN
			CONTINUE;
		END IF;
		BEGIN
			ts := (v #>> '{}')::timestamptz;
		EXCEPTION WHEN invalid_datetime_format OR datetime_field_overflow THEN
			ts := NULL;
		END;
		IF jsonb_typeof(v) IS DISTINCT FROM 'string' OR ts IS NULL THEN
			RAISE EXCEPTION 'referral program setting % must be a time such as "2026-01-01 00:00+08", not %', k, v
				USING ERRCODE = 'invalid_parameter_value';
		END IF;
		s := jsonb_set(s, ARRAY[k], to_jsonb(ts));
	END LOOP;
	IF jsonb_typeof(s -> 'starts_at') = 'string' AND jsonb_typeof(s -> 'ends_at') = 'string'
	   AND (s ->> 'ends_at')::timestamptz <= (s ->> 'starts_at')::timestamptz THEN
		RAISE EXCEPTION 'referral program ends_at must be after starts_at' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	-- tiers
	v := s -> 'tiers';
	IF jsonb_typeof(v) IS DISTINCT FROM 'array' OR jsonb_array_length(v) = 0 THEN
		RAISE EXCEPTION 'referral program setting tiers must be a non-empty JSON array'
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Example: [{"at": 1, "reward": "50-unit coupon", "cost": 50}, {"at": 5, "reward": "sample", "cost": 8}].';
	END IF;
	FOR t IN SELECT e FROM jsonb_array_elements(v) e LOOP
		IF jsonb_typeof(t) <> 'object' OR NOT (t ? 'at' AND t ? 'reward' AND t ? 'cost')
		   OR EXISTS (SELECT FROM jsonb_object_keys(t) x WHERE x NOT IN ('at', 'reward', 'cost'))
		   OR jsonb_typeof(t -> 'at') <> 'number' OR jsonb_typeof(t -> 'reward') <> 'string'
		   OR jsonb_typeof(t -> 'cost') <> 'number' OR btrim(t ->> 'reward') = ''
		   OR (t ->> 'cost')::numeric < 0
		   OR (t ->> 'at')::numeric <> trunc((t ->> 'at')::numeric) OR (t ->> 'at')::numeric < 1
		   OR (t ->> 'at')::numeric > 1000000 THEN
			RAISE EXCEPTION 'invalid referral tier %', t
				USING ERRCODE = 'invalid_parameter_value',
					  DETAIL = 'A tier is {"at": referrals (a whole number of at least 1), "reward": text, "cost": amount of at least 0}.';
		END IF;
		IF (t ->> 'at')::integer <= prev THEN
			RAISE EXCEPTION 'referral tiers must be in increasing order of "at"'
				USING ERRCODE = 'invalid_parameter_value', DETAIL = format('%s follows a tier at %s.', t, prev);
		END IF;
		prev := (t ->> 'at')::integer;
		tiers := tiers || jsonb_build_array(jsonb_build_object('at', (t ->> 'at')::integer,
			'reward', btrim(t ->> 'reward'), 'cost', (t ->> 'cost')::numeric));
	END LOOP;
	s := jsonb_set(s, '{tiers}', tiers);
	-- texts
	v := s -> 'business_number';
	IF jsonb_typeof(v) <> 'null' THEN
		IF jsonb_typeof(v) <> 'string' OR wam.phone_problem(v #>> '{}') IS NOT NULL THEN
			RAISE EXCEPTION 'referral program setting business_number must be an international phone number, not %', v
				USING ERRCODE = 'invalid_parameter_value',
					  DETAIL = coalesce(wam.phone_problem(v #>> '{}'), 'It must be a JSON string.'),
					  HINT = 'Give the WhatsApp business number with its country code, e.g. "+852 5123 4567".';
		END IF;
		s := jsonb_set(s, '{business_number}', to_jsonb(wam.normalize_phone(v #>> '{}')));
	END IF;
	v := s -> 'landing_url';
	IF jsonb_typeof(v) <> 'null' AND (jsonb_typeof(v) <> 'string' OR (v #>> '{}') !~ '^https://[^/?#[:space:]]+[^[:space:]]*$') THEN
		RAISE EXCEPTION 'referral program setting landing_url must be an https:// URL, not %', v
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	v := s -> 'message';
	IF jsonb_typeof(v) IS DISTINCT FROM 'string' OR strpos(v #>> '{}', '{code}') = 0 OR length(v #>> '{}') > 1000 THEN
		RAISE EXCEPTION 'referral program setting message must be a text of at most 1000 characters containing {code}, not %', v
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	v := s -> 'benchmark';
	IF jsonb_typeof(v) NOT IN ('null', 'object') THEN
		RAISE EXCEPTION 'referral program setting benchmark must be a JSON object, not %', v
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	-- the referrer's message (R-F2): an approved template, since the
	-- referrer's 24-hour window is usually closed when the invitee orders
	v := s -> 'reward_template';
	IF jsonb_typeof(v) <> 'null' THEN
		IF jsonb_typeof(v) <> 'object' OR NOT (v ? 'name' AND v ? 'language')
		   OR EXISTS (SELECT FROM jsonb_object_keys(v) x WHERE x NOT IN ('name', 'language', 'parameters', 'fallbacks')) THEN
			RAISE EXCEPTION 'referral program setting reward_template must be an object with name, language and optionally parameters and fallbacks, not %', v
				USING ERRCODE = 'invalid_parameter_value',
					  HINT = 'Example: {"name": "referral_reward", "language": "en", "parameters": ["{first_name}", "{reward}", "{redemption_code}"], "fallbacks": {"first_name": "there"}}.';
		END IF;
		IF jsonb_typeof(v -> 'name') <> 'string' OR (v ->> 'name') !~ '^[a-z0-9_]+$' OR length(v ->> 'name') > 512 THEN
			RAISE EXCEPTION 'reward_template name must be the name of an approved WhatsApp template (lower-case letters, digits and underscores), not %', v -> 'name'
				USING ERRCODE = 'invalid_parameter_value';
		END IF;
		IF jsonb_typeof(v -> 'language') <> 'string' OR (v ->> 'language') !~ '^[a-z]{2,3}(_[A-Za-z0-9]{2,4})?$' THEN
			RAISE EXCEPTION 'reward_template language must be a template language code such as "en" or "pt_BR", not %', v -> 'language'
				USING ERRCODE = 'invalid_parameter_value';
		END IF;
		IF NOT v ? 'parameters' THEN
			v := v || '{"parameters": ["{reward}", "{redemption_code}"]}';
		END IF;
		IF jsonb_typeof(v -> 'parameters') <> 'array'
		   OR EXISTS (SELECT FROM jsonb_array_elements(v -> 'parameters') e
					  WHERE jsonb_typeof(e) <> 'string' OR btrim(e #>> '{}') = '') THEN
			RAISE EXCEPTION 'reward_template parameters must be a JSON array of non-empty texts, not %', v -> 'parameters'
				USING ERRCODE = 'invalid_parameter_value',
					  DETAIL = 'They fill the template''s body variables {{1}}, {{2}}, ... in order.';
		END IF;
		IF NOT v ? 'fallbacks' THEN
			v := v || '{"fallbacks": {}}';
		END IF;
		IF jsonb_typeof(v -> 'fallbacks') <> 'object'
		   OR EXISTS (SELECT FROM jsonb_each(v -> 'fallbacks') e
					  WHERE jsonb_typeof(e.value) <> 'string' OR e.key !~ '^[a-z_][a-z0-9_]*$') THEN
			RAISE EXCEPTION 'reward_template fallbacks must be an object of texts by placeholder name, not %', v -> 'fallbacks'
				USING ERRCODE = 'invalid_parameter_value';
		END IF;
		SELECT min(x) INTO k FROM unnest(wam.payload_placeholders(v -> 'parameters')) x
		WHERE NOT (x = ANY (reward_vars) OR x IN ('name', 'first_name', 'phone', 'locale', 'customer_id')
				   OR v -> 'fallbacks' ? x);
		IF k IS NOT NULL THEN
			RAISE EXCEPTION 'unknown placeholder {%} in reward_template', k
				USING ERRCODE = 'invalid_parameter_value',
					  HINT = 'Known: {reward}, {redemption_code}, {tier}, {cost}, {program}, the customer''s {name}, {first_name}, {phone}, {locale}, {customer_id}, and the keys of fallbacks.';
		END IF;
		IF NOT wam.payload_placeholders(v -> 'parameters') @> ARRAY['redemption_code'] THEN
			RAISE EXCEPTION 'reward_template parameters must include {redemption_code}'
				USING ERRCODE = 'invalid_parameter_value',
					  DETAIL = 'The message is how the referrer receives the redemption code (R-F2).';
		END IF;
		s := jsonb_set(s, '{reward_template}', v);
	END IF;
	v := s -> 'sender';
	IF jsonb_typeof(v) <> 'null' THEN
		IF jsonb_typeof(v) <> 'string' THEN
			RAISE EXCEPTION 'referral program setting sender must be the name of a sender, not %', v
				USING ERRCODE = 'invalid_parameter_value';
		END IF;
		IF NOT EXISTS (SELECT FROM wam.sender x WHERE x.name = v #>> '{}') THEN
			RAISE EXCEPTION 'sender "%" does not exist', v #>> '{}'
				USING ERRCODE = 'undefined_object', HINT = 'Create it with wam.create_sender(), or leave sender out to use the only sender.';
		END IF;
	END IF;
	RETURN s;
END
$$;
COMMENT ON FUNCTION wam_internal.referral_settings(jsonb, jsonb) IS 'internal: validates referral program settings and merges them into base';

REVOKE EXECUTE ON FUNCTION wam_internal.referral_settings(jsonb, jsonb) FROM PUBLIC;

-- The settings are stored once, as the typed columns of wam.referral_program;
-- this is the document wam_internal.referral_settings() checks and merges into.
CREATE FUNCTION wam.referral_program_settings(p wam.referral_program) RETURNS jsonb
	LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, wam, pg_temp
RETURN pg_catalog.jsonb_build_object(
	'preset', p.preset, 'cap', p.cap, 'velocity_per_hour', p.velocity_per_hour, 'min_order', p.min_order,
	'qualify_window', p.qualify_window::text, 'hold', p.hold::text, 'cost_cap_share', p.cost_cap_share,
	'flat_cost_cap', p.flat_cost_cap, 'ring_depth', p.ring_depth, 'signup_grace', p.signup_grace::text,
	'tiers', p.tiers, 'business_number', p.business_number, 'landing_url', p.landing_url,
	'message', p.message, 'starts_at', p.starts_at, 'ends_at', p.ends_at, 'benchmark', p.benchmark,
	'reward_template', p.reward_template, 'sender', p.sender);
COMMENT ON FUNCTION wam.referral_program_settings(wam.referral_program) IS 'all settings of a referral program as one JSON object';

REVOKE EXECUTE ON FUNCTION wam.referral_program_settings(wam.referral_program) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.referral_program_settings(wam.referral_program) TO wam_reader;

-- programs

CREATE FUNCTION wam.create_referral_program(name text, settings jsonb DEFAULT '{}') RETURNS integer
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	s jsonb;
	new_id integer;
BEGIN
	IF name IS NULL OR btrim(name) = '' THEN
		RAISE EXCEPTION 'referral program name must not be empty' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF length(name) > 100 THEN
		RAISE EXCEPTION 'referral program name must be at most 100 characters' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF EXISTS (SELECT FROM wam.referral_program p WHERE p.name = btrim(name)) THEN
		RAISE EXCEPTION 'referral program "%" already exists', btrim(name)
			USING ERRCODE = 'unique_violation', HINT = 'Change it with wam.configure_referral_program().';
	END IF;
	s := wam_internal.referral_settings(settings, wam.referral_defaults(NULL));
	INSERT INTO wam.referral_program AS p (name, preset, cap, velocity_per_hour, min_order, qualify_window,
		hold, cost_cap_share, flat_cost_cap, ring_depth, signup_grace, tiers, business_number, landing_url,
		message, starts_at, ends_at, benchmark, reward_template, sender)
	VALUES (btrim(name), s ->> 'preset', (s ->> 'cap')::integer, (s ->> 'velocity_per_hour')::integer,
		(s ->> 'min_order')::numeric, (s ->> 'qualify_window')::interval, (s ->> 'hold')::interval,
		(s ->> 'cost_cap_share')::numeric, (s ->> 'flat_cost_cap')::numeric, (s ->> 'ring_depth')::integer,
		(s ->> 'signup_grace')::interval, s -> 'tiers', s ->> 'business_number', s ->> 'landing_url',
		s ->> 'message', (s ->> 'starts_at')::timestamptz, (s ->> 'ends_at')::timestamptz,
		nullif(s -> 'benchmark', 'null'), nullif(s -> 'reward_template', 'null'), s ->> 'sender')
	RETURNING p.id INTO new_id;
	RETURN new_id;
END
$$;
COMMENT ON FUNCTION wam.create_referral_program(text, jsonb) IS 'creates a referral program; returns its id';

REVOKE EXECUTE ON FUNCTION wam.create_referral_program(text, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.create_referral_program(text, jsonb) TO wam_admin;

CREATE FUNCTION wam.configure_referral_program(name text, settings jsonb) RETURNS jsonb
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	p wam.referral_program;
	s jsonb;
BEGIN
	SELECT * INTO p FROM wam.referral_program x WHERE x.name = name FOR UPDATE;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'referral program "%" does not exist', name USING ERRCODE = 'undefined_object';
	END IF;
	s := wam_internal.referral_settings(settings, wam.referral_program_settings(p));
	UPDATE wam.referral_program x
	SET preset = s ->> 'preset', cap = (s ->> 'cap')::integer,
		velocity_per_hour = (s ->> 'velocity_per_hour')::integer, min_order = (s ->> 'min_order')::numeric,
		qualify_window = (s ->> 'qualify_window')::interval, hold = (s ->> 'hold')::interval,
		cost_cap_share = (s ->> 'cost_cap_share')::numeric, flat_cost_cap = (s ->> 'flat_cost_cap')::numeric,
		ring_depth = (s ->> 'ring_depth')::integer, signup_grace = (s ->> 'signup_grace')::interval,
		tiers = s -> 'tiers', business_number = s ->> 'business_number', landing_url = s ->> 'landing_url',
		message = s ->> 'message', starts_at = (s ->> 'starts_at')::timestamptz,
		ends_at = (s ->> 'ends_at')::timestamptz, benchmark = nullif(s -> 'benchmark', 'null'),
		reward_template = nullif(s -> 'reward_template', 'null'), sender = s ->> 'sender', updated_at = now()
	WHERE x.id = p.id;
	RETURN s;
END
$$;
COMMENT ON FUNCTION wam.configure_referral_program(text, jsonb) IS 'changes the given settings of a program; returns all settings';

REVOKE EXECUTE ON FUNCTION wam.configure_referral_program(text, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.configure_referral_program(text, jsonb) TO wam_admin;

CREATE FUNCTION wam.referral_program_id(program text) RETURNS integer
	LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	pid integer;
BEGIN
	IF program IS NULL THEN
		RAISE EXCEPTION 'referral program must not be null' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	SELECT p.id INTO pid FROM wam.referral_program p WHERE p.name = program;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'referral program "%" does not exist', program USING ERRCODE = 'undefined_object';
	END IF;
	RETURN pid;
END
$$;
COMMENT ON FUNCTION wam.referral_program_id(text) IS 'id of a referral program by name';

REVOKE EXECUTE ON FUNCTION wam.referral_program_id(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.referral_program_id(text) TO wam_reader;
GRANT USAGE ON SEQUENCE wam.referral_program_id_seq TO wam_definer;

-- codes and links

CREATE FUNCTION wam.referral_code(customer bigint, program text) RETURNS text
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	pid integer := wam.referral_program_id(program);
	c text;
	key bytea;
	attempt integer := 0;
BEGIN
	PERFORM wam_internal.refuse_null(customer IS NULL, 'customer');
	SELECT r.code INTO c FROM wam.referrer r WHERE r.customer_id = customer AND r.program_id = pid;
	IF FOUND THEN
		RETURN c;
	END IF;
	IF NOT EXISTS (SELECT FROM wam.customer k WHERE k.id = customer) THEN
		RAISE EXCEPTION 'customer % does not exist', customer USING ERRCODE = 'foreign_key_violation';
	END IF;
	SELECT s.secret INTO key FROM wam.referral_secret s;
	LOOP
		-- another customer's hash may collide (about 1 in 10^15 / issued codes):
		-- the next attempt number gives another, equally stable, code
		c := wam_internal.referral_code_make(key, pid, customer, attempt);
		INSERT INTO wam.referrer (customer_id, program_id, code) VALUES (customer, pid, c)
		ON CONFLICT DO NOTHING;
		IF FOUND THEN
			RETURN c;
		END IF;
		-- a concurrent call issued this customer's code first
		SELECT r.code INTO c FROM wam.referrer r WHERE r.customer_id = customer AND r.program_id = pid;
		IF FOUND THEN
			RETURN c;
		END IF;
		attempt := attempt + 1;
	END LOOP;
END
$$;
COMMENT ON FUNCTION wam.referral_code(bigint, text) IS 'the customer''s stable 11-character referral code';

REVOKE EXECUTE ON FUNCTION wam.referral_code(bigint, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.referral_code(bigint, text) TO wam_operator;

CREATE FUNCTION wam.referral_landing_url(customer bigint, program text, utm jsonb DEFAULT NULL) RETURNS text
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	p wam.referral_program;
	code text := wam.referral_code(customer, program);
	params jsonb;
	k text;
	q text := '';
BEGIN
	SELECT * INTO p FROM wam.referral_program x WHERE x.name = program;
	IF p.landing_url IS NULL THEN
		RAISE EXCEPTION 'referral program "%" has no landing_url', program
			USING ERRCODE = 'object_not_in_prerequisite_state',
				  HINT = 'Set it with wam.configure_referral_program(program, ''{"landing_url": "https://..."}'').';
	END IF;
	IF utm IS NOT NULL AND jsonb_typeof(utm) <> 'object' THEN
		RAISE EXCEPTION 'utm must be a JSON object, not %', jsonb_typeof(utm) USING ERRCODE = 'invalid_parameter_value';
	END IF;
	params := jsonb_build_object('utm_source', 'whatsapp', 'utm_medium', 'referral', 'utm_campaign', p.name)
			  || coalesce(utm, '{}');
	FOR k IN SELECT jsonb_object_keys(params) LOOP
		IF k !~ '^utm_(source|medium|campaign|term|content|id)$' THEN
			RAISE EXCEPTION 'unknown UTM parameter "%"', k
				USING ERRCODE = 'invalid_parameter_value',
					  HINT = 'Use utm_source, utm_medium, utm_campaign, utm_term, utm_content or utm_id.';
		END IF;
		IF jsonb_typeof(params -> k) NOT IN ('string', 'number') THEN
			RAISE EXCEPTION 'UTM parameter % must be a string, not %', k, jsonb_typeof(params -> k)
				USING ERRCODE = 'invalid_parameter_value';
		END IF;
	END LOOP;
	SELECT string_agg(x.key || '=' || wam.url_encode(x.value), '&' ORDER BY x.ord)
	INTO q
	FROM (SELECT e.key, e.value, array_position(ARRAY['utm_source', 'utm_medium', 'utm_campaign', 'utm_term',
														'utm_content', 'utm_id'], e.key) AS ord
		  FROM jsonb_each_text(params) e) x;
	RETURN p.landing_url || CASE WHEN strpos(p.landing_url, '?') > 0 THEN '&' ELSE '?' END
		   || 'ref=' || code || '&' || q;
END
$$;
COMMENT ON FUNCTION wam.referral_landing_url(bigint, text, jsonb) IS 'the program''s landing page URL with the code and UTM parameters';

REVOKE EXECUTE ON FUNCTION wam.referral_landing_url(bigint, text, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.referral_landing_url(bigint, text, jsonb) TO wam_operator;

CREATE FUNCTION wam.url_encode(value text) RETURNS text
	LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$
	SELECT coalesce(string_agg(CASE WHEN b BETWEEN 48 AND 57 OR b BETWEEN 65 AND 90 OR b BETWEEN 97 AND 122
										 OR b IN (45, 46, 95, 126)
									THEN chr(b) ELSE '%' || upper(lpad(to_hex(b), 2, '0')) END, '' ORDER BY i), '')
	FROM (SELECT i, get_byte(convert_to(value, 'UTF8'), i) AS b
		  FROM generate_series(0, octet_length(convert_to(value, 'UTF8')) - 1) i) x
$$;
COMMENT ON FUNCTION wam.url_encode(text) IS 'percent-encodes text for a URL query';

REVOKE EXECUTE ON FUNCTION wam.url_encode(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.url_encode(text) TO wam_reader;

CREATE FUNCTION wam.referral_link(customer bigint, program text, utm jsonb DEFAULT NULL) RETURNS text
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	p wam.referral_program;
	code text := wam.referral_code(customer, program);
	msg text;
BEGIN
	SELECT * INTO p FROM wam.referral_program x WHERE x.name = program;
	IF p.business_number IS NULL THEN
		RAISE EXCEPTION 'referral program "%" has no business_number', program
			USING ERRCODE = 'object_not_in_prerequisite_state',
				  HINT = 'Set the WhatsApp business number with wam.configure_referral_program(program, ''{"business_number": "+852 ..."}'').';
	END IF;
	msg := replace(p.message, '{code}', code);
	IF strpos(msg, '{landing_url}') > 0 THEN
		msg := replace(msg, '{landing_url}', wam.referral_landing_url(customer, program, utm));
	ELSIF utm IS NOT NULL THEN
		RAISE EXCEPTION 'the message of referral program "%" has no {landing_url} for the UTM parameters', program
			USING ERRCODE = 'object_not_in_prerequisite_state',
				  DETAIL = 'WhatsApp passes on only the prefilled text of a wa.me link; UTM parameters belong to the landing URL.',
				  HINT = 'Put {landing_url} in the program''s message, or use wam.referral_landing_url().';
	END IF;
	RETURN 'https://wa.me/' || p.business_number || '?text=' || wam.url_encode(msg);
END
$$;
COMMENT ON FUNCTION wam.referral_link(bigint, text, jsonb) IS 'the customer''s wa.me invitation link carrying the code';

REVOKE EXECUTE ON FUNCTION wam.referral_link(bigint, text, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.referral_link(bigint, text, jsonb) TO wam_operator;

-- recording referrals

CREATE FUNCTION wam.record_referral(code text, invitee bigint, source jsonb DEFAULT NULL) RETURNS text
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	st text;
	rs text;
BEGIN
	PERFORM wam_internal.refuse_null(code IS NULL, 'referral code');
	PERFORM wam_internal.refuse_null(invitee IS NULL, 'invitee');
	IF source IS NOT NULL AND jsonb_typeof(source) <> 'object' THEN
		RAISE EXCEPTION 'referral source must be a JSON object, not %', jsonb_typeof(source)
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF length(code) > 64 THEN
		code := left(code, 64);		-- keep the attempt, not a megabyte of text
	END IF;
	IF NOT EXISTS (SELECT FROM wam.customer c WHERE c.id = invitee) THEN
		RAISE EXCEPTION 'customer % does not exist', invitee USING ERRCODE = 'foreign_key_violation';
	END IF;
	INSERT INTO wam.referral AS r (code, invitee_id, source) VALUES (code, invitee, source)
	RETURNING r.status, r.reason INTO st, rs;
	RETURN CASE WHEN st = 'rejected' THEN st || ': ' || rs ELSE st END;
END
$$;
COMMENT ON FUNCTION wam.record_referral(text, bigint, jsonb) IS 'records a referral attempt; returns pending, review or rejected: reason';

CREATE FUNCTION wam.record_referral(code text, invitee_phone text, source jsonb DEFAULT NULL) RETURNS text
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	ph text;
	cid bigint;
BEGIN
	PERFORM wam_internal.refuse_null(invitee_phone IS NULL, 'invitee phone');
	ph := wam.normalize_phone(invitee_phone);
	SELECT c.id INTO cid FROM wam.customer c WHERE c.phone = ph;
	IF NOT FOUND THEN
		-- a sign-up through the invitation: the invitee becomes a customer now
		INSERT INTO wam.customer (phone) VALUES (ph) ON CONFLICT (phone) DO NOTHING;
		SELECT c.id INTO cid FROM wam.customer c WHERE c.phone = ph;
	END IF;
	RETURN wam.record_referral(code, cid, source);
END
$$;
COMMENT ON FUNCTION wam.record_referral(text, text, jsonb) IS 'records a referral attempt by phone, creating the invitee';

REVOKE EXECUTE ON FUNCTION wam.record_referral(text, bigint, jsonb) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION wam.record_referral(text, text, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.record_referral(text, bigint, jsonb) TO wam_operator;
GRANT EXECUTE ON FUNCTION wam.record_referral(text, text, jsonb) TO wam_operator;

CREATE FUNCTION wam.record_fingerprint(customer bigint, source jsonb) RETURNS integer
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	n integer;
BEGIN
	PERFORM wam_internal.refuse_null(customer IS NULL OR source IS NULL, 'customer and source');
	IF jsonb_typeof(source) <> 'object' THEN
		RAISE EXCEPTION 'fingerprint source must be a JSON object, not %', jsonb_typeof(source)
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF NOT EXISTS (SELECT FROM wam.customer c WHERE c.id = customer) THEN
		RAISE EXCEPTION 'customer % does not exist', customer USING ERRCODE = 'foreign_key_violation';
	END IF;
	INSERT INTO wam.customer_fingerprint (customer_id, kind, value_hash)
	SELECT customer, e.key, sha256(convert_to(e.value, 'UTF8'))
	FROM jsonb_each_text(source) e
	WHERE e.key IN ('device', 'payment') AND coalesce(e.value, '') <> ''
	ON CONFLICT DO NOTHING;
	GET DIAGNOSTICS n = ROW_COUNT;
	RETURN n;
END
$$;
COMMENT ON FUNCTION wam.record_fingerprint(bigint, jsonb) IS 'remembers a customer''s device and payment fingerprints';

REVOKE EXECUTE ON FUNCTION wam.record_fingerprint(bigint, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.record_fingerprint(bigint, jsonb) TO wam_operator;

-- qualification and rewards

-- The referrer's message about an issued reward (R-F2), queued through
-- wam.enqueue and so under the queue's rules (consent, opt-out, the
-- template).  A refusal is recorded on the reward, never raised: it must not
-- undo the order or review that issued the reward.  The caller stores the
-- result in the reward row.
CREATE FUNCTION wam_internal.referral_reward_enqueue(w wam.referral_reward, p wam.referral_program,
											OUT notify_status text, OUT notify_detail text, OUT message_id bigint)
	LANGUAGE plpgsql SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	t jsonb := p.reward_template;
	payload jsonb;
	configured boolean := false;
BEGIN
	IF jsonb_typeof(t) IS DISTINCT FROM 'object' THEN
		notify_status := 'not configured';
		notify_detail := format('referral program "%s" has no reward_template', p.name);
		RETURN;
	END IF;
	payload := jsonb_build_object('type', 'template', 'template',
		jsonb_build_object('name', t -> 'name', 'language', jsonb_build_object('code', t -> 'language'))
		|| CASE WHEN jsonb_array_length(t -> 'parameters') = 0 THEN '{}'::jsonb
				ELSE jsonb_build_object('components', jsonb_build_array(jsonb_build_object('type', 'body',
					 'parameters', (SELECT jsonb_agg(jsonb_build_object('type', 'text', 'text', e) ORDER BY i)
									FROM jsonb_array_elements(t -> 'parameters') WITH ORDINALITY x(e, i))))) END);
	-- one subtransaction, only when a reward is issued (rare next to referrals)
	BEGIN
		PERFORM wam.sender_id(p.sender);
		configured := true;
		message_id := wam.enqueue_message(w.referrer_id, payload, p.sender,
			vars => coalesce(t -> 'fallbacks', '{}') || jsonb_build_object('reward', w.reward, 'redemption_code', w.redemption_code,
															 'tier', w.tier::text, 'cost', w.cost::text, 'program', p.name),
			-- ahead of campaign traffic: it answers the invitee's order (R-F2)
			priority => 10, campaign => 'referral:' || p.name, variant => 'tier ' || w.tier);
		notify_status := 'queued';
	EXCEPTION WHEN object_not_in_prerequisite_state OR invalid_parameter_value OR undefined_object
				   OR foreign_key_violation OR null_value_not_allowed OR string_data_right_truncation THEN
		notify_status := CASE WHEN configured THEN 'refused' ELSE 'not configured' END;
		notify_detail := SQLERRM;
		message_id := NULL;
	END;
END
$$;
COMMENT ON FUNCTION wam_internal.referral_reward_enqueue(wam.referral_reward, wam.referral_program) IS 'internal: queues the referrer''s message about an issued reward (the program''s reward_template from its sender, campaign referral:<program>); returns queued and the message, or refused / not configured and why';

REVOKE EXECUTE ON FUNCTION wam_internal.referral_reward_enqueue(wam.referral_reward, wam.referral_program) FROM PUBLIC;

-- Decides tier rewards of a referrer whose qualified count went up: one
-- reward per tier reached and not yet rewarded, checked against the cost cap
-- (R-F4).  Over the cap it is held for review, never silently issued.
CREATE FUNCTION wam_internal.referral_grant_rewards(program integer, referrer bigint) RETURNS integer
	LANGUAGE plpgsql SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	p wam.referral_program;
	n_qualified integer;
	t record;
	cap numeric;
	clv numeric;
	spent numeric;
	rw wam.referral_reward;
	n integer := 0;
BEGIN
	SELECT * INTO p FROM wam.referral_program x WHERE x.id = program;
	SELECT r.qualified INTO n_qualified FROM wam.referrer r WHERE r.customer_id = referrer AND r.program_id = program;
	FOR t IN SELECT (e ->> 'at')::integer AS at, e ->> 'reward' AS reward, (e ->> 'cost')::numeric AS cost
			 FROM jsonb_array_elements(p.tiers) e
			 WHERE (e ->> 'at')::integer <= n_qualified
			   AND NOT EXISTS (SELECT FROM wam.referral_reward w
							   WHERE w.referrer_id = referrer AND w.program_id = program
								 AND w.tier = (e ->> 'at')::integer AND w.status <> 'revoked')
			 ORDER BY 1
	LOOP
		IF p.flat_cost_cap IS NOT NULL THEN
			cap := p.flat_cost_cap;
		ELSE
			SELECT d.clv INTO clv FROM wam.cost_cap_detail(referrer) d;
			cap := round(p.cost_cap_share * coalesce(clv, 0), 2);
		END IF;
		SELECT coalesce(sum(x.cost), 0) INTO spent FROM wam.referral_reward x
		WHERE x.referrer_id = referrer AND x.status = 'issued';
		rw := ROW(NULL, program, referrer, t.at, t.reward, t.cost, wam.redemption_code(), 'held',
				 format('cost cap: %s already issued + %s exceeds the budget of %s', spent, t.cost, cap),
				 cap, spent, now(), NULL, 'waiting', NULL, NULL)::wam.referral_reward;
		IF spent + t.cost <= cap THEN
			-- issued: the referrer's message goes into the queue now (R-F2)
			rw.status := 'issued';
			rw.reason := NULL;
			rw.decided_at := now();
			SELECT e.notify_status, e.notify_detail, e.message_id INTO rw.notify_status, rw.notify_detail, rw.message_id
			FROM wam_internal.referral_reward_enqueue(rw, p) e;
		END IF;
		INSERT INTO wam.referral_reward (program_id, referrer_id, tier, reward, cost, redemption_code, status,
										 reason, cost_cap, spent_before, decided_at, notify_status, notify_detail,
										 message_id)
		VALUES (rw.program_id, rw.referrer_id, rw.tier, rw.reward, rw.cost, rw.redemption_code, rw.status,
				rw.reason, rw.cost_cap, rw.spent_before, rw.decided_at, rw.notify_status, rw.notify_detail, rw.message_id);
		n := n + 1;
	END LOOP;
	RETURN n;
END
$$;
COMMENT ON FUNCTION wam_internal.referral_grant_rewards(integer, bigint) IS 'internal: creates the rewards of the tiers a referrer reached: issued within the cost cap (and the referrer''s message queued), held above it';

REVOKE EXECUTE ON FUNCTION wam_internal.referral_grant_rewards(integer, bigint) FROM PUBLIC;

-- Decides a pending referral from the invitee's first order (R-F5): it
-- qualifies when that order reaches min_order within qualify_window of the
-- referral, and lapses otherwise.  Returns the new status.
CREATE FUNCTION wam_internal.referral_evaluate(referral bigint) RETURNS text
	LANGUAGE plpgsql SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	r wam.referral;
	p wam.referral_program;
	o record;
BEGIN
	SELECT * INTO r FROM wam.referral x WHERE x.id = referral;
	IF r.status IS DISTINCT FROM 'pending' THEN
		RETURN r.status;
	END IF;
	SELECT * INTO p FROM wam.referral_program x WHERE x.id = r.program_id;
	SELECT k.order_id, k.amount, k.ordered_at INTO o
	FROM wam.customer_order k WHERE k.customer_id = r.invitee_id
	ORDER BY k.ordered_at, k.order_id LIMIT 1;
	IF NOT FOUND THEN
		RETURN r.status;
	END IF;
	-- serialize with the abuse trigger and other qualifications of the referrer
	PERFORM FROM wam.referrer x WHERE x.customer_id = r.referrer_id AND x.program_id = r.program_id FOR UPDATE;
	IF o.ordered_at > r.created_at + p.qualify_window THEN
		UPDATE wam.referral x SET status = 'lapsed', reason = 'window passed', order_id = o.order_id, closed_at = now(),
			detail = format('The first order came %s after the referral, later than the window of %s.',
							date_trunc('hour', o.ordered_at - r.created_at), p.qualify_window)
		WHERE x.id = r.id;
		RETURN 'lapsed';
	END IF;
	IF o.amount < p.min_order THEN
		UPDATE wam.referral x SET status = 'lapsed', reason = 'first order below minimum', order_id = o.order_id,
			closed_at = now(), detail = format('The first order of %s is below the minimum of %s.', o.amount, p.min_order)
		WHERE x.id = r.id;
		RETURN 'lapsed';
	END IF;
	UPDATE wam.referral x SET status = 'qualified', order_id = o.order_id, qualified_at = greatest(o.ordered_at, r.created_at)
	WHERE x.id = r.id;
	UPDATE wam.referrer x SET qualified = x.qualified + 1 WHERE x.customer_id = r.referrer_id AND x.program_id = r.program_id;
	PERFORM wam_internal.referral_grant_rewards(r.program_id, r.referrer_id);
	RETURN 'qualified';
END
$$;
COMMENT ON FUNCTION wam_internal.referral_evaluate(bigint) IS 'internal: qualifies or lapses a pending referral by the invitee''s first order, and grants the rewards of tiers reached';

REVOKE EXECUTE ON FUNCTION wam_internal.referral_evaluate(bigint) FROM PUBLIC;

-- Order triggers: new orders may qualify referrals (and carry fingerprints);
-- a refund (order deleted, or its amount lowered below the minimum) within
-- the hold period revokes the qualification and the rewards above the new
-- count.
CREATE FUNCTION wam_internal.referral_order_insert_trigger() RETURNS trigger
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
DECLARE
	rid bigint;
BEGIN
	-- restored rows already carry their effects (src/backup.c)
	IF wam_internal.restoring() THEN
		RETURN NULL;
	END IF;
	INSERT INTO wam.customer_fingerprint (customer_id, kind, value_hash, first_seen)
	SELECT n.customer_id, e.key, sha256(convert_to(e.value, 'UTF8')), n.ordered_at
	FROM new_orders n, LATERAL jsonb_each_text(n.details) e
	WHERE n.details ?| ARRAY['device', 'payment'] AND e.key IN ('device', 'payment') AND coalesce(e.value, '') <> ''
	ON CONFLICT DO NOTHING;
	FOR rid IN SELECT r.id FROM wam.referral r
			   WHERE r.invitee_id IN (SELECT DISTINCT n.customer_id FROM new_orders n) AND r.status = 'pending'
			   ORDER BY r.referrer_id, r.program_id
	LOOP
		PERFORM wam_internal.referral_evaluate(rid);
	END LOOP;
	RETURN NULL;
END
$$;
COMMENT ON FUNCTION wam_internal.referral_order_insert_trigger() IS 'trigger: new orders qualify pending referrals of their customers and record device/payment fingerprints from order details';

CREATE FUNCTION wam_internal.referral_revoke(referral bigint, why text) RETURNS void
	LANGUAGE plpgsql SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	r wam.referral;
	n_qualified integer;
	stopped bigint[];
BEGIN
	SELECT * INTO r FROM wam.referral x WHERE x.id = referral;
	UPDATE wam.referrer x SET qualified = x.qualified - 1
	WHERE x.customer_id = r.referrer_id AND x.program_id = r.program_id
	RETURNING x.qualified INTO n_qualified;
	UPDATE wam.referral x SET status = 'revoked', reason = 'refund', closed_at = now(), detail = why
	WHERE x.id = r.id;
	-- the referrer's message, if it has not gone out yet, is cancelled too
	WITH c AS (
		UPDATE wam.outbox o SET status = 'cancelled', cancelled_at = now(),
			error_detail = 'the referral reward was revoked'
		FROM wam.referral_reward w
		WHERE w.referrer_id = r.referrer_id AND w.program_id = r.program_id AND w.tier > n_qualified
		  AND w.status <> 'revoked' AND w.notify_status = 'queued'
		  AND o.message_id = w.message_id AND o.status IN ('queued', 'retrying')
		RETURNING o.message_id)
	SELECT coalesce(array_agg(c.message_id), '{}') INTO stopped FROM c;
	UPDATE wam.referral_reward w
	SET status = 'revoked', decided_at = now(),
		reason = format('revoked: the referrer has %s qualified referrals after a refund', n_qualified),
		-- (revocations are rare: a look at the message's status per reward is fine)
		notify_status = CASE WHEN w.notify_status <> 'queued' OR w.message_id = ANY (stopped)
								  OR (SELECT o.status FROM wam.outbox o WHERE o.message_id = w.message_id)
									 IN ('failed', 'cancelled', 'expired')
							 THEN 'cancelled' ELSE 'queued' END,
		notify_detail = CASE WHEN w.notify_status <> 'queued' THEN 'the reward was revoked'
							 WHEN w.message_id = ANY (stopped) THEN 'the reward was revoked before its message was sent'
							 ELSE coalesce(
								(SELECT format('the reward was revoked; its message had not reached the referrer (%s)', o.status)
								 FROM wam.outbox o
								 WHERE o.message_id = w.message_id AND o.status IN ('failed', 'cancelled', 'expired')),
								'the reward was revoked after its message had left the queue') END
	WHERE w.referrer_id = r.referrer_id AND w.program_id = r.program_id AND w.tier > n_qualified
	  AND w.status <> 'revoked';
END
$$;
COMMENT ON FUNCTION wam_internal.referral_revoke(bigint, text) IS 'internal: revokes a qualified referral and the referrer''s rewards of tiers no longer reached';

REVOKE EXECUTE ON FUNCTION wam_internal.referral_revoke(bigint, text) FROM PUBLIC;

CREATE FUNCTION wam_internal.referral_order_change_trigger() RETURNS trigger
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
DECLARE
	r record;
BEGIN
	FOR r IN SELECT x.id, x.qualified_at, p.hold, p.min_order, o.amount AS old_amount
			 FROM old_orders o
			 JOIN wam.referral x ON x.invitee_id = o.customer_id AND x.order_id = o.order_id AND x.status = 'qualified'
			 JOIN wam.referral_program p ON p.id = x.program_id
			 ORDER BY x.referrer_id, x.program_id
	LOOP
		IF now() > r.qualified_at + r.hold THEN
			CONTINUE;			-- after the hold period the qualification stands
		END IF;
		IF TG_OP = 'UPDATE' AND EXISTS (SELECT FROM wam.customer_order k JOIN wam.referral x ON x.id = r.id
										WHERE k.customer_id = x.invitee_id AND k.order_id = x.order_id
										  AND k.amount >= r.min_order) THEN
			CONTINUE;			-- corrected, still above the minimum
		END IF;
		PERFORM wam_internal.referral_revoke(r.id,
			CASE TG_OP WHEN 'DELETE' THEN 'The qualifying order was refunded (deleted) within the hold period.'
					   ELSE 'The qualifying order was reduced below the minimum within the hold period.' END);
	END LOOP;
	RETURN NULL;
END
$$;
COMMENT ON FUNCTION wam_internal.referral_order_change_trigger() IS 'trigger: a refund of a qualifying order within the hold period revokes the referral and the rewards above the referrer''s new count';

CREATE TRIGGER referral_order_insert AFTER INSERT ON wam.customer_order
	REFERENCING NEW TABLE AS new_orders FOR EACH STATEMENT EXECUTE FUNCTION wam_internal.referral_order_insert_trigger();

REVOKE EXECUTE ON FUNCTION wam_internal.referral_order_insert_trigger() FROM PUBLIC;
CREATE TRIGGER referral_order_update AFTER UPDATE ON wam.customer_order
	REFERENCING OLD TABLE AS old_orders FOR EACH STATEMENT EXECUTE FUNCTION wam_internal.referral_order_change_trigger();
CREATE TRIGGER referral_order_delete AFTER DELETE ON wam.customer_order
	REFERENCING OLD TABLE AS old_orders FOR EACH STATEMENT EXECUTE FUNCTION wam_internal.referral_order_change_trigger();

REVOKE EXECUTE ON FUNCTION wam_internal.referral_order_change_trigger() FROM PUBLIC;

-- review

CREATE FUNCTION wam.resolve_referral_review(review bigint, accept boolean, note text DEFAULT NULL) RETURNS text
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	v wam.referral_review;
	rid bigint;
	n integer;
BEGIN
	PERFORM wam_internal.refuse_null(review IS NULL OR accept IS NULL, 'review and decision');
	SELECT * INTO v FROM wam.referral_review x WHERE x.id = review FOR UPDATE;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'referral review % does not exist', review USING ERRCODE = 'no_data_found';
	END IF;
	IF v.resolved_at IS NOT NULL THEN
		RAISE EXCEPTION 'referral review % was already resolved (%)', review, v.resolution
			USING ERRCODE = 'object_not_in_prerequisite_state';
	END IF;
	PERFORM FROM wam.referrer x WHERE x.customer_id = v.referrer_id AND x.program_id = v.program_id FOR UPDATE;
	UPDATE wam.referral_review x SET resolved_at = now(), resolution = CASE WHEN accept THEN 'accepted' ELSE 'rejected' END,
		resolved_by = session_user, note = resolve_referral_review.note
	WHERE x.id = review;
	UPDATE wam.referrer x SET status = 'active', frozen_at = NULL, velocity_since = now(), recent_attempts = '{}'
	WHERE x.customer_id = v.referrer_id AND x.program_id = v.program_id;
	IF accept THEN
		UPDATE wam.referral x SET status = 'pending', reason = NULL, detail = NULL
		WHERE x.referrer_id = v.referrer_id AND x.program_id = v.program_id AND x.status = 'review';
		GET DIAGNOSTICS n = ROW_COUNT;
		FOR rid IN SELECT x.id FROM wam.referral x
				   WHERE x.referrer_id = v.referrer_id AND x.program_id = v.program_id AND x.status = 'pending'
				   ORDER BY x.id LOOP
			PERFORM wam_internal.referral_evaluate(rid);
		END LOOP;
		RETURN format('accepted: %s referrals back to pending', n);
	END IF;
	UPDATE wam.referral x SET status = 'rejected', reason = 'review rejected', closed_at = now(),
		detail = coalesce(resolve_referral_review.note, 'Rejected in review.')
	WHERE x.referrer_id = v.referrer_id AND x.program_id = v.program_id AND x.status = 'review';
	GET DIAGNOSTICS n = ROW_COUNT;
	UPDATE wam.referrer x SET accepted = x.accepted - n
	WHERE x.customer_id = v.referrer_id AND x.program_id = v.program_id;
	RETURN format('rejected: %s referrals', n);
END
$$;
COMMENT ON FUNCTION wam.resolve_referral_review(bigint, boolean, text) IS 'accepts or rejects the referrals of a frozen referrer';

REVOKE EXECUTE ON FUNCTION wam.resolve_referral_review(bigint, boolean, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.resolve_referral_review(bigint, boolean, text) TO wam_admin;

CREATE FUNCTION wam.decide_referral_reward(reward bigint, issue boolean, note text DEFAULT NULL) RETURNS text
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	w wam.referral_reward;
	p wam.referral_program;
BEGIN
	PERFORM wam_internal.refuse_null(reward IS NULL OR issue IS NULL, 'reward and decision');
	SELECT * INTO w FROM wam.referral_reward x WHERE x.id = reward FOR UPDATE;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'referral reward % does not exist', reward USING ERRCODE = 'no_data_found';
	END IF;
	IF w.status <> 'held' THEN
		RAISE EXCEPTION 'referral reward % is %, not held', reward, w.status
			USING ERRCODE = 'object_not_in_prerequisite_state';
	END IF;
	w.status := CASE WHEN issue THEN 'issued' ELSE 'revoked' END;
	w.decided_at := now();
	w.reason := coalesce(decide_referral_reward.note, CASE WHEN issue THEN 'issued in review above the cost cap'
															ELSE 'refused in review' END);
	IF issue THEN
		-- issued now: the referrer's message is queued now (R-F2)
		SELECT * INTO p FROM wam.referral_program x WHERE x.id = w.program_id;
		SELECT e.notify_status, e.notify_detail, e.message_id INTO w.notify_status, w.notify_detail, w.message_id
		FROM wam_internal.referral_reward_enqueue(w, p) e;
	ELSE
		w.notify_status := 'cancelled';
		w.notify_detail := 'the reward was refused in review';
	END IF;
	UPDATE wam.referral_reward x
	SET status = w.status, decided_at = w.decided_at, reason = w.reason, notify_status = w.notify_status,
		notify_detail = w.notify_detail, message_id = w.message_id
	WHERE x.id = reward;
	RETURN w.status;
END
$$;
COMMENT ON FUNCTION wam.decide_referral_reward(bigint, boolean, text) IS 'issues or refuses a reward held above the cost cap';

REVOKE EXECUTE ON FUNCTION wam.decide_referral_reward(bigint, boolean, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.decide_referral_reward(bigint, boolean, text) TO wam_admin;

CREATE FUNCTION wam.notify_referral_reward(reward bigint) RETURNS text
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	w wam.referral_reward;
	p wam.referral_program;
	st text;
BEGIN
	PERFORM wam_internal.refuse_null(reward IS NULL, 'reward');
	SELECT * INTO w FROM wam.referral_reward x WHERE x.id = reward FOR UPDATE;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'referral reward % does not exist', reward USING ERRCODE = 'no_data_found';
	END IF;
	IF w.status = 'held' THEN
		RAISE EXCEPTION 'referral reward % is held, not issued', reward
			USING ERRCODE = 'object_not_in_prerequisite_state',
				  HINT = 'Decide it with wam.decide_referral_reward() first.';
	ELSIF w.status <> 'issued' THEN
		RAISE EXCEPTION 'referral reward % is %, not issued', reward, w.status
			USING ERRCODE = 'object_not_in_prerequisite_state';
	END IF;
	IF w.message_id IS NOT NULL THEN
		SELECT o.status INTO st FROM wam.outbox o WHERE o.message_id = w.message_id;
		IF NOT FOUND THEN
			-- purged: whether it reached the referrer is no longer known
			RAISE EXCEPTION 'the message of referral reward % (message %) is no longer in wam.outbox', reward, w.message_id
				USING ERRCODE = 'object_not_in_prerequisite_state',
					  DETAIL = 'Whether it reached the referrer is not known; it is not sent again automatically.',
					  HINT = 'Queue a message with wam.enqueue_message() if the referrer must be told again.';
		END IF;
		-- a message that ended without reaching the referrer may be sent again
		IF st NOT IN ('failed', 'cancelled', 'expired') THEN
			RAISE EXCEPTION 'the message of referral reward % is already queued (message %, %)', reward, w.message_id, st
				USING ERRCODE = 'object_not_in_prerequisite_state',
					  DETAIL = 'Only a reward whose message was refused, not configured, failed, cancelled or expired is notified again.';
		END IF;
	END IF;
	SELECT * INTO p FROM wam.referral_program x WHERE x.id = w.program_id;
	SELECT e.notify_status, e.notify_detail, e.message_id INTO w.notify_status, w.notify_detail, w.message_id
	FROM wam_internal.referral_reward_enqueue(w, p) e;
	UPDATE wam.referral_reward x
	SET notify_status = w.notify_status, notify_detail = w.notify_detail,
		-- a refused retry keeps the link to the earlier (failed) message
		message_id = coalesce(w.message_id, x.message_id)
	WHERE x.id = reward;
	RETURN w.notify_status;
END
$$;
COMMENT ON FUNCTION wam.notify_referral_reward(bigint) IS 'queues the referrer''s reward message again after a fix';

REVOKE EXECUTE ON FUNCTION wam.notify_referral_reward(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.notify_referral_reward(bigint) TO wam_admin;

-- reporting (R-F6)

CREATE FUNCTION wam.referral_report(program text, since timestamptz, until timestamptz)
	RETURNS TABLE (metric text, item text, value numeric, note text)
	LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	pid integer := wam.referral_program_id(program);
	p wam.referral_program;
	cost numeric;
	revenue numeric;
	matured bigint;
	retained bigint;
	churn numeric;
	n_accepted bigint;
	n_qualified bigint;
	rs wam.referral[];
BEGIN
	IF since IS NULL OR until IS NULL THEN
		RAISE EXCEPTION 'report period must not be null' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	IF until <= since THEN
		RAISE EXCEPTION 'report period is empty: until (%) must be after since (%)', until, since
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	SELECT * INTO p FROM wam.referral_program x WHERE x.id = pid;

	rs := ARRAY(SELECT r FROM wam.referral r WHERE r.program_id = pid AND r.created_at >= since AND r.created_at < until);

	RETURN QUERY SELECT 'invitations'::text, NULL::text, count(*)::numeric, 'referral attempts with a code of the program'::text
				 FROM unnest(rs);
	SELECT count(*) FILTER (WHERE r.status <> 'rejected'), count(*) FILTER (WHERE r.status = 'qualified')
	INTO n_accepted, n_qualified FROM unnest(rs) r;
	RETURN QUERY SELECT 'accepted'::text, NULL::text, n_accepted::numeric, 'not rejected by the abuse checks'::text;
	RETURN QUERY SELECT 'status'::text, s.status, count(r.id)::numeric, NULL::text
				 FROM unnest(ARRAY['pending', 'review', 'qualified', 'lapsed', 'revoked', 'rejected']) WITH ORDINALITY s(status, o)
				 LEFT JOIN unnest(rs) r ON r.status = s.status
				 GROUP BY s.status, s.o ORDER BY s.o;
	RETURN QUERY SELECT 'rejected'::text, r.reason, count(*)::numeric, NULL::text
				 FROM unnest(rs) r WHERE r.status = 'rejected'
				 GROUP BY r.reason ORDER BY count(*) DESC, r.reason;
	RETURN QUERY SELECT 'conversion'::text, NULL::text,
						CASE WHEN n_accepted > 0 THEN round(n_qualified::numeric / n_accepted, 4) END,
						'qualified / accepted' || CASE WHEN p.benchmark ->> 'conversion' IS NOT NULL
													 THEN '; preset benchmark ' || (p.benchmark ->> 'conversion') ELSE '' END;
	-- rewards decided for referrals of the period: by tier and status
	RETURN QUERY SELECT 'rewards'::text, format('tier %s: %s (%s)', w.tier, w.reward, w.status), count(*)::numeric,
						format('cost %s', sum(w.cost))
				 FROM wam.referral_reward w
				 WHERE w.program_id = pid AND w.created_at >= since AND w.created_at < until
				 GROUP BY w.tier, w.reward, w.status ORDER BY w.tier, w.status;
	SELECT coalesce(sum(w.cost), 0) INTO cost FROM wam.referral_reward w
	WHERE w.program_id = pid AND w.created_at >= since AND w.created_at < until AND w.status = 'issued';
	RETURN QUERY SELECT 'reward cost'::text, NULL::text, cost, 'issued rewards'::text;
	-- revenue of the referred customers: their orders from the referral up to until
	SELECT coalesce(sum(o.amount), 0) INTO revenue
	FROM unnest(rs) r
	JOIN wam.customer_order o ON o.customer_id = r.invitee_id AND o.ordered_at >= r.created_at AND o.ordered_at < until
	WHERE r.status = 'qualified';
	RETURN QUERY SELECT 'revenue'::text, NULL::text, revenue, 'orders of qualified referred customers up to the end of the period'::text;
	RETURN QUERY SELECT 'roi'::text, NULL::text, CASE WHEN cost > 0 THEN round(revenue / cost, 2) END,
						CASE WHEN cost > 0 THEN 'revenue / reward cost' ELSE 'no reward cost in the period' END;
	-- 30-day retention: qualified referred customers whose first 30 days ended
	-- by until, retained when they ordered or were active (any event other
	-- than the qualifying order) after the qualifying order and within 30 days
	SELECT count(*), count(*) FILTER (WHERE EXISTS (
				SELECT FROM wam.customer_order o
				WHERE o.customer_id = r.invitee_id AND o.order_id <> r.order_id
				  AND o.ordered_at > r.qualified_at AND o.ordered_at <= r.qualified_at + interval '30 days')
			OR EXISTS (
				SELECT FROM wam.event e
				WHERE e.customer_id = r.invitee_id AND e.kind <> 'order'
				  AND e.occurred_at > r.qualified_at AND e.occurred_at <= r.qualified_at + interval '30 days'))
	INTO matured, retained
	FROM unnest(rs) r
	WHERE r.status = 'qualified' AND r.qualified_at + interval '30 days' <= until;
	churn := CASE WHEN matured > 0 THEN round(1 - retained::numeric / matured, 4) END;
	RETURN QUERY SELECT 'retention 30d'::text, NULL::text, CASE WHEN matured > 0 THEN round(retained::numeric / matured, 4) END,
						format('%s of %s referred customers active within 30 days of their first order', retained, matured);
	RETURN QUERY SELECT 'first-month churn'::text, NULL::text, churn,
						CASE WHEN churn > 0.40 THEN 'FLAGGED: above 40%, change the reward design (R-F6)'
							 WHEN churn IS NULL THEN 'no referred customer has completed 30 days yet'
							 ELSE 'at most 40%' END;
	RETURN QUERY SELECT 'flagged'::text, NULL::text, (coalesce(churn > 0.40, false))::integer::numeric,
						'1 when first-month churn of referred customers exceeds 40%'::text;
	RETURN QUERY SELECT 'open reviews'::text, NULL::text, count(*)::numeric, 'frozen referrers awaiting review'::text
				 FROM wam.referral_review v WHERE v.program_id = pid AND v.resolved_at IS NULL;
END
$$;
COMMENT ON FUNCTION wam.referral_report(text, timestamptz, timestamptz) IS 'referral metrics of a program for a period';

REVOKE EXECUTE ON FUNCTION wam.referral_report(text, timestamptz, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.referral_report(text, timestamptz, timestamptz) TO wam_reader;
-- src/sql/backup.sql: every row survives pg_dump / pg_restore (see src/backup.c)

CREATE FUNCTION wam_internal.restoring() RETURNS boolean
	AS 'MODULE_PATHNAME', 'wam_restoring_sql' LANGUAGE C VOLATILE PARALLEL RESTRICTED;
COMMENT ON FUNCTION wam_internal.restoring() IS 'internal: true while the session restores a backup (a superuser''s COPY FROM stdin with pg_dump''s empty search_path, or wam.restoring = on): the triggers stand aside';

-- Tables the install script fills (dimensions, RFM settings and schemes, opt-out
-- keywords, the referral secret) are dumped whole: a restore replaces the
-- row the new installation seeded with the dumped one of the same key, so
-- built-in rows are not doubled and changed or added ones come back as they were.
CREATE FUNCTION wam_internal.restore_replace_trigger() RETURNS trigger
	LANGUAGE plpgsql SET search_path = pg_catalog, wam, pg_temp
AS $$
DECLARE
	keys text;
	cols text;
	vals text;
	n bigint;
BEGIN
	IF NOT wam_internal.restoring() THEN
		RETURN NEW;
	END IF;
	-- an UPDATE in place, not DELETE + INSERT: other seeded rows refer to these
	SELECT string_agg(pg_catalog.format('t.%1$I IS NOT DISTINCT FROM ($1).%1$I', a.attname), ' AND ')
	INTO keys
	FROM pg_catalog.pg_index i
	JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
	WHERE i.indrelid = TG_RELID AND i.indisprimary;
	SELECT string_agg(pg_catalog.format('%I', a.attname), ', ' ORDER BY a.attnum),
		   string_agg(pg_catalog.format('($1).%I', a.attname), ', ' ORDER BY a.attnum)
	INTO cols, vals
	FROM pg_catalog.pg_attribute a
	WHERE a.attrelid = TG_RELID AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = '';
	EXECUTE pg_catalog.format('UPDATE %s t SET (%s) = ROW(%s) WHERE %s',
							  TG_RELID::pg_catalog.regclass, cols, vals, keys) USING NEW;
	GET DIAGNOSTICS n = ROW_COUNT;
	IF n > 0 THEN
		RETURN NULL;
	END IF;
	RETURN NEW;
END
$$;
COMMENT ON FUNCTION wam_internal.restore_replace_trigger() IS 'internal: during a restore, a dumped row replaces the seeded row with the same primary key';
CREATE TRIGGER restore_replace BEFORE INSERT ON wam.tag_dimension
	FOR EACH ROW EXECUTE FUNCTION wam_internal.restore_replace_trigger();
CREATE TRIGGER restore_replace BEFORE INSERT ON wam.rfm_config
	FOR EACH ROW EXECUTE FUNCTION wam_internal.restore_replace_trigger();
CREATE TRIGGER restore_replace BEFORE INSERT ON wam.rfm_scheme
	FOR EACH ROW EXECUTE FUNCTION wam_internal.restore_replace_trigger();
CREATE TRIGGER restore_replace BEFORE INSERT ON wam.rfm_tier_rule
	FOR EACH ROW EXECUTE FUNCTION wam_internal.restore_replace_trigger();
CREATE TRIGGER restore_replace BEFORE INSERT ON wam.opt_out_keyword
	FOR EACH ROW EXECUTE FUNCTION wam_internal.restore_replace_trigger();
CREATE TRIGGER restore_replace BEFORE INSERT ON wam.referral_secret
	FOR EACH ROW EXECUTE FUNCTION wam_internal.restore_replace_trigger();

REVOKE EXECUTE ON FUNCTION wam_internal.restore_replace_trigger() FROM PUBLIC;

-- A message dumped while its request was in flight may or may not have gone
-- out: restored, it is uncertain (as after a worker crash), never sent again
-- by itself.  Normal inserts are never 'sending', so the WHEN clause keeps this
-- off the enqueue path.
CREATE FUNCTION wam_internal.outbox_restored_trigger() RETURNS trigger
	LANGUAGE plpgsql SET search_path = pg_catalog, wam, pg_temp
AS $$
BEGIN
	IF wam_internal.restoring() THEN
		NEW.status := 'uncertain';
		NEW.uncertain_at := pg_catalog.now();
		NEW.error_detail := 'restored from a backup taken while the request was in flight; not resent (see wam.requeue_message)';
	END IF;
	RETURN NEW;
END
$$;
COMMENT ON FUNCTION wam_internal.outbox_restored_trigger() IS 'internal: a message restored in state sending becomes uncertain';
CREATE TRIGGER outbox_restored BEFORE INSERT ON wam.outbox
	FOR EACH ROW WHEN (NEW.status = 'sending') EXECUTE FUNCTION wam_internal.outbox_restored_trigger();

REVOKE EXECUTE ON FUNCTION wam_internal.outbox_restored_trigger() FROM PUBLIC;

-- Every table and sequence of the extension is dumped with its rows.  This
-- runs over the catalog, so a table added later cannot be forgotten.
DO $dump$
DECLARE
	r pg_catalog.regclass;
BEGIN
	FOR r IN SELECT c.oid FROM pg_catalog.pg_class c
			 WHERE c.relnamespace OPERATOR(pg_catalog.=) ANY (ARRAY['wam', 'wam_internal']::pg_catalog.regnamespace[])
			   AND c.relkind OPERATOR(pg_catalog.=) ANY (ARRAY['r', 'p', 'S']::"char"[])
			 ORDER BY c.oid
	LOOP
		PERFORM pg_catalog.pg_extension_config_dump(r, '');
	END LOOP;
END
$dump$;
-- src/sql/security.sql: who the SECURITY DEFINER functions run as.
--
-- Functions that must bypass the roles' table privileges (tagging, imports,
-- orders, the queue, webhooks, referrals) are SECURITY DEFINER.  They are owned
-- by wam_definer, a NOLOGIN role without superuser, BYPASSRLS or memberships,
-- holding only the table privileges granted to it beside each table.  The C
-- functions, the type and the tables stay with the installing superuser, as
-- PostgreSQL requires.  This runs last, over every definer function of the
-- script, so that a new one cannot be forgotten.

-- Tables are read-only to the roles (granted beside each table); every change
-- goes through the functions, which check and log it.
REVOKE ALL ON ALL TABLES IN SCHEMA wam FROM PUBLIC;

-- Internal functions are revoked from PUBLIC; wam_definer runs only code the
-- extension ships, so it may call all of them.
GRANT USAGE ON SCHEMA wam_internal TO wam_definer;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA wam, wam_internal TO wam_definer;

DO $definer$
DECLARE
	f pg_catalog.regprocedure;
BEGIN
	FOR f IN SELECT p.oid FROM pg_catalog.pg_proc p
			 WHERE p.pronamespace OPERATOR(pg_catalog.=) ANY (ARRAY['wam', 'wam_internal']::pg_catalog.regnamespace[])
			   AND p.prosecdef
			 ORDER BY p.oid
	LOOP
		-- a definer function without a pinned search_path would resolve names
		-- through the caller's: refuse to install rather than ship one
		IF NOT EXISTS (SELECT FROM pg_catalog.pg_proc p, pg_catalog.unnest(p.proconfig) c
					   WHERE p.oid OPERATOR(pg_catalog.=) f
						 AND c OPERATOR(pg_catalog.=) 'search_path=pg_catalog, wam, pg_temp') THEN
			RAISE EXCEPTION 'SECURITY DEFINER function % does not pin search_path', f;
		END IF;
		EXECUTE pg_catalog.format('ALTER FUNCTION %s OWNER TO wam_definer', f);
	END LOOP;
END
$definer$;
