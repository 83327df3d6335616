-- 98_reward_ab_decay: the reward A/B test of referral programs (reward_variants drawn per
-- referrer by a keyed hash, recorded on the rewards, wam.referral_reward_report by Welch's
-- t-test and 30-day retention) and decay alerts (wam.click_decay, the weekly "decay alerts"
-- job raising click decay alerts); Student's t law and Welch's test in src/ab_stats.c.

-- statistics
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

-- referral reward variants
ALTER TABLE wam.referral_program ADD COLUMN reward_variants jsonb;
COMMENT ON COLUMN wam.referral_program.reward_variants IS 'the reward A/B test: [{"name": ..., "tiers": [...]}, ...], two or more variants drawn per referrer by a keyed hash (the first is the control; a variant without tiers gives the program''s); NULL: no test';
ALTER TABLE wam.referral_reward ADD COLUMN variant text;
COMMENT ON COLUMN wam.referral_reward.variant IS 'the reward variant of the program''s A/B test the referrer was drawn into (reward_variants), NULL without a test';

-- Validates a tier list (the program's, or a reward variant's); returns it
-- normalized.  setting names it in the errors.
CREATE FUNCTION wam_internal.referral_tiers(v jsonb, setting text) RETURNS jsonb
	LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, wam, pg_temp
AS $$
DECLARE
	t jsonb;
	prev integer := 0;
	tiers jsonb := '[]';
BEGIN
	IF jsonb_typeof(v) IS DISTINCT FROM 'array' OR jsonb_array_length(v) = 0 THEN
		RAISE EXCEPTION 'referral program setting % must be a non-empty JSON array', setting
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Example: [{"at": 1, "reward": "50-unit coupon", "cost": 50}, {"at": 5, "reward": "sample", "cost": 8}].';
	END IF;
	FOR t IN SELECT e FROM jsonb_array_elements(v) e LOOP
		IF jsonb_typeof(t) <> 'object' OR NOT (t ? 'at' AND t ? 'reward' AND t ? 'cost')
		   OR EXISTS (SELECT FROM jsonb_object_keys(t) x WHERE x NOT IN ('at', 'reward', 'cost'))
		   OR jsonb_typeof(t -> 'at') <> 'number' OR jsonb_typeof(t -> 'reward') <> 'string'
		   OR jsonb_typeof(t -> 'cost') <> 'number' OR btrim(t ->> 'reward') = ''
		   OR (t ->> 'cost')::numeric < 0
		   OR (t ->> 'at')::numeric <> trunc((t ->> 'at')::numeric) OR (t ->> 'at')::numeric < 1
		   OR (t ->> 'at')::numeric > 1000000 THEN
			RAISE EXCEPTION 'invalid referral tier %', t
				USING ERRCODE = 'invalid_parameter_value',
					  DETAIL = 'A tier is {"at": referrals (a whole number of at least 1), "reward": text, "cost": amount of at least 0}.';
		END IF;
		IF (t ->> 'at')::integer <= prev THEN
			RAISE EXCEPTION 'referral tiers must be in increasing order of "at"'
				USING ERRCODE = 'invalid_parameter_value', DETAIL = format('%s follows a tier at %s.', t, prev);
		END IF;
		prev := (t ->> 'at')::integer;
		tiers := tiers || jsonb_build_array(jsonb_build_object('at', (t ->> 'at')::integer,
			'reward', btrim(t ->> 'reward'), 'cost', (t ->> 'cost')::numeric));
	END LOOP;
	RETURN tiers;
END
$$;
COMMENT ON FUNCTION wam_internal.referral_tiers(jsonb, text) IS 'internal: validates and normalizes a list of referral tiers';

REVOKE EXECUTE ON FUNCTION wam_internal.referral_tiers(jsonb, text) FROM PUBLIC;

CREATE OR REPLACE FUNCTION wam_internal.referral_settings(given jsonb, base jsonb) RETURNS jsonb
	LANGUAGE plpgsql STABLE SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	known text[] := ARRAY['preset', 'cap', 'velocity_per_hour', 'min_order', 'qualify_window', 'hold',
						  'cost_cap_share', 'flat_cost_cap', 'ring_depth', 'signup_grace', 'tiers',
						  'business_number', 'landing_url', 'message', 'starts_at', 'ends_at', 'benchmark',
						  'reward_template', 'sender', 'reward_variants'];
	-- placeholders of reward_template besides the customer's ({name},
	-- {first_name}, {phone}, {locale}, {customer_id}) and its fallbacks
	reward_vars text[] := ARRAY['reward', 'redemption_code', 'tier', 'cost', 'program'];
	k text;
	v jsonb;
	s jsonb;
	lo integer;
	hi integer;
	iv interval;
	ts timestamptz;
	t jsonb;
	tiers jsonb := '[]';
