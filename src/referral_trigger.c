/*-------------------------------------------------------------------------
 *
 * referral_trigger.c
 *	  The abuse checks of the referral program: a BEFORE INSERT row trigger
 *	  on wam.referral (requirements R-F1, R-F5).
 *
 * Referral platforms run these checks in their own service, after the
 * fact; here they run inside the transaction that records the referral, so
 * the decision and the row are one atomic fact.  The trigger never refuses
 * a row: every attempt is kept, with status pending, review or rejected
 * and, unless pending, a reason and a human-readable detail.
 *
 * Order of decisions (first one that applies wins):
 *	 mistyped code, unknown code, program inactive  (no referrer known)
 *	 self-referral, same phone, shared device, shared payment,
 *	 existing customer, already referred, ring, cap  -> rejected
 *	 velocity (this attempt freezes the referrer), referrer frozen -> review
 *	 otherwise pending.
 * The velocity count runs for every attempt with a known referrer, so a
 * burst of rejected attempts still freezes the account.
 *
 * Concurrency: before anything is counted the trigger locks the referrer's
 * row in wam.referrer FOR NO KEY UPDATE, and at the end updates it once (the
 * attempt times, the accepted count, a freeze), so all attempts with one
 * code serialize on that row lock and each sees the ones committed before
 * it (in READ COMMITTED the lock is taken on the latest row version after
 * the wait, as UPDATE does).  Racing sessions therefore leave exactly `cap`
 * accepted referrals and freeze the referrer once.  Two attempts that share
 * a person -- the same invitee, or one's invitee the other's referrer --
 * serialize on (program, person) locks and the uncommitted rows of each
 * other (see referral_take_person_locks), so the first valid referral of an
 * invitee wins and rings of two and three people closed by concurrent
 * attempts are caught (longer ones closed by concurrent links are not); a
 * partial unique index backs "one live referral per invitee" up.  Under
 * REPEATABLE READ or SERIALIZABLE a concurrent attempt with the same code
 * fails with a serialization error instead: retry it.
 *
 * The velocity window is kept in the locked row itself (the times of the
 * latest attempts), so an attempt whose transaction started earlier but got
 * the lock later still counts the ones that committed before it.
 *
 * Reads and writes go straight to the tables' indexes and heap
 * (referral_store.c): a SPI query's executor start-up cost several times the
 * lookup it did.  Only freezing a referrer, which is rare, runs SQL.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/relscan.h"
#include "access/stratnum.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "storage/lock.h"
#include "storage/proc.h"
#include "utils/resowner.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/fmgrprotos.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "backup.h"
#include "phone.h"
#include "referral_code.h"
#include "referral_store.h"
#include "wam_lock.h"

PG_FUNCTION_INFO_V1(wam_referral_check);

/* in referral_sql.c */
extern Datum wam_referral_attempts(PG_FUNCTION_ARGS);

/* The SQL of the rare path: a referrer frozen for velocity. */
typedef enum
{
	Q_FREEZE_PENDING,
	Q_REVIEW_ITEM,
	Q_COUNT
} WamReferralQuery;

typedef struct
{
	const char *sql;
	int			nargs;
	Oid			argtypes[5];
} WamReferralQueryDef;

static const WamReferralQueryDef wam_referral_queries[Q_COUNT] = {
	[Q_FREEZE_PENDING] = {
		"UPDATE wam.referral SET status = 'review', reason = 'velocity', "
		"detail = 'Pending when the referrer was frozen for review.' "
		"WHERE referrer_id = $1 AND program_id = $2 AND status = 'pending'",
		2, {INT8OID, INT4OID}
	},
	[Q_REVIEW_ITEM] = {
		"INSERT INTO wam.referral_review (program_id, referrer_id, kind, opened_at, details) "
		"VALUES ($2, $1, 'velocity', $3, pg_catalog.jsonb_build_object("
		"'invitations_last_hour', $4, 'velocity_per_hour', $5)) ON CONFLICT DO NOTHING",
		5, {INT8OID, INT4OID, TIMESTAMPTZOID, INT4OID, INT4OID}
	},
};

static SPIPlanPtr wam_referral_plans[Q_COUNT];

/*
 * Runs a query of the rare path, prepared once per backend and kept.  The
 * caller has connected to SPI with sequential scans off: a plan made while
 * wam.referral is small or just truncated would otherwise scan it
 * sequentially forever after.
 */
