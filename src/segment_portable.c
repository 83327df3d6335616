/*-------------------------------------------------------------------------
 *
 * segment_portable.c
 *	  Strict validator for the Roaring "portable" serialization format.
 *
 * Layout (RoaringFormatSpec; all integers little-endian):
 *
 *	cookie header:
 *	  uint32 cookie.  If (cookie & 0xFFFF) == SERIAL_COOKIE (12347), the
 *	  number of containers is (cookie >> 16) + 1 and a run-flag bitset of
 *	  (n + 7) / 8 bytes follows (bit k set => container k is a run
 *	  container).  Otherwise cookie must be exactly
 *	  SERIAL_COOKIE_NO_RUNCONTAINER (12346), followed by a uint32 container
 *	  count and there are no run containers.
 *	descriptive header:
 *	  n x (uint16 key, uint16 cardinality - 1)
 *	offset header:
 *	  n x uint32 byte offset of each container from the start of the
 *	  buffer; present in the 12346 form, and in the 12347 form only when
 *	  n >= NO_OFFSET_THRESHOLD (4).
 *	containers, in key order:
 *	  run:	  uint16 n_runs, then n_runs x (uint16 start, uint16 length - 1)
 *	  array:  cardinality x uint16 (when cardinality <= 4096)
 *	  bitset: 8192 bytes (when cardinality > 4096)
 *
 * CRoaring (0.2.66 as shipped by Debian) only bounds-checks this structure
 * when deserializing; it then trusts every invariant that its container
 * algorithms depend on.  A bitset's cardinality, for example, is taken
 * straight from the descriptive header, and binary searches assume sorted
 * arrays and runs.  So we check all of them here, in a single forward pass,
 * without allocating and without reading outside the buffer.
 *
 * Header and container fields are read through read_u16()/read_u32(), which
 * assemble the little-endian value byte by byte: like memcpy that is safe
 * for unaligned data, and unlike memcpy into a native integer it is also
 * correct on big-endian hosts.  Only the bitset popcount, where byte order
 * is irrelevant, copies whole words with memcpy.
 *
 * This file must not include PostgreSQL headers: it is also compiled into
 * the unit test and the libFuzzer target.
 *
 * src/segment_portable.c
 *
 *-------------------------------------------------------------------------
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "segment_portable.h"

#define SERIAL_COOKIE_NO_RUNCONTAINER	12346
#define SERIAL_COOKIE					12347
#define NO_OFFSET_THRESHOLD				4
#define MAX_CONTAINERS					65536
#define ARRAY_MAX_CARDINALITY			4096
#define BITSET_BYTES					8192
#define BITSET_WORDS					(BITSET_BYTES / 8)

/* Everything we learn from the cookie header, shared by both entry points */
typedef struct PortableHeader
{
	uint32_t	n;				/* number of containers */
	bool		hasrun;			/* 12347 form: run-flag bitset present */
	size_t		runflags_at;	/* offset of run-flag bitset (if hasrun) */
	size_t		keys_at;		/* offset of the descriptive header */
} PortableHeader;

static inline uint16_t
read_u16(const uint8_t *p)
{
	return (uint16_t) ((uint16_t) p[0] | ((uint16_t) p[1] << 8));
}

static inline uint32_t
read_u32(const uint8_t *p)
{
	return (uint32_t) p[0] |
		((uint32_t) p[1] << 8) |
		((uint32_t) p[2] << 16) |
		((uint32_t) p[3] << 24);
}

static inline int
popcount64(uint64_t x)
{
#if defined(__GNUC__) || defined(__clang__)
	return __builtin_popcountll(x);
#else
	x = x - ((x >> 1) & UINT64_C(0x5555555555555555));
	x = (x & UINT64_C(0x3333333333333333)) +
		((x >> 2) & UINT64_C(0x3333333333333333));
	x = (x + (x >> 4)) & UINT64_C(0x0F0F0F0F0F0F0F0F);
	return (int) ((x * UINT64_C(0x0101010101010101)) >> 56);
#endif
}

