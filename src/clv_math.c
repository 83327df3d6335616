/*-------------------------------------------------------------------------
 *
 * clv_math.c
 *	  Likelihoods, special functions and the optimiser of the lifetime-value
 *	  models (see clv.h).  Plain C: no PostgreSQL calls, no allocation, no
 *	  error reporting -- failures are return values the caller turns into
 *	  ereport()s.
 *
 * BG/NBD log-likelihood of one customer (Fader, Hardie & Lee 2005, eq. 6):
 *
 *   L = B(a, b+x)/B(a, b) * G(r+x) a^r / (G(r) (alpha+T)^(r+x))
 *     + [x > 0] B(a+1, b+x-1)/B(a, b) * G(r+x) a^r / (G(r) (alpha+t_x)^(r+x))
 *
 * and since B(a+1, b+x-1) = B(a, b+x) * a / (b+x-1),
 *
 *   log L = K(x) - (r+x) log(alpha+T)
 *         + [x > 0] softplus(log(a/(b+x-1)) + (r+x) (log(alpha+T) - log(alpha+t_x)))
 *
 * with K(x) = log G(r+x) - log G(r) + r log alpha + log B(a, b+x) - log B(a, b)
 * depending on x alone.
 *
 * Gamma-Gamma log-likelihood of one repeat buyer with x repeat purchases of
 * mean value m (the form of the lifetimes package, which reproduces the
 * published CDNOW fit):
 *
 *   log G(px+q) - log G(px) - log G(q) + q log v + (px-1) log m + px log x
 *   - (px+q) log(v + x m)
 *
 *-------------------------------------------------------------------------
 */
#include <float.h>
#include <math.h>
#include <string.h>

#include "clv.h"

#define LTV_NM_MAXDIM	8

/* log(1 + e^y) without overflow */
static inline double
softplus(double y)
{
	if (y > 0)
		return y + log1p(exp(-y));
	return log1p(exp(y));
}

static bool
out_of_bounds(const double *theta, int dim)
{
	int			i;

	for (i = 0; i < dim; i++)
		if (!(fabs(theta[i]) <= LTV_LOG_BOUND))
			return true;		/* also catches NaN */
	return false;
}

/* -------- BG/NBD -------- */

double
clv_bgnbd_negll(const double *log_params, void *arg)
{
	const LtvBgnbdData *d = (const LtvBgnbdData *) arg;
	double		r,
				alpha,
				a,
				b;
	double	   *LT = d->scratch;
	double	   *Lt = LT + d->n_T;
	double	   *K = Lt + d->n_t;
	double	   *A = K + d->n_x;
	double		lg_r,
				r_log_alpha,
				lg_b,
				lg_ab,
				log_a,
				ll = 0.0;
	int			i;

	if (out_of_bounds(log_params, LTV_BGNBD_NPARAMS))
		return HUGE_VAL;
	r = exp(log_params[0]);
	alpha = exp(log_params[1]);
	a = exp(log_params[2]);
	b = exp(log_params[3]);

	for (i = 0; i < d->n_T; i++)
		LT[i] = log(alpha + d->Ts[i]);
	for (i = 0; i < d->n_t; i++)
		Lt[i] = log(alpha + d->ts[i]);

	lg_r = lgamma(r);
	r_log_alpha = r * log_params[1];
	lg_b = lgamma(b);
	lg_ab = lgamma(a + b);
	log_a = log_params[2];
	for (i = 0; i < d->n_x; i++)
	{
		double		x = d->xs[i];

		/* log B(a, b+x) - log B(a, b): the log G(a) terms cancel */
		K[i] = lgamma(r + x) - lg_r + r_log_alpha
			+ lgamma(b + x) - lgamma(a + b + x) - lg_b + lg_ab;
		A[i] = x > 0 ? log_a - log(b + x - 1.0) : 0.0;
	}

	/* no repeat purchase: L = (alpha / (alpha+T))^r */
	for (i = 0; i < d->n_zero; i++)
		ll += d->zero_w[i] * (r_log_alpha - r * LT[d->zero_T[i]]);

	for (i = 0; i < d->n_rep; i++)
	{
		int			xi = d->rep_x[i];
		double		rx = r + d->xs[xi];
		double		lT = LT[d->rep_T[i]];
		double		lt = Lt[d->rep_t[i]];

		ll += d->rep_w[i] * (K[xi] - rx * lT + softplus(A[xi] + rx * (lT - lt)));
	}

	if (d->penalty > 0)
		ll -= d->penalty * (r * r + alpha * alpha + a * a + b * b);
	if (!isfinite(ll))
		return HUGE_VAL;
	return -ll;
}

