/*-------------------------------------------------------------------------
 *
 * csv_sql.c
 *	  wam.csv_rows(): the records of a CSV import file as rows.
 *
 * One row per record, the header included, so the caller (wam.import_csv)
 * sees every line it has to account for: line_no is the physical line the
 * record starts on, fields its fields, and problem says why a record could
 * not be read (fields is then NULL).  A broken record never stops the read;
 * the next one is read as usual.
 *
 * The rows go into a tuplestore (materialize mode), which spills to disk
 * beyond work_mem, so a million-row import needs no more memory than one
 * record.  Each row's text[] is built in place with a single allocation,
 * its size known from the tokenizer's first pass over the record.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/tuplestore.h"

#include "csv.h"

PG_FUNCTION_INFO_V1(wam_csv_rows_text);
PG_FUNCTION_INFO_V1(wam_csv_rows_bytea);

/* Limits of max_record_bytes */
#define WAM_CSV_MIN_RECORD_BYTES	1024
#define WAM_CSV_MAX_RECORD_BYTES	(1024 * 1024 * 1024)

/*
 * Largest text[] returned for one record.  The row around it (line_no, the
 * null bitmap, tuple headers) must still fit in a MaxAllocSize allocation.
 */
#define WAM_CSV_MAX_ARRAY_BYTES		(MaxAllocSize - 1024)

static char
wam_csv_get_delimiter(text *arg)
{
	char		c;

	if (VARSIZE_ANY_EXHDR(arg) != 1 ||
		IS_HIGHBIT_SET(*VARDATA_ANY(arg)))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("CSV delimiter must be a single one-byte character")));
	c = *VARDATA_ANY(arg);
	if (c == '"' || c == '\r' || c == '\n')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("CSV delimiter cannot be a double quote, newline or carriage return")));
	return c;
}

static void
wam_csv_check_max_record(int32 max_record)
{
	if (max_record < WAM_CSV_MIN_RECORD_BYTES ||
		max_record > WAM_CSV_MAX_RECORD_BYTES)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("max_record_bytes must be between %d and %d, not %d",
						WAM_CSV_MIN_RECORD_BYTES, WAM_CSV_MAX_RECORD_BYTES,
						max_record)));
}

/*
 * The reason a record could not be read, for the problem column.  Positions
 * are 1-based; "byte N of line L" counts bytes from the start of that
 * physical line (after the BOM on line 1), as a hex viewer or an editor
 * showing byte columns would.
 */
static char *
wam_csv_problem_text(const WamCsvRecord *rec, int32 max_record)
{
	switch (rec->problem)
	{
		case WAM_CSV_OK:
			break;
		case WAM_CSV_UNTERMINATED_QUOTE:
			return psprintf("unterminated quoted field starting at byte %zu of line " UINT64_FORMAT,
							rec->problem_byte, rec->problem_line);
		case WAM_CSV_JUNK_AFTER_QUOTE:
			return psprintf("unexpected character after the closing quote of field %zu at byte %zu of line " UINT64_FORMAT,
							rec->problem_field, rec->problem_byte,
							rec->problem_line);
		case WAM_CSV_TOO_LONG:
			return psprintf("record longer than %d bytes; skipped to the end of line " UINT64_FORMAT,
							max_record, rec->end_line);
		case WAM_CSV_INVALID_UTF8:
			return psprintf("invalid UTF-8 at byte %zu of line " UINT64_FORMAT,
							rec->problem_byte, rec->problem_line);
		case WAM_CSV_NUL_BYTE:
			return psprintf("NUL character at byte %zu of line " UINT64_FORMAT,
							rec->problem_byte, rec->problem_line);
	}
	return pstrdup("unknown problem");
}

/*
 * Builds the text[] of a record that was read without a problem, or returns
 * NULL if it would be too large to return (only possible with a very large
 * max_record_bytes).  The layout is exactly what construct_array() makes:
 * a 1-D array without a null bitmap, each element with a 4-byte header and
 * padded to int alignment.
 */
static ArrayType *
wam_csv_fields_array(const WamCsvReader *reader, const WamCsvRecord *rec)
{
	uint64		bound;
	ArrayType  *a;
	char	   *base;
	size_t		off;
	WamCsvFields it;
	const char *field;
	size_t		flen;
	int			escaped;

	/* the worst case of padding, so one allocation is enough */
	bound = (uint64) ARR_OVERHEAD_NONULLS(1) +
		(uint64) rec->nfields * (VARHDRSZ + ALIGNOF_INT - 1) +
		(uint64) rec->content_bytes;
	if (rec->nfields > MaxArraySize || bound > WAM_CSV_MAX_ARRAY_BYTES)
		return NULL;

	a = (ArrayType *) palloc(bound);
	a->ndim = 1;
	a->dataoffset = 0;
	a->elemtype = TEXTOID;
	ARR_DIMS(a)[0] = (int) rec->nfields;
	ARR_LBOUND(a)[0] = 1;

	base = (char *) a;
	off = ARR_OVERHEAD_NONULLS(1);
	wam_csv_fields_init(&it, reader, rec);
	while (wam_csv_field_next(&it, &field, &flen, &escaped))
	{
		char	   *elem = base + off;
		size_t		n;

		if (escaped)
			n = wam_csv_unescape(field, flen, elem + VARHDRSZ);
		else
		{
			memcpy(elem + VARHDRSZ, field, flen);
			n = flen;
		}
		SET_VARSIZE(elem, VARHDRSZ + n);
		off += VARHDRSZ + n;
		/* zeroed padding keeps equal arrays byte-equal */
		while (off != INTALIGN(off))
			base[off++] = '\0';
	}
	Assert(off <= bound);
	SET_VARSIZE(a, off);
	return a;
}

