/*-------------------------------------------------------------------------
 *
 * test_portable.c
 *	  Unit tests for src/segment_portable.c, run by test/t/portable_unit.sh.
 *
 * Two kinds of input:
 *	- bitmaps serialized by CRoaring itself, which must all validate with
 *	  the cardinality CRoaring reports;
 *	- buffers assembled by hand with build() (or CRoaring output patched
 *	  in place), each breaking exactly one rule, which must fail with the
 *	  expected error class (and, where it is well defined, offset).
 *
 * Every buffer handed to the validator is first copied into a malloc'd
 * block of exactly the right size, so that when the test is built with
 * -fsanitize=address any read past the end is caught.
 *
 * Prints one "ok - NAME" / "not ok - NAME" line per case; exits 1 if any
 * case failed.
 *
 * test/unit/test_portable.c
 *
 *-------------------------------------------------------------------------
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <roaring/roaring.h>

#include "segment_portable.h"

#define NO_OFFSET ((size_t) -1)

static int	failures = 0;

static void
report(bool ok, const char *name, const char *fmt,...)
{
	printf("%s - %s\n", ok ? "ok" : "not ok", name);
	if (!ok)
	{
		va_list		ap;

		failures++;
		printf("#   ");
		va_start(ap, fmt);
		vprintf(fmt, ap);
		va_end(ap);
		printf("\n");
	}
}

/* validate a private exact-size copy so ASan sees any over-read */
static WamPortableError
validate_copy(const uint8_t *buf, size_t len, uint64_t *card, size_t *off)
{
	uint8_t    *copy = malloc(len ? len : 1);
	WamPortableError err;

	if (copy == NULL)
		abort();
	if (len)
		memcpy(copy, buf, len);
	err = wam_portable_validate(copy, len, card, off);
	free(copy);
	return err;
}

static void
expect_error(const char *name, const uint8_t *buf, size_t len,
			 WamPortableError want, size_t want_offset)
{
	uint64_t	card = 0;
	size_t		off = NO_OFFSET;
	WamPortableError got = validate_copy(buf, len, &card, &off);

	report(got == want && off <= len &&
		   (want_offset == NO_OFFSET || off == want_offset),
		   name, "got \"%s\" at offset %zu, want \"%s\" at offset %zu (len %zu)",
		   wam_portable_error_message(got), off,
		   wam_portable_error_message(want), want_offset, len);
}

static void
expect_valid(const char *name, const uint8_t *buf, size_t len,
			 uint64_t want_card)
{
	uint64_t	card = 0;
	size_t		off = 0;
	WamPortableError got = validate_copy(buf, len, &card, &off);
	uint64_t	fast = wam_portable_cardinality(buf, len);

	report(got == WAM_PORTABLE_OK && card == want_card && fast == want_card,
		   name, "got \"%s\" (offset %zu), cardinality %llu, header cardinality %llu, want %llu",
		   wam_portable_error_message(got), off,
		   (unsigned long long) card, (unsigned long long) fast,
		   (unsigned long long) want_card);
}

/* CRoaring serialization of r; caller frees */
static uint8_t *
serialize(const roaring_bitmap_t *r, size_t *len)
{
	size_t		n = roaring_bitmap_portable_size_in_bytes(r);
	uint8_t    *buf = malloc(n + 16);	/* slack for trailing-byte cases */

	if (buf == NULL || roaring_bitmap_portable_serialize(r, (char *) buf) != n)
		abort();
	*len = n;
	return buf;
}

/* CRoaring output must validate with CRoaring's cardinality; frees r */
static void
expect_roaring_valid(const char *name, roaring_bitmap_t *r, bool optimize)
{
	size_t		len;
	uint8_t    *buf;

	if (optimize)
		roaring_bitmap_run_optimize(r);
	buf = serialize(r, &len);
	expect_valid(name, buf, len, roaring_bitmap_get_cardinality(r));
	free(buf);
	roaring_bitmap_free(r);
}

/* every proper prefix of a valid buffer must be reported as truncated */
static void
expect_truncated_prefixes(const char *name, const uint8_t *buf, size_t len)
{
	size_t		l;

	for (l = 0; l < len; l++)
	{
		uint64_t	card;
		size_t		off = NO_OFFSET;
		WamPortableError got = validate_copy(buf, l, &card, &off);

		if (got != WAM_PORTABLE_TRUNCATED || off > l)
		{
			report(false, name, "prefix of %zu of %zu bytes: got \"%s\" at offset %zu",
				   l, len, wam_portable_error_message(got), off);
			return;
		}
	}
	report(true, name, "");
}

