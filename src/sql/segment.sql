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

-- the planner's row estimate of wam.segment_members: the segment's cardinality
-- when its value is known at planning time, else the declared 1000
CREATE FUNCTION wam_internal.segment_members_support(internal) RETURNS internal
	AS 'MODULE_PATHNAME', 'wam_segment_members_support' LANGUAGE C STRICT;
COMMENT ON FUNCTION wam_internal.segment_members_support(internal) IS 'internal: planner support of wam.segment_members (its row estimate)';
REVOKE EXECUTE ON FUNCTION wam_internal.segment_members_support(internal) FROM PUBLIC;

CREATE FUNCTION wam.segment_members(wam.segment) RETURNS SETOF bigint
	AS 'MODULE_PATHNAME', 'wam_segment_members' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
	ROWS 1000 SUPPORT wam_internal.segment_members_support;
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
