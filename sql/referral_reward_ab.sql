-- the reward A/B test of referral programs (issue 19, item 4): variants drawn
-- per referrer by a keyed hash, recorded on the rewards, and the report that
-- compares them by the invitees' first order value (Welch) and 30-day
-- retention (two proportions), with the decision in words
SET client_min_messages = warning;
DROP EXTENSION pg_wamarketing CASCADE;
CREATE EXTENSION pg_wamarketing;
RESET client_min_messages;
SET search_path = public, wam;
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';
SET extra_float_digits = 0;
\set VERBOSITY default
\set SHOW_CONTEXT never
UPDATE referral_secret SET secret = decode(repeat('5a', 32), 'hex');

-- referrers 1..400, invitees from 1001 on
INSERT INTO customer (id, phone, created_at) SELECT g, (85291000000 + g)::text, now() FROM generate_series(1, 400) g;
INSERT INTO customer (id, phone, created_at) SELECT g, (85292000000 + g)::text, now() FROM generate_series(1001, 3000) g;

-- settings: two or more named variants, each with its own tiers or the program's
SELECT jsonb_pretty(create_referral_program('x', '{"reward_variants": [{"name": "discount"}, {"name": "trial"}]}')::text::jsonb) IS NOT NULL AS created;
SELECT reward_variants FROM referral_program WHERE name = 'x';
SELECT configure_referral_program('x', '{"reward_variants": [{"name": " discount ", "tiers": [{"at": 1, "reward": "20% off", "cost": 10}]},
	{"name": "trial", "tiers": [{"at": 1, "reward": "7-day trial", "cost": 8}, {"at": 3, "reward": "30-day trial", "cost": 20}]}]}') -> 'reward_variants' AS variants;
SELECT configure_referral_program('x', '{"reward_variants": null}') -> 'reward_variants' AS no_test;
SELECT reward_variants IS NULL AS no_test_stored FROM referral_program WHERE name = 'x';
-- bad variants: each refused, nothing changed
SELECT configure_referral_program('x', '{"reward_variants": {"name": "a"}}');
SELECT configure_referral_program('x', '{"reward_variants": [{"name": "a"}]}');
SELECT configure_referral_program('x', '{"reward_variants": []}');
SELECT configure_referral_program('x', jsonb_build_object('reward_variants', (SELECT jsonb_agg(jsonb_build_object('name', 'v' || g)) FROM generate_series(1, 11) g)));
SELECT configure_referral_program('x', '{"reward_variants": [{"name": "a"}, "b"]}');
SELECT configure_referral_program('x', '{"reward_variants": [{"name": "a"}, {"label": "b"}]}');
SELECT configure_referral_program('x', '{"reward_variants": [{"name": "a"}, {"name": "  "}]}');
SELECT configure_referral_program('x', '{"reward_variants": [{"name": "a"}, {"name": 7}]}');
SELECT configure_referral_program('x', jsonb_build_object('reward_variants', jsonb_build_array('{"name": "a"}'::jsonb, jsonb_build_object('name', repeat('b', 41)))));
SELECT configure_referral_program('x', '{"reward_variants": [{"name": "a"}, {"name": "b", "cost": 3}]}');
SELECT configure_referral_program('x', '{"reward_variants": [{"name": "Trial"}, {"name": "trial"}]}');
SELECT configure_referral_program('x', '{"reward_variants": [{"name": "a"}, {"name": "b", "tiers": []}]}');
SELECT configure_referral_program('x', '{"reward_variants": [{"name": "a"}, {"name": "b", "tiers": [{"at": 0, "reward": "x", "cost": 1}]}]}');
SELECT configure_referral_program('x', '{"reward_variants": [{"name": "a"}, {"name": "b", "tiers": [{"at": 2, "reward": "x", "cost": 1}, {"at": 2, "reward": "y", "cost": 1}]}]}');
SELECT configure_referral_program('x', '{"tiers": []}');
SELECT reward_variants IS NULL AS unchanged FROM referral_program WHERE name = 'x';

