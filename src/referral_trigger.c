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
 * Concurrency: the first query updates the referrer's row in wam.referrer
 * (attempt times, provisional cap slot) before anything is counted, so all
 * attempts with one code serialize on that row lock and each sees the ones
 * committed before it (in READ COMMITTED the update re-reads the latest row
 * version after the wait, and every later SPI query takes a fresh snapshot).  Racing sessions
 * therefore leave exactly `cap` accepted referrals and freeze the referrer
 * once.  Two referrers racing for the same invitee serialize on an advisory
 * lock of (program, invitee), and a partial unique index backs that up.
 * Under REPEATABLE READ or SERIALIZABLE a concurrent attempt with the same
 * code fails with a serialization error instead: retry it.
 *
 * The velocity window is kept in the locked row itself (the times of the
 * latest attempts), so an attempt whose transaction started earlier but got
 * the lock later still counts the ones that committed before it.
 *
 * All queries are prepared once per backend and kept (SPI_keepplan); "who
 * referred whom" is a direct probe of a partial unique index instead
 * (referral_probe).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/relscan.h"
#include "access/skey.h"
#include "access/stratnum.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/tuptable.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/jsonb.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "phone.h"
#include "referral_code.h"

PG_FUNCTION_INFO_V1(wam_referral_check);

/* Class of the advisory locks on (program, invitee); 0x57a3/0x57a4 are
 * used by tags and order statistics. */
#define WAM_REFERRAL_LOCK_CLASS 0x57a5

typedef enum
{
	Q_REFERRER,
	Q_PHONE,
	Q_FINGERPRINT,
	Q_FREEZE_REFERRER,
	Q_FREEZE_PENDING,
	Q_REVIEW_ITEM,
	Q_UNACCEPT,
	Q_COUNT
} WamReferralQuery;

typedef struct
{
	const char *sql;
	int			nargs;
	Oid			argtypes[5];
} WamReferralQueryDef;

static const WamReferralQueryDef wam_referral_queries[Q_COUNT] = {
	/*
	 * The referrer, locked by updating it at once: the attempt counts
	 * towards velocity (the attempt times are kept in the row) and,
	 * provisionally, towards the cap (taken back below if rejected); with
	 * its program and the invitee.  Each index scan
	 * allocates ~27 kB; a query with more of them frees more than glibc's
	 * trim threshold (128 kB) at its end, and giving that memory back to the
	 * kernel and faulting it in again costs more than the query itself: the
	 * lookups are split so that none crosses it.
	 */
	[Q_REFERRER] = {
		"UPDATE wam.referrer r SET accepted = r.accepted + 1, "
		"recent_attempts = wam.referral_attempts(r.recent_attempts, $2, p.velocity_per_hour) "
		"FROM wam.referral_program p LEFT JOIN wam.customer i ON i.id = $3 "
		"WHERE r.code = $1 AND p.id = r.program_id "
		"RETURNING r.program_id, r.customer_id, r.status, r.accepted - 1, p.cap, "
		"p.velocity_per_hour, p.ring_depth, p.signup_grace, p.name, "
		"(p.starts_at IS NULL OR p.starts_at <= $2) AND (p.ends_at IS NULL OR p.ends_at > $2), "
		"pg_catalog.cardinality(r.recent_attempts) - 1, i.id IS NOT NULL, i.created_at, i.first_order_at",
		3, {TEXTOID, TIMESTAMPTZOID, INT8OID}
	},
	/* only when the application gave the phone typed at sign-up */
	[Q_PHONE] = {
		"SELECT c.phone FROM wam.customer c WHERE c.id = $1",
		1, {INT8OID}
	},
	/*
	 * Remembers the invitee's fingerprints ($4) and finds one the referrer
	 * ($1) has; the SELECT does not see the rows the CTE inserts.
	 */
	[Q_FINGERPRINT] = {
		"WITH ins AS (INSERT INTO wam.customer_fingerprint (customer_id, kind, value_hash, first_seen) "
		"SELECT $4, x.k, pg_catalog.sha256(pg_catalog.convert_to(x.v, 'UTF8')), $5 "
		"FROM (VALUES ('device', $2), ('payment', $3)) x(k, v) WHERE x.v IS NOT NULL "
		"ON CONFLICT DO NOTHING) "
		"SELECT f.kind FROM wam.customer_fingerprint f WHERE f.customer_id = $1 AND ("
		"(f.kind = 'device' AND f.value_hash = pg_catalog.sha256(pg_catalog.convert_to($2, 'UTF8'))) OR "
		"(f.kind = 'payment' AND f.value_hash = pg_catalog.sha256(pg_catalog.convert_to($3, 'UTF8')))) "
		"ORDER BY f.kind LIMIT 1",
		5, {INT8OID, TEXTOID, TEXTOID, INT8OID, TIMESTAMPTZOID}
	},
	[Q_FREEZE_REFERRER] = {
		"UPDATE wam.referrer SET status = 'frozen', frozen_at = $3 "
		"WHERE customer_id = $1 AND program_id = $2",
		3, {INT8OID, INT4OID, TIMESTAMPTZOID}
	},
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
	/* a rejected attempt takes back its provisional cap slot */
	[Q_UNACCEPT] = {
		"UPDATE wam.referrer SET accepted = accepted - 1 WHERE customer_id = $1 AND program_id = $2",
		2, {INT8OID, INT4OID}
	},
};

