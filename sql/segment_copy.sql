-- binary and text COPY round-trips of wam.segment
SET search_path = public, wam;

CREATE TEMP TABLE seg_src (id int, s segment);
INSERT INTO seg_src VALUES
	(1, '{}'),
	(2, '{0}'),
	(3, '{4294967295}'),
	(4, '{1,2,3,100000,4294967295}'),
	(5, segment_range(0, 200000)),
	(6, (SELECT segment_agg(g) FROM generate_series(1, 300000, 3) g)),
	(7, NULL);

-- binary COPY through files in the server's data directory
SELECT current_setting('data_directory') || '/wam_seg_copy' AS f \gset
COPY seg_src TO :'f' WITH (FORMAT binary);
CREATE TEMP TABLE seg_bin (LIKE seg_src);
COPY seg_bin FROM :'f' WITH (FORMAT binary);
SELECT a.id, a.s IS NOT DISTINCT FROM b.s AS same, segment_cardinality(b.s)
	FROM seg_src a JOIN seg_bin b USING (id) ORDER BY id;

-- text COPY in both output formats
COPY seg_src TO :'f';
CREATE TEMP TABLE seg_txt (LIKE seg_src);
COPY seg_txt FROM :'f';
SET wam.segment_output_format = 'hex';
COPY seg_src TO :'f';
RESET wam.segment_output_format;
CREATE TEMP TABLE seg_hex (LIKE seg_src);
COPY seg_hex FROM :'f';
SELECT a.id, a.s IS NOT DISTINCT FROM t.s AS same_text,
	a.s IS NOT DISTINCT FROM h.s AS same_hex
	FROM seg_src a JOIN seg_txt t USING (id) JOIN seg_hex h USING (id) ORDER BY id;

-- binary send/recv directly
SELECT segment_recv_check FROM (
	SELECT wam_internal.segment_send(s) = s::bytea AS segment_recv_check
	FROM seg_src WHERE s IS NOT NULL) x GROUP BY 1;

-- a corrupted binary COPY value is rejected by recv's validation
CREATE TEMP TABLE seg_one (s segment);
COPY (SELECT '{1,5,9}'::bytea) TO :'f' WITH (FORMAT binary);
COPY seg_one FROM :'f' WITH (FORMAT binary);
SELECT * FROM seg_one;
