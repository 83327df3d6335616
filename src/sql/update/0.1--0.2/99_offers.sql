-- 99_offers: WhatsApp groups and communities (wam.wa_group, wam.group_member, group(name)
-- in segment expressions), group-exclusive and segment offers with shared, generated and
-- imported codes, atomic redemption on wam.record_order(..., code), refunds
-- (wam.refund_order), referral reward codes redeemed through the same path, gift tiers,
-- the gift threshold and the price floor (issue 20).

-- wam.record_order takes the code to redeem (a new last argument: every existing call,
-- positional or named, keeps working)
DROP FUNCTION wam.record_order(bigint, numeric, timestamptz, boolean, jsonb);
CREATE FUNCTION wam.record_order(customer bigint, amount numeric, ordered_at timestamptz DEFAULT now(),
								 coupon_used boolean DEFAULT false, details jsonb DEFAULT NULL,
								 code text DEFAULT NULL)
	RETURNS bigint
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	cfg wam.rfm_config;
	cur text;
	n_units integer;
	new_id bigint;
	old_tier text;
	new_tier text;
	bad_product bigint;
	bad_quantity jsonb;
BEGIN
	PERFORM wam_internal.refuse_null(customer IS NULL, 'customer');
	PERFORM wam_internal.refuse_null(amount IS NULL, 'order amount');
	IF amount < 0 OR amount = 'NaN' OR amount = 'Infinity' THEN
		RAISE EXCEPTION 'order amount must be a finite amount of at least 0, not %', amount
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Record refunds by correcting or deleting the order in wam.customer_order.';
	END IF;
	PERFORM wam_internal.refuse_null(ordered_at IS NULL OR coupon_used IS NULL, 'order time and coupon flag');
	IF details IS NOT NULL AND jsonb_typeof(details) <> 'object' THEN
		RAISE EXCEPTION 'order details must be a JSON object, not %', jsonb_typeof(details)
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	SELECT * INTO cfg FROM wam.rfm_config;
	IF NOT isfinite(ordered_at) AND ordered_at < now() THEN
		RAISE EXCEPTION 'order time must be finite, not %', ordered_at USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF ordered_at > now() + cfg.future_tolerance THEN
		RAISE EXCEPTION 'order time % is in the future', ordered_at
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = format('Orders may be at most %s ahead of the database clock (setting future_tolerance).',
								  cfg.future_tolerance);
	END IF;

	cur := upper(btrim(details ->> 'currency'));
	IF cur IS NOT NULL AND cur !~ '^[A-Z]{3}$' THEN
		RAISE EXCEPTION 'invalid currency "%"', details ->> 'currency'
			USING ERRCODE = 'invalid_parameter_value', HINT = 'Use an ISO 4217 code such as HKD.';
	END IF;
	IF cur IS NOT NULL AND cfg.currency IS NULL THEN
		-- the first order naming a currency fixes the program currency
		UPDATE wam.rfm_config SET currency = cur WHERE currency IS NULL;
		SELECT s.currency INTO cfg.currency FROM wam.rfm_config s;
	END IF;
	IF cur IS DISTINCT FROM cfg.currency AND cur IS NOT NULL THEN
		RAISE EXCEPTION 'order currency % differs from the program currency %', cur, cfg.currency
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = 'Scores and lifetime values add amounts up, so all orders of a program are in one currency.',
				  HINT = 'Convert the amount to the program currency before recording the order.';
	END IF;

	-- units: details->units, else the sum of details->products[].quantity
	-- (1 for a product without one), else 1; whole numbers below 10^9 only
	IF details IS NULL OR NOT (details ? 'units' OR details ? 'products') THEN
		n_units := 1;
	ELSIF details ? 'units' THEN
		n_units := CASE WHEN jsonb_typeof(details -> 'units') = 'number' AND (details ->> 'units') ~ '^[0-9]{1,9}$'
						THEN (details ->> 'units')::integer END;
	ELSIF jsonb_typeof(details -> 'products') = 'array' AND jsonb_array_length(details -> 'products') > 0 THEN
		-- every quantity is checked before any is cast, so a bad one is named
		-- instead of failing the cast inside the sum
		SELECT p.n - 1, p.q INTO bad_product, bad_quantity
		FROM jsonb_array_elements(details -> 'products') WITH ORDINALITY p(q, n)
		WHERE p.q -> 'quantity' IS NOT NULL
		  AND NOT (jsonb_typeof(p.q -> 'quantity') = 'number' AND p.q ->> 'quantity' ~ '^[0-9]{1,9}$')
		ORDER BY p.n LIMIT 1;
		IF FOUND THEN
			RAISE EXCEPTION 'invalid quantity % in order details products[%]', bad_quantity -> 'quantity', bad_product
				USING ERRCODE = 'invalid_parameter_value',
					  HINT = 'A quantity is a JSON number, a whole number from 0 to 999999999, e.g. {"products": [{"sku": "A1", "quantity": 2}]}.';
		END IF;
		SELECT least(sum(coalesce((p -> 'quantity' #>> '{}')::bigint, 1)), 2147483647)::integer
		INTO n_units
		FROM jsonb_array_elements(details -> 'products') p;
	END IF;
	IF n_units IS NULL OR n_units < 1 THEN
		RAISE EXCEPTION 'order units must be a positive whole number'
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = format('details->units is %s, details->products is %s.',
								  coalesce(details -> 'units', 'null'), coalesce(details -> 'products', 'null'));
	END IF;

	IF NOT EXISTS (SELECT FROM wam.customer c WHERE c.id = customer) THEN
		RAISE EXCEPTION 'customer % does not exist', customer USING ERRCODE = 'foreign_key_violation';
	END IF;
	IF cfg.mirror_tags THEN
		SELECT v.tier INTO old_tier FROM wam.customer_rfm v WHERE v.customer_id = customer;
	END IF;

	INSERT INTO wam.customer_order (customer_id, ordered_at, amount, currency, coupon_used, units, details)
	VALUES (customer, ordered_at, amount, coalesce(cur, cfg.currency), coupon_used OR code IS NOT NULL, n_units, details)
	RETURNING order_id INTO new_id;
	-- a code (an offer's, or a referral reward's) is redeemed on the order in the same
	-- transaction: a refused code raises, and the order is not recorded either
	IF code IS NOT NULL THEN
		PERFORM wam_internal.redeem_code(code, customer, new_id, amount, ordered_at);
	END IF;
	-- the order event that lets event rules react at once (R-T8) is written by
	-- the trigger order_to_events, as for orders inserted or copied in bulk

	IF cfg.mirror_tags THEN
		SELECT v.tier INTO new_tier FROM wam.customer_rfm v WHERE v.customer_id = customer;
		IF new_tier IS DISTINCT FROM old_tier THEN
			PERFORM wam_internal.rfm_mirror_customer(customer, old_tier, new_tier);
		END IF;
	END IF;
	RETURN new_id;
END
$$;
COMMENT ON FUNCTION wam.record_order(bigint, numeric, timestamptz, boolean, jsonb, text) IS 'records an order and updates the purchase statistics, redeeming a code on it if given; returns its id';

REVOKE EXECUTE ON FUNCTION wam.record_order(bigint, numeric, timestamptz, boolean, jsonb, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.record_order(bigint, numeric, timestamptz, boolean, jsonb, text) TO wam_operator;

-- src/sql/offer.sql: WhatsApp groups and communities, group-exclusive offers and their
-- codes (R-G1 .. R-G3): atomic redemption tied to orders, refunds, gift tiers, price floors.

-- ---------------------------------------------------------------------------
-- groups

CREATE TABLE wam.wa_group (
	group_id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
	name text NOT NULL UNIQUE
		CONSTRAINT wa_group_name CHECK (name ~ '^[a-z0-9]+(-[a-z0-9]+)*$' AND length(name) <= 100),
	kind text NOT NULL DEFAULT 'group' CONSTRAINT wa_group_kind CHECK (kind IN ('group', 'community')),
	sender_id integer REFERENCES wam.sender ON DELETE SET NULL,
	created_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE wam.wa_group IS 'WhatsApp groups and communities (create with wam.create_group); group(name) in segment expressions means their current members';
COMMENT ON COLUMN wam.wa_group.name IS 'slug: lower-case letters and digits in words joined by "-", e.g. mums-taipei-east';
REVOKE ALL ON wam.wa_group FROM PUBLIC;
GRANT SELECT ON wam.wa_group TO wam_reader;
GRANT SELECT, INSERT, UPDATE ON wam.wa_group TO wam_definer;
GRANT USAGE ON SEQUENCE wam.wa_group_group_id_seq TO wam_definer;
SELECT pg_catalog.pg_extension_config_dump('wam.wa_group', '');
SELECT pg_catalog.pg_extension_config_dump('wam.wa_group_group_id_seq', '');

-- one row per membership: leaving sets left_at (the history stays), joining again adds a row
CREATE TABLE wam.group_member (
	group_id bigint NOT NULL REFERENCES wam.wa_group ON DELETE CASCADE,
	customer_id bigint NOT NULL REFERENCES wam.customer ON DELETE CASCADE,
	role text NOT NULL DEFAULT 'member' CONSTRAINT group_member_role CHECK (role IN ('member', 'admin')),
	joined_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	left_at timestamptz,
	CONSTRAINT group_member_left CHECK (left_at >= joined_at)
);
CREATE UNIQUE INDEX group_member_current ON wam.group_member (group_id, customer_id) WHERE left_at IS NULL;
CREATE INDEX group_member_customer ON wam.group_member (customer_id) WHERE left_at IS NULL;
COMMENT ON TABLE wam.group_member IS 'memberships of groups: current ones have no left_at; a customer may be in several groups';
REVOKE ALL ON wam.group_member FROM PUBLIC;
GRANT SELECT ON wam.group_member TO wam_reader;
GRANT SELECT, INSERT, UPDATE ON wam.group_member TO wam_definer;
SELECT pg_catalog.pg_extension_config_dump('wam.group_member', '');

CREATE VIEW wam.group_size AS
SELECT g.name, g.kind, s.name AS sender,
	   (SELECT count(*) FROM wam.group_member m WHERE m.group_id = g.group_id AND m.left_at IS NULL) AS members,
	   (SELECT count(*) FROM wam.group_member m WHERE m.group_id = g.group_id AND m.left_at IS NULL
												AND m.role = 'admin') AS admins,
	   (SELECT count(*) FROM wam.group_member m WHERE m.group_id = g.group_id AND m.left_at IS NOT NULL) AS left_members,
	   g.created_at
FROM wam.wa_group g LEFT JOIN wam.sender s ON s.sender_id = g.sender_id;
COMMENT ON VIEW wam.group_size IS 'groups with their current members, admins and members who left';
REVOKE ALL ON wam.group_size FROM PUBLIC;
GRANT SELECT ON wam.group_size TO wam_reader;

CREATE FUNCTION wam_internal.group_id(name text) RETURNS bigint
	LANGUAGE plpgsql STABLE SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	id bigint;
BEGIN
	PERFORM wam_internal.refuse_null(name IS NULL, 'group name');
	SELECT g.group_id INTO id FROM wam.wa_group g WHERE g.name = name;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'group "%" does not exist', name
			USING ERRCODE = 'undefined_object', HINT = 'Groups are listed in wam.wa_group; create one with wam.create_group().';
	END IF;
	RETURN id;
END
$$;
COMMENT ON FUNCTION wam_internal.group_id(text) IS 'internal: the id of a group by name; error if unknown';
REVOKE EXECUTE ON FUNCTION wam_internal.group_id(text) FROM PUBLIC;

CREATE FUNCTION wam.create_group(name text, kind text DEFAULT 'group', sender text DEFAULT NULL)
	RETURNS bigint
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	sid integer;
	new_id bigint;
BEGIN
	PERFORM wam_internal.refuse_null(name IS NULL OR kind IS NULL, 'group name and kind');
	IF name !~ '^[a-z0-9]+(-[a-z0-9]+)*$' OR length(name) > 100 THEN
		RAISE EXCEPTION 'invalid group name "%"', left(name, 100)
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'A group name is a slug of at most 100 characters: lower-case letters and digits in words joined by "-", e.g. mums-taipei-east.';
	END IF;
	IF kind NOT IN ('group', 'community') THEN
		RAISE EXCEPTION 'group kind must be group or community, not "%"', kind USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF sender IS NOT NULL THEN
		SELECT s.sender_id INTO sid FROM wam.sender s WHERE s.name = sender;
		IF NOT FOUND THEN
			RAISE EXCEPTION 'sender "%" does not exist', sender USING ERRCODE = 'undefined_object';
		END IF;
	END IF;
	IF EXISTS (SELECT FROM wam.wa_group g WHERE g.name = name) THEN
		RAISE EXCEPTION 'group "%" already exists', name USING ERRCODE = 'duplicate_object';
	END IF;
	INSERT INTO wam.wa_group (name, kind, sender_id) VALUES (name, kind, sid)
	ON CONFLICT DO NOTHING RETURNING group_id INTO new_id;
	IF new_id IS NULL THEN
		RAISE EXCEPTION 'group "%" already exists', name USING ERRCODE = 'duplicate_object';
	END IF;
	RETURN new_id;
END
$$;
COMMENT ON FUNCTION wam.create_group(text, text, text) IS 'creates a WhatsApp group or community; returns its id';
REVOKE EXECUTE ON FUNCTION wam.create_group(text, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.create_group(text, text, text) TO wam_admin;

CREATE FUNCTION wam.add_group_members(group_name text, members wam.segment, role text DEFAULT 'member')
	RETURNS bigint
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	gid bigint;
	n bigint;
	m bigint;
BEGIN
	PERFORM wam_internal.refuse_null(members IS NULL OR role IS NULL, 'members and role');
	gid := wam_internal.group_id(group_name);
	IF role NOT IN ('member', 'admin') THEN
		RAISE EXCEPTION 'group role must be member or admin, not "%"', role USING ERRCODE = 'invalid_parameter_value';
	END IF;
	-- customers that do not exist are not members of anything
	INSERT INTO wam.group_member (group_id, customer_id, role)
	SELECT gid, c.id, role FROM wam.segment_members(members) x JOIN wam.customer c ON c.id = x
	ORDER BY c.id
	ON CONFLICT (group_id, customer_id) WHERE left_at IS NULL DO NOTHING;
	GET DIAGNOSTICS n = ROW_COUNT;
	-- adding current members as admins promotes them
	IF role = 'admin' THEN
		UPDATE wam.group_member g SET role = 'admin'
		FROM wam.segment_members(members) x
		WHERE g.group_id = gid AND g.customer_id = x AND g.left_at IS NULL AND g.role = 'member';
		GET DIAGNOSTICS m = ROW_COUNT;
		n := n + m;
	END IF;
	RETURN n;
END
$$;
COMMENT ON FUNCTION wam.add_group_members(text, wam.segment, text) IS 'adds customers to a group (admins: also promotes current members); returns how many joined or were promoted';
REVOKE EXECUTE ON FUNCTION wam.add_group_members(text, wam.segment, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.add_group_members(text, wam.segment, text) TO wam_admin;

CREATE FUNCTION wam.add_group_members(group_name text, expression text, role text DEFAULT 'member')
	RETURNS bigint
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
BEGIN
	PERFORM wam_internal.refuse_null(expression IS NULL, 'segment expression');
	RETURN wam.add_group_members(group_name, wam.audience(expression), role);
END
$$;
COMMENT ON FUNCTION wam.add_group_members(text, text, text) IS 'adds the customers of a segment expression to a group; returns how many joined or were promoted';
REVOKE EXECUTE ON FUNCTION wam.add_group_members(text, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.add_group_members(text, text, text) TO wam_admin;

CREATE FUNCTION wam.remove_group_members(group_name text, members wam.segment)
	RETURNS bigint
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	gid bigint;
	n bigint;
BEGIN
	PERFORM wam_internal.refuse_null(members IS NULL, 'members');
	gid := wam_internal.group_id(group_name);
	UPDATE wam.group_member g SET left_at = greatest(now(), g.joined_at)
	FROM wam.segment_members(members) x
	WHERE g.group_id = gid AND g.customer_id = x AND g.left_at IS NULL;
	GET DIAGNOSTICS n = ROW_COUNT;
	RETURN n;
END
$$;
COMMENT ON FUNCTION wam.remove_group_members(text, wam.segment) IS 'records that customers left a group (their membership history stays); returns how many left';
REVOKE EXECUTE ON FUNCTION wam.remove_group_members(text, wam.segment) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.remove_group_members(text, wam.segment) TO wam_admin;

-- ---------------------------------------------------------------------------
-- offers and their codes (R-G1)

-- wam_internal.offer_code_read: a typed redemption code in canonical form, or why not
CREATE FUNCTION wam_internal.offer_code_read(code text, OUT canonical text, OUT problem text)
	AS 'MODULE_PATHNAME', 'wam_offer_code_read' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION wam_internal.offer_code_read(text) IS 'internal: a typed redemption code (12 Crockford symbols and a check symbol) in canonical form, or NULL and ''mistyped'' (the check symbol does not match) or ''not a code''';
REVOKE EXECUTE ON FUNCTION wam_internal.offer_code_read(text) FROM PUBLIC;

CREATE TABLE wam.offer (
	offer_id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
	name text NOT NULL UNIQUE CONSTRAINT offer_name CHECK (btrim(name) <> '' AND length(name) <= 100),
	-- who may redeem: the current members of a group, or the customers of a segment expression
	group_id bigint REFERENCES wam.wa_group,
	audience text,
	-- one code for everyone ('GROUP50'), or unique codes (wam.offer_code)
	shared_code text UNIQUE CONSTRAINT offer_shared_code CHECK (shared_code ~ '^[A-Z0-9]{3,32}$'),
	discount_type text NOT NULL CONSTRAINT offer_discount_type CHECK (discount_type IN ('percent', 'amount')),
	discount numeric NOT NULL
		CONSTRAINT offer_discount CHECK (discount > 0 AND discount < 'Infinity' AND (discount_type = 'amount' OR discount <= 100)),
	min_order numeric NOT NULL DEFAULT 0 CONSTRAINT offer_min_order CHECK (min_order >= 0 AND min_order < 'Infinity'),
	valid_from timestamptz NOT NULL,
	valid_until timestamptz NOT NULL,
	validity_reason text,
	total_limit integer CONSTRAINT offer_total_limit CHECK (total_limit > 0),
	per_customer_limit integer CONSTRAINT offer_per_customer_limit CHECK (per_customer_limit > 0),
	per_group_limit integer CONSTRAINT offer_per_group_limit CHECK (per_group_limit > 0),
	-- redemptions not reversed: kept by the redemption itself, never above total_limit
	redeemed integer NOT NULL DEFAULT 0
		CONSTRAINT offer_redeemed CHECK (redeemed >= 0 AND (total_limit IS NULL OR redeemed <= total_limit)),
	group_price numeric CONSTRAINT offer_group_price CHECK (group_price >= 0 AND group_price < 'Infinity'),
	public_price numeric CONSTRAINT offer_public_price CHECK (public_price > 0 AND public_price < 'Infinity'),
	created_by text NOT NULL DEFAULT session_user,
	created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	CONSTRAINT offer_target CHECK ((group_id IS NULL) <> (audience IS NULL)),
	CONSTRAINT offer_validity CHECK (valid_until > valid_from
									 AND (valid_until - valid_from <= interval '7 days' OR validity_reason IS NOT NULL))
);
COMMENT ON TABLE wam.offer IS 'group-exclusive and segment offers with their discount, validity, limits and prices (create with wam.create_offer)';
COMMENT ON COLUMN wam.offer.shared_code IS 'the one code of the offer (e.g. GROUP50); NULL: unique codes in wam.offer_code';
COMMENT ON COLUMN wam.offer.validity_reason IS 'why the offer is valid for more than 7 days (required then)';
COMMENT ON COLUMN wam.offer.redeemed IS 'redemptions that were not reversed; the total limit is enforced on this counter';
REVOKE ALL ON wam.offer FROM PUBLIC;
GRANT SELECT ON wam.offer TO wam_reader;
GRANT SELECT, INSERT, UPDATE ON wam.offer TO wam_definer;
GRANT USAGE ON SEQUENCE wam.offer_offer_id_seq TO wam_definer;
SELECT pg_catalog.pg_extension_config_dump('wam.offer', '');
SELECT pg_catalog.pg_extension_config_dump('wam.offer_offer_id_seq', '');

-- unique codes: generated per recipient (customer_id set) or imported (anyone eligible, once)
CREATE TABLE wam.offer_code (
	code_id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
	offer_id bigint NOT NULL REFERENCES wam.offer ON DELETE CASCADE,
	code text NOT NULL UNIQUE CONSTRAINT offer_code_code CHECK (code ~ '^[A-Z0-9]{4,64}$'),
	customer_id bigint REFERENCES wam.customer ON DELETE CASCADE,
	source text NOT NULL CONSTRAINT offer_code_source CHECK (source IN ('generated', 'imported')),
	created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	used_at timestamptz
);
CREATE UNIQUE INDEX offer_code_recipient ON wam.offer_code (offer_id, customer_id) WHERE customer_id IS NOT NULL;
COMMENT ON TABLE wam.offer_code IS 'unique codes of offers: administrators only (operators redeem codes they are given, they cannot list them)';
REVOKE ALL ON wam.offer_code FROM PUBLIC;
GRANT SELECT ON wam.offer_code TO wam_admin;
GRANT SELECT, INSERT, UPDATE ON wam.offer_code TO wam_definer;
GRANT USAGE ON SEQUENCE wam.offer_code_code_id_seq TO wam_definer;
SELECT pg_catalog.pg_extension_config_dump('wam.offer_code', '');
SELECT pg_catalog.pg_extension_config_dump('wam.offer_code_code_id_seq', '');

-- gift tiers by order amount (R-G2): the highest tier reached applies
CREATE TABLE wam.offer_gift_tier (
	offer_id bigint NOT NULL REFERENCES wam.offer ON DELETE CASCADE,
	min_amount numeric NOT NULL CONSTRAINT offer_gift_tier_min CHECK (min_amount > 0 AND min_amount < 'Infinity'),
	gift text NOT NULL CONSTRAINT offer_gift_tier_gift CHECK (btrim(gift) <> ''),
	cost numeric NOT NULL DEFAULT 0 CONSTRAINT offer_gift_tier_cost CHECK (cost >= 0 AND cost < 'Infinity'),
	PRIMARY KEY (offer_id, min_amount)
);
COMMENT ON TABLE wam.offer_gift_tier IS 'gifts of an offer by order amount: the highest tier an order reaches applies (set with wam.set_offer_gifts)';
REVOKE ALL ON wam.offer_gift_tier FROM PUBLIC;
GRANT SELECT ON wam.offer_gift_tier TO wam_reader;
GRANT SELECT, INSERT, DELETE ON wam.offer_gift_tier TO wam_definer;
SELECT pg_catalog.pg_extension_config_dump('wam.offer_gift_tier', '');

-- the redemptions, of offers' codes and of referral rewards' codes alike
CREATE TABLE wam.code_redemption (
	redemption_id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
	-- no foreign key to wam.offer or wam.wa_group (offers and groups are never deleted):
	-- its check would lock the offer's row, the hot one, in every redemption
	offer_id bigint,
	reward_id bigint REFERENCES wam.referral_reward ON DELETE CASCADE,
	code_kind text NOT NULL CONSTRAINT code_redemption_kind CHECK (code_kind IN ('shared', 'unique', 'referral')),
	code_id bigint,
	customer_id bigint NOT NULL REFERENCES wam.customer ON DELETE CASCADE,
	order_id bigint NOT NULL,
	group_id bigint,
	amount numeric NOT NULL,
	discount numeric NOT NULL,
	gift text,
	gift_cost numeric,
	redeemed_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	reversed_at timestamptz,
	reverse_reason text,
	CONSTRAINT code_redemption_source CHECK ((offer_id IS NULL) <> (reward_id IS NULL)
											 AND (reward_id IS NULL) = (code_kind <> 'referral'))
);
-- a reward code is used once (until its order is refunded)
CREATE UNIQUE INDEX code_redemption_reward_once ON wam.code_redemption (reward_id) WHERE reward_id IS NOT NULL AND reversed_at IS NULL;
CREATE INDEX code_redemption_order ON wam.code_redemption (customer_id, order_id);
CREATE INDEX code_redemption_offer ON wam.code_redemption (offer_id, redeemed_at);
COMMENT ON TABLE wam.code_redemption IS 'redemptions of offer and referral reward codes, each tied to an order (wam.record_order(..., code)); a refund (wam.refund_order) reverses it';
COMMENT ON COLUMN wam.code_redemption.amount IS 'the order amount the minimum and the gift tiers were judged on';
COMMENT ON COLUMN wam.code_redemption.group_id IS 'the group the redemption counts for: the offer''s group, or for a segment offer the customer''s earliest current group';
REVOKE ALL ON wam.code_redemption FROM PUBLIC;
GRANT SELECT ON wam.code_redemption TO wam_reader;
GRANT SELECT, INSERT, UPDATE ON wam.code_redemption TO wam_definer;
GRANT USAGE ON SEQUENCE wam.code_redemption_redemption_id_seq TO wam_definer;
SELECT pg_catalog.pg_extension_config_dump('wam.code_redemption', '');
SELECT pg_catalog.pg_extension_config_dump('wam.code_redemption_redemption_id_seq', '');

-- per-customer and per-group counters: conditional upserts keep them exact under concurrency
CREATE TABLE wam.offer_customer_usage (
	offer_id bigint NOT NULL,	-- no foreign key: see wam.code_redemption
	customer_id bigint NOT NULL REFERENCES wam.customer ON DELETE CASCADE,
	redeemed integer NOT NULL CONSTRAINT offer_customer_usage_redeemed CHECK (redeemed >= 0),
	PRIMARY KEY (offer_id, customer_id)
);
COMMENT ON TABLE wam.offer_customer_usage IS 'redemptions per offer and customer (not reversed), against per_customer_limit';
REVOKE ALL ON wam.offer_customer_usage FROM PUBLIC;
GRANT SELECT ON wam.offer_customer_usage TO wam_reader;
GRANT SELECT, INSERT, UPDATE ON wam.offer_customer_usage TO wam_definer;
SELECT pg_catalog.pg_extension_config_dump('wam.offer_customer_usage', '');

CREATE TABLE wam.offer_group_usage (
	offer_id bigint NOT NULL,	-- no foreign keys: see wam.code_redemption
	group_id bigint NOT NULL,
	redeemed integer NOT NULL CONSTRAINT offer_group_usage_redeemed CHECK (redeemed >= 0),
	PRIMARY KEY (offer_id, group_id)
);
COMMENT ON TABLE wam.offer_group_usage IS 'redemptions per offer and group (not reversed), against per_group_limit';
REVOKE ALL ON wam.offer_group_usage FROM PUBLIC;
GRANT SELECT ON wam.offer_group_usage TO wam_reader;
GRANT SELECT, INSERT, UPDATE ON wam.offer_group_usage TO wam_definer;
SELECT pg_catalog.pg_extension_config_dump('wam.offer_group_usage', '');

-- price floor overrides (R-G3): who forced a group price less than 10 % below the public price, when, why
CREATE TABLE wam.offer_price_override (
	offer_id bigint NOT NULL REFERENCES wam.offer ON DELETE CASCADE,
	group_price numeric NOT NULL,
	public_price numeric NOT NULL,
	below_public numeric NOT NULL,
	reason text NOT NULL,
	forced_by text NOT NULL DEFAULT session_user,
	forced_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE wam.offer_price_override IS 'group prices less than 10 % below the public price that an administrator forced, with the reason, who and when';
COMMENT ON COLUMN wam.offer_price_override.below_public IS 'how far the group price is below the public price, as a fraction (0.08: 8 %)';
REVOKE ALL ON wam.offer_price_override FROM PUBLIC;
GRANT SELECT ON wam.offer_price_override TO wam_reader;
GRANT SELECT, INSERT ON wam.offer_price_override TO wam_definer;
SELECT pg_catalog.pg_extension_config_dump('wam.offer_price_override', '');

-- the price floor: less than 15 % below the public price warns, less than 10 % refuses
-- unless forced with a reason, which is logged
CREATE FUNCTION wam_internal.offer_price_check(offer bigint, group_price numeric, public_price numeric, force_reason text)
	RETURNS void
	LANGUAGE plpgsql SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	below numeric;
BEGIN
	IF group_price IS NULL AND public_price IS NULL THEN
		RETURN;
	END IF;
	IF group_price IS NULL OR public_price IS NULL THEN
		RAISE EXCEPTION 'an offer records both the group price and the public price, or neither'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF NOT (group_price >= 0 AND group_price < 'Infinity' AND public_price > 0 AND public_price < 'Infinity') THEN
		RAISE EXCEPTION 'prices must be finite, the group price at least 0 and the public price above 0 (not % and %)',
			group_price, public_price USING ERRCODE = 'invalid_parameter_value';
	END IF;
	below := (public_price - group_price) / public_price;
	IF below < 0.10 THEN
		IF force_reason IS NULL OR btrim(force_reason) = '' THEN
			RAISE EXCEPTION 'group price % is only % %% below the public price %', group_price,
				round(below * 100, 2), public_price
				USING ERRCODE = 'check_violation',
					  DETAIL = 'A group offer must be at least 10 % below the public price to be worth its exclusivity.',
					  HINT = 'Lower the group price, or force it with a reason (force_reason), which is logged.';
		END IF;
		INSERT INTO wam.offer_price_override (offer_id, group_price, public_price, below_public, reason)
		VALUES (offer, group_price, public_price, round(below, 4), force_reason);
	ELSIF below < 0.15 THEN
		RAISE WARNING 'group price % is only % %% below the public price %', group_price, round(below * 100, 2), public_price
			USING DETAIL = 'Group offers convert best at 15 % or more below the public price.';
	END IF;
END
$$;
COMMENT ON FUNCTION wam_internal.offer_price_check(bigint, numeric, numeric, text) IS 'internal: the price floor of an offer (warning below 15 %, error below 10 % unless forced with a reason, logged)';
REVOKE EXECUTE ON FUNCTION wam_internal.offer_price_check(bigint, numeric, numeric, text) FROM PUBLIC;

CREATE FUNCTION wam_internal.offer_validity_check(valid_from timestamptz, valid_until timestamptz, reason text)
	RETURNS void
	LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
BEGIN
	IF NOT isfinite(valid_from) OR NOT isfinite(valid_until) THEN
		RAISE EXCEPTION 'offer validity must be finite' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF valid_until <= valid_from THEN
		RAISE EXCEPTION 'offer must end after it starts (% to %)', valid_from, valid_until
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF valid_until - valid_from > interval '7 days' AND (reason IS NULL OR btrim(reason) = '') THEN
		RAISE EXCEPTION 'offer validity % is longer than 7 days', valid_until - valid_from
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = '7-day codes redeem 2.1 times better than 30-day ones.',
				  HINT = 'Shorten it, or give the reason for a longer validity (validity_reason).';
	END IF;
END
$$;
COMMENT ON FUNCTION wam_internal.offer_validity_check(timestamptz, timestamptz, text) IS 'internal: an offer''s validity is finite, positive and at most 7 days unless a reason is given';
REVOKE EXECUTE ON FUNCTION wam_internal.offer_validity_check(timestamptz, timestamptz, text) FROM PUBLIC;

CREATE FUNCTION wam.create_offer(name text, group_name text DEFAULT NULL, audience text DEFAULT NULL,
								 code text DEFAULT NULL, discount_percent numeric DEFAULT NULL,
								 discount_amount numeric DEFAULT NULL, min_order numeric DEFAULT 0,
								 valid_from timestamptz DEFAULT now(), valid_until timestamptz DEFAULT NULL,
								 validity_reason text DEFAULT NULL, total_limit integer DEFAULT NULL,
								 per_customer_limit integer DEFAULT 1, per_group_limit integer DEFAULT NULL,
								 group_price numeric DEFAULT NULL, public_price numeric DEFAULT NULL,
								 force_reason text DEFAULT NULL)
	RETURNS bigint
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	gid bigint;
	shared text;
	new_id bigint;
	until timestamptz := coalesce(valid_until, valid_from + interval '7 days');
BEGIN
	IF name IS NULL OR btrim(name) = '' OR length(name) > 100 THEN
		RAISE EXCEPTION 'offer name must be 1 to 100 characters' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF (group_name IS NULL) = (audience IS NULL) THEN
		RAISE EXCEPTION 'an offer belongs to a group or to a segment expression (give one of group_name and audience)'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF group_name IS NOT NULL THEN
		gid := wam_internal.group_id(group_name);
	ELSE
		-- the expression must be valid now (it is evaluated at each redemption)
		PERFORM wam.audience_size(audience);
	END IF;
	IF code IS NOT NULL THEN
		shared := upper(translate(code, E' \t\n\r\f\013-', ''));
		IF shared !~ '^[A-Z0-9]{3,32}$' THEN
			RAISE EXCEPTION 'invalid shared code "%"', left(code, 64)
				USING ERRCODE = 'invalid_parameter_value', HINT = 'A shared code has 3 to 32 letters and digits, e.g. GROUP50.';
		END IF;
		IF EXISTS (SELECT FROM wam.offer o WHERE o.shared_code = shared)
		   OR EXISTS (SELECT FROM wam.offer_code c WHERE c.code = shared) THEN
			RAISE EXCEPTION 'code "%" is already used by another offer', shared USING ERRCODE = 'duplicate_object';
		END IF;
	END IF;
	IF (discount_percent IS NULL) = (discount_amount IS NULL) THEN
		RAISE EXCEPTION 'an offer has a discount in percent or an amount off (give one of discount_percent and discount_amount)'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF NOT (coalesce(discount_percent, 1) > 0 AND coalesce(discount_percent, 1) <= 100) THEN
		RAISE EXCEPTION 'discount_percent must be above 0 and at most 100, not %', discount_percent
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF NOT (coalesce(discount_amount, 1) > 0 AND coalesce(discount_amount, 1) < 'Infinity') THEN
		RAISE EXCEPTION 'discount_amount must be a finite amount above 0, not %', discount_amount
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF min_order IS NULL OR NOT (min_order >= 0 AND min_order < 'Infinity') THEN
		RAISE EXCEPTION 'min_order must be a finite amount of at least 0, not %', min_order
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	PERFORM wam_internal.refuse_null(valid_from IS NULL, 'valid_from');
	PERFORM wam_internal.offer_validity_check(valid_from, until, validity_reason);
	IF total_limit <= 0 OR per_customer_limit <= 0 OR per_group_limit <= 0 THEN
		RAISE EXCEPTION 'limits must be positive (NULL: no limit)' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF EXISTS (SELECT FROM wam.offer o WHERE o.name = name) THEN
		RAISE EXCEPTION 'offer "%" already exists', name USING ERRCODE = 'duplicate_object';
	END IF;
	INSERT INTO wam.offer (name, group_id, audience, shared_code, discount_type, discount, min_order,
						   valid_from, valid_until, validity_reason, total_limit, per_customer_limit,
						   per_group_limit, group_price, public_price)
	VALUES (name, gid, audience, shared, CASE WHEN discount_percent IS NOT NULL THEN 'percent' ELSE 'amount' END,
			coalesce(discount_percent, discount_amount), min_order, valid_from, until,
			CASE WHEN until - valid_from > interval '7 days' THEN validity_reason END,
			total_limit, per_customer_limit, per_group_limit, group_price, public_price)
	RETURNING offer_id INTO new_id;
	PERFORM wam_internal.offer_price_check(new_id, group_price, public_price, force_reason);
	RETURN new_id;
END
$$;
COMMENT ON FUNCTION wam.create_offer(text, text, text, text, numeric, numeric, numeric, timestamptz, timestamptz, text, integer, integer, integer, numeric, numeric, text) IS 'creates an offer for a group or a segment expression, with a shared code or (code NULL) unique codes; returns its id';
REVOKE EXECUTE ON FUNCTION wam.create_offer(text, text, text, text, numeric, numeric, numeric, timestamptz, timestamptz, text, integer, integer, integer, numeric, numeric, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.create_offer(text, text, text, text, numeric, numeric, numeric, timestamptz, timestamptz, text, integer, integer, integer, numeric, numeric, text) TO wam_admin;

-- changes the validity, limits or prices of an offer (NULL keeps a value); the same
-- checks as at creation; a total limit below the redemptions made is refused
CREATE FUNCTION wam.change_offer(offer text, valid_until timestamptz DEFAULT NULL, validity_reason text DEFAULT NULL,
								 total_limit integer DEFAULT NULL, group_price numeric DEFAULT NULL,
								 public_price numeric DEFAULT NULL, force_reason text DEFAULT NULL)
	RETURNS void
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	o wam.offer;
	until timestamptz;
	why text;
BEGIN
	PERFORM wam_internal.refuse_null(offer IS NULL, 'offer');
	SELECT * INTO o FROM wam.offer x WHERE x.name = offer FOR UPDATE;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'offer "%" does not exist', offer USING ERRCODE = 'undefined_object';
	END IF;
	until := coalesce(valid_until, o.valid_until);
	why := coalesce(validity_reason, o.validity_reason);
	PERFORM wam_internal.offer_validity_check(o.valid_from, until, why);
	IF total_limit <= 0 THEN
		RAISE EXCEPTION 'limits must be positive' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF total_limit < o.redeemed THEN
		RAISE EXCEPTION 'offer "%" was redeemed % times: its total limit cannot be %', offer, o.redeemed, total_limit
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF group_price IS NOT NULL OR public_price IS NOT NULL THEN
		PERFORM wam_internal.offer_price_check(o.offer_id, coalesce(group_price, o.group_price),
											   coalesce(public_price, o.public_price), force_reason);
	END IF;
	UPDATE wam.offer x SET valid_until = until,
		   validity_reason = CASE WHEN until - x.valid_from > interval '7 days' THEN why END,
		   total_limit = coalesce(total_limit, x.total_limit),
		   group_price = coalesce(group_price, x.group_price), public_price = coalesce(public_price, x.public_price)
	WHERE x.offer_id = o.offer_id;
END
$$;
COMMENT ON FUNCTION wam.change_offer(text, timestamptz, text, integer, numeric, numeric, text) IS 'changes an offer''s end, total limit or prices (NULL keeps a value), with the checks of wam.create_offer';
REVOKE EXECUTE ON FUNCTION wam.change_offer(text, timestamptz, text, integer, numeric, numeric, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.change_offer(text, timestamptz, text, integer, numeric, numeric, text) TO wam_admin;

CREATE FUNCTION wam_internal.offer_of(offer text) RETURNS wam.offer
	LANGUAGE plpgsql STABLE SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	o wam.offer;
BEGIN
	PERFORM wam_internal.refuse_null(offer IS NULL, 'offer');
	SELECT * INTO o FROM wam.offer x WHERE x.name = offer;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'offer "%" does not exist', offer USING ERRCODE = 'undefined_object';
	END IF;
	RETURN o;
END
$$;
COMMENT ON FUNCTION wam_internal.offer_of(text) IS 'internal: an offer by name; error if unknown';
REVOKE EXECUTE ON FUNCTION wam_internal.offer_of(text) FROM PUBLIC;

-- the customers an offer is for, now
CREATE FUNCTION wam_internal.offer_audience(o wam.offer) RETURNS wam.segment
	LANGUAGE plpgsql STABLE SET search_path = pg_catalog, wam, pg_temp
AS $$
BEGIN
	IF o.group_id IS NOT NULL THEN
		RETURN (SELECT coalesce(wam.segment_agg(m.customer_id), wam.segment(ARRAY[]::bigint[]))
				FROM wam.group_member m WHERE m.group_id = o.group_id AND m.left_at IS NULL);
	END IF;
	RETURN wam.audience(o.audience);
END
$$;
COMMENT ON FUNCTION wam_internal.offer_audience(wam.offer) IS 'internal: the customers an offer is for now (its group''s current members or its expression)';
REVOKE EXECUTE ON FUNCTION wam_internal.offer_audience(wam.offer) FROM PUBLIC;

-- one unique code per customer of the offer (or of members, within it) who has none yet
CREATE FUNCTION wam.issue_offer_codes(offer text, members wam.segment DEFAULT NULL)
	RETURNS TABLE (customer_id bigint, code text)
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_column
DECLARE
	o wam.offer := wam_internal.offer_of(offer);
	who wam.segment;
BEGIN
	IF o.shared_code IS NOT NULL THEN
		RAISE EXCEPTION 'offer "%" has the shared code %: it has no unique codes', offer, o.shared_code
			USING ERRCODE = 'object_not_in_prerequisite_state';
	END IF;
	who := wam_internal.offer_audience(o);
	IF members IS NOT NULL THEN
		who := who OPERATOR(wam.&) members;
	END IF;
	-- a lock per offer: two concurrent calls do not both issue to the same customer
	PERFORM FROM wam.offer x WHERE x.offer_id = o.offer_id FOR UPDATE;
	RETURN QUERY
	INSERT INTO wam.offer_code AS c (offer_id, code, customer_id, source)
	SELECT o.offer_id, wam.redemption_code(), m, 'generated'
	FROM wam.segment_members(who) m
	WHERE NOT EXISTS (SELECT FROM wam.offer_code k WHERE k.offer_id = o.offer_id AND k.customer_id = m)
	ORDER BY m
	RETURNING c.customer_id, c.code;
END
$$;
COMMENT ON FUNCTION wam.issue_offer_codes(text, wam.segment) IS 'generates a unique code (with a check symbol) for each customer of the offer, or of members within it, who has none; returns them';
REVOKE EXECUTE ON FUNCTION wam.issue_offer_codes(text, wam.segment) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.issue_offer_codes(text, wam.segment) TO wam_admin;

CREATE FUNCTION wam.import_offer_codes(offer text, codes text[]) RETURNS bigint
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	o wam.offer := wam_internal.offer_of(offer);
	bad text;
	n bigint;
BEGIN
	PERFORM wam_internal.refuse_null(codes IS NULL, 'codes');
	IF o.shared_code IS NOT NULL THEN
		RAISE EXCEPTION 'offer "%" has the shared code %: it has no unique codes', offer, o.shared_code
			USING ERRCODE = 'object_not_in_prerequisite_state';
	END IF;
	SELECT c INTO bad FROM unnest(codes) c
	WHERE c IS NULL OR upper(translate(c, E' \t\n\r\f\013-', '')) !~ '^[A-Z0-9]{4,64}$' LIMIT 1;
	IF FOUND THEN
		RAISE EXCEPTION 'invalid code "%"', coalesce(left(bad, 64), 'NULL')
			USING ERRCODE = 'invalid_parameter_value', HINT = 'An imported code has 4 to 64 letters and digits (spaces and hyphens are ignored).';
	END IF;
	SELECT c INTO bad FROM unnest(codes) x(c0), LATERAL (SELECT upper(translate(x.c0, E' \t\n\r\f\013-', '')) AS c) y
	WHERE EXISTS (SELECT FROM wam.offer_code k WHERE k.code = y.c) OR EXISTS (SELECT FROM wam.offer s WHERE s.shared_code = y.c)
	   OR EXISTS (SELECT FROM wam.referral_reward w WHERE w.redemption_code = y.c)
	   OR (SELECT count(*) FROM unnest(codes) z WHERE upper(translate(z, E' \t\n\r\f\013-', '')) = y.c) > 1
	LIMIT 1;
	IF FOUND THEN
		RAISE EXCEPTION 'code "%" exists already or twice in the list', bad USING ERRCODE = 'unique_violation';
	END IF;
	INSERT INTO wam.offer_code (offer_id, code, source)
	SELECT o.offer_id, upper(translate(c, E' \t\n\r\f\013-', '')), 'imported' FROM unnest(codes) c;
	GET DIAGNOSTICS n = ROW_COUNT;
	RETURN n;
END
$$;
COMMENT ON FUNCTION wam.import_offer_codes(text, text[]) IS 'imports unique codes of an offer (each usable once by any customer of the offer); returns how many';
REVOKE EXECUTE ON FUNCTION wam.import_offer_codes(text, text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.import_offer_codes(text, text[]) TO wam_admin;

CREATE FUNCTION wam.set_offer_gifts(offer text, tiers jsonb) RETURNS integer
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	o wam.offer := wam_internal.offer_of(offer);
	t jsonb;
	n integer;
BEGIN
	PERFORM wam_internal.refuse_null(tiers IS NULL, 'tiers');
	IF jsonb_typeof(tiers) <> 'array' THEN
		RAISE EXCEPTION 'gift tiers must be a JSON array of {"min_amount": ..., "gift": ..., "cost": ...}'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	FOR t IN SELECT * FROM jsonb_array_elements(tiers) LOOP
		IF jsonb_typeof(t) <> 'object' OR jsonb_typeof(t -> 'min_amount') IS DISTINCT FROM 'number'
		   OR (t ->> 'min_amount')::numeric <= 0 OR jsonb_typeof(t -> 'gift') IS DISTINCT FROM 'string'
		   OR btrim(t ->> 'gift') = '' OR coalesce(jsonb_typeof(t -> 'cost'), 'number') <> 'number'
		   OR (t ->> 'cost')::numeric < 0 THEN
			RAISE EXCEPTION 'invalid gift tier %', t
				USING ERRCODE = 'invalid_parameter_value',
					  HINT = 'A tier is {"min_amount": 1200, "gift": "sample pack", "cost": 45}: an amount above 0, a gift, a cost of at least 0.';
		END IF;
	END LOOP;
	IF (SELECT count(DISTINCT (e.v ->> 'min_amount')::numeric) FROM jsonb_array_elements(tiers) e(v)) < jsonb_array_length(tiers) THEN
		RAISE EXCEPTION 'two gift tiers have the same min_amount' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	DELETE FROM wam.offer_gift_tier g WHERE g.offer_id = o.offer_id;
	INSERT INTO wam.offer_gift_tier (offer_id, min_amount, gift, cost)
	SELECT o.offer_id, (e.v ->> 'min_amount')::numeric, e.v ->> 'gift', coalesce((e.v ->> 'cost')::numeric, 0)
	FROM jsonb_array_elements(tiers) e(v);
	GET DIAGNOSTICS n = ROW_COUNT;
	RETURN n;
END
$$;
COMMENT ON FUNCTION wam.set_offer_gifts(text, jsonb) IS 'replaces an offer''s gift tiers by order amount (the highest tier reached applies); returns how many';
REVOKE EXECUTE ON FUNCTION wam.set_offer_gifts(text, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.set_offer_gifts(text, jsonb) TO wam_admin;

-- 1.5 times the average order value of a group's current members (or a segment
-- expression's customers), from their purchase statistics
CREATE FUNCTION wam.suggest_gift_threshold(group_name text DEFAULT NULL, audience text DEFAULT NULL,
										   OUT customers bigint, OUT orders bigint,
										   OUT average_order numeric, OUT threshold numeric)
	LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	who wam.segment;
BEGIN
	IF (group_name IS NULL) = (audience IS NULL) THEN
		RAISE EXCEPTION 'give one of group_name and audience' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF group_name IS NOT NULL THEN
		who := (SELECT coalesce(wam.segment_agg(m.customer_id), wam.segment(ARRAY[]::bigint[]))
				FROM wam.group_member m WHERE m.group_id = wam_internal.group_id(group_name) AND m.left_at IS NULL);
	ELSE
		who := wam.audience(audience);
	END IF;
	SELECT count(*), coalesce(sum(s.orders), 0), round(sum(s.total_amount) / nullif(sum(s.orders), 0), 2)
	INTO customers, orders, average_order
	FROM wam.segment_members(who) m JOIN wam.customer_stats s ON s.customer_id = m;
	threshold := ceil(average_order * 1.5);
END
$$;
COMMENT ON FUNCTION wam.suggest_gift_threshold(text, text) IS 'a gift threshold at 1.5 times the average order value of a group or segment (whole units, rounded up); NULL without orders';
REVOKE EXECUTE ON FUNCTION wam.suggest_gift_threshold(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.suggest_gift_threshold(text, text) TO wam_reader;

-- ---------------------------------------------------------------------------
-- redemption: the same path for offers' codes and referral rewards' codes

-- the code a customer typed: an offer's shared or unique code, or a referral reward's
-- code; another customer's unique or reward code reads as unknown (nothing tells an
-- operator whether it exists)
CREATE FUNCTION wam_internal.code_find(typed text, customer bigint,
									   OUT kind text, OUT offer_id bigint, OUT code_id bigint,
									   OUT reward_id bigint, OUT problem text)
	LANGUAGE plpgsql STABLE SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	u text;
	canon text;
	owner bigint;
BEGIN
	IF typed IS NULL THEN
		problem := 'unknown';
		RETURN;
	END IF;
	u := upper(translate(left(typed, 200), E' \t\n\r\f\013-', ''));
	SELECT o.offer_id INTO offer_id FROM wam.offer o WHERE o.shared_code = u;
	IF FOUND THEN
		kind := 'shared';
		RETURN;
	END IF;
	SELECT c.offer_id, c.code_id, c.customer_id INTO offer_id, code_id, owner FROM wam.offer_code c WHERE c.code = u;
	IF FOUND THEN
		kind := 'unique';
	ELSE
		-- generated codes forgive typing (O for 0, I and L for 1) and catch typos
		SELECT r.canonical, r.problem INTO canon, problem FROM wam_internal.offer_code_read(left(typed, 200)) r;
		IF canon IS NULL THEN
			problem := CASE WHEN problem = 'mistyped' THEN 'mistyped' ELSE 'unknown' END;
			RETURN;
		END IF;
		SELECT c.offer_id, c.code_id, c.customer_id INTO offer_id, code_id, owner FROM wam.offer_code c WHERE c.code = canon;
		IF FOUND THEN
			kind := 'unique';
		ELSE
			SELECT w.id, w.referrer_id INTO reward_id, owner FROM wam.referral_reward w WHERE w.redemption_code = canon;
			IF NOT FOUND THEN
				problem := 'unknown';
				RETURN;
			END IF;
			kind := 'referral';
		END IF;
	END IF;
	IF owner IS DISTINCT FROM customer AND (owner IS NOT NULL OR kind = 'referral') THEN
		kind := NULL;
		offer_id := NULL;
		code_id := NULL;
		reward_id := NULL;
		problem := 'unknown';
	END IF;
END
$$;
COMMENT ON FUNCTION wam_internal.code_find(text, bigint) IS 'internal: what a typed code is (shared, unique or referral, with its offer, code or reward), or the problem (unknown, mistyped); another customer''s code is unknown';
REVOKE EXECUTE ON FUNCTION wam_internal.code_find(text, bigint) FROM PUBLIC;

-- why an offer's code cannot be redeemed now by the customer on an order of amount
-- (validity, eligibility, minimum), or NULL; the limits are the redemption's own
CREATE FUNCTION wam_internal.offer_refusal(o wam.offer, unassigned boolean, customer bigint, amount numeric, at timestamptz)
	RETURNS text
	LANGUAGE plpgsql STABLE SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
BEGIN
	IF at < o.valid_from THEN
		RETURN 'not yet valid';
	END IF;
	IF at >= o.valid_until THEN
		RETURN 'expired';
	END IF;
	-- a shared or imported code: anyone the offer is for; a generated code: its recipient
	IF unassigned THEN
		IF o.group_id IS NOT NULL THEN
			IF NOT EXISTS (SELECT FROM wam.group_member m
						   WHERE m.group_id = o.group_id AND m.customer_id = customer AND m.left_at IS NULL) THEN
				RETURN 'not a member of the group';
			END IF;
		ELSIF NOT wam.segment_has(wam.audience(o.audience), customer) THEN
			RETURN 'not in the offer''s audience';
		END IF;
	END IF;
	IF amount < o.min_order THEN
		RETURN 'below the minimum order';
	END IF;
	RETURN NULL;
END
$$;
COMMENT ON FUNCTION wam_internal.offer_refusal(wam.offer, boolean, bigint, numeric, timestamptz) IS 'internal: why an offer''s code is refused (validity, eligibility, minimum order), or NULL';
REVOKE EXECUTE ON FUNCTION wam_internal.offer_refusal(wam.offer, boolean, bigint, numeric, timestamptz) FROM PUBLIC;

-- every refusal is an error with its SQLSTATE, so nothing of the order or the
-- redemption is left half done
CREATE FUNCTION wam_internal.code_refused(typed text, reason text) RETURNS void
	LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, wam, pg_temp
AS $$
DECLARE
	state text := CASE
		WHEN reason = 'unknown' THEN 'P0002'					-- no_data_found
		WHEN reason IN ('mistyped', 'below the minimum order') THEN '22023'	-- invalid_parameter_value
		WHEN reason IN ('not yet valid', 'expired', 'reward not issued', 'reward revoked') THEN '55000'
																-- object_not_in_prerequisite_state
		WHEN reason LIKE 'not %' THEN '42501'					-- insufficient_privilege
		WHEN reason = 'already used' THEN '23505'				-- unique_violation
		ELSE '23514' END;										-- check_violation: a limit
	msg text := format('code "%s" refused: %s', left(coalesce(typed, ''), 64), reason);
BEGIN
	IF reason = 'mistyped' THEN
		RAISE EXCEPTION USING ERRCODE = state, MESSAGE = msg,
			HINT = 'A letter or digit is wrong or two are swapped: ask the customer to check the code.';
	ELSIF reason LIKE '%limit reached' THEN
		RAISE EXCEPTION USING ERRCODE = state, MESSAGE = msg,
			HINT = 'The offer''s limit is used up; a refund gives a redemption back.';
	END IF;
	RAISE EXCEPTION USING ERRCODE = state, MESSAGE = msg;
END
$$;
COMMENT ON FUNCTION wam_internal.code_refused(text, text) IS 'internal: raises the error of a refused code with the SQLSTATE of its reason';
REVOKE EXECUTE ON FUNCTION wam_internal.code_refused(text, text) FROM PUBLIC;

-- Redeems a code on an order.  The limits are kept exact under concurrency by
-- conditional updates of counter rows, whose row locks serialize concurrent
-- redemptions (READ COMMITTED rechecks the condition on the newest row): per customer,
-- per group, the unique code, then the offer's total counter last, so the offer's row
-- (the hot one) is locked for the shortest time; every redemption takes them in this
-- order, so they cannot deadlock.  Under REPEATABLE READ or SERIALIZABLE a concurrent
-- redemption of the same offer fails with 40001 (serialization_failure): retry the
-- transaction.  A refusal raises, so nothing is half applied.
CREATE FUNCTION wam_internal.redeem_code(typed text, customer bigint, order_id bigint, amount numeric, at timestamptz)
	RETURNS bigint
	LANGUAGE plpgsql SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	f record;
	o record;
	w record;
	gid bigint;
	rid bigint;
BEGIN
	-- a shared code (the common case, one query: the offer, its validity, the
	-- customer's membership and the minimum, as wam_internal.offer_refusal says them),
	-- else a unique or a referral reward's code
	SELECT x.offer_id, x.group_id, x.per_customer_limit, x.per_group_limit, x.discount_type, x.discount,
		   'shared'::text AS kind, NULL::bigint AS code_id,
		   CASE WHEN at < x.valid_from THEN 'not yet valid'
				WHEN at >= x.valid_until THEN 'expired'
				WHEN x.group_id IS NOT NULL AND NOT EXISTS (
					SELECT FROM wam.group_member m
					WHERE m.group_id = x.group_id AND m.customer_id = customer AND m.left_at IS NULL)
				THEN 'not a member of the group'
				WHEN x.group_id IS NULL AND NOT wam.segment_has(wam.audience(x.audience), customer)
				THEN 'not in the offer''s audience'
				WHEN amount < x.min_order THEN 'below the minimum order' END AS why
	INTO o
	FROM wam.offer x WHERE x.shared_code = upper(translate(typed, E' \t\n\r\f\013-', ''));
	IF NOT FOUND THEN
		f := wam_internal.code_find(typed, customer);
		IF f.problem IS NOT NULL THEN
			PERFORM wam_internal.code_refused(typed, f.problem);
		END IF;
		IF f.kind = 'referral' THEN
			SELECT x.status, x.cost, x.reward INTO w FROM wam.referral_reward x WHERE x.id = f.reward_id;
			IF w.status <> 'issued' THEN
				PERFORM wam_internal.code_refused(typed, CASE WHEN w.status = 'revoked' THEN 'reward revoked'
															  ELSE 'reward not issued' END);
			END IF;
			-- once: the unique index on the reward's redemptions that were not reversed
			INSERT INTO wam.code_redemption (reward_id, code_kind, customer_id, order_id, amount, discount, gift,
											 gift_cost, redeemed_at)
			VALUES (f.reward_id, 'referral', customer, order_id, amount, least(w.cost, amount), w.reward, w.cost, at)
			ON CONFLICT (reward_id) WHERE reward_id IS NOT NULL AND reversed_at IS NULL DO NOTHING
			RETURNING redemption_id INTO rid;
			IF rid IS NULL THEN
				PERFORM wam_internal.code_refused(typed, 'already used');
			END IF;
			RETURN rid;
		END IF;
		SELECT x.offer_id, x.group_id, x.per_customer_limit, x.per_group_limit, x.discount_type, x.discount,
			   f.kind, f.code_id,
			   wam_internal.offer_refusal(x, c.customer_id IS NULL, customer, amount, at) AS why
		INTO o
		FROM wam.offer x, wam.offer_code c WHERE x.offer_id = f.offer_id AND c.code_id = f.code_id;
	END IF;
	IF o.why IS NOT NULL THEN
		PERFORM wam_internal.code_refused(typed, o.why);
	END IF;
	gid := o.group_id;
	IF gid IS NULL THEN
		SELECT m.group_id INTO gid FROM wam.group_member m
		WHERE m.customer_id = customer AND m.left_at IS NULL ORDER BY m.joined_at, m.group_id LIMIT 1;
	END IF;

	IF o.per_customer_limit IS NOT NULL THEN
		INSERT INTO wam.offer_customer_usage AS u (offer_id, customer_id, redeemed) VALUES (o.offer_id, customer, 1)
		ON CONFLICT (offer_id, customer_id) DO UPDATE SET redeemed = u.redeemed + 1
		WHERE u.redeemed < o.per_customer_limit;
		IF NOT FOUND THEN
			PERFORM wam_internal.code_refused(typed, CASE WHEN o.per_customer_limit = 1 THEN 'already used'
														  ELSE 'customer limit reached' END);
		END IF;
	END IF;
	IF o.per_group_limit IS NOT NULL AND gid IS NOT NULL THEN
		INSERT INTO wam.offer_group_usage AS u (offer_id, group_id, redeemed) VALUES (o.offer_id, gid, 1)
		ON CONFLICT (offer_id, group_id) DO UPDATE SET redeemed = u.redeemed + 1
		WHERE u.redeemed < o.per_group_limit;
		IF NOT FOUND THEN
			PERFORM wam_internal.code_refused(typed, 'group limit reached');
		END IF;
	END IF;
	IF o.code_id IS NOT NULL THEN
		UPDATE wam.offer_code c SET used_at = at WHERE c.code_id = o.code_id AND c.used_at IS NULL;
		IF NOT FOUND THEN
			PERFORM wam_internal.code_refused(typed, 'already used');
		END IF;
	END IF;

	INSERT INTO wam.code_redemption (offer_id, code_kind, code_id, customer_id, order_id, group_id, amount,
									 discount, gift, gift_cost, redeemed_at)
	SELECT o.offer_id, o.kind, o.code_id, customer, order_id, gid, amount,
		   CASE WHEN o.discount_type = 'percent' THEN round(amount * o.discount / 100, 2) ELSE least(o.discount, amount) END,
		   t.gift, t.cost, at
	FROM (SELECT) d
	LEFT JOIN LATERAL (SELECT g.gift, g.cost FROM wam.offer_gift_tier g
					   WHERE g.offer_id = o.offer_id AND g.min_amount <= amount
					   ORDER BY g.min_amount DESC LIMIT 1) t ON true
	RETURNING redemption_id INTO rid;

	-- the total limit: last, so the offer's row (the hot one) is locked for the shortest time
	UPDATE wam.offer x SET redeemed = x.redeemed + 1
	WHERE x.offer_id = o.offer_id AND (x.total_limit IS NULL OR x.redeemed < x.total_limit);
	IF NOT FOUND THEN
		PERFORM wam_internal.code_refused(typed, 'limit reached');
	END IF;
	RETURN rid;
END
$$;
COMMENT ON FUNCTION wam_internal.redeem_code(text, bigint, bigint, numeric, timestamptz) IS 'internal: redeems a code on an order (exact limits under concurrency; a refusal raises); returns the redemption id';
REVOKE EXECUTE ON FUNCTION wam_internal.redeem_code(text, bigint, bigint, numeric, timestamptz) FROM PUBLIC;

-- what the code would give on an order now, or why it is refused; changes nothing
-- (the redemption itself, at wam.record_order, decides under the limits' locks)
CREATE FUNCTION wam.check_code(code text, customer bigint, amount numeric DEFAULT NULL)
	RETURNS TABLE (status text, reason text, offer text, discount numeric, gift text)
	LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	f record;
	o wam.offer;
	w record;
	why text;
	amt numeric;
	gid bigint;
BEGIN
	PERFORM wam_internal.refuse_null(customer IS NULL, 'customer');
	IF amount < 0 OR amount = 'NaN' OR amount = 'Infinity' THEN
		RAISE EXCEPTION 'order amount must be a finite amount of at least 0, not %', amount USING ERRCODE = 'invalid_parameter_value';
	END IF;
	f := wam_internal.code_find(code, customer);
	IF f.problem IS NOT NULL THEN
		RETURN QUERY SELECT 'refused', f.problem, NULL::text, NULL::numeric, NULL::text;
		RETURN;
	END IF;
	IF f.kind = 'referral' THEN
		SELECT x.status, x.cost, x.reward INTO w FROM wam.referral_reward x WHERE x.id = f.reward_id;
		why := CASE WHEN w.status = 'revoked' THEN 'reward revoked' WHEN w.status <> 'issued' THEN 'reward not issued'
					WHEN EXISTS (SELECT FROM wam.code_redemption r WHERE r.reward_id = f.reward_id AND r.reversed_at IS NULL)
					THEN 'already used' END;
		RETURN QUERY SELECT CASE WHEN why IS NULL THEN 'valid' ELSE 'refused' END, why, 'referral reward'::text,
							CASE WHEN why IS NULL THEN least(w.cost, coalesce(amount, w.cost)) END, w.reward;
		RETURN;
	END IF;
	SELECT * INTO o FROM wam.offer x WHERE x.offer_id = f.offer_id;
	amt := coalesce(amount, o.min_order);
	why := wam_internal.offer_refusal(o, f.kind = 'shared' OR NOT EXISTS (
		SELECT FROM wam.offer_code c WHERE c.code_id = f.code_id AND c.customer_id IS NOT NULL), customer, amt, now());
	gid := o.group_id;
	IF gid IS NULL THEN
		SELECT m.group_id INTO gid FROM wam.group_member m
		WHERE m.customer_id = customer AND m.left_at IS NULL ORDER BY m.joined_at, m.group_id LIMIT 1;
	END IF;
	IF why IS NULL AND f.code_id IS NOT NULL AND EXISTS (SELECT FROM wam.offer_code c WHERE c.code_id = f.code_id AND c.used_at IS NOT NULL) THEN
		why := 'already used';
	END IF;
	IF why IS NULL AND EXISTS (SELECT FROM wam.offer_customer_usage u WHERE u.offer_id = o.offer_id AND u.customer_id = customer
							   AND u.redeemed >= o.per_customer_limit) THEN
		why := CASE WHEN o.per_customer_limit = 1 THEN 'already used' ELSE 'customer limit reached' END;
	END IF;
	IF why IS NULL AND gid IS NOT NULL AND EXISTS (SELECT FROM wam.offer_group_usage u WHERE u.offer_id = o.offer_id
												   AND u.group_id = gid AND u.redeemed >= o.per_group_limit) THEN
		why := 'group limit reached';
	END IF;
	IF why IS NULL AND o.redeemed >= o.total_limit THEN
		why := 'limit reached';
	END IF;
	RETURN QUERY
	SELECT CASE WHEN why IS NULL THEN 'valid' ELSE 'refused' END, why, o.name,
		   CASE WHEN why IS NULL AND amount IS NOT NULL THEN
				CASE WHEN o.discount_type = 'percent' THEN round(amount * o.discount / 100, 2) ELSE least(o.discount, amount) END END,
		   (SELECT g.gift FROM wam.offer_gift_tier g WHERE why IS NULL AND g.offer_id = o.offer_id AND g.min_amount <= amount
			ORDER BY g.min_amount DESC LIMIT 1);
END
$$;
COMMENT ON FUNCTION wam.check_code(text, bigint, numeric) IS 'whether a code is valid for a customer and an order amount now, with the discount and gift, or why it is refused; changes nothing';
REVOKE EXECUTE ON FUNCTION wam.check_code(text, bigint, numeric) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.check_code(text, bigint, numeric) TO wam_operator;

CREATE FUNCTION wam_internal.reverse_redemption(redemption bigint, why text) RETURNS boolean
	LANGUAGE plpgsql SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	x wam.code_redemption;
BEGIN
	UPDATE wam.code_redemption r SET reversed_at = now(), reverse_reason = why
	WHERE r.redemption_id = redemption AND r.reversed_at IS NULL
	RETURNING * INTO x;
	IF NOT FOUND THEN
		RETURN false;
	END IF;
	IF x.offer_id IS NOT NULL THEN
		-- the counters in the order the redemption takes them
		UPDATE wam.offer_customer_usage u SET redeemed = u.redeemed - 1
		WHERE u.offer_id = x.offer_id AND u.customer_id = x.customer_id AND u.redeemed > 0;
		UPDATE wam.offer_group_usage u SET redeemed = u.redeemed - 1
		WHERE u.offer_id = x.offer_id AND u.group_id = x.group_id AND u.redeemed > 0;
		UPDATE wam.offer_code c SET used_at = NULL WHERE c.code_id = x.code_id;
		UPDATE wam.offer o SET redeemed = o.redeemed - 1 WHERE o.offer_id = x.offer_id AND o.redeemed > 0;
	END IF;
	RETURN true;
END
$$;
COMMENT ON FUNCTION wam_internal.reverse_redemption(bigint, text) IS 'internal: reverses a redemption (its counters and unique code are given back); false if it was reversed already';
REVOKE EXECUTE ON FUNCTION wam_internal.reverse_redemption(bigint, text) FROM PUBLIC;

-- a refund: the order's amount becomes 0 (the purchase statistics and referrals follow,
-- as for any correction), its code redemptions are reversed; refunding again does nothing
GRANT UPDATE ON wam.customer_order TO wam_definer;
CREATE FUNCTION wam.refund_order(customer bigint, order_id bigint, reason text DEFAULT NULL)
	RETURNS integer
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	d jsonb;
	amt numeric;
	r bigint;
	n integer := 0;
BEGIN
	PERFORM wam_internal.refuse_null(customer IS NULL OR order_id IS NULL, 'customer and order');
	SELECT o.details, o.amount INTO d, amt FROM wam.customer_order o
	WHERE o.customer_id = customer AND o.order_id = order_id FOR UPDATE;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'order % of customer % does not exist', order_id, customer USING ERRCODE = 'no_data_found';
	END IF;
	IF d ? 'refunded_at' THEN
		RETURN 0;
	END IF;
	UPDATE wam.customer_order o
	SET amount = 0,
		details = coalesce(o.details, '{}') || jsonb_build_object('refunded_at', now(), 'refunded_amount', amt)
				  || CASE WHEN reason IS NULL THEN '{}'::jsonb ELSE jsonb_build_object('refund_reason', reason) END
	WHERE o.customer_id = customer AND o.order_id = order_id;
	FOR r IN SELECT x.redemption_id FROM wam.code_redemption x
			 WHERE x.customer_id = customer AND x.order_id = order_id AND x.reversed_at IS NULL ORDER BY 1 LOOP
		IF wam_internal.reverse_redemption(r, coalesce(reason, 'refund')) THEN
			n := n + 1;
		END IF;
	END LOOP;
	RETURN n;
END
$$;
COMMENT ON FUNCTION wam.refund_order(bigint, bigint, text) IS 'refunds an order: its amount becomes 0 (kept in details.refunded_amount) and its code redemptions are reversed; returns how many';
REVOKE EXECUTE ON FUNCTION wam.refund_order(bigint, bigint, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.refund_order(bigint, bigint, text) TO wam_operator;

-- ---------------------------------------------------------------------------
-- group economics (R-G5)

-- per ISO week, group and offer: the group's members that week, how many clicked a link
-- and how many redeemed, what the redemptions brought and cost
CREATE FUNCTION wam.group_economics(since timestamptz, until timestamptz)
	RETURNS TABLE (week date, group_name text, offer text, members bigint, clicked bigint, click_rate numeric,
				   redeemers bigint, redemption_rate numeric, redemptions bigint, revenue numeric,
				   discount_cost numeric, net_profit numeric, profit_per_discount numeric, health text, flag text)
	LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_column
BEGIN
	PERFORM wam_internal.refuse_null(since IS NULL OR until IS NULL, 'since and until');
	IF until <= since THEN
		RAISE EXCEPTION 'until must be after since' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	RETURN QUERY
	WITH r AS (
		SELECT date_trunc('week', x.redeemed_at)::date AS wk, x.group_id, x.offer_id, x.customer_id,
			   x.amount, x.discount + coalesce(x.gift_cost, 0) AS cost
		FROM wam.code_redemption x
		WHERE x.redeemed_at >= since AND x.redeemed_at < until AND x.reversed_at IS NULL
		  AND x.offer_id IS NOT NULL AND x.group_id IS NOT NULL
	), cells AS (
		SELECT r.wk, r.group_id, r.offer_id, count(DISTINCT r.customer_id) AS redeemers, count(*) AS n,
			   sum(r.amount) AS revenue, sum(r.cost) AS cost
		FROM r GROUP BY 1, 2, 3
	), m AS (
		-- members during the week (joined before its end, not left before its start)
		SELECT c.wk, c.group_id, gm.customer_id
		FROM (SELECT DISTINCT wk, group_id FROM cells) c
		JOIN wam.group_member gm ON gm.group_id = c.group_id AND gm.joined_at < c.wk + 7
								 AND (gm.left_at IS NULL OR gm.left_at >= c.wk)
		GROUP BY 1, 2, 3
	), mc AS (
		SELECT m.wk, m.group_id, count(*) AS members,
			   count(*) FILTER (WHERE EXISTS (SELECT FROM wam.event e WHERE e.customer_id = m.customer_id
											  AND e.kind = 'link_click' AND e.occurred_at >= m.wk
											  AND e.occurred_at < m.wk + 7)) AS clicked
		FROM m GROUP BY 1, 2
	)
	SELECT c.wk, g.name, o.name, coalesce(mc.members, 0), coalesce(mc.clicked, 0),
		   round(mc.clicked::numeric / nullif(mc.members, 0), 4),
		   c.redeemers, round(c.redeemers::numeric / nullif(mc.members, 0), 4), c.n,
		   c.revenue, c.cost, c.revenue - c.cost, round((c.revenue - c.cost) / nullif(c.cost, 0), 2),
		   CASE WHEN c.cost = 0 THEN NULL WHEN (c.revenue - c.cost) / c.cost >= 5 THEN 'healthy' ELSE 'low' END,
		   CASE WHEN c.redeemers::numeric / nullif(mc.members, 0) < 0.15 THEN 'change the offer form' END
	FROM cells c
	JOIN wam.wa_group g ON g.group_id = c.group_id
	JOIN wam.offer o ON o.offer_id = c.offer_id
	LEFT JOIN mc ON mc.wk = c.wk AND mc.group_id = c.group_id
	ORDER BY 1, 2, 3;
END
$$;
COMMENT ON FUNCTION wam.group_economics(timestamptz, timestamptz) IS 'per week, group and offer: members, click and redemption rates, revenue, discount cost, net profit per unit of discount (healthy at 5 or more), a flag below 15 % redemption';
REVOKE EXECUTE ON FUNCTION wam.group_economics(timestamptz, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.group_economics(timestamptz, timestamptz) TO wam_reader;

-- the seed users' arrangement: a group's admins earn 3 % of the order amounts redeemed
-- with the group's offers, shared equally by the admins of that week
CREATE FUNCTION wam.group_admin_commission(since timestamptz, until timestamptz, rate numeric DEFAULT 0.03)
	RETURNS TABLE (week date, group_name text, admin bigint, order_amount numeric, commission numeric)
	LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_column
BEGIN
	PERFORM wam_internal.refuse_null(since IS NULL OR until IS NULL OR rate IS NULL, 'since, until and rate');
	IF until <= since OR rate < 0 OR rate > 1 THEN
		RAISE EXCEPTION 'until must be after since, and rate between 0 and 1' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	RETURN QUERY
	WITH a AS (
		SELECT date_trunc('week', x.redeemed_at)::date AS wk, x.group_id, sum(x.amount) AS amount
		FROM wam.code_redemption x
		WHERE x.redeemed_at >= since AND x.redeemed_at < until AND x.reversed_at IS NULL AND x.group_id IS NOT NULL
		GROUP BY 1, 2
	), ad AS (
		SELECT a.wk, a.group_id, a.amount, gm.customer_id,
			   count(*) OVER (PARTITION BY a.wk, a.group_id) AS admins
		FROM a JOIN wam.group_member gm ON gm.group_id = a.group_id AND gm.role = 'admin'
			AND gm.joined_at < a.wk + 7 AND (gm.left_at IS NULL OR gm.left_at >= a.wk)
	)
	SELECT ad.wk, g.name, ad.customer_id, ad.amount, round(ad.amount * rate / ad.admins, 2)
	FROM ad JOIN wam.wa_group g ON g.group_id = ad.group_id
	ORDER BY 1, 2, 3;
END
$$;
COMMENT ON FUNCTION wam.group_admin_commission(timestamptz, timestamptz, numeric) IS 'per week, group and admin: the order amounts redeemed with the group''s offers and the admin''s commission (3 % by default, shared by the week''s admins)';
REVOKE EXECUTE ON FUNCTION wam.group_admin_commission(timestamptz, timestamptz, numeric) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.group_admin_commission(timestamptz, timestamptz, numeric) TO wam_reader;