static SPIPlanPtr wam_referral_plans[Q_COUNT];

static SPIPlanPtr
referral_plan(WamReferralQuery q)
{
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
	return wam_referral_plans[q];
}

/* Runs a kept query; nulls is a string of ' ' / 'n' as SPI wants, or NULL. */
static uint64
referral_exec(WamReferralQuery q, Datum *args, const char *nulls, long limit)
{
	int			rc = SPI_execute_plan(referral_plan(q), args, nulls, false, limit);

	if (rc < 0)
		elog(ERROR, "wam_referral_check: query %d failed: %s", (int) q,
			 SPI_result_code_string(rc));
	return SPI_processed;
}

static Datum
referral_col(int col, bool *isnull)
{
	return SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, col, isnull);
}

/* A column of wam.referral by name; the layout is fixed by the install
 * script but resolving by name keeps the C independent of column order. */
static int
referral_attnum(TupleDesc desc, const char *name)
{
	int			n = SPI_fnumber(desc, name);

	if (n <= 0)
		elog(ERROR, "wam.referral has no column %s", name);
	return n;
}

/*
 * "Who referred this customer in this program": the referrer of its live
 * (pending, qualified or review) referral, read by direct probes of the
 * partial unique index referral_invitee_once.  The trigger makes two to
 * ring_depth of them per attempt, and a SPI query's executor start-up cost
 * several times a probe.  referral_probe_begin opens the index and takes the
 * snapshot once for all of an attempt's probes; like a SPI query of a
 * read-write function it first makes this transaction's changes so far
 * visible (CommandCounterIncrement) and reads with a fresh snapshot (in
 * READ COMMITTED), so it sees the referrals committed by a session whose
 * advisory lock the caller waited for.
 */
typedef struct ReferralProbe
{
	Relation	rel;
	Relation	index;
	Snapshot	snapshot;
	TupleTableSlot *slot;
	int			att_status;
	int			att_referrer;
} ReferralProbe;

