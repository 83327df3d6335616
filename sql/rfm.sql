-- orders, purchase statistics, RFM scores, tiers, flags, tier tags and roles
-- (R-R1 ... R-R4); start from an empty data model, whatever ran before
SET client_min_messages = warning;
DROP EXTENSION pg_wamarketing CASCADE;
CREATE EXTENSION pg_wamarketing;
RESET client_min_messages;
SET search_path = public, wam;
SET client_min_messages = warning;
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';
SET intervalstyle = 'postgres';
-- messages with detail and hint, without the PL/pgSQL line numbers
\set VERBOSITY default
\set SHOW_CONTEXT never

INSERT INTO customer (id, phone) SELECT g, (85260000000 + g)::text FROM generate_series(101, 130) g;

-- nothing to score yet
SELECT * FROM refresh_rfm('2024-12-31');
SELECT * FROM rfm_score(101);
SELECT * FROM value_report();

-- bad orders: clear errors, nothing recorded
SELECT record_order(NULL, 10);
SELECT record_order(101, NULL);
SELECT record_order(101, -0.01);
SELECT record_order(101, 'NaN');
SELECT record_order(101, 'Infinity');
SELECT record_order(101, 10, NULL);
SELECT record_order(101, 10, '2024-01-01', NULL);
SELECT record_order(101, 10, '2999-01-01');
SELECT record_order(101, 10, '-infinity');
SELECT record_order(999, 10, '2024-01-01');
SELECT record_order(101, 10, '2024-01-01', false, '[1, 2]');
SELECT record_order(101, 10, '2024-01-01', false, '{"units": 0}');
SELECT record_order(101, 10, '2024-01-01', false, '{"units": 1.5}');
SELECT record_order(101, 10, '2024-01-01', false, '{"units": "2"}');
SELECT record_order(101, 10, '2024-01-01', false, '{"products": [{"sku": "a", "quantity": -1}]}');
SELECT record_order(101, 10, '2024-01-01', false, '{"products": [{"sku": "a", "quantity": "two"}]}');
SELECT record_order(101, 10, '2024-01-01', false, '{"products": [{"quantity": 2}, "b", {"quantity": 1.5}, {"quantity": "x"}]}');
SELECT record_order(101, 10, '2024-01-01', false, '{"products": [{"quantity": 1000000000}]}');
SELECT record_order(101, 10, '2024-01-01', false, '{"currency": "dollars"}');
SELECT count(*) AS orders, (SELECT count(*) FROM customer_stats) AS stats FROM customer_order;

-- the first order naming a currency fixes the program currency; another is refused
SELECT record_order(101, 120, '2024-03-01 10:00+00', true, '{"currency": "hkd", "units": 2}') AS order_id;
SELECT value AS currency FROM rfm_settings WHERE setting = 'currency';
SELECT record_order(101, 10, '2024-03-02', false, '{"currency": "USD"}');
SELECT configure_rfm('currency', 'USD');
-- no currency: the program's
SELECT record_order(101, 30, '2024-03-01 18:00+00', false, '{"products": [{"sku": "a", "quantity": 2}, {"sku": "b"}]}') AS order_id;
SELECT order_id, customer_id, ordered_at, amount, currency, coupon_used, units FROM customer_order ORDER BY order_id;
-- statistics, customer first/last order and the order event (R-T8 rules react to it)
SELECT customer_id, orders, order_days, first_order_at, last_order_at, first_day, last_day, first_day_amount,
	   total_amount, coupon_orders, units FROM customer_stats;
SELECT first_order_at, last_order_at FROM customer WHERE id = 101;
SELECT customer_id, kind, occurred_at, details FROM event ORDER BY event_id;

