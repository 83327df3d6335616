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

static void
begin_step(const char *what)
{
	step_caller = CurrentMemoryContext;
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	PushActiveSnapshot(GetTransactionSnapshot());
	/* pg_stat_activity shows the step, never a token or a request body */
	pgstat_report_activity(STATE_RUNNING, what);
}

static void
end_step(void)
{
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_stat(false);
	pgstat_report_activity(STATE_IDLE, NULL);
	/* the commit left us in TopMemoryContext */
	MemoryContextSwitchTo(step_caller);
}

/* Whether the extension is installed in this database. */
bool
wam_db_ready(void)
{
	bool		ready;

	begin_step("pg_wamarketing sender: looking for the extension");
	if (SPI_execute("SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'pg_wamarketing'", true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not look for the extension");
	ready = (SPI_processed == 1);
	end_step();
	return ready;
}

int64
wam_db_recover(void)
{
	bool		isnull;
	int64		n;

	begin_step("pg_wamarketing sender: recovering rows left in sending");
	if (SPI_execute("SELECT wam.worker_recover()", false, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "wam.worker_recover() failed");
	n = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	end_step();
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

/* Loads every sender (URL, token, rate) into TopMemoryContext. */
int
wam_db_load_senders(WamSenderConf **out)
{
	WamSenderConf *s;
	int			n;
	int			i;

	begin_step("pg_wamarketing sender: loading senders");
	if (SPI_execute("SELECT sender_id, url, access_token, rate_per_minute, burst, paused FROM wam.worker_senders()",
					true, 0) != SPI_OK_SELECT)
		elog(ERROR, "wam.worker_senders() failed");
	n = Min((int) SPI_processed, WAM_MAX_SENDERS);
	s = MemoryContextAllocZero(TopMemoryContext, sizeof(WamSenderConf) * Max(n, 1));
	for (i = 0; i < n; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;

		s[i].sender_id = DatumGetInt32(SPI_getbinval(tup, desc, 1, &isnull));
		s[i].url = copy_text(tup, desc, 2, TopMemoryContext);
		s[i].token = copy_text(tup, desc, 3, TopMemoryContext);
		s[i].rate_per_minute = DatumGetInt32(SPI_getbinval(tup, desc, 4, &isnull));
		s[i].burst = DatumGetInt32(SPI_getbinval(tup, desc, 5, &isnull));
		if (isnull)
			s[i].burst = 0;
		s[i].paused = DatumGetBool(SPI_getbinval(tup, desc, 6, &isnull));
		if (s[i].token == NULL || s[i].url == NULL)
			s[i].paused = true;
	}
	end_step();
	*out = s;
	return n;
}

/* Claims up to max due messages of a sender; they are "sending" once this returns. */
int
wam_db_claim(int32 sender_id, int max, MemoryContext cxt, WamRequest **out, TimestampTz *claimed_at)
{
	Oid			types[2] = {INT4OID, INT4OID};
	Datum		values[2];
	int			n;
	int			i;
	WamRequest *head = NULL;
	WamRequest **tail = &head;

	values[0] = Int32GetDatum(sender_id);
	values[1] = Int32GetDatum(max);
	begin_step("pg_wamarketing sender: claiming messages");
	/* this commit waits for synchronous standbys (see below); reverted at its end */
	(void) set_config_option("synchronous_commit", "on", PGC_SUSET, PGC_S_SESSION,
							 GUC_ACTION_LOCAL, true, 0, false);
	/* claim_batch stamps sending_at with now(): the transaction's start */
	*claimed_at = GetCurrentTransactionStartTimestamp();
	if (SPI_execute_with_args("SELECT message_id, body FROM wam.claim_batch($1, $2)", 2, types, values, NULL,
							  false, 0) != SPI_OK_SELECT)
		elog(ERROR, "wam.claim_batch() failed");
	n = (int) SPI_processed;
	for (i = 0; i < n; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		bool		isnull;
		WamRequest *r = MemoryContextAllocZero(cxt, sizeof(WamRequest));

		r->message_id = DatumGetInt64(SPI_getbinval(tup, SPI_tuptable->tupdesc, 1, &isnull));
		r->body = copy_text(tup, SPI_tuptable->tupdesc, 2, cxt);
		*tail = r;
		tail = &r->next;
	}
	end_step();

	/*
	 * With synchronous replication the commit above returns once a standby
	 * has the "sending" marks, so that after a failover the new primary does
	 * not send these messages again.  When the postmaster dies during that
	 * wait, or a shutdown ends it (handle_sigterm), PostgreSQL lets the
	 * commit stand early (the marks may then be on this server only): exit
	 * before any request leaves.  The rows become "uncertain" at the next
	 * start, as for any worker stopped with claims.
	 */
	if (n > 0 && (ProcDiePending || !PostmasterIsAlive()))
		proc_exit(1);
	*out = head;
	return n;
}

TimestampTz
wam_db_next_due(int32 sender_id)
{
	Oid			types[1] = {INT4OID};
	Datum		values[1];
	bool		isnull;
	TimestampTz due = DT_NOEND;

	values[0] = Int32GetDatum(sender_id);
	begin_step("pg_wamarketing sender: next due message");
	if (SPI_execute_with_args("SELECT wam.next_due($1)", 1, types, values, NULL, true, 1) != SPI_OK_SELECT
		|| SPI_processed != 1)
		elog(ERROR, "wam.next_due() failed");
	{
		Datum		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);

		if (!isnull)
			due = DatumGetTimestampTz(d);
	}
	end_step();
	return due;
}

static Datum
text_or_null(const char *s, bool *isnull)
{
	*isnull = (s == NULL);
	return s ? CStringGetTextDatum(s) : (Datum) 0;
}

static int	record_once(WamRequest *done, int n, WamSenderSignal **signals);

/*
 * Records the outcome of n finished requests (a linked list); returns per
 * sender whether it was throttled or has been paused, in *signals (palloc'd
 * in the caller's context).
 *
 * The outcomes exist nowhere else: if the transaction fails (a deadlock
 * with a concurrent wam.ingest_webhook, say) it is retried a few times
 * before the error ends the worker, whose rows would then only be
 * "uncertain".
 */
int
wam_db_record(WamRequest *done, int n, WamSenderSignal **signals)
{
	MemoryContext caller = CurrentMemoryContext;
	volatile int attempt;

	for (attempt = 1;; attempt++)
	{
		volatile int nsig = 0;
		volatile bool ok = false;

		PG_TRY();
		{
			nsig = record_once(done, n, signals);
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
record_once(WamRequest *done, int n, WamSenderSignal **signals)
{
	MemoryContext caller = CurrentMemoryContext;
	Datum	   *ids = palloc(sizeof(Datum) * n);
	Datum	   *outcomes = palloc(sizeof(Datum) * n);
	Datum	   *statuses = palloc(sizeof(Datum) * n);
	Datum	   *bodies = palloc(sizeof(Datum) * n);
	bool	   *bodies_null = palloc(sizeof(bool) * n);
	Datum	   *details = palloc(sizeof(Datum) * n);
	bool	   *details_null = palloc(sizeof(bool) * n);
	int			dims[1] = {n};
	int			lbs[1] = {1};
	Oid			types[5] = {INT8ARRAYOID, TEXTARRAYOID, INT4ARRAYOID, TEXTARRAYOID, TEXTARRAYOID};
	Datum		values[5];
	WamRequest *r;
	WamSenderSignal *sig;
	int			i;
	int			nsig;

	for (r = done, i = 0; r != NULL && i < n; r = r->next, i++)
	{
		ids[i] = Int64GetDatum(r->message_id);
		outcomes[i] = CStringGetTextDatum(r->outcome == WAM_OUTCOME_HTTP ? "http" :
										  r->outcome == WAM_OUTCOME_NOT_SENT ? "not_sent" : "uncertain");
		statuses[i] = Int32GetDatum((int32) r->http_status);
		bodies[i] = text_or_null(r->outcome == WAM_OUTCOME_HTTP ? r->response.data : NULL, &bodies_null[i]);
		details[i] = text_or_null(r->detail, &details_null[i]);
	}
	Assert(i == n);
	values[0] = PointerGetDatum(construct_array(ids, n, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	values[1] = PointerGetDatum(construct_array(outcomes, n, TEXTOID, -1, false, TYPALIGN_INT));
	values[2] = PointerGetDatum(construct_array(statuses, n, INT4OID, 4, true, TYPALIGN_INT));
	values[3] = PointerGetDatum(construct_md_array(bodies, bodies_null, 1, dims, lbs, TEXTOID, -1, false, TYPALIGN_INT));
	values[4] = PointerGetDatum(construct_md_array(details, details_null, 1, dims, lbs, TEXTOID, -1, false, TYPALIGN_INT));

	begin_step("pg_wamarketing sender: recording results");
	if (SPI_execute_with_args("SELECT sender_id, throttled, paused_reason, last_error FROM wam.record_results($1, $2, $3, $4, $5)",
							  5, types, values, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "wam.record_results() failed");
	nsig = (int) SPI_processed;
	sig = MemoryContextAllocZero(caller, sizeof(WamSenderSignal) * Max(nsig, 1));
	for (i = 0; i < nsig; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		bool		isnull;

		sig[i].sender_id = DatumGetInt32(SPI_getbinval(tup, SPI_tuptable->tupdesc, 1, &isnull));
		sig[i].throttled = DatumGetInt32(SPI_getbinval(tup, SPI_tuptable->tupdesc, 2, &isnull));
		sig[i].paused_reason = copy_text(tup, SPI_tuptable->tupdesc, 3, caller);
		sig[i].last_error = copy_text(tup, SPI_tuptable->tupdesc, 4, caller);
	}
	end_step();
	*signals = sig;
	return nsig;
}