/*
 * Hand assembly of portable buffers.  Each container is described by its
 * key, its type, the cardinality to put in the descriptive header (which
 * may lie), and its payload: array values, (start, length - 1) run pairs,
 * or the positions of the set bits of a bitset.  Offsets are always
 * written correctly; tests that need bad ones patch them afterwards.
 */
typedef enum
{
	C_ARRAY,
	C_BITSET,
	C_RUN
} CType;

typedef struct
{
	uint16_t	key;
	CType		type;
	uint32_t	card;			/* header cardinality, 1..65536 */
	const uint16_t *data;
	uint32_t	ndata;			/* array: values; run: runs; bitset: bits */
} Spec;

static uint8_t workbuf[1 << 20];

static void
put16(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t) v;
	p[1] = (uint8_t) (v >> 8);
}

static void
put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t) v;
	p[1] = (uint8_t) (v >> 8);
	p[2] = (uint8_t) (v >> 16);
	p[3] = (uint8_t) (v >> 24);
}

static size_t
container_size(const Spec *c)
{
	switch (c->type)
	{
		case C_ARRAY:
			return (size_t) c->ndata * 2;
		case C_BITSET:
			return 8192;
		case C_RUN:
			return 2 + (size_t) c->ndata * 4;
	}
	abort();
}

/* builds into workbuf; runcookie selects the 12347 form */
static size_t
build(const Spec *c, uint32_t n, bool runcookie)
{
	uint8_t    *p = workbuf;
	size_t		pos;
	bool		offsets = !runcookie || n >= 4;
	uint32_t	k,
				i;

	memset(workbuf, 0, sizeof(workbuf));
	if (runcookie)
	{
		put32(p, 12347u | ((n - 1) << 16));
		pos = 4;
		for (k = 0; k < n; k++)
			if (c[k].type == C_RUN)
				p[pos + k / 8] |= (uint8_t) (1 << (k % 8));
		pos += (n + 7) / 8;
	}
	else
	{
		put32(p, 12346u);
		put32(p + 4, n);
		pos = 8;
	}
	for (k = 0; k < n; k++)
	{
		put16(p + pos, c[k].key);
		put16(p + pos + 2, c[k].card - 1);
		pos += 4;
	}
	if (offsets)
	{
		size_t		at = pos + (size_t) n * 4;

		for (k = 0; k < n; k++)
		{
			put32(p + pos, (uint32_t) at);
			pos += 4;
			at += container_size(&c[k]);
		}
	}
	for (k = 0; k < n; k++)
	{
		switch (c[k].type)
		{
			case C_ARRAY:
				for (i = 0; i < c[k].ndata; i++)
					put16(p + pos + i * 2, c[k].data[i]);
				break;
			case C_BITSET:
				for (i = 0; i < c[k].ndata; i++)
					p[pos + c[k].data[i] / 8] |= (uint8_t) (1 << (c[k].data[i] % 8));
				break;
			case C_RUN:
				put16(p + pos, c[k].ndata);
				for (i = 0; i < c[k].ndata * 2; i++)
					put16(p + pos + 2 + i * 2, c[k].data[i]);
				break;
		}
		pos += container_size(&c[k]);
	}
	return pos;
}

static uint16_t seq[65536];		/* seq[i] = i */
static uint16_t evens[32768];	/* 0, 2, 4, ... */

