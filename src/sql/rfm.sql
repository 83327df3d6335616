-- src/sql/rfm.sql: orders, per-customer purchase statistics, RFM scores and
-- tiers, lifetime value and cost caps (requirements R-R1 ... R-R5, R-F4)

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

-- orders and purchase statistics

CREATE TABLE wam.customer_order (
	customer_id bigint NOT NULL REFERENCES wam.customer ON DELETE CASCADE,
	order_id bigint GENERATED BY DEFAULT AS IDENTITY,
	ordered_at timestamptz NOT NULL,
	amount numeric NOT NULL
		CONSTRAINT customer_order_amount CHECK (amount >= 0 AND amount < 'Infinity'),
	currency text CONSTRAINT customer_order_currency CHECK (currency ~ '^[A-Z]{3}$'),
	coupon_used boolean NOT NULL DEFAULT false,
	units integer NOT NULL DEFAULT 1 CONSTRAINT customer_order_units CHECK (units > 0),
	details jsonb,
	recorded_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	PRIMARY KEY (customer_id, order_id)
);
CREATE INDEX customer_order_time ON wam.customer_order (customer_id, ordered_at);
COMMENT ON TABLE wam.customer_order IS 'orders (write with wam.record_order)';
COMMENT ON COLUMN wam.customer_order.units IS 'items in the order (details->>''units'', else the sum of details->''products''[].quantity, else 1): the unit price is amount / units';

-- The statistics are maintained by statement triggers on wam.customer_order
-- from the new rows alone (never from all orders), so every way of writing
-- orders -- wam.record_order, a bulk INSERT ... SELECT, COPY -- keeps them
-- exact; updates and deletes of orders (corrections, refunds: rare) recompute
-- the customers concerned.
CREATE TABLE wam.customer_stats (
	customer_id bigint PRIMARY KEY REFERENCES wam.customer ON DELETE CASCADE,
	orders bigint NOT NULL,
	order_days integer NOT NULL,
	first_order_at timestamptz NOT NULL,
	last_order_at timestamptz NOT NULL,
	first_day date NOT NULL,
	last_day date NOT NULL,
	first_day_amount numeric NOT NULL,
	total_amount numeric NOT NULL,
	coupon_orders bigint NOT NULL,
	units bigint NOT NULL,
	recent_orders timestamptz[] NOT NULL DEFAULT '{}'
) WITH (fillfactor = 90);
COMMENT ON TABLE wam.customer_stats IS 'per-customer purchase statistics, maintained from each new order';
COMMENT ON COLUMN wam.customer_stats.order_days IS 'distinct purchase days (calendar days in the day_time_zone setting)';
COMMENT ON COLUMN wam.customer_stats.first_day_amount IS 'spend on the first purchase day (excluded from the Gamma-Gamma monetary value)';
COMMENT ON COLUMN wam.customer_stats.recent_orders IS 'times of the orders in the 30 days before the last update; count those after now() - 30 days for orders in the last 30 days';

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

-- lifetime-value fit

CREATE TABLE wam.clv_fit (
	id boolean PRIMARY KEY DEFAULT true CONSTRAINT clv_fit_one_row CHECK (id),
	fitted_at timestamptz NOT NULL,
	calibration_end timestamptz NOT NULL,
	time_unit interval NOT NULL,
	customers bigint NOT NULL,
	repeat_buyers bigint NOT NULL,
	bgnbd float8[] NOT NULL CONSTRAINT clv_fit_bgnbd CHECK (cardinality(bgnbd) = 4),
	gammagamma float8[] NOT NULL CONSTRAINT clv_fit_gammagamma CHECK (cardinality(gammagamma) = 3),
	bgnbd_log_likelihood float8 NOT NULL,
	gammagamma_log_likelihood float8 NOT NULL,
	bgnbd_penalizer float8 NOT NULL DEFAULT 0,
	gammagamma_penalizer float8 NOT NULL DEFAULT 0,
	evaluations integer NOT NULL,
	fit_ms float8 NOT NULL
);
COMMENT ON TABLE wam.clv_fit IS 'the last successful lifetime-value fit';

CREATE VIEW wam.clv_parameter AS
SELECT x.model, x.parameter, x.value, x.penalizer
FROM wam.clv_fit f
CROSS JOIN LATERAL (VALUES
	(1, 'bgnbd', 'r', f.bgnbd[1], f.bgnbd_penalizer), (2, 'bgnbd', 'alpha', f.bgnbd[2], f.bgnbd_penalizer),
	(3, 'bgnbd', 'a', f.bgnbd[3], f.bgnbd_penalizer), (4, 'bgnbd', 'b', f.bgnbd[4], f.bgnbd_penalizer),
	(5, 'gammagamma', 'p', f.gammagamma[1], f.gammagamma_penalizer),
	(6, 'gammagamma', 'q', f.gammagamma[2], f.gammagamma_penalizer),
	(7, 'gammagamma', 'v', f.gammagamma[3], f.gammagamma_penalizer)) x(pos, model, parameter, value, penalizer)
ORDER BY x.pos;
COMMENT ON VIEW wam.clv_parameter IS 'the fitted lifetime-value parameters, one row each';

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
COMMENT ON FUNCTION wam_internal.rfm_cut_points_final(internal) IS 'internal: final function of wam_internal.rfm_cut_points (cut points and cell counts)';
COMMENT ON AGGREGATE wam_internal.rfm_cut_points(timestamptz, timestamptz, timestamptz, bigint, numeric, bigint) IS 'internal: mid-rank quintile cut points of recency, frequency (1 order = 1, repeat buyers 2..5) and monetary value over one row per customer';

-- C functions: lifetime-value models

CREATE FUNCTION wam_internal.bgnbd_fit_trans(internal, float8, float8, float8) RETURNS internal
	AS 'MODULE_PATHNAME', 'wam_bgnbd_fit_trans' LANGUAGE C IMMUTABLE CALLED ON NULL INPUT PARALLEL SAFE;
CREATE FUNCTION wam_internal.bgnbd_fit_final(internal) RETURNS float8[]
	AS 'MODULE_PATHNAME', 'wam_bgnbd_fit_final' LANGUAGE C IMMUTABLE CALLED ON NULL INPUT PARALLEL SAFE;
CREATE AGGREGATE wam.bgnbd_fit(frequency float8, recency float8, "T" float8) (
	SFUNC = wam_internal.bgnbd_fit_trans,
	STYPE = internal,
	FINALFUNC = wam_internal.bgnbd_fit_final,
	PARALLEL = SAFE
);
COMMENT ON FUNCTION wam_internal.bgnbd_fit_trans(internal, float8, float8, float8) IS 'internal: transition function of wam.bgnbd_fit (collects one customer)';
COMMENT ON FUNCTION wam_internal.bgnbd_fit_final(internal) IS 'internal: final function of wam.bgnbd_fit (the maximum-likelihood fit)';
COMMENT ON AGGREGATE wam.bgnbd_fit(float8, float8, float8) IS 'maximum-likelihood BG/NBD fit over one row per customer: {r, alpha, a, b, log-likelihood, evaluations, customers, repeat buyers, penalizer 0}';

CREATE FUNCTION wam_internal.bgnbd_fit_trans(internal, float8, float8, float8, float8) RETURNS internal
	AS 'MODULE_PATHNAME', 'wam_bgnbd_fit_trans' LANGUAGE C IMMUTABLE CALLED ON NULL INPUT PARALLEL SAFE;
