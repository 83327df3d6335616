/*-------------------------------------------------------------------------
 *
 * ab_stats.c
 *	  The statistics of A/B tests (src/sql/ab_test.sql).
 *
 *	  wam_internal.normal_cdf(z), wam_internal.normal_quantile(p)
 *	  wam_internal.chi2_sf(x, df)          upper tail of the chi-squared law
 *	  wam.lift_p_value(x_best, n_best, x_other, n_other, margin)
 *	  wam.test_sample_size(baseline, lift, alpha, power)
 *	  wam_internal.ab_hash(key, customer)  the arm and group hashes
 *	  wam_internal.student_t_cdf(t, df), wam_internal.student_t_quantile(p, df)
 *	  wam.welch_test(mean, sd, n, mean, sd, n, margin)  Welch's t-test
 *
 * SQL has no error function, and the decision needs tail probabilities
 * that are exact to many digits near 0 and 1, so these are computed here
 * from the C library's erfc and lgamma.  Everything else about a test
 * (counting, strata, the decision) is SQL.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "access/htup_details.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/builtins.h"

PG_FUNCTION_INFO_V1(wam_normal_cdf);
PG_FUNCTION_INFO_V1(wam_normal_quantile);
PG_FUNCTION_INFO_V1(wam_chi2_sf);
PG_FUNCTION_INFO_V1(wam_lift_p_value);
PG_FUNCTION_INFO_V1(wam_test_sample_size);
PG_FUNCTION_INFO_V1(wam_ab_hash);
PG_FUNCTION_INFO_V1(wam_student_t_cdf);
PG_FUNCTION_INFO_V1(wam_student_t_quantile);
PG_FUNCTION_INFO_V1(wam_welch_test);

static double
wam_ncdf(double z)
{
	return 0.5 * erfc(-z / M_SQRT2);
}

/*
 * The quantile: a start within 5e-4 (Abramowitz and Stegun 26.2.23), then
 * Halley steps on the exact CDF, which triple the correct digits each.
 */
static double
wam_nquantile(double p)
{
	double		q = p < 0.5 ? p : 1.0 - p;
	double		t = sqrt(-2.0 * log(q));
	double		x = -(t - (2.515517 + 0.802853 * t + 0.010328 * t * t) /
					  (1.0 + 1.432788 * t + 0.189269 * t * t + 0.001308 * t * t * t));
	int			i;

	if (p >= 0.5)
		x = -x;
	for (i = 0; i < 4; i++)
	{
		double		e = wam_ncdf(x) - p;
		double		u = e * sqrt(2.0 * M_PI) * exp(x * x / 2.0);

		if (!isfinite(u))
			break;
		x = x - u / (1.0 + x * u / 2.0);
	}
	return x;
}

/*
 * Q(a, x), the regularized upper incomplete gamma function: by its series
 * below a + 1, by its continued fraction (modified Lentz) above, where each
 * converges fast.
 */
static double
wam_gamma_q(double a, double x)
{
	double		lg = lgamma(a);
	int			i;

	if (x <= 0.0)
		return 1.0;
	if (x < a + 1.0)
	{
		double		sum = 1.0 / a;
		double		term = sum;

		for (i = 1; i < 10000; i++)
		{
			term *= x / (a + i);
			sum += term;
			if (fabs(term) < fabs(sum) * 1e-16)
				break;
		}
		return 1.0 - sum * exp(-x + a * log(x) - lg);
	}
	else
	{
		double		tiny = 1e-300;
		double		b = x + 1.0 - a;
		double		c = 1.0 / tiny;
		double		d = 1.0 / b;
		double		h = d;

		for (i = 1; i < 10000; i++)
		{
			double		an = -i * (i - a);
			double		del;

			b += 2.0;
			d = an * d + b;
			if (fabs(d) < tiny)
				d = tiny;
			c = b + an / c;
			if (fabs(c) < tiny)
				c = tiny;
			d = 1.0 / d;
			del = d * c;
			h *= del;
			if (fabs(del - 1.0) < 1e-16)
				break;
		}
		return exp(-x + a * log(x) - lg) * h;
	}
}

static void
wam_check_probability(double p, const char *what, bool open)
{
	if (isnan(p) || p < 0.0 || p > 1.0 || (open && (p == 0.0 || p == 1.0)))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be %s, not %g", what,
						open ? "between 0 and 1 (exclusive)" : "from 0 to 1", p)));
}