static void
test_valid_croaring(void)
{
	roaring_bitmap_t *r;
	uint32_t	i;
	size_t		len;
	uint8_t    *buf;

	/* the empty bitmap must be exactly cookie 12346 and a zero count */
	r = roaring_bitmap_create();
	buf = serialize(r, &len);
	report(len == 8 && buf[0] == 0x3a && buf[1] == 0x30 && buf[2] == 0 &&
		   buf[3] == 0 && buf[4] == 0 && buf[5] == 0 && buf[6] == 0 && buf[7] == 0,
		   "empty bitmap serializes as cookie 12346 with count 0",
		   "len %zu", len);
	free(buf);
	expect_roaring_valid("valid: empty bitmap", r, false);

	expect_roaring_valid("valid: single 0", roaring_bitmap_of(1, 0u), false);
	expect_roaring_valid("valid: single 4294967295",
						 roaring_bitmap_of(1, 4294967295u), false);
	expect_roaring_valid("valid: 0 and 4294967295",
						 roaring_bitmap_of(2, 0u, 4294967295u), false);

	r = roaring_bitmap_create();
	for (i = 0; i < 1000; i++)
		roaring_bitmap_add(r, i * 7919u);
	expect_roaring_valid("valid: arrays in many containers", r, false);

	r = roaring_bitmap_create();
	for (i = 0; i < 4096; i++)
		roaring_bitmap_add(r, 65536u + i * 16);
	expect_roaring_valid("valid: array of exactly 4096", r, false);

	r = roaring_bitmap_create();
	for (i = 0; i < 4097; i++)
		roaring_bitmap_add(r, i * 15);
	expect_roaring_valid("valid: bitset of exactly 4097", r, false);

	r = roaring_bitmap_create();
	for (i = 0; i < 200000; i++)
		roaring_bitmap_add(r, (i * 2654435761u) % 300000u);
	expect_roaring_valid("valid: bitsets and arrays", r, false);

	r = roaring_bitmap_create();
	for (i = 0; i < 3; i++)
		roaring_bitmap_add_range(r, i * 65536u + 10, i * 65536u + 20000);
	expect_roaring_valid("valid: runs, 3 containers (no offset header)", r, true);

	r = roaring_bitmap_create();
	for (i = 0; i < 40; i++)
		roaring_bitmap_add_range(r, i * 100000u, i * 100000u + 1000 + i * 997);
	for (i = 0; i < 5000; i++)
		roaring_bitmap_add(r, 50u * 65536u + (i * 40503u) % 65536u);
	roaring_bitmap_add(r, 60u * 65536u + 5);
	expect_roaring_valid("valid: runs, arrays and a bitset after run_optimize", r, true);

	r = roaring_bitmap_create();
	for (i = 0; i < 65536; i += 3)
		roaring_bitmap_add_range(r, 9u * 65536u + i, 9u * 65536u + i + 2);
	expect_roaring_valid("valid: many short runs in one container", r, true);

	expect_roaring_valid("valid: full range 0..2^32 (65536 full run containers)",
						 roaring_bitmap_from_range(0, UINT64_C(4294967296), 1),
						 false);

	/*
	 * 65536 containers in the 12346 form, the largest legal count.  Not
	 * roaring_bitmap_from_range(0, 2^32, 65536): in CRoaring 0.2.66 its loop
	 * for steps >= 65536 uses a uint32_t counter that wraps at 2^32 and
	 * never ends.
	 */
	r = roaring_bitmap_create();
	for (i = 0; i < 65536; i++)
		roaring_bitmap_add(r, i * 65536u + (i & 0xFFFF));
	expect_roaring_valid("valid: 65536 one-member containers", r, false);
}

static void
test_valid_handmade(void)
{
	static const uint16_t tiny_run[] = {7, 0};
	static const uint16_t two_runs[] = {0, 9, 65526, 9};
	static const uint16_t full_run[] = {0, 65535};
	static const uint16_t vals[] = {1, 2, 3};
	Spec		c[3];
	size_t		len;

	/* Java and Go may write a one-member run container; it is a valid set */
	c[0] = (Spec) {3, C_RUN, 1, tiny_run, 1};
	len = build(c, 1, true);
	expect_valid("valid: run container of cardinality 1", workbuf, len, 1);

	c[0] = (Spec) {0, C_RUN, 20, two_runs, 2};
	c[1] = (Spec) {1, C_RUN, 65536, full_run, 1};
	len = build(c, 2, true);
	expect_valid("valid: runs touching both container ends and a full container",
				 workbuf, len, 65556);

	/* the 12347 form without any run container is unusual but unambiguous */
	c[0] = (Spec) {0, C_ARRAY, 3, vals, 3};
	c[1] = (Spec) {9, C_BITSET, 32768, evens, 32768};
	len = build(c, 2, true);
	expect_valid("valid: 12347 cookie without run containers", workbuf, len, 32771);

	/* stray flag bits after the last container are ignored, like CRoaring */
	c[0] = (Spec) {0, C_RUN, 1, tiny_run, 1};
	len = build(c, 1, true);
	workbuf[4] |= 0xF0;
	expect_valid("valid: padding bits in the run-flag byte are ignored",
				 workbuf, len, 1);
}

