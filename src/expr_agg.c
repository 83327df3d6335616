/*-------------------------------------------------------------------------
 *
 * expr_agg.c
 *	  wam.segment_repeat_agg(id bigint, times integer, exactly boolean):
 *	  the ids that occur at least (or exactly) `times` times among the rows,
 *	  as a segment.  The behaviour predicate "event(kind) >= n within w"
 *	  uses it instead of GROUP BY customer_id HAVING count(*) >= n.
 *
 * The state is one bitmap per count level: level[k] holds the ids seen more
 * than k times.  Rows are first counted in saturating one-byte counters, a
 * 64 kB array per block of 65,536 ids allocated when the block is first
 * seen: a row then costs one increment, where adding it to the level
 * bitmaps directly cost a container search and insert per level in bitmaps
 * far larger than the CPU cache (a quarter of the time of "event(link_click)
 * >= 3 within 7d" over 1.5 million events).  The counters are folded into
 * the levels (wam_repeat_flush) before the state is combined, serialized or
 * finalized, and whenever WAM_REPEAT_MAX_BLOCKS blocks are in use, which
 * bounds their memory at 32 MB whatever the ids.  Levels are capped at
 * WAM_REPEAT_MAX_LEVELS; the evaluator keeps GROUP BY for larger counts.
 *
 * The aggregate runs in parallel: partial states are combined level by
 * level (the ids seen >= k times in A + B are those seen >= i times in A
 * and >= k - i times in B, for some i) and cross process boundaries as the
 * bitmaps' portable serializations.  Every bitmap is owned by the
 * aggregate's memory context (see segment.h).
 *
 * src/expr_agg.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

#include "segment.h"
#include "wam_spi.h"

/* Most count levels a state keeps (counts 1 .. 16; "exactly n" needs n + 1). */
#define WAM_REPEAT_MAX_LEVELS	16

/* Counter blocks in use before they are folded into the levels (32 MB). */
#define WAM_REPEAT_MAX_BLOCKS	512

typedef struct WamRepeatState
{
	int32		times;
	bool		exactly;
	int32		nlevels;
	roaring_bitmap_t *level[WAM_REPEAT_MAX_LEVELS];	/* level[k]: seen > k times */
	WamBitmapHolder *holder[WAM_REPEAT_MAX_LEVELS];	/* owns level[k] */
	MemoryContext cxt;			/* owns everything of the state */
	uint8	  **blocks;			/* NULL or 65,536 counter arrays by high 16 bits */
	int32		nblocks;		/* counter arrays allocated */
} WamRepeatState;

PG_FUNCTION_INFO_V1(wam_expr_repeat_trans);
PG_FUNCTION_INFO_V1(wam_expr_repeat_combine);
PG_FUNCTION_INFO_V1(wam_expr_repeat_serial);
PG_FUNCTION_INFO_V1(wam_expr_repeat_deserial);
PG_FUNCTION_INFO_V1(wam_expr_repeat_final);

static MemoryContext
wam_repeat_context(FunctionCallInfo fcinfo, const char *fname)
{
	MemoryContext aggcxt;

	if (!AggCheckCallContext(fcinfo, &aggcxt))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("%s called in non-aggregate context", fname)));
	return aggcxt;
}

/* Replaces level k of st by bm (malloc'd), which the state then owns. */
static void
wam_repeat_set_level(WamRepeatState *st, int k, roaring_bitmap_t *bm)
{
	WamBitmapHolder *old = st->holder[k];

	st->holder[k] = wam_bitmap_hold(bm, st->cxt);
	st->level[k] = bm;
	wam_bitmap_release(old);
}

/*
 * wam_repeat_merge computes the levels of two states' rows together into
 * out[]: with A_0 = B_0 = all ids, the ids seen >= k times in both are
 *		A_k | B_k | (A_1 & B_(k-1)) | ... | (A_(k-1) & B_1).
 * The results are malloc'd and not yet owned by anything.
 */
