-- Student's t law and Welch's t-test (src/ab_stats.c), checked against SciPy
-- 1.10.1 (Debian python3-scipy): scipy.stats.t.cdf, scipy.stats.t.ppf and
-- scipy.stats.ttest_ind_from_stats(..., equal_var=False), the margin test as
-- ttest_ind_from_stats(mean_a, sd_a, n_a, (1 + m) mean_b, (1 + m) sd_b, n_b,
-- equal_var=False, alternative='greater'); the values below are SciPy's,
-- printed with repr().  Each check: within 1e-8 of SciPy (relative above 1).
SET search_path = public, wam;
\set VERBOSITY terse

SELECT x, df, round(wam_internal.student_t_cdf(x, df)::numeric, 10) AS cdf,
	   abs(wam_internal.student_t_cdf(x, df) - scipy) <= 1e-8 * greatest(1, abs(scipy)) AS as_scipy
FROM (VALUES (2.0, 5.0, 0.9490302605850709), (-1.5, 3.7, 0.10679908460100665), (10, 1, 0.9682744825694464),
			 (0.3, 1000, 0.6178802479163779), (-8, 12, 1.8799491123751274e-06), (0, 7, 0.5),
			 (1.96, 1000000.0, 0.9750019662073651), (-40, 3, 1.719034039457927e-05),
			 (2.5, 0.5, 0.7995147354733534)) v(x, df, scipy);

SELECT p, df, round(wam_internal.student_t_quantile(p, df)::numeric, 6) AS quantile,
	   abs(wam_internal.student_t_quantile(p, df) - scipy) <= 1e-8 * greatest(1, abs(scipy)) AS as_scipy
FROM (VALUES (0.975, 4.0, 2.7764451051977987), (0.975, 29.0, 2.045229642132703),
			 (0.999999, 1.0, 318309.8861736347), (0.025, 2.5, -3.574654842011878),
			 (0.6, 100, 0.25402218245699415), (0.5, 9, 6.824573415719474e-17), (0.95, 2, 2.919985580355516),
			 (1e-08, 30, -7.556534651907611)) v(p, df, scipy);

-- Welch: t, df, one-sided p (mean a > (1 + margin) mean b), two-sided p;
-- identical arms (t = 0, p = 0.5 and 1), tiny arms (2 and 3), p near 0
SELECT v.case, round(w.t::numeric, 6) AS t, round(w.df::numeric, 4) AS df, round(w.p_greater::numeric, 8) AS p_greater,
	   round(w.p_two_sided::numeric, 8) AS p_two_sided,
	   abs(w.t - v.t) <= 1e-8 * greatest(1, abs(v.t)) AND abs(w.df - v.df) <= 1e-8 * greatest(1, abs(v.df))
	   AND abs(w.p_greater - v.pg) <= 1e-8 AND abs(w.p_two_sided - v.p2) <= 1e-8 AS as_scipy
FROM (VALUES ('110 vs 100', 110, 30, 40, 100, 25, 50, 0, 1.6903085094570331, 75.75970873786409, 0.047539931698247814, 0.09507986339649563),
			 ('130 vs 1.15 x 100', 130, 30, 40, 100, 25, 50, 0.15, 2.4009605763842714, 82.09084832029522, 0.00930617866584315, 0.0186123573316863),
			 ('identical', 100, 20, 30, 100, 20, 30, 0, 0.0, 58.0, 0.5, 1.0),
			 ('n = 2 and 3', 50, 10, 2, 40, 5, 3, 0, 1.3093073414159544, 1.3424657534246576, 0.18535844519251687, 0.37071689038503375),
			 ('p near 0', 100, 1, 1000, 90, 1, 1000, 0, 223.60679774997897, 1998.0000000000002, 0.0, 0.0),
			 ('120 vs 1.15 x 100', 120, 40, 200, 100, 40, 200, 0.15, 1.159971047483981, 390.4710088418315, 0.12338468001001274, 0.24676936002002547))
	 v("case", ma, sa, na, mb, sb, nb, m, t, df, pg, p2),
	 LATERAL welch_test(v.ma, v.sa, v.na, v.mb, v.sb, v.nb, v.m) w;

-- edge cases: an arm of 1 (or 0) has no deviation: nothing to test; no
-- spread at all: the means are equal (p 0.5 / 1) or apart (0 / 0); NULL in, NULL out
SELECT * FROM welch_test(100, 0, 1, 90, 10, 30);
SELECT * FROM welch_test(100, 10, 30, 90, 0, 0);
SELECT * FROM welch_test(100, 0, 5, 100, 0, 5);
SELECT * FROM welch_test(100, 0, 5, 90, 0, 5);
SELECT * FROM welch_test(90, 0, 5, 100, 0, 5);
SELECT round(t::numeric, 6) AS t, df, round(p_greater::numeric, 8) AS p_greater, round(p_two_sided::numeric, 8) AS p_two_sided FROM welch_test(100, 0, 5, 90, 3, 5);
SELECT * FROM welch_test(NULL, 1, 5, 90, 3, 5);
SELECT wam_internal.student_t_cdf(NULL, 3), wam_internal.student_t_cdf('Infinity', 3), wam_internal.student_t_cdf('-Infinity', 3);

-- bad input
SELECT wam_internal.student_t_cdf(1, 0);
SELECT wam_internal.student_t_cdf(1, -2);
SELECT wam_internal.student_t_cdf(1, 'NaN');
SELECT wam_internal.student_t_cdf(1, 'Infinity');
SELECT wam_internal.student_t_cdf('NaN', 3);
SELECT wam_internal.student_t_quantile(0, 3);
SELECT wam_internal.student_t_quantile(1, 3);
SELECT wam_internal.student_t_quantile(0.5, 0);
SELECT * FROM welch_test(100, 10, -1, 90, 10, 30);
SELECT * FROM welch_test(100, -10, 5, 90, 10, 30);
SELECT * FROM welch_test('Infinity', 10, 5, 90, 10, 30);
SELECT * FROM welch_test(100, 'NaN', 5, 90, 10, 30);
SELECT * FROM welch_test(100, 10, 5, 90, 10, 30, -0.1);
SELECT * FROM welch_test(100, 10, 5, 90, 10, 30, 11);

-- roles: a reader may run the test; the t law itself is internal
SET ROLE wam_reader;
SELECT round(p_two_sided::numeric, 4) FROM welch_test(110, 30, 40, 100, 25, 50);
SELECT wam_internal.student_t_cdf(1, 3);
RESET ROLE;