CREATE AGGREGATE wam.bgnbd_fit(frequency float8, recency float8, "T" float8, penalizer float8) (
	SFUNC = wam_internal.bgnbd_fit_trans,
	STYPE = internal,
	FINALFUNC = wam_internal.bgnbd_fit_final,
	PARALLEL = SAFE
);
COMMENT ON FUNCTION wam_internal.bgnbd_fit_trans(internal, float8, float8, float8, float8) IS 'internal: transition function of wam.bgnbd_fit with a penalizer';
COMMENT ON AGGREGATE wam.bgnbd_fit(float8, float8, float8, float8) IS 'penalized BG/NBD fit (penalizer x (r^2 + alpha^2 + a^2 + b^2) per customer, as lifetimes'' penalizer_coef; the same on every row): 0 is maximum likelihood, NULL is maximum likelihood unless degenerate, then the smallest of 0.001, 0.01, 0.1 that gives a usable fit (with a NOTICE); {r, alpha, a, b, log-likelihood, evaluations, customers, repeat buyers, penalizer used}';

CREATE FUNCTION wam_internal.gammagamma_fit_trans(internal, float8, float8) RETURNS internal
	AS 'MODULE_PATHNAME', 'wam_gammagamma_fit_trans' LANGUAGE C IMMUTABLE CALLED ON NULL INPUT PARALLEL SAFE;
CREATE FUNCTION wam_internal.gammagamma_fit_final(internal) RETURNS float8[]
	AS 'MODULE_PATHNAME', 'wam_gammagamma_fit_final' LANGUAGE C IMMUTABLE CALLED ON NULL INPUT PARALLEL SAFE;
CREATE AGGREGATE wam.gammagamma_fit(frequency float8, monetary_value float8) (
	SFUNC = wam_internal.gammagamma_fit_trans,
	STYPE = internal,
	FINALFUNC = wam_internal.gammagamma_fit_final,
	PARALLEL = SAFE
);
COMMENT ON FUNCTION wam_internal.gammagamma_fit_trans(internal, float8, float8) IS 'internal: transition function of wam.gammagamma_fit (collects one repeat buyer)';
COMMENT ON FUNCTION wam_internal.gammagamma_fit_final(internal) IS 'internal: final function of wam.gammagamma_fit (the maximum-likelihood fit)';
COMMENT ON AGGREGATE wam.gammagamma_fit(float8, float8) IS 'maximum-likelihood Gamma-Gamma fit over repeat buyers (rows with frequency 0 are skipped): {p, q, v, log-likelihood, evaluations, repeat buyers, penalizer 0}';

CREATE FUNCTION wam_internal.gammagamma_fit_trans(internal, float8, float8, float8) RETURNS internal
	AS 'MODULE_PATHNAME', 'wam_gammagamma_fit_trans' LANGUAGE C IMMUTABLE CALLED ON NULL INPUT PARALLEL SAFE;
CREATE AGGREGATE wam.gammagamma_fit(frequency float8, monetary_value float8, penalizer float8) (
	SFUNC = wam_internal.gammagamma_fit_trans,
	STYPE = internal,
	FINALFUNC = wam_internal.gammagamma_fit_final,
	PARALLEL = SAFE
);
COMMENT ON FUNCTION wam_internal.gammagamma_fit_trans(internal, float8, float8, float8) IS 'internal: transition function of wam.gammagamma_fit with a penalizer';
COMMENT ON AGGREGATE wam.gammagamma_fit(float8, float8, float8) IS 'penalized Gamma-Gamma fit over repeat buyers (penalizer x (p^2 + q^2 + v^2) per customer; 0 and NULL as for wam.bgnbd_fit): {p, q, v, log-likelihood, evaluations, repeat buyers, penalizer used}';

CREATE FUNCTION wam.hyp2f1(a float8, b float8, c float8, z float8) RETURNS float8
	AS 'MODULE_PATHNAME', 'wam_hyp2f1' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION wam.hyp2f1(float8, float8, float8, float8) IS 'Gaussian hypergeometric function 2F1(a, b; c; z), 0 <= z < 1';

CREATE FUNCTION wam.bgnbd_p_alive(params float8[], frequency float8, recency float8, "T" float8) RETURNS float8
	AS 'MODULE_PATHNAME', 'wam_bgnbd_p_alive' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION wam.bgnbd_p_alive(float8[], float8, float8, float8) IS 'BG/NBD probability that a customer is still active';

CREATE FUNCTION wam.bgnbd_expected_purchases(params float8[], frequency float8, recency float8, "T" float8, t float8)
	RETURNS float8
	AS 'MODULE_PATHNAME', 'wam_bgnbd_expected_purchases' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION wam.bgnbd_expected_purchases(float8[], float8, float8, float8, float8) IS 'BG/NBD expected purchases in the next t time units';

CREATE FUNCTION wam.gammagamma_expected_spend(params float8[], frequency float8, monetary_value float8) RETURNS float8
	AS 'MODULE_PATHNAME', 'wam_gammagamma_expected_spend' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION wam.gammagamma_expected_spend(float8[], float8, float8) IS 'Gamma-Gamma expected spend per purchase';

-- scoring helpers

CREATE FUNCTION wam.rfm_level(v anyelement, cuts anyarray) RETURNS integer
	LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
	SELECT CASE WHEN v IS NOT NULL AND cuts IS NOT NULL THEN
		1 + (coalesce(v >= cuts[1], false))::integer + (coalesce(v >= cuts[2], false))::integer
		  + (coalesce(v >= cuts[3], false))::integer + (coalesce(v >= cuts[4], false))::integer END
$$;
COMMENT ON FUNCTION wam.rfm_level(anyelement, anyarray) IS 'score 1 to 5 of a value against 4 cut points';

CREATE FUNCTION wam_internal.count_since(times timestamptz[], since timestamptz) RETURNS integer
	LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
	SELECT count(*)::integer FROM unnest(times) t WHERE t > since
$$;
COMMENT ON FUNCTION wam_internal.count_since(timestamptz[], timestamptz) IS 'how many of the times are after since';

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

