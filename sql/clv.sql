-- lifetime value: the BG/NBD and Gamma-Gamma arithmetic, fitting, predictions,
-- the simple fallback, cost caps (R-R5, R-F4) and roles
SET client_min_messages = warning;
DROP EXTENSION pg_wamarketing CASCADE;
CREATE EXTENSION pg_wamarketing;
RESET client_min_messages;
SET search_path = public, wam;
SET client_min_messages = warning;
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';
SET intervalstyle = 'postgres';
SET extra_float_digits = 0;
\set VERBOSITY default
\set SHOW_CONTEXT never

-- 2F1(a, b; c; z): closed forms 2F1(1, 1; 2; z) = -ln(1-z)/z and 2F1(a, b; b; z) = (1-z)^-a
SELECT round(hyp2f1(1, 1, 2, 0.5)::numeric, 12) AS f, round((-ln(0.5) / 0.5)::numeric, 12) AS closed_form;
SELECT round(hyp2f1(1.5, 2.5, 2.5, 0.9)::numeric, 9) AS f, round((0.1 ^ -1.5)::numeric, 9) AS closed_form;
SELECT hyp2f1(2, 3, 4, 0), hyp2f1(-2, 1, 1, 0.5) AS polynomial;
SELECT round(hyp2f1(300, 300, 301, 0.9)::numeric / 1e290, 6) AS large_terms_rescaled;
SELECT hyp2f1(1, 1, 2, 1);
SELECT hyp2f1(1, 1, 2, -0.1);
SELECT hyp2f1(1, 1, 0, 0.5);
SELECT hyp2f1(1, 1, -3, 0.5);
SELECT hyp2f1(800, 800, 1, 0.9);
SELECT hyp2f1(NULL, 1, 1, 0.5);

-- the published CDNOW fit (Fader, Hardie & Lee 2005), weeks: the paper's example
-- customer (x = 2, t_x = 30.43, T = 38.86) expects 1.226 purchases in the next 39 weeks
SELECT round(bgnbd_expected_purchases('{0.2426, 4.4135, 0.7929, 2.4258}', 2, 30.43, 38.86, 39)::numeric, 3) AS e_39,
	   round(bgnbd_p_alive('{0.2426, 4.4135, 0.7929, 2.4258}', 2, 30.43, 38.86)::numeric, 4) AS p_alive;
SELECT x, round(bgnbd_expected_purchases('{0.2426, 4.4135, 0.7929, 2.4258}', x, 20, 38.86, 52)::numeric, 4) AS e_52,
	   round(bgnbd_p_alive('{0.2426, 4.4135, 0.7929, 2.4258}', x, 20, 38.86)::numeric, 4) AS p_alive
FROM unnest(ARRAY[0, 1, 5, 20, 200]) x;
SELECT bgnbd_expected_purchases('{0.2426, 4.4135, 0.7929, 2.4258}', 3, 10, 38.86, 0) AS no_time;
-- no drop-out (a / (a + b) below 1e-12, as a penalized fit may give): the NBD limit
-- t (r + x) / (alpha + T), also where the closed form fails (a + b + x - 1 <= 0)
SELECT bgnbd_expected_purchases('{0.5, 20, 1e-21, 0.5}', 0, 0, 30, 365) AS nbd_x0,
	   bgnbd_expected_purchases('{0.5, 20, 1e-21, 0.5}', 2, 10, 30, 365) AS nbd_x2,
	   round(bgnbd_p_alive('{0.5, 20, 1e-21, 0.5}', 2, 10, 30)::numeric, 12) AS p_alive;
-- just above the limit the closed form gives nearly the same
SELECT round(bgnbd_expected_purchases('{0.5, 20, 1e-9, 2}', 2, 10, 30, 365)::numeric, 4) AS closed_form,
	   round((bgnbd_expected_purchases('{0.5, 20, 1e-21, 2}', 2, 10, 30, 365))::numeric, 4) AS nbd_limit;