/* -------- Gamma-Gamma -------- */

double
clv_gg_negll(const double *log_params, void *arg)
{
	const LtvGgData *d = (const LtvGgData *) arg;
	double		p,
				q,
				v,
				log_v,
				ll;
	int			i;

	if (out_of_bounds(log_params, LTV_GG_NPARAMS))
		return HUGE_VAL;
	p = exp(log_params[0]);
	q = exp(log_params[1]);
	v = exp(log_params[2]);
	log_v = log_params[2];

	ll = d->total_w * (q * log_v - lgamma(q))
		+ p * d->sum_x_log_m - d->sum_log_m + p * d->sum_x_log_x;
	for (i = 0; i < d->n_x; i++)
	{
		double		px = p * d->xs[i];

		ll += d->x_w[i] * (lgamma(px + q) - lgamma(px));
	}
	for (i = 0; i < d->n; i++)
		ll -= d->gw[i] * (p * d->gx[i] + q) * log(v + d->gx[i] * d->gm[i]);

	if (d->penalty > 0)
		ll -= d->penalty * (p * p + q * q + v * v);
	if (!isfinite(ll))
		return HUGE_VAL;
	return -ll;
}

/* -------- Nelder-Mead -------- */

/*
 * One Nelder-Mead run (standard coefficients: reflection 1, expansion 2,
 * contraction 1/2, shrink 1/2) from theta with an axis simplex of size step.
 * Returns true when the tolerances were met; theta and *fbest get the best
 * vertex either way.
 */
static bool
nelder_mead_run(int dim, double *theta, LtvObjective f, void *arg, double step,
				double ftol, double xtol, int max_evaluations, int *evaluations,
				double *fbest)
{
	double		v[LTV_NM_MAXDIM + 1][LTV_NM_MAXDIM];
	double		fv[LTV_NM_MAXDIM + 1];
	double		c[LTV_NM_MAXDIM],
				xr[LTV_NM_MAXDIM],
				xe[LTV_NM_MAXDIM],
				xc[LTV_NM_MAXDIM];
	int			n = dim;
	int			i,
				j;
	bool		converged = false;

	for (i = 0; i <= n; i++)
	{
		memcpy(v[i], theta, sizeof(double) * n);
		if (i > 0)
			v[i][i - 1] += step;
		fv[i] = f(v[i], arg);
		(*evaluations)++;
	}

	for (;;)
	{
		double		fr,
					spread,
					size;

		/* order the vertices by value (insertion sort; ties keep order) */
		for (i = 1; i <= n; i++)
		{
			double		ft = fv[i];
			double		vt[LTV_NM_MAXDIM];

			memcpy(vt, v[i], sizeof(double) * n);
			for (j = i - 1; j >= 0 && fv[j] > ft; j--)
			{
				fv[j + 1] = fv[j];
				memcpy(v[j + 1], v[j], sizeof(double) * n);
			}
			fv[j + 1] = ft;
			memcpy(v[j + 1], vt, sizeof(double) * n);
		}

		if (fv[0] == HUGE_VAL)
			break;				/* nowhere finite to go */
		spread = fv[n] - fv[0];
		size = 0.0;
		for (i = 1; i <= n; i++)
			for (j = 0; j < n; j++)
				size = fmax(size, fabs(v[i][j] - v[0][j]));
		if (spread <= ftol * (fabs(fv[0]) + ftol) && size <= xtol)
		{
			converged = true;
			break;
		}
		if (*evaluations >= max_evaluations)
			break;

		for (j = 0; j < n; j++)
		{
			c[j] = 0.0;
			for (i = 0; i < n; i++)
				c[j] += v[i][j];
			c[j] /= n;
		}
		for (j = 0; j < n; j++)
			xr[j] = c[j] + (c[j] - v[n][j]);
		fr = f(xr, arg);
		(*evaluations)++;

		if (fr < fv[0])
		{
			double		fe;

			for (j = 0; j < n; j++)
				xe[j] = c[j] + 2.0 * (xr[j] - c[j]);
			fe = f(xe, arg);
			(*evaluations)++;
			if (fe < fr)
			{
				memcpy(v[n], xe, sizeof(double) * n);
				fv[n] = fe;
			}
			else
			{
				memcpy(v[n], xr, sizeof(double) * n);
				fv[n] = fr;
			}
			continue;
		}
		if (fr < fv[n - 1])
		{
			memcpy(v[n], xr, sizeof(double) * n);
			fv[n] = fr;
			continue;
		}
		if (fr < fv[n])
		{
			/* outside contraction */
			double		fc;

			for (j = 0; j < n; j++)
				xc[j] = c[j] + 0.5 * (xr[j] - c[j]);
			fc = f(xc, arg);
			(*evaluations)++;
			if (fc <= fr)
			{
				memcpy(v[n], xc, sizeof(double) * n);
				fv[n] = fc;
				continue;
			}
		}
		else
		{
			/* inside contraction */
			double		fc;

			for (j = 0; j < n; j++)
				xc[j] = c[j] + 0.5 * (v[n][j] - c[j]);
			fc = f(xc, arg);
			(*evaluations)++;
			if (fc < fv[n])
			{
				memcpy(v[n], xc, sizeof(double) * n);
				fv[n] = fc;
				continue;
			}
		}
		/* shrink towards the best vertex */
		for (i = 1; i <= n; i++)
		{
			for (j = 0; j < n; j++)
				v[i][j] = v[0][j] + 0.5 * (v[i][j] - v[0][j]);
			fv[i] = f(v[i], arg);
			(*evaluations)++;
		}
	}

	memcpy(theta, v[0], sizeof(double) * n);
	*fbest = fv[0];
	return converged;
}

