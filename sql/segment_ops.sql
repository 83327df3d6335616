-- wam.segment operators and scalar functions
SET search_path = public, wam;

-- set algebra
SELECT '{1,2,3}'::segment & '{2,3,4}' AS "and",
	'{1,2,3}'::segment | '{2,3,4}' AS "or",
	'{1,2,3}'::segment - '{2,3,4}' AS "andnot",
	'{1,2,3}'::segment # '{2,3,4}' AS "xor";
SELECT '{}'::segment & '{1}', '{}'::segment | '{1}', '{1}'::segment - '{}', '{}'::segment # '{}';
SELECT '{0,4294967295}'::segment & '{4294967295}', '{0}'::segment | '{4294967295}';
SELECT '{1,2,3}'::segment & NULL, NULL::segment | '{1}';
-- operator precedence is PostgreSQL's: - binds tighter than & | #, which
-- are left-associative among themselves; use parentheses
SELECT '{4}'::segment | '{5}'::segment - '{4}'::segment AS minus_first;
SELECT ('{4}'::segment | '{5}'::segment) - '{4}'::segment AS parenthesized;
SELECT '{1,2}'::segment | '{3}'::segment & '{1,3}'::segment AS left_to_right;

-- containment and overlap
SELECT '{1,2,3}'::segment @> '{1,3}' AS t1, '{1,3}'::segment <@ '{1,2,3}' AS t2,
	'{1,2,3}'::segment @> '{4}' AS f1, '{}'::segment <@ '{}' AS t3,
	'{1}'::segment @> '{}' AS t4, '{}'::segment @> '{1}' AS f2;
SELECT '{1,2,3}'::segment @> 2::bigint AS t1, 3::bigint <@ '{1,2,3}'::segment AS t2,
	'{1,2,3}'::segment @> 4::bigint AS f1, '{}'::segment @> 0::bigint AS f2,
	'{4294967295}'::segment @> 4294967295::bigint AS t3;
SELECT '{1,2}'::segment && '{2,3}' AS t, '{1}'::segment && '{2}' AS f, '{}'::segment && '{}' AS f2;
SELECT segment_has('{5,6}', 6), segment_has('{5,6}', 7), segment_has('{}', 0);
SELECT segment_has('{5,6}', NULL), segment_has(NULL, 1);

-- equality, ordering (member lists compared lexicographically), hashing
SELECT '{1,2}'::segment = '{2,1}' AS t, '{1,2}'::segment <> '{1,2,3}' AS t2,
	'{}'::segment = '{}' AS t3, '{1}'::segment = '{}' AS f;
SELECT s FROM (VALUES ('{2}'::segment), ('{1,3}'), ('{}'), ('{1,2,3}'), ('{1,2}'),
	('{4294967295}'), ('{0}')) v(s) ORDER BY s;
SELECT '{1,2}'::segment < '{1,2,3}' AS t1, '{1,3}'::segment > '{1,2,3}' AS t2,
	'{1}'::segment <= '{1}' AS t3, '{}'::segment >= '{0}' AS f1,
	wam_internal.segment_cmp('{5}', '{5}') AS zero, wam_internal.segment_cmp('{5}', '{6}') AS minus,
	wam_internal.segment_cmp('{6}', '{5,7}') AS plus;
SELECT wam_internal.segment_hash('{1,2}') = wam_internal.segment_hash(segment_range(1, 3)) AS same_hash,
	wam_internal.segment_hash_extended('{1,2}', 7) = wam_internal.segment_hash_extended(segment_range(1, 3), 7) AS same_hash64,
	wam_internal.segment_hash_extended('{1,2}', 7) <> wam_internal.segment_hash_extended('{1,2}', 8) AS seed_matters;
-- GROUP BY and DISTINCT by hashing and by sorting
SET enable_hashagg = on;
SELECT s, count(*) FROM (VALUES ('{1,2}'::segment), (segment_range(1, 3)), ('{3}'), ('{3}'), ('{}'))
	v(s) GROUP BY s ORDER BY s;
SET enable_hashagg = off;
SELECT s, count(*) FROM (VALUES ('{1,2}'::segment), (segment_range(1, 3)), ('{3}'), ('{3}'), ('{}'))
	v(s) GROUP BY s ORDER BY s;
