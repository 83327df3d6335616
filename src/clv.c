/*-------------------------------------------------------------------------
 *
 * clv.c
 *	  SQL interface of the lifetime-value models: the fitting aggregates
 *	  wam.bgnbd_fit and wam.gammagamma_fit (maximum likelihood by
 *	  Nelder-Mead on log-parameters, see clv_math.c, optionally with the L2
 *	  penalty of lifetimes' penalizer_coef) and the prediction functions of
 *	  a fitted model.
 *
 * A penalizer argument of NULL fits by maximum likelihood and, when that fit
 * is degenerate or does not converge (few or atypical customers), refits with
 * the smallest of auto_penalizers that gives a usable fit, with a NOTICE; the
 * result array ends with the penalizer used, so the fit stays labelled.
 *
 * The aggregates collect their input in the aggregate memory context and fit
 * in the final function.  Customers with equal inputs are grouped first (the
 * likelihood depends on the inputs only), and a large base is first fitted on
 * a deterministic subsample of the groups whose optimum is the start of the
 * fit on all of them: the full data then needs far fewer evaluations.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

#include "clv.h"
#include "wam_spi.h"

PG_FUNCTION_INFO_V1(wam_bgnbd_fit_trans);
PG_FUNCTION_INFO_V1(wam_bgnbd_fit_final);
PG_FUNCTION_INFO_V1(wam_gammagamma_fit_trans);
PG_FUNCTION_INFO_V1(wam_gammagamma_fit_final);
PG_FUNCTION_INFO_V1(wam_hyp2f1);
PG_FUNCTION_INFO_V1(wam_bgnbd_p_alive);
PG_FUNCTION_INFO_V1(wam_bgnbd_expected_purchases);
PG_FUNCTION_INFO_V1(wam_gammagamma_expected_spend);

/* optimiser settings: deterministic start, step and tolerances */
#define LTV_FTOL			1e-10
#define LTV_XTOL			1e-5
#define LTV_STEP			1.0
#define LTV_RESTART_STEP	0.1
#define LTV_FINE_RESTART_STEP	0.001
#define LTV_MAX_EVALUATIONS	5000
/* bases with more groups than this get a subsample warm start */
#define LTV_SUBSAMPLE_GROUPS	20000
#define LTV_HYP2F1_MAX_TERMS	1000000

/*
 * Penalizers tried, smallest first, when the maximum-likelihood fit is
 * degenerate and the caller left the choice to us (penalizer NULL): the
 * range lifetimes recommends for small samples.
 */
static const double auto_penalizers[] = {0.001, 0.01, 0.1};

/* Collected input of the fitting aggregates: up to three columns. */
typedef struct LtvInput
{
	int64		n;
	int64		capacity;
	int			ncols;
	double	   *col[3];
	/* the penalizer argument (the same on every row), if the aggregate has one */
	bool		has_penalizer;
	bool		auto_penalizer; /* it was NULL: plain fit, penalized if degenerate */
	double		penalizer;
} LtvInput;

static LtvInput *
input_append(FunctionCallInfo fcinfo, LtvInput *in, int ncols, const double *values)
{
	MemoryContext aggcontext;
	int			i;

	if (!AggCheckCallContext(fcinfo, &aggcontext))
		elog(ERROR, "clv input_append called in non-aggregate context");

	if (in == NULL)
	{
		in = (LtvInput *) MemoryContextAllocZero(aggcontext, sizeof(LtvInput));
		in->ncols = ncols;
		in->capacity = 1024;
		for (i = 0; i < ncols; i++)
			in->col[i] = (double *) MemoryContextAlloc(aggcontext, sizeof(double) * in->capacity);
	}
	if (in->n == in->capacity)
	{
		in->capacity *= 2;
		for (i = 0; i < ncols; i++)
			in->col[i] = (double *) repalloc_huge(in->col[i], sizeof(double) * in->capacity);
	}
	for (i = 0; i < ncols; i++)
		in->col[i][in->n] = values[i];
	in->n++;
	return in;
}

static double
arg_double(FunctionCallInfo fcinfo, int argno, const char *what)
{
	double		v;

	wam_not_null(PG_ARGISNULL(argno), what);
	v = PG_GETARG_FLOAT8(argno);
	if (!isfinite(v))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be a finite number, not %g", what, v)));
	return v;
}

/*
 * Records the penalizer argument argno of the aggregates that have one; it
 * must be the same on every row, as it is one setting of the fit.
 */