Datum
wam_normal_cdf(PG_FUNCTION_ARGS)
{
	double		z = PG_GETARG_FLOAT8(0);

	if (isnan(z))
		PG_RETURN_FLOAT8(z);
	PG_RETURN_FLOAT8(wam_ncdf(z));
}

Datum
wam_normal_quantile(PG_FUNCTION_ARGS)
{
	double		p = PG_GETARG_FLOAT8(0);

	wam_check_probability(p, "a probability", true);
	PG_RETURN_FLOAT8(wam_nquantile(p));
}

Datum
wam_chi2_sf(PG_FUNCTION_ARGS)
{
	double		x = PG_GETARG_FLOAT8(0);
	int32		df = PG_GETARG_INT32(1);

	if (df < 1 || df > 1000000)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("degrees of freedom must be from 1 to 1000000, not %d", df)));
	if (isnan(x))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a chi-squared statistic must be a number")));
	if (isinf(x))
		PG_RETURN_FLOAT8(x > 0 ? 0.0 : 1.0);
	PG_RETURN_FLOAT8(fmax(0.0, fmin(1.0, wam_gamma_q(df / 2.0, x / 2.0))));
}

static void
wam_check_counts(int64 x, int64 n, const char *arm)
{
	if (n < 0 || x < 0 || x > n)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the %s arm's count must be from 0 to its size, and its size at least 0 "
						"(got " INT64_FORMAT " of " INT64_FORMAT ")", arm, x, n)));
}

/*
 * One-sided p-value of "the best arm's rate is more than (1 + margin) times
 * the other's": a Wald test of p_best - (1 + margin) p_other > 0 on
 * Agresti-Caffo adjusted rates ((x + 1) / (n + 2)), which keeps the variance
 * away from zero when an arm has no successes (or only successes) and holds
 * its level for small arms.
 */
