/*-------------------------------------------------------------------------
 *
 * expr_eval.c
 *	  Evaluation of a prepared segment expression (see expr_prepare.c for the
 *	  preparation and expr.h for the values).
 *
 * Tag bitmaps are read from wam.tag_chunk in one query for all tags of the
 * expression and its saved segments.  Each behaviour predicate runs once,
 * as a constant query with parameters returning one segment.  The postfix
 * program then runs with an explicit value stack; a value is a bitmap plus
 * a "negated" flag, so NOT, EXCLUDE and the complement predicates become
 * and / or / andnot of stored bitmaps, computed in place when the value
 * owns its bitmap, and "all customers minus x" is built only when a result
 * needs it.  A count never builds the top operator's result: its size is
 * CRoaring's fused and/or/andnot cardinality.
 *
 * The negation algebra relies on every operand being a subset of all
 * customers (tag 0), which holds within one snapshot: memberships and
 * events of deleted customers go in the same transaction (tags.sql), and
 * every query here runs on the caller's snapshot.
 *
 * src/expr_eval.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "expr.h"

/*
 * The event queries: [0] without detail filters, on wam.event (its index
 * event_kind_time holds kind, time and customer: an index-only scan); [1]
 * with one, on wam.event_detail, whose index holds kind, key, value, time
 * and customer, so only the matching events are read, again from the index
 * alone ($5, $6: the filter's key and JSON value); [2] with several: the
 * first one searched so, the others checked on the event itself ($4: the
 * jsonb all of the event's details must contain).
 */
#define WAM_EVENT_WHERE \
	"WHERE e.kind OPERATOR(pg_catalog.=) $1 AND e.occurred_at OPERATOR(pg_catalog.>=) $2"
#define WAM_DETAIL_WHERE \
	"WHERE e.kind OPERATOR(pg_catalog.=) $1 AND e.key OPERATOR(pg_catalog.=) $5 " \
	"AND e.value OPERATOR(pg_catalog.=) $6 AND e.occurred_at OPERATOR(pg_catalog.>=) $2"
#define WAM_DETAIL_MORE \
	" AND EXISTS (SELECT FROM wam.event x WHERE x.customer_id OPERATOR(pg_catalog.=) e.customer_id " \
	"AND x.event_id OPERATOR(pg_catalog.=) e.event_id AND x.details OPERATOR(pg_catalog.@>) $4)"
#define WAM_EVENT_QUERIES(from) { \
	NULL, \
	"SELECT wam.segment_agg(e.customer_id) FROM " from, \
	"SELECT wam.segment_agg(x.customer_id) FROM (" \
	"SELECT e.customer_id FROM " from " " \
	"GROUP BY e.customer_id HAVING pg_catalog.count(*) OPERATOR(pg_catalog.>=) $3) x", \
	"SELECT wam.segment_agg(x.customer_id) FROM (" \
	"SELECT e.customer_id FROM " from " " \
	"GROUP BY e.customer_id HAVING pg_catalog.count(*) OPERATOR(pg_catalog.=) $3) x" \
}
#define WAM_FROM_EVENT		"wam.event e " WAM_EVENT_WHERE
#define WAM_FROM_DETAIL		"wam.event_detail e " WAM_DETAIL_WHERE
#define WAM_FROM_DETAILS	"wam.event_detail e " WAM_DETAIL_WHERE WAM_DETAIL_MORE
static const char *const wam_event_sql[3][4] = {
	WAM_EVENT_QUERIES(WAM_FROM_EVENT), WAM_EVENT_QUERIES(WAM_FROM_DETAIL), WAM_EVENT_QUERIES(WAM_FROM_DETAILS)
};

/*
 * Small counts use wam.segment_repeat_agg (src/expr_agg.c), one bitmap per
 * count level instead of a hash table of customers: indexed like
 * wam_event_sql, for counts up to WAM_REPEAT_MAX (exactly: one less).
 */
#define WAM_REPEAT_MAX	16
#define WAM_EVENT_REPEAT_QUERIES(from) { \
	NULL, \
	NULL, \
	"SELECT wam.segment_repeat_agg(e.customer_id, $3, false) FROM " from, \
	"SELECT wam.segment_repeat_agg(e.customer_id, $3, true) FROM " from \
}
static const char *const wam_event_repeat_sql[3][4] = {
	WAM_EVENT_REPEAT_QUERIES(WAM_FROM_EVENT), WAM_EVENT_REPEAT_QUERIES(WAM_FROM_DETAIL),
	WAM_EVENT_REPEAT_QUERIES(WAM_FROM_DETAILS)
};