static void
note_penalizer(FunctionCallInfo fcinfo, LtvInput *in, int argno)
{
	bool		is_auto;
	double		c = 0.0;

	if (PG_NARGS() <= argno)
		return;
	is_auto = PG_ARGISNULL(argno);
	if (!is_auto)
	{
		c = PG_GETARG_FLOAT8(argno);
		if (!(c >= 0 && isfinite(c)))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("penalizer must be a finite number of at least 0, not %g", c),
					 errhint("0 fits by maximum likelihood; 0.001 to 0.1 suits small samples; NULL chooses.")));
	}
	if (!in->has_penalizer)
	{
		in->has_penalizer = true;
		in->auto_penalizer = is_auto;
		in->penalizer = c;
	}
	else if (in->auto_penalizer != is_auto || in->penalizer != c)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("penalizer must be the same for every customer of a fit")));
}

static void
check_customer(double x, double t_x, double T)
{
	if (x < 0 || x != floor(x))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("frequency must be a whole number of at least 0, not %g", x)));
	if (t_x < 0 || T < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("recency and T must not be negative (recency %g, T %g)", t_x, T)));
	if (t_x > T)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("recency %g exceeds T %g", t_x, T),
				 errdetail("The last purchase cannot be after the end of the calibration period.")));
}

/* -------- helpers for grouping -------- */

static int
cmp_double(const void *a, const void *b)
{
	double		x = *(const double *) a;
	double		y = *(const double *) b;

	return (x > y) - (x < y);
}

/* sorted distinct copy of v[0..n-1]; returns the count */
static int
distinct_values(const double *v, int64 n, double **out)
{
	double	   *s = (double *) palloc_extended(sizeof(double) * Max(n, 1), MCXT_ALLOC_HUGE);
	int64		i,
				k = 0;

	memcpy(s, v, sizeof(double) * n);
	qsort(s, n, sizeof(double), cmp_double);
	for (i = 0; i < n; i++)
		if (k == 0 || s[i] != s[k - 1])
			s[k++] = s[i];
	*out = s;
	return (int) k;
}