-- The segment map: the 11 segments of the widely copied RFM table with their
-- published R and FM = (F+M)/2 ranges.  The published ranges overlap (first
-- match wins), and in the published order New, Promising, Need attention and
-- Lost could never be assigned; this order (narrow segments first, Lost
-- narrowed to the lowest cell because with scores of 1..5 its published range
-- equals Hibernating's) makes every segment reachable and gives every cell a
-- segment whose published range contains it.
INSERT INTO wam.rfm_scheme (name, builtin, description) VALUES
	('segment map', true, 'the 11 named RFM segments by R and FM = (F+M)/2'),
	('value tiers', true, 'six value tiers grouping the segment map (R-R1)');
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
SELECT wam_internal.rfm_store_scheme('value tiers');
-- the segment map lists its segments in the conventional order, not rule order
UPDATE wam.rfm_scheme SET tiers = '{Champions,Loyal,Potential loyalist,New,Promising,Need attention,About to sleep,At risk,Can''t lose them,Hibernating,Lost}'
WHERE name = 'segment map';
ALTER TABLE wam.rfm_config ADD CONSTRAINT rfm_config_tier_scheme
	FOREIGN KEY (tier_scheme) REFERENCES wam.rfm_scheme ON UPDATE CASCADE;

-- purchase statistics maintenance

-- Statistics writers of one customer serialize on wam_internal.lock_key(2, customer
-- id), a transaction-level lock in the extension's own lock space.

-- The statistics as computed from all orders: the reference the incremental
-- maintenance is checked against, and what corrections and rebuilds write.
CREATE FUNCTION wam_internal.order_stats_from_orders(customers bigint[], zone text)
	RETURNS SETOF wam.customer_stats
	LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, wam, pg_temp
AS $$
	SELECT o.customer_id, count(*), count(DISTINCT o.day)::integer, min(o.ordered_at), max(o.ordered_at),
		   min(o.day), max(o.day), sum(o.amount) FILTER (WHERE o.day = o.first_day), sum(o.amount),
		   count(*) FILTER (WHERE o.coupon_used), sum(o.units),
		   coalesce(array_agg(o.ordered_at ORDER BY o.ordered_at)
						FILTER (WHERE o.ordered_at > now() - interval '30 days'), '{}')
	FROM (SELECT x.customer_id, x.ordered_at, x.amount, x.coupon_used, x.units,
				 (x.ordered_at AT TIME ZONE zone)::date AS day,
				 min((x.ordered_at AT TIME ZONE zone)::date) OVER (PARTITION BY x.customer_id) AS first_day
		  FROM wam.customer_order x
		  WHERE customers IS NULL OR x.customer_id = ANY (customers)) o
	GROUP BY o.customer_id
$$;
COMMENT ON FUNCTION wam_internal.order_stats_from_orders(bigint[], text) IS 'internal: purchase statistics recomputed from all orders of the given customers (NULL: all)';

CREATE FUNCTION wam_internal.lock_order_stats(customers bigint[]) RETURNS void
	LANGUAGE plpgsql SET search_path = pg_catalog, wam, pg_temp
AS $$
BEGIN
	-- a lock per customer for a few customers, the whole table for many
	-- (a bulk load would exhaust the lock table)
	IF customers IS NULL OR cardinality(customers) > 64 THEN
		LOCK TABLE wam.customer_stats IN SHARE ROW EXCLUSIVE MODE;
	ELSE
		PERFORM wam_internal.lock_key(2, c)
		FROM (SELECT DISTINCT c FROM unnest(customers) c ORDER BY 1) x;
	END IF;
END
$$;
COMMENT ON FUNCTION wam_internal.lock_order_stats(bigint[]) IS 'internal: serializes statistics writers of the given customers (NULL: all)';

CREATE FUNCTION wam.recompute_order_stats(customers bigint[] DEFAULT NULL) RETURNS bigint
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	zone text := (SELECT s.day_time_zone FROM wam.rfm_config s);
	n bigint;
BEGIN
	PERFORM wam_internal.lock_order_stats(customers);
	IF customers IS NULL THEN
		DELETE FROM wam.customer_stats;
	ELSE
		DELETE FROM wam.customer_stats s WHERE s.customer_id = ANY (customers);
	END IF;
	INSERT INTO wam.customer_stats SELECT * FROM wam_internal.order_stats_from_orders(customers, zone);
	GET DIAGNOSTICS n = ROW_COUNT;
	UPDATE wam.customer c SET first_order_at = s.first_order_at, last_order_at = s.last_order_at
	FROM (SELECT k.id, st.first_order_at, st.last_order_at
		  FROM wam.customer k LEFT JOIN wam.customer_stats st ON st.customer_id = k.id
		  -- all: the customers with orders (others keep what they were given);
		  -- a list: also clears the first/last order of those left without orders
		  WHERE (customers IS NULL AND st.customer_id IS NOT NULL) OR k.id = ANY (customers)) s
	WHERE c.id = s.id
	  AND (c.first_order_at IS DISTINCT FROM s.first_order_at OR c.last_order_at IS DISTINCT FROM s.last_order_at);
	RETURN n;
END
$$;
COMMENT ON FUNCTION wam.recompute_order_stats(bigint[]) IS 'rebuilds purchase statistics from the orders (NULL: everyone)';

CREATE FUNCTION wam.verify_order_stats()
	RETURNS TABLE (customers bigint, mismatched bigint, example bigint, ok boolean)
	LANGUAGE sql STABLE PARALLEL SAFE SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
	WITH truth AS (
		SELECT * FROM wam_internal.order_stats_from_orders(NULL, (SELECT day_time_zone FROM wam.rfm_config))
	), cmp AS (
		SELECT coalesce(s.customer_id, t.customer_id) AS customer_id,
			   s.customer_id IS NULL OR t.customer_id IS NULL
			   OR (s.orders, s.order_days, s.first_order_at, s.last_order_at, s.first_day, s.last_day,
				   s.first_day_amount, s.total_amount, s.coupon_orders, s.units,
				   wam_internal.count_since(s.recent_orders, now() - interval '30 days'))
				  IS DISTINCT FROM
				  (t.orders, t.order_days, t.first_order_at, t.last_order_at, t.first_day, t.last_day,
				   t.first_day_amount, t.total_amount, t.coupon_orders, t.units,
				   wam_internal.count_since(t.recent_orders, now() - interval '30 days'))
			   OR c.first_order_at IS DISTINCT FROM s.first_order_at
			   OR c.last_order_at IS DISTINCT FROM s.last_order_at AS bad
		FROM wam.customer_stats s
		FULL JOIN truth t ON t.customer_id = s.customer_id
		LEFT JOIN wam.customer c ON c.id = coalesce(s.customer_id, t.customer_id)
	)
	SELECT count(*), count(*) FILTER (WHERE bad), min(customer_id) FILTER (WHERE bad),
		   count(*) FILTER (WHERE bad) = 0
	FROM cmp
$$;
COMMENT ON FUNCTION wam.verify_order_stats() IS 'checks the purchase statistics against all orders';

-- Statement trigger: merges the new orders into the statistics.  Only the
-- new rows are read, plus, for a purchase day strictly between a customer's
-- first and last, that day's earlier orders (index customer_order_time).
-- A single order (wam.record_order) takes a short path that updates the
-- customer's row in place; several are merged by one set-based statement.
-- The table's fillfactor leaves room for HOT updates of statistics rows.
CREATE FUNCTION wam_internal.order_stats_insert_trigger() RETURNS trigger
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
DECLARE
	zone text;
	n_rows bigint;
	customers bigint[];
	c bigint;
	t timestamptz;
	amt numeric;
	coupon boolean;
	n_units integer;
	d date;
	st wam.customer_stats;
	new_day boolean;
	recent_since timestamptz := now() - interval '30 days';
BEGIN
	-- restored rows already carry their effects (src/backup.c)
	IF wam_internal.restoring() THEN
		RETURN NULL;
	END IF;
	SELECT s.day_time_zone, x.n, o.customer_id, o.ordered_at, o.amount, o.coupon_used, o.units
	INTO zone, n_rows, c, t, amt, coupon, n_units
	FROM wam.rfm_config s
	CROSS JOIN (SELECT count(*) AS n FROM new_orders) x
	LEFT JOIN LATERAL (SELECT * FROM new_orders LIMIT 1) o ON true;

	IF n_rows = 1 THEN
		-- one order (wam.record_order): update the customer's row in place.
		-- The table lock comes first, so that the row is read after any bulk
		-- writer (SHARE ROW EXCLUSIVE, below) has committed; the customer's
		-- lock serializes writers of this customer.
		LOCK TABLE wam.customer_stats IN ROW EXCLUSIVE MODE;
		PERFORM wam_internal.lock_key(2, c);
		d := (t AT TIME ZONE zone)::date;
		SELECT * INTO st FROM wam.customer_stats s WHERE s.customer_id = c;
		IF NOT FOUND THEN
			INSERT INTO wam.customer_stats (customer_id, orders, order_days, first_order_at, last_order_at,
				first_day, last_day, first_day_amount, total_amount, coupon_orders, units, recent_orders)
			VALUES (c, 1, 1, t, t, d, d, amt, amt, coupon::integer, n_units,
					CASE WHEN t > recent_since THEN ARRAY[t] ELSE '{}' END);
			UPDATE wam.customer k SET first_order_at = t, last_order_at = t
			WHERE k.id = c AND (k.first_order_at IS DISTINCT FROM t OR k.last_order_at IS DISTINCT FROM t);
			RETURN NULL;
		END IF;
		IF d < st.first_day OR d > st.last_day THEN
			new_day := true;
		ELSIF d = st.first_day OR d = st.last_day THEN
			new_day := false;
		ELSE
			-- between the first and the last day: new unless it had orders before
			new_day := (SELECT count(*) FROM wam.customer_order x
						WHERE x.customer_id = c AND x.ordered_at >= (d::timestamp AT TIME ZONE zone)
						  AND x.ordered_at < ((d + 1)::timestamp AT TIME ZONE zone)) <= 1;
		END IF;
		st.first_day_amount := CASE WHEN d < st.first_day THEN amt
									WHEN d = st.first_day THEN st.first_day_amount + amt
									ELSE st.first_day_amount END;
		IF t > recent_since OR (cardinality(st.recent_orders) > 0 AND st.recent_orders[1] <= recent_since) THEN
			IF t > recent_since AND (cardinality(st.recent_orders) = 0
				OR (st.recent_orders[1] > recent_since AND st.recent_orders[cardinality(st.recent_orders)] <= t)) THEN
				st.recent_orders := st.recent_orders || t;
			ELSE
				st.recent_orders := ARRAY(SELECT y FROM unnest(st.recent_orders || t) y
										  WHERE y > recent_since ORDER BY y);
			END IF;
		END IF;
		WITH up AS (
			UPDATE wam.customer_stats s
			SET orders = st.orders + 1, order_days = st.order_days + new_day::integer,
				first_order_at = least(st.first_order_at, t), last_order_at = greatest(st.last_order_at, t),
				first_day = least(st.first_day, d), last_day = greatest(st.last_day, d),
				first_day_amount = st.first_day_amount, total_amount = st.total_amount + amt,
				coupon_orders = st.coupon_orders + coupon::integer, units = st.units + n_units,
				recent_orders = st.recent_orders
			WHERE s.customer_id = c
			RETURNING s.first_order_at, s.last_order_at
		)
		UPDATE wam.customer k SET first_order_at = up.first_order_at, last_order_at = up.last_order_at
		FROM up
		WHERE k.id = c
		  AND (k.first_order_at IS DISTINCT FROM up.first_order_at OR k.last_order_at IS DISTINCT FROM up.last_order_at);
		RETURN NULL;
	END IF;

	-- several orders (bulk loads, multi-row INSERTs): one set-based merge
	customers := ARRAY(SELECT DISTINCT n.customer_id FROM new_orders n ORDER BY 1 LIMIT 65);
	PERFORM wam_internal.lock_order_stats(customers);

	WITH o AS (
		SELECT n.customer_id, n.ordered_at, n.amount, n.coupon_used, n.units,
			   (n.ordered_at AT TIME ZONE zone)::date AS day
		FROM new_orders n
	), d AS (				-- the new orders per customer and day
		SELECT o.customer_id, o.day, count(*) AS orders, sum(o.amount) AS amount
		FROM o GROUP BY 1, 2
	), b AS (				-- the new orders per customer
		SELECT o.customer_id, count(*) AS orders, sum(o.amount) AS amount,
			   count(*) FILTER (WHERE o.coupon_used) AS coupon_orders, sum(o.units) AS units,
			   min(o.ordered_at) AS first_at, max(o.ordered_at) AS last_at,
			   min(o.day) AS first_day, max(o.day) AS last_day,
			   array_agg(o.ordered_at ORDER BY o.ordered_at)
				   FILTER (WHERE o.ordered_at > now() - interval '30 days') AS recent
		FROM o GROUP BY 1
	), nd AS (				-- how many of those days are new purchase days; spend on the batch's first day
		SELECT d.customer_id,
			   count(*) FILTER (WHERE CASE
				   WHEN s.customer_id IS NULL OR d.day < s.first_day OR d.day > s.last_day THEN true
				   WHEN d.day = s.first_day OR d.day = s.last_day THEN false
				   -- between the first and the last day: new unless it had orders before
				   ELSE (SELECT count(*) FROM wam.customer_order x
						 WHERE x.customer_id = d.customer_id
						   AND x.ordered_at >= (d.day::timestamp AT TIME ZONE zone)
						   AND x.ordered_at < ((d.day + 1)::timestamp AT TIME ZONE zone)) <= d.orders
				   END) AS new_days,
			   sum(d.amount) FILTER (WHERE d.day = b.first_day) AS first_day_amount
		FROM d
		JOIN b ON b.customer_id = d.customer_id
		LEFT JOIN wam.customer_stats s ON s.customer_id = d.customer_id
		GROUP BY d.customer_id
	), up AS (
		INSERT INTO wam.customer_stats AS t (customer_id, orders, order_days, first_order_at, last_order_at,
			first_day, last_day, first_day_amount, total_amount, coupon_orders, units, recent_orders)
		SELECT b.customer_id,
			   coalesce(s.orders, 0) + b.orders,
			   coalesce(s.order_days, 0) + nd.new_days,
			   least(s.first_order_at, b.first_at),
			   greatest(s.last_order_at, b.last_at),
			   least(s.first_day, b.first_day),
			   greatest(s.last_day, b.last_day),
			   CASE WHEN s.customer_id IS NULL OR b.first_day < s.first_day THEN nd.first_day_amount
					WHEN b.first_day = s.first_day THEN s.first_day_amount + nd.first_day_amount
					ELSE s.first_day_amount END,
			   coalesce(s.total_amount, 0) + b.amount,
			   coalesce(s.coupon_orders, 0) + b.coupon_orders,
			   coalesce(s.units, 0) + b.units,
			   CASE WHEN b.recent IS NULL
						 AND (s.recent_orders IS NULL OR cardinality(s.recent_orders) = 0
							  OR s.recent_orders[1] > now() - interval '30 days')
					THEN coalesce(s.recent_orders, '{}')
					ELSE ARRAY(SELECT x FROM unnest(coalesce(s.recent_orders, '{}') || coalesce(b.recent, '{}')) x
							   WHERE x > now() - interval '30 days' ORDER BY x) END
		FROM b
		JOIN nd ON nd.customer_id = b.customer_id
		LEFT JOIN wam.customer_stats s ON s.customer_id = b.customer_id
		ON CONFLICT (customer_id) DO UPDATE
		SET orders = EXCLUDED.orders, order_days = EXCLUDED.order_days,
			first_order_at = EXCLUDED.first_order_at, last_order_at = EXCLUDED.last_order_at,
			first_day = EXCLUDED.first_day, last_day = EXCLUDED.last_day,
			first_day_amount = EXCLUDED.first_day_amount, total_amount = EXCLUDED.total_amount,
			coupon_orders = EXCLUDED.coupon_orders, units = EXCLUDED.units,
			recent_orders = EXCLUDED.recent_orders
		RETURNING t.customer_id, t.first_order_at, t.last_order_at
	)
	UPDATE wam.customer c SET first_order_at = up.first_order_at, last_order_at = up.last_order_at
	FROM up
	WHERE c.id = up.customer_id
	  AND (c.first_order_at IS DISTINCT FROM up.first_order_at OR c.last_order_at IS DISTINCT FROM up.last_order_at);
	RETURN NULL;
END
$$;
COMMENT ON FUNCTION wam_internal.order_stats_insert_trigger() IS 'trigger: merges newly inserted orders into wam.customer_stats and wam.customer first/last order';

CREATE FUNCTION wam_internal.order_stats_change_trigger() RETURNS trigger
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
BEGIN
	-- corrections and refunds are rare: recompute the customers concerned
	IF TG_OP = 'DELETE' THEN
		PERFORM wam.recompute_order_stats(ARRAY(SELECT DISTINCT o.customer_id FROM old_orders o));
	ELSE
		PERFORM wam.recompute_order_stats(ARRAY(SELECT o.customer_id FROM old_orders o
												UNION SELECT n.customer_id FROM new_orders n));
	END IF;
	RETURN NULL;
END
$$;
COMMENT ON FUNCTION wam_internal.order_stats_change_trigger() IS 'trigger: recomputes the statistics of customers whose orders were updated or deleted';

CREATE FUNCTION wam_internal.order_stats_truncate_trigger() RETURNS trigger
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
BEGIN
	TRUNCATE wam.customer_stats;
	UPDATE wam.customer SET first_order_at = NULL, last_order_at = NULL
	WHERE first_order_at IS NOT NULL OR last_order_at IS NOT NULL;
	RETURN NULL;
END
$$;
COMMENT ON FUNCTION wam_internal.order_stats_truncate_trigger() IS 'trigger: empties the statistics with the orders';

CREATE TRIGGER order_stats_insert AFTER INSERT ON wam.customer_order
	REFERENCING NEW TABLE AS new_orders FOR EACH STATEMENT EXECUTE FUNCTION wam_internal.order_stats_insert_trigger();
CREATE TRIGGER order_stats_update AFTER UPDATE ON wam.customer_order
	REFERENCING OLD TABLE AS old_orders NEW TABLE AS new_orders
	FOR EACH STATEMENT EXECUTE FUNCTION wam_internal.order_stats_change_trigger();
CREATE TRIGGER order_stats_delete AFTER DELETE ON wam.customer_order
	REFERENCING OLD TABLE AS old_orders FOR EACH STATEMENT EXECUTE FUNCTION wam_internal.order_stats_change_trigger();
CREATE TRIGGER order_stats_truncate AFTER TRUNCATE ON wam.customer_order
	FOR EACH STATEMENT EXECUTE FUNCTION wam_internal.order_stats_truncate_trigger();

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
			USING ERRCODE = 'invalid_parameter_value', DETAIL = 'R-R1: customers are divided into 5-7 tiers.';
	END IF;
	PERFORM wam_internal.rfm_store_scheme(name);
	RETURN QUERY
	SELECT t.tier, count(*) FROM wam.rfm_scheme s, unnest(s.tier_map) t(tier)
	WHERE s.name = name GROUP BY t.tier ORDER BY array_position((SELECT s2.tiers FROM wam.rfm_scheme s2 WHERE s2.name = name), t.tier);
END
$$;
COMMENT ON FUNCTION wam.define_rfm_scheme(text, jsonb, text) IS 'defines or replaces a tier scheme of 5 to 7 tiers';

CREATE FUNCTION wam.rfm_tier(r integer, f integer, m integer, scheme text DEFAULT NULL) RETURNS text
	LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, wam, pg_temp
AS $$
	SELECT s.tier_map[(r - 1) * 25 + (f - 1) * 5 + m]
	FROM wam.rfm_scheme s
	WHERE s.name = coalesce(scheme, (SELECT c.tier_scheme FROM wam.rfm_config c))
	  AND r BETWEEN 1 AND 5 AND f BETWEEN 1 AND 5 AND m BETWEEN 1 AND 5
$$;
COMMENT ON FUNCTION wam.rfm_tier(integer, integer, integer, text) IS 'tier of R, F, M scores in a scheme';

-- orders

CREATE FUNCTION wam.record_order(customer bigint, amount numeric, ordered_at timestamptz DEFAULT now(),
								 coupon_used boolean DEFAULT false, details jsonb DEFAULT NULL)
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
	VALUES (customer, ordered_at, amount, coalesce(cur, cfg.currency), coupon_used, n_units, details)
	RETURNING order_id INTO new_id;
	-- the order event lets event rules react at once (R-T8)
	INSERT INTO wam.event (customer_id, kind, occurred_at, details)
	VALUES (customer, 'order', ordered_at,
			coalesce(details, '{}') || jsonb_build_object('order_id', new_id, 'amount', amount,
														  'currency', coalesce(cur, cfg.currency),
														  'coupon_used', coupon_used, 'units', n_units));

	IF cfg.mirror_tags THEN
		SELECT v.tier INTO new_tier FROM wam.customer_rfm v WHERE v.customer_id = customer;
		IF new_tier IS DISTINCT FROM old_tier THEN
			PERFORM wam_internal.rfm_mirror_customer(customer, old_tier, new_tier);
		END IF;
	END IF;
	RETURN new_id;
END
$$;
COMMENT ON FUNCTION wam.record_order(bigint, numeric, timestamptz, boolean, jsonb) IS 'records an order and updates the purchase statistics; returns its id';

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

-- tier tags (dimension spending power)

CREATE FUNCTION wam.rfm_tier_tag(tier text) RETURNS text
	LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, wam, pg_temp
	RETURN (SELECT s.tag_prefix FROM wam.rfm_config s) || tier;
COMMENT ON FUNCTION wam.rfm_tier_tag(text) IS 'name of the tag that mirrors a tier';

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

-- lifetime value

CREATE FUNCTION wam_internal.clv_unit_days(calibration_end timestamptz, time_unit interval) RETURNS float8
	LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, wam, pg_temp
AS $$
DECLARE
	unit_days float8 := extract(epoch FROM time_unit) / 86400;
BEGIN
	PERFORM wam_internal.refuse_null(calibration_end IS NULL OR time_unit IS NULL, 'calibration end and time unit');
	IF NOT unit_days > 0 THEN
		RAISE EXCEPTION 'time unit must be a positive interval, not %', time_unit USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF NOT isfinite(calibration_end) THEN
		RAISE EXCEPTION 'calibration end must be finite, not %', calibration_end USING ERRCODE = 'invalid_parameter_value';
	END IF;
	RETURN unit_days;
END
$$;
COMMENT ON FUNCTION wam_internal.clv_unit_days(timestamptz, interval) IS 'internal: checks the calibration end and time unit of a lifetime-value summary; the time unit in days';

-- The summary from the statistics, for a calibration period that includes
-- every order.  A plain SQL function (no SET clause) so that it is inlined
-- into the callers' queries, which stream it into the fitting aggregates.
CREATE FUNCTION wam_internal.clv_summary_from_stats(cal_day date, unit_days float8)
	RETURNS TABLE (customer_id bigint, frequency integer, recency float8, "T" float8, monetary_value float8)
	LANGUAGE sql STABLE PARALLEL SAFE
AS $$
	SELECT s.customer_id, s.order_days - 1, (s.last_day - s.first_day) / unit_days,
		   (cal_day - s.first_day) / unit_days,
		   CASE WHEN s.order_days > 1
				THEN ((s.total_amount - s.first_day_amount) / (s.order_days - 1))::float8 ELSE 0 END
	FROM wam.customer_stats s
$$;
COMMENT ON FUNCTION wam_internal.clv_summary_from_stats(date, float8) IS 'internal: wam.clv_summary from the purchase statistics (calibration day on or after every purchase day; time unit in days)';

CREATE FUNCTION wam.clv_summary(calibration_end timestamptz DEFAULT now(), time_unit interval DEFAULT '1 day')
	RETURNS TABLE (customer_id bigint, frequency integer, recency float8, "T" float8, monetary_value float8)
	LANGUAGE plpgsql STABLE PARALLEL SAFE SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	zone text := (SELECT s.day_time_zone FROM wam.rfm_config s);
	cal_day date;
	unit_days float8;
BEGIN
	unit_days := wam_internal.clv_unit_days(calibration_end, time_unit);
	cal_day := (calibration_end AT TIME ZONE zone)::date;
	IF coalesce((SELECT max(s.last_day) FROM wam.customer_stats s), cal_day) <= cal_day THEN
		-- every order is in the calibration period: read the statistics
		RETURN QUERY SELECT * FROM wam_internal.clv_summary_from_stats(cal_day, unit_days);
	ELSE
		RETURN QUERY
		SELECT d.customer_id, (count(*) - 1)::integer, (max(d.day) - min(d.day)) / unit_days,
			   (cal_day - min(d.day)) / unit_days,
			   CASE WHEN count(*) > 1
					THEN ((sum(d.amount) - sum(d.amount) FILTER (WHERE d.day = d.first_day)) / (count(*) - 1))::float8
					ELSE 0 END
		FROM (SELECT y.customer_id, y.day, y.amount, min(y.day) OVER (PARTITION BY y.customer_id) AS first_day
			  FROM (SELECT x.customer_id, (x.ordered_at AT TIME ZONE zone)::date AS day, sum(x.amount) AS amount
					FROM wam.customer_order x
					WHERE x.ordered_at < ((cal_day + 1)::timestamp AT TIME ZONE zone)
					GROUP BY 1, 2) y) d
		GROUP BY d.customer_id;
	END IF;
END
$$;
COMMENT ON FUNCTION wam.clv_summary(timestamptz, interval) IS 'per buyer: frequency, recency, T and monetary value for the models';

CREATE FUNCTION wam.fit_clv(calibration_end timestamptz DEFAULT now(), time_unit interval DEFAULT '1 day',
							penalizer float8 DEFAULT NULL)
	-- model, parameter, value, penalizer (0: maximum likelihood)
	RETURNS SETOF wam.clv_parameter
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	started timestamptz := clock_timestamp();
	cfg wam.rfm_config;
	n_customers bigint;
	n_repeat bigint;
	bg float8[];
	gg float8[];
	unit_days float8;
	cal_day date;
	from_stats boolean;
BEGIN
	SELECT * INTO cfg FROM wam.rfm_config;
	unit_days := wam_internal.clv_unit_days(calibration_end, time_unit);
	IF calibration_end > now() + cfg.future_tolerance THEN
		RAISE EXCEPTION 'calibration end % is in the future', calibration_end USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF NOT (penalizer >= 0 AND penalizer < 'Infinity') THEN
		RAISE EXCEPTION 'penalizer must be a finite number of at least 0, not %', penalizer
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = '0 fits by maximum likelihood; 0.001 to 0.1 suits small samples; NULL (the default) chooses.';
	END IF;
	cal_day := (calibration_end AT TIME ZONE cfg.day_time_zone)::date;
	-- Every order in the calibration period (the usual case, calibration_end
	-- = now()): fit straight from the statistics; else from the orders.
	SELECT coalesce(max(s.last_day) <= cal_day, true), count(*), count(*) FILTER (WHERE s.order_days > 1)
	INTO from_stats, n_customers, n_repeat
	FROM wam.customer_stats s;
	IF NOT from_stats THEN
		SELECT count(*), count(*) FILTER (WHERE s.frequency > 0) INTO n_customers, n_repeat
		FROM wam.clv_summary(calibration_end, time_unit) s;
	END IF;
	IF n_customers < cfg.clv_min_customers OR n_repeat < cfg.clv_min_repeat_buyers THEN
		RAISE EXCEPTION 'too few customers to fit the lifetime-value models: % with orders and % repeat buyers',
			n_customers, n_repeat
			USING ERRCODE = 'object_not_in_prerequisite_state',
				  DETAIL = format('A fit needs at least %s customers with orders and %s repeat buyers (settings clv_min_customers, clv_min_repeat_buyers).',
								  cfg.clv_min_customers, cfg.clv_min_repeat_buyers),
				  HINT = 'Until then wam.clv() uses the simple estimate: average order value x purchase frequency x horizon.';
	END IF;
	IF from_stats THEN
		SELECT wam.bgnbd_fit(s.frequency, s.recency, s."T", penalizer),
			   wam.gammagamma_fit(s.frequency, s.monetary_value, penalizer) FILTER (WHERE s.monetary_value > 0)
		INTO bg, gg
		FROM wam_internal.clv_summary_from_stats(cal_day, unit_days) s;
	ELSE
		SELECT wam.bgnbd_fit(s.frequency, s.recency, s."T", penalizer),
			   wam.gammagamma_fit(s.frequency, s.monetary_value, penalizer) FILTER (WHERE s.monetary_value > 0)
		INTO bg, gg
		FROM wam.clv_summary(calibration_end, time_unit) s;
	END IF;
	IF gg IS NULL THEN
		RAISE EXCEPTION 'cannot fit Gamma-Gamma: no repeat buyer spent anything on repeat purchases'
			USING ERRCODE = 'data_exception';
	END IF;
	IF gg[2] <= 1 THEN
		RAISE EXCEPTION 'the Gamma-Gamma fit has q = % <= 1: the mean spend per purchase is not finite',
			round(gg[2]::numeric, 4)
			USING ERRCODE = 'data_exception',
				  HINT = CASE WHEN gg[7] > 0
							  THEN format('The penalty shrinks q as well: try a smaller penalizer than %s, or NULL to choose one.', gg[7])
							  ELSE 'Spend per purchase is too heavy-tailed for the model; check for outlier orders.' END;
	END IF;
	INSERT INTO wam.clv_fit AS f (fitted_at, calibration_end, time_unit, customers, repeat_buyers, bgnbd, gammagamma,
								  bgnbd_log_likelihood, gammagamma_log_likelihood, bgnbd_penalizer,
								  gammagamma_penalizer, evaluations, fit_ms)
	VALUES (now(), calibration_end, time_unit, bg[7]::bigint, bg[8]::bigint, bg[1:4], gg[1:3], bg[5], gg[4],
			bg[9], gg[7], (bg[6] + gg[5])::integer, 1000 * extract(epoch FROM clock_timestamp() - started))
	ON CONFLICT (id) DO UPDATE
	SET fitted_at = EXCLUDED.fitted_at, calibration_end = EXCLUDED.calibration_end, time_unit = EXCLUDED.time_unit,
		customers = EXCLUDED.customers, repeat_buyers = EXCLUDED.repeat_buyers, bgnbd = EXCLUDED.bgnbd,
		gammagamma = EXCLUDED.gammagamma, bgnbd_log_likelihood = EXCLUDED.bgnbd_log_likelihood,
		gammagamma_log_likelihood = EXCLUDED.gammagamma_log_likelihood,
		bgnbd_penalizer = EXCLUDED.bgnbd_penalizer, gammagamma_penalizer = EXCLUDED.gammagamma_penalizer,
		evaluations = EXCLUDED.evaluations, fit_ms = EXCLUDED.fit_ms;
	RETURN QUERY SELECT p.* FROM wam.clv_parameter p;
END
$$;
COMMENT ON FUNCTION wam.fit_clv(timestamptz, interval, float8) IS 'fits BG/NBD and Gamma-Gamma to the orders and stores the fit (penalized when needed)';

CREATE FUNCTION wam.clv_detail(customer bigint, horizon interval DEFAULT '1 year', margin numeric DEFAULT NULL)
	RETURNS TABLE (method text, frequency integer, recency float8, "T" float8, monetary_value float8,
				   p_alive float8, expected_purchases float8, spend_per_purchase numeric, clv numeric)
	LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	cfg wam.rfm_config;
	s wam.customer_stats;
	fit wam.clv_fit;
	unit_days float8;
	today date;
	opy float8;
	horizon_days float8;
BEGIN
	IF customer IS NULL THEN
		RETURN;
	END IF;
	SELECT * INTO cfg FROM wam.rfm_config;
	horizon := coalesce(horizon, interval '1 year');
	margin := coalesce(margin, cfg.clv_margin);
	horizon_days := extract(epoch FROM horizon) / 86400;
	IF NOT horizon_days > 0 OR NOT isfinite(horizon) THEN
		RAISE EXCEPTION 'horizon must be a positive interval, not %', horizon USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF margin < 0 OR margin > 1 THEN
		RAISE EXCEPTION 'margin must be between 0 and 1, not %', margin USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF NOT EXISTS (SELECT FROM wam.customer c WHERE c.id = customer) THEN
		RAISE EXCEPTION 'customer % does not exist', customer USING ERRCODE = 'no_data_found';
	END IF;
	SELECT * INTO s FROM wam.customer_stats st WHERE st.customer_id = customer;
	IF NOT FOUND THEN
		RETURN QUERY SELECT 'no orders'::text, NULL::integer, NULL::float8, NULL::float8, NULL::float8, NULL::float8,
							0::float8, NULL::numeric, 0::numeric;
		RETURN;
	END IF;
	SELECT * INTO fit FROM wam.clv_fit;
	IF FOUND THEN
		unit_days := extract(epoch FROM fit.time_unit) / 86400;
		today := greatest((now() AT TIME ZONE cfg.day_time_zone)::date, s.last_day);
		frequency := s.order_days - 1;
		recency := (s.last_day - s.first_day) / unit_days;
		"T" := (today - s.first_day) / unit_days;
		monetary_value := CASE WHEN frequency > 0
							   THEN ((s.total_amount - s.first_day_amount) / frequency)::float8 ELSE 0 END;
		-- a penalized fit says so: its predictions lean towards the base average
		method := CASE WHEN fit.bgnbd_penalizer > 0 OR fit.gammagamma_penalizer > 0
					   THEN 'bgnbd+gammagamma penalized' ELSE 'bgnbd+gammagamma' END;
		p_alive := wam.bgnbd_p_alive(fit.bgnbd, frequency, recency, "T");
		expected_purchases := wam.bgnbd_expected_purchases(fit.bgnbd, frequency, recency, "T", horizon_days / unit_days);
		spend_per_purchase := round(wam.gammagamma_expected_spend(fit.gammagamma, frequency, monetary_value)::numeric, 2);
	ELSE
		-- no fit yet: average order value x purchase frequency x horizon, the
		-- frequency being the base's repeat orders per customer-year (each
		-- customer counted for at least 30 days) as of the last refresh
		opy := (SELECT k.repeat_orders_per_year FROM wam.rfm_cut k);
		IF opy IS NULL THEN
			SELECT sum(st.orders - 1) / sum(greatest((now() AT TIME ZONE cfg.day_time_zone)::date - st.first_day, 30) / 365.25)
			INTO opy FROM wam.customer_stats st;
		END IF;
		method := 'simple';
		frequency := s.order_days - 1;
		expected_purchases := opy * horizon_days / 365.25;
		spend_per_purchase := round(s.total_amount / s.orders, 2);
	END IF;
	clv := round(margin * expected_purchases::numeric * spend_per_purchase, 2);
	RETURN NEXT;
