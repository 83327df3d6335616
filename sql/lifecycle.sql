-- lifecycle: order events however orders are written, read events once per
-- message, tag expiry anchors, the example rules firing, import consent values,
-- referral retention
SET client_min_messages = warning;
DROP EXTENSION pg_wamarketing CASCADE;
CREATE EXTENSION pg_wamarketing;
RESET client_min_messages;
SET search_path = public, wam;
SET client_min_messages = warning;
\set VERBOSITY terse

INSERT INTO customer (phone) SELECT '8529100' || lpad(i::text, 4, '0') FROM generate_series(1, 10) i;

-- every order row makes exactly one order event: record_order, INSERT, INSERT ... SELECT, COPY
SELECT record_order(1, 100) IS NOT NULL AS recorded;
INSERT INTO customer_order (customer_id, ordered_at, amount) VALUES (2, now() - interval '1 day', 50);
INSERT INTO customer_order (customer_id, ordered_at, amount, coupon_used)
SELECT 3, now() - i * interval '1 hour', 10 * i, i % 2 = 0 FROM generate_series(1, 4) i;
COPY customer_order (customer_id, ordered_at, amount) FROM stdin;
4	2026-01-01 10:00:00+00	20
4	2026-01-02 10:00:00+00	30
\.
SELECT o.customer_id, count(*) AS orders,
	   (SELECT count(*) FROM event e WHERE e.customer_id = o.customer_id AND e.kind = 'order') AS order_events
FROM customer_order o GROUP BY 1 ORDER BY 1;
-- the event carries the order's id, amount and coupon flag
SELECT bool_and((e.details->>'order_id')::bigint = o.order_id AND (e.details->>'amount')::numeric = o.amount
				AND (e.details->>'coupon_used')::boolean = o.coupon_used AND e.occurred_at = o.ordered_at) AS details_match
FROM customer_order o JOIN event e ON e.kind = 'order' AND (e.details->>'order_id')::bigint = o.order_id;
SELECT customer_id, orders FROM customer_stats ORDER BY 1;

-- the example rules see bulk orders: order placed, three or more orders (2 / 3)
SELECT count(*) > 0 AS installed FROM install_example_tag_rules();
SELECT attach_tag('cart abandoned', segment('{5,6}'::bigint[]));
INSERT INTO customer_order (customer_id, ordered_at, amount)
SELECT c, now() - i * interval '1 hour', 10 FROM (VALUES (5, 2), (6, 3)) v(c, n), generate_series(1, v.n) i;
SELECT c, customer_tags(c) FROM generate_series(5, 6) c;

-- a tag anchored to the first order: "new customer" lasts 60 days from the
-- first order, and re-attaching does not push it out
SELECT default_ttl, expiry_anchor FROM tag WHERE name = 'new customer';
SELECT ct.customer_id, ct.expires_at = c.first_order_at + interval '60 days' AS sixty_days_after_first_order
FROM customer_tag ct JOIN customer c ON c.id = ct.customer_id
WHERE ct.tag_id = tag_id('new customer') ORDER BY 1;
CREATE TEMP TABLE before AS SELECT customer_id, expires_at FROM customer_tag WHERE tag_id = tag_id('new customer');
SELECT attach_tag('new customer', segment('{5,6}'::bigint[]));
SELECT count(*) AS unchanged FROM customer_tag ct JOIN before b USING (customer_id)
WHERE ct.tag_id = tag_id('new customer') AND ct.expires_at = b.expires_at;
-- first order 59 / 60 / 61 days ago: expired just after, at, not before the 60th day
INSERT INTO customer_order (customer_id, ordered_at, amount) VALUES
	(7, now() - interval '59 days', 10), (8, now() - interval '60 days', 10), (9, now() - interval '61 days', 10);
SELECT detach_tag('new customer', segment('{7,8,9}'::bigint[]));
SELECT attach_tag('new customer', segment('{7,8,9}'::bigint[]));
SELECT expire_tags() >= 2 AS expired;
SELECT c, 'new customer' = ANY (customer_tags(c)) AS still_new FROM generate_series(7, 9) c;

-- a message read becomes one message_read event, however often the read arrives
SELECT create_sender('main', '106540352242922', 'EAAtoken', 'secret', 'https://localhost:9') AS sid \gset
INSERT INTO outbox (sender_id, customer_id, recipient, payload, campaign, status, wamid, sent_at)
VALUES (:sid, 10, '85291000010', '{}', 'spring', 'sent', 'wamid.R1', now() - interval '1 hour');
UPDATE outbox SET status = 'delivered', delivered_at = now() WHERE wamid = 'wamid.R1';
UPDATE outbox SET status = 'read', read_at = now() - interval '5 minutes' WHERE wamid = 'wamid.R1';
UPDATE outbox SET read_at = now() WHERE wamid = 'wamid.R1';
SELECT customer_id, kind, details - 'message_id' - 'sender_id' AS details FROM event WHERE kind = 'message_read';
-- so the weekly-reader rule sees it
SELECT segment_cardinality(audience('event(message_read) within 7d')) AS readers_this_week;

