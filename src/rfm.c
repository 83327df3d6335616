/*-------------------------------------------------------------------------
 *
 * rfm.c
 *	  The RFM quintile aggregate behind wam.refresh_rfm().
 *
 * wam_internal.rfm_cut_points(as_of, first_order_at, last_order_at, orders, total,
 * units) reads one row of per-customer purchase statistics per call and
 * returns, in one wam.rfm_cut_result:
 *
 *   - the cut points of the recency (last order time), frequency (orders)
 *     and monetary (total spend) scores: 4 per dimension, a customer scores
 *     1 + the number of cut points at or below their value;
 *   - how many customers fall in each of the 125 (R, F, M) cells, so that
 *     counts per tier follow from a 125-entry tier map without touching the
 *     customers again;
 *   - the latest last order (the caller falls back to the orders table when
 *     it is after as_of), the sales-weighted average unit price and the
 *     repeat orders per customer-year (the simple LTV estimate).
 *
 * Quintiles by mid-rank: a customer's position is
 *     p = (customers with a smaller value + half of those with an equal value) / n
 * and the score is 1 + floor(5 p).  Ties therefore always get one score (the
 * score of the middle of their tie group), a base where everyone is equal
 * scores 3, and a single customer scores 3 -- never NaN, never an empty
 * input error.  The cut point k (k = 1..4) is the smallest value whose p is
 * at least k/5, so scoring new values against stored cut points agrees with
 * the quintiles for every value in the base.  Frequency is pinned: exactly
 * one order scores 1 (the first cut point is always 2) and repeat buyers are
 * spread over 2..5 by the same rule applied to them alone, so that the
 * one-order majority of a typical shop does not swamp the frequency scale.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/memutils.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"

#include "rfm.h"

PG_FUNCTION_INFO_V1(wam_rfm_cut_points_trans);
PG_FUNCTION_INFO_V1(wam_rfm_cut_points_final);

typedef struct RfmState
{
	int64		n;
	int64		capacity;
	TimestampTz as_of;
	TimestampTz latest;
	int64	   *last;			/* last order time */
	int64	   *orders;
	double	   *total;
	double		sum_total;
	double		sum_units;
	double		sum_orders;
	double		sum_years;		/* customer-years, at least 30 days each */
} RfmState;

/* 30 days and a year of 365.25 days, in microseconds */
#define RFM_MIN_TENURE_USECS	(INT64CONST(30) * USECS_PER_DAY)
#define RFM_YEAR_USECS			((double) USECS_PER_DAY * 365.25)

/*
 * wam_rfm_cut_points_trans(state internal, as_of timestamptz,
 *     first_order_at timestamptz, last_order_at timestamptz, orders bigint,
 *     total numeric, units bigint)
 */
Datum
wam_rfm_cut_points_trans(PG_FUNCTION_ARGS)
{
	RfmState   *st = PG_ARGISNULL(0) ? NULL : (RfmState *) PG_GETARG_POINTER(0);
	MemoryContext aggcontext;
	TimestampTz first,
				last;
	int64		orders,
				units;
	double		total;

	if (!AggCheckCallContext(fcinfo, &aggcontext))
		elog(ERROR, "wam_rfm_cut_points_trans called in non-aggregate context");
	if (PG_ARGISNULL(1) || PG_ARGISNULL(2) || PG_ARGISNULL(3) || PG_ARGISNULL(4) ||
		PG_ARGISNULL(5) || PG_ARGISNULL(6))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("RFM input must not be null"),
				 errdetail("Every customer needs the reference time, first and last order, orders, total and units.")));

	first = PG_GETARG_TIMESTAMPTZ(2);
	last = PG_GETARG_TIMESTAMPTZ(3);
	orders = PG_GETARG_INT64(4);
	units = PG_GETARG_INT64(6);
	total = DatumGetFloat8(DirectFunctionCall1(numeric_float8, PG_GETARG_DATUM(5)));
	if (orders < 1 || units < 0 || !(total >= 0) || isinf(total) ||
		TIMESTAMP_NOT_FINITE(first) || TIMESTAMP_NOT_FINITE(last) || last < first)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid RFM input: %lld orders, total %g, %lld units",
						(long long) orders, total, (long long) units),
				 errdetail("A customer has at least one order, a total of at least 0, and a first order no later than the last.")));

	if (st == NULL)
	{
		st = (RfmState *) MemoryContextAllocZero(aggcontext, sizeof(RfmState));
		st->capacity = 4096;
		st->last = (int64 *) MemoryContextAlloc(aggcontext, sizeof(int64) * st->capacity);
		st->orders = (int64 *) MemoryContextAlloc(aggcontext, sizeof(int64) * st->capacity);
		st->total = (double *) MemoryContextAlloc(aggcontext, sizeof(double) * st->capacity);
		st->as_of = PG_GETARG_TIMESTAMPTZ(1);
		st->latest = last;
	}
	if (st->n == st->capacity)
	{
		st->capacity *= 2;
		st->last = (int64 *) repalloc_huge(st->last, sizeof(int64) * st->capacity);
		st->orders = (int64 *) repalloc_huge(st->orders, sizeof(int64) * st->capacity);
		st->total = (double *) repalloc_huge(st->total, sizeof(double) * st->capacity);
	}
	st->last[st->n] = last;
	st->orders[st->n] = orders;
	st->total[st->n] = total;
	st->n++;
	if (last > st->latest)
		st->latest = last;
	st->sum_total += total;
	st->sum_units += (double) units;
	st->sum_orders += (double) orders;
	/* whole days from the first order to as_of, at least 30 */
	st->sum_years += (double) (Max(st->as_of - first, RFM_MIN_TENURE_USECS) / USECS_PER_DAY) * USECS_PER_DAY / RFM_YEAR_USECS;

	PG_RETURN_POINTER(st);
}

