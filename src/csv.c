/*-------------------------------------------------------------------------
 *
 * csv.c
 *	  Streaming CSV tokenizer for contact imports (dialect in csv.h).
 *
 * wam_csv_next() is a state machine over the raw bytes with four states:
 * at the start of a field, inside an unquoted field, inside a quoted field
 * and after a closing quote.  In the two "inside" states it skips runs of
 * ordinary bytes with a 256-entry table lookup per byte, so the common
 * case costs about one load and one branch per byte.
 *
 * Every loop of a record is bounded by the record's byte limit, so no
 * record, however it is broken, is scanned beyond max_record bytes plus the
 * rest of the physical line it is cut at; and the reader never copies.
 *
 * Line numbers count \r\n, \r and \n as one line break each, also inside
 * quoted fields, so a record's line number is the line an editor shows.
 * A \n is a line break of its own unless the byte before it is \r; that
 * rule needs no state, so the count stays right wherever a record is cut.
 *
 *-------------------------------------------------------------------------
 */
#include <string.h>

#include "csv.h"

static inline int
wam_csv_is_pad(unsigned char c, char delim)
{
	return (c == ' ' || c == '\t') && c != (unsigned char) delim;
}

void
wam_csv_init(WamCsvReader *r, const char *buf, size_t len, char delim,
			 size_t max_record, int flags)
{
	int			c;

	memset(r, 0, sizeof(*r));
	r->buf = buf;
	r->len = len;
	r->pos = 0;
	r->max_record = max_record > 0 ? max_record : 1;
	r->line = 1;
	r->line_start = 0;
	r->delim = delim;
	r->flags = flags;

	for (c = 0; c < 256; c++)
	{
		int			special = 0;

		if (c >= 0x80 && (flags & WAM_CSV_CHECK_UTF8))
			special = 1;
		if (c == 0 && (flags & WAM_CSV_REJECT_NUL))
			special = 1;
		r->stop_unquoted[c] = special || c == (unsigned char) delim ||
			c == '\r' || c == '\n';
		r->stop_quoted[c] = special || c == '"' || c == '\r' || c == '\n';
	}

	if ((flags & WAM_CSV_SKIP_BOM) && len >= 3 &&
		(unsigned char) buf[0] == 0xEF &&
		(unsigned char) buf[1] == 0xBB &&
		(unsigned char) buf[2] == 0xBF)
	{
		r->pos = 3;
		r->line_start = 3;
	}
}

/*
 * Length of the well-formed UTF-8 sequence at s, whose first byte is 0x80
 * or above, or 0 if it is not well-formed.  Same rules as PostgreSQL's
 * pg_utf8_islegal(): shortest form only, no surrogates, nothing above
 * U+10FFFF, so whatever passes here is accepted as text by the server.
 */
static size_t
wam_csv_utf8_length(const unsigned char *s, size_t avail)
{
	unsigned char c = s[0];
	unsigned char lo = 0x80;
	unsigned char hi = 0xBF;

	if (c >= 0xC2 && c <= 0xDF)
	{
		if (avail < 2 || (s[1] & 0xC0) != 0x80)
			return 0;
		return 2;
	}
	if (c >= 0xE0 && c <= 0xEF)
	{
		if (c == 0xE0)
			lo = 0xA0;			/* overlong */
		else if (c == 0xED)
			hi = 0x9F;			/* surrogates */
		if (avail < 3 || s[1] < lo || s[1] > hi || (s[2] & 0xC0) != 0x80)
			return 0;
		return 3;
	}
	if (c >= 0xF0 && c <= 0xF4)
	{
		if (c == 0xF0)
			lo = 0x90;			/* overlong */
		else if (c == 0xF4)
			hi = 0x8F;			/* above U+10FFFF */
		if (avail < 4 || s[1] < lo || s[1] > hi ||
			(s[2] & 0xC0) != 0x80 || (s[3] & 0xC0) != 0x80)
			return 0;
		return 4;
	}
	return 0;
}

/*
 * Consumes the line break at buf[pos] ('\r' or '\n', with a following '\n'
 * for \r\n) and returns the offset after it.
 */
static inline size_t
wam_csv_line_break(const unsigned char *buf, size_t len, size_t pos,
				   uint64_t *line, size_t *line_start)
{
	if (buf[pos] == '\r')
	{
		(*line)++;
		pos++;
		if (pos < len && buf[pos] == '\n')
			pos++;
	}
	else
	{
		/* the \n of a \r\n whose \r was counted already */
		if (!(pos > 0 && buf[pos - 1] == '\r'))
			(*line)++;
		pos++;
	}
	*line_start = pos;
	return pos;
}

/*
 * Offset of the first \r or \n at or after pos, or len.  memchr() is much
 * faster than a byte loop, but searching the whole rest of the input for
 * '\n' and then for '\r' would make every cut record of a file with \r line
 * breaks cost a scan to the end; searching in chunks keeps it linear.
 */
