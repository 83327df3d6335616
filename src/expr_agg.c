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
 * Partial states are combined level by level (the ids seen >= k times in
 * A + B are those seen >= i times in A and >= k - i times in B, for some i).
 * The state type is bytea, not internal, so that Citus pushes the aggregate
 * down to its workers (it ships partial states as text, through the state
 * type's output and input functions) and PostgreSQL runs it in parallel
 * without serial/deserial functions.  While the aggregate runs, the state is
 * a read/write expanded object (utils/expandeddatum.h) in the aggregate
 * context, which nodeAgg (and Citus's worker_partial_agg) adopt without
 * copying, so a row still costs one counter increment; whenever a flat value
 * is needed (a tuple, bytea's output function) it is flattened to
 *		int32 times, int32 exactly, then per level: uint32 length, portable
 *		serialization of the bitmap.
 * A flat state given by anybody (the support functions take bytea) is
 * validated as it is read.  Every bitmap is owned by the state's memory
 * context (see segment.h).
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
	ExpandedObjectHeader hdr;	/* must be first */
	int32		magic;			/* WAM_REPEAT_MAGIC */
	int32		times;
	bool		exactly;
	int32		nlevels;
	roaring_bitmap_t *level[WAM_REPEAT_MAX_LEVELS];	/* level[k]: seen > k times */
	WamBitmapHolder *holder[WAM_REPEAT_MAX_LEVELS];	/* owns level[k] */
	MemoryContext cxt;			/* owns everything of the state */
	uint8	  **blocks;			/* NULL or 65,536 counter arrays by high 16 bits */
	int32		nblocks;		/* counter arrays allocated */
	Size		flat_size;		/* flattened size, 0 if not known */
	size_t		sizes[WAM_REPEAT_MAX_LEVELS];	/* levels' sizes when flat_size is */
} WamRepeatState;

#define WAM_REPEAT_MAGIC		0x7E9EA7A5
#define WAM_REPEAT_FLAT_HDRSZ	(VARHDRSZ + 2 * sizeof(int32))

PG_FUNCTION_INFO_V1(wam_expr_repeat_trans);
PG_FUNCTION_INFO_V1(wam_expr_repeat_combine);
PG_FUNCTION_INFO_V1(wam_expr_repeat_final);

static Size wam_repeat_get_flat_size(ExpandedObjectHeader *eohptr);
static void wam_repeat_flatten_into(ExpandedObjectHeader *eohptr, void *result,
									Size allocated_size);

static const ExpandedObjectMethods wam_repeat_methods =
{
	wam_repeat_get_flat_size,
	wam_repeat_flatten_into
};

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

/*
 * A new state with empty levels (or none yet): an expanded object whose own
 * context, a child of parent, owns everything of it.
 */
static WamRepeatState *
wam_repeat_alloc(MemoryContext parent, int32 times, bool exactly, bool levels)
{
	WamRepeatState *st;
	MemoryContext objcxt;
	int			k;

	if (times < 1 || times + (exactly ? 1 : 0) > WAM_REPEAT_MAX_LEVELS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("repeat count %d is out of range for wam.segment_repeat_agg", times),
				 errdetail("The count must be between 1 and %d (%d with exactly).",
						   WAM_REPEAT_MAX_LEVELS, WAM_REPEAT_MAX_LEVELS - 1)));
	objcxt = AllocSetContextCreate(parent, "wam.segment_repeat_agg state",
								   ALLOCSET_SMALL_SIZES);
	st = MemoryContextAllocZero(objcxt, sizeof(WamRepeatState));
	EOH_init_header(&st->hdr, &wam_repeat_methods, objcxt);
	st->magic = WAM_REPEAT_MAGIC;
	st->times = times;
	st->exactly = exactly;
	st->nlevels = times + (exactly ? 1 : 0);
	st->cxt = objcxt;
	for (k = 0; levels && k < st->nlevels; k++)
		wam_repeat_set_level(st, k, wam_bitmap_check_alloc(roaring_bitmap_create()));
	return st;
}

/* Our own expanded state behind d, or NULL if d is anything else. */
static WamRepeatState *
wam_repeat_expanded(Datum d)
{
	WamRepeatState *st;

	if (!VARATT_IS_EXTERNAL_EXPANDED(DatumGetPointer(d)))
		return NULL;
	st = (WamRepeatState *) DatumGetEOHP(d);
	if (st->hdr.eoh_methods != &wam_repeat_methods || st->magic != WAM_REPEAT_MAGIC)
		return NULL;
	return st;
}

static void
wam_repeat_corrupt(const char *why)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
			 errmsg("invalid wam.segment_repeat_agg state"),
			 errdetail("%s", why)));
}

