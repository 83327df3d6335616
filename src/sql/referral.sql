-- src/sql/referral.sql: referral programs: codes and links, the abuse-check
-- trigger (C), qualification by the invitee's first order, tiered rewards within
-- cost caps, review and report
-- The per-installation secret that keys the referral codes.  Only the
-- extension owner can read it: no role is granted anything on it.
CREATE TABLE wam.referral_secret (
	id boolean PRIMARY KEY DEFAULT true CONSTRAINT referral_secret_one_row CHECK (id),
	secret bytea NOT NULL CONSTRAINT referral_secret_length CHECK (length(secret) >= 32),
	created_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);
-- two version-4 UUIDs: 244 bits from the server's strong random source
INSERT INTO wam.referral_secret (secret)
SELECT pg_catalog.decode(pg_catalog.replace(pg_catalog.gen_random_uuid()::text || pg_catalog.gen_random_uuid()::text, '-', ''), 'hex');
COMMENT ON TABLE wam.referral_secret IS 'the secret key of the referral codes (never granted)';

REVOKE ALL ON wam.referral_secret FROM PUBLIC;
GRANT SELECT ON wam.referral_secret TO wam_definer;

CREATE TABLE wam.referral_program (
	id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	name text NOT NULL UNIQUE CONSTRAINT referral_program_name CHECK (btrim(name) <> '' AND length(name) <= 100),
	preset text,
	cap integer NOT NULL,
	velocity_per_hour integer NOT NULL,
	min_order numeric NOT NULL,
	qualify_window interval NOT NULL,
	hold interval NOT NULL,
	cost_cap_share numeric NOT NULL,
	flat_cost_cap numeric,
	ring_depth integer NOT NULL,
	signup_grace interval NOT NULL,
	tiers jsonb NOT NULL,
	business_number text,
	landing_url text,
	message text NOT NULL,
	starts_at timestamptz,
	ends_at timestamptz,
	benchmark jsonb,
	reward_template jsonb,
	sender text,
	created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	updated_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	reward_variants jsonb
);
COMMENT ON TABLE wam.referral_program IS 'referral programs and their settings';
COMMENT ON COLUMN wam.referral_program.reward_variants IS 'the reward A/B test: [{"name": ..., "tiers": [...]}, ...], two or more variants drawn per referrer by a keyed hash (the first is the control; a variant without tiers gives the program''s); NULL: no test';

REVOKE ALL ON wam.referral_program FROM PUBLIC;
GRANT SELECT ON wam.referral_program TO wam_reader;
GRANT SELECT, INSERT, UPDATE ON wam.referral_program TO wam_definer;

-- One row per customer and program once the customer's code was issued:
-- the code, and the counters the abuse trigger locks and updates.
CREATE TABLE wam.referrer (
	customer_id bigint NOT NULL REFERENCES wam.customer ON DELETE CASCADE,
	program_id integer NOT NULL REFERENCES wam.referral_program ON DELETE CASCADE,
	code text NOT NULL UNIQUE,
	issued_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	status text NOT NULL DEFAULT 'active' CONSTRAINT referrer_status CHECK (status IN ('active', 'frozen')),
	frozen_at timestamptz,
	velocity_since timestamptz,
	recent_attempts timestamptz[] NOT NULL DEFAULT '{}',
	accepted integer NOT NULL DEFAULT 0,
	qualified integer NOT NULL DEFAULT 0,
	PRIMARY KEY (customer_id, program_id)
) WITH (fillfactor = 70);
COMMENT ON COLUMN wam.referrer.velocity_since IS 'when a review last cleared the referrer: invitations before it no longer count towards velocity_per_hour';
COMMENT ON COLUMN wam.referrer.recent_attempts IS 'times of the referrer''s latest invitations within the last hour (at most velocity_per_hour + 1 of them): the rolling-hour count, kept in the row the trigger locks anyway';
COMMENT ON TABLE wam.referrer IS 'issued referral codes with per-referrer counters';

REVOKE ALL ON wam.referrer FROM PUBLIC;
GRANT SELECT ON wam.referrer TO wam_reader;
GRANT SELECT, INSERT, UPDATE ON wam.referrer TO wam_definer;

CREATE TABLE wam.customer_fingerprint (
	customer_id bigint NOT NULL REFERENCES wam.customer ON DELETE CASCADE,
	kind text NOT NULL CONSTRAINT customer_fingerprint_kind CHECK (kind IN ('device', 'payment')),
	value_hash bytea NOT NULL,
	first_seen timestamptz NOT NULL DEFAULT pg_catalog.now(),
	PRIMARY KEY (customer_id, kind, value_hash)
);
COMMENT ON TABLE wam.customer_fingerprint IS 'hashed device and payment fingerprints per customer';

REVOKE ALL ON wam.customer_fingerprint FROM PUBLIC;
GRANT SELECT, INSERT ON wam.customer_fingerprint TO wam_definer;

CREATE TABLE wam.referral (
	id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	-- program and referrer are set by the trigger from the code's wam.referrer
	-- row; no foreign keys (each would lock the program row FOR KEY SHARE on
	-- every insert, from every session): deleting a referrer row (its
	-- customer or program deleted) deletes its referrals by trigger instead
	program_id integer,
	referrer_id bigint,
	invitee_id bigint NOT NULL REFERENCES wam.customer ON DELETE CASCADE,
	code text NOT NULL,
	source jsonb,
	created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	status text NOT NULL DEFAULT 'pending'
		CONSTRAINT referral_status CHECK (status IN ('pending', 'review', 'rejected', 'qualified', 'lapsed', 'revoked')),
	reason text CONSTRAINT referral_reason CHECK (reason IN (
		'mistyped code', 'unknown code', 'program inactive', 'self-referral', 'same phone',
		'shared device', 'shared payment', 'existing customer', 'already referred', 'ring', 'cap',
		'velocity', 'referrer frozen', 'review rejected', 'first order below minimum',
		'window passed', 'refund')),
	detail text,
	order_id bigint,
	qualified_at timestamptz,
	closed_at timestamptz,
	CONSTRAINT referral_rejected_reason CHECK (status <> 'rejected' OR reason IS NOT NULL)
);
CREATE INDEX referral_referrer_time ON wam.referral (referrer_id, created_at);
-- first valid referral wins: at most one live referral per invitee and program
CREATE UNIQUE INDEX referral_invitee_once ON wam.referral (invitee_id, program_id)
	WHERE status IN ('pending', 'qualified', 'review');
