-- the statistics of A/B tests against values computed independently with
-- SciPy 1.10.1 (scipy.stats.norm.cdf / norm.ppf / chi2.sf, and the formulas
-- of src/ab_stats.c evaluated with them in Python): each row prints SciPy's
-- value and whether ours agrees to 1e-9 relative (1e-300 absolute near 0)
SET extra_float_digits = 0;
CREATE FUNCTION pg_temp.near(got float8, want float8) RETURNS boolean
LANGUAGE sql RETURN CASE WHEN want = 0 THEN abs(got) < 1e-300 ELSE abs(got / want - 1) < 1e-9 END;

SELECT z, want, pg_temp.near(wam_internal.normal_cdf(z), want) AS agrees
FROM (VALUES (-40::float8, 0::float8), (-8.5, 9.47953482220325e-18), (-1.959963984540054, 0.025), (0, 0.5),
			 (1, 0.8413447460685429), (1.644853626951472, 0.95), (8, 0.9999999999999993)) v(z, want);
SELECT wam_internal.normal_cdf('NaN') AS nan, wam_internal.normal_cdf('-Infinity') AS minus_inf,
	   wam_internal.normal_cdf('Infinity') AS plus_inf;

SELECT p, want, pg_temp.near(wam_internal.normal_quantile(p), want) AS agrees
FROM (VALUES (1e-300::float8, -37.0470962993612::float8), (1e-10, -6.361340902404056), (0.025, -1.9599639845400545),
			 (0.8, 0.8416212335729143), (0.975, 1.959963984540054), (0.9999999999, 6.361340889697422)) v(p, want);
SELECT abs(wam_internal.normal_quantile(0.5)) < 1e-15 AS median_is_zero;
\set VERBOSITY sqlstate
SELECT wam_internal.normal_quantile(0);
SELECT wam_internal.normal_quantile(1);
SELECT wam_internal.normal_quantile(-0.1);
SELECT wam_internal.normal_quantile('NaN');
\set VERBOSITY default
SELECT wam_internal.normal_quantile(1.5);

SELECT x, df, want, pg_temp.near(wam_internal.chi2_sf(x, df), want) AS agrees
FROM (VALUES (0::float8, 1, 1.0::float8), (3.841458820694124, 1, 0.04999999999999989), (1e-10, 1, 0.9999920211543921),
			 (10.827566170662733, 1, 0.0010000000000000007), (5.991464547107979, 2, 0.05000000000000007),
			 (100, 3, 1.5541594313896026e-21), (0.5, 10, 0.999993388289439), (30, 10, 0.000856641210775301),
			 (1000, 900, 0.010994608942135844), (2000, 1000, 4.1436785914539184e-69)) v(x, df, want);
SELECT wam_internal.chi2_sf(-1, 3) AS negative, wam_internal.chi2_sf('Infinity', 3) AS infinite;
\set VERBOSITY sqlstate
SELECT wam_internal.chi2_sf(1, 0);
SELECT wam_internal.chi2_sf(1, 1000001);
SELECT wam_internal.chi2_sf('NaN', 1);
\set VERBOSITY default

-- the margin test: a true 30 % lift (60 % -> 78 %) is clear, exactly 15 % is a
-- coin toss, identical arms are far from it; zero successes, all successes,
-- empty and tiny arms stay finite
SELECT xb, nb, xo, no, want, pg_temp.near(wam.lift_p_value(xb, nb, xo, no), want) AS agrees
FROM (VALUES (780::bigint, 1000::bigint, 600::bigint, 1000::bigint, 2.4791423659971122e-05::float8),
			 (690, 1000, 600, 1000, 0.5025930692547624), (600, 1000, 600, 1000, 0.9999317090897448),
			 (0, 1000, 0, 1000, 0.5392228195329605), (0, 0, 0, 0, 0.5553525730653266),
			 (3, 5, 1, 5, 0.18525069805787803), (0, 1000, 1000, 1000, 1.0)) v(xb, nb, xo, no, want);
SELECT wam.lift_p_value(1000, 1000, 0, 1000) AS all_against_none;
SELECT wam.lift_p_value(690, 1000, 600, 1000, 0) < wam.lift_p_value(690, 1000, 600, 1000) AS margin_zero_is_easier;
\set VERBOSITY sqlstate
SELECT wam.lift_p_value(-1, 10, 0, 10);
SELECT wam.lift_p_value(11, 10, 0, 10);
SELECT wam.lift_p_value(1, 10, 0, -1);
SELECT wam.lift_p_value(1, 10, 0, 10, -0.01);
SELECT wam.lift_p_value(1, 10, 0, 10, 'NaN');
\set VERBOSITY default
SELECT wam.lift_p_value(11, 10, 0, 10);

