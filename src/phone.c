/*-------------------------------------------------------------------------
 *
 * phone.c
 *	  Phone-number normalization: contact-import text to E.164 digits.
 *
 * Requirement R-I2: numbers must carry the country code; spaces, hyphens
 * and parentheses are removed; numbers without a valid country code or
 * with too few digits are rejected.  The steps:
 *
 * 1. Scan the UTF-8 text once.  Digits are 0-9 and their fullwidth
 *	  (U+FF10..U+FF19, CJK input methods), Arabic-Indic (U+0660..U+0669) and
 *	  Extended Arabic-Indic (U+06F0..U+06F9) forms.  Dropped as separators:
 *	  ASCII white space, "-", ".", "/", "(", ")", no-break and typographic
 *	  spaces (U+00A0, U+2000..U+200A, U+202F, U+205F, U+3000), hyphens and
 *	  dashes (U+2010..U+2015, U+2212), soft hyphen, zero-width and
 *	  bidirectional formatting characters (U+200B..U+200F, U+202A..U+202E,
 *	  U+2060, U+2066..U+2069, U+FEFF: phones add these around numbers they
 *	  export) and the fullwidth forms of "-", ".", "/", "(", ")".  One "+"
 *	  (or fullwidth "+") may come before the first digit, even inside
 *	  parentheses: "(+852) 9123 4567".  Anything else, letters, "*", "#"
 *	  and extension markers such as "ext" or "x" included, rejects the
 *	  number.
 *
 * 2. Find the country calling code.  A leading "+" or "00", or "011" when
 *	  the default country is in the North American Numbering Plan, means
 *	  the digits start with one.  Without such a prefix and with a default
 *	  country, the digits are a national number of that country, tried
 *	  (a) without the country's trunk prefix if they start with it
 *	  ("010-1234-5678" in KR, "8 916 ..." in RU), (b) as written, and
 *	  (c) as an international number that only lacks the "+" if they start
 *	  with the country's own code ("85291234567" with default HK).  The
 *	  first valid reading wins, except that (c) comes before (b) when the
 *	  country has a trunk prefix the digits lack.  A failure is explained
 *	  in terms of the first national reading, (a) or (b).  "00" can also
 *	  begin a national number in a few countries (Tajikistan), so with a
 *	  default country a number that fails after "00" is tried as national
 *	  too.  Without a prefix and without a default country the digits must
 *	  start with a country calling code.
 *
 * 3. Validate the national significant number (NSN).  The code must be an
 *	  assigned E.164 code; the nine non-geographic ones (international
 *	  freephone, satellite, networks...) are rejected because WhatsApp
 *	  cannot message them.  The markets in wam_phone_markets below get
 *	  hand-written rules on leading digits and length; every other code gets
 *	  the NSN lengths of its fixed-line, mobile, personal and VoIP numbers
 *	  from libphonenumber's metadata (phone_data.c), and its numbers may not
 *	  start with 0 unless some of them do.  The whole number must have 8 to
 *	  15 digits.
 *
 * Market-specific rewriting, all from the national numbering plans:
 *	  - "+44 (0)20 ..." and the like: a trunk prefix 0 written after the
 *		country code is dropped where no number of that code starts with 0
 *		(WAM_PC_STRIP_ZERO; not Italy, whose fixed lines keep their 0).
 *	  - MX: the old mobile prefix 1 after 52 ("+52 1 55 ...") and the old
 *		national prefixes 01, 044 and 045 are dropped; since 2019 every
 *		Mexican number has 10 digits.  WhatsApp still reports wa_id
 *		"521..." for some Mexican accounts: the output is the E.164 form.
 *	  - AR: the national mobile form "0AA 15 NNNN NNNN" becomes
 *		"+54 9 AA NNNN NNNN".  The area code has 2 (only 11, Buenos Aires),
 *		3 or 4 digits; which one is found from where "15" sits.
 *	  - BR: a carrier selection code after the trunk prefix
 *		("0 21 11 98765 4321") is dropped.
 *	  - CO: a carrier code after the trunk prefix (03, 05, 07, 09, 0414,
 *		0444, 0456) is dropped.
 *
 * The result is the E.164 number without "+", which is what WhatsApp uses
 * as wa_id.  Known exceptions on WhatsApp's side, not undone here: wa_id
 * "521..." for some Mexican accounts, and Brazilian mobile accounts older
 * than the 2012-2016 move to 9-digit mobile numbers whose wa_id lacks that
 * ninth digit (both forms are accepted here and kept as written).
 *
 *-------------------------------------------------------------------------
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "phone.h"

/*
 * Most digits a number may have as written: 15 plus an "011" prefix.  More
 * cannot be a phone number, whatever prefixes and trunk codes it carries.
 */
#define WAM_PHONE_SCAN_MAX		18

#ifdef __GNUC__
#define WAM_PHONE_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define WAM_PHONE_PRINTF(f, a)
#endif

/* Where a reason sentence goes. */
typedef struct WamPhoneReason
{
	char	   *buf;
	size_t		size;
} WamPhoneReason;

/* The digits of the input, as scanned. */
typedef struct WamPhoneScan
{
	char		digits[WAM_PHONE_SCAN_MAX + 1];
	size_t		ndigits;
	int			plus;			/* a "+" came before the first digit */
} WamPhoneScan;

/* A number split into country calling code and NSN. */
typedef struct WamPhoneNumber
{
	const WamPhoneCode *cc;
	char		nsn[WAM_PHONE_SCAN_MAX + 1];
	size_t		nsnlen;
} WamPhoneNumber;

/*
 * A hand-written rule: NSNs whose first ndigits digits, read as a number,
 * lie in lo..hi have minlen..maxlen digits.  Rules are tried in order and
 * the first match decides; an NSN matching no rule is rejected for its
 * leading digits.
 */
typedef struct WamPhoneRule
{
	uint8_t		ndigits;
	uint16_t	lo;
	uint16_t	hi;
	uint8_t		minlen;
	uint8_t		maxlen;
} WamPhoneRule;

/* Extra test of an NSN that passed the rules; false with a reason if bad. */
typedef bool (*WamPhoneCheck) (const char *nsn, size_t n, WamPhoneReason *r);

typedef struct WamPhoneMarket
{
	uint16_t	code;
	const char *name;			/* as in "Hong Kong numbers" */
	const WamPhoneRule *rules;
	int			nrules;
	WamPhoneCheck check;
} WamPhoneMarket;

static bool wam_phone_check_nanp(const char *nsn, size_t n, WamPhoneReason *r);
static bool wam_phone_check_br(const char *nsn, size_t n, WamPhoneReason *r);

