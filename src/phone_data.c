/*-------------------------------------------------------------------------
 *
 * phone_data.c
 *	  Country calling codes, regions and lengths used by phone.c.
 *
 * GENERATED: do not edit the tables by hand; rerun the script at the end
 * of this file instead.  The facts come from Google's libphonenumber
 * metadata (Apache-2.0) as shipped by the npm package libphonenumber-js:
 *
 * wam_phone_codes: every assigned ITU-T E.164 country calling code that
 *	  libphonenumber knows, with its main region; the nine non-geographic
 *	  codes (800, 808, 870, 878, 881, 882, 883, 888, 979) carry
 *	  WAM_PC_NONGEO.  "lengths" is the set of national significant number
 *	  lengths of fixed-line, mobile, personal and VoIP numbers of every
 *	  region sharing the code (toll-free, premium-rate, shared-cost, pager
 *	  and UAN numbers cannot hold a WhatsApp account), clipped to give 8 to
 *	  15 digits with the code.  WAM_PC_ZERO_OK: some such number starts
 *	  with 0 (Italy's fixed lines, Côte d'Ivoire since 2021...).
 *	  WAM_PC_STRIP_ZERO: every region of the code has trunk prefix 0 and no
 *	  number starts with 0, so "+44 (0)20 7946 0958" can only mean
 *	  +44 20 7946 0958.
 * wam_phone_regions: ISO 3166-1 alpha-2 code -> calling code and national
 *	  (trunk) prefix, for default_country.
 * wam_phone_nanp_areas: area codes of the North American Numbering Plan
 *	  that belong to Canada or a Caribbean country rather than the US.
 *
 * phone.c applies stricter hand-written rules on top of these for the
 * markets listed in its wam_phone_markets table.
 *
 *-------------------------------------------------------------------------
 */
#include "phone.h"

const char wam_phone_data_source[] = "libphonenumber-js 1.13.16";

