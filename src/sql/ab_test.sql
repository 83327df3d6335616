-- src/sql/ab_test.sql: A/B tests of campaigns: variants, test groups and a
-- holdout drawn by a keyed hash, the decision by statistics at the end of the
-- test window (src/ab_stats.c), the rollout of the winner to the rest, and
-- the report per variant.

-- statistics

CREATE FUNCTION wam_internal.normal_cdf(z float8) RETURNS float8
	AS 'MODULE_PATHNAME', 'wam_normal_cdf' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION wam_internal.normal_cdf(float8) IS 'internal: the standard normal distribution function';
REVOKE EXECUTE ON FUNCTION wam_internal.normal_cdf(float8) FROM PUBLIC;

CREATE FUNCTION wam_internal.normal_quantile(p float8) RETURNS float8
	AS 'MODULE_PATHNAME', 'wam_normal_quantile' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION wam_internal.normal_quantile(float8) IS 'internal: the quantile of the standard normal distribution (0 < p < 1)';
REVOKE EXECUTE ON FUNCTION wam_internal.normal_quantile(float8) FROM PUBLIC;

CREATE FUNCTION wam_internal.chi2_sf(x float8, df integer) RETURNS float8
	AS 'MODULE_PATHNAME', 'wam_chi2_sf' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION wam_internal.chi2_sf(float8, integer) IS 'internal: P(X > x) for a chi-squared law with df degrees of freedom';
REVOKE EXECUTE ON FUNCTION wam_internal.chi2_sf(float8, integer) FROM PUBLIC;

CREATE FUNCTION wam_internal.ab_hash(key bigint, customer bigint) RETURNS bigint
	AS 'MODULE_PATHNAME', 'wam_ab_hash' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION wam_internal.ab_hash(bigint, bigint) IS 'internal: a keyed hash of a customer id, the same on every machine (arms, test groups, holdouts)';
REVOKE EXECUTE ON FUNCTION wam_internal.ab_hash(bigint, bigint) FROM PUBLIC;

CREATE FUNCTION wam.lift_p_value(x_best bigint, n_best bigint, x_other bigint, n_other bigint,
								 margin float8 DEFAULT 0.15) RETURNS float8
	AS 'MODULE_PATHNAME', 'wam_lift_p_value' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION wam.lift_p_value(bigint, bigint, bigint, bigint, float8) IS 'one-sided p-value that a rate of x_best in n_best is more than (1 + margin) times x_other in n_other (Wald test on Agresti-Caffo adjusted rates)';
REVOKE EXECUTE ON FUNCTION wam.lift_p_value(bigint, bigint, bigint, bigint, float8) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.lift_p_value(bigint, bigint, bigint, bigint, float8) TO wam_reader;

CREATE FUNCTION wam.test_sample_size(baseline float8, lift float8 DEFAULT 0.15, alpha float8 DEFAULT 0.05,
									 power float8 DEFAULT 0.8) RETURNS integer
	AS 'MODULE_PATHNAME', 'wam_test_sample_size' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION wam.test_sample_size(float8, float8, float8, float8) IS 'recipients per arm needed to tell a rate from one lift higher: two-sided test at alpha with the given power';
REVOKE EXECUTE ON FUNCTION wam.test_sample_size(float8, float8, float8, float8) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.test_sample_size(float8, float8, float8, float8) TO wam_reader;

CREATE FUNCTION wam_internal.student_t_cdf(t float8, df float8) RETURNS float8
	AS 'MODULE_PATHNAME', 'wam_student_t_cdf' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION wam_internal.student_t_cdf(float8, float8) IS 'internal: P(T <= t) for Student''s t law with df (not necessarily whole) degrees of freedom';
REVOKE EXECUTE ON FUNCTION wam_internal.student_t_cdf(float8, float8) FROM PUBLIC;

CREATE FUNCTION wam_internal.student_t_quantile(p float8, df float8) RETURNS float8
	AS 'MODULE_PATHNAME', 'wam_student_t_quantile' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION wam_internal.student_t_quantile(float8, float8) IS 'internal: the quantile of Student''s t law with df degrees of freedom (0 < p < 1)';
REVOKE EXECUTE ON FUNCTION wam_internal.student_t_quantile(float8, float8) FROM PUBLIC;

CREATE FUNCTION wam.welch_test(mean_a float8, sd_a float8, n_a bigint, mean_b float8, sd_b float8, n_b bigint,
							   margin float8 DEFAULT 0, OUT t float8, OUT df float8, OUT p_greater float8,
							   OUT p_two_sided float8)
	AS 'MODULE_PATHNAME', 'wam_welch_test' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION wam.welch_test(float8, float8, bigint, float8, float8, bigint, float8) IS 'Welch''s t-test from each arm''s mean, sample standard deviation and size: p_greater that mean a is more than (1 + margin) times mean b, p_two_sided that they differ (NULL for an arm of fewer than 2)';
REVOKE EXECUTE ON FUNCTION wam.welch_test(float8, float8, bigint, float8, float8, bigint, float8) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.welch_test(float8, float8, bigint, float8, float8, bigint, float8) TO wam_reader;

-- tests

-- The other variants of a campaign: its own template and vars are variant A,
-- the control; B, C, ... are added here while it is a draft.
CREATE TABLE wam.campaign_variant (
	campaign_id integer NOT NULL REFERENCES wam.campaign ON DELETE CASCADE,
	variant text NOT NULL CONSTRAINT campaign_variant_name CHECK (variant ~ '^[B-J]$'),
	template jsonb NOT NULL,
	vars jsonb,
	PRIMARY KEY (campaign_id, variant)
);
COMMENT ON TABLE wam.campaign_variant IS 'the variants B, C, ... of a campaign under test (variant A, the control, is the campaign''s own template)';

REVOKE ALL ON wam.campaign_variant FROM PUBLIC;
GRANT SELECT ON wam.campaign_variant TO wam_reader;
GRANT SELECT, INSERT ON wam.campaign_variant TO wam_definer;