END
$$;
COMMENT ON FUNCTION wam.clv_detail(bigint, interval, numeric) IS 'how a customer''s lifetime value is computed';

CREATE FUNCTION wam.clv(customer bigint, horizon interval DEFAULT '1 year', margin numeric DEFAULT NULL) RETURNS numeric
	LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, wam, pg_temp
AS $$
	SELECT d.clv FROM wam.clv_detail(customer, horizon, margin) d
$$;
COMMENT ON FUNCTION wam.clv(bigint, interval, numeric) IS 'predicted value of a customer''s purchases in the horizon';

CREATE FUNCTION wam.expected_purchases(customer bigint, horizon interval DEFAULT '1 year') RETURNS float8
	LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, wam, pg_temp
AS $$
	SELECT d.expected_purchases FROM wam.clv_detail(customer, horizon, NULL) d
$$;
COMMENT ON FUNCTION wam.expected_purchases(bigint, interval) IS 'expected purchases of a customer in the horizon';

CREATE FUNCTION wam.p_alive(customer bigint) RETURNS float8
	LANGUAGE plpgsql STABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	d record;
BEGIN
	SELECT * INTO d FROM wam.clv_detail(customer, NULL, NULL) x;
	IF d.method = 'simple' THEN
		RAISE EXCEPTION 'no lifetime-value fit yet: P(alive) needs the BG/NBD model'
			USING ERRCODE = 'object_not_in_prerequisite_state', HINT = 'An administrator runs wam.fit_clv().';
	END IF;
	RETURN d.p_alive;
