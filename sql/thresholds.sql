-- thresholds: the users' numbers, each just below, at and just above its edge
-- (price-sensitive customers at 70 % coupon orders, the delivery, read and
-- reply bands of the delivery report)
SET client_min_messages = warning;
DROP EXTENSION pg_wamarketing CASCADE;
CREATE EXTENSION pg_wamarketing;
RESET client_min_messages;
SET search_path = public, wam;
SET client_min_messages = warning;
\set VERBOSITY terse

INSERT INTO customer (phone) SELECT '8529400' || lpad(i::text, 4, '0') FROM generate_series(1, 6) i;

-- price-sensitive: at least 70 % of at least 2 orders with a coupon
-- (10 orders with 6, 7 and 8 coupons; one order with a coupon; 2 of 2; 1 of 2)
INSERT INTO customer_order (customer_id, ordered_at, amount, coupon_used)
SELECT v.c, now() - k * interval '1 day', 50, k <= v.n
FROM (VALUES (1, 6), (2, 7), (3, 8)) v(c, n), generate_series(1, 10) k;
INSERT INTO customer_order (customer_id, ordered_at, amount, coupon_used) VALUES
	(4, now() - interval '1 hour', 50, true),
	(5, now() - interval '2 days', 50, true), (5, now() - interval '1 hour', 50, true),
	(6, now() - interval '2 days', 50, true), (6, now() - interval '1 hour', 50, false);
SELECT count(*) > 0 AS refreshed FROM refresh_rfm();
SELECT customer_id, orders, coupon_share, price_sensitive FROM customer_rfm ORDER BY 1;
-- the share is a setting: at 80 % the customer at 70 % is no longer price-sensitive
SELECT configure_rfm('price_sensitive_coupon_share', '0.8');
SELECT customer_id, price_sensitive FROM customer_rfm WHERE customer_id IN (2, 3) ORDER BY 1;

-- delivery report bands: delivered share of attempts (poor under 95 %, below
-- normal under 98 %), read share of delivered (low under 60 %, below typical
-- under 70 %, typical up to 85 %), replies (good above 5 %); 1,000 messages per sender
CREATE TEMP TABLE band (sender text, delivered integer, read integer, replied integer);
INSERT INTO band VALUES
	('d949', 949, 0, 0), ('d950', 950, 0, 0), ('d979', 979, 0, 0), ('d980', 980, 0, 0),
	('r599', 1000, 599, 0), ('r600', 1000, 600, 0), ('r699', 1000, 699, 0), ('r700', 1000, 700, 0),
	('r850', 1000, 850, 0), ('r851', 1000, 851, 50), ('p051', 1000, 1000, 51);
SELECT count(create_sender(x.sender, (100000 + x.n)::text, 'EAAtoken', 'secret')) AS senders
FROM (SELECT b.sender, row_number() OVER (ORDER BY b.sender) AS n FROM band b) x;
INSERT INTO outbox (sender_id, customer_id, recipient, payload, status, wamid, sent_at, delivered_at, read_at,
					replies, failed_at, error_code)
SELECT s.sender_id, 1, '85294000001', '{"type":"text","text":{"body":"x"}}',
	   CASE WHEN g > b.delivered THEN 'failed' WHEN g <= b.read THEN 'read' ELSE 'delivered' END,
	   CASE WHEN g <= b.delivered THEN 'wamid.' || s.sender_id || '.' || g END,
	   CASE WHEN g <= b.delivered THEN now() END,
	   CASE WHEN g <= b.delivered THEN now() END,
	   CASE WHEN g <= b.read THEN now() END,
	   CASE WHEN g <= b.replied THEN 1 ELSE 0 END,
	   CASE WHEN g > b.delivered THEN now() END,
	   CASE WHEN g > b.delivered THEN 131026 END
FROM band b JOIN sender s ON s.name = b.sender, generate_series(1, 1000) g;
SELECT sender_name, delivered, read, replied, failed, delivery_rate, read_rate, reply_rate, delivery_health, read_health, reply_health
FROM delivery_report(now() - interval '1 hour', now() + interval '1 hour') ORDER BY sender_name;

-- referral report: first-month churn is flagged above 40 % (25 referred
-- customers, all qualified; 9, 10 and 11 of them inactive in their first 30 days)
INSERT INTO customer (id, phone) SELECT 100 + i, '8529410' || lpad(i::text, 4, '0') FROM generate_series(0, 25) i;
SELECT create_referral_program('churn', '{"min_order": 100, "cap": 30}') > 0 AS program;
SELECT count(record_referral(referral_code(100, 'churn'), g)) AS referred FROM generate_series(101, 125) g;
SELECT count(record_order(g, 150)) AS orders FROM generate_series(101, 125) g;
SELECT status, count(*) FROM referral GROUP BY 1;
INSERT INTO event (customer_id, kind, occurred_at) SELECT g, 'message_read', now() + interval '3 days' FROM generate_series(101, 116) g;
SELECT metric, value, note FROM referral_report('churn', now() - interval '1 day', now() + interval '31 days')
WHERE metric IN ('first-month churn', 'flagged');
DELETE FROM event WHERE customer_id = 116 AND kind = 'message_read';
SELECT metric, value, note FROM referral_report('churn', now() - interval '1 day', now() + interval '31 days')
WHERE metric IN ('first-month churn', 'flagged');
DELETE FROM event WHERE customer_id = 115 AND kind = 'message_read';
SELECT metric, value, note FROM referral_report('churn', now() - interval '1 day', now() + interval '31 days')
WHERE metric IN ('first-month churn', 'flagged');

-- overloaded tags: held by more than 40 % of customers (1,000 customers: 399, 400, 401)
INSERT INTO customer (id, phone) SELECT 1000 + i, '8529420' || lpad(i::text, 4, '0')
FROM generate_series(1, 1000 - (SELECT count(*) FROM customer)) i;
SELECT count(*) AS customers FROM customer;
SELECT create_tag('t399', 'interest') > 0 AND create_tag('t400', 'interest') > 0 AND create_tag('t401', 'interest') > 0 AS created;
SELECT attach_tag('t399', (SELECT segment_agg(id) FROM (SELECT id FROM customer ORDER BY id LIMIT 399) c)),
	   attach_tag('t400', (SELECT segment_agg(id) FROM (SELECT id FROM customer ORDER BY id LIMIT 400) c)),
	   attach_tag('t401', (SELECT segment_agg(id) FROM (SELECT id FROM customer ORDER BY id LIMIT 401) c));
SELECT tag, members, share_percent, overloaded FROM tag_health WHERE tag LIKE 't4%' OR tag = 't399' ORDER BY tag;
