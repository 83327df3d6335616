/*-------------------------------------------------------------------------
 *
 * phone_sql.c
 *	  SQL functions over the phone-number normalizer of phone.c.
 *
 *	  wam.normalize_phone(raw, default_country) -> E.164 digits, or ERROR
 *	  wam.phone_problem(raw, default_country)	 -> NULL, or the reason
 *	  wam.phone_country(phone)					 -> ISO 3166-1 alpha-2
 *
 * The normalizer works in UTF-8; text in another server encoding is
 * converted on the way in, and the reason (which may quote a character of
 * the input) on the way out.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"

#include "phone.h"

PG_FUNCTION_INFO_V1(wam_normalize_phone);
PG_FUNCTION_INFO_V1(wam_phone_problem);
PG_FUNCTION_INFO_V1(wam_phone_country_sql);

/*
 * At most WAM_PHONE_QUOTE_MAX bytes of s (cut on a character boundary) for
 * an error message, so a 10 MB value does not become a 10 MB log line.
 */
static char *
wam_phone_quote_text(const char *s, int len)
{
	int			cut;

	if (len <= WAM_PHONE_QUOTE_MAX)
		return pnstrdup(s, len);
	cut = pg_mbcliplen(s, len, WAM_PHONE_QUOTE_MAX);
	return psprintf("%.*s...", cut, s);
}

/* s[0..len) in UTF-8; *outlen is its length. */
static const char *
wam_phone_to_utf8(const char *s, int len, int *outlen)
{
	char	   *conv;

	if (GetDatabaseEncoding() == PG_UTF8 || GetDatabaseEncoding() == PG_SQL_ASCII)
	{
		*outlen = len;
		return s;
	}
	conv = pg_server_to_any(s, len, PG_UTF8);
	*outlen = (conv == s) ? len : (int) strlen(conv);
	return conv;
}

/* A reason sentence (UTF-8) in the server encoding. */
static char *
wam_phone_reason_to_server(const char *reason)
{
	if (GetDatabaseEncoding() == PG_UTF8 || GetDatabaseEncoding() == PG_SQL_ASCII)
		return pstrdup(reason);
	return pg_any_to_server(reason, (int) strlen(reason), PG_UTF8);
}

/*
 * Runs the normalizer on arguments 0 (not NULL) and 1 (NULL: no default).
 */
static WamPhoneStatus
wam_phone_run(FunctionCallInfo fcinfo, char *out, char *reason)
{
	text	   *raw = PG_GETARG_TEXT_PP(0);
	const char *s;
	int			len;
	char	   *country = NULL;

	s = wam_phone_to_utf8(VARDATA_ANY(raw), VARSIZE_ANY_EXHDR(raw), &len);
	if (!PG_ARGISNULL(1))
	{
		text	   *c = PG_GETARG_TEXT_PP(1);
		int			clen;
		const char *cs = wam_phone_to_utf8(VARDATA_ANY(c), VARSIZE_ANY_EXHDR(c), &clen);

		country = pnstrdup(cs, clen);
	}
	return wam_phone_normalize(s, (size_t) len, country,
							   out, WAM_PHONE_OUT_SIZE,
							   reason, WAM_PHONE_REASON_SIZE);
}

/*
 * wam_normalize_phone: the E.164 number as digits; ERROR for a number that
 * is not valid or an unknown default country.
 */
Datum
wam_normalize_phone(PG_FUNCTION_ARGS)
{
	char		out[WAM_PHONE_OUT_SIZE];
	char		reason[WAM_PHONE_REASON_SIZE];

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();

	switch (wam_phone_run(fcinfo, out, reason))
	{
		case WAM_PHONE_OK:
			break;
		case WAM_PHONE_BAD_COUNTRY:
			{
				text	   *c = PG_GETARG_TEXT_PP(1);

				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("unknown country \"%s\"",
								wam_phone_quote_text(VARDATA_ANY(c),
													 VARSIZE_ANY_EXHDR(c))),
						 errhint("Use an ISO 3166-1 alpha-2 code such as \"HK\" or a country calling code such as \"852\".")));
			}
			break;
		case WAM_PHONE_INVALID:
			{
				text	   *raw = PG_GETARG_TEXT_PP(0);

				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("invalid phone number: \"%s\"",
								wam_phone_quote_text(VARDATA_ANY(raw),
													 VARSIZE_ANY_EXHDR(raw))),
						 errdetail("%s", wam_phone_reason_to_server(reason))));
			}
			break;
	}
	PG_RETURN_TEXT_P(cstring_to_text(out));
}

/*
 * wam_phone_problem: NULL for a valid number, else why it is not.  Never
 * raises for bad data, an unknown default country included (it comes from
 * a column as often as not), so a data-quality report cannot fail.
 */
Datum
wam_phone_problem(PG_FUNCTION_ARGS)
{
	char		out[WAM_PHONE_OUT_SIZE];
	char		reason[WAM_PHONE_REASON_SIZE];

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	if (wam_phone_run(fcinfo, out, reason) == WAM_PHONE_OK)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(wam_phone_reason_to_server(reason)));
}

/*
 * wam_phone_country_sql: ISO 3166-1 alpha-2 code of an international
 * number, NULL if it is not valid.
 */
Datum
wam_phone_country_sql(PG_FUNCTION_ARGS)
{
	text	   *phone = PG_GETARG_TEXT_PP(0);
	const char *s;
	int			len;
	const char *iso;

	s = wam_phone_to_utf8(VARDATA_ANY(phone), VARSIZE_ANY_EXHDR(phone), &len);
	iso = wam_phone_country(s, (size_t) len);
	if (iso == NULL)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(iso));
}