static void
referral_exec(WamReferralQuery q, Datum *args)
{
	int			rc;

	if (wam_referral_plans[q] == NULL)
	{
		const WamReferralQueryDef *def = &wam_referral_queries[q];
		SPIPlanPtr	plan = SPI_prepare_cursor(def->sql, def->nargs, (Oid *) def->argtypes,
											  CURSOR_OPT_GENERIC_PLAN);

		if (plan == NULL)
			elog(ERROR, "wam_referral_check: SPI_prepare failed: %s",
				 SPI_result_code_string(SPI_result));
		if (SPI_keepplan(plan) != 0)
			elog(ERROR, "wam_referral_check: SPI_keepplan failed");
		wam_referral_plans[q] = plan;
	}
	rc = SPI_execute_plan(wam_referral_plans[q], args, NULL, false, 0);
	if (rc < 0)
		elog(ERROR, "wam_referral_check: query %d failed: %s", (int) q,
			 SPI_result_code_string(rc));
}

/*
 * The (program, person) locks.  Two attempts that share a person -- the
 * same invitee, or one's invitee the other's referrer -- must not check at
 * the same time, or both could pass "already referred" or close a ring
 * together.  An attempt holds the locks of its invitee and referrer only
 * from its checks until its row is in wam.referral's indexes: the next
 * attempt of the same transaction releases them (or the end of the
 * transaction does).  From then on a concurrent attempt finds the row,
 * still uncommitted, with a dirty probe of referral_invitee_once and waits
 * for its transaction (referral_wait_inflight).  Holding them to commit
 * would take a lock-table entry per person, and a transaction recording
 * tens of thousands of referrals would run out of shared memory.  The locks
 * are advisory locks in the extension's own lock space (wam_lock.h: no role
 * can take them with pg_advisory_lock()), visible in pg_locks, owned by the
 * top transaction so that any later attempt can release them.
 */
typedef struct ReferralPersonLocks
{
	LocalTransactionId lxid;
	int			n;
	int64		keys[2];
} ReferralPersonLocks;

static ReferralPersonLocks wam_person_locks;

static void
person_lock_tag(LOCKTAG *tag, int64 key)
{
	wam_lock_tag(tag, WAM_LOCK_REFERRAL_PERSON, key);
}

static void
referral_release_person_locks(void)
{
	if (wam_person_locks.n > 0 && wam_person_locks.lxid == MyProc->lxid)
	{
		ResourceOwner save = CurrentResourceOwner;

		CurrentResourceOwner = TopTransactionResourceOwner;
		for (int i = 0; i < wam_person_locks.n; i++)
		{
			LOCKTAG		tag;

			person_lock_tag(&tag, wam_person_locks.keys[i]);
			LockRelease(&tag, ExclusiveLock, false);
		}
		CurrentResourceOwner = save;
	}
	wam_person_locks.n = 0;
}

/* Takes the locks of two keys (in key order: no deadlock between attempts). */
static void
referral_take_person_locks(int64 a, int64 b)
{
	int64		keys[2] = {Min(a, b), Max(a, b)};
	ResourceOwner save = CurrentResourceOwner;

	referral_release_person_locks();
	wam_person_locks.lxid = MyProc->lxid;
	CurrentResourceOwner = TopTransactionResourceOwner;
	for (int i = 0; i < 2; i++)
	{
		LOCKTAG		tag;

		if (i == 1 && keys[1] == keys[0])
			break;
		person_lock_tag(&tag, keys[i]);
		(void) LockAcquire(&tag, ExclusiveLock, false, false);
		wam_person_locks.keys[wam_person_locks.n++] = keys[i];
	}
	CurrentResourceOwner = save;
}

/*
 * "Who referred this customer in this program": the referrer of its live
 * (pending, qualified or review) referral, read by direct probes of the
 * partial unique index referral_invitee_once.  The trigger makes two to
 * ring_depth of them per attempt, each after waiting for the transactions
 * that are writing a referral of that invitee (see above), with a fresh
 * snapshot (in READ COMMITTED) so that it sees what they committed.
 * referral_probe_begin first makes this transaction's changes so far
 * visible (CommandCounterIncrement), as a SPI query of a read-write
 * function would.
 */
