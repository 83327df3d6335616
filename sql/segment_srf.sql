-- wam.members and wam.split
SET search_path = public, wam;

SELECT * FROM segment_members('{5,1,4294967295,0}');
SELECT count(*) FROM segment_members('{}');
SELECT * FROM segment_members(NULL);
SELECT count(*), min(m), max(m), sum(m) FROM segment_members(segment_range(0, 100000)) m;
-- streaming: LIMIT stops early, the order is ascending
SELECT * FROM segment_members(segment_range(1000, 2000000)) LIMIT 3;
SELECT bool_and(m = rn + 999) FROM (
	SELECT m, row_number() OVER () AS rn FROM segment_members(segment_range(1000, 50000)) m) x;

-- split: bucket sizes differ by at most one, buckets are disjoint and cover
SELECT n, segment_cardinality(s) FROM segment_split('{1,2,3,4,5,6,7,8,9,10}', 3, 42) WITH ORDINALITY AS t(s, n);
SELECT * FROM segment_split('{1,2,3,4,5,6,7,8,9,10}', 3, 42);
SELECT * FROM segment_split('{1,2,3,4,5,6,7,8,9,10}', 3, 43);
SELECT * FROM segment_split('{1,2,3,4,5,6,7,8,9,10}', 1, 42);
SELECT * FROM segment_split('{}', 2, 1);
SELECT * FROM segment_split('{7}', 3, 1);
SELECT * FROM segment_split('{1,2,3}', 2, -9223372036854775808);
WITH parts AS (SELECT s FROM segment_split(segment_range(0, 100001), 4, 2026) s)
SELECT max(segment_cardinality(s)) - min(segment_cardinality(s)) AS size_spread,
	sum(segment_cardinality(s)) AS total,
	segment_cardinality(segment_union_agg(s)) AS covered,
	count(*) AS buckets
FROM parts;
-- the same seed always gives the same buckets (pinned, machine-independent)
SELECT md5(string_agg(s::text, '|')) FROM segment_split(segment_range(0, 1000), 2, 7) s;
SELECT (SELECT array_agg(s) FROM segment_split(segment_range(0, 5000), 5, 99) s)
	= (SELECT array_agg(s) FROM segment_split(segment_range(0, 5000), 5, 99) s) AS stable;
-- a different seed gives a different partition
SELECT (SELECT array_agg(s) FROM segment_split(segment_range(0, 5000), 2, 1) s)
	<> (SELECT array_agg(s) FROM segment_split(segment_range(0, 5000), 2, 2) s) AS differs;
-- A/B halves of a large set are balanced but random: about half of the
-- even ids land in each half
SELECT n, segment_cardinality(s), segment_and_cardinality(s, (SELECT segment_agg(g) FROM generate_series(0, 99999, 2) g)) BETWEEN 24000 AND 26000 AS mixed
FROM segment_split(segment_range(0, 100000), 2, 5) WITH ORDINALITY AS t(s, n);
SELECT * FROM segment_split('{1}', 0, 1);
SELECT * FROM segment_split('{1}', 10001, 1);
SELECT * FROM segment_split('{1}', -1, 1);
SELECT count(*) FROM segment_split('{1}', 10000, 1);

-- the planner's row estimate is the segment's cardinality when the value is
-- known (a constant here; a PL/pgSQL variable under a custom plan): 3, 0 for
-- an empty segment (shown as 1, the planner's floor), 99,999 for [1, 100000);
-- an argument not known at planning time keeps the declared 1000
CREATE FUNCTION pg_temp.est(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE l text;
BEGIN
	EXECUTE 'EXPLAIN ' || q INTO l;
	RETURN substring(l FROM 'rows=([0-9]+)');
END $$;
SELECT pg_temp.est($q$SELECT * FROM wam.segment_members('{1,2,3}')$q$) AS three,
	   pg_temp.est($q$SELECT * FROM wam.segment_members('{}')$q$) AS empty,
	   pg_temp.est($q$SELECT * FROM wam.segment_members(wam.segment(ARRAY(SELECT generate_series(1, 100000)::bigint)))$q$) AS not_constant,
	   pg_temp.est($q$SELECT * FROM wam.segment_members(wam.segment_range(1, 100000))$q$) AS range_fn;
CREATE FUNCTION pg_temp.est_var(s wam.segment) RETURNS text LANGUAGE plpgsql AS $$
DECLARE l text;
BEGIN
	FOR l IN EXPLAIN SELECT count(*) FROM wam.segment_members(s) LOOP
		IF l ~ 'Function Scan' THEN RETURN substring(l FROM 'rows=([0-9]+)'); END IF;
	END LOOP;
END $$;
SELECT pg_temp.est_var(wam.segment(ARRAY(SELECT generate_series(1, 54321)::bigint))) AS plpgsql_variable;