Datum
wam_lift_p_value(PG_FUNCTION_ARGS)
{
	int64		xb = PG_GETARG_INT64(0);
	int64		nb = PG_GETARG_INT64(1);
	int64		xo = PG_GETARG_INT64(2);
	int64		no = PG_GETARG_INT64(3);
	double		margin = PG_GETARG_FLOAT8(4);
	double		m = 1.0 + margin;
	double		pb,
				po,
				se;

	wam_check_counts(xb, nb, "best");
	wam_check_counts(xo, no, "other");
	if (isnan(margin) || margin < 0.0 || margin > 10.0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the margin must be a relative lift from 0 to 10, not %g", margin)));
	pb = (xb + 1.0) / (nb + 2.0);
	po = (xo + 1.0) / (no + 2.0);
	se = sqrt(pb * (1.0 - pb) / (nb + 2.0) + m * m * po * (1.0 - po) / (no + 2.0));
	PG_RETURN_FLOAT8(wam_ncdf(-(pb - m * po) / se));
}

/*
 * Recipients per arm to tell a rate from one `lift` higher (two-sided test
 * at alpha, with the given power), the textbook formula for two proportions:
 * n = (z(1 - alpha/2) + z(power))^2 (p1 q1 + p2 q2) / (p2 - p1)^2.
 */
Datum
wam_test_sample_size(PG_FUNCTION_ARGS)
{
	double		p1 = PG_GETARG_FLOAT8(0);
	double		lift = PG_GETARG_FLOAT8(1);
	double		alpha = PG_GETARG_FLOAT8(2);
	double		power = PG_GETARG_FLOAT8(3);
	double		p2,
				z,
				n;

	wam_check_probability(p1, "the baseline rate", true);
	wam_check_probability(alpha, "alpha", true);
	wam_check_probability(power, "the power", true);
	if (isnan(lift) || lift <= 0.0 || p1 * (1.0 + lift) >= 1.0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the lift must be above 0 and keep the rate below 1, not %g on %g", lift, p1)));
	p2 = p1 * (1.0 + lift);
	z = wam_nquantile(1.0 - alpha / 2.0) + wam_nquantile(power);
	n = ceil(z * z * (p1 * (1.0 - p1) + p2 * (1.0 - p2)) / ((p2 - p1) * (p2 - p1)) - 1e-9);
	if (n > PG_INT32_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("a test of a lift of %g on %g needs more than %d recipients per arm",
						lift, p1, PG_INT32_MAX)));
	PG_RETURN_INT32((int32) n);
}

/*
 * A keyed 64-bit hash of a customer id (the SplitMix64 finaliser over the
 * key and the id): the same on every machine and after a restart, unlike
 * PostgreSQL's hash functions, which may change between versions.  Returned
 * as a non-negative bigint.
 */
Datum
wam_ab_hash(PG_FUNCTION_ARGS)
{
	uint64		z = (uint64) PG_GETARG_INT64(0) * UINT64CONST(0x9E3779B97F4A7C15) ^ (uint64) PG_GETARG_INT64(1);

	z += UINT64CONST(0x9E3779B97F4A7C15);
	z = (z ^ (z >> 30)) * UINT64CONST(0xBF58476D1CE4E5B9);
	z = (z ^ (z >> 27)) * UINT64CONST(0x94D049BB133111EB);
	z ^= z >> 31;
	PG_RETURN_INT64((int64) (z >> 1));
}

/*
 * The continued fraction of the regularized incomplete beta function
 * I_x(a, b) (modified Lentz), valid for x < (a + 1) / (a + b + 2).
 */
static double
wam_beta_cf(double a, double b, double x)
{
	double		tiny = 1e-300;
	double		c = 1.0;
	double		d = 1.0 - (a + b) * x / (a + 1.0);
	double		h;
	int			m;

	if (fabs(d) < tiny)
		d = tiny;
	d = 1.0 / d;
	h = d;
	for (m = 1; m < 10000; m++)
	{
		double		m2 = 2.0 * m;
		double		aa = m * (b - m) * x / ((a + m2 - 1.0) * (a + m2));
		double		del;

		d = 1.0 + aa * d;
		if (fabs(d) < tiny)
			d = tiny;
		c = 1.0 + aa / c;
		if (fabs(c) < tiny)
			c = tiny;
		d = 1.0 / d;
		h *= d * c;
		aa = -(a + m) * (a + b + m) * x / ((a + m2) * (a + m2 + 1.0));
		d = 1.0 + aa * d;
		if (fabs(d) < tiny)
			d = tiny;
		c = 1.0 + aa / c;
		if (fabs(c) < tiny)
			c = tiny;
		d = 1.0 / d;
		del = d * c;
		h *= del;
		if (fabs(del - 1.0) < 1e-16)
			break;
	}
	return h;
}

/* I_x(a, b), by the continued fraction on the side where it converges */
static double
wam_beta_inc(double a, double b, double x)
{
	double		front;

	if (x <= 0.0)
		return 0.0;
	if (x >= 1.0)
		return 1.0;
	front = exp(lgamma(a + b) - lgamma(a) - lgamma(b) + a * log(x) + b * log1p(-x));
	if (x < (a + 1.0) / (a + b + 2.0))
		return front * wam_beta_cf(a, b, x) / a;
	return 1.0 - front * wam_beta_cf(b, a, 1.0 - x) / b;
}

/*
 * P(T <= t) for Student's t law with df degrees of freedom (df need not be
 * whole: Welch's df is not): the tail is I_x(df/2, 1/2) / 2 with
 * x = df / (df + t^2), computed directly so that tails far from the centre
 * keep their digits.
 */
static double
wam_tcdf(double t, double df)
{
	double		tail;

	if (isinf(t))
		return t > 0 ? 1.0 : 0.0;
	if (df > 1e10)
		return wam_ncdf(t);
	tail = 0.5 * wam_beta_inc(df / 2.0, 0.5, df / (df + t * t));
	return t > 0 ? 1.0 - tail : tail;
}

/* the quantile: exact for 1 and 2 degrees of freedom, else by bisection */
static double
wam_tquantile(double p, double df)
{
	double		lo,
				hi;
	int			i;

	if (df == 1.0)
		return tan(M_PI * (p - 0.5));
	if (df == 2.0)
		return (2.0 * p - 1.0) / sqrt(2.0 * p * (1.0 - p));
	if (p < 0.5)
		return -wam_tquantile(1.0 - p, df);
	if (p == 0.5)
		return 0.0;
	lo = 0.0;
	hi = fmax(1.0, 2.0 * wam_nquantile(p));
	while (wam_tcdf(hi, df) < p && hi < 1e300)
		hi *= 2.0;
	for (i = 0; i < 2000 && hi - lo > 1e-15 * hi; i++)
	{
		double		mid = (lo + hi) / 2.0;

		if (wam_tcdf(mid, df) < p)
			lo = mid;
		else
			hi = mid;
	}
	return (lo + hi) / 2.0;
}

static void
wam_check_df(double df)
{
	if (isnan(df) || df <= 0.0 || isinf(df))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("degrees of freedom must be a positive number, not %g", df)));
}