static void
test_truncation(void)
{
	roaring_bitmap_t *r;
	uint8_t    *buf;
	size_t		len;
	uint32_t	i;

	/* 12347 form with offset header: runs, arrays and a bitset */
	r = roaring_bitmap_from_range(100, 70000, 1);
	roaring_bitmap_add(r, 3u * 65536u + 4);
	roaring_bitmap_add(r, 3u * 65536u + 9);
	for (i = 0; i < 5000; i++)
		roaring_bitmap_add(r, 5u * 65536u + (i * 7u) % 65536u);
	roaring_bitmap_run_optimize(r);
	buf = serialize(r, &len);
	expect_valid("valid: truncation base buffer (12347, with offsets)",
				 buf, len, roaring_bitmap_get_cardinality(r));
	expect_truncated_prefixes("truncated at every length: 12347 form with offsets",
							  buf, len);
	free(buf);
	roaring_bitmap_free(r);

	/* 12347 form, fewer than 4 containers so no offset header */
	r = roaring_bitmap_from_range(10, 200, 1);
	roaring_bitmap_add(r, 65536u + 1);
	roaring_bitmap_add(r, 65536u + 3);
	roaring_bitmap_run_optimize(r);
	buf = serialize(r, &len);
	expect_truncated_prefixes("truncated at every length: 12347 form without offsets",
							  buf, len);
	free(buf);
	roaring_bitmap_free(r);

	/* 12346 form: arrays and a bitset */
	r = roaring_bitmap_of(3, 1u, 70000u, 200000u);
	for (i = 0; i < 5000; i++)
		roaring_bitmap_add(r, 7u * 65536u + i * 11u);
	buf = serialize(r, &len);
	expect_truncated_prefixes("truncated at every length: 12346 form", buf, len);
	free(buf);
	roaring_bitmap_free(r);
}

static void
test_header_errors(void)
{
	uint8_t		b[16];
	static const uint16_t v1[] = {1};
	Spec		c[2];
	size_t		len;

	memset(b, 0, sizeof(b));
	put32(b, 12345);
	expect_error("bad cookie: 12345", b, 8, WAM_PORTABLE_BAD_COOKIE, 0);

	/* high half is only meaningful with 12347 */
	put32(b, 12346u | (1u << 16));
	expect_error("bad cookie: 12346 with nonzero high half", b, 8,
				 WAM_PORTABLE_BAD_COOKIE, 0);

	put32(b, 0x3b300000);		/* byte-swapped 12347 */
	expect_error("bad cookie: big-endian 12347", b, 8, WAM_PORTABLE_BAD_COOKIE, 0);

	put32(b, 12346);
	put32(b + 4, 65537);
	expect_error("count > 65536", b, 8, WAM_PORTABLE_TOO_MANY_CONTAINERS, 4);
	put32(b + 4, 0xFFFFFFFFu);
	expect_error("count 0xFFFFFFFF", b, 8, WAM_PORTABLE_TOO_MANY_CONTAINERS, 4);

	/* 65536 is legal; with no data after the header it is merely truncated */
	put32(b + 4, 65536);
	expect_error("count 65536 accepted, then truncated", b, 8,
				 WAM_PORTABLE_TRUNCATED, 8);

	c[0] = (Spec) {5, C_ARRAY, 1, v1, 1};
	c[1] = (Spec) {3, C_ARRAY, 1, v1, 1};
	len = build(c, 2, false);
	expect_error("keys descending", workbuf, len,
				 WAM_PORTABLE_KEYS_NOT_ASCENDING, 12);

	c[1].key = 5;
	len = build(c, 2, false);
	expect_error("duplicate keys", workbuf, len,
				 WAM_PORTABLE_KEYS_NOT_ASCENDING, 12);
}

static void
test_offset_errors(void)
{
	roaring_bitmap_t *r;
	uint8_t    *buf;
	size_t		len;
	uint32_t	off;

	/* 12346, 2 containers: offsets at 16 and 20 */
	r = roaring_bitmap_of(3, 1u, 2u, 70000u);
	buf = serialize(r, &len);
	memcpy(&off, buf + 20, 4);
	put32(buf + 20, off + 2);
	expect_error("wrong offset (12346 form)", buf, len, WAM_PORTABLE_BAD_OFFSET, 20);
	put32(buf + 20, off);
	put32(buf + 16, 0);
	expect_error("wrong first offset (12346 form)", buf, len,
				 WAM_PORTABLE_BAD_OFFSET, 16);
	free(buf);
	roaring_bitmap_free(r);

	/* 12347, 4 run containers: flags at 4, keys at 5..20, offsets at 21..36 */
	r = roaring_bitmap_create();
	roaring_bitmap_add_range(r, 0, 100);
	roaring_bitmap_add_range(r, 65536u, 65536u + 100);
	roaring_bitmap_add_range(r, 131072u, 131072u + 100);
	roaring_bitmap_add_range(r, 196608u, 196608u + 100);
	roaring_bitmap_run_optimize(r);
	buf = serialize(r, &len);
	report(buf[4] == 0x0F, "4 run containers give 12347 with all run flags set",
		   "flags byte %02x", buf[4]);
	put32(buf + 33, 0xFFFFFFFFu);
	expect_error("wrong offset (12347 form)", buf, len, WAM_PORTABLE_BAD_OFFSET, 33);
	free(buf);
	roaring_bitmap_free(r);
}

