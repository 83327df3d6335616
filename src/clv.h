/*-------------------------------------------------------------------------
 *
 * clv.h
 *	  Customer-lifetime-value models: BG/NBD (Fader, Hardie & Lee 2005) for
 *	  the number of future purchases and the probability that a customer is
 *	  still "alive", and Gamma-Gamma (Fader, Hardie & Lee 2005b; Colombo &
 *	  Jiang 1999) for the spend per purchase.
 *
 * clv_math.c is plain C (math.h only, no PostgreSQL calls, no allocation):
 * log-likelihoods, the Gaussian hypergeometric function 2F1, the closed
 * forms used for prediction and a Nelder-Mead minimiser.  clv.c wraps it as
 * SQL aggregates and functions and owns every allocation.
 *
 * Notation (per customer, in the model's time unit): x = repeat purchase
 * periods ("frequency"), t_x = time of the last purchase after the first
 * ("recency"), T = time from the first purchase to the end of calibration
 * ("T"), m = mean spend per repeat purchase ("monetary value").
 *
 *-------------------------------------------------------------------------
 */
#ifndef WAM_LTV_H
#define WAM_LTV_H

#include <stdbool.h>

/* Parameter vectors: BG/NBD {r, alpha, a, b}; Gamma-Gamma {p, q, v}. */
#define LTV_BGNBD_NPARAMS		4
#define LTV_GG_NPARAMS			3

/* index of a in the BG/NBD parameters */
#define LTV_BGNBD_A				2

/*
 * Below this mean drop-out probability a / (a + b), BG/NBD predictions are
 * those of its limit a -> 0 (no drop-out: the NBD model), which the closed
 * form cannot evaluate when a + b + x - 1 <= 0; the difference is of the
 * order of a / (a + b).
 */
#define LTV_BGNBD_A_NO_DROPOUT	1e-12

/* Log-parameters are kept inside +-LTV_LOG_BOUND (e^50 ~ 5e21). */
#define LTV_LOG_BOUND			50.0

/*
 * BG/NBD input compressed for the likelihood: the log-likelihood of a
 * customer depends on x, t_x and T only, so customers are grouped.  Distinct
 * values of x, t_x and T are kept once each, so one evaluation computes one
 * log(alpha + T) per distinct T instead of one per customer (purchase days
 * make these few), and customers without repeat purchases collapse into one
 * group per T.  The caller fills everything but the scratch arrays' contents.
 */
typedef struct LtvBgnbdData
{
	int			n_x;			/* distinct frequencies */
	const double *xs;			/* ascending, xs[i] >= 0 integral */
	int			n_T;			/* distinct T values */
	const double *Ts;
	int			n_t;			/* distinct t_x values */
	const double *ts;

	int			n_zero;			/* groups with x = 0, one per distinct T */
	const int  *zero_T;			/* index into Ts */
	const double *zero_w;		/* number of customers */

	int			n_rep;			/* groups with x > 0 */
	const int  *rep_x;			/* index into xs */
	const int  *rep_t;			/* index into ts */
	const int  *rep_T;			/* index into Ts */
	const double *rep_w;

	/* scratch, n_T + n_t + 2 * n_x doubles, owned by the caller */
	double	   *scratch;

	/*
	 * L2 penalty on the parameters: penalty * (r^2 + alpha^2 + a^2 + b^2) is
	 * added to the negative log-likelihood.  lifetimes' penalizer_coef c is
	 * applied to the mean log-likelihood per customer, so penalty = c * the
	 * number of customers gives the same optimum.  0: maximum likelihood.
	 */
	double		penalty;
} LtvBgnbdData;

/*
 * Gamma-Gamma input: repeat buyers grouped by (x, m), plus the sums that do
 * not depend on the parameters.
 */
typedef struct LtvGgData
{
	int			n_x;			/* distinct frequencies */
	const double *xs;
	const double *x_w;			/* customers per distinct frequency */
	int			n;				/* (x, m) groups */
	const double *gx;
	const double *gm;
	const double *gw;
	double		total_w;		/* customers */
	double		sum_x_log_m;	/* sum of w * x * log m */
	double		sum_log_m;		/* sum of w * log m */
	double		sum_x_log_x;	/* sum of w * x * log x */
	double		penalty;		/* as in LtvBgnbdData, on p, q, v */
} LtvGgData;

/* Outcome of a minimisation. */
typedef struct LtvFitResult
{
	double		value;			/* the minimum (negative log-likelihood) */
	int			evaluations;	/* objective evaluations, all restarts */
	int			restarts;		/* restarts from the best vertex */
	bool		converged;		/* tolerances met before max_evaluations */
} LtvFitResult;

typedef double (*LtvObjective) (const double *theta, void *arg);

/*
 * Nelder-Mead on dim <= 8 variables, starting at theta (overwritten with the
 * minimiser) with an initial simplex of theta + step * e_i.  It stops when
 * the spread of the simplex values is below ftol * (|f| + ftol) and every
 * vertex is within xtol of the best one, then restarts from the best vertex
 * with a fresh simplex of size restart_step until a restart improves the
 * minimum by less than ftol * (|f| + ftol).  Fully deterministic.
 */
extern void clv_nelder_mead(int dim, double *theta, LtvObjective f, void *arg,
							double step, double restart_step, double ftol,
							double xtol, int max_evaluations,
							LtvFitResult *result);

/*
 * Negative log-likelihoods on log-parameters, plus the data's penalty term;
 * +HUGE_VAL outside the bounds.
 */
extern double clv_bgnbd_negll(const double *log_params, void *data);
extern double clv_gg_negll(const double *log_params, void *data);

/*
 * log 2F1(a, b; c; z) for 0 <= z < 1 by its power series.  Returns false
 * (and leaves *result alone) when c is zero or a negative integer, or the
 * series does not converge in max_terms terms.
 */
extern bool clv_log_hyp2f1(double a, double b, double c, double z,
						   int max_terms, double *result);

/* 2F1 itself, for the SQL function; false as above or when it overflows. */
extern bool clv_hyp2f1(double a, double b, double c, double z, int max_terms,
					   double *result);

/* Closed forms of the fitted BG/NBD model for one customer. */
extern double clv_bgnbd_p_alive(const double *params, double x, double t_x, double T);
extern bool clv_bgnbd_expected(const double *params, double x, double t_x,
							   double T, double t, double *result);

/* Gamma-Gamma conditional expected spend per purchase (needs q > 1). */
extern double clv_gg_expected_spend(const double *params, double x, double m);

#endif							/* WAM_LTV_H */