Datum
wam_student_t_cdf(PG_FUNCTION_ARGS)
{
	double		t = PG_GETARG_FLOAT8(0);
	double		df = PG_GETARG_FLOAT8(1);

	wam_check_df(df);
	if (isnan(t))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a t statistic must be a number")));
	PG_RETURN_FLOAT8(fmax(0.0, fmin(1.0, wam_tcdf(t, df))));
}

Datum
wam_student_t_quantile(PG_FUNCTION_ARGS)
{
	double		p = PG_GETARG_FLOAT8(0);
	double		df = PG_GETARG_FLOAT8(1);

	wam_check_probability(p, "a probability", true);
	wam_check_df(df);
	PG_RETURN_FLOAT8(wam_tquantile(p, df));
}

/*
 * Welch's t-test of "mean a is more than (1 + margin) times mean b" from
 * each arm's mean, sample standard deviation (n - 1 in the denominator) and
 * size: b is scaled by 1 + margin (its mean and its deviation), then
 * t = (mean_a - (1 + m) mean_b) / sqrt(va + vb), va = sd_a^2 / n_a,
 * vb = (1 + m)^2 sd_b^2 / n_b, with the Welch-Satterthwaite degrees of freedom
 * df = (va + vb)^2 / (va^2 / (n_a - 1) + vb^2 / (n_b - 1)).  Returns t, df,
 * the one-sided p-value P(T >= t) and, for margin 0, the two-sided one of
 * "the means differ".  An arm of fewer than two has no deviation: every
 * output is NULL.  Two arms without any spread (sd 0 both): t and df are
 * NULL, the p-values 0 or 1 as the means are apart or equal (0.5 one-sided
 * when equal).
 */
Datum
wam_welch_test(PG_FUNCTION_ARGS)
{
	double		ma = PG_GETARG_FLOAT8(0);
	double		sa = PG_GETARG_FLOAT8(1);
	int64		na = PG_GETARG_INT64(2);
	double		mb = PG_GETARG_FLOAT8(3);
	double		sb = PG_GETARG_FLOAT8(4);
	int64		nb = PG_GETARG_INT64(5);
	double		margin = PG_GETARG_FLOAT8(6);
	double		k = 1.0 + margin;
	TupleDesc	desc;
	Datum		values[4];
	bool		nulls[4] = {true, true, true, true};

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	if (na < 0 || nb < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("an arm's size must be at least 0 (got " INT64_FORMAT " and " INT64_FORMAT ")", na, nb)));
	if (!isfinite(ma) || !isfinite(mb))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("an arm's mean must be a finite number")));
	if (!isfinite(sa) || !isfinite(sb) || sa < 0.0 || sb < 0.0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("an arm's standard deviation must be a finite number of at least 0")));
	if (isnan(margin) || margin < 0.0 || margin > 10.0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the margin must be a relative lift from 0 to 10, not %g", margin)));
	if (na >= 2 && nb >= 2)
	{
		double		va = sa * sa / na;
		double		vb = k * k * sb * sb / nb;
		double		diff = ma - k * mb;

		if (va + vb > 0.0)
		{
			double		t = diff / sqrt(va + vb);
			double		df = (va + vb) * (va + vb) / (va * va / (na - 1) + vb * vb / (nb - 1));

			values[0] = Float8GetDatum(t);
			values[1] = Float8GetDatum(df);
			values[2] = Float8GetDatum(wam_tcdf(-t, df));
			values[3] = Float8GetDatum(fmin(1.0, 2.0 * wam_tcdf(-fabs(t), df)));
			nulls[0] = nulls[1] = false;
		}
		else
		{
			values[2] = Float8GetDatum(diff > 0 ? 0.0 : diff < 0 ? 1.0 : 0.5);
			values[3] = Float8GetDatum(diff == 0 ? 1.0 : 0.0);
		}
		nulls[2] = nulls[3] = false;
	}
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(desc, values, nulls)));
}
