/*-------------------------------------------------------------------------
 *
 * tag_membership.h
 *	  Shared internals of the tag membership storage: wam.customer_tag
 *	  (the truth, one row per customer and tag) and wam.tag_chunk (each
 *	  tag's members as bitmaps of 65,536 ids).
 *
 *-------------------------------------------------------------------------
 */
#ifndef WAM_MEMBERSHIP_H
#define WAM_MEMBERSHIP_H

#include "postgres.h"
#include "utils/array.h"
#include "utils/timestamp.h"

#include "segment.h"

/* tag_membership.c: bulk writers of wam.customer_tag (bypass triggers) */
extern int64 wam_membership_insert_bitmap(int32 tag_id, const roaring_bitmap_t *bm,
										  TimestampTz expires_at, bool expires_null,
										  Datum source);
extern int64 wam_membership_delete_bitmap(int32 tag_id, const roaring_bitmap_t *bm);

/*
 * tag_membership.c: a tag's members read from wam.tag_chunk, all blocks or only
 * the listed ones (only_blocks NULL: all).  With fresh_snapshot the
 * blocks are read under a new snapshot (after locks were taken), else under
 * the caller's.  Returns a segment Datum allocated in the current memory
 * context.
 */
extern Datum wam_tag_blocks(int32 tag_id, ArrayType *only_blocks, bool fresh_snapshot);

/* tag_membership.c: the blocks (id >> 16) a bitmap has members in, as int4[] */
extern ArrayType *wam_bitmap_chunk_keys(const roaring_bitmap_t *bm);

/* tag_membership.c: the bitmap holding only container number `i` of bm */
extern roaring_bitmap_t *wam_bitmap_container(const roaring_bitmap_t *bm, int32 i);

#endif							/* WAM_MEMBERSHIP_H */