-- the draw: deterministic (a keyed hash of referrer and program, the same on
-- every machine), about half each, and a different draw per program
SELECT create_referral_program('holds', '{"min_order": 0, "cap": 100, "flat_cost_cap": 1000,
	"reward_variants": [{"name": "discount", "tiers": [{"at": 1, "reward": "20% off", "cost": 10}]},
						{"name": "trial", "tiers": [{"at": 1, "reward": "7-day trial", "cost": 8}]}]}') AS holds;
SELECT create_referral_program('fails', '{"min_order": 0, "cap": 100, "flat_cost_cap": 1000,
	"reward_variants": [{"name": "discount", "tiers": [{"at": 1, "reward": "20% off", "cost": 10}]},
						{"name": "trial", "tiers": [{"at": 1, "reward": "7-day trial", "cost": 8}]}]}') AS fails;
SELECT string_agg(left(referral_reward_variant(g, 'holds'), 1), '' ORDER BY g) AS holds_1_to_30,
	   string_agg(left(referral_reward_variant(g, 'fails'), 1), '' ORDER BY g) AS fails_1_to_30
FROM generate_series(1, 30) g;
SELECT referral_reward_variant(g, 'holds') AS variant, count(*) FROM generate_series(1, 10000) g GROUP BY 1 ORDER BY 1;
SELECT referral_reward_variant(1, 'main');
SELECT referral_reward_variant(NULL, 'holds');
SELECT referral_reward_variant(1, NULL);
SELECT referral_reward_variant(1, 'x') IS NULL AS no_test;

-- The case where the claim holds: 100 referrers with 3 invitees each; the
-- invitees of trial referrers spend 130 +- 20 on their first order, those of
-- discount referrers 100 +- 20 (the same spread); a third of the trial
-- invitees and a quarter of the discount ones order again within 30 days.
-- The case where it does not: the same, with 105 against 100.
CREATE FUNCTION pg_temp.invite(program text, referrers int4range, first_invitee integer, trial_base numeric,
							   discount_base numeric) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
	r integer;
	i integer := first_invitee;
	j integer;
	v text;
BEGIN
	FOR r IN SELECT g FROM generate_series(lower(referrers), upper(referrers) - 1) g LOOP
		v := referral_reward_variant(r, program);
		FOR j IN 1 .. 3 LOOP
			PERFORM record_referral(referral_code(r, program), i::bigint);
			INSERT INTO customer_order (customer_id, ordered_at, amount)
			VALUES (i, now() + interval '1 day', CASE v WHEN 'trial' THEN trial_base ELSE discount_base END + (i % 5 - 2) * 10);
			IF (v = 'trial' AND i % 3 = 0) OR (v = 'discount' AND i % 4 = 0) THEN
				INSERT INTO customer_order (customer_id, ordered_at, amount) VALUES (i, now() + interval '20 days', 50);
			ELSIF i % 7 = 0 THEN
				-- a second order, but later than 30 days: not retained
				INSERT INTO customer_order (customer_id, ordered_at, amount) VALUES (i, now() + interval '32 days', 50);
			END IF;
			i := i + 1;
		END LOOP;
	END LOOP;
END
$$;
SELECT pg_temp.invite('holds', '[1, 101)', 1001, 130, 100);
SELECT pg_temp.invite('fails', '[101, 201)', 1301, 105, 100);
SELECT status, count(*) FROM referral GROUP BY 1;
-- the variant is recorded on each reward, with that variant's reward
SELECT p.name, w.variant, w.reward, w.status, count(*)
FROM referral_reward w JOIN referral_program p ON p.id = w.program_id GROUP BY 1, 2, 3, 4 ORDER BY 1, 2;
SELECT count(*) AS recorded_as_drawn FROM referral_reward w JOIN referral_program p ON p.id = w.program_id
WHERE w.variant = referral_reward_variant(w.referrer_id, p.name);