/* indexed by WamExprField */
static const char *const wam_field_sql[] = {
	"SELECT wam.segment_agg(c.id) FROM wam.customer c "
	"WHERE c.last_inbound_at OPERATOR(pg_catalog.>=) $1",
	"SELECT wam.segment_agg(c.id) FROM wam.customer c "
	"WHERE c.last_read_at OPERATOR(pg_catalog.>=) $1",
	"SELECT wam.segment_agg(c.id) FROM wam.customer c "
	"WHERE c.first_order_at OPERATOR(pg_catalog.>=) $1",
	"SELECT wam.segment_agg(c.id) FROM wam.customer c "
	"WHERE c.last_order_at OPERATOR(pg_catalog.>=) $1",
	"SELECT wam.segment_agg(c.id) FROM wam.customer c "
	"WHERE c.last_inbound_at OPERATOR(pg_catalog.>=) $1 "
	"OR c.last_read_at OPERATOR(pg_catalog.>=) $1 "
	"OR c.last_order_at OPERATOR(pg_catalog.>=) $1",
	"SELECT wam.segment_agg(c.id) FROM wam.customer c "
	"WHERE c.created_at OPERATOR(pg_catalog.>=) $1"
};

static const char wam_reachable_sql[] =
"SELECT wam.segment_agg(c.id) FROM wam.customer c "
"WHERE c.consent_at IS NOT NULL AND c.opted_out_at IS NULL";

typedef enum WamSetOp
{
	WAM_SET_AND,				/* x & y */
	WAM_SET_OR,					/* x | y */
	WAM_SET_XY,					/* x - y */
	WAM_SET_YX					/* y - x */
} WamSetOp;

typedef enum WamRunMode
{
	WAM_RUN_VALUE,				/* the root's set */
	WAM_RUN_COUNT,				/* only the root's size */
	WAM_RUN_EXPLAIN				/* every node's size */
} WamRunMode;

static WamValue wam_run(WamExprCtx *ctx, WamExprProgram *prog, WamRunMode mode,
						int64 *count, WamExplainRow *rows);

/* -------- bitmaps owned by the expression's context -------- */

static WamValue
wam_temp(WamExprCtx *ctx, roaring_bitmap_t *bm)
{
	WamValue	v;

	v.holder = wam_bitmap_hold(bm, ctx->cxt);
	v.bm = bm;
	v.neg = false;
	return v;
}

static roaring_bitmap_t *
wam_owned_new(WamExprCtx *ctx)
{
	return wam_bitmap_hold(roaring_bitmap_create(), ctx->cxt)->bm;
}

/* Frees a value's bitmap now if the value owns it. */
static void
wam_drop(WamValue v)
{
	if (v.holder != NULL)
		wam_bitmap_release(v.holder);
}

/* ORs one stored chunk (a wam.segment datum) into bm. */
static void
wam_or_datum(WamExprCtx *ctx, roaring_bitmap_t *bm, Datum d)
{
	MemoryContext old = MemoryContextSwitchTo(ctx->rowcxt);

	roaring_bitmap_or_inplace(bm, wam_segment_read(d));
	MemoryContextSwitchTo(old);
	MemoryContextReset(ctx->rowcxt);
}

/*
 * Adds one stored block of a tag (a wam.tag_chunk row) to bm.  The blocks
 * arrive in chunk order (WAM_Q_CHUNKS sorts them) and normally hold one
 * container each, so that container is moved to the end of bm: no copy, no
 * merge, no fresh memory to fault in.  Anything else falls back to an
 * in-place union.  The blocks are written only by the extension's own
 * functions, so CRoaring's bounds-checked portable reader suffices, as in
 * wam_tag_blocks (tag_membership.c).
 */
