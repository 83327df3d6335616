/*-------------------------------------------------------------------------
 *
 * fuzz_csv.c
 *	  libFuzzer target for the CSV tokenizer (src/csv.c).
 *
 * Build and run:
 *		clang -g -O1 -fsanitize=fuzzer,address,undefined \
 *			-fno-sanitize-recover=undefined -I src \
 *			test/fuzz/fuzz_csv.c src/csv.c -o fuzz_csv
 *		./fuzz_csv -max_len=4096 CORPUS_DIR
 *
 * Input layout: byte 0 picks the delimiter and the reader flags, byte 1 the
 * record limit (0 = none, else that many bytes, so the limit path is hit
 * often), the rest is the CSV.  The CSV is copied into a buffer of exactly
 * its size, so AddressSanitizer flags any read past its end.
 *
 * Checks, on every input:
 *	- the records come in order and every byte of the input belongs to
 *	  exactly one of: the skipped BOM, a skipped blank line, a record
 *	  (its bytes and its line break); blank lines hold only spaces, tabs
 *	  and line breaks, and every record starts at the start of a line;
 *	- each record's line number equals a line count done independently;
 *	- an independent, byte-at-a-time reference reader of the same dialect
 *	  agrees on every record: extent, problem, problem position and fields;
 *	- the field walk of an OK record yields the field count and byte total
 *	  the scan announced;
 *	- writing the fields of the OK records back as CSV (quoting where
 *	  needed) and reading that again gives the same fields, all OK.
 *
 * Failed checks call abort() so that they fire however this is compiled.
 *
 * test/fuzz/fuzz_csv.c
 *
 *-------------------------------------------------------------------------
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "csv.h"

#define CHECK(cond) \
	do { \
		if (!(cond)) \
		{ \
			fprintf(stderr, "fuzz_csv: check failed: %s (%s:%d)\n", \
					#cond, __FILE__, __LINE__); \
			abort(); \
		} \
	} while (0)

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char delims[8] = {',', '\t', ';', '|', ' ', ',', ':', 'x'};

/* ---------------------------------------------------------------- buffers */

typedef struct Buf
{
	char	   *data;
	size_t		len;
	size_t		cap;
} Buf;

static void
buf_put(Buf *b, const void *p, size_t n)
{
	if (b->len + n > b->cap)
	{
		size_t		cap = b->cap ? b->cap : 64;

		while (cap < b->len + n)
			cap *= 2;
		b->data = realloc(b->data, cap);
		CHECK(b->data != NULL);
		b->cap = cap;
	}
	if (n > 0)
		memcpy(b->data + b->len, p, n);
	b->len += n;
}

static void
buf_putc(Buf *b, char c)
{
	buf_put(b, &c, 1);
}

/*
 * A parsed record as both readers describe it.  Fields are kept
 * concatenated in `text`, each preceded by its length (size_t).
 */
typedef struct Rec
{
	uint64_t	line;
	uint64_t	end_line;
	size_t		start;
	size_t		end;
	size_t		next;
	WamCsvProblem problem;
	uint64_t	problem_line;
	size_t		problem_byte;
	size_t		problem_field;
	size_t		nfields;
	Buf			text;
} Rec;

typedef struct RecList
{
	Rec		   *recs;
	size_t		n;
	size_t		cap;
} RecList;

static Rec *
reclist_add(RecList *l)
{
	if (l->n == l->cap)
	{
		l->cap = l->cap ? l->cap * 2 : 16;
		l->recs = realloc(l->recs, l->cap * sizeof(Rec));
		CHECK(l->recs != NULL);
	}
	memset(&l->recs[l->n], 0, sizeof(Rec));
	return &l->recs[l->n++];
}

static void
reclist_free(RecList *l)
{
	size_t		i;

	for (i = 0; i < l->n; i++)
		free(l->recs[i].text.data);
	free(l->recs);
	memset(l, 0, sizeof(*l));
}

static void
rec_add_field(Rec *r, const char *p, size_t n)
{
	buf_put(&r->text, &n, sizeof(n));
	buf_put(&r->text, p, n);
	r->nfields++;
}

/* ------------------------------------------------------- reader under test */

/*
 * Reads everything with src/csv.c and checks the structural invariants that
 * need no reference: order, byte accounting, field walk vs. scan totals.
 */
