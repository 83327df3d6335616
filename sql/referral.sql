-- referral program (R-F1 ... R-F7): programs and settings, codes and links,
-- every abuse check of the trigger, qualification, tiers, cost caps, refunds,
-- review, report and roles; start from an empty data model
SET client_min_messages = warning;
DROP EXTENSION pg_wamarketing CASCADE;
CREATE EXTENSION pg_wamarketing;
RESET client_min_messages;
SET search_path = public, wam;
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';
SET intervalstyle = 'postgres';
\set VERBOSITY default
\set SHOW_CONTEXT never

-- a fixed secret so that the codes below are reproducible (a real
-- installation gets 244 random bits at CREATE EXTENSION)
SELECT length(secret) >= 32 AS random_secret_installed FROM referral_secret;
UPDATE referral_secret SET secret = decode(repeat('5a', 32), 'hex');

INSERT INTO customer (id, phone, created_at) SELECT g, (85291000000 + g)::text, now() FROM generate_series(1, 60) g;
-- long-standing customers
INSERT INTO customer (id, phone, created_at) SELECT g, (85291000000 + g)::text, '2020-01-01' FROM generate_series(61, 70) g;
SELECT setval('customer_id_seq', 1000);

-- programs: defaults (R-F3, R-F5)
SELECT create_referral_program('main') AS id;
SELECT name, preset, cap, velocity_per_hour, min_order, qualify_window, hold, cost_cap_share, flat_cost_cap,
	   ring_depth, signup_grace, tiers, business_number, landing_url, message, starts_at, ends_at
FROM referral_program WHERE name = 'main';
SELECT jsonb_pretty(referral_program_settings(p)) FROM referral_program p WHERE name = 'main';
-- presets (R-F7): tiers, minimum order and benchmark
SELECT create_referral_program('retail', '{"preset": "retail e-commerce"}') AS id;
SELECT create_referral_program('courses', '{"preset": "online education", "cap": 20}') AS id;
SELECT create_referral_program('salon', '{"preset": "local services", "min_order": 80}') AS id;
SELECT name, preset, cap, min_order, tiers, benchmark
FROM referral_program WHERE preset IS NOT NULL ORDER BY id;
SELECT referral_defaults('local services') -> 'tiers' AS local_tiers, referral_defaults('nope') = referral_defaults() AS unknown_is_default;

-- bad settings: each refused with what is wrong, nothing created
SELECT create_referral_program(NULL);
SELECT create_referral_program('  ');
SELECT create_referral_program(repeat('x', 101));
SELECT create_referral_program('main');
SELECT create_referral_program('x', '[1]');
SELECT create_referral_program('x', '{"caps": 3}');
SELECT create_referral_program('x', '{"cap": 0}');
SELECT create_referral_program('x', '{"cap": 1.5}');
SELECT create_referral_program('x', '{"cap": "10"}');
SELECT create_referral_program('x', '{"cap": null}');
SELECT create_referral_program('x', '{"velocity_per_hour": 2000000}');
SELECT create_referral_program('x', '{"ring_depth": 1}');
SELECT create_referral_program('x', '{"min_order": -1}');
SELECT create_referral_program('x', '{"cost_cap_share": 1.5}');
SELECT create_referral_program('x', '{"flat_cost_cap": "ten"}');
SELECT create_referral_program('x', '{"qualify_window": "0"}');
SELECT create_referral_program('x', '{"hold": "soon"}');
SELECT create_referral_program('x', '{"hold": "-1 day"}');
SELECT create_referral_program('x', '{"signup_grace": 3}');
SELECT create_referral_program('x', '{"starts_at": "tomorrowish"}');
SELECT create_referral_program('x', '{"starts_at": "2026-02-01", "ends_at": "2026-01-01"}');
SELECT create_referral_program('x', '{"tiers": []}');
SELECT create_referral_program('x', '{"tiers": {"at": 1}}');
SELECT create_referral_program('x', '{"tiers": [{"at": 1, "reward": "coupon"}]}');
SELECT create_referral_program('x', '{"tiers": [{"at": 0, "reward": "coupon", "cost": 5}]}');
SELECT create_referral_program('x', '{"tiers": [{"at": 1, "reward": "coupon", "cost": -5}]}');
SELECT create_referral_program('x', '{"tiers": [{"at": 1, "reward": " ", "cost": 5}]}');
SELECT create_referral_program('x', '{"tiers": [{"at": 1, "reward": "a", "cost": 5, "extra": 1}]}');
SELECT create_referral_program('x', '{"tiers": [{"at": 5, "reward": "a", "cost": 5}, {"at": 5, "reward": "b", "cost": 5}]}');
SELECT create_referral_program('x', '{"business_number": "12"}');
SELECT create_referral_program('x', '{"business_number": 85251234567}');
SELECT create_referral_program('x', '{"landing_url": "http://shop.example"}');
SELECT create_referral_program('x', '{"message": "Join us!"}');
SELECT create_referral_program('x', '{"preset": "crypto"}');
SELECT create_referral_program('x', '{"benchmark": 3}');
SELECT count(*) AS programs FROM referral_program;

-- changing settings: only the given keys; a preset resets tiers, minimum, benchmark
SELECT configure_referral_program('main', '{"business_number": "+852 5123 4567", "landing_url": "https://shop.example/join", "flat_cost_cap": 100}')
	#> '{business_number}' AS business_number;
SELECT s ->> 'cap' AS cap, s ->> 'min_order' AS min_order, s -> 'benchmark' AS benchmark
FROM configure_referral_program('salon', '{"preset": "retail e-commerce", "cap": 3}') s;
SELECT configure_referral_program('nope', '{}');
SELECT configure_referral_program('main', '{"cap": -1}');
SELECT cap, business_number, flat_cost_cap FROM referral_program WHERE name = 'main';

-- codes (R-F1): stable, 11 characters of the Crockford alphabet, different per
-- customer and per program
SELECT referral_code(1, 'main') AS code_1, referral_code(1, 'main') = referral_code(1, 'main') AS stable,
	   referral_code(2, 'main') AS code_2, referral_code(1, 'retail') AS code_1_retail;
SELECT count(*) AS codes, count(DISTINCT code) AS distinct_codes,
	   bool_and(code ~ '^[0-9A-HJKMNP-TV-Z]{11}$') AS alphabet_ok
FROM (SELECT referral_code(g, 'main') AS code FROM generate_series(1, 60) g) x;
SELECT referral_code(NULL, 'main');
SELECT referral_code(1, NULL);
SELECT referral_code(1, 'nope');
SELECT referral_code(9999, 'main');