static int
index_of(const double *sorted, int n, double v)
{
	int			lo = 0,
				hi = n - 1;

	while (lo < hi)
	{
		int			mid = lo + (hi - lo) / 2;

		if (sorted[mid] < v)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

typedef struct RepKey
{
	int			x;
	int			t;
	int			T;
} RepKey;

static int
cmp_repkey(const void *a, const void *b)
{
	const RepKey *p = (const RepKey *) a;
	const RepKey *q = (const RepKey *) b;

	if (p->x != q->x)
		return p->x < q->x ? -1 : 1;
	if (p->T != q->T)
		return p->T < q->T ? -1 : 1;
	if (p->t != q->t)
		return p->t < q->t ? -1 : 1;
	return 0;
}

static ArrayType *
float8_array(const double *v, int n)
{
	Datum	   *d = (Datum *) palloc(sizeof(Datum) * n);
	int			i;

	for (i = 0; i < n; i++)
		d[i] = Float8GetDatum(v[i]);
	return construct_array(d, n, FLOAT8OID, sizeof(float8), FLOAT8PASSBYVAL, TYPALIGN_DOUBLE);
}

/* -------- BG/NBD aggregate -------- */

/*
 * wam_bgnbd_fit_trans(state internal, frequency float8, recency float8, T float8)
 */
Datum
wam_bgnbd_fit_trans(PG_FUNCTION_ARGS)
{
	LtvInput   *in = PG_ARGISNULL(0) ? NULL : (LtvInput *) PG_GETARG_POINTER(0);
	double		v[3];

	v[0] = arg_double(fcinfo, 1, "frequency");
	v[1] = arg_double(fcinfo, 2, "recency");
	v[2] = arg_double(fcinfo, 3, "T");
	check_customer(v[0], v[1], v[2]);
	in = input_append(fcinfo, in, 3, v);
	note_penalizer(fcinfo, in, 4);
	PG_RETURN_POINTER(in);
}

/*
 * The parameter that ran off to 0 or infinity, or -1.  zero_ok: the index of
 * a parameter whose running off to 0 is a limit of the model rather than a
 * failure, or -1.
 */
static int
degenerate_parameter(const double *theta, int nparams, int zero_ok)
{
	int			i;

	for (i = 0; i < nparams; i++)
		if (fabs(theta[i]) > LTV_LOG_BOUND - 10.0 && !(i == zero_ok && theta[i] < 0))
			return i;
	return -1;
}

static bool
fit_usable(const LtvFitResult *res, const double *theta, int nparams, int zero_ok)
{
	return res->converged && degenerate_parameter(theta, nparams, zero_ok) < 0;
}

/*
 * What is wrong with a fit that is not usable, for a message: "is degenerate
 * (parameter b = 3.4e+17)" or "did not converge in 5002 likelihood evaluations".
 */
static char *
fit_problem(const LtvFitResult *res, const double *theta, int nparams, const char *const *names)
{
	int			bad = degenerate_parameter(theta, nparams, -1);

	/* a parameter running off to 0 or infinity is the usual reason for no convergence */
	if (bad >= 0)
		return psprintf("is degenerate (parameter %s = %g)", names[bad], exp(theta[bad]));
	return psprintf("did not converge in %d likelihood evaluations", res->evaluations);
}

/*
 * Raises the error of an unusable fit.  tried: the largest penalizer used
 * (0: maximum likelihood only); automatic: the penalizers were chosen here.
 */
static void
fit_report(const char *model, const LtvFitResult *res, const double *theta, int nparams,
		   const char *const *names, int64 customers, double tried, bool automatic, int zero_ok)
{
	if (fit_usable(res, theta, nparams, zero_ok))
		return;
	if (tried == 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("the %s fit %s", model, fit_problem(res, theta, nparams, names)),
				 errdetail("With %lld customers the maximum of the likelihood lies at the edge of the parameter space or along a ridge: the data are too few or too uniform for the model.",
						   (long long) customers),
				 errhint("A penalized fit works on such data: pass a penalizer such as 0.01, or NULL to choose one.")));
	ereport(ERROR,
			(errcode(ERRCODE_DATA_EXCEPTION),
			 errmsg("the %s fit %s even with penalizer %g", model,
					fit_problem(res, theta, nparams, names), tried),
			 errdetail("With %lld customers the data are too few or too uniform for the model.",
					   (long long) customers),
			 automatic ? 0 : errhint("Try a larger penalizer.")));
}

/* tells that a penalized fit replaced an unusable maximum-likelihood fit */
static void
penalized_notice(const char *model, const LtvFitResult *ml_res, const double *ml_theta, int nparams,
				 const char *const *names, double penalizer)
{
	ereport(NOTICE,
			(errmsg("the %s maximum-likelihood fit %s: fitted with penalizer %g instead", model,
					fit_problem(ml_res, ml_theta, nparams, names), penalizer),
			 errdetail("The penalty %g x the sum of the squared parameters (lifetimes' penalizer_coef) keeps them finite on small or atypical data, at the price of a bias; wam.clv_fit and wam.clv_detail label the fit as penalized.",
					   penalizer)));
}

/*
 * Fits BG/NBD to grouped data; theta is the start and gets the optimum.
 */
/*
 * The simplex moves in phi = (log r, log r - log alpha, log a, log a - log b):
 * log-parameters recombined along the two ridges of the likelihood (the mean
 * purchase rate r/alpha and, roughly, the mean drop-out a/(a+b) are far
 * better determined than the parameters themselves), which Nelder-Mead
 * would otherwise crawl along.
 */
static void
bgnbd_phi_to_theta(const double *phi, double *theta)
{
	theta[0] = phi[0];
	theta[1] = phi[0] - phi[1];
	theta[2] = phi[2];
	theta[3] = phi[2] - phi[3];
}

static double
bgnbd_negll_phi(const double *phi, void *arg)
{
	double		theta[LTV_BGNBD_NPARAMS];

	bgnbd_phi_to_theta(phi, theta);
	return clv_bgnbd_negll(theta, arg);
}

static void
bgnbd_fit_grouped(LtvBgnbdData *d, double *theta, double step, double restart_step,
				  LtvFitResult *res)
{
	double		phi[LTV_BGNBD_NPARAMS];

	phi[0] = theta[0];
	phi[1] = theta[0] - theta[1];
	phi[2] = theta[2];
	phi[3] = theta[2] - theta[3];
	clv_nelder_mead(LTV_BGNBD_NPARAMS, phi, bgnbd_negll_phi, d, step, restart_step,
					LTV_FTOL, LTV_XTOL, LTV_MAX_EVALUATIONS, res);
	bgnbd_phi_to_theta(phi, theta);
}

/* simplex size after a warm start on `groups` groups: about their sampling error */
static double
warm_step(int groups)
{
	double		step = 3.0 / sqrt((double) groups);

	return Min(Max(step, 0.002), 0.05);
}

/*
 * The BG/NBD search on d (with its penalty) from a deterministic start;
 * theta gets the optimum, res the outcome with the evaluations of all stages.
 */
static void
bgnbd_search(LtvBgnbdData *d, double mean_T, double *theta, LtvFitResult *res)
{
	int			n_rep = d->n_rep;
	int64		i;
	int			evaluations = 0;

	/* deterministic start: r = a = b = 1, alpha = the mean T */
	theta[0] = 0.0;
	theta[1] = log(mean_T > 0 ? mean_T : 1.0);
	theta[2] = 0.0;
	theta[3] = 0.0;

	if (n_rep > LTV_SUBSAMPLE_GROUPS)
	{
		/*
		 * Warm starts on a ladder of subsamples of the repeat groups (every
		 * k-th group, its weight scaled so that the mix of repeat and
		 * one-time buyers stays the same), 20,000 groups first and ten times
		 * more at each step; each stage starts at the optimum of the one
		 * before with a simplex of about that stage's sampling error.
		 */
		int		   *sx = (int *) palloc(sizeof(int) * n_rep);
		int		   *st = (int *) palloc(sizeof(int) * n_rep);
		int		   *sT = (int *) palloc(sizeof(int) * n_rep);
		double	   *sw = (double *) palloc(sizeof(double) * n_rep);
		double		sum_all = 0.0;
		int64		target = LTV_SUBSAMPLE_GROUPS;
		int			previous = 0;

		for (i = 0; i < n_rep; i++)
			sum_all += d->rep_w[i];
		while (target < n_rep)
		{
			LtvBgnbdData s = *d;
			int			k = (int) ((n_rep + target - 1) / target);
			int			m = 0;
			double		sum_sub = 0.0;

			for (i = 0; i < n_rep; i += k)
			{
				sx[m] = d->rep_x[i];
				st[m] = d->rep_t[i];
				sT[m] = d->rep_T[i];
				sw[m] = d->rep_w[i];
				sum_sub += d->rep_w[i];
				m++;
			}
			for (i = 0; i < m; i++)
				sw[i] *= sum_all / sum_sub;
			s.n_rep = m;
			s.rep_x = sx;
			s.rep_t = st;
			s.rep_T = sT;
			s.rep_w = sw;
			if (previous == 0)
				bgnbd_fit_grouped(&s, theta, LTV_STEP, LTV_RESTART_STEP, res);
			else
				bgnbd_fit_grouped(&s, theta, warm_step(previous), LTV_FINE_RESTART_STEP, res);
			elog(DEBUG1, "BG/NBD warm start on %d of %d repeat groups: %d evaluations, %d restarts",
				 m, n_rep, res->evaluations, res->restarts);
			evaluations += res->evaluations;
			previous = m;
			target *= 10;
		}
		bgnbd_fit_grouped(d, theta, warm_step(previous), LTV_FINE_RESTART_STEP, res);
	}
	else
		bgnbd_fit_grouped(d, theta, LTV_STEP, LTV_RESTART_STEP, res);
	res->evaluations += evaluations;
}

/*
 * wam_bgnbd_fit_final(state internal) returns float8[]:
 *   {r, alpha, a, b, log-likelihood, evaluations, customers, repeat buyers, penalizer}
 */
Datum
wam_bgnbd_fit_final(PG_FUNCTION_ARGS)
{
	static const char *const names[] = {"r", "alpha", "a", "b"};
	LtvInput   *in = PG_ARGISNULL(0) ? NULL : (LtvInput *) PG_GETARG_POINTER(0);
	LtvBgnbdData d;
	double	   *xs,
			   *Ts,
			   *ts;
	double	   *zero_w_by_T;
	int		   *zero_T;
	double	   *zero_w;
	RepKey	   *keys;
	int		   *rep_x,
			   *rep_t,
			   *rep_T;
	double	   *rep_w;
	int64		i,
				n_rep_customers = 0,
				nkeys = 0;
	int			n_x,
				n_T,
				n_t,
				n_zero = 0,
				n_rep = 0;
	double		mean_T = 0.0;
	double		theta[LTV_BGNBD_NPARAMS];
	double		out[9];
	LtvFitResult res;
	double		penalizer = 0.0;

	if (in == NULL || in->n == 0)
		PG_RETURN_NULL();

	n_x = distinct_values(in->col[0], in->n, &xs);
	n_T = distinct_values(in->col[2], in->n, &Ts);
	/* recency of customers without repeat purchases is not used */
	n_t = distinct_values(in->col[1], in->n, &ts);

	zero_w_by_T = (double *) palloc0(sizeof(double) * n_T);
	keys = (RepKey *) palloc_extended(sizeof(RepKey) * in->n, MCXT_ALLOC_HUGE);
	for (i = 0; i < in->n; i++)
	{
		double		x = in->col[0][i];
		int			Ti = index_of(Ts, n_T, in->col[2][i]);

		mean_T += in->col[2][i];
		if (x == 0)
			zero_w_by_T[Ti] += 1.0;
		else
		{
			keys[nkeys].x = index_of(xs, n_x, x);
			keys[nkeys].t = index_of(ts, n_t, in->col[1][i]);
			keys[nkeys].T = Ti;
			nkeys++;
		}
	}
	mean_T /= in->n;
	n_rep_customers = nkeys;
	if (n_rep_customers == 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("cannot fit BG/NBD: none of the %lld customers made a repeat purchase",
						(long long) in->n),
				 errdetail("The likelihood then has no maximum: it grows without bound as r goes to 0.")));

	zero_T = (int *) palloc(sizeof(int) * n_T);
	zero_w = (double *) palloc(sizeof(double) * n_T);
	for (i = 0; i < n_T; i++)
		if (zero_w_by_T[i] > 0)
		{
			zero_T[n_zero] = (int) i;
			zero_w[n_zero] = zero_w_by_T[i];
			n_zero++;
		}

	qsort(keys, nkeys, sizeof(RepKey), cmp_repkey);
	rep_x = (int *) palloc_extended(sizeof(int) * nkeys, MCXT_ALLOC_HUGE);
	rep_t = (int *) palloc_extended(sizeof(int) * nkeys, MCXT_ALLOC_HUGE);
	rep_T = (int *) palloc_extended(sizeof(int) * nkeys, MCXT_ALLOC_HUGE);
	rep_w = (double *) palloc_extended(sizeof(double) * nkeys, MCXT_ALLOC_HUGE);
	for (i = 0; i < nkeys; i++)
	{
		if (n_rep > 0 && cmp_repkey(&keys[i], &keys[i - 1]) == 0)
		{
			rep_w[n_rep - 1] += 1.0;
			continue;
		}
		rep_x[n_rep] = keys[i].x;
		rep_t[n_rep] = keys[i].t;
		rep_T[n_rep] = keys[i].T;
		rep_w[n_rep] = 1.0;
		n_rep++;
	}
	pfree(keys);

	d.n_x = n_x;
	d.xs = xs;
	d.n_T = n_T;
	d.Ts = Ts;
	d.n_t = n_t;
	d.ts = ts;
	d.n_zero = n_zero;
	d.zero_T = zero_T;
	d.zero_w = zero_w;
	d.n_rep = n_rep;
	d.rep_x = rep_x;
	d.rep_t = rep_t;
	d.rep_T = rep_T;
	d.rep_w = rep_w;
	d.scratch = (double *) palloc(sizeof(double) * (n_T + n_t + 2 * n_x));

	if (in->has_penalizer && !in->auto_penalizer)
		penalizer = in->penalizer;
	d.penalty = penalizer * (double) in->n;
	bgnbd_search(&d, mean_T, theta, &res);
	if (in->auto_penalizer && !fit_usable(&res, theta, LTV_BGNBD_NPARAMS, -1))
	{
		double		ml_theta[LTV_BGNBD_NPARAMS];
		LtvFitResult ml_res = res;
		int			k;

		int			total = res.evaluations;

		memcpy(ml_theta, theta, sizeof(ml_theta));
		for (k = 0; k < lengthof(auto_penalizers); k++)
		{
			penalizer = auto_penalizers[k];
			d.penalty = penalizer * (double) in->n;
			bgnbd_search(&d, mean_T, theta, &res);
			total += res.evaluations;
			if (fit_usable(&res, theta, LTV_BGNBD_NPARAMS, LTV_BGNBD_A))
				break;
		}
		res.evaluations = total;
		if (fit_usable(&res, theta, LTV_BGNBD_NPARAMS, LTV_BGNBD_A))
			penalized_notice("BG/NBD", &ml_res, ml_theta, LTV_BGNBD_NPARAMS, names, penalizer);
	}
	elog(DEBUG1, "BG/NBD fit on %lld customers (%d one-time groups, %d repeat groups; %d x, %d t_x, %d T values), penalizer %g: %d evaluations, %d restarts",
		 (long long) in->n, n_zero, n_rep, n_x, n_t, n_T, penalizer, res.evaluations, res.restarts);
	/*
	 * With a penalty a may run to 0, b staying finite: the data show no
	 * drop-out, and the model is then the NBD one (P(alive) = 1), whose
	 * predictions clv_bgnbd_expected() computes in that limit.  Without one,
	 * the same data rather send b to infinity, which stays an error.
	 */
	fit_report("BG/NBD", &res, theta, LTV_BGNBD_NPARAMS, names, in->n, penalizer, in->auto_penalizer,
			   penalizer > 0 ? LTV_BGNBD_A : -1);

	for (i = 0; i < LTV_BGNBD_NPARAMS; i++)
		out[i] = exp(theta[i]);
	/* the log-likelihood itself, without the penalty */
	d.penalty = 0.0;
	out[4] = -clv_bgnbd_negll(theta, &d);
	out[5] = res.evaluations;
	out[6] = (double) in->n;
	out[7] = (double) n_rep_customers;
	out[8] = penalizer;
	PG_RETURN_ARRAYTYPE_P(float8_array(out, 9));
}