-- orders out of time order: a day between the first and the last, and a new first day
SELECT record_order(101, 50, '2024-03-20') > 0 AS ok;
SELECT record_order(101, 5, '2024-03-10') > 0 AS ok;
SELECT record_order(101, 6, '2024-03-10 23:59:59+00') > 0 AS ok;
SELECT record_order(101, 7, '2024-02-20') > 0 AS ok;
SELECT orders, order_days, first_day, last_day, first_day_amount, total_amount, coupon_orders, units
FROM customer_stats WHERE customer_id = 101;
SELECT * FROM verify_order_stats();

-- a bulk INSERT (several customers in one statement) keeps the statistics exact too
INSERT INTO customer_order (customer_id, ordered_at, amount, coupon_used, units)
SELECT 100 + k, timestamptz '2024-01-01' + (k * 10 + j * 3) * interval '1 day', 10 * ((k * 3) % 7 + 1) + j,
	   (k + j) % 3 = 0, 1 + j % 2
FROM generate_series(2, 20) k, generate_series(0, (k * 7) % 5) j;
SELECT * FROM verify_order_stats();
-- corrections and deletions recompute the customers concerned
UPDATE customer_order SET amount = amount + 1 WHERE customer_id = 102;
DELETE FROM customer_order WHERE customer_id = 103 AND ordered_at = (SELECT max(ordered_at) FROM customer_order WHERE customer_id = 103);
SELECT * FROM verify_order_stats();
SELECT customer_id, orders, order_days, first_day, last_day, total_amount FROM customer_stats
WHERE customer_id IN (102, 103) ORDER BY 1;
-- changing the day time zone recomputes all statistics
SELECT configure_rfm('day_time_zone', 'Asia/Hong_Kong');
SELECT orders, order_days, first_day, last_day FROM customer_stats WHERE customer_id = 101;
SELECT configure_rfm('day_time_zone', 'UTC');
SELECT orders, order_days, first_day, last_day FROM customer_stats WHERE customer_id = 101;
SELECT configure_rfm('day_time_zone', 'Mars/Olympus');
SELECT * FROM verify_order_stats();

-- scores before the first refresh
SELECT * FROM rfm_score(101);
SELECT count(*) AS customers, count(r) AS scored FROM customer_rfm;

-- the refresh: mid-rank quintiles; counts per segment of the segment map
SELECT * FROM refresh_rfm('2024-12-31');
SELECT as_of, source, customers, r_cuts, f_cuts, m_cuts, orders, revenue, unit_price, round(repeat_orders_per_year::numeric, 4) AS repeat_orders_per_year
FROM rfm_cut;
SELECT customer_id, orders, total_amount, last_order_at::date AS last_day, r, f, m, segment
FROM customer_rfm ORDER BY customer_id;
-- rfm_score agrees with the view; no orders: Prospects; unknown and NULL customers
SELECT * FROM rfm_score(110);
SELECT * FROM rfm_score(125);
SELECT * FROM rfm_score(999);
SELECT * FROM rfm_score(NULL);

-- a new order re-scores the customer at once against the stored cut points
SELECT * FROM rfm_score(102);
SELECT record_order(102, 200, '2024-12-01') > 0 AS ok;
SELECT * FROM rfm_score(102);
-- a first order makes a prospect a customer with scores
SELECT record_order(125, 15, '2024-12-30') > 0 AS ok;
SELECT * FROM rfm_score(125);

-- the segment map: segment of each R x FM cell, FM = (F + M) / 2 (here with F = M)
SELECT r, rfm_tier(r, 1, 1) AS fm_1, rfm_tier(r, 2, 2) AS fm_2, rfm_tier(r, 3, 3) AS fm_3, rfm_tier(r, 4, 4) AS fm_4,
	   rfm_tier(r, 5, 5) AS fm_5, rfm_tier(r, 1, 2) AS fm_1_5, rfm_tier(r, 2, 3) AS fm_2_5, rfm_tier(r, 3, 4) AS fm_3_5