END
$$;
COMMENT ON FUNCTION wam.p_alive(bigint) IS 'probability that a customer is still active';

-- cost caps (R-F4, R-R5)

CREATE FUNCTION wam.cost_cap_detail(customer bigint)
	RETURNS TABLE (cap numeric, clv numeric, method text, clv_share_cap numeric, push_cap numeric)
	LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	cfg wam.rfm_config;
BEGIN
	IF customer IS NULL THEN
		RETURN;
	END IF;
	SELECT * INTO cfg FROM wam.rfm_config;
	SELECT d.clv, d.method INTO clv, method FROM wam.clv_detail(customer, cfg.cost_cap_horizon, NULL) d;
	clv_share_cap := round(cfg.cost_cap_share * clv, 2);
	push_cap := round(cfg.push_cost * CASE WHEN clv > cfg.high_value_clv THEN cfg.high_value_push_multiplier ELSE 1 END, 2);
	cap := least(clv_share_cap, push_cap);
	RETURN NEXT;
END
$$;
COMMENT ON FUNCTION wam.cost_cap_detail(bigint) IS 'a customer''s cost cap and where it comes from';

CREATE FUNCTION wam.cost_cap(customer bigint) RETURNS numeric
	LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, wam, pg_temp
AS $$
	SELECT d.cap FROM wam.cost_cap_detail(customer) d
