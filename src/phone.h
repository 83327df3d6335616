/*-------------------------------------------------------------------------
 *
 * phone.h
 *	  Phone-number normalization for contact import (requirement R-I2).
 *
 * Deliberately free of PostgreSQL headers: the code reports its result
 * through a status, an output buffer and a reason sentence, so the same
 * code runs inside the server (phone_sql.c) and under libFuzzer
 * (test/fuzz/fuzz_phone.c).
 *
 * A normalized number is E.164 without the "+": the country calling code
 * followed by the national significant number, digits only, 8 to 15 of
 * them ("85291234567").  That is the form WhatsApp uses for wa_id.
 *
 *-------------------------------------------------------------------------
 */
#ifndef WAM_PHONE_H
#define WAM_PHONE_H

#include <stddef.h>
#include <stdint.h>

/* E.164 allows at most 15 digits including the country calling code. */
#define WAM_PHONE_MAX_DIGITS	15

/*
 * Shortest normalized number accepted.  Apart from a few legacy 4-digit
 * mobiles of Niue and Tokelau, no mobile number anywhere has fewer digits
 * with its country code; anything shorter is a truncated number.
 */
#define WAM_PHONE_MIN_DIGITS	8

/* Buffer sizes callers must provide. */
#define WAM_PHONE_OUT_SIZE		(WAM_PHONE_MAX_DIGITS + 1)
#define WAM_PHONE_REASON_SIZE	256

/* Longest piece of caller input quoted back in a reason sentence. */
#define WAM_PHONE_QUOTE_MAX		64

typedef enum WamPhoneStatus
{
	WAM_PHONE_OK = 0,
	WAM_PHONE_INVALID,			/* the number is rejected; reason says why */
	WAM_PHONE_BAD_COUNTRY		/* default_country names no known country */
} WamPhoneStatus;

/*
 * Normalizes raw (rawlen bytes of UTF-8, need not be NUL-terminated).
 *
 * default_country is NULL or a NUL-terminated string: an ISO 3166-1 alpha-2
 * code in any case ("HK", "kr"), or a country calling code with or without
 * "+" ("852", "+852"); NULL or blank means "no default".  It is used only
 * for numbers written without an international prefix.
 *
 * On WAM_PHONE_OK, out (outsz >= WAM_PHONE_OUT_SIZE) holds the normalized
 * number.  Otherwise reason (reasonsz bytes, WAM_PHONE_REASON_SIZE is
 * always enough) holds a full English sentence saying what is wrong, in
 * UTF-8.  The run time is linear in rawlen and nothing is allocated.
 */
extern WamPhoneStatus wam_phone_normalize(const char *raw, size_t rawlen,
										  const char *default_country,
										  char *out, size_t outsz,
										  char *reason, size_t reasonsz);

/*
 * ISO 3166-1 alpha-2 code of the country a number belongs to, or NULL.
 * The input is read as an international number ("+" optional), so both
 * normalized numbers and raw ones like "+852 9123 4567" work; NULL comes
 * back for anything wam_phone_normalize would reject that way.
 */
extern const char *wam_phone_country(const char *raw, size_t rawlen);

/*
 * Number of leading digits of digits[0..len) that form an assigned,
 * geographic country calling code, or 0 if they do not start with one.
 */
extern int	wam_phone_calling_code_length(const char *digits, size_t len);

/*
 * Data tables, generated from libphonenumber metadata (phone_data.c).
 */

#define WAM_LENGTHOF(array) ((int) (sizeof(array) / sizeof((array)[0])))

/* WamPhoneCode.flags */
#define WAM_PC_NONGEO		0x01	/* 800, 870, 882...: no country */
#define WAM_PC_ZERO_OK		0x02	/* national numbers may start with 0 */
#define WAM_PC_STRIP_ZERO	0x04	/* trunk prefix 0 written after the code
									 * ("+44 (0)20 ...") is dropped */

typedef struct WamPhoneCode
{
	uint16_t	code;			/* country calling code */
	char		region[3];		/* main ISO 3166-1 alpha-2 region, or "" */
	uint16_t	lengths;		/* bit n set: n-digit national numbers exist */
	uint8_t		flags;
} WamPhoneCode;

typedef struct WamPhoneRegion
{
	char		iso[3];			/* ISO 3166-1 alpha-2 (plus AC, TA, XK) */
	uint16_t	code;			/* its country calling code */
	char		trunk[3];		/* national (trunk) prefix, "" if none */
} WamPhoneRegion;

typedef struct WamPhoneNanpArea
{
	uint16_t	npa;			/* area code */
	char		region[3];		/* country other than the US using it */
} WamPhoneNanpArea;

/* Each table is sorted by its first field. */
extern const WamPhoneCode wam_phone_codes[];
extern const int wam_phone_ncodes;
extern const WamPhoneRegion wam_phone_regions[];
extern const int wam_phone_nregions;
extern const WamPhoneNanpArea wam_phone_nanp_areas[];
extern const int wam_phone_nnanp_areas;
extern const char wam_phone_data_source[];

#endif							/* WAM_PHONE_H */