static size_t
wam_csv_find_eol(const unsigned char *buf, size_t len, size_t pos)
{
	while (pos < len)
	{
		size_t		chunk = len - pos < 65536 ? len - pos : 65536;
		const unsigned char *nl = memchr(buf + pos, '\n', chunk);
		const unsigned char *cr;

		if (nl)
			chunk = (size_t) (nl - (buf + pos));
		cr = memchr(buf + pos, '\r', chunk);
		if (cr)
			return (size_t) (cr - buf);
		if (nl)
			return (size_t) (nl - buf);
		pos += chunk;
	}
	return len;
}

int
wam_csv_next(WamCsvReader *r, WamCsvRecord *rec)
{
	const unsigned char *buf = (const unsigned char *) r->buf;
	const unsigned char *stop_unquoted = r->stop_unquoted;
	const unsigned char *stop_quoted = r->stop_quoted;
	size_t		len = r->len;
	size_t		pos = r->pos;
	uint64_t	line = r->line;
	size_t		line_start = r->line_start;
	char		delim = r->delim;
	size_t		stop;			/* first byte beyond the record limit */
	size_t		fstart;			/* first byte of the current field */
	size_t		cstart;			/* first content byte of a quoted field */
	size_t		escapes;		/* "" pairs in the current quoted field */
	size_t		nfields = 0;
	size_t		content = 0;
	size_t		n;
	unsigned char c;

	/* Skip blank lines: nothing, or only spaces and tabs, before a break. */
	for (;;)
	{
		size_t		q = pos;

		while (q < len && wam_csv_is_pad(buf[q], delim))
			q++;
		if (q >= len)
		{
			r->pos = len;
			return 0;
		}
		if (buf[q] != '\r' && buf[q] != '\n')
			break;
		pos = wam_csv_line_break(buf, len, q, &line, &line_start);
	}

	memset(rec, 0, sizeof(*rec));
	rec->start = pos;
	rec->line = line;
	rec->problem = WAM_CSV_OK;
	stop = (len - pos > r->max_record) ? pos + r->max_record : len;

/*
 * Remembers the first problem of a record; it does not end the record, the
 * scan goes on to find where the next one starts.
 */
#define WAM_CSV_NOTE(code) \
	do { \
		if (rec->problem == WAM_CSV_OK) \
		{ \
			rec->problem = (code); \
			rec->problem_line = line; \
			rec->problem_byte = pos - line_start + 1; \
			rec->problem_field = nfields + 1; \
		} \
	} while (0)

/*
 * A byte in a stop table that is neither structure nor quote: NUL, or the
 * first byte of a UTF-8 sequence.  A bad byte is stepped over alone, so it
 * can never swallow a delimiter or line break after it.
 */
#define WAM_CSV_CHECK_BYTE() \
	do { \
		if (buf[pos] == 0) \
		{ \
			WAM_CSV_NOTE(WAM_CSV_NUL_BYTE); \
			pos++; \
		} \
		else if ((n = wam_csv_utf8_length(buf + pos, len - pos)) == 0) \
		{ \
			WAM_CSV_NOTE(WAM_CSV_INVALID_UTF8); \
			pos++; \
		} \
		else \
			pos += n; \
	} while (0)

field_start:
	fstart = pos;
	while (pos < stop && wam_csv_is_pad(buf[pos], delim))
		pos++;
	if (pos < stop && buf[pos] == '"')
		goto quoted;
	/* the spaces are data of an unquoted field */

	/* unquoted: */
	for (;;)
	{
		while (pos < stop && !stop_unquoted[buf[pos]])
			pos++;
		if (pos >= stop)
		{
			content += pos - fstart;
			nfields++;
			goto at_stop;
		}
		c = buf[pos];
		if (c == (unsigned char) delim)
		{
			content += pos - fstart;
			nfields++;
			pos++;
			goto field_start;
		}
		if (c == '\r' || c == '\n')
		{
			content += pos - fstart;
			nfields++;
			goto record_end;
		}
		WAM_CSV_CHECK_BYTE();
	}

quoted:
	{
		uint64_t	quote_line = line;
		size_t		quote_byte = pos - line_start + 1;

		pos++;
		cstart = pos;
		escapes = 0;
		for (;;)
		{
			while (pos < stop && !stop_quoted[buf[pos]])
				pos++;
			if (pos >= stop)
			{
				if (stop == len)
				{
					/* the rest of the input is this one broken record */
					rec->problem = WAM_CSV_UNTERMINATED_QUOTE;
					rec->problem_line = quote_line;
					rec->problem_byte = quote_byte;
					rec->problem_field = nfields + 1;
					rec->end = len;
					rec->next = len;
					rec->end_line = line;
					goto done;
				}
				goto too_long;
			}
			c = buf[pos];
			if (c == '"')
			{
				if (pos + 1 < stop && buf[pos + 1] == '"')
				{
					escapes++;
					pos += 2;
					continue;
				}
				content += pos - cstart - escapes;
				pos++;
				break;
			}
			if (c == '\r')
			{
				line++;
				pos++;
				line_start = pos;
				continue;
			}
			if (c == '\n')
			{
				/* pos > 0: the opening quote comes before */
				if (buf[pos - 1] != '\r')
					line++;
				pos++;
				line_start = pos;
				continue;
			}
			WAM_CSV_CHECK_BYTE();
		}
	}

	/* after the closing quote: only padding, then delimiter or line break */
	while (pos < stop && wam_csv_is_pad(buf[pos], delim))
		pos++;
	if (pos >= stop)
	{
		nfields++;
		goto at_stop;
	}
	c = buf[pos];
	if (c == (unsigned char) delim)
	{
		nfields++;
		pos++;
		goto field_start;
	}
	if (c == '\r' || c == '\n')
	{
		nfields++;
		goto record_end;
	}

	/*
	 * `"ab"c`.  Read on as if the field were unquoted from here, which is
	 * what a lenient reader would make of it, so the record ends where the
	 * user most likely meant it to.
	 */
	WAM_CSV_NOTE(WAM_CSV_JUNK_AFTER_QUOTE);
	fstart = pos;
	for (;;)
	{
		while (pos < stop && !stop_unquoted[buf[pos]])
			pos++;
		if (pos >= stop)
			goto at_stop;
		c = buf[pos];
		if (c == (unsigned char) delim)
		{
			nfields++;
			pos++;
			goto field_start;
		}
		if (c == '\r' || c == '\n')
			goto record_end;
		WAM_CSV_CHECK_BYTE();
	}

at_stop:

	/*
	 * Outside quotes the scan stopped at the limit or the end of the input.
	 * The record is complete if exactly there comes the end of the input or
	 * a line break; a multi-byte character can overshoot the limit.
	 */
	if (pos == stop && (pos == len || buf[pos] == '\r' || buf[pos] == '\n'))
		goto record_end;

too_long:
	/*
	 * Skip to the end of the physical line holding the first byte over the
	 * limit, without looking at what is in between.  If the limit was passed
	 * inside quotes because of a stray quote, the lines after it are ordinary
	 * records again, so reading resumes outside quotes on the next line.
	 */
	pos = wam_csv_find_eol(buf, len, pos);
	rec->problem = WAM_CSV_TOO_LONG;
	rec->problem_line = 0;
	rec->problem_byte = 0;
	rec->problem_field = 0;
	/* fall into record_end */

record_end:
	rec->end = pos;
	if (pos < len)
	{
		pos = wam_csv_line_break(buf, len, pos, &line, &line_start);
		rec->end_line = line - 1;
	}
	else
		rec->end_line = line;
	rec->next = pos;

done:
	if (rec->problem == WAM_CSV_OK)
	{
		rec->nfields = nfields;
		rec->content_bytes = content;
	}
	else
	{
		rec->nfields = 0;
		rec->content_bytes = 0;
	}
	r->pos = rec->next;
	r->line = line;
	r->line_start = line_start;
	return 1;

#undef WAM_CSV_NOTE
#undef WAM_CSV_CHECK_BYTE
}

