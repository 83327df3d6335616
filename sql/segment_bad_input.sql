-- every class of bad input gives a clear error with an error code
SET search_path = public, wam;
\set VERBOSITY default

-- malformed text
SELECT ''::segment;
SELECT '   '::segment;
SELECT '1,2'::segment;
SELECT '{1,2'::segment;
SELECT '{1,,2}'::segment;
SELECT '{,1}'::segment;
SELECT '{1,}'::segment;
SELECT '{1 2}'::segment;
SELECT '{1}}'::segment;
SELECT '{1} x'::segment;
SELECT '{a}'::segment;
SELECT '{1.5}'::segment;
SELECT '{+1}'::segment;
SELECT '{0x10}'::segment;
SELECT '{１}'::segment;
SELECT '[1,2]'::segment;
-- out of range
SELECT '{-1}'::segment;
SELECT '{4294967296}'::segment;
SELECT '{99999999999999999999999999999999}'::segment;
-- long bad input is quoted only in part
SELECT ('{' || repeat('1,', 100) || 'x}')::segment;

-- malformed hex
SELECT '\x'::segment;
SELECT '\x3a3'::segment;
SELECT '\x3a30zz00'::segment;
-- hostile or truncated binary, through hex and bytea (binary COPY uses
-- the same validation)
SELECT '\x00000000'::segment;
SELECT '\x3a300000'::segment;
SELECT '\x3a30000001000000'::segment;
SELECT '\x3a3000000100000000000200100000000100050009'::segment;
SELECT '\x3a300000010000000000020010000000010005000900ff'::segment;
SELECT '\x3a30000070110100'::segment;
-- container invariants that CRoaring 0.2.66 does not check itself
SELECT '\x3a300000010000000000020010000000050001000900'::segment;
SELECT '\x3a300000010000000000020010000000010001000900'::segment;
SELECT '\x3a300000020000000100000000000000180000001a00000001000100'::segment;
SELECT '\x3a300000020000000000000000000000180000001a00000001000100'::segment;
SELECT '\x3a300000010000000000020011000000010005000900'::segment;
SELECT '\x3b3000000100000c0002000100090005000200'::segment;
SELECT '\x3b3000000100000a000100faff0a00'::segment;
SELECT '\x3b30000001000000000000'::segment;
-- a bitset container whose claimed cardinality is one more than its bits
SELECT overlay(s::bytea PLACING '\x8813'::bytea FROM 11)::segment
	FROM (SELECT segment_agg(g) AS s FROM generate_series(0, 9998, 2) g) x;
SELECT ''::bytea::segment;
SELECT '\xdeadbeef'::bytea::segment;
SELECT decode(repeat('ff', 100), 'hex')::segment;
-- every truncation of a valid multi-container value is rejected
SELECT count(*) AS truncations, count(*) FILTER (WHERE ok) AS accepted FROM (
	SELECT n, wam.segment_is_valid(substr(b, 1, n)) AS ok
	FROM (SELECT ('{1,2,3,70000,140000}'::segment | segment_range(200000, 300000))::bytea AS b) x,
		generate_series(0, length(b) - 1) n) y;

-- arrays with NULLs or ids out of range
SELECT ARRAY[1, NULL]::integer[]::segment;
SELECT ARRAY[-1]::integer[]::segment;
SELECT ARRAY[4294967296]::bigint[]::segment;
SELECT ARRAY[-9223372036854775808]::bigint[]::segment;
SELECT '{2147483648}'::segment::integer[];

-- ids out of range in functions and operators
SELECT segment_has('{1}', -1);
SELECT segment_has('{1}', 4294967296);
SELECT '{1}'::segment @> (-1)::bigint;
SELECT 4294967296::bigint <@ '{1}'::segment;
SELECT segment_add('{1}', -1);
SELECT segment_remove('{1}', 4294967296);
SELECT segment_range(-1, 5);
SELECT segment_range(0, 4294967297);
SELECT segment_range(4294967297, 4294967298);

