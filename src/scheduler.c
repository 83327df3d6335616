/*-------------------------------------------------------------------------
 *
 * scheduler.c
 *	  The scheduler background worker: runs the extension's periodic jobs
 *	  (wam.job) in the database the sender worker serves.
 *
 * A worker of its own, not a step of the sender's loop: a job may take
 * seconds (the rules over a million customers) and the sender's requests
 * in flight must have their outcomes recorded meanwhile.
 *
 * Each tick is one short transaction that reads which jobs are due and how
 * long until the next (wam_internal.due_jobs); each due job then runs in a
 * transaction of its own (wam_internal.run_job, which records the run and
 * schedules the next).  A job's error is caught inside run_job, so it never
 * stops the others; an error outside a job (a lock wait that timed out, the
 * extension dropped meanwhile) is logged and the tick is tried again later.
 * The worker sleeps until the next job is due, at most
 * wam.scheduler_naptime, so a schedule changed by an admin is seen within
 * that.  The schedule lives in the table, so a restart loses nothing; a job
 * missed while the server was down runs once at the first tick.
 *
 * The worker starts only once recovery has finished: a hot standby runs no
 * jobs, and a promoted standby starts them.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#include "worker.h"

bool		wam_scheduler_enabled = true;
int			wam_scheduler_naptime_ms = 10000;

void
wam_scheduler_init(void)
{
	BackgroundWorker worker;

	DefineCustomBoolVariable("wam.scheduler_enabled",
							 "Whether the scheduler worker runs the periodic jobs of wam.job.",
							 "Off: nothing runs them unless wam.run_due_jobs() is called, e.g. by pg_cron.",
							 &wam_scheduler_enabled, true, PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("wam.scheduler_naptime",
							"Longest sleep of the scheduler worker between two looks at wam.job.",
							"A changed schedule is seen within this time.",
							&wam_scheduler_naptime_ms, 10000, 100, 3600000, PGC_SIGHUP, GUC_UNIT_MS,
							NULL, NULL, NULL);

	if (!process_shared_preload_libraries_in_progress)
		return;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = 10;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "pg_wamarketing");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "wam_scheduler_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "pg_wamarketing scheduler");
	snprintf(worker.bgw_type, BGW_MAXLEN, "pg_wamarketing scheduler");
	RegisterBackgroundWorker(&worker);
}

typedef struct WamTick
{
	bool		installed;
	MemoryContext cxt;			/* the tick's context: outlives the transactions */
	List	   *due;			/* job names, in cxt */
	double		next_in_ms;		/* -1: no job scheduled */
} WamTick;

/*
 * Runs fn in a transaction of its own.  Returns false (after logging the
 * error) if it failed: the tick goes on, the next tries again.
 */
static bool
wam_sched_step(const char *what, void (*fn) (void *), void *arg)
{
	MemoryContext caller = CurrentMemoryContext;
	volatile bool ok = false;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PG_TRY();
	{
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		PushActiveSnapshot(GetTransactionSnapshot());
		pgstat_report_activity(STATE_RUNNING, what);
		fn(arg);
		SPI_finish();
		PopActiveSnapshot();
		CommitTransactionCommand();
		ok = true;
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(caller);
		edata = CopyErrorData();
		FlushErrorState();
		AbortCurrentTransaction();
		ereport(LOG,
				(errmsg("pg_wamarketing scheduler: %s failed: %s", what, edata->message)));
		FreeErrorData(edata);
	}
	PG_END_TRY();
	pgstat_report_stat(false);
	pgstat_report_activity(STATE_IDLE, NULL);
	MemoryContextSwitchTo(caller);
	return ok;
}

