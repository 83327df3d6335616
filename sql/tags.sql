-- customers, tags, memberships, the tag log, rules and roles
-- start from an empty data model, whatever ran before in this database
SET client_min_messages = warning;
DROP EXTENSION pg_wamarketing CASCADE;
CREATE EXTENSION pg_wamarketing;
RESET client_min_messages;
SET search_path = public, wam;
SET client_min_messages = warning;
-- terse errors: the messages are pinned, not the rows they quote (timestamps)
\set VERBOSITY terse

-- a small base: customers 1..3000 (ids chosen by the sequence) plus two high ids
INSERT INTO customer (phone, name)
SELECT (85290000000 + g)::text, 'customer ' || g FROM generate_series(1, 3000) g;
INSERT INTO customer (id, phone) VALUES (70000, '85261234567'), (4294967295, '85261234568');
SELECT count(*), min(id), max(id) FROM customer;
SELECT segment_cardinality(all_customers()), segment_max(all_customers());

-- customer constraints
INSERT INTO customer (id, phone) VALUES (4294967296, '85261234569');
INSERT INTO customer (id, phone) VALUES (-1, '85261234569');
INSERT INTO customer (phone) VALUES ('+85261234569');
INSERT INTO customer (phone) VALUES ('85290000001');
UPDATE customer SET id = 5 WHERE id = 70000;
UPDATE customer SET id = id, name = name WHERE id = 70000;   -- same id: allowed
INSERT INTO customer (phone, consent_at) VALUES ('85261234570', now());

-- tag names are unique after normalisation (R-T3)
SELECT normalize_tag_name('Order completed'), normalize_tag_name('order-completed'),
	normalize_tag_name('ＯＲＤＥＲ　Completed！'), normalize_tag_name('주문 완료'),
	normalize_tag_name('已購買・客戶'), normalize_tag_name('VIP 💎'), normalize_tag_name(NULL);
SELECT create_tag('Order completed', 'purchase stage');
SELECT create_tag('order-completed', 'purchase stage');
SELECT create_tag('ORDER_COMPLETED', 'interest');
SELECT create_tag('VIP 💎', 'spending power', '#FFAA00', '90 days');
SELECT create_tag('관심-뷰티', 'interest');
SELECT create_tag('已購買', 'purchase stage', NULL, NULL, 'bought at least once');
SELECT create_tag('cart abandoned', 'purchase stage', NULL, '30 days');
SELECT create_tag('silent customer', 'engagement');
SELECT create_tag('high-potential follow-up', 'engagement');
-- bad tag definitions
SELECT create_tag('!!!', 'interest');
SELECT create_tag(NULL, 'interest');
SELECT create_tag('x', NULL);
SELECT create_tag('gold', 'no such dimension');
SELECT create_tag('gold', 'interest', 'red');
SELECT create_tag('gold', 'interest', NULL, '-1 day');
SELECT create_tag(repeat('x', 101), 'interest');
-- admin-defined dimensions (R-T13) and colours per dimension (R-T4)
SELECT create_tag_dimension('customer group', '#123ABC', 'demographic groups');
SELECT create_tag('young women 25-34', 'customer group');
SELECT tag_id, name, normalized_name, dimension, colour, default_ttl, status FROM tag ORDER BY tag_id;
SELECT name, colour, builtin FROM tag_dimension ORDER BY name;

-- attach and detach return how many changed; members are a segment
SELECT attach_tag('order completed', segment_range(1, 2001));
SELECT attach_tag('ORDER-COMPLETED', segment_range(1001, 3001));
SELECT segment_cardinality(tag_members('Order completed'));
SELECT detach_tag('order completed', segment_range(0, 101));
SELECT segment_cardinality(tag_members('order completed'));
SELECT attach_tag('vip💎', '{1,2,3,70000,4294967295}');
SELECT tag_members('VIP 💎');
SELECT attach_tag('vip💎', '{1,2}');
SELECT detach_tag('vip💎', '{}');
SELECT attach_tag('vip💎', '{}');
SELECT customer_tags(1), customer_tags(150), customer_tags(4294967295), customer_tags(3000);
-- expiry comes from the tag's default or the call
SELECT count(*) FILTER (WHERE expires_at IS NULL) AS no_expiry,
	count(*) FILTER (WHERE expires_at BETWEEN now() + interval '89 days' AND now() + interval '91 days') AS ninety_days