COMMENT ON TABLE wam.referral IS 'every referral attempt with its status and reason';
COMMENT ON COLUMN wam.referral.code IS 'the code in canonical form, or as typed when it is not a valid code';
COMMENT ON COLUMN wam.referral.source IS 'what the application knows about the attempt: phone (typed at sign-up), device and payment fingerprints, channel, utm_* ...';
COMMENT ON COLUMN wam.referral.order_id IS 'the invitee''s first order, which qualified (or failed to qualify) the referral';

REVOKE ALL ON wam.referral FROM PUBLIC;
GRANT SELECT ON wam.referral TO wam_reader;
GRANT SELECT, INSERT, UPDATE, DELETE ON wam.referral TO wam_definer;
GRANT USAGE ON SEQUENCE wam.referral_id_seq TO wam_definer;

CREATE TABLE wam.referral_review (
	id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	program_id integer NOT NULL REFERENCES wam.referral_program ON DELETE CASCADE,
	referrer_id bigint NOT NULL REFERENCES wam.customer ON DELETE CASCADE,
	kind text NOT NULL CONSTRAINT referral_review_kind CHECK (kind IN ('velocity')),
	opened_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	details jsonb,
	resolved_at timestamptz,
	resolution text CONSTRAINT referral_review_resolution CHECK (resolution IN ('accepted', 'rejected')),
	resolved_by name,
	note text,
	CONSTRAINT referral_review_resolved CHECK ((resolved_at IS NULL) = (resolution IS NULL))
);
CREATE UNIQUE INDEX referral_review_open ON wam.referral_review (program_id, referrer_id) WHERE resolved_at IS NULL;
COMMENT ON TABLE wam.referral_review IS 'referrers frozen for too many invitations, awaiting review';

REVOKE ALL ON wam.referral_review FROM PUBLIC;
GRANT SELECT ON wam.referral_review TO wam_reader;
GRANT SELECT, INSERT, UPDATE ON wam.referral_review TO wam_definer;
GRANT USAGE ON SEQUENCE wam.referral_review_id_seq TO wam_definer;

CREATE TABLE wam.referral_reward (
	id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	program_id integer NOT NULL REFERENCES wam.referral_program ON DELETE CASCADE,
	referrer_id bigint NOT NULL REFERENCES wam.customer ON DELETE CASCADE,
	tier integer NOT NULL,
	reward text NOT NULL,
	cost numeric NOT NULL,
	redemption_code text NOT NULL UNIQUE,
	status text NOT NULL CONSTRAINT referral_reward_status CHECK (status IN ('issued', 'held', 'revoked')),
	reason text,
	cost_cap numeric,
	spent_before numeric NOT NULL DEFAULT 0,
	created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	decided_at timestamptz,
	notify_status text NOT NULL
		CONSTRAINT referral_reward_notify_status CHECK (notify_status IN ('waiting', 'queued', 'refused', 'not configured', 'cancelled')),
	notify_detail text,
	-- no foreign key: old outbox rows may be purged without touching rewards
	message_id bigint,
	variant text,
	CONSTRAINT referral_reward_queued CHECK (notify_status <> 'queued' OR message_id IS NOT NULL)
);
CREATE UNIQUE INDEX referral_reward_tier_once ON wam.referral_reward (referrer_id, program_id, tier) WHERE status <> 'revoked';
-- rewards whose message could not be queued: what wam.notify_referral_reward retries
CREATE INDEX referral_reward_notify ON wam.referral_reward (created_at) WHERE notify_status IN ('refused', 'not configured');
CREATE UNIQUE INDEX referral_reward_message ON wam.referral_reward (message_id) WHERE message_id IS NOT NULL;
COMMENT ON TABLE wam.referral_reward IS 'rewards of referrers who reached a tier, with their message';
COMMENT ON COLUMN wam.referral_reward.notify_status IS 'the referrer''s message: waiting = held, not to be sent yet; queued = in wam.outbox as message_id (its delivery status is there); refused = the queue refused it (no consent, opted out, a placeholder without value: see notify_detail); not configured = the program has no reward_template or no usable sender; cancelled = the reward was revoked before the message went out';
COMMENT ON COLUMN wam.referral_reward.notify_detail IS 'why the message was not queued (the queue''s own refusal), or was cancelled';
COMMENT ON COLUMN wam.referral_reward.message_id IS 'the message of wam.outbox that tells the referrer the redemption code (campaign referral:<program>, variant tier <n>)';
COMMENT ON COLUMN wam.referral_reward.cost_cap IS 'the referrer''s reward budget when the reward was decided (flat_cost_cap, or cost_cap_share x lifetime value)';
COMMENT ON COLUMN wam.referral_reward.spent_before IS 'cost of the referrer''s rewards already issued (all programs) when this one was decided';
COMMENT ON COLUMN wam.referral_reward.variant IS 'the reward variant of the program''s A/B test the referrer was drawn into (reward_variants), NULL without a test';

REVOKE ALL ON wam.referral_reward FROM PUBLIC;
GRANT SELECT ON wam.referral_reward TO wam_reader;
GRANT SELECT, INSERT, UPDATE ON wam.referral_reward TO wam_definer;
GRANT USAGE ON SEQUENCE wam.referral_reward_id_seq TO wam_definer;

-- C functions

CREATE FUNCTION wam_internal.referral_code_make(secret bytea, program integer, customer bigint, attempt integer) RETURNS text
	AS 'MODULE_PATHNAME', 'wam_referral_code_make' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION wam_internal.referral_code_make(bytea, integer, bigint, integer) IS 'internal: the referral code of (program, customer): HMAC-SHA256 under the secret, 10 Crockford base-32 symbols and a check symbol';

REVOKE EXECUTE ON FUNCTION wam_internal.referral_code_make(bytea, integer, bigint, integer) FROM PUBLIC;

CREATE FUNCTION wam.normalize_referral_code(code text) RETURNS text
	AS 'MODULE_PATHNAME', 'wam_referral_code_normalize' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION wam.normalize_referral_code(text) IS 'canonical form of a typed referral code; error on a typo';

