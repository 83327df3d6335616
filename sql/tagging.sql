-- wam.attach / wam.detach_tag (C, src/tagging.c) and the (tag_id, customer_id)
-- membership key: the paths the tags test does not reach
SET client_min_messages = warning;
DROP EXTENSION pg_wamarketing CASCADE;
CREATE EXTENSION pg_wamarketing;
RESET client_min_messages;
SET search_path = public, wam;
SET client_min_messages = warning;
\set VERBOSITY terse

-- errors as SQLSTATE: message
CREATE FUNCTION pg_temp.err(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
	EXECUTE q;
	RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
	RETURN SQLSTATE || ': ' || SQLERRM;
END $$;

-- customers in three id blocks: 1..100, 65536..65635, 200000..200009
INSERT INTO customer (id, phone)
SELECT g, (85290000000 + g)::text
FROM (SELECT generate_series(1, 100) UNION ALL SELECT generate_series(65536, 65635)
	  UNION ALL SELECT generate_series(200000, 200009)) s(g);
SELECT create_tag('spread', 'interest'), create_tag('short', 'engagement', NULL, '1 day'),
	create_tag('other', 'interest');

-- one call over three blocks: three bitmap rows, one lock and one upsert each
SELECT attach_tag('spread', segment_range(50, 101) | segment_range(65536, 65546) | '{200005}');
SELECT chunk, segment_cardinality(members) FROM tag_chunk WHERE tag_id = tag_id('spread') ORDER BY chunk;
-- a detach that empties a block deletes its row; customers without the tag are not counted
SELECT detach_tag('spread', '{200005, 200006, 1}');
SELECT chunk, segment_cardinality(members) FROM tag_chunk WHERE tag_id = tag_id('spread') ORDER BY chunk;
SELECT detach_tag('spread', segment_range(65536, 65546));
SELECT chunk FROM tag_chunk WHERE tag_id = tag_id('spread') ORDER BY chunk;
SELECT segment_cardinality(tag_members('spread')), count(*) FROM customer_tag WHERE tag_id = tag_id('spread');

-- re-attaching refreshes the expiry of those who hold the tag and counts only the new
SELECT attach_tag('short', '{1,2}');
SELECT customer_id, expires_at - attached_at AS ttl FROM customer_tag WHERE tag_id = tag_id('short') ORDER BY 1;
SELECT attach_tag('short', '{1,2,3}', '7 days', 'manual');
SELECT customer_id, date_trunc('minute', expires_at - attached_at) AS ttl, source FROM customer_tag WHERE tag_id = tag_id('short') ORDER BY 1;
-- without a time to live and a tag default, the expiry is cleared
SELECT attach_tag('spread', '{60}', '1 hour');
SELECT expires_at IS NOT NULL AS has_expiry FROM customer_tag WHERE tag_id = tag_id('spread') AND customer_id = 60;
SELECT attach_tag('spread', '{60}');
SELECT expires_at IS NULL AS expiry_cleared FROM customer_tag WHERE tag_id = tag_id('spread') AND customer_id = 60;

-- last use: set by the first attach, left alone within the hour, renewed after it
SELECT last_attached_at IS NOT NULL AS used FROM tag WHERE name = 'other';
SELECT attach_tag('other', '{5}');
SELECT last_attached_at > now() - interval '1 minute' AS used_now FROM tag WHERE name = 'other';
UPDATE tag SET last_attached_at = now() - interval '30 minutes' WHERE name = 'other';
SELECT attach_tag('other', '{6}');
SELECT last_attached_at < now() - interval '29 minutes' AS unchanged FROM tag WHERE name = 'other';
UPDATE tag SET last_attached_at = now() - interval '2 hours' WHERE name = 'other';
SELECT attach_tag('other', '{7}');
SELECT last_attached_at > now() - interval '1 minute' AS renewed FROM tag WHERE name = 'other';

-- rows written by direct DML (triggers) and by attach/detach are the same truth
INSERT INTO customer_tag (customer_id, tag_id, source) VALUES (8, tag_id('other'), 'manual');
SELECT attach_tag('other', '{7,8,9}');
SELECT detach_tag('other', '{5,8}');
SELECT tag_members('other'), array_agg(customer_id ORDER BY customer_id) AS rows
FROM customer_tag WHERE tag_id = tag_id('other');

-- errors, in the order of the arguments, with their SQLSTATE
SELECT pg_temp.err($$SELECT attach_tag(NULL, NULL)$$);
SELECT pg_temp.err($$SELECT attach_tag('nope', NULL)$$);
SELECT pg_temp.err($$SELECT attach_tag('spread', NULL)$$);
SELECT pg_temp.err($$SELECT attach_tag('spread', '{1}', '-1 hour')$$);
SELECT pg_temp.err($$SELECT attach_tag('spread', '{1}', NULL, NULL)$$);
SELECT pg_temp.err($$SELECT attach_tag('spread', '{1}', NULL, 'Import')$$);
SELECT pg_temp.err($$SELECT attach_tag('spread', '{1, 101, 102, 4294967295}')$$);
SELECT pg_temp.err($$SELECT detach_tag(NULL, '{1}')$$);
SELECT pg_temp.err($$SELECT detach_tag('nope', '{1}')$$);
SELECT pg_temp.err($$SELECT detach_tag('spread', NULL)$$);
-- a failed attach changed nothing
SELECT segment_cardinality(tag_members('spread')), count(*) FROM customer_tag WHERE tag_id = tag_id('spread');

-- retired tags: no attach, but detach still works; merged tags name their successor
SELECT retire_tag('short', 'test');
SELECT pg_temp.err($$SELECT attach_tag('short', '{4}')$$);
SELECT detach_tag('short', '{1}');
SELECT merge_tags('spread', 'other', 'test');
SELECT pg_temp.err($$SELECT attach_tag('SPREAD', '{4}')$$);
SELECT detach_tag('spread', '{60}');

-- customer_tags probes each tag through the (tag_id, customer_id) key
SELECT customer_tags(2), customer_tags(7), customer_tags(100), customer_tags(200009);
-- deleting customers removes their rows of every tag and their bitmap bits
DELETE FROM customer WHERE id IN (2, 7, 9);
SELECT customer_tags(3), tag_members('other') @> '{7}' AS still_there;
SELECT count(*) FROM customer_tag WHERE customer_id IN (2, 7, 9);
SELECT tag, ok FROM verify_tag_index() ORDER BY tag;

-- the prepared plans survive the extension being dropped and created again in the session
SET client_min_messages = warning;
DROP EXTENSION pg_wamarketing CASCADE;
CREATE EXTENSION pg_wamarketing;
SET client_min_messages = warning;
INSERT INTO customer (id, phone) VALUES (1, '85290000001'), (2, '85290000002');
SELECT create_tag('again', 'interest');
SELECT attach_tag('again', '{1,2}', '1 day'), attach_tag('again', '{2}', '2 days'), detach_tag('again', '{1}');
SELECT tag_members('again'), (SELECT bool_and(ok) FROM verify_tag_index()) AS ok;
