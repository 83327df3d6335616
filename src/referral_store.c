/*-------------------------------------------------------------------------
 *
 * referral_store.c
 *	  Direct table access for the referral abuse trigger.
 *
 * The trigger runs on every referral insert, and a SPI query's executor
 * start-up (range table, plan tree, expression compilation, the check
 * constraints parsed again for every execution) cost several times the
 * work itself: a lookup by key and a one-row update.  The trigger therefore
 * reads by probing unique indexes, locks and updates the referrer's row with
 * the table AM, and inserts fingerprints with the same speculative insertion
 * INSERT ... ON CONFLICT DO NOTHING uses.  What the executor would add and
 * these writes skip is deliberate: privileges (the trigger is the
 * extension's own bookkeeping; only the extension owner and the SECURITY
 * DEFINER API (wam.record_referral) insert referrals), and the check
 * constraints and foreign keys of columns the writes set to values that
 * satisfy them by construction (the fingerprint's customer is the invitee,
 * whose foreign key the referral row itself checks at the end of the
 * statement).  Triggers on wam.referrer and
 * wam.customer_fingerprint do not see these writes (the extension defines
 * none for UPDATE or INSERT).
 *
 * The relations are resolved by name once per backend and forgotten on any
 * relcache invalidation of one of them (ALTER, DROP, REINDEX, a new
 * index ...).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/index.h"
#include "catalog/pg_am.h"
#include "executor/executor.h"
#include "nodes/execnodes.h"
#include "storage/lmgr.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "referral_store.h"

static WamReferralRels wam_rels;
static bool wam_rels_valid = false;
static bool wam_rels_callback = false;
/* counts invalidations, so that one arriving during a lookup is not lost */
static uint64 wam_rels_invals = 0;

static void
wam_rels_invalidate(Datum arg, Oid relid)
{
	wam_rels_invals++;
	if (!wam_rels_valid)
		return;
	if (relid == InvalidOid ||
		relid == wam_rels.referral || relid == wam_rels.referrer ||
		relid == wam_rels.program || relid == wam_rels.customer ||
		relid == wam_rels.fingerprint ||
		relid == wam_rels.referral_invitee_once || relid == wam_rels.referrer_code ||
		relid == wam_rels.program_pkey || relid == wam_rels.customer_pkey ||
		relid == wam_rels.fingerprint_pkey)
		wam_rels_valid = false;
}

static Oid
rels_table(Oid nsp, const char *name)
{
	Oid			relid = get_relname_relid(name, nsp);

	if (!OidIsValid(relid))
		elog(ERROR, "relation wam.%s does not exist", name);
	return relid;
}

static AttrNumber
rels_column(Oid relid, const char *name)
{
	AttrNumber	att = get_attnum(relid, name);

	if (att <= 0)
		elog(ERROR, "relation %s has no column %s", get_rel_name(relid), name);
	return att;
}

/*
 * The unique btree index of `relid` whose key columns are exactly `cols`
 * (in order), with no expressions; with `predicate`, the one that is partial,
 * else one that is not.
 */
static Oid
rels_unique_index(Oid relid, int ncols, const AttrNumber *cols, bool predicate)
{
	Relation	rel = table_open(relid, AccessShareLock);
	List	   *indexes = RelationGetIndexList(rel);
	ListCell   *lc;
	Oid			found = InvalidOid;

	foreach(lc, indexes)
	{
		Relation	ind = index_open(lfirst_oid(lc), AccessShareLock);
		Form_pg_index form = ind->rd_index;
		bool		match;

		match = form->indisunique && form->indisvalid && form->indimmediate &&
			ind->rd_rel->relam == BTREE_AM_OID &&
			form->indnkeyatts == ncols &&
			heap_attisnull(ind->rd_indextuple, Anum_pg_index_indexprs, NULL) &&
			heap_attisnull(ind->rd_indextuple, Anum_pg_index_indpred, NULL) != predicate;
		for (int i = 0; match && i < ncols; i++)
			match = form->indkey.values[i] == cols[i];
		index_close(ind, AccessShareLock);
		if (match)
		{
			found = lfirst_oid(lc);
			break;
		}
	}
	list_free(indexes);
	table_close(rel, AccessShareLock);
	if (!OidIsValid(found))
		elog(ERROR, "relation %s has no unique index on the columns the referral checks use",
			 get_rel_name(relid));
	return found;
}

/* Are the relations of schema `nsp` resolved and valid? */
bool
wam_referral_rels_cached(Oid nsp)
{
	return wam_rels_valid && wam_rels.nsp == nsp;
}

/*
 * The relations of the extension in schema `nsp` (the referral table's),
 * resolved by name on first use and after an invalidation.
 */
