/*-------------------------------------------------------------------------
 *
 * segment_bitmap.c
 *	  Ownership of CRoaring bitmaps, the flat <-> bitmap conversions and the
 *	  expanded-object form of wam.segment.
 *
 * Everything that allocates a roaring_bitmap_t goes through this file so
 * that each bitmap is owned by a memory context (see segment.h).
 *
 * Canonical form: every flat segment we produce is serialized after
 * roaring_bitmap_run_optimize(), which picks the smallest container for
 * each 64K chunk as a pure function of the chunk's contents.  Equal sets
 * therefore have identical bytes, which is what lets hashing work on bytes.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/detoast.h"
#include "utils/memutils.h"

#include "segment.h"
#include "segment_portable.h"

/*
 * CRoaring's container internals, for the canonicalization pass below.  The
 * library is pinned to Debian's 0.2.66, whose headers ship these.
 */
#include <roaring/containers/containers.h>

/* -------- ownership -------- */

static void
wam_bitmap_holder_callback(void *arg)
{
	WamBitmapHolder *holder = (WamBitmapHolder *) arg;

	if (holder->bm != NULL)
	{
		roaring_bitmap_free(holder->bm);
		holder->bm = NULL;
	}
}

/*
 * wam_bitmap_check_alloc raises out-of-memory when CRoaring returned NULL.
 */
roaring_bitmap_t *
wam_bitmap_check_alloc(roaring_bitmap_t *bm)
{
	if (bm == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory"),
				 errdetail("Failed to allocate a segment bitmap.")));
	return bm;
}

/*
 * wam_bitmap_hold makes cxt the owner of bm: when cxt is reset or deleted,
 * bm is freed.  The holder itself is allocated first, so a failure there
 * cannot orphan the bitmap... except that bm already exists; in that case
 * we free it before re-throwing.
 */
WamBitmapHolder *
wam_bitmap_hold(roaring_bitmap_t *bm, MemoryContext cxt)
{
	WamBitmapHolder *holder;

	wam_bitmap_check_alloc(bm);
	holder = MemoryContextAllocExtended(cxt, sizeof(WamBitmapHolder),
										MCXT_ALLOC_NO_OOM);
	if (holder == NULL)
	{
		roaring_bitmap_free(bm);
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory")));
	}
	holder->bm = bm;
	holder->cb.func = wam_bitmap_holder_callback;
	holder->cb.arg = holder;
	MemoryContextRegisterResetCallback(cxt, &holder->cb);
	return holder;
}

/*
 * wam_bitmap_release frees the bitmap now; the callback becomes a no-op.
 */
void
wam_bitmap_release(WamBitmapHolder *holder)
{
	if (holder != NULL && holder->bm != NULL)
	{
		roaring_bitmap_free(holder->bm);
		holder->bm = NULL;
	}
}

/*
 * wam_bitmap_new returns an empty bitmap owned by the current context.
 */
roaring_bitmap_t *
wam_bitmap_new(void)
{
	return wam_bitmap_hold(roaring_bitmap_create(), CurrentMemoryContext)->bm;
}

/* -------- canonical form -------- */

/*
 * wam_bitmap_canonicalize puts every container of bm into the one
 * representation our rule picks for its contents:
 *		run container	iff 2 + 4 * runs < (card <= 4096 ? 2 + 2 * card : 8192)
 *		array			iff not run and card <= 4096
 *		bitset			otherwise
 * roaring_bitmap_run_optimize() alone is not canonical: it keeps an existing
 * run container on a size tie but does not convert an array to runs on the
 * same tie, so {1,2} built from a range and from a list serialize
 * differently.  Equality and hashing compare bytes, so this matters.
 */