static void
test_array_errors(void)
{
	static const uint16_t unsorted[] = {3, 1, 2};
	static const uint16_t dup[] = {1, 1, 2};
	static const uint16_t desc_end[] = {0, 65535, 65534};
	uint16_t   *big;
	Spec		c[1];
	size_t		len;
	uint32_t	i;

	c[0] = (Spec) {0, C_ARRAY, 3, unsorted, 3};
	len = build(c, 1, false);
	expect_error("unsorted array", workbuf, len, WAM_PORTABLE_BAD_ARRAY, 18);

	c[0] = (Spec) {0, C_ARRAY, 3, dup, 3};
	len = build(c, 1, false);
	expect_error("duplicate array value", workbuf, len, WAM_PORTABLE_BAD_ARRAY, 18);

	c[0] = (Spec) {0, C_ARRAY, 3, desc_end, 3};
	len = build(c, 1, false);
	expect_error("array descending at the end", workbuf, len,
				 WAM_PORTABLE_BAD_ARRAY, 20);

	/*
	 * An array of 5000 sorted values.  The format has no way to say "array"
	 * for a cardinality above 4096, so a reader takes the first 8192 bytes
	 * as a bitset, whose popcount then cannot match.
	 */
	big = malloc(5000 * sizeof(uint16_t));
	if (big == NULL)
		abort();
	for (i = 0; i < 5000; i++)
		big[i] = (uint16_t) (i * 13);
	c[0] = (Spec) {0, C_ARRAY, 5000, big, 5000};
	len = build(c, 1, false);
	expect_error("array with cardinality > 4096", workbuf, len,
				 WAM_PORTABLE_BAD_CARDINALITY, 16);
	free(big);
}

static void
test_bitset_errors(void)
{
	Spec		c[1];
	size_t		len;

	/* header says 32769, bitset holds 32768 */
	c[0] = (Spec) {4, C_BITSET, 32769, evens, 32768};
	len = build(c, 1, false);
	expect_error("bitset with wrong cardinality", workbuf, len,
				 WAM_PORTABLE_BAD_CARDINALITY, 16);

	/* header says 4097 so it is read as a bitset, but only 4096 bits set */
	c[0] = (Spec) {4, C_BITSET, 4097, evens, 4096};
	len = build(c, 1, false);
	expect_error("bitset with cardinality <= 4096", workbuf, len,
				 WAM_PORTABLE_BAD_CARDINALITY, 16);

	/* a bitset holding a single member */
	c[0] = (Spec) {4, C_BITSET, 5000, seq, 1};
	len = build(c, 1, false);
	expect_error("bitset with one member", workbuf, len,
				 WAM_PORTABLE_BAD_CARDINALITY, 16);
}