typedef struct ReferralProbe
{
	WamProbe	p;
	const WamReferralRels *R;
} ReferralProbe;

static void
referral_probe_begin(ReferralProbe *rp, const WamReferralRels *R)
{
	rp->R = R;
	wam_probe_open(&rp->p, R->referral, R->referral_invitee_once, RowExclusiveLock);
	CommandCounterIncrement();
}

static void
referral_probe_end(ReferralProbe *rp)
{
	wam_probe_close(&rp->p);
}

/* Is the referral row in the probe's slot live (the index predicate)? */
static bool
referral_row_live(ReferralProbe *rp, int64 *referrer)
{
	bool		isnull;
	char	   *st = TextDatumGetCString(slot_getattr(rp->p.slot, rp->R->rf_status, &isnull));
	Datum		d = slot_getattr(rp->p.slot, rp->R->rf_referrer, &isnull);
	bool		live;

	/* the index predicate says so; checked anyway */
	live = (strcmp(st, "pending") == 0 || strcmp(st, "qualified") == 0 ||
			strcmp(st, "review") == 0) && !isnull;
	if (live && referrer != NULL)
		*referrer = DatumGetInt64(d);
	pfree(st);
	return live;
}

/*
 * Waits until no other transaction is inserting a referral of the invitee
 * in `keys`: a dirty probe sees their uncommitted rows.  Returns whether a
 * live referral of the invitee exists then, committed or this transaction's
 * own, whether or not the caller's snapshot can see it.
 *
 * Rows being updated are not waited for.  No update makes a referral live
 * that was not (they go pending -> qualified, review -> pending, or to a
 * closed status), so the committed version the snapshot sees decides; and
 * waiting for them would make an attempt that holds its referrer's row wait
 * for an order that qualifies a referral of that referrer, which itself
 * waits to lock that row: a deadlock.
 */
static bool
referral_wait_inflight(ReferralProbe *rp, ScanKey keys)
{
	for (;;)
	{
		SnapshotData dirty;
		IndexScanDesc scan;
		TransactionId xwait = InvalidTransactionId;
		bool		live = false;

		InitDirtySnapshot(dirty);
		scan = index_beginscan(rp->p.heap, rp->p.index, &dirty, 2, 0);
		index_rescan(scan, keys, 2, NULL, 0);
		while (index_getnext_slot(scan, ForwardScanDirection, rp->p.slot))
		{
			/* dirty.xmin: set by the visibility check of the row just returned */
			if (TransactionIdIsValid(dirty.xmin))
			{
				HeapTuple	tup = ExecFetchSlotHeapTuple(rp->p.slot, false, NULL);

				if (tup->t_data->t_infomask & HEAP_UPDATED)
					continue;	/* a new version of an updated row */
				xwait = dirty.xmin;
				break;
			}
			live = live || referral_row_live(rp, NULL);
		}
		index_endscan(scan);
		ExecClearTuple(rp->p.slot);
		if (!TransactionIdIsValid(xwait))
			return live;
		XactLockTableWait(xwait, NULL, NULL, XLTW_None);
		CHECK_FOR_INTERRUPTS();
	}
}

/* Who referred `invitee` in `program`, if anyone: true and *referrer. */
static bool
referral_probe(ReferralProbe *rp, int64 invitee, int32 program, int64 *referrer)
{
	ScanKeyData keys[2];
	Snapshot	snapshot;
	bool		exists;
	bool		live = false;

	wam_probe_key(&rp->p, &keys[0], 1, F_INT8EQ, Int64GetDatum(invitee));
	wam_probe_key(&rp->p, &keys[1], 2, F_INT4EQ, Int32GetDatum(program));
	exists = referral_wait_inflight(rp, keys);
	snapshot = RegisterSnapshot(GetTransactionSnapshot());
	if (wam_probe_fetch(&rp->p, snapshot, keys, 2))
		live = referral_row_live(rp, referrer);
	ExecClearTuple(rp->p.slot);
	UnregisterSnapshot(snapshot);

	/*
	 * Under REPEATABLE READ or SERIALIZABLE the snapshot may not see a
	 * referral another transaction committed meanwhile: deciding without it
	 * would end in a unique violation, or miss a ring.
	 */
	if (!live && exists && IsolationUsesXactSnapshot())
		ereport(ERROR,
				(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
				 errmsg("could not serialize access due to a concurrent referral of customer " INT64_FORMAT,
						invitee),
				 errhint("Retry the transaction.")));
	return live;
}

