/*-------------------------------------------------------------------------
 *
 * segment_portable.h
 *	  Strict validator for the Roaring "portable" serialization format.
 *
 * The portable format is the one described by RoaringFormatSpec and
 * produced by CRoaring's roaring_bitmap_portable_serialize() and by the
 * Java and Go implementations.  CRoaring's own "safe" deserializer only
 * checks that it does not read past the end of the buffer; it trusts the
 * container invariants (sorted keys, sorted arrays, sane runs, correct
 * cardinalities) that the rest of the library relies on.  Every untrusted
 * byte string must therefore pass wam_portable_validate() before it is
 * handed to CRoaring.
 *
 * This file deliberately includes no PostgreSQL headers so that the
 * validator can be unit-tested and fuzzed as plain C.
 *
 * src/segment_portable.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef WAM_PORTABLE_H
#define WAM_PORTABLE_H

#include <stddef.h>
#include <stdint.h>

typedef enum WamPortableError
{
	WAM_PORTABLE_OK = 0,
	WAM_PORTABLE_TRUNCATED,		/* buffer ends before the structure does */
	WAM_PORTABLE_BAD_COOKIE,
	WAM_PORTABLE_TOO_MANY_CONTAINERS,	/* > 65536 */
	WAM_PORTABLE_KEYS_NOT_ASCENDING,	/* keys must be strictly increasing */
	WAM_PORTABLE_BAD_OFFSET,	/* offset header disagrees with the actual
								 * container position */
	WAM_PORTABLE_BAD_ARRAY,		/* array container values not strictly
								 * increasing */
	WAM_PORTABLE_BAD_RUN,		/* zero runs, run past 65535, runs
								 * overlapping/touching/unsorted */
	WAM_PORTABLE_BAD_CARDINALITY,	/* header cardinality disagrees with the
									 * container contents (bitset popcount,
									 * run lengths sum), or array container
									 * with card > 4096, or bitset with card
									 * <= 4096 */
	WAM_PORTABLE_TRAILING_BYTES /* bytes left after the last container */
} WamPortableError;

/*
 * Validates buf[0..len).  On success returns WAM_PORTABLE_OK and sets
 * *cardinality (total number of members, up to 2^32).  On failure returns
 * the error and sets *error_offset to the byte offset where the problem was
 * detected.  Never reads outside buf[0..len).
 *
 * Either output pointer may be NULL if the caller does not need it.
 */
extern WamPortableError wam_portable_validate(const uint8_t *buf, size_t len,
											  uint64_t *cardinality,
											  size_t *error_offset);

/* Short lower-case phrase describing err, suitable for an errdetail. */
extern const char *wam_portable_error_message(WamPortableError err);

/*
 * Fast cardinality from the descriptive header only, for an ALREADY
 * VALIDATED buffer.  It stays within buf[0..len) even if the buffer is not
 * valid (returning 0 when the header does not fit), but the result is only
 * meaningful for buffers that passed wam_portable_validate().
 */
extern uint64_t wam_portable_cardinality(const uint8_t *buf, size_t len);

#endif							/* WAM_PORTABLE_H */
