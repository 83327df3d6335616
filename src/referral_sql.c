/*-------------------------------------------------------------------------
 *
 * referral_sql.c
 *	  SQL-callable code functions of the referral program: keyed referral
 *	  codes, the code reader, random redemption codes.
 *
 * A referral code is the first 50 bits of HMAC-SHA256(secret, program,
 * customer, attempt) written as 10 Crockford symbols plus a check symbol.
 * The secret lives in wam.referral_secret, readable by the extension owner
 * only, so nobody can compute another customer's code; the code is stored
 * in wam.referrer when first issued (a lookup, not a decryption, maps it
 * back), and "attempt" only changes on the rare collision of two customers'
 * hashes, which keeps codes stable.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "common/cryptohash.h"
#include "common/hmac.h"
#include "common/sha2.h"
#include "fmgr.h"
#include "port/pg_bswap.h"
#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "referral_code.h"

PG_FUNCTION_INFO_V1(wam_referral_code_make);
PG_FUNCTION_INFO_V1(wam_referral_code_normalize);
PG_FUNCTION_INFO_V1(wam_redemption_code);

/* Domain separation: these HMAC inputs mean "referral code, format 1". */
static const char wam_refcode_label[] = "pg_wamarketing referral code v1";

/*
 * wam_internal.referral_code_make(secret bytea, program int, customer bigint,
 * attempt int) returns the code for that input.
 */
Datum
wam_referral_code_make(PG_FUNCTION_ARGS)
{
	bytea	   *secret = PG_GETARG_BYTEA_PP(0);
	int32		program = PG_GETARG_INT32(1);
	int64		customer = PG_GETARG_INT64(2);
	int32		attempt = PG_GETARG_INT32(3);
	uint8		msg[sizeof(wam_refcode_label) + 16];
	uint8		mac[PG_SHA256_DIGEST_LENGTH];
	char		out[WAM_REFCODE_DATA + 2];
	uint32		p32 = pg_hton32((uint32) program);
	uint64		c64 = pg_hton64((uint64) customer);
	uint32		a32 = pg_hton32((uint32) attempt);
	pg_hmac_ctx *ctx;
	size_t		off = sizeof(wam_refcode_label);

	if (VARSIZE_ANY_EXHDR(secret) < 32)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("referral secret must be at least 32 bytes")));

	memcpy(msg, wam_refcode_label, sizeof(wam_refcode_label));
	memcpy(msg + off, &p32, 4);
	memcpy(msg + off + 4, &c64, 8);
	memcpy(msg + off + 12, &a32, 4);

	ctx = pg_hmac_create(PG_SHA256);
	if (ctx == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory")));
	if (pg_hmac_init(ctx, (const uint8 *) VARDATA_ANY(secret), VARSIZE_ANY_EXHDR(secret)) < 0 ||
		pg_hmac_update(ctx, msg, sizeof(msg)) < 0 ||
		pg_hmac_final(ctx, mac, sizeof(mac)) < 0)
	{
		const char *why = pg_hmac_error(ctx);

		pg_hmac_free(ctx);
		elog(ERROR, "could not compute HMAC-SHA256: %s", why);
	}
	pg_hmac_free(ctx);

	wam_code_encode(mac, WAM_REFCODE_DATA, out);
	PG_RETURN_TEXT_P(cstring_to_text(out));
}

/*
 * wam.normalize_referral_code(code text) returns the canonical form of a
 * typed referral code, or raises invalid_parameter_value saying what is
 * wrong with it.
 */
Datum
wam_referral_code_normalize(PG_FUNCTION_ARGS)
{
	text	   *code = PG_GETARG_TEXT_PP(0);
	char		out[WAM_REFCODE_DATA + 2];
	WamCodeStatus st;

	st = wam_code_decode(VARDATA_ANY(code), VARSIZE_ANY_EXHDR(code), WAM_REFCODE_DATA, out);
	if (st != WAM_CODE_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 /* quote at most WAM_CODE_MAX_INPUT bytes of whatever was typed */
				 errmsg("invalid referral code \"%s\"",
						text_to_cstring((text *) DatumGetPointer(DirectFunctionCall3(text_substr,
																	 PointerGetDatum(code),
																	 Int32GetDatum(1),
																	 Int32GetDatum(WAM_CODE_MAX_INPUT))))),
				 errdetail("%s", wam_code_status_text(st)),
				 errhint("A referral code has %d letters and digits; O reads as 0, I and L as 1.",
						 WAM_REFCODE_DATA + 1)));
	PG_RETURN_TEXT_P(cstring_to_text(out));
}

/*
 * wam.redemption_code() returns a fresh random redemption code: 60 bits
 * from the operating system's strong random source, 12 symbols plus the
 * check symbol.
 */
Datum
wam_redemption_code(PG_FUNCTION_ARGS)
{
	uint8		bytes[8];
	char		out[WAM_REDEEM_DATA + 2];

	if (!pg_strong_random(bytes, sizeof(bytes)))
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not generate a random redemption code")));
	wam_code_encode(bytes, WAM_REDEEM_DATA, out);
	PG_RETURN_TEXT_P(cstring_to_text(out));
}

PG_FUNCTION_INFO_V1(wam_referral_attempts);

/*
 * wam_internal.referral_attempts(times timestamptz[], at timestamptz, velocity int)
 * returns the rolling-hour attempt times after an attempt at `at`: the
 * times within the hour before it, plus `at`, the newest velocity + 1 of
 * them, ascending.  cardinality(result) - 1 is how many attempts came in the
 * hour before this one, counted up to velocity -- all the velocity check
 * needs.  NULL elements are dropped.
 */
Datum
wam_referral_attempts(PG_FUNCTION_ARGS)
{
	ArrayType  *arr = PG_GETARG_ARRAYTYPE_P(0);
	TimestampTz at = PG_GETARG_TIMESTAMPTZ(1);
	int32		velocity = PG_GETARG_INT32(2);
	TimestampTz hour_ago = at - USECS_PER_HOUR;
	Datum	   *times;
	bool	   *nulls;
	Datum	   *kept;
	int			n,
				i,
				keep = 0,
				max;

	if (ARR_NDIM(arr) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("attempt times must be a one-dimensional array")));
	/* settings allow 1..1,000,000; clamped so that velocity + 1 cannot overflow */
	velocity = Max(1, Min(velocity, PG_INT32_MAX - 1));
	max = velocity + 1;
	deconstruct_array(arr, TIMESTAMPTZOID, sizeof(TimestampTz), FLOAT8PASSBYVAL,
					  TYPALIGN_DOUBLE, &times, &nulls, &n);
	kept = palloc(sizeof(Datum) * (n + 1));
	for (i = 0; i < n; i++)
		if (!nulls[i] && DatumGetTimestampTz(times[i]) > hour_ago)
			kept[keep++] = times[i];
	/*
	 * Kept ascending.  An attempt may be older than ones already stored (its
	 * transaction started first but got the row lock later); those still
	 * count, so it is inserted in order rather than appended.
	 */
	i = keep;
	while (i > 0 && DatumGetTimestampTz(kept[i - 1]) > at)
	{
		kept[i] = kept[i - 1];
		i--;
	}
	kept[i] = TimestampTzGetDatum(at);
	keep++;
	if (keep > max)
	{
		memmove(kept, kept + (keep - max), sizeof(Datum) * max);
		keep = max;
	}
	PG_RETURN_ARRAYTYPE_P(construct_array(kept, keep, TIMESTAMPTZOID, sizeof(TimestampTz),
										  FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
}