static void
wam_bitmap_canonicalize(roaring_bitmap_t *bm)
{
	roaring_array_t *ra = &bm->high_low_container;
	int32_t		i;

	for (i = 0; i < ra->size; i++)
	{
		void	   *c = ra->containers[i];
		uint8_t		type = ra->typecodes[i];
		int32_t		card;
		int32_t		nruns;
		bool		want_run;
		void	   *nc = NULL;
		uint8_t		ntype = type;

		switch (type)
		{
			case ARRAY_CONTAINER_TYPE_CODE:
				card = ((array_container_t *) c)->cardinality;
				nruns = array_container_number_of_runs((array_container_t *) c);
				break;
			case BITSET_CONTAINER_TYPE_CODE:
				card = ((bitset_container_t *) c)->cardinality;
				if (card < 0)
					card = ((bitset_container_t *) c)->cardinality =
						bitset_container_compute_cardinality((bitset_container_t *) c);
				nruns = bitset_container_number_of_runs((bitset_container_t *) c);
				break;
			case RUN_CONTAINER_TYPE_CODE:
				card = run_container_cardinality((run_container_t *) c);
				nruns = ((run_container_t *) c)->n_runs;
				break;
			default:
				elog(ERROR, "wam_bitmap_canonicalize: unexpected container type %d",
					 (int) type);
		}
		if (card == 0)
			elog(ERROR, "wam_bitmap_canonicalize: empty container");

		want_run = (2 + 4 * (int64) nruns) <
			(card <= DEFAULT_MAX_SIZE ? 2 + 2 * (int64) card : 8192);

		if (want_run && type == ARRAY_CONTAINER_TYPE_CODE)
		{
			nc = run_container_from_array((array_container_t *) c);
			ntype = RUN_CONTAINER_TYPE_CODE;
		}
		else if (want_run && type == BITSET_CONTAINER_TYPE_CODE)
		{
			/* converts (and frees c) exactly when runs are smaller */
			ra->containers[i] = convert_run_optimize(c, type, &ntype);
			ra->typecodes[i] = ntype;
			if (ntype != RUN_CONTAINER_TYPE_CODE)
				elog(ERROR, "wam_bitmap_canonicalize: bitset not converted to runs");
			continue;
		}
		else if (!want_run && type == RUN_CONTAINER_TYPE_CODE)
		{
			if (card <= DEFAULT_MAX_SIZE)
			{
				nc = array_container_from_run((run_container_t *) c);
				ntype = ARRAY_CONTAINER_TYPE_CODE;
			}
			else
			{
				nc = bitset_container_from_run((run_container_t *) c);
				ntype = BITSET_CONTAINER_TYPE_CODE;
			}
		}
		else if (!want_run && type == BITSET_CONTAINER_TYPE_CODE &&
				 card <= DEFAULT_MAX_SIZE)
		{
			nc = array_container_from_bitset((bitset_container_t *) c);
			ntype = ARRAY_CONTAINER_TYPE_CODE;
		}
		else if (!want_run && type == ARRAY_CONTAINER_TYPE_CODE &&
				 card > DEFAULT_MAX_SIZE)
		{
			nc = bitset_container_from_array((array_container_t *) c);
			ntype = BITSET_CONTAINER_TYPE_CODE;
		}
		else
			continue;			/* already canonical */

		if (nc == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_OUT_OF_MEMORY),
					 errmsg("out of memory")));
		container_free(c, type);
		ra->containers[i] = nc;
		ra->typecodes[i] = ntype;
	}
}

/* -------- flat <-> bitmap -------- */

/*
 * wam_portable_check validates untrusted portable bytes and raises a clear
 * error if they are not a well-formed Roaring bitmap.  CRoaring 0.2.66 only
 * checks that it stays inside the buffer; it trusts container invariants
 * (sorted arrays, run order, cardinalities) that later code relies on.
 */
void
wam_portable_check(const char *buf, size_t len)
{
	uint64		card;
	size_t		errpos = 0;
	WamPortableError err;

	err = wam_portable_validate((const uint8_t *) buf, len, &card, &errpos);
	if (err != WAM_PORTABLE_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("invalid binary data for type wam.segment"),
				 errdetail("The Roaring bitmap is malformed at byte %zu of %zu: %s.",
						   errpos, len, wam_portable_error_message(err))));
}