static void
wam_or_block(WamExprCtx *ctx, roaring_bitmap_t *bm, Datum d)
{
	MemoryContext old = MemoryContextSwitchTo(ctx->rowcxt);
	WamSegmentFlat *flat = (WamSegmentFlat *) PG_DETOAST_DATUM(d);
	roaring_bitmap_t *part;
	WamBitmapHolder *blk;
	roaring_array_t *ra = &bm->high_low_container;
	roaring_array_t *bra;

	part = roaring_bitmap_portable_deserialize_safe(flat->data, WAM_SEGMENT_DATA_LEN(flat));
	if (part == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("a bitmap block in wam.tag_chunk is not a valid segment"),
				 errhint("Run wam.verify_tag_index().")));
	blk = wam_bitmap_hold(part, ctx->rowcxt);
	bra = &blk->bm->high_low_container;
	if (bra->size == 1 && (ra->size == 0 || bra->keys[0] > ra->keys[ra->size - 1]))
	{
		ra_append_move_range(ra, bra, 0, 1);
		bra->size = 0;			/* moved: not freed with the block */
	}
	else
		roaring_bitmap_or_inplace(bm, blk->bm);
	MemoryContextSwitchTo(old);
	MemoryContextReset(ctx->rowcxt);
}

static roaring_bitmap_t *
wam_empty(WamExprCtx *ctx)
{
	if (ctx->empty == NULL)
		ctx->empty = wam_owned_new(ctx);
	return ctx->empty;
}

/* All customers: the chunks of tag 0. */
static roaring_bitmap_t *
wam_all(WamExprCtx *ctx)
{
	if (ctx->all == NULL)
	{
		roaring_bitmap_t *bm = wam_owned_new(ctx);
		Datum		zero = Int32GetDatum(0);
		uint64		i;

		wam_expr_select(WAM_Q_CHUNKS,
				   PointerGetDatum(construct_array(&zero, 1, INT4OID, 4, true, TYPALIGN_INT)));
		for (i = 0; i < SPI_processed; i++)
		{
			bool		isnull;
			Datum		d = wam_expr_col((int) i, 2, &isnull);

			if (!isnull)
				wam_or_block(ctx, bm, d);
		}
		SPI_freetuptable(SPI_tuptable);
		ctx->all = bm;
		ctx->all_card = roaring_bitmap_get_cardinality(bm);
	}
	return ctx->all;
}

/* -------- evaluation: leaves -------- */

/* Reads the members of every tag the prepared programs name, in one query. */
static void
wam_load_tags(WamExprCtx *ctx)
{
	HASH_SEQ_STATUS seq;
	WamExprTag *t;
	Datum	   *ids;
	long		n = hash_get_num_entries(ctx->tags);
	int			k = 0;
	uint64		r;

	if (ctx->tags_loaded)
		return;
	ctx->tags_loaded = true;
	if (n == 0)
		return;
	ids = palloc(sizeof(Datum) * n);
	hash_seq_init(&seq, ctx->tags);
	while ((t = hash_seq_search(&seq)) != NULL)
	{
		t->bm = wam_owned_new(ctx);
		ids[k++] = Int32GetDatum(t->tag_id);
	}
	wam_expr_select(WAM_Q_CHUNKS,
			   PointerGetDatum(construct_array(ids, k, INT4OID, 4, true, TYPALIGN_INT)));
	for (r = 0; r < SPI_processed; r++)
	{
		bool		isnull;
		int32		id = DatumGetInt32(wam_expr_col((int) r, 1, &isnull));
		Datum		d = wam_expr_col((int) r, 2, &isnull);

		t = hash_search(ctx->tags, &id, HASH_FIND, NULL);
		if (t == NULL || isnull)
			continue;
		wam_or_block(ctx, t->bm, d);
		if ((r & 63) == 0)
			CHECK_FOR_INTERRUPTS();
	}
	SPI_freetuptable(SPI_tuptable);
}

/* The start of a predicate's window: now() - window, or -infinity. */
static TimestampTz
wam_cutoff(WamExprCtx *ctx, WamExprUnit unit, int64 window)
{
	Interval	iv;

	if (unit == WAM_UNIT_NONE)
		return DT_NOBEGIN;
	memset(&iv, 0, sizeof(iv));
	if (unit == WAM_UNIT_HOURS)
		iv.time = window * USECS_PER_HOUR;
	else
		iv.day = (int32) (unit == WAM_UNIT_WEEKS ? window * 7 : window);
	return DatumGetTimestampTz(DirectFunctionCall2(timestamptz_mi_interval,
												   TimestampTzGetDatum(ctx->now),
												   IntervalPGetDatum(&iv)));
}

