/*-------------------------------------------------------------------------
 *
 * wam_spi.c
 *	  Saved SPI plans and the null-argument check (see wam_spi.h).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "executor/spi.h"
#include "fmgr.h"
#include "utils/builtins.h"

#include "wam_spi.h"

SPIPlanPtr
wam_spi_plan(SPIPlanPtr *slot, const char *sql, int nargs, Oid *argtypes,
			 int cursor_options)
{
	if (*slot == NULL)
	{
		/* SPI leaves its own procedure context current: put the caller's back */
		MemoryContext old = CurrentMemoryContext;
		SPIPlanPtr	plan = SPI_prepare_cursor(sql, nargs, argtypes, cursor_options);

		if (plan == NULL)
			elog(ERROR, "SPI_prepare failed for \"%s\": %s", sql,
				 SPI_result_code_string(SPI_result));
		if (SPI_keepplan(plan) != 0)
			elog(ERROR, "SPI_keepplan failed for \"%s\"", sql);
		*slot = plan;
		MemoryContextSwitchTo(old);
	}
	return *slot;
}

void
wam_spi_forget(SPIPlanPtr *slot)
{
	if (*slot != NULL)
		SPI_freeplan(*slot);
	*slot = NULL;
}

void
wam_not_null(bool isnull, const char *what)
{
	if (isnull)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be null", what)));
}

/*
 * wam_internal.refuse_null(is_null, what): the same check for the PL/pgSQL functions,
 * PERFORM wam_internal.refuse_null(customer IS NULL, 'customer').
 */
PG_FUNCTION_INFO_V1(wam_refuse_null);

Datum
wam_refuse_null(PG_FUNCTION_ARGS)
{
	if (!PG_ARGISNULL(0) && PG_GETARG_BOOL(0))
		wam_not_null(true, PG_ARGISNULL(1) ? "argument" : text_to_cstring(PG_GETARG_TEXT_PP(1)));
	PG_RETURN_VOID();
}