-- the report, 45 days on (every first order is 44 days old: retention is
-- measured).  Checked against SciPy 1.10.1 on the same first orders
-- (scipy.stats.ttest_ind(trial, discount, equal_var=False) and, for the
-- margin, ttest_ind(trial, 1.15 * discount, equal_var=False,
-- alternative='greater'); scipy.stats.t.interval(0.95, n - 1, mean, sem)):
--   holds (180 trial, 120 discount first orders): p = 9.6209465e-46, margin p = 1.0414042e-13,
--     95 % intervals trial 127.6339 .. 131.8106, discount 97.8561 .. 102.9772
--   fails (168 trial, 132 discount): p = 0.002571112, margin p = 0.99999997,
--     95 % intervals trial 102.8075 .. 107.1925, discount 97.6024 .. 102.3976
SELECT variant, referrers, invitees, first_orders, mean_value, value_ci_low, value_ci_high, round(lift::numeric, 4) AS lift,
	   round(p_value::numeric, 8) AS p_value, round(margin_p_value::numeric, 8) AS margin_p_value, retention_base, retained,
	   retention, round(retention_p_value::numeric, 4) AS retention_p_value, decision
FROM referral_reward_report('holds', now() + interval '45 days');
SELECT variant, referrers, invitees, first_orders, mean_value, value_ci_low, value_ci_high, round(lift::numeric, 4) AS lift,
	   round(p_value::numeric, 8) AS p_value, round(margin_p_value::numeric, 8) AS margin_p_value, retention_base, retained,
	   retention, round(retention_p_value::numeric, 4) AS retention_p_value, decision
FROM referral_reward_report('fails', now() + interval '45 days');
SELECT p.name, abs(r.p_value / p.p - 1) < 1e-6 AND abs(r.margin_p_value / p.pm - 1) < 1e-6 AS as_scipy
FROM (VALUES ('holds', 9.6209465e-46, 1.0414042e-13), ('fails', 0.002571112, 0.99999997)) p(name, p, pm),
	 LATERAL referral_reward_report(p.name, now() + interval '45 days') r
WHERE r.variant = 'trial';
-- before 30 days have passed since the first orders: retention not measured yet
SELECT variant, retention_base, retained, retention, retention_p_value, decision
FROM referral_reward_report('holds', now() + interval '30 days');
-- before any first order: invitees, no first orders
SELECT variant, invitees, first_orders, mean_value, p_value, decision FROM referral_reward_report('holds', now());
-- a stricter margin (30 %) is not shown; a looser alpha shows the 5 % case
SELECT variant, round(margin_p_value::numeric, 4) AS margin_p_value, decision
FROM referral_reward_report('holds', now() + interval '45 days', 0.30) WHERE variant = 'trial';
SELECT variant, round(margin_p_value::numeric, 4) AS margin_p_value, decision
FROM referral_reward_report('fails', now() + interval '45 days', 0, 0.2) WHERE variant = 'trial';

-- edge cases
-- no invitees at all
SELECT create_referral_program('empty', '{"reward_variants": [{"name": "discount"}, {"name": "trial"}]}') AS empty;
SELECT * FROM referral_reward_report('empty');
-- one arm empty: only discount referrers invited
SELECT create_referral_program('one arm', '{"min_order": 0, "reward_variants": [{"name": "discount"}, {"name": "trial"}]}') AS one_arm;
SELECT record_referral(referral_code(g, 'one arm'), (2000 + g)::bigint)
FROM generate_series(201, 230) g WHERE referral_reward_variant(g, 'one arm') = 'discount';
INSERT INTO customer_order (customer_id, ordered_at, amount)
SELECT r.invitee_id, now() + interval '1 day', 100 + r.invitee_id % 7 FROM referral r JOIN referral_program p ON p.id = r.program_id WHERE p.name = 'one arm';
SELECT variant, referrers > 0 AS has_referrers, first_orders > 0 AS has_orders, mean_value IS NOT NULL AS has_mean, p_value, decision
FROM referral_reward_report('one arm', now() + interval '2 days');
-- identical arms: every referrer's invitees spend 90, 100 and 110
SELECT create_referral_program('same', '{"min_order": 0, "reward_variants": [{"name": "discount"}, {"name": "trial"}]}') AS same;
SELECT count(*) FROM (SELECT record_referral(referral_code(g, 'same'), (2100 + (g - 231) * 3 + k)::bigint)
					  FROM generate_series(231, 250) g, generate_series(0, 2) k) x;
