/*-------------------------------------------------------------------------
 *
 * segment_ops.c
 *	  Set algebra, comparison, hashing and scalar functions of wam.segment.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "common/hashfn.h"
#include "miscadmin.h"
#include "utils/builtins.h"

#include "segment.h"

PG_FUNCTION_INFO_V1(wam_segment_and);
PG_FUNCTION_INFO_V1(wam_segment_or);
PG_FUNCTION_INFO_V1(wam_segment_andnot);
PG_FUNCTION_INFO_V1(wam_segment_xor);
PG_FUNCTION_INFO_V1(wam_segment_contains_segment);
PG_FUNCTION_INFO_V1(wam_segment_contained_by_segment);
PG_FUNCTION_INFO_V1(wam_segment_contains_id);
PG_FUNCTION_INFO_V1(wam_segment_id_contained_by);
PG_FUNCTION_INFO_V1(wam_segment_overlaps);
PG_FUNCTION_INFO_V1(wam_segment_eq);
PG_FUNCTION_INFO_V1(wam_segment_ne);
PG_FUNCTION_INFO_V1(wam_segment_lt);
PG_FUNCTION_INFO_V1(wam_segment_le);
PG_FUNCTION_INFO_V1(wam_segment_gt);
PG_FUNCTION_INFO_V1(wam_segment_ge);
PG_FUNCTION_INFO_V1(wam_segment_cmp);
PG_FUNCTION_INFO_V1(wam_segment_hash);
PG_FUNCTION_INFO_V1(wam_segment_hash_extended);
PG_FUNCTION_INFO_V1(wam_segment_cardinality);
PG_FUNCTION_INFO_V1(wam_segment_and_cardinality);
PG_FUNCTION_INFO_V1(wam_segment_or_cardinality);
PG_FUNCTION_INFO_V1(wam_segment_andnot_cardinality);
PG_FUNCTION_INFO_V1(wam_segment_xor_cardinality);
PG_FUNCTION_INFO_V1(wam_segment_is_empty);
PG_FUNCTION_INFO_V1(wam_segment_add);
PG_FUNCTION_INFO_V1(wam_segment_remove);
PG_FUNCTION_INFO_V1(wam_segment_min);
PG_FUNCTION_INFO_V1(wam_segment_max);
PG_FUNCTION_INFO_V1(wam_segment_range);
PG_FUNCTION_INFO_V1(wam_segment_jaccard);

/*
 * wam_segment_check_id converts a bigint customer id to the uint32 a segment
 * stores, rejecting anything outside 0 .. 4294967295.
 */
uint32
wam_segment_check_id(int64 id)
{
	if (id < 0 || id > WAM_SEGMENT_MAX_ID)
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("customer id " INT64_FORMAT " is out of range for type wam.segment",
						id),
				 errdetail("Customer ids must be between 0 and 4294967295.")));
	return (uint32) id;
}

/* -------- set algebra -------- */

Datum
wam_segment_and(PG_FUNCTION_ARGS)
{
	const roaring_bitmap_t *a = PG_GETARG_SEGMENT_BITMAP(0);
	const roaring_bitmap_t *b = PG_GETARG_SEGMENT_BITMAP(1);

	PG_RETURN_SEGMENT_NEW(roaring_bitmap_and(a, b));
}

Datum
wam_segment_or(PG_FUNCTION_ARGS)
{
	const roaring_bitmap_t *a = PG_GETARG_SEGMENT_BITMAP(0);
	const roaring_bitmap_t *b = PG_GETARG_SEGMENT_BITMAP(1);

	PG_RETURN_SEGMENT_NEW(roaring_bitmap_or(a, b));
}

Datum
wam_segment_andnot(PG_FUNCTION_ARGS)
{
	const roaring_bitmap_t *a = PG_GETARG_SEGMENT_BITMAP(0);
	const roaring_bitmap_t *b = PG_GETARG_SEGMENT_BITMAP(1);

	PG_RETURN_SEGMENT_NEW(roaring_bitmap_andnot(a, b));
}

Datum
wam_segment_xor(PG_FUNCTION_ARGS)
{
	const roaring_bitmap_t *a = PG_GETARG_SEGMENT_BITMAP(0);
	const roaring_bitmap_t *b = PG_GETARG_SEGMENT_BITMAP(1);

	PG_RETURN_SEGMENT_NEW(roaring_bitmap_xor(a, b));
}

/* -------- containment and overlap -------- */

Datum
wam_segment_contains_segment(PG_FUNCTION_ARGS)
{
	const roaring_bitmap_t *a = PG_GETARG_SEGMENT_BITMAP(0);
	const roaring_bitmap_t *b = PG_GETARG_SEGMENT_BITMAP(1);

	PG_RETURN_BOOL(roaring_bitmap_is_subset(b, a));
}

Datum
wam_segment_contained_by_segment(PG_FUNCTION_ARGS)
{
	const roaring_bitmap_t *a = PG_GETARG_SEGMENT_BITMAP(0);
	const roaring_bitmap_t *b = PG_GETARG_SEGMENT_BITMAP(1);

	PG_RETURN_BOOL(roaring_bitmap_is_subset(a, b));
}