/*
 * wam_bitmap_from_portable deserializes into a bitmap owned by the current
 * memory context.  Untrusted input must be validated first.
 */
roaring_bitmap_t *
wam_bitmap_from_portable(const char *buf, size_t len, bool validate)
{
	roaring_bitmap_t *bm;

	if (validate)
		wam_portable_check(buf, len);
	bm = roaring_bitmap_portable_deserialize_safe(buf, len);
	if (bm == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("could not read wam.segment value"),
				 errdetail("The stored Roaring bitmap of %zu bytes could not be deserialized.",
						   len)));
	return wam_bitmap_hold(bm, CurrentMemoryContext)->bm;
}

/*
 * wam_segment_flatten serializes bm (after run-optimizing it in place, which
 * changes the representation, never the contents) into a new flat segment
 * in the current memory context.
 */
WamSegmentFlat *
wam_segment_flatten(roaring_bitmap_t *bm)
{
	WamSegmentFlat *flat;
	size_t		len;
	size_t		written;

	roaring_bitmap_run_optimize(bm);
	wam_bitmap_canonicalize(bm);
	len = roaring_bitmap_portable_size_in_bytes(bm);
	if (len > MaxAllocSize - WAM_SEGMENT_HDRSZ)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("wam.segment is too large"),
				 errdetail("The serialized bitmap needs %zu bytes; the limit is %zu.",
						   len, (size_t) (MaxAllocSize - WAM_SEGMENT_HDRSZ))));
	flat = palloc(WAM_SEGMENT_HDRSZ + len);
	SET_VARSIZE(flat, WAM_SEGMENT_HDRSZ + len);
	flat->version = WAM_SEGMENT_VERSION;
	flat->flags = 0;
	flat->reserved = 0;
	written = roaring_bitmap_portable_serialize(bm, flat->data);
	if (written != len)
		elog(ERROR, "wam_segment_flatten: serialized %zu bytes, expected %zu",
			 written, len);
	return flat;
}

/*
 * wam_segment_from_portable validates untrusted portable bytes and returns
 * the canonical flat segment for them.
 */
WamSegmentFlat *
wam_segment_from_portable(const char *buf, size_t len)
{
	roaring_bitmap_t *bm = wam_bitmap_from_portable(buf, len, true);

	return wam_segment_flatten(bm);
}

static void
wam_segment_check_flat(const WamSegmentFlat *flat)
{
	if (VARSIZE(flat) < WAM_SEGMENT_HDRSZ + 8 ||
		flat->version != WAM_SEGMENT_VERSION)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("invalid wam.segment value"),
				 errdetail("Unknown format version %d or size %u.",
						   (int) flat->version, (unsigned) VARSIZE(flat))));
}

/*
 * wam_segment_detoast returns the flat form of a segment datum (flattening
 * an expanded object if needed).
 */
WamSegmentFlat *
wam_segment_detoast(Datum d)
{
	WamSegmentFlat *flat;

	if (wam_segment_is_expanded(d))
		return wam_segment_flatten(wam_segment_expanded(d)->bm);
	flat = (WamSegmentFlat *) PG_DETOAST_DATUM(d);
	wam_segment_check_flat(flat);
	return flat;
}

/*
 * wam_segment_read returns a read-only bitmap for a segment datum.  For an
 * expanded object that is its own bitmap; for a flat value a deserialized
 * copy owned by the current memory context.  Callers must not modify it.
 */
const roaring_bitmap_t *
wam_segment_read(Datum d)
{
	WamSegmentFlat *flat;

	if (wam_segment_is_expanded(d))
		return wam_segment_expanded(d)->bm;
	flat = wam_segment_detoast(d);
	return wam_bitmap_from_portable(flat->data, WAM_SEGMENT_DATA_LEN(flat),
									false);
}