-- bad input
SELECT bgnbd_p_alive('{0.2426, 4.4135, 0.7929}', 2, 30, 38);
SELECT bgnbd_p_alive('{0.2426, -4.4135, 0.7929, 2.4258}', 2, 30, 38);
SELECT bgnbd_p_alive('{0.2426, NULL, 0.7929, 2.4258}', 2, 30, 38);
SELECT bgnbd_p_alive('{{0.2426, 4.4135}, {0.7929, 2.4258}}', 2, 30, 38);
SELECT bgnbd_p_alive('{0.2426, NaN, 0.7929, 2.4258}', 2, 30, 38);
SELECT bgnbd_p_alive('{0.2426, 4.4135, 0.7929, 2.4258}', 2, 40, 38);
SELECT bgnbd_p_alive('{0.2426, 4.4135, 0.7929, 2.4258}', 1.5, 30, 38);
SELECT bgnbd_p_alive('{0.2426, 4.4135, 0.7929, 2.4258}', -1, 0, 38);
SELECT bgnbd_p_alive('{0.2426, 4.4135, 0.7929, 2.4258}', 'Infinity', 0, 38);
SELECT bgnbd_expected_purchases('{0.2426, 4.4135, 0.7929, 2.4258}', 2, 30, 38, -1);
SELECT bgnbd_expected_purchases('{0.2426, 4.4135, 1, 2.4258}', 2, 30, 38, 10);
SELECT bgnbd_p_alive(NULL, 2, 30, 38);
-- Gamma-Gamma (CDNOW: p = 6.25, q = 3.74, v = 15.44): the population mean, and a
-- customer's mean pulled towards it
SELECT round(gammagamma_expected_spend('{6.25, 3.74, 15.44}', 0, 0)::numeric, 2) AS population,
	   round(gammagamma_expected_spend('{6.25, 3.74, 15.44}', 1, 100)::numeric, 2) AS one_repeat,
	   round(gammagamma_expected_spend('{6.25, 3.74, 15.44}', 10, 100)::numeric, 2) AS ten_repeats;
SELECT gammagamma_expected_spend('{6.25, 0.9, 15.44}', 1, 100);
SELECT gammagamma_expected_spend('{6.25, 3.74, 15.44}', 1, -5);
SELECT gammagamma_expected_spend('{6.25, 3.74, 15.44}', 0.5, 5);

-- the fitting aggregates on hand-made data
SELECT bgnbd_fit(f, r, t) FROM (VALUES (0, 0, 10), (0, 0, 20)) v(f, r, t);
SELECT bgnbd_fit(f, r, t) FROM (VALUES (1, 12, 10)) v(f, r, t);
SELECT bgnbd_fit(f, r, t) FROM (VALUES (1, 2, NULL::float8)) v(f, r, t);
SELECT bgnbd_fit(f, r, t) FROM (VALUES (1, 'NaN'::float8, 20)) v(f, r, t);
SELECT bgnbd_fit(f, r, t) IS NULL AS empty FROM (VALUES (1, 2, 3)) v(f, r, t) WHERE false;
SELECT gammagamma_fit(f, m) FROM (VALUES (0, 0), (0, 0)) v(f, m);
SELECT gammagamma_fit(f, m) FROM (VALUES (2, 10), (1, 0)) v(f, m);
SELECT gammagamma_fit(f, m) IS NULL AS empty FROM (VALUES (1, 2)) v(f, m) WHERE false;