Datum
wam_segment_contains_id(PG_FUNCTION_ARGS)
{
	uint32		id = wam_segment_check_id(PG_GETARG_INT64(1));
	const roaring_bitmap_t *a = PG_GETARG_SEGMENT_BITMAP(0);

	PG_RETURN_BOOL(roaring_bitmap_contains(a, id));
}

Datum
wam_segment_id_contained_by(PG_FUNCTION_ARGS)
{
	uint32		id = wam_segment_check_id(PG_GETARG_INT64(0));
	const roaring_bitmap_t *a = PG_GETARG_SEGMENT_BITMAP(1);

	PG_RETURN_BOOL(roaring_bitmap_contains(a, id));
}

Datum
wam_segment_overlaps(PG_FUNCTION_ARGS)
{
	const roaring_bitmap_t *a = PG_GETARG_SEGMENT_BITMAP(0);
	const roaring_bitmap_t *b = PG_GETARG_SEGMENT_BITMAP(1);

	PG_RETURN_BOOL(roaring_bitmap_intersect(a, b));
}

/* -------- equality, ordering, hashing -------- */

/*
 * wam_segment_bytes_equal compares the canonical serializations; equal sets
 * have equal bytes (see segment_bitmap.c), so this decides most calls
 * without deserializing.
 */
static bool
wam_segment_bytes_equal(WamSegmentFlat *a, WamSegmentFlat *b)
{
	return VARSIZE(a) == VARSIZE(b) &&
		memcmp(a->data, b->data, WAM_SEGMENT_DATA_LEN(a)) == 0;
}

/*
 * wam_segment_compare orders segments lexicographically by their ascending
 * member lists (like arrays): {1,2} < {1,2,3} < {1,3} < {2}; {} is smallest.
 */
static int
wam_segment_compare(Datum da, Datum db)
{
	WamSegmentFlat *fa = wam_segment_detoast(da);
	WamSegmentFlat *fb = wam_segment_detoast(db);
	const roaring_bitmap_t *a;
	const roaring_bitmap_t *b;
	roaring_uint32_iterator_t ia;
	roaring_uint32_iterator_t ib;
	uint64		steps;

	if (wam_segment_bytes_equal(fa, fb))
		return 0;
	a = wam_bitmap_from_portable(fa->data, WAM_SEGMENT_DATA_LEN(fa), false);
	b = wam_bitmap_from_portable(fb->data, WAM_SEGMENT_DATA_LEN(fb), false);
	roaring_init_iterator(a, &ia);
	roaring_init_iterator(b, &ib);
	for (steps = 1;; steps++)
	{
		if (!ia.has_value || !ib.has_value)
			return (int) ia.has_value - (int) ib.has_value;
		if (ia.current_value != ib.current_value)
			return ia.current_value < ib.current_value ? -1 : 1;
		roaring_advance_uint32_iterator(&ia);
		roaring_advance_uint32_iterator(&ib);
		/* two segments sharing a long prefix: billions of steps */
		if ((steps & 0xFFFF) == 0)
			CHECK_FOR_INTERRUPTS();
	}
}

Datum
wam_segment_eq(PG_FUNCTION_ARGS)
{
	WamSegmentFlat *a = wam_segment_detoast(PG_GETARG_DATUM(0));
	WamSegmentFlat *b = wam_segment_detoast(PG_GETARG_DATUM(1));

	PG_RETURN_BOOL(wam_segment_bytes_equal(a, b));
}

Datum
wam_segment_ne(PG_FUNCTION_ARGS)
{
	WamSegmentFlat *a = wam_segment_detoast(PG_GETARG_DATUM(0));
	WamSegmentFlat *b = wam_segment_detoast(PG_GETARG_DATUM(1));

	PG_RETURN_BOOL(!wam_segment_bytes_equal(a, b));
}

Datum
wam_segment_lt(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(wam_segment_compare(PG_GETARG_DATUM(0), PG_GETARG_DATUM(1)) < 0);
}

Datum
wam_segment_le(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(wam_segment_compare(PG_GETARG_DATUM(0), PG_GETARG_DATUM(1)) <= 0);
}

Datum
wam_segment_gt(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(wam_segment_compare(PG_GETARG_DATUM(0), PG_GETARG_DATUM(1)) > 0);
}

Datum
wam_segment_ge(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(wam_segment_compare(PG_GETARG_DATUM(0), PG_GETARG_DATUM(1)) >= 0);
}

Datum
wam_segment_cmp(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT32(wam_segment_compare(PG_GETARG_DATUM(0), PG_GETARG_DATUM(1)));
}

Datum
wam_segment_hash(PG_FUNCTION_ARGS)
{
	WamSegmentFlat *f = wam_segment_detoast(PG_GETARG_DATUM(0));

	return hash_any((const unsigned char *) f->data, WAM_SEGMENT_DATA_LEN(f));
}

Datum
wam_segment_hash_extended(PG_FUNCTION_ARGS)
{
	WamSegmentFlat *f = wam_segment_detoast(PG_GETARG_DATUM(0));

	return hash_any_extended((const unsigned char *) f->data,
							 WAM_SEGMENT_DATA_LEN(f), PG_GETARG_INT64(1));
}

