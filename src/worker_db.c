/*-------------------------------------------------------------------------
 *
 * worker_db.c
 *	  The sender worker's database side: each step is one short committed
 *	  transaction calling an SQL function of src/sql/sender.sql, so that a
 *	  row is marked "sending" (committed) before its request leaves and its
 *	  outcome is committed as soon as it is known.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/ipc.h"
#include "storage/pmsignal.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "worker.h"

static MemoryContext step_caller = NULL;

/* true while a step's transaction is open (read by the SIGTERM handler) */
bool		wam_in_db_step = false;

static void
begin_step(const char *what)
{
	char		activity[128];

	step_caller = CurrentMemoryContext;
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	wam_in_db_step = true;
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	PushActiveSnapshot(GetTransactionSnapshot());
	/* pg_stat_activity shows the step, never a token or a request body */
	snprintf(activity, sizeof(activity), "pg_wamarketing sender: %s", what);
	pgstat_report_activity(STATE_RUNNING, activity);
}

static void
end_step(void)
{
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	wam_in_db_step = false;
	pgstat_report_stat(false);
	pgstat_report_activity(STATE_IDLE, NULL);
	/* the commit left us in TopMemoryContext */
	MemoryContextSwitchTo(step_caller);
}

/*
 * Runs fn(arg) as one step (a transaction of its own).  Every statement of
 * the worker waits at most wam.worker_lock_timeout for a lock: a session
 * holding a lock on wam.outbox or wam.sender (LOCK TABLE, an ALTER, an open
 * transaction of an operator) must not stall the worker, whose requests in
 * flight still need their results recorded.  Such a step is rolled back
 * and false returned; the caller tries it again on a later turn of the
 * loop.  Any other error propagates.
 */
static bool
run_step(const char *what, void (*fn) (void *), void *arg)
{
	MemoryContext caller = CurrentMemoryContext;
	volatile bool ok = false;

	PG_TRY();
	{
		begin_step(what);
		fn(arg);
		end_step();
		ok = true;
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(caller);
		edata = CopyErrorData();
		if (edata->sqlerrcode != ERRCODE_LOCK_NOT_AVAILABLE)
			PG_RE_THROW();
		FlushErrorState();
		AbortCurrentTransaction();
		wam_in_db_step = false;
		pgstat_report_activity(STATE_IDLE, NULL);
		MemoryContextSwitchTo(caller);
		ereport(LOG,
				(errmsg("pg_wamarketing sender: %s waited longer than wam.worker_lock_timeout for a lock; trying again",
						what),
				 errdetail("%s", edata->message)));
		FreeErrorData(edata);
	}
	PG_END_TRY();
	return ok;
}

