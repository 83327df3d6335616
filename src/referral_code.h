/*-------------------------------------------------------------------------
 *
 * referral_code.h
 *	  Referral and redemption codes: Crockford base-32 text with a check
 *	  character (requirement R-F1).
 *
 * Deliberately free of PostgreSQL headers so that the decoder, which reads
 * whatever an invitee types into WhatsApp, runs under libFuzzer
 * (test/fuzz/fuzz_refcode.c) exactly as it runs in the server.
 *
 * A code is N data symbols from the alphabet 0-9 A-Z without I, L, O and U
 * (Crockford's base 32: nothing that reads as another symbol) followed by
 * one check symbol.  The check symbol makes the code a word of a one-symbol
 * Reed-Solomon-like check over GF(32): sum s_i * alpha^(n-1-i) = 0 with
 * alpha a primitive element.  Because alpha has order 31, every single
 * mistyped symbol and every swap of two symbols anywhere in a code of up
 * to 31 symbols changes the sum, so it is caught -- a weighted mod-N digit
 * sum (Luhn mod N) misses some swaps.
 *
 * Typing is forgiven the way Crockford specifies: lower case, O for 0,
 * I and L for 1, and spaces or hyphens between symbols are accepted.
 *
 *-------------------------------------------------------------------------
 */
#ifndef WAM_REFERRAL_CODE_H
#define WAM_REFERRAL_CODE_H

#include <stddef.h>
#include <stdint.h>

/* Data symbols of a referral code (50 bits of a keyed hash) and of a
 * redemption code (60 random bits); each gets one check symbol more. */
#define WAM_REFCODE_DATA		10
#define WAM_REDEEM_DATA			12
#define WAM_CODE_MAX_DATA		30

/* Longest input the decoder looks at; longer input is not a code. */
#define WAM_CODE_MAX_INPUT		64

typedef enum WamCodeStatus
{
	WAM_CODE_OK = 0,
	WAM_CODE_EMPTY,				/* nothing but separators */
	WAM_CODE_BAD_CHAR,			/* a character outside the alphabet */
	WAM_CODE_BAD_LENGTH,		/* too few or too many symbols */
	WAM_CODE_BAD_CHECK			/* the check symbol does not match: a typo */
} WamCodeStatus;

extern const char wam_code_alphabet[33];

/*
 * Encodes the first ndata*5 bits of bytes (at least (ndata*5+7)/8 bytes) as
 * ndata symbols plus the check symbol into out, which must hold ndata + 2
 * bytes; out is NUL-terminated.  ndata is 1 .. WAM_CODE_MAX_DATA.
 */
extern void wam_code_encode(const uint8_t *bytes, int ndata, char *out);

/*
 * Reads a typed code of ndata data symbols (len bytes at in, need not be
 * NUL-terminated).  On WAM_CODE_OK, out (ndata + 2 bytes) holds the
 * canonical code.  Runs in time linear in len, allocates nothing.
 */
extern WamCodeStatus wam_code_decode(const char *in, size_t len, int ndata, char *out);

/* A short English sentence saying what a status means. */
extern const char *wam_code_status_text(WamCodeStatus status);

#endif							/* WAM_REFERRAL_CODE_H */
