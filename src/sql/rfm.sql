-- src/sql/rfm.sql: RFM settings, cut points, scores, tier schemes and tier tags
-- settings

-- One row of settings, changed by administrators with wam.configure_rfm()
-- and listed by the view wam.rfm_settings.
CREATE TABLE wam.rfm_config (
	id boolean PRIMARY KEY DEFAULT true CONSTRAINT rfm_config_one_row CHECK (id),
	currency text CONSTRAINT rfm_config_currency CHECK (currency ~ '^[A-Z]{3}$'),
	day_time_zone text NOT NULL DEFAULT 'UTC',
	future_tolerance interval NOT NULL DEFAULT '5 minutes'
		CONSTRAINT rfm_config_future_tolerance CHECK (future_tolerance >= interval '0' AND future_tolerance <= interval '1 day'),
	tier_scheme text NOT NULL DEFAULT 'segment map',
	mirror_tags boolean NOT NULL DEFAULT false,
	tag_prefix text NOT NULL DEFAULT 'RFM '
		CONSTRAINT rfm_config_tag_prefix CHECK (length(tag_prefix) <= 40),
	high_frequency_orders_30d integer NOT NULL DEFAULT 2
		CONSTRAINT rfm_config_high_frequency CHECK (high_frequency_orders_30d >= 1),
	low_spend_order_value numeric NOT NULL DEFAULT 500
		CONSTRAINT rfm_config_low_spend CHECK (low_spend_order_value >= 0),
	high_spend_order_value numeric NOT NULL DEFAULT 500
		CONSTRAINT rfm_config_high_spend CHECK (high_spend_order_value >= 0),
	price_sensitive_coupon_share numeric NOT NULL DEFAULT 0.70
		CONSTRAINT rfm_config_coupon_share CHECK (price_sensitive_coupon_share > 0 AND price_sensitive_coupon_share <= 1),
	quality_price_ratio numeric NOT NULL DEFAULT 2
		CONSTRAINT rfm_config_quality_ratio CHECK (quality_price_ratio > 0),
	flag_min_orders integer NOT NULL DEFAULT 2
		CONSTRAINT rfm_config_flag_min_orders CHECK (flag_min_orders >= 1),
	catalogue_unit_price numeric
		CONSTRAINT rfm_config_catalogue_unit_price CHECK (catalogue_unit_price > 0),
	clv_min_customers integer NOT NULL DEFAULT 500
		CONSTRAINT rfm_config_clv_min_customers CHECK (clv_min_customers >= 2),
	clv_min_repeat_buyers integer NOT NULL DEFAULT 100
		CONSTRAINT rfm_config_clv_min_repeat_buyers CHECK (clv_min_repeat_buyers >= 1),
	clv_margin numeric NOT NULL DEFAULT 1
		CONSTRAINT rfm_config_clv_margin CHECK (clv_margin >= 0 AND clv_margin <= 1),
	cost_cap_horizon interval NOT NULL DEFAULT '1 year'
		CONSTRAINT rfm_config_cost_cap_horizon CHECK (cost_cap_horizon > interval '0'),
	cost_cap_share numeric NOT NULL DEFAULT 0.15
		CONSTRAINT rfm_config_cost_cap_share CHECK (cost_cap_share >= 0 AND cost_cap_share <= 1),
	push_cost numeric
		CONSTRAINT rfm_config_push_cost CHECK (push_cost >= 0),
	high_value_clv numeric NOT NULL DEFAULT 8000
		CONSTRAINT rfm_config_high_value_clv CHECK (high_value_clv >= 0),
	high_value_push_multiplier numeric NOT NULL DEFAULT 3
		CONSTRAINT rfm_config_high_value_multiplier CHECK (high_value_push_multiplier >= 1)
);
INSERT INTO wam.rfm_config DEFAULT VALUES;
COMMENT ON TABLE wam.rfm_config IS 'settings of orders, RFM, lifetime value and cost caps';
COMMENT ON COLUMN wam.rfm_config.currency IS 'ISO 4217 code of the program currency; NULL until the first order that names one (details->>''currency''); orders in another currency are refused';
COMMENT ON COLUMN wam.rfm_config.day_time_zone IS 'time zone whose calendar days count as purchase days (frequency = distinct purchase days); changing it recomputes all statistics';
COMMENT ON COLUMN wam.rfm_config.future_tolerance IS 'how far in the future an order time may be (clock skew) before wam.record_order refuses it';
COMMENT ON COLUMN wam.rfm_config.tier_scheme IS 'the tier scheme of wam.rfm_score, wam.refresh_rfm and the tier tags: ''segment map'' (11 named segments), ''value tiers'' (6) or one defined with wam.define_rfm_scheme';
COMMENT ON COLUMN wam.rfm_config.mirror_tags IS 'keep one tag per tier (dimension spending power) in step: at every refresh, and at once when an order moves a customer to another tier';
COMMENT ON COLUMN wam.rfm_config.tag_prefix IS 'tier tags are named tag_prefix || tier, e.g. "RFM Champions"';
COMMENT ON COLUMN wam.rfm_config.high_frequency_orders_30d IS 'orders in the last 30 days from which a customer is high-frequency (below: low-frequency)';
COMMENT ON COLUMN wam.rfm_config.low_spend_order_value IS 'average order value below which a high-frequency customer is low-spend';
COMMENT ON COLUMN wam.rfm_config.high_spend_order_value IS 'average order value from which a low-frequency customer is high-spend';
COMMENT ON COLUMN wam.rfm_config.price_sensitive_coupon_share IS 'share of orders with a coupon from which a customer is price-sensitive';
COMMENT ON COLUMN wam.rfm_config.quality_price_ratio IS 'average unit price, as a multiple of the catalogue average, from which a customer is quality-oriented';
COMMENT ON COLUMN wam.rfm_config.flag_min_orders IS 'orders a customer needs before the price-sensitive and quality-oriented flags apply';
COMMENT ON COLUMN wam.rfm_config.catalogue_unit_price IS 'the catalogue average unit price; NULL: the sales-weighted average unit price of all orders at the last wam.refresh_rfm';
COMMENT ON COLUMN wam.rfm_config.clv_min_customers IS 'customers with an order that wam.fit_clv needs; until a fit exists wam.clv uses the simple estimate';
COMMENT ON COLUMN wam.rfm_config.clv_min_repeat_buyers IS 'customers with a repeat purchase day that wam.fit_clv needs';
COMMENT ON COLUMN wam.rfm_config.clv_margin IS 'default gross margin applied by wam.clv (1 = revenue)';
COMMENT ON COLUMN wam.rfm_config.cost_cap_horizon IS 'horizon of the lifetime value that wam.cost_cap is a share of';
COMMENT ON COLUMN wam.rfm_config.cost_cap_share IS 'the largest reward or push cost as a share of the lifetime value';
COMMENT ON COLUMN wam.rfm_config.push_cost IS 'the normal cost of one push (e.g. a gift); NULL: only the share of lifetime value limits costs';
COMMENT ON COLUMN wam.rfm_config.high_value_clv IS 'lifetime value above which a customer may receive pushes costing high_value_push_multiplier times push_cost';
COMMENT ON COLUMN wam.rfm_config.high_value_push_multiplier IS 'the push cost multiple allowed for high-value customers';