static int
cmp_int64(const void *a, const void *b)
{
	int64		x = *(const int64 *) a;
	int64		y = *(const int64 *) b;

	return (x > y) - (x < y);
}

static int
cmp_double(const void *a, const void *b)
{
	double		x = *(const double *) a;
	double		y = *(const double *) b;

	return (x > y) - (x < y);
}

/*
 * Mid-rank cut points of sorted v[0..n-1] for `buckets` buckets: cut k
 * (1 <= k < buckets) is the first tie group [i, j) whose position
 * (i + (j - i) / 2) / n is at least k / buckets, i.e. buckets * (i + j) >= 2 k n.
 * Cuts no group reaches stay unset (isnull).
 */
#define DEFINE_MIDRANK_CUTS(name, type) \
static void \
name(const type *v, int64 n, int buckets, type *cuts, bool *isnull) \
{ \
	int64		i = 0; \
	int			k = 1; \
	for (k = 1; k < buckets; k++) \
		isnull[k - 1] = true; \
	k = 1; \
	while (i < n && k < buckets) \
	{ \
		int64		j = i + 1; \
		while (j < n && v[j] == v[i]) \
			j++; \
		while (k < buckets && (double) buckets * (double) (i + j) >= 2.0 * k * (double) n) \
		{ \
			cuts[k - 1] = v[i]; \
			isnull[k - 1] = false; \
			k++; \
		} \
		i = j; \
	} \
}

DEFINE_MIDRANK_CUTS(midrank_cuts_int64, int64)
DEFINE_MIDRANK_CUTS(midrank_cuts_double, double)

/* 1 + the number of (set) cut points at or below v */
#define SCORE(v, cuts, isnull) \
	(1 + (!(isnull)[0] && (v) >= (cuts)[0]) + (!(isnull)[1] && (v) >= (cuts)[1]) \
	   + (!(isnull)[2] && (v) >= (cuts)[2]) + (!(isnull)[3] && (v) >= (cuts)[3]))

/*
 * wam_rfm_cut_points_final(state internal) returns wam.rfm_cut_result
 */
