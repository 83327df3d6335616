-- 60_wording: user-visible messages and seeded descriptions without internal requirement ids

CREATE OR REPLACE FUNCTION wam_internal.referral_settings(given jsonb, base jsonb) RETURNS jsonb
	LANGUAGE plpgsql STABLE SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	known text[] := ARRAY['preset', 'cap', 'velocity_per_hour', 'min_order', 'qualify_window', 'hold',
						  'cost_cap_share', 'flat_cost_cap', 'ring_depth', 'signup_grace', 'tiers',
						  'business_number', 'landing_url', 'message', 'starts_at', 'ends_at', 'benchmark',
						  'reward_template', 'sender'];
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
	prev integer := 0;
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
	v := s -> 'tiers';
	IF jsonb_typeof(v) IS DISTINCT FROM 'array' OR jsonb_array_length(v) = 0 THEN
		RAISE EXCEPTION 'referral program setting tiers must be a non-empty JSON array'
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
	s := jsonb_set(s, '{tiers}', tiers);
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

CREATE OR REPLACE FUNCTION wam.referral_report(program text, since timestamptz, until timestamptz)
	RETURNS TABLE (metric text, item text, value numeric, note text)
	LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	pid integer := wam.referral_program_id(program);
	p wam.referral_program;
	cost numeric;
	revenue numeric;
	matured bigint;
	retained bigint;
	churn numeric;
	n_accepted bigint;
	n_qualified bigint;
	rs wam.referral[];
BEGIN
	IF since IS NULL OR until IS NULL THEN
		RAISE EXCEPTION 'report period must not be null' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	IF until <= since THEN
		RAISE EXCEPTION 'report period is empty: until (%) must be after since (%)', until, since
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	SELECT * INTO p FROM wam.referral_program x WHERE x.id = pid;

	rs := ARRAY(SELECT r FROM wam.referral r WHERE r.program_id = pid AND r.created_at >= since AND r.created_at < until);

	RETURN QUERY SELECT 'invitations'::text, NULL::text, count(*)::numeric, 'referral attempts with a code of the program'::text
				 FROM unnest(rs);
	SELECT count(*) FILTER (WHERE r.status <> 'rejected'), count(*) FILTER (WHERE r.status = 'qualified')
	INTO n_accepted, n_qualified FROM unnest(rs) r;
	RETURN QUERY SELECT 'accepted'::text, NULL::text, n_accepted::numeric, 'not rejected by the abuse checks'::text;
	RETURN QUERY SELECT 'status'::text, s.status, count(r.id)::numeric, NULL::text
				 FROM unnest(ARRAY['pending', 'review', 'qualified', 'lapsed', 'revoked', 'rejected']) WITH ORDINALITY s(status, o)
				 LEFT JOIN unnest(rs) r ON r.status = s.status
				 GROUP BY s.status, s.o ORDER BY s.o;
	RETURN QUERY SELECT 'rejected'::text, r.reason, count(*)::numeric, NULL::text
				 FROM unnest(rs) r WHERE r.status = 'rejected'
				 GROUP BY r.reason ORDER BY count(*) DESC, r.reason;
	RETURN QUERY SELECT 'conversion'::text, NULL::text,
						CASE WHEN n_accepted > 0 THEN round(n_qualified::numeric / n_accepted, 4) END,
						'qualified / accepted' || CASE WHEN p.benchmark ->> 'conversion' IS NOT NULL
													 THEN '; preset benchmark ' || (p.benchmark ->> 'conversion') ELSE '' END;
	-- rewards decided for referrals of the period: by tier and status
	RETURN QUERY SELECT 'rewards'::text, format('tier %s: %s (%s)', w.tier, w.reward, w.status), count(*)::numeric,
						format('cost %s', sum(w.cost))
				 FROM wam.referral_reward w
				 WHERE w.program_id = pid AND w.created_at >= since AND w.created_at < until
				 GROUP BY w.tier, w.reward, w.status ORDER BY w.tier, w.status;
	SELECT coalesce(sum(w.cost), 0) INTO cost FROM wam.referral_reward w
	WHERE w.program_id = pid AND w.created_at >= since AND w.created_at < until AND w.status = 'issued';
	RETURN QUERY SELECT 'reward cost'::text, NULL::text, cost, 'issued rewards'::text;
	-- revenue of the referred customers: their orders from the referral up to until
	SELECT coalesce(sum(o.amount), 0) INTO revenue
	FROM unnest(rs) r
	JOIN wam.customer_order o ON o.customer_id = r.invitee_id AND o.ordered_at >= r.created_at AND o.ordered_at < until
	WHERE r.status = 'qualified';
	RETURN QUERY SELECT 'revenue'::text, NULL::text, revenue, 'orders of qualified referred customers up to the end of the period'::text;
	RETURN QUERY SELECT 'roi'::text, NULL::text, CASE WHEN cost > 0 THEN round(revenue / cost, 2) END,
						CASE WHEN cost > 0 THEN 'revenue / reward cost' ELSE 'no reward cost in the period' END;
	-- 30-day retention: qualified referred customers whose first 30 days ended
	-- by until, retained when they ordered or were really active after the
	-- qualifying order and within 30 days: replied, wrote, read a message or
	-- clicked a link (consent, opt-out and other bookkeeping events are not
	-- activity: an opt-out must never count as retention)
	SELECT count(*), count(*) FILTER (WHERE EXISTS (
				SELECT FROM wam.customer_order o
				WHERE o.customer_id = r.invitee_id AND o.order_id <> r.order_id
				  AND o.ordered_at > r.qualified_at AND o.ordered_at <= r.qualified_at + interval '30 days')
			OR EXISTS (
				SELECT FROM wam.event e
				WHERE e.customer_id = r.invitee_id
				  AND e.kind IN ('reply', 'inbound_message', 'message_read', 'link_click')
				  AND e.occurred_at > r.qualified_at AND e.occurred_at <= r.qualified_at + interval '30 days'))
	INTO matured, retained
	FROM unnest(rs) r
	WHERE r.status = 'qualified' AND r.qualified_at + interval '30 days' <= until;
	churn := CASE WHEN matured > 0 THEN round(1 - retained::numeric / matured, 4) END;
	RETURN QUERY SELECT 'retention 30d'::text, NULL::text, CASE WHEN matured > 0 THEN round(retained::numeric / matured, 4) END,
						format('%s of %s referred customers active within 30 days of their first order', retained, matured);
	RETURN QUERY SELECT 'first-month churn'::text, NULL::text, churn,
						CASE WHEN churn > 0.40 THEN 'FLAGGED: above 40%, change the reward design'
							 WHEN churn IS NULL THEN 'no referred customer has completed 30 days yet'
							 ELSE 'at most 40%' END;
	RETURN QUERY SELECT 'flagged'::text, NULL::text, (coalesce(churn > 0.40, false))::integer::numeric,
						'1 when first-month churn of referred customers exceeds 40%'::text;
	RETURN QUERY SELECT 'open reviews'::text, NULL::text, count(*)::numeric, 'frozen referrers awaiting review'::text
				 FROM wam.referral_review v WHERE v.program_id = pid AND v.resolved_at IS NULL;