REVOKE EXECUTE ON FUNCTION wam.normalize_referral_code(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.normalize_referral_code(text) TO wam_reader;

CREATE FUNCTION wam_internal.referral_attempts(times timestamptz[], at timestamptz, velocity integer) RETURNS timestamptz[]
	AS 'MODULE_PATHNAME', 'wam_referral_attempts' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION wam_internal.referral_attempts(timestamptz[], timestamptz, integer) IS 'internal: the rolling-hour attempt times of a referrer after an attempt at "at" (the newest velocity + 1 within the hour, ascending)';

REVOKE EXECUTE ON FUNCTION wam_internal.referral_attempts(timestamptz[], timestamptz, integer) FROM PUBLIC;

CREATE FUNCTION wam.redemption_code() RETURNS text
	AS 'MODULE_PATHNAME', 'wam_redemption_code' LANGUAGE C VOLATILE PARALLEL SAFE;
COMMENT ON FUNCTION wam.redemption_code() IS 'a fresh random 13-character redemption code';

REVOKE EXECUTE ON FUNCTION wam.redemption_code() FROM PUBLIC;

CREATE FUNCTION wam_internal.referral_check_trigger() RETURNS trigger
	AS 'MODULE_PATHNAME', 'wam_referral_check' LANGUAGE C;
COMMENT ON FUNCTION wam_internal.referral_check_trigger() IS 'trigger: the abuse checks of a referral attempt (code, self-referral, same phone, shared device or payment, existing customer, already referred, ring, cap, velocity freeze); sets program, referrer, status, reason and detail';

CREATE TRIGGER referral_check BEFORE INSERT ON wam.referral
	FOR EACH ROW EXECUTE FUNCTION wam_internal.referral_check_trigger();

REVOKE EXECUTE ON FUNCTION wam_internal.referral_check_trigger() FROM PUBLIC;

CREATE FUNCTION wam_internal.referrer_delete_trigger() RETURNS trigger
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
BEGIN
	DELETE FROM wam.referral r WHERE r.referrer_id = OLD.customer_id AND r.program_id = OLD.program_id;
	RETURN NULL;
END
$$;
COMMENT ON FUNCTION wam_internal.referrer_delete_trigger() IS 'trigger: a deleted referrer (customer or program deleted) takes its referrals along';
CREATE TRIGGER referrer_delete AFTER DELETE ON wam.referrer
	FOR EACH ROW EXECUTE FUNCTION wam_internal.referrer_delete_trigger();

REVOKE EXECUTE ON FUNCTION wam_internal.referrer_delete_trigger() FROM PUBLIC;

-- settings

-- The defaults (R-F3, R-F5) and the industry presets (R-F7).  A preset's
-- benchmark (reward, cost per invite, conversion, payback months) is kept in
-- the settings and compared with in wam.referral_report.
CREATE FUNCTION wam.referral_defaults(preset text DEFAULT NULL) RETURNS jsonb
	LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, wam, pg_temp
AS $$
DECLARE
	base jsonb := jsonb_build_object(
		'cap', 10, 'velocity_per_hour', 50, 'min_order', 199, 'qualify_window', '30 days',
		'hold', '14 days', 'cost_cap_share', 0.15, 'flat_cost_cap', NULL, 'ring_depth', 5,
		'signup_grace', '1 day',
		'tiers', '[{"at": 1, "reward": "50-unit coupon", "cost": 50},
				   {"at": 5, "reward": "free trial sample", "cost": 8},
				   {"at": 10, "reward": "full-size product", "cost": 60}]'::jsonb,
		'business_number', NULL, 'landing_url', NULL,
		'message', 'Hi! A friend invited me. My invitation code: {code}',
		'starts_at', NULL, 'ends_at', NULL, 'preset', NULL, 'benchmark', NULL,
		'reward_template', NULL, 'sender', NULL);
BEGIN
	RETURN base || CASE preset
		WHEN 'retail e-commerce' THEN jsonb_build_object('preset', preset,
			'tiers', '[{"at": 1, "reward": "50-unit coupon", "cost": 25},
					   {"at": 5, "reward": "free trial sample", "cost": 8},
					   {"at": 10, "reward": "full-size product", "cost": 60}]'::jsonb,
			'benchmark', '{"reward": "50-unit coupon", "cost_per_invite": [18, 25], "conversion": 0.28, "payback_months": 1.2}'::jsonb)
		WHEN 'online education' THEN jsonb_build_object('preset', preset,
			'tiers', '[{"at": 1, "reward": "7-day course trial", "cost": 8},
					   {"at": 3, "reward": "7-day membership", "cost": 8}]'::jsonb,
			'min_order', 0,
			'benchmark', '{"reward": "7-day course trial", "cost_per_invite": [6, 8], "conversion": 0.35, "payback_months": 2.5}'::jsonb)
		WHEN 'local services' THEN jsonb_build_object('preset', preset,
			'tiers', '[{"at": 1, "reward": "20% off the second booking", "cost": 40}]'::jsonb,
			'benchmark', '{"reward": "20% off the second booking", "cost_per_invite": [30, 40], "conversion": 0.22, "payback_months": 0.8}'::jsonb)
		ELSE '{}'::jsonb END;
END
$$;
COMMENT ON FUNCTION wam.referral_defaults(text) IS 'default program settings, optionally with a preset applied';