-- the error codes
SELECT '{x}'::segment;
\echo :LAST_ERROR_SQLSTATE
SELECT '{-1}'::segment;
\echo :LAST_ERROR_SQLSTATE
SELECT '\x3a300000'::segment;
\echo :LAST_ERROR_SQLSTATE
SELECT '\x3a3'::segment;
\echo :LAST_ERROR_SQLSTATE
SELECT segment_add('{1}', -1);
\echo :LAST_ERROR_SQLSTATE
SELECT ARRAY[1, NULL]::integer[]::segment;
\echo :LAST_ERROR_SQLSTATE
SELECT '{2147483648}'::segment::integer[];
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM segment_split('{1}', 0, 1);
\echo :LAST_ERROR_SQLSTATE

-- sizes past the limits fail at once with program_limit_exceeded (54000),
-- before any large allocation: wam.segment_split() permutes at most 268435455
-- members (4 bytes each, under 1 GB); every id would ask for 16 GB
SELECT * FROM segment_split(segment_range(0, 4294967296), 10000, 1);
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM segment_split(segment_range(0, 268435456), 2, 1);
\echo :LAST_ERROR_SQLSTATE
-- an array holds at most 134217727 int4 (PostgreSQL's MaxArraySize) or
-- 134217724 int8 (1 GB)
SELECT cardinality(segment_range(0, 134217728)::integer[]);
\echo :LAST_ERROR_SQLSTATE
SELECT cardinality(segment_range(0, 134217725)::bigint[]);
\echo :LAST_ERROR_SQLSTATE
-- the {…} text of every id would need 43 GB
SELECT length(segment_range(0, 4294967296)::text);
\echo :LAST_ERROR_SQLSTATE
SELECT length(segment_range(0, 120000000)::text);
\echo :LAST_ERROR_SQLSTATE
-- the text limit is 1073741819 bytes: 107374173 nine-digit ids and eight
-- ten-digit ones need exactly that (10 * 107374173 + 1 + 11 * 8); one more
-- ten-digit id is 11 bytes too many
SELECT length((segment_range(100000000, 207374173) | segment_range(1000000000, 1000000009))::text);
\echo :LAST_ERROR_SQLSTATE

-- at and just below the limits the work starts, and long loops over members
-- give in to a cancel_message (here statement_timeout, 57014)
SET statement_timeout = '100ms';
SELECT count(*) FROM segment_split(segment_range(0, 268435455), 2, 1);
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) FROM segment_split(segment_range(1, 268435455), 10000, 1);
\echo :LAST_ERROR_SQLSTATE
SELECT cardinality(segment_range(0, 134217727)::integer[]);
\echo :LAST_ERROR_SQLSTATE
SELECT cardinality(segment_range(1, 134217727)::integer[]);
\echo :LAST_ERROR_SQLSTATE
SELECT cardinality(segment_range(0, 134217724)::bigint[]);
\echo :LAST_ERROR_SQLSTATE
SELECT length((segment_range(100000000, 207374173) | segment_range(1000000000, 1000000008))::text);
\echo :LAST_ERROR_SQLSTATE
SELECT length((segment_range(100000000, 207374172) | segment_range(1000000000, 1000000008))::text);
\echo :LAST_ERROR_SQLSTATE
-- ordering two segments that share a prefix of 4294967295 members
SELECT segment_range(0, 4294967295) OPERATOR(wam.<) segment_range(0, 4294967296);
\echo :LAST_ERROR_SQLSTATE
-- streaming every id (in the select list: no tuplestore): segment_members() and
-- segment_chunks() are cancelable too
SELECT count(*) FROM (SELECT segment_members(segment_range(0, 4294967296))) x;
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) FROM (SELECT segment_chunks(segment_range(0, 4294967296))) x;
\echo :LAST_ERROR_SQLSTATE
RESET statement_timeout;