FROM generate_series(5, 1, -1) r;
-- every segment is reachable; cells per segment
SELECT t AS segment, count(*) AS cells FROM rfm_scheme, unnest(tier_map) t WHERE name = 'segment map' GROUP BY t ORDER BY 2 DESC, 1;
SELECT rfm_tier(0, 1, 1), rfm_tier(1, 6, 1), rfm_tier(NULL, 1, 1), rfm_tier(1, 1, 1, 'no such scheme');
-- the value-tier scheme (6 tiers, R-R1) groups the segments
SELECT tier, segments FROM rfm_tier_rule WHERE scheme = 'value tiers' ORDER BY position;

-- a custom 5-7 tier scheme (R-R1)
SELECT * FROM define_rfm_scheme('push tiers', '[
	{"tier": "VIP", "r": [4, 5], "f": [4, 5], "m": [4, 5]},
	{"tier": "Win back", "segments": ["At risk", "Can''t lose them"]},
	{"tier": "Frequent small", "f": [4, 5], "m": [1, 2]},
	{"tier": "Big spender", "m": 5},
	{"tier": "New", "r": 5, "f": 1},
	{"tier": "Regular"}]', 'tiers for push campaigns');
SELECT * FROM define_rfm_scheme('push tiers', '[{"tier": "A", "r": [4, 5]}, {"tier": "B"}]');
SELECT * FROM define_rfm_scheme('push tiers', '[{"tier": "A", "r": [4, 5]}, {"tier": "B", "r": 3}, {"tier": "C", "r": 2}, {"tier": "D", "r": 1}, {"tier": "E", "r": 1, "f": 5}, {"tier": "F"}]');
SELECT * FROM define_rfm_scheme('push tiers', '[{"tier": "A", "r": 5}, {"tier": "B", "r": 4}, {"tier": "C", "r": 3}, {"tier": "D", "r": 2}, {"tier": "E", "r": 1, "f": [1, 4]}]');
SELECT * FROM define_rfm_scheme('push tiers', '[{"tier": "A", "r": [5, 4]}]');
SELECT * FROM define_rfm_scheme('push tiers', '[{"tier": "A", "r": 6}]');
SELECT * FROM define_rfm_scheme('push tiers', '[{"tier": "A", "f": 2.5}]');
SELECT * FROM define_rfm_scheme('push tiers', '[{"tier": "A", "fm": [1.5, 2.5], "x": 1}]');
SELECT * FROM define_rfm_scheme('push tiers', '[{"tier": "A", "segments": ["Gold"]}]');
SELECT * FROM define_rfm_scheme('push tiers', '[{"tier": "Prospects"}]');
SELECT * FROM define_rfm_scheme('push tiers', '[{"r": 1}]');
SELECT * FROM define_rfm_scheme('push tiers', '{"tier": "A"}');
SELECT * FROM define_rfm_scheme('segment map', '[{"tier": "A"}]');
SELECT * FROM define_rfm_scheme(NULL, '[{"tier": "A"}]');
-- the failed redefinitions changed nothing
SELECT tiers FROM rfm_scheme WHERE name = 'push tiers';
SELECT configure_rfm('tier_scheme', 'push tiers');
SELECT * FROM refresh_rfm('2024-12-31');
SELECT * FROM rfm_score(110);
SELECT configure_rfm('tier_scheme', 'no such scheme');
SELECT configure_rfm('tier_scheme', 'value tiers');
SELECT * FROM refresh_rfm('2024-12-31');

-- R-R4: revenue share by tier and of the top 20%
SELECT * FROM value_report();

-- scoring as of a past date uses the orders up to then
SELECT * FROM refresh_rfm('2024-03-15');
SELECT as_of, source, customers, r_cuts, f_cuts, m_cuts FROM rfm_cut;
SELECT * FROM refresh_rfm('2024-01-01');
SELECT * FROM refresh_rfm(NULL);
SELECT * FROM refresh_rfm('2999-01-01');
SELECT * FROM refresh_rfm('infinity');
SELECT count(*) FROM refresh_rfm();