/*
 * Parse the cookie header (cookie, optional count, optional run flags) and
 * check that the descriptive header fits.  On failure *errpos is set.
 */
static WamPortableError
parse_header(const uint8_t *buf, size_t len, PortableHeader *hdr,
			 size_t *errpos)
{
	uint32_t	cookie;
	size_t		pos;

	if (len < 4)
	{
		*errpos = 0;
		return WAM_PORTABLE_TRUNCATED;
	}
	cookie = read_u32(buf);
	pos = 4;

	if ((cookie & 0xFFFF) == SERIAL_COOKIE)
	{
		/* count is implicit, 1..65536, so it can never be too large */
		hdr->n = (cookie >> 16) + 1;
		hdr->hasrun = true;
	}
	else if (cookie == SERIAL_COOKIE_NO_RUNCONTAINER)
	{
		if (len - pos < 4)
		{
			*errpos = pos;
			return WAM_PORTABLE_TRUNCATED;
		}
		hdr->n = read_u32(buf + pos);

		/*
		 * Checked before any size arithmetic so that a huge count cannot
		 * overflow n * 4 on 32-bit platforms.  A count of 0 is legal only in
		 * this form: it is how every implementation writes an empty bitmap.
		 */
		if (hdr->n > MAX_CONTAINERS)
		{
			*errpos = pos;
			return WAM_PORTABLE_TOO_MANY_CONTAINERS;
		}
		pos += 4;
		hdr->hasrun = false;
	}
	else
	{
		*errpos = 0;
		return WAM_PORTABLE_BAD_COOKIE;
	}

	hdr->runflags_at = pos;
	if (hdr->hasrun)
	{
		size_t		flagbytes = ((size_t) hdr->n + 7) / 8;

		if (len - pos < flagbytes)
		{
			*errpos = pos;
			return WAM_PORTABLE_TRUNCATED;
		}
		pos += flagbytes;
	}

	hdr->keys_at = pos;
	if (len - pos < (size_t) hdr->n * 4)
	{
		*errpos = pos;
		return WAM_PORTABLE_TRUNCATED;
	}
	return WAM_PORTABLE_OK;
}

/*
 * Array container: card uint16 values, strictly increasing (which also
 * rules out duplicates, which would make CRoaring's cardinality wrong).
 */
static WamPortableError
check_array(const uint8_t *buf, size_t len, size_t *pos, uint32_t card,
			size_t *errpos)
{
	size_t		at = *pos;
	uint32_t	i;
	uint16_t	prev;

	if (len - at < (size_t) card * 2)
	{
		*errpos = at;
		return WAM_PORTABLE_TRUNCATED;
	}
	prev = read_u16(buf + at);
	for (i = 1; i < card; i++)
	{
		uint16_t	v = read_u16(buf + at + (size_t) i * 2);

		if (v <= prev)
		{
			*errpos = at + (size_t) i * 2;
			return WAM_PORTABLE_BAD_ARRAY;
		}
		prev = v;
	}
	*pos = at + (size_t) card * 2;
	return WAM_PORTABLE_OK;
}

/*
 * Bitset container: 8192 bytes whose popcount must equal the header
 * cardinality, because CRoaring copies the header value into the container
 * instead of counting.  The format only selects a bitset when the header
 * says card > 4096, so a bitset holding <= 4096 members necessarily shows
 * up here as a cardinality mismatch.
 */
