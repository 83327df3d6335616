-- wam.segment aggregates, serial and parallel
SET search_path = public, wam;

SELECT segment_agg(x) FROM (VALUES (3), (1), (NULL), (2), (1)) v(x);
SELECT segment_agg(x) FROM (VALUES (NULL::bigint), (NULL)) v(x);
SELECT segment_agg(x) FROM (SELECT 1::bigint WHERE false) v(x);
SELECT segment_agg(x) FROM (VALUES (0::bigint), (4294967295)) v(x);
SELECT segment_union_agg(s) FROM (VALUES ('{1,2}'::segment), (NULL), ('{2,3}'), ('{}')) v(s);
SELECT segment_intersect_agg(s) FROM (VALUES ('{1,2,3}'::segment), (NULL), ('{2,3,4}'), ('{3,2}')) v(s);
SELECT segment_intersect_agg(s) FROM (VALUES ('{1}'::segment), ('{}')) v(s);
SELECT segment_union_agg(s), segment_intersect_agg(s) FROM (SELECT '{1}'::segment WHERE false) v(s);
SELECT segment_union_agg(s), segment_intersect_agg(s) FROM (VALUES (NULL::segment)) v(s);

-- grouped, and with many groups (each state is its own expanded object)
SELECT g % 3 AS k, segment_agg(g) FROM generate_series(1, 10) g GROUP BY 1 ORDER BY 1;
SELECT count(*), sum(segment_cardinality(s)) FROM (
	SELECT g % 1000 AS k, segment_agg(g) AS s FROM generate_series(1, 100000) g GROUP BY 1) x;

-- as window aggregates
SELECT g, segment_agg(g) OVER (ORDER BY g) FROM generate_series(1, 4) g;
SELECT g, segment_union_agg(s) OVER (ORDER BY g ROWS BETWEEN 1 PRECEDING AND CURRENT ROW)
	FROM (VALUES (1, '{1}'::segment), (2, '{2}'), (3, '{3}')) v(g, s);

-- the aggregate state is wam.segment itself (Citus pushes down only
-- aggregates with a combine function and a non-internal state type)
SELECT a.aggfnoid::regproc, a.aggtranstype::regtype, a.aggcombinefn::regproc,
	a.aggserialfn, a.aggdeserialfn, p.proparallel
FROM pg_aggregate a JOIN pg_proc p ON p.oid = a.aggfnoid
WHERE a.aggfnoid::regproc::text IN ('segment_agg', 'segment_union_agg', 'segment_intersect_agg')
ORDER BY 1::text;

-- the transition functions refuse to run outside an aggregate
SELECT wam_internal.segment_agg_trans(NULL, 1);
SELECT wam_internal.segment_union_trans('{1}', '{2}');

-- parallel plans give the same results as serial ones
CREATE TABLE agg_src (id bigint, tag int, s segment);
INSERT INTO agg_src
	SELECT g, g % 7, segment_range(g, g + 3) FROM generate_series(0, 299999) g;
ANALYZE agg_src;
CREATE TEMP TABLE serial_result AS
	SELECT segment_agg(id) AS a, segment_union_agg(s) AS u,
		segment_intersect_agg(s) FILTER (WHERE id BETWEEN 10 AND 12) AS i
	FROM agg_src;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
EXPLAIN (COSTS OFF) SELECT segment_agg(id), segment_union_agg(s) FROM agg_src;
EXPLAIN (COSTS OFF) SELECT tag, segment_agg(id) FROM agg_src GROUP BY tag;
SELECT r.a = p.a AS same_segment_agg, r.u = p.u AS same_union_agg, r.i = p.i AS same_intersect_agg,
	segment_cardinality(p.a), segment_cardinality(p.u), p.i
FROM serial_result r, (
	SELECT segment_agg(id) AS a, segment_union_agg(s) AS u,
		segment_intersect_agg(s) FILTER (WHERE id BETWEEN 10 AND 12) AS i
	FROM agg_src) p;
SELECT tag, segment_cardinality(segment_agg(id)), segment_min(segment_agg(id)) FROM agg_src GROUP BY tag ORDER BY tag;
-- the workers really ran: compare with the per-group serial answer
SELECT bool_and(s = (SELECT segment_agg(id) FROM agg_src a2 WHERE a2.tag = x.tag)) AS all_groups_equal
FROM (SELECT tag, segment_agg(id) AS s FROM agg_src GROUP BY tag) x;
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
RESET max_parallel_workers_per_gather;
DROP TABLE agg_src;

-- out-of-range input to the aggregate
SELECT segment_agg(x) FROM (VALUES (1::bigint), (-1)) v(x);
SELECT segment_agg(x) FROM (VALUES (4294967296::bigint)) v(x);
