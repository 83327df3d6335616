-- group-exclusive offers and discount codes (issue 20, items 2 to 4): shared, generated and
-- imported codes, validity, limits, redemption tied to orders and reversed by refunds,
-- referral reward codes through the same path, gift tiers, the gift threshold, the price
-- floor; every bad input, boundaries, and attacker attempts per role
SET client_min_messages = warning;
DROP EXTENSION pg_wamarketing CASCADE;
CREATE EXTENSION pg_wamarketing;
RESET client_min_messages;
SET search_path = public, wam;
\set SHOW_CONTEXT never

CREATE FUNCTION pg_temp.err(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
	EXECUTE q;
	RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
	RETURN SQLSTATE || ': ' || SQLERRM;
END $$;
-- everything a redemption writes, to show that a refused one wrote nothing
CREATE FUNCTION pg_temp.state() RETURNS text LANGUAGE sql RETURN
	(SELECT format('orders %s, redemptions %s, offers %s, per customer %s, per group %s, codes used %s',
				   (SELECT count(*) FROM customer_order), (SELECT count(*) FROM code_redemption WHERE reversed_at IS NULL),
				   (SELECT coalesce(sum(redeemed), 0) FROM offer), (SELECT coalesce(sum(redeemed), 0) FROM offer_customer_usage),
				   (SELECT coalesce(sum(redeemed), 0) FROM offer_group_usage), (SELECT count(used_at) FROM offer_code)));
CREATE FUNCTION pg_temp.buy(customer bigint, amount numeric, code text, at timestamptz DEFAULT now()) RETURNS text
	LANGUAGE plpgsql AS $$
BEGIN
	PERFORM record_order(customer, amount, at, code => code);
	RETURN (SELECT format('%s %s%s', r.code_kind, r.discount, coalesce(' + ' || r.gift, ''))
			FROM code_redemption r ORDER BY r.redemption_id DESC LIMIT 1);
EXCEPTION WHEN OTHERS THEN
	-- generated codes are random: shown as <code>
	RETURN SQLSTATE || ': ' || CASE WHEN length(code) >= 13 THEN replace(SQLERRM, code, '<code>') ELSE SQLERRM END;
END $$;

INSERT INTO customer (id, phone) SELECT g, (85290000000 + g)::text FROM generate_series(1, 12) g;
SELECT create_group('mums-taipei-east') AS g1, create_group('dads-taipei') AS g2;
SELECT add_group_members('mums-taipei-east', segment(ARRAY[1, 2, 3, 4, 5]::bigint[])) AS east,
	   add_group_members('dads-taipei', segment(ARRAY[5, 6, 7]::bigint[])) AS dads;
SELECT create_tag('vip', 'spending power') IS NOT NULL AS tagged;
SELECT attach_tag('vip', segment(ARRAY[8, 9]::bigint[])) AS vips;

-- ---------------------------------------------------------------- creating offers
SELECT create_offer('half price', group_name => 'mums-taipei-east', code => 'group50', discount_percent => 50,
					min_order => 100, total_limit => 3, per_group_limit => NULL) AS half;
SELECT name, shared_code, discount_type, discount, min_order, valid_until - valid_from AS validity, total_limit,
	   per_customer_limit, redeemed, created_by = session_user AS by_me FROM offer;
-- bad input, each refused with its SQLSTATE
SELECT pg_temp.err($$SELECT create_offer(NULL, 'mums-taipei-east', code => 'A123', discount_percent => 5)$$) AS null_name,
	   pg_temp.err($$SELECT create_offer(' ', 'mums-taipei-east', code => 'A123', discount_percent => 5)$$) AS blank_name;
SELECT pg_temp.err($$SELECT create_offer('x', code => 'A123', discount_percent => 5)$$) AS no_target,
	   pg_temp.err($$SELECT create_offer('x', 'mums-taipei-east', 'vip', code => 'A123', discount_percent => 5)$$) AS two_targets;
SELECT pg_temp.err($$SELECT create_offer('x', 'nope', code => 'A123', discount_percent => 5)$$) AS unknown_group,
	   pg_temp.err($$SELECT create_offer('x', audience => 'no-such-tag', code => 'A123', discount_percent => 5)$$) AS bad_audience;
SELECT pg_temp.err($$SELECT create_offer('x', 'mums-taipei-east', code => 'AB', discount_percent => 5)$$) AS short_code,
	   pg_temp.err($$SELECT create_offer('x', 'mums-taipei-east', code => 'GROUP-50!', discount_percent => 5)$$) AS bad_char,
	   pg_temp.err($$SELECT create_offer('x', 'mums-taipei-east', code => 'Group 50', discount_percent => 5)$$) AS code_taken;
SELECT pg_temp.err($$SELECT create_offer('x', 'mums-taipei-east', code => 'A123')$$) AS no_discount,
	   pg_temp.err($$SELECT create_offer('x', 'mums-taipei-east', code => 'A123', discount_percent => 5, discount_amount => 5)$$) AS two_discounts;
SELECT pg_temp.err($$SELECT create_offer('x', 'mums-taipei-east', code => 'A123', discount_percent => 0)$$) AS percent_0,
	   pg_temp.err($$SELECT create_offer('x', 'mums-taipei-east', code => 'A123', discount_percent => 100.01)$$) AS percent_above_100,
	   pg_temp.err($$SELECT create_offer('x', 'mums-taipei-east', code => 'A123', discount_amount => -1)$$) AS negative_amount,
	   pg_temp.err($$SELECT create_offer('x', 'mums-taipei-east', code => 'A123', discount_amount => 'NaN')$$) AS nan_amount;
SELECT pg_temp.err($$SELECT create_offer('x', 'mums-taipei-east', code => 'A123', discount_amount => 5, min_order => -0.01)$$) AS negative_min,
	   pg_temp.err($$SELECT create_offer('x', 'mums-taipei-east', code => 'A123', discount_amount => 5, total_limit => 0)$$) AS zero_limit,
	   pg_temp.err($$SELECT create_offer('x', 'mums-taipei-east', code => 'A123', discount_amount => 5, per_customer_limit => -1)$$) AS negative_limit;
SELECT pg_temp.err($$SELECT create_offer('half price', 'mums-taipei-east', code => 'A123', discount_amount => 5)$$) AS duplicate_name;
-- validity: 7 days by default and at most, unless a reason is given
SELECT pg_temp.err($$SELECT create_offer('x', 'mums-taipei-east', code => 'A123', discount_amount => 5,
											  valid_from => '2030-01-01', valid_until => '2030-01-08 00:00:01')$$) AS just_over_7_days,
	   pg_temp.err($$SELECT create_offer('x', 'mums-taipei-east', code => 'A123', discount_amount => 5,
											  valid_from => '2030-01-01', valid_until => '2030-01-01')$$) AS empty_validity,
	   pg_temp.err($$SELECT create_offer('x', 'mums-taipei-east', code => 'A123', discount_amount => 5,
											  valid_from => '2030-01-01', valid_until => 'infinity', validity_reason => 'forever')$$) AS infinite,
	   pg_temp.err($$SELECT create_offer('x', 'mums-taipei-east', code => 'A123', discount_amount => 5, valid_from => NULL)$$) AS null_start;
SELECT create_offer('seven days', 'mums-taipei-east', code => 'WEEK7', discount_amount => 5,
					valid_from => '2030-01-01', valid_until => '2030-01-08') AS exactly_7_days,
	   create_offer('a month', 'mums-taipei-east', code => 'MONTH30', discount_amount => 5,
					valid_from => '2030-01-01', valid_until => '2030-01-31', validity_reason => 'new-year campaign') AS with_reason;
SELECT name, valid_until - valid_from AS validity, validity_reason FROM offer WHERE name IN ('seven days', 'a month') ORDER BY 1;

-- ---------------------------------------------------------------- the price floor (R-G3)
-- 15 % below the public price or more: fine; less: a warning; less than 10 %: refused
-- unless forced with a reason, which is logged with who and when
SELECT create_offer('p15', 'mums-taipei-east', code => 'P15', discount_amount => 1, group_price => 85, public_price => 100) AS at_15;
SELECT create_offer('p1499', 'mums-taipei-east', code => 'P1499', discount_amount => 1, group_price => 85.01, public_price => 100) AS just_below_15;
SELECT create_offer('p10', 'mums-taipei-east', code => 'P10', discount_amount => 1, group_price => 90, public_price => 100) AS at_10;
SELECT pg_temp.err($$SELECT create_offer('p999', 'mums-taipei-east', code => 'P999', discount_amount => 1,
											  group_price => 90.01, public_price => 100)$$) AS just_below_10;
SELECT create_offer('p5', 'mums-taipei-east', code => 'PF5', discount_amount => 1, group_price => 95, public_price => 100,
					force_reason => 'clearance of last season') AS forced;
SELECT pg_temp.err($$SELECT create_offer('p0', 'mums-taipei-east', code => 'PF0', discount_amount => 1, group_price => 95, public_price => 100, force_reason => ' ')$$) AS blank_reason,
	   pg_temp.err($$SELECT create_offer('p0', 'mums-taipei-east', code => 'PF0', discount_amount => 1, group_price => 95)$$) AS one_price,
	   pg_temp.err($$SELECT create_offer('p0', 'mums-taipei-east', code => 'PF0', discount_amount => 1, group_price => 95, public_price => 0)$$) AS zero_public;
SELECT o.name, p.group_price, p.public_price, p.below_public, p.reason, p.forced_by = session_user AS by_me,
	   p.forced_at = now() AS now FROM offer_price_override p JOIN offer o USING (offer_id);
SELECT name FROM offer WHERE name LIKE 'p%' ORDER BY 1;
-- changing: the same checks
SELECT change_offer('p15', group_price => 87) AS warned;
SELECT pg_temp.err($$SELECT change_offer('p15', group_price => 91)$$) AS refused,
	   pg_temp.err($$SELECT change_offer('p15', public_price => 95)$$) AS public_lowered;
SELECT change_offer('p15', group_price => 91, force_reason => 'supplier price rise') AS forced;
SELECT group_price, public_price FROM offer WHERE name = 'p15';
SELECT count(*) AS overrides FROM offer_price_override;
SELECT pg_temp.err($$SELECT change_offer('seven days', valid_until => '2030-01-09')$$) AS longer_without_reason,
	   pg_temp.err($$SELECT change_offer('nope', total_limit => 5)$$) AS unknown_offer,
	   pg_temp.err($$SELECT change_offer('seven days', total_limit => 0)$$) AS zero_limit;
SELECT change_offer('seven days', valid_until => '2030-01-09', validity_reason => 'holiday') AS extended;
SELECT valid_until - valid_from AS validity, validity_reason FROM offer WHERE name = 'seven days';
SELECT change_offer('a month', valid_until => '2030-01-05') AS shortened;
SELECT valid_until - valid_from AS validity, validity_reason FROM offer WHERE name = 'a month';

-- ---------------------------------------------------------------- gift tiers (R-G2)
SELECT set_offer_gifts('half price', '[{"min_amount": 1200, "gift": "sample pack", "cost": 45},
									   {"min_amount": 2500, "gift": "bigger gift", "cost": 90}]') AS tiers;
SELECT pg_temp.err($$SELECT set_offer_gifts('half price', '{"min_amount": 1}')$$) AS not_array,
	   pg_temp.err($$SELECT set_offer_gifts('half price', '[{"min_amount": 0, "gift": "x"}]')$$) AS zero_amount,
	   pg_temp.err($$SELECT set_offer_gifts('half price', '[{"min_amount": 10, "gift": ""}]')$$) AS no_gift,
	   pg_temp.err($$SELECT set_offer_gifts('half price', '[{"min_amount": 10, "gift": "x", "cost": -1}]')$$) AS negative_cost,
	   pg_temp.err($$SELECT set_offer_gifts('half price', '[{"min_amount": 10, "gift": "x"}, {"min_amount": 10.0, "gift": "y"}]')$$) AS same_amount;
SELECT min_amount, gift, cost FROM offer_gift_tier ORDER BY 1;

-- ---------------------------------------------------------------- checking a code (changes nothing)
SELECT * FROM check_code('GROUP50', 1, 1199.99);
SELECT * FROM check_code(' group-50 ', 1, 1200);
SELECT * FROM check_code('GROUP50', 1, 2500);
SELECT * FROM check_code('GROUP50', 1);
SELECT * FROM check_code('GROUP50', 6, 500);
SELECT * FROM check_code('GROUP50', 1, 99.99);
SELECT * FROM check_code('GROUP51', 1, 500);
SELECT * FROM check_code('', 1, 500);
SELECT * FROM check_code('WEEK7', 1, 500);
SELECT pg_temp.err($$SELECT check_code('GROUP50', NULL, 500)$$) AS null_customer,
	   pg_temp.err($$SELECT check_code('GROUP50', 1, -1)$$) AS negative_amount;
SELECT pg_temp.state() AS nothing_changed;

-- ---------------------------------------------------------------- redeeming on an order
-- the highest gift tier reached applies; the discount is on the order amount
SELECT pg_temp.buy(1, 1200, 'group50') AS tier_1200, pg_temp.state();
-- each refusal: its SQLSTATE, and nothing of the order or the redemption written
SELECT pg_temp.buy(1, 500, 'GROUP50') AS already_used, pg_temp.state();
SELECT pg_temp.buy(2, 99.99, 'GROUP50') AS below_minimum, pg_temp.buy(6, 500, 'GROUP50') AS not_member,
	   pg_temp.buy(2, 500, 'GROUP5O') AS unknown, pg_temp.state();
SELECT create_offer('last week', 'mums-taipei-east', code => 'LASTWEEK', discount_amount => 5,
					valid_from => now() - interval '10 days', valid_until => now() - interval '3 days') AS last_week;
SELECT pg_temp.buy(2, 500, 'WEEK7') AS not_yet_valid, pg_temp.buy(2, 500, 'LASTWEEK') AS expired,
	   pg_temp.buy(2, 500, 'LASTWEEK', now() - interval '3 days 1 hour') AS ordered_in_time,
	   pg_temp.buy(3, 500, 'LASTWEEK', now() - interval '3 days') AS ordered_at_the_end;
SELECT (check_code('LASTWEEK', 2, 500)).reason AS check_expired;
SELECT pg_temp.buy(2, 100, 'GROUP50') AS at_minimum, pg_temp.buy(3, 2499.99, 'GROUP50') AS tier_below_2500, pg_temp.state();
SELECT pg_temp.buy(4, 2500, 'GROUP50') AS limit_reached, pg_temp.state();
\set VERBOSITY default
SELECT record_order(4, 2500, code => 'GROUP50');
SELECT record_order(6, 2500, code => 'GROUP50');
\set VERBOSITY sqlstate
SELECT record_order(6, 2500, code => 'GROUP50');
\set VERBOSITY default
-- a member who left may no longer use the group's code
SELECT remove_group_members('mums-taipei-east', segment(ARRAY[5]::bigint[])) AS left_group;
SELECT * FROM check_code('P15', 5, 100);
SELECT add_group_members('mums-taipei-east', segment(ARRAY[5]::bigint[])) AS rejoined;
-- orders carry the coupon flag; the redemption shows the group, discount and gift
SELECT o.customer_id, o.amount, o.coupon_used, r.code_kind, g.name AS group_name, r.discount, r.gift, r.gift_cost
FROM code_redemption r JOIN customer_order o USING (customer_id, order_id) LEFT JOIN wa_group g USING (group_id) ORDER BY r.redemption_id;

-- a refund gives the redemption back: the order's amount becomes 0, its redemption is
-- reversed, the counters count down; refunding again does nothing
SELECT order_id AS o2 FROM code_redemption WHERE customer_id = 2 AND offer_id = 1 \gset
SELECT refund_order(2, :o2, 'damaged') AS reversed, pg_temp.state();
SELECT refund_order(2, :o2) AS again, pg_temp.state();
SELECT amount, details - 'refunded_at' AS details, details ? 'refunded_at' AS dated FROM customer_order WHERE order_id = :o2;
SELECT reversed_at IS NOT NULL AS reversed, reverse_reason FROM code_redemption WHERE order_id = :o2;
SELECT pg_temp.err($$SELECT refund_order(2, 999999)$$) AS unknown_order, pg_temp.err($$SELECT refund_order(NULL, 1)$$) AS null_customer;
SELECT pg_temp.buy(4, 2500, 'GROUP50') AS after_refund, pg_temp.buy(2, 300, 'GROUP50') AS refunded_customer_again, pg_temp.state();
-- an order without a code, and its refund, touch no redemption
SELECT record_order(7, 50) AS plain_order \gset
SELECT refund_order(7, :plain_order) AS reversed_none;

-- ---------------------------------------------------------------- limits per customer and per group
SELECT create_offer('twice each', audience => 'vip OR group(dads-taipei)', code => 'TWICE', discount_amount => 10,
					per_customer_limit => 2, per_group_limit => 3) AS twice;
SELECT pg_temp.buy(8, 100, 'TWICE') AS first, pg_temp.buy(8, 100, 'TWICE') AS second, pg_temp.buy(8, 100, 'TWICE') AS third;
-- a segment offer counts for the customer's earliest current group: dads for 6, 7 and 5 (who rejoined mums later)
SELECT pg_temp.buy(6, 100, 'TWICE') AS dad_1, pg_temp.buy(6, 100, 'TWICE') AS dad_2, pg_temp.buy(7, 100, 'TWICE') AS dad_3,
	   pg_temp.buy(7, 100, 'TWICE') AS dad_4, pg_temp.buy(5, 100, 'TWICE') AS mum_1;
SELECT pg_temp.buy(10, 100, 'TWICE') AS not_in_audience, pg_temp.buy(9, 100, 'TWICE') AS vip_without_group;
SELECT g.name, u.redeemed FROM offer_group_usage u JOIN wa_group g USING (group_id) ORDER BY 1;
SELECT u.customer_id, u.redeemed FROM offer_customer_usage u JOIN offer o USING (offer_id) WHERE o.name = 'twice each' ORDER BY 1;

-- ---------------------------------------------------------------- unique codes
SELECT create_offer('welcome', 'mums-taipei-east', discount_amount => 30, min_order => 50) AS welcome;
SELECT count(*) AS issued FROM issue_offer_codes('welcome');
SELECT count(*) AS issued_again FROM issue_offer_codes('welcome');
SELECT count(*) AS none_for_holders_and_outsiders FROM issue_offer_codes('welcome', segment(ARRAY[3, 4, 12]::bigint[]));
SELECT count(*) AS codes, count(DISTINCT code) AS distinct_codes, bool_and(code ~ '^[0-9A-HJKMNP-TV-Z]{13}$') AS crockford,
	   bool_and(source = 'generated') AS generated FROM offer_code;
SELECT code AS c1 FROM offer_code WHERE customer_id = 1 \gset
SELECT code AS c2 FROM offer_code WHERE customer_id = 2 \gset
-- typing is forgiven (lower case, hyphens, spaces); a typo is caught by the check symbol
SELECT (check_code(lower(:'c1'), 1, 100)).status AS lower_case,
	   (check_code(substr(:'c1', 1, 4) || '-' || substr(:'c1', 5, 4) || ' ' || substr(:'c1', 9), 1, 100)).status AS separated,
	   -- (the first two neighbours that differ: the code is random)
	   (check_code((SELECT overlay(:'c1' PLACING substr(:'c1', i + 1, 1) || substr(:'c1', i, 1) FROM i FOR 2)
					FROM generate_series(1, length(:'c1') - 1) i
					WHERE substr(:'c1', i, 1) <> substr(:'c1', i + 1, 1) ORDER BY i LIMIT 1), 1, 100)).reason AS swapped,
	   (check_code(substr(:'c1', 1, 12) || CASE WHEN substr(:'c1', 13) = '0' THEN '1' ELSE '0' END, 1, 100)).reason AS wrong_check;
-- another customer's code reads as unknown: whether it exists is not told
SELECT (check_code(:'c1', 2, 100)).reason AS someone_elses, (check_code('0000000000000', 2, 100)).reason AS nonexistent;
SELECT pg_temp.buy(2, 100, :'c1') AS someone_elses_code, pg_temp.buy(1, 49, :'c1') AS below_minimum, pg_temp.state();
SELECT pg_temp.buy(1, 100, lower(:'c1')) AS own_code, pg_temp.buy(1, 100, :'c1') AS used_again;
SELECT pg_temp.err($$SELECT issue_offer_codes('half price')$$) AS shared_offer, pg_temp.err($$SELECT issue_offer_codes('nope')$$) AS unknown_offer;
-- imported codes: usable once by anyone the offer is for
SELECT import_offer_codes('welcome', ARRAY['shop-0001', 'SHOP 0002']) AS imported;
SELECT pg_temp.err($$SELECT import_offer_codes('welcome', ARRAY['SHOP0001'])$$) AS exists_already,
	   pg_temp.err($$SELECT import_offer_codes('welcome', ARRAY['SHOP0003', 'shop-0003'])$$) AS twice_in_list,
	   pg_temp.err($$SELECT import_offer_codes('welcome', ARRAY['AB!'])$$) AS bad_code,
	   pg_temp.err($$SELECT import_offer_codes('welcome', ARRAY[NULL])$$) AS null_code,
	   pg_temp.err($$SELECT import_offer_codes('welcome', ARRAY['GROUP50'])$$) AS a_shared_code,
	   pg_temp.err($$SELECT import_offer_codes('half price', ARRAY['SHOP0009'])$$) AS into_shared_offer;
SELECT pg_temp.buy(3, 100, 'shop-0001') AS imported_code, pg_temp.buy(4, 100, 'SHOP0001') AS imported_again,
	   pg_temp.buy(6, 100, 'SHOP0002') AS outsider;
-- a refund makes a unique code usable again
SELECT order_id AS oc1 FROM code_redemption r JOIN offer_code c USING (code_id) WHERE c.customer_id = 1 \gset
SELECT refund_order(1, :oc1) AS reversed;
SELECT used_at IS NULL AS usable_again FROM offer_code WHERE code = :'c1';
SELECT pg_temp.buy(1, 100, :'c1') AS own_code_after_refund;

-- ---------------------------------------------------------------- referral reward codes, the same path
SELECT create_referral_program('friends') AS program \gset
INSERT INTO referral_reward (program_id, referrer_id, tier, reward, cost, redemption_code, status, notify_status)
VALUES (:program, 11, 1, 'HK$100 voucher', 100, redemption_code(), 'issued', 'not configured') RETURNING redemption_code AS r_issued \gset
INSERT INTO referral_reward (program_id, referrer_id, tier, reward, cost, redemption_code, status, notify_status)
VALUES (:program, 11, 2, 'HK$300 voucher', 300, redemption_code(), 'held', 'not configured') RETURNING redemption_code AS r_held \gset
INSERT INTO referral_reward (program_id, referrer_id, tier, reward, cost, redemption_code, status, notify_status)
VALUES (:program, 12, 1, 'HK$100 voucher', 100, redemption_code(), 'revoked', 'not configured') RETURNING redemption_code AS r_revoked \gset
SELECT * FROM check_code(:'r_issued', 11, 80);
SELECT (check_code(:'r_issued', 12, 80)).reason AS someone_elses, (check_code(:'r_held', 11, 80)).reason AS held,
	   (check_code(:'r_revoked', 12, 80)).reason AS revoked;
SELECT pg_temp.buy(12, 500, :'r_issued') AS someone_elses, pg_temp.buy(11, 500, :'r_held') AS held,
	   pg_temp.buy(12, 500, :'r_revoked') AS revoked;
SELECT pg_temp.buy(11, 80, lower(:'r_issued')) AS redeemed, pg_temp.buy(11, 500, :'r_issued') AS used_again;
SELECT (check_code(:'r_issued', 11, 80)).reason AS check_after_use;
SELECT code_kind, reward_id IS NOT NULL AS reward, offer_id IS NULL AS no_offer, amount, discount, gift, gift_cost
FROM code_redemption WHERE code_kind = 'referral';
SELECT order_id AS ro FROM code_redemption WHERE code_kind = 'referral' \gset
SELECT refund_order(11, :ro) AS reversed, pg_temp.buy(11, 500, :'r_issued') AS after_refund;
-- the reward itself is untouched by its redemption (its issuing is the referral program's)
SELECT status, notify_status FROM referral_reward ORDER BY id;

-- ---------------------------------------------------------------- the gift threshold
-- 1.5 times the average order value of the group's current members, in whole units up
SELECT * FROM suggest_gift_threshold('mums-taipei-east');
SELECT round(sum(s.total_amount) / sum(s.orders) * 1.5, 4) AS by_hand FROM customer_stats s
WHERE s.customer_id IN (SELECT customer_id FROM group_member m JOIN wa_group g USING (group_id) WHERE g.name = 'mums-taipei-east' AND m.left_at IS NULL);
SELECT * FROM suggest_gift_threshold(audience => 'vip');
SELECT create_group('empty-group') AS empty \gset
SELECT * FROM suggest_gift_threshold('empty-group');
SELECT pg_temp.err($$SELECT suggest_gift_threshold()$$) AS no_target,
	   pg_temp.err($$SELECT suggest_gift_threshold('nope')$$) AS unknown_group,
	   pg_temp.err($$SELECT suggest_gift_threshold('empty-group', 'vip')$$) AS both;

-- ---------------------------------------------------------------- the typed-code reader
SELECT left(code, 20) AS code, (wam_internal.offer_code_read(code)).* FROM (VALUES ('0000000000000'), ('oooo-oooo-ooooo'),
	('000000000000Z'), ('00000000000000'), ('GROUP50'), (''), (repeat('0', 80))) v(code) ORDER BY code COLLATE "C";
SELECT (wam_internal.offer_code_read(lower(:'c2'))).canonical = :'c2' AS generated_reads_back;

-- ---------------------------------------------------------------- who may do what, tried as an attacker
-- operators record orders with codes, check and refund them; they cannot list the unique
-- codes, guess another customer's, change an offer or its counters, or call the internals
SET ROLE wam_operator;
SELECT pg_temp.buy(3, 100, 'P15') AS operator_redeems;
SELECT (check_code(:'c2', 2, 100)).status AS operator_checks_own;
SELECT pg_temp.err($$SELECT code FROM offer_code$$) AS list_codes,
	   pg_temp.err($$SELECT count(*) FROM offer_code WHERE code LIKE 'A%'$$) AS probe_codes,
	   (check_code(:'c2', 3, 100)).reason AS guess_another_customers,
	   pg_temp.buy(3, 100, :'c2') AS use_another_customers;
SELECT pg_temp.err($$UPDATE offer SET redeemed = 0$$) AS reset_counter,
	   pg_temp.err($$UPDATE offer SET total_limit = NULL$$) AS lift_limit,
	   pg_temp.err($$UPDATE offer_customer_usage SET redeemed = 0$$) AS reset_usage,
	   pg_temp.err($$DELETE FROM code_redemption$$) AS delete_redemptions,
	   pg_temp.err($$INSERT INTO offer_code (offer_id, code, source) VALUES (1, 'MINE1234', 'imported')$$) AS plant_code;
SELECT pg_temp.err($$SELECT create_offer('mine', 'mums-taipei-east', code => 'MINE99', discount_percent => 99)$$) AS create_offer,
	   pg_temp.err($$SELECT change_offer('half price', total_limit => 1000)$$) AS raise_limit,
	   pg_temp.err($$SELECT issue_offer_codes('welcome')$$) AS issue_codes,
	   pg_temp.err($$SELECT import_offer_codes('welcome', ARRAY['MINE1234'])$$) AS import_codes,
	   pg_temp.err($$SELECT set_offer_gifts('half price', '[]')$$) AS change_gifts;
SELECT pg_temp.err($$SELECT wam_internal.redeem_code('GROUP50', 6, 1, 100, now())$$) AS internal_redeem,
	   pg_temp.err($$SELECT wam_internal.reverse_redemption(1, 'x')$$) AS internal_reverse,
	   pg_temp.err($$SELECT wam_internal.code_find('x', 1)$$) AS internal_find;
SELECT count(*) > 0 AS reads_redemptions, NOT bool_or(to_jsonb(r) ? 'code') AS redemptions_hold_no_code FROM code_redemption r;
RESET ROLE;
-- readers see offers and redemptions; they redeem, check and refund nothing
SET ROLE wam_reader;
SELECT count(*) > 0 AS reads_offers FROM offer;
SELECT pg_temp.err($$SELECT record_order(3, 100, code => 'P15')$$) AS reader_redeems,
	   pg_temp.err($$SELECT check_code('P15', 3, 100)$$) AS reader_checks,
	   pg_temp.err($$SELECT refund_order(3, 1)$$) AS reader_refunds,
	   pg_temp.err($$SELECT code FROM offer_code$$) AS reader_lists_codes;
RESET ROLE;
-- administrators create offers and issue codes (they hand them to the messages)
SET ROLE wam_admin;
SELECT create_offer('admins', 'dads-taipei', discount_percent => 15) IS NOT NULL AS admin_creates;
SELECT count(*) AS admin_issues FROM issue_offer_codes('admins');
SELECT change_offer('admins', total_limit => 10) AS admin_changes;
RESET ROLE;

-- the invariants after all of the above: every counter equals the redemptions it counts
SELECT bool_and(o.redeemed = (SELECT count(*) FROM code_redemption r WHERE r.offer_id = o.offer_id AND r.reversed_at IS NULL)) AS offers,
	   (SELECT bool_and(u.redeemed = (SELECT count(*) FROM code_redemption r WHERE r.offer_id = u.offer_id
									  AND r.customer_id = u.customer_id AND r.reversed_at IS NULL)) FROM offer_customer_usage u) AS customers,
	   (SELECT bool_and(u.redeemed = (SELECT count(*) FROM code_redemption r WHERE r.offer_id = u.offer_id
									  AND r.group_id = u.group_id AND r.reversed_at IS NULL)) FROM offer_group_usage u) AS groups_,
	   (SELECT count(*) FROM offer_code c WHERE (c.used_at IS NOT NULL) <>
			EXISTS (SELECT FROM code_redemption r WHERE r.code_id = c.code_id AND r.reversed_at IS NULL)) AS codes_out_of_step
FROM offer o;

-- ---------------------------------------------------------------- group economics (R-G5)
-- a fresh week: a group of 10 (an admin among them), 4 clicked, 2 redeemed the offer, 1
-- refunded; a second group of 20 where 1 redeemed
SELECT create_group('econ-a') AS ea, create_group('econ-b') AS eb \gset
INSERT INTO customer (id, phone) SELECT g, (85291000000 + g)::text FROM generate_series(101, 130) g;
SELECT add_group_members('econ-a', segment_range(101, 111)) AS a_members, add_group_members('econ-a', segment(ARRAY[101]::bigint[]), 'admin') AS a_admin,
	   add_group_members('econ-b', segment_range(111, 131)) AS b_members,
	   add_group_members('econ-b', segment(ARRAY[111, 112]::bigint[]), 'admin') AS b_admins;
INSERT INTO event (customer_id, kind) SELECT g, 'link_click' FROM generate_series(102, 105) g;
SELECT create_offer('econ 10', audience => 'group(econ-a) | group(econ-b)', code => 'ECON10', discount_percent => 10) AS econ10;
SELECT create_offer('econ half', 'econ-a', code => 'ECONHALF', discount_percent => 50) AS econhalf;
SELECT set_offer_gifts('econ half', '[{"min_amount": 1000, "gift": "sample pack", "cost": 45}]') AS tiers;
SELECT pg_temp.buy(102, 1000, 'ECON10') AS a1, pg_temp.buy(103, 2000, 'ECON10') AS a2, pg_temp.buy(104, 500, 'ECON10') AS a3,
	   pg_temp.buy(113, 1500, 'ECON10') AS b1, pg_temp.buy(105, 1000, 'ECONHALF') AS half;
SELECT refund_order(104, (SELECT order_id FROM code_redemption WHERE customer_id = 104)) AS refunded;
SELECT group_name, offer, members, clicked, click_rate, redeemers, redemption_rate, redemptions, revenue, discount_cost,
	   net_profit, profit_per_discount, health, flag, week = date_trunc('week', now())::date AS this_week
FROM group_economics(now() - interval '1 hour', now() + interval '1 hour') WHERE group_name LIKE 'econ-%';
SELECT group_name, admin, order_amount, commission FROM group_admin_commission(now() - interval '1 hour', now() + interval '1 hour')
WHERE group_name LIKE 'econ-%';
SELECT count(*) AS nothing_before FROM group_economics('2000-01-01', '2000-01-08');
SELECT pg_temp.err($$SELECT group_economics(now(), now())$$) AS empty_window,
	   pg_temp.err($$SELECT group_economics(NULL, now())$$) AS null_since,
	   pg_temp.err($$SELECT group_admin_commission(now() - interval '1 day', now(), 1.5)$$) AS bad_rate;
SET ROLE wam_reader;
SELECT count(*) > 0 AS reader_reads_economics FROM group_economics(now() - interval '1 hour', now() + interval '1 hour');
RESET ROLE;
