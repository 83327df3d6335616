/*-------------------------------------------------------------------------
 *
 * fuzz_phone.c
 *	  libFuzzer target for phone-number normalization (src/phone.c).
 *
 * The input is split at its first NUL byte: the bytes before it are the raw
 * number, the bytes after it (if any NUL is present) the default country.
 * Whatever wam_phone_normalize() accepts must be 8 to 15 ASCII digits that
 * start with a geographic country calling code, must come back unchanged
 * when normalized again as "+" || output (with or without the default
 * country) and as bare digits without a default, and must map to a country.
 * A rejection must come with a reason sentence that fits its buffer and is
 * valid UTF-8.
 *
 * Build and run (from the repository root):
 *	  clang -g -O1 -fsanitize=fuzzer,address,undefined \
 *		  -fno-sanitize-recover=undefined -I src \
 *		  test/fuzz/fuzz_phone.c src/phone.c src/phone_data.c -o fuzz_phone
 *	  ./fuzz_phone -max_total_time=300 -max_len=256
 *
 * Failed checks call abort() rather than assert() so that they fire no
 * matter how the target is compiled.
 *
 * test/fuzz/fuzz_phone.c
 *
 *-------------------------------------------------------------------------
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "phone.h"

#define CHECK(cond) \
	do { \
		if (!(cond)) \
		{ \
			fprintf(stderr, "fuzz_phone: check failed: %s (%s:%d)\n", \
					#cond, __FILE__, __LINE__); \
			abort(); \
		} \
	} while (0)

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Whether s[0..len) is well-formed UTF-8 (no overlongs or surrogates). */
static int
valid_utf8(const unsigned char *s, size_t len)
{
	size_t		i = 0;

	while (i < len)
	{
		unsigned int c = s[i];
		int			n;
		unsigned int cp;
		unsigned int min;
		int			k;

		if (c < 0x80)
		{
			i++;
			continue;
		}
		if (c >= 0xC2 && c <= 0xDF)
			n = 2, cp = c & 0x1F, min = 0x80;
		else if (c >= 0xE0 && c <= 0xEF)
			n = 3, cp = c & 0x0F, min = 0x800;
		else if (c >= 0xF0 && c <= 0xF4)
			n = 4, cp = c & 0x07, min = 0x10000;
		else
			return 0;
		if (i + (size_t) n > len)
			return 0;
		for (k = 1; k < n; k++)
		{
			if ((s[i + k] & 0xC0) != 0x80)
				return 0;
			cp = (cp << 6) | (s[i + k] & 0x3F);
		}
		if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
			return 0;
		i += (size_t) n;
	}
	return 1;
}

static void
check_reason(const char *reason)
{
	size_t		len = strnlen(reason, WAM_PHONE_REASON_SIZE);

	CHECK(len > 0);
	CHECK(len < WAM_PHONE_REASON_SIZE);
	CHECK(valid_utf8((const unsigned char *) reason, len));
	/* a sentence: starts upper case or with a quote, ends with a period */
	CHECK(reason[len - 1] == '.');
}

/* Normalizes s (NUL-terminated) again and checks it gives expect. */
static void
check_same(const char *s, const char *country, const char *expect)
{
	char		out[WAM_PHONE_OUT_SIZE];
	char		reason[WAM_PHONE_REASON_SIZE];
	WamPhoneStatus st;

	st = wam_phone_normalize(s, strlen(s), country, out, sizeof(out),
							 reason, sizeof(reason));
	if (st != WAM_PHONE_OK)
		fprintf(stderr, "fuzz_phone: \"%s\" (country %s) rejected: %s\n",
				s, country ? country : "none", reason);
	CHECK(st == WAM_PHONE_OK);
	if (strcmp(out, expect) != 0)
		fprintf(stderr, "fuzz_phone: \"%s\" gave %s, expected %s\n",
				s, out, expect);
	CHECK(strcmp(out, expect) == 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nul = memchr(data, 0, size);
	size_t		rawlen = nul ? (size_t) (nul - data) : size;
	char	   *raw;
	char	   *country = NULL;
	char		out[WAM_PHONE_OUT_SIZE + 8];
	char		reason[WAM_PHONE_REASON_SIZE + 8];
	char		again[WAM_PHONE_OUT_SIZE + 1];
	WamPhoneStatus st;
	size_t		len;
	size_t		i;

	/* An exact-size copy, so ASan sees any read past the end. */
	raw = malloc(rawlen ? rawlen : 1);
	CHECK(raw != NULL);
	memcpy(raw, data, rawlen);
	if (nul != NULL)
	{
		size_t		clen = size - rawlen - 1;

		country = malloc(clen + 1);
		CHECK(country != NULL);
		memcpy(country, nul + 1, clen);
		country[clen] = '\0';
	}

	/* Canaries past the sizes we pass: writing beyond them is a bug. */
	memset(out, 'Z', sizeof(out));
	memset(reason, 'Z', sizeof(reason));
	st = wam_phone_normalize(raw, rawlen, country, out, WAM_PHONE_OUT_SIZE,
							 reason, WAM_PHONE_REASON_SIZE);
	for (i = WAM_PHONE_OUT_SIZE; i < sizeof(out); i++)
		CHECK(out[i] == 'Z');
	for (i = WAM_PHONE_REASON_SIZE; i < sizeof(reason); i++)
		CHECK(reason[i] == 'Z');

	if (st == WAM_PHONE_OK)
	{
		len = strnlen(out, WAM_PHONE_OUT_SIZE);
		CHECK(len >= WAM_PHONE_MIN_DIGITS && len <= WAM_PHONE_MAX_DIGITS);
		for (i = 0; i < len; i++)
			CHECK(out[i] >= '0' && out[i] <= '9');
		CHECK(wam_phone_calling_code_length(out, len) > 0);
		CHECK(wam_phone_country(out, len) != NULL);

		/* idempotence: an international number stays as it is */
		again[0] = '+';
		memcpy(again + 1, out, len + 1);
		check_same(again, NULL, out);
		check_same(again, country, out);
		check_same(out, NULL, out);
	}
	else
	{
		CHECK(st == WAM_PHONE_INVALID || st == WAM_PHONE_BAD_COUNTRY);
		CHECK(st == WAM_PHONE_INVALID || country != NULL);
		CHECK(out[0] == '\0');
		check_reason(reason);
	}

	/* The region lookup must cope with anything too. */
	(void) wam_phone_country(raw, rawlen);

	/* Tiny buffers must be respected, not overrun. */
	{
		char		small_out[4];
		char		small_reason[8];

		memset(small_out, 'Z', sizeof(small_out));
		memset(small_reason, 'Z', sizeof(small_reason));
		st = wam_phone_normalize(raw, rawlen, country, small_out, 3,
								 small_reason, 5);
		CHECK(st != WAM_PHONE_OK);
		CHECK(small_out[3] == 'Z');
		CHECK(small_reason[5] == 'Z' && small_reason[6] == 'Z');
		CHECK(small_reason[4] == '\0' || strlen(small_reason) < 5);
	}

	free(raw);
	free(country);
	return 0;
}
