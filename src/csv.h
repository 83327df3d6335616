/*-------------------------------------------------------------------------
 *
 * csv.h
 *	  Streaming CSV tokenizer for contact imports.
 *
 * Deliberately free of PostgreSQL headers, like segment_text.h: the
 * tokenizer works on a (buffer, length) pair, allocates nothing and reports
 * problems as codes and positions, so the same code runs inside the server
 * (csv_sql.c) and under libFuzzer (test/fuzz/fuzz_csv.c).
 *
 * Reading is done in two steps per record:
 *
 *	1. wam_csv_next() finds the next record: where it starts and ends, its
 *	   first line, how many fields it has and how many bytes they hold once
 *	   unquoted, or what is wrong with it.  Nothing is copied, so a 10 MB
 *	   line costs one linear scan however it ends.
 *	2. For a record without a problem, wam_csv_fields_init() and
 *	   wam_csv_field_next() walk its fields, and wam_csv_unescape() copies a
 *	   quoted field's content with "" turned into ".  The caller knows the
 *	   exact output size from step 1 and so can allocate once per record.
 *
 * Dialect (RFC 4180, with the leniencies spreadsheet exports need):
 *	- fields are separated by a one-byte delimiter, records by \n, \r\n or
 *	  a lone \r;
 *	- a field whose first byte other than space or tab is a double quote is
 *	  quoted: the spaces/tabs before the opening quote and after the closing
 *	  quote are dropped, "" inside stands for ", and delimiters and line
 *	  breaks inside are data;
 *	- any other field is taken as it is, spaces and quotes included (`a"b`
 *	  is the three characters a"b; the caller trims);
 *	- a UTF-8 byte order mark at the very start is skipped
 *	  (WAM_CSV_SKIP_BOM);
 *	- lines that are empty or hold only spaces and tabs are skipped without
 *	  producing a record.
 * Space and tab are only "padding" when they are not the delimiter.
 *
 *-------------------------------------------------------------------------
 */
#ifndef WAM_CSV_H
#define WAM_CSV_H

#include <stddef.h>
#include <stdint.h>

/* Flags for wam_csv_init() */
#define WAM_CSV_CHECK_UTF8	0x01	/* reject records with invalid UTF-8 */
#define WAM_CSV_REJECT_NUL	0x02	/* reject records containing a 0 byte */
#define WAM_CSV_SKIP_BOM	0x04	/* skip a UTF-8 BOM at the very start */

/*
 * What is wrong with a record.  The record's fields are not available; the
 * reader has already moved past it, to where the next record can start.
 */
typedef enum WamCsvProblem
{
	WAM_CSV_OK = 0,
	WAM_CSV_UNTERMINATED_QUOTE, /* a quoted field runs to the end of input;
								 * the record is the rest of the input */
	WAM_CSV_JUNK_AFTER_QUOTE,	/* `"ab"c`: the record ends where it would
								 * if c were an ordinary character */
	WAM_CSV_TOO_LONG,			/* more than max_record bytes; the record is
								 * cut at the end of the physical line where
								 * the limit was passed */
	WAM_CSV_INVALID_UTF8,		/* with WAM_CSV_CHECK_UTF8 */
	WAM_CSV_NUL_BYTE			/* with WAM_CSV_REJECT_NUL */
} WamCsvProblem;

typedef struct WamCsvReader
{
	const char *buf;
	size_t		len;
	size_t		pos;			/* where the next record or blank line starts */
	size_t		max_record;		/* longest record, in bytes, not counting its
								 * line break */
	uint64_t	line;			/* 1-based line number at pos */
	size_t		line_start;		/* offset of the first byte of that line */
	char		delim;
	int			flags;
	/* bytes that end a run of ordinary bytes outside/inside quotes */
	unsigned char stop_unquoted[256];
	unsigned char stop_quoted[256];
} WamCsvReader;

typedef struct WamCsvRecord
{
	uint64_t	line;			/* physical line where the record starts */
	uint64_t	end_line;		/* physical line where it ends */
	size_t		start;			/* offset of its first byte */
	size_t		end;			/* offset just past its last byte (its line
								 * break, if any, is not part of it) */
	size_t		next;			/* offset just past its line break */
	size_t		nfields;		/* number of fields (OK records only) */
	size_t		content_bytes;	/* total bytes of the fields once unquoted
								 * (OK records only) */
	WamCsvProblem problem;
	/* where the problem is (not for WAM_CSV_TOO_LONG) */
	uint64_t	problem_line;
	size_t		problem_byte;	/* 1-based byte within problem_line */
	size_t		problem_field;	/* 1-based field number */
} WamCsvRecord;

/*
 * Prepares to read buf[0 .. len).  delim must not be '"', '\r' or '\n';
 * max_record must be at least 1.
 */
extern void wam_csv_init(WamCsvReader *r, const char *buf, size_t len,
						 char delim, size_t max_record, int flags);

/*
 * Reads the next record (skipping blank lines before it) into *rec and
 * returns 1, or returns 0 at the end of the input.  Runs in time linear in
 * the bytes consumed.
 */
extern int	wam_csv_next(WamCsvReader *r, WamCsvRecord *rec);

/* Walks the fields of a record that wam_csv_next() returned as WAM_CSV_OK. */
typedef struct WamCsvFields
{
	const char *buf;
	size_t		pos;
	size_t		end;
	char		delim;
	int			done;
} WamCsvFields;

extern void wam_csv_fields_init(WamCsvFields *it, const WamCsvReader *r,
								const WamCsvRecord *rec);

/*
 * Returns 1 and the next field's raw content (*data, *len), or 0 after the
 * last field.  For a quoted field the content is what lies between the
 * quotes, and *escaped is set when it contains "" pairs, which
 * wam_csv_unescape() collapses.
 */
extern int	wam_csv_field_next(WamCsvFields *it, const char **data,
							   size_t *len, int *escaped);

/*
 * Copies the raw content of a quoted field to dst with every "" turned into
 * ", and returns the number of bytes written (at most len).
 */
extern size_t wam_csv_unescape(const char *src, size_t len, char *dst);

#endif							/* WAM_CSV_H */