static void
read_all(const char *buf, size_t len, char delim, size_t max_record,
		 int flags, RecList *out)
{
	WamCsvReader r;
	WamCsvRecord rec;
	size_t		prev_next;
	size_t		first;
	int			guard = 0;

	wam_csv_init(&r, buf, len, delim, max_record, flags);
	prev_next = first = r.pos;
	CHECK(first == 0 || first == 3);

	while (wam_csv_next(&r, &rec))
	{
		Rec		   *o = reclist_add(out);
		size_t		i;

		CHECK(++guard <= (int) len + 1);
		/* order and bounds */
		CHECK(rec.start >= prev_next);
		CHECK(rec.start < rec.end || rec.problem != WAM_CSV_OK);
		CHECK(rec.start <= rec.end);
		CHECK(rec.end <= rec.next);
		CHECK(rec.next <= len);
		CHECK(rec.next > rec.start);
		CHECK(r.pos == rec.next);
		CHECK(rec.line >= 1 && rec.end_line >= rec.line);
		/* the gap before it is blank lines only ... */
		for (i = prev_next; i < rec.start; i++)
			CHECK(buf[i] == '\r' || buf[i] == '\n' ||
				  ((buf[i] == ' ' || buf[i] == '\t') && buf[i] != delim));
		/* ... so it starts at the start of a line */
		CHECK(rec.start == first ||
			  buf[rec.start - 1] == '\r' || buf[rec.start - 1] == '\n');
		/* what lies between end and next is one line break */
		if (rec.next > rec.end)
		{
			CHECK(buf[rec.end] == '\r' || buf[rec.end] == '\n');
			if (rec.next - rec.end == 2)
				CHECK(buf[rec.end] == '\r' && buf[rec.end + 1] == '\n');
			else
				CHECK(rec.next - rec.end == 1);
		}
		else
			CHECK(rec.end == len);
		if (rec.problem != WAM_CSV_TOO_LONG)
			CHECK(rec.end - rec.start <= max_record);
		/* cut at a line break inside quotes, the cut can be at the limit */
		if (rec.problem == WAM_CSV_TOO_LONG)
			CHECK(rec.end - rec.start >= max_record);
		if (rec.problem != WAM_CSV_OK && rec.problem != WAM_CSV_TOO_LONG)
		{
			CHECK(rec.problem_line >= rec.line);
			CHECK(rec.problem_line <= rec.end_line);
			CHECK(rec.problem_byte >= 1);
			CHECK(rec.problem_field >= 1);
		}

		o->line = rec.line;
		o->end_line = rec.end_line;
		o->start = rec.start;
		o->end = rec.end;
		o->next = rec.next;
		o->problem = rec.problem;
		o->problem_line = rec.problem_line;
		o->problem_byte = rec.problem_byte;
		o->problem_field = rec.problem_field;

		if (rec.problem == WAM_CSV_OK)
		{
			WamCsvFields it;
			const char *p;
			size_t		n;
			int			escaped;
			size_t		total = 0;
			char	   *tmp;

			CHECK(rec.nfields >= 1);
			CHECK(rec.content_bytes <= rec.end - rec.start);
			wam_csv_fields_init(&it, &r, &rec);
			while (wam_csv_field_next(&it, &p, &n, &escaped))
			{
				CHECK(p >= buf + rec.start && p + n <= buf + rec.end);
				if (escaped)
				{
					size_t		m;

					tmp = malloc(n + 1);
					CHECK(tmp != NULL);
					m = wam_csv_unescape(p, n, tmp);
					CHECK(m < n);
					rec_add_field(o, tmp, m);
					total += m;
					free(tmp);
				}
				else
				{
					rec_add_field(o, p, n);
					total += n;
				}
				CHECK(o->nfields <= rec.nfields);
			}
			CHECK(o->nfields == rec.nfields);
			CHECK(total == rec.content_bytes);
		}
		prev_next = rec.next;
	}
	/* after the last record only blank lines */
	CHECK(r.pos == len);
	for (; prev_next < len; prev_next++)
		CHECK(buf[prev_next] == '\r' || buf[prev_next] == '\n' ||
			  ((buf[prev_next] == ' ' || buf[prev_next] == '\t') &&
			   buf[prev_next] != delim));
	/* reading on at the end keeps saying "no more" */
	CHECK(wam_csv_next(&r, &rec) == 0);
}

/* ---------------------------------------------------------- reference */

/*
 * The reference reader follows the dialect in csv.h literally, one byte at
 * a time, with no tables, no limit-bounded loops and no shared code: it
 * reads each record as if there were no limit and applies the limit
 * afterwards.
 */
