/*-------------------------------------------------------------------------
 *
 * expr_tags.c
 *	  The tags a segment expression uses, saved segments included.
 *
 * A send records which tags chose its audience (wam.tag.last_sent_at), so
 * that the health report can call a tag silent when no send has used it
 * for 30 days.  The tags are those name resolution found: merged tags count
 * as the tag they were merged into.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "utils/array.h"
#include "utils/builtins.h"

#include "expr.h"

PG_FUNCTION_INFO_V1(wam_expr_tag_ids);

static int
wam_cmp_int32(const void *a, const void *b)
{
	int32		x = *(const int32 *) a;
	int32		y = *(const int32 *) b;

	return (x > y) - (x < y);
}

/*
 * wam_expr_tag_ids(expr text) returns the ids of the tags the expression
 * uses, directly or through saved segments, sorted; raises the
 * expression's problem like wam.audience() would.
 */
Datum
wam_expr_tag_ids(PG_FUNCTION_ARGS)
{
	text	   *expr = PG_GETARG_TEXT_PP(0);
	WamExprCtx *ctx = wam_expr_begin();
	WamExprProblem *problem;
	HASH_SEQ_STATUS seq;
	WamExprTag *t;
	int32	   *ids;
	Datum	   *datums;
	long		n = 0;
	long		i;
	ArrayType  *result;
	MemoryContext old;

	if (wam_expr_prepare(ctx, VARDATA_ANY(expr), VARSIZE_ANY_EXHDR(expr), &problem) == NULL)
		wam_expr_raise(problem);
	ids = palloc(sizeof(int32) * (hash_get_num_entries(ctx->tags) + 1));
	hash_seq_init(&seq, ctx->tags);
	while ((t = hash_seq_search(&seq)) != NULL)
		ids[n++] = t->tag_id;
	if (n > 1)
		qsort(ids, n, sizeof(int32), wam_cmp_int32);

	old = MemoryContextSwitchTo(ctx->callercxt);
	datums = palloc(sizeof(Datum) * (n > 0 ? n : 1));
	for (i = 0; i < n; i++)
		datums[i] = Int32GetDatum(ids[i]);
	result = construct_array(datums, (int) n, INT4OID, sizeof(int32), true, TYPALIGN_INT);
	MemoryContextSwitchTo(old);
	wam_expr_end(ctx);
	PG_RETURN_ARRAYTYPE_P(result);
}