/*
 * The markets with hand-written rules.  Lengths are of the NSN (without the
 * country code and trunk prefix); "[2-9]" means the first digit is one of
 * 2 to 9.  Only fixed-line, mobile, personal and VoIP ranges are accepted:
 * toll-free, premium-rate, shared-cost and pager numbers cannot hold a
 * WhatsApp account.  Sources: the ITU-T national numbering plans as
 * summarized by libphonenumber's metadata.
 *
 *	  code market		  rules (leading digits: NSN length)
 *	  1	   US, CA, NANP	  [2-9]: 10, and: area code not N11 nor N9X,
 *						  exchange (digits 4-6) not starting with 0 or 1
 *	  7	   RU, KZ		  [34]: 10, [7-9]: 10 (9 mobile, 7 Kazakhstan)
 *	  20   EG			  1[0-2]: 10 (mobile), 13: 9, 15: 8-10, 2: 9 (Cairo),
 *						  3: 8 (Alexandria), [4-9]: 8-9
 *	  27   ZA			  [1-8]: 9
 *	  33   FR			  [1-9]: 9
 *	  34   ES			  [4-9]: 9
 *	  39   IT			  0: 6-12 (fixed lines keep the 0), 1: 9-10 (personal),
 *						  3: 9-10 (mobile), 43: 10 (mobile), 55: 10 (VoIP)
 *	  44   GB			  1: 9-10, [23]: 10, 5: 10, 7: 10 (mobile)
 *	  49   DE			  1[5-7]: 10-11 (mobile), [2-9]: 6-13
 *	  52   MX			  [2-9]: 10
 *	  54   AR			  9: 11 (mobile, "9" + area code + number), [1-3]: 10,
 *						  67: 10
 *	  55   BR			  [1-9][1-9] area code: 10 (fixed; third digit 2-9),
 *						  11 (mobile; third digit 9)
 *	  57   CO			  3: 10 (mobile), 60: 10 (fixed since 2021), 46: 8,
 *						  9408: 10
 *	  60   MY			  1: 9-10 (mobile), [3-9]: 8-9
 *	  61   AU			  14: 9 (VoIP), [2-5]: 9 (4 mobile), [78]: 9
 *	  62   ID			  8: 9-12 (mobile), [2-7]: 7-11, 9: 7-11
 *	  63   PH			  9: 10 (mobile), 8: 8-10, [2-7]: 9
 *	  65   SG			  3: 8 (VoIP), 6: 8, [89]: 8 (mobile)
 *	  66   TH			  1: 8-9, [2-5]: 8, 6: 9, 7: 8, [89]: 9 (mobile)
 *	  81   JP			  20, 50, 70, 80, 90: 10 (pager, VoIP, mobile),
 *						  60: 9-10, [1-9] otherwise: 9
 *	  82   KR			  10: 10 (mobile 010), 1[12]: 9-10, 1[5-9]: 8-10,
 *						  2: 8-9 (Seoul), 50: 10-11, 70: 10, [3-6]: 9-10
 *	  84   VN			  1: 9, 2: 10, 3: 9, 5: 9, 67: 9 (VoIP), [7-9]: 9
 *						  (mobiles start with 3, 5, 7, 8 or 9)
 *	  86   CN			  10: 10 (Beijing), 1[3-9]: 11 (mobile), 2: 10,
 *						  [3-9]: 10-11
 *	  90   TR			  [2-5]: 10 (5 mobile), 85: 10
 *	  91   IN			  [1-9]: 10
 *	  92   PK			  3: 10 (mobile), 12: 9 (personal), 2: 9-10, [4-9]: 9-10
 *	  234  NG			  2: 10, [7-9]: 10
 *	  852  HK			  [2-9]: 8
 *	  880  BD			  1: 10 (mobile), [2-9]: 6-10
 *	  886  TW			  70: 10-11 (VoIP), 9: 9 (mobile), [2-8]: 8-9
 *	  966  SA			  1: 9, 5: 9 (mobile)
 *	  971  AE			  5: 9 (mobile), 60: 9, [2-4]: 8, [67]: 8, 9: 8
 */
#define R(nd, lo, hi, mn, mx)	{nd, lo, hi, mn, mx}
#define RULES(name)				name, WAM_LENGTHOF(name)

