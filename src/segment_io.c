/*-------------------------------------------------------------------------
 *
 * segment_io.c
 *	  Text and binary I/O of wam.segment and its casts.
 *
 * Text input accepts both forms regardless of wam.segment_output_format:
 *	  {1,2,3}			ids in any order, duplicates allowed
 *	  \x3a300000...		hex of the Roaring portable serialization
 * so a value printed under either setting reads back (pg_dump, Citus
 * shipping aggregate states as text).  Binary send/recv use the portable
 * serialization as it is, readable by any Roaring implementation.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "libpq/pqformat.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"

#include "segment.h"
#include "segment_text.h"
#include "wam_hex.h"
#include "segment_portable.h"

PG_FUNCTION_INFO_V1(wam_segment_in);
PG_FUNCTION_INFO_V1(wam_segment_out);
PG_FUNCTION_INFO_V1(wam_segment_recv);
PG_FUNCTION_INFO_V1(wam_segment_send);
PG_FUNCTION_INFO_V1(wam_segment_from_int4_array);
PG_FUNCTION_INFO_V1(wam_segment_from_int8_array);
PG_FUNCTION_INFO_V1(wam_segment_to_int4_array);
PG_FUNCTION_INFO_V1(wam_segment_to_int8_array);
PG_FUNCTION_INFO_V1(wam_segment_from_bytea);
PG_FUNCTION_INFO_V1(wam_segment_to_bytea);
PG_FUNCTION_INFO_V1(wam_segment_is_valid_bytea);

/* Longest piece of bad input quoted back in an error message. */
#define WAM_QUOTE_MAX	64

/* Ids collected before a bulk add into the bitmap. */
#define WAM_ID_BUFFER	4096

/*
 * Collects parsed ids in a small buffer and adds them in bulk; sorted runs
 * (the common case) go in fast through roaring_bitmap_add_many.
 */
typedef struct WamIdCollector
{
	roaring_bitmap_t *bm;
	int			n;
	uint32		buf[WAM_ID_BUFFER];
} WamIdCollector;

static void
wam_collect_flush(WamIdCollector *c)
{
	if (c->n > 0)
		roaring_bitmap_add_many(c->bm, c->n, c->buf);
	c->n = 0;
	/* every WAM_ID_BUFFER ids of a long literal or array */
	CHECK_FOR_INTERRUPTS();
}

static void
wam_collect_emit(void *arg, uint32_t value)
{
	WamIdCollector *c = (WamIdCollector *) arg;

	c->buf[c->n++] = value;
	if (c->n == WAM_ID_BUFFER)
		wam_collect_flush(c);
}

/*
 * wam_quote_input returns at most WAM_QUOTE_MAX bytes of the input (cut on a
 * character boundary) for error messages, so a 10 MB literal does not become
 * a 10 MB log line.
 */
static char *
wam_quote_input(const char *str)
{
	size_t		len = strlen(str);
	int			cut;

	if (len <= WAM_QUOTE_MAX)
		return pstrdup(str);
	cut = pg_mbcliplen(str, len, WAM_QUOTE_MAX);
	return psprintf("%.*s...", cut, str);
}

/*
 * wam_segment_in_hex decodes "\x<hex>" (whitespace around allowed) and
 * validates the portable bytes.
 */
static WamSegmentFlat *
wam_segment_in_hex(const char *str, const char *hex)
{
	size_t		len = strlen(hex);
	char	   *bytes;
	size_t		nbytes = 0;
	size_t		i;

	while (len > 0 && isspace((unsigned char) hex[len - 1]))
		len--;
	if (len % 2 != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
				 errmsg("invalid input syntax for type wam.segment: \"%s\"",
						wam_quote_input(str)),
				 errdetail("Hexadecimal input must have an even number of digits.")));
	bytes = palloc(len / 2 + 1);
	for (i = 0; i < len; i += 2)
	{
		int			hi = wam_hex_digit(hex[i]);
		int			lo = wam_hex_digit(hex[i + 1]);

		if (hi < 0 || lo < 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
					 errmsg("invalid input syntax for type wam.segment: \"%s\"",
							wam_quote_input(str)),
					 errdetail("Invalid hexadecimal digit at position %zu.",
							   (size_t) (hex - str) + i + (hi < 0 ? 1 : 2))));
		bytes[nbytes++] = (char) ((hi << 4) | lo);
	}
	return wam_segment_from_portable(bytes, nbytes);
}

