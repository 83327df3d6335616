/*-------------------------------------------------------------------------
 *
 * segment_text.h
 *	  Parser for the text form of a segment, "{1,2,3}".
 *
 * Deliberately free of PostgreSQL headers: the parser reports values
 * through a callback and errors through a code and a byte position, so the
 * same code runs inside the server (segment_io.c) and under libFuzzer
 * (test/fuzz/fuzz_segment.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef WAM_SEGMENT_TEXT_H
#define WAM_SEGMENT_TEXT_H

#include <stddef.h>
#include <stdint.h>

typedef enum WamTextError
{
	WAM_TEXT_OK = 0,
	WAM_TEXT_EXPECTED_OPEN_BRACE,	/* input does not start with "{" */
	WAM_TEXT_EXPECTED_NUMBER,	/* something other than a digit where an id
								 * belongs */
	WAM_TEXT_NEGATIVE,			/* "-5" */
	WAM_TEXT_OUT_OF_RANGE,		/* more than 4294967295 */
	WAM_TEXT_EXPECTED_SEPARATOR,	/* neither "," nor "}" after an id */
	WAM_TEXT_UNTERMINATED,		/* end of input before "}" */
	WAM_TEXT_TRAILING			/* junk after the closing "}" */
} WamTextError;

typedef void (*WamTextEmit) (void *arg, uint32_t value);

/*
 * Parses a NUL-terminated string.  Calls emit() once per id in input order
 * (duplicates and any order allowed).  Returns WAM_TEXT_OK, or an error code
 * with *errpos set to the byte offset of the offending character.
 */
extern WamTextError wam_segment_text_parse(const char *str, WamTextEmit emit,
										   void *arg, size_t *errpos);

/* Human-readable detail for an error code (a full sentence). */
extern const char *wam_segment_text_error_detail(WamTextError err);

#endif							/* WAM_SEGMENT_TEXT_H */
