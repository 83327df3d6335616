/*-------------------------------------------------------------------------
 *
 * customer_sql.c
 *	  Helpers of the customer API (wam.upsert_customer, src/sql/core.sql).
 *
 *	  wam_internal.time_zone_name(name) -> the name as pg_timezone_names spells it,
 *	                              or NULL when it is not one of them
 *
 * pg_timezone_names reads every file of the time zone database (about 1,200,
 * tens of milliseconds) on each call, too slow to check one value per
 * customer.  The names are read once per session into a sorted array and
 * looked up without case, the way PostgreSQL itself resolves zone names.
 * POSIX time zone specifications ('UTC+8', 'XYZ5') are refused although
 * AT TIME ZONE accepts them: their sign is the reverse of what people mean,
 * and a customer's zone should follow daylight-saving rules.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <stdlib.h>

#include "fmgr.h"
#include "pgtime.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

#include "send_window.h"

PG_FUNCTION_INFO_V1(wam_time_zone_name);

static char **zone_names = NULL;
static int	n_zone_names = 0;

static int
cmp_zone_name(const void *a, const void *b)
{
	return pg_strcasecmp(*(char *const *) a, *(char *const *) b);
}

static void
load_zone_names(void)
{
	pg_tzenum  *tzenum;
	pg_tz	   *tz;
	char	  **names;
	int			n = 0,
				cap = 2048;

	names = (char **) MemoryContextAlloc(TopMemoryContext, sizeof(char *) * cap);
	tzenum = pg_tzenumerate_start();
	while ((tz = pg_tzenumerate_next(tzenum)) != NULL)
	{
		if (n == cap)
		{
			cap *= 2;
			names = (char **) repalloc(names, sizeof(char *) * cap);
		}
		names[n++] = MemoryContextStrdup(TopMemoryContext, pg_get_timezone_name(tz));
	}
	pg_tzenumerate_end(tzenum);
	qsort(names, n, sizeof(char *), cmp_zone_name);
	/* published only when complete: an error above leaves the cache empty */
	zone_names = names;
	n_zone_names = n;
}

/* also used by src/send_window.c (customer_time_zone, wam.default_time_zone) */
const char *
wam_time_zone_lookup(const char *name)
{
	char	  **found;

	/* no zone name is that long (pg_tz's TZname holds 255 bytes) */
	if (strlen(name) > 255 || name[0] == '\0')
		return NULL;
	if (zone_names == NULL)
		load_zone_names();
	found = (char **) bsearch(&name, zone_names, n_zone_names, sizeof(char *), cmp_zone_name);
	return found ? *found : NULL;
}

/*
 * wam_time_zone_name(name text) returns text (STRICT)
 */
Datum
wam_time_zone_name(PG_FUNCTION_ARGS)
{
	const char *found = wam_time_zone_lookup(text_to_cstring(PG_GETARG_TEXT_PP(0)));

	if (found == NULL)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(found));
}