/* A new expanded state in parent from a flat (bytea) one, which is validated. */
static WamRepeatState *
wam_repeat_read_flat(Datum d, MemoryContext parent)
{
	bytea	   *in = DatumGetByteaPP(d);
	const char *p = VARDATA_ANY(in);
	const char *end = p + VARSIZE_ANY_EXHDR(in);
	int32		times;
	int32		exactly;
	WamRepeatState *st;
	int			k;

	if (end - p < 2 * (int) sizeof(int32))
		wam_repeat_corrupt("The state is truncated.");
	memcpy(&times, p, sizeof(int32));
	memcpy(&exactly, p + sizeof(int32), sizeof(int32));
	p += 2 * sizeof(int32);
	if (exactly != 0 && exactly != 1)
		wam_repeat_corrupt("The exactly flag is neither 0 nor 1.");
	st = wam_repeat_alloc(parent, times, exactly != 0, false);
	PG_TRY();
	{
		for (k = 0; k < st->nlevels; k++)
		{
			uint32		len;
			roaring_bitmap_t *bm;

			if (end - p < (long) sizeof(uint32))
				wam_repeat_corrupt("The state is truncated.");
			memcpy(&len, p, sizeof(uint32));
			p += sizeof(uint32);
			if ((uint64) (end - p) < len)
				wam_repeat_corrupt("The state is truncated.");
			bm = roaring_bitmap_portable_deserialize_safe(p, len);
			if (bm == NULL || roaring_bitmap_portable_size_in_bytes(bm) != len)
			{
				if (bm != NULL)
					roaring_bitmap_free(bm);
				wam_repeat_corrupt("A level is not a valid portable Roaring bitmap.");
			}
			wam_repeat_set_level(st, k, bm);
			p += len;
		}
		if (p != end)
			wam_repeat_corrupt("The state has trailing bytes.");
	}
	PG_CATCH();
	{
		MemoryContextDelete(st->cxt);
		PG_RE_THROW();
	}
	PG_END_TRY();
	return st;
}

/*
 * wam_repeat_state returns the state behind d to update in place: our own
 * read/write expanded object as is, anything else (a flat state, or an
 * object we may not change) as a new expanded object in aggcxt.
 */
static WamRepeatState *
wam_repeat_state(Datum d, MemoryContext aggcxt)
{
	WamRepeatState *st = wam_repeat_expanded(d);
	WamRepeatState *r;
	int			k;

	if (st != NULL && VARATT_IS_EXTERNAL_EXPANDED_RW(DatumGetPointer(d)))
		return st;
	if (st == NULL)
		return wam_repeat_read_flat(d, aggcxt);
	wam_repeat_flush(st);		/* same meaning, only its form changes */
	r = wam_repeat_alloc(aggcxt, st->times, st->exactly, false);
	for (k = 0; k < r->nlevels; k++)
		wam_repeat_set_level(r, k, wam_bitmap_check_alloc(roaring_bitmap_copy(st->level[k])));
	return r;
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
		st = wam_repeat_alloc(aggcxt, PG_GETARG_INT32(2), PG_GETARG_BOOL(3), true);
	else
	{
		st = wam_repeat_state(PG_GETARG_DATUM(0), aggcxt);
		if (st->times != PG_GETARG_INT32(2) || st->exactly != PG_GETARG_BOOL(3))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("repeat count must be the same for every row")));
	}
	if (!PG_ARGISNULL(1))
	{
		id = wam_segment_check_id(PG_GETARG_INT64(1));
		if (st->blocks == NULL)
			st->blocks = MemoryContextAllocZero(st->cxt, sizeof(uint8 *) * 65536);
		counts = st->blocks[id >> 16];
		if (counts == NULL)
		{
			if (st->nblocks >= WAM_REPEAT_MAX_BLOCKS)
				wam_repeat_flush(st);
			counts = MemoryContextAllocZero(st->cxt, 65536);
			st->blocks[id >> 16] = counts;
			st->nblocks++;
		}
		/* saturating: more than nlevels occurrences all mean "every level" */
		if (counts[id & 0xFFFF] < st->nlevels)
			counts[id & 0xFFFF]++;
		st->flat_size = 0;
	}
	PG_RETURN_DATUM(EOHPGetRWDatum(&st->hdr));
}

/*
 * wam_expr_repeat_combine merges two partial states (see wam_repeat_merge)
 * into the first one.
 */
