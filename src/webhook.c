/*-------------------------------------------------------------------------
 *
 * webhook.c
 *	  Webhook helpers: the body size limit, X-Hub-Signature-256
 *	  verification (HMAC-SHA256 of the raw body with the app secret,
 *	  compared in constant time), a JSON parse that reports bad input as
 *	  NULL instead of an error, and the array walk wam.ingest_webhook joins
 *	  on (with a row estimate that keeps its plans on index lookups).
 *
 * HMAC and SHA-256 are PostgreSQL's own (src/common), so no extra library.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "common/hmac.h"
#include "common/jsonapi.h"
#include "common/sha2.h"
#include "fmgr.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"

#include "wam_hex.h"
#include "webhook.h"

/*
 * Meta's notifications are a few kilobytes (one to a few statuses or
 * messages each).  The limit is checked before anything else is done with
 * the body: an unauthenticated caller of the endpoint must not make the
 * database hash and parse megabytes per request.
 */
int			wam_webhook_body_limit = 1024 * 1024;

void
wam_webhook_init(void)
{
	DefineCustomIntVariable("wam.webhook_max_body_bytes",
							"Largest webhook body wam.ingest_webhook accepts.",
							"Larger bodies are refused before their signature is computed.",
							&wam_webhook_body_limit,
							1024 * 1024, 1, (int) MaxAllocSize,
							PGC_SUSET,
							GUC_UNIT_BYTE,
							NULL, NULL, NULL);
}

/*
 * wam_internal.webhook_max_body_bytes(): the setting in bytes, for wam.ingest_webhook
 * (current_setting() would show it with a unit, and fail in a session that
 * has not loaded the library yet).
 */
PG_FUNCTION_INFO_V1(wam_webhook_max_body_bytes);
Datum
wam_webhook_max_body_bytes(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT32(wam_webhook_body_limit);
}

static void
hmac_sha256(const char *key, size_t keylen, const char *msg, size_t msglen, uint8 *out)
{
	pg_hmac_ctx *ctx = pg_hmac_create(PG_SHA256);

	if (ctx == NULL)
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
	if (pg_hmac_init(ctx, (const uint8 *) key, keylen) < 0 ||
		pg_hmac_update(ctx, (const uint8 *) msg, msglen) < 0 ||
		pg_hmac_final(ctx, out, PG_SHA256_DIGEST_LENGTH) < 0)
	{
		const char *why = pg_hmac_error(ctx);

		pg_hmac_free(ctx);
		ereport(ERROR, (errmsg("could not compute HMAC-SHA256: %s", why)));
	}
	pg_hmac_free(ctx);
}

PG_FUNCTION_INFO_V1(wam_hmac_sha256);
Datum
wam_hmac_sha256(PG_FUNCTION_ARGS)
{
	text	   *key = PG_GETARG_TEXT_PP(0);
	text	   *msg = PG_GETARG_TEXT_PP(1);
	uint8		mac[PG_SHA256_DIGEST_LENGTH];
	char		hex[PG_SHA256_DIGEST_LENGTH * 2 + 1];
	int			i;

	hmac_sha256(VARDATA_ANY(key), VARSIZE_ANY_EXHDR(key), VARDATA_ANY(msg), VARSIZE_ANY_EXHDR(msg), mac);
	for (i = 0; i < PG_SHA256_DIGEST_LENGTH; i++)
		snprintf(hex + 2 * i, 3, "%02x", mac[i]);
	PG_RETURN_TEXT_P(cstring_to_text(hex));
}

/*
 * wam_internal.hmac_sha256_matches(body, signature, secrets): 1-based position of the
 * first secret whose HMAC of body equals the signature "sha256=<64 hex>",
 * 0 when none does or the signature is malformed.  Each comparison touches
 * every byte whatever the first difference (no early exit), so the time
 * says nothing about how much of a forged signature was right.  A secret
 * repeated in the array (senders of one app) is hashed once.
 */