/* -------- counting -------- */

Datum
wam_segment_cardinality(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT64((int64) wam_segment_cardinality_datum(PG_GETARG_DATUM(0)));
}

/*
 * The fused cardinalities count |a op b| without building a op b.
 */
Datum
wam_segment_and_cardinality(PG_FUNCTION_ARGS)
{
	const roaring_bitmap_t *a = PG_GETARG_SEGMENT_BITMAP(0);
	const roaring_bitmap_t *b = PG_GETARG_SEGMENT_BITMAP(1);

	PG_RETURN_INT64((int64) roaring_bitmap_and_cardinality(a, b));
}

Datum
wam_segment_or_cardinality(PG_FUNCTION_ARGS)
{
	const roaring_bitmap_t *a = PG_GETARG_SEGMENT_BITMAP(0);
	const roaring_bitmap_t *b = PG_GETARG_SEGMENT_BITMAP(1);

	PG_RETURN_INT64((int64) roaring_bitmap_or_cardinality(a, b));
}

Datum
wam_segment_andnot_cardinality(PG_FUNCTION_ARGS)
{
	const roaring_bitmap_t *a = PG_GETARG_SEGMENT_BITMAP(0);
	const roaring_bitmap_t *b = PG_GETARG_SEGMENT_BITMAP(1);

	PG_RETURN_INT64((int64) roaring_bitmap_andnot_cardinality(a, b));
}

Datum
wam_segment_xor_cardinality(PG_FUNCTION_ARGS)
{
	const roaring_bitmap_t *a = PG_GETARG_SEGMENT_BITMAP(0);
	const roaring_bitmap_t *b = PG_GETARG_SEGMENT_BITMAP(1);

	PG_RETURN_INT64((int64) roaring_bitmap_xor_cardinality(a, b));
}

Datum
wam_segment_jaccard(PG_FUNCTION_ARGS)
{
	const roaring_bitmap_t *a = PG_GETARG_SEGMENT_BITMAP(0);
	const roaring_bitmap_t *b = PG_GETARG_SEGMENT_BITMAP(1);
	uint64		inter = roaring_bitmap_and_cardinality(a, b);
	uint64		uni = roaring_bitmap_or_cardinality(a, b);

	/* two empty sets are identical: define their similarity as 1 */
	if (uni == 0)
		PG_RETURN_FLOAT8(1.0);
	PG_RETURN_FLOAT8((double) inter / (double) uni);
}

Datum
wam_segment_is_empty(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(wam_segment_cardinality_datum(PG_GETARG_DATUM(0)) == 0);
}

/* -------- single members -------- */

Datum
wam_segment_add(PG_FUNCTION_ARGS)
{
	uint32		id = wam_segment_check_id(PG_GETARG_INT64(1));
	roaring_bitmap_t *bm = wam_segment_copy_unowned(PG_GETARG_DATUM(0));

	roaring_bitmap_add(bm, id);
	PG_RETURN_SEGMENT_NEW(bm);
}

Datum
wam_segment_remove(PG_FUNCTION_ARGS)
{
	uint32		id = wam_segment_check_id(PG_GETARG_INT64(1));
	roaring_bitmap_t *bm = wam_segment_copy_unowned(PG_GETARG_DATUM(0));

	roaring_bitmap_remove(bm, id);
	PG_RETURN_SEGMENT_NEW(bm);
}

Datum
wam_segment_min(PG_FUNCTION_ARGS)
{
	const roaring_bitmap_t *a = PG_GETARG_SEGMENT_BITMAP(0);

	if (roaring_bitmap_is_empty(a))
		PG_RETURN_NULL();
	PG_RETURN_INT64((int64) roaring_bitmap_minimum(a));
}

Datum
wam_segment_max(PG_FUNCTION_ARGS)
{
	const roaring_bitmap_t *a = PG_GETARG_SEGMENT_BITMAP(0);

	if (roaring_bitmap_is_empty(a))
		PG_RETURN_NULL();
	PG_RETURN_INT64((int64) roaring_bitmap_maximum(a));
}

/*
 * wam_segment_range returns the half-open range [lo, hi).  hi may be
 * 4294967296 so that the last id can be included.
 */
Datum
wam_segment_range(PG_FUNCTION_ARGS)
{
	int64		lo = PG_GETARG_INT64(0);
	int64		hi = PG_GETARG_INT64(1);
	roaring_bitmap_t *bm;

	if (lo < 0 || lo > WAM_SEGMENT_MAX_ID + 1 ||
		hi < 0 || hi > WAM_SEGMENT_MAX_ID + 1)
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("range bounds [" INT64_FORMAT ", " INT64_FORMAT ") are out of range for type wam.segment",
						lo, hi),
				 errdetail("Both bounds must be between 0 and 4294967296 (the upper bound is exclusive).")));
	if (lo >= hi)
		bm = roaring_bitmap_create();
	else
		bm = roaring_bitmap_from_range((uint64) lo, (uint64) hi, 1);
	PG_RETURN_SEGMENT_NEW(bm);
}