-- import consent: each accepted value, blank, garbage, dates
SELECT failed FROM import_csv(
$csv$phone,tags,consent
+852 9200 0001,,yes
+852 9200 0002,,YES
+852 9200 0003,, true
+852 9200 0004,,1
+852 9200 0005,,y
+852 9200 0006,,no
+852 9200 0007,,False
+852 9200 0008,,0
+852 9200 0009,,N
+852 9200 0010,,
+852 9200 0011,,maybe
+852 9200 0012,,2024-02-29
+852 9200 0013,,2023-02-29
+852 9200 0014,,2999-01-01
$csv$, 'HK');
SELECT import_id, rows_read, created, failed, opted_out FROM import ORDER BY import_id;
SELECT phone, consent_at IS NOT NULL AS consented, consent_at = '2024-02-29'::date::timestamptz AS on_date
FROM customer WHERE phone LIKE '8529200%' ORDER BY phone;
SELECT line_no, reason FROM import_error ORDER BY line_no;
-- an explicit "no" for a consenting contact records an opt-out with the import as reason
SELECT failed FROM import_csv(E'phone,consent\n+852 9200 0001,no\n+852 9200 0006,no\n', 'HK');
SELECT import_id, rows_read, created, failed, opted_out FROM import ORDER BY import_id;
SELECT phone, consent_at IS NOT NULL AS consented, opted_out_at IS NOT NULL AS opted_out, opt_out_reason
FROM customer WHERE phone IN ('85292000001', '85292000006') ORDER BY phone;

-- the example rules that act on reads, each on customers built for it
INSERT INTO customer (id, phone, created_at) SELECT i, '8529500' || lpad(i::text, 4, '0'), now() - interval '200 days'
FROM generate_series(201, 206) i;
SELECT attach_tag('high activity', '{201,202}');
-- 201 last read 15 days ago, 202 13 days ago: only 201 needs attention
UPDATE customer SET last_read_at = now() - interval '15 days' WHERE id = 201;
UPDATE customer SET last_read_at = now() - interval '13 days' WHERE id = 202;
-- 203 and 204 bought first 45 days ago, 203 read a message 2 days ago; 205 bought first
-- 20 days ago (still new); 206 100 days ago
UPDATE customer SET first_order_at = now() - interval '45 days' WHERE id IN (203, 204);
UPDATE customer SET first_order_at = now() - interval '20 days' WHERE id = 205;
UPDATE customer SET first_order_at = now() - interval '100 days' WHERE id = 206;
-- (a read sets both, as a webhook does: the read time and the event)
UPDATE customer SET last_read_at = now() - interval '2 days' WHERE id = 203;
INSERT INTO event (customer_id, kind, occurred_at) VALUES (203, 'message_read', now() - interval '2 days');
SELECT rule, added, removed FROM run_tag_rules()
WHERE rule IN ('no read for 14 days', 'growth-high (days 31-90, reads weekly)', 'growth-low (days 31-90, no read this week)')
ORDER BY rule;
SELECT id, customer_tags(id) FROM customer WHERE id BETWEEN 201 AND 206 ORDER BY id;

-- rules give their tags a validity (default 90 days) unless the tag has its own
-- time to live; a rule with none gives static tags; re-running a rule renews
-- the expiry, but leaves one within 1 % of the validity (at most a day) alone
SELECT create_tag('dyn', 'engagement') > 0 AND create_tag('static age band', 'interest') > 0
	   AND create_tag('weekly', 'engagement', NULL, interval '7 days') > 0 AS created;
SELECT create_tag_rule('dyn rule', '{dyn,weekly}', '{}', 'orders >= 1') > 0 AS dyn_rule;
SELECT create_tag_rule('static rule', '{static age band}', '{}', 'orders >= 1') > 0 AS static_rule;
UPDATE tag_rule SET ttl = NULL WHERE name = 'static rule';
SELECT name, ttl FROM tag_rule WHERE name IN ('dyn rule', 'static rule') ORDER BY name;
BEGIN;
SELECT rule, added FROM run_tag_rules() WHERE rule IN ('dyn rule', 'static rule') ORDER BY rule;
SELECT t.name, count(*) AS holders, bool_and(ct.expires_at = now() + interval '90 days') AS in_90_days,
	   bool_and(ct.expires_at = now() + interval '7 days') AS in_7_days, bool_and(ct.expires_at IS NULL) AS never
FROM customer_tag ct JOIN tag t USING (tag_id) WHERE t.name IN ('dyn', 'static age band', 'weekly')
GROUP BY 1 ORDER BY 1;
COMMIT;
-- 0.89 days short of the full validity: left alone; 0.91 days short: renewed
UPDATE customer_tag SET expires_at = now() + interval '90 days' - interval '0.89 days' WHERE tag_id = tag_id('dyn') AND customer_id = 1;
UPDATE customer_tag SET expires_at = now() + interval '90 days' - interval '0.91 days' WHERE tag_id = tag_id('dyn') AND customer_id = 2;
BEGIN;
SELECT rule, added FROM run_tag_rules('dyn rule');
SELECT customer_id, expires_at = now() + interval '90 days' AS renewed
FROM customer_tag WHERE tag_id = tag_id('dyn') AND customer_id IN (1, 2) ORDER BY 1;
COMMIT;
-- a customer the rule no longer selects keeps the tag until it expires
DELETE FROM customer_order WHERE customer_id = 2;
UPDATE customer_tag SET expires_at = now() - interval '1 second' WHERE tag_id = tag_id('dyn') AND customer_id = 2;
SELECT expire_tags() >= 1 AS expired;
SELECT segment_has(tag_members('dyn'), 2) AS customer_2_holds_dyn, segment_has(tag_members('dyn'), 1) AS customer_1_holds_dyn;
SELECT ttl FROM tag_rule WHERE name = 'dyn rule';
UPDATE tag_rule SET ttl = interval '0' WHERE name = 'dyn rule';