const WamPhoneCode wam_phone_codes[] = {
	{1, "US", 0x0400, 0},	/* US AG AI AS and 21 more: 10 */
	{7, "RU", 0x0400, 0},	/* RU KZ: 10 */
	{20, "EG", 0x0700, WAM_PC_STRIP_ZERO},	/* EG: 8,9,10 */
	{27, "ZA", 0x03c0, WAM_PC_STRIP_ZERO},	/* ZA: 6,7,8,9 */
	{30, "GR", 0x0400, 0},	/* GR: 10 */
	{31, "NL", 0x0a00, WAM_PC_STRIP_ZERO},	/* NL: 9,11 */
	{32, "BE", 0x0300, WAM_PC_STRIP_ZERO},	/* BE: 8,9 */
	{33, "FR", 0x0200, WAM_PC_STRIP_ZERO},	/* FR: 9 */
	{34, "ES", 0x0200, 0},	/* ES: 9 */
	{36, "HU", 0x0300, 0},	/* HU: 8,9 */
	{39, "IT", 0x1fc0, WAM_PC_ZERO_OK},	/* IT VA: 6,7,8,9,10,11,12 */
	{40, "RO", 0x0240, WAM_PC_STRIP_ZERO},	/* RO: 6,9 */
	{41, "CH", 0x0200, WAM_PC_STRIP_ZERO},	/* CH: 9 */
	{43, "AT", 0x3fc0, WAM_PC_STRIP_ZERO},	/* AT: 6,7,8,9,10,11,12,13 */
	{44, "GB", 0x0600, WAM_PC_STRIP_ZERO},	/* GB GG IM JE: 9,10 */
	{45, "DK", 0x0100, 0},	/* DK: 8 */
	{46, "SE", 0x0380, WAM_PC_STRIP_ZERO},	/* SE: 7,8,9 */
	{47, "NO", 0x0100, 0},	/* NO SJ: 8 */
	{48, "PL", 0x0280, 0},	/* PL: 7,9 */
	{49, "DE", 0x3fc0, WAM_PC_STRIP_ZERO},	/* DE: 6,7,8,9,10,11,12,13 */
	{51, "PE", 0x0300, WAM_PC_STRIP_ZERO},	/* PE: 8,9 */
	{52, "MX", 0x0400, 0},	/* MX: 10 */
	{53, "CU", 0x05c0, WAM_PC_STRIP_ZERO},	/* CU: 6,7,8,10 */
	{54, "AR", 0x0c00, WAM_PC_STRIP_ZERO},	/* AR: 10,11 */
	{55, "BR", 0x0c00, WAM_PC_STRIP_ZERO},	/* BR: 10,11 */
	{56, "CL", 0x0200, 0},	/* CL: 9 */
	{57, "CO", 0x0500, WAM_PC_STRIP_ZERO},	/* CO: 8,10 */
	{58, "VE", 0x0400, WAM_PC_STRIP_ZERO},	/* VE: 10 */
	{60, "MY", 0x0700, WAM_PC_STRIP_ZERO},	/* MY: 8,9,10 */
	{61, "AU", 0x0200, WAM_PC_STRIP_ZERO},	/* AU CC CX: 9 */
	{62, "ID", 0x1f80, WAM_PC_STRIP_ZERO},	/* ID: 7,8,9,10,11,12 */
	{63, "PH", 0x0740, WAM_PC_STRIP_ZERO},	/* PH: 6,8,9,10 */
	{64, "NZ", 0x0700, WAM_PC_STRIP_ZERO},	/* NZ: 8,9,10 */
	{65, "SG", 0x0100, 0},	/* SG: 8 */
	{66, "TH", 0x0300, WAM_PC_STRIP_ZERO},	/* TH: 8,9 */
	{81, "JP", 0x0600, WAM_PC_STRIP_ZERO},	/* JP: 9,10 */
	{82, "KR", 0x0f40, WAM_PC_STRIP_ZERO},	/* KR: 6,8,9,10,11 */
	{84, "VN", 0x0600, WAM_PC_STRIP_ZERO},	/* VN: 9,10 */
	{86, "CN", 0x0f80, WAM_PC_STRIP_ZERO},	/* CN: 7,8,9,10,11 */
	{90, "TR", 0x0400, WAM_PC_STRIP_ZERO},	/* TR: 10 */
	{91, "IN", 0x0400, WAM_PC_STRIP_ZERO},	/* IN: 10 */
	{92, "PK", 0x0600, WAM_PC_STRIP_ZERO},	/* PK: 9,10 */
	{93, "AF", 0x0200, WAM_PC_STRIP_ZERO},	/* AF: 9 */
	{94, "LK", 0x0200, WAM_PC_STRIP_ZERO},	/* LK: 9 */
	{95, "MM", 0x07c0, WAM_PC_STRIP_ZERO},	/* MM: 6,7,8,9,10 */
	{98, "IR", 0x04c0, WAM_PC_STRIP_ZERO},	/* IR: 6,7,10 */
	{211, "SS", 0x0200, WAM_PC_STRIP_ZERO},	/* SS: 9 */
	{212, "MA", 0x0200, WAM_PC_STRIP_ZERO},	/* MA EH: 9 */
	{213, "DZ", 0x0300, WAM_PC_STRIP_ZERO},	/* DZ: 8,9 */
	{216, "TN", 0x0100, 0},	/* TN: 8 */
	{218, "LY", 0x0200, WAM_PC_STRIP_ZERO},	/* LY: 9 */
	{220, "GM", 0x0280, 0},	/* GM: 7,9 */
	{221, "SN", 0x0200, 0},	/* SN: 9 */
	{222, "MR", 0x0100, 0},	/* MR: 8 */
	{223, "ML", 0x0100, 0},	/* ML: 8 */
	{224, "GN", 0x0300, 0},	/* GN: 8,9 */
	{225, "CI", 0x0400, WAM_PC_ZERO_OK},	/* CI: 10 */
	{226, "BF", 0x0100, WAM_PC_ZERO_OK},	/* BF: 8 */
	{227, "NE", 0x0100, 0},	/* NE: 8 */
	{228, "TG", 0x0100, 0},	/* TG: 8 */
	{229, "BJ", 0x0400, WAM_PC_ZERO_OK},	/* BJ: 10 */
	{230, "MU", 0x0180, 0},	/* MU: 7,8 */
	{231, "LR", 0x0380, WAM_PC_STRIP_ZERO},	/* LR: 7,8,9 */
	{232, "SL", 0x0100, WAM_PC_STRIP_ZERO},	/* SL: 8 */
	{233, "GH", 0x0200, WAM_PC_STRIP_ZERO},	/* GH: 9 */
	{234, "NG", 0x0400, WAM_PC_STRIP_ZERO},	/* NG: 10 */
	{235, "TD", 0x0100, 0},	/* TD: 8 */
	{236, "CF", 0x0100, 0},	/* CF: 8 */
	{237, "CM", 0x0200, 0},	/* CM: 9 */
	{238, "CV", 0x0080, 0},	/* CV: 7 */
	{239, "ST", 0x0080, 0},	/* ST: 7 */
	{240, "GQ", 0x0200, 0},	/* GQ: 9 */
	{241, "GA", 0x0180, WAM_PC_ZERO_OK},	/* GA: 7,8 */
	{242, "CG", 0x0200, WAM_PC_ZERO_OK},	/* CG: 9 */
	{243, "CD", 0x0780, WAM_PC_STRIP_ZERO},	/* CD: 7,8,9,10 */
	{244, "AO", 0x0200, 0},	/* AO: 9 */
	{245, "GW", 0x0280, 0},	/* GW: 7,9 */
	{246, "IO", 0x0080, 0},	/* IO: 7 */
	{247, "AC", 0x0020, 0},	/* AC: 5 */
	{248, "SC", 0x0080, 0},	/* SC: 7 */
	{249, "SD", 0x0200, WAM_PC_STRIP_ZERO},	/* SD: 9 */
	{250, "RW", 0x0300, WAM_PC_ZERO_OK},	/* RW: 8,9 */
	{251, "ET", 0x0200, WAM_PC_STRIP_ZERO},	/* ET: 9 */
	{252, "SO", 0x03c0, WAM_PC_STRIP_ZERO},	/* SO: 6,7,8,9 */
	{253, "DJ", 0x0100, 0},	/* DJ: 8 */
	{254, "KE", 0x0380, WAM_PC_STRIP_ZERO},	/* KE: 7,8,9 */
	{255, "TZ", 0x0200, WAM_PC_STRIP_ZERO},	/* TZ: 9 */
	{256, "UG", 0x0200, WAM_PC_STRIP_ZERO},	/* UG: 9 */
	{257, "BI", 0x0100, 0},	/* BI: 8 */
	{258, "MZ", 0x0300, 0},	/* MZ: 8,9 */
	{260, "ZM", 0x0200, WAM_PC_STRIP_ZERO},	/* ZM: 9 */
	{261, "MG", 0x0200, WAM_PC_STRIP_ZERO},	/* MG: 9 */
	{262, "RE", 0x0200, WAM_PC_STRIP_ZERO},	/* RE YT: 9 */
	{263, "ZW", 0x0600, WAM_PC_STRIP_ZERO},	/* ZW: 9,10 */
	{264, "NA", 0x0300, WAM_PC_STRIP_ZERO},	/* NA: 8,9 */
	{265, "MW", 0x0280, WAM_PC_STRIP_ZERO},	/* MW: 7,9 */
	{266, "LS", 0x0100, 0},	/* LS: 8 */
	{267, "BW", 0x0180, 0},	/* BW: 7,8 */
	{268, "SZ", 0x0100, 0},	/* SZ: 8 */
	{269, "KM", 0x0080, 0},	/* KM: 7 */
	{290, "SH", 0x0020, 0},	/* SH TA: 5 */
	{291, "ER", 0x0080, WAM_PC_STRIP_ZERO},	/* ER: 7 */
	{297, "AW", 0x0080, 0},	/* AW: 7 */
	{298, "FO", 0x0040, 0},	/* FO: 6 */
	{299, "GL", 0x0040, 0},	/* GL: 6 */
	{350, "GI", 0x0100, 0},	/* GI: 8 */
	{351, "PT", 0x0200, 0},	/* PT: 9 */
	{352, "LU", 0x0fe0, 0},	/* LU: 5,6,7,8,9,10,11 */
	{353, "IE", 0x0780, WAM_PC_STRIP_ZERO},	/* IE: 7,8,9,10 */
	{354, "IS", 0x0280, 0},	/* IS: 7,9 */
	{355, "AL", 0x0300, WAM_PC_STRIP_ZERO},	/* AL: 8,9 */
	{356, "MT", 0x0100, 0},	/* MT: 8 */
	{357, "CY", 0x0100, 0},	/* CY: 8 */
	{358, "FI", 0x07e0, WAM_PC_STRIP_ZERO},	/* FI AX: 5,6,7,8,9,10 */
	{359, "BG", 0x03c0, WAM_PC_STRIP_ZERO},	/* BG: 6,7,8,9 */
	{370, "LT", 0x0100, WAM_PC_STRIP_ZERO},	/* LT: 8 */
	{371, "LV", 0x0100, 0},	/* LV: 8 */
	{372, "EE", 0x0180, 0},	/* EE: 7,8 */
	{373, "MD", 0x0100, WAM_PC_STRIP_ZERO},	/* MD: 8 */
	{374, "AM", 0x0100, WAM_PC_STRIP_ZERO},	/* AM: 8 */
	{375, "BY", 0x0200, 0},	/* BY: 9 */
	{376, "AD", 0x0240, 0},	/* AD: 6,9 */
	{377, "MC", 0x0300, WAM_PC_STRIP_ZERO},	/* MC: 8,9 */
	{378, "SM", 0x0500, WAM_PC_ZERO_OK},	/* SM: 8,10 */
	{380, "UA", 0x0200, WAM_PC_STRIP_ZERO},	/* UA: 9 */
	{381, "RS", 0x1f80, WAM_PC_STRIP_ZERO},	/* RS: 7,8,9,10,11,12 */
	{382, "ME", 0x0100, WAM_PC_STRIP_ZERO},	/* ME: 8 */
	{383, "XK", 0x1f00, WAM_PC_STRIP_ZERO},	/* XK: 8,9,10,11,12 */
	{385, "HR", 0x0300, WAM_PC_STRIP_ZERO},	/* HR: 8,9 */
	{386, "SI", 0x0100, WAM_PC_STRIP_ZERO},	/* SI: 8 */
	{387, "BA", 0x0300, WAM_PC_STRIP_ZERO},	/* BA: 8,9 */
	{389, "MK", 0x0100, WAM_PC_STRIP_ZERO},	/* MK: 8 */
	{420, "CZ", 0x0200, 0},	/* CZ: 9 */
	{421, "SK", 0x02c0, WAM_PC_STRIP_ZERO},	/* SK: 6,7,9 */
	{423, "LI", 0x0280, WAM_PC_STRIP_ZERO},	/* LI: 7,9 */
	{500, "FK", 0x0020, 0},	/* FK: 5 */
	{501, "BZ", 0x0080, 0},	/* BZ: 7 */
	{502, "GT", 0x0100, 0},	/* GT: 8 */
	{503, "SV", 0x0100, 0},	/* SV: 8 */
	{504, "HN", 0x0100, 0},	/* HN: 8 */
	{505, "NI", 0x0100, 0},	/* NI: 8 */
	{506, "CR", 0x0100, 0},	/* CR: 8 */
	{507, "PA", 0x0180, 0},	/* PA: 7,8 */
	{508, "PM", 0x0240, WAM_PC_STRIP_ZERO},	/* PM: 6,9 */
	{509, "HT", 0x0100, 0},	/* HT: 8 */
	{590, "GP", 0x0200, WAM_PC_STRIP_ZERO},	/* GP BL MF: 9 */
	{591, "BO", 0x0100, WAM_PC_STRIP_ZERO},	/* BO: 8 */
	{592, "GY", 0x0080, 0},	/* GY: 7 */
	{593, "EC", 0x0300, WAM_PC_STRIP_ZERO},	/* EC: 8,9 */
	{594, "GF", 0x0200, WAM_PC_STRIP_ZERO},	/* GF: 9 */
	{595, "PY", 0x0380, WAM_PC_STRIP_ZERO},	/* PY: 7,8,9 */
	{596, "MQ", 0x0200, WAM_PC_STRIP_ZERO},	/* MQ: 9 */
	{597, "SR", 0x00c0, 0},	/* SR: 6,7 */
	{598, "UY", 0x0100, WAM_PC_STRIP_ZERO},	/* UY: 8 */
	{599, "CW", 0x0180, 0},	/* CW BQ: 7,8 */
	{670, "TL", 0x0180, 0},	/* TL: 7,8 */
	{672, "NF", 0x0040, 0},	/* NF: 6 */
	{673, "BN", 0x0080, 0},	/* BN: 7 */
	{674, "NR", 0x0080, 0},	/* NR: 7 */
	{675, "PG", 0x0180, 0},	/* PG: 7,8 */
	{676, "TO", 0x00a0, 0},	/* TO: 5,7 */
	{677, "SB", 0x00a0, 0},	/* SB: 5,7 */
	{678, "VU", 0x00a0, 0},	/* VU: 5,7 */
	{679, "FJ", 0x0080, 0},	/* FJ: 7 */
	{680, "PW", 0x0080, 0},	/* PW: 7 */
	{681, "WF", 0x0040, 0},	/* WF: 6 */
	{682, "CK", 0x0020, 0},	/* CK: 5 */
	{683, "NU", 0x0080, 0},	/* NU: 7 */
	{685, "WS", 0x04e0, 0},	/* WS: 5,6,7,10 */
	{686, "KI", 0x0120, WAM_PC_STRIP_ZERO},	/* KI: 5,8 */
	{687, "NC", 0x0040, 0},	/* NC: 6 */
	{688, "TV", 0x00e0, 0},	/* TV: 5,6,7 */
	{689, "PF", 0x0100, 0},	/* PF: 8 */
	{690, "TK", 0x00e0, 0},	/* TK: 5,6,7 */
	{691, "FM", 0x0080, 0},	/* FM: 7 */
	{692, "MH", 0x0080, 0},	/* MH: 7 */
	{800, "", 0x0000, WAM_PC_NONGEO},	/* non-geographic */
	{808, "", 0x0000, WAM_PC_NONGEO},	/* non-geographic */
	{850, "KP", 0x0500, WAM_PC_STRIP_ZERO},	/* KP: 8,10 */
	{852, "HK", 0x0100, 0},	/* HK: 8 */
	{853, "MO", 0x0100, 0},	/* MO: 8 */
	{855, "KH", 0x0300, WAM_PC_STRIP_ZERO},	/* KH: 8,9 */
	{856, "LA", 0x0700, WAM_PC_STRIP_ZERO},	/* LA: 8,9,10 */
	{870, "", 0x0000, WAM_PC_NONGEO},	/* non-geographic */
	{878, "", 0x0000, WAM_PC_NONGEO},	/* non-geographic */
	{880, "BD", 0x07c0, WAM_PC_STRIP_ZERO},	/* BD: 6,7,8,9,10 */
	{881, "", 0x0000, WAM_PC_NONGEO},	/* non-geographic */
	{882, "", 0x0000, WAM_PC_NONGEO},	/* non-geographic */
	{883, "", 0x0000, WAM_PC_NONGEO},	/* non-geographic */
	{886, "TW", 0x0f00, WAM_PC_STRIP_ZERO},	/* TW: 8,9,10,11 */
	{888, "", 0x0000, WAM_PC_NONGEO},	/* non-geographic */
	{960, "MV", 0x0080, 0},	/* MV: 7 */
	{961, "LB", 0x0180, WAM_PC_STRIP_ZERO},	/* LB: 7,8 */
	{962, "JO", 0x0300, WAM_PC_STRIP_ZERO},	/* JO: 8,9 */
	{963, "SY", 0x0300, WAM_PC_STRIP_ZERO},	/* SY: 8,9 */
	{964, "IQ", 0x0700, WAM_PC_STRIP_ZERO},	/* IQ: 8,9,10 */
	{965, "KW", 0x0100, 0},	/* KW: 8 */
	{966, "SA", 0x0200, WAM_PC_STRIP_ZERO},	/* SA: 9 */
	{967, "YE", 0x0380, WAM_PC_STRIP_ZERO},	/* YE: 7,8,9 */
	{968, "OM", 0x0100, 0},	/* OM: 8 */
	{970, "PS", 0x0300, WAM_PC_STRIP_ZERO},	/* PS: 8,9 */
	{971, "AE", 0x0300, WAM_PC_STRIP_ZERO},	/* AE: 8,9 */
	{972, "IL", 0x1b00, WAM_PC_STRIP_ZERO},	/* IL: 8,9,11,12 */
	{973, "BH", 0x0100, 0},	/* BH: 8 */
	{974, "QA", 0x0100, 0},	/* QA: 8 */
	{975, "BT", 0x0180, 0},	/* BT: 7,8 */
	{976, "MN", 0x0700, WAM_PC_STRIP_ZERO},	/* MN: 8,9,10 */
	{977, "NP", 0x0500, WAM_PC_STRIP_ZERO},	/* NP: 8,10 */
	{979, "", 0x0000, WAM_PC_NONGEO},	/* non-geographic */
	{992, "TJ", 0x0200, WAM_PC_ZERO_OK},	/* TJ: 9 */
	{993, "TM", 0x0100, 0},	/* TM: 8 */
	{994, "AZ", 0x0200, WAM_PC_STRIP_ZERO},	/* AZ: 9 */
	{995, "GE", 0x0200, WAM_PC_STRIP_ZERO},	/* GE: 9 */
	{996, "KG", 0x0200, WAM_PC_STRIP_ZERO},	/* KG: 9 */
	{998, "UZ", 0x0200, 0},	/* UZ: 9 */
};
const int	wam_phone_ncodes = WAM_LENGTHOF(wam_phone_codes);