-- tier schemes

CREATE TABLE wam.rfm_scheme (
	name text PRIMARY KEY CONSTRAINT rfm_scheme_name CHECK (btrim(name) <> ''),
	builtin boolean NOT NULL DEFAULT false,
	description text,
	tiers text[] NOT NULL DEFAULT '{}',
	tier_map text[] CONSTRAINT rfm_scheme_tier_map CHECK (cardinality(tier_map) = 125)
);
COMMENT ON TABLE wam.rfm_scheme IS 'tier schemes and the tier of each score cell';

CREATE TABLE wam.rfm_tier_rule (
	scheme text NOT NULL REFERENCES wam.rfm_scheme ON DELETE CASCADE ON UPDATE CASCADE,
	position integer NOT NULL,
	tier text NOT NULL CONSTRAINT rfm_tier_rule_tier CHECK (btrim(tier) <> '' AND tier <> 'Prospects'),
	r_min integer NOT NULL DEFAULT 1,
	r_max integer NOT NULL DEFAULT 5,
	f_min integer NOT NULL DEFAULT 1,
	f_max integer NOT NULL DEFAULT 5,
	m_min integer NOT NULL DEFAULT 1,
	m_max integer NOT NULL DEFAULT 5,
	fm_min numeric NOT NULL DEFAULT 1,
	fm_max numeric NOT NULL DEFAULT 5,
	segments text[],
	PRIMARY KEY (scheme, position),
	CONSTRAINT rfm_tier_rule_ranges CHECK (
		1 <= r_min AND r_min <= r_max AND r_max <= 5 AND
		1 <= f_min AND f_min <= f_max AND f_max <= 5 AND
		1 <= m_min AND m_min <= m_max AND m_max <= 5 AND
		1 <= fm_min AND fm_min <= fm_max AND fm_max <= 5)
);
COMMENT ON TABLE wam.rfm_tier_rule IS 'rules that map score ranges to tiers';

-- RFM cut points

CREATE TABLE wam.rfm_cut (
	id boolean PRIMARY KEY DEFAULT true CONSTRAINT rfm_cut_one_row CHECK (id),
	refreshed_at timestamptz NOT NULL,
	as_of timestamptz NOT NULL,
	source text NOT NULL CONSTRAINT rfm_cut_source CHECK (source IN ('statistics', 'orders')),
	customers bigint NOT NULL,
	r_cuts timestamptz[] NOT NULL,
	f_cuts bigint[] NOT NULL,
	m_cuts numeric[] NOT NULL,
	cells bigint[] NOT NULL,
	orders bigint NOT NULL,
	revenue numeric NOT NULL,
	unit_price numeric,
	repeat_orders_per_year float8 NOT NULL,
	refresh_ms float8 NOT NULL
);
COMMENT ON TABLE wam.rfm_cut IS 'cut points and base totals of the last RFM refresh';

REVOKE ALL ON wam.rfm_cut FROM PUBLIC;
GRANT SELECT ON wam.rfm_cut TO wam_reader;
GRANT SELECT, INSERT, UPDATE ON wam.rfm_cut TO wam_definer;

-- C functions: RFM quintiles

CREATE TYPE wam.rfm_cut_result AS (
	customers bigint,
	latest timestamptz,
	r_cuts timestamptz[],
	f_cuts bigint[],
	m_cuts numeric[],
	cells bigint[],
	orders bigint,
	revenue float8,
	unit_price float8,
	repeat_orders_per_year float8
);
COMMENT ON TYPE wam.rfm_cut_result IS 'result of wam_internal.rfm_cut_points: cut points, customers per (R, F, M) cell and base totals';

CREATE FUNCTION wam_internal.rfm_cut_points_trans(internal, timestamptz, timestamptz, timestamptz, bigint, numeric, bigint)
	RETURNS internal AS 'MODULE_PATHNAME', 'wam_rfm_cut_points_trans' LANGUAGE C IMMUTABLE CALLED ON NULL INPUT PARALLEL SAFE;
