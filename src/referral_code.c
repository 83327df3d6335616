/*-------------------------------------------------------------------------
 *
 * referral_code.c
 *	  Crockford base-32 codes with a GF(32) check symbol (see
 *	  referral_code.h for the format and why).
 *
 *-------------------------------------------------------------------------
 */
#include "referral_code.h"

const char	wam_code_alphabet[33] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/*
 * Multiplication by alpha in GF(32) = GF(2)[x] / (x^5 + x^2 + 1); the
 * polynomial is primitive, so alpha = x has multiplicative order 31.
 */
static inline unsigned
gf32_mul_alpha(unsigned v)
{
	v <<= 1;
	if (v & 0x20)
		v ^= 0x25;
	return v;
}

/* Horner evaluation of sum s_i * alpha^(n-1-i). */
static unsigned
gf32_syndrome(const unsigned char *sym, int n)
{
	unsigned	h = 0;
	int			i;

	for (i = 0; i < n; i++)
		h = gf32_mul_alpha(h) ^ sym[i];
	return h;
}

/* Value of a typed character, or -1 if it is no symbol. */
static int
code_value(unsigned char c)
{
	if (c >= 'a' && c <= 'z')
		c = (unsigned char) (c - 'a' + 'A');
	switch (c)
	{
		case 'O':
			return 0;
		case 'I':
		case 'L':
			return 1;
		case 'U':
			return -1;
		default:
			break;
	}
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'Z')
	{
		int			i;

		for (i = 10; i < 32; i++)
			if (wam_code_alphabet[i] == (char) c)
				return i;
	}
	return -1;
}

void
wam_code_encode(const uint8_t *bytes, int ndata, char *out)
{
	unsigned char sym[WAM_CODE_MAX_DATA + 1];
	int			i;

	if (ndata < 1)
		ndata = 1;
	if (ndata > WAM_CODE_MAX_DATA)
		ndata = WAM_CODE_MAX_DATA;
	for (i = 0; i < ndata; i++)
	{
		int			bit = i * 5;
		unsigned	v = ((unsigned) bytes[bit / 8] << 8);

		if ((bit + 4) / 8 > bit / 8)
			v |= bytes[bit / 8 + 1];
		sym[i] = (unsigned char) ((v >> (11 - bit % 8)) & 0x1f);
	}
	/* the check symbol c makes alpha * h + c = 0, i.e. c = alpha * h */
	sym[ndata] = (unsigned char) gf32_mul_alpha(gf32_syndrome(sym, ndata));
	for (i = 0; i <= ndata; i++)
		out[i] = wam_code_alphabet[sym[i]];
	out[ndata + 1] = '\0';
}

WamCodeStatus
wam_code_decode(const char *in, size_t len, int ndata, char *out)
{
	unsigned char sym[WAM_CODE_MAX_DATA + 1];
	int			n = 0;
	size_t		i;

	if (ndata < 1 || ndata > WAM_CODE_MAX_DATA)
		return WAM_CODE_BAD_LENGTH;
	if (len > WAM_CODE_MAX_INPUT)
		return WAM_CODE_BAD_LENGTH;
	for (i = 0; i < len; i++)
	{
		unsigned char c = (unsigned char) in[i];
		int			v;

		if (c == ' ' || c == '-' || c == '\t')
			continue;
		v = code_value(c);
		if (v < 0)
			return WAM_CODE_BAD_CHAR;
		if (n > ndata)
			return WAM_CODE_BAD_LENGTH;
		sym[n++] = (unsigned char) v;
	}
	if (n == 0)
		return WAM_CODE_EMPTY;
	if (n != ndata + 1)
		return WAM_CODE_BAD_LENGTH;
	if (gf32_syndrome(sym, n) != 0)
		return WAM_CODE_BAD_CHECK;
	for (i = 0; i < (size_t) n; i++)
		out[i] = wam_code_alphabet[sym[i]];
	out[n] = '\0';
	return WAM_CODE_OK;
}

const char *
wam_code_status_text(WamCodeStatus status)
{
	switch (status)
	{
		case WAM_CODE_OK:
			return "The code is valid.";
		case WAM_CODE_EMPTY:
			return "The code is empty.";
		case WAM_CODE_BAD_CHAR:
			return "The code contains a character that is not a letter or digit of the code alphabet.";
		case WAM_CODE_BAD_LENGTH:
			return "The code has the wrong number of characters.";
		case WAM_CODE_BAD_CHECK:
			return "The check character does not match: a character is mistyped or two are swapped.";
	}
	return "The code is invalid.";
}