const WamPhoneRegion wam_phone_regions[] = {
	{"AC", 247, ""},
	{"AD", 376, ""},
	{"AE", 971, "0"},
	{"AF", 93, "0"},
	{"AG", 1, "1"},
	{"AI", 1, "1"},
	{"AL", 355, "0"},
	{"AM", 374, "0"},
	{"AO", 244, ""},
	{"AR", 54, "0"},
	{"AS", 1, "1"},
	{"AT", 43, "0"},
	{"AU", 61, "0"},
	{"AW", 297, ""},
	{"AX", 358, "0"},
	{"AZ", 994, "0"},
	{"BA", 387, "0"},
	{"BB", 1, "1"},
	{"BD", 880, "0"},
	{"BE", 32, "0"},
	{"BF", 226, ""},
	{"BG", 359, "0"},
	{"BH", 973, ""},
	{"BI", 257, ""},
	{"BJ", 229, ""},
	{"BL", 590, "0"},
	{"BM", 1, "1"},
	{"BN", 673, ""},
	{"BO", 591, "0"},
	{"BQ", 599, ""},
	{"BR", 55, "0"},
	{"BS", 1, "1"},
	{"BT", 975, ""},
	{"BW", 267, ""},
	{"BY", 375, "8"},
	{"BZ", 501, ""},
	{"CA", 1, "1"},
	{"CC", 61, "0"},
	{"CD", 243, "0"},
	{"CF", 236, ""},
	{"CG", 242, ""},
	{"CH", 41, "0"},
	{"CI", 225, ""},
	{"CK", 682, ""},
	{"CL", 56, ""},
	{"CM", 237, ""},
	{"CN", 86, "0"},
	{"CO", 57, "0"},
	{"CR", 506, ""},
	{"CU", 53, "0"},
	{"CV", 238, ""},
	{"CW", 599, ""},
	{"CX", 61, "0"},
	{"CY", 357, ""},
	{"CZ", 420, ""},
	{"DE", 49, "0"},
	{"DJ", 253, ""},
	{"DK", 45, ""},
	{"DM", 1, "1"},
	{"DO", 1, "1"},
	{"DZ", 213, "0"},
	{"EC", 593, "0"},
	{"EE", 372, ""},
	{"EG", 20, "0"},
	{"EH", 212, "0"},
	{"ER", 291, "0"},
	{"ES", 34, ""},
	{"ET", 251, "0"},
	{"FI", 358, "0"},
	{"FJ", 679, ""},
	{"FK", 500, ""},
	{"FM", 691, ""},
	{"FO", 298, ""},
	{"FR", 33, "0"},
	{"GA", 241, ""},
	{"GB", 44, "0"},
	{"GD", 1, "1"},
	{"GE", 995, "0"},
	{"GF", 594, "0"},
	{"GG", 44, "0"},
	{"GH", 233, "0"},
	{"GI", 350, ""},
	{"GL", 299, ""},
	{"GM", 220, ""},
	{"GN", 224, ""},
	{"GP", 590, "0"},
	{"GQ", 240, ""},
	{"GR", 30, ""},
	{"GT", 502, ""},
	{"GU", 1, "1"},
	{"GW", 245, ""},
	{"GY", 592, ""},
	{"HK", 852, ""},
	{"HN", 504, ""},
	{"HR", 385, "0"},
	{"HT", 509, ""},
	{"HU", 36, "06"},
	{"ID", 62, "0"},
	{"IE", 353, "0"},
	{"IL", 972, "0"},
	{"IM", 44, "0"},
	{"IN", 91, "0"},
	{"IO", 246, ""},
	{"IQ", 964, "0"},
	{"IR", 98, "0"},
	{"IS", 354, ""},
	{"IT", 39, ""},
	{"JE", 44, "0"},
	{"JM", 1, "1"},
	{"JO", 962, "0"},
	{"JP", 81, "0"},
	{"KE", 254, "0"},
	{"KG", 996, "0"},
	{"KH", 855, "0"},
	{"KI", 686, "0"},
	{"KM", 269, ""},
	{"KN", 1, "1"},
	{"KP", 850, "0"},
	{"KR", 82, "0"},
	{"KW", 965, ""},
	{"KY", 1, "1"},
	{"KZ", 7, "8"},
	{"LA", 856, "0"},
	{"LB", 961, "0"},
	{"LC", 1, "1"},
	{"LI", 423, "0"},
	{"LK", 94, "0"},
	{"LR", 231, "0"},
	{"LS", 266, ""},
	{"LT", 370, "0"},
	{"LU", 352, ""},
	{"LV", 371, ""},
	{"LY", 218, "0"},
	{"MA", 212, "0"},
	{"MC", 377, "0"},
	{"MD", 373, "0"},
	{"ME", 382, "0"},
	{"MF", 590, "0"},
	{"MG", 261, "0"},
	{"MH", 692, "1"},
	{"MK", 389, "0"},
	{"ML", 223, ""},
	{"MM", 95, "0"},
	{"MN", 976, "0"},
	{"MO", 853, ""},
	{"MP", 1, "1"},
	{"MQ", 596, "0"},
	{"MR", 222, ""},
	{"MS", 1, "1"},
	{"MT", 356, ""},
	{"MU", 230, ""},
	{"MV", 960, ""},
	{"MW", 265, "0"},
	{"MX", 52, ""},
	{"MY", 60, "0"},
	{"MZ", 258, ""},
	{"NA", 264, "0"},
	{"NC", 687, ""},
	{"NE", 227, ""},
	{"NF", 672, ""},
	{"NG", 234, "0"},
	{"NI", 505, ""},
	{"NL", 31, "0"},
	{"NO", 47, ""},
	{"NP", 977, "0"},
	{"NR", 674, ""},
	{"NU", 683, ""},
	{"NZ", 64, "0"},
	{"OM", 968, ""},
	{"PA", 507, ""},
	{"PE", 51, "0"},
	{"PF", 689, ""},
	{"PG", 675, ""},
	{"PH", 63, "0"},
	{"PK", 92, "0"},
	{"PL", 48, ""},
	{"PM", 508, "0"},
	{"PR", 1, "1"},
	{"PS", 970, "0"},
	{"PT", 351, ""},
	{"PW", 680, ""},
	{"PY", 595, "0"},
	{"QA", 974, ""},
	{"RE", 262, "0"},
	{"RO", 40, "0"},
	{"RS", 381, "0"},
	{"RU", 7, "8"},
	{"RW", 250, "0"},
	{"SA", 966, "0"},
	{"SB", 677, ""},
	{"SC", 248, ""},
	{"SD", 249, "0"},
	{"SE", 46, "0"},
	{"SG", 65, ""},
	{"SH", 290, ""},
	{"SI", 386, "0"},
	{"SJ", 47, ""},
	{"SK", 421, "0"},
	{"SL", 232, "0"},
	{"SM", 378, ""},
	{"SN", 221, ""},
	{"SO", 252, "0"},
	{"SR", 597, ""},
	{"SS", 211, "0"},
	{"ST", 239, ""},
	{"SV", 503, ""},
	{"SX", 1, "1"},
	{"SY", 963, "0"},
	{"SZ", 268, ""},
	{"TA", 290, ""},
	{"TC", 1, "1"},
	{"TD", 235, ""},
	{"TG", 228, ""},
	{"TH", 66, "0"},
	{"TJ", 992, ""},
	{"TK", 690, ""},
	{"TL", 670, ""},
	{"TM", 993, "8"},
	{"TN", 216, ""},
	{"TO", 676, ""},
	{"TR", 90, "0"},
	{"TT", 1, "1"},
	{"TV", 688, ""},
	{"TW", 886, "0"},
	{"TZ", 255, "0"},
	{"UA", 380, "0"},
	{"UG", 256, "0"},
	{"US", 1, "1"},
	{"UY", 598, "0"},
	{"UZ", 998, ""},
	{"VA", 39, ""},
	{"VC", 1, "1"},
	{"VE", 58, "0"},
	{"VG", 1, "1"},
	{"VI", 1, "1"},
	{"VN", 84, "0"},
	{"VU", 678, ""},
	{"WF", 681, ""},
	{"WS", 685, ""},
	{"XK", 383, "0"},
	{"YE", 967, "0"},
	{"YT", 262, "0"},
	{"ZA", 27, "0"},
	{"ZM", 260, "0"},
	{"ZW", 263, "0"},
};
const int	wam_phone_nregions = WAM_LENGTHOF(wam_phone_regions);