typedef struct Ref
{
	const unsigned char *b;
	size_t		len;
	char		delim;
	int			flags;
	size_t		bom;
	uint64_t   *lines;			/* lines[i]: line number of offset i */
} Ref;

static int
ref_pad(const Ref *x, unsigned char c)
{
	if (c == (unsigned char) x->delim)
		return 0;
	return c == ' ' || c == '\t';
}

static int
ref_brk(unsigned char c)
{
	return c == '\r' || c == '\n';
}

/* line number of every offset: 1 + the line breaks before it */
static void
ref_count_lines(Ref *x)
{
	size_t		k;

	x->lines = malloc((x->len + 1) * sizeof(uint64_t));
	CHECK(x->lines != NULL);
	x->lines[0] = 1;
	for (k = 0; k < x->len; k++)
	{
		x->lines[k + 1] = x->lines[k];
		if (x->b[k] == '\r')
			x->lines[k + 1]++;
		else if (x->b[k] == '\n' && !(k > 0 && x->b[k - 1] == '\r'))
			x->lines[k + 1]++;
	}
}

static uint64_t
ref_line(const Ref *x, size_t i)
{
	return x->lines[i];
}

/* 1-based byte of offset i within its line (the BOM is not counted) */
static size_t
ref_col(const Ref *x, size_t i)
{
	size_t		k = i;

	while (k > x->bom && !ref_brk(x->b[k - 1]))
		k--;
	return i - k + 1;
}

/* Decodes and range-checks a UTF-8 sequence; returns its length or 0. */
static size_t
ref_utf8(const Ref *x, size_t i)
{
	unsigned char c = x->b[i];
	size_t		n,
				k;
	uint32_t	cp;

	if (c < 0x80)
		return 1;
	if ((c & 0xE0) == 0xC0)
		n = 2, cp = c & 0x1F;
	else if ((c & 0xF0) == 0xE0)
		n = 3, cp = c & 0x0F;
	else if ((c & 0xF8) == 0xF0)
		n = 4, cp = c & 0x07;
	else
		return 0;
	if (i + n > x->len)
		return 0;
	for (k = 1; k < n; k++)
	{
		if ((x->b[i + k] & 0xC0) != 0x80)
			return 0;
		cp = (cp << 6) | (x->b[i + k] & 0x3F);
	}
	if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) ||
		(n == 4 && cp < 0x10000))
		return 0;				/* overlong */
	if (cp >= 0xD800 && cp <= 0xDFFF)
		return 0;
	if (cp > 0x10FFFF)
		return 0;
	return n;
}

/*
 * Content byte at *i: notes NUL / bad UTF-8, appends the byte(s) to field
 * text and advances.
 */
static void
ref_content(const Ref *x, size_t *i, Rec *r, Buf *field)
{
	unsigned char c = x->b[*i];
	size_t		n = 1;

	if (c == 0 && (x->flags & WAM_CSV_REJECT_NUL))
	{
		if (r->problem == WAM_CSV_OK)
		{
			r->problem = WAM_CSV_NUL_BYTE;
			r->problem_line = ref_line(x, *i);
			r->problem_byte = ref_col(x, *i);
			r->problem_field = r->nfields + 1;
		}
	}
	else if (c >= 0x80 && (x->flags & WAM_CSV_CHECK_UTF8))
	{
		n = ref_utf8(x, *i);
		if (n == 0)
		{
			n = 1;
			if (r->problem == WAM_CSV_OK)
			{
				r->problem = WAM_CSV_INVALID_UTF8;
				r->problem_line = ref_line(x, *i);
				r->problem_byte = ref_col(x, *i);
				r->problem_field = r->nfields + 1;
			}
		}
	}
	buf_put(field, x->b + *i, n);
	*i += n;
}

static size_t
ref_after_break(const Ref *x, size_t i)
{
	if (x->b[i] == '\r' && i + 1 < x->len && x->b[i + 1] == '\n')
		return i + 2;
	return i + 1;
}