/*
 * Reads all records of data[0 .. len) into the function's tuplestore.
 */
static void
wam_csv_rows_internal(FunctionCallInfo fcinfo, const char *data, size_t len,
					  char delim, int32 max_record, int flags)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	MemoryContext rowcxt;
	WamCsvReader reader;
	WamCsvRecord rec;

	InitMaterializedSRF(fcinfo, 0);

	/* everything of one row lives here and is reset after the row */
	rowcxt = AllocSetContextCreate(CurrentMemoryContext,
								   "wam.csv_rows row",
								   ALLOCSET_DEFAULT_SIZES);

	wam_csv_init(&reader, data, len, delim, (size_t) max_record, flags);
	while (wam_csv_next(&reader, &rec))
	{
		MemoryContext oldcxt;
		Datum		values[3];
		bool		nulls[3] = {false, false, false};
		char	   *problem = NULL;

		CHECK_FOR_INTERRUPTS();
		oldcxt = MemoryContextSwitchTo(rowcxt);

		values[0] = Int64GetDatum((int64) rec.line);
		if (rec.problem == WAM_CSV_OK)
		{
			ArrayType  *fields = wam_csv_fields_array(&reader, &rec);

			if (fields != NULL)
				values[1] = PointerGetDatum(fields);
			else
				problem = psprintf("record of %zu fields and %zu bytes is too large to return",
								   rec.nfields, rec.end - rec.start);
		}
		else
			problem = wam_csv_problem_text(&rec, max_record);

		if (problem != NULL)
		{
			nulls[1] = true;
			values[1] = (Datum) 0;
			values[2] = CStringGetTextDatum(problem);
		}
		else
		{
			nulls[2] = true;
			values[2] = (Datum) 0;
		}
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc,
							 values, nulls);

		MemoryContextSwitchTo(oldcxt);
		MemoryContextReset(rowcxt);
	}
	MemoryContextDelete(rowcxt);
}

/*
 * The BOM is only a BOM when the text is UTF-8; in a database of another
 * encoding the same three bytes are characters of the first field.
 */
static bool
wam_csv_database_is_utf8(void)
{
	int			enc = GetDatabaseEncoding();

	return enc == PG_UTF8 || enc == PG_SQL_ASCII;
}

/*
 * wam.csv_rows(data text, delimiter text, max_record_bytes int)
 *
 * The text is valid in the database encoding already.  Every server
 * encoding keeps ASCII bytes out of multi-byte characters, so the tokenizer
 * can split on ASCII delimiters, quotes and line breaks in any of them.
 */
Datum
wam_csv_rows_text(PG_FUNCTION_ARGS)
{
	char		delim = wam_csv_get_delimiter(PG_GETARG_TEXT_PP(1));
	int32		max_record = PG_GETARG_INT32(2);
	text	   *data;

	wam_csv_check_max_record(max_record);
	data = PG_GETARG_TEXT_PP(0);
	wam_csv_rows_internal(fcinfo, VARDATA_ANY(data), VARSIZE_ANY_EXHDR(data),
						  delim, max_record,
						  wam_csv_database_is_utf8() ? WAM_CSV_SKIP_BOM : 0);
	return (Datum) 0;
}

/*
 * wam.csv_rows(data bytea, delimiter text, max_record_bytes int)
 *
 * Raw file bytes, checked as UTF-8 record by record, so that a file with a
 * few mis-encoded lines still imports its good ones (convert_from() would
 * reject the whole file).  The fields are returned as they are, which is
 * only right when the database encoding is UTF-8 (or SQL_ASCII).
 */
Datum
wam_csv_rows_bytea(PG_FUNCTION_ARGS)
{
	char		delim = wam_csv_get_delimiter(PG_GETARG_TEXT_PP(1));
	int32		max_record = PG_GETARG_INT32(2);
	bytea	   *data;

	wam_csv_check_max_record(max_record);
	if (!wam_csv_database_is_utf8())
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("wam.csv_rows(bytea) requires a database with encoding UTF8"),
				 errdetail("The database encoding is %s.",
						   GetDatabaseEncodingName()),
				 errhint("Convert the file with convert_from(data, 'UTF8') and pass the text.")));
	data = PG_GETARG_BYTEA_PP(0);
	wam_csv_rows_internal(fcinfo, VARDATA_ANY(data), VARSIZE_ANY_EXHDR(data),
						  delim, max_record,
						  WAM_CSV_CHECK_UTF8 | WAM_CSV_REJECT_NUL |
						  WAM_CSV_SKIP_BOM);
	return (Datum) 0;
}