-- settings
SELECT configure_rfm('no_such_setting', '1');
SELECT configure_rfm('id', 'false');
SELECT configure_rfm('cost_cap_share', '1.5');
SELECT configure_rfm('cost_cap_share', 'lots');
SELECT configure_rfm('future_tolerance', 'soon');
SELECT configure_rfm('mirror_tags', 'maybe');
SELECT configure_rfm('clv_min_customers', '99999999999');
\set VERBOSITY sqlstate
SELECT configure_rfm('cost_cap_share', 'lots');
SELECT configure_rfm('clv_min_customers', '99999999999');
\set VERBOSITY default
SELECT configure_rfm('clv_margin', NULL);
SELECT configure_rfm('push_cost', NULL) IS NULL AS push_cost_unset;
SELECT setting, value FROM rfm_settings WHERE setting IN ('tier_scheme', 'currency', 'day_time_zone', 'cost_cap_share');

-- R-R2 / R-R3 flags: orders in the last 30 days, coupons, unit prices against the catalogue average
SELECT record_order(126, 100, now() - interval '3 days', true) > 0 AS ok;
SELECT record_order(126, 80, now() - interval '2 days', true) > 0 AS ok;
SELECT record_order(126, 90, now() - interval '1 day', false) > 0 AS ok;
SELECT record_order(127, 900, now() - interval '40 days', false, '{"units": 1}') > 0 AS ok;
SELECT record_order(127, 1200, now() - interval '10 days', false, '{"units": 1}') > 0 AS ok;
SELECT record_order(128, 600, now() - interval '100 days', true) > 0 AS ok;
SELECT count(*) FROM refresh_rfm('2024-12-31');
SELECT unit_price FROM rfm_cut;
SELECT customer_id, orders, orders_30d, average_order_value, coupon_share, average_unit_price, unit_price_ratio,
	   high_frequency_low_spend AS hf_low, low_frequency_high_spend AS lf_high, price_sensitive, quality_oriented
FROM customer_rfm WHERE customer_id IN (101, 105, 126, 127, 128) ORDER BY customer_id;
SELECT configure_rfm('catalogue_unit_price', '300');
SELECT customer_id, unit_price_ratio, quality_oriented FROM customer_rfm WHERE customer_id IN (126, 127) ORDER BY 1;
SELECT configure_rfm('catalogue_unit_price', NULL) IS NULL AS catalogue_unset;
SELECT * FROM verify_order_stats();

-- tiers mirrored into tags of the spending-power dimension
SELECT * FROM sync_rfm_tags();
SELECT name, dimension FROM tag WHERE name LIKE 'RFM %' ORDER BY tag_id;
SELECT t.tier, segment_cardinality(tag_members('RFM ' || t.tier)) AS tagged, count(v.customer_id) AS in_tier
FROM rfm_scheme s, unnest(s.tiers) t(tier) LEFT JOIN customer_rfm v ON v.tier = t.tier
WHERE s.name = 'value tiers' GROUP BY t.tier ORDER BY t.tier;
SELECT * FROM sync_rfm_tags();
-- with mirror_tags on, an order that changes the tier moves the tag at once
SELECT configure_rfm('mirror_tags', 'true');
SELECT tier FROM customer_rfm WHERE customer_id = 104;
SELECT customer_tags(104);
SELECT record_order(104, 5000, '2024-12-30') > 0 AS ok;
SELECT tier FROM customer_rfm WHERE customer_id = 104;
SELECT customer_tags(104);
SELECT configure_rfm('mirror_tags', 'false');
SELECT bool_and(ok) FROM verify_tag_index();

-- deleting a customer removes their orders and statistics
DELETE FROM customer WHERE id = 104;
SELECT count(*) FROM customer_order WHERE customer_id = 104;
SELECT count(*) FROM customer_stats WHERE customer_id = 104;
SELECT * FROM verify_order_stats();