/*
 * wam_segment_in reads "{1,2,3}" or "\x<portable hex>".
 */
Datum
wam_segment_in(PG_FUNCTION_ARGS)
{
	char	   *str = PG_GETARG_CSTRING(0);
	const char *p = str;
	WamIdCollector *c;
	WamTextError err;
	size_t		errpos = 0;

	while (isspace((unsigned char) *p))
		p++;
	if (p[0] == '\\' && (p[1] == 'x' || p[1] == 'X'))
		PG_RETURN_POINTER(wam_segment_in_hex(str, p + 2));

	c = palloc(sizeof(WamIdCollector));
	c->bm = wam_bitmap_new();
	c->n = 0;
	err = wam_segment_text_parse(str, wam_collect_emit, c, &errpos);
	if (err == WAM_TEXT_OUT_OF_RANGE || err == WAM_TEXT_NEGATIVE)
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("customer id out of range in wam.segment literal: \"%s\"",
						wam_quote_input(str)),
				 errdetail("%s Error at position %zu.",
						   wam_segment_text_error_detail(err), errpos + 1)));
	if (err != WAM_TEXT_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
				 errmsg("invalid input syntax for type wam.segment: \"%s\"",
						wam_quote_input(str)),
				 errdetail("%s Error at position %zu.",
						   wam_segment_text_error_detail(err), errpos + 1)));
	wam_collect_flush(c);
	PG_RETURN_POINTER(wam_segment_flatten(c->bm));
}

/*
 * wam_segment_text_length is the exact length of the "{1,2,3}" form: the
 * braces, a comma between members and each member's digits (counted with
 * rank queries: the members of at least 2 digits are those above 9, ...).
 */
static uint64
wam_segment_text_length(const roaring_bitmap_t *bm, uint64 card)
{
	uint64		len;
	uint32		p10 = 10;
	int			d;

	if (card == 0)
		return 2;
	len = 2 + (card - 1) + card;
	for (d = 1; d <= 9; d++, p10 *= 10)
		len += card - roaring_bitmap_rank(bm, p10 - 1);
	return len;
}

/*
 * wam_segment_out_array prints "{1,2,3}" streaming through the bitmap in
 * batches, so printing never materialises an id array.  The exact length is
 * known first: a segment whose text would not fit in a text value fails at
 * once instead of after building a gigabyte of it.
 */
static char *
wam_segment_out_array(const roaring_bitmap_t *bm)
{
	roaring_uint32_iterator_t it;
	uint32		batch[1024];
	uint32		n;
	uint64		card = roaring_bitmap_get_cardinality(bm);
	uint64		need = wam_segment_text_length(bm, card);
	char	   *out;
	char	   *p;

	if (need > MaxAllocSize - VARHDRSZ)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("wam.segment is too large to print as text"),
				 errdetail("The segment has " UINT64_FORMAT " members; its text form needs " UINT64_FORMAT " bytes, the limit is %zu.",
						   card, need, (size_t) (MaxAllocSize - VARHDRSZ)),
				 errhint("Set wam.segment_output_format to 'hex', or use wam.segment_members() or binary transfer.")));
	out = palloc(need + 1);
	p = out;
	*p++ = '{';
	roaring_init_iterator(bm, &it);
	while ((n = roaring_read_uint32_iterator(&it, batch, lengthof(batch))) > 0)
	{
		uint32		i;

		for (i = 0; i < n; i++)
		{
			if (p != out + 1)
				*p++ = ',';
			p += pg_ultoa_n(batch[i], p);
		}
		CHECK_FOR_INTERRUPTS();
	}
	*p++ = '}';
	*p = '\0';
	if ((uint64) (p - out) != need)
		elog(ERROR, "wam_segment_out_array: wrote %zu bytes, expected " UINT64_FORMAT,
			 (size_t) (p - out), need);
	return out;
}