END
$$;

UPDATE wam.rfm_scheme SET description = 'six value tiers grouping the segment map' WHERE name = 'value tiers' AND description = 'six value tiers grouping the segment map (R-R1)';

CREATE OR REPLACE FUNCTION wam.define_rfm_scheme(name text, rules jsonb, description text DEFAULT NULL)
	RETURNS TABLE (tier text, cells bigint)
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	rule jsonb;
	pos bigint;
	k text;
	rng numeric[];
	ranges numeric[];
	dims text[] := ARRAY['r', 'f', 'm', 'fm'];
	i integer;
	segs text[];
	known text[];
	positions integer[];
	bad integer;
	n_tiers integer;
BEGIN
	IF name IS NULL OR btrim(name) = '' THEN
		RAISE EXCEPTION 'scheme name must not be empty' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF EXISTS (SELECT FROM wam.rfm_scheme s WHERE s.name = name AND s.builtin) THEN
		RAISE EXCEPTION 'tier scheme "%" is built in and cannot be redefined', name
			USING ERRCODE = 'invalid_parameter_value', HINT = 'Define a scheme under another name.';
	END IF;
	IF rules IS NULL OR jsonb_typeof(rules) <> 'array' OR jsonb_array_length(rules) = 0 THEN
		RAISE EXCEPTION 'rules must be a non-empty JSON array of objects' USING ERRCODE = 'invalid_parameter_value',
			HINT = 'For example [{"tier": "VIP", "r": [4, 5], "f": [4, 5]}, ..., {"tier": "Others"}].';
	END IF;
	SELECT s.tiers INTO known FROM wam.rfm_scheme s WHERE s.name = 'segment map';

	DELETE FROM wam.rfm_tier_rule t WHERE t.scheme = name;
	INSERT INTO wam.rfm_scheme AS s (name, description) VALUES (name, description)
	ON CONFLICT ON CONSTRAINT rfm_scheme_pkey DO UPDATE SET description = EXCLUDED.description;

	FOR rule, pos IN SELECT e, o FROM jsonb_array_elements(rules) WITH ORDINALITY x(e, o) LOOP
		IF jsonb_typeof(rule) <> 'object' THEN
			RAISE EXCEPTION 'rule % is not a JSON object', pos USING ERRCODE = 'invalid_parameter_value';
		END IF;
		SELECT min(key) INTO k FROM jsonb_object_keys(rule) key
		WHERE key NOT IN ('tier', 'r', 'f', 'm', 'fm', 'segments');
		IF k IS NOT NULL THEN
			RAISE EXCEPTION 'rule % has an unknown key "%"', pos, k USING ERRCODE = 'invalid_parameter_value',
				HINT = 'The keys are tier, r, f, m, fm (ranges [low, high] or one number) and segments (names of the segment map).';
		END IF;
		IF jsonb_typeof(rule -> 'tier') IS DISTINCT FROM 'string' OR btrim(rule ->> 'tier') = '' THEN
			RAISE EXCEPTION 'rule % needs a tier name', pos USING ERRCODE = 'invalid_parameter_value';
		END IF;
		IF rule ->> 'tier' = 'Prospects' THEN
			RAISE EXCEPTION 'the tier name "Prospects" is reserved for customers without orders'
				USING ERRCODE = 'invalid_parameter_value';
		END IF;
		ranges := ARRAY[1, 5, 1, 5, 1, 5, 1, 5];
		FOR i IN 1 .. 4 LOOP
			CONTINUE WHEN NOT rule ? dims[i];
			rng := CASE jsonb_typeof(rule -> dims[i])
				WHEN 'number' THEN ARRAY[(rule ->> dims[i])::numeric, (rule ->> dims[i])::numeric]
				WHEN 'array' THEN CASE WHEN jsonb_array_length(rule -> dims[i]) = 2
										AND jsonb_typeof(rule -> dims[i] -> 0) = 'number'
										AND jsonb_typeof(rule -> dims[i] -> 1) = 'number'
								  THEN ARRAY[(rule -> dims[i] ->> 0)::numeric, (rule -> dims[i] ->> 1)::numeric] END
				END;
			IF rng IS NULL OR rng[1] > rng[2] OR rng[1] < 1 OR rng[2] > 5
			   OR (dims[i] <> 'fm' AND (rng[1] <> trunc(rng[1]) OR rng[2] <> trunc(rng[2]))) THEN
				RAISE EXCEPTION 'rule %: % must be a score from 1 to 5 or a range [low, high] of them, not %',
					pos, dims[i], rule -> dims[i] USING ERRCODE = 'invalid_parameter_value';
			END IF;
			ranges[2 * i - 1] := rng[1];
			ranges[2 * i] := rng[2];
		END LOOP;
		segs := NULL;
		IF rule ? 'segments' THEN
			IF jsonb_typeof(rule -> 'segments') <> 'array' OR jsonb_array_length(rule -> 'segments') = 0 THEN
				RAISE EXCEPTION 'rule %: segments must be a non-empty array of segment names', pos
					USING ERRCODE = 'invalid_parameter_value';
			END IF;
			segs := ARRAY(SELECT jsonb_array_elements_text(rule -> 'segments'));
			SELECT min(s) INTO k FROM unnest(segs) s WHERE s <> ALL (known);
			IF k IS NOT NULL THEN
				RAISE EXCEPTION 'rule %: unknown segment "%"', pos, k USING ERRCODE = 'invalid_parameter_value',
					HINT = format('The segments are: %s.', array_to_string(known, ', '));
			END IF;
		END IF;
		INSERT INTO wam.rfm_tier_rule (scheme, position, tier, r_min, r_max, f_min, f_max, m_min, m_max,
									   fm_min, fm_max, segments)
		VALUES (name, pos, btrim(rule ->> 'tier'), ranges[1], ranges[2], ranges[3], ranges[4], ranges[5], ranges[6],
				ranges[7], ranges[8], segs);
	END LOOP;

	positions := wam_internal.rfm_compile(name);
	SELECT min(c) INTO bad FROM unnest(positions) WITH ORDINALITY p(pos, c) WHERE p.pos IS NULL;
	IF bad IS NOT NULL THEN
		RAISE EXCEPTION 'no rule matches the scores R=% F=% M=%', (bad - 1) / 25 + 1, (bad - 1) / 5 % 5 + 1,
			(bad - 1) % 5 + 1
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Every customer needs a tier: end the rules with a catch-all such as {"tier": "Others"}.';
	END IF;
	SELECT min(t.position) INTO bad FROM wam.rfm_tier_rule t
	WHERE t.scheme = name AND t.position <> ALL (positions);
	IF bad IS NOT NULL THEN
		RAISE EXCEPTION 'rule % (tier "%") never applies: the rules before it match all its scores', bad,
			(SELECT t.tier FROM wam.rfm_tier_rule t WHERE t.scheme = name AND t.position = bad)
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	SELECT count(DISTINCT t.tier) INTO n_tiers FROM wam.rfm_tier_rule t WHERE t.scheme = name;
	IF n_tiers < 5 OR n_tiers > 7 THEN
		RAISE EXCEPTION 'a tier scheme has 5 to 7 tiers, not %', n_tiers
			USING ERRCODE = 'invalid_parameter_value', DETAIL = 'Customers are divided into 5 to 7 tiers.';
	END IF;
	PERFORM wam_internal.rfm_store_scheme(name);
	RETURN QUERY
	SELECT t.tier, count(*) FROM wam.rfm_scheme s, unnest(s.tier_map) t(tier)
	WHERE s.name = name GROUP BY t.tier ORDER BY array_position((SELECT s2.tiers FROM wam.rfm_scheme s2 WHERE s2.name = name), t.tier);
END
$$;