CREATE TABLE wam.campaign_test (
	campaign_id integer PRIMARY KEY REFERENCES wam.campaign ON DELETE CASCADE,
	metric text NOT NULL DEFAULT 'read'
		CONSTRAINT campaign_test_metric CHECK (metric IN ('read', 'reply', 'click', 'conversion')),
	threshold integer NOT NULL DEFAULT 2000 CONSTRAINT campaign_test_threshold CHECK (threshold >= 0),
	group_size integer NOT NULL DEFAULT 1000 CONSTRAINT campaign_test_group_size CHECK (group_size BETWEEN 10 AND 10000000),
	test_window interval NOT NULL DEFAULT '1 hour'
		CONSTRAINT campaign_test_window CHECK (test_window BETWEEN interval '10 minutes' AND interval '7 days'),
	lift float8 NOT NULL DEFAULT 0.15 CONSTRAINT campaign_test_lift CHECK (lift BETWEEN 0 AND 10),
	alpha float8 NOT NULL DEFAULT 0.05 CONSTRAINT campaign_test_alpha CHECK (alpha > 0 AND alpha <= 0.2),
	holdout_percent numeric NOT NULL DEFAULT 0 CONSTRAINT campaign_test_holdout CHECK (holdout_percent BETWEEN 0 AND 50),
	when_no_winner text NOT NULL DEFAULT 'control'
		CONSTRAINT campaign_test_no_winner CHECK (when_no_winner IN ('control', 'best', 'stop')),
	baseline float8 CONSTRAINT campaign_test_baseline CHECK (baseline > 0 AND baseline < 1),
	hash_key bigint NOT NULL,
	-- set at launch and by the decision
	state text NOT NULL DEFAULT 'draft'
		CONSTRAINT campaign_test_state CHECK (state IN ('draft', 'testing', 'split', 'rolled out', 'stopped')),
	needed_per_arm integer,
	decide_at timestamptz,
	last_test_message bigint,
	rest wam.segment,
	holdout wam.segment,
	override text,
	overridden_by name,
	winner text,
	decided_at timestamptz,
	decision jsonb
);
COMMENT ON TABLE wam.campaign_test IS 'the A/B test of a campaign: its settings, test groups and holdout, the decision and the rollout';
COMMENT ON COLUMN wam.campaign_test.threshold IS 'audiences above this size are tested on groups of group_size per variant and the rest gets the winner; smaller ones are split among the variants';
COMMENT ON COLUMN wam.campaign_test.lift IS 'the relative lift the best variant must beat every other one by (0.15: 15 %)';
COMMENT ON COLUMN wam.campaign_test.baseline IS 'the expected rate of the metric for the power calculation (NULL: measured from the last 30 days, else a default)';
COMMENT ON COLUMN wam.campaign_test.hash_key IS 'the key of the hashes that draw the arms, test groups and holdout (setting seed; random by default)';
COMMENT ON COLUMN wam.campaign_test.rest IS 'the audience held back for the winner';

REVOKE ALL ON wam.campaign_test FROM PUBLIC;
GRANT SELECT ON wam.campaign_test TO wam_reader;
GRANT SELECT, INSERT, UPDATE ON wam.campaign_test TO wam_definer;

-- A campaign's variants in order: A (the campaign's own template), then B, C, ...
CREATE FUNCTION wam_internal.campaign_arms(c wam.campaign)
	RETURNS TABLE (variant text, ord integer, template jsonb, vars jsonb)
	LANGUAGE sql STABLE SET search_path = pg_catalog, wam, pg_temp
AS $$
	SELECT 'A', 0, c.template, c.vars
	UNION ALL
	SELECT v.variant, ascii(v.variant) - ascii('A'), v.template, v.vars
	FROM wam.campaign_variant v WHERE v.campaign_id = c.campaign_id
	ORDER BY 2
$$;
COMMENT ON FUNCTION wam_internal.campaign_arms(wam.campaign) IS 'internal: a campaign''s variants, the control first';

REVOKE EXECUTE ON FUNCTION wam_internal.campaign_arms(wam.campaign) FROM PUBLIC;

CREATE FUNCTION wam_internal.campaign_test_row(c wam.campaign) RETURNS wam.campaign_test
	LANGUAGE plpgsql SET search_path = pg_catalog, wam, pg_temp
AS $$
DECLARE
	t wam.campaign_test;
BEGIN
	SELECT * INTO t FROM wam.campaign_test x WHERE x.campaign_id = c.campaign_id FOR UPDATE;
	IF NOT FOUND THEN
		-- the key of the hashes: random per campaign, kept, so the groups are
		-- the same on every machine and after a restart
		INSERT INTO wam.campaign_test (campaign_id, hash_key)
		VALUES (c.campaign_id, ('x' || translate(gen_random_uuid()::text, '-', ''))::bit(63)::bigint)
		RETURNING * INTO t;
	END IF;
	RETURN t;
END
$$;
COMMENT ON FUNCTION wam_internal.campaign_test_row(wam.campaign) IS 'internal: a campaign''s test settings, made with the defaults the first time';

REVOKE EXECUTE ON FUNCTION wam_internal.campaign_test_row(wam.campaign) FROM PUBLIC;

CREATE FUNCTION wam.add_campaign_variant(campaign text, template jsonb, vars jsonb DEFAULT NULL) RETURNS text
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	c wam.campaign;
	v text;
BEGIN
	c := wam_internal.campaign_row(campaign, true);
	PERFORM wam_internal.refuse_null(template IS NULL, 'template');
	IF c.state <> 'draft' THEN
		RAISE EXCEPTION 'campaign "%" is %: variants are added to a draft', campaign, c.state
			USING ERRCODE = 'object_not_in_prerequisite_state';
	END IF;
	IF c.parent_id IS NOT NULL THEN
		RAISE EXCEPTION 'campaign "%" is a follow-up step: it cannot be tested', campaign
			USING ERRCODE = 'feature_not_supported';
	END IF;
	c.template := template; c.vars := vars;
	PERFORM wam_internal.campaign_check(c);
	PERFORM wam_internal.campaign_test_row(c);
	SELECT chr(ascii('A') + count(*)::integer + 1) INTO v FROM wam.campaign_variant x WHERE x.campaign_id = c.campaign_id;
	IF v > 'J' THEN
		RAISE EXCEPTION 'a campaign has at most 10 variants (A to J)' USING ERRCODE = 'program_limit_exceeded';
	END IF;
	INSERT INTO wam.campaign_variant (campaign_id, variant, template, vars) VALUES (c.campaign_id, v, template, vars);
	INSERT INTO wam.campaign_change (campaign_id, changed_by, action, from_state, to_state, detail)
	VALUES (c.campaign_id, session_user, 'variant added', c.state, c.state,
			jsonb_strip_nulls(jsonb_build_object('variant', v, 'template', template, 'vars', vars)));
	RETURN v;