static void
ref_read_all(const Ref *x, size_t max_record, RecList *out)
{
	size_t		pos = x->bom;

	for (;;)
	{
		size_t		q = pos;
		size_t		i;
		Rec		   *r;
		Buf			field = {0};
		Buf			fields = {0};
		size_t		nf = 0;
		int			unterminated = 0;

		/* blank lines */
		while (q < x->len && ref_pad(x, x->b[q]))
			q++;
		if (q >= x->len)
			break;
		if (ref_brk(x->b[q]))
		{
			pos = ref_after_break(x, q);
			continue;
		}

		r = reclist_add(out);
		r->start = pos;
		r->line = ref_line(x, pos);
		r->problem = WAM_CSV_OK;
		i = pos;

		/* one field per iteration */
		for (;;)
		{
			size_t		j = i;
			int			junk = 0;

			field.len = 0;
			while (j < x->len && ref_pad(x, x->b[j]))
				j++;
			if (j < x->len && x->b[j] == '"')
			{
				size_t		open = j;

				i = j + 1;
				for (;;)
				{
					if (i >= x->len)
					{
						unterminated = 1;
						r->problem_line = ref_line(x, open);
						r->problem_byte = ref_col(x, open);
						r->problem_field = r->nfields + 1;
						break;
					}
					if (x->b[i] == '"')
					{
						if (i + 1 < x->len && x->b[i + 1] == '"')
						{
							buf_putc(&field, '"');
							i += 2;
							continue;
						}
						i++;
						break;
					}
					if (ref_brk(x->b[i]) || x->b[i] == (unsigned char) x->delim)
					{
						buf_putc(&field, (char) x->b[i]);
						i++;
						continue;
					}
					ref_content(x, &i, r, &field);
				}
				if (unterminated)
					break;
				while (i < x->len && ref_pad(x, x->b[i]))
					i++;
				if (i < x->len && !ref_brk(x->b[i]) &&
					x->b[i] != (unsigned char) x->delim)
				{
					if (r->problem == WAM_CSV_OK)
					{
						r->problem = WAM_CSV_JUNK_AFTER_QUOTE;
						r->problem_line = ref_line(x, i);
						r->problem_byte = ref_col(x, i);
						r->problem_field = r->nfields + 1;
					}
					junk = 1;
				}
			}
			if (!(j < x->len && x->b[j] == '"') || junk)
			{
				/* unquoted: from i, the padding is data */
				while (i < x->len && !ref_brk(x->b[i]) &&
					   x->b[i] != (unsigned char) x->delim)
					ref_content(x, &i, r, &field);
			}
			/* the field ends at a delimiter, a line break or the end */
			buf_put(&fields, &field.len, sizeof(field.len));
			buf_put(&fields, field.data, field.len);
			nf++;
			r->nfields = nf;
			if (i < x->len && x->b[i] == (unsigned char) x->delim)
			{
				i++;
				continue;
			}
			break;
		}

		if (unterminated)
		{
			r->problem = WAM_CSV_UNTERMINATED_QUOTE;
			r->end = x->len;
		}
		else
			r->end = i;

		/* now the limit */
		if (r->end - r->start > max_record)
		{
			size_t		k = r->start + max_record;

			while (k < x->len && !ref_brk(x->b[k]))
				k++;
			r->end = k;
			r->problem = WAM_CSV_TOO_LONG;
			r->problem_line = 0;
			r->problem_byte = 0;
			r->problem_field = 0;
		}
		r->next = r->end < x->len ? ref_after_break(x, r->end) : r->end;
		/* the line of the record's last byte, or of where it ends */
		if (r->next > r->end)
			r->end_line = ref_line(x, r->next) - 1;
		else
			r->end_line = ref_line(x, r->end);

		if (r->problem == WAM_CSV_OK)
			r->text = fields;
		else
		{
			r->nfields = 0;
			free(fields.data);
		}
		free(field.data);
		pos = r->next;
	}
}

/* ---------------------------------------------------------- comparison */

static void
compare(const RecList *a, const RecList *b)
{
	size_t		i;

	CHECK(a->n == b->n);
	for (i = 0; i < a->n; i++)
	{
		const Rec  *x = &a->recs[i];
		const Rec  *y = &b->recs[i];

		CHECK(x->start == y->start);
		CHECK(x->end == y->end);
		CHECK(x->next == y->next);
		CHECK(x->line == y->line);
		CHECK(x->end_line == y->end_line);
		CHECK(x->problem == y->problem);
		CHECK(x->problem_line == y->problem_line);
		CHECK(x->problem_byte == y->problem_byte);
		CHECK(x->problem_field == y->problem_field);
		CHECK(x->nfields == y->nfields);
		CHECK(x->text.len == y->text.len);
		CHECK(x->text.len == 0 ||
			  memcmp(x->text.data, y->text.data, x->text.len) == 0);
	}
}

