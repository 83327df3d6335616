-- src/sql/reward_test.sql: the reward A/B test of referral programs: each
-- referrer drawn into one of the program's reward_variants by a keyed hash
-- (src/ab_stats.c), the variant recorded on the referrer's rewards, and the
-- report comparing the variants by their invitees' first order value
-- (Welch's t-test) and 30-day retention (two proportions).

-- The referrer's variant: variant number ab_hash(key, referrer) mod the
-- number of variants, with a key of the program (its id, mixed with a
-- constant of its own so that it draws apart from campaign tests).  The same
-- on every machine and after a restart; NULL when the program has no test.
CREATE FUNCTION wam_internal.referral_variant(p wam.referral_program, referrer bigint) RETURNS jsonb
	LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, wam, pg_temp
RETURN p.reward_variants -> (wam_internal.ab_hash(p.id::bigint # 5921370366398841856, referrer)
							 % pg_catalog.jsonb_array_length(p.reward_variants))::integer;
COMMENT ON FUNCTION wam_internal.referral_variant(wam.referral_program, bigint) IS 'internal: the reward variant a referrer is drawn into in a program''s reward A/B test (NULL without one)';

REVOKE EXECUTE ON FUNCTION wam_internal.referral_variant(wam.referral_program, bigint) FROM PUBLIC;

CREATE FUNCTION wam.referral_reward_variant(customer bigint, program text) RETURNS text
	LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	p wam.referral_program;
BEGIN
	PERFORM wam_internal.refuse_null(customer IS NULL, 'customer');
	SELECT * INTO p FROM wam.referral_program x WHERE x.id = wam.referral_program_id(program);
	RETURN wam_internal.referral_variant(p, customer) ->> 'name';
END
$$;
COMMENT ON FUNCTION wam.referral_reward_variant(bigint, text) IS 'the reward variant of a referrer in the program''s reward A/B test (NULL: the program has no test)';

REVOKE EXECUTE ON FUNCTION wam.referral_reward_variant(bigint, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.referral_reward_variant(bigint, text) TO wam_reader;

-- The report (issue 19, item 4; seed 000: "trial rewards bring at least 15 %
-- higher order value").  Invitees are the program's referrals up to `at`
-- that the abuse checks did not reject; each counts in the variant of its
-- referrer (the one recorded on the referrer's first reward, else the one
-- the hash draws).  The first variant is the control, each other one is
-- compared with it:
--   first order value: each invitee's first order (by `at`); the mean with
--     its t confidence interval, mean +- t(1 - alpha/2, n - 1) sd / sqrt(n);
--     the lift mean / mean_control - 1; Welch's t-test of "the means differ"
--     (two-sided) and of "mean > (1 + margin) mean_control" (one-sided);
--   30-day retention: of the invitees whose first order is at least 30 days
--     before `at`, the share with another order within 30 days after it;
--     a two-sided test of two proportions (wam.lift_p_value with margin 0).
-- The variant "brings at least margin higher first orders" when the
-- one-sided p-value is below alpha / (variants - 1) (Bonferroni), with at
-- least 2 first orders in each arm.
CREATE FUNCTION wam.referral_reward_report(program text, at timestamptz DEFAULT pg_catalog.now(),
										   margin float8 DEFAULT 0.15, alpha float8 DEFAULT 0.05)
	RETURNS TABLE (variant text, referrers bigint, invitees bigint, first_orders bigint, mean_value numeric,
				   value_ci_low numeric, value_ci_high numeric, lift float8, p_value float8, margin_p_value float8,
				   retention_base bigint, retained bigint, retention numeric, retention_p_value float8,
				   decision text)
	LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_column
DECLARE
	p wam.referral_program;
	pid integer;
	k integer;
	level float8;
BEGIN
	pid := wam.referral_program_id(program);
	PERFORM wam_internal.refuse_null(at IS NULL, 'report time');
	IF margin IS NULL OR alpha IS NULL OR margin < 0 OR margin > 10 -- NaN is above every number
	   OR alpha <= 0 OR alpha >= 1 THEN
		RAISE EXCEPTION 'the margin must be a relative lift from 0 to 10 and alpha between 0 and 1 (exclusive), not % and %',
			margin, alpha USING ERRCODE = 'invalid_parameter_value';
	END IF;
	SELECT * INTO p FROM wam.referral_program x WHERE x.id = pid;
	IF p.reward_variants IS NULL THEN
		RAISE EXCEPTION 'referral program "%" has no reward A/B test', p.name
			USING ERRCODE = 'object_not_in_prerequisite_state',
				  HINT = 'Give it reward_variants with wam.configure_referral_program().';
	END IF;
	k := jsonb_array_length(p.reward_variants);
	level := alpha / (k - 1);
	RETURN QUERY
	WITH arms AS (
		SELECT e.value ->> 'name' AS variant, e.ordinality AS ord
		FROM jsonb_array_elements(p.reward_variants) WITH ORDINALITY e
	), inv AS (
		SELECT r.referrer_id, r.invitee_id,
			   coalesce((SELECT w.variant FROM wam.referral_reward w
						 WHERE w.program_id = pid AND w.referrer_id = r.referrer_id AND w.variant IS NOT NULL
						 ORDER BY w.created_at, w.id LIMIT 1),
						wam_internal.referral_variant(p, r.referrer_id) ->> 'name') AS variant
		FROM wam.referral r
		WHERE r.program_id = pid AND r.status <> 'rejected' AND r.created_at <= at
	), firsts AS (
		SELECT i.variant, i.referrer_id, o.amount, o.ordered_at,
			   EXISTS (SELECT FROM wam.customer_order k2
					   WHERE k2.customer_id = i.invitee_id AND k2.order_id <> o.order_id
						 AND k2.ordered_at >= o.ordered_at AND k2.ordered_at <= o.ordered_at + interval '30 days') AS again
		FROM inv i
		LEFT JOIN LATERAL (SELECT k1.order_id, k1.amount, k1.ordered_at FROM wam.customer_order k1
						   WHERE k1.customer_id = i.invitee_id AND k1.ordered_at <= at
						   ORDER BY k1.ordered_at, k1.order_id LIMIT 1) o ON true
	), agg AS (
		SELECT a.variant, a.ord, count(DISTINCT f.referrer_id) AS referrers, count(f.variant) AS invitees,
			   count(f.amount) AS buyers, avg(f.amount) AS mean, stddev_samp(f.amount)::float8 AS sd,
			   count(*) FILTER (WHERE f.ordered_at <= at - interval '30 days') AS base,
			   count(*) FILTER (WHERE f.ordered_at <= at - interval '30 days' AND f.again) AS kept
		FROM arms a LEFT JOIN firsts f ON f.variant = a.variant
		GROUP BY a.variant, a.ord
	), cmp AS (
		SELECT g.*, c.variant AS c_variant, c.invitees AS c_invitees, c.buyers AS c_buyers, c.mean AS c_mean, c.base AS c_base, c.kept AS c_kept,
			   CASE WHEN g.ord > 1 AND c.mean > 0 THEN (g.mean / c.mean - 1)::float8 END AS lift,
			   CASE WHEN g.ord > 1 AND g.base > 0 AND c.base > 0
					THEN wam.lift_p_value(g.kept, g.base, c.kept, c.base, 0) END AS rp,
			   CASE WHEN g.ord > 1 THEN w0.p_two_sided END AS p2, CASE WHEN g.ord > 1 THEN wm.p_greater END AS pm
		FROM agg g CROSS JOIN (SELECT * FROM agg WHERE agg.ord = 1) c
		LEFT JOIN LATERAL wam.welch_test(g.mean::float8, g.sd, g.buyers, c.mean::float8, c.sd, c.buyers) w0 ON true
		LEFT JOIN LATERAL wam.welch_test(g.mean::float8, g.sd, g.buyers, c.mean::float8, c.sd, c.buyers, margin) wm ON true
	), res AS (
		SELECT x.*, CASE WHEN x.rp IS NOT NULL THEN least(1, 2 * least(x.rp, 1 - x.rp)) END AS rp2
		FROM cmp x
	)
	SELECT r.variant, r.referrers, r.invitees, r.buyers, round(r.mean, 2),
		   CASE WHEN r.buyers >= 2 THEN round(r.mean - (wam_internal.student_t_quantile(1 - alpha / 2, r.buyers - 1)
														 * r.sd / sqrt(r.buyers))::numeric, 2) END,
		   CASE WHEN r.buyers >= 2 THEN round(r.mean + (wam_internal.student_t_quantile(1 - alpha / 2, r.buyers - 1)
														 * r.sd / sqrt(r.buyers))::numeric, 2) END,
		   r.lift, r.p2, r.pm, r.base, r.kept,
		   CASE WHEN r.base > 0 THEN round(r.kept::numeric / r.base, 4) END, r.rp2,
		   CASE
			   WHEN r.ord = 1 THEN format('control: the other variants are compared with %s', r.variant)
			   WHEN r.invitees = 0 AND r.c_buyers = 0 AND (SELECT count(*) FROM inv) = 0 THEN 'no invitees yet: nothing to compare'
			   WHEN r.invitees = 0 OR r.c_invitees = 0 THEN
				   format('no invitees in %s yet: nothing to compare', CASE WHEN r.invitees = 0 THEN r.variant ELSE r.c_variant END)
			   WHEN r.buyers < 2 OR r.c_buyers < 2 THEN
				   format('too few first orders to compare: %s has %s, %s has %s (at least 2 each)',
						  r.variant, r.buyers, r.c_variant, r.c_buyers)
			   WHEN r.pm < level THEN
				   format('%s brings %s %% higher first orders than %s: at least %s %% higher (p %s, below %s)',
						  r.variant, round(r.lift::numeric * 100, 1), r.c_variant, round(margin::numeric * 100, 1),
						  wam_internal.p_words(r.pm), round(level::numeric, 4))
			   WHEN r.p2 < level AND r.mean < r.c_mean THEN
				   format('%s brings %s %% lower first orders than %s (p %s, below %s)',
						  r.variant, round(-r.lift::numeric * 100, 1), r.c_variant, wam_internal.p_words(r.p2),
						  round(level::numeric, 4))
			   ELSE
				   format('not shown that %s brings at least %s %% higher first orders than %s: %s higher observed (p %s, not below %s)',
						  r.variant, round(margin::numeric * 100, 1), r.c_variant,
						  coalesce(round(r.lift::numeric * 100, 1) || ' %', 'none'), wam_internal.p_words(r.pm),
						  round(level::numeric, 4))
		   END
		   || CASE WHEN r.ord = 1 THEN ''
				   WHEN r.rp2 IS NULL THEN '; 30-day retention not measured yet'
				   ELSE format('; 30-day retention %s %% against %s %% (p %s)', round(100.0 * r.kept / r.base, 1),
							   round(100.0 * r.c_kept / r.c_base, 1), wam_internal.p_words(r.rp2)) END
	FROM res r
	ORDER BY r.ord;
END
$$;
COMMENT ON FUNCTION wam.referral_reward_report(text, timestamptz, float8, float8) IS 'the reward A/B test of a referral program: per variant its invitees'' first order value (mean, confidence interval, lift, Welch''s t-test against the control, two-sided and against the margin) and 30-day retention (two-proportion test), and the decision in words';

REVOKE EXECUTE ON FUNCTION wam.referral_reward_report(text, timestamptz, float8, float8) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.referral_reward_report(text, timestamptz, float8, float8) TO wam_reader;

-- A p-value in words: "= 0.0123", or "< 0.0001"
CREATE FUNCTION wam_internal.p_words(p float8) RETURNS text
	LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
RETURN CASE WHEN p IS NULL THEN 'n/a' WHEN p < 0.0001 THEN '< 0.0001' ELSE '= ' || round(p::numeric, 4)::text END;
COMMENT ON FUNCTION wam_internal.p_words(float8) IS 'internal: a p-value as text, "= " and 4 decimals, or "< 0.0001"';

REVOKE EXECUTE ON FUNCTION wam_internal.p_words(float8) FROM PUBLIC;