/* -------- Gamma-Gamma aggregate -------- */

/*
 * wam_gammagamma_fit_trans(state internal, frequency float8, monetary_value float8)
 * Customers without repeat purchases are skipped: the model is fitted on
 * repeat buyers only.
 */
Datum
wam_gammagamma_fit_trans(PG_FUNCTION_ARGS)
{
	LtvInput   *in = PG_ARGISNULL(0) ? NULL : (LtvInput *) PG_GETARG_POINTER(0);
	double		v[2];

	v[0] = arg_double(fcinfo, 1, "frequency");
	v[1] = arg_double(fcinfo, 2, "monetary value");
	if (v[0] < 0 || v[0] != floor(v[0]))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("frequency must be a whole number of at least 0, not %g", v[0])));
	if (v[0] == 0)
	{
		if (in == NULL)
		{
			MemoryContext aggcontext;

			if (!AggCheckCallContext(fcinfo, &aggcontext))
				elog(ERROR, "wam_gammagamma_fit_trans called in non-aggregate context");
			in = (LtvInput *) MemoryContextAllocZero(aggcontext, sizeof(LtvInput));
		}
		note_penalizer(fcinfo, in, 3);
		PG_RETURN_POINTER(in);
	}
	if (v[1] <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("monetary value of a repeat buyer must be positive, not %g", v[1]),
				 errhint("Leave repeat buyers whose repeat purchases were free out of the Gamma-Gamma fit.")));
	if (in != NULL && in->ncols == 0)
	{
		/* only zero-frequency rows so far: start collecting */
		MemoryContext aggcontext;

		if (!AggCheckCallContext(fcinfo, &aggcontext))
			elog(ERROR, "wam_gammagamma_fit_trans called in non-aggregate context");
		in->ncols = 2;
		in->capacity = 1024;
		in->col[0] = (double *) MemoryContextAlloc(aggcontext, sizeof(double) * in->capacity);
		in->col[1] = (double *) MemoryContextAlloc(aggcontext, sizeof(double) * in->capacity);
	}
	in = input_append(fcinfo, in, 2, v);
	note_penalizer(fcinfo, in, 3);
	PG_RETURN_POINTER(in);
}