/*
 * wam_segment_copy_unowned returns a private bitmap that nobody owns yet;
 * the caller must hand it to an owner (wam_bitmap_hold, wam_segment_expand)
 * before anything else can raise an error.
 */
roaring_bitmap_t *
wam_segment_copy_unowned(Datum d)
{
	WamSegmentFlat *flat;
	roaring_bitmap_t *bm;

	if (wam_segment_is_expanded(d))
		return wam_bitmap_check_alloc(roaring_bitmap_copy(wam_segment_expanded(d)->bm));
	flat = wam_segment_detoast(d);
	bm = roaring_bitmap_portable_deserialize_safe(flat->data,
												  WAM_SEGMENT_DATA_LEN(flat));
	if (bm == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("could not read wam.segment value")));
	return bm;
}

/*
 * wam_segment_copy returns a private, modifiable bitmap owned by the current
 * memory context.
 */
roaring_bitmap_t *
wam_segment_copy(Datum d)
{
	return wam_bitmap_hold(wam_segment_copy_unowned(d), CurrentMemoryContext)->bm;
}

/*
 * wam_segment_cardinality_datum counts members without deserializing: the
 * portable format's descriptive header lists every container's cardinality,
 * so only that header is fetched from TOAST (a slice), not the containers.
 */
uint64
wam_segment_cardinality_datum(Datum d)
{
	struct varlena *raw = (struct varlena *) DatumGetPointer(d);
	WamSegmentFlat *flat;
	uint32		cookie;
	uint32		ncontainers;
	Size		need;

	if (wam_segment_is_expanded(d))
		return roaring_bitmap_get_cardinality(wam_segment_expanded(d)->bm);

	/*
	 * Fetch just enough of an uncompressed TOASTed value for the header.
	 * Compressed or inline values are cheaper to read whole.
	 */
	if (VARATT_IS_EXTERNAL_ONDISK(raw))
	{
		struct varatt_external ve;

		VARATT_EXTERNAL_GET_POINTER(ve, raw);
		/* VARATT_EXTERNAL_IS_COMPRESSED, without its sign-compare warning */
		if (VARATT_EXTERNAL_GET_EXTSIZE(ve) == (uint32) (ve.va_rawsize - VARHDRSZ))
		{
			flat = (WamSegmentFlat *)
				detoast_attr_slice(raw, 0, WAM_SEGMENT_HDRSZ - VARHDRSZ + 8);
			wam_segment_check_flat(flat);
			memcpy(&cookie, flat->data, 4);
			if ((cookie & 0xFFFF) == 12347)
				ncontainers = (cookie >> 16) + 1;
			else
				memcpy(&ncontainers, flat->data + 4, 4);
			if (ncontainers > 65536)
				ereport(ERROR,
						(errcode(ERRCODE_DATA_CORRUPTED),
						 errmsg("invalid wam.segment value"),
						 errdetail("The stored bitmap claims %u containers.",
								   ncontainers)));
			/* cookie, count or run flags, then 4 bytes per container */
			need = 8 + (ncontainers + 7) / 8 + 4 * (Size) ncontainers;
			pfree(flat);
			flat = (WamSegmentFlat *)
				detoast_attr_slice(raw, 0, WAM_SEGMENT_HDRSZ - VARHDRSZ + need);
			return wam_portable_cardinality((const uint8_t *) flat->data,
											WAM_SEGMENT_DATA_LEN(flat));
		}
	}

	flat = wam_segment_detoast(d);
	return wam_portable_cardinality((const uint8_t *) flat->data,
									WAM_SEGMENT_DATA_LEN(flat));
}

/* -------- expanded objects -------- */

static Size wam_segment_get_flat_size(ExpandedObjectHeader *eohptr);
static void wam_segment_flatten_into(ExpandedObjectHeader *eohptr,
									 void *result, Size allocated_size);

static const ExpandedObjectMethods wam_segment_expanded_methods =
{
	wam_segment_get_flat_size,
	wam_segment_flatten_into
};