const WamPhoneNanpArea wam_phone_nanp_areas[] = {
	{204, "CA"},
	{226, "CA"},
	{236, "CA"},
	{242, "BS"},
	{246, "BB"},
	{249, "CA"},
	{250, "CA"},
	{257, "CA"},
	{263, "CA"},
	{264, "AI"},
	{268, "AG"},
	{273, "CA"},
	{284, "VG"},
	{289, "CA"},
	{306, "CA"},
	{340, "VI"},
	{343, "CA"},
	{345, "KY"},
	{354, "CA"},
	{365, "CA"},
	{367, "CA"},
	{368, "CA"},
	{382, "CA"},
	{403, "CA"},
	{416, "CA"},
	{418, "CA"},
	{428, "CA"},
	{431, "CA"},
	{437, "CA"},
	{438, "CA"},
	{441, "BM"},
	{450, "CA"},
	{468, "CA"},
	{473, "GD"},
	{474, "CA"},
	{506, "CA"},
	{514, "CA"},
	{519, "CA"},
	{548, "CA"},
	{579, "CA"},
	{581, "CA"},
	{584, "CA"},
	{587, "CA"},
	{604, "CA"},
	{613, "CA"},
	{639, "CA"},
	{647, "CA"},
	{649, "TC"},
	{658, "JM"},
	{664, "MS"},
	{670, "MP"},
	{671, "GU"},
	{672, "CA"},
	{683, "CA"},
	{684, "AS"},
	{705, "CA"},
	{709, "CA"},
	{721, "SX"},
	{742, "CA"},
	{753, "CA"},
	{758, "LC"},
	{767, "DM"},
	{778, "CA"},
	{780, "CA"},
	{782, "CA"},
	{784, "VC"},
	{787, "PR"},
	{807, "CA"},
	{809, "DO"},
	{819, "CA"},
	{825, "CA"},
	{829, "DO"},
	{849, "DO"},
	{867, "CA"},
	{868, "TT"},
	{869, "KN"},
	{873, "CA"},
	{876, "JM"},
	{879, "CA"},
	{902, "CA"},
	{905, "CA"},
	{939, "PR"},
	{942, "CA"},
};
const int	wam_phone_nnanp_areas = WAM_LENGTHOF(wam_phone_nanp_areas);