/* The string value of a top-level key of a jsonb object, or NULL. */
static char *
source_string(Jsonb *source, const char *key)
{
	JsonbValue	k;
	JsonbValue *v;

	if (source == NULL || !JB_ROOT_IS_OBJECT(source))
		return NULL;
	k.type = jbvString;
	k.val.string.val = (char *) key;
	k.val.string.len = strlen(key);
	v = findJsonbValueFromContainer(&source->root, JB_FOBJECT, &k);
	if (v == NULL)
		return NULL;
	if (v->type == jbvString && v->val.string.len > 0)
		return pnstrdup(v->val.string.val, v->val.string.len);
	if (v->type == jbvNumeric)
		return DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(v->val.numeric)));
	return NULL;
}

/* Is the phone typed at sign-up (any format) the referrer's number? */
static bool
same_phone(const char *typed, const char *referrer_phone)
{
	char		out[WAM_PHONE_OUT_SIZE];
	char		reason[WAM_PHONE_REASON_SIZE];
	const char *country;

	if (typed == NULL)
		return false;
	/* a national number is read in the referrer's country */
	country = wam_phone_country(referrer_phone, strlen(referrer_phone));
	if (wam_phone_normalize(typed, strlen(typed), country, out, sizeof(out),
							reason, sizeof(reason)) != WAM_PHONE_OK)
		return false;
	return strcmp(out, referrer_phone) == 0;
}

/*
 * The stored form of a fingerprint: SHA-256 of the value in UTF-8, as
 * pg_catalog.sha256(convert_to(value, 'UTF8')) computes it in
 * wam.record_fingerprint.
 */
static Datum
fingerprint_hash(const char *value)
{
	size_t		len = strlen(value);
	char	   *utf8 = pg_server_to_any(value, len, PG_UTF8);

	if (utf8 != value)
		len = strlen(utf8);
	return DirectFunctionCall1(sha256_bytea, PointerGetDatum(cstring_to_text_with_len(utf8, len)));
}

/*
 * Remembers the invitee's fingerprint of `kind` (ON CONFLICT DO NOTHING,
 * through `ins` on wam.customer_fingerprint) and tells whether the referrer
 * has the same one.
 */
static bool
fingerprint_shared(const WamReferralRels *R, WamProbe *fp, WamInsertState *ins,
				   Snapshot snapshot, int64 referrer, int64 invitee, const char *kind,
				   const char *value, TimestampTz seen)
{
	Datum		hash = fingerprint_hash(value);
	Datum		kind_text = CStringGetTextDatum(kind);
	ScanKeyData keys[3];
	TupleTableSlot *row = ins->slot;
	bool		shared;

	wam_probe_key(fp, &keys[0], 1, F_INT8EQ, Int64GetDatum(referrer));
	wam_probe_key(fp, &keys[1], 2, F_TEXTEQ, kind_text);
	wam_probe_key(fp, &keys[2], 3, F_BYTEAEQ, hash);
	shared = wam_probe_fetch(fp, snapshot, keys, 3);

	ExecClearTuple(row);
	memset(row->tts_isnull, true, sizeof(bool) * row->tts_tupleDescriptor->natts);
	row->tts_values[R->fp_customer - 1] = Int64GetDatum(invitee);
	row->tts_values[R->fp_kind - 1] = kind_text;
	row->tts_values[R->fp_hash - 1] = hash;
	row->tts_values[R->fp_first_seen - 1] = TimestampTzGetDatum(seen);
	row->tts_isnull[R->fp_customer - 1] = false;
	row->tts_isnull[R->fp_kind - 1] = false;
	row->tts_isnull[R->fp_hash - 1] = false;
	row->tts_isnull[R->fp_first_seen - 1] = false;
	ExecStoreVirtualTuple(row);
	(void) wam_insert_if_absent(ins);
	return shared;
}

/* Everything the trigger decides about one attempt. */
typedef struct ReferralDecision
{
	const char *status;
	const char *reason;
	char	   *detail;
	bool		have_referrer;
	int32		program;
	int64		referrer;
} ReferralDecision;

static void
reject(ReferralDecision *d, const char *reason, char *detail)
{
	d->status = "rejected";
	d->reason = reason;
	d->detail = detail;
}

