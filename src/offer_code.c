/*-------------------------------------------------------------------------
 *
 * offer_code.c
 *	  Reading a typed offer or reward code (issue 20): the generated codes of
 *	  offers are redemption codes (wam.redemption_code(): 12 Crockford
 *	  symbols and a check symbol, see referral_code.h), so a typed code is
 *	  read with the same forgiving decoder and check as referral codes,
 *	  and a typo is told apart from an unknown code.
 *
 * src/offer_code.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/builtins.h"

#include "referral_code.h"

PG_FUNCTION_INFO_V1(wam_offer_code_read);

/*
 * wam_internal.offer_code_read(code text, OUT canonical text, OUT problem text)
 * returns the canonical form of a typed redemption code and NULL, or NULL
 * and what is wrong with it: 'mistyped' when the symbols are all there but
 * the check symbol does not match (a typo or a swap), 'not a code' for
 * anything else (a shared code such as GROUP50, an imported code, noise).
 */
Datum
wam_offer_code_read(PG_FUNCTION_ARGS)
{
	text	   *code = PG_GETARG_TEXT_PP(0);
	char		out[WAM_REDEEM_DATA + 2];
	WamCodeStatus st;
	TupleDesc	tupdesc;
	Datum		values[2];
	bool		nulls[2] = {false, false};

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "wam_offer_code_read: return type must be a row type");
	tupdesc = BlessTupleDesc(tupdesc);

	st = wam_code_decode(VARDATA_ANY(code), VARSIZE_ANY_EXHDR(code), WAM_REDEEM_DATA, out);
	if (st == WAM_CODE_OK)
	{
		values[0] = CStringGetTextDatum(out);
		nulls[1] = true;
	}
	else
	{
		nulls[0] = true;
		values[1] = CStringGetTextDatum(st == WAM_CODE_BAD_CHECK ? "mistyped" : "not a code");
	}
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}