-- a synthetic base of 400 customers, deterministic: customer i buys at rate lambda_i
-- per day and drops out after each purchase with probability p_i (a BG/NBD process),
-- first purchase 60-359 days ago, spend around a personal mean; u(i, k) is a fixed
-- pseudo-random number in [0, 1)
-- fitted parameters are printed to 4 significant digits (the fit's tolerance is 1e-5)
CREATE FUNCTION pg_temp.sig(x float8) RETURNS numeric LANGUAGE sql IMMUTABLE
	RETURN round(x::numeric, 3 - floor(log(abs(x)))::integer);
-- a penalized BG/NBD fit may leave a and b on a ridge where only a / (a + b) ~ 0 is
-- determined: shown as such
CREATE FUNCTION pg_temp.shown(parameter text, x float8) RETURNS text LANGUAGE sql
	RETURN CASE WHEN parameter IN ('a', 'b') AND (SELECT bgnbd[3] / (bgnbd[3] + bgnbd[4]) < 1e-12 FROM clv_fit)
				THEN CASE parameter WHEN 'a' THEN 'a / (a + b) < 1e-12' ELSE '(on a ridge)' END
				ELSE pg_temp.sig(x)::text END;
CREATE FUNCTION pg_temp.u(i bigint, k bigint) RETURNS float8 LANGUAGE sql IMMUTABLE
	RETURN ('x' || substr(md5(i || ':' || k), 1, 8))::bit(32)::bigint / 4294967296.0;
INSERT INTO customer (id, phone) SELECT g, (85270000000 + g)::text FROM generate_series(1, 410) g;
CREATE TEMP TABLE sim AS
WITH RECURSIVE c AS (
	SELECT i, 0.004 + 0.06 * pg_temp.u(i, 1) ^ 2 AS lambda, 0.02 + 0.25 * pg_temp.u(i, 2) AS p,
		   60 + floor(300 * pg_temp.u(i, 3))::integer AS age, 15 + 60 * pg_temp.u(i, 4) AS mean_spend
	FROM generate_series(1, 400) i
), purchase AS (
	SELECT i, 0 AS k, 0::float8 AS t, true AS alive FROM c
	UNION ALL
	SELECT p.i, p.k + 1, p.t + ceil(-ln(1 - pg_temp.u(p.i, 10 + p.k)) / c.lambda), pg_temp.u(p.i, 500 + p.k) >= c.p
	FROM purchase p JOIN c ON c.i = p.i
	WHERE p.alive AND p.k < 200
)
SELECT p.i, p.k, date_trunc('day', now()) - (c.age - p.t) * interval '1 day' AS at,
	   round((c.mean_spend * (0.5 + pg_temp.u(p.i, 1000 + p.k)))::numeric, 2) AS amount
FROM purchase p JOIN c ON c.i = p.i
WHERE p.t <= c.age;
SELECT count(*) AS purchases, count(DISTINCT i) AS customers, max(k) AS most_repeats FROM sim;
SELECT count(record_order(i, amount, at)) AS recorded FROM (SELECT * FROM sim ORDER BY i, k) s;
SELECT * FROM verify_order_stats();
-- the summary the models are fitted to: purchase days after the first, recency and T in days
SELECT * FROM clv_summary() WHERE customer_id IN (1, 2, 3, 17) ORDER BY 1;
SELECT count(*) AS customers, count(*) FILTER (WHERE frequency > 0) AS repeat_buyers,
	   sum(frequency) AS repeat_days, bool_and(recency <= "T") AS recency_within_T
FROM clv_summary();
-- weeks, and the calibration period cut 30 days ago (from the orders)
SELECT * FROM clv_summary(now() - interval '30 days', '1 week') WHERE customer_id IN (1, 2, 3, 17) ORDER BY 1;
SELECT * FROM clv_summary(NULL);
SELECT * FROM clv_summary(now(), '0 days');
SELECT * FROM clv_summary(now(), '-1 day');
SELECT * FROM clv_summary('infinity');

-- before a fit: the simple estimate (average order value x the base's repeat orders per
-- customer-year x horizon)
SELECT method, frequency, round(expected_purchases::numeric, 4) AS expected_purchases, spend_per_purchase, clv FROM clv_detail(1);
SELECT clv(1), clv(1, '6 months'), clv(1, '1 year', 0.3), round(expected_purchases(1, '2 years')::numeric, 4) AS e_2_years;
SELECT p_alive(1);
-- no orders: 0; unknown customers: an error; NULL: NULL
SELECT * FROM clv_detail(405);
SELECT clv(405), expected_purchases(405), p_alive(405);
SELECT clv(9999);
SELECT clv(NULL), expected_purchases(NULL), p_alive(NULL), cost_cap(NULL);
SELECT clv(1, '-1 day');
SELECT clv(1, '0 days');
SELECT clv(1, '1 year', 1.5);
SELECT clv(1, '1 year', -0.1);

-- the cost cap's high-value customers for all at once (wam_internal.high_value_customers):
-- those wam.clv puts above the threshold, at customer 1's value, just below and just above
SELECT hh.h, t.label, wam.segment_cardinality(wam_internal.high_value_customers(hh.h, clv(1, hh.h) + t.d)) AS set_wise,
	   wam_internal.high_value_customers(hh.h, clv(1, hh.h) + t.d)
	   = coalesce((SELECT segment_agg(c.id) FROM customer c WHERE coalesce(clv(c.id, hh.h), 0) > clv(1, hh.h) + t.d), '{}') AS as_clv
FROM (VALUES (interval '1 year'), (interval '90 days')) hh(h), (VALUES ('below', -0.01), ('at', 0), ('above', 0.01)) t(label, d)
ORDER BY 1, 2;
SELECT wam_internal.high_value_customers('-1 day', 0);

-- fitting needs enough customers (settings clv_min_customers 500, clv_min_repeat_buyers 100)
SELECT * FROM fit_clv();
SELECT configure_rfm('clv_min_customers', '300');
SELECT model, parameter, pg_temp.sig(value) AS value FROM fit_clv(now(), '1 day');
SELECT model, parameter, pg_temp.sig(value) AS value FROM clv_parameter;
SELECT time_unit, customers, repeat_buyers, round(bgnbd_log_likelihood::numeric, 2) AS bgnbd_ll,
	   round(gammagamma_log_likelihood::numeric, 2) AS gg_ll FROM clv_fit;
-- the same fit in weeks: alpha scales by 7, the rest stays
SELECT model, parameter, pg_temp.sig(value) AS value FROM fit_clv(now(), '1 week');
SELECT * FROM fit_clv('2999-01-01');
SELECT * FROM fit_clv(now(), NULL);
SELECT count(*) FROM fit_clv(now(), '1 day');

-- predictions from the fit
SELECT i AS customer, d.method, d.frequency, d.recency, d."T", round(d.monetary_value::numeric, 2) AS monetary_value,
	   round(d.p_alive::numeric, 4) AS p_alive, round(d.expected_purchases::numeric, 4) AS expected_purchases,
	   d.spend_per_purchase, d.clv
FROM generate_series(1, 6) i, clv_detail(i) d;
SELECT i AS customer, round(p_alive(i)::numeric, 4) AS p_alive,
	   round(expected_purchases(i, '90 days')::numeric, 4) AS e_90_days,
	   round(expected_purchases(i)::numeric, 4) AS e_1_year, clv(i), clv(i, '2 years', 0.4) AS margin_clv_2y
FROM generate_series(1, 6) i;
SELECT round(expected_purchases(1, '10 years')::numeric, 3) AS e_10_years;
-- the cost cap's high-value customers for all at once (wam_internal.high_value_customers):
-- those wam.clv puts above the threshold, at customer 1's value, just below and just above
SELECT hh.h, t.label, wam.segment_cardinality(wam_internal.high_value_customers(hh.h, clv(1, hh.h) + t.d)) AS set_wise,
	   wam_internal.high_value_customers(hh.h, clv(1, hh.h) + t.d)
	   = coalesce((SELECT segment_agg(c.id) FROM customer c WHERE coalesce(clv(c.id, hh.h), 0) > clv(1, hh.h) + t.d), '{}') AS as_clv
FROM (VALUES (interval '1 year'), (interval '90 days')) hh(h), (VALUES ('below', -0.01), ('at', 0), ('above', 0.01)) t(label, d)
ORDER BY 1, 2;
-- a new order updates the prediction at once
SELECT round(p_alive(9)::numeric, 4) AS p_alive, round(expected_purchases(9)::numeric, 4) AS e_1_year;
SELECT record_order(9, 40, now()) > 0 AS ordered;
SELECT round(p_alive(9)::numeric, 4) AS p_alive, round(expected_purchases(9)::numeric, 4) AS e_1_year;

-- cost caps: 15% of the 1-year LTV (R-F4); with a per-push cost, at most that,
-- or 3x it above an LTV of 8,000 (R-R5)
SELECT i AS customer, clv(i), cost_cap(i) FROM generate_series(1, 4) i;
SELECT * FROM cost_cap_detail(1);
SELECT check_cost(1, 1.00);
SELECT check_cost(1, 1000);
SELECT configure_rfm('push_cost', '2');
SELECT i AS customer, clv(i), cost_cap(i) FROM generate_series(1, 4) i;
SELECT check_cost(1, 3);
SELECT configure_rfm('high_value_clv', '20');
SELECT * FROM cost_cap_detail(1);
SELECT check_cost(1, 7);
SELECT configure_rfm('high_value_clv', '8000');
SELECT cost_cap(405) AS no_orders_cap;
SELECT check_cost(405, 0) AS zero_cost_allowed;
SELECT check_cost(405, 0.01);
SELECT check_cost(1, -1);
SELECT check_cost(1, NULL);
SELECT check_cost(NULL, 1);
SELECT check_cost(9999, 1);
-- in a trigger: a reward above the cap is refused with the cap named
CREATE TABLE reward (customer_id bigint, cost numeric);
CREATE FUNCTION reward_check() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	PERFORM wam.check_cost(NEW.customer_id, NEW.cost);
	RETURN NEW;
END
$$;
CREATE TRIGGER reward_check BEFORE INSERT ON reward FOR EACH ROW EXECUTE FUNCTION reward_check();
INSERT INTO reward VALUES (1, 1.50);
INSERT INTO reward VALUES (1, 150);
SELECT count(*) FROM reward;

-- degenerate bases: no repeat buyers, a single customer
TRUNCATE customer_order;
SELECT count(record_order(g, 10, date_trunc('day', now()) - g * interval '1 day')) FROM generate_series(1, 400) g;
SELECT * FROM fit_clv();
SELECT configure_rfm('clv_min_repeat_buyers', '1');
SELECT * FROM fit_clv();
SELECT model, parameter, pg_temp.sig(value) AS value FROM clv_parameter WHERE parameter = 'r';
SELECT configure_rfm('clv_min_customers', '2');
SELECT count(record_order(1, 10, date_trunc('day', now()) - g * interval '1 day')) FROM generate_series(2, 3) g;
TRUNCATE customer_order;
SELECT record_order(1, 10, date_trunc('day', now()) - interval '5 days') > 0 AS one_customer;
SELECT * FROM fit_clv();
SELECT count(record_order(2, 20, date_trunc('day', now()) - g * interval '1 day')) FROM generate_series(1, 3) g;
-- maximum likelihood sends a to 0 and b elsewhere (degenerate); penalized, a runs to 0
-- alone: no drop-out seen, the NBD limit of the model (P(alive) = 1)
SELECT * FROM fit_clv(penalizer => 0);
SELECT model, parameter, pg_temp.shown(parameter, value) AS value, penalizer FROM fit_clv();
SELECT round(p_alive(2)::numeric, 4) AS p_alive, round(expected_purchases(2, '30 days')::numeric, 3) AS e_30_days;

-- a small, atypical base (36 customers, first orders 20-199 days ago, 17 bought again
-- and none seems to have stopped): the maximum-likelihood BG/NBD fit does not converge
-- (r and alpha run off along a ridge); a penalized fit (L2 on the parameters, lifetimes'
-- penalizer_coef) is usable and labelled as such
TRUNCATE customer_order;
CREATE TEMP TABLE small AS
SELECT i, 20 + floor(180 * pg_temp.u(i, 2))::integer AS age, floor(2.2 * pg_temp.u(i, 102) ^ 2)::integer AS x,
	   floor(10 * pg_temp.u(i, 202))::integer AS quiet
FROM generate_series(1, 36) i;
SELECT count(*) AS customers, count(*) FILTER (WHERE x > 0) AS repeat_buyers, sum(x) AS repeat_days FROM small;
-- first order age days ago; x repeat days, the last one quiet days before today
SELECT count(record_order(i, 20 + i, date_trunc('day', now()) - age * interval '1 day')) AS first_orders FROM small;
SELECT count(record_order(i, 30 + k * 10 + i % 7,
						  date_trunc('day', now()) - (quiet + (age - quiet) * (x - k) / (x + 1)) * interval '1 day'))
	AS repeat_orders
FROM small, generate_series(1, 2) k WHERE k <= x;
SELECT count(*) AS customers, sum(frequency) AS repeat_days FROM clv_summary();
SET client_min_messages = notice;
-- plain maximum likelihood refuses, saying what helps
SELECT * FROM fit_clv(penalizer => 0);
-- the default (NULL) falls back to the smallest penalizer that gives a usable fit
SELECT model, parameter, pg_temp.shown(parameter, value) AS value, penalizer FROM fit_clv() WHERE model = 'bgnbd';
RESET client_min_messages;
-- Gamma-Gamma needs no penalty here; its parameters lie on a ridge (p large, v small:
-- nearly every repeat buyer has one repeat day), along which the mean spend p v / (q - 1) is
-- determined
SELECT round((gammagamma[1] * gammagamma[3] / (gammagamma[2] - 1))::numeric, 2) AS mean_spend FROM clv_fit;
SELECT bgnbd_penalizer, gammagamma_penalizer, customers, repeat_buyers,
	   round(bgnbd_log_likelihood::numeric, 2) AS bgnbd_ll FROM clv_fit;
-- finite parameters; sane predictions: P(alive) in [0, 1], and the base's expected
-- purchases in a year near its observed repeat rate
SELECT bool_and(value > 0 AND value < 'Infinity') AS finite FROM clv_parameter;
SELECT i AS customer, d.method, d.frequency, d."T", round(d.p_alive::numeric, 4) AS p_alive,
	   round(d.expected_purchases::numeric, 3) AS e_1_year, d.spend_per_purchase, d.clv
FROM small, clv_detail(i) d WHERE i IN (1, 2, 3, 5, 9) ORDER BY i;
SELECT round(sum(expected_purchases(i, '1 year'))::numeric, 1) AS expected_next_year,
	   round((SELECT sum(frequency) / sum("T") * 365 * count(*) FROM clv_summary())::numeric, 1) AS at_observed_rate,
	   bool_and(p_alive(i) BETWEEN 0 AND 1) AS p_alive_in_range
FROM small;
SELECT sum(expected_purchases(i, '1 year')) / (SELECT sum(frequency) / sum("T") * 365 * count(*) FROM clv_summary())
	   BETWEEN 0.5 AND 2 AS within_factor_2_of_observed
FROM small;
-- the same penalizer given explicitly: the same fit, without a notice
SET client_min_messages = notice;
SELECT model, parameter, pg_temp.shown(parameter, value) AS value, penalizer FROM fit_clv(penalizer => 0.001) WHERE model = 'bgnbd';
RESET client_min_messages;
-- too strong a penalty shrinks the Gamma-Gamma q below 1
SELECT * FROM fit_clv(penalizer => 0.1);
-- bad penalizers
SELECT * FROM fit_clv(penalizer => -0.01);
SELECT * FROM fit_clv(penalizer => 'NaN');
SELECT * FROM fit_clv(penalizer => 'Infinity');
SELECT bgnbd_fit(f, r, t, p) FROM (VALUES (1, 2, 3, 0.1), (1, 2, 4, 0.2)) v(f, r, t, p);
SELECT bgnbd_fit(f, r, t, p) FROM (VALUES (1, 2, 3, 0.1), (1, 2, 4, NULL)) v(f, r, t, p);
SELECT gammagamma_fit(f, m, p) FROM (VALUES (1, 2, -1)) v(f, m, p);
DROP TABLE small;

-- roles: readers predict, only admins fit
SET ROLE wam_reader;
SELECT clv(1) IS NOT NULL AS reader_clv, cost_cap(1) IS NOT NULL AS reader_cap;
SELECT count(*) FROM clv_summary();
SELECT * FROM fit_clv();
RESET ROLE;
SET ROLE wam_operator;
SELECT * FROM fit_clv();
RESET ROLE;
DROP TABLE reward;
DROP FUNCTION reward_check();