RESET enable_hashagg;
SELECT count(DISTINCT s) FROM (VALUES ('{1,2}'::segment), (segment_range(1, 3)), ('{2,1}')) v(s);
-- hash join and merge join on a segment
CREATE TEMP TABLE ja (id int, s segment);
CREATE TEMP TABLE jb (id int, s segment);
INSERT INTO ja VALUES (1, '{1,2}'), (2, '{3}'), (3, '{}');
INSERT INTO jb VALUES (10, segment_range(1, 3)), (20, '{4}'), (30, '{}');
SET enable_nestloop = off; SET enable_mergejoin = off;
SELECT ja.id, jb.id FROM ja JOIN jb ON ja.s = jb.s ORDER BY 1;
SET enable_hashjoin = off; SET enable_mergejoin = on;
SELECT ja.id, jb.id FROM ja JOIN jb ON ja.s = jb.s ORDER BY 1;
RESET enable_nestloop; RESET enable_mergejoin; RESET enable_hashjoin;
-- a btree index on a segment column
CREATE INDEX ON jb (s);
SET enable_seqscan = off;
SELECT id FROM jb WHERE s = '{4}';
RESET enable_seqscan;
-- hash partitioning by a segment
CREATE TEMP TABLE hp (s segment) PARTITION BY HASH (s);
CREATE TEMP TABLE hp0 PARTITION OF hp FOR VALUES WITH (MODULUS 2, REMAINDER 0);
CREATE TEMP TABLE hp1 PARTITION OF hp FOR VALUES WITH (MODULUS 2, REMAINDER 1);
INSERT INTO hp SELECT segment_range(0, g) FROM generate_series(0, 19) g;
SELECT count(*) FROM hp;

-- cardinalities, fused and plain
-- (wam.cardinality, wam.min and wam.max share names with built-ins: an
-- untyped literal needs the schema or a cast)
SELECT wam.segment_cardinality('{}'), wam.segment_cardinality('{0}'), wam.segment_cardinality('{1,2,3}'),
	segment_cardinality(segment_range(0, 4294967296));
SELECT segment_and_cardinality('{1,2,3}', '{2,3,4}'), segment_or_cardinality('{1,2,3}', '{2,3,4}'),
	segment_andnot_cardinality('{1,2,3}', '{2,3,4}'), segment_xor_cardinality('{1,2,3}', '{2,3,4}');
SELECT segment_and_cardinality('{}', '{}'), segment_or_cardinality('{}', '{}'),
	segment_andnot_cardinality('{}', '{1}'), segment_xor_cardinality('{1}', '{1}');
SELECT segment_and_cardinality(NULL, '{1}'), wam.segment_cardinality(NULL);
SELECT segment_jaccard('{1,2,3}', '{2,3,4}'), segment_jaccard('{}', '{}'), segment_jaccard('{1}', '{}');
SELECT segment_is_empty('{}'), segment_is_empty('{0}'), segment_is_empty(segment_range(5, 5));
-- the fused counts agree with the built results on larger, mixed containers
WITH s AS (SELECT segment_range(0, 100000) - segment_range(5000, 7000) AS a,
		(SELECT segment_agg(g) FROM generate_series(0, 200000, 3) g) AS b)
SELECT segment_and_cardinality(a, b) = segment_cardinality(a & b) AS and_ok,
	segment_or_cardinality(a, b) = segment_cardinality(a | b) AS or_ok,
	segment_andnot_cardinality(a, b) = segment_cardinality(a - b) AS andnot_ok,
	segment_xor_cardinality(a, b) = segment_cardinality(a # b) AS xor_ok,
	segment_cardinality(a & b) AS n_and
FROM s;

-- single members
SELECT segment_add('{1}', 5), segment_add('{}', 0), segment_add('{1}', 1), segment_add('{1}', 4294967295);
SELECT segment_remove('{1,5}', 5), segment_remove('{1}', 7), segment_remove('{}', 0), segment_remove('{4294967295}', 4294967295);
SELECT segment_add(NULL, 1), segment_add('{1}', NULL), segment_remove(NULL, 1);
SELECT wam.segment_min('{7,3,9}'), wam.segment_max('{7,3,9}'), wam.segment_min('{}'), wam.segment_max('{}'),
	wam.segment_min('{0,4294967295}'), wam.segment_max('{0,4294967295}'), wam.segment_min(NULL);

-- ranges are half-open
SELECT segment_range(1, 4), segment_range(4, 4), segment_range(5, 1);
SELECT segment_range(4294967294, 4294967296), segment_range(0, 1);
SELECT segment_cardinality(segment_range(0, 4294967296)), segment_max(segment_range(0, 4294967296));