-- the check character: every single substitution and every swap of two
-- different characters is caught; case, O/0, I/L/1, spaces, hyphens forgiven
CREATE FUNCTION pg_temp.code_ok(c text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
	PERFORM wam.normalize_referral_code(c);
	RETURN true;
EXCEPTION WHEN invalid_parameter_value THEN
	RETURN false;
END $$;
SELECT count(*) AS substitutions, count(*) FILTER (WHERE pg_temp.code_ok(m)) AS accepted
FROM (SELECT overlay(c placing a from i for 1) AS m
	  FROM (SELECT referral_code(1, 'main') AS c) x, generate_series(1, 11) i,
		   regexp_split_to_table('0123456789ABCDEFGHJKMNPQRSTVWXYZ', '') a
	  WHERE substr(c, i, 1) <> a) y;
SELECT count(*) AS swaps, count(*) FILTER (WHERE pg_temp.code_ok(m)) AS accepted
FROM (SELECT overlay(overlay(c placing substr(c, j, 1) from i for 1) placing substr(c, i, 1) from j for 1) AS m
	  FROM (SELECT referral_code(g, 'main') AS c FROM generate_series(1, 20) g) x,
		   generate_series(1, 11) i, generate_series(1, 11) j
	  WHERE i < j AND substr(c, i, 1) <> substr(c, j, 1)) y;
SELECT normalize_referral_code('qz0s-ts1j 7pn') AS forgiving, normalize_referral_code('QZOSTSIJ7PN') AS o_and_i;
SELECT normalize_referral_code('QZ0STS1J7PM');
SELECT normalize_referral_code('QZ0STS1J7P');
SELECT normalize_referral_code('QZ0STS1J7PNN');
SELECT normalize_referral_code('QZ0STS1J7PU');
SELECT normalize_referral_code(' - ');
SELECT normalize_referral_code(repeat('A', 100));
SELECT normalize_referral_code(NULL) IS NULL AS null_in_null_out;

-- links: wa.me with the code in the prefilled text; the landing URL carries UTM
SELECT referral_link(1, 'main');
SELECT referral_landing_url(1, 'main');
SELECT referral_landing_url(1, 'main', '{"utm_source": "story", "utm_content": "a&b c/é"}');
SELECT referral_landing_url(1, 'main', '{"utm_x": "1"}');
SELECT referral_landing_url(1, 'main', '{"utm_term": ["a"]}');
SELECT referral_landing_url(1, 'main', '"x"');
SELECT referral_landing_url(1, 'retail');
SELECT referral_link(1, 'retail');
SELECT referral_link(1, 'main', '{"utm_source": "ig"}');
SELECT configure_referral_program('main', '{"message": "Hi! Code {code}, or sign up at {landing_url}"}') ->> 'message' AS message;
SELECT referral_link(1, 'main', '{"utm_source": "ig"}');
SELECT url_encode('a b+c/ü'), url_encode('');

-- abuse checks (a program with a small cap and velocity for the test)
SELECT create_referral_program('abuse', '{"cap": 3, "velocity_per_hour": 100, "flat_cost_cap": 1000}') AS id;
SELECT record_fingerprint(1, '{"device": "dev-1", "payment": "card-1", "ip": "10.0.0.1"}') AS fingerprints;
SELECT record_fingerprint(1, '{"device": "dev-1"}') AS again;
SELECT record_fingerprint(NULL, '{}');
SELECT record_fingerprint(1, '[]');
SELECT record_fingerprint(9999, '{}');
SELECT referral_code(1, 'abuse') AS code_a \gset
SELECT record_referral(:'code_a', 2) AS pending;
SELECT record_referral(:'code_a', 1) AS self;
SELECT record_referral(:'code_a', 3, '{"phone": "9100 0001"}') AS same_phone_national;
SELECT record_referral(:'code_a', 3, '{"phone": "+852 9100-0001"}') AS same_phone;
SELECT record_referral(:'code_a', 4, '{"device": "dev-1"}') AS shared_device;
SELECT record_referral(:'code_a', 5, '{"payment": "card-1"}') AS shared_payment;
SELECT record_referral(:'code_a', 61) AS long_standing;
SELECT record_order(6, 250, '2024-01-01');
SELECT record_referral(:'code_a', 6) AS already_ordered;
SELECT record_referral(referral_code(7, 'abuse'), 2) AS already_referred;
SELECT record_referral(lower(:'code_a'), 3, '{"phone": "9100 0003", "device": "dev-3"}') AS typed_in_lower_case;
SELECT record_referral(referral_code(3, 'abuse'), 4, '{"device": "dev-3"}') AS device_of_another_customer;
SELECT record_referral(:'code_a', 5) AS cap_reached;
SELECT record_referral(:'code_a', 8) AS cap_again;
-- rings: 1 -> 2 and 2 -> 1; 1 -> 3 -> 17 and 17 -> 1
SELECT record_referral(referral_code(2, 'abuse'), 1) AS ring_2;
SELECT record_referral(referral_code(3, 'abuse'), 17) AS chain;
SELECT record_referral(referral_code(17, 'abuse'), 1) AS ring_3;
-- mistyped and unknown codes are kept too, without program and referrer
SELECT record_referral(overlay(:'code_a' placing (CASE WHEN substr(:'code_a', 4, 1) = 'A' THEN 'B' ELSE 'A' END) from 4 for 1), 9) AS typo;
SELECT record_referral('hello', 9) AS not_a_code;
SELECT record_referral('', 9) AS empty;
SELECT record_referral(wam_internal.referral_code_make(decode(repeat('00', 32), 'hex'), 2, 1, 0), 9) AS never_issued;
SELECT id, program_id, referrer_id, invitee_id, status, reason, detail FROM referral ORDER BY id;
SELECT customer_id, status, accepted, qualified FROM referrer WHERE program_id = (SELECT id FROM referral_program WHERE name = 'abuse') ORDER BY 1;
SELECT customer_id, kind FROM customer_fingerprint ORDER BY 1, 2;
-- bad input: errors, nothing recorded
SELECT record_referral(NULL, 2);
SELECT record_referral(:'code_a', NULL::bigint);
SELECT record_referral(:'code_a', 9999);
SELECT record_referral(:'code_a', 9, '[]');
SELECT record_referral(:'code_a', NULL::text);
SELECT record_referral(:'code_a', '123');
INSERT INTO referral (code, invitee_id) VALUES (NULL, 2);
-- the trigger function only works as the BEFORE INSERT row trigger of wam.referral
CREATE TABLE public.not_referral (LIKE wam.referral);
CREATE TRIGGER misplaced BEFORE INSERT ON public.not_referral FOR EACH ROW EXECUTE FUNCTION wam_internal.referral_check_trigger();
CREATE TRIGGER misplaced_after AFTER INSERT ON wam.referral FOR EACH ROW EXECUTE FUNCTION wam_internal.referral_check_trigger();
DO $$
BEGIN
	INSERT INTO public.not_referral (code, invitee_id) VALUES ('x', 2);
EXCEPTION WHEN OTHERS THEN
	RAISE NOTICE '% %', SQLSTATE, SQLERRM;
END $$;
DO $$
BEGIN
	INSERT INTO wam.referral (code, invitee_id) VALUES ('x', 2);
EXCEPTION WHEN OTHERS THEN
	RAISE NOTICE '% %', SQLSTATE, SQLERRM;
END $$;
SELECT wam_internal.referral_check_trigger();
DROP TRIGGER misplaced_after ON wam.referral;
DROP TABLE public.not_referral;
SELECT count(*) AS attempts FROM referral;
-- sign-up by phone: the invitee becomes a customer
SELECT record_referral(referral_code(10, 'abuse'), '+852 6000 0001') AS by_phone;
SELECT c.id, c.phone, r.status FROM referral r JOIN customer c ON c.id = r.invitee_id WHERE c.phone = '85260000001';
SELECT record_referral(referral_code(10, 'abuse'), '+852 6000 0001') AS same_phone_again;
-- ring depth: with ring_depth 3 a ring of 3 people is caught, one of 4 is not
SELECT create_referral_program('rings', '{"ring_depth": 3}') AS id;
SELECT record_referral(referral_code(11, 'rings'), 12), record_referral(referral_code(12, 'rings'), 13),
	   record_referral(referral_code(13, 'rings'), 14);
SELECT record_referral(referral_code(13, 'rings'), 11) AS ring_of_3, record_referral(referral_code(14, 'rings'), 11) AS ring_of_4;
-- an inactive program
SELECT create_referral_program('later', format('{"starts_at": "%s"}', now() + interval '1 day')::jsonb) AS id;
SELECT create_referral_program('over', format('{"starts_at": "2020-01-01", "ends_at": "%s"}', now() - interval '1 second')::jsonb) AS id;
SELECT record_referral(referral_code(15, 'later'), 16) AS not_started, record_referral(referral_code(15, 'over'), 16) AS ended;
-- an attempt while the program is not running changes nothing of the referrer
SELECT p.name, r.accepted, cardinality(r.recent_attempts) AS attempt_times
FROM referrer r JOIN referral_program p ON p.id = r.program_id WHERE r.customer_id = 15 ORDER BY 1;

-- several attempts in one statement: each row's checks see the rows before it
INSERT INTO customer (id, phone, created_at) SELECT g, (85293000000 + g)::text, now() FROM generate_series(3001, 3500) g;
SELECT create_referral_program('multi', '{"cap": 2}') AS id;
SELECT referral_code(3001, 'multi') AS code_m \gset
INSERT INTO referral (code, invitee_id) VALUES (:'code_m', 3002), (:'code_m', 3003), (:'code_m', 3002), (:'code_m', 3004)
RETURNING invitee_id, status, reason;
SELECT accepted, cardinality(recent_attempts) AS attempt_times FROM referrer WHERE code = :'code_m';

-- many attempts of one referrer in one transaction: its row's versions fill
-- the page, and the updates that move to another page add index entries;
-- 400 attempt times (3.2 kB) are more than a row keeps inline: TOAST
SELECT create_referral_program('busy', '{"cap": 1000, "velocity_per_hour": 1000}') AS id;
SELECT referral_code(3010, 'busy') AS code_busy \gset
BEGIN;
SELECT count(*) FILTER (WHERE record_referral(:'code_busy', g) = 'pending') AS pending
FROM generate_series(3011, 3410) g;
SELECT n_tup_upd >= 400 AS updated, n_tup_upd > n_tup_hot_upd AS some_moved_to_another_page
FROM pg_stat_xact_user_tables WHERE relid = 'wam.referrer'::regclass;
COMMIT;
SELECT record_referral(:'code_busy', 3411) AS found_by_its_code_after_the_move;
SELECT pg_column_size(recent_attempts) < 401 * 8 AS attempt_times_compressed_or_toasted FROM referrer WHERE code = :'code_busy';
SELECT accepted, cardinality(recent_attempts) AS attempt_times FROM referrer WHERE code = :'code_busy';
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS amcheck;
RESET client_min_messages;
SELECT c.relname, bt_index_check(c.oid, true)::text = '' AS every_row_indexed
FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
WHERE i.indrelid IN ('wam.referrer'::regclass, 'wam.customer_fingerprint'::regclass) ORDER BY 1;

-- velocity (R-F5): more than velocity_per_hour invitations in a rolling hour
-- freeze the referrer, send the pending ones to review and open a review item
SELECT create_referral_program('burst', '{"velocity_per_hour": 3, "flat_cost_cap": 1000}') AS id;
SELECT referral_code(20, 'burst') AS code_b \gset
SELECT record_referral(:'code_b', 21) AS a, record_referral(:'code_b', 20) AS b, record_referral(:'code_b', 22) AS c;
SELECT record_referral(:'code_b', 23) AS fourth;
SELECT record_referral(:'code_b', 24) AS while_frozen, record_referral(:'code_b', 20) AS self_while_frozen;
SELECT invitee_id, status, reason, detail FROM referral WHERE program_id = (SELECT id FROM referral_program WHERE name = 'burst') ORDER BY id;
SELECT r.status, r.accepted, (SELECT count(*) FROM referral_review v WHERE v.referrer_id = 20 AND v.resolved_at IS NULL) AS open_reviews,
	   (SELECT details FROM referral_review v WHERE v.referrer_id = 20) AS details
FROM referrer r WHERE r.customer_id = 20 AND r.program_id = (SELECT id FROM referral_program WHERE name = 'burst');
-- the invitee of a referral under review orders: it stays under review
SELECT record_order(21, 300);
SELECT status FROM referral WHERE program_id = (SELECT id FROM referral_program WHERE name = 'burst') AND invitee_id = 21;
-- accepting the review: back to pending, qualified at once when the invitee already ordered
SELECT resolve_referral_review((SELECT id FROM referral_review WHERE referrer_id = 20), true, 'influencer with a real audience');
SELECT invitee_id, status, reason FROM referral WHERE program_id = (SELECT id FROM referral_program WHERE name = 'burst') ORDER BY id;
SELECT status, frozen_at IS NULL AS unfrozen, velocity_since IS NOT NULL AS velocity_reset, accepted, qualified
FROM referrer WHERE customer_id = 20 AND program_id = (SELECT id FROM referral_program WHERE name = 'burst');
SELECT resolve_referral_review((SELECT id FROM referral_review WHERE referrer_id = 20), false);
SELECT resolve_referral_review(9999, true);
SELECT resolve_referral_review(NULL, true);
-- after the review the count starts again; a second burst, rejected in review, frees the cap slots
SELECT record_referral(:'code_b', 25) AS a, record_referral(:'code_b', 26) AS b, record_referral(:'code_b', 27) AS c,
	   record_referral(:'code_b', 28) AS d;
SELECT accepted FROM referrer WHERE customer_id = 20 AND program_id = (SELECT id FROM referral_program WHERE name = 'burst');
SELECT resolve_referral_review((SELECT id FROM referral_review WHERE referrer_id = 20 AND resolved_at IS NULL), false, 'bought accounts');
SELECT invitee_id, status, reason, detail FROM referral WHERE program_id = (SELECT id FROM referral_program WHERE name = 'burst') AND invitee_id >= 25 ORDER BY id;
SELECT status, accepted FROM referrer WHERE customer_id = 20 AND program_id = (SELECT id FROM referral_program WHERE name = 'burst');
SELECT id, kind, resolution, note FROM referral_review ORDER BY id;

-- qualification (R-F5) and tiers (R-F3): the first order must reach the
-- minimum within the window; a tier reached creates a reward with a unique
-- redemption code, within the cost cap (R-F4) or held
SELECT create_referral_program('tiers', '{"min_order": 199, "flat_cost_cap": 60, "tiers": [{"at": 1, "reward": "coupon", "cost": 50}, {"at": 3, "reward": "sample", "cost": 8}, {"at": 4, "reward": "product", "cost": 60}]}') AS id;
SELECT referral_code(30, 'tiers') AS code_t \gset
SELECT record_referral(:'code_t', g) FROM generate_series(31, 36) g;
SELECT record_order(31, 199);		-- exactly the minimum: qualifies, tier 1
SELECT record_order(32, 198.99);	-- just below: lapses
SELECT record_order(32, 500);		-- a later order does not count: the first one decides
SELECT record_order(33, 250);		-- 2 qualified: no tier at 2
SELECT invitee_id, status, reason, detail, order_id IS NOT NULL AS has_order FROM referral WHERE program_id = (SELECT id FROM referral_program WHERE name = 'tiers') ORDER BY id;
SELECT tier, reward, cost, status, reason, cost_cap, spent_before, notify_status,
	   redemption_code ~ '^[0-9A-HJKMNP-TV-Z]{13}$' AS code_shape
FROM referral_reward WHERE program_id = (SELECT id FROM referral_program WHERE name = 'tiers') ORDER BY tier;
SELECT record_order(34, 1000);		-- 3 qualified: tier 3 (50 + 8 <= 60) issued
-- the order window: an order later than qualify_window after the referral lapses it
UPDATE referral SET created_at = now() - interval '31 days' WHERE program_id = (SELECT id FROM referral_program WHERE name = 'tiers') AND invitee_id = 35;
SELECT record_order(35, 1000);
SELECT record_order(36, 300);		-- 4 qualified: tier 4 (58 + 60 > 60) held, not silently issued
SELECT tier, reward, cost, status, reason, cost_cap, spent_before, notify_status FROM referral_reward WHERE program_id = (SELECT id FROM referral_program WHERE name = 'tiers') ORDER BY tier;
SELECT invitee_id, status, reason, detail FROM referral WHERE program_id = (SELECT id FROM referral_program WHERE name = 'tiers') AND invitee_id = 35;
SELECT count(DISTINCT redemption_code) AS distinct_codes FROM referral_reward;
SELECT accepted, qualified FROM referrer WHERE customer_id = 30 AND program_id = (SELECT id FROM referral_program WHERE name = 'tiers');
-- an administrator decides the held reward
SELECT decide_referral_reward((SELECT id FROM referral_reward WHERE program_id = (SELECT id FROM referral_program WHERE name = 'tiers') AND tier = 4), true, 'loyal referrer') AS decided;
SELECT tier, status, reason, notify_status FROM referral_reward WHERE program_id = (SELECT id FROM referral_program WHERE name = 'tiers') AND tier = 4;
SELECT decide_referral_reward((SELECT id FROM referral_reward WHERE program_id = (SELECT id FROM referral_program WHERE name = 'tiers') AND tier = 4), false);
SELECT decide_referral_reward(9999, true);
SELECT decide_referral_reward(NULL, true);

-- refunds (order deleted, or reduced below the minimum) within the hold period
-- revoke the qualification and the rewards above the new count
SELECT tier, status FROM referral_reward WHERE program_id = (SELECT id FROM referral_program WHERE name = 'tiers') ORDER BY tier;
UPDATE customer_order SET amount = 300 WHERE customer_id = 36;		-- still above the minimum: stands
SELECT status FROM referral WHERE program_id = (SELECT id FROM referral_program WHERE name = 'tiers') AND invitee_id = 36;
UPDATE customer_order SET amount = 100 WHERE customer_id = 36;		-- partial refund below the minimum
SELECT invitee_id, status, reason, detail FROM referral WHERE program_id = (SELECT id FROM referral_program WHERE name = 'tiers') AND invitee_id = 36;
SELECT tier, status, reason, notify_status FROM referral_reward WHERE program_id = (SELECT id FROM referral_program WHERE name = 'tiers') ORDER BY tier;
DELETE FROM customer_order WHERE customer_id = 34;					-- full refund
SELECT tier, status, reason, notify_status FROM referral_reward WHERE program_id = (SELECT id FROM referral_program WHERE name = 'tiers') ORDER BY tier;
SELECT accepted, qualified FROM referrer WHERE customer_id = 30 AND program_id = (SELECT id FROM referral_program WHERE name = 'tiers');
-- after the hold period a refund no longer revokes
UPDATE referral SET qualified_at = now() - interval '15 days' WHERE program_id = (SELECT id FROM referral_program WHERE name = 'tiers') AND invitee_id = 31;
DELETE FROM customer_order WHERE customer_id = 31;
SELECT invitee_id, status FROM referral WHERE program_id = (SELECT id FROM referral_program WHERE name = 'tiers') AND invitee_id IN (31, 33, 34) ORDER BY 1;
SELECT tier, status FROM referral_reward WHERE program_id = (SELECT id FROM referral_program WHERE name = 'tiers') ORDER BY tier, status;

-- the cost cap from the lifetime value: cost_cap_share x LTV of the referrer
-- (the same LTV as wam.cost_cap); a referrer without orders has a budget of 0
SELECT create_referral_program('clv', '{"cost_cap_share": 0.15, "min_order": 0, "tiers": [{"at": 1, "reward": "coupon", "cost": 10}]}') AS id;
SELECT record_order(40, 400, now() - interval '60 days'), record_order(40, 600, now() - interval '10 days');
SELECT record_referral(referral_code(40, 'clv'), 41), record_referral(referral_code(42, 'clv'), 43);
SELECT record_order(41, 20);
SELECT w.referrer_id, w.status, w.cost, w.cost_cap = round(0.15 * (SELECT d.clv FROM cost_cap_detail(w.referrer_id) d), 2) AS cap_is_15pct_of_clv,
	   w.cost_cap > w.cost AS within_budget, w.reason, w.notify_status
FROM referral_reward w WHERE w.program_id = (SELECT id FROM referral_program WHERE name = 'clv') ORDER BY 1;
SELECT record_order(43, 20);
SELECT w.referrer_id, w.status, w.cost, w.cost_cap, w.reason, w.notify_status
FROM referral_reward w WHERE w.program_id = (SELECT id FROM referral_program WHERE name = 'clv') AND w.referrer_id = 42;

-- the rolling-hour attempt times kept in the referrer row: within the hour,
-- in order (a late-locking older attempt is inserted in place), the newest
-- velocity + 1
SELECT wam_internal.referral_attempts('{}', '2026-01-01 12:00', 3);
SELECT wam_internal.referral_attempts('{2026-01-01 10:59, 2026-01-01 11:00:01, 2026-01-01 11:30}', '2026-01-01 12:00', 3);
SELECT wam_internal.referral_attempts('{2026-01-01 11:10, 2026-01-01 11:20, 2026-01-01 11:30, 2026-01-01 11:40}', '2026-01-01 11:35', 3);
SELECT wam_internal.referral_attempts('{2026-01-01 11:10, NULL}', '2026-01-01 11:35', 0);
SELECT wam_internal.referral_attempts('{{2026-01-01 11:10}}', '2026-01-01 11:35', 3);
SELECT wam_internal.referral_attempts(NULL, '2026-01-01 11:35', 3) IS NULL AS strict;

-- several orders in one statement qualify several referrals
SELECT record_referral(referral_code(44, 'clv'), g) FROM generate_series(45, 47) g;
INSERT INTO customer_order (customer_id, ordered_at, amount) SELECT g, now(), 10 FROM generate_series(45, 47) g;
SELECT invitee_id, status FROM referral WHERE referrer_id = 44 ORDER BY 1;

-- deleting a referrer (their customer row) takes their code and referrals along
SELECT count(*) AS referrals_of_44 FROM referral WHERE referrer_id = 44;
DELETE FROM customer WHERE id = 44;
SELECT count(*) AS referrals_of_44 FROM referral WHERE referrer_id = 44;
SELECT count(*) AS codes_of_44 FROM referrer WHERE customer_id = 44;

-- fingerprints from order details are remembered
SELECT record_order(50, 10, now(), false, '{"device": "dev-50"}');
SELECT record_referral(referral_code(50, 'main'), 51, '{"device": "dev-50"}') AS shared_device_from_order;

-- report (R-F6): a program whose referred customers churn
SELECT create_referral_program('report', '{"min_order": 100, "flat_cost_cap": 1000, "tiers": [{"at": 1, "reward": "coupon", "cost": 20}, {"at": 2, "reward": "sample", "cost": 8}]}') AS id;
SELECT record_referral(referral_code(52, 'report'), g) FROM generate_series(53, 57) g;
SELECT record_referral(referral_code(52, 'report'), 52);
SELECT record_order(53, 150), record_order(54, 250), record_order(55, 120), record_order(56, 50);
-- one referred customer comes back within 30 days, two do not
INSERT INTO event (customer_id, kind, occurred_at) VALUES (53, 'message_read', now() + interval '3 days');
INSERT INTO event (customer_id, kind, occurred_at) VALUES (54, 'message_read', now() + interval '40 days');
SELECT * FROM referral_report('report', now() - interval '1 day', now() + interval '31 days');
-- consenting again and opting out are not activity: churn stays; a click is
INSERT INTO event (customer_id, kind, occurred_at) VALUES
	(55, 'opt_out', now() + interval '2 days'), (55, 'consent', now() + interval '2 days');
SELECT metric, value, note FROM referral_report('report', now() - interval '1 day', now() + interval '31 days')
WHERE metric IN ('retention 30d', 'first-month churn', 'flagged');
INSERT INTO event (customer_id, kind, occurred_at) VALUES (55, 'link_click', now() + interval '2 days');
SELECT metric, value, note FROM referral_report('report', now() - interval '1 day', now() + interval '31 days')
WHERE metric IN ('retention 30d', 'first-month churn', 'flagged');
DELETE FROM event WHERE customer_id = 55 AND kind IN ('opt_out', 'consent', 'link_click');
-- before 30 days have passed nobody counts yet
SELECT metric, value, note FROM referral_report('report', now() - interval '1 day', now() + interval '1 day')
WHERE metric IN ('retention 30d', 'first-month churn', 'flagged', 'roi', 'revenue');
-- an empty period
SELECT metric, item, value FROM referral_report('report', '2000-01-01', '2000-02-01') WHERE value <> 0 OR value IS NULL;
SELECT * FROM referral_report('report', NULL, now());
SELECT * FROM referral_report('report', '2026-01-01', '2026-01-01');
SELECT * FROM referral_report('nope', now(), now() + interval '1 day');
SELECT * FROM referral_report(NULL, now(), now() + interval '1 day');
SELECT metric, value, note FROM referral_report('retail', now() - interval '1 day', now() + interval '1 day') WHERE metric = 'conversion';

-- the referrer's message (R-F2): an issued reward queues a template message
-- to the referrer in wam.outbox, in the same transaction, under the queue's
-- rules; a refusal is recorded on the reward and never fails the order
-- settings: reward_template and sender, each bad input refused
SELECT create_referral_program('x', '{"reward_template": "referral_reward"}');
SELECT create_referral_program('x', '{"reward_template": {"name": "referral_reward"}}');
SELECT create_referral_program('x', '{"reward_template": {"name": "referral_reward", "language": "en", "header": "x"}}');
SELECT create_referral_program('x', '{"reward_template": {"name": "Referral Reward", "language": "en"}}');
SELECT create_referral_program('x', '{"reward_template": {"name": "referral_reward", "language": "English"}}');
SELECT create_referral_program('x', '{"reward_template": {"name": "referral_reward", "language": "en", "parameters": "{redemption_code}"}}');
SELECT create_referral_program('x', '{"reward_template": {"name": "referral_reward", "language": "en", "parameters": ["{redemption_code}", " "]}}');
SELECT create_referral_program('x', '{"reward_template": {"name": "referral_reward", "language": "en", "parameters": ["{redemption_code}", 5]}}');
SELECT create_referral_program('x', '{"reward_template": {"name": "referral_reward", "language": "en", "fallbacks": {"first_name": 1}}}');
SELECT create_referral_program('x', '{"reward_template": {"name": "referral_reward", "language": "en", "fallbacks": []}}');
SELECT create_referral_program('x', '{"reward_template": {"name": "referral_reward", "language": "en", "parameters": ["{redemption_code}", "{rewrad}"]}}');
SELECT create_referral_program('x', '{"reward_template": {"name": "referral_reward", "language": "en", "parameters": ["{reward}"]}}');
SELECT create_referral_program('x', '{"reward_template": {"name": "referral_reward", "language": "en", "parameters": []}}');
SELECT create_referral_program('x', '{"sender": 1}');
SELECT create_referral_program('x', '{"sender": "nope"}');
SELECT count(*) AS programs FROM referral_program WHERE name = 'x';
-- parameters default to {reward} and {redemption_code}; fallbacks to none
SELECT configure_referral_program('main', '{"reward_template": {"name": "referral_reward", "language": "pt_BR"}}') -> 'reward_template' AS completed;
SELECT configure_referral_program('main', '{"reward_template": null}') -> 'reward_template' AS removed;

INSERT INTO customer (id, phone, name, created_at) SELECT g, (85292000000 + g)::text, 'Ana Lima ' || g, now() FROM generate_series(101, 130) g;
UPDATE customer SET name = NULL WHERE id = 110;
SELECT record_consent(g, 'test') IS NOT NULL AS consented FROM generate_series(101, 103) g;
SELECT create_referral_program('notify', '{"min_order": 100, "flat_cost_cap": 100, "tiers": [{"at": 1, "reward": "20-unit coupon", "cost": 20}, {"at": 2, "reward": "sample", "cost": 30}, {"at": 3, "reward": "full-size product", "cost": 90}], "reward_template": {"name": "referral_reward", "language": "en", "parameters": ["{first_name}", "{reward}", "{redemption_code}"], "fallbacks": {"first_name": "friend"}}}') AS id;
SELECT referral_code(101, 'notify') AS code_n \gset
-- no sender exists yet: the reward is issued, its message is not configured
SELECT record_referral(:'code_n', 111), record_order(111, 150) > 0 AS ordered;
SELECT tier, status, notify_status, notify_detail, message_id FROM referral_reward WHERE referrer_id = 101;
SELECT count(*) AS messages FROM outbox;
SELECT create_sender('shop', '106540352242922', 'EAAsecret-token-1', 'app-secret-1', 'https://graph.example/v23.0') AS sender_id;
-- an administrator queues it after fixing the cause
SELECT notify_referral_reward(id) FROM referral_reward WHERE referrer_id = 101 AND tier = 1;
-- the message: a template to the referrer (who never wrote to the business, so
-- free text would be refused), from the only sender, linked to the reward
SELECT w.tier, w.notify_status, w.notify_detail, o.customer_id, o.recipient, s.name AS sender, o.campaign, o.variant,
	   o.priority, o.status, c.last_inbound_at, o.expires_at,
	   replace(o.payload::text, w.redemption_code, '<redemption code>') AS payload,
	   strpos(o.payload::text, w.redemption_code) > 0 AS carries_the_code
FROM referral_reward w JOIN outbox o USING (message_id) JOIN sender s USING (sender_id) JOIN customer c ON c.id = o.customer_id
WHERE w.referrer_id = 101;
SELECT check_payload(payload) AS is_template FROM outbox;
-- tier 2 in a transaction that rolls back: neither the reward nor its message remain
BEGIN;
SELECT record_referral(:'code_n', 112), record_order(112, 150) > 0 AS ordered;
SELECT tier, notify_status FROM referral_reward WHERE referrer_id = 101 ORDER BY tier;
SELECT count(*) AS messages FROM outbox;
ROLLBACK;
SELECT count(*) AS rewards, (SELECT count(*) FROM outbox) AS messages FROM referral_reward WHERE referrer_id = 101;
-- idempotent: a tier crossed once is one message, whatever happens to the order
SELECT record_order(111, 300) > 0 AS second_order;
UPDATE customer_order SET amount = 160 WHERE customer_id = 111;
UPDATE customer_order SET amount = 160 WHERE customer_id = 111;
SELECT wam_internal.referral_grant_rewards((SELECT id FROM referral_program WHERE name = 'notify'), 101) AS new_rewards;
SELECT record_referral(:'code_n', 111) AS same_invitee_again;
SELECT count(*) AS rewards, (SELECT count(*) FROM outbox WHERE campaign = 'referral:notify') AS messages
FROM referral_reward WHERE referrer_id = 101;
-- tier 2 issued at once; tier 3 over the cost cap: held, nothing queued;
-- queued when an administrator issues it
SELECT record_referral(:'code_n', 112), record_order(112, 150) > 0 AS ordered;
SELECT record_referral(:'code_n', 113), record_order(113, 150) > 0 AS ordered;
SELECT w.tier, w.status, w.notify_status, w.message_id IS NOT NULL AS linked, o.variant,
	   o.payload #>> '{template,components,0,parameters,1,text}' AS reward_text,
	   o.payload #>> '{template,components,0,parameters,2,text}' = w.redemption_code AS code_matches
FROM referral_reward w LEFT JOIN outbox o USING (message_id) WHERE w.referrer_id = 101 ORDER BY w.tier;
SELECT count(*) AS messages FROM outbox;
SELECT decide_referral_reward(id, true, 'top referrer') FROM referral_reward WHERE referrer_id = 101 AND tier = 3;
SELECT w.tier, w.status, w.reason, w.notify_status, o.variant, o.status
FROM referral_reward w JOIN outbox o USING (message_id) WHERE w.referrer_id = 101 AND w.tier = 3;
SELECT count(*) AS messages, count(DISTINCT payload) AS distinct_payloads FROM outbox WHERE campaign = 'referral:notify';

-- the queue refuses: the reward is issued, the message not queued, and why
SELECT record_order(104, 500) > 0 AS referrer_has_orders;		-- no consent
SELECT record_consent(105, 'test') IS NOT NULL, record_opt_out(105, 'STOP') AS cancelled;		-- opted out
SELECT record_referral(referral_code(104, 'notify'), 114), record_order(114, 150) > 0 AS ordered;
SELECT record_referral(referral_code(105, 'notify'), 115), record_order(115, 150) > 0 AS ordered;
-- a placeholder without value: {name} of a customer without name, no fallback
SELECT configure_referral_program('notify', '{"reward_template": {"name": "referral_reward", "language": "en", "parameters": ["{name}", "{redemption_code}"]}}') -> 'reward_template' -> 'parameters' AS parameters;
SELECT record_consent(110, 'test') IS NOT NULL AS consented;
SELECT record_referral(referral_code(110, 'notify'), 116), record_order(116, 150) > 0 AS ordered;
SELECT referrer_id, tier, status, notify_status, notify_detail, message_id FROM referral_reward
WHERE referrer_id IN (104, 105, 110) ORDER BY referrer_id;
SELECT count(*) AS messages FROM outbox WHERE customer_id IN (104, 105, 110);
SELECT invitee_id, status FROM referral WHERE invitee_id IN (114, 115, 116) ORDER BY 1;
-- consent given later: the administrator notifies again
SELECT record_consent(104, 'store') IS NOT NULL AS consented;
SELECT notify_referral_reward(id) FROM referral_reward WHERE referrer_id = 104;
SELECT w.notify_status, w.notify_detail, o.customer_id, o.payload #>> '{template,components,0,parameters,0,text}' AS name
FROM referral_reward w JOIN outbox o USING (message_id) WHERE w.referrer_id = 104;
SELECT notify_referral_reward(id) FROM referral_reward WHERE referrer_id = 105;
SELECT notify_status, notify_detail FROM referral_reward WHERE referrer_id = 105;
-- a fallback for the missing name
SELECT configure_referral_program('notify', '{"reward_template": {"name": "referral_reward", "language": "en", "parameters": ["{name}", "{redemption_code}"], "fallbacks": {"name": "friend"}}}') -> 'reward_template' -> 'fallbacks' AS fallbacks;
SELECT notify_referral_reward(id) FROM referral_reward WHERE referrer_id = 110;
SELECT w.notify_status, w.notify_detail, o.payload #>> '{template,components,0,parameters,0,text}' AS name
FROM referral_reward w JOIN outbox o USING (message_id) WHERE w.referrer_id = 110;

-- several senders: the program must name one
SELECT create_sender('backup', '106540352242923', 'EAAsecret-token-2', 'app-secret-2', 'https://graph.example/v23.0') AS sender_id;
SELECT record_consent(106, 'test') IS NOT NULL AS consented;
SELECT record_referral(referral_code(106, 'notify'), 117), record_order(117, 150) > 0 AS ordered;
SELECT notify_status, notify_detail FROM referral_reward WHERE referrer_id = 106;
SELECT configure_referral_program('notify', '{"sender": "backup"}') ->> 'sender' AS sender;
SELECT notify_referral_reward(id) FROM referral_reward WHERE referrer_id = 106;
SELECT s.name AS sender, o.campaign FROM referral_reward w JOIN outbox o USING (message_id) JOIN sender s USING (sender_id)
WHERE w.referrer_id = 106;
-- a program without reward_template: not configured, never an error
SELECT record_consent(107, 'test') IS NOT NULL AS consented;
SELECT create_referral_program('quiet', '{"min_order": 0, "flat_cost_cap": 100, "tiers": [{"at": 1, "reward": "coupon", "cost": 5}]}') AS id;
SELECT record_referral(referral_code(107, 'quiet'), 118), record_order(118, 1) > 0 AS ordered;
SELECT status, notify_status, notify_detail, message_id FROM referral_reward WHERE referrer_id = 107;

-- notify_referral_reward: only issued rewards whose message is not on its way
SELECT notify_referral_reward(id) FROM referral_reward WHERE referrer_id = 101 AND tier = 1;
SELECT notify_referral_reward(NULL);
SELECT notify_referral_reward(9999);
SELECT notify_referral_reward(id) FROM referral_reward WHERE status = 'held' ORDER BY id LIMIT 1;
SELECT notify_referral_reward(id) FROM referral_reward WHERE status = 'revoked' ORDER BY id LIMIT 1;
-- a message that failed (e.g. the template was not approved) may be sent again
UPDATE outbox SET status = 'failed', failed_at = now(), error_code = 132001, error_detail = 'template name does not exist'
WHERE message_id = (SELECT message_id FROM referral_reward WHERE referrer_id = 106);
SELECT message_id AS failed_message FROM referral_reward WHERE referrer_id = 106 \gset
SELECT notify_referral_reward(id) FROM referral_reward WHERE referrer_id = 106;
SELECT w.notify_status, w.message_id <> :failed_message AS new_message, o.status
FROM referral_reward w JOIN outbox o USING (message_id) WHERE w.referrer_id = 106;
-- a purged message is not sent again blindly: it may have arrived
BEGIN;
DELETE FROM outbox WHERE message_id = (SELECT message_id FROM referral_reward WHERE referrer_id = 106);
SELECT notify_referral_reward(id) FROM referral_reward WHERE referrer_id = 106;
ROLLBACK;

-- a refund within the hold period revokes the reward and cancels its waiting
-- message; a message already sent stays as it is, and the reward says so
SELECT w.tier, o.status FROM referral_reward w JOIN outbox o USING (message_id) WHERE w.referrer_id = 101 ORDER BY w.tier;
UPDATE outbox SET status = 'sent', sending_at = now(), sent_at = now()
WHERE message_id = (SELECT message_id FROM referral_reward WHERE referrer_id = 101 AND tier = 2);
DELETE FROM customer_order WHERE customer_id = 113;
SELECT w.tier, w.status, w.notify_status, w.notify_detail, o.status AS message_status, o.error_detail
FROM referral_reward w LEFT JOIN outbox o USING (message_id) WHERE w.referrer_id = 101 ORDER BY w.tier;
DELETE FROM customer_order WHERE customer_id = 112;
SELECT w.tier, w.status, w.notify_status, w.notify_detail, o.status AS message_status
FROM referral_reward w LEFT JOIN outbox o USING (message_id) WHERE w.referrer_id = 101 ORDER BY w.tier;
-- a refused message of a revoked reward: cancelled as well
DELETE FROM customer_order WHERE customer_id = 115;
SELECT status, notify_status, notify_detail FROM referral_reward WHERE referrer_id = 105;
-- a message the referrer's opt-out cancelled: cancelled as well
SELECT record_opt_out(104, 'STOP') AS cancelled_messages;
DELETE FROM customer_order WHERE customer_id = 114;
SELECT w.status, w.notify_status, w.notify_detail, o.status AS message_status, o.error_detail
FROM referral_reward w JOIN outbox o USING (message_id) WHERE w.referrer_id = 104;

-- roles: readers read and report, operators issue codes and record referrals,
-- administrators manage programs and decide reviews; nobody reads the secret
CREATE ROLE wam_ref_reader IN ROLE wam_reader;
CREATE ROLE wam_ref_operator IN ROLE wam_operator;
CREATE ROLE wam_ref_admin IN ROLE wam_admin;
CREATE ROLE wam_ref_nobody;
GRANT USAGE ON SCHEMA wam TO wam_ref_nobody;
SET ROLE wam_ref_reader;
SELECT metric, value FROM referral_report('report', now() - interval '1 day', now() + interval '1 day') WHERE metric = 'invitations';
SELECT count(*) > 0 AS reads_referrals FROM referral;
SELECT secret FROM referral_secret;
SELECT count(*) FROM customer_fingerprint;
SELECT record_referral(referral_code(1, 'main'), 58);
SELECT referral_code(1, 'main');
SELECT count(*) > 0 AS reads_rewards FROM referral_reward WHERE notify_status = 'queued';
SELECT notify_referral_reward(1);
UPDATE referral_reward SET notify_status = 'refused';
RESET ROLE;
SET ROLE wam_ref_operator;
SELECT referral_code(1, 'main') AS code_1, length(referral_link(1, 'main')) > 0 AS link;
SELECT record_referral(referral_code(58, 'abuse'), 59);
SELECT record_fingerprint(58, '{"device": "x"}');
SELECT wam_internal.referral_code_make(decode(repeat('00', 32), 'hex'), 1, 1, 0);
SELECT secret FROM referral_secret;
INSERT INTO referral (code, invitee_id) VALUES ('x', 59);
UPDATE referrer SET accepted = 0;
SELECT create_referral_program('op');
SELECT resolve_referral_review(1, true);
SELECT decide_referral_reward(1, true);
-- the reward's message: operators cannot queue, re-queue or fake it
SELECT notify_referral_reward(1);
SELECT wam_internal.referral_reward_enqueue(w, p) FROM referral_reward w, referral_program p WHERE w.id = 1 AND p.id = w.program_id;
SELECT wam_internal.referral_grant_rewards(1, 1);
UPDATE referral_reward SET notify_status = 'refused', message_id = NULL;
INSERT INTO outbox (sender_id, customer_id, recipient, payload) VALUES (1, 1, '85291000001', '{}');
-- but an order they record queues the message through the definer path
SELECT record_consent(108, 'operator') IS NOT NULL AS consented;
SELECT record_referral(referral_code(108, 'notify'), 119), record_order(119, 150) > 0 AS ordered;
RESET ROLE;
SELECT w.status, w.notify_status, o.customer_id, o.campaign FROM referral_reward w JOIN outbox o USING (message_id) WHERE w.referrer_id = 108;
SET ROLE wam_ref_admin;
SELECT create_referral_program('admin made') > 0 AS created;
SELECT configure_referral_program('admin made', '{"cap": 5}') ->> 'cap' AS cap;
SELECT notify_referral_reward(id) FROM referral_reward WHERE referrer_id = 107;
SELECT wam_internal.referral_reward_enqueue(w, p) FROM referral_reward w, referral_program p WHERE w.id = 1 AND p.id = w.program_id;
SELECT secret FROM referral_secret;
RESET ROLE;
SET ROLE wam_ref_nobody;
SELECT referral_report('report', now(), now() + interval '1 day');
SELECT referral_code(1, 'main');
SELECT * FROM referral;
RESET ROLE;
-- the SECURITY DEFINER functions pin their search_path
SELECT p.oid::regprocedure AS definer_without_pinned_path
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname IN ('wam', 'wam_internal') AND p.prosecdef
  AND NOT coalesce(p.proconfig @> ARRAY['search_path=pg_catalog, wam, pg_temp'], false)
ORDER BY 1;
DROP ROLE wam_ref_reader, wam_ref_operator, wam_ref_admin;
REVOKE USAGE ON SCHEMA wam FROM wam_ref_nobody;
DROP ROLE wam_ref_nobody;

-- the trigger looks its tables up once per session, and again after DDL: in
-- this session (which used it above) a re-created extension works at once
SET client_min_messages = warning;
DROP EXTENSION pg_wamarketing CASCADE;
CREATE EXTENSION pg_wamarketing;
RESET client_min_messages;
INSERT INTO customer (id, phone) VALUES (1, '85291000001'), (2, '85291000002');
SELECT create_referral_program('again') AS id;
SELECT record_referral(referral_code(1, 'again'), 2, '{"device": "d"}') AS after_recreate;
SELECT invitee_id, status FROM referral;
SELECT customer_id, kind FROM customer_fingerprint;

-- the settings are stored once, as columns: the document configure returns is
-- the one rebuilt from them, times included (given in another zone)
SELECT create_referral_program('doc', '{"starts_at": "2026-01-01 00:00+08", "ends_at": "2027-01-01", "benchmark": {"conversion": 0.3}}') AS id;
CREATE TEMP TABLE doc AS SELECT configure_referral_program('doc', '{"cap": 12, "min_order": 80.50}') AS s;
SELECT d.s = referral_program_settings(p) AS stored_once, d.s ->> 'starts_at' AS starts_at,
	   d.s ->> 'ends_at' AS ends_at, d.s -> 'min_order' AS min_order, p.cap, p.benchmark, p.reward_template, p.sender
FROM doc d, referral_program p WHERE p.name = 'doc';
SELECT referral_program_settings(NULL::referral_program) -> 'cap' AS null_program_cap;
DROP EXTENSION amcheck;