PG_FUNCTION_INFO_V1(wam_hmac_sha256_matches);
Datum
wam_hmac_sha256_matches(PG_FUNCTION_ARGS)
{
	text	   *body = PG_GETARG_TEXT_PP(0);
	text	   *sig = PG_GETARG_TEXT_PP(1);
	ArrayType  *secrets = PG_GETARG_ARRAYTYPE_P(2);
	const char *s = VARDATA_ANY(sig);
	int			slen = VARSIZE_ANY_EXHDR(sig);
	uint8		want[PG_SHA256_DIGEST_LENGTH];
	Datum	   *elems;
	bool	   *nulls;
	int			nelems;
	int			found = 0;
	int			i;

	if (ARR_NDIM(secrets) > 1)
		ereport(ERROR, (errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR), errmsg("secrets must be a one-dimensional array")));
	if (slen != 7 + 2 * PG_SHA256_DIGEST_LENGTH || strncmp(s, "sha256=", 7) != 0)
		PG_RETURN_INT32(0);
	for (i = 0; i < PG_SHA256_DIGEST_LENGTH; i++)
	{
		int			hi = wam_hex_digit(s[7 + 2 * i]);
		int			lo = wam_hex_digit(s[8 + 2 * i]);

		if (hi < 0 || lo < 0)
			PG_RETURN_INT32(0);
		want[i] = (uint8) (hi << 4 | lo);
	}
	deconstruct_array(secrets, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &nelems);
	for (i = 0; i < nelems; i++)
	{
		uint8		mac[PG_SHA256_DIGEST_LENGTH];
		uint8		diff = 0;
		text	   *key;
		int			j;

		if (nulls[i])
			continue;
		key = DatumGetTextPP(elems[i]);
		for (j = 0; j < i; j++)
		{
			text	   *earlier;

			if (nulls[j])
				continue;
			earlier = DatumGetTextPP(elems[j]);
			if (VARSIZE_ANY_EXHDR(earlier) == VARSIZE_ANY_EXHDR(key) &&
				memcmp(VARDATA_ANY(earlier), VARDATA_ANY(key), VARSIZE_ANY_EXHDR(key)) == 0)
				break;
		}
		if (j < i)
			continue;			/* hashed already */
		hmac_sha256(VARDATA_ANY(key), VARSIZE_ANY_EXHDR(key), VARDATA_ANY(body), VARSIZE_ANY_EXHDR(body), mac);
		for (j = 0; j < PG_SHA256_DIGEST_LENGTH; j++)
			diff |= mac[j] ^ want[j];
		explicit_bzero(mac, sizeof(mac));
		if (diff == 0 && found == 0)
			found = i + 1;
	}
	PG_RETURN_INT32(found);
}

/* wam_internal.try_jsonb(text): the value as jsonb, NULL if it is not valid JSON. */
PG_FUNCTION_INFO_V1(wam_try_jsonb);
Datum
wam_try_jsonb(PG_FUNCTION_ARGS)
{
	text	   *t = PG_GETARG_TEXT_PP(0);
	JsonLexContext *lex;

	lex = makeJsonLexContextCstringLen(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t), GetDatabaseEncoding(), true);
	if (pg_parse_json(lex, &nullSemAction) != JSON_SUCCESS)
		PG_RETURN_NULL();
	/* valid JSON: jsonb_in cannot fail now (except for out-of-range numbers) */
	PG_RETURN_DATUM(DirectFunctionCall1(jsonb_in, CStringGetDatum(text_to_cstring(t))));
}

/*
 * wam_internal.json_elements(jsonb): the elements of a JSON array, no rows for
 * anything else.  The same as jsonb_array_elements() on an array, but a C
 * function declared ROWS 4, so that the planner expects a webhook's handful
 * of entries, changes and statuses: with jsonb_array_elements()' estimate of
 * 100 per level it hash-joined a sequential scan of the whole wam.outbox on
 * every call.  Value per call: no tuplestore for a one-element array.
 */
typedef struct JsonElementsState
{
	Jsonb	   *array;
	uint32		n;
} JsonElementsState;

PG_FUNCTION_INFO_V1(wam_json_elements);
Datum
wam_json_elements(PG_FUNCTION_ARGS)
{
	FuncCallContext *funcctx;
	JsonElementsState *st;

	if (SRF_IS_FIRSTCALL())
	{
		MemoryContext old;
		Jsonb	   *j;

		funcctx = SRF_FIRSTCALL_INIT();
		old = MemoryContextSwitchTo(funcctx->multi_call_memory_ctx);
		j = PG_GETARG_JSONB_P_COPY(0);
		st = palloc(sizeof(JsonElementsState));
		st->array = j;
		/* a scalar is stored as a one-element array flagged scalar */
		st->n = (JB_ROOT_IS_ARRAY(j) && !JB_ROOT_IS_SCALAR(j)) ? JB_ROOT_COUNT(j) : 0;
		funcctx->user_fctx = st;
		MemoryContextSwitchTo(old);
	}
	funcctx = SRF_PERCALL_SETUP();
	st = funcctx->user_fctx;
	if (funcctx->call_cntr < st->n)
	{
		JsonbValue *v = getIthJsonbValueFromContainer(&st->array->root, (uint32) funcctx->call_cntr);

		SRF_RETURN_NEXT(funcctx, JsonbPGetDatum(JsonbValueToJsonb(v)));
	}
	SRF_RETURN_DONE(funcctx);
}