static char *
wam_segment_out_hex(const WamSegmentFlat *flat)
{
	static const char digits[] = "0123456789abcdef";
	size_t		len = WAM_SEGMENT_DATA_LEN(flat);
	char	   *out;
	size_t		i;

	/* "\x", two digits a byte, and it must still fit in a text value */
	if (len > (MaxAllocSize - VARHDRSZ - 2) / 2)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("wam.segment is too large to print as hexadecimal"),
				 errdetail("The serialized bitmap has %zu bytes; hexadecimal output takes at most %zu.",
						   len, (size_t) ((MaxAllocSize - VARHDRSZ - 2) / 2)),
				 errhint("Set wam.segment_output_format to 'array', or use binary transfer.")));
	out = palloc(len * 2 + 3);
	out[0] = '\\';
	out[1] = 'x';
	for (i = 0; i < len; i++)
	{
		unsigned char b = (unsigned char) flat->data[i];

		out[2 + 2 * i] = digits[b >> 4];
		out[3 + 2 * i] = digits[b & 0xF];
	}
	out[2 + 2 * len] = '\0';
	return out;
}

/*
 * wam_segment_out prints the segment in the format chosen by
 * wam.segment_output_format.
 */
Datum
wam_segment_out(PG_FUNCTION_ARGS)
{
	Datum		d = PG_GETARG_DATUM(0);

	if (wam_segment_output_format == WAM_SEGMENT_OUTPUT_HEX)
		PG_RETURN_CSTRING(wam_segment_out_hex(wam_segment_detoast(d)));
	PG_RETURN_CSTRING(wam_segment_out_array(wam_segment_read(d)));
}

/*
 * wam_segment_recv reads the portable serialization and validates it as
 * strictly as text input does: binary input is never trusted.
 */
Datum
wam_segment_recv(PG_FUNCTION_ARGS)
{
	StringInfo	buf = (StringInfo) PG_GETARG_POINTER(0);
	const char *bytes;
	int			len = buf->len - buf->cursor;

	bytes = pq_getmsgbytes(buf, len);
	PG_RETURN_POINTER(wam_segment_from_portable(bytes, len));
}

Datum
wam_segment_send(PG_FUNCTION_ARGS)
{
	WamSegmentFlat *flat = wam_segment_detoast(PG_GETARG_DATUM(0));
	StringInfoData buf;

	pq_begintypsend(&buf);
	pq_sendbytes(&buf, flat->data, WAM_SEGMENT_DATA_LEN(flat));
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

/* -------- casts -------- */

/*
 * wam_segment_from_array builds a segment from an int4[] or int8[]; NULL
 * elements and ids outside 0..4294967295 are errors, not silently dropped.
 */
static Datum
wam_segment_from_array(ArrayType *arr, Oid elemtype)
{
	WamIdCollector *c;
	ArrayIterator it;
	Datum		value;
	bool		isnull;

	c = palloc(sizeof(WamIdCollector));
	c->bm = wam_bitmap_new();
	c->n = 0;
	it = array_create_iterator(arr, 0, NULL);
	while (array_iterate(it, &value, &isnull))
	{
		int64		id;

		if (isnull)
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("array of customer ids must not contain nulls")));
		id = (elemtype == INT4OID) ? DatumGetInt32(value) : DatumGetInt64(value);
		wam_collect_emit(c, wam_segment_check_id(id));
	}
	array_free_iterator(it);
	wam_collect_flush(c);
	return PointerGetDatum(wam_segment_flatten(c->bm));
}

Datum
wam_segment_from_int4_array(PG_FUNCTION_ARGS)
{
	return wam_segment_from_array(PG_GETARG_ARRAYTYPE_P(0), INT4OID);
}

Datum
wam_segment_from_int8_array(PG_FUNCTION_ARGS)
{
	return wam_segment_from_array(PG_GETARG_ARRAYTYPE_P(0), INT8OID);
}

/*
 * wam_segment_to_array returns the members as a one-dimensional array of
 * int4 or int8, ascending.
 */
