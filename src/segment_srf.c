/*-------------------------------------------------------------------------
 *
 * segment_srf.c
 *	  Set-returning functions of wam.segment: members() and split().
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "funcapi.h"
#include "miscadmin.h"
#include "nodes/nodeFuncs.h"
#include "nodes/supportnodes.h"
#include "optimizer/optimizer.h"
#include "utils/memutils.h"

#include "segment.h"

PG_FUNCTION_INFO_V1(wam_segment_members);
PG_FUNCTION_INFO_V1(wam_segment_split);
PG_FUNCTION_INFO_V1(wam_segment_members_support);

/* Most buckets split() accepts; A/B/n tests need a handful. */
#define WAM_SPLIT_MAX_BUCKETS	10000

/*
 * Most members split() accepts: its permutation takes 4 bytes per member and
 * must stay one ordinary allocation (under 1 GB).  268,435,455 members, far
 * more customers than anyone has; a segment of every possible id (2^32)
 * would otherwise ask for 16 GB.
 */
#define WAM_SPLIT_MAX_MEMBERS	((uint64) (MaxAllocSize / sizeof(uint32)))

/* Loops over members check for interrupts every this many. */
#define WAM_CFI_EVERY			65536

typedef struct WamMembersState
{
	roaring_uint32_iterator_t it;
	uint32		n;				/* ids in batch */
	uint32		pos;			/* next id to return from batch */
	uint32		batch[1024];
} WamMembersState;

/*
 * wam_segment_members streams the members in ascending order, one batch of
 * 1024 ids at a time, so a ten-million-member segment is never turned into
 * an array.  The bitmap and the iterator live in the SRF's multi-call
 * context, whose deletion (end of scan, error, cancel) frees the bitmap.
 */
Datum
wam_segment_members(PG_FUNCTION_ARGS)
{
	FuncCallContext *funcctx;
	WamMembersState *st;

	if (SRF_IS_FIRSTCALL())
	{
		MemoryContext oldcxt;
		roaring_bitmap_t *bm;

		funcctx = SRF_FIRSTCALL_INIT();
		oldcxt = MemoryContextSwitchTo(funcctx->multi_call_memory_ctx);
		bm = wam_segment_copy(PG_GETARG_DATUM(0));
		st = palloc(sizeof(WamMembersState));
		roaring_init_iterator(bm, &st->it);
		st->n = 0;
		st->pos = 0;
		funcctx->user_fctx = st;
		MemoryContextSwitchTo(oldcxt);
	}
	funcctx = SRF_PERCALL_SETUP();
	st = (WamMembersState *) funcctx->user_fctx;

	if (st->pos == st->n)
	{
		st->n = roaring_read_uint32_iterator(&st->it, st->batch,
											 lengthof(st->batch));
		st->pos = 0;
	}
	if (st->n == 0)
		SRF_RETURN_DONE(funcctx);
	SRF_RETURN_NEXT(funcctx, Int64GetDatum((int64) st->batch[st->pos++]));
}

/*
 * A tiny, portable PRNG (SplitMix64).  split() must give the same buckets
 * on every machine and PostgreSQL build, so it cannot use random() or the
 * platform's generator; SplitMix64 is pure 64-bit integer arithmetic.
 */
static inline uint64
wam_splitmix64(uint64 *state)
{
	uint64		z = (*state += UINT64CONST(0x9E3779B97F4A7C15));

	z = (z ^ (z >> 30)) * UINT64CONST(0xBF58476D1CE4E5B9);
	z = (z ^ (z >> 27)) * UINT64CONST(0x94D049BB133111EB);
	return z ^ (z >> 31);
}

/*
 * wam_random_below returns a uniform integer in [0, bound) without modulo
 * bias (rejection sampling on the top of the 64-bit range).
 */
static inline uint64
wam_random_below(uint64 *state, uint64 bound)
{
	uint64		limit = PG_UINT64_MAX - (PG_UINT64_MAX % bound);
	uint64		r;

	do
		r = wam_splitmix64(state);
	while (r >= limit);
	return r % bound;
}

typedef struct WamSplitState
{
	int			nbuckets;
	int			next;
	Datum	   *buckets;		/* flat segments */
} WamSplitState;

/*
 * wam_segment_split partitions a segment into `buckets` random parts whose
 * sizes differ by at most one.  It draws a uniformly random permutation of
 * the member positions (Fisher-Yates driven by SplitMix64 seeded with
 * `seed`) and deals the members round-robin in permuted order.  The result
 * depends only on the set, the bucket count and the seed.
 */
