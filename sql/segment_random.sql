-- wam.segment against plain SQL on pseudo-random sets of many shapes
-- (sparse arrays, dense bitsets, runs, both ends of the id range)
SET search_path = public, wam;

CREATE TEMP TABLE ids (set_no int, id bigint);
-- deterministic "random" members: the same rows on every machine
INSERT INTO ids
SELECT s, id FROM generate_series(1, 8) s,
	LATERAL (
		SELECT g AS id FROM generate_series(0, 100000) g
		WHERE (hashint8(g * 31 + s) & 1023) < (ARRAY[3, 100, 400, 900, 1, 1023, 512, 50])[s]
		UNION
		SELECT g FROM generate_series(4294967295 - 2000, 4294967295) g
		WHERE s % 2 = 0 AND (hashint8(g + s) & 7) < 3
		UNION
		SELECT g FROM generate_series(20000 * s, 20000 * s + 5000) g WHERE s % 3 = 0
	) x;
CREATE TEMP TABLE segs AS SELECT set_no, segment_agg(id) AS s FROM ids GROUP BY set_no;

-- the aggregate holds exactly the rows
SELECT set_no, segment_cardinality(s) = (SELECT count(*) FROM ids i WHERE i.set_no = segs.set_no) AS card_ok,
	segment_to_array(s) = (SELECT array_agg(id ORDER BY id) FROM ids i WHERE i.set_no = segs.set_no) AS members_ok,
	wam.segment_min(s) = (SELECT min(id) FROM ids i WHERE i.set_no = segs.set_no) AS min_ok,
	wam.segment_max(s) = (SELECT max(id) FROM ids i WHERE i.set_no = segs.set_no) AS max_ok
FROM segs ORDER BY set_no;

-- every pair, every operator, against counts from a plain SQL join
CREATE TEMP TABLE sizes AS SELECT set_no, count(*) AS n FROM ids GROUP BY set_no;
CREATE TEMP TABLE common AS
	SELECT a.set_no AS x, b.set_no AS y, count(*) AS n
	FROM ids a JOIN ids b USING (id) GROUP BY 1, 2;
SELECT count(*) AS pairs,
	bool_and(segment_cardinality(a.s & b.s) = coalesce(c.n, 0)) AS and_ok,
	bool_and(segment_cardinality(a.s | b.s) = sa.n + sb.n - coalesce(c.n, 0)) AS or_ok,
	bool_and(segment_cardinality(a.s - b.s) = sa.n - coalesce(c.n, 0)) AS andnot_ok,
	bool_and(segment_cardinality(a.s # b.s) = sa.n + sb.n - 2 * coalesce(c.n, 0)) AS xor_ok,
	bool_and(segment_and_cardinality(a.s, b.s) = segment_cardinality(a.s & b.s)
		AND segment_or_cardinality(a.s, b.s) = segment_cardinality(a.s | b.s)
		AND segment_andnot_cardinality(a.s, b.s) = segment_cardinality(a.s - b.s)
		AND segment_xor_cardinality(a.s, b.s) = segment_cardinality(a.s # b.s)) AS fused_ok,
	bool_and((a.s && b.s) = (coalesce(c.n, 0) > 0)) AS overlap_ok,
	bool_and((a.s @> b.s) = (coalesce(c.n, 0) = sb.n)) AS contains_ok,
	bool_and((a.s = b.s) = (a.set_no = b.set_no)) AS eq_ok,
	bool_and(sign(wam_internal.segment_cmp(a.s, b.s)) = sign(btarraycmp(segment_to_array(a.s), segment_to_array(b.s)))) AS order_ok
FROM segs a CROSS JOIN segs b
	JOIN sizes sa ON sa.set_no = a.set_no JOIN sizes sb ON sb.set_no = b.set_no
	LEFT JOIN common c ON c.x = a.set_no AND c.y = b.set_no;
-- the members of each result, not just the counts, for one dense/sparse pair
SELECT segment_to_array(a.s & b.s) = (SELECT array_agg(id ORDER BY id) FROM (
		SELECT id FROM ids WHERE set_no = 2 INTERSECT SELECT id FROM ids WHERE set_no = 7) x) AS and_members,
	segment_to_array(a.s - b.s) = (SELECT array_agg(id ORDER BY id) FROM (
		SELECT id FROM ids WHERE set_no = 2 EXCEPT SELECT id FROM ids WHERE set_no = 7) x) AS andnot_members
FROM segs a, segs b WHERE a.set_no = 2 AND b.set_no = 7;

-- membership tests agree with the rows, hits and misses
SELECT bool_and(segment_has(s.s, i.id)) AS hits_ok
FROM segs s JOIN ids i USING (set_no);
SELECT count(*) FILTER (WHERE segment_has(s.s, g)) = (SELECT count(*) FROM ids WHERE set_no = 1 AND id < 5000)
	AS probes_ok
FROM segs s, generate_series(0, 4999) g WHERE s.set_no = 1;

-- results built by different routes are byte-identical (canonical form)
SELECT bool_and(((a.s | b.s) - b.s)::bytea = (a.s - b.s)::bytea) AS canonical_ok
FROM segs a, segs b;
SELECT bool_and((s.s::text::segment)::bytea = s.s::bytea
	AND (segment_to_array(s.s)::segment)::bytea = s.s::bytea) AS roundtrip_ok FROM segs s;