INSERT INTO customer_order (customer_id, ordered_at, amount)
SELECT r.invitee_id, now() + interval '1 day', 90 + (r.invitee_id - 2100) % 3 * 10
FROM referral r JOIN referral_program p ON p.id = r.program_id WHERE p.name = 'same';
SELECT variant, first_orders, mean_value, value_ci_low, value_ci_high, lift, p_value, round(margin_p_value::numeric, 6) AS margin_p_value, decision
FROM referral_reward_report('same', now() + interval '2 days');
-- n = 1 in each arm: a mean, no interval, no test
SELECT create_referral_program('tiny', '{"min_order": 0, "reward_variants": [{"name": "discount"}, {"name": "trial"}]}') AS tiny;
SELECT record_referral(referral_code(r, 'tiny'), i::bigint)
FROM (SELECT (SELECT min(g) FROM generate_series(251, 300) g WHERE referral_reward_variant(g, 'tiny') = 'discount'), 2200
	  UNION ALL
	  SELECT (SELECT min(g) FROM generate_series(251, 300) g WHERE referral_reward_variant(g, 'tiny') = 'trial'), 2201) v(r, i);
INSERT INTO customer_order (customer_id, ordered_at, amount) VALUES (2200, now() + interval '1 day', 80), (2201, now() + interval '1 day', 120);
SELECT variant, referrers, invitees, first_orders, mean_value, value_ci_low, value_ci_high, lift, p_value, margin_p_value, decision
FROM referral_reward_report('tiny', now() + interval '2 days');
-- three variants: each compared with the control at alpha / 2 (Bonferroni)
SELECT create_referral_program('three', '{"min_order": 0, "reward_variants": [{"name": "discount"}, {"name": "trial"}, {"name": "gift"}]}') AS three;
SELECT referral_reward_variant(g, 'three') AS variant, count(*) FROM generate_series(1, 300) g GROUP BY 1 ORDER BY 1;
SELECT variant, invitees, decision FROM referral_reward_report('three');
-- rejected invitees (here: a self-referral) do not count
SELECT record_referral(referral_code(1, 'empty'), 1::bigint);
SELECT variant, invitees FROM referral_reward_report('empty');

-- bad input
SELECT * FROM referral_reward_report(NULL);
SELECT * FROM referral_reward_report('nope');
SELECT * FROM referral_reward_report('x');
SELECT * FROM referral_reward_report('holds', NULL);
SELECT * FROM referral_reward_report('holds', now(), -0.1);
SELECT * FROM referral_reward_report('holds', now(), 0.15, 0);
SELECT * FROM referral_reward_report('holds', now(), 0.15, 1);
SELECT * FROM referral_reward_report('holds', now(), 'NaN');
SELECT * FROM referral_reward_report('holds', now(), 0.15, NULL);

-- roles: readers see the report and the draw; only admins set variants
SET ROLE wam_reader;
SELECT variant, first_orders FROM referral_reward_report('holds', now() + interval '45 days');
SELECT referral_reward_variant(1, 'holds');
SELECT configure_referral_program('holds', '{"reward_variants": null}');
SELECT wam_internal.referral_variant(p, 1) FROM referral_program p WHERE name = 'holds';
RESET ROLE;
SET ROLE wam_operator;
SELECT configure_referral_program('holds', '{"reward_variants": null}');
RESET ROLE;