static void
wam_repeat_merge(roaring_bitmap_t *const *a, roaring_bitmap_t *const *b, int nlevels,
				 roaring_bitmap_t **out)
{
	int			k;
	int			i;

	for (k = 0; k < nlevels; k++)
	{
		/* level[k] holds "seen >= k + 1 times" */
		roaring_bitmap_t *r = wam_bitmap_check_alloc(roaring_bitmap_or(a[k], b[k]));

		for (i = 1; i <= k; i++)
		{
			roaring_bitmap_t *both = wam_bitmap_check_alloc(
				roaring_bitmap_and(a[i - 1], b[k - i]));

			roaring_bitmap_or_inplace(r, both);
			roaring_bitmap_free(both);
		}
		out[k] = r;
	}
}

/*
 * wam_repeat_flush folds the counters into the levels and frees them.  The
 * counted rows form a state of their own, merged like a partial state.
 */
static void
wam_repeat_flush(WamRepeatState *st)
{
	roaring_bitmap_t *counted[WAM_REPEAT_MAX_LEVELS];
	roaring_bitmap_t *merged[WAM_REPEAT_MAX_LEVELS];
	WamBitmapHolder *hold[WAM_REPEAT_MAX_LEVELS];
	uint32	   *vals;
	int			hi;
	int			k;

	if (st->nblocks == 0)
		return;
	/* held until merged, so that an error on the way frees them */
	for (k = 0; k < st->nlevels; k++)
	{
		hold[k] = wam_bitmap_hold(wam_bitmap_check_alloc(roaring_bitmap_create()),
								  CurrentMemoryContext);
		counted[k] = hold[k]->bm;
	}
	vals = palloc(sizeof(uint32) * 65536);
	for (hi = 0; hi < 65536; hi++)
	{
		const uint8 *b = st->blocks[hi];

		if (b == NULL)
			continue;
		for (k = 0; k < st->nlevels; k++)
		{
			uint32		base = (uint32) hi << 16;
			int			n = 0;
			int			lo;

			for (lo = 0; lo < 65536; lo++)
			{
				if (b[lo] > k)
					vals[n++] = base | (uint32) lo;
			}
			if (n == 0)
				break;			/* nobody here was seen more often */
			roaring_bitmap_add_many(counted[k], (size_t) n, vals);
		}
		pfree(st->blocks[hi]);
		st->blocks[hi] = NULL;
		CHECK_FOR_INTERRUPTS();
	}
	pfree(vals);
	st->nblocks = 0;

	wam_repeat_merge(st->level, counted, st->nlevels, merged);
	for (k = 0; k < st->nlevels; k++)
	{
		wam_repeat_set_level(st, k, merged[k]);
		wam_bitmap_release(hold[k]);
	}
}

/* A new state with empty levels (or none yet), everything owned by cxt. */
static WamRepeatState *
wam_repeat_alloc(MemoryContext cxt, int32 times, bool exactly, bool levels)
{
	WamRepeatState *st;
	int			k;

	if (times < 1 || times + (exactly ? 1 : 0) > WAM_REPEAT_MAX_LEVELS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("repeat count %d is out of range for wam.segment_repeat_agg", times),
				 errdetail("The count must be between 1 and %d (%d with exactly).",
						   WAM_REPEAT_MAX_LEVELS, WAM_REPEAT_MAX_LEVELS - 1)));
	st = MemoryContextAllocZero(cxt, sizeof(WamRepeatState));
	st->times = times;
	st->exactly = exactly;
	st->nlevels = times + (exactly ? 1 : 0);
	st->cxt = cxt;
	for (k = 0; levels && k < st->nlevels; k++)
		wam_repeat_set_level(st, k, wam_bitmap_check_alloc(roaring_bitmap_create()));
	return st;
}

static WamRepeatState *
wam_repeat_new(MemoryContext cxt, int32 times, bool exactly)
{
	return wam_repeat_alloc(cxt, times, exactly, true);
}