Datum
wam_expr_repeat_combine(PG_FUNCTION_ARGS)
{
	MemoryContext aggcxt = wam_repeat_context(fcinfo, "wam_expr_repeat_combine");
	WamRepeatState *a;
	WamRepeatState *b;
	MemoryContext tmp = NULL;
	roaring_bitmap_t *merged[WAM_REPEAT_MAX_LEVELS];
	int			k;

	if (PG_ARGISNULL(1))
	{
		if (PG_ARGISNULL(0))
			PG_RETURN_NULL();
		PG_RETURN_DATUM(PG_GETARG_DATUM(0));
	}
	if (PG_ARGISNULL(0))
	{
		/* a copy of b that is ours to change */
		a = wam_repeat_state(PG_GETARG_DATUM(1), aggcxt);
		wam_repeat_flush(a);
		PG_RETURN_DATUM(EOHPGetRWDatum(&a->hdr));
	}
	a = wam_repeat_state(PG_GETARG_DATUM(0), aggcxt);
	b = wam_repeat_expanded(PG_GETARG_DATUM(1));
	if (b == NULL)
	{
		/* a flat partial state (another process or node): read it for now */
		tmp = AllocSetContextCreate(CurrentMemoryContext, "wam.segment_repeat_agg input",
									ALLOCSET_SMALL_SIZES);
		b = wam_repeat_read_flat(PG_GETARG_DATUM(1), tmp);
	}
	if (a->times != b->times || a->exactly != b->exactly)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("repeat count must be the same for every row"),
				 errdetail("Partial states of counts %d%s and %d%s cannot be combined.",
						   a->times, a->exactly ? " (exactly)" : "",
						   b->times, b->exactly ? " (exactly)" : "")));
	wam_repeat_flush(a);
	wam_repeat_flush(b);
	wam_repeat_merge(a->level, b->level, a->nlevels, merged);
	for (k = 0; k < a->nlevels; k++)
		wam_repeat_set_level(a, k, merged[k]);
	a->flat_size = 0;
	if (tmp != NULL)
		MemoryContextDelete(tmp);
	CHECK_FOR_INTERRUPTS();
	PG_RETURN_DATUM(EOHPGetRWDatum(&a->hdr));
}

/* The flat form: see the top of this file. */
static Size
wam_repeat_get_flat_size(ExpandedObjectHeader *eohptr)
{
	WamRepeatState *st = (WamRepeatState *) eohptr;
	Size		total = WAM_REPEAT_FLAT_HDRSZ;
	int			k;

	Assert(st->magic == WAM_REPEAT_MAGIC);
	if (st->flat_size != 0)
		return st->flat_size;
	wam_repeat_flush(st);
	for (k = 0; k < st->nlevels; k++)
	{
		roaring_bitmap_run_optimize(st->level[k]);
		st->sizes[k] = roaring_bitmap_portable_size_in_bytes(st->level[k]);
		total = add_size(total, add_size(sizeof(uint32), st->sizes[k]));
	}
	if (total > MaxAllocSize)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("wam.segment_repeat_agg state is too large"),
				 errdetail("The serialized state needs %zu bytes; the limit is %zu.",
						   (size_t) total, (size_t) MaxAllocSize)));
	st->flat_size = total;
	return total;
}

static void
wam_repeat_flatten_into(ExpandedObjectHeader *eohptr, void *result, Size allocated_size)
{
	WamRepeatState *st = (WamRepeatState *) eohptr;
	char	   *p = VARDATA(result);
	int32		v;
	int			k;

	Assert(st->magic == WAM_REPEAT_MAGIC);
	if (allocated_size != st->flat_size)
		elog(ERROR, "wam_repeat_flatten_into: %zu bytes allocated for %zu",
			 (size_t) allocated_size, (size_t) st->flat_size);
	SET_VARSIZE(result, allocated_size);
	memcpy(p, &st->times, sizeof(int32));
	p += sizeof(int32);
	v = st->exactly ? 1 : 0;
	memcpy(p, &v, sizeof(int32));
	p += sizeof(int32);
	for (k = 0; k < st->nlevels; k++)
	{
		uint32		len = (uint32) st->sizes[k];

		memcpy(p, &len, sizeof(uint32));
		p += sizeof(uint32);
		if (roaring_bitmap_portable_serialize(st->level[k], p) != st->sizes[k])
			elog(ERROR, "wam_repeat_flatten_into: serialization size mismatch");
		p += st->sizes[k];
	}
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
	MemoryContext tmp = NULL;
	roaring_bitmap_t *bm;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	st = wam_repeat_expanded(PG_GETARG_DATUM(0));
	if (st == NULL)
	{
		tmp = AllocSetContextCreate(CurrentMemoryContext, "wam.segment_repeat_agg final",
									ALLOCSET_SMALL_SIZES);
		st = wam_repeat_read_flat(PG_GETARG_DATUM(0), tmp);
	}
	wam_repeat_flush(st);
	if (st->exactly)
		bm = roaring_bitmap_andnot(st->level[st->times - 1], st->level[st->times]);
	else
		bm = roaring_bitmap_copy(st->level[st->times - 1]);
	if (tmp != NULL)
		MemoryContextDelete(tmp);
	PG_RETURN_SEGMENT_NEW(bm);
}

/*
 * The serial/deserial functions of version 0.1's internal state: kept so that
 * the 0.1 install script loads (the update to 0.2 drops them); never called.
 */
PG_FUNCTION_INFO_V1(wam_expr_repeat_serial);
PG_FUNCTION_INFO_V1(wam_expr_repeat_deserial);

Datum
wam_expr_repeat_serial(PG_FUNCTION_ARGS)
{
	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("wam_expr_repeat_serial is no longer supported"),
			 errhint("Update the extension: ALTER EXTENSION pg_wamarketing UPDATE.")));
	PG_RETURN_NULL();
}

Datum
wam_expr_repeat_deserial(PG_FUNCTION_ARGS)
{
	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("wam_expr_repeat_deserial is no longer supported"),
			 errhint("Update the extension: ALTER EXTENSION pg_wamarketing UPDATE.")));
	PG_RETURN_NULL();
}