/*
 * The checks of an attempt with a well-formed code `canon` (see the file
 * header for their order).  Fills *d; the referrer's row stays locked to the
 * end of the transaction.
 */
static void
referral_decide(const WamReferralRels *R, const char *canon, int64 invitee, Jsonb *source,
				TimestampTz created, ReferralDecision *d)
{
	Snapshot	snapshot;
	WamProbe	rr,
				pg,
				cu;
	ScanKeyData key;
	ItemPointerData tid;
	bool		isnull;
	bool		found;
	bool		pg_open = false;
	bool		frozen;
	int32		accepted,
				cap,
				velocity,
				ring_depth;
	Interval   *grace;
	char	   *program_name;
	bool		active;
	TimestampTz inv_created;
	TimestampTz inv_first_order = 0;
	bool		inv_no_order;
	Datum		attempts;
	int32		recent;
	bool		rejected = false;
	bool		freeze;
	char	   *typed_phone = source_string(source, "phone");
	char	   *device = source_string(source, "device");
	char	   *payment = source_string(source, "payment");

	/*
	 * As a SPI query of a read-write function would: this transaction's
	 * earlier changes (an earlier row of the same statement) are visible, and
	 * in READ COMMITTED the snapshot is fresh.
	 */
	CommandCounterIncrement();
	snapshot = RegisterSnapshot(GetTransactionSnapshot());

	/* the referrer, locked */
	wam_probe_open(&rr, R->referrer, R->referrer_code, RowExclusiveLock);
	wam_probe_key(&rr, &key, 1, F_TEXTEQ, CStringGetTextDatum(canon));
	found = wam_probe_fetch(&rr, snapshot, &key, 1);
	if (found)
	{
		tid = rr.slot->tts_tid;
		found = wam_lock_row_for_update(rr.heap, &tid, snapshot, rr.slot);
	}
	if (found)
	{
		/* the latest version, if the lock waited for an update */
		char	   *code = TextDatumGetCString(slot_getattr(rr.slot, R->rr_code, &isnull));

		found = strcmp(code, canon) == 0;
	}
	if (found)
	{
		d->program = DatumGetInt32(slot_getattr(rr.slot, R->rr_program, &isnull));
		d->referrer = DatumGetInt64(slot_getattr(rr.slot, R->rr_customer, &isnull));

		wam_probe_open(&pg, R->program, R->program_pkey, AccessShareLock);
		pg_open = true;
		wam_probe_key(&pg, &key, 1, F_INT4EQ, Int32GetDatum(d->program));
		found = wam_probe_fetch(&pg, snapshot, &key, 1);
	}
	if (!found)
	{
		reject(d, "unknown code", psprintf("No referral code %s has been issued.", canon));
		if (pg_open)
			wam_probe_close(&pg);
		wam_probe_close(&rr);
		UnregisterSnapshot(snapshot);
		return;
	}
	d->have_referrer = true;
	{
		char	   *st = TextDatumGetCString(slot_getattr(rr.slot, R->rr_status, &isnull));

		frozen = strcmp(st, "frozen") == 0;
	}
	accepted = DatumGetInt32(slot_getattr(rr.slot, R->rr_accepted, &isnull));
	cap = DatumGetInt32(slot_getattr(pg.slot, R->pg_cap, &isnull));
	velocity = DatumGetInt32(slot_getattr(pg.slot, R->pg_velocity, &isnull));
	ring_depth = DatumGetInt32(slot_getattr(pg.slot, R->pg_ring_depth, &isnull));
	grace = DatumGetIntervalP(datumCopy(slot_getattr(pg.slot, R->pg_signup_grace, &isnull),
										false, sizeof(Interval)));
	program_name = TextDatumGetCString(slot_getattr(pg.slot, R->pg_name, &isnull));
	{
		Datum		starts = slot_getattr(pg.slot, R->pg_starts_at, &isnull);

		active = isnull || DatumGetTimestampTz(starts) <= created;
		if (active)
		{
			Datum		ends = slot_getattr(pg.slot, R->pg_ends_at, &isnull);

			active = isnull || DatumGetTimestampTz(ends) > created;
		}
	}
	wam_probe_close(&pg);

	/* the invitee */
	wam_probe_open(&cu, R->customer, R->customer_pkey, AccessShareLock);
	wam_probe_key(&cu, &key, 1, F_INT8EQ, Int64GetDatum(invitee));
	if (!wam_probe_fetch(&cu, snapshot, &key, 1))
		ereport(ERROR,
				(errcode(ERRCODE_FOREIGN_KEY_VIOLATION),
				 errmsg("customer " INT64_FORMAT " does not exist", invitee)));
	inv_created = DatumGetTimestampTz(slot_getattr(cu.slot, R->cu_created, &isnull));
	{
		Datum		first = slot_getattr(cu.slot, R->cu_first_order, &inv_no_order);

		if (!inv_no_order)
			inv_first_order = DatumGetTimestampTz(first);
	}

	if (!active)
	{
		/* nothing counts while the program is not running */
		reject(d, "program inactive",
			   psprintf("Referral program \"%s\" is not running at the time of the referral.",
						program_name));
		wam_probe_close(&cu);
		wam_probe_close(&rr);
		UnregisterSnapshot(snapshot);
		return;
	}

	/*
	 * Velocity: the attempt times kept in the row, this one included;
	 * recent = attempts in the hour before this one (up to velocity).
	 */
	attempts = DirectFunctionCall3(wam_referral_attempts,
								   slot_getattr(rr.slot, R->rr_recent, &isnull),
								   TimestampTzGetDatum(created), Int32GetDatum(velocity));
	/* one-dimensional (wam_referral_attempts builds it) */
	recent = ARR_DIMS(DatumGetArrayTypeP(attempts))[0] - 1;

	if (invitee == d->referrer)
	{
		rejected = true;
		reject(d, "self-referral", pstrdup("The invitee is the referrer."));
	}
	else if (typed_phone != NULL)
	{
		char	   *referrer_phone;

		wam_probe_key(&cu, &key, 1, F_INT8EQ, Int64GetDatum(d->referrer));
		if (wam_probe_fetch(&cu, snapshot, &key, 1))
		{
			referrer_phone = TextDatumGetCString(slot_getattr(cu.slot, R->cu_phone, &isnull));
			if (same_phone(typed_phone, referrer_phone))
			{
				rejected = true;
				reject(d, "same phone",
					   pstrdup("The phone number given by the invitee is the referrer's."));
			}
		}
	}
	wam_probe_close(&cu);

	if (device != NULL || payment != NULL)
	{
		/* remember the invitee's fingerprints; does the referrer share one? */
		WamProbe	fp;
		WamInsertState ins;
		bool		dev_shared = false,
					pay_shared = false;

		wam_probe_open(&fp, R->fingerprint, R->fingerprint_pkey, RowExclusiveLock);
		wam_insert_begin(&ins, fp.heap);
		if (device != NULL)
			dev_shared = fingerprint_shared(R, &fp, &ins, snapshot, d->referrer, invitee,
											"device", device, created);
		if (payment != NULL)
			pay_shared = fingerprint_shared(R, &fp, &ins, snapshot, d->referrer, invitee,
											"payment", payment, created);
		wam_insert_end(&ins);
		wam_probe_close(&fp);
		if (!rejected && (dev_shared || pay_shared))
		{
			const char *kind = dev_shared ? "device" : "payment";

			rejected = true;
			reject(d, dev_shared ? "shared device" : "shared payment",
				   psprintf("The invitee's %s fingerprint is also the referrer's.", kind));
		}
	}
	UnregisterSnapshot(snapshot);

	if (!rejected && !inv_no_order && inv_first_order < created)
	{
		rejected = true;
		reject(d, "existing customer",
			   psprintf("The invitee ordered on %s, before the referral.",
						timestamptz_to_str(inv_first_order)));
	}
	if (!rejected &&
		inv_created < DatumGetTimestampTz(DirectFunctionCall2(timestamptz_mi_interval,
															  TimestampTzGetDatum(created),
															  IntervalPGetDatum(grace))))
	{
		rejected = true;
		reject(d, "existing customer",
			   psprintf("The invitee has been a customer since %s, longer than the sign-up grace period before the referral.",
						timestamptz_to_str(inv_created)));
	}
	if (!rejected)
	{
		/*
		 * First valid referral wins: serialize on (program, invitee).  The
		 * same lock on (program, referrer) makes two attempts that share a
		 * person wait for each other, so that the second one's ring walk
		 * sees the first: A inviting B while B invites A, or the last two
		 * links of a ring of three (see referral_take_person_locks).
		 */
		int64		base = ((int64) d->program & INT64CONST(0xffffffff)) << 32;
		int64		k_invitee = base | (invitee & INT64CONST(0xffffffff));
		int64		k_referrer = base | (d->referrer & INT64CONST(0xffffffff));
		ReferralProbe probe;
		int64		first;
		int64		up;

		referral_take_person_locks(k_invitee, k_referrer);
		referral_probe_begin(&probe, R);
		if (referral_probe(&probe, invitee, d->program, &first))
		{
			rejected = true;
			reject(d, "already referred",
				   psprintf("Customer " INT64_FORMAT " referred the invitee first.", first));
		}
		else if (referral_probe(&probe, d->referrer, d->program, &up))
		{
			/*
			 * Rings: walk up who referred whom from the referrer; meeting the
			 * invitee within ring_depth - 1 links means this referral closes
			 * a ring of at most ring_depth people.  Each invitee has at most
			 * one live referral per program, so the walk is a single path.
			 */
			StringInfoData path;
			int			hops = 1;

			initStringInfo(&path);
			appendStringInfo(&path, INT64_FORMAT " -> " INT64_FORMAT, up, d->referrer);
			while (hops < ring_depth)
			{
				if (up == invitee)
				{
					rejected = true;
					reject(d, "ring",
						   psprintf("The referral would close the ring %s -> " INT64_FORMAT ".",
									path.data, invitee));
					break;
				}
				if (++hops >= ring_depth || up == d->referrer)
					break;
				if (!referral_probe(&probe, up, d->program, &up))
					break;
				{
					char	   *tail = pstrdup(path.data);

					resetStringInfo(&path);
					appendStringInfo(&path, INT64_FORMAT " -> %s", up, tail);
				}
			}
		}
		referral_probe_end(&probe);
	}
	if (!rejected && accepted >= cap)
	{
		rejected = true;
		reject(d, "cap",
			   psprintf("The referrer already has %d accepted referrals, the cap of the program.",
						accepted));
	}

	/* velocity: counted for every attempt, rejected or not */
	freeze = recent >= velocity && !frozen;
	if (!rejected && freeze)
	{
		d->status = "review";
		d->reason = "velocity";
		d->detail = psprintf("%d invitations in the last hour exceed the limit of %d: the referrer is frozen for review.",
							 recent + 1, velocity);
	}
	else if (!rejected && frozen)
	{
		d->status = "review";
		d->reason = "referrer frozen";
		d->detail = pstrdup("The referrer is frozen for review.");
	}

	/* the referrer's row, once: attempt times, accepted count, freeze */
	{
		Datum		vals[4];
		bool		nulls[4] = {false, false, false, false};
		int			cols[4];
		int			n = 0;
		HeapTuple	newtup;

		cols[n] = R->rr_recent;
		vals[n++] = attempts;
		cols[n] = R->rr_accepted;
		vals[n++] = Int32GetDatum(accepted + (rejected ? 0 : 1));
		if (freeze)
		{
			cols[n] = R->rr_status;
			vals[n++] = CStringGetTextDatum("frozen");
			cols[n] = R->rr_frozen_at;
			vals[n++] = TimestampTzGetDatum(created);
		}
		newtup = heap_modify_tuple_by_cols(ExecFetchSlotHeapTuple(rr.slot, false, NULL),
										   RelationGetDescr(rr.heap), n, cols, vals, nulls);
		wam_update_row(rr.heap, &tid, newtup);
	}
	wam_probe_close(&rr);

	if (freeze)
	{
		/* the referrer's pending referrals go to review, and a review item */
		Datum		args[5];
		int			guc_level;

		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "wam_referral_check: SPI_connect failed");
		guc_level = NewGUCNestLevel();
		(void) set_config_option("enable_seqscan", "off", PGC_USERSET, PGC_S_SESSION,
								 GUC_ACTION_SAVE, true, 0, false);
		args[0] = Int64GetDatum(d->referrer);
		args[1] = Int32GetDatum(d->program);
		args[2] = TimestampTzGetDatum(created);
		args[3] = Int32GetDatum(recent + 1);
		args[4] = Int32GetDatum(velocity);
		referral_exec(Q_FREEZE_PENDING, args);
		referral_exec(Q_REVIEW_ITEM, args);
		AtEOXact_GUC(true, guc_level);
		SPI_finish();
	}
}

