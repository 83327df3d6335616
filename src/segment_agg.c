/*-------------------------------------------------------------------------
 *
 * segment_agg.c
 *	  Aggregates building and combining segments:
 *		wam.segment_agg(bigint), wam.segment_union_agg(segment),
 *		wam.segment_intersect_agg(segment).
 *
 * The transition state is wam.segment itself, held as a read/write expanded
 * object in the aggregate context: nodeAgg adopts such an object without
 * copying, so each row costs one bitmap insert, as fast as an `internal`
 * state.  Because the state is a real type with a combine function, the
 * aggregates run in parallel (PostgreSQL flattens the state between
 * processes; no serial/deserial functions are needed) and Citus can push
 * them down to its workers, shipping states as text.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "segment.h"

PG_FUNCTION_INFO_V1(wam_segment_agg_trans);
PG_FUNCTION_INFO_V1(wam_segment_union_trans);
PG_FUNCTION_INFO_V1(wam_segment_intersect_trans);

/*
 * wam_agg_state returns the expanded state to update in place.  A state
 * that is already our read/write object is used as is; anything else (the
 * first input copied in by nodeAgg, or a partial state from a parallel
 * worker) is converted into a new expanded object in the aggregate context.
 */
static WamSegmentExpanded *
wam_agg_state(FunctionCallInfo fcinfo, const char *fname)
{
	MemoryContext aggcxt;
	Datum		state = PG_GETARG_DATUM(0);
	roaring_bitmap_t *bm;

	if (!AggCheckCallContext(fcinfo, &aggcxt))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("%s called in non-aggregate context", fname)));

	if (PG_ARGISNULL(0))
		bm = roaring_bitmap_create();
	else if (VARATT_IS_EXTERNAL_EXPANDED_RW(DatumGetPointer(state)))
		return wam_segment_expanded(state);
	else
		bm = wam_segment_copy_unowned(state);
	return wam_segment_expand(bm, aggcxt);
}

/*
 * wam_segment_agg_trans adds one customer id; NULL ids are skipped.
 */
Datum
wam_segment_agg_trans(PG_FUNCTION_ARGS)
{
	WamSegmentExpanded *eseg;

	/* like other aggregates, no non-NULL input means a NULL result */
	if (PG_ARGISNULL(0) && PG_ARGISNULL(1))
	{
		if (!AggCheckCallContext(fcinfo, NULL))
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("%s called in non-aggregate context",
							"wam_segment_agg_trans")));
		PG_RETURN_NULL();
	}
	eseg = wam_agg_state(fcinfo, "wam_segment_agg_trans");
	if (!PG_ARGISNULL(1))
	{
		roaring_bitmap_add(eseg->bm, wam_segment_check_id(PG_GETARG_INT64(1)));
		eseg->flat_size = 0;
	}
	PG_RETURN_DATUM(EOHPGetRWDatum(&eseg->hdr));
}

/*
 * wam_segment_union_trans is both the transition and the combine function
 * of union_agg and the combine function of segment_agg.  It is strict, so
 * nodeAgg seeds the state with the first non-NULL input.
 */
Datum
wam_segment_union_trans(PG_FUNCTION_ARGS)
{
	WamSegmentExpanded *eseg = wam_agg_state(fcinfo, "wam_segment_union_trans");

	roaring_bitmap_or_inplace(eseg->bm, wam_segment_read(PG_GETARG_DATUM(1)));
	eseg->flat_size = 0;
	PG_RETURN_DATUM(EOHPGetRWDatum(&eseg->hdr));
}

/*
 * wam_segment_intersect_trans is the transition and combine function of
 * intersect_agg (strict, seeded with the first non-NULL input).
 */
Datum
wam_segment_intersect_trans(PG_FUNCTION_ARGS)
{
	WamSegmentExpanded *eseg = wam_agg_state(fcinfo, "wam_segment_intersect_trans");

	roaring_bitmap_and_inplace(eseg->bm, wam_segment_read(PG_GETARG_DATUM(1)));
	eseg->flat_size = 0;
	PG_RETURN_DATUM(EOHPGetRWDatum(&eseg->hdr));
}