static const WamPhoneRule wam_rules_nanp[] = {R(1, 2, 9, 10, 10)};
static const WamPhoneRule wam_rules_ru[] = {R(1, 3, 4, 10, 10), R(1, 7, 9, 10, 10)};
static const WamPhoneRule wam_rules_eg[] = {
	R(2, 10, 12, 10, 10), R(2, 13, 13, 9, 9), R(2, 15, 15, 8, 10),
	R(1, 2, 2, 9, 9), R(1, 3, 3, 8, 8), R(1, 4, 9, 8, 9)
};
static const WamPhoneRule wam_rules_za[] = {R(1, 1, 8, 9, 9)};
static const WamPhoneRule wam_rules_fr[] = {R(1, 1, 9, 9, 9)};
static const WamPhoneRule wam_rules_es[] = {R(1, 4, 9, 9, 9)};
static const WamPhoneRule wam_rules_it[] = {
	R(1, 0, 0, 6, 12), R(2, 43, 43, 10, 10), R(2, 55, 55, 10, 10),
	R(1, 1, 1, 9, 10), R(1, 3, 3, 9, 10)
};
static const WamPhoneRule wam_rules_gb[] = {
	R(1, 1, 1, 9, 10), R(1, 2, 3, 10, 10), R(1, 5, 5, 10, 10),
	R(1, 7, 7, 10, 10)
};
static const WamPhoneRule wam_rules_de[] = {R(2, 15, 17, 10, 11), R(1, 2, 9, 6, 13)};
static const WamPhoneRule wam_rules_mx[] = {R(1, 2, 9, 10, 10)};
static const WamPhoneRule wam_rules_ar[] = {
	R(1, 9, 9, 11, 11), R(1, 1, 3, 10, 10), R(2, 67, 67, 10, 10)
};
static const WamPhoneRule wam_rules_br[] = {R(2, 11, 99, 10, 11)};
static const WamPhoneRule wam_rules_co[] = {
	R(1, 3, 3, 10, 10), R(2, 60, 60, 10, 10), R(2, 46, 46, 8, 8),
	R(4, 9408, 9408, 10, 10)
};
static const WamPhoneRule wam_rules_my[] = {R(1, 1, 1, 9, 10), R(1, 3, 9, 8, 9)};
static const WamPhoneRule wam_rules_au[] = {
	R(2, 14, 14, 9, 9), R(1, 2, 5, 9, 9), R(1, 7, 8, 9, 9)
};
static const WamPhoneRule wam_rules_id[] = {
	R(1, 8, 8, 9, 12), R(1, 2, 7, 7, 11), R(1, 9, 9, 7, 11)
};
static const WamPhoneRule wam_rules_ph[] = {
	R(1, 9, 9, 10, 10), R(1, 8, 8, 8, 10), R(1, 2, 7, 9, 9)
};
static const WamPhoneRule wam_rules_sg[] = {
	R(1, 3, 3, 8, 8), R(1, 6, 6, 8, 8), R(1, 8, 9, 8, 8)
};
static const WamPhoneRule wam_rules_th[] = {
	R(1, 1, 1, 8, 9), R(1, 2, 5, 8, 8), R(1, 6, 6, 9, 9), R(1, 7, 7, 8, 8),
	R(1, 8, 9, 9, 9)
};
static const WamPhoneRule wam_rules_jp[] = {
	R(2, 20, 20, 10, 10), R(2, 50, 50, 10, 10), R(2, 60, 60, 9, 10),
	R(2, 70, 70, 10, 10), R(2, 80, 80, 10, 10), R(2, 90, 90, 10, 10),
	R(1, 1, 9, 9, 9)
};
static const WamPhoneRule wam_rules_kr[] = {
	R(2, 10, 10, 10, 10), R(2, 11, 12, 9, 10), R(2, 15, 19, 8, 10),
	R(1, 2, 2, 8, 9), R(2, 50, 50, 10, 11), R(2, 70, 70, 10, 10),
	R(1, 3, 6, 9, 10)
};
static const WamPhoneRule wam_rules_vn[] = {
	R(1, 1, 1, 9, 9), R(1, 2, 2, 10, 10), R(1, 3, 3, 9, 9), R(1, 5, 5, 9, 9),
	R(2, 67, 67, 9, 9), R(1, 7, 9, 9, 9)
};
static const WamPhoneRule wam_rules_cn[] = {
	R(2, 10, 10, 10, 10), R(2, 13, 19, 11, 11), R(1, 2, 2, 10, 10),
	R(1, 3, 9, 10, 11)
};
static const WamPhoneRule wam_rules_tr[] = {R(1, 2, 5, 10, 10), R(2, 85, 85, 10, 10)};
static const WamPhoneRule wam_rules_in[] = {R(1, 1, 9, 10, 10)};
static const WamPhoneRule wam_rules_pk[] = {
	R(1, 3, 3, 10, 10), R(2, 12, 12, 9, 9), R(1, 2, 2, 9, 10),
	R(1, 4, 9, 9, 10)
};
static const WamPhoneRule wam_rules_ng[] = {R(1, 2, 2, 10, 10), R(1, 7, 9, 10, 10)};
static const WamPhoneRule wam_rules_hk[] = {R(1, 2, 9, 8, 8)};
static const WamPhoneRule wam_rules_bd[] = {R(1, 1, 1, 10, 10), R(1, 2, 9, 6, 10)};
static const WamPhoneRule wam_rules_tw[] = {
	R(2, 70, 70, 10, 11), R(1, 9, 9, 9, 9), R(1, 2, 8, 8, 9)
};
static const WamPhoneRule wam_rules_sa[] = {R(1, 1, 1, 9, 9), R(1, 5, 5, 9, 9)};
static const WamPhoneRule wam_rules_ae[] = {
	R(1, 5, 5, 9, 9), R(2, 60, 60, 9, 9), R(1, 2, 4, 8, 8), R(1, 6, 7, 8, 8),
	R(1, 9, 9, 8, 8)
};

static const WamPhoneMarket wam_phone_markets[] = {
	{1, "North American", RULES(wam_rules_nanp), wam_phone_check_nanp},
	{7, "Russian and Kazakh", RULES(wam_rules_ru), NULL},
	{20, "Egyptian", RULES(wam_rules_eg), NULL},
	{27, "South African", RULES(wam_rules_za), NULL},
	{33, "French", RULES(wam_rules_fr), NULL},
	{34, "Spanish", RULES(wam_rules_es), NULL},
	{39, "Italian", RULES(wam_rules_it), NULL},
	{44, "UK", RULES(wam_rules_gb), NULL},
	{49, "German", RULES(wam_rules_de), NULL},
	{52, "Mexican", RULES(wam_rules_mx), NULL},
	{54, "Argentine", RULES(wam_rules_ar), NULL},
	{55, "Brazilian", RULES(wam_rules_br), wam_phone_check_br},
	{57, "Colombian", RULES(wam_rules_co), NULL},
	{60, "Malaysian", RULES(wam_rules_my), NULL},
	{61, "Australian", RULES(wam_rules_au), NULL},
	{62, "Indonesian", RULES(wam_rules_id), NULL},
	{63, "Philippine", RULES(wam_rules_ph), NULL},
	{65, "Singapore", RULES(wam_rules_sg), NULL},
	{66, "Thai", RULES(wam_rules_th), NULL},
	{81, "Japanese", RULES(wam_rules_jp), NULL},
	{82, "South Korean", RULES(wam_rules_kr), NULL},
	{84, "Vietnamese", RULES(wam_rules_vn), NULL},
	{86, "Chinese", RULES(wam_rules_cn), NULL},
	{90, "Turkish", RULES(wam_rules_tr), NULL},
	{91, "Indian", RULES(wam_rules_in), NULL},
	{92, "Pakistani", RULES(wam_rules_pk), NULL},
	{234, "Nigerian", RULES(wam_rules_ng), NULL},
	{852, "Hong Kong", RULES(wam_rules_hk), NULL},
	{880, "Bangladeshi", RULES(wam_rules_bd), NULL},
	{886, "Taiwanese", RULES(wam_rules_tw), NULL},
	{966, "Saudi", RULES(wam_rules_sa), NULL},
	{971, "UAE", RULES(wam_rules_ae), NULL},
};

/* What each non-geographic calling code is for. */
static const struct
{
	uint16_t	code;
	const char *what;
}			wam_phone_nongeo[] = {
	{800, "international freephone numbers"},
	{808, "international shared-cost numbers"},
	{870, "Inmarsat satellite phones"},
	{878, "universal personal telecommunication numbers"},
	{881, "satellite phone networks"},
	{882, "international networks"},
	{883, "international networks"},
	{888, "disaster relief (UN OCHA)"},
	{979, "international premium-rate numbers"},
};

/*
 * Countries sharing a calling code with a bigger one, told apart by the
 * first digits of the NSN (North America has its own area-code table).
 * Guernsey, Jersey, Cocos, Christmas Island, Mayotte, Saint Barthélemy,
 * Saint Martin and Western Sahara have no such prefix and come back as the
 * main country of their code.
 */