static WamPortableError
check_bitset(const uint8_t *buf, size_t len, size_t *pos, uint32_t card,
			 size_t *errpos)
{
	size_t		at = *pos;
	uint32_t	count = 0;
	int			i;

	if (len - at < BITSET_BYTES)
	{
		*errpos = at;
		return WAM_PORTABLE_TRUNCATED;
	}
	for (i = 0; i < BITSET_WORDS; i++)
	{
		uint64_t	w;

		/* byte order does not matter for a popcount, so a raw copy will do */
		memcpy(&w, buf + at + (size_t) i * 8, sizeof(w));
		count += (uint32_t) popcount64(w);
	}
	if (count != card)
	{
		*errpos = at;
		return WAM_PORTABLE_BAD_CARDINALITY;
	}
	*pos = at + BITSET_BYTES;
	return WAM_PORTABLE_OK;
}

/*
 * Run container: uint16 n_runs, then n_runs (start, length - 1) pairs.
 *
 * We accept a run container of any cardinality and any number of runs,
 * because Java and Go may legitimately write run containers that CRoaring
 * itself would have stored as arrays or bitsets.  But the runs must form a
 * valid set: at least one run, none extending past 65535, sorted, not
 * overlapping, and also not touching (start must be at least previous end
 * + 2).  Touching runs still describe a valid set, but no implementation
 * writes them (all merge adjacent runs) and CRoaring assumes maximal runs:
 * it compares run containers run by run and recognizes a full container by
 * its single 0..65535 run, so a split run would make equal sets compare
 * unequal.  Rejecting them keeps one spelling per run container.
 * The run lengths must add up to the header cardinality, which is what
 * wam_portable_cardinality() reports.
 */
static WamPortableError
check_run(const uint8_t *buf, size_t len, size_t *pos, uint32_t card,
		  size_t *errpos)
{
	size_t		at = *pos;
	uint32_t	n_runs;
	uint32_t	i;
	uint32_t	sum = 0;
	uint32_t	prev_end = 0;

	if (len - at < 2)
	{
		*errpos = at;
		return WAM_PORTABLE_TRUNCATED;
	}
	n_runs = read_u16(buf + at);
	if (n_runs == 0)
	{
		*errpos = at;
		return WAM_PORTABLE_BAD_RUN;
	}
	if (len - at - 2 < (size_t) n_runs * 4)
	{
		*errpos = at;
		return WAM_PORTABLE_TRUNCATED;
	}
	for (i = 0; i < n_runs; i++)
	{
		size_t		run_at = at + 2 + (size_t) i * 4;
		uint32_t	start = read_u16(buf + run_at);
		uint32_t	end = start + read_u16(buf + run_at + 2);

		if (end > 0xFFFF || (i > 0 && start <= prev_end + 1))
		{
			*errpos = run_at;
			return WAM_PORTABLE_BAD_RUN;
		}
		/* at most 65536 in total since runs are disjoint and in range */
		sum += end - start + 1;
		prev_end = end;
	}
	if (sum != card)
	{
		*errpos = at;
		return WAM_PORTABLE_BAD_CARDINALITY;
	}
	*pos = at + 2 + (size_t) n_runs * 4;
	return WAM_PORTABLE_OK;
}