CREATE FUNCTION wam_internal.rfm_cut_points_final(internal) RETURNS wam.rfm_cut_result
	AS 'MODULE_PATHNAME', 'wam_rfm_cut_points_final' LANGUAGE C IMMUTABLE CALLED ON NULL INPUT PARALLEL SAFE;
CREATE AGGREGATE wam_internal.rfm_cut_points(as_of timestamptz, first_order_at timestamptz, last_order_at timestamptz,
									orders bigint, total numeric, units bigint) (
	SFUNC = wam_internal.rfm_cut_points_trans,
	STYPE = internal,
	FINALFUNC = wam_internal.rfm_cut_points_final,
	PARALLEL = SAFE
);
COMMENT ON FUNCTION wam_internal.rfm_cut_points_trans(internal, timestamptz, timestamptz, timestamptz, bigint, numeric, bigint) IS 'internal: transition function of wam_internal.rfm_cut_points (collects one customer)';

REVOKE EXECUTE ON FUNCTION wam_internal.rfm_cut_points_trans(internal, timestamptz, timestamptz, timestamptz, bigint, numeric, bigint) FROM PUBLIC;
COMMENT ON FUNCTION wam_internal.rfm_cut_points_final(internal) IS 'internal: final function of wam_internal.rfm_cut_points (cut points and cell counts)';

REVOKE EXECUTE ON FUNCTION wam_internal.rfm_cut_points_final(internal) FROM PUBLIC;
COMMENT ON AGGREGATE wam_internal.rfm_cut_points(timestamptz, timestamptz, timestamptz, bigint, numeric, bigint) IS 'internal: mid-rank quintile cut points of recency, frequency (1 order = 1, repeat buyers 2..5) and monetary value over one row per customer';

REVOKE EXECUTE ON FUNCTION wam_internal.rfm_cut_points(timestamptz, timestamptz, timestamptz, bigint, numeric, bigint) FROM PUBLIC;

-- scoring helpers

CREATE FUNCTION wam.rfm_level(v anyelement, cuts anyarray) RETURNS integer
	LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
	SELECT CASE WHEN v IS NOT NULL AND cuts IS NOT NULL THEN
		1 + (coalesce(v >= cuts[1], false))::integer + (coalesce(v >= cuts[2], false))::integer
		  + (coalesce(v >= cuts[3], false))::integer + (coalesce(v >= cuts[4], false))::integer END
$$;
COMMENT ON FUNCTION wam.rfm_level(anyelement, anyarray) IS 'score 1 to 5 of a value against 4 cut points';

REVOKE EXECUTE ON FUNCTION wam.rfm_level(anyelement, anyarray) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.rfm_level(anyelement, anyarray) TO wam_reader;

CREATE FUNCTION wam_internal.count_since(times timestamptz[], since timestamptz) RETURNS integer
	LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
	SELECT count(*)::integer FROM unnest(times) t WHERE t > since
$$;
COMMENT ON FUNCTION wam_internal.count_since(timestamptz[], timestamptz) IS 'how many of the times are after since';