BEGIN
	IF given IS NULL THEN
		given := '{}';
	END IF;
	IF jsonb_typeof(given) <> 'object' THEN
		RAISE EXCEPTION 'referral program settings must be a JSON object, not %', jsonb_typeof(given)
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	FOR k IN SELECT jsonb_object_keys(given) LOOP
		IF NOT k = ANY (known) THEN
			RAISE EXCEPTION 'unknown referral program setting "%"', k
				USING ERRCODE = 'invalid_parameter_value',
					  HINT = 'Known settings: ' || array_to_string(known, ', ') || '.';
		END IF;
	END LOOP;
	IF given ? 'preset' AND jsonb_typeof(given -> 'preset') <> 'null' THEN
		IF jsonb_typeof(given -> 'preset') <> 'string'
		   OR NOT (given ->> 'preset') IN ('retail e-commerce', 'online education', 'local services') THEN
			RAISE EXCEPTION 'unknown referral program preset %', given -> 'preset'
				USING ERRCODE = 'invalid_parameter_value',
					  HINT = 'Presets: retail e-commerce, online education, local services.';
		END IF;
		-- a preset resets what presets define; the other given keys override it
		base := base || jsonb_build_object('preset', given ->> 'preset')
			|| (SELECT jsonb_object_agg(d.key, d.value) FROM jsonb_each(wam.referral_defaults(given ->> 'preset')) d
				WHERE d.key IN ('tiers', 'min_order', 'benchmark'));
	END IF;
	s := base || (given - 'preset');

	-- whole numbers
	FOR k IN SELECT unnest(ARRAY['cap', 'velocity_per_hour', 'ring_depth']) LOOP
		v := s -> k;
		lo := CASE k WHEN 'ring_depth' THEN 2 ELSE 1 END;
		hi := CASE k WHEN 'ring_depth' THEN 20 ELSE 1000000 END;
		IF jsonb_typeof(v) IS DISTINCT FROM 'number' OR (v #>> '{}')::numeric <> trunc((v #>> '{}')::numeric)
		   OR (v #>> '{}')::numeric < lo OR (v #>> '{}')::numeric > hi THEN
			RAISE EXCEPTION 'referral program setting % must be a whole number from % to %, not %', k, lo, hi, v
				USING ERRCODE = 'invalid_parameter_value';
		END IF;
		s := jsonb_set(s, ARRAY[k], to_jsonb((v #>> '{}')::integer));
	END LOOP;
	-- amounts and shares
	FOR k IN SELECT unnest(ARRAY['min_order', 'cost_cap_share', 'flat_cost_cap']) LOOP
		v := s -> k;
		IF k = 'flat_cost_cap' AND jsonb_typeof(v) = 'null' THEN
			CONTINUE;
		END IF;
		IF jsonb_typeof(v) IS DISTINCT FROM 'number' OR (v #>> '{}')::numeric < 0
		   OR (k = 'cost_cap_share' AND (v #>> '{}')::numeric > 1) THEN
			RAISE EXCEPTION 'referral program setting % must be a number %, not %', k,
				(CASE k WHEN 'cost_cap_share' THEN 'from 0 to 1' ELSE 'of at least 0' END), v
				USING ERRCODE = 'invalid_parameter_value';
		END IF;
	END LOOP;
	-- intervals
	FOR k IN SELECT unnest(ARRAY['qualify_window', 'hold', 'signup_grace']) LOOP
		v := s -> k;
		BEGIN
			iv := (v #>> '{}')::interval;
		EXCEPTION WHEN invalid_datetime_format OR datetime_field_overflow OR interval_field_overflow THEN
			iv := NULL;
		END;
		IF jsonb_typeof(v) IS DISTINCT FROM 'string' OR iv IS NULL OR iv < interval '0'
		   OR (k = 'qualify_window' AND iv = interval '0') OR NOT isfinite(iv) THEN
			RAISE EXCEPTION 'referral program setting % must be a % interval such as "30 days", not %', k,
				(CASE k WHEN 'qualify_window' THEN 'positive' ELSE 'non-negative' END), v
				USING ERRCODE = 'invalid_parameter_value';
		END IF;
		s := jsonb_set(s, ARRAY[k], to_jsonb(iv::text));
	END LOOP;
	-- times
	FOR k IN SELECT unnest(ARRAY['starts_at', 'ends_at']) LOOP
		v := s -> k;
		IF jsonb_typeof(v) = 'null' THEN
			CONTINUE;
		END IF;
		BEGIN
			ts := (v #>> '{}')::timestamptz;
		EXCEPTION WHEN invalid_datetime_format OR datetime_field_overflow THEN
			ts := NULL;
		END;
		IF jsonb_typeof(v) IS DISTINCT FROM 'string' OR ts IS NULL THEN
			RAISE EXCEPTION 'referral program setting % must be a time such as "2026-01-01 00:00+08", not %', k, v
				USING ERRCODE = 'invalid_parameter_value';
		END IF;
		s := jsonb_set(s, ARRAY[k], to_jsonb(ts));
	END LOOP;
	IF jsonb_typeof(s -> 'starts_at') = 'string' AND jsonb_typeof(s -> 'ends_at') = 'string'
	   AND (s ->> 'ends_at')::timestamptz <= (s ->> 'starts_at')::timestamptz THEN
		RAISE EXCEPTION 'referral program ends_at must be after starts_at' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	-- tiers
	s := jsonb_set(s, '{tiers}', wam_internal.referral_tiers(s -> 'tiers', 'tiers'));
	-- the reward A/B test: two or more named variants, each with its own
	-- tiers or the program's
	v := s -> 'reward_variants';
	IF v IS NULL OR jsonb_typeof(v) = 'null' THEN
		s := jsonb_set(s, '{reward_variants}', 'null');
	ELSE
		IF jsonb_typeof(v) <> 'array' OR jsonb_array_length(v) NOT BETWEEN 2 AND 10 THEN
			RAISE EXCEPTION 'referral program setting reward_variants must be a JSON array of 2 to 10 variants, not %', v
				USING ERRCODE = 'invalid_parameter_value',
					  HINT = 'Example: [{"name": "discount", "tiers": [{"at": 1, "reward": "20% off", "cost": 10}]}, {"name": "trial", "tiers": [{"at": 1, "reward": "7-day trial", "cost": 8}]}].';
		END IF;
		tiers := '[]';
		FOR lo IN 0 .. jsonb_array_length(v) - 1 LOOP
			t := v -> lo;
			IF jsonb_typeof(t) <> 'object' OR NOT t ? 'name'
			   OR EXISTS (SELECT FROM jsonb_object_keys(t) x WHERE x NOT IN ('name', 'tiers'))
			   OR jsonb_typeof(t -> 'name') <> 'string' OR btrim(t ->> 'name') = '' OR length(btrim(t ->> 'name')) > 40 THEN
				RAISE EXCEPTION 'invalid reward variant %', t
					USING ERRCODE = 'invalid_parameter_value',
						  DETAIL = 'A reward variant is {"name": a text of 1 to 40 characters, "tiers": its tiers (optional: the program''s)}.';
			END IF;
			IF EXISTS (SELECT FROM jsonb_array_elements(tiers) e WHERE lower(e ->> 'name') = lower(btrim(t ->> 'name'))) THEN
				RAISE EXCEPTION 'reward variant "%" is named twice', btrim(t ->> 'name')
					USING ERRCODE = 'invalid_parameter_value';
			END IF;
			tiers := tiers || jsonb_build_array(jsonb_build_object('name', btrim(t ->> 'name'))
				|| CASE WHEN t ? 'tiers' THEN jsonb_build_object('tiers',
						wam_internal.referral_tiers(t -> 'tiers', format('reward_variants[%s].tiers', lo + 1)))
						ELSE '{}' END);
		END LOOP;
		s := jsonb_set(s, '{reward_variants}', tiers);
	END IF;
	-- texts
	v := s -> 'business_number';
	IF jsonb_typeof(v) <> 'null' THEN
		IF jsonb_typeof(v) <> 'string' OR wam.phone_problem(v #>> '{}') IS NOT NULL THEN
			RAISE EXCEPTION 'referral program setting business_number must be an international phone number, not %', v
				USING ERRCODE = 'invalid_parameter_value',
					  DETAIL = coalesce(wam.phone_problem(v #>> '{}'), 'It must be a JSON string.'),
					  HINT = 'Give the WhatsApp business number with its country code, e.g. "+852 5123 4567".';
		END IF;
		s := jsonb_set(s, '{business_number}', to_jsonb(wam.normalize_phone(v #>> '{}')));
	END IF;
	v := s -> 'landing_url';
	IF jsonb_typeof(v) <> 'null' AND (jsonb_typeof(v) <> 'string' OR (v #>> '{}') !~ '^https://[^/?#[:space:]]+[^[:space:]]*$') THEN
		RAISE EXCEPTION 'referral program setting landing_url must be an https:// URL, not %', v
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	v := s -> 'message';
	IF jsonb_typeof(v) IS DISTINCT FROM 'string' OR strpos(v #>> '{}', '{code}') = 0 OR length(v #>> '{}') > 1000 THEN
		RAISE EXCEPTION 'referral program setting message must be a text of at most 1000 characters containing {code}, not %', v
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	v := s -> 'benchmark';
	IF jsonb_typeof(v) NOT IN ('null', 'object') THEN
		RAISE EXCEPTION 'referral program setting benchmark must be a JSON object, not %', v
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	-- the referrer's message (R-F2): an approved template, since the
	-- referrer's 24-hour window is usually closed when the invitee orders
	v := s -> 'reward_template';
	IF jsonb_typeof(v) <> 'null' THEN
		IF jsonb_typeof(v) <> 'object' OR NOT (v ? 'name' AND v ? 'language')
		   OR EXISTS (SELECT FROM jsonb_object_keys(v) x WHERE x NOT IN ('name', 'language', 'parameters', 'fallbacks')) THEN
			RAISE EXCEPTION 'referral program setting reward_template must be an object with name, language and optionally parameters and fallbacks, not %', v
				USING ERRCODE = 'invalid_parameter_value',
					  HINT = 'Example: {"name": "referral_reward", "language": "en", "parameters": ["{first_name}", "{reward}", "{redemption_code}"], "fallbacks": {"first_name": "there"}}.';
		END IF;
		IF jsonb_typeof(v -> 'name') <> 'string' OR (v ->> 'name') !~ '^[a-z0-9_]+$' OR length(v ->> 'name') > 512 THEN
			RAISE EXCEPTION 'reward_template name must be the name of an approved WhatsApp template (lower-case letters, digits and underscores), not %', v -> 'name'
				USING ERRCODE = 'invalid_parameter_value';
		END IF;
		IF jsonb_typeof(v -> 'language') <> 'string' OR (v ->> 'language') !~ '^[a-z]{2,3}(_[A-Za-z0-9]{2,4})?$' THEN
			RAISE EXCEPTION 'reward_template language must be a template language code such as "en" or "pt_BR", not %', v -> 'language'
				USING ERRCODE = 'invalid_parameter_value';
		END IF;
		IF NOT v ? 'parameters' THEN
			v := v || '{"parameters": ["{reward}", "{redemption_code}"]}';
		END IF;
		IF jsonb_typeof(v -> 'parameters') <> 'array'
		   OR EXISTS (SELECT FROM jsonb_array_elements(v -> 'parameters') e
					  WHERE jsonb_typeof(e) <> 'string' OR btrim(e #>> '{}') = '') THEN
			RAISE EXCEPTION 'reward_template parameters must be a JSON array of non-empty texts, not %', v -> 'parameters'
				USING ERRCODE = 'invalid_parameter_value',
					  DETAIL = 'They fill the template''s body variables {{1}}, {{2}}, ... in order.';
		END IF;
		IF NOT v ? 'fallbacks' THEN
			v := v || '{"fallbacks": {}}';
		END IF;
		IF jsonb_typeof(v -> 'fallbacks') <> 'object'
		   OR EXISTS (SELECT FROM jsonb_each(v -> 'fallbacks') e
					  WHERE jsonb_typeof(e.value) <> 'string' OR e.key !~ '^[a-z_][a-z0-9_]*$') THEN
			RAISE EXCEPTION 'reward_template fallbacks must be an object of texts by placeholder name, not %', v -> 'fallbacks'
				USING ERRCODE = 'invalid_parameter_value';
		END IF;
		SELECT min(x) INTO k FROM unnest(wam.payload_placeholders(v -> 'parameters')) x
		WHERE NOT (x = ANY (reward_vars) OR x IN ('name', 'first_name', 'phone', 'locale', 'customer_id')
				   OR v -> 'fallbacks' ? x);
		IF k IS NOT NULL THEN
			RAISE EXCEPTION 'unknown placeholder {%} in reward_template', k
				USING ERRCODE = 'invalid_parameter_value',
					  HINT = 'Known: {reward}, {redemption_code}, {tier}, {cost}, {program}, the customer''s {name}, {first_name}, {phone}, {locale}, {customer_id}, and the keys of fallbacks.';
		END IF;
		IF NOT wam.payload_placeholders(v -> 'parameters') @> ARRAY['redemption_code'] THEN
			RAISE EXCEPTION 'reward_template parameters must include {redemption_code}'
				USING ERRCODE = 'invalid_parameter_value',
					  DETAIL = 'The message is how the referrer receives the redemption code.';
		END IF;
		s := jsonb_set(s, '{reward_template}', v);
	END IF;
	v := s -> 'sender';
	IF jsonb_typeof(v) <> 'null' THEN
		IF jsonb_typeof(v) <> 'string' THEN
			RAISE EXCEPTION 'referral program setting sender must be the name of a sender, not %', v
				USING ERRCODE = 'invalid_parameter_value';
		END IF;
		IF NOT EXISTS (SELECT FROM wam.sender x WHERE x.name = v #>> '{}') THEN
			RAISE EXCEPTION 'sender "%" does not exist', v #>> '{}'
				USING ERRCODE = 'undefined_object', HINT = 'Create it with wam.create_sender(), or leave sender out to use the only sender.';
		END IF;
	END IF;
	RETURN s;
END
$$;
COMMENT ON FUNCTION wam_internal.referral_settings(jsonb, jsonb) IS 'internal: validates referral program settings and merges them into base';

REVOKE EXECUTE ON FUNCTION wam_internal.referral_settings(jsonb, jsonb) FROM PUBLIC;

CREATE OR REPLACE FUNCTION wam.referral_program_settings(p wam.referral_program) RETURNS jsonb
	LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, wam, pg_temp
RETURN pg_catalog.jsonb_build_object(
	'preset', p.preset, 'cap', p.cap, 'velocity_per_hour', p.velocity_per_hour, 'min_order', p.min_order,
	'qualify_window', p.qualify_window::text, 'hold', p.hold::text, 'cost_cap_share', p.cost_cap_share,
	'flat_cost_cap', p.flat_cost_cap, 'ring_depth', p.ring_depth, 'signup_grace', p.signup_grace::text,
	'tiers', p.tiers, 'business_number', p.business_number, 'landing_url', p.landing_url,
	'message', p.message, 'starts_at', p.starts_at, 'ends_at', p.ends_at, 'benchmark', p.benchmark,
	'reward_template', p.reward_template, 'sender', p.sender, 'reward_variants', p.reward_variants);
COMMENT ON FUNCTION wam.referral_program_settings(wam.referral_program) IS 'all settings of a referral program as one JSON object';

REVOKE EXECUTE ON FUNCTION wam.referral_program_settings(wam.referral_program) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.referral_program_settings(wam.referral_program) TO wam_reader;

CREATE OR REPLACE FUNCTION wam.create_referral_program(name text, settings jsonb DEFAULT '{}') RETURNS integer
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	s jsonb;
	new_id integer;
BEGIN
	IF name IS NULL OR btrim(name) = '' THEN
		RAISE EXCEPTION 'referral program name must not be empty' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF length(name) > 100 THEN
		RAISE EXCEPTION 'referral program name must be at most 100 characters' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF EXISTS (SELECT FROM wam.referral_program p WHERE p.name = btrim(name)) THEN
		RAISE EXCEPTION 'referral program "%" already exists', btrim(name)
			USING ERRCODE = 'unique_violation', HINT = 'Change it with wam.configure_referral_program().';
	END IF;
	s := wam_internal.referral_settings(settings, wam.referral_defaults(NULL));
	INSERT INTO wam.referral_program AS p (name, preset, cap, velocity_per_hour, min_order, qualify_window,
		hold, cost_cap_share, flat_cost_cap, ring_depth, signup_grace, tiers, business_number, landing_url,
		message, starts_at, ends_at, benchmark, reward_template, sender, reward_variants)
	VALUES (btrim(name), s ->> 'preset', (s ->> 'cap')::integer, (s ->> 'velocity_per_hour')::integer,
		(s ->> 'min_order')::numeric, (s ->> 'qualify_window')::interval, (s ->> 'hold')::interval,
		(s ->> 'cost_cap_share')::numeric, (s ->> 'flat_cost_cap')::numeric, (s ->> 'ring_depth')::integer,
		(s ->> 'signup_grace')::interval, s -> 'tiers', s ->> 'business_number', s ->> 'landing_url',
		s ->> 'message', (s ->> 'starts_at')::timestamptz, (s ->> 'ends_at')::timestamptz,
		nullif(s -> 'benchmark', 'null'), nullif(s -> 'reward_template', 'null'), s ->> 'sender',
		nullif(s -> 'reward_variants', 'null'))
	RETURNING p.id INTO new_id;
	RETURN new_id;
END
$$;
COMMENT ON FUNCTION wam.create_referral_program(text, jsonb) IS 'creates a referral program; returns its id';

REVOKE EXECUTE ON FUNCTION wam.create_referral_program(text, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.create_referral_program(text, jsonb) TO wam_admin;

CREATE OR REPLACE FUNCTION wam.configure_referral_program(name text, settings jsonb) RETURNS jsonb
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	p wam.referral_program;
	s jsonb;
BEGIN
	SELECT * INTO p FROM wam.referral_program x WHERE x.name = name FOR UPDATE;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'referral program "%" does not exist', name USING ERRCODE = 'undefined_object';
	END IF;
	s := wam_internal.referral_settings(settings, wam.referral_program_settings(p));
	UPDATE wam.referral_program x
	SET preset = s ->> 'preset', cap = (s ->> 'cap')::integer,
		velocity_per_hour = (s ->> 'velocity_per_hour')::integer, min_order = (s ->> 'min_order')::numeric,
		qualify_window = (s ->> 'qualify_window')::interval, hold = (s ->> 'hold')::interval,
		cost_cap_share = (s ->> 'cost_cap_share')::numeric, flat_cost_cap = (s ->> 'flat_cost_cap')::numeric,
		ring_depth = (s ->> 'ring_depth')::integer, signup_grace = (s ->> 'signup_grace')::interval,
		tiers = s -> 'tiers', business_number = s ->> 'business_number', landing_url = s ->> 'landing_url',
		message = s ->> 'message', starts_at = (s ->> 'starts_at')::timestamptz,
		ends_at = (s ->> 'ends_at')::timestamptz, benchmark = nullif(s -> 'benchmark', 'null'),
		reward_template = nullif(s -> 'reward_template', 'null'), sender = s ->> 'sender',
		reward_variants = nullif(s -> 'reward_variants', 'null'), updated_at = now()
	WHERE x.id = p.id;
	RETURN s;
END
$$;
COMMENT ON FUNCTION wam.configure_referral_program(text, jsonb) IS 'changes the given settings of a program; returns all settings';

REVOKE EXECUTE ON FUNCTION wam.configure_referral_program(text, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.configure_referral_program(text, jsonb) TO wam_admin;

CREATE OR REPLACE FUNCTION wam_internal.referral_grant_rewards(program integer, referrer bigint) RETURNS integer
	LANGUAGE plpgsql SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	p wam.referral_program;
	n_qualified integer;
	t record;
	cap numeric;
	clv numeric;
	spent numeric;
	rw wam.referral_reward;
	n integer := 0;
	arm jsonb;
BEGIN
	SELECT * INTO p FROM wam.referral_program x WHERE x.id = program;
	SELECT r.qualified INTO n_qualified FROM wam.referrer r WHERE r.customer_id = referrer AND r.program_id = program;
	-- a reward A/B test: the referrer's variant (drawn by a keyed hash) and its tiers
	arm := wam_internal.referral_variant(p, referrer);
	FOR t IN SELECT (e ->> 'at')::integer AS at, e ->> 'reward' AS reward, (e ->> 'cost')::numeric AS cost
			 FROM jsonb_array_elements(coalesce(arm -> 'tiers', p.tiers)) e
			 WHERE (e ->> 'at')::integer <= n_qualified
			   AND NOT EXISTS (SELECT FROM wam.referral_reward w
							   WHERE w.referrer_id = referrer AND w.program_id = program
								 AND w.tier = (e ->> 'at')::integer AND w.status <> 'revoked')
			 ORDER BY 1
	LOOP
		IF p.flat_cost_cap IS NOT NULL THEN
			cap := p.flat_cost_cap;
		ELSE
			SELECT d.clv INTO clv FROM wam.cost_cap_detail(referrer) d;
			cap := round(p.cost_cap_share * coalesce(clv, 0), 2);
		END IF;
		SELECT coalesce(sum(x.cost), 0) INTO spent FROM wam.referral_reward x
		WHERE x.referrer_id = referrer AND x.status = 'issued';
		rw := ROW(NULL, program, referrer, t.at, t.reward, t.cost, wam.redemption_code(), 'held',
				 format('cost cap: %s already issued + %s exceeds the budget of %s', spent, t.cost, cap),
				 cap, spent, now(), NULL, 'waiting', NULL, NULL, arm ->> 'name')::wam.referral_reward;
		IF spent + t.cost <= cap THEN
			-- issued: the referrer's message goes into the queue now (R-F2)
			rw.status := 'issued';
			rw.reason := NULL;
			rw.decided_at := now();
			SELECT e.notify_status, e.notify_detail, e.message_id INTO rw.notify_status, rw.notify_detail, rw.message_id
			FROM wam_internal.referral_reward_enqueue(rw, p) e;
		END IF;
		INSERT INTO wam.referral_reward (program_id, referrer_id, tier, reward, cost, redemption_code, status,
										 reason, cost_cap, spent_before, decided_at, notify_status, notify_detail,
										 message_id, variant)
		VALUES (rw.program_id, rw.referrer_id, rw.tier, rw.reward, rw.cost, rw.redemption_code, rw.status,
				rw.reason, rw.cost_cap, rw.spent_before, rw.decided_at, rw.notify_status, rw.notify_detail, rw.message_id,
				rw.variant);
		n := n + 1;
	END LOOP;
	RETURN n;
END
$$;
COMMENT ON FUNCTION wam_internal.referral_grant_rewards(integer, bigint) IS 'internal: creates the rewards of the tiers a referrer reached (of the referrer''s reward variant, in a reward A/B test): issued within the cost cap (and the referrer''s message queued), held above it';

REVOKE EXECUTE ON FUNCTION wam_internal.referral_grant_rewards(integer, bigint) FROM PUBLIC;


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

-- decay alerts
-- segment, the weekly click rate of campaign messages; an alert (wam.alert,
-- NOTIFY wam_alerts) when it fell by at least 20 % below its trailing
-- baseline two weeks in a row, run weekly by the "decay alerts" job.
--
-- The rule.  Weeks are ISO weeks (Monday 00:00 UTC).  A week's click rate
-- is clicks / messages: messages are the campaign messages (wam.outbox rows
-- of a campaign) sent in that week to the group's customers, clicks those of
-- them with a link click (wam.record_click) within click_window of their
-- sending.  The last week tested is the latest one whose messages have all
-- had their click window by the time of the run; the week before it is
-- tested too; the baseline is the mean of the weekly rates of the 4 weeks
-- before those two.  The fall of a week is 1 - rate / baseline, and the
-- group alerts when both weeks fell by at least `fall` (0.20).  Every one of
-- the 6 weeks needs at least min_messages (200) messages, so that a small
-- tier does not alert on noise.  The groups are the customers of each RFM
-- tier and each saved segment as they are at the run.

-- The options of the job, checked: min_messages, fall, click_window.
CREATE FUNCTION wam_internal.decay_options(o jsonb, OUT min_messages bigint, OUT fall numeric,
										   OUT click_window interval)
	LANGUAGE plpgsql STABLE SET search_path = pg_catalog, wam, pg_temp
AS $$
DECLARE
	bad text;
BEGIN
	IF o IS NULL OR jsonb_typeof(o) <> 'object' THEN
		RAISE EXCEPTION 'decay alert options must be a JSON object' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	SELECT string_agg(k, ', ' ORDER BY k) INTO bad FROM jsonb_object_keys(o) k
	WHERE k NOT IN ('min_messages', 'fall', 'click_window');
	IF bad IS NOT NULL THEN
		RAISE EXCEPTION 'job "decay alerts" has no option %', bad
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Its options are min_messages (messages per week, at least 1), fall (a share above 0 and below 1) and click_window (an interval from 1 hour to 7 days).';
	END IF;
	IF o ? 'min_messages' AND (jsonb_typeof(o -> 'min_messages') <> 'number'
							   OR (o ->> 'min_messages')::numeric <> trunc((o ->> 'min_messages')::numeric)
							   OR (o ->> 'min_messages')::numeric NOT BETWEEN 1 AND 1000000000) THEN
		RAISE EXCEPTION 'decay alert option min_messages must be a whole number from 1 to 1000000000, not %', o -> 'min_messages'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF o ? 'fall' AND (jsonb_typeof(o -> 'fall') <> 'number' OR (o ->> 'fall')::numeric <= 0 OR (o ->> 'fall')::numeric >= 1) THEN
		RAISE EXCEPTION 'decay alert option fall must be a share above 0 and below 1 (0.2 for 20 %%), not %', o -> 'fall'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF o ? 'click_window' THEN
		BEGIN
			click_window := CASE WHEN jsonb_typeof(o -> 'click_window') = 'string' THEN (o ->> 'click_window')::interval END;
		EXCEPTION WHEN invalid_datetime_format OR datetime_field_overflow OR interval_field_overflow THEN
			click_window := NULL;
		END;
		IF click_window IS NULL OR click_window < interval '1 hour' OR click_window > interval '7 days' THEN
			RAISE EXCEPTION 'decay alert option click_window must be an interval from 1 hour to 7 days, not %', o -> 'click_window'
				USING ERRCODE = 'invalid_parameter_value';
		END IF;
	ELSE
		click_window := interval '1 day';
	END IF;
	min_messages := coalesce((o ->> 'min_messages')::bigint, 200);
	fall := coalesce((o ->> 'fall')::numeric, 0.20);
END
$$;
COMMENT ON FUNCTION wam_internal.decay_options(jsonb) IS 'internal: the checked options of the decay alerts (min_messages 200, fall 0.20, click_window 1 day by default)';

REVOKE EXECUTE ON FUNCTION wam_internal.decay_options(jsonb) FROM PUBLIC;
-- the job's trigger checks the options an administrator sets
GRANT EXECUTE ON FUNCTION wam_internal.decay_options(jsonb) TO wam_admin;

-- The rule on one group's 6 weeks of counts (oldest first: 4 baseline
-- weeks, then the two weeks tested).
CREATE FUNCTION wam_internal.decay_verdict(messages bigint[], clicks bigint[], min_messages bigint, fall numeric,
										   OUT baseline numeric, OUT rate_previous numeric, OUT rate_last numeric,
										   OUT fall_previous numeric, OUT fall_last numeric, OUT alert boolean,
										   OUT reason text)
	LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	i integer;
BEGIN
	IF messages IS NULL OR clicks IS NULL OR min_messages IS NULL OR fall IS NULL THEN
		RAISE EXCEPTION 'the counts, the minimum and the fall of a decay verdict must not be null'
			USING ERRCODE = 'null_value_not_allowed';
	END IF;
	IF cardinality(messages) <> 6 OR cardinality(clicks) <> 6 OR array_position(messages, NULL) IS NOT NULL
	   OR array_position(clicks, NULL) IS NOT NULL THEN
		RAISE EXCEPTION 'a decay verdict needs 6 weekly counts of messages and of clicks'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	FOR i IN 1 .. 6 LOOP
		IF messages[i] < 0 OR clicks[i] < 0 OR clicks[i] > messages[i] THEN
			RAISE EXCEPTION 'week % has % clicks of % messages', i, clicks[i], messages[i]
				USING ERRCODE = 'invalid_parameter_value';
		END IF;
	END LOOP;
	alert := false;
	IF messages[5] > 0 THEN
		rate_previous := clicks[5]::numeric / messages[5];
	END IF;
	IF messages[6] > 0 THEN
		rate_last := clicks[6]::numeric / messages[6];
	END IF;
	SELECT min(x) INTO i FROM generate_subscripts(messages, 1) x WHERE messages[x] < min_messages;
	IF i IS NOT NULL THEN
		reason := format('too few messages: %s in week %s of 6 (at least %s each week)', messages[i], i, min_messages);
		RETURN;
	END IF;
	baseline := (clicks[1]::numeric / messages[1] + clicks[2]::numeric / messages[2]
				 + clicks[3]::numeric / messages[3] + clicks[4]::numeric / messages[4]) / 4;
	IF baseline = 0 THEN
		reason := 'no clicks in the 4 baseline weeks: nothing to fall from';
		RETURN;
	END IF;
	fall_previous := 1 - rate_previous / baseline;
	fall_last := 1 - rate_last / baseline;
	alert := fall_previous >= fall AND fall_last >= fall;
	reason := CASE
		WHEN alert THEN format('fell %s %% and %s %% below the baseline: two weeks in a row at least %s %%',
							   round(fall_previous * 100, 1), round(fall_last * 100, 1), round(fall * 100, 1))
		WHEN fall_last >= fall THEN format('fell %s %% in the last week only (%s %% the week before; two weeks in a row needed)',
										   round(fall_last * 100, 1), round(fall_previous * 100, 1))
		WHEN fall_previous >= fall THEN format('fell %s %% the week before, %s %% in the last week (two weeks in a row needed)',
											   round(fall_previous * 100, 1), round(fall_last * 100, 1))
		ELSE format('within %s %% of the baseline (falls of %s %% and %s %%)', round(fall * 100, 1),
					round(fall_previous * 100, 1), round(fall_last * 100, 1)) END;
END
$$;
COMMENT ON FUNCTION wam_internal.decay_verdict(bigint[], bigint[], bigint, numeric) IS 'internal: the decay rule on 6 weekly counts (4 baseline weeks, 2 tested): baseline = the mean of the 4 weekly rates, alert when both tested weeks are at least `fall` below it, every week with at least min_messages';

REVOKE EXECUTE ON FUNCTION wam_internal.decay_verdict(bigint[], bigint[], bigint, numeric) FROM PUBLIC;

-- A saved segment's members now, or none when it cannot be evaluated any
-- more (a tag it names was dropped ...): one broken segment must not stop
-- the alerts of the others.
CREATE FUNCTION wam_internal.saved_segment_members(name text) RETURNS bigint[]
	LANGUAGE plpgsql STABLE SET search_path = pg_catalog, wam, pg_temp
AS $$
BEGIN
	RETURN wam.segment_to_array(wam.audience('@' || name));
EXCEPTION WHEN OTHERS THEN
	RETURN NULL;
END
$$;
COMMENT ON FUNCTION wam_internal.saved_segment_members(text) IS 'internal: the members of a saved segment, NULL when it cannot be evaluated';

REVOKE EXECUTE ON FUNCTION wam_internal.saved_segment_members(text) FROM PUBLIC;

-- The weekly click rates and the verdict of every group as of `at`.
CREATE FUNCTION wam.click_decay(at timestamptz DEFAULT pg_catalog.now(), options jsonb DEFAULT '{}')
	RETURNS TABLE (group_kind text, group_name text, last_week date, messages bigint[], clicks bigint[],
				   baseline numeric, rate_previous numeric, rate_last numeric, fall_previous numeric,
				   fall_last numeric, alert boolean, reason text)
	LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_column
DECLARE
	o record;
	e timestamptz;
BEGIN
	PERFORM wam_internal.refuse_null(at IS NULL, 'time');
	IF NOT isfinite(at) THEN
		RAISE EXCEPTION 'the time of the decay alerts must be finite, not %', at USING ERRCODE = 'invalid_parameter_value';
	END IF;
	o := wam_internal.decay_options(options);
	-- the end of the last week whose messages all had their click window
	e := date_trunc('week', (at - o.click_window) AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';
	RETURN QUERY
	WITH clicked AS (
		-- (a message_id that is no message id, in an event written by hand, names none)
		SELECT CASE WHEN jsonb_typeof(d.value) = 'number' AND (d.value)::numeric BETWEEN 1 AND 9223372036854775807
					THEN (d.value)::bigint END AS message_id, min(d.occurred_at) AS first_click
		FROM wam.event_detail d
		WHERE d.kind = 'link_click' AND d.key = 'message_id'
		  AND d.occurred_at >= e - interval '42 days' AND d.occurred_at < e + o.click_window
		GROUP BY 1
	), msg AS (
		SELECT m.customer_id, floor(extract(epoch FROM m.sent - (e - interval '42 days')) / 604800)::integer + 1 AS wk,
			   coalesce(c.first_click <= m.sent + o.click_window, false) AS hit
		FROM (SELECT x.message_id, x.customer_id, coalesce(x.sending_at, x.sent_at) AS sent
			  FROM wam.outbox x
			  WHERE x.campaign_id IS NOT NULL AND (x.sent_at IS NOT NULL OR x.wamid IS NOT NULL)
				AND x.created_at < e) m
		LEFT JOIN clicked c ON c.message_id = m.message_id
		WHERE m.sent >= e - interval '42 days' AND m.sent < e
	), grp AS (
		SELECT 'rfm tier'::text AS kind, r.tier AS name, r.customer_id
		FROM wam.customer_rfm r WHERE r.tier IS NOT NULL
		UNION ALL
		SELECT 'segment', s.name, u.id
		FROM wam.saved_segment s, unnest(wam_internal.saved_segment_members(s.normalized_name)) u(id)
	), names AS (
		SELECT DISTINCT 'rfm tier'::text AS kind, r.tier AS name FROM wam.customer_rfm r WHERE r.tier IS NOT NULL
		UNION
		SELECT 'segment', s.name FROM wam.saved_segment s
	), cnt AS (
		SELECT g.kind, g.name, m.wk, count(*) AS n, count(*) FILTER (WHERE m.hit) AS x
		FROM grp g JOIN msg m ON m.customer_id = g.customer_id
		GROUP BY 1, 2, 3
	), weeks AS (
		SELECT n.kind, n.name,
			   array_agg(coalesce(c.n, 0) ORDER BY w.wk) AS ms, array_agg(coalesce(c.x, 0) ORDER BY w.wk) AS cs
		FROM names n CROSS JOIN generate_series(1, 6) w(wk)
		LEFT JOIN cnt c ON c.kind = n.kind AND c.name = n.name AND c.wk = w.wk
		GROUP BY 1, 2
	)
	SELECT w.kind, w.name, (e - interval '7 days')::date, w.ms, w.cs,
		   round(v.baseline, 4), round(v.rate_previous, 4), round(v.rate_last, 4),
		   round(v.fall_previous, 4), round(v.fall_last, 4), v.alert, v.reason
	FROM weeks w, LATERAL wam_internal.decay_verdict(w.ms, w.cs, o.min_messages, o.fall) v
	ORDER BY 1, 2;
END
$$;
COMMENT ON FUNCTION wam.click_decay(timestamptz, jsonb) IS 'per RFM tier and saved segment: the weekly click rates of campaign messages over the last 6 complete weeks and whether they decayed (at least fall below the mean of the 4 weeks before, two weeks in a row, each week with at least min_messages; options as the "decay alerts" job''s)';

REVOKE EXECUTE ON FUNCTION wam.click_decay(timestamptz, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.click_decay(timestamptz, jsonb) TO wam_reader;

-- The job's work: an alert per decayed group and tested week (raised once,
-- however often the job runs in that week).  Returns groups and alerts.
CREATE FUNCTION wam_internal.raise_decay_alerts(at timestamptz, options jsonb, OUT groups bigint, OUT alerts bigint)
	LANGUAGE plpgsql SET search_path = pg_catalog, wam, pg_temp
AS $$
DECLARE
	r record;
	subj text;
BEGIN
	groups := 0;
	alerts := 0;
	FOR r IN SELECT * FROM wam.click_decay(at, options) LOOP
		groups := groups + 1;
		CONTINUE WHEN NOT r.alert;
		subj := format('%s %s', r.group_kind, r.group_name);
		CONTINUE WHEN EXISTS (SELECT FROM wam.alert a WHERE a.kind = 'click decay' AND a.subject = left(subj, 200)
							  AND a.detail ->> 'last_week' = to_char(r.last_week, 'YYYY-MM-DD'));
		PERFORM wam_internal.raise_alert('click decay', subj,
			format('The click rate of campaign messages to %s "%s" fell %s %% and %s %% below its baseline of %s %% (the mean of the 4 weeks before) in the weeks of %s and %s.',
				   r.group_kind, r.group_name, round(r.fall_previous * 100, 1), round(r.fall_last * 100, 1),
				   round(r.baseline * 100, 2), to_char(r.last_week - 7, 'YYYY-MM-DD'), to_char(r.last_week, 'YYYY-MM-DD')),
			jsonb_build_object('group_kind', r.group_kind, 'group_name', r.group_name, 'last_week', r.last_week,
							   'messages', r.messages, 'clicks', r.clicks, 'baseline', r.baseline,
							   'rate_previous', r.rate_previous, 'rate_last', r.rate_last,
							   'fall_previous', r.fall_previous, 'fall_last', r.fall_last));
		alerts := alerts + 1;
	END LOOP;
END
$$;
COMMENT ON FUNCTION wam_internal.raise_decay_alerts(timestamptz, jsonb) IS 'internal: the "decay alerts" job: raises a click decay alert (wam.alert, NOTIFY wam_alerts) per decayed group, once per tested week';

REVOKE EXECUTE ON FUNCTION wam_internal.raise_decay_alerts(timestamptz, jsonb) FROM PUBLIC;

-- the weekly job
ALTER TABLE wam.job DROP CONSTRAINT job_known, ADD CONSTRAINT job_known CHECK (job IN
		('expire tags', 'run tag rules', 'tag health report', 'tag audit', 'maintain partitions', 'campaign states', 'decay alerts'));
CREATE OR REPLACE FUNCTION wam_internal.job_check_trigger() RETURNS trigger
	LANGUAGE plpgsql SET search_path = pg_catalog, wam, pg_temp
AS $$
DECLARE
	bad text;
BEGIN
	IF wam_internal.restoring() THEN
		RETURN NEW;
	END IF;
	IF NOT EXISTS (SELECT FROM pg_catalog.pg_timezone_names z WHERE z.name = NEW.time_zone)
	   AND NOT EXISTS (SELECT FROM pg_catalog.pg_timezone_abbrevs z WHERE z.abbrev = NEW.time_zone) THEN
		RAISE EXCEPTION 'time zone "%" is not recognized', NEW.time_zone
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Use a name from pg_timezone_names, e.g. ''Europe/Berlin'' or ''Asia/Taipei''.';
	END IF;
	SELECT string_agg(k, ', ' ORDER BY k) INTO bad
	FROM jsonb_object_keys(NEW.options) k
	WHERE NOT (NEW.job = 'tag audit' AND k IN ('inactive', 'action'))
	  AND NOT (NEW.job = 'decay alerts' AND k IN ('min_messages', 'fall', 'click_window'));
	IF bad IS NOT NULL THEN
		RAISE EXCEPTION 'job "%" has no option %', NEW.job, bad
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = CASE WHEN NEW.job = 'tag audit' THEN 'Its options are inactive (an interval) and action (report, historical stock or remove).'
							  WHEN NEW.job = 'decay alerts' THEN 'Its options are min_messages, fall and click_window.'
							  ELSE 'This job takes no options.' END;
	END IF;
	IF NEW.job = 'tag audit' THEN
		PERFORM wam_internal.audit_options(NEW.options);
	END IF;
	IF NEW.job = 'decay alerts' THEN
		PERFORM wam_internal.decay_options(NEW.options);
	END IF;
	-- a changed schedule counts from now: the next tick computes the next run
	IF TG_OP = 'UPDATE' AND NEW.next_run_at IS NOT DISTINCT FROM OLD.next_run_at
	   AND (NEW.run_every, NEW.at_time, NEW.on_weekday, NEW.time_zone, NEW.enabled)
		   IS DISTINCT FROM (OLD.run_every, OLD.at_time, OLD.on_weekday, OLD.time_zone, OLD.enabled) THEN
		NEW.next_run_at := NULL;
	END IF;
	RETURN NEW;
END
$$;
COMMENT ON FUNCTION wam_internal.job_check_trigger() IS 'trigger: validates a job''s time zone and options; a changed schedule is recomputed at the next tick';

CREATE OR REPLACE FUNCTION wam_internal.run_job_body(j wam.job) RETURNS text
	LANGUAGE plpgsql SET search_path = pg_catalog, wam, pg_temp
AS $$
DECLARE
	n bigint;
	a bigint;
	r bigint;
	rep wam.tag_health_report;
	aud record;
	id bigint;
BEGIN
	CASE j.job
		WHEN 'expire tags' THEN
			n := wam.expire_tags();
			RETURN format('%s expired attachments removed', n);
		WHEN 'run tag rules' THEN
			SELECT count(*), coalesce(sum(x.added), 0), coalesce(sum(x.removed), 0) INTO n, a, r
			FROM wam.run_tag_rules() x;
			RETURN format('%s rules: %s tags added, %s removed', n, a, r);
		WHEN 'tag health report' THEN
			id := wam.record_tag_health();
			SELECT * INTO rep FROM wam.tag_health_report h WHERE h.report_id = id;
			RETURN format('report %s: %s active tags (%s), %s silent, %s overloaded', rep.report_id,
						  rep.active_tags, rep.band, rep.silent_tags, rep.overloaded_tags);
		WHEN 'tag audit' THEN
			SELECT count(*) AS tags, coalesce(sum(x.links), 0) AS links, coalesce(sum(x.stale_links), 0) AS stale,
				   coalesce(sum(x.moved), 0) AS moved, coalesce(sum(x.removed), 0) AS removed
			INTO aud
			FROM wam.audit_tags((j.options->>'inactive')::interval, j.options->>'action') x;
			RETURN format('%s tags, %s of %s links stale; %s moved, %s removed', aud.tags, aud.stale, aud.links,
						  aud.moved, aud.removed);
		WHEN 'maintain partitions' THEN
			-- as of the run's scheduled time when that is ahead of the clock
			-- (wam.run_due_jobs(at) with a time to come), else now
			SELECT count(*) FILTER (WHERE x.action = 'created'), count(*) FILTER (WHERE x.action = 'dropped'),
				   coalesce(sum(x.rows) FILTER (WHERE x.action IN ('dropped', 'deleted')), 0)
			INTO n, a, r
			FROM wam.maintain_partitions(greatest(j.next_run_at, pg_catalog.now())) x;
			RETURN format('%s partitions created, %s dropped; %s rows rolled up', n, a, r);
		WHEN 'campaign states' THEN
			SELECT count(*) FILTER (WHERE x.to_state = 'running'), count(*) FILTER (WHERE x.to_state = 'finished')
			INTO a, r
			FROM wam.advance_campaigns(greatest(j.next_run_at, pg_catalog.now())) x;
			RETURN format('%s campaigns started, %s finished', a, r);
		WHEN 'decay alerts' THEN
			SELECT x.groups, x.alerts INTO n, a
			FROM wam_internal.raise_decay_alerts(greatest(j.next_run_at, pg_catalog.now()), j.options) x;
			RETURN format('%s groups checked, %s click decay alerts raised', n, a);
	END CASE;
END
$$;
COMMENT ON FUNCTION wam_internal.run_job_body(wam.job) IS 'internal: the work of one periodic job';

REVOKE EXECUTE ON FUNCTION wam_internal.run_job_body(wam.job) FROM PUBLIC;

INSERT INTO wam.job (job, run_every, at_time, on_weekday, options, description) VALUES
	('decay alerts', interval '7 days', time '06:00', 2, '{"min_messages": 200, "fall": 0.2, "click_window": "1 day"}',
	 'alerts on RFM tiers and saved segments whose weekly click rate fell by fall two weeks in a row (wam.click_decay; options: min_messages, fall, click_window)');