WamPortableError
wam_portable_validate(const uint8_t *buf, size_t len, uint64_t *cardinality,
					  size_t *error_offset)
{
	PortableHeader hdr;
	WamPortableError err;
	size_t		errpos = 0;
	size_t		pos;
	size_t		offsets_at = 0;
	bool		has_offsets;
	uint64_t	total = 0;
	uint32_t	k;

	err = parse_header(buf, len, &hdr, &errpos);
	if (err != WAM_PORTABLE_OK)
		goto fail;

	/*
	 * Keys must be strictly increasing: CRoaring binary-searches them, and a
	 * duplicate key would describe the same members twice.
	 */
	for (k = 1; k < hdr.n; k++)
	{
		size_t		key_at = hdr.keys_at + (size_t) k * 4;

		if (read_u16(buf + key_at) <= read_u16(buf + key_at - 4))
		{
			errpos = key_at;
			err = WAM_PORTABLE_KEYS_NOT_ASCENDING;
			goto fail;
		}
	}
	pos = hdr.keys_at + (size_t) hdr.n * 4;

	/*
	 * CRoaring skips the offset header, but Java and Go readers (and any
	 * lazy reader of ours) seek with it, so a lying offset header would make
	 * the same bytes mean different sets to different readers.
	 */
	has_offsets = !hdr.hasrun || hdr.n >= NO_OFFSET_THRESHOLD;
	if (has_offsets)
	{
		if (len - pos < (size_t) hdr.n * 4)
		{
			errpos = pos;
			err = WAM_PORTABLE_TRUNCATED;
			goto fail;
		}
		offsets_at = pos;
		pos += (size_t) hdr.n * 4;
	}

	for (k = 0; k < hdr.n; k++)
	{
		uint32_t	card = (uint32_t) read_u16(buf + hdr.keys_at +
											   (size_t) k * 4 + 2) + 1;
		bool		isrun = false;

		/*
		 * Flag bits past the last container (padding in the final flag byte)
		 * are ignored, as CRoaring, Java and Go do; they carry no meaning.
		 */
		if (hdr.hasrun)
			isrun = (buf[hdr.runflags_at + k / 8] >> (k % 8)) & 1;

		if (has_offsets &&
			(uint64_t) read_u32(buf + offsets_at + (size_t) k * 4) !=
			(uint64_t) pos)
		{
			errpos = offsets_at + (size_t) k * 4;
			err = WAM_PORTABLE_BAD_OFFSET;
			goto fail;
		}

		if (isrun)
			err = check_run(buf, len, &pos, card, &errpos);
		else if (card <= ARRAY_MAX_CARDINALITY)
			err = check_array(buf, len, &pos, card, &errpos);
		else
			err = check_bitset(buf, len, &pos, card, &errpos);
		if (err != WAM_PORTABLE_OK)
			goto fail;

		total += card;
	}

	/*
	 * Reject trailing garbage: CRoaring would silently ignore it, and then
	 * two different byte strings would decode to the same bitmap.
	 */
	if (pos != len)
	{
		errpos = pos;
		err = WAM_PORTABLE_TRAILING_BYTES;
		goto fail;
	}

	if (cardinality)
		*cardinality = total;
	return WAM_PORTABLE_OK;

fail:
	if (error_offset)
		*error_offset = errpos;
	return err;
}

const char *
wam_portable_error_message(WamPortableError err)
{
	switch (err)
	{
		case WAM_PORTABLE_OK:
			return "no error";
		case WAM_PORTABLE_TRUNCATED:
			return "unexpected end of data";
		case WAM_PORTABLE_BAD_COOKIE:
			return "unrecognized cookie, not a portable roaring bitmap";
		case WAM_PORTABLE_TOO_MANY_CONTAINERS:
			return "too many containers";
		case WAM_PORTABLE_KEYS_NOT_ASCENDING:
			return "container keys are not in ascending order";
		case WAM_PORTABLE_BAD_OFFSET:
			return "container offset does not match container position";
		case WAM_PORTABLE_BAD_ARRAY:
			return "array container values are not strictly ascending";
		case WAM_PORTABLE_BAD_RUN:
			return "invalid run container";
		case WAM_PORTABLE_BAD_CARDINALITY:
			return "container cardinality does not match its contents";
		case WAM_PORTABLE_TRAILING_BYTES:
			return "trailing bytes after the last container";
	}
	/* not in the switch so that the compiler still warns about new codes */
	return "unknown error";
}

uint64_t
wam_portable_cardinality(const uint8_t *buf, size_t len)
{
	PortableHeader hdr;
	size_t		errpos;
	uint64_t	total = 0;
	uint32_t	k;

	/* stays in bounds even for garbage, but then the answer is meaningless */
	if (parse_header(buf, len, &hdr, &errpos) != WAM_PORTABLE_OK)
		return 0;
	for (k = 0; k < hdr.n; k++)
		total += (uint64_t) read_u16(buf + hdr.keys_at + (size_t) k * 4 + 2) + 1;
	return total;
}