void
clv_nelder_mead(int dim, double *theta, LtvObjective f, void *arg,
				double step, double restart_step, double ftol, double xtol,
				int max_evaluations, LtvFitResult *result)
{
	double		previous = HUGE_VAL;
	double		fbest = HUGE_VAL;
	int			evaluations = 0;
	int			restarts = 0;
	bool		converged = false;

	if (dim < 1 || dim > LTV_NM_MAXDIM)
	{
		result->value = HUGE_VAL;
		result->evaluations = 0;
		result->restarts = 0;
		result->converged = false;
		return;
	}

	for (;;)
	{
		bool		ok = nelder_mead_run(dim, theta, f, arg,
										 restarts == 0 ? step : restart_step,
										 ftol, xtol, max_evaluations, &evaluations,
										 &fbest);

		if (!ok)
			break;
		/* a restart that no longer improves the minimum confirms it */
		if (previous - fbest <= ftol * (fabs(fbest) + ftol))
		{
			converged = true;
			break;
		}
		previous = fbest;
		restarts++;
	}

	result->value = fbest;
	result->evaluations = evaluations;
	result->restarts = restarts;
	result->converged = converged;
}

/* -------- hypergeometric function -------- */

bool
clv_log_hyp2f1(double a, double b, double c, double z, int max_terms, double *result)
{
	const double rescale = 1e280;
	double		log_rescale = log(rescale);
	double		term = 1.0,
				sum = 1.0,
				log_scale = 0.0;
	int			n;

	if (z == 0.0)
	{
		*result = 0.0;
		return true;
	}
	if (!(z > 0.0 && z < 1.0) || !isfinite(a) || !isfinite(b) || !isfinite(c))
		return false;
	if (c <= 0.0 && c == floor(c))
		return false;			/* a pole of 2F1 */

	for (n = 0; n < max_terms; n++)
	{
		double		ratio = (a + n) * (b + n) / ((c + n) * (n + 1.0)) * z;
		double		q;

		term *= ratio;
		sum += term;
		if (fabs(sum) > rescale)
		{
			term /= rescale;
			sum /= rescale;
			log_scale += log_rescale;
		}
		if (term == 0.0)
			break;				/* a or b a non-positive integer: a polynomial */

		/*
		 * The term ratio tends to z, from above or below; bound the rest of
		 * the series by a geometric one with the larger of the two.
		 */
		q = fmax(fabs(ratio), z);
		if (q < 1.0 && fabs(term) * q / (1.0 - q) <= 1e-16 * fabs(sum))
			break;
	}
	if (n >= max_terms || !(sum > 0.0) || !isfinite(sum))
		return false;
	*result = log(sum) + log_scale;
	return true;
}

