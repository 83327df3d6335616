/*-------------------------------------------------------------------------
 *
 * segment.h
 *	  The wam.segment type: a set of customer ids (uint32) kept as a
 *	  CRoaring bitmap.
 *
 * On disk a segment is a varlena holding a small header followed by the
 * Roaring *portable* serialization, so the bytes after the header can be
 * read by every other Roaring implementation (Java, Go, Python, ...).
 *
 * In memory a segment is either that flat form or an expanded object
 * (utils/expandeddatum.h) that owns a live roaring_bitmap_t.  Aggregates use
 * the expanded form as their transition state so that adding one id does not
 * re-serialize the bitmap (PostgreSQL adopts a read/write expanded object
 * returned by a transition function without copying it).  This keeps the
 * state type a real SQL type, which Citus needs to push aggregates down.
 *
 * Debian's CRoaring 0.2.66 allocates with malloc and has no allocator hooks.
 * Every bitmap we create is therefore owned by a memory context through a
 * reset callback (WamBitmapHolder), so an ERROR or a cancel in the middle of
 * an operation frees it with the context and nothing leaks.
 *
 *-------------------------------------------------------------------------
 */
#ifndef WAM_SEGMENT_H
#define WAM_SEGMENT_H

#include "postgres.h"
#include "fmgr.h"
#include "utils/expandeddatum.h"

#include <roaring/roaring.h>

/* Largest customer id a segment can hold. */
#define WAM_SEGMENT_MAX_ID		((int64) PG_UINT32_MAX)

/* On-disk format version stored in every flat segment. */
#define WAM_SEGMENT_VERSION		1

/*
 * Flat (on-disk) layout.  Only the functions in segment_bitmap.c know it.
 * The payload is the portable serialization, which starts 8 bytes into the
 * varlena so it is 4-byte aligned under the type's int4 alignment.
 */
typedef struct WamSegmentFlat
{
	int32		vl_len_;		/* varlena header (do not touch directly) */
	uint8		version;		/* WAM_SEGMENT_VERSION */
	uint8		flags;			/* reserved for future use, always zero */
	uint16		reserved;		/* reserved for future use, always zero */
	char		data[FLEXIBLE_ARRAY_MEMBER];	/* portable serialization */
} WamSegmentFlat;

#define WAM_SEGMENT_HDRSZ		offsetof(WamSegmentFlat, data)
#define WAM_SEGMENT_DATA_LEN(f)	(VARSIZE(f) - WAM_SEGMENT_HDRSZ)

/* Expanded (in-memory, mutable) form. */
#define WAM_SEGMENT_EXPANDED_MAGIC	0x5E6B17A5

typedef struct WamSegmentExpanded
{
	ExpandedObjectHeader hdr;
	int			magic;
	roaring_bitmap_t *bm;		/* owned; freed by a reset callback */
	Size		flat_size;		/* cached flattened size, 0 if unknown */
	MemoryContextCallback free_cb;
} WamSegmentExpanded;

/*
 * A malloc'd bitmap owned by a memory context.  If the context is reset or
 * deleted (including by error recovery) the bitmap is freed; an explicit
 * wam_bitmap_release() frees it earlier and disarms the callback.
 */
typedef struct WamBitmapHolder
{
	MemoryContextCallback cb;
	roaring_bitmap_t *bm;
} WamBitmapHolder;

/* segment_bitmap.c: ownership */
extern WamBitmapHolder *wam_bitmap_hold(roaring_bitmap_t *bm, MemoryContext cxt);
extern void wam_bitmap_release(WamBitmapHolder *holder);
extern roaring_bitmap_t *wam_bitmap_new(void);
extern roaring_bitmap_t *wam_bitmap_check_alloc(roaring_bitmap_t *bm);

/* segment_bitmap.c: flat <-> bitmap */
extern void wam_portable_check(const char *buf, size_t len);
extern roaring_bitmap_t *wam_bitmap_from_portable(const char *buf, size_t len,
												  bool validate);
extern WamSegmentFlat *wam_segment_flatten(roaring_bitmap_t *bm);
extern WamSegmentFlat *wam_segment_from_portable(const char *buf, size_t len);

/* segment_bitmap.c: reading arguments */
extern const roaring_bitmap_t *wam_segment_read(Datum d);
extern roaring_bitmap_t *wam_segment_copy(Datum d);
extern roaring_bitmap_t *wam_segment_copy_unowned(Datum d);
extern WamSegmentFlat *wam_segment_detoast(Datum d);
extern uint64 wam_segment_cardinality_datum(Datum d);

/* segment_bitmap.c: expanded objects */
extern WamSegmentExpanded *wam_segment_expand(roaring_bitmap_t *bm,
											  MemoryContext parent);
extern bool wam_segment_is_expanded(Datum d);
extern WamSegmentExpanded *wam_segment_expanded(Datum d);

/* segment_ops.c helpers shared with other files */
extern uint32 wam_segment_check_id(int64 id);

/* wam.c: GUCs */
typedef enum WamSegmentOutputFormat
{
	WAM_SEGMENT_OUTPUT_ARRAY,
	WAM_SEGMENT_OUTPUT_HEX
} WamSegmentOutputFormat;

extern int	wam_segment_output_format;

#define PG_GETARG_SEGMENT_BITMAP(n)	wam_segment_read(PG_GETARG_DATUM(n))
#define PG_RETURN_SEGMENT_BITMAP(bm) PG_RETURN_POINTER(wam_segment_flatten(bm))

/*
 * PG_RETURN_SEGMENT_NEW returns a freshly made, not yet owned bitmap as a
 * read/write expanded object in the current memory context.  Nested
 * expressions such as (a & b) - c then pass the live bitmap from one
 * operator to the next instead of serializing and re-reading it; PostgreSQL
 * flattens the object only if it is stored or sent.
 */
#define PG_RETURN_SEGMENT_NEW(bm) \
	PG_RETURN_DATUM(EOHPGetRWDatum(&wam_segment_expand((bm), CurrentMemoryContext)->hdr))

#endif							/* WAM_SEGMENT_H */