/* Runs a predicate's query (once) and returns its set. */
static roaring_bitmap_t *
wam_pred_bitmap(WamExprCtx *ctx, WamExprPred *pred)
{
	const char *sql;
	Oid			types[WAM_PRED_MAX_ARGS];
	Datum		values[WAM_PRED_MAX_ARGS];
	int			nargs;
	int			rc;
	MemoryContext old;
	roaring_bitmap_t *bm;

	if (pred->evaluated)
		return pred->bm;
	switch (pred->query)
	{
		case WAM_PQ_EMPTY:
			pred->bm = wam_empty(ctx);
			pred->evaluated = true;
			return pred->bm;
		case WAM_PQ_EVENT_ANY:
		case WAM_PQ_EVENT_GE:
		case WAM_PQ_EVENT_EQ:
			{
			int			filtered = pred->details == (Datum) 0 ? 0 : pred->ndetails == 1 ? 1 : 2;

			sql = wam_event_sql[filtered][pred->query];
			types[0] = TEXTOID;
			values[0] = CStringGetTextDatum(pred->kind);
			types[1] = TIMESTAMPTZOID;
			values[1] = TimestampTzGetDatum(wam_cutoff(ctx, pred->unit, pred->window));
			types[2] = INT8OID;
			values[2] = Int64GetDatum(pred->count);
			nargs = pred->query == WAM_PQ_EVENT_ANY ? 2 : 3;
			if (pred->query != WAM_PQ_EVENT_ANY &&
				pred->count + (pred->query == WAM_PQ_EVENT_EQ ? 1 : 0) <= WAM_REPEAT_MAX)
			{
				sql = wam_event_repeat_sql[filtered][pred->query];
				types[2] = INT4OID;
				values[2] = Int32GetDatum((int32) pred->count);
			}
			if (filtered)
			{
				/* ($3, and $4 with one filter, are typed but unused) */
				types[3] = JSONBOID;
				values[3] = pred->details;
				types[4] = TEXTOID;
				values[4] = pred->detail_key;
				types[5] = JSONBOID;
				values[5] = pred->detail_value;
				nargs = 6;
			}
			break;
			}
		case WAM_PQ_ATTR:
			sql = pred->sql;
			nargs = pred->nargs;
			memcpy(types, pred->argtypes, sizeof(Oid) * nargs);
			memcpy(values, pred->args, sizeof(Datum) * nargs);
			break;
		case WAM_PQ_FIELD:
			sql = wam_field_sql[pred->field];
			types[0] = TIMESTAMPTZOID;
			values[0] = TimestampTzGetDatum(wam_cutoff(ctx, pred->unit, pred->window));
			nargs = 1;
			break;
		case WAM_PQ_REACHABLE:
		default:
			sql = wam_reachable_sql;
			nargs = 0;
			break;
	}

	old = CurrentMemoryContext;
	rc = SPI_execute_with_args(sql, nargs, types, values, NULL, true, 0);
	MemoryContextSwitchTo(old);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "wam_pred_bitmap: query failed: %s", SPI_result_code_string(rc));
	bm = wam_owned_new(ctx);
	if (SPI_processed > 0)
	{
		bool		isnull;
		Datum		d = wam_expr_col(0, 1, &isnull);

		if (!isnull)
			wam_or_datum(ctx, bm, d);
	}
	SPI_freetuptable(SPI_tuptable);
	pred->bm = bm;
	pred->evaluated = true;
	return bm;
}

/* The value of operand node i (shared: never modified in place). */
static WamValue
wam_leaf(WamExprCtx *ctx, WamExprProgram *prog, uint32 i)
{
	const WamExprNode *nd = &prog->parse.nodes[i];
	WamValue	v = {NULL, NULL, false};

	switch (nd->kind)
	{
		case WAM_EXPR_TAG:
			{
				WamExprTag *t = hash_search(ctx->tags, &prog->tag_ids[i], HASH_FIND, NULL);

				if (t == NULL || t->bm == NULL)
					elog(ERROR, "wam_leaf: tag %d was not loaded", prog->tag_ids[i]);
				v.bm = t->bm;
				break;
			}
		case WAM_EXPR_SEGMENT:
			{
				WamExprSaved *s = prog->segs[i];

				if (!s->evaluated)
				{
					s->value = wam_run(ctx, s->prog, WAM_RUN_VALUE, NULL, NULL);
					s->evaluated = true;
				}
				/* shared from now on: the holder still frees it with ctx */
				v.bm = s->value.bm;
				v.neg = s->value.neg;
				break;
			}
		case WAM_EXPR_ALL:
			v.bm = wam_all(ctx);
			break;
		default:
			v.bm = wam_pred_bitmap(ctx, prog->preds[i]);
			v.neg = prog->pred_neg[i];
			break;
	}
	return v;
}