/* Iterates over the fields stored in a Rec. */
static int
rec_field(const Rec *r, size_t *off, const char **p, size_t *n)
{
	if (*off >= r->text.len)
		return 0;
	memcpy(n, r->text.data + *off, sizeof(*n));
	*p = r->text.data + *off + sizeof(*n);
	*off += sizeof(*n) + *n;
	return 1;
}

/*
 * Writes the OK records back as CSV: a field is quoted when it holds the
 * delimiter, a quote or a line break, when it starts with padding (which
 * could hide a quote after it or make the line blank), or when it is the
 * only field and empty.  The first field starting with a BOM is quoted too,
 * as a reader would skip it.
 */
static void
serialize(const RecList *l, char delim, Buf *out)
{
	size_t		i;

	for (i = 0; i < l->n; i++)
	{
		const Rec  *r = &l->recs[i];
		size_t		off = 0;
		const char *p;
		size_t		n;
		size_t		k = 0;

		if (r->problem != WAM_CSV_OK)
			continue;
		while (rec_field(r, &off, &p, &n))
		{
			int			quote = 0;
			size_t		j;

			for (j = 0; j < n; j++)
				if (p[j] == delim || p[j] == '"' || p[j] == '\r' || p[j] == '\n')
					quote = 1;
			if (n > 0 && (p[0] == ' ' || p[0] == '\t') && p[0] != delim)
				quote = 1;
			if (n == 0 && r->nfields == 1)
				quote = 1;
			if (out->len == 0 && n >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0)
				quote = 1;
			if (k++ > 0)
				buf_putc(out, delim);
			if (!quote)
				buf_put(out, p, n);
			else
			{
				buf_putc(out, '"');
				for (j = 0; j < n; j++)
				{
					if (p[j] == '"')
						buf_putc(out, '"');
					buf_putc(out, p[j]);
				}
				buf_putc(out, '"');
			}
		}
		/* vary the line breaks */
		buf_put(out, (i % 3 == 0) ? "\n" : (i % 3 == 1) ? "\r\n" : "\r",
				(i % 3 == 1) ? 2 : 1);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char		delim;
	int			flags;
	size_t		max_record;
	size_t		len;
	char	   *buf;
	RecList		got = {0};
	RecList		want = {0};
	RecList		again = {0};
	RecList		ok = {0};
	Buf			out = {0};
	Ref			x;
	size_t		i;

	if (size < 2)
		return 0;
	delim = delims[data[0] & 7];
	flags = (data[0] >> 3) & 7;
	max_record = data[1] == 0 ? SIZE_MAX : data[1];
	len = size - 2;
	buf = malloc(len ? len : 1);
	CHECK(buf != NULL);
	if (len)
		memcpy(buf, data + 2, len);

	read_all(buf, len, delim, max_record, flags, &got);

	x.b = (const unsigned char *) buf;
	x.len = len;
	x.delim = delim;
	x.flags = flags;
	x.bom = ((flags & WAM_CSV_SKIP_BOM) && len >= 3 &&
			 memcmp(buf, "\xEF\xBB\xBF", 3) == 0) ? 3 : 0;
	ref_count_lines(&x);
	ref_read_all(&x, max_record, &want);
	compare(&got, &want);
	free(x.lines);

	/* round trip of the OK records */
	serialize(&got, delim, &out);
	read_all(out.data ? out.data : "", out.len, delim, SIZE_MAX, flags, &again);
	for (i = 0; i < got.n; i++)
		if (got.recs[i].problem == WAM_CSV_OK)
		{
			Rec		   *r = reclist_add(&ok);

			r->nfields = got.recs[i].nfields;
			buf_put(&r->text, got.recs[i].text.data, got.recs[i].text.len);
		}
	CHECK(again.n == ok.n);
	for (i = 0; i < ok.n; i++)
	{
		CHECK(again.recs[i].problem == WAM_CSV_OK);
		CHECK(again.recs[i].nfields == ok.recs[i].nfields);
		CHECK(again.recs[i].text.len == ok.recs[i].text.len);
		CHECK(ok.recs[i].text.len == 0 ||
			  memcmp(again.recs[i].text.data, ok.recs[i].text.data,
					 ok.recs[i].text.len) == 0);
	}

	reclist_free(&got);
	reclist_free(&want);
	reclist_free(&again);
	reclist_free(&ok);
	free(out.data);
	free(buf);
	return 0;
}