END
$$;
COMMENT ON FUNCTION wam.add_campaign_variant(text, jsonb, jsonb) IS 'adds a variant (another template or other vars) to a draft campaign, which becomes an A/B test (its own template is variant A, the control); returns the variant''s letter';

REVOKE EXECUTE ON FUNCTION wam.add_campaign_variant(text, jsonb, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.add_campaign_variant(text, jsonb, jsonb) TO wam_operator;

CREATE FUNCTION wam.configure_campaign_test(campaign text, settings jsonb) RETURNS wam.campaign_test
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	c wam.campaign;
	t wam.campaign_test;
	k text;
	v jsonb;
	before jsonb;
BEGIN
	c := wam_internal.campaign_row(campaign, true);
	PERFORM wam_internal.refuse_null(settings IS NULL, 'settings');
	IF jsonb_typeof(settings) <> 'object' THEN
		RAISE EXCEPTION 'settings must be a JSON object' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF c.state <> 'draft' THEN
		RAISE EXCEPTION 'campaign "%" is %: only a draft''s test can be changed', campaign, c.state
			USING ERRCODE = 'object_not_in_prerequisite_state',
				  HINT = 'wam.override_campaign_test picks the winner of a running test.';
	END IF;
	t := wam_internal.campaign_test_row(c);
	before := to_jsonb(t);
	FOR k, v IN SELECT * FROM jsonb_each(settings) LOOP
		IF v = 'null' AND k <> 'baseline' THEN
			RAISE EXCEPTION 'test setting "%" cannot be cleared', k USING ERRCODE = 'null_value_not_allowed';
		END IF;
		CASE k
		WHEN 'metric' THEN t.metric := v->>0;
		WHEN 'threshold' THEN t.threshold := (v->>0)::integer;
		WHEN 'group_size' THEN t.group_size := (v->>0)::integer;
		WHEN 'test_window' THEN t.test_window := (v->>0)::interval;
		WHEN 'lift' THEN t.lift := (v->>0)::float8;
		WHEN 'alpha' THEN t.alpha := (v->>0)::float8;
		WHEN 'holdout_percent' THEN t.holdout_percent := (v->>0)::numeric;
		WHEN 'when_no_winner' THEN t.when_no_winner := v->>0;
		WHEN 'baseline' THEN t.baseline := (v->>0)::float8;
		WHEN 'seed' THEN t.hash_key := (v->>0)::bigint;
		ELSE
			RAISE EXCEPTION 'unknown test setting "%"', k
				USING ERRCODE = 'invalid_parameter_value',
					  HINT = 'Settings: metric, threshold, group_size, test_window, lift, alpha, holdout_percent, when_no_winner, baseline, seed.';
		END CASE;
	END LOOP;
	IF t.metric NOT IN ('read', 'reply', 'click', 'conversion') THEN
		RAISE EXCEPTION 'the metric must be read, reply, click or conversion, not "%"', t.metric
			USING ERRCODE = 'invalid_parameter_value';
	ELSIF t.threshold < 0 THEN
		RAISE EXCEPTION 'the threshold must be at least 0, not %', t.threshold USING ERRCODE = 'invalid_parameter_value';
	ELSIF t.group_size NOT BETWEEN 10 AND 10000000 THEN
		RAISE EXCEPTION 'a test group has 10 to 10000000 customers, not %', t.group_size USING ERRCODE = 'invalid_parameter_value';
	ELSIF t.test_window NOT BETWEEN interval '10 minutes' AND interval '7 days' THEN
		RAISE EXCEPTION 'the test window must be from 10 minutes to 7 days, not %', t.test_window
			USING ERRCODE = 'invalid_parameter_value';
	ELSIF NOT t.lift BETWEEN 0 AND 10 THEN
		RAISE EXCEPTION 'the lift must be from 0 to 10 (0.15: 15 %%), not %', t.lift USING ERRCODE = 'invalid_parameter_value';
	ELSIF NOT (t.alpha > 0 AND t.alpha <= 0.2) THEN
		RAISE EXCEPTION 'alpha must be above 0 and at most 0.2, not %', t.alpha USING ERRCODE = 'invalid_parameter_value';
	ELSIF t.holdout_percent NOT BETWEEN 0 AND 50 THEN
		RAISE EXCEPTION 'the holdout is 0 to 50 percent of the audience, not %', t.holdout_percent
			USING ERRCODE = 'invalid_parameter_value';
	ELSIF t.when_no_winner NOT IN ('control', 'best', 'stop') THEN
		RAISE EXCEPTION 'when_no_winner must be control, best or stop, not "%"', t.when_no_winner
			USING ERRCODE = 'invalid_parameter_value';
	ELSIF NOT (t.baseline > 0 AND t.baseline < 1) THEN
		RAISE EXCEPTION 'the baseline is a rate between 0 and 1, not %', t.baseline USING ERRCODE = 'invalid_parameter_value';
	END IF;
	UPDATE wam.campaign_test x SET metric = t.metric, threshold = t.threshold, group_size = t.group_size,
		   test_window = t.test_window, lift = t.lift, alpha = t.alpha, holdout_percent = t.holdout_percent,
		   when_no_winner = t.when_no_winner, baseline = t.baseline, hash_key = t.hash_key
	WHERE x.campaign_id = c.campaign_id
	RETURNING * INTO t;
	INSERT INTO wam.campaign_change (campaign_id, changed_by, action, from_state, to_state, detail)
	SELECT c.campaign_id, session_user, 'test configured', c.state, c.state,
		   (SELECT jsonb_object_agg(n.key, jsonb_build_object('from', before->n.key, 'to', n.value))
			FROM jsonb_each(to_jsonb(t)) n WHERE n.value IS DISTINCT FROM before->n.key);
	RETURN t;
END
$$;
COMMENT ON FUNCTION wam.configure_campaign_test(text, jsonb) IS 'changes a draft campaign''s test settings (metric, threshold, group_size, test_window, lift, alpha, holdout_percent, when_no_winner, baseline, seed: the key of the groups'' hashes, random by default); returns them';

REVOKE EXECUTE ON FUNCTION wam.configure_campaign_test(text, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.configure_campaign_test(text, jsonb) TO wam_operator;

-- The expected rate of a metric: the test's own baseline, else what the
-- campaign messages of the last 30 days did (when at least 200 were
-- delivered), else a common value (read 60 %, reply 5 %, click 5 %,
-- conversion 2 %).
CREATE FUNCTION wam_internal.test_baseline(t wam.campaign_test, at timestamptz, OUT rate float8, OUT source text)
	LANGUAGE plpgsql STABLE SET search_path = pg_catalog, wam, pg_temp
AS $$
DECLARE
	n bigint;
	x bigint;
BEGIN
	IF t.baseline IS NOT NULL THEN
		rate := t.baseline; source := 'set';
		RETURN;
	END IF;
	SELECT count(*), count(*) FILTER (WHERE CASE t.metric WHEN 'read' THEN o.read_at IS NOT NULL
															WHEN 'reply' THEN o.replies > 0 END)
	INTO n, x
	FROM wam.outbox o
	WHERE o.category IS NOT NULL AND o.sending_at > at - interval '30 days' AND o.sending_at <= at
	  AND o.delivered_at IS NOT NULL AND t.metric IN ('read', 'reply');
	IF n >= 200 AND x > 0 AND x < n THEN
		rate := x::float8 / n; source := 'last 30 days';
	ELSE
		rate := CASE t.metric WHEN 'read' THEN 0.6 WHEN 'reply' THEN 0.05 WHEN 'click' THEN 0.05 ELSE 0.02 END;
		source := 'default';
	END IF;
END
$$;
COMMENT ON FUNCTION wam_internal.test_baseline(wam.campaign_test, timestamptz) IS 'internal: the expected rate of a test''s metric, and where it comes from';

REVOKE EXECUTE ON FUNCTION wam_internal.test_baseline(wam.campaign_test, timestamptz) FROM PUBLIC;

-- Who is in which arm: the holdout first (hash % 10000 below the share), then
-- the arm (hash % arms) and, when the audience is above the threshold, the
-- group_size members of each arm with the lowest third hash; the rest waits
-- for the winner.  Three hashes of one key, so that the three choices are
-- independent.
CREATE FUNCTION wam_internal.test_groups(t wam.campaign_test, arms integer, audience wam.segment,
										 OUT groups wam.segment[], OUT rest wam.segment, OUT holdout wam.segment,
										 OUT testing boolean)
	LANGUAGE plpgsql STABLE SET search_path = pg_catalog, wam, pg_temp
AS $$
DECLARE
	eligible wam.segment;
BEGIN
	SELECT coalesce(wam.segment_agg(s.id), '{}') INTO holdout
	FROM wam.segment_members(audience) s(id)
	WHERE t.holdout_percent > 0 AND wam_internal.ab_hash(t.hash_key + 2, s.id) % 10000 < t.holdout_percent * 100;
	eligible := audience - holdout;
	testing := wam.segment_cardinality(eligible) > t.threshold;
	SELECT array_agg(coalesce(g.seg, '{}') ORDER BY a.i) INTO groups
	FROM generate_series(0, arms - 1) a(i)
		 LEFT JOIN (SELECT x.arm, wam.segment_agg(x.id) AS seg
					FROM (SELECT s.id, wam_internal.ab_hash(t.hash_key, s.id) % arms AS arm,
								 row_number() OVER (PARTITION BY wam_internal.ab_hash(t.hash_key, s.id) % arms
													ORDER BY wam_internal.ab_hash(t.hash_key + 1, s.id), s.id) AS rn
						  FROM wam.segment_members(eligible) s(id)) x
					WHERE NOT testing OR x.rn <= t.group_size
					GROUP BY x.arm) g ON g.arm = a.i;
	rest := eligible;
	FOR i IN 1 .. arms LOOP
		rest := rest - groups[i];
	END LOOP;
END
$$;
COMMENT ON FUNCTION wam_internal.test_groups(wam.campaign_test, integer, wam.segment) IS 'internal: the test group of each arm, the rest held for the winner and the holdout, by keyed hashes';

REVOKE EXECUTE ON FUNCTION wam_internal.test_groups(wam.campaign_test, integer, wam.segment) FROM PUBLIC;

-- What a launch at `at` queues, for a campaign with or without variants:
-- without, its summary; with, each arm's test group (or share of a small
-- audience) through the same summary with the arm's template, the holdout
-- and the rest held back.  Preview and launch both call this.
CREATE FUNCTION wam_internal.campaign_plan(c wam.campaign, audience wam.segment, at timestamptz, queue boolean,
										   OUT audience_size bigint, OUT opted_out bigint, OUT no_consent bigint,
										   OUT missing_variable bigint, OUT content_rule bigint, OUT cost_cap bigint,
										   OUT contact_policy bigint, OUT no_send_window bigint, OUT over_budget bigint,
										   OUT recipients bigint, OUT deferred bigint, OUT expected_cost numeric,
										   OUT expected_duration interval, OUT queued bigint, OUT test jsonb)
	LANGUAGE plpgsql SET search_path = pg_catalog, wam, pg_temp
AS $$
DECLARE
	t wam.campaign_test;
	g record;
	a record;
	s record;
	ca wam.campaign;
	k integer;
	rate bigint;
	per_arm jsonb := '{}';
	base record;
BEGIN
	IF NOT EXISTS (SELECT FROM wam.campaign_variant v WHERE v.campaign_id = c.campaign_id) THEN
		SELECT * INTO s FROM wam_internal.campaign_summary(c, audience, at, queue, NULL);
		audience_size := s.audience_size; opted_out := s.opted_out; no_consent := s.no_consent;
		missing_variable := s.missing_variable; content_rule := s.content_rule; cost_cap := s.cost_cap;
		contact_policy := s.contact_policy; no_send_window := s.no_send_window; over_budget := s.over_budget;
		recipients := s.recipients; deferred := s.deferred; expected_cost := s.expected_cost;
		expected_duration := s.expected_duration; queued := s.queued;
		RETURN;
	END IF;
	SELECT * INTO t FROM wam.campaign_test x WHERE x.campaign_id = c.campaign_id;
	SELECT count(*) INTO k FROM wam_internal.campaign_arms(c);
	SELECT * INTO g FROM wam_internal.test_groups(t, k, audience);
	audience_size := 0; opted_out := 0; no_consent := 0; missing_variable := 0; content_rule := 0; cost_cap := 0;
	contact_policy := 0; no_send_window := 0; over_budget := 0; recipients := 0; deferred := 0; queued := 0;
	FOR a IN SELECT * FROM wam_internal.campaign_arms(c) LOOP
		ca := c; ca.template := a.template; ca.vars := a.vars;
		-- the budget is for the rollout: the test groups are small
		ca.budget := NULL;
		SELECT * INTO s FROM wam_internal.campaign_summary(ca, g.groups[a.ord + 1], at, queue, a.variant);
		audience_size := audience_size + s.audience_size; opted_out := opted_out + s.opted_out;
		no_consent := no_consent + s.no_consent; missing_variable := missing_variable + s.missing_variable;
		content_rule := content_rule + s.content_rule; cost_cap := cost_cap + s.cost_cap;
		contact_policy := contact_policy + s.contact_policy; no_send_window := no_send_window + s.no_send_window;
		recipients := recipients + s.recipients; deferred := deferred + s.deferred; queued := queued + s.queued;
		per_arm := per_arm || jsonb_build_object(a.variant, s.recipients);
	END LOOP;
	expected_cost := recipients * c.cost_per_message;
	SELECT sum(x.rate_per_minute) INTO rate FROM wam.sender x WHERE x.sender_id = ANY (c.senders);
	expected_duration := make_interval(secs => ceil(60.0 * recipients / rate));
	base := wam_internal.test_baseline(t, at);
	test := jsonb_build_object('arms', k, 'testing', g.testing, 'recipients_per_arm', per_arm,
							   'rest', wam.segment_cardinality(g.rest), 'holdout', wam.segment_cardinality(g.holdout),
							   'metric', t.metric, 'baseline', round(base.rate::numeric, 4), 'baseline_source', base.source,
							   'needed_per_arm', wam.test_sample_size(base.rate, greatest(t.lift, 0.01)));
	-- the rest and the holdout are part of the audience, not yet counted by rule
	audience_size := audience_size + wam.segment_cardinality(g.rest) + wam.segment_cardinality(g.holdout);
	IF queue THEN
		UPDATE wam.campaign_test x SET state = CASE WHEN g.testing THEN 'testing' ELSE 'split' END,
			   decide_at = CASE WHEN g.testing THEN greatest(at, coalesce(c.starts_at, at)) + t.test_window END,
			   last_test_message = (SELECT max(o.message_id) FROM wam.outbox o WHERE o.campaign_id = c.campaign_id),
			   rest = g.rest, holdout = g.holdout, needed_per_arm = (test->>'needed_per_arm')::integer,
			   decision = jsonb_build_object('plan', test)
		WHERE x.campaign_id = c.campaign_id;
	END IF;
END
$$;
COMMENT ON FUNCTION wam_internal.campaign_plan(wam.campaign, wam.segment, timestamptz, boolean) IS 'internal: what a launch queues (each variant''s test group through the campaign rules) and the test''s plan';

REVOKE EXECUTE ON FUNCTION wam_internal.campaign_plan(wam.campaign, wam.segment, timestamptz, boolean) FROM PUBLIC;

-- The arms' figures by `at`, over the test messages: assigned (queued),
-- sent, delivered, and delivered ones that did the metric (read, replied,
-- clicked, or ordered within the attribution window).  The rates compare
-- arms within the same local-time slots: each recipient time zone is a
-- stratum, a stratum counts only when every arm delivered in it, and the
-- arms' rates are averaged over the strata with the same weights (the
-- stratum's share of the deliveries).  n_eff and x_eff are the counts a
-- single stratum with that rate and variance would have: the decision tests
-- on them (for one stratum they are the plain counts).
CREATE FUNCTION wam_internal.campaign_test_stats(c wam.campaign, t wam.campaign_test, at timestamptz)
	RETURNS TABLE (variant text, ord integer, assigned bigint, sent bigint, delivered bigint, successes bigint,
				   rate float8, variance float8, n_eff float8, x_eff float8)
	LANGUAGE sql STABLE SET search_path = pg_catalog, wam, pg_temp
AS $$
	WITH arms AS (
		SELECT a.variant, a.ord FROM wam_internal.campaign_arms(c) a
	), conv AS (
		SELECT DISTINCT x.message_id FROM wam_internal.attributed_orders(c) x
		WHERE t.metric = 'conversion' AND x.ordered_at <= at
	), m AS (
		SELECT o.variant, coalesce(o.time_zone, '') AS stratum,
			   coalesce((o.sent_at IS NOT NULL OR o.wamid IS NOT NULL) AND coalesce(o.sending_at, o.sent_at) <= at, false) AS is_sent,
			   coalesce(o.delivered_at <= at, false) AS is_delivered,
			   coalesce(CASE t.metric
							WHEN 'read' THEN o.read_at <= at
							WHEN 'reply' THEN o.replied_at <= at
							WHEN 'click' THEN EXISTS (SELECT FROM wam.event_detail d
													  WHERE d.kind = 'link_click' AND d.key = 'message_id'
														AND d.value = to_jsonb(o.message_id) AND d.occurred_at <= at)
							ELSE o.message_id IN (SELECT conv.message_id FROM conv) END, false) AS ok
		FROM wam.outbox o
		WHERE o.campaign_id = c.campaign_id AND o.message_id <= coalesce(t.last_test_message, 0) AND o.variant IS NOT NULL
	), cell AS (
		SELECT m.variant, m.stratum, count(*) FILTER (WHERE m.is_delivered) AS n,
			   count(*) FILTER (WHERE m.is_delivered AND m.ok) AS x
		FROM m GROUP BY 1, 2
	), valid AS (
		SELECT cell.stratum, sum(cell.n)::float8 AS n_s FROM cell GROUP BY 1
		HAVING count(*) FILTER (WHERE cell.n > 0) = (SELECT count(*) FROM arms)
	), std AS (
		SELECT cell.variant, sum(w.w * cell.x / cell.n) AS rate,
			   sum(w.w ^ 2 * (cell.x::float8 / cell.n) * (1 - cell.x::float8 / cell.n) / cell.n) AS var,
			   sum(cell.n) AS n
		FROM cell JOIN (SELECT v.stratum, v.n_s / sum(v.n_s) OVER () AS w FROM valid v) w USING (stratum)
		GROUP BY cell.variant
	), cnt AS (
		SELECT m.variant, count(*) AS assigned, count(*) FILTER (WHERE m.is_sent) AS sent,
			   count(*) FILTER (WHERE m.is_delivered) AS delivered,
			   count(*) FILTER (WHERE m.is_delivered AND m.ok) AS successes
		FROM m GROUP BY 1
	)
	SELECT a.variant, a.ord, coalesce(cnt.assigned, 0), coalesce(cnt.sent, 0), coalesce(cnt.delivered, 0),
		   coalesce(cnt.successes, 0), std.rate, std.var,
		   CASE WHEN std.var > 0 THEN std.rate * (1 - std.rate) / std.var ELSE std.n END,
		   CASE WHEN std.var > 0 THEN std.rate * std.rate * (1 - std.rate) / std.var ELSE std.rate * std.n END
	FROM arms a LEFT JOIN cnt USING (variant) LEFT JOIN std USING (variant)
	ORDER BY a.ord
$$;
COMMENT ON FUNCTION wam_internal.campaign_test_stats(wam.campaign, wam.campaign_test, timestamptz) IS 'internal: each arm''s counts by a time and its rate standardised over the recipients'' time zones';

REVOKE EXECUTE ON FUNCTION wam_internal.campaign_test_stats(wam.campaign, wam.campaign_test, timestamptz) FROM PUBLIC;

-- Sample-ratio mismatch: were the arms sent in the proportions they were
-- queued?  Pearson's chi-squared of the sent counts against the queued shares,
-- over the arms with anything queued; NULL until something is sent or when
-- fewer than two arms were queued.  One function for the decision and the report.
CREATE FUNCTION wam_internal.sample_ratio_p(assigned bigint[], sent bigint[]) RETURNS float8
	LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $$
	SELECT CASE WHEN t.sent > 0 AND t.arms > 1
				THEN wam_internal.chi2_sf(sum((u.s - u.a * t.sent / t.assigned) ^ 2 / nullif(u.a * t.sent / t.assigned, 0)),
										  t.arms - 1) END
	FROM unnest(assigned, sent) u(a, s),
		 LATERAL (SELECT sum(v.s)::float8 AS sent, sum(v.a)::float8 AS assigned, count(*)::integer AS arms
				  FROM unnest(assigned, sent) v(a, s) WHERE v.a > 0) t
	WHERE u.a > 0
	GROUP BY t.sent, t.assigned, t.arms
$$;
COMMENT ON FUNCTION wam_internal.sample_ratio_p(bigint[], bigint[]) IS 'internal: p-value of the sample-ratio test (chi-squared) of sent against queued counts per arm';
REVOKE EXECUTE ON FUNCTION wam_internal.sample_ratio_p(bigint[], bigint[]) FROM PUBLIC;


-- The decision (R-A1, R-A2), at the end of the test window: the arm with the
-- highest rate wins when it beats every other arm by more than the lift,
-- each comparison one-sided at alpha / (arms - 1) (Bonferroni), and every
-- arm has the deliveries the power calculation asked for.  Arms that were
-- not sent in the proportions they were queued (chi-squared, p < 0.001: a
-- template paced or paused, a sender stopped) stop the test with an alert.
-- An operator's override decides instead.  Otherwise when_no_winner does:
-- the control, the best anyway, or nothing.  The winner goes to the rest
-- through the campaign's rules, within 24 hours.
CREATE FUNCTION wam_internal.decide_campaign_test(c wam.campaign, at timestamptz) RETURNS text
	LANGUAGE plpgsql SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	t wam.campaign_test;
	stats jsonb;
	k integer;
	best record;
	r record;
	pvals jsonb := '{}';
	worst float8 := 0;
	srm float8;
	min_delivered bigint;
	qualified boolean;
	winner text;
	reason text;
	arm record;
	cw wam.campaign;
	s record;
	spent numeric;
	new_state text;
	rollout jsonb;
BEGIN
	SELECT * INTO t FROM wam.campaign_test x WHERE x.campaign_id = c.campaign_id FOR UPDATE;
	IF NOT FOUND OR t.state <> 'testing' THEN
		RETURN t.state;
	END IF;
	SELECT jsonb_agg(to_jsonb(x) ORDER BY x.ord), count(*) INTO stats, k
	FROM wam_internal.campaign_test_stats(c, t, at) x;
	-- sample ratio: sent against queued, per arm
	SELECT wam_internal.sample_ratio_p(array_agg(x.assigned), array_agg(x.sent)), min(x.delivered)
	INTO srm, min_delivered
	FROM jsonb_to_recordset(stats) x(variant text, assigned bigint, sent bigint, delivered bigint);
	SELECT x.* INTO best FROM jsonb_to_recordset(stats) x(variant text, ord integer, rate float8, n_eff float8, x_eff float8)
	WHERE x.rate IS NOT NULL ORDER BY x.rate DESC, x.ord LIMIT 1;
	IF best.variant IS NOT NULL THEN
		FOR r IN SELECT x.* FROM jsonb_to_recordset(stats) x(variant text, ord integer, rate float8, n_eff float8, x_eff float8)
				 WHERE x.variant <> best.variant ORDER BY x.ord LOOP
			pvals := pvals || jsonb_build_object(r.variant,
				wam.lift_p_value(round(best.x_eff)::bigint, round(best.n_eff)::bigint,
								 round(coalesce(r.x_eff, 0))::bigint, round(coalesce(r.n_eff, 0))::bigint, t.lift));
			worst := greatest(worst, (pvals->>r.variant)::float8);
		END LOOP;
	END IF;
	qualified := best.variant IS NOT NULL AND min_delivered >= t.needed_per_arm AND worst <= t.alpha / (k - 1)
				 AND coalesce(srm >= 0.001, true);
	IF t.override IS NOT NULL THEN
		winner := nullif(t.override, 'stop');
		reason := format('decided by %s: %s', t.overridden_by,
						 CASE WHEN winner IS NULL THEN 'stop' ELSE 'variant ' || winner END);
	ELSIF srm < 0.001 THEN
		winner := NULL;
		reason := format('the arms were not sent in the proportions they were queued (sample ratio mismatch, p = %s): the test stopped',
						 btrim(to_char(srm, '9.99EEEE')));
		PERFORM wam_internal.raise_alert('test stopped', format('campaign "%s"', c.name), reason,
										 jsonb_build_object('campaign_id', c.campaign_id, 'arms', stats));
	ELSIF qualified THEN
		winner := best.variant;
		reason := format('variant %s beat every other variant by more than %s %% of its %s rate (p <= %s each)',
						 best.variant, round((t.lift * 100)::numeric, 1), t.metric, round((t.alpha / (k - 1))::numeric, 4));
	ELSE
		winner := CASE t.when_no_winner WHEN 'control' THEN 'A' WHEN 'best' THEN coalesce(best.variant, 'A') END;
		reason := CASE WHEN best.variant IS NULL THEN 'no arm had deliveries to compare'
					   WHEN min_delivered < t.needed_per_arm
					   THEN format('too few deliveries to decide: %s in the smallest arm, %s needed', min_delivered, t.needed_per_arm)
					   ELSE format('no variant beat every other one by more than %s %% (largest p = %s, needed <= %s)',
								   round((t.lift * 100)::numeric, 1), round(worst::numeric, 4), round((t.alpha / (k - 1))::numeric, 4)) END
				  || format('; when there is no winner: %s', t.when_no_winner);
	END IF;
	new_state := CASE WHEN winner IS NULL THEN 'stopped' ELSE 'rolled out' END;
	IF winner IS NOT NULL AND wam.segment_cardinality(t.rest) > 0 THEN
		SELECT a.* INTO arm FROM wam_internal.campaign_arms(c) a WHERE a.variant = winner;
		cw := c; cw.template := arm.template; cw.vars := arm.vars; cw.starts_at := NULL;
		cw.ends_at := least(c.ends_at, at + interval '24 hours');
		IF c.budget IS NOT NULL THEN
			SELECT count(*) FILTER (WHERE o.sent_at IS NOT NULL OR o.wamid IS NOT NULL) * c.cost_per_message INTO spent
			FROM wam.outbox o WHERE o.campaign_id = c.campaign_id;
			cw.budget := greatest(c.budget - spent, 0);
		END IF;
		SELECT * INTO s FROM wam_internal.campaign_summary(cw, t.rest, at, true, winner);
		rollout := to_jsonb(s);
	END IF;
	UPDATE wam.campaign_test x SET state = new_state, winner = winner, decided_at = at,
		   decision = coalesce(t.decision, '{}') || jsonb_strip_nulls(jsonb_build_object(
				'best', best.variant, 'winner', winner, 'qualified', qualified, 'reason', reason,
				'p_values', pvals, 'alpha_per_comparison', t.alpha / (k - 1), 'lift', t.lift,
				'needed_per_arm', t.needed_per_arm, 'srm_p_value', srm, 'arms', stats, 'rollout', rollout))
	WHERE x.campaign_id = c.campaign_id;
	INSERT INTO wam.campaign_change (campaign_id, changed_by, action, from_state, to_state, detail)
	VALUES (c.campaign_id, session_user, 'test decided', c.state, c.state,
			jsonb_strip_nulls(jsonb_build_object('winner', winner, 'reason', reason, 'rollout', rollout)));
	RETURN new_state;
END
$$;
COMMENT ON FUNCTION wam_internal.decide_campaign_test(wam.campaign, timestamptz) IS 'internal: decides a campaign''s test at the end of its window and rolls the winner out to the rest';

REVOKE EXECUTE ON FUNCTION wam_internal.decide_campaign_test(wam.campaign, timestamptz) FROM PUBLIC;

CREATE FUNCTION wam.override_campaign_test(campaign text, variant text) RETURNS wam.campaign_test
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	c wam.campaign;
	t wam.campaign_test;
BEGIN
	c := wam_internal.campaign_row(campaign, false);
	PERFORM wam_internal.refuse_null(variant IS NULL, 'variant');
	SELECT * INTO t FROM wam.campaign_test x WHERE x.campaign_id = c.campaign_id FOR UPDATE;
	IF NOT FOUND OR NOT EXISTS (SELECT FROM wam.campaign_variant v WHERE v.campaign_id = c.campaign_id) THEN
		RAISE EXCEPTION 'campaign "%" has no A/B test', campaign USING ERRCODE = 'object_not_in_prerequisite_state';
	END IF;
	IF t.state NOT IN ('draft', 'testing') THEN
		RAISE EXCEPTION 'the test of campaign "%" is %: it was decided', campaign, t.state
			USING ERRCODE = 'object_not_in_prerequisite_state';
	END IF;
	IF variant <> 'stop' AND NOT EXISTS (SELECT FROM wam_internal.campaign_arms(c) a WHERE a.variant = variant) THEN
		RAISE EXCEPTION 'campaign "%" has no variant "%"', campaign, variant
			USING ERRCODE = 'invalid_parameter_value', HINT = 'Give a variant letter, or stop.';
	END IF;
	UPDATE wam.campaign_test x SET override = variant, overridden_by = session_user
	WHERE x.campaign_id = c.campaign_id RETURNING * INTO t;
	INSERT INTO wam.campaign_change (campaign_id, changed_by, action, from_state, to_state, detail)
	VALUES (c.campaign_id, session_user, 'test overridden', c.state, c.state, jsonb_build_object('variant', variant));
	RETURN t;
END
$$;
COMMENT ON FUNCTION wam.override_campaign_test(text, text) IS 'decides a campaign''s test instead of the statistics: the variant to roll out at the end of the test window, or stop';

REVOKE EXECUTE ON FUNCTION wam.override_campaign_test(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.override_campaign_test(text, text) TO wam_operator;

CREATE FUNCTION wam.preview_campaign_test(campaign text, at timestamptz DEFAULT pg_catalog.now(),
										  OUT arms integer, OUT testing boolean, OUT per_arm bigint, OUT rest bigint,
										  OUT holdout bigint, OUT metric text, OUT baseline numeric,
										  OUT baseline_source text, OUT needed_per_arm integer, OUT enough boolean,
										  OUT decide_after interval, OUT rule text)
	LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	c wam.campaign;
	t wam.campaign_test;
	g record;
	b record;
BEGIN
	c := wam_internal.campaign_row(campaign, false);
	PERFORM wam_internal.refuse_null(at IS NULL, 'at');
	SELECT * INTO t FROM wam.campaign_test x WHERE x.campaign_id = c.campaign_id;
	IF NOT FOUND OR NOT EXISTS (SELECT FROM wam.campaign_variant v WHERE v.campaign_id = c.campaign_id) THEN
		RAISE EXCEPTION 'campaign "%" has no A/B test', campaign USING ERRCODE = 'object_not_in_prerequisite_state',
			  HINT = 'wam.add_campaign_variant adds a variant.';
	END IF;
	SELECT count(*) INTO arms FROM wam_internal.campaign_arms(c);
	SELECT * INTO g FROM wam_internal.test_groups(t, arms, wam_internal.campaign_audience(c));
	testing := g.testing;
	SELECT min(wam.segment_cardinality(x)) INTO per_arm FROM unnest(g.groups) x;
	rest := wam.segment_cardinality(g.rest); holdout := wam.segment_cardinality(g.holdout);
	metric := t.metric;
	b := wam_internal.test_baseline(t, at);
	baseline := round(b.rate::numeric, 4); baseline_source := b.source;
	needed_per_arm := wam.test_sample_size(b.rate, greatest(t.lift, 0.01));
	enough := per_arm >= needed_per_arm;
	decide_after := CASE WHEN testing THEN t.test_window END;
	rule := CASE WHEN NOT testing
				 THEN format('the audience (%s) is not above %s: it is split among the %s variants, nothing is rolled out',
							 wam.segment_cardinality(wam_internal.campaign_audience(c)) - holdout, t.threshold, arms)
				 ELSE format('after %s the best variant goes to the other %s recipients if its %s rate beats every other variant''s by more than %s %% (one-sided, alpha %s each); else: %s',
							 t.test_window, rest, t.metric, round((t.lift * 100)::numeric, 1),
							 round((t.alpha / (arms - 1))::numeric, 4), t.when_no_winner) END;
END
$$;
COMMENT ON FUNCTION wam.preview_campaign_test(text, timestamptz) IS 'the A/B test a launch would start: arms, test group size, the rest and the holdout, the metric''s expected rate and the recipients per arm needed to see the lift (80 % power), and the rule';

REVOKE EXECUTE ON FUNCTION wam.preview_campaign_test(text, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.preview_campaign_test(text, timestamptz) TO wam_reader;

-- Per variant: the counts, the rate with its 95 % interval, the lift over
-- the control with its interval (log ratio), the p-value of the best beating
-- this arm by the lift, and the verdict.  As of the decision once decided,
-- else live.
CREATE FUNCTION wam.campaign_test_report(campaign text, at timestamptz DEFAULT pg_catalog.now())
	RETURNS TABLE (variant text, assigned bigint, sent bigint, delivered bigint, successes bigint, rate numeric,
				   rate_low numeric, rate_high numeric, lift numeric, lift_low numeric, lift_high numeric,
				   p_value float8, exposure text, verdict text)
	LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_column
DECLARE
	c wam.campaign;
	t wam.campaign_test;
	z float8 := wam_internal.normal_quantile(0.975);
BEGIN
	c := wam_internal.campaign_row(campaign, false);
	SELECT * INTO t FROM wam.campaign_test x WHERE x.campaign_id = c.campaign_id;
	IF NOT FOUND OR NOT EXISTS (SELECT FROM wam.campaign_variant v WHERE v.campaign_id = c.campaign_id) THEN
		RAISE EXCEPTION 'campaign "%" has no A/B test', campaign USING ERRCODE = 'object_not_in_prerequisite_state';
	END IF;
	RETURN QUERY
	WITH s AS (
		SELECT * FROM wam_internal.campaign_test_stats(c, t, coalesce(t.decided_at, at))
	), b AS (
		SELECT * FROM s WHERE s.rate IS NOT NULL ORDER BY s.rate DESC, s.ord LIMIT 1
	), ctl AS (
		SELECT * FROM s WHERE s.ord = 0
	), e AS (
		-- were the arms sent in the proportions they were queued?
		SELECT wam_internal.sample_ratio_p(array_agg(s.assigned), array_agg(s.sent)) AS p FROM s
	)
	SELECT s.variant, s.assigned, s.sent, s.delivered, s.successes,
		   round((100 * s.rate)::numeric, 1),
		   round((100 * greatest(0, s.rate - z * sqrt(s.variance)))::numeric, 1),
		   round((100 * least(1, s.rate + z * sqrt(s.variance)))::numeric, 1),
		   CASE WHEN s.ord > 0 AND ctl.rate > 0 THEN round((100 * (s.rate / ctl.rate - 1))::numeric, 1) END,
		   CASE WHEN s.ord > 0 AND ctl.rate > 0 AND s.rate > 0
				THEN round((100 * (exp(ln(s.rate / ctl.rate) - z * sqrt(s.variance / s.rate ^ 2 + ctl.variance / ctl.rate ^ 2)) - 1))::numeric, 1) END,
		   CASE WHEN s.ord > 0 AND ctl.rate > 0 AND s.rate > 0
				THEN round((100 * (exp(ln(s.rate / ctl.rate) + z * sqrt(s.variance / s.rate ^ 2 + ctl.variance / ctl.rate ^ 2)) - 1))::numeric, 1) END,
		   CASE WHEN s.variant <> b.variant
				THEN wam.lift_p_value(round(b.x_eff)::bigint, round(b.n_eff)::bigint, round(coalesce(s.x_eff, 0))::bigint,
									  round(coalesce(s.n_eff, 0))::bigint, t.lift) END,
		   CASE WHEN e.p IS NULL THEN NULL WHEN e.p < 0.001
				THEN format('unequal: %s %% of the sent messages (sample ratio p = %s)',
							round(100.0 * s.sent / nullif((SELECT sum(y.sent) FROM s y), 0), 1), btrim(to_char(e.p, '9.99EEEE')))
				ELSE 'equal' END,
		   CASE WHEN t.winner = s.variant THEN 'rolled out'
				WHEN t.state = 'testing' AND s.variant = b.variant THEN 'leading'
				WHEN s.variant = b.variant THEN 'best' ELSE '' END
	FROM s LEFT JOIN b ON true LEFT JOIN ctl ON true LEFT JOIN e ON true
	ORDER BY s.ord;
END
$$;
COMMENT ON FUNCTION wam.campaign_test_report(text, timestamptz) IS 'per variant of a campaign''s A/B test: queued, sent, delivered, successes of the metric, the rate with its 95 % interval, the lift over the control with its interval, the p-value of the best beating it by the lift, whether the arms were exposed equally, and the verdict (as of the decision once decided)';

REVOKE EXECUTE ON FUNCTION wam.campaign_test_report(text, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.campaign_test_report(text, timestamptz) TO wam_reader;

CREATE VIEW wam.campaign_test_status AS
SELECT c.name AS campaign, t.state, t.metric, (SELECT count(*) + 1 FROM wam.campaign_variant v WHERE v.campaign_id = c.campaign_id) AS arms,
	   t.decide_at, t.winner, t.override, t.decided_at, t.decision->>'reason' AS reason,
	   (t.decision->>'srm_p_value')::float8 AS srm_p_value, wam.segment_cardinality(t.rest) AS rest
FROM wam.campaign_test t JOIN wam.campaign c USING (campaign_id);
COMMENT ON VIEW wam.campaign_test_status IS 'per campaign A/B test: its state, metric, arms, when it is decided, the winner and why';

REVOKE ALL ON wam.campaign_test_status FROM PUBLIC;
GRANT SELECT ON wam.campaign_test_status TO wam_reader;
