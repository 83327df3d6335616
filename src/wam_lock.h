/*-------------------------------------------------------------------------
 *
 * wam_lock.h
 *	  The extension's own advisory locks.
 *
 * They are LOCKTAG_ADVISORY locks whose field4 (objsubid in pg_locks) is
 * WAM_LOCK_FIELD4_BASE + the lock space.  SQL's advisory-lock functions only
 * ever use field4 = 1 (bigint keys) and 2 (int4 pairs), so no role can take,
 * wait on or deadlock with these locks through pg_advisory_lock() and
 * friends, whatever keys it picks.
 *
 *-------------------------------------------------------------------------
 */
#ifndef WAM_LOCK_H
#define WAM_LOCK_H

#include "postgres.h"
#include "miscadmin.h"
#include "storage/lock.h"

/* Lock spaces; field4 = WAM_LOCK_FIELD4_BASE + space ("wa" 0x57a0). */
#define WAM_LOCK_FIELD4_BASE	0x57a0
typedef enum WamLockSpace
{
	WAM_LOCK_TAG_BLOCK = 1,		/* key: tag id << 32 | block (id >> 16) */
	WAM_LOCK_ORDER_STATS = 2,	/* key: customer id */
	WAM_LOCK_REFERRAL_PERSON = 3,	/* key: program id << 32 | customer id (low 32 bits) */
	WAM_LOCK_INBOUND_WAMID = 4,	/* key: hashtextextended(wamid, 0) of an inbound message */
	WAM_LOCK_CONTACT = 5,		/* key: customer id (contact-pressure checks at claim) */
	WAM_LOCK_PORTFOLIO = 6		/* key: portfolio id (its messaging limit at claim; taken
								 * after any customer's) */
} WamLockSpace;
#define WAM_LOCK_SPACE_MAX		WAM_LOCK_PORTFOLIO

/* field1 = database, field2:field3 = the 64-bit key, field4 = the space */
static inline void
wam_lock_tag(LOCKTAG *tag, WamLockSpace space, int64 key)
{
	SET_LOCKTAG_ADVISORY(*tag, MyDatabaseId, (uint32) ((uint64) key >> 32),
						 (uint32) key, WAM_LOCK_FIELD4_BASE + (int) space);
}

/* Takes an exclusive lock held until the end of the transaction. */
extern void wam_xact_lock(WamLockSpace space, int64 key);

#endif							/* WAM_LOCK_H */