/*
 * wam_expr_repeat_trans(state, id, times, exactly) counts one occurrence of
 * id.  NULL ids are skipped; times and exactly must be the same on every
 * row.
 */
Datum
wam_expr_repeat_trans(PG_FUNCTION_ARGS)
{
	MemoryContext aggcxt = wam_repeat_context(fcinfo, "wam_expr_repeat_trans");
	WamRepeatState *st;
	uint32		id;
	uint8	   *counts;

	wam_not_null(PG_ARGISNULL(2) || PG_ARGISNULL(3), "repeat count and exactly");
	if (PG_ARGISNULL(0))
		st = wam_repeat_new(aggcxt, PG_GETARG_INT32(2), PG_GETARG_BOOL(3));
	else
	{
		st = (WamRepeatState *) PG_GETARG_POINTER(0);
		if (st->times != PG_GETARG_INT32(2) || st->exactly != PG_GETARG_BOOL(3))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("repeat count must be the same for every row")));
	}
	if (PG_ARGISNULL(1))
		PG_RETURN_POINTER(st);
	id = wam_segment_check_id(PG_GETARG_INT64(1));
	if (st->blocks == NULL)
		st->blocks = MemoryContextAllocZero(aggcxt, sizeof(uint8 *) * 65536);
	counts = st->blocks[id >> 16];
	if (counts == NULL)
	{
		if (st->nblocks >= WAM_REPEAT_MAX_BLOCKS)
			wam_repeat_flush(st);
		counts = MemoryContextAllocZero(aggcxt, 65536);
		st->blocks[id >> 16] = counts;
		st->nblocks++;
	}
	/* saturating: more than nlevels occurrences all mean "every level" */
	if (counts[id & 0xFFFF] < st->nlevels)
		counts[id & 0xFFFF]++;
	PG_RETURN_POINTER(st);
}

/*
 * wam_expr_repeat_combine merges two partial states (see wam_repeat_merge).
 */
Datum
wam_expr_repeat_combine(PG_FUNCTION_ARGS)
{
	MemoryContext aggcxt = wam_repeat_context(fcinfo, "wam_expr_repeat_combine");
	WamRepeatState *a = PG_ARGISNULL(0) ? NULL : (WamRepeatState *) PG_GETARG_POINTER(0);
	WamRepeatState *b = PG_ARGISNULL(1) ? NULL : (WamRepeatState *) PG_GETARG_POINTER(1);
	WamRepeatState *r;
	roaring_bitmap_t *merged[WAM_REPEAT_MAX_LEVELS];
	int			k;

	if (b == NULL)
	{
		if (a == NULL)
			PG_RETURN_NULL();
		PG_RETURN_POINTER(a);
	}
	wam_repeat_flush(b);
	if (a == NULL)
	{
		/* b may live in another context: copy it into ours */
		r = wam_repeat_alloc(aggcxt, b->times, b->exactly, false);
		for (k = 0; k < r->nlevels; k++)
			wam_repeat_set_level(r, k, wam_bitmap_check_alloc(roaring_bitmap_copy(b->level[k])));
		PG_RETURN_POINTER(r);
	}
	if (a->times != b->times || a->exactly != b->exactly)
		elog(ERROR, "wam_expr_repeat_combine: states of different counts");
	wam_repeat_flush(a);

	r = wam_repeat_alloc(aggcxt, a->times, a->exactly, false);
	wam_repeat_merge(a->level, b->level, r->nlevels, merged);
	for (k = 0; k < r->nlevels; k++)
		wam_repeat_set_level(r, k, merged[k]);
	CHECK_FOR_INTERRUPTS();
	PG_RETURN_POINTER(r);
}