Datum
wam_segment_split(PG_FUNCTION_ARGS)
{
	FuncCallContext *funcctx;
	WamSplitState *st;

	if (SRF_IS_FIRSTCALL())
	{
		MemoryContext oldcxt;
		int32		nbuckets = PG_GETARG_INT32(1);
		uint64		rng = (uint64) PG_GETARG_INT64(2);
		const roaring_bitmap_t *bm;
		uint64		card;
		uint32	   *bucket_of;
		roaring_bitmap_t **parts;
		roaring_uint32_iterator_t it;
		uint32		batch[1024];
		uint32		n;
		uint64		pos;
		int			b;

		if (nbuckets < 1 || nbuckets > WAM_SPLIT_MAX_BUCKETS)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("number of buckets must be between 1 and %d, not %d",
							WAM_SPLIT_MAX_BUCKETS, nbuckets)));

		/* checked on the header alone, before the bitmap is even read */
		card = wam_segment_cardinality_datum(PG_GETARG_DATUM(0));
		if (card > WAM_SPLIT_MAX_MEMBERS)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("segment is too large to split"),
					 errdetail("The segment has " UINT64_FORMAT " members; wam.segment_split() accepts at most " UINT64_FORMAT ".",
							   card, WAM_SPLIT_MAX_MEMBERS)));

		funcctx = SRF_FIRSTCALL_INIT();
		oldcxt = MemoryContextSwitchTo(funcctx->multi_call_memory_ctx);

		bm = wam_segment_read(PG_GETARG_DATUM(0));
		if (roaring_bitmap_get_cardinality(bm) != card)
			elog(ERROR, "wam_segment_split: cardinality of the header and the bitmap differ");

		/*
		 * bucket_of[i] is the bucket of the i-th smallest member: position i
		 * goes to bucket perm(i) mod nbuckets, where perm is a random
		 * permutation built in place by Fisher-Yates.
		 */
		bucket_of = palloc(Max(card, 1) * sizeof(uint32));
		/* in strides of WAM_CFI_EVERY, with an interrupt check after each */
		for (pos = 0; pos < card;)
		{
			uint64		end = Min(card, pos + WAM_CFI_EVERY);

			for (; pos < end; pos++)
				bucket_of[pos] = (uint32) pos;
			CHECK_FOR_INTERRUPTS();
		}
		for (pos = card; pos > 1;)
		{
			uint64		stop = pos > WAM_CFI_EVERY + 1 ? pos - WAM_CFI_EVERY : 1;

			for (; pos > stop; pos--)
			{
				uint64		j = wam_random_below(&rng, pos);
				uint32		tmp = bucket_of[pos - 1];

				bucket_of[pos - 1] = bucket_of[j];
				bucket_of[j] = tmp;
			}
			CHECK_FOR_INTERRUPTS();
		}

		parts = palloc(sizeof(roaring_bitmap_t *) * nbuckets);
		for (b = 0; b < nbuckets; b++)
			parts[b] = wam_bitmap_new();

		pos = 0;
		roaring_init_iterator(bm, &it);
		while ((n = roaring_read_uint32_iterator(&it, batch, lengthof(batch))) > 0)
		{
			uint32		i;

			for (i = 0; i < n; i++, pos++)
				roaring_bitmap_add(parts[bucket_of[pos] % (uint32) nbuckets],
								   batch[i]);
			CHECK_FOR_INTERRUPTS();
		}
		pfree(bucket_of);

		st = palloc(sizeof(WamSplitState));
		st->nbuckets = nbuckets;
		st->next = 0;
		st->buckets = palloc(sizeof(Datum) * nbuckets);
		for (b = 0; b < nbuckets; b++)
		{
			st->buckets[b] = PointerGetDatum(wam_segment_flatten(parts[b]));
			CHECK_FOR_INTERRUPTS();
		}
		funcctx->user_fctx = st;
		MemoryContextSwitchTo(oldcxt);
	}
	funcctx = SRF_PERCALL_SETUP();
	st = (WamSplitState *) funcctx->user_fctx;
	if (st->next < st->nbuckets)
		SRF_RETURN_NEXT(funcctx, st->buckets[st->next++]);
	SRF_RETURN_DONE(funcctx);
}

/*
 * wam_segment_members_support tells the planner how many rows
 * wam.segment_members() returns when its argument is known at planning time
 * (a constant, or a PL/pgSQL variable under a custom plan): the segment's
 * cardinality, read from its header without deserializing.  Without it every
 * call is estimated at the declared 1000 rows, and a campaign of a million
 * recipients is joined row by row as if it were small.
 */
Datum
wam_segment_members_support(PG_FUNCTION_ARGS)
{
	Node	   *rawreq = (Node *) PG_GETARG_POINTER(0);
	SupportRequestRows *req;
	FuncExpr   *fexpr;
	Node	   *arg;

	if (!IsA(rawreq, SupportRequestRows))
		PG_RETURN_POINTER(NULL);
	req = (SupportRequestRows *) rawreq;
	if (!is_funcclause(req->node))
		PG_RETURN_POINTER(NULL);
	fexpr = (FuncExpr *) req->node;
	if (list_length(fexpr->args) != 1)
		PG_RETURN_POINTER(NULL);
	arg = linitial(fexpr->args);
	if (req->root != NULL)
		arg = estimate_expression_value(req->root, arg);
	if (!IsA(arg, Const))
		PG_RETURN_POINTER(NULL);
	if (((Const *) arg)->constisnull)
		req->rows = 0;
	else
		req->rows = (double) wam_segment_cardinality_datum(((Const *) arg)->constvalue);
	PG_RETURN_POINTER(req);
}
