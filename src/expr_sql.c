/*-------------------------------------------------------------------------
 *
 * expr_sql.c
 *	  SQL-callable functions of segment expressions:
 *		wam.audience(text)		the customers, as a wam.segment
 *		wam.audience_size(text)		how many, without building the result
 *		wam.audience_funnel(text)	the size at every step (the funnel)
 *		wam.audience_problem(text)		NULL, or why the expression is invalid
 *		wam_internal.segment_references(text, text)	saved segments it names (internal)
 *
 * Each call prepares the expression (parse + name resolution, see
 * expr_prepare.c) and evaluates it within one WamExprCtx; nothing is cached
 * between calls except the query plans.  The functions read tables, so
 * they are STABLE; they only read, through SPI on the caller's snapshot,
 * and never start subtransactions, so they are also PARALLEL SAFE.
 *
 * src/expr_sql.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "funcapi.h"
#include "utils/array.h"
#include "utils/builtins.h"

#include "expr.h"

PG_FUNCTION_INFO_V1(wam_expr_eval);
PG_FUNCTION_INFO_V1(wam_expr_count);
PG_FUNCTION_INFO_V1(wam_expr_explain);
PG_FUNCTION_INFO_V1(wam_expr_check);
PG_FUNCTION_INFO_V1(wam_expr_references);

/* Prepares the expression argument, raising its problem if it has one. */
static WamExprProgram *
wam_prepare_arg(WamExprCtx *ctx, text *expr)
{
	WamExprProblem *problem;
	WamExprProgram *prog;

	prog = wam_expr_prepare(ctx, VARDATA_ANY(expr), VARSIZE_ANY_EXHDR(expr),
							&problem);
	if (prog == NULL)
		wam_expr_raise(problem);
	return prog;
}

/*
 * wam_expr_eval(expr text) returns the customers the expression means.
 */
Datum
wam_expr_eval(PG_FUNCTION_ARGS)
{
	text	   *expr = PG_GETARG_TEXT_PP(0);
	WamExprCtx *ctx = wam_expr_begin();
	WamExprProgram *prog = wam_prepare_arg(ctx, expr);
	WamSegmentExpanded *eseg;

	/* the result bitmap is unowned until wam_segment_expand takes it */
	eseg = wam_segment_expand(wam_expr_run_segment(ctx, prog), ctx->callercxt);
	wam_expr_end(ctx);
	PG_RETURN_DATUM(EOHPGetRWDatum(&eseg->hdr));
}

/*
 * wam_expr_count(expr text) returns how many customers the expression
 * means; the top operator's result is counted, never built.
 */
Datum
wam_expr_count(PG_FUNCTION_ARGS)
{
	text	   *expr = PG_GETARG_TEXT_PP(0);
	WamExprCtx *ctx = wam_expr_begin();
	WamExprProgram *prog = wam_prepare_arg(ctx, expr);
	int64		count = wam_expr_run_count(ctx, prog);

	wam_expr_end(ctx);
	PG_RETURN_INT64(count);
}

/*
 * wam_expr_explain(expr text) returns (step, depth, expression, customers)
 * for every operand and operator in evaluation order: operands before the
 * operator that combines them, the whole expression (depth 0) last.
 */
Datum
wam_expr_explain(PG_FUNCTION_ARGS)
{
	text	   *expr = PG_GETARG_TEXT_PP(0);
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	WamExprCtx *ctx;
	WamExprProgram *prog;
	WamExplainRow *rows;
	uint32		i;

	InitMaterializedSRF(fcinfo, 0);
	ctx = wam_expr_begin();
	prog = wam_prepare_arg(ctx, expr);
	rows = wam_expr_run_explain(ctx, prog);
	for (i = 0; i < prog->parse.nnodes; i++)
	{
		Datum		values[4];
		bool		nulls[4] = {false, false, false, false};

		values[0] = Int32GetDatum(rows[i].step);
		values[1] = Int32GetDatum(rows[i].depth);
		values[2] = CStringGetTextDatum(rows[i].expression);
		values[3] = Int64GetDatum(rows[i].customers);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	wam_expr_end(ctx);
	return (Datum) 0;
}

/*
 * wam_expr_check(expr text) returns NULL when the expression is valid
 * (it parses and every tag and saved segment it names exists), else the
 * error message wam.audience() would raise, with its detail.  Nothing
 * is evaluated.
 */
Datum
wam_expr_check(PG_FUNCTION_ARGS)
{
	text	   *expr = PG_GETARG_TEXT_PP(0);
	WamExprCtx *ctx = wam_expr_begin();
	WamExprProblem *problem;
	text	   *result = NULL;

	if (wam_expr_prepare(ctx, VARDATA_ANY(expr), VARSIZE_ANY_EXHDR(expr),
						 &problem) == NULL)
	{
		char	   *msg = wam_expr_problem_text(problem);
		MemoryContext old = MemoryContextSwitchTo(ctx->callercxt);

		result = cstring_to_text(msg);
		MemoryContextSwitchTo(old);
	}
	wam_expr_end(ctx);
	if (result == NULL)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(result);
}

static int
wam_cmp_cstring(const void *a, const void *b)
{
	return strcmp(*(char *const *) a, *(char *const *) b);
}

/*
 * wam_expr_references(expr text, self text) validates the expression
 * (raising like wam.audience() would) and returns the normalized names
 * of the saved segments it references directly, sorted and without
 * duplicates.  With self (not NULL), a reference to the saved segment of
 * that name, directly or through others, is an error.  Used by
 * wam.define_segment() for its cycle and depth checks.
 */
Datum
wam_expr_references(PG_FUNCTION_ARGS)
{
	text	   *expr;
	WamExprCtx *ctx;
	WamExprProgram *prog;
	char	  **keys;
	Datum	   *datums;
	int			n = 0;
	int			m = 0;
	int			i;
	ArrayType  *result;
	MemoryContext old;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	expr = PG_GETARG_TEXT_PP(0);
	ctx = wam_expr_begin();
	if (!PG_ARGISNULL(1))
		wam_expr_set_self(ctx, PG_GETARG_TEXT_PP(1));
	prog = wam_prepare_arg(ctx, expr);
	keys = palloc(sizeof(char *) * prog->parse.nnodes);
	for (i = 0; i < (int) prog->parse.nnodes; i++)
	{
		if (prog->parse.nodes[i].kind == WAM_EXPR_SEGMENT)
			keys[n++] = prog->segs[i]->key;
	}
	if (n > 1)
		qsort(keys, n, sizeof(char *), wam_cmp_cstring);

	old = MemoryContextSwitchTo(ctx->callercxt);
	datums = palloc(sizeof(Datum) * (n > 0 ? n : 1));
	for (i = 0; i < n; i++)
	{
		if (m == 0 || strcmp(keys[i], keys[i - 1]) != 0)
			datums[m++] = CStringGetTextDatum(keys[i]);
	}
	result = m > 0 ?
		construct_array(datums, m, TEXTOID, -1, false, TYPALIGN_INT) :
		construct_empty_array(TEXTOID);
	MemoryContextSwitchTo(old);
	wam_expr_end(ctx);
	PG_RETURN_ARRAYTYPE_P(result);
}