const WamReferralRels *
wam_referral_rels(Oid nsp)
{
	WamReferralRels r;
	AttrNumber	cols[3];
	uint64		invals;

	if (wam_rels_valid && wam_rels.nsp == nsp)
		return &wam_rels;
	if (!wam_rels_callback)
	{
		CacheRegisterRelcacheCallback(wam_rels_invalidate, (Datum) 0);
		wam_rels_callback = true;
	}
retry:
	invals = wam_rels_invals;
	memset(&r, 0, sizeof(r));
	r.nsp = nsp;
	r.referral = rels_table(nsp, "referral");
	r.referrer = rels_table(nsp, "referrer");
	r.program = rels_table(nsp, "referral_program");
	r.customer = rels_table(nsp, "customer");
	r.fingerprint = rels_table(nsp, "customer_fingerprint");

	r.rf_code = rels_column(r.referral, "code");
	r.rf_invitee = rels_column(r.referral, "invitee_id");
	r.rf_source = rels_column(r.referral, "source");
	r.rf_created = rels_column(r.referral, "created_at");
	r.rf_program = rels_column(r.referral, "program_id");
	r.rf_referrer = rels_column(r.referral, "referrer_id");
	r.rf_status = rels_column(r.referral, "status");
	r.rf_reason = rels_column(r.referral, "reason");
	r.rf_detail = rels_column(r.referral, "detail");

	r.rr_customer = rels_column(r.referrer, "customer_id");
	r.rr_program = rels_column(r.referrer, "program_id");
	r.rr_code = rels_column(r.referrer, "code");
	r.rr_status = rels_column(r.referrer, "status");
	r.rr_frozen_at = rels_column(r.referrer, "frozen_at");
	r.rr_recent = rels_column(r.referrer, "recent_attempts");
	r.rr_accepted = rels_column(r.referrer, "accepted");

	r.pg_id = rels_column(r.program, "id");
	r.pg_name = rels_column(r.program, "name");
	r.pg_cap = rels_column(r.program, "cap");
	r.pg_velocity = rels_column(r.program, "velocity_per_hour");
	r.pg_ring_depth = rels_column(r.program, "ring_depth");
	r.pg_signup_grace = rels_column(r.program, "signup_grace");
	r.pg_starts_at = rels_column(r.program, "starts_at");
	r.pg_ends_at = rels_column(r.program, "ends_at");

	r.cu_id = rels_column(r.customer, "id");
	r.cu_phone = rels_column(r.customer, "phone");
	r.cu_created = rels_column(r.customer, "created_at");
	r.cu_first_order = rels_column(r.customer, "first_order_at");

	r.fp_customer = rels_column(r.fingerprint, "customer_id");
	r.fp_kind = rels_column(r.fingerprint, "kind");
	r.fp_hash = rels_column(r.fingerprint, "value_hash");
	r.fp_first_seen = rels_column(r.fingerprint, "first_seen");

	cols[0] = r.rf_invitee;
	cols[1] = r.rf_program;
	r.referral_invitee_once = rels_unique_index(r.referral, 2, cols, true);
	cols[0] = r.rr_code;
	r.referrer_code = rels_unique_index(r.referrer, 1, cols, false);
	cols[0] = r.pg_id;
	r.program_pkey = rels_unique_index(r.program, 1, cols, false);
	cols[0] = r.cu_id;
	r.customer_pkey = rels_unique_index(r.customer, 1, cols, false);
	cols[0] = r.fp_customer;
	cols[1] = r.fp_kind;
	cols[2] = r.fp_hash;
	r.fingerprint_pkey = rels_unique_index(r.fingerprint, 3, cols, false);

	wam_rels = r;
	/*
	 * Opening the tables above processes pending invalidations; any that
	 * arrived after the first lookup may concern what was already read.
	 */
	if (wam_rels_invals != invals)
		goto retry;
	wam_rels_valid = true;
	return &wam_rels;
}

void
wam_probe_open(WamProbe *p, Oid heapoid, Oid indexoid, LOCKMODE heaplock)
{
	p->heap = table_open(heapoid, heaplock);
	p->index = index_open(indexoid, AccessShareLock);
	p->slot = table_slot_create(p->heap, NULL);
}

void
wam_probe_close(WamProbe *p)
{
	ExecDropSingleTupleTableSlot(p->slot);
	/* locks are kept to the end of the transaction, as the executor does */
	index_close(p->index, NoLock);
	table_close(p->heap, NoLock);
}

/*
 * An equality key on index column `indexcol`, with the index's collation
 * (text comparisons need one).
 */
void
wam_probe_key(WamProbe *p, ScanKey key, AttrNumber indexcol, RegProcedure eqproc, Datum value)
{
	ScanKeyEntryInitialize(key, 0, indexcol, BTEqualStrategyNumber, InvalidOid,
						   p->index->rd_indcollation[indexcol - 1], eqproc, value);
}

/*
 * The row of the index entry matching `keys` that `snapshot` sees, in
 * p->slot (valid until the next fetch); false if none.  The index is unique,
 * so the first visible one is the one.
 */
bool
wam_probe_fetch(WamProbe *p, Snapshot snapshot, ScanKey keys, int nkeys)
{
	IndexScanDesc scan;
	bool		found;

	ExecClearTuple(p->slot);
	scan = index_beginscan(p->heap, p->index, snapshot, nkeys, 0);
	index_rescan(scan, keys, nkeys, NULL, 0);
	found = index_getnext_slot(scan, ForwardScanDirection, p->slot);
	index_endscan(scan);
	return found;
}