/* -------- evaluation: operators -------- */

/*
 * wam_setop maps an AND or OR of two values, each possibly negated
 * (all - bm), to one bitmap operation on the stored bitmaps and whether
 * its result is negated.  With A = all customers and x, y subsets of A:
 *		 x &  y = x & y			 x |  y = x | y
 *		 x & ~y = x - y			 x | ~y = ~(y - x)
 *		~x &  y = y - x			~x |  y = ~(x - y)
 *		~x & ~y = ~(x | y)		~x | ~y = ~(x & y)
 */
static void
wam_setop(WamExprKind kind, bool nx, bool ny, WamSetOp *op, bool *neg)
{
	if (kind == WAM_EXPR_AND)
	{
		*op = !nx ? (!ny ? WAM_SET_AND : WAM_SET_XY) : (!ny ? WAM_SET_YX : WAM_SET_OR);
		*neg = nx && ny;
	}
	else
	{
		*op = !nx ? (!ny ? WAM_SET_OR : WAM_SET_YX) : (!ny ? WAM_SET_XY : WAM_SET_AND);
		*neg = nx || ny;
	}
}

/* a - b, in place when a owns its bitmap; consumes both. */
static WamValue
wam_andnot(WamExprCtx *ctx, WamValue a, WamValue b)
{
	WamValue	r;

	if (a.holder != NULL)
	{
		roaring_bitmap_andnot_inplace(a.bm, b.bm);
		r = a;
	}
	else
		r = wam_temp(ctx, roaring_bitmap_andnot(a.bm, b.bm));
	wam_drop(b);
	return r;
}

/* Applies a set operation, reusing a bitmap the operands own; consumes both. */
static WamValue
wam_apply(WamExprCtx *ctx, WamSetOp op, WamValue x, WamValue y)
{
	WamValue	r;

	switch (op)
	{
		case WAM_SET_AND:
		case WAM_SET_OR:
			if (x.holder == NULL && y.holder != NULL)
			{
				WamValue	t = x;

				x = y;
				y = t;
			}
			if (x.holder != NULL)
			{
				if (op == WAM_SET_AND)
					roaring_bitmap_and_inplace(x.bm, y.bm);
				else
					roaring_bitmap_or_inplace(x.bm, y.bm);
				r = x;
				wam_drop(y);
			}
			else
				r = wam_temp(ctx, op == WAM_SET_AND ?
							 roaring_bitmap_and(x.bm, y.bm) :
							 roaring_bitmap_or(x.bm, y.bm));
			return r;
		case WAM_SET_XY:
			return wam_andnot(ctx, x, y);
		case WAM_SET_YX:
		default:
			return wam_andnot(ctx, y, x);
	}
}

/* |result of op| without building it (CRoaring's fused cardinalities). */
static uint64
wam_op_card(WamSetOp op, const roaring_bitmap_t *x, const roaring_bitmap_t *y)
{
	switch (op)
	{
		case WAM_SET_AND:
			return roaring_bitmap_and_cardinality(x, y);
		case WAM_SET_OR:
			return roaring_bitmap_or_cardinality(x, y);
		case WAM_SET_XY:
			return roaring_bitmap_andnot_cardinality(x, y);
		case WAM_SET_YX:
		default:
			return roaring_bitmap_andnot_cardinality(y, x);
	}
}

/* The number of customers in a set (all - |bm| for a negated one). */
static int64
wam_size(WamExprCtx *ctx, uint64 card, bool neg)
{
	if (neg)
	{
		wam_all(ctx);
		return card >= ctx->all_card ? 0 : (int64) (ctx->all_card - card);
	}
	return (int64) card;
}

/*
 * wam_run evaluates a prepared program.  WAM_RUN_VALUE returns the root's
 * value; WAM_RUN_COUNT only computes the root's size into *count (fused
 * for a root operator); WAM_RUN_EXPLAIN also fills one row per node.
 */