typedef struct GgKey
{
	double		x;
	double		m;
} GgKey;

static int
cmp_ggkey(const void *a, const void *b)
{
	const GgKey *p = (const GgKey *) a;
	const GgKey *q = (const GgKey *) b;

	if (p->x != q->x)
		return p->x < q->x ? -1 : 1;
	return (p->m > q->m) - (p->m < q->m);
}

/*
 * A usable Gamma-Gamma fit for the automatic choice also has q > 1 (a finite
 * mean spend, which wam.fit_clv requires): a larger penalty shrinks q too,
 * so the smallest penalizer that gives one is taken.
 */
static bool
gg_usable(const LtvFitResult *res, const double *theta)
{
	return fit_usable(res, theta, LTV_GG_NPARAMS, -1) && theta[1] > 0;
}

/* the Gamma-Gamma search on d (with its penalty) from a deterministic start */
static void
gg_search(LtvGgData *d, double mean_m, double *theta, LtvFitResult *res)
{
	/* p = q = 1, v = the mean spend */
	theta[0] = 0.0;
	theta[1] = 0.0;
	theta[2] = log(mean_m);
	clv_nelder_mead(LTV_GG_NPARAMS, theta, clv_gg_negll, d, LTV_STEP,
					LTV_RESTART_STEP, LTV_FTOL, LTV_XTOL, LTV_MAX_EVALUATIONS, res);
}