/*
 * Locks the row at *tid for update (FOR NO KEY UPDATE), as UPDATE would:
 * waits for a transaction updating it, and in READ COMMITTED then locks the
 * row's latest version (*tid and `slot` then hold it); under REPEATABLE
 * READ or SERIALIZABLE a concurrent update is a serialization failure.
 * Returns false when the row was deleted meanwhile.
 */
bool
wam_lock_row_for_update(Relation rel, ItemPointer tid, Snapshot snapshot, TupleTableSlot *slot)
{
	TM_FailureData tmfd;
	TM_Result	res;
	bool		xact_snapshot = IsolationUsesXactSnapshot();

	res = table_tuple_lock(rel, tid, snapshot, slot, GetCurrentCommandId(true),
						   LockTupleNoKeyExclusive, LockWaitBlock,
						   xact_snapshot ? 0 : TUPLE_LOCK_FLAG_FIND_LAST_VERSION, &tmfd);
	switch (res)
	{
		case TM_Ok:
			return true;
		case TM_Updated:
		case TM_Deleted:
			if (xact_snapshot)
				ereport(ERROR,
						(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
						 errmsg("could not serialize access due to concurrent update")));
			if (res == TM_Deleted)
				return false;
			elog(ERROR, "unexpected concurrent update of a row of %s",
				 RelationGetRelationName(rel));
			break;
		case TM_SelfModified:
			elog(ERROR, "row of %s already modified by this command",
				 RelationGetRelationName(rel));
			break;
		default:
			elog(ERROR, "unexpected result %d locking a row of %s", (int) res,
				 RelationGetRelationName(rel));
	}
	return false;				/* keep compiler quiet */
}

/*
 * Replaces the row at *otid, which this transaction has locked, by `newtup`,
 * and when the update could not be HOT adds its index entries (with their
 * uniqueness checks), as UPDATE would.
 */
void
wam_update_row(Relation rel, ItemPointer otid, HeapTuple newtup)
{
	simple_heap_update(rel, otid, newtup);
	if (!HeapTupleIsHeapOnly(newtup))
	{
		EState	   *estate = CreateExecutorState();
		ResultRelInfo *rri = makeNode(ResultRelInfo);
		TupleTableSlot *slot = MakeSingleTupleTableSlot(RelationGetDescr(rel),
														&TTSOpsHeapTuple);

		InitResultRelInfo(rri, rel, 1, NULL, 0);
		ExecOpenIndices(rri, false);
		ExecStoreHeapTuple(newtup, slot, false);
		list_free(ExecInsertIndexTuples(rri, slot, estate, false, false, NULL, NIL));
		ExecDropSingleTupleTableSlot(slot);
		ExecCloseIndices(rri);
		FreeExecutorState(estate);
	}
}

/*
 * Opens the indexes of `rel` for wam_insert_if_absent and makes st->slot, a
 * virtual slot of its row type for the caller to fill.
 */
void
wam_insert_begin(WamInsertState *st, Relation rel)
{
	st->rel = rel;
	st->estate = CreateExecutorState();
	st->rri = makeNode(ResultRelInfo);
	InitResultRelInfo(st->rri, rel, 1, NULL, 0);
	ExecOpenIndices(st->rri, true);
	st->slot = MakeSingleTupleTableSlot(RelationGetDescr(rel), &TTSOpsVirtual);
}

void
wam_insert_end(WamInsertState *st)
{
	ExecDropSingleTupleTableSlot(st->slot);
	ExecCloseIndices(st->rri);
	FreeExecutorState(st->estate);
}

/*
 * INSERT ... ON CONFLICT DO NOTHING of the row in st->slot, with the same
 * speculative insertion the executor uses: when a conflicting row exists
 * (or is being inserted by a transaction that then commits), nothing is
 * inserted.  Returns whether the row was inserted.  (Under REPEATABLE READ
 * the executor would also raise a serialization failure when the existing
 * row is not visible to the transaction's snapshot; for a fingerprint that
 * is already known that changes nothing, so it is not done here.)
 */
bool
wam_insert_if_absent(WamInsertState *st)
{
	for (;;)
	{
		ItemPointerData conflict;
		uint32		token;
		bool		spec_conflict = false;

		if (!ExecCheckIndexConstraints(st->rri, st->slot, st->estate, &conflict, NIL))
			return false;
		token = SpeculativeInsertionLockAcquire(GetCurrentTransactionId());
		table_tuple_insert_speculative(st->rel, st->slot, GetCurrentCommandId(true), 0, NULL,
									   token);
		list_free(ExecInsertIndexTuples(st->rri, st->slot, st->estate, false, true,
										&spec_conflict, NIL));
		table_tuple_complete_speculative(st->rel, st->slot, token, !spec_conflict);
		SpeculativeInsertionLockRelease(GetCurrentTransactionId());
		ResetPerTupleExprContext(st->estate);
		if (!spec_conflict)
			return true;
		/* lost a race with a concurrent insert of the same key: look again */
	}
}