FROM customer_tag WHERE tag_id = tag_id('vip 💎');
SELECT attach_tag('cart abandoned', '{10,11}', '1 hour', 'manual');
SELECT source, expires_at - attached_at AS ttl FROM customer_tag WHERE tag_id = tag_id('cart abandoned') ORDER BY customer_id;
-- bad attach / detach
SELECT attach_tag('no such tag', '{1}');
SELECT attach_tag('vip💎', '{1, 999999}');
SELECT attach_tag('vip💎', NULL);
SELECT attach_tag(NULL, '{1}');
SELECT attach_tag('vip💎', '{1}', '0 seconds');
SELECT attach_tag('vip💎', '{1}', NULL, 'fax');
SELECT detach_tag('no such tag', '{1}');
SELECT customer_tags(999999);
SELECT customer_tags(NULL);

-- R-S3: one statement adds and removes tags for a whole segment
SELECT attach_tag('silent customer', segment_range(1, 501));
SELECT * FROM retag_customers(segment_range(201, 401), '{high-potential follow-up}', '{silent customer}');
SELECT segment_cardinality(tag_members('silent customer')), segment_cardinality(tag_members('high-potential follow-up'));
SELECT * FROM retag_customers('{1}', '{silent customer}', '{Silent-Customer}');
SELECT * FROM retag_customers('{1}', '{no such tag}', '{silent customer}');
SELECT segment_cardinality(tag_members('silent customer'));

-- the bitmaps agree with the membership rows
SELECT * FROM verify_tag_index();
-- a tag's segment, assembled from its blocks, is byte for byte the union of them
SELECT t.name, tag_members(t.name)::bytea = (SELECT coalesce(segment_union_agg(c.members), '{}') FROM tag_chunk c
	WHERE c.tag_id = t.tag_id)::bytea AS same_bytes
FROM tag t ORDER BY t.tag_id;
SELECT wam_internal.tag_blocks_segment(tag_id('order completed'), '{0}') = segment_range(101, 3001) AS first_block_only,
	wam_internal.tag_blocks_segment(tag_id('vip 💎'), '{65535}') AS last_block, wam_internal.tag_blocks_segment(9999) AS no_such_tag;

-- retiring, reactivating, renaming and merging are logged (R-T12)
SELECT retire_tag('관심뷰티', 'replaced by finer interests');
SELECT retire_tag('관심뷰티', 'again');
SELECT retire_tag('silent customer', NULL);
SELECT attach_tag('관심-뷰티', '{1}');
SELECT reactivate_tag('관심-뷰티', 'needed after all');
SELECT attach_tag('관심-뷰티', '{1,2}');
SELECT rename_tag('已購買', '已购买 (purchased)', 'simplified script');
SELECT rename_tag('已购买 (purchased)', 'vip💎', 'clash');
SELECT rename_tag('no such tag', 'x');
SELECT attach_tag('已购买 purchased', segment_range(1, 11));
SELECT merge_tags('已购买 purchased', 'order completed', 'same meaning');
SELECT merge_tags('order completed', 'order completed', 'self');
SELECT attach_tag('已购买 purchased', '{1}');
SELECT name, status, merged_into IS NOT NULL AS merged FROM tag WHERE name LIKE '已%';
SELECT action, tag_name, detail, reason, actor = session_user AS by_me FROM tag_log ORDER BY log_id;

-- expiry (R-T7)
UPDATE customer_tag SET expires_at = now() - interval '1 second' WHERE customer_id = 10 AND tag_id = tag_id('cart abandoned');
SELECT expire_tags();
SELECT expire_tags();
SELECT tag_members('cart abandoned');