$$;
COMMENT ON FUNCTION wam.cost_cap(bigint) IS 'largest reward or push cost allowed for a customer';

CREATE FUNCTION wam.check_cost(customer bigint, cost numeric) RETURNS void
	LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	cfg wam.rfm_config;
	d record;
BEGIN
	IF customer IS NULL OR cost IS NULL THEN
		RAISE EXCEPTION 'customer and cost must not be null' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	IF cost < 0 OR cost = 'NaN' THEN
		RAISE EXCEPTION 'cost must not be negative, not %', cost USING ERRCODE = 'invalid_parameter_value';
	END IF;
	SELECT * INTO cfg FROM wam.rfm_config;
	SELECT * INTO d FROM wam.cost_cap_detail(customer) x;
	IF cost > d.cap THEN
		RAISE EXCEPTION 'cost % exceeds the cost cap of % for customer %', cost, d.cap, customer
			USING ERRCODE = 'check_violation',
				  DETAIL = format('The cap is %s%% of the lifetime value %s (%s, %s)%s.',
								  round(100 * cfg.cost_cap_share, 1), d.clv, d.method, cfg.cost_cap_horizon,
								  CASE WHEN d.push_cap IS NOT NULL AND d.push_cap < d.clv_share_cap
									   THEN format(', limited to %s by the per-push cost %s%s', d.push_cap, cfg.push_cost,
												   CASE WHEN d.clv > cfg.high_value_clv
														THEN format(' x %s for lifetime values above %s',
																	cfg.high_value_push_multiplier, cfg.high_value_clv)
														ELSE '' END)
									   ELSE '' END),
				  HINT = 'Settings cost_cap_share, push_cost, high_value_clv and high_value_push_multiplier.';
	END IF;