/*
 * wam_gammagamma_fit_final(state internal) returns float8[]:
 *   {p, q, v, log-likelihood, evaluations, repeat buyers, penalizer}
 */
Datum
wam_gammagamma_fit_final(PG_FUNCTION_ARGS)
{
	static const char *const names[] = {"p", "q", "v"};
	LtvInput   *in = PG_ARGISNULL(0) ? NULL : (LtvInput *) PG_GETARG_POINTER(0);
	LtvGgData	d;
	GgKey	   *keys;
	double	   *gx,
			   *gm,
			   *gw,
			   *xs,
			   *x_w;
	int64		i;
	int			n = 0,
				n_x = 0;
	double		mean_m = 0.0;
	double		theta[LTV_GG_NPARAMS];
	double		out[7];
	LtvFitResult res;
	double		penalizer = 0.0;

	if (in == NULL)
		PG_RETURN_NULL();
	if (in->n == 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("cannot fit Gamma-Gamma: no customer made a repeat purchase"),
				 errdetail("The spend model is fitted on repeat buyers only.")));

	memset(&d, 0, sizeof(d));
	keys = (GgKey *) palloc_extended(sizeof(GgKey) * in->n, MCXT_ALLOC_HUGE);
	for (i = 0; i < in->n; i++)
	{
		double		x = in->col[0][i];
		double		m = in->col[1][i];

		keys[i].x = x;
		keys[i].m = m;
		d.sum_x_log_m += x * log(m);
		d.sum_log_m += log(m);
		d.sum_x_log_x += x * log(x);
		mean_m += m;
	}
	mean_m /= in->n;
	d.total_w = (double) in->n;
	qsort(keys, in->n, sizeof(GgKey), cmp_ggkey);
	gx = (double *) palloc_extended(sizeof(double) * in->n, MCXT_ALLOC_HUGE);
	gm = (double *) palloc_extended(sizeof(double) * in->n, MCXT_ALLOC_HUGE);
	gw = (double *) palloc_extended(sizeof(double) * in->n, MCXT_ALLOC_HUGE);
	xs = (double *) palloc_extended(sizeof(double) * in->n, MCXT_ALLOC_HUGE);
	x_w = (double *) palloc_extended(sizeof(double) * in->n, MCXT_ALLOC_HUGE);
	for (i = 0; i < in->n; i++)
	{
		if (n_x == 0 || xs[n_x - 1] != keys[i].x)
		{
			xs[n_x] = keys[i].x;
			x_w[n_x] = 0.0;
			n_x++;
		}
		x_w[n_x - 1] += 1.0;
		if (n > 0 && gx[n - 1] == keys[i].x && gm[n - 1] == keys[i].m)
		{
			gw[n - 1] += 1.0;
			continue;
		}
		gx[n] = keys[i].x;
		gm[n] = keys[i].m;
		gw[n] = 1.0;
		n++;
	}
	pfree(keys);
	d.n_x = n_x;
	d.xs = xs;
	d.x_w = x_w;
	d.n = n;
	d.gx = gx;
	d.gm = gm;
	d.gw = gw;

	if (in->has_penalizer && !in->auto_penalizer)
		penalizer = in->penalizer;
	d.penalty = penalizer * d.total_w;
	gg_search(&d, mean_m, theta, &res);
	if (in->auto_penalizer && !gg_usable(&res, theta))
	{
		double		ml_theta[LTV_GG_NPARAMS];
		LtvFitResult ml_res = res;
		int			total = res.evaluations;
		int			k;

		memcpy(ml_theta, theta, sizeof(ml_theta));
		for (k = 0; k < lengthof(auto_penalizers); k++)
		{
			penalizer = auto_penalizers[k];
			d.penalty = penalizer * d.total_w;
			gg_search(&d, mean_m, theta, &res);
			total += res.evaluations;
			if (gg_usable(&res, theta))
				break;
		}
		res.evaluations = total;
		if (gg_usable(&res, theta))
			penalized_notice("Gamma-Gamma", &ml_res, ml_theta, LTV_GG_NPARAMS, names, penalizer);
	}
	fit_report("Gamma-Gamma", &res, theta, LTV_GG_NPARAMS, names, in->n, penalizer, in->auto_penalizer, -1);

	for (i = 0; i < LTV_GG_NPARAMS; i++)
		out[i] = exp(theta[i]);
	/* the log-likelihood itself, without the penalty */
	d.penalty = 0.0;
	out[3] = -clv_gg_negll(theta, &d);
	out[4] = res.evaluations;
	out[5] = (double) in->n;
	out[6] = penalizer;
	PG_RETURN_ARRAYTYPE_P(float8_array(out, 7));
}

