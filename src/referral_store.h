/*-------------------------------------------------------------------------
 *
 * referral_store.h
 *	  Direct table access for the referral abuse trigger: the relations it
 *	  reads and writes, resolved once per backend, and index probes, row
 *	  locks and updates without the executor.
 *
 *-------------------------------------------------------------------------
 */
#ifndef WAM_REFERRAL_STORE_H
#define WAM_REFERRAL_STORE_H

#include "access/htup.h"
#include "access/skey.h"
#include "executor/tuptable.h"
#include "utils/relcache.h"
#include "utils/snapshot.h"

/* The tables, indexes and columns the trigger uses, by OID and number. */
typedef struct WamReferralRels
{
	Oid			nsp;
	Oid			referral;
	Oid			referral_invitee_once;
	Oid			referrer;
	Oid			referrer_code;	/* unique index on (code) */
	Oid			program;
	Oid			program_pkey;
	Oid			customer;
	Oid			customer_pkey;
	Oid			fingerprint;
	Oid			fingerprint_pkey;
	/* wam.referral */
	AttrNumber	rf_code,
				rf_invitee,
				rf_source,
				rf_created,
				rf_program,
				rf_referrer,
				rf_status,
				rf_reason,
				rf_detail;
	/* wam.referrer */
	AttrNumber	rr_customer,
				rr_program,
				rr_code,
				rr_status,
				rr_frozen_at,
				rr_recent,
				rr_accepted;
	/* wam.referral_program */
	AttrNumber	pg_id,
				pg_name,
				pg_cap,
				pg_velocity,
				pg_ring_depth,
				pg_signup_grace,
				pg_starts_at,
				pg_ends_at;
	/* wam.customer */
	AttrNumber	cu_id,
				cu_phone,
				cu_created,
				cu_first_order;
	/* wam.customer_fingerprint */
	AttrNumber	fp_customer,
				fp_kind,
				fp_hash,
				fp_first_seen;
} WamReferralRels;

extern const WamReferralRels *wam_referral_rels(Oid nsp);
extern bool wam_referral_rels_cached(Oid nsp);

/* One equality probe of a unique index. */
typedef struct WamProbe
{
	Relation	heap;
	Relation	index;
	TupleTableSlot *slot;
} WamProbe;

extern void wam_probe_open(WamProbe *p, Oid heapoid, Oid indexoid, LOCKMODE heaplock);
extern void wam_probe_close(WamProbe *p);
extern void wam_probe_key(WamProbe *p, ScanKey key, AttrNumber indexcol, RegProcedure eqproc,
						  Datum value);
extern bool wam_probe_fetch(WamProbe *p, Snapshot snapshot, ScanKey keys, int nkeys);

extern bool wam_lock_row_for_update(Relation rel, ItemPointer tid, Snapshot snapshot,
									TupleTableSlot *slot);
extern void wam_update_row(Relation rel, ItemPointer otid, HeapTuple newtup);
/* INSERT ... ON CONFLICT DO NOTHING into one relation, set up once for several rows. */
typedef struct WamInsertState
{
	Relation	rel;
	struct EState *estate;
	struct ResultRelInfo *rri;
	TupleTableSlot *slot;		/* virtual, of the relation's row type */
} WamInsertState;

extern void wam_insert_begin(WamInsertState *st, Relation rel);
extern bool wam_insert_if_absent(WamInsertState *st);
extern void wam_insert_end(WamInsertState *st);

#endif							/* WAM_REFERRAL_STORE_H */
