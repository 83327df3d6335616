/*-------------------------------------------------------------------------
 *
 * wam_lock.c
 *	  The extension's own advisory locks (see wam_lock.h), and
 *	  wam_internal.lock_key() for the SQL parts of the extension.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"

#include "wam_lock.h"

PG_FUNCTION_INFO_V1(wam_lock_key);

/*
 * wam_xact_lock takes the lock in ExclusiveLock mode (what
 * pg_advisory_xact_lock() takes) for the current transaction: it is owned by
 * the current resource owner and released at commit or abort.
 */
void
wam_xact_lock(WamLockSpace space, int64 key)
{
	LOCKTAG		tag;

	wam_lock_tag(&tag, space, key);
	(void) LockAcquire(&tag, ExclusiveLock, false, false);
}

/*
 * wam_internal.lock_key(space, key): the transaction-scoped lock of a key of one of
 * the extension's lock spaces.  Internal: EXECUTE is revoked from PUBLIC.
 */
Datum
wam_lock_key(PG_FUNCTION_ARGS)
{
	int32		space = PG_GETARG_INT32(0);
	int64		key = PG_GETARG_INT64(1);

	if (space < 1 || space > WAM_LOCK_SPACE_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("lock space %d does not exist", space),
				 errdetail("Lock spaces are numbered 1 to %d.", WAM_LOCK_SPACE_MAX)));
	wam_xact_lock((WamLockSpace) space, key);
	PG_RETURN_VOID();
}