Datum
wam_referral_check(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	const WamReferralRels *R;
	Relation	rel;
	TupleDesc	desc;
	HeapTuple	tuple;
	bool		isnull;
	char	   *typed;
	int64		invitee;
	Jsonb	   *source = NULL;
	TimestampTz created;
	char		canon[WAM_REFCODE_DATA + 2];
	WamCodeStatus cst;
	ReferralDecision d = {"pending", NULL, NULL, false, 0, 0};
	Datum		newvals[6];
	bool		newnulls[6];
	int			cols[6];

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("wam_internal.referral_check_trigger() must be called as a trigger")));
	if (!TRIGGER_FIRED_BEFORE(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event) ||
		!TRIGGER_FIRED_BY_INSERT(trigdata->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("wam_internal.referral_check_trigger() must be fired BEFORE INSERT FOR EACH ROW")));

	rel = trigdata->tg_relation;
	desc = RelationGetDescr(rel);
	tuple = trigdata->tg_trigtuple;
	/* a restored referral was judged when it was made (src/backup.c) */
	if (wam_restoring())
		return PointerGetDatum(tuple);
	/*
	 * The extension's schema is fixed (not relocatable); its name is looked
	 * up only until the relations are cached for that schema.
	 */
	if (strcmp(RelationGetRelationName(rel), "referral") != 0 ||
		(!wam_referral_rels_cached(RelationGetNamespace(rel)) &&
		 strcmp(get_namespace_name(RelationGetNamespace(rel)), "wam") != 0))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("wam_internal.referral_check_trigger() must be a trigger of wam.referral, not of \"%s\"",
						RelationGetRelationName(rel))));
	R = wam_referral_rels(RelationGetNamespace(rel));

	/* NOT NULL constraints are checked after BEFORE triggers: check here */
	{
		Datum		v = heap_getattr(tuple, R->rf_code, desc, &isnull);

		if (isnull)
			ereport(ERROR,
					(errcode(ERRCODE_NOT_NULL_VIOLATION),
					 errmsg("referral code must not be null")));
		typed = TextDatumGetCString(v);
	}
	invitee = DatumGetInt64(heap_getattr(tuple, R->rf_invitee, desc, &isnull));
	if (isnull)
		ereport(ERROR,
				(errcode(ERRCODE_NOT_NULL_VIOLATION),
				 errmsg("invitee must not be null")));
	created = DatumGetTimestampTz(heap_getattr(tuple, R->rf_created, desc, &isnull));
	if (isnull)
		created = GetCurrentTransactionStartTimestamp();
	{
		Datum		v = heap_getattr(tuple, R->rf_source, desc, &isnull);

		if (!isnull)
			source = DatumGetJsonbP(v);
	}

	cst = wam_code_decode(typed, strlen(typed), WAM_REFCODE_DATA, canon);
	if (cst != WAM_CODE_OK)
		reject(&d, "mistyped code", pstrdup(wam_code_status_text(cst)));
	else
		referral_decide(R, canon, invitee, source, created, &d);

	cols[0] = R->rf_program;
	newvals[0] = Int32GetDatum(d.program);
	newnulls[0] = !d.have_referrer;
	cols[1] = R->rf_referrer;
	newvals[1] = Int64GetDatum(d.referrer);
	newnulls[1] = !d.have_referrer;
	cols[2] = R->rf_status;
	newvals[2] = CStringGetTextDatum(d.status);
	newnulls[2] = false;
	cols[3] = R->rf_reason;
	newvals[3] = d.reason ? CStringGetTextDatum(d.reason) : (Datum) 0;
	newnulls[3] = d.reason == NULL;
	cols[4] = R->rf_detail;
	newvals[4] = d.detail ? CStringGetTextDatum(d.detail) : (Datum) 0;
	newnulls[4] = d.detail == NULL;
	cols[5] = R->rf_code;
	newvals[5] = CStringGetTextDatum(cst == WAM_CODE_OK ? canon : typed);
	newnulls[5] = false;

	tuple = heap_modify_tuple_by_cols(tuple, desc, 6, cols, newvals, newnulls);
	return PointerGetDatum(tuple);
}