static WamValue
wam_run(WamExprCtx *ctx, WamExprProgram *prog, WamRunMode mode,
		int64 *count, WamExplainRow *rows)
{
	const WamExprParse *pp = &prog->parse;
	WamValue   *stack = palloc(sizeof(WamValue) * pp->nnodes);
	int			sp = 0;
	WamValue	result = {NULL, NULL, false};
	uint32		i;

	check_stack_depth();
	wam_load_tags(ctx);
	for (i = 0; i < pp->nnodes; i++)
	{
		const WamExprNode *nd = &pp->nodes[i];
		bool		root = i == pp->nnodes - 1;
		bool		fused = false;
		int64		size = -1;
		WamValue	v = {NULL, NULL, false};

		CHECK_FOR_INTERRUPTS();
		switch (nd->kind)
		{
			case WAM_EXPR_NOT:
				v = stack[--sp];
				v.neg = !v.neg;
				break;
			case WAM_EXPR_AND:
			case WAM_EXPR_OR:
			case WAM_EXPR_EXCLUDE:
				{
					WamValue	y = stack[--sp];
					WamValue	x = stack[--sp];
					WamSetOp	op;
					bool		neg;

					if (nd->kind == WAM_EXPR_EXCLUDE)
					{
						y.neg = !y.neg;
						wam_setop(WAM_EXPR_AND, x.neg, y.neg, &op, &neg);
					}
					else
						wam_setop((WamExprKind) nd->kind, x.neg, y.neg, &op, &neg);
					if (root && mode != WAM_RUN_VALUE)
					{
						size = wam_size(ctx, wam_op_card(op, x.bm, y.bm), neg);
						wam_drop(x);
						wam_drop(y);
						fused = true;
					}
					else
					{
						v = wam_apply(ctx, op, x, y);
						v.neg = neg;
					}
					break;
				}
			default:
				v = wam_leaf(ctx, prog, i);
				break;
		}

		if (!fused && (mode == WAM_RUN_EXPLAIN || (root && mode == WAM_RUN_COUNT)))
			size = wam_size(ctx, roaring_bitmap_get_cardinality(v.bm), v.neg);
		if (rows != NULL)
		{
			rows[i].step = (int32) i + 1;
			rows[i].depth = (int32) nd->depth;
			rows[i].expression = pnstrdup(prog->src + nd->start, nd->end - nd->start);
			rows[i].customers = size;
		}
		if (!root)
			stack[sp++] = v;
		else if (mode == WAM_RUN_VALUE)
			result = v;
		else
		{
			*count = size;
			if (!fused)
				wam_drop(v);
		}
	}
	pfree(stack);
	return result;
}

/* -------- entry points -------- */

/* wam_expr_run_count returns the number of customers of a prepared program. */
int64
wam_expr_run_count(WamExprCtx *ctx, WamExprProgram *prog)
{
	int64		count = 0;

	wam_run(ctx, prog, WAM_RUN_COUNT, &count, NULL);
	return count;
}

/*
 * wam_expr_run_segment returns the customers of a prepared program as a
 * bitmap nobody owns yet: the caller must hand it to an owner at once.
 */
roaring_bitmap_t *
wam_expr_run_segment(WamExprCtx *ctx, WamExprProgram *prog)
{
	WamValue	v = wam_run(ctx, prog, WAM_RUN_VALUE, NULL, NULL);
	roaring_bitmap_t *bm;

	if (v.neg)
	{
		bm = wam_bitmap_check_alloc(roaring_bitmap_andnot(wam_all(ctx), v.bm));
		wam_drop(v);
	}
	else if (v.holder != NULL)
	{
		bm = v.bm;
		v.holder->bm = NULL;	/* disown: the callback becomes a no-op */
	}
	else
		bm = wam_bitmap_check_alloc(roaring_bitmap_copy(v.bm));
	return bm;
}

/* wam_expr_run_explain returns one row per node, in evaluation order. */
WamExplainRow *
wam_expr_run_explain(WamExprCtx *ctx, WamExprProgram *prog)
{
	WamExplainRow *rows = palloc0(sizeof(WamExplainRow) * prog->parse.nnodes);
	int64		count = 0;

	wam_run(ctx, prog, WAM_RUN_EXPLAIN, &count, rows);
	return rows;
}