/* Whether the extension is installed in this database (false also if that could not be seen). */
static void
ready_step(void *arg)
{
	if (SPI_execute("SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'pg_wamarketing'", true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not look for the extension");
	*(bool *) arg = (SPI_processed == 1);
}

bool
wam_db_ready(void)
{
	bool		ready = false;

	if (!run_step("looking for the extension", ready_step, &ready))
		return false;
	return ready;
}

static void
recover_step(void *arg)
{
	bool		isnull;

	if (SPI_execute("SELECT wam_internal.worker_recover()", false, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "wam_internal.worker_recover() failed");
	*(int64 *) arg = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
}

/* Rows left in sending become uncertain; -1 if a lock stopped it (try again). */
int64
wam_db_recover(void)
{
	int64		n = 0;

	if (!run_step("recovering rows left in sending", recover_step, &n))
		return -1;
	return n;
}

static char *
copy_text(HeapTuple tup, TupleDesc desc, int col, MemoryContext cxt)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tup, desc, col, &isnull);

	if (isnull)
		return NULL;
	return MemoryContextStrdup(cxt, TextDatumGetCString(d));
}

void
wam_db_free_senders(WamSenderConf *s, int n)
{
	int			i;

	for (i = 0; i < n; i++)
	{
		if (s[i].token)
		{
			explicit_bzero(s[i].token, strlen(s[i].token));
			pfree(s[i].token);
		}
		if (s[i].url)
			pfree(s[i].url);
	}
	if (s)
		pfree(s);
}

typedef struct LoadArgs
{
	WamSenderConf *s;
	int			n;
	int			total;
} LoadArgs;

static void
load_step(void *arg)
{
	LoadArgs   *a = (LoadArgs *) arg;
	int			i;

	if (SPI_execute("SELECT sender_id, url, access_token, rate_per_minute, burst, paused FROM wam_internal.worker_senders()",
					true, 0) != SPI_OK_SELECT)
		elog(ERROR, "wam_internal.worker_senders() failed");
	a->total = (int) SPI_processed;
	a->n = Min(a->total, wam_max_senders);
	a->s = MemoryContextAllocZero(TopMemoryContext, sizeof(WamSenderConf) * Max(a->n, 1));
	for (i = 0; i < a->n; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		WamSenderConf *s = &a->s[i];

		s->sender_id = DatumGetInt32(SPI_getbinval(tup, desc, 1, &isnull));
		s->url = copy_text(tup, desc, 2, TopMemoryContext);
		s->token = copy_text(tup, desc, 3, TopMemoryContext);
		s->rate_per_minute = DatumGetInt32(SPI_getbinval(tup, desc, 4, &isnull));
		s->burst = DatumGetInt32(SPI_getbinval(tup, desc, 5, &isnull));
		if (isnull)
			s->burst = 0;
		s->paused = DatumGetBool(SPI_getbinval(tup, desc, 6, &isnull));
		if (s->token == NULL || s->url == NULL)
			s->paused = true;
	}
}

/*
 * Loads the senders (URL, token, rate; the first wam.worker_max_senders by id)
 * into TopMemoryContext; *total is how many exist.  -1 if a lock stopped
 * it: the caller keeps the senders it has.
 */
int
wam_db_load_senders(WamSenderConf **out, int *total)
{
	LoadArgs	a = {NULL, 0, 0};

	if (!run_step("loading senders", load_step, &a))
	{
		if (a.s)
			wam_db_free_senders(a.s, a.n);
		return -1;
	}
	*out = a.s;
	*total = a.total;
	return a.n;
}

typedef struct ClaimArgs
{
	int32		sender_id;
	int			max;
	MemoryContext cxt;
	WamRequest *head;
	int			n;
	TimestampTz claimed_at;
} ClaimArgs;

static void
claim_step(void *arg)
{
	ClaimArgs  *a = (ClaimArgs *) arg;
	Oid			types[2] = {INT4OID, INT4OID};
	Datum		values[2];
	WamRequest **tail = &a->head;
	int			i;

	values[0] = Int32GetDatum(a->sender_id);
	values[1] = Int32GetDatum(a->max);
	/* this commit waits for synchronous standbys (see wam_db_claim); reverted at its end */
	(void) set_config_option("synchronous_commit", "on", PGC_SUSET, PGC_S_SESSION,
							 GUC_ACTION_LOCAL, true, 0, false);
	/* claim_batch stamps sending_at with now(): the transaction's start */
	a->claimed_at = GetCurrentTransactionStartTimestamp();
	if (SPI_execute_with_args("SELECT message_id, body FROM wam_internal.claim_batch($1, $2)", 2, types, values, NULL,
							  false, 0) != SPI_OK_SELECT)
		elog(ERROR, "wam_internal.claim_batch() failed");
	a->n = (int) SPI_processed;
	for (i = 0; i < a->n; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		bool		isnull;
		WamRequest *r = MemoryContextAllocZero(a->cxt, sizeof(WamRequest));

		r->message_id = DatumGetInt64(SPI_getbinval(tup, SPI_tuptable->tupdesc, 1, &isnull));
		r->body = copy_text(tup, SPI_tuptable->tupdesc, 2, a->cxt);
		*tail = r;
		tail = &r->next;
	}
}

/*
 * Claims up to max due messages of a sender; they are "sending" once this
 * returns.  -1 if a lock stopped it (nothing claimed).
 */
int
wam_db_claim(int32 sender_id, int max, MemoryContext cxt, WamRequest **out, TimestampTz *claimed_at)
{
	ClaimArgs	a = {sender_id, max, cxt, NULL, 0, 0};

	*out = NULL;
	*claimed_at = 0;
	if (!run_step("claiming messages", claim_step, &a))
		return -1;

	/*
	 * With synchronous replication the commit above returns once a standby
	 * has the "sending" marks, so that after a failover the new primary does
	 * not send these messages again.  When the postmaster dies during that
	 * wait, or a shutdown ends it (handle_sigterm), PostgreSQL lets the
	 * commit stand early (the marks may then be on this server only): exit
	 * before any request leaves.  The rows become "uncertain" at the next
	 * start, as for any worker stopped with claims.
	 */
	if (a.n > 0 && (ProcDiePending || !PostmasterIsAlive()))
		proc_exit(1);
	/* (requests built before a rollback stay in cxt, which the caller resets) */
	*out = a.head;
	*claimed_at = a.claimed_at;
	return a.n;
}

typedef struct DueArgs
{
	int32		sender_id;
	TimestampTz due;
} DueArgs;

static void
due_step(void *arg)
{
	DueArgs    *a = (DueArgs *) arg;
	Oid			types[1] = {INT4OID};
	Datum		values[1];
	bool		isnull;
	Datum		d;

	values[0] = Int32GetDatum(a->sender_id);
	if (SPI_execute_with_args("SELECT wam_internal.next_due($1)", 1, types, values, NULL, true, 1) != SPI_OK_SELECT
		|| SPI_processed != 1)
		elog(ERROR, "wam_internal.next_due() failed");
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	if (!isnull)
		a->due = DatumGetTimestampTz(d);
}

/* When the next waiting message of the sender is due (DT_NOEND: none; now + 1 s if a lock stopped it). */
TimestampTz
wam_db_next_due(int32 sender_id)
{
	DueArgs		a = {sender_id, DT_NOEND};

	if (!run_step("looking for the next due message", due_step, &a))
		return GetCurrentTimestamp() + USECS_PER_SEC;
	return a.due;
}

typedef struct PauseArgs
{
	int32		sender_id;
	const char *reason;
} PauseArgs;

static void
pause_step(void *arg)
{
	PauseArgs  *a = (PauseArgs *) arg;
	Oid			types[2] = {INT4OID, TEXTOID};
	Datum		values[2];

	values[0] = Int32GetDatum(a->sender_id);
	values[1] = CStringGetTextDatum(a->reason);
	if (SPI_execute_with_args("UPDATE wam.sender SET paused = true, paused_reason = $2, paused_at = pg_catalog.now() "
							  "WHERE sender_id = $1 AND NOT paused", 2, types, values, NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not pause sender %d", a->sender_id);
}

/* Pauses a sender with a reason; false if a lock stopped it. */
bool
wam_db_pause_sender(int32 sender_id, const char *reason)
{
	PauseArgs	a = {sender_id, reason};

	return run_step("pausing a sender", pause_step, &a);
}

/* the text of an API response or error as valid text of the database */
static Datum
clean_text_or_null(const char *s, size_t len, bool *isnull)
{
	*isnull = (s == NULL);
	if (s == NULL)
		return (Datum) 0;
	return CStringGetTextDatum(wam_clean_text(s, len));
}

typedef struct RecordArgs
{
	Datum		values[5];
	MemoryContext caller;
	WamSenderSignal *sig;
	int			nsig;
} RecordArgs;

static void
record_step(void *arg)
{
	RecordArgs *a = (RecordArgs *) arg;
	Oid			types[5] = {INT8ARRAYOID, TEXTARRAYOID, INT4ARRAYOID, TEXTARRAYOID, TEXTARRAYOID};
	int			i;

	if (SPI_execute_with_args("SELECT sender_id, throttled, paused_reason, last_error, deferred "
							  "FROM wam_internal.record_results($1, $2, $3, $4, $5)",
							  5, types, a->values, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "wam_internal.record_results() failed");
	a->nsig = (int) SPI_processed;
	a->sig = MemoryContextAllocZero(a->caller, sizeof(WamSenderSignal) * Max(a->nsig, 1));
	for (i = 0; i < a->nsig; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		Datum		d;

		a->sig[i].sender_id = DatumGetInt32(SPI_getbinval(tup, desc, 1, &isnull));
		a->sig[i].throttled = DatumGetInt32(SPI_getbinval(tup, desc, 2, &isnull));
		a->sig[i].paused_reason = copy_text(tup, desc, 3, a->caller);
		a->sig[i].last_error = copy_text(tup, desc, 4, a->caller);
		d = SPI_getbinval(tup, desc, 5, &isnull);
		if (!isnull)
		{
			ArrayType  *arr = DatumGetArrayTypeP(d);
			Datum	   *elems;
			int			nelems;
			int			j;
			MemoryContext old = MemoryContextSwitchTo(a->caller);

			deconstruct_array(arr, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE, &elems, NULL, &nelems);
			a->sig[i].deferred = palloc(sizeof(int64) * Max(nelems, 1));
			for (j = 0; j < nelems; j++)
				a->sig[i].deferred[j] = DatumGetInt64(elems[j]);
			a->sig[i].ndeferred = nelems;
			MemoryContextSwitchTo(old);
		}
	}
}

static int	record_once(WamRequest *done, int n, WamSenderSignal **signals, bool *recorded);

/*
 * Records the outcome of n finished requests (a linked list); returns per
 * sender whether it was throttled or has been paused, and which results
 * could not be recorded yet because another session holds a lock on their
 * rows (they are left for the next call), in *signals (palloc'd in the
 * caller's context).  *recorded is false if the whole step waited too long
 * for a lock: then nothing was recorded and the caller tries again later.
 *
 * The outcomes exist nowhere else: if the transaction fails otherwise (a
 * deadlock with a concurrent wam.ingest_webhook, say) it is retried a few
 * times before the error ends the worker, whose rows would then only be
 * "uncertain".
 */
int
wam_db_record(WamRequest *done, int n, WamSenderSignal **signals, bool *recorded)
{
	MemoryContext caller = CurrentMemoryContext;
	volatile int attempt;

	for (attempt = 1;; attempt++)
	{
		volatile int nsig = 0;
		volatile bool ok = false;

		PG_TRY();
		{
			nsig = record_once(done, n, signals, recorded);
			ok = true;
		}
		PG_CATCH();
		{
			ErrorData  *edata;

			if (attempt >= 5)
				PG_RE_THROW();
			MemoryContextSwitchTo(caller);
			edata = CopyErrorData();
			FlushErrorState();
			AbortCurrentTransaction();
			wam_in_db_step = false;
			MemoryContextSwitchTo(caller);
			ereport(LOG,
					(errmsg("pg_wamarketing sender: recording %d results failed, trying again: %s",
							n, edata->message)));
			FreeErrorData(edata);
			pg_usleep(100000L * attempt);
		}
		PG_END_TRY();
		if (ok)
			return nsig;
	}
}

static int
record_once(WamRequest *done, int n, WamSenderSignal **signals, bool *recorded)
{
	Datum	   *ids = palloc(sizeof(Datum) * n);
	Datum	   *outcomes = palloc(sizeof(Datum) * n);
	Datum	   *statuses = palloc(sizeof(Datum) * n);
	Datum	   *bodies = palloc(sizeof(Datum) * n);
	bool	   *bodies_null = palloc(sizeof(bool) * n);
	Datum	   *details = palloc(sizeof(Datum) * n);
	bool	   *details_null = palloc(sizeof(bool) * n);
	int			dims[1] = {n};
	int			lbs[1] = {1};
	RecordArgs	a;
	WamRequest *r;
	int			i;

	for (r = done, i = 0; r != NULL && i < n; r = r->next, i++)
	{
		ids[i] = Int64GetDatum(r->message_id);
		outcomes[i] = CStringGetTextDatum(r->outcome == WAM_OUTCOME_HTTP ? "http" :
										  r->outcome == WAM_OUTCOME_NOT_SENT ? "not_sent" :
										  r->outcome == WAM_OUTCOME_NOT_SENDABLE ? "not_sendable" : "uncertain");
		statuses[i] = Int32GetDatum((int32) r->http_status);
		/* the response's bytes as they came (NULs and invalid UTF-8 included) */
		bodies[i] = clean_text_or_null(r->outcome == WAM_OUTCOME_HTTP ? r->response.data : NULL,
									   r->response.len, &bodies_null[i]);
		details[i] = clean_text_or_null(r->detail, r->detail ? strlen(r->detail) : 0, &details_null[i]);
	}
	Assert(i == n);
	memset(&a, 0, sizeof(a));
	a.caller = CurrentMemoryContext;
	a.values[0] = PointerGetDatum(construct_array(ids, n, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	a.values[1] = PointerGetDatum(construct_array(outcomes, n, TEXTOID, -1, false, TYPALIGN_INT));
	a.values[2] = PointerGetDatum(construct_array(statuses, n, INT4OID, 4, true, TYPALIGN_INT));
	a.values[3] = PointerGetDatum(construct_md_array(bodies, bodies_null, 1, dims, lbs, TEXTOID, -1, false, TYPALIGN_INT));
	a.values[4] = PointerGetDatum(construct_md_array(details, details_null, 1, dims, lbs, TEXTOID, -1, false, TYPALIGN_INT));

	*recorded = run_step("recording results", record_step, &a);
	*signals = a.sig;
	return *recorded ? a.nsig : 0;
}