static void
wam_segment_expanded_free(void *arg)
{
	WamSegmentExpanded *eseg = (WamSegmentExpanded *) arg;

	if (eseg->bm != NULL)
	{
		roaring_bitmap_free(eseg->bm);
		eseg->bm = NULL;
	}
}

/*
 * wam_segment_expand wraps bm (which must not be owned by anybody else) in
 * a new expanded object whose private context is a child of parent.  The
 * object's context owns the bitmap from here on.
 */
WamSegmentExpanded *
wam_segment_expand(roaring_bitmap_t *bm, MemoryContext parent)
{
	MemoryContext objcxt;
	WamSegmentExpanded *eseg;

	wam_bitmap_check_alloc(bm);
	PG_TRY();
	{
		objcxt = AllocSetContextCreate(parent, "wam.segment expanded",
									   ALLOCSET_SMALL_SIZES);
		eseg = MemoryContextAllocZero(objcxt, sizeof(WamSegmentExpanded));
	}
	PG_CATCH();
	{
		roaring_bitmap_free(bm);
		PG_RE_THROW();
	}
	PG_END_TRY();

	EOH_init_header(&eseg->hdr, &wam_segment_expanded_methods, objcxt);
	eseg->magic = WAM_SEGMENT_EXPANDED_MAGIC;
	eseg->bm = bm;
	eseg->flat_size = 0;
	eseg->free_cb.func = wam_segment_expanded_free;
	eseg->free_cb.arg = eseg;
	MemoryContextRegisterResetCallback(objcxt, &eseg->free_cb);
	return eseg;
}

bool
wam_segment_is_expanded(Datum d)
{
	return VARATT_IS_EXTERNAL_EXPANDED(DatumGetPointer(d));
}

WamSegmentExpanded *
wam_segment_expanded(Datum d)
{
	WamSegmentExpanded *eseg = (WamSegmentExpanded *) DatumGetEOHP(d);

	if (eseg->magic != WAM_SEGMENT_EXPANDED_MAGIC)
		elog(ERROR, "wam_segment_expanded: not a wam.segment expanded object");
	return eseg;
}

static Size
wam_segment_get_flat_size(ExpandedObjectHeader *eohptr)
{
	WamSegmentExpanded *eseg = (WamSegmentExpanded *) eohptr;
	size_t		len;

	Assert(eseg->magic == WAM_SEGMENT_EXPANDED_MAGIC);
	if (eseg->flat_size != 0)
		return eseg->flat_size;
	roaring_bitmap_run_optimize(eseg->bm);
	wam_bitmap_canonicalize(eseg->bm);
	len = roaring_bitmap_portable_size_in_bytes(eseg->bm);
	if (len > MaxAllocSize - WAM_SEGMENT_HDRSZ)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("wam.segment is too large"),
				 errdetail("The serialized bitmap needs %zu bytes; the limit is %zu.",
						   len, (size_t) (MaxAllocSize - WAM_SEGMENT_HDRSZ))));
	eseg->flat_size = WAM_SEGMENT_HDRSZ + len;
	return eseg->flat_size;
}

static void
wam_segment_flatten_into(ExpandedObjectHeader *eohptr, void *result,
						 Size allocated_size)
{
	WamSegmentExpanded *eseg = (WamSegmentExpanded *) eohptr;
	WamSegmentFlat *flat = (WamSegmentFlat *) result;
	size_t		written;

	Assert(allocated_size == eseg->flat_size);
	memset(flat, 0, WAM_SEGMENT_HDRSZ);
	SET_VARSIZE(flat, allocated_size);
	flat->version = WAM_SEGMENT_VERSION;
	written = roaring_bitmap_portable_serialize(eseg->bm, flat->data);
	if (written + WAM_SEGMENT_HDRSZ != allocated_size)
		elog(ERROR, "wam_segment_flatten_into: wrote %zu bytes into %zu",
			 written + WAM_SEGMENT_HDRSZ, (size_t) allocated_size);
}