-- 200 single orders in shuffled time order (some within the last 30 days, some on the
-- same day, some before a customer's first or between first and last): still exact
SELECT count(record_order(121 + k % 4, (k % 17) * 3.5, date_trunc('day', now()) - (k * 37 % 61) * interval '1 day'
						  - (k * 13 % 5) * interval '1 hour', k % 3 = 0, jsonb_build_object('units', 1 + k % 2)))
FROM (SELECT k FROM generate_series(1, 200) k ORDER BY md5(k::text)) x;
SELECT * FROM verify_order_stats();
SELECT customer_id, orders, order_days FROM customer_rfm WHERE customer_id BETWEEN 121 AND 124 ORDER BY 1;

-- ties keep one score: everyone equal scores 3; a single customer scores 3
TRUNCATE customer_order;
SELECT (SELECT count(*) FROM customer_stats) AS stats_left, count(*) FILTER (WHERE first_order_at IS NOT NULL) AS with_orders FROM customer;
SELECT count(record_order(g, 25, '2024-06-01')) AS orders FROM generate_series(111, 120) g;
SELECT * FROM refresh_rfm('2024-12-31');
SELECT r_cuts, f_cuts, m_cuts FROM rfm_cut;
SELECT r, f, m, count(*) FROM customer_rfm GROUP BY 1, 2, 3;
-- a tie group at the bottom: 6 of 10 customers spent 25, the others more
SELECT count(record_order(g, 100 * (g - 116), '2024-06-01')) AS orders FROM generate_series(117, 120) g;
SELECT count(*) FROM refresh_rfm('2024-12-31');
SELECT m_cuts FROM rfm_cut;
SELECT total_amount, m, count(*) FROM customer_rfm GROUP BY 1, 2 ORDER BY 1;
-- one-order customers are F = 1; repeat buyers spread over 2..5
SELECT count(record_order(g, 1, timestamptz '2024-06-02' + (g - 110) * interval '1 day')) AS orders FROM generate_series(111, 115) g;
SELECT count(record_order(g, 1, timestamptz '2024-06-10' + (g - 110) * interval '1 day')) AS orders FROM generate_series(111, 113) g;
SELECT count(*) FROM refresh_rfm('2024-12-31');
SELECT f_cuts FROM rfm_cut;
SELECT orders, f, count(*) FROM customer_rfm GROUP BY 1, 2 ORDER BY 1;
TRUNCATE customer_order;
SELECT record_order(101, 10, '2024-06-01') > 0 AS ok;
SELECT * FROM refresh_rfm('2024-12-31');
SELECT r_cuts, f_cuts, m_cuts FROM rfm_cut;
SELECT * FROM rfm_score(101);

-- roles: operators record orders, readers read scores, admins refresh and configure
SET ROLE wam_reader;
SELECT * FROM rfm_score(101);
SELECT count(*) FROM customer_rfm;
SELECT count(*) FROM value_report();
SELECT record_order(101, 10, '2024-06-02');
SELECT * FROM refresh_rfm('2024-12-31');
INSERT INTO customer_order (customer_id, ordered_at, amount) VALUES (101, '2024-06-02', 10);
UPDATE customer_stats SET orders = 0;
RESET ROLE;
SET ROLE wam_operator;
SELECT record_order(101, 10, '2024-06-02') > 0 AS operator_records;
SELECT * FROM refresh_rfm('2024-12-31');
SELECT configure_rfm('cost_cap_share', '0.1');
SELECT * FROM define_rfm_scheme('x', '[{"tier": "A"}]');
SELECT * FROM sync_rfm_tags();
DELETE FROM customer_order;
RESET ROLE;
SET ROLE wam_admin;
SELECT count(*) AS admin_refreshes FROM refresh_rfm('2024-12-31');
SELECT configure_rfm('cost_cap_share', '0.15') AS admin_configures;
SELECT recompute_order_stats() AS admin_recomputes;
RESET ROLE;
SELECT * FROM verify_order_stats();
