-- src/sql/clv.sql: lifetime value (BG/NBD and Gamma-Gamma) and cost caps

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

REVOKE ALL ON wam.clv_fit FROM PUBLIC;
GRANT SELECT ON wam.clv_fit TO wam_reader;
GRANT SELECT, INSERT, UPDATE ON wam.clv_fit TO wam_definer;

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

REVOKE ALL ON wam.clv_parameter FROM PUBLIC;
GRANT SELECT ON wam.clv_parameter TO wam_definer;
GRANT SELECT ON wam.clv_parameter TO wam_reader;

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

REVOKE EXECUTE ON FUNCTION wam_internal.bgnbd_fit_final(internal) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam_internal.bgnbd_fit_final(internal) TO wam_reader;
COMMENT ON AGGREGATE wam.bgnbd_fit(float8, float8, float8) IS 'maximum-likelihood BG/NBD fit over customer histories';

CREATE FUNCTION wam_internal.bgnbd_fit_trans(internal, float8, float8, float8, float8) RETURNS internal
	AS 'MODULE_PATHNAME', 'wam_bgnbd_fit_trans' LANGUAGE C IMMUTABLE CALLED ON NULL INPUT PARALLEL SAFE;
CREATE AGGREGATE wam.bgnbd_fit(frequency float8, recency float8, "T" float8, penalizer float8) (
	SFUNC = wam_internal.bgnbd_fit_trans,
	STYPE = internal,
	FINALFUNC = wam_internal.bgnbd_fit_final,
	PARALLEL = SAFE
);
COMMENT ON FUNCTION wam_internal.bgnbd_fit_trans(internal, float8, float8, float8, float8) IS 'internal: transition function of wam.bgnbd_fit with a penalizer';

REVOKE EXECUTE ON FUNCTION wam_internal.bgnbd_fit_trans(internal, float8, float8, float8) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION wam_internal.bgnbd_fit_trans(internal, float8, float8, float8, float8) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam_internal.bgnbd_fit_trans(internal, float8, float8, float8) TO wam_reader;
GRANT EXECUTE ON FUNCTION wam_internal.bgnbd_fit_trans(internal, float8, float8, float8, float8) TO wam_reader;
COMMENT ON AGGREGATE wam.bgnbd_fit(float8, float8, float8, float8) IS 'BG/NBD fit with a penalizer (NULL: only when maximum likelihood degenerates)';

REVOKE EXECUTE ON FUNCTION wam.bgnbd_fit(float8, float8, float8) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION wam.bgnbd_fit(float8, float8, float8, float8) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.bgnbd_fit(float8, float8, float8) TO wam_reader;
GRANT EXECUTE ON FUNCTION wam.bgnbd_fit(float8, float8, float8, float8) TO wam_reader;

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

REVOKE EXECUTE ON FUNCTION wam_internal.gammagamma_fit_final(internal) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam_internal.gammagamma_fit_final(internal) TO wam_reader;
COMMENT ON AGGREGATE wam.gammagamma_fit(float8, float8) IS 'maximum-likelihood Gamma-Gamma fit over repeat buyers';

CREATE FUNCTION wam_internal.gammagamma_fit_trans(internal, float8, float8, float8) RETURNS internal
	AS 'MODULE_PATHNAME', 'wam_gammagamma_fit_trans' LANGUAGE C IMMUTABLE CALLED ON NULL INPUT PARALLEL SAFE;
CREATE AGGREGATE wam.gammagamma_fit(frequency float8, monetary_value float8, penalizer float8) (
	SFUNC = wam_internal.gammagamma_fit_trans,
	STYPE = internal,
	FINALFUNC = wam_internal.gammagamma_fit_final,
	PARALLEL = SAFE
);
COMMENT ON FUNCTION wam_internal.gammagamma_fit_trans(internal, float8, float8, float8) IS 'internal: transition function of wam.gammagamma_fit with a penalizer';

REVOKE EXECUTE ON FUNCTION wam_internal.gammagamma_fit_trans(internal, float8, float8) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION wam_internal.gammagamma_fit_trans(internal, float8, float8, float8) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam_internal.gammagamma_fit_trans(internal, float8, float8) TO wam_reader;
GRANT EXECUTE ON FUNCTION wam_internal.gammagamma_fit_trans(internal, float8, float8, float8) TO wam_reader;
COMMENT ON AGGREGATE wam.gammagamma_fit(float8, float8, float8) IS 'Gamma-Gamma fit with a penalizer (NULL: only when maximum likelihood degenerates)';

REVOKE EXECUTE ON FUNCTION wam.gammagamma_fit(float8, float8) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION wam.gammagamma_fit(float8, float8, float8) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.gammagamma_fit(float8, float8) TO wam_reader;
GRANT EXECUTE ON FUNCTION wam.gammagamma_fit(float8, float8, float8) TO wam_reader;

