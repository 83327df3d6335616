-- wam.segment text, binary and cast I/O
SET search_path = public, wam;

-- text input: order, duplicates, whitespace, empty set, boundaries
SELECT '{}'::segment;
SELECT '  {  }  '::segment;
SELECT '{3,1,2,2,3}'::segment;
SELECT ' { 10 , 9 ,8 } '::segment;
SELECT '{0}'::segment, '{4294967295}'::segment, '{0,4294967295}'::segment;
SELECT '{007,08}'::segment;
SELECT E'{\n1,\t2\r}'::segment;
SELECT NULL::segment;

-- large values print compactly through runs and round-trip
SELECT segment_cardinality(segment_range(0, 100000)::text::segment);
SELECT segment_range(0, 100000)::text::segment = segment_range(0, 100000);

-- hex input of the portable serialization, both cases of \x
SELECT '\x3a30000000000000'::segment;
SELECT '\X3A300000010000000000020010000000010005000900'::segment;
SELECT '  \x3a300000010000000000020010000000010005000900  '::segment;
-- a valid but non-canonical serialization ({1,2,3} as an array container)
-- reads back in canonical form (a run container)
SELECT '\x3a300000010000000000020010000000010002000300'::segment;
SELECT '\x3a300000010000000000020010000000010002000300'::segment::bytea;
-- run containers from other Roaring implementations
SELECT '\x3b30000001000005000200010002000a000200'::segment;

-- output format setting: hex round-trips, input accepts both always
SET wam.segment_output_format = 'hex';
SELECT '{1,2,3}'::segment;
SELECT '{}'::segment;
SELECT '{1,2,3}'::segment::text::segment::bigint[];
RESET wam.segment_output_format;
SELECT '\x3b3000000100000200010001000200'::segment;
SHOW wam.segment_output_format;
SET wam.segment_output_format = 'json';

-- casts from and to arrays
SELECT ARRAY[5,1,3,1]::integer[]::segment;
SELECT ARRAY[]::integer[]::segment;
SELECT ARRAY[4294967295, 0]::bigint[]::segment;
SELECT ARRAY[[1,2],[3,4]]::integer[]::segment;
SELECT '{1,2,3}'::segment::integer[];
SELECT '{}'::segment::integer[];
SELECT '{2147483647}'::segment::integer[];
SELECT '{0,4294967295}'::segment::bigint[];
SELECT segment_to_array('{9,8,7}');
SELECT segment_to_array('{}');

-- casts from and to bytea (the Roaring portable format)
SELECT '{1,2,3}'::segment::bytea;
SELECT '{}'::segment::bytea;
SELECT '\x3a300000010000000000020010000000010005000900'::bytea::segment;
SELECT segment_range(0, 70000)::bytea::segment = segment_range(0, 70000);

-- canonical form: equal sets have equal bytes however they were built
SELECT '{1,2}'::segment::bytea = segment_range(1, 3)::bytea;
SELECT '{1,2,5,6}'::segment::bytea = (segment_range(1, 3) | segment_range(5, 7))::bytea;
SELECT (SELECT segment_agg(g) FROM generate_series(0, 9999) g)::bytea
	= segment_range(0, 10000)::bytea;
SELECT (segment_range(0, 5000) - '{4999}')::bytea
	= (SELECT segment_agg(g) FROM generate_series(0, 4998) g)::bytea;

-- storage: a dense segment is stored compactly
SELECT pg_column_size(segment_range(0, 1000000)) AS run_bytes;
SELECT pg_column_size(segment_agg(g)) AS bitset_bytes
	FROM generate_series(0, 999999, 2) g;
