/*-------------------------------------------------------------------------
 *
 * backup.c
 *	  Knowing when rows arrive from a backup (pg_dump / pg_restore).
 *
 * The extension's tables are registered with pg_extension_config_dump, so a
 * dump holds every row, the derived ones too (tag bitmaps, order statistics,
 * judged referrals): pg_dump reads them all in one snapshot, in which they
 * agree with each other.  While such a dump is restored, the extension's
 * triggers must stand aside: rebuilding bitmaps from the memberships being
 * restored would collide with the restored bitmaps, recounting orders would
 * double the statistics, firing event rules would re-tag customers who have
 * since changed, and judging old referrals again would reject them.
 *
 * A restore is recognised without any step by the DBA: every data section
 * pg_dump writes is "COPY table (columns) FROM stdin;", sent by a superuser
 * in a session that pg_dump or pg_restore set up with check_function_bodies
 * and row_security off (they always do).  An application does not load data
 * that way by accident.  (pg_dump's empty search_path would be a third sign,
 * but inside the SECURITY DEFINER triggers search_path is their own.)
 * wam.restoring = on says the same for other tools (dumps made with
 * --inserts, logical copies).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "commands/trigger.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/rls.h"

#include "backup.h"

static bool wam_restoring_setting = false;

void
wam_backup_init(void)
{
	DefineCustomBoolVariable("wam.restoring",
							 "Treats the session's inserts as a restore of a backup.",
							 "The extension's triggers stand aside (no bitmap upkeep, order "
							 "statistics, event rules or referral checks) because the restored "
							 "rows already carry their effects. Restores of pg_dump's default "
							 "COPY format are recognised without it.",
							 &wam_restoring_setting,
							 false,
							 PGC_SUSET,
							 0,
							 NULL, NULL, NULL);
}

/* Does the statement being run look like a data section of pg_dump? */
static bool
wam_copy_from_dump(void)
{
	const char *q = debug_query_string;
	const char *p;

	if (q == NULL || check_function_bodies || row_security)
		return false;
	while (*q == ' ' || *q == '\t' || *q == '\n' || *q == '\r')
		q++;
	if (pg_strncasecmp(q, "COPY ", 5) != 0)
		return false;
	/* "COPY wam.t (a, b) FROM stdin;": the last FROM, followed by stdin */
	for (p = q + strlen(q); p > q + 5; p--)
	{
		if (pg_strncasecmp(p - 5, " FROM", 5) == 0)
		{
			const char *s = p;

			while (*s == ' ' || *s == '\t' || *s == '\n')
				s++;
			return pg_strncasecmp(s, "stdin", 5) == 0;
		}
	}
	return false;
}

bool
wam_restoring(void)
{
	/*
	 * The outer user, not the current one: most of the triggers run as
	 * wam_definer (SECURITY DEFINER), while the restore is a superuser's.
	 */
	if (!superuser_arg(GetOuterUserId()))
		return false;
	return wam_restoring_setting || wam_copy_from_dump();
}

PG_FUNCTION_INFO_V1(wam_restoring_sql);

/* wam_internal.restoring() -> boolean: for the triggers written in SQL */
Datum
wam_restoring_sql(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(wam_restoring());
}