CREATE FUNCTION wam.hyp2f1(a float8, b float8, c float8, z float8) RETURNS float8
	AS 'MODULE_PATHNAME', 'wam_hyp2f1' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION wam.hyp2f1(float8, float8, float8, float8) IS 'Gaussian hypergeometric function 2F1(a, b; c; z), 0 <= z < 1';

REVOKE EXECUTE ON FUNCTION wam.hyp2f1(float8, float8, float8, float8) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.hyp2f1(float8, float8, float8, float8) TO wam_reader;

CREATE FUNCTION wam.bgnbd_p_alive(params float8[], frequency float8, recency float8, "T" float8) RETURNS float8
	AS 'MODULE_PATHNAME', 'wam_bgnbd_p_alive' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION wam.bgnbd_p_alive(float8[], float8, float8, float8) IS 'BG/NBD probability that a customer is still active';

REVOKE EXECUTE ON FUNCTION wam.bgnbd_p_alive(float8[], float8, float8, float8) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.bgnbd_p_alive(float8[], float8, float8, float8) TO wam_reader;

CREATE FUNCTION wam.bgnbd_expected_purchases(params float8[], frequency float8, recency float8, "T" float8, t float8)
	RETURNS float8
	AS 'MODULE_PATHNAME', 'wam_bgnbd_expected_purchases' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION wam.bgnbd_expected_purchases(float8[], float8, float8, float8, float8) IS 'BG/NBD expected purchases in the next t time units';

REVOKE EXECUTE ON FUNCTION wam.bgnbd_expected_purchases(float8[], float8, float8, float8, float8) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.bgnbd_expected_purchases(float8[], float8, float8, float8, float8) TO wam_reader;

CREATE FUNCTION wam.gammagamma_expected_spend(params float8[], frequency float8, monetary_value float8) RETURNS float8
	AS 'MODULE_PATHNAME', 'wam_gammagamma_expected_spend' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION wam.gammagamma_expected_spend(float8[], float8, float8) IS 'Gamma-Gamma expected spend per purchase';

REVOKE EXECUTE ON FUNCTION wam.gammagamma_expected_spend(float8[], float8, float8) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.gammagamma_expected_spend(float8[], float8, float8) TO wam_reader;

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

REVOKE EXECUTE ON FUNCTION wam_internal.clv_unit_days(timestamptz, interval) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam_internal.clv_unit_days(timestamptz, interval) TO wam_reader;

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

REVOKE EXECUTE ON FUNCTION wam_internal.clv_summary_from_stats(date, float8) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam_internal.clv_summary_from_stats(date, float8) TO wam_reader;

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

REVOKE EXECUTE ON FUNCTION wam.clv_summary(timestamptz, interval) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.clv_summary(timestamptz, interval) TO wam_reader;

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

REVOKE EXECUTE ON FUNCTION wam.fit_clv(timestamptz, interval, float8) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.fit_clv(timestamptz, interval, float8) TO wam_admin;

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

REVOKE EXECUTE ON FUNCTION wam.clv_detail(bigint, interval, numeric) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.clv_detail(bigint, interval, numeric) TO wam_reader;

CREATE FUNCTION wam.clv(customer bigint, horizon interval DEFAULT '1 year', margin numeric DEFAULT NULL) RETURNS numeric
	LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, wam, pg_temp
AS $$
	SELECT d.clv FROM wam.clv_detail(customer, horizon, margin) d
$$;
COMMENT ON FUNCTION wam.clv(bigint, interval, numeric) IS 'predicted value of a customer''s purchases in the horizon';

REVOKE EXECUTE ON FUNCTION wam.clv(bigint, interval, numeric) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.clv(bigint, interval, numeric) TO wam_reader;

CREATE FUNCTION wam.expected_purchases(customer bigint, horizon interval DEFAULT '1 year') RETURNS float8
	LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, wam, pg_temp
AS $$
	SELECT d.expected_purchases FROM wam.clv_detail(customer, horizon, NULL) d
$$;
COMMENT ON FUNCTION wam.expected_purchases(bigint, interval) IS 'expected purchases of a customer in the horizon';

REVOKE EXECUTE ON FUNCTION wam.expected_purchases(bigint, interval) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.expected_purchases(bigint, interval) TO wam_reader;

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

REVOKE EXECUTE ON FUNCTION wam.p_alive(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.p_alive(bigint) TO wam_reader;

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

REVOKE EXECUTE ON FUNCTION wam.cost_cap_detail(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.cost_cap_detail(bigint) TO wam_reader;

CREATE FUNCTION wam.cost_cap(customer bigint) RETURNS numeric
	LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, wam, pg_temp
AS $$
	SELECT d.cap FROM wam.cost_cap_detail(customer) d
$$;
COMMENT ON FUNCTION wam.cost_cap(bigint) IS 'largest reward or push cost allowed for a customer';

REVOKE EXECUTE ON FUNCTION wam.cost_cap(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.cost_cap(bigint) TO wam_reader;

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

REVOKE EXECUTE ON FUNCTION wam.check_cost(bigint, numeric) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.check_cost(bigint, numeric) TO wam_reader;
