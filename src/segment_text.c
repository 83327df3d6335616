/*-------------------------------------------------------------------------
 *
 * segment_text.c
 *	  Parser for the text form of a segment, "{1,2,3}".
 *
 * Grammar (whitespace allowed around every token):
 *		segment := "{" [ id { "," id } ] "}"
 *		id		:= digit { digit }			value 0 .. 4294967295
 *
 * The parser is a single left-to-right pass with no recursion and no
 * allocation, so input of any size is parsed in linear time and bounded
 * stack.
 *
 *-------------------------------------------------------------------------
 */
#include "segment_text.h"

static inline int
wam_is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' ||
		c == '\v' || c == '\f';
}

static inline const char *
wam_skip_space(const char *p)
{
	while (wam_is_space(*p))
		p++;
	return p;
}

WamTextError
wam_segment_text_parse(const char *str, WamTextEmit emit, void *arg,
					   size_t *errpos)
{
	const char *p = wam_skip_space(str);

#define WAM_FAIL(code, at) \
	do { *errpos = (size_t) ((at) - str); return (code); } while (0)

	if (*p != '{')
		WAM_FAIL(WAM_TEXT_EXPECTED_OPEN_BRACE, p);
	p = wam_skip_space(p + 1);

	if (*p == '}')
	{
		p = wam_skip_space(p + 1);
		if (*p != '\0')
			WAM_FAIL(WAM_TEXT_TRAILING, p);
		return WAM_TEXT_OK;
	}

	for (;;)
	{
		const char *start = p;
		uint64_t	value = 0;

		if (*p == '-')
			WAM_FAIL(WAM_TEXT_NEGATIVE, p);
		if (*p == '\0')
			WAM_FAIL(WAM_TEXT_UNTERMINATED, p);
		if (*p < '0' || *p > '9')
			WAM_FAIL(WAM_TEXT_EXPECTED_NUMBER, p);

		/*
		 * Accumulate in 64 bits and stop as soon as the value passes the
		 * 32-bit range, so a very long digit string cannot overflow.
		 */
		while (*p >= '0' && *p <= '9')
		{
			value = value * 10 + (uint64_t) (*p - '0');
			if (value > UINT32_MAX)
				WAM_FAIL(WAM_TEXT_OUT_OF_RANGE, start);
			p++;
		}
		emit(arg, (uint32_t) value);

		p = wam_skip_space(p);
		if (*p == ',')
		{
			p = wam_skip_space(p + 1);
			continue;
		}
		if (*p == '}')
			break;
		if (*p == '\0')
			WAM_FAIL(WAM_TEXT_UNTERMINATED, p);
		WAM_FAIL(WAM_TEXT_EXPECTED_SEPARATOR, p);
	}

	p = wam_skip_space(p + 1);
	if (*p != '\0')
		WAM_FAIL(WAM_TEXT_TRAILING, p);
	return WAM_TEXT_OK;
#undef WAM_FAIL
}

const char *
wam_segment_text_error_detail(WamTextError err)
{
	switch (err)
	{
		case WAM_TEXT_OK:
			return "No error.";
		case WAM_TEXT_EXPECTED_OPEN_BRACE:
			return "A segment literal must start with \"{\".";
		case WAM_TEXT_EXPECTED_NUMBER:
			return "Expected a customer id (decimal digits).";
		case WAM_TEXT_NEGATIVE:
			return "Customer ids cannot be negative.";
		case WAM_TEXT_OUT_OF_RANGE:
			return "Customer ids must be between 0 and 4294967295.";
		case WAM_TEXT_EXPECTED_SEPARATOR:
			return "Expected \",\" or \"}\" after a customer id.";
		case WAM_TEXT_UNTERMINATED:
			return "Unexpected end of input; the literal must end with \"}\".";
		case WAM_TEXT_TRAILING:
			return "Junk after closing \"}\".";
	}
	return "Unknown error.";
}