END
$$;
COMMENT ON FUNCTION wam.check_cost(bigint, numeric) IS 'raises an error when a cost exceeds the customer''s cost cap';

-- privileges: tables are read-only to the roles; orders are written by
-- wam.record_order (operators), scoring and fitting are run by admins

REVOKE ALL ON wam.rfm_config, wam.rfm_scheme, wam.rfm_tier_rule, wam.customer_order, wam.customer_stats,
	wam.rfm_cut, wam.clv_fit, wam.clv_parameter, wam.customer_rfm, wam.rfm_settings FROM PUBLIC;
GRANT SELECT ON wam.rfm_config, wam.rfm_scheme, wam.rfm_tier_rule, wam.customer_order, wam.customer_stats,
	wam.rfm_cut, wam.clv_fit, wam.clv_parameter, wam.customer_rfm, wam.rfm_settings TO wam_reader;

REVOKE EXECUTE ON FUNCTION
	wam_internal.rfm_cut_points_trans(internal, timestamptz, timestamptz, timestamptz, bigint, numeric, bigint),
	wam_internal.rfm_cut_points_final(internal),
	wam_internal.rfm_cut_points(timestamptz, timestamptz, timestamptz, bigint, numeric, bigint),
	wam_internal.bgnbd_fit_trans(internal, float8, float8, float8), wam_internal.bgnbd_fit_final(internal),
	wam.bgnbd_fit(float8, float8, float8),
	wam_internal.gammagamma_fit_trans(internal, float8, float8), wam_internal.gammagamma_fit_final(internal),
	wam.gammagamma_fit(float8, float8),
	wam_internal.bgnbd_fit_trans(internal, float8, float8, float8, float8), wam.bgnbd_fit(float8, float8, float8, float8),
	wam_internal.gammagamma_fit_trans(internal, float8, float8, float8), wam.gammagamma_fit(float8, float8, float8),
	wam.hyp2f1(float8, float8, float8, float8), wam.bgnbd_p_alive(float8[], float8, float8, float8),
	wam.bgnbd_expected_purchases(float8[], float8, float8, float8, float8),
	wam.gammagamma_expected_spend(float8[], float8, float8),
	wam.rfm_level(anyelement, anyarray), wam_internal.count_since(timestamptz[], timestamptz),
	wam_internal.rfm_compile(text), wam_internal.rfm_store_scheme(text),
	wam_internal.order_stats_from_orders(bigint[], text), wam_internal.lock_order_stats(bigint[]),
	wam.recompute_order_stats(bigint[]), wam.verify_order_stats(),
	wam_internal.order_stats_insert_trigger(), wam_internal.order_stats_change_trigger(), wam_internal.order_stats_truncate_trigger(),
	wam.configure_rfm(text, text), wam.define_rfm_scheme(text, jsonb, text),
	wam.rfm_tier(integer, integer, integer, text),
	wam.record_order(bigint, numeric, timestamptz, boolean, jsonb),
	wam.refresh_rfm(timestamptz), wam.rfm_score(bigint), wam.value_report(),
	wam.rfm_tier_tag(text), wam.sync_rfm_tags(), wam_internal.rfm_mirror_customer(bigint, text, text),
	wam_internal.clv_summary_from_stats(date, float8), wam_internal.clv_unit_days(timestamptz, interval),
	wam.clv_summary(timestamptz, interval), wam.fit_clv(timestamptz, interval, float8),
	wam.clv_detail(bigint, interval, numeric), wam.clv(bigint, interval, numeric),
	wam.expected_purchases(bigint, interval), wam.p_alive(bigint),
	wam.cost_cap_detail(bigint), wam.cost_cap(bigint), wam.check_cost(bigint, numeric)