/* wam_expr_repeat_serial: times, exactly, then each level's size and bytes. */
Datum
wam_expr_repeat_serial(PG_FUNCTION_ARGS)
{
	WamRepeatState *st = (WamRepeatState *) PG_GETARG_POINTER(0);
	size_t		sizes[WAM_REPEAT_MAX_LEVELS];
	Size		total = VARHDRSZ + 2 * sizeof(int32);
	bytea	   *out;
	char	   *p;
	int			k;

	wam_repeat_flush(st);
	for (k = 0; k < st->nlevels; k++)
	{
		sizes[k] = roaring_bitmap_portable_size_in_bytes(st->level[k]);
		total = add_size(total, add_size(sizeof(uint32), sizes[k]));
	}
	if (total > MaxAllocSize)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("wam.segment_repeat_agg state is too large"),
				 errdetail("The serialized state needs %zu bytes; the limit is %zu.",
						   (size_t) total, (size_t) MaxAllocSize)));
	out = palloc(total);
	SET_VARSIZE(out, total);
	p = VARDATA(out);
	memcpy(p, &st->times, sizeof(int32));
	p += sizeof(int32);
	k = st->exactly ? 1 : 0;
	memcpy(p, &k, sizeof(int32));
	p += sizeof(int32);
	for (k = 0; k < st->nlevels; k++)
	{
		uint32		len = (uint32) sizes[k];

		memcpy(p, &len, sizeof(uint32));
		p += sizeof(uint32);
		if (roaring_bitmap_portable_serialize(st->level[k], p) != sizes[k])
			elog(ERROR, "wam_expr_repeat_serial: serialization size mismatch");
		p += sizes[k];
	}
	PG_RETURN_BYTEA_P(out);
}

/* wam_expr_repeat_deserial reads a state written by wam_expr_repeat_serial. */
Datum
wam_expr_repeat_deserial(PG_FUNCTION_ARGS)
{
	MemoryContext aggcxt = wam_repeat_context(fcinfo, "wam_expr_repeat_deserial");
	bytea	   *in = PG_GETARG_BYTEA_PP(0);
	const char *p = VARDATA_ANY(in);
	const char *end = p + VARSIZE_ANY_EXHDR(in);
	int32		times;
	int32		exactly;
	WamRepeatState *st;
	int			k;

	if (end - p < 2 * (int) sizeof(int32))
		elog(ERROR, "wam_expr_repeat_deserial: truncated state");
	memcpy(&times, p, sizeof(int32));
	memcpy(&exactly, p + sizeof(int32), sizeof(int32));
	p += 2 * sizeof(int32);
	st = wam_repeat_alloc(aggcxt, times, exactly != 0, false);
	for (k = 0; k < st->nlevels; k++)
	{
		uint32		len;
		roaring_bitmap_t *bm;

		if (end - p < (long) sizeof(uint32))
			elog(ERROR, "wam_expr_repeat_deserial: truncated state");
		memcpy(&len, p, sizeof(uint32));
		p += sizeof(uint32);
		if ((uint64) (end - p) < len)
			elog(ERROR, "wam_expr_repeat_deserial: truncated state");
		bm = roaring_bitmap_portable_deserialize_safe(p, len);
		if (bm == NULL)
			elog(ERROR, "wam_expr_repeat_deserial: corrupt state");
		wam_repeat_set_level(st, k, bm);
		p += len;
	}
	PG_RETURN_POINTER(st);
}

/*
 * wam_expr_repeat_final returns the ids seen at least `times` times (or
 * exactly: at least times but not times + 1), NULL when there were no rows.
 * The state keeps what it means (its counters are folded into its levels).
 */
Datum
wam_expr_repeat_final(PG_FUNCTION_ARGS)
{
	WamRepeatState *st;
	roaring_bitmap_t *bm;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	st = (WamRepeatState *) PG_GETARG_POINTER(0);
	wam_repeat_flush(st);
	if (st->exactly)
		bm = roaring_bitmap_andnot(st->level[st->times - 1], st->level[st->times]);
	else
		bm = roaring_bitmap_copy(st->level[st->times - 1]);
	PG_RETURN_SEGMENT_NEW(bm);
}