bool
clv_hyp2f1(double a, double b, double c, double z, int max_terms, double *result)
{
	double		l;

	if (z == 0.0)
	{
		*result = 1.0;
		return true;
	}
	if (!clv_log_hyp2f1(a, b, c, z, max_terms, &l))
		return false;
	if (l > 709.0)
		return false;
	*result = exp(l);
	return true;
}

/* -------- predictions -------- */

/*
 * P(alive | x, t_x, T) = 1 / (1 + [x > 0] a/(b+x-1) ((alpha+T)/(alpha+t_x))^(r+x))
 * (eq. 11 of the BG/NBD paper); a customer without repeat purchases is alive
 * with probability 1 in this model.
 */
double
clv_bgnbd_p_alive(const double *params, double x, double t_x, double T)
{
	double		r = params[0],
				alpha = params[1],
				a = params[2],
				b = params[3];
	double		lr;

	if (x <= 0)
		return 1.0;
	lr = log(a / (b + x - 1.0)) + (r + x) * (log(alpha + T) - log(alpha + t_x));
	return 1.0 / (1.0 + exp(lr));
}

/*
 * E[Y(t) | x, t_x, T]: expected purchases in the next t time units (eq. 10
 * of the BG/NBD paper):
 *
 *   (a+b+x-1)/(a-1) * [1 - ((alpha+T)/(alpha+T+t))^(r+x)
 *                          * 2F1(r+x, b+x; a+b+x-1; t/(alpha+T+t))]
 *   / (1 + [x > 0] a/(b+x-1) ((alpha+T)/(alpha+t_x))^(r+x))
 *
 * For a < 1 both factors of the numerator are negative.
 */
bool
clv_bgnbd_expected(const double *params, double x, double t_x, double T,
				   double t, double *result)
{
	double		r = params[0],
				alpha = params[1],
				a = params[2],
				b = params[3];
	double		log_h,
				first,
				second,
				denominator,
				value;

	if (t == 0.0)
	{
		*result = 0.0;
		return true;
	}
	if (a < LTV_BGNBD_A_NO_DROPOUT * (a + b))
	{
		/*
		 * No drop-out: the purchase rate's posterior is Gamma(r + x,
		 * alpha + T), so t (r + x) / (alpha + T) purchases are expected
		 * (P(alive) is 1 up to the order of a).
		 */
		value = t * (r + x) / (alpha + T);
		if (!isfinite(value))
			return false;
		*result = value;
		return true;
	}
	if (a == 1.0)
		return false;
	if (!clv_log_hyp2f1(r + x, b + x, a + b + x - 1.0, t / (alpha + T + t),
						1000000, &log_h))
		return false;
	first = (a + b + x - 1.0) / (a - 1.0);
	second = -expm1(log_h + (r + x) * (log(alpha + T) - log(alpha + T + t)));
	denominator = 1.0;
	if (x > 0)
		denominator += exp(log(a / (b + x - 1.0))
						   + (r + x) * (log(alpha + T) - log(alpha + t_x)));
	value = first * second / denominator;
	if (!isfinite(value) && isinf(denominator) && isfinite(first * second))
		value = 0.0;
	if (!isfinite(value))
		return false;
	/* rounding can leave a hair below zero for tiny t */
	*result = value < 0.0 ? 0.0 : value;
	return true;
}

/*
 * E[M | x, m] = (p (v + x m)) / (p x + q - 1): a weighted average of the
 * population mean p v / (q - 1) and the customer's own mean m.
 */
double
clv_gg_expected_spend(const double *params, double x, double m)
{
	double		p = params[0],
				q = params[1],
				v = params[2];

	if (x <= 0)
		return p * v / (q - 1.0);
	return p * (v + x * m) / (p * x + q - 1.0);
}
