-- src/sql/ab_test.sql: A/B tests of campaigns: variants, test groups and a
-- holdout drawn by a keyed hash, the decision by statistics at the end of the
-- test window (src/ab_stats.c), the rollout of the winner to the rest, and
-- the report per variant.

-- statistics

CREATE FUNCTION wam_internal.normal_cdf(z float8) RETURNS float8
	AS 'MODULE_PATHNAME', 'wam_normal_cdf' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION wam_internal.normal_cdf(float8) IS 'internal: the standard normal distribution function';
REVOKE EXECUTE ON FUNCTION wam_internal.normal_cdf(float8) FROM PUBLIC;

CREATE FUNCTION wam_internal.normal_quantile(p float8) RETURNS float8
	AS 'MODULE_PATHNAME', 'wam_normal_quantile' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION wam_internal.normal_quantile(float8) IS 'internal: the quantile of the standard normal distribution (0 < p < 1)';
REVOKE EXECUTE ON FUNCTION wam_internal.normal_quantile(float8) FROM PUBLIC;

CREATE FUNCTION wam_internal.chi2_sf(x float8, df integer) RETURNS float8
	AS 'MODULE_PATHNAME', 'wam_chi2_sf' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION wam_internal.chi2_sf(float8, integer) IS 'internal: P(X > x) for a chi-squared law with df degrees of freedom';
REVOKE EXECUTE ON FUNCTION wam_internal.chi2_sf(float8, integer) FROM PUBLIC;

CREATE FUNCTION wam_internal.ab_hash(key bigint, customer bigint) RETURNS bigint
	AS 'MODULE_PATHNAME', 'wam_ab_hash' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION wam_internal.ab_hash(bigint, bigint) IS 'internal: a keyed hash of a customer id, the same on every machine (arms, test groups, holdouts)';
REVOKE EXECUTE ON FUNCTION wam_internal.ab_hash(bigint, bigint) FROM PUBLIC;

CREATE FUNCTION wam.lift_p_value(x_best bigint, n_best bigint, x_other bigint, n_other bigint,
								 margin float8 DEFAULT 0.15) RETURNS float8
	AS 'MODULE_PATHNAME', 'wam_lift_p_value' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION wam.lift_p_value(bigint, bigint, bigint, bigint, float8) IS 'one-sided p-value that a rate of x_best in n_best is more than (1 + margin) times x_other in n_other (Wald test on Agresti-Caffo adjusted rates)';
REVOKE EXECUTE ON FUNCTION wam.lift_p_value(bigint, bigint, bigint, bigint, float8) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.lift_p_value(bigint, bigint, bigint, bigint, float8) TO wam_reader;

CREATE FUNCTION wam.test_sample_size(baseline float8, lift float8 DEFAULT 0.15, alpha float8 DEFAULT 0.05,
									 power float8 DEFAULT 0.8) RETURNS integer
	AS 'MODULE_PATHNAME', 'wam_test_sample_size' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION wam.test_sample_size(float8, float8, float8, float8) IS 'recipients per arm needed to tell a rate from one lift higher: two-sided test at alpha with the given power';
REVOKE EXECUTE ON FUNCTION wam.test_sample_size(float8, float8, float8, float8) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.test_sample_size(float8, float8, float8, float8) TO wam_reader;