static const struct
{
	uint16_t	code;
	const char *prefix;
	const char *region;
}			wam_phone_region_prefixes[] = {
	{7, "7", "KZ"},
	{39, "06698", "VA"},
	{44, "1624", "IM"},
	{44, "74576", "IM"},
	{44, "7524", "IM"},
	{44, "7624", "IM"},
	{44, "7924", "IM"},
	{47, "79", "SJ"},
	{290, "8", "TA"},
	{358, "18", "AX"},
	{599, "3", "BQ"},
	{599, "4", "BQ"},
	{599, "7", "BQ"},
};

/* Brazilian carrier selection codes dialled after the trunk prefix 0. */
static const char *const wam_phone_br_carriers[] = {
	"12", "14", "15", "21", "22", "23", "25", "31", "41", "43", "55", "65", "99"
};

static void wam_phone_say(WamPhoneReason *r, const char *fmt,...) WAM_PHONE_PRINTF(2, 3);

static void
wam_phone_say(WamPhoneReason *r, const char *fmt,...)
{
	va_list		ap;

	if (r->size == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(r->buf, r->size, fmt, ap);
	va_end(ap);
}

/*
 * Decodes one UTF-8 character at s (len > 0 bytes available).  Returns its
 * length, or 0 for a malformed, overlong or surrogate sequence.
 */
static int
wam_phone_utf8(const unsigned char *s, size_t len, uint32_t *cp)
{
	uint32_t	c = s[0];
	int			n;
	uint32_t	min;
	int			i;

	if (c < 0x80)
	{
		*cp = c;
		return 1;
	}
	if (c >= 0xC2 && c <= 0xDF)
	{
		n = 2;
		c &= 0x1F;
		min = 0x80;
	}
	else if (c >= 0xE0 && c <= 0xEF)
	{
		n = 3;
		c &= 0x0F;
		min = 0x800;
	}
	else if (c >= 0xF0 && c <= 0xF4)
	{
		n = 4;
		c &= 0x07;
		min = 0x10000;
	}
	else
		return 0;
	if ((size_t) n > len)
		return 0;
	for (i = 1; i < n; i++)
	{
		if ((s[i] & 0xC0) != 0x80)
			return 0;
		c = (c << 6) | (s[i] & 0x3F);
	}
	if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
		return 0;
	*cp = c;
	return n;
}

#define WAM_CH_SEPARATOR	(-1)
#define WAM_CH_PLUS			(-2)
#define WAM_CH_OTHER		(-3)

/* A digit's value, or one of the WAM_CH_ classes. */
static int
wam_phone_classify(uint32_t c)
{
	if (c >= '0' && c <= '9')
		return (int) (c - '0');
	if (c >= 0xFF10 && c <= 0xFF19)
		return (int) (c - 0xFF10);
	if (c >= 0x0660 && c <= 0x0669)
		return (int) (c - 0x0660);
	if (c >= 0x06F0 && c <= 0x06F9)
		return (int) (c - 0x06F0);
	if (c == '+' || c == 0xFF0B)
		return WAM_CH_PLUS;
	switch (c)
	{
		case ' ':
		case '\t':
		case '\n':
		case '\r':
		case '\v':
		case '\f':
		case '-':
		case '.':
		case '/':
		case '(':
		case ')':
		case 0x00A0:			/* no-break space */
		case 0x00AD:			/* soft hyphen */
		case 0x202F:			/* narrow no-break space */
		case 0x205F:			/* medium mathematical space */
		case 0x2060:			/* word joiner */
		case 0x2212:			/* minus sign */
		case 0x3000:			/* ideographic space */
		case 0xFEFF:			/* zero-width no-break space, BOM */
		case 0xFF08:			/* fullwidth ( */
		case 0xFF09:			/* fullwidth ) */
		case 0xFF0D:			/* fullwidth - */
		case 0xFF0E:			/* fullwidth . */
		case 0xFF0F:			/* fullwidth / */
			return WAM_CH_SEPARATOR;
	}
	/* typographic spaces, zero-width characters, LRM and RLM */
	if (c >= 0x2000 && c <= 0x200F)
		return WAM_CH_SEPARATOR;
	/* hyphens and dashes */
	if (c >= 0x2010 && c <= 0x2015)
		return WAM_CH_SEPARATOR;
	/* bidirectional embeddings, overrides and isolates */
	if ((c >= 0x202A && c <= 0x202E) || (c >= 0x2066 && c <= 0x2069))
		return WAM_CH_SEPARATOR;
	return WAM_CH_OTHER;
}

/* True for characters that would be invisible or harmful quoted as is. */
static bool
wam_phone_unprintable(uint32_t c)
{
	return c < 0x20 || (c >= 0x7F && c <= 0x9F) ||
		c == 0x034F || c == 0x115F || c == 0x1160 || c == 0x180E ||
		c == 0x3164 || c == 0xFFA0 ||
		(c >= 0x2000 && c <= 0x206F) ||
		(c >= 0xE000 && c <= 0xF8FF) ||
		(c >= 0xFE00 && c <= 0xFE0F) ||
		(c >= 0xFFF0 && c <= 0xFFFF) ||
		c >= 0xE0000;
}

/*
 * Step 1: collects the digits of raw and checks every other character.
 */
static bool
wam_phone_scan(const char *raw, size_t rawlen, WamPhoneScan *s,
			   WamPhoneReason *r)
{
	const unsigned char *p = (const unsigned char *) raw;
	size_t		i = 0;

	s->ndigits = 0;
	s->plus = 0;
	if (rawlen == 0)
	{
		wam_phone_say(r, "The number is empty.");
		return false;
	}
	while (i < rawlen)
	{
		uint32_t	c;
		int			len = wam_phone_utf8(p + i, rawlen - i, &c);
		int			cls;

		if (len == 0)
		{
			wam_phone_say(r, "The number is not valid UTF-8.");
			return false;
		}
		cls = wam_phone_classify(c);
		if (cls >= 0)
		{
			/* Count on past the buffer: the count alone rejects the number. */
			if (s->ndigits < WAM_PHONE_SCAN_MAX)
				s->digits[s->ndigits] = (char) ('0' + cls);
			s->ndigits++;
		}
		else if (cls == WAM_CH_PLUS)
		{
			if (s->ndigits > 0 || s->plus)
			{
				wam_phone_say(r, "A \"+\" may only appear once, at the start of the number.");
				return false;
			}
			s->plus = 1;
		}
		else if (cls == WAM_CH_OTHER)
		{
			if (c >= 0x20 && c < 0x7F)
				wam_phone_say(r, "The number contains the character \"%c\".",
							  (char) c);
			else if (wam_phone_unprintable(c))
				wam_phone_say(r, "The number contains the character U+%04X.",
							  (unsigned int) c);
			else
				wam_phone_say(r, "The number contains the character \"%.*s\" (U+%04X).",
							  len, raw + i, (unsigned int) c);
			return false;
		}
		i += (size_t) len;
	}
	if (s->ndigits == 0)
	{
		wam_phone_say(r, "The number contains no digits.");
		return false;
	}
	if (s->ndigits > WAM_PHONE_SCAN_MAX)
	{
		wam_phone_say(r, "The number has %zu digits; phone numbers have at most %d.",
					  s->ndigits, WAM_PHONE_MAX_DIGITS);
		return false;
	}
	s->digits[s->ndigits] = '\0';
	return true;
}

static const WamPhoneCode *
wam_phone_find_code(unsigned int code)
{
	int			lo = 0;
	int			hi = wam_phone_ncodes - 1;

	while (lo <= hi)
	{
		int			mid = (lo + hi) / 2;

		if (wam_phone_codes[mid].code == code)
			return &wam_phone_codes[mid];
		if (wam_phone_codes[mid].code < code)
			lo = mid + 1;
		else
			hi = mid - 1;
	}
	return NULL;
}

/*
 * Length of the calling code digits start with (non-geographic ones
 * included), or 0.  E.164 codes are prefix-free, so at most one of the
 * 1-, 2- and 3-digit prefixes is a code.
 */
static int
wam_phone_code_prefix(const char *d, size_t n, const WamPhoneCode **cc)
{
	unsigned int value = 0;
	size_t		i;

	if (n == 0 || d[0] == '0')
		return 0;
	for (i = 0; i < 3 && i < n; i++)
	{
		value = value * 10 + (unsigned int) (d[i] - '0');
		*cc = wam_phone_find_code(value);
		if (*cc != NULL)
			return (int) i + 1;
	}
	return 0;
}

int
wam_phone_calling_code_length(const char *digits, size_t len)
{
	const WamPhoneCode *cc;
	size_t		i;
	int			cl;

	for (i = 0; i < len && i < 3; i++)
		if (digits[i] < '0' || digits[i] > '9')
			return 0;
	cl = wam_phone_code_prefix(digits, len, &cc);
	if (cl == 0 || (cc->flags & WAM_PC_NONGEO))
		return 0;
	return cl;
}

static const WamPhoneRegion *
wam_phone_find_region(const char *iso)
{
	int			lo = 0;
	int			hi = wam_phone_nregions - 1;

	while (lo <= hi)
	{
		int			mid = (lo + hi) / 2;
		int			cmp = strncmp(wam_phone_regions[mid].iso, iso, 2);

		if (cmp == 0)
			return &wam_phone_regions[mid];
		if (cmp < 0)
			lo = mid + 1;
		else
			hi = mid - 1;
	}
	return NULL;
}

static const WamPhoneMarket *
wam_phone_find_market(unsigned int code)
{
	int			i;

	for (i = 0; i < WAM_LENGTHOF(wam_phone_markets); i++)
		if (wam_phone_markets[i].code == code)
			return &wam_phone_markets[i];
	return NULL;
}

/* "no digits", "1 digit", "9 digits" */
static void
wam_phone_count_text(size_t n, char *buf, size_t size)
{
	if (n == 0)
		snprintf(buf, size, "no digits");
	else if (n == 1)
		snprintf(buf, size, "1 digit");
	else
		snprintf(buf, size, "%zu digits", n);
}

/*
 * A set of lengths in words: "8", "9 or 10", "6 to 13", "8, 10 or 11".
 * Runs of three or more lengths are written as ranges.
 */
static void
wam_phone_lengths_text(uint16_t mask, char *buf, size_t size)
{
	int			lo[16];
	int			hi[16];
	int			nruns = 0;
	int			nitems = 0;
	int			item = 0;
	int			i;
	size_t		used = 0;

	for (i = 0; i < 16; i++)
	{
		if (!(mask & (1u << i)))
			continue;
		if (nruns > 0 && hi[nruns - 1] == i - 1)
			hi[nruns - 1] = i;
		else
		{
			lo[nruns] = hi[nruns] = i;
			nruns++;
		}
	}
	for (i = 0; i < nruns; i++)
		nitems += (hi[i] - lo[i] >= 2) ? 1 : hi[i] - lo[i] + 1;
	buf[0] = '\0';
	for (i = 0; i < nruns; i++)
	{
		int			v = lo[i];

		while (v <= hi[i] && used < size)
		{
			const char *sep = item == 0 ? "" : item == nitems - 1 ? " or " : ", ";

			if (hi[i] - lo[i] >= 2)
			{
				used += (size_t) snprintf(buf + used, size - used, "%s%d to %d",
										  sep, lo[i], hi[i]);
				v = hi[i] + 1;
			}
			else
				used += (size_t) snprintf(buf + used, size - used, "%s%d", sep, v++);
			item++;
		}
	}
}

/* Bits minlen..maxlen. */
static uint16_t
wam_phone_range_mask(int minlen, int maxlen)
{
	uint16_t	mask = 0;
	int			i;

	for (i = minlen; i <= maxlen && i < 16; i++)
		mask |= (uint16_t) (1u << i);
	return mask;
}

/*
 * Says that an NSN of n digits has the wrong length; "who" names the
 * numbers mask applies to ("Hong Kong numbers").
 */
static bool
wam_phone_bad_length(WamPhoneReason *r, const WamPhoneCode *cc, size_t n,
					 bool national, const char *who, uint16_t mask)
{
	char		count[32];
	char		lengths[64];

	wam_phone_count_text(n, count, sizeof(count));
	wam_phone_lengths_text(mask, lengths, sizeof(lengths));
	if (national)
		wam_phone_say(r, "The national number has %s; %s have %s.",
					  count, who, lengths);
	else
		wam_phone_say(r, "The number has %s after country code %u; %s have %s.",
					  count, (unsigned int) cc->code, who, lengths);
	return false;
}

/* The value of the first nd digits. */
static unsigned int
wam_phone_leading(const char *nsn, int nd)
{
	unsigned int v = 0;
	int			i;

	for (i = 0; i < nd; i++)
		v = v * 10 + (unsigned int) (nsn[i] - '0');
	return v;
}

/*
 * Whether the first k digits of nsn can still begin a number that rule
 * matches (k digits or more).
 */
static bool
wam_phone_rule_prefix(const WamPhoneRule *rule, const char *nsn, int k)
{
	unsigned int scale = 1;
	unsigned int p;
	int			i;

	if (k >= rule->ndigits)
	{
		unsigned int v = wam_phone_leading(nsn, rule->ndigits);

		return v >= rule->lo && v <= rule->hi;
	}
	for (i = k; i < rule->ndigits; i++)
		scale *= 10;
	p = wam_phone_leading(nsn, k);
	return p * scale <= rule->hi && (p + 1) * scale - 1 >= rule->lo;
}

static bool
wam_phone_validate_market(const WamPhoneMarket *mk, const WamPhoneCode *cc,
						  const char *nsn, size_t n, bool national,
						  WamPhoneReason *r)
{
	const WamPhoneRule *rule = NULL;
	bool		partial = false;
	bool		varying = false;
	uint16_t	all = 0;
	char		who[96];
	int			i;

	for (i = 0; i < mk->nrules; i++)
	{
		const WamPhoneRule *ru = &mk->rules[i];

		all |= wam_phone_range_mask(ru->minlen, ru->maxlen);
		if (ru->minlen != mk->rules[0].minlen || ru->maxlen != mk->rules[0].maxlen)
			varying = true;
		if (rule != NULL)
			continue;
		if (n >= ru->ndigits)
		{
			if (wam_phone_rule_prefix(ru, nsn, ru->ndigits))
				rule = ru;
		}
		else if (wam_phone_rule_prefix(ru, nsn, (int) n))
			partial = true;
	}

	if (rule == NULL && partial)
	{
		/* Too short to tell which rule applies: give the country's range. */
		snprintf(who, sizeof(who), "%s numbers", mk->name);
		return wam_phone_bad_length(r, cc, n, national, who, all);
	}
	if (rule == NULL)
	{
		int			k;

		/* Quote the shortest prefix that no rule can continue. */
		for (k = 1; k < (int) n; k++)
		{
			bool		any = false;

			for (i = 0; i < mk->nrules && !any; i++)
				any = wam_phone_rule_prefix(&mk->rules[i], nsn, k);
			if (!any)
				break;
		}
		wam_phone_say(r, "%s fixed-line and mobile numbers do not start with %.*s.",
					  mk->name, k, nsn);
		return false;
	}
	if (n < rule->minlen || n > rule->maxlen)
	{
		if (varying)
			snprintf(who, sizeof(who), "%s numbers starting with %.*s",
					 mk->name, (int) rule->ndigits, nsn);
		else
			snprintf(who, sizeof(who), "%s numbers", mk->name);
		return wam_phone_bad_length(r, cc, n, national, who,
									wam_phone_range_mask(rule->minlen, rule->maxlen));
	}
	if (mk->check != NULL)
		return mk->check(nsn, n, r);
	return true;
}

/*
 * Step 3: whether nsn is a valid national significant number for cc.
 * national only changes the wording of the reason.
 */
static bool
wam_phone_validate(const WamPhoneCode *cc, const char *nsn, size_t n,
				   bool national, WamPhoneReason *r)
{
	const WamPhoneMarket *mk = wam_phone_find_market(cc->code);
	char		who[64];

	if (mk != NULL)
		return wam_phone_validate_market(mk, cc, nsn, n, national, r);

	if (n > 0 && nsn[0] == '0' && !(cc->flags & WAM_PC_ZERO_OK))
	{
		wam_phone_say(r, "Fixed-line and mobile numbers with country code %u do not start with 0.",
					  (unsigned int) cc->code);
		return false;
	}
	if (n >= 16 || !(cc->lengths & (1u << n)))
	{
		snprintf(who, sizeof(who), "numbers with country code %u",
				 (unsigned int) cc->code);
		return wam_phone_bad_length(r, cc, n, national, who, cc->lengths);
	}
	return true;
}

/*
 * North America: NPA-NXX-XXXX.  Area codes N11 are service codes and N9X
 * are reserved for expanding the plan; exchange codes start with 2-9.
 */
static bool
wam_phone_check_nanp(const char *nsn, size_t n, WamPhoneReason *r)
{
	(void) n;					/* always 10, by the rules */
	if ((nsn[1] == '1' && nsn[2] == '1') || nsn[1] == '9')
	{
		wam_phone_say(r, "\"%.3s\" is not a North American area code.", nsn);
		return false;
	}
	if (nsn[3] == '0' || nsn[3] == '1')
	{
		wam_phone_say(r, "North American exchange codes (the three digits after the area code) do not start with %c.",
					  nsn[3]);
		return false;
	}
	return true;
}

/*
 * Brazil: two-digit area codes 11-99 without a 0; mobiles have 9 right
 * after the area code.  Ten-digit numbers with 6-9 there are mobiles
 * written without that ninth digit, as WhatsApp still reports old
 * accounts: accepted as written.
 */
static bool
wam_phone_check_br(const char *nsn, size_t n, WamPhoneReason *r)
{
	if (nsn[1] == '0')
	{
		wam_phone_say(r, "Brazilian area codes (the first two digits) do not end in 0.");
		return false;
	}
	if (n == 11 && nsn[2] != '9')
	{
		wam_phone_say(r, "Brazilian 11-digit numbers are mobile numbers and have 9 after the area code.");
		return false;
	}
	if (n == 10 && (nsn[2] == '0' || nsn[2] == '1'))
	{
		wam_phone_say(r, "Brazilian numbers do not have %c after the area code.",
					  nsn[2]);
		return false;
	}
	return true;
}

/* Drops the first k digits of num's NSN. */
static void
wam_phone_drop(WamPhoneNumber *num, size_t k)
{
	memmove(num->nsn, num->nsn + k, num->nsnlen - k + 1);
	num->nsnlen -= k;
}

static void
wam_phone_set_nsn(WamPhoneNumber *num, const char *d, size_t n)
{
	memcpy(num->nsn, d, n);
	num->nsn[n] = '\0';
	num->nsnlen = n;
}

/* Rewriting of an NSN written after the country code. */
static void
wam_phone_fix_international(WamPhoneNumber *num)
{
	if ((num->cc->flags & WAM_PC_STRIP_ZERO) && num->nsnlen > 0 &&
		num->nsn[0] == '0')
		wam_phone_drop(num, 1);
	/* Mexico's old mobile prefix: +52 1 55 1234 5678 */
	if (num->cc->code == 52 && num->nsnlen == 11 && num->nsn[0] == '1')
		wam_phone_drop(num, 1);
}

/*
 * Rewriting of a national number; trunk tells whether a trunk prefix was
 * just dropped from it.
 */
static void
wam_phone_fix_national(WamPhoneNumber *num, bool trunk)
{
	char	   *d = num->nsn;
	size_t		n = num->nsnlen;
	int			i;

	switch (num->cc->code)
	{
		case 52:
			/* Mexico before 2019: 01 (long distance), 044/045 (mobile), 1 */
			if (n == 12 && memcmp(d, "01", 2) == 0)
				wam_phone_drop(num, 2);
			else if (n == 13 && (memcmp(d, "044", 3) == 0 || memcmp(d, "045", 3) == 0))
				wam_phone_drop(num, 3);
			else if (n == 11 && d[0] == '1')
				wam_phone_drop(num, 1);
			break;
		case 54:

			/*
			 * Argentina: area code + 15 + 6 to 8 digits is a mobile, +54 9
			 * area code + number.  11 is the only area code starting with 1;
			 * the others have 3 or 4 digits, and "15" can sit after only one
			 * of those lengths (d[3..4] and d[4..5] cannot both be "15").
			 */
			if (n == 12)
			{
				int			area = 0;

				if (memcmp(d, "1115", 4) == 0)
					area = 2;
				else if ((d[0] == '2' || d[0] == '3') && memcmp(d + 3, "15", 2) == 0)
					area = 3;
				else if ((d[0] == '2' || d[0] == '3') && memcmp(d + 4, "15", 2) == 0)
					area = 4;
				if (area > 0)
				{
					char		buf[WAM_PHONE_SCAN_MAX + 1];

					buf[0] = '9';
					memcpy(buf + 1, d, (size_t) area);
					memcpy(buf + 1 + area, d + area + 2, n - (size_t) area - 2);
					wam_phone_set_nsn(num, buf, n - 1);
				}
			}
			break;
		case 55:
			/* Brazil: 0 + carrier selection code + area code + number */
			if (trunk && (n == 12 || n == 13))
				for (i = 0; i < WAM_LENGTHOF(wam_phone_br_carriers); i++)
					if (memcmp(d, wam_phone_br_carriers[i], 2) == 0)
					{
						wam_phone_drop(num, 2);
						break;
					}
			break;
		case 57:
			/* Colombia: 0 + carrier code 3, 5, 7, 9, 414, 444 or 456 */
			if (trunk && n == 11 && (d[0] == '3' || d[0] == '5' || d[0] == '7' || d[0] == '9'))
				wam_phone_drop(num, 1);
			else if (trunk && n == 13 &&
					 (memcmp(d, "414", 3) == 0 || memcmp(d, "444", 3) == 0 ||
					  memcmp(d, "456", 3) == 0))
				wam_phone_drop(num, 3);
			break;
	}
}

/*
 * Reads d[0..n) as country calling code + NSN.
 */
static bool
wam_phone_international(const char *d, size_t n, WamPhoneNumber *num,
						WamPhoneReason *r)
{
	const WamPhoneCode *cc = NULL;
	int			cl;
	int			i;

	if (n == 0)
	{
		wam_phone_say(r, "The number has no digits after the international prefix.");
		return false;
	}
	if (d[0] == '0')
	{
		wam_phone_say(r, "Country calling codes do not start with 0.");
		return false;
	}
	cl = wam_phone_code_prefix(d, n, &cc);
	if (cl == 0)
	{
		wam_phone_say(r, "\"%.*s\" is not a country calling code.",
					  n < 3 ? (int) n : 3, d);
		return false;
	}
	if (cc->flags & WAM_PC_NONGEO)
	{
		const char *what = "non-geographic services";

		for (i = 0; i < WAM_LENGTHOF(wam_phone_nongeo); i++)
			if (wam_phone_nongeo[i].code == cc->code)
				what = wam_phone_nongeo[i].what;
		wam_phone_say(r, "Country calling code %u is for %s, not a country; WhatsApp cannot message such numbers.",
					  (unsigned int) cc->code, what);
		return false;
	}
	num->cc = cc;
	wam_phone_set_nsn(num, d + cl, n - (size_t) cl);
	wam_phone_fix_international(num);
	return wam_phone_validate(cc, num->nsn, num->nsnlen, false, r);
}

/*
 * Reads d[0..n), written without international prefix, as a number of the
 * default country def (step 2 (a) to (c)).
 */
static bool
wam_phone_national(const WamPhoneRegion *def, const char *d, size_t n,
				   WamPhoneNumber *num, WamPhoneReason *r)
{
	const WamPhoneCode *cc = wam_phone_find_code(def->code);
	size_t		tl = strlen(def->trunk);
	bool		trunk = tl > 0 && n >= tl && memcmp(d, def->trunk, tl) == 0;
	bool		own_code;
	char		first[WAM_PHONE_REASON_SIZE];
	char		scratch[WAM_PHONE_REASON_SIZE];
	WamPhoneReason fr = {first, sizeof(first)};
	WamPhoneReason sr = {scratch, sizeof(scratch)};
	char		code[8];
	size_t		cl;

	first[0] = '\0';
	cl = (size_t) snprintf(code, sizeof(code), "%u", (unsigned int) cc->code);
	own_code = n > cl && memcmp(d, code, cl) == 0;

	/* (a) without the trunk prefix */
	if (trunk)
	{
		num->cc = cc;
		wam_phone_set_nsn(num, d + tl, n - tl);
		wam_phone_fix_national(num, true);
		if (wam_phone_validate(cc, num->nsn, num->nsnlen, true, &fr))
			return true;
	}

	/*
	 * (c) before (b) where national numbers are normally written with a
	 * trunk prefix and this one is not: "4915123456789" with default DE is
	 * far more likely +49 151... than a number in area code 0491.
	 */
	if (tl > 0 && !trunk && own_code &&
		wam_phone_international(d, n, num, &sr))
		return true;

	/* (b) as written */
	num->cc = cc;
	wam_phone_set_nsn(num, d, n);
	wam_phone_fix_national(num, false);
	if (wam_phone_validate(cc, num->nsn, num->nsnlen, true, trunk ? &sr : &fr))
		return true;

	/* (c) the country's own code without "+" */
	if ((tl == 0 || trunk) && own_code &&
		wam_phone_international(d, n, num, &sr))
		return true;

	wam_phone_say(r, "%s", first);
	return false;
}

/*
 * Step 2: splits the scanned digits into code and NSN.  force_international
 * reads them as if written with "+".
 */
static bool
wam_phone_parse(const WamPhoneScan *s, const WamPhoneRegion *def,
				bool force_international, WamPhoneNumber *num,
				WamPhoneReason *r)
{
	const char *d = s->digits;
	size_t		n = s->ndigits;

	if (s->plus || force_international)
		return wam_phone_international(d, n, num, r);
	if (n >= 2 && d[0] == '0' && d[1] == '0')
	{
		char		scratch[WAM_PHONE_REASON_SIZE];
		WamPhoneReason sr = {scratch, sizeof(scratch)};

		if (wam_phone_international(d + 2, n - 2, num, r))
			return true;
		/* a few countries (Tajikistan) have national numbers starting 00 */
		return def != NULL && wam_phone_national(def, d, n, num, &sr);
	}
	if (def != NULL && def->code == 1 && n >= 3 && memcmp(d, "011", 3) == 0)
		return wam_phone_international(d + 3, n - 3, num, r);
	if (def != NULL)
		return wam_phone_national(def, d, n, num, r);
	if (wam_phone_international(d, n, num, r))
		return true;

	/*
	 * Without "+" the leading digits were only guessed to be a country
	 * code.  A local number such as "9123 4567" read that way fails on a
	 * length rule of India (91), which would be a baffling reason; say
	 * what is missing instead.
	 */
	wam_phone_say(r, "The number has no country code and no default country was given.");
	return false;
}

/*
 * Parses default_country into *def (NULL for none).  False if it names no
 * country.
 */
static bool
wam_phone_default_country(const char *s, const WamPhoneRegion **def)
{
	size_t		len = strlen(s);
	unsigned int value = 0;
	size_t		i;
	const WamPhoneCode *cc;

	*def = NULL;
	while (len > 0 && (*s == ' ' || (*s >= '\t' && *s <= '\r')))
		s++, len--;
	while (len > 0 && (s[len - 1] == ' ' || (s[len - 1] >= '\t' && s[len - 1] <= '\r')))
		len--;
	if (len == 0)
		return true;

	if (len == 2 &&
		((s[0] >= 'A' && s[0] <= 'Z') || (s[0] >= 'a' && s[0] <= 'z')) &&
		((s[1] >= 'A' && s[1] <= 'Z') || (s[1] >= 'a' && s[1] <= 'z')))
	{
		char		iso[3];

		iso[0] = (char) (s[0] & ~0x20);
		iso[1] = (char) (s[1] & ~0x20);
		iso[2] = '\0';
		/* "UK" is reserved in ISO 3166-1 for the United Kingdom */
		if (iso[0] == 'U' && iso[1] == 'K')
			iso[0] = 'G', iso[1] = 'B';
		*def = wam_phone_find_region(iso);
		return *def != NULL;
	}

	if (*s == '+')
		s++, len--;
	if (len == 0 || len > 3 || s[0] == '0')
		return false;
	for (i = 0; i < len; i++)
	{
		if (s[i] < '0' || s[i] > '9')
			return false;
		value = value * 10 + (unsigned int) (s[i] - '0');
	}
	cc = wam_phone_find_code(value);
	if (cc == NULL || (cc->flags & WAM_PC_NONGEO))
		return false;
	*def = wam_phone_find_region(cc->region);
	return *def != NULL;
}

/*
 * Copies at most WAM_PHONE_QUOTE_MAX bytes of s into buf, cut on a UTF-8
 * character boundary, with "?" for bytes that are not UTF-8 and "..." if
 * cut short.
 */
static void
wam_phone_quote(const char *s, char *buf, size_t size)
{
	const unsigned char *p = (const unsigned char *) s;
	size_t		len = strlen(s);
	size_t		i = 0;
	size_t		o = 0;

	while (i < len)
	{
		uint32_t	c;
		int			n = wam_phone_utf8(p + i, len - i, &c);

		if (n == 0)
		{
			c = '?';
			n = 1;
		}
		if (i + (size_t) n > WAM_PHONE_QUOTE_MAX || o + (size_t) n + 4 > size)
		{
			memcpy(buf + o, "...", 3);
			o += 3;
			break;
		}
		if (c == '?')
			buf[o++] = '?';
		else
		{
			memcpy(buf + o, s + i, (size_t) n);
			o += (size_t) n;
		}
		i += (size_t) n;
	}
	buf[o] = '\0';
}

WamPhoneStatus
wam_phone_normalize(const char *raw, size_t rawlen, const char *default_country,
					char *out, size_t outsz, char *reason, size_t reasonsz)
{
	WamPhoneReason r = {reason, reasonsz};
	const WamPhoneRegion *def = NULL;
	WamPhoneScan s;
	WamPhoneNumber num;
	char		code[8];
	int			cl;

	if (outsz > 0)
		out[0] = '\0';
	if (reasonsz > 0)
		reason[0] = '\0';

	/* A bad default country is a caller error, whatever the number. */
	if (default_country != NULL && !wam_phone_default_country(default_country, &def))
	{
		char		quoted[WAM_PHONE_QUOTE_MAX + 4];

		wam_phone_quote(default_country, quoted, sizeof(quoted));
		wam_phone_say(&r, "The default country \"%s\" is neither an ISO 3166-1 alpha-2 code nor a country calling code.",
					  quoted);
		return WAM_PHONE_BAD_COUNTRY;
	}

	if (!wam_phone_scan(raw, rawlen, &s, &r) ||
		!wam_phone_parse(&s, def, false, &num, &r))
		return WAM_PHONE_INVALID;

	cl = snprintf(code, sizeof(code), "%u", (unsigned int) num.cc->code);

	/*
	 * The tables are built so that every valid NSN gives 8 to 15 digits;
	 * this only guards against a table edit breaking that.
	 */
	if ((size_t) cl + num.nsnlen < WAM_PHONE_MIN_DIGITS ||
		(size_t) cl + num.nsnlen > WAM_PHONE_MAX_DIGITS)
	{
		wam_phone_say(&r, "The number has %zu digits with its country code; phone numbers have %d to %d.",
					  (size_t) cl + num.nsnlen, WAM_PHONE_MIN_DIGITS,
					  WAM_PHONE_MAX_DIGITS);
		return WAM_PHONE_INVALID;
	}
	if (outsz < (size_t) cl + num.nsnlen + 1)
	{
		wam_phone_say(&r, "The output buffer is too small.");
		return WAM_PHONE_INVALID;
	}
	memcpy(out, code, (size_t) cl);
	memcpy(out + cl, num.nsn, num.nsnlen + 1);
	return WAM_PHONE_OK;
}

const char *
wam_phone_country(const char *raw, size_t rawlen)
{
	char		reason[WAM_PHONE_REASON_SIZE];
	WamPhoneReason r = {reason, sizeof(reason)};
	WamPhoneScan s;
	WamPhoneNumber num;
	unsigned int code;
	int			i;

	if (!wam_phone_scan(raw, rawlen, &s, &r) ||
		!wam_phone_parse(&s, NULL, true, &num, &r))
		return NULL;
	code = num.cc->code;

	if (code == 1)
	{
		unsigned int npa = wam_phone_leading(num.nsn, 3);
		int			lo = 0;
		int			hi = wam_phone_nnanp_areas - 1;

		while (lo <= hi)
		{
			int			mid = (lo + hi) / 2;

			if (wam_phone_nanp_areas[mid].npa == npa)
				return wam_phone_nanp_areas[mid].region;
			if (wam_phone_nanp_areas[mid].npa < npa)
				lo = mid + 1;
			else
				hi = mid - 1;
		}
		return num.cc->region;
	}
	for (i = 0; i < WAM_LENGTHOF(wam_phone_region_prefixes); i++)
	{
		const char *prefix = wam_phone_region_prefixes[i].prefix;

		if (wam_phone_region_prefixes[i].code == code &&
			strncmp(num.nsn, prefix, strlen(prefix)) == 0)
			return wam_phone_region_prefixes[i].region;
	}
	return num.cc->region;
}