static void
referral_probe_begin(ReferralProbe *p, Relation rel, int att_status, int att_referrer)
{
	TupleDesc	desc = RelationGetDescr(rel);
	Oid			indexoid = get_relname_relid("referral_invitee_once",
											 RelationGetNamespace(rel));

	if (!OidIsValid(indexoid))
		elog(ERROR, "index wam.referral_invitee_once does not exist");
	p->rel = rel;
	p->index = index_open(indexoid, AccessShareLock);
	if (p->index->rd_index->indnatts != 2 ||
		p->index->rd_index->indkey.values[0] != referral_attnum(desc, "invitee_id") ||
		p->index->rd_index->indkey.values[1] != referral_attnum(desc, "program_id"))
		elog(ERROR, "index wam.referral_invitee_once is not on (invitee_id, program_id)");
	p->att_status = att_status;
	p->att_referrer = att_referrer;
	CommandCounterIncrement();
	p->snapshot = RegisterSnapshot(GetTransactionSnapshot());
	p->slot = table_slot_create(rel, NULL);
}

static void
referral_probe_end(ReferralProbe *p)
{
	ExecDropSingleTupleTableSlot(p->slot);
	UnregisterSnapshot(p->snapshot);
	index_close(p->index, AccessShareLock);
}

/* Who referred `invitee` in `program`, if anyone: true and *referrer. */
static bool
referral_probe(ReferralProbe *p, int64 invitee, int32 program, int64 *referrer)
{
	IndexScanDesc scan;
	ScanKeyData keys[2];
	bool		found = false;

	ScanKeyInit(&keys[0], 1, BTEqualStrategyNumber, F_INT8EQ, Int64GetDatum(invitee));
	ScanKeyInit(&keys[1], 2, BTEqualStrategyNumber, F_INT4EQ, Int32GetDatum(program));
	scan = index_beginscan(p->rel, p->index, p->snapshot, 2, 0);
	index_rescan(scan, keys, 2, NULL, 0);
	while (!found && index_getnext_slot(scan, ForwardScanDirection, p->slot))
	{
		bool		isnull;
		char	   *st = TextDatumGetCString(slot_getattr(p->slot, p->att_status, &isnull));

		/* the index predicate says so; checked anyway */
		if (strcmp(st, "pending") == 0 || strcmp(st, "qualified") == 0 ||
			strcmp(st, "review") == 0)
		{
			Datum		d = slot_getattr(p->slot, p->att_referrer, &isnull);

			if (!isnull)
			{
				*referrer = DatumGetInt64(d);
				found = true;
			}
		}
		pfree(st);
	}
	index_endscan(scan);
	return found;
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

Datum
wam_referral_check(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	Relation	rel;
	TupleDesc	desc;
	HeapTuple	tuple;
	int			att_code,
				att_invitee,
				att_source,
				att_created,
				att_program,
				att_referrer,
				att_status,
				att_reason,
				att_detail;
	bool		isnull;
	char	   *typed;
	int64		invitee;
	Jsonb	   *source = NULL;
	TimestampTz created;
	char		canon[WAM_REFCODE_DATA + 2];
	WamCodeStatus cst;
	const char *status = "pending";
	const char *reason = NULL;
	char	   *detail = NULL;
	bool		have_referrer = false;
	int32		program = 0;
	int64		referrer = 0;
	Datum		newvals[6];
	bool		newnulls[6];
	int			cols[6];
	MemoryContext caller_cxt;
	int			guc_level;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("wam.referral_check() must be called as a trigger")));
	if (!TRIGGER_FIRED_BEFORE(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event) ||
		!TRIGGER_FIRED_BY_INSERT(trigdata->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("wam.referral_check() must be fired BEFORE INSERT FOR EACH ROW")));

	rel = trigdata->tg_relation;
	desc = RelationGetDescr(rel);
	tuple = trigdata->tg_trigtuple;

	att_code = referral_attnum(desc, "code");
	att_invitee = referral_attnum(desc, "invitee_id");
	att_source = referral_attnum(desc, "source");
	att_created = referral_attnum(desc, "created_at");
	att_program = referral_attnum(desc, "program_id");
	att_referrer = referral_attnum(desc, "referrer_id");
	att_status = referral_attnum(desc, "status");
	att_reason = referral_attnum(desc, "reason");
	att_detail = referral_attnum(desc, "detail");

	/* NOT NULL constraints are checked after BEFORE triggers: check here */
	{
		Datum		d = heap_getattr(tuple, att_code, desc, &isnull);

		if (isnull)
			ereport(ERROR,
					(errcode(ERRCODE_NOT_NULL_VIOLATION),
					 errmsg("referral code must not be null")));
		typed = TextDatumGetCString(d);
	}
	invitee = DatumGetInt64(heap_getattr(tuple, att_invitee, desc, &isnull));
	if (isnull)
		ereport(ERROR,
				(errcode(ERRCODE_NOT_NULL_VIOLATION),
				 errmsg("invitee must not be null")));
	created = DatumGetTimestampTz(heap_getattr(tuple, att_created, desc, &isnull));
	if (isnull)
		created = GetCurrentTransactionStartTimestamp();
	{
		Datum		d = heap_getattr(tuple, att_source, desc, &isnull);

		if (!isnull)
			source = DatumGetJsonbP(d);
	}

	caller_cxt = CurrentMemoryContext;
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "wam_referral_check: SPI_connect failed");

	/*
	 * Every query below is a lookup by key, and its plan is kept for the
	 * session.  A plan made while wam.referral is small or just truncated
	 * would scan it sequentially forever after, making each insert cost
	 * O(table); planning (and any replanning after an invalidation) happens
	 * with sequential scans off, as a function's SET clause would do it.
	 */
	guc_level = NewGUCNestLevel();
	(void) set_config_option("enable_seqscan", "off", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);

	cst = wam_code_decode(typed, strlen(typed), WAM_REFCODE_DATA, canon);
	if (cst != WAM_CODE_OK)
	{
		status = "rejected";
		reason = "mistyped code";
		detail = pstrdup(wam_code_status_text(cst));
	}
	else
	{
		Datum		args[5];
		bool		isnull_up = true,
					inv_no_order = true,
					probing = false;
		ReferralProbe probe;
		char	   *referrer_phone = NULL;
		char	   *referrer_status;
		int32		accepted,
					cap,
					velocity,
					ring_depth;
		Interval   *grace;
		char	   *program_name;
		bool		active;
		bool		invitee_exists;
		TimestampTz inv_created = 0;
		TimestampTz inv_first_order = 0;
		int64		up = 0;
		bool		rejected = false;
		int32		recent;

		args[0] = CStringGetTextDatum(canon);
		args[1] = TimestampTzGetDatum(created);
		args[2] = Int64GetDatum(invitee);
		if (referral_exec(Q_REFERRER, args, NULL, 1) == 0)
		{
			status = "rejected";
			reason = "unknown code";
			detail = psprintf("No referral code %s has been issued.", canon);
			goto done;
		}
		have_referrer = true;
		program = DatumGetInt32(referral_col(1, &isnull));
		referrer = DatumGetInt64(referral_col(2, &isnull));
		referrer_status = TextDatumGetCString(referral_col(3, &isnull));
		accepted = DatumGetInt32(referral_col(4, &isnull));
		cap = DatumGetInt32(referral_col(5, &isnull));
		velocity = DatumGetInt32(referral_col(6, &isnull));
		ring_depth = DatumGetInt32(referral_col(7, &isnull));
		grace = DatumGetIntervalP(datumCopy(referral_col(8, &isnull), false, sizeof(Interval)));
		program_name = TextDatumGetCString(referral_col(9, &isnull));
		active = DatumGetBool(referral_col(10, &isnull));
		recent = DatumGetInt32(referral_col(11, &isnull));
		invitee_exists = DatumGetBool(referral_col(12, &isnull));
		if (invitee_exists)
		{
			inv_created = DatumGetTimestampTz(referral_col(13, &isnull));
			inv_first_order = DatumGetTimestampTz(referral_col(14, &inv_no_order));
		}
		SPI_freetuptable(SPI_tuptable);

		if (!invitee_exists)
			ereport(ERROR,
					(errcode(ERRCODE_FOREIGN_KEY_VIOLATION),
					 errmsg("customer " INT64_FORMAT " does not exist", invitee)));

		if (!active)
		{
			status = "rejected";
			reason = "program inactive";
			detail = psprintf("Referral program \"%s\" is not running at the time of the referral.",
							  program_name);
			goto done;
		}

		{
			char	   *typed_phone = source_string(source, "phone");
			char	   *device = source_string(source, "device");
			char	   *payment = source_string(source, "payment");

			if (invitee == referrer)
			{
				rejected = true;
				reason = "self-referral";
				detail = pstrdup("The invitee is the referrer.");
			}
			else if (typed_phone != NULL)
			{
				args[0] = Int64GetDatum(referrer);
				referral_exec(Q_PHONE, args, NULL, 1);
				referrer_phone = TextDatumGetCString(referral_col(1, &isnull));
				SPI_freetuptable(SPI_tuptable);
			}
			if (!rejected && typed_phone != NULL && same_phone(typed_phone, referrer_phone))
			{
				rejected = true;
				reason = "same phone";
				detail = pstrdup("The phone number given by the invitee is the referrer's.");
			}
			if (device != NULL || payment != NULL)
			{
				/* remember the invitee's fingerprints; does the referrer share one? */
				char		fpnulls[6] = {' ', device ? ' ' : 'n', payment ? ' ' : 'n', ' ', ' ', '\0'};

				args[0] = Int64GetDatum(referrer);
				args[1] = device ? CStringGetTextDatum(device) : (Datum) 0;
				args[2] = payment ? CStringGetTextDatum(payment) : (Datum) 0;
				args[3] = Int64GetDatum(invitee);
				args[4] = TimestampTzGetDatum(created);
				if (referral_exec(Q_FINGERPRINT, args, fpnulls, 1) > 0)
				{
					char	   *kind = TextDatumGetCString(referral_col(1, &isnull));

					if (!rejected)
					{
						rejected = true;
						reason = strcmp(kind, "device") == 0 ? "shared device" : "shared payment";
						detail = psprintf("The invitee's %s fingerprint is also the referrer's.", kind);
					}
					SPI_freetuptable(SPI_tuptable);
				}
			}
		}
		if (!rejected && !inv_no_order && inv_first_order < created)
		{
			rejected = true;
			reason = "existing customer";
			detail = psprintf("The invitee ordered on %s, before the referral.",
							  timestamptz_to_str(inv_first_order));
		}
		if (!rejected &&
			inv_created < DatumGetTimestampTz(DirectFunctionCall2(timestamptz_mi_interval,
																  TimestampTzGetDatum(created),
																  IntervalPGetDatum(grace))))
		{
			rejected = true;
			reason = "existing customer";
			detail = psprintf("The invitee has been a customer since %s, longer than the sign-up grace period before the referral.",
							  timestamptz_to_str(inv_created));
		}
		if (!rejected)
		{
			/* first valid referral wins: serialize on (program, invitee) */
			int64		key = ((int64) WAM_REFERRAL_LOCK_CLASS << 48) |
				((int64) (program & 0xffff) << 32) | (invitee & INT64CONST(0xffffffff));

			DirectFunctionCall1(pg_advisory_xact_lock_int8, Int64GetDatum(key));
			referral_probe_begin(&probe, rel, att_status, att_referrer);
			probing = true;
			{
				int64		first;

				if (referral_probe(&probe, invitee, program, &first))
				{
					rejected = true;
					reason = "already referred";
					detail = psprintf("Customer " INT64_FORMAT " referred the invitee first.",
									  first);
				}
			}
			isnull_up = !referral_probe(&probe, referrer, program, &up);
		}
		if (!rejected && !isnull_up)
		{
			/*
			 * Rings: walk up who referred whom from the referrer; meeting the
			 * invitee within ring_depth - 1 links means this referral closes a
			 * ring of at most ring_depth people.  Each invitee has at most one
			 * live referral per program, so the walk is a single path.
			 */
			StringInfoData path;
			int			hops = 1;

			initStringInfo(&path);
			appendStringInfo(&path, INT64_FORMAT " -> " INT64_FORMAT, up, referrer);
			while (hops < ring_depth)
			{
				if (up == invitee)
				{
					rejected = true;
					reason = "ring";
					detail = psprintf("The referral would close the ring %s -> " INT64_FORMAT ".",
									  path.data, invitee);
					break;
				}
				if (++hops >= ring_depth || up == referrer)
					break;
				if (!referral_probe(&probe, up, program, &up))
					break;
				{
					char	   *tail = pstrdup(path.data);

					resetStringInfo(&path);
					appendStringInfo(&path, INT64_FORMAT " -> %s", up, tail);
				}
			}
		}
		if (probing)
			referral_probe_end(&probe);
		if (!rejected && accepted >= cap)
		{
			rejected = true;
			reason = "cap";
			detail = psprintf("The referrer already has %d accepted referrals, the cap of the program.",
							  accepted);
		}

		/*
		 * velocity: counted for every attempt, rejected or not, from the
		 * attempt times kept in the referrer row (updated above)
		 */
		args[0] = Int64GetDatum(referrer);
		args[1] = Int32GetDatum(program);
		args[2] = TimestampTzGetDatum(created);

		if (recent >= velocity && strcmp(referrer_status, "frozen") != 0)
		{
			referral_exec(Q_FREEZE_REFERRER, args, NULL, 0);
			referral_exec(Q_FREEZE_PENDING, args, NULL, 0);
			args[3] = Int32GetDatum(recent + 1);
			args[4] = Int32GetDatum(velocity);
			referral_exec(Q_REVIEW_ITEM, args, NULL, 0);
			if (!rejected)
			{
				status = "review";
				reason = "velocity";
				detail = psprintf("%d invitations in the last hour exceed the limit of %d: the referrer is frozen for review.",
								  recent + 1, velocity);
			}
		}
		else if (!rejected && strcmp(referrer_status, "frozen") == 0)
		{
			status = "review";
			reason = "referrer frozen";
			detail = pstrdup("The referrer is frozen for review.");
		}
		if (rejected)
		{
			status = "rejected";
			args[0] = Int64GetDatum(referrer);
			args[1] = Int32GetDatum(program);
			referral_exec(Q_UNACCEPT, args, NULL, 0);
		}
	}

done:
	/* SPI_finish frees everything allocated since SPI_connect */
	if (detail != NULL)
		detail = MemoryContextStrdup(caller_cxt, detail);
	AtEOXact_GUC(true, guc_level);
	SPI_finish();

	cols[0] = att_program;
	newvals[0] = Int32GetDatum(program);
	newnulls[0] = !have_referrer;
	cols[1] = att_referrer;
	newvals[1] = Int64GetDatum(referrer);
	newnulls[1] = !have_referrer;
	cols[2] = att_status;
	newvals[2] = CStringGetTextDatum(status);
	newnulls[2] = false;
	cols[3] = att_reason;
	newvals[3] = reason ? CStringGetTextDatum(reason) : (Datum) 0;
	newnulls[3] = reason == NULL;
	cols[4] = att_detail;
	newvals[4] = detail ? CStringGetTextDatum(detail) : (Datum) 0;
	newnulls[4] = detail == NULL;
	cols[5] = att_code;
	newvals[5] = CStringGetTextDatum(cst == WAM_CODE_OK ? canon : typed);
	newnulls[5] = false;

	tuple = heap_modify_tuple_by_cols(tuple, desc, 6, cols, newvals, newnulls);
	return PointerGetDatum(tuple);
}