/* -------- prediction functions -------- */

/* Reads a parameter array of exactly n positive finite values. */
static void
get_params(ArrayType *arr, int n, const char *model, double *params)
{
	Datum	   *elems;
	bool	   *nulls;
	int			nelems,
				i;

	if (ARR_NDIM(arr) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("%s parameters must be a one-dimensional array", model)));
	deconstruct_array(arr, FLOAT8OID, sizeof(float8), FLOAT8PASSBYVAL, TYPALIGN_DOUBLE,
					  &elems, &nulls, &nelems);
	if (nelems < n)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s needs %d parameters, got %d", model, n, nelems)));
	for (i = 0; i < n; i++)
	{
		if (nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("%s parameter %d must not be null", model, i + 1)));
		params[i] = DatumGetFloat8(elems[i]);
		if (!(params[i] > 0) || !isfinite(params[i]))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("%s parameter %d must be a positive finite number, not %g",
							model, i + 1, params[i])));
	}
}

/* wam.hyp2f1(a, b, c, z): the Gaussian hypergeometric function for 0 <= z < 1 */
Datum
wam_hyp2f1(PG_FUNCTION_ARGS)
{
	double		a = PG_GETARG_FLOAT8(0);
	double		b = PG_GETARG_FLOAT8(1);
	double		c = PG_GETARG_FLOAT8(2);
	double		z = PG_GETARG_FLOAT8(3);
	double		result;

	if (!(z >= 0.0 && z < 1.0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("z must be at least 0 and below 1, not %g", z)));
	if (c <= 0.0 && c == floor(c))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("c must not be zero or a negative integer, not %g", c)));
	if (!clv_hyp2f1(a, b, c, z, LTV_HYP2F1_MAX_TERMS, &result))
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("2F1(%g, %g; %g; %g) cannot be computed in double precision", a, b, c, z)));
	PG_RETURN_FLOAT8(result);
}