/*
 * The generator.  In a scratch directory (needs node and npm):
 *	  npm install libphonenumber-js@1.13.16
 *	  node gen_phone_data.js > tables.c
 * and replace everything between the #include and this comment with
 * tables.c.  gen_phone_data.js:
 *
 * // gen_phone_data.js: prints the tables of src/phone_data.c.
 * // Needs libphonenumber-js installed next to it (see the comment above).
 * const fs = require('fs');
 * const m = require('libphonenumber-js/metadata.max.json');
 * const ver = require('libphonenumber-js/package.json').version;
 * // Number types in the metadata, in this order: fixed line, mobile, toll free,
 * // premium rate, personal, voicemail, uan, pager, voip, shared cost.  Only the
 * // ones a WhatsApp account can live on count towards the possible lengths.
 * const MESSAGEABLE = [0, 1, 4, 8];
 * const MIN_TOTAL = 8, MAX_TOTAL = 15;
 * function typeInfo(a, i) {
 *   const t = (a[11] || [])[i];
 *   if (!t) return null;
 *   let pat = typeof t === 'string' ? t : t[0];
 *   const lens = typeof t === 'string' ? a[3] : (t[1] || a[3]);
 *   if (pat === '') { const f = typeInfo(a, 0); pat = f ? f.pat : a[2]; }
 *   return { pat, lens };
 * }
 * // Deterministic pseudo-random digits, so that the output is reproducible.
 * let seed = 12345;
 * function digit() { seed = (seed * 1103515245 + 12345) % 2147483648; return Math.floor(seed / 65536) % 10; }
 * function digits(n) { let s = ''; for (let i = 0; i < n; i++) s += digit(); return s; }
 * function zeroPossible(a) {
 *   for (const i of MESSAGEABLE) {
 *     const t = typeInfo(a, i);
 *     if (!t) continue;
 *     const re = new RegExp('^(?:' + t.pat + ')$');
 *     for (const L of t.lens) for (let k = 0; k < 20000; k++) if (re.test('0' + digits(L - 1))) return true;
 *   }
 *   return false;
 * }
 * const codes = [];
 * for (const cc of Object.keys(m.nonGeographic))
 *   codes.push({ cc, region: '', mask: 0, flags: ['WAM_PC_NONGEO'] });
 * for (const [cc, regs] of Object.entries(m.country_calling_codes)) {
 *   let mask = 0, zeroOk = false, allTrunk0 = true;
 *   for (const r of regs) {
 *     const a = m.countries[r];
 *     let got = 0;
 *     for (const i of MESSAGEABLE) { const t = typeInfo(a, i); if (t) for (const L of t.lens) got |= 1 << L; }
 *     if (!got) for (const L of a[3]) got |= 1 << L;
 *     mask |= got;
 *     if (zeroPossible(a)) zeroOk = true;
 *     if (a[5] !== '0') allTrunk0 = false;
 *   }
 *   for (let L = 0; L < 16; L++) if (cc.length + L < MIN_TOTAL || cc.length + L > MAX_TOTAL) mask &= ~(1 << L);
 *   const flags = [];
 *   if (zeroOk) flags.push('WAM_PC_ZERO_OK');
 *   if (allTrunk0 && !zeroOk) flags.push('WAM_PC_STRIP_ZERO');
 *   codes.push({ cc, region: regs[0], mask, flags });
 * }
 * codes.sort((x, y) => (+x.cc) - (+y.cc));
 * const regions = Object.entries(m.countries).map(([r, a]) => ({ r, cc: a[0], np: a[5] || '' }));
 * regions.sort((x, y) => (x.r < y.r ? -1 : 1));
 * // North American area codes of a country other than the US: an area code
 * // belongs to the first such country whose fixed-line or mobile pattern
 * // accepts one of 3000 sample numbers in it.
 * const nanp = [];
 * const nanpRegs = m.country_calling_codes['1'].filter((r) => r !== 'US');
 * for (let npa = 200; npa <= 999; npa++) {
 *   for (const r of nanpRegs) {
 *     const pats = [0, 1].map((i) => typeInfo(m.countries[r], i)).filter(Boolean)
 *       .map((t) => new RegExp('^(?:' + t.pat + ')$'));
 *     let hit = false;
 *     for (let k = 0; k < 3000 && !hit; k++)
 *       hit = pats.some((re) => re.test(String(npa) + (2 + (digit() % 8)) + digits(6)));
 *     if (hit) { nanp.push({ npa, r }); break; }
 *   }
 * }
 * const lens = (mask) => { const o = []; for (let i = 0; i < 16; i++) if (mask & (1 << i)) o.push(i); return o.join(','); };
 * const OC = '/' + '*', CC = '*' + '/';
 * let o = '';
 * o += 'const char wam_phone_data_source[] = "libphonenumber-js ' + ver + '";\n\n';
 * o += 'const WamPhoneCode wam_phone_codes[] = {\n';
 * for (const c of codes)
 *   o += `\t{${c.cc}, "${c.region}", 0x${c.mask.toString(16).padStart(4, '0')}, ${c.flags.length ? c.flags.join(' | ') : '0'}},\t${OC} ${c.region ? regsOf(c.cc) : 'non-geographic'}${c.mask ? ': ' + lens(c.mask) : ''} ${CC}\n`;
 * function regsOf(cc) { const r = m.country_calling_codes[cc]; return r.length > 5 ? r.slice(0, 4).join(" ") + " and " + (r.length - 4) + " more" : r.join(" "); }
 * o += '};\nconst int\twam_phone_ncodes = WAM_LENGTHOF(wam_phone_codes);\n\n';
 * o += 'const WamPhoneRegion wam_phone_regions[] = {\n';
 * for (const g of regions) o += `\t{"${g.r}", ${g.cc}, "${g.np}"},\n`;
 * o += '};\nconst int\twam_phone_nregions = WAM_LENGTHOF(wam_phone_regions);\n\n';
 * o += 'const WamPhoneNanpArea wam_phone_nanp_areas[] = {\n';
 * for (const n of nanp) o += `\t{${n.npa}, "${n.r}"},\n`;
 * o += '};\nconst int\twam_phone_nnanp_areas = WAM_LENGTHOF(wam_phone_nanp_areas);\n';
 * process.stdout.write(o);
 */
