/*-------------------------------------------------------------------------
 *
 * fuzz_segment.c
 *	  libFuzzer target for the untrusted-input paths of a segment.
 *
 * Binary input: whatever wam_portable_validate() accepts must be something
 * CRoaring 0.2.66 decodes into exactly the set the validator saw, and must
 * survive a run_optimize + serialize + deserialize round trip.  The
 * validator is the only thing standing between user bytes and CRoaring's
 * unchecked container invariants, so a disagreement here is a bug in the
 * validator even when nothing crashes.
 *
 * Text input (only when built with -DWAM_FUZZ_TEXT, which build.sh adds when
 * src/segment_text.c exists): the same bytes, NUL-terminated, go through
 * wam_segment_text_parse().
 *
 * Failed checks call abort() rather than assert() so that they fire no
 * matter how the target is compiled.
 *
 * test/fuzz/fuzz_segment.c
 *
 *-------------------------------------------------------------------------
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <roaring/roaring.h>

#include "segment_portable.h"
#ifdef WAM_FUZZ_TEXT
#include "segment_text.h"
#endif

#define CHECK(cond) \
	do { \
		if (!(cond)) \
		{ \
			fprintf(stderr, "fuzz_segment: check failed: %s (%s:%d)\n", \
					#cond, __FILE__, __LINE__); \
			abort(); \
		} \
	} while (0)

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Serialize r in portable form into a fresh malloc'd buffer. */
static char *
serialize(const roaring_bitmap_t *r, size_t *len)
{
	size_t		n = roaring_bitmap_portable_size_in_bytes(r);
	char	   *buf = malloc(n);

	CHECK(buf != NULL);
	CHECK(roaring_bitmap_portable_serialize(r, buf) == n);
	*len = n;
	return buf;
}

static void
fuzz_portable(const uint8_t *data, size_t size)
{
	uint64_t	card = 0;
	uint64_t	card2 = 0;
	size_t		errpos = 0;
	WamPortableError err;
	roaring_bitmap_t *r;
	roaring_bitmap_t *opt;
	roaring_bitmap_t *back;
	char	   *out;
	size_t		outlen;

	err = wam_portable_validate(data, size, &card, &errpos);
	if (err != WAM_PORTABLE_OK)
	{
		/* error positions are reported to users, so must point into buf */
		CHECK(errpos <= size);
		CHECK(wam_portable_error_message(err) != NULL);
		return;
	}

	CHECK(card <= UINT64_C(4294967296));
	CHECK(wam_portable_cardinality(data, size) == card);

	r = roaring_bitmap_portable_deserialize_safe((const char *) data, size);
	CHECK(r != NULL);
	CHECK(roaring_bitmap_get_cardinality(r) == card);
	CHECK(roaring_bitmap_portable_deserialize_size((const char *) data, size) == size);

	/*
	 * Round trip through CRoaring's own encoder.  Compare against the bitmap
	 * as first decoded, so that a container CRoaring misreads shows up as a
	 * difference, and require CRoaring's output to pass our validator too:
	 * anything CRoaring writes we must accept.
	 */
	opt = roaring_bitmap_copy(r);
	CHECK(opt != NULL);
	roaring_bitmap_run_optimize(opt);
	out = serialize(opt, &outlen);
	CHECK(wam_portable_validate((const uint8_t *) out, outlen, &card2, &errpos) == WAM_PORTABLE_OK);
	CHECK(card2 == card);
	back = roaring_bitmap_portable_deserialize_safe(out, outlen);
	CHECK(back != NULL);
	CHECK(roaring_bitmap_get_cardinality(back) == card);
	CHECK(roaring_bitmap_equals(back, opt));
	CHECK(roaring_bitmap_equals(back, r));

	free(out);
	roaring_bitmap_free(back);
	roaring_bitmap_free(opt);
	roaring_bitmap_free(r);
}

#ifdef WAM_FUZZ_TEXT

typedef struct TextState
{
	roaring_bitmap_t *bitmap;
	uint64_t	emitted;
} TextState;

static void
text_emit(void *arg, uint32_t value)
{
	TextState  *st = (TextState *) arg;

	roaring_bitmap_add(st->bitmap, value);
	st->emitted++;
}

static void
fuzz_text(const uint8_t *data, size_t size)
{
	char	   *str = malloc(size + 1);
	TextState	st;
	size_t		errpos = 0;
	WamTextError rc;

	CHECK(str != NULL);
	memcpy(str, data, size);
	str[size] = '\0';

	st.bitmap = roaring_bitmap_create();
	st.emitted = 0;
	rc = wam_segment_text_parse(str, text_emit, &st, &errpos);
	if (rc != WAM_TEXT_OK)
	{
		/* the parser stops at the first NUL, so errpos cannot pass it */
		CHECK(errpos <= strlen(str));
		CHECK(wam_segment_text_error_detail(rc) != NULL);
	}
	else
	{
		uint64_t	card = 0;
		size_t		outlen;
		char	   *out;

		/* each id costs at least one input byte, duplicates collapse */
		CHECK(st.emitted <= size);
		CHECK(roaring_bitmap_get_cardinality(st.bitmap) <= st.emitted);

		/* what the text path builds must be accepted by the binary path */
		roaring_bitmap_run_optimize(st.bitmap);
		out = serialize(st.bitmap, &outlen);
		CHECK(wam_portable_validate((const uint8_t *) out, outlen, &card, &errpos) == WAM_PORTABLE_OK);
		CHECK(card == roaring_bitmap_get_cardinality(st.bitmap));
		free(out);
	}
	roaring_bitmap_free(st.bitmap);
	free(str);
}

#endif							/* WAM_FUZZ_TEXT */

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_portable(data, size);
#ifdef WAM_FUZZ_TEXT
	fuzz_text(data, size);
#endif
	return 0;
}