/* wam.bgnbd_p_alive(params float8[], frequency, recency, T) */
Datum
wam_bgnbd_p_alive(PG_FUNCTION_ARGS)
{
	double		params[LTV_BGNBD_NPARAMS];
	double		x = PG_GETARG_FLOAT8(1);
	double		t_x = PG_GETARG_FLOAT8(2);
	double		T = PG_GETARG_FLOAT8(3);

	get_params(PG_GETARG_ARRAYTYPE_P(0), LTV_BGNBD_NPARAMS, "BG/NBD", params);
	if (!isfinite(x) || !isfinite(t_x) || !isfinite(T))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("frequency, recency and T must be finite")));
	check_customer(x, t_x, T);
	PG_RETURN_FLOAT8(clv_bgnbd_p_alive(params, x, t_x, T));
}

/* wam.bgnbd_expected_purchases(params float8[], frequency, recency, T, t) */
Datum
wam_bgnbd_expected_purchases(PG_FUNCTION_ARGS)
{
	double		params[LTV_BGNBD_NPARAMS];
	double		x = PG_GETARG_FLOAT8(1);
	double		t_x = PG_GETARG_FLOAT8(2);
	double		T = PG_GETARG_FLOAT8(3);
	double		t = PG_GETARG_FLOAT8(4);
	double		result;

	get_params(PG_GETARG_ARRAYTYPE_P(0), LTV_BGNBD_NPARAMS, "BG/NBD", params);
	if (!isfinite(x) || !isfinite(t_x) || !isfinite(T) || !isfinite(t))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("frequency, recency, T and the horizon must be finite")));
	check_customer(x, t_x, T);
	if (t < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("horizon must not be negative, not %g", t)));
	if (!clv_bgnbd_expected(params, x, t_x, T, t, &result))
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("expected purchases cannot be computed for frequency %g, recency %g, T %g, horizon %g",
						x, t_x, T, t),
				 errdetail("BG/NBD parameters r = %g, alpha = %g, a = %g, b = %g.",
						   params[0], params[1], params[2], params[3])));
	PG_RETURN_FLOAT8(result);
}

/* wam.gammagamma_expected_spend(params float8[], frequency, monetary_value) */
Datum
wam_gammagamma_expected_spend(PG_FUNCTION_ARGS)
{
	double		params[LTV_GG_NPARAMS];
	double		x = PG_GETARG_FLOAT8(1);
	double		m = PG_GETARG_FLOAT8(2);

	get_params(PG_GETARG_ARRAYTYPE_P(0), LTV_GG_NPARAMS, "Gamma-Gamma", params);
	if (!(params[1] > 1.0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("Gamma-Gamma parameter q must exceed 1 for a finite mean spend, not %g",
						params[1])));
	if (!isfinite(x) || x < 0 || x != floor(x))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("frequency must be a whole number of at least 0, not %g", x)));
	if (!isfinite(m) || m < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("monetary value must be a finite number of at least 0, not %g", m)));
	PG_RETURN_FLOAT8(clv_gg_expected_spend(params, x, m));
}