static void
wam_sched_look(void *arg)
{
	WamTick    *tick = arg;
	MemoryContext old;
	bool		isnull;
	Datum		d;

	/*
	 * Installed, and at a version that has jobs: after an upgrade of the
	 * library the database may still be at 0.1 until ALTER EXTENSION ...
	 * UPDATE; the worker then waits quietly instead of failing every tick.
	 */
	if (SPI_execute("SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'pg_wamarketing'"
					" AND pg_catalog.to_regprocedure('wam_internal.due_jobs(timestamp with time zone)') IS NOT NULL",
					true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not look for the extension");
	tick->installed = (SPI_processed == 1);
	if (!tick->installed)
		return;
	if (SPI_execute("SELECT due, next_in_ms FROM wam_internal.due_jobs(pg_catalog.now())", true, 1) != SPI_OK_SELECT ||
		SPI_processed != 1)
		elog(ERROR, "wam_internal.due_jobs() failed");
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	if (!isnull)
	{
		ArrayType  *a = DatumGetArrayTypeP(d);
		Datum	   *names;
		int			n;
		int			i;

		deconstruct_array(a, TEXTOID, -1, false, TYPALIGN_INT, &names, NULL, &n);
		/* the names outlive the transaction */
		old = MemoryContextSwitchTo(tick->cxt);
		for (i = 0; i < n; i++)
			tick->due = lappend(tick->due, TextDatumGetCString(names[i]));
		MemoryContextSwitchTo(old);
	}
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull);
	tick->next_in_ms = isnull ? -1 : DatumGetFloat8(d);
}

static void
wam_sched_run(void *arg)
{
	Oid			argtypes[1] = {TEXTOID};
	Datum		args[1];

	args[0] = CStringGetTextDatum((const char *) arg);
	if (SPI_execute_with_args("SELECT wam_internal.run_job($1, pg_catalog.now())", 1, argtypes, args, NULL,
							  false, 1) != SPI_OK_SELECT)
		elog(ERROR, "wam_internal.run_job() failed");
}

static void
wam_sched_reload(void)
{
	if (ConfigReloadPending)
	{
		ConfigReloadPending = false;
		ProcessConfigFile(PGC_SIGHUP);
	}
}

void
wam_scheduler_main(Datum arg)
{
	MemoryContext loop_cxt;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(wam_database, NULL, 0);
	pgstat_report_appname("pg_wamarketing scheduler");

	/* a job waits at most this long for a lock, then fails and runs at its next time */
	SetConfigOption("lock_timeout", "60s", PGC_SUSET, PGC_S_OVERRIDE);
	ereport(LOG, (errmsg("pg_wamarketing scheduler started for database \"%s\"", wam_database)));

	/*
	 * Everything a tick keeps across its transactions (the due names, copies
	 * of errors) lives in this context, reset at the start of every tick: a
	 * worker that runs for months cannot grow, whichever path a tick took.
	 */
	loop_cxt = AllocSetContextCreate(TopMemoryContext, "pg_wamarketing scheduler tick",
									 ALLOCSET_DEFAULT_SIZES);

	for (;;)
	{
		WamTick		tick = {0};
		long		timeout = wam_scheduler_naptime_ms;
		ListCell   *lc;

		MemoryContextReset(loop_cxt);
		MemoryContextSwitchTo(loop_cxt);
		tick.cxt = loop_cxt;
		CHECK_FOR_INTERRUPTS();
		wam_sched_reload();
		if (wam_scheduler_enabled && wam_sched_step("pg_wamarketing scheduler: looking for due jobs",
													 wam_sched_look, &tick))
		{
			foreach(lc, tick.due)
			{
				char	   *name = lfirst(lc);
				char		what[128];

				CHECK_FOR_INTERRUPTS();
				snprintf(what, sizeof(what), "pg_wamarketing scheduler: job %s", name);
				(void) wam_sched_step(what, wam_sched_run, name);
			}
			if (tick.due != NIL)
				timeout = Min(timeout, 1000);	/* look again soon: the runs scheduled the next times */
			else if (tick.installed && tick.next_in_ms >= 0 && tick.next_in_ms < timeout)
				timeout = (long) tick.next_in_ms + 1;
		}
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, timeout, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}
