/*-------------------------------------------------------------------------
 *
 * wam_hex.h
 *	  The value of a hexadecimal digit, for decoders that report bad input
 *	  themselves (PostgreSQL's hex_decode raises its own error).
 *
 *-------------------------------------------------------------------------
 */
#ifndef WAM_HEX_H
#define WAM_HEX_H

/* 0..15, or -1 when c is not a hexadecimal digit (either case) */
static inline int
wam_hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

#endif							/* WAM_HEX_H */