FROM PUBLIC;
-- readers: scores, reports, predictions and the model arithmetic
GRANT EXECUTE ON FUNCTION
	wam_internal.bgnbd_fit_trans(internal, float8, float8, float8), wam_internal.bgnbd_fit_final(internal),
	wam.bgnbd_fit(float8, float8, float8),
	wam_internal.gammagamma_fit_trans(internal, float8, float8), wam_internal.gammagamma_fit_final(internal),
	wam.gammagamma_fit(float8, float8),
	wam_internal.bgnbd_fit_trans(internal, float8, float8, float8, float8), wam.bgnbd_fit(float8, float8, float8, float8),
	wam_internal.gammagamma_fit_trans(internal, float8, float8, float8), wam.gammagamma_fit(float8, float8, float8),
	wam.hyp2f1(float8, float8, float8, float8), wam.bgnbd_p_alive(float8[], float8, float8, float8),
	wam.bgnbd_expected_purchases(float8[], float8, float8, float8, float8),
	wam.gammagamma_expected_spend(float8[], float8, float8),
	wam.rfm_level(anyelement, anyarray), wam_internal.count_since(timestamptz[], timestamptz),
	wam.rfm_tier(integer, integer, integer, text), wam.verify_order_stats(), wam_internal.order_stats_from_orders(bigint[], text),
	wam.rfm_score(bigint), wam.value_report(), wam.rfm_tier_tag(text),
	wam_internal.clv_summary_from_stats(date, float8), wam_internal.clv_unit_days(timestamptz, interval),
	wam.clv_summary(timestamptz, interval), wam.clv_detail(bigint, interval, numeric),
	wam.clv(bigint, interval, numeric), wam.expected_purchases(bigint, interval), wam.p_alive(bigint),
	wam.cost_cap_detail(bigint), wam.cost_cap(bigint), wam.check_cost(bigint, numeric)
TO wam_reader;
-- operators: record orders
GRANT EXECUTE ON FUNCTION wam.record_order(bigint, numeric, timestamptz, boolean, jsonb) TO wam_operator;
-- admins: score, fit, configure, mirror tags, repair statistics
GRANT EXECUTE ON FUNCTION wam.refresh_rfm(timestamptz), wam.fit_clv(timestamptz, interval, float8),
	wam.configure_rfm(text, text), wam.define_rfm_scheme(text, jsonb, text), wam.sync_rfm_tags(),
	wam.recompute_order_stats(bigint[]) TO wam_admin;

-- wam_definer (owner of the SECURITY DEFINER functions): see src/sql/tags.sql
GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON wam.customer_stats TO wam_definer;
GRANT SELECT, INSERT ON wam.customer_order TO wam_definer;
GRANT SELECT, INSERT, UPDATE ON wam.rfm_cut, wam.clv_fit TO wam_definer;
GRANT SELECT, INSERT, UPDATE ON wam.rfm_scheme TO wam_definer;
GRANT SELECT, UPDATE ON wam.rfm_config TO wam_definer;
GRANT SELECT, INSERT, DELETE ON wam.rfm_tier_rule TO wam_definer;
GRANT SELECT ON wam.clv_parameter, wam.customer_rfm, wam.rfm_settings TO wam_definer;
GRANT USAGE ON SEQUENCE wam.customer_order_order_id_seq TO wam_definer;
