/*-------------------------------------------------------------------------
 *
 * fuzz_refcode.c
 *	  libFuzzer target for the referral and redemption code reader
 *	  (src/referral_code.c).
 *
 * The first byte picks the number of data symbols (1 .. 30; 10 and 12 are
 * the referral and redemption codes), the rest is what someone typed.  A
 * decoded code must be exactly ndata + 1 symbols of the alphabet, must
 * decode to itself, and must equal the encoding of its own data bits; the
 * encoding of any bytes must decode; changing any one symbol of a valid code
 * or swapping two different symbols must be caught by the check symbol.
 *
 * Build and run (from the repository root):
 *	  clang -g -O1 -fsanitize=fuzzer,address,undefined \
 *		  -fno-sanitize-recover=undefined -I src \
 *		  test/fuzz/fuzz_refcode.c src/referral_code.c -o fuzz_refcode
 *	  ./fuzz_refcode -max_total_time=300 -max_len=128
 *
 * test/fuzz/fuzz_refcode.c
 *
 *-------------------------------------------------------------------------
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "referral_code.h"

#define CHECK(cond) \
	do { \
		if (!(cond)) \
		{ \
			fprintf(stderr, "fuzz_refcode: check failed: %s (%s:%d)\n", \
					#cond, __FILE__, __LINE__); \
			abort(); \
		} \
	} while (0)

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
symbol_value(char c)
{
	const char *p = strchr(wam_code_alphabet, c);

	return (c != '\0' && p != NULL) ? (int) (p - wam_code_alphabet) : -1;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char		out[WAM_CODE_MAX_DATA + 2];
	char		again[WAM_CODE_MAX_DATA + 2];
	char		enc[WAM_CODE_MAX_DATA + 2];
	uint8_t		bits[(WAM_CODE_MAX_DATA * 5 + 7) / 8 + 1];
	int			ndata;
	WamCodeStatus st;
	size_t		i;
	int			j;

	if (size < 1)
		return 0;
	ndata = 1 + data[0] % WAM_CODE_MAX_DATA;
	data++;
	size--;

	/* reading arbitrary input */
	memset(out, 0x7f, sizeof(out));
	st = wam_code_decode((const char *) data, size, ndata, out);
	CHECK(wam_code_status_text(st) != NULL);
	if (st == WAM_CODE_OK)
	{
		CHECK(strlen(out) == (size_t) ndata + 1);
		for (j = 0; j <= ndata; j++)
			CHECK(symbol_value(out[j]) >= 0);
		CHECK(wam_code_decode(out, strlen(out), ndata, again) == WAM_CODE_OK);
		CHECK(strcmp(out, again) == 0);
		/* the data symbols are 5-bit groups: re-encoding them gives the code */
		memset(bits, 0, sizeof(bits));
		for (j = 0; j < ndata * 5; j++)
			if ((symbol_value(out[j / 5]) >> (4 - j % 5)) & 1)
				bits[j / 8] |= (uint8_t) (0x80 >> (j % 8));
		wam_code_encode(bits, ndata, enc);
		CHECK(strcmp(enc, out) == 0);
	}
	else
		CHECK(st == WAM_CODE_EMPTY || st == WAM_CODE_BAD_CHAR ||
			  st == WAM_CODE_BAD_LENGTH || st == WAM_CODE_BAD_CHECK);

	/* encoding the input bytes always gives a valid code ... */
	memset(bits, 0, sizeof(bits));
	memcpy(bits, data, size < sizeof(bits) ? size : sizeof(bits));
	wam_code_encode(bits, ndata, enc);
	CHECK(strlen(enc) == (size_t) ndata + 1);
	CHECK(wam_code_decode(enc, strlen(enc), ndata, again) == WAM_CODE_OK);
	CHECK(strcmp(enc, again) == 0);
	/* ... in which every single substitution and every swap is caught */
	for (i = 0; i <= (size_t) ndata; i++)
	{
		char		saved = enc[i];

		for (j = 0; j < 32; j++)
		{
			if (wam_code_alphabet[j] == saved)
				continue;
			enc[i] = wam_code_alphabet[j];
			CHECK(wam_code_decode(enc, strlen(enc), ndata, again) == WAM_CODE_BAD_CHECK);
		}
		enc[i] = saved;
		for (j = (int) i + 1; j <= ndata; j++)
		{
			char		t;

			if (enc[j] == enc[i])
				continue;
			t = enc[i];
			enc[i] = enc[j];
			enc[j] = t;
			CHECK(wam_code_decode(enc, strlen(enc), ndata, again) == WAM_CODE_BAD_CHECK);
			enc[j] = enc[i];
			enc[i] = t;
		}
	}
	return 0;
}