void
wam_csv_fields_init(WamCsvFields *it, const WamCsvReader *r,
					const WamCsvRecord *rec)
{
	it->buf = r->buf;
	it->pos = rec->start;
	it->end = rec->end;
	it->delim = r->delim;
	it->done = 0;
}

/*
 * The record has passed wam_csv_next() without a problem, so this walk can
 * trust its structure: quoted fields are closed, and only padding lies
 * between a closing quote and the next delimiter.
 */
int
wam_csv_field_next(WamCsvFields *it, const char **data, size_t *len,
				   int *escaped)
{
	const char *buf = it->buf;
	size_t		end = it->end;
	size_t		fstart = it->pos;
	size_t		p = fstart;

	if (it->done)
		return 0;
	*escaped = 0;

	while (p < end && wam_csv_is_pad((unsigned char) buf[p], it->delim))
		p++;
	if (p < end && buf[p] == '"')
	{
		size_t		cstart = ++p;
		size_t		cend = end;

		for (;;)
		{
			const char *q = memchr(buf + p, '"', end - p);

			if (q == NULL)
			{
				/* not for a checked record; stay in bounds anyway */
				p = end;
				break;
			}
			p = (size_t) (q - buf);
			if (p + 1 < end && buf[p + 1] == '"')
			{
				*escaped = 1;
				p += 2;
				continue;
			}
			cend = p;
			p++;
			break;
		}
		while (p < end && wam_csv_is_pad((unsigned char) buf[p], it->delim))
			p++;
		*data = buf + cstart;
		*len = cend - cstart;
	}
	else
	{
		const char *d = memchr(buf + fstart, it->delim, end - fstart);

		p = d ? (size_t) (d - buf) : end;
		*data = buf + fstart;
		*len = p - fstart;
	}

	if (p < end)
		it->pos = p + 1;		/* past the delimiter */
	else
		it->done = 1;
	return 1;
}

size_t
wam_csv_unescape(const char *src, size_t len, char *dst)
{
	size_t		out = 0;

	while (len > 0)
	{
		const char *q = memchr(src, '"', len);
		size_t		n = q ? (size_t) (q - src) + 1 : len;

		memcpy(dst + out, src, n);
		out += n;
		src += n;
		len -= n;
		/* drop the second quote of a "" pair */
		if (q && len > 0 && *src == '"')
		{
			src++;
			len--;
		}
	}
	return out;
}