static ArrayType *
wam_segment_to_array(const roaring_bitmap_t *bm, Oid elemtype)
{
	uint64		card = roaring_bitmap_get_cardinality(bm);
	int			elemsize = (elemtype == INT4OID) ? 4 : 8;
	Size		max_elems;
	Size		nbytes;
	ArrayType  *result;
	roaring_uint32_iterator_t it;
	uint32		batch[1024];
	uint32		n;
	char	   *dst;

	if (card == 0)
		return construct_empty_array(elemtype);
	/* PostgreSQL's limits: MaxArraySize elements, one ordinary allocation */
	max_elems = Min((Size) MaxArraySize, (MaxAllocSize - ARR_OVERHEAD_NONULLS(1)) / elemsize);
	if (card > max_elems)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("segment has too many members for an array"),
				 errdetail("The segment has " UINT64_FORMAT " members; an array holds at most %zu.",
						   card, max_elems),
				 errhint("Use wam.segment_members() to stream the members instead.")));
	if (elemtype == INT4OID && roaring_bitmap_maximum(bm) > PG_INT32_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("customer id %u is out of range for type integer",
						roaring_bitmap_maximum(bm)),
				 errhint("Cast to bigint[] instead.")));

	nbytes = ARR_OVERHEAD_NONULLS(1) + card * elemsize;
	/* only the header zeroed: the loop below writes every element */
	result = (ArrayType *) palloc(nbytes);
	memset(result, 0, ARR_OVERHEAD_NONULLS(1));
	SET_VARSIZE(result, nbytes);
	result->ndim = 1;
	result->dataoffset = 0;
	result->elemtype = elemtype;
	ARR_DIMS(result)[0] = (int) card;
	ARR_LBOUND(result)[0] = 1;
	dst = ARR_DATA_PTR(result);

	roaring_init_iterator(bm, &it);
	while ((n = roaring_read_uint32_iterator(&it, batch, lengthof(batch))) > 0)
	{
		uint32		i;

		if (elemtype == INT4OID)
		{
			int32	   *out = (int32 *) dst;

			for (i = 0; i < n; i++)
				out[i] = (int32) batch[i];
		}
		else
		{
			int64	   *out = (int64 *) dst;

			for (i = 0; i < n; i++)
				out[i] = (int64) batch[i];
		}
		dst += (Size) n * elemsize;
		CHECK_FOR_INTERRUPTS();
	}
	return result;
}

Datum
wam_segment_to_int4_array(PG_FUNCTION_ARGS)
{
	PG_RETURN_ARRAYTYPE_P(wam_segment_to_array(PG_GETARG_SEGMENT_BITMAP(0), INT4OID));
}

Datum
wam_segment_to_int8_array(PG_FUNCTION_ARGS)
{
	PG_RETURN_ARRAYTYPE_P(wam_segment_to_array(PG_GETARG_SEGMENT_BITMAP(0), INT8OID));
}

/*
 * wam_segment_from_bytea reads the portable serialization (as written by
 * any Roaring implementation), validating it.
 */
Datum
wam_segment_from_bytea(PG_FUNCTION_ARGS)
{
	bytea	   *b = PG_GETARG_BYTEA_PP(0);

	PG_RETURN_POINTER(wam_segment_from_portable(VARDATA_ANY(b),
												VARSIZE_ANY_EXHDR(b)));
}

/*
 * wam_segment_to_bytea returns the portable serialization.
 */
Datum
wam_segment_to_bytea(PG_FUNCTION_ARGS)
{
	WamSegmentFlat *flat = wam_segment_detoast(PG_GETARG_DATUM(0));
	Size		len = WAM_SEGMENT_DATA_LEN(flat);
	bytea	   *result = palloc(VARHDRSZ + len);

	SET_VARSIZE(result, VARHDRSZ + len);
	memcpy(VARDATA(result), flat->data, len);
	PG_RETURN_BYTEA_P(result);
}

/*
 * wam_segment_is_valid_bytea tells whether bytes are a well-formed Roaring
 * portable serialization, without raising an error (for screening imports).
 */
Datum
wam_segment_is_valid_bytea(PG_FUNCTION_ARGS)
{
	bytea	   *b = PG_GETARG_BYTEA_PP(0);
	uint64		card;
	size_t		errpos;

	PG_RETURN_BOOL(wam_portable_validate((const uint8_t *) VARDATA_ANY(b),
										 VARSIZE_ANY_EXHDR(b),
										 &card, &errpos) == WAM_PORTABLE_OK);
}