Datum
wam_rfm_cut_points_final(PG_FUNCTION_ARGS)
{
	RfmState   *st = PG_ARGISNULL(0) ? NULL : (RfmState *) PG_GETARG_POINTER(0);
	TupleDesc	tupdesc;
	Datum		values[RFM_RESULT_NATTS];
	bool		nulls[RFM_RESULT_NATTS];
	int64		r_cuts[4],
				f_cuts[4];
	double		m_cuts[4];
	bool		r_null[4],
				f_null[4],
				m_null[4];
	int64		cells[RFM_CELLS];
	Datum		datums[RFM_CELLS];
	bool		dnulls[4];
	int			dims[1],
				lbs[1] = {1};
	int64		i,
				first_repeat;
	int64	   *sorted_i;
	double	   *sorted_d;

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "wam_rfm_cut_points_final: return type must be a row type");
	tupdesc = BlessTupleDesc(tupdesc);
	if (tupdesc->natts != RFM_RESULT_NATTS)
		elog(ERROR, "wam_rfm_cut_points_final: wam.rfm_cut_result has %d attributes, expected %d",
			 tupdesc->natts, RFM_RESULT_NATTS);

	memset(nulls, true, sizeof(nulls));
	values[RFM_RESULT_CUSTOMERS] = Int64GetDatum(st ? st->n : 0);
	nulls[RFM_RESULT_CUSTOMERS] = false;
	if (st == NULL || st->n == 0)
		PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));

	/* recency: last order times */
	sorted_i = (int64 *) palloc_extended(sizeof(int64) * st->n, MCXT_ALLOC_HUGE);
	memcpy(sorted_i, st->last, sizeof(int64) * st->n);
	qsort(sorted_i, st->n, sizeof(int64), cmp_int64);
	midrank_cuts_int64(sorted_i, st->n, 5, r_cuts, r_null);

	/* frequency: 1 order scores 1, repeat buyers are spread over 2..5 */
	memcpy(sorted_i, st->orders, sizeof(int64) * st->n);
	qsort(sorted_i, st->n, sizeof(int64), cmp_int64);
	for (first_repeat = 0; first_repeat < st->n && sorted_i[first_repeat] < 2; first_repeat++)
		;
	f_cuts[0] = 2;
	f_null[0] = false;
	midrank_cuts_int64(sorted_i + first_repeat, st->n - first_repeat, 4, f_cuts + 1, f_null + 1);
	pfree(sorted_i);

	/* monetary: total spend */
	sorted_d = (double *) palloc_extended(sizeof(double) * st->n, MCXT_ALLOC_HUGE);
	memcpy(sorted_d, st->total, sizeof(double) * st->n);
	qsort(sorted_d, st->n, sizeof(double), cmp_double);
	midrank_cuts_double(sorted_d, st->n, 5, m_cuts, m_null);
	pfree(sorted_d);

	memset(cells, 0, sizeof(cells));
	for (i = 0; i < st->n; i++)
	{
		int			r = SCORE(st->last[i], r_cuts, r_null);
		int			f = SCORE(st->orders[i], f_cuts, f_null);
		int			m = SCORE(st->total[i], m_cuts, m_null);

		cells[RFM_CELL(r, f, m)]++;
	}

	dims[0] = 4;
	for (i = 0; i < 4; i++)
	{
		datums[i] = TimestampTzGetDatum(r_cuts[i]);
		dnulls[i] = r_null[i];
	}
	values[RFM_RESULT_R_CUTS] = PointerGetDatum(construct_md_array(datums, dnulls, 1, dims, lbs,
																   TIMESTAMPTZOID, sizeof(int64),
																   FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	for (i = 0; i < 4; i++)
	{
		datums[i] = Int64GetDatum(f_cuts[i]);
		dnulls[i] = f_null[i];
	}
	values[RFM_RESULT_F_CUTS] = PointerGetDatum(construct_md_array(datums, dnulls, 1, dims, lbs,
																   INT8OID, sizeof(int64),
																   FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	for (i = 0; i < 4; i++)
	{
		datums[i] = m_null[i] ? (Datum) 0 :
			DirectFunctionCall1(float8_numeric, Float8GetDatum(m_cuts[i]));
		dnulls[i] = m_null[i];
	}
	values[RFM_RESULT_M_CUTS] = PointerGetDatum(construct_md_array(datums, dnulls, 1, dims, lbs,
																   NUMERICOID, -1, false,
																   TYPALIGN_INT));
	for (i = 0; i < RFM_CELLS; i++)
		datums[i] = Int64GetDatum(cells[i]);
	values[RFM_RESULT_CELLS] = PointerGetDatum(construct_array(datums, RFM_CELLS, INT8OID,
															   sizeof(int64), FLOAT8PASSBYVAL,
															   TYPALIGN_DOUBLE));
	values[RFM_RESULT_LATEST] = TimestampTzGetDatum(st->latest);
	values[RFM_RESULT_ORDERS] = Int64GetDatum((int64) st->sum_orders);
	values[RFM_RESULT_REVENUE] = Float8GetDatum(st->sum_total);
	values[RFM_RESULT_UNIT_PRICE] = Float8GetDatum(st->sum_units > 0 ? st->sum_total / st->sum_units : 0.0);
	values[RFM_RESULT_ORDERS_PER_YEAR] = Float8GetDatum((st->sum_orders - (double) st->n) / st->sum_years);
	for (i = 0; i < RFM_RESULT_NATTS; i++)
		nulls[i] = false;
	if (st->sum_units <= 0)
		nulls[RFM_RESULT_UNIT_PRICE] = true;

	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}