static void
test_run_errors(void)
{
	static const uint16_t overlap[] = {10, 10, 15, 2};
	static const uint16_t touching[] = {10, 4, 15, 0};
	static const uint16_t unsorted[] = {100, 0, 10, 0};
	static const uint16_t duplicate[] = {10, 0, 10, 0};
	static const uint16_t past_end[] = {65530, 10};
	static const uint16_t past_end2[] = {0, 0, 65535, 1};
	static const uint16_t ok_runs[] = {10, 4, 20, 4};
	Spec		c[1];
	size_t		len;

	/* 12347, 1 container: flags at 4, key/card at 5, runs start at 9 */
	c[0] = (Spec) {0, C_RUN, 14, overlap, 2};
	len = build(c, 1, true);
	expect_error("runs overlapping", workbuf, len, WAM_PORTABLE_BAD_RUN, 15);

	c[0] = (Spec) {0, C_RUN, 6, touching, 2};
	len = build(c, 1, true);
	expect_error("runs touching (rejected: never written by any implementation)",
				 workbuf, len, WAM_PORTABLE_BAD_RUN, 15);

	c[0] = (Spec) {0, C_RUN, 2, unsorted, 2};
	len = build(c, 1, true);
	expect_error("runs unsorted", workbuf, len, WAM_PORTABLE_BAD_RUN, 15);

	c[0] = (Spec) {0, C_RUN, 2, duplicate, 2};
	len = build(c, 1, true);
	expect_error("runs duplicated", workbuf, len, WAM_PORTABLE_BAD_RUN, 15);

	c[0] = (Spec) {0, C_RUN, 11, past_end, 1};
	len = build(c, 1, true);
	expect_error("run past 65535", workbuf, len, WAM_PORTABLE_BAD_RUN, 11);

	c[0] = (Spec) {0, C_RUN, 3, past_end2, 2};
	len = build(c, 1, true);
	expect_error("run starting at 65535 with length 2", workbuf, len,
				 WAM_PORTABLE_BAD_RUN, 15);

	c[0] = (Spec) {0, C_RUN, 1, ok_runs, 0};
	len = build(c, 1, true);
	expect_error("zero runs", workbuf, len, WAM_PORTABLE_BAD_RUN, 9);

	c[0] = (Spec) {0, C_RUN, 11, ok_runs, 2};
	len = build(c, 1, true);
	expect_error("run lengths disagree with header cardinality", workbuf, len,
				 WAM_PORTABLE_BAD_CARDINALITY, 9);

	/* and the same runs, correctly counted, are fine */
	c[0] = (Spec) {0, C_RUN, 10, ok_runs, 2};
	len = build(c, 1, true);
	expect_valid("valid: two separated runs", workbuf, len, 10);
}

static void
test_trailing(void)
{
	roaring_bitmap_t *r;
	uint8_t    *buf;
	size_t		len;

	r = roaring_bitmap_of(3, 1u, 2u, 3u);
	buf = serialize(r, &len);
	buf[len] = 0;
	expect_error("trailing byte", buf, len + 1, WAM_PORTABLE_TRAILING_BYTES, len);
	free(buf);
	roaring_bitmap_free(r);

	r = roaring_bitmap_create();
	buf = serialize(r, &len);
	memset(buf + len, 0, 8);
	expect_error("trailing bytes after the empty bitmap", buf, len + 8,
				 WAM_PORTABLE_TRAILING_BYTES, len);
	free(buf);
	roaring_bitmap_free(r);
}

static void
test_misc(void)
{
	int			e;
	int			distinct = 1;
	uint8_t		b[4] = {0x3a, 0x30, 0, 0};

	for (e = WAM_PORTABLE_OK; e <= WAM_PORTABLE_TRAILING_BYTES; e++)
	{
		int			f;

		for (f = WAM_PORTABLE_OK; f < e; f++)
			if (strcmp(wam_portable_error_message((WamPortableError) e),
					   wam_portable_error_message((WamPortableError) f)) == 0)
				distinct = 0;
	}
	report(distinct, "error messages are distinct", "duplicate message");
	report(strcmp(wam_portable_error_message(WAM_PORTABLE_KEYS_NOT_ASCENDING),
				  "container keys are not in ascending order") == 0,
		   "keys error message", "got %s",
		   wam_portable_error_message(WAM_PORTABLE_KEYS_NOT_ASCENDING));

	/* must stay in bounds on garbage, and say 0 rather than guess */
	report(wam_portable_cardinality(b, 0) == 0 &&
		   wam_portable_cardinality(b, 4) == 0,
		   "header cardinality of a too-short buffer is 0", "nonzero");

	/* NULL out-pointers are allowed */
	report(wam_portable_validate(b, 4, NULL, NULL) == WAM_PORTABLE_TRUNCATED,
		   "NULL output pointers accepted", "unexpected result");
}

int
main(void)
{
	uint32_t	i;

	for (i = 0; i < 65536; i++)
		seq[i] = (uint16_t) i;
	for (i = 0; i < 32768; i++)
		evens[i] = (uint16_t) (i * 2);

	test_valid_croaring();
	test_valid_handmade();
	test_truncation();
	test_header_errors();
	test_offset_errors();
	test_array_errors();
	test_bitset_errors();
	test_run_errors();
	test_trailing();
	test_misc();

	return failures ? 1 : 0;
}