-- deleting customers removes their memberships and bitmap bits
DELETE FROM customer WHERE id IN (1, 2, 70000);
SELECT customer_tags(3), segment_cardinality(all_customers()), tag_members('vip 💎');
SELECT bool_and(ok) FROM verify_tag_index();
-- memberships cannot be moved by UPDATE
UPDATE customer_tag SET tag_id = tag_id + 1 WHERE customer_id = 3;

-- health report (R-T2, R-T9): 2,999 customers, order completed is overloaded
SELECT tag, dimension, colour, status, members, share_percent, silent, overloaded
FROM tag_health ORDER BY tag;
SELECT active_tags, retired_tags, silent_tags, overloaded_tags, band FROM tag_health_summary;
UPDATE tag SET created_at = now() - interval '40 days', last_attached_at = now() - interval '31 days'
WHERE name = 'young women 25-34';
SELECT tag, silent FROM tag_health WHERE silent;

-- behaviour events and automation rules
SELECT install_example_tag_rules() ORDER BY 1;
SELECT name, on_event, add_tags, remove_tags, condition FROM tag_rule ORDER BY rule_id;
-- R-T8: an order event takes effect in the same transaction
SELECT attach_tag('cart abandoned', '{20,21}');
INSERT INTO event (customer_id, kind, details) VALUES (20, 'order', '{"amount": 120}');
SELECT customer_tags(20), customer_tags(21);
INSERT INTO event (customer_id, kind) VALUES (999999, 'order');
INSERT INTO event (customer_id, kind) VALUES (20, 'Bad Kind');
-- R-T14: three or more orders make a high-value customer
INSERT INTO event (customer_id, kind) SELECT c, 'order' FROM generate_series(30, 32) c, generate_series(1, 3);
INSERT INTO event (customer_id, kind) SELECT 33, 'order' FROM generate_series(1, 2);
-- R-T11: a VIP without interaction for 180 days is a sleeping VIP
SELECT attach_tag('VIP', '{3,4}');
UPDATE customer SET created_at = now() - interval '200 days' WHERE id = 3;
-- R-T10: first purchase 10 days ago -> new customer; 100 days ago, one order -> about to churn
UPDATE customer SET first_order_at = now() - interval '10 days' WHERE id = 40;
UPDATE customer SET first_order_at = now() - interval '100 days', created_at = now() - interval '100 days' WHERE id = 41;
SELECT attach_tag('new customer', '{41}');
SELECT rule, customers, added, removed FROM run_tag_rules() WHERE customers > 0 ORDER BY rule;
SELECT id, customer_tags(id) FROM customer WHERE id IN (3, 4, 20, 30, 33, 40, 41) ORDER BY id;
-- a second run changes nothing
SELECT sum(added) AS added, sum(removed) AS removed FROM run_tag_rules();
SELECT rule, customers FROM run_tag_rules('three or more orders');
-- R-T8 at its boundary (one transaction, so now() is the same): created and never read
-- 60 days - 1 second, exactly 60 days, 60 days + 1 second ago; read 60 days -/+ 1 second ago
BEGIN;
UPDATE customer SET created_at = now() - interval '60 days' + interval '1 second' WHERE id = 50;
UPDATE customer SET created_at = now() - interval '60 days' WHERE id = 51;
UPDATE customer SET created_at = now() - interval '60 days 1 second' WHERE id = 52;
UPDATE customer SET created_at = now() - interval '300 days', last_read_at = now() - interval '60 days' + interval '1 second' WHERE id = 53;
UPDATE customer SET created_at = now() - interval '300 days', last_read_at = now() - interval '60 days 1 second' WHERE id = 54;
SELECT customer_id FROM wam.segment_members(wam.rule_audience((SELECT r FROM tag_rule r WHERE name = 'no read for 60 days')))
	AS m(customer_id) WHERE customer_id BETWEEN 50 AND 54;