REVOKE EXECUTE ON FUNCTION wam.referral_defaults(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.referral_defaults(text) TO wam_reader;

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

-- Validates settings given by an administrator and merges them into base;
-- returns the complete normalized settings.
-- (PARALLEL UNSAFE: the EXCEPTION blocks start subtransactions)
CREATE FUNCTION wam_internal.referral_settings(given jsonb, base jsonb) RETURNS jsonb
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

-- The settings are stored once, as the typed columns of wam.referral_program;
-- this is the document wam_internal.referral_settings() checks and merges into.
CREATE FUNCTION wam.referral_program_settings(p wam.referral_program) RETURNS jsonb
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

-- programs

CREATE FUNCTION wam.create_referral_program(name text, settings jsonb DEFAULT '{}') RETURNS integer
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

CREATE FUNCTION wam.configure_referral_program(name text, settings jsonb) RETURNS jsonb
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

CREATE FUNCTION wam.referral_program_id(program text) RETURNS integer
	LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	pid integer;
BEGIN
	IF program IS NULL THEN
		RAISE EXCEPTION 'referral program must not be null' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	SELECT p.id INTO pid FROM wam.referral_program p WHERE p.name = program;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'referral program "%" does not exist', program USING ERRCODE = 'undefined_object';
	END IF;
	RETURN pid;
END
$$;
COMMENT ON FUNCTION wam.referral_program_id(text) IS 'id of a referral program by name';

REVOKE EXECUTE ON FUNCTION wam.referral_program_id(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.referral_program_id(text) TO wam_reader;
GRANT USAGE ON SEQUENCE wam.referral_program_id_seq TO wam_definer;

-- codes and links

CREATE FUNCTION wam.referral_code(customer bigint, program text) RETURNS text
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	pid integer := wam.referral_program_id(program);
	c text;
	key bytea;
	attempt integer := 0;
BEGIN
	PERFORM wam_internal.refuse_null(customer IS NULL, 'customer');
	SELECT r.code INTO c FROM wam.referrer r WHERE r.customer_id = customer AND r.program_id = pid;
	IF FOUND THEN
		RETURN c;
	END IF;
	IF NOT EXISTS (SELECT FROM wam.customer k WHERE k.id = customer) THEN
		RAISE EXCEPTION 'customer % does not exist', customer USING ERRCODE = 'foreign_key_violation';
	END IF;
	SELECT s.secret INTO key FROM wam.referral_secret s;
	LOOP
		-- another customer's hash may collide (about 1 in 10^15 / issued codes):
		-- the next attempt number gives another, equally stable, code
		c := wam_internal.referral_code_make(key, pid, customer, attempt);
		INSERT INTO wam.referrer (customer_id, program_id, code) VALUES (customer, pid, c)
		ON CONFLICT DO NOTHING;
		IF FOUND THEN
			RETURN c;
		END IF;
		-- a concurrent call issued this customer's code first
		SELECT r.code INTO c FROM wam.referrer r WHERE r.customer_id = customer AND r.program_id = pid;
		IF FOUND THEN
			RETURN c;
		END IF;
		attempt := attempt + 1;
	END LOOP;
END
$$;
COMMENT ON FUNCTION wam.referral_code(bigint, text) IS 'the customer''s stable 11-character referral code';

REVOKE EXECUTE ON FUNCTION wam.referral_code(bigint, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.referral_code(bigint, text) TO wam_operator;

CREATE FUNCTION wam.referral_landing_url(customer bigint, program text, utm jsonb DEFAULT NULL) RETURNS text
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	p wam.referral_program;
	code text := wam.referral_code(customer, program);
	params jsonb;
	k text;
	q text := '';
BEGIN
	SELECT * INTO p FROM wam.referral_program x WHERE x.name = program;
	IF p.landing_url IS NULL THEN
		RAISE EXCEPTION 'referral program "%" has no landing_url', program
			USING ERRCODE = 'object_not_in_prerequisite_state',
				  HINT = 'Set it with wam.configure_referral_program(program, ''{"landing_url": "https://..."}'').';
	END IF;
	IF utm IS NOT NULL AND jsonb_typeof(utm) <> 'object' THEN
		RAISE EXCEPTION 'utm must be a JSON object, not %', jsonb_typeof(utm) USING ERRCODE = 'invalid_parameter_value';
	END IF;
	params := jsonb_build_object('utm_source', 'whatsapp', 'utm_medium', 'referral', 'utm_campaign', p.name)
			  || coalesce(utm, '{}');
	FOR k IN SELECT jsonb_object_keys(params) LOOP
		IF k !~ '^utm_(source|medium|campaign|term|content|id)$' THEN
			RAISE EXCEPTION 'unknown UTM parameter "%"', k
				USING ERRCODE = 'invalid_parameter_value',
					  HINT = 'Use utm_source, utm_medium, utm_campaign, utm_term, utm_content or utm_id.';
		END IF;
		IF jsonb_typeof(params -> k) NOT IN ('string', 'number') THEN
			RAISE EXCEPTION 'UTM parameter % must be a string, not %', k, jsonb_typeof(params -> k)
				USING ERRCODE = 'invalid_parameter_value';
		END IF;
	END LOOP;
	SELECT string_agg(x.key || '=' || wam.url_encode(x.value), '&' ORDER BY x.ord)
	INTO q
	FROM (SELECT e.key, e.value, array_position(ARRAY['utm_source', 'utm_medium', 'utm_campaign', 'utm_term',
														'utm_content', 'utm_id'], e.key) AS ord
		  FROM jsonb_each_text(params) e) x;
	RETURN p.landing_url || CASE WHEN strpos(p.landing_url, '?') > 0 THEN '&' ELSE '?' END
		   || 'ref=' || code || '&' || q;
END
$$;
COMMENT ON FUNCTION wam.referral_landing_url(bigint, text, jsonb) IS 'the program''s landing page URL with the code and UTM parameters';

REVOKE EXECUTE ON FUNCTION wam.referral_landing_url(bigint, text, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.referral_landing_url(bigint, text, jsonb) TO wam_operator;

CREATE FUNCTION wam.url_encode(value text) RETURNS text
	LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$
	SELECT coalesce(string_agg(CASE WHEN b BETWEEN 48 AND 57 OR b BETWEEN 65 AND 90 OR b BETWEEN 97 AND 122
										 OR b IN (45, 46, 95, 126)
									THEN chr(b) ELSE '%' || upper(lpad(to_hex(b), 2, '0')) END, '' ORDER BY i), '')
	FROM (SELECT i, get_byte(convert_to(value, 'UTF8'), i) AS b
		  FROM generate_series(0, octet_length(convert_to(value, 'UTF8')) - 1) i) x
$$;
COMMENT ON FUNCTION wam.url_encode(text) IS 'percent-encodes text for a URL query';

REVOKE EXECUTE ON FUNCTION wam.url_encode(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.url_encode(text) TO wam_reader;

CREATE FUNCTION wam.referral_link(customer bigint, program text, utm jsonb DEFAULT NULL) RETURNS text
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	p wam.referral_program;
	code text := wam.referral_code(customer, program);
	msg text;
BEGIN
	SELECT * INTO p FROM wam.referral_program x WHERE x.name = program;
	IF p.business_number IS NULL THEN
		RAISE EXCEPTION 'referral program "%" has no business_number', program
			USING ERRCODE = 'object_not_in_prerequisite_state',
				  HINT = 'Set the WhatsApp business number with wam.configure_referral_program(program, ''{"business_number": "+852 ..."}'').';
	END IF;
	msg := replace(p.message, '{code}', code);
	IF strpos(msg, '{landing_url}') > 0 THEN
		msg := replace(msg, '{landing_url}', wam.referral_landing_url(customer, program, utm));
	ELSIF utm IS NOT NULL THEN
		RAISE EXCEPTION 'the message of referral program "%" has no {landing_url} for the UTM parameters', program
			USING ERRCODE = 'object_not_in_prerequisite_state',
				  DETAIL = 'WhatsApp passes on only the prefilled text of a wa.me link; UTM parameters belong to the landing URL.',
				  HINT = 'Put {landing_url} in the program''s message, or use wam.referral_landing_url().';
	END IF;
	RETURN 'https://wa.me/' || p.business_number || '?text=' || wam.url_encode(msg);
END
$$;
COMMENT ON FUNCTION wam.referral_link(bigint, text, jsonb) IS 'the customer''s wa.me invitation link carrying the code';

REVOKE EXECUTE ON FUNCTION wam.referral_link(bigint, text, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.referral_link(bigint, text, jsonb) TO wam_operator;

-- recording referrals

CREATE FUNCTION wam.record_referral(code text, invitee bigint, source jsonb DEFAULT NULL) RETURNS text
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	st text;
	rs text;
BEGIN
	PERFORM wam_internal.refuse_null(code IS NULL, 'referral code');
	PERFORM wam_internal.refuse_null(invitee IS NULL, 'invitee');
	IF source IS NOT NULL AND jsonb_typeof(source) <> 'object' THEN
		RAISE EXCEPTION 'referral source must be a JSON object, not %', jsonb_typeof(source)
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF length(code) > 64 THEN
		code := left(code, 64);		-- keep the attempt, not a megabyte of text
	END IF;
	IF NOT EXISTS (SELECT FROM wam.customer c WHERE c.id = invitee) THEN
		RAISE EXCEPTION 'customer % does not exist', invitee USING ERRCODE = 'foreign_key_violation';
	END IF;
	INSERT INTO wam.referral AS r (code, invitee_id, source) VALUES (code, invitee, source)
	RETURNING r.status, r.reason INTO st, rs;
	RETURN CASE WHEN st = 'rejected' THEN st || ': ' || rs ELSE st END;
END
$$;
COMMENT ON FUNCTION wam.record_referral(text, bigint, jsonb) IS 'records a referral attempt; returns pending, review or rejected: reason';

CREATE FUNCTION wam.record_referral(code text, invitee_phone text, source jsonb DEFAULT NULL) RETURNS text
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	ph text;
	cid bigint;
BEGIN
	PERFORM wam_internal.refuse_null(invitee_phone IS NULL, 'invitee phone');
	ph := wam.normalize_phone(invitee_phone);
	SELECT c.id INTO cid FROM wam.customer c WHERE c.phone = ph;
	IF NOT FOUND THEN
		-- a sign-up through the invitation: the invitee becomes a customer now
		INSERT INTO wam.customer (phone) VALUES (ph) ON CONFLICT (phone) DO NOTHING;
		SELECT c.id INTO cid FROM wam.customer c WHERE c.phone = ph;
	END IF;
	RETURN wam.record_referral(code, cid, source);
END
$$;
COMMENT ON FUNCTION wam.record_referral(text, text, jsonb) IS 'records a referral attempt by phone, creating the invitee';

REVOKE EXECUTE ON FUNCTION wam.record_referral(text, bigint, jsonb) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION wam.record_referral(text, text, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.record_referral(text, bigint, jsonb) TO wam_operator;
GRANT EXECUTE ON FUNCTION wam.record_referral(text, text, jsonb) TO wam_operator;

CREATE FUNCTION wam.record_fingerprint(customer bigint, source jsonb) RETURNS integer
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	n integer;
BEGIN
	PERFORM wam_internal.refuse_null(customer IS NULL OR source IS NULL, 'customer and source');
	IF jsonb_typeof(source) <> 'object' THEN
		RAISE EXCEPTION 'fingerprint source must be a JSON object, not %', jsonb_typeof(source)
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF NOT EXISTS (SELECT FROM wam.customer c WHERE c.id = customer) THEN
		RAISE EXCEPTION 'customer % does not exist', customer USING ERRCODE = 'foreign_key_violation';
	END IF;
	INSERT INTO wam.customer_fingerprint (customer_id, kind, value_hash)
	SELECT customer, e.key, sha256(convert_to(e.value, 'UTF8'))
	FROM jsonb_each_text(source) e
	WHERE e.key IN ('device', 'payment') AND coalesce(e.value, '') <> ''
	ON CONFLICT DO NOTHING;
	GET DIAGNOSTICS n = ROW_COUNT;
	RETURN n;
END
$$;
COMMENT ON FUNCTION wam.record_fingerprint(bigint, jsonb) IS 'remembers a customer''s device and payment fingerprints';

REVOKE EXECUTE ON FUNCTION wam.record_fingerprint(bigint, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.record_fingerprint(bigint, jsonb) TO wam_operator;

-- qualification and rewards

-- The referrer's message about an issued reward (R-F2), queued through
-- wam.enqueue and so under the queue's rules (consent, opt-out, the
-- template).  A refusal is recorded on the reward, never raised: it must not
-- undo the order or review that issued the reward.  The caller stores the
-- result in the reward row.
CREATE FUNCTION wam_internal.referral_reward_enqueue(w wam.referral_reward, p wam.referral_program,
											OUT notify_status text, OUT notify_detail text, OUT message_id bigint)
	LANGUAGE plpgsql SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	t jsonb := p.reward_template;
	payload jsonb;
	configured boolean := false;
BEGIN
	IF jsonb_typeof(t) IS DISTINCT FROM 'object' THEN
		notify_status := 'not configured';
		notify_detail := format('referral program "%s" has no reward_template', p.name);
		RETURN;
	END IF;
	payload := jsonb_build_object('type', 'template', 'template',
		jsonb_build_object('name', t -> 'name', 'language', jsonb_build_object('code', t -> 'language'))
		|| CASE WHEN jsonb_array_length(t -> 'parameters') = 0 THEN '{}'::jsonb
				ELSE jsonb_build_object('components', jsonb_build_array(jsonb_build_object('type', 'body',
					 'parameters', (SELECT jsonb_agg(jsonb_build_object('type', 'text', 'text', e) ORDER BY i)
									FROM jsonb_array_elements(t -> 'parameters') WITH ORDINALITY x(e, i))))) END);
	-- one subtransaction, only when a reward is issued (rare next to referrals)
	BEGIN
		PERFORM wam.sender_id(p.sender);
		configured := true;
		message_id := wam.enqueue_message(w.referrer_id, payload, p.sender,
			vars => coalesce(t -> 'fallbacks', '{}') || jsonb_build_object('reward', w.reward, 'redemption_code', w.redemption_code,
															 'tier', w.tier::text, 'cost', w.cost::text, 'program', p.name),
			-- ahead of campaign traffic: it answers the invitee's order (R-F2)
			priority => 10, campaign => 'referral:' || p.name, variant => 'tier ' || w.tier);
		notify_status := 'queued';
	EXCEPTION WHEN object_not_in_prerequisite_state OR invalid_parameter_value OR undefined_object
				   OR foreign_key_violation OR null_value_not_allowed OR string_data_right_truncation THEN
		notify_status := CASE WHEN configured THEN 'refused' ELSE 'not configured' END;
		notify_detail := SQLERRM;
		message_id := NULL;
	END;
END
$$;
COMMENT ON FUNCTION wam_internal.referral_reward_enqueue(wam.referral_reward, wam.referral_program) IS 'internal: queues the referrer''s message about an issued reward (the program''s reward_template from its sender, campaign referral:<program>); returns queued and the message, or refused / not configured and why';

REVOKE EXECUTE ON FUNCTION wam_internal.referral_reward_enqueue(wam.referral_reward, wam.referral_program) FROM PUBLIC;

-- Decides tier rewards of a referrer whose qualified count went up: one
-- reward per tier reached and not yet rewarded, checked against the cost cap
-- (R-F4).  Over the cap it is held for review, never silently issued.
CREATE FUNCTION wam_internal.referral_grant_rewards(program integer, referrer bigint) RETURNS integer
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

-- Decides a pending referral from the invitee's first order (R-F5): it
-- qualifies when that order reaches min_order within qualify_window of the
-- referral, and lapses otherwise.  Returns the new status.
CREATE FUNCTION wam_internal.referral_evaluate(referral bigint) RETURNS text
	LANGUAGE plpgsql SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	r wam.referral;
	p wam.referral_program;
	o record;
BEGIN
	SELECT * INTO r FROM wam.referral x WHERE x.id = referral;
	IF r.status IS DISTINCT FROM 'pending' THEN
		RETURN r.status;
	END IF;
	SELECT * INTO p FROM wam.referral_program x WHERE x.id = r.program_id;
	SELECT k.order_id, k.amount, k.ordered_at INTO o
	FROM wam.customer_order k WHERE k.customer_id = r.invitee_id
	ORDER BY k.ordered_at, k.order_id LIMIT 1;
	IF NOT FOUND THEN
		RETURN r.status;
	END IF;
	-- serialize with the abuse trigger and other qualifications of the referrer
	PERFORM FROM wam.referrer x WHERE x.customer_id = r.referrer_id AND x.program_id = r.program_id FOR UPDATE;
	IF o.ordered_at > r.created_at + p.qualify_window THEN
		UPDATE wam.referral x SET status = 'lapsed', reason = 'window passed', order_id = o.order_id, closed_at = now(),
			detail = format('The first order came %s after the referral, later than the window of %s.',
							date_trunc('hour', o.ordered_at - r.created_at), p.qualify_window)
		WHERE x.id = r.id;
		RETURN 'lapsed';
	END IF;
	IF o.amount < p.min_order THEN
		UPDATE wam.referral x SET status = 'lapsed', reason = 'first order below minimum', order_id = o.order_id,
			closed_at = now(), detail = format('The first order of %s is below the minimum of %s.', o.amount, p.min_order)
		WHERE x.id = r.id;
		RETURN 'lapsed';
	END IF;
	UPDATE wam.referral x SET status = 'qualified', order_id = o.order_id, qualified_at = greatest(o.ordered_at, r.created_at)
	WHERE x.id = r.id;
	UPDATE wam.referrer x SET qualified = x.qualified + 1 WHERE x.customer_id = r.referrer_id AND x.program_id = r.program_id;
	PERFORM wam_internal.referral_grant_rewards(r.program_id, r.referrer_id);
	RETURN 'qualified';
END
$$;
COMMENT ON FUNCTION wam_internal.referral_evaluate(bigint) IS 'internal: qualifies or lapses a pending referral by the invitee''s first order, and grants the rewards of tiers reached';

REVOKE EXECUTE ON FUNCTION wam_internal.referral_evaluate(bigint) FROM PUBLIC;

-- Order triggers: new orders may qualify referrals (and carry fingerprints);
-- a refund (order deleted, or its amount lowered below the minimum) within
-- the hold period revokes the qualification and the rewards above the new
-- count.
CREATE FUNCTION wam_internal.referral_order_insert_trigger() RETURNS trigger
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
DECLARE
	rid bigint;
BEGIN
	-- restored rows already carry their effects (src/backup.c)
	IF wam_internal.restoring() THEN
		RETURN NULL;
	END IF;
	INSERT INTO wam.customer_fingerprint (customer_id, kind, value_hash, first_seen)
	SELECT n.customer_id, e.key, sha256(convert_to(e.value, 'UTF8')), n.ordered_at
	FROM new_orders n, LATERAL jsonb_each_text(n.details) e
	WHERE n.details ?| ARRAY['device', 'payment'] AND e.key IN ('device', 'payment') AND coalesce(e.value, '') <> ''
	ON CONFLICT DO NOTHING;
	FOR rid IN SELECT r.id FROM wam.referral r
			   WHERE r.invitee_id IN (SELECT DISTINCT n.customer_id FROM new_orders n) AND r.status = 'pending'
			   ORDER BY r.referrer_id, r.program_id
	LOOP
		PERFORM wam_internal.referral_evaluate(rid);
	END LOOP;
	RETURN NULL;
END
$$;
COMMENT ON FUNCTION wam_internal.referral_order_insert_trigger() IS 'trigger: new orders qualify pending referrals of their customers and record device/payment fingerprints from order details';

CREATE FUNCTION wam_internal.referral_revoke(referral bigint, why text) RETURNS void
	LANGUAGE plpgsql SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	r wam.referral;
	n_qualified integer;
	stopped bigint[];
BEGIN
	SELECT * INTO r FROM wam.referral x WHERE x.id = referral;
	UPDATE wam.referrer x SET qualified = x.qualified - 1
	WHERE x.customer_id = r.referrer_id AND x.program_id = r.program_id
	RETURNING x.qualified INTO n_qualified;
	UPDATE wam.referral x SET status = 'revoked', reason = 'refund', closed_at = now(), detail = why
	WHERE x.id = r.id;
	-- the referrer's message, if it has not gone out yet, is cancelled too
	WITH c AS (
		UPDATE wam.outbox o SET status = 'cancelled', cancelled_at = now(),
			error_detail = 'the referral reward was revoked'
		FROM wam.referral_reward w
		WHERE w.referrer_id = r.referrer_id AND w.program_id = r.program_id AND w.tier > n_qualified
		  AND w.status <> 'revoked' AND w.notify_status = 'queued'
		  AND o.message_id = w.message_id AND o.status IN ('queued', 'retrying')
		RETURNING o.message_id)
	SELECT coalesce(array_agg(c.message_id), '{}') INTO stopped FROM c;
	UPDATE wam.referral_reward w
	SET status = 'revoked', decided_at = now(),
		reason = format('revoked: the referrer has %s qualified referrals after a refund', n_qualified),
		-- (revocations are rare: a look at the message's status per reward is fine)
		notify_status = CASE WHEN w.notify_status <> 'queued' OR w.message_id = ANY (stopped)
								  OR (SELECT o.status FROM wam.outbox o WHERE o.message_id = w.message_id)
									 IN ('failed', 'cancelled', 'expired')
							 THEN 'cancelled' ELSE 'queued' END,
		notify_detail = CASE WHEN w.notify_status <> 'queued' THEN 'the reward was revoked'
							 WHEN w.message_id = ANY (stopped) THEN 'the reward was revoked before its message was sent'
							 ELSE coalesce(
								(SELECT format('the reward was revoked; its message had not reached the referrer (%s)', o.status)
								 FROM wam.outbox o
								 WHERE o.message_id = w.message_id AND o.status IN ('failed', 'cancelled', 'expired')),
								'the reward was revoked after its message had left the queue') END
	WHERE w.referrer_id = r.referrer_id AND w.program_id = r.program_id AND w.tier > n_qualified
	  AND w.status <> 'revoked';
END
$$;
COMMENT ON FUNCTION wam_internal.referral_revoke(bigint, text) IS 'internal: revokes a qualified referral and the referrer''s rewards of tiers no longer reached';

REVOKE EXECUTE ON FUNCTION wam_internal.referral_revoke(bigint, text) FROM PUBLIC;

CREATE FUNCTION wam_internal.referral_order_change_trigger() RETURNS trigger
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
DECLARE
	r record;
BEGIN
	FOR r IN SELECT x.id, x.qualified_at, p.hold, p.min_order, o.amount AS old_amount
			 FROM old_orders o
			 JOIN wam.referral x ON x.invitee_id = o.customer_id AND x.order_id = o.order_id AND x.status = 'qualified'
			 JOIN wam.referral_program p ON p.id = x.program_id
			 ORDER BY x.referrer_id, x.program_id
	LOOP
		IF now() > r.qualified_at + r.hold THEN
			CONTINUE;			-- after the hold period the qualification stands
		END IF;
		IF TG_OP = 'UPDATE' AND EXISTS (SELECT FROM wam.customer_order k JOIN wam.referral x ON x.id = r.id
										WHERE k.customer_id = x.invitee_id AND k.order_id = x.order_id
										  AND k.amount >= r.min_order) THEN
			CONTINUE;			-- corrected, still above the minimum
		END IF;
		PERFORM wam_internal.referral_revoke(r.id,
			CASE TG_OP WHEN 'DELETE' THEN 'The qualifying order was refunded (deleted) within the hold period.'
					   ELSE 'The qualifying order was reduced below the minimum within the hold period.' END);
	END LOOP;
	RETURN NULL;
END
$$;
COMMENT ON FUNCTION wam_internal.referral_order_change_trigger() IS 'trigger: a refund of a qualifying order within the hold period revokes the referral and the rewards above the referrer''s new count';

CREATE TRIGGER referral_order_insert AFTER INSERT ON wam.customer_order
	REFERENCING NEW TABLE AS new_orders FOR EACH STATEMENT EXECUTE FUNCTION wam_internal.referral_order_insert_trigger();

REVOKE EXECUTE ON FUNCTION wam_internal.referral_order_insert_trigger() FROM PUBLIC;
CREATE TRIGGER referral_order_update AFTER UPDATE ON wam.customer_order
	REFERENCING OLD TABLE AS old_orders FOR EACH STATEMENT EXECUTE FUNCTION wam_internal.referral_order_change_trigger();
CREATE TRIGGER referral_order_delete AFTER DELETE ON wam.customer_order
	REFERENCING OLD TABLE AS old_orders FOR EACH STATEMENT EXECUTE FUNCTION wam_internal.referral_order_change_trigger();

REVOKE EXECUTE ON FUNCTION wam_internal.referral_order_change_trigger() FROM PUBLIC;

-- review

CREATE FUNCTION wam.resolve_referral_review(review bigint, accept boolean, note text DEFAULT NULL) RETURNS text
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	v wam.referral_review;
	rid bigint;
	n integer;
BEGIN
	PERFORM wam_internal.refuse_null(review IS NULL OR accept IS NULL, 'review and decision');
	SELECT * INTO v FROM wam.referral_review x WHERE x.id = review FOR UPDATE;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'referral review % does not exist', review USING ERRCODE = 'no_data_found';
	END IF;
	IF v.resolved_at IS NOT NULL THEN
		RAISE EXCEPTION 'referral review % was already resolved (%)', review, v.resolution
			USING ERRCODE = 'object_not_in_prerequisite_state';
	END IF;
	PERFORM FROM wam.referrer x WHERE x.customer_id = v.referrer_id AND x.program_id = v.program_id FOR UPDATE;
	UPDATE wam.referral_review x SET resolved_at = now(), resolution = CASE WHEN accept THEN 'accepted' ELSE 'rejected' END,
		resolved_by = session_user, note = resolve_referral_review.note
	WHERE x.id = review;
	UPDATE wam.referrer x SET status = 'active', frozen_at = NULL, velocity_since = now(), recent_attempts = '{}'
	WHERE x.customer_id = v.referrer_id AND x.program_id = v.program_id;
	IF accept THEN
		UPDATE wam.referral x SET status = 'pending', reason = NULL, detail = NULL
		WHERE x.referrer_id = v.referrer_id AND x.program_id = v.program_id AND x.status = 'review';
		GET DIAGNOSTICS n = ROW_COUNT;
		FOR rid IN SELECT x.id FROM wam.referral x
				   WHERE x.referrer_id = v.referrer_id AND x.program_id = v.program_id AND x.status = 'pending'
				   ORDER BY x.id LOOP
			PERFORM wam_internal.referral_evaluate(rid);
		END LOOP;
		RETURN format('accepted: %s referrals back to pending', n);
	END IF;
	UPDATE wam.referral x SET status = 'rejected', reason = 'review rejected', closed_at = now(),
		detail = coalesce(resolve_referral_review.note, 'Rejected in review.')
	WHERE x.referrer_id = v.referrer_id AND x.program_id = v.program_id AND x.status = 'review';
	GET DIAGNOSTICS n = ROW_COUNT;
	UPDATE wam.referrer x SET accepted = x.accepted - n
	WHERE x.customer_id = v.referrer_id AND x.program_id = v.program_id;
	RETURN format('rejected: %s referrals', n);
END
$$;
COMMENT ON FUNCTION wam.resolve_referral_review(bigint, boolean, text) IS 'accepts or rejects the referrals of a frozen referrer';

REVOKE EXECUTE ON FUNCTION wam.resolve_referral_review(bigint, boolean, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.resolve_referral_review(bigint, boolean, text) TO wam_admin;

CREATE FUNCTION wam.decide_referral_reward(reward bigint, issue boolean, note text DEFAULT NULL) RETURNS text
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	w wam.referral_reward;
	p wam.referral_program;
BEGIN
	PERFORM wam_internal.refuse_null(reward IS NULL OR issue IS NULL, 'reward and decision');
	SELECT * INTO w FROM wam.referral_reward x WHERE x.id = reward FOR UPDATE;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'referral reward % does not exist', reward USING ERRCODE = 'no_data_found';
	END IF;
	IF w.status <> 'held' THEN
		RAISE EXCEPTION 'referral reward % is %, not held', reward, w.status
			USING ERRCODE = 'object_not_in_prerequisite_state';
	END IF;
	w.status := CASE WHEN issue THEN 'issued' ELSE 'revoked' END;
	w.decided_at := now();
	w.reason := coalesce(decide_referral_reward.note, CASE WHEN issue THEN 'issued in review above the cost cap'
															ELSE 'refused in review' END);
	IF issue THEN
		-- issued now: the referrer's message is queued now (R-F2)
		SELECT * INTO p FROM wam.referral_program x WHERE x.id = w.program_id;
		SELECT e.notify_status, e.notify_detail, e.message_id INTO w.notify_status, w.notify_detail, w.message_id
		FROM wam_internal.referral_reward_enqueue(w, p) e;
	ELSE
		w.notify_status := 'cancelled';
		w.notify_detail := 'the reward was refused in review';
	END IF;
	UPDATE wam.referral_reward x
	SET status = w.status, decided_at = w.decided_at, reason = w.reason, notify_status = w.notify_status,
		notify_detail = w.notify_detail, message_id = w.message_id
	WHERE x.id = reward;
	RETURN w.status;
END
$$;
COMMENT ON FUNCTION wam.decide_referral_reward(bigint, boolean, text) IS 'issues or refuses a reward held above the cost cap';

REVOKE EXECUTE ON FUNCTION wam.decide_referral_reward(bigint, boolean, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.decide_referral_reward(bigint, boolean, text) TO wam_admin;

CREATE FUNCTION wam.notify_referral_reward(reward bigint) RETURNS text
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	w wam.referral_reward;
	p wam.referral_program;
	st text;
BEGIN
	PERFORM wam_internal.refuse_null(reward IS NULL, 'reward');
	SELECT * INTO w FROM wam.referral_reward x WHERE x.id = reward FOR UPDATE;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'referral reward % does not exist', reward USING ERRCODE = 'no_data_found';
	END IF;
	IF w.status = 'held' THEN
		RAISE EXCEPTION 'referral reward % is held, not issued', reward
			USING ERRCODE = 'object_not_in_prerequisite_state',
				  HINT = 'Decide it with wam.decide_referral_reward() first.';
	ELSIF w.status <> 'issued' THEN
		RAISE EXCEPTION 'referral reward % is %, not issued', reward, w.status
			USING ERRCODE = 'object_not_in_prerequisite_state';
	END IF;
	IF w.message_id IS NOT NULL THEN
		SELECT o.status INTO st FROM wam.outbox o WHERE o.message_id = w.message_id;
		IF NOT FOUND THEN
			-- purged: whether it reached the referrer is no longer known
			RAISE EXCEPTION 'the message of referral reward % (message %) is no longer in wam.outbox', reward, w.message_id
				USING ERRCODE = 'object_not_in_prerequisite_state',
					  DETAIL = 'Whether it reached the referrer is not known; it is not sent again automatically.',
					  HINT = 'Queue a message with wam.enqueue_message() if the referrer must be told again.';
		END IF;
		-- a message that ended without reaching the referrer may be sent again
		IF st NOT IN ('failed', 'cancelled', 'expired') THEN
			RAISE EXCEPTION 'the message of referral reward % is already queued (message %, %)', reward, w.message_id, st
				USING ERRCODE = 'object_not_in_prerequisite_state',
					  DETAIL = 'Only a reward whose message was refused, not configured, failed, cancelled or expired is notified again.';
		END IF;
	END IF;
	SELECT * INTO p FROM wam.referral_program x WHERE x.id = w.program_id;
	SELECT e.notify_status, e.notify_detail, e.message_id INTO w.notify_status, w.notify_detail, w.message_id
	FROM wam_internal.referral_reward_enqueue(w, p) e;
	UPDATE wam.referral_reward x
	SET notify_status = w.notify_status, notify_detail = w.notify_detail,
		-- a refused retry keeps the link to the earlier (failed) message
		message_id = coalesce(w.message_id, x.message_id)
	WHERE x.id = reward;
	RETURN w.notify_status;
END
$$;
COMMENT ON FUNCTION wam.notify_referral_reward(bigint) IS 'queues the referrer''s reward message again after a fix';

REVOKE EXECUTE ON FUNCTION wam.notify_referral_reward(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.notify_referral_reward(bigint) TO wam_admin;

-- reporting (R-F6)

CREATE FUNCTION wam.referral_report(program text, since timestamptz, until timestamptz)
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
COMMENT ON FUNCTION wam.referral_report(text, timestamptz, timestamptz) IS 'referral metrics of a program for a period';

REVOKE EXECUTE ON FUNCTION wam.referral_report(text, timestamptz, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.referral_report(text, timestamptz, timestamptz) TO wam_reader;