-- sample sizes: the users' two examples (read 60 % -> 69 %: about 440 per arm;
-- reply 5 % -> 5.75 %: about 14,200), and the formula elsewhere
SELECT baseline, lift, alpha, power, wam.test_sample_size(baseline, lift, alpha, power) AS per_arm, want
FROM (VALUES (0.6::float8, 0.15::float8, 0.05::float8, 0.8::float8, 440), (0.05, 0.15, 0.05, 0.8, 14190),
			 (0.02, 0.15, 0.05, 0.8, 36691), (0.6, 0.3, 0.05, 0.8, 100), (0.5, 0.15, 0.01, 0.9, 1308)) v(baseline, lift, alpha, power, want);
SELECT wam.test_sample_size(0.6) AS read_default, wam.test_sample_size(0.05) AS reply_default;
\set VERBOSITY sqlstate
SELECT wam.test_sample_size(0, 0.15);
SELECT wam.test_sample_size(1, 0.15);
SELECT wam.test_sample_size(0.9, 0.12);
SELECT wam.test_sample_size(0.5, 0);
SELECT wam.test_sample_size(0.5, 0.15, 0, 0.8);
SELECT wam.test_sample_size(0.5, 0.15, 0.05, 1);
SELECT wam.test_sample_size(1e-9, 1e-6);
\set VERBOSITY default
SELECT wam.test_sample_size(0.9, 0.12);

-- the keyed hash: fixed values (the same on every machine: Python computes the
-- same three with 64-bit arithmetic), non-negative,
-- different keys give different arms
SELECT wam_internal.ab_hash(0, 0) AS h00, wam_internal.ab_hash(42, 1) AS h42_1, wam_internal.ab_hash(-1, 9223372036854775807) AS hmax;
SELECT count(*) FILTER (WHERE wam_internal.ab_hash(7, g) < 0) AS negative,
	   count(*) FILTER (WHERE wam_internal.ab_hash(7, g) % 2 <> wam_internal.ab_hash(8, g) % 2) > 4000 AS keys_differ,
	   abs(count(*) FILTER (WHERE wam_internal.ab_hash(7, g) % 2 = 0) - 5000) < 200 AS halves
FROM generate_series(1, 10000) g;

-- alerts: raised into the table (the channel wam_alerts is tested by a TAP
-- script: psql prints the sender's pid); acknowledged once
SELECT wam_internal.raise_alert('test alert', 'campaign "x"', 'something to look at', '{"n": 1}') AS a \gset
SELECT kind, subject, message, detail, acknowledged_at IS NULL AS open FROM wam.alert WHERE alert_id = :a;
SELECT kind, subject FROM wam.open_alert WHERE alert_id = :a;
SELECT wam.acknowledge_alert(:a) AS first, wam.acknowledge_alert(:a) AS again;
SELECT count(*) AS still_open FROM wam.open_alert WHERE alert_id = :a;
\set VERBOSITY sqlstate
SELECT wam.acknowledge_alert(NULL);
SELECT wam.acknowledge_alert(-1);
\set VERBOSITY default

-- sample-ratio test (Pearson's chi-squared of sent against queued shares):
-- 1000/1000 queued, 1000/900 sent: x = 2 * 50^2 / 950 = 5.263, df 1, p = erfc(sqrt(x/2)) = 0.021781;
-- 1000/1000/500 queued, 1000/1000/300 sent: x = 69.565, df 2, p = exp(-x/2) = 7.8362e-16;
-- an arm with nothing queued is left out (df 1); nothing sent, one arm, NULL: NULL
SELECT round(wam_internal.sample_ratio_p('{1000,1000}', '{1000,900}')::numeric, 6) AS two_arms,
	   to_char(wam_internal.sample_ratio_p('{1000,1000,500}', '{1000,1000,300}'), '9.9999EEEE') AS three_arms,
	   round(wam_internal.sample_ratio_p('{1000,0,1000}', '{1000,0,900}')::numeric, 6) AS empty_arm,
	   round(wam_internal.sample_ratio_p('{1000,1000}', '{500,500}')::numeric, 6) AS equal,
	   wam_internal.sample_ratio_p('{1000,1000}', '{0,0}') AS nothing_sent,
	   wam_internal.sample_ratio_p('{1000}', '{900}') AS one_arm,
	   wam_internal.sample_ratio_p(NULL, '{1}') AS null_arg;