COMMIT;
-- bad rules: conditions are segment expressions, never SQL
SELECT create_tag_rule('sql', '{vip 💎}', '{}', 'SELECT customer_id FROM wam.event');
SELECT create_tag_rule('unknown tag in condition', '{vip 💎}', '{}', '"no such tag" AND VIP');
SELECT create_tag_rule('unknown segment', '{vip 💎}', '{}', '@nosuchsegment');
SELECT create_tag_rule('unknown tag', '{no such tag}', '{}', 'VIP');
SELECT create_tag_rule('no effect', '{}', '{}', 'VIP');
SELECT create_tag_rule('no trigger', '{vip 💎}', '{}', NULL, NULL);
-- a condition written into the table directly is checked when the rule runs
INSERT INTO tag_rule (name, add_tags, condition) VALUES ('written directly', '{vip 💎}', 'VIP AND (');
SELECT * FROM run_tag_rules('written directly');
DELETE FROM tag_rule WHERE name = 'written directly';
SELECT bool_and(ok) FROM verify_tag_index();

-- roles (R-T5): readers read, operators tag, only admins change the dictionary
CREATE TABLE public.tag_audit_probe (x int);
SET ROLE wam_reader;
SELECT count(*) > 0 AS reader_reads FROM tag_health;
SELECT segment_cardinality(tag_members('vip 💎')) AS reader_segment;
SELECT attach_tag('vip 💎', '{5}');
SELECT create_tag('reader tag', 'interest');
INSERT INTO customer_tag (customer_id, tag_id) VALUES (5, 1);
RESET ROLE;
SET ROLE wam_operator;
SELECT attach_tag('vip 💎', '{5}') AS operator_attach;
SELECT detach_tag('vip 💎', '{5}') AS operator_detach;
SELECT create_tag('operator tag', 'interest');
SELECT retire_tag('vip 💎', 'no');
SELECT merge_tags('vip 💎', 'order completed', 'no');
INSERT INTO customer_tag (customer_id, tag_id) VALUES (5, 1);
DELETE FROM tag_chunk;
UPDATE tag SET name = 'hacked';
SELECT wam_internal.membership_insert(1, '{5}', NULL, 'api');
SELECT wam_internal.membership_delete(1, '{5}');
INSERT INTO event (customer_id, kind) VALUES (5, 'link_click');
-- operators run the rules (which record their counts) but cannot change them
RESET ROLE;
UPDATE tag_rule SET last_run_at = NULL WHERE name = 'three or more orders';
SET ROLE wam_operator;
SELECT rule, customers, added, removed FROM run_tag_rules('three or more orders');
UPDATE tag_rule SET enabled = false WHERE name = 'three or more orders';
RESET ROLE;
SELECT last_run_at IS NOT NULL AS operator_run_recorded, enabled FROM tag_rule WHERE name = 'three or more orders';
SET ROLE wam_reader;
SELECT * FROM run_tag_rules('three or more orders');
RESET ROLE;
SET ROLE wam_admin;
SELECT create_tag('admin tag', 'interest') > 0 AS admin_creates;
SELECT retire_tag('admin tag', 'test');
INSERT INTO tag (name, normalized_name, dimension) VALUES ('direct', 'direct', 'interest');
RESET ROLE;
SELECT action, tag_name FROM tag_log WHERE tag_name = 'admin tag' ORDER BY log_id;
DROP TABLE public.tag_audit_probe;

-- every security definer function pins its search_path
SELECT p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname IN ('wam', 'wam_internal') AND p.prosecdef
	AND NOT EXISTS (SELECT FROM unnest(p.proconfig) c WHERE c LIKE 'search_path=pg_catalog, wam, pg_temp');
-- nothing but the segment functions is executable by PUBLIC among the writers
SELECT p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname IN ('wam', 'wam_internal') AND p.prosecdef AND has_function_privilege('public', p.oid, 'EXECUTE');