REVOKE EXECUTE ON FUNCTION wam_internal.count_since(timestamptz[], timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam_internal.count_since(timestamptz[], timestamptz) TO wam_reader;

-- wam_internal.rfm_compile gives, for each of the 125 cells, the position of the
-- first rule of a scheme that matches it (NULL: none).  The rules of the
-- segment map use R and FM only; rules naming segments look them up in the
-- compiled segment map.
CREATE FUNCTION wam_internal.rfm_compile(scheme text) RETURNS integer[]
	LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, wam, pg_temp
AS $$
	SELECT array_agg((SELECT t.position FROM wam.rfm_tier_rule t
					  WHERE t.scheme = rfm_compile.scheme
						AND c.r BETWEEN t.r_min AND t.r_max
						AND c.f BETWEEN t.f_min AND t.f_max
						AND c.m BETWEEN t.m_min AND t.m_max
						AND (c.f + c.m) / 2.0 BETWEEN t.fm_min AND t.fm_max
						AND (t.segments IS NULL OR seg.map[c.cell] = ANY (t.segments))
					  ORDER BY t.position LIMIT 1) ORDER BY c.cell)
	FROM (SELECT r, f, m, (r - 1) * 25 + (f - 1) * 5 + m AS cell
		  FROM generate_series(1, 5) r, generate_series(1, 5) f, generate_series(1, 5) m) c
	LEFT JOIN (SELECT s.tier_map AS map FROM wam.rfm_scheme s WHERE s.name = 'segment map') seg ON true
$$;
COMMENT ON FUNCTION wam_internal.rfm_compile(text) IS 'internal: the winning rule position of a scheme for each (R, F, M) cell';

REVOKE EXECUTE ON FUNCTION wam_internal.rfm_compile(text) FROM PUBLIC;

CREATE FUNCTION wam_internal.rfm_store_scheme(scheme text) RETURNS void
	LANGUAGE plpgsql SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	positions integer[] := wam_internal.rfm_compile(scheme);
BEGIN
	UPDATE wam.rfm_scheme s
	SET tier_map = ARRAY(SELECT t.tier FROM unnest(positions) WITH ORDINALITY p(pos, cell)
						 LEFT JOIN wam.rfm_tier_rule t ON t.scheme = s.name AND t.position = p.pos
						 ORDER BY p.cell),
		tiers = ARRAY(SELECT t.tier FROM wam.rfm_tier_rule t WHERE t.scheme = s.name
					  GROUP BY t.tier ORDER BY min(t.position))
	WHERE s.name = scheme;
END
$$;
COMMENT ON FUNCTION wam_internal.rfm_store_scheme(text) IS 'internal: compiles a scheme''s rules into its tier map';

REVOKE EXECUTE ON FUNCTION wam_internal.rfm_store_scheme(text) FROM PUBLIC;

-- The segment map: the 11 segments of the widely copied RFM table with their
-- published R and FM = (F+M)/2 ranges.  The published ranges overlap (first
-- match wins), and in the published order New, Promising, Need attention and
-- Lost could never be assigned; this order (narrow segments first, Lost
-- narrowed to the lowest cell because with scores of 1..5 its published range
-- equals Hibernating's) makes every segment reachable and gives every cell a
-- segment whose published range contains it.
INSERT INTO wam.rfm_scheme (name, builtin, description) VALUES
	('segment map', true, 'the 11 named RFM segments by R and FM = (F+M)/2'),
	('value tiers', true, 'six value tiers grouping the segment map');
INSERT INTO wam.rfm_tier_rule (scheme, position, tier, r_min, r_max, fm_min, fm_max) VALUES
	('segment map', 1, 'Champions', 4, 5, 4, 5),
	('segment map', 2, 'Can''t lose them', 1, 1, 4, 5),
	('segment map', 3, 'Need attention', 2, 3, 2, 3),
	('segment map', 4, 'At risk', 1, 2, 2, 5),
	('segment map', 5, 'Loyal', 2, 5, 3, 5),
	('segment map', 6, 'Lost', 1, 1, 1, 1),
	('segment map', 7, 'Hibernating', 1, 2, 1, 2),
	('segment map', 8, 'About to sleep', 2, 3, 1, 2),
	('segment map', 9, 'Promising', 3, 4, 1, 1),
	('segment map', 10, 'New', 4, 5, 1, 1),
	('segment map', 11, 'Potential loyalist', 3, 5, 1, 3);
SELECT wam_internal.rfm_store_scheme('segment map');
INSERT INTO wam.rfm_tier_rule (scheme, position, tier, segments) VALUES
	('value tiers', 1, 'Champions', '{Champions}'),
	('value tiers', 2, 'Loyal', '{Loyal}'),
	('value tiers', 3, 'Potential', '{Potential loyalist,New,Promising}'),
	('value tiers', 4, 'Needs attention', '{Need attention,About to sleep}'),
	('value tiers', 5, 'At risk', '{At risk,Can''t lose them}'),
	('value tiers', 6, 'Dormant', '{Hibernating,Lost}');

REVOKE ALL ON wam.rfm_tier_rule FROM PUBLIC;
GRANT SELECT ON wam.rfm_tier_rule TO wam_reader;
GRANT SELECT, INSERT, DELETE ON wam.rfm_tier_rule TO wam_definer;
SELECT wam_internal.rfm_store_scheme('value tiers');
-- the segment map lists its segments in the conventional order, not rule order
UPDATE wam.rfm_scheme SET tiers = '{Champions,Loyal,Potential loyalist,New,Promising,Need attention,About to sleep,At risk,Can''t lose them,Hibernating,Lost}'
WHERE name = 'segment map';

REVOKE ALL ON wam.rfm_scheme FROM PUBLIC;
GRANT SELECT ON wam.rfm_scheme TO wam_reader;
GRANT SELECT, INSERT, UPDATE ON wam.rfm_scheme TO wam_definer;
ALTER TABLE wam.rfm_config ADD CONSTRAINT rfm_config_tier_scheme
	FOREIGN KEY (tier_scheme) REFERENCES wam.rfm_scheme ON UPDATE CASCADE;

REVOKE ALL ON wam.rfm_config FROM PUBLIC;
GRANT SELECT ON wam.rfm_config TO wam_reader;
GRANT SELECT, UPDATE ON wam.rfm_config TO wam_definer;

-- scores, segments, tiers and flags of every customer with an order

CREATE VIEW wam.customer_rfm AS
SELECT s.customer_id,
	   s.orders,
	   s.order_days,
	   s.first_order_at,
	   s.last_order_at,
	   s.total_amount,
	   round(s.total_amount / s.orders, 2) AS average_order_value,
	   round(s.coupon_orders::numeric / s.orders, 4) AS coupon_share,
	   CASE WHEN s.units > 0 THEN round(s.total_amount / s.units, 2) END AS average_unit_price,
	   CASE WHEN s.units > 0 AND p.unit_price > 0 THEN round(s.total_amount / s.units / p.unit_price, 2) END
		   AS unit_price_ratio,
	   x.orders_30d,
	   x.r,
	   x.f,
	   x.m,
	   p.segment_map[x.cell] AS segment,
	   p.tier_map[x.cell] AS tier,
	   x.orders_30d >= p.high_frequency_orders_30d
		   AND s.total_amount / s.orders < p.low_spend_order_value AS high_frequency_low_spend,
	   x.orders_30d < p.high_frequency_orders_30d
		   AND s.total_amount / s.orders >= p.high_spend_order_value AS low_frequency_high_spend,
	   s.orders >= p.flag_min_orders
		   AND s.coupon_orders >= p.price_sensitive_coupon_share * s.orders AS price_sensitive,
	   coalesce(s.orders >= p.flag_min_orders AND s.units > 0
		   AND s.total_amount / s.units >= p.quality_price_ratio * p.unit_price, false) AS quality_oriented
FROM wam.customer_stats s
-- the settings, cut points and tier maps: one row (LIMIT 1 tells the planner so)
CROSS JOIN (
	SELECT cfg.high_frequency_orders_30d, cfg.low_spend_order_value, cfg.high_spend_order_value,
		   cfg.price_sensitive_coupon_share, cfg.quality_price_ratio, cfg.flag_min_orders,
		   coalesce(cfg.catalogue_unit_price, k.unit_price) AS unit_price,
		   k.r_cuts, k.f_cuts, k.m_cuts, seg.tier_map AS segment_map, sch.tier_map
	FROM wam.rfm_config cfg
	LEFT JOIN wam.rfm_cut k ON true
	LEFT JOIN wam.rfm_scheme seg ON seg.name = 'segment map'
	LEFT JOIN wam.rfm_scheme sch ON sch.name = cfg.tier_scheme
	LIMIT 1
) p
CROSS JOIN LATERAL (
	SELECT y.*, (y.r - 1) * 25 + (y.f - 1) * 5 + y.m AS cell
	FROM (SELECT wam.rfm_level(s.last_order_at, p.r_cuts) AS r,
				 wam.rfm_level(s.orders, p.f_cuts) AS f,
				 wam.rfm_level(s.total_amount, p.m_cuts) AS m,
				 wam_internal.count_since(s.recent_orders, now() - interval '30 days') AS orders_30d) y
) x;
COMMENT ON VIEW wam.customer_rfm IS 'per buyer: statistics, current R/F/M scores, tier and flags';

REVOKE ALL ON wam.customer_rfm FROM PUBLIC;
GRANT SELECT ON wam.customer_rfm TO wam_definer;
GRANT SELECT ON wam.customer_rfm TO wam_reader;

CREATE VIEW wam.rfm_settings AS
SELECT a.attname::text AS setting,
	   j.value,
	   pg_catalog.format_type(a.atttypid, a.atttypmod) AS type,
	   pg_catalog.col_description(a.attrelid, a.attnum) AS description
FROM pg_catalog.pg_attribute a
JOIN wam.rfm_config s ON true
CROSS JOIN LATERAL (SELECT to_jsonb(s) ->> a.attname::text AS value) j
WHERE a.attrelid = 'wam.rfm_config'::regclass AND a.attnum > 0 AND NOT a.attisdropped AND a.attname <> 'id'
ORDER BY a.attnum;
COMMENT ON VIEW wam.rfm_settings IS 'order, RFM and lifetime-value settings with values and meaning';

REVOKE ALL ON wam.rfm_settings FROM PUBLIC;
GRANT SELECT ON wam.rfm_settings TO wam_definer;
GRANT SELECT ON wam.rfm_settings TO wam_reader;

-- configuration (admins)

CREATE FUNCTION wam.configure_rfm(setting text, value text) RETURNS text
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	col_type text;
	old_zone text := (SELECT s.day_time_zone FROM wam.rfm_config s);
	result text;
	constraint_name text;
	cast_state text;
BEGIN
	SELECT pg_catalog.format_type(a.atttypid, a.atttypmod) INTO col_type
	FROM pg_catalog.pg_attribute a
	WHERE a.attrelid = 'wam.rfm_config'::regclass AND a.attname = setting AND a.attnum > 0
	  AND NOT a.attisdropped AND a.attname <> 'id';
	IF NOT FOUND THEN
		RAISE EXCEPTION 'unknown setting "%"', setting
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = format('The settings are: %s.', (SELECT string_agg(r.setting, ', ') FROM wam.rfm_settings r));
	END IF;
	IF setting = 'currency' THEN
		value := upper(btrim(value));
		IF EXISTS (SELECT FROM wam.customer_order o WHERE o.currency IS DISTINCT FROM value) THEN
			RAISE EXCEPTION 'cannot change the program currency to %: orders in another currency exist',
				coalesce(value, 'NULL')
				USING ERRCODE = 'object_not_in_prerequisite_state',
					  DETAIL = format('For example order %s in %s.',
						  (SELECT min(o.order_id) FROM wam.customer_order o WHERE o.currency IS DISTINCT FROM value),
						  (SELECT coalesce(min(o.currency), 'no currency') FROM wam.customer_order o
						   WHERE o.currency IS DISTINCT FROM value)),
					  HINT = 'All orders of a program are in one currency.';
		END IF;
	ELSIF setting = 'day_time_zone' THEN
		IF value IS NULL OR NOT EXISTS (SELECT FROM pg_catalog.pg_timezone_names z WHERE z.name = value)
			AND NOT EXISTS (SELECT FROM pg_catalog.pg_timezone_abbrevs z WHERE z.abbrev = value) THEN
			RAISE EXCEPTION 'time zone "%" is not recognized', value
				USING ERRCODE = 'invalid_parameter_value',
					  HINT = 'Use a name from pg_timezone_names, e.g. Asia/Hong_Kong or UTC.';
		END IF;
	ELSIF setting = 'tier_scheme' THEN
		IF NOT EXISTS (SELECT FROM wam.rfm_scheme sc WHERE sc.name = value) THEN
			RAISE EXCEPTION 'tier scheme "%" does not exist', value
				USING ERRCODE = 'invalid_parameter_value',
					  HINT = format('The schemes are: %s. Define one with wam.define_rfm_scheme().',
									(SELECT string_agg(sc.name, ', ' ORDER BY sc.name) FROM wam.rfm_scheme sc));
		END IF;
	END IF;
	BEGIN
		EXECUTE format('UPDATE wam.rfm_config SET %I = $1::%s', setting, col_type) USING value;
	EXCEPTION WHEN data_exception THEN
		-- a value that is not of the setting's type (a cast error, 22P02 or
		-- 22003): say which setting and type instead of showing the internal UPDATE
		GET STACKED DIAGNOSTICS cast_state = RETURNED_SQLSTATE;
		RAISE EXCEPTION 'invalid value % for setting %', coalesce(quote_literal(value), 'NULL'), setting
			USING ERRCODE = cast_state,
				  DETAIL = format('The setting is of type %s: %s', col_type, SQLERRM),
				  HINT = format('The current value is %s; see wam.rfm_settings.',
								(SELECT coalesce(r.value, 'NULL') FROM wam.rfm_settings r WHERE r.setting = setting));
	WHEN check_violation OR not_null_violation THEN
		GET STACKED DIAGNOSTICS constraint_name = CONSTRAINT_NAME;
		RAISE EXCEPTION 'invalid value % for setting %', coalesce(quote_literal(value), 'NULL'), setting
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = CASE WHEN constraint_name <> '' THEN
							   format('The setting must satisfy %s.',
									  (SELECT pg_catalog.pg_get_constraintdef(c.oid) FROM pg_catalog.pg_constraint c
									   WHERE c.conrelid = 'wam.rfm_config'::regclass AND c.conname = constraint_name))
						   ELSE 'The setting must not be null.' END;
	END;
	EXECUTE format('SELECT %I::text FROM wam.rfm_config', setting) INTO result;
	IF setting = 'day_time_zone' AND result IS DISTINCT FROM old_zone THEN
		RAISE NOTICE 'purchase days are now counted in %: recomputing the statistics of % customers',
			result, (SELECT count(*) FROM wam.customer_stats);
		PERFORM wam.recompute_order_stats(NULL);
	ELSIF setting = 'mirror_tags' AND result = 'true' AND EXISTS (SELECT FROM wam.rfm_cut) THEN
		PERFORM wam.sync_rfm_tags();
	END IF;
	RETURN result;
END
$$;
COMMENT ON FUNCTION wam.configure_rfm(text, text) IS 'changes one RFM setting; returns the new value';

REVOKE EXECUTE ON FUNCTION wam.configure_rfm(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.configure_rfm(text, text) TO wam_admin;

CREATE FUNCTION wam.define_rfm_scheme(name text, rules jsonb, description text DEFAULT NULL)
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
COMMENT ON FUNCTION wam.define_rfm_scheme(text, jsonb, text) IS 'defines or replaces a tier scheme of 5 to 7 tiers';

REVOKE EXECUTE ON FUNCTION wam.define_rfm_scheme(text, jsonb, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.define_rfm_scheme(text, jsonb, text) TO wam_admin;

CREATE FUNCTION wam.rfm_tier(r integer, f integer, m integer, scheme text DEFAULT NULL) RETURNS text
	LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, wam, pg_temp
AS $$
	SELECT s.tier_map[(r - 1) * 25 + (f - 1) * 5 + m]
	FROM wam.rfm_scheme s
	WHERE s.name = coalesce(scheme, (SELECT c.tier_scheme FROM wam.rfm_config c))
	  AND r BETWEEN 1 AND 5 AND f BETWEEN 1 AND 5 AND m BETWEEN 1 AND 5
$$;
COMMENT ON FUNCTION wam.rfm_tier(integer, integer, integer, text) IS 'tier of R, F, M scores in a scheme';

REVOKE EXECUTE ON FUNCTION wam.rfm_tier(integer, integer, integer, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.rfm_tier(integer, integer, integer, text) TO wam_reader;

-- RFM refresh and scores

CREATE FUNCTION wam.refresh_rfm(as_of timestamptz DEFAULT now())
	RETURNS TABLE (tier text, customers bigint)
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	started timestamptz := clock_timestamp();
	cfg wam.rfm_config;
	res wam.rfm_cut_result;
	src text := 'statistics';
	prospects bigint;
BEGIN
	IF as_of IS NULL THEN
		RAISE EXCEPTION 'as_of must not be null' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	SELECT * INTO cfg FROM wam.rfm_config;
	IF as_of > now() + cfg.future_tolerance OR NOT isfinite(as_of) THEN
		RAISE EXCEPTION 'cannot score as of %: it must be a finite time, not in the future', as_of
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	res := (SELECT wam_internal.rfm_cut_points(as_of, s.first_order_at, s.last_order_at, s.orders, s.total_amount, s.units)
			FROM wam.customer_stats s);
	IF res.latest > as_of THEN
		-- some orders are after as_of: score the base as it was then, from the orders
		src := 'orders';
		res := (SELECT wam_internal.rfm_cut_points(as_of, o.first_at, o.last_at, o.orders, o.total, o.units)
				FROM (SELECT x.customer_id, min(x.ordered_at) AS first_at, max(x.ordered_at) AS last_at,
							 count(*) AS orders, sum(x.amount) AS total, sum(x.units) AS units
					  FROM wam.customer_order x WHERE x.ordered_at <= as_of GROUP BY x.customer_id) o);
	END IF;
	IF res.customers = 0 THEN
		RAISE EXCEPTION 'no customer has ordered %', CASE src WHEN 'orders' THEN 'by ' || as_of ELSE 'yet' END
			USING ERRCODE = 'object_not_in_prerequisite_state',
				  HINT = 'Scores are quintiles of the customers with orders: record orders with wam.record_order() first.';
	END IF;
	INSERT INTO wam.rfm_cut AS k (refreshed_at, as_of, source, customers, r_cuts, f_cuts, m_cuts, cells, orders,
								  revenue, unit_price, repeat_orders_per_year, refresh_ms)
	VALUES (now(), as_of, src, res.customers, res.r_cuts, res.f_cuts, res.m_cuts, res.cells, res.orders,
			round(res.revenue::numeric, 2), round(res.unit_price::numeric, 4), res.repeat_orders_per_year,
			1000 * extract(epoch FROM clock_timestamp() - started))
	ON CONFLICT (id) DO UPDATE
	SET refreshed_at = EXCLUDED.refreshed_at, as_of = EXCLUDED.as_of, source = EXCLUDED.source,
		customers = EXCLUDED.customers, r_cuts = EXCLUDED.r_cuts, f_cuts = EXCLUDED.f_cuts,
		m_cuts = EXCLUDED.m_cuts, cells = EXCLUDED.cells, orders = EXCLUDED.orders, revenue = EXCLUDED.revenue,
		unit_price = EXCLUDED.unit_price, repeat_orders_per_year = EXCLUDED.repeat_orders_per_year,
		refresh_ms = EXCLUDED.refresh_ms;
	prospects := greatest(wam.segment_cardinality(wam.all_customers()) - res.customers, 0);
	IF cfg.mirror_tags THEN
		PERFORM wam.sync_rfm_tags();
	END IF;
	RETURN QUERY
	WITH counts AS (
		SELECT sc.tier_map[c.i] AS tier, sum(res.cells[c.i])::bigint AS n
		FROM wam.rfm_scheme sc, generate_subscripts(sc.tier_map, 1) c(i)
		WHERE sc.name = cfg.tier_scheme
		GROUP BY 1
	)
	SELECT x.tier, x.n FROM (
		SELECT t.tier, coalesce(c.n, 0) AS n, t.pos
		FROM wam.rfm_scheme sc, unnest(sc.tiers) WITH ORDINALITY t(tier, pos)
		LEFT JOIN counts c ON c.tier = t.tier
		WHERE sc.name = cfg.tier_scheme
		UNION ALL
		SELECT 'Prospects', prospects, 1000) x
	ORDER BY x.pos;
END
$$;
COMMENT ON FUNCTION wam.refresh_rfm(timestamptz) IS 'scores every buyer 1-5 by quintiles; returns customers per tier';

REVOKE EXECUTE ON FUNCTION wam.refresh_rfm(timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.refresh_rfm(timestamptz) TO wam_admin;

CREATE FUNCTION wam.rfm_score(customer bigint) RETURNS TABLE (r integer, f integer, m integer, tier text)
	LANGUAGE plpgsql STABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
BEGIN
	IF NOT EXISTS (SELECT FROM wam.customer c WHERE c.id = customer) THEN
		RAISE EXCEPTION 'customer % does not exist', customer USING ERRCODE = 'no_data_found';
	END IF;
	IF NOT EXISTS (SELECT FROM wam.rfm_cut) THEN
		RAISE EXCEPTION 'RFM scores are not computed yet'
			USING ERRCODE = 'object_not_in_prerequisite_state',
				  HINT = 'An administrator runs wam.refresh_rfm() (e.g. nightly); scores stay current in between.';
	END IF;
	RETURN QUERY SELECT v.r, v.f, v.m, v.tier FROM wam.customer_rfm v WHERE v.customer_id = customer;
	IF NOT FOUND THEN
		RETURN QUERY SELECT NULL::integer, NULL::integer, NULL::integer, 'Prospects'::text;
	END IF;
END
$$;
COMMENT ON FUNCTION wam.rfm_score(bigint) IS 'a customer''s current R, F, M scores and tier';

REVOKE EXECUTE ON FUNCTION wam.rfm_score(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.rfm_score(bigint) TO wam_reader;

CREATE FUNCTION wam.value_report()
	RETURNS TABLE (tier text, customers bigint, customer_share numeric, revenue numeric, revenue_share numeric,
				   average_revenue numeric)
	LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	buyers bigint;
	total numeric;
	scheme text := (SELECT c.tier_scheme FROM wam.rfm_config c);
BEGIN
	IF NOT EXISTS (SELECT FROM wam.rfm_cut) THEN
		RAISE EXCEPTION 'RFM scores are not computed yet'
			USING ERRCODE = 'object_not_in_prerequisite_state', HINT = 'An administrator runs wam.refresh_rfm().';
	END IF;
	SELECT count(*), coalesce(sum(s.total_amount), 0) INTO buyers, total FROM wam.customer_stats s;
	RETURN QUERY
	WITH per_tier AS (
		SELECT v.tier, count(*) AS n, sum(v.total_amount) AS revenue FROM wam.customer_rfm v GROUP BY v.tier
	), top AS (
		SELECT count(*) AS n, coalesce(sum(t.total_amount), 0) AS revenue
		FROM (SELECT s.total_amount FROM wam.customer_stats s
			  ORDER BY s.total_amount DESC, s.customer_id LIMIT ceil(0.2 * buyers)::bigint) t
	), rows AS (
		SELECT t.tier, coalesce(p.n, 0) AS n, coalesce(p.revenue, 0) AS revenue, t.pos
		FROM wam.rfm_scheme sc, unnest(sc.tiers) WITH ORDINALITY t(tier, pos)
		LEFT JOIN per_tier p ON p.tier = t.tier
		WHERE sc.name = scheme
		UNION ALL
		SELECT 'Prospects', greatest(wam.segment_cardinality(wam.all_customers()) - buyers, 0), 0, 1000
		UNION ALL
		SELECT 'top 20% of buyers', top.n, top.revenue, 1001 FROM top
		UNION ALL
		SELECT 'all buyers', buyers, total, 1002
	)
	SELECT x.tier, x.n,
		   CASE WHEN x.pos <> 1000 AND buyers > 0 THEN round(100.0 * x.n / buyers, 1) END,
		   round(x.revenue, 2),
		   CASE WHEN total > 0 THEN round(100 * x.revenue / total, 1) END,
		   CASE WHEN x.n > 0 AND x.pos <> 1000 THEN round(x.revenue / x.n, 2) END
	FROM rows x ORDER BY x.pos;
END
$$;
COMMENT ON FUNCTION wam.value_report() IS 'buyers and revenue per tier, and the top 20% revenue share';

REVOKE EXECUTE ON FUNCTION wam.value_report() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.value_report() TO wam_reader;

-- tier tags (dimension spending power)

CREATE FUNCTION wam.rfm_tier_tag(tier text) RETURNS text
	LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, wam, pg_temp
	RETURN (SELECT s.tag_prefix FROM wam.rfm_config s) || tier;
COMMENT ON FUNCTION wam.rfm_tier_tag(text) IS 'name of the tag that mirrors a tier';

REVOKE EXECUTE ON FUNCTION wam.rfm_tier_tag(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.rfm_tier_tag(text) TO wam_reader;

CREATE FUNCTION wam.sync_rfm_tags() RETURNS TABLE (tag text, added bigint, removed bigint)
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	scheme text := (SELECT c.tier_scheme FROM wam.rfm_config c);
	tags text[];
	adds bigint[];
	rems bigint[];
	t record;
	x record;
	stray wam.segment;
BEGIN
	IF NOT EXISTS (SELECT FROM wam.rfm_cut) THEN
		RAISE EXCEPTION 'RFM scores are not computed yet'
			USING ERRCODE = 'object_not_in_prerequisite_state', HINT = 'Run wam.refresh_rfm() first.';
	END IF;
	tags := ARRAY(SELECT wam.rfm_tier_tag(u.tier)
				  FROM wam.rfm_scheme sc, unnest(sc.tiers) WITH ORDINALITY u(tier, pos)
				  WHERE sc.name = scheme ORDER BY u.pos);
	adds := array_fill(0::bigint, ARRAY[cardinality(tags)]);
	rems := adds;
	FOR i IN 1 .. cardinality(tags) LOOP
		IF NOT EXISTS (SELECT FROM wam.tag g WHERE g.normalized_name = wam.normalize_tag_name(tags[i])) THEN
			PERFORM wam.create_tag(tags[i], 'spending power', NULL, NULL,
								   format('RFM tier of scheme "%s" (kept in step by wam.sync_rfm_tags)', scheme));
		END IF;
	END LOOP;
	FOR t IN
		SELECT u.pos, wam.rfm_tier_tag(u.tier) AS tag, coalesce(m.who, '{}'::wam.segment) AS who
		FROM wam.rfm_scheme sc, unnest(sc.tiers) WITH ORDINALITY u(tier, pos)
		LEFT JOIN (SELECT v.tier, wam.segment_agg(v.customer_id) AS who FROM wam.customer_rfm v GROUP BY v.tier) m
			ON m.tier = u.tier
		WHERE sc.name = scheme
		ORDER BY u.pos
	LOOP
		FOR x IN SELECT * FROM wam.retag_customers(t.who, ARRAY[t.tag], array_remove(tags, t.tag), 'rule') LOOP
			adds[array_position(tags, x.tag)] := adds[array_position(tags, x.tag)] + x.added;
			rems[array_position(tags, x.tag)] := rems[array_position(tags, x.tag)] + x.removed;
		END LOOP;
	END LOOP;
	-- customers holding a tier tag without having orders any more
	SELECT coalesce(wam.segment_union_agg(wam.tag_members(g)), '{}') INTO stray FROM unnest(tags) g;
	stray := stray OPERATOR(wam.-) (SELECT coalesce(wam.segment_agg(s.customer_id), '{}') FROM wam.customer_stats s);
	IF NOT wam.segment_is_empty(stray) THEN
		FOR x IN SELECT * FROM wam.retag_customers(stray, '{}', tags, 'rule') LOOP
			rems[array_position(tags, x.tag)] := rems[array_position(tags, x.tag)] + x.removed;
		END LOOP;
	END IF;
	RETURN QUERY SELECT u.tag, adds[u.pos], rems[u.pos] FROM unnest(tags) WITH ORDINALITY u(tag, pos) ORDER BY u.pos;
END
$$;
COMMENT ON FUNCTION wam.sync_rfm_tags() IS 'mirrors the tiers into tags; returns the changes per tag';

REVOKE EXECUTE ON FUNCTION wam.sync_rfm_tags() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.sync_rfm_tags() TO wam_admin;

CREATE FUNCTION wam_internal.rfm_mirror_customer(customer bigint, old_tier text, new_tier text) RETURNS void
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	add_tag text := wam.rfm_tier_tag(new_tier);
	remove_tag text := wam.rfm_tier_tag(old_tier);
BEGIN
	-- only tags that rfm_sync_tags created are touched
	IF add_tag IS NOT NULL AND NOT EXISTS (SELECT FROM wam.tag g WHERE g.normalized_name = wam.normalize_tag_name(add_tag)) THEN
		add_tag := NULL;
	END IF;
	IF remove_tag IS NOT NULL AND NOT EXISTS (SELECT FROM wam.tag g WHERE g.normalized_name = wam.normalize_tag_name(remove_tag)) THEN
		remove_tag := NULL;
	END IF;
	IF add_tag IS NOT NULL OR remove_tag IS NOT NULL THEN
		PERFORM wam.retag_customers(wam.segment(ARRAY[customer]),
						  CASE WHEN add_tag IS NULL THEN '{}' ELSE ARRAY[add_tag] END,
						  CASE WHEN remove_tag IS NULL THEN '{}' ELSE ARRAY[remove_tag] END, 'rule');
	END IF;
END
$$;
COMMENT ON FUNCTION wam_internal.rfm_mirror_customer(bigint, text, text) IS 'internal: moves one customer from the tag of their old tier to that of their new tier';

REVOKE EXECUTE ON FUNCTION wam_internal.rfm_mirror_customer(bigint, text, text) FROM PUBLIC;
