/*-------------------------------------------------------------------------
 *
 * worker_main.c
 *	  The sender background worker: settings, registration and main loop.
 *
 * One worker per cluster serves the database named by wam.worker_database.  Each
 * turn of the loop it collects finished requests and commits their
 * outcomes, then, per sender and as far as the token bucket and the
 * in-flight limit allow, claims due messages (committed as "sending"
 * before any request leaves) and starts their requests.  With nothing in
 * flight it sleeps on its latch, which a committed enqueue sets; with
 * requests in flight it waits in libcurl for at most 20 ms at a time, so
 * an enqueue is still noticed within that.
 *
 * Crash semantics: a row in "sending" may or may not have reached the
 * API.  At start-up such rows become "uncertain" and are not resent; the
 * outbox id travels in biz_opaque_callback_data, so a later status webhook
 * settles them.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "nodes/pg_list.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "replication/syncrep.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/pmsignal.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#include "worker.h"

char	   *wam_database = NULL;
bool		wam_worker_enabled = true;
int			wam_max_in_flight = 64;
int			wam_batch_size = 50;
int			wam_http_timeout_ms = 10000;
int			wam_max_attempts = 8;
char	   *wam_ca_file = NULL;
int			wam_max_rate_per_minute = 0;
bool		wam_allow_http = false;
char	   *wam_http_proxy = NULL;
int			wam_max_senders = 64;
int			wam_worker_lock_timeout_ms = 1000;

/* per-sender run state, kept across reloads of the sender list */
typedef struct SenderRun
{
	int32		sender_id;
	WamSenderConf *conf;		/* NULL once the sender is gone */
	WamBucket	bucket;
	int			in_flight;
	TimestampTz idle_until;		/* no claim before (nothing due) */
	bool		waiting;		/* rows are due but held back (pair limit, tier) */
	char		last_error[WAM_ERROR_LEN];
	TimestampTz last_error_at;
	int			answered;		/* results recorded in this flush */
	int			throttled;		/* of them, throttling errors */
} SenderRun;

static volatile sig_atomic_t shutdown_requested = false;

static WamSenderConf *confs = NULL;
static int	nconfs = 0;
static SenderRun *runs = NULL;	/* in TopMemoryContext */
static int	nruns = 0;
static int	warned_total = 0;	/* senders beyond wam.worker_max_senders, last warned about */
static TimestampTz flush_not_before = 0;	/* results wait: a lock held them back */
static bool claim_locked = false;	/* a claim waited too long for a lock this turn */
static bool deferring = false;	/* some results wait for another session's row locks */
static List *in_flight = NIL;
static WamRequest *done_head = NULL;
static WamRequest **done_tail = &done_head;
static int	ndone = 0;
static TimestampTz first_done_at = 0;
static MemoryContext req_cxt;

void
wam_sender_init(void)
{
	BackgroundWorker worker;

	DefineCustomBoolVariable("wam.worker_enabled",
							 "Whether the sender worker sends messages.",
							 "Off: requests in flight finish, nothing new is sent, the queue keeps filling.",
							 &wam_worker_enabled, true, PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("wam.sender_max_in_flight",
							"Maximum number of requests the sender worker has in flight at once.",
							NULL, &wam_max_in_flight, 64, 1, 1000, PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("wam.sender_batch_size",
							"Maximum number of messages the sender worker claims per transaction.",
							NULL, &wam_batch_size, 50, 1, 1000, PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("wam.sender_http_timeout",
							"Timeout of one Cloud API request.",
							"A request that times out after it was sent makes the message uncertain.",
							&wam_http_timeout_ms, 10000, 100, 300000, PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomIntVariable("wam.sender_max_attempts",
							"Attempts per message before a retryable error (5xx, timeouts before sending, 131000-class) fails it.",
							"Throttling errors, pair-limit deferrals and pauses do not count.",
							&wam_max_attempts, 8, 1, 100, PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomStringVariable("wam.sender_ca_file",
							   "CA certificates the sender worker verifies the API's certificate against (empty: the system's CA store).",
							   "For tests against a mock server with a private CA; verification is never switched off.",
							   &wam_ca_file, "", PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("wam.sender_max_rate_per_minute",
							"Upper bound on every sender's rate, in requests per minute (0: none).",
							"Lowers the rates of wam.sender for the whole cluster without editing them.",
							&wam_max_rate_per_minute, 0, 0, 3600000, PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomBoolVariable("wam.sender_allow_http",
							 "Test only: let senders use plain http:// API URLs.",
							 "Never enable in production: the access token would cross the network in clear.",
							 &wam_allow_http, false, PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomStringVariable("wam.sender_allowed_hosts",
							   "Host names a sender's api_base_url may name, comma-separated.",
							   "The access token is sent to that host; IP addresses are never accepted.",
							   &wam_api_allowed_hosts, "graph.facebook.com", PGC_SIGHUP, GUC_LIST_INPUT,
							   NULL, NULL, NULL);
	DefineCustomIntVariable("wam.worker_lock_timeout",
							"Longest wait of the sender worker for a lock in one step; the step is then tried again.",
							NULL, &wam_worker_lock_timeout_ms, 1000, 10, 600000, PGC_SIGHUP, GUC_UNIT_MS,
							NULL, NULL, NULL);

	/*
	 * The rest only exists with shared_preload_libraries: a postmaster-level
	 * setting cannot be defined by a library loaded on demand.
	 */
	if (!process_shared_preload_libraries_in_progress)
		return;

	DefineCustomStringVariable("wam.worker_database",
							   "Database whose wam.outbox the sender worker drains.",
							   "The extension must be installed there. Needs a restart.",
							   &wam_database, "postgres", PGC_POSTMASTER, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("wam.worker_max_senders",
							"Most senders the sender worker serves; wam.create_sender refuses more.",
							"Sizes shared memory. Needs a restart.",
							&wam_max_senders, 64, 1, 10000, PGC_POSTMASTER, 0, NULL, NULL, NULL);

	/*
	 * A restart to change it, not a reload: on a reload the postmaster logs
	 * every changed setting with its new value, and this one may hold the
	 * proxy's credentials.
	 */
	DefineCustomStringVariable("wam.sender_http_proxy",
							   "Proxy for the sender worker's API requests (empty: none).",
							   "Proxy environment variables (https_proxy, ALL_PROXY, ...) are ignored. Needs a restart.",
							   &wam_http_proxy, "", PGC_POSTMASTER, GUC_SUPERUSER_ONLY, NULL, NULL, NULL);

	wam_shmem_init();

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = 5;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "pg_wamarketing");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "wam_sender_worker_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "pg_wamarketing sender");
	snprintf(worker.bgw_type, BGW_MAXLEN, "pg_wamarketing sender");
	RegisterBackgroundWorker(&worker);
}

/*
 * SIGTERM (shutdown, pg_terminate_backend): outside a lock wait the loop
 * stops gracefully (requests in flight finish, results are recorded).
 * While a step waits for a lock the worker ends at once, as a backend
 * would: the lock may be held for as long as its session likes, and the
 * step's transaction only rolls back (its rows become "uncertain" at the
 * next start if they were in flight).
 */
static void
handle_sigterm(SIGNAL_ARGS)
{
	int			save_errno = errno;

	shutdown_requested = true;

	/*
	 * Two waits end only by a pending "die", as for a backend: a step
	 * waiting on a heavyweight lock, and a commit waiting for a synchronous
	 * standby that does not answer (it would hold up the shutdown for as long
	 * as the standby is away; the commit then stands on this server alone,
	 * and wam_db_claim exits before sending).
	 */
	if (MyProc != NULL &&
		((wam_in_db_step && MyProc->waitLock != NULL) || MyProc->syncRepState == SYNC_REP_WAITING))
	{
		InterruptPending = true;
		ProcDiePending = true;
	}
	SetLatch(MyLatch);
	wam_http_wakeup();
	errno = save_errno;
}

/*
 * A cancel would end a synchronous-replication wait of a claim with only a
 * warning, and the worker would send messages the standby may not know are
 * claimed (sent again after a failover): ignored during that wait.  To stop
 * waiting, make replication asynchronous (synchronous_standby_names = '').
 */
static void
handle_sigint(SIGNAL_ARGS)
{
	if (MyProc != NULL && MyProc->syncRepState == SYNC_REP_WAITING)
		return;
	StatementCancelHandler(postgres_signal_arg);
}

static void
handle_sighup(SIGNAL_ARGS)
{
	int			save_errno = errno;

	ConfigReloadPending = true;
	SetLatch(MyLatch);
	wam_http_wakeup();
	errno = save_errno;
}

static SenderRun *
find_run(int32 sender_id)
{
	int			i;

	for (i = 0; i < nruns; i++)
		if (runs[i].sender_id == sender_id)
			return &runs[i];
	return NULL;
}

/* Reloads the senders; buckets and backoffs of known senders carry over. */
static void
reload_senders(void)
{
	SenderRun  *newruns;
	TimestampTz now = GetCurrentTimestamp();
	WamSenderConf *old = confs;
	WamSenderConf *loaded;
	int			nold = nconfs;
	int			total = 0;
	int			n;
	int			i;

	n = wam_db_load_senders(&loaded, &total);
	if (n < 0)
		return;					/* a lock held it up: keep the senders we know */
	if (total > n && total != warned_total)
		ereport(WARNING,
				(errmsg("pg_wamarketing sender: %d senders exist but wam.worker_max_senders is %d; senders after the first %d (by id) are not served",
						total, wam_max_senders, n),
				 errhint("Raise wam.worker_max_senders (needs a restart) or drop senders.")));
	warned_total = (total > n) ? total : 0;
	confs = loaded;
	nconfs = n;
	/* room for the senders gone with requests still in flight, too */
	newruns = MemoryContextAllocZero(TopMemoryContext, sizeof(SenderRun) * (nconfs + nruns + 1));
	for (i = 0; i < nconfs; i++)
	{
		SenderRun  *prev = find_run(confs[i].sender_id);

		if (prev)
			newruns[i] = *prev;
		else
			newruns[i].sender_id = confs[i].sender_id;
		newruns[i].conf = &confs[i];
		wam_bucket_configure(&newruns[i].bucket, confs[i].rate_per_minute, confs[i].burst, now);
	}
	n = nconfs;
	/* a sender deleted with requests in flight keeps a run until they finish */
	for (i = 0; i < nruns; i++)
	{
		bool		kept = false;
		int			j;

		for (j = 0; j < nconfs; j++)
			kept |= (newruns[j].sender_id == runs[i].sender_id);
		if (!kept && runs[i].in_flight > 0)
		{
			newruns[n] = runs[i];
			newruns[n].conf = NULL;
			n++;
		}
	}
	if (runs)
		pfree(runs);
	runs = newruns;
	nruns = n;
	wam_db_free_senders(old, nold);
}

static void
publish_state(void)
{
	WamSenderShared *out = palloc0(sizeof(WamSenderShared) * Max(nruns, 1));
	TimestampTz now = GetCurrentTimestamp();
	int			n = 0;
	int			i;

	for (i = 0; i < nruns; i++)
	{
		SenderRun  *run = &runs[i];
		const char *state;

		if (run->conf == NULL)
			continue;
		if (!wam_worker_enabled)
			state = "disabled";
		else if (run->conf->paused)
			state = "paused";
		else if (now < run->bucket.backoff_until)
			state = "backing off";
		else if (run->in_flight > 0 || run->idle_until <= now)
			state = "sending";
		else if (run->waiting)
			state = "waiting";
		else
			state = "idle";
		memset(&out[n], 0, sizeof(WamSenderShared));
		out[n].sender_id = run->sender_id;
		strlcpy(out[n].state, state, WAM_STATE_LEN);
		out[n].rate_per_minute = wam_bucket_rate_per_minute(&run->bucket);
		out[n].capped_rate_per_minute = wam_bucket_capped_rate_per_minute(&run->bucket);
		out[n].in_flight = run->in_flight;
		memcpy(out[n].last_error, run->last_error, WAM_ERROR_LEN);
		out[n].last_error_at = run->last_error_at;
		n++;
	}
	wam_shmem_publish(out, n);
	pfree(out);
}

static bool
is_deferred(const WamSenderSignal *sig, int nsig, int64 message_id)
{
	int			i;
	int			j;

	for (i = 0; i < nsig; i++)
		for (j = 0; j < sig[i].ndeferred; j++)
			if (sig[i].deferred[j] == message_id)
				return true;
	return false;
}

/*
 * Commits the outcomes of the finished requests and reacts to them.
 * Results whose rows another session has locked stay in the list for a
 * later call (wam_internal.record_results skips locked rows rather than wait).
 */
static void
flush_done(void)
{
	WamSenderSignal *sig;
	int			nsig;
	int			i;
	TimestampTz now;
	WamRequest *r;
	WamRequest *keep = NULL;
	WamRequest **keep_tail = &keep;
	int			nkeep = 0;
	bool		recorded;

	if (ndone == 0)
		return;
	nsig = wam_db_record(done_head, ndone, &sig, &recorded);
	now = GetCurrentTimestamp();
	if (!recorded)
	{
		/* a lock held the whole step up: all results wait for the next try */
		flush_not_before = now + 100 * 1000;
		return;
	}
	for (i = 0; i < nsig; i++)
	{
		SenderRun  *run = find_run(sig[i].sender_id);

		if (run == NULL)
			continue;
		if (sig[i].last_error)
		{
			/* cut at a character boundary: the view shows it as text */
			wam_clip_copy(run->last_error, sig[i].last_error, WAM_ERROR_LEN);
			run->last_error_at = now;
		}
		run->throttled += sig[i].throttled;
		if (sig[i].paused_reason && run->conf && !run->conf->paused)
		{
			run->conf->paused = true;
			ereport(LOG,
					(errmsg("pg_wamarketing sender: sender %d paused: %s", run->sender_id, sig[i].paused_reason),
					 errhint("Fix the cause, then call wam.resume_sender().")));
		}
	}
	while (done_head)
	{
		r = done_head;
		done_head = r->next;
		if (is_deferred(sig, nsig, r->message_id))
		{
			r->next = NULL;
			*keep_tail = r;
			keep_tail = &r->next;
			nkeep++;
		}
		else
		{
			SenderRun  *run = find_run(r->sender_index);

			if (run != NULL)
				run->answered++;
			wam_http_free(r);
		}
	}
	/* the throttling errors judged by their share of this sender's answers */
	for (i = 0; i < nruns; i++)
	{
		SenderRun  *run = &runs[i];

		if (run->answered > 0 &&
			wam_bucket_answers(&run->bucket, run->answered, run->throttled, now))
		{
			if (run->bucket.backoff_until > now)
				run->idle_until = run->bucket.backoff_until;
			ereport(LOG,
					(errmsg("pg_wamarketing sender: sender %d was throttled by the API; backing off to %.0f requests per minute",
							run->sender_id, wam_bucket_rate_per_minute(&run->bucket))));
		}
		run->answered = 0;
		run->throttled = 0;
	}
	done_head = keep;
	done_tail = keep ? keep_tail : &done_head;
	ndone = nkeep;
	if (nkeep > 0)
	{
		flush_not_before = now + 100 * 1000;
		if (!deferring)
			ereport(LOG,
					(errmsg("pg_wamarketing sender: %d results wait: another session holds a lock on their rows",
							nkeep),
					 errhint("They are recorded once the lock is released; pg_locks shows who holds it.")));
	}
	deferring = (nkeep > 0);
}

static void
add_done(WamRequest *r)
{
	SenderRun  *run = find_run(r->sender_index);

	if (ndone == 0)
		first_done_at = GetCurrentTimestamp();
	r->next = NULL;
	*done_tail = r;
	done_tail = &r->next;
	ndone++;
	if (run)
		run->in_flight--;
}

static void
collect_finished(void)
{
	WamRequest *r;

	while ((r = wam_http_next_done()) != NULL)
	{
		in_flight = list_delete_ptr(in_flight, r);
		add_done(r);
	}
}

/*
 * Whether the sender's URL is still allowed (wam.sender_allowed_hosts,
 * wam.sender_allow_http may have changed, or the row was edited); if not, the
 * sender is paused with the reason before anything is claimed or sent.
 */
static bool
sender_url_allowed(SenderRun *run)
{
	char	   *message;
	char	   *hint;
	char	   *reason;

	if (wam_url_check(run->conf->url, &message, &hint))
		return true;
	reason = psprintf("api_base_url is not allowed: %s", message);
	if (wam_db_pause_sender(run->sender_id, reason))
	{
		run->conf->paused = true;
		wam_clip_copy(run->last_error, reason, WAM_ERROR_LEN);
		run->last_error_at = GetCurrentTimestamp();
		ereport(LOG,
				(errmsg("pg_wamarketing sender: sender %d paused: %s", run->sender_id, reason),
				 hint ? errdetail("%s", hint) : 0,
				 errhint("Fix the URL or the setting, then call wam.resume_sender().")));
	}
	return false;
}

/* Claims and starts what the sender may send now; returns when to look again. */
static TimestampTz
feed_sender(SenderRun *run, TimestampTz now)
{
	WamRequest *claimed;
	WamRequest *next;
	TimestampTz claimed_at;
	int			room = wam_max_in_flight - list_length(in_flight);
	int			avail;
	int			want;
	int			n;

	wam_bucket_recover(&run->bucket, now);
	if (run->idle_until > now)
		return run->idle_until;
	if (room <= 0)
		return now + 20 * 1000;
	if (!sender_url_allowed(run))
		return now + USECS_PER_SEC;
	/*
	 * A fresh clock for the one-second window: every earlier claim's
	 * timestamp is then at or before it, and this claim's at or after it.
	 */
	now = GetCurrentTimestamp();
	avail = wam_bucket_available(&run->bucket, now);
	if (avail < 1)
		return now + wam_bucket_ms_until(&run->bucket, now) * 1000;
	want = Min(Min(avail, wam_batch_size), room);
	n = wam_db_claim(run->sender_id, want, req_cxt, &claimed, &claimed_at);
	if (n < 0)
	{
		/* a lock held the claim up: nothing was claimed; the others wait too */
		claim_locked = true;
		run->idle_until = GetCurrentTimestamp() + 100 * 1000;
		return run->idle_until;
	}
	wam_bucket_take(&run->bucket, n, claimed_at);
	for (; claimed != NULL; claimed = next)
	{
		next = claimed->next;
		claimed->next = NULL;
		claimed->sender_index = run->sender_id;
		run->in_flight++;
		if (wam_http_start(claimed, run->conf->url, run->conf->token))
		{
			/* the list outlives the loop turn */
			MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

			in_flight = lappend(in_flight, claimed);
			MemoryContextSwitchTo(old);
		}
		else
		{
			claimed->outcome = WAM_OUTCOME_NOT_SENT;
			claimed->detail = MemoryContextStrdup(req_cxt, "request not sent: could not create the HTTP request");
			add_done(claimed);
		}
	}
	run->waiting = false;
	if (n < want)
	{
		TimestampTz due = wam_db_next_due(run->sender_id);

		if (due == DT_NOEND)
			run->idle_until = now + 5 * USECS_PER_SEC;	/* an enqueue wakes us */
		else if (due <= now)
		{
			/* due rows held back by the pair limit or the daily tier */
			run->idle_until = now + 500 * 1000;
			run->waiting = true;
		}
		else
			run->idle_until = Min(due, now + 5 * USECS_PER_SEC);
		return run->idle_until;
	}
	run->idle_until = 0;
	return now + wam_bucket_ms_until(&run->bucket, now) * 1000;
}

static void
mark_abandoned_and_flush(void)
{
	ListCell   *lc;

	foreach(lc, in_flight)
	{
		WamRequest *r = (WamRequest *) lfirst(lc);

		r->outcome = WAM_OUTCOME_UNCERTAIN;
		r->detail = MemoryContextStrdup(req_cxt, "the sender worker stopped while the request was in flight");
		add_done(r);
	}
	list_free(in_flight);
	in_flight = NIL;
	flush_done();
}

/* Every statement of the worker waits at most wam.worker_lock_timeout for a lock. */
static void
apply_lock_timeout(void)
{
	char		buf[32];

	snprintf(buf, sizeof(buf), "%dms", wam_worker_lock_timeout_ms);
	SetConfigOption("lock_timeout", buf, PGC_SUSET, PGC_S_OVERRIDE);
}

void
wam_sender_worker_main(Datum arg)
{
	MemoryContext loop_cxt;
	int64		recovered;
	TimestampTz last_reload = 0;
	TimestampTz shutdown_deadline = 0;
	bool		reload = true;

	pqsignal(SIGHUP, handle_sighup);
	pqsignal(SIGTERM, handle_sigterm);
	pqsignal(SIGINT, handle_sigint);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(wam_database, NULL, 0);
	pgstat_report_appname("pg_wamarketing sender");

	/*
	 * A "sending" mark must be durable before its request leaves: with an
	 * asynchronous commit a crash could lose the mark and the message would
	 * go out again.  So the worker's commits are flushed locally whatever the
	 * server's default, and claims also wait for synchronous standbys
	 * (wam_db_claim).  Its other commits (outcomes, dropping its temporary
	 * table at exit) do not wait for them: a standby that is away must not
	 * hold up a shutdown, and a row whose outcome a standby missed is
	 * "sending" there, so uncertain after a failover, never sent twice.
	 */
	/* (a session value: PGC_S_OVERRIDE would also pin the claims' local value) */
	SetConfigOption("synchronous_commit", "local", PGC_SUSET, PGC_S_SESSION);
	apply_lock_timeout();
	wam_shmem_attach_worker();
	wam_http_init();
	req_cxt = AllocSetContextCreate(TopMemoryContext, "wam sender requests", ALLOCSET_DEFAULT_SIZES);
	loop_cxt = AllocSetContextCreate(TopMemoryContext, "wam sender loop", ALLOCSET_DEFAULT_SIZES);

	/* wait for CREATE EXTENSION */
	while (!shutdown_requested)
	{
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
			apply_lock_timeout();
		}
		if (wam_db_ready())
			break;
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, 5000, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
	if (shutdown_requested)
		proc_exit(1);

	while ((recovered = wam_db_recover()) < 0)
	{
		if (shutdown_requested)
			proc_exit(1);
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, 100, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
			apply_lock_timeout();
		}
	}
	if (recovered > 0)
		ereport(LOG,
				(errmsg("pg_wamarketing sender: %lld messages were in flight when the worker last stopped; they are now uncertain",
						(long long) recovered),
				 errhint("A status webhook settles them; wam.requeue_message() sends one again.")));
	ereport(LOG, (errmsg("pg_wamarketing sender started for database \"%s\"", wam_database)));

	for (;;)
	{
		TimestampTz now;
		TimestampTz next_look;
		long		timeout_ms;
		int			i;

		MemoryContextReset(loop_cxt);
		MemoryContextSwitchTo(loop_cxt);

		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
			apply_lock_timeout();
			wam_http_configure();
			reload = true;
		}
		if (MyLatch->is_set)
		{
			/* an enqueue, a sender change or a signal: look at every sender now */
			ResetLatch(MyLatch);
			reload = true;
			for (i = 0; i < nruns; i++)
				runs[i].idle_until = 0;
		}
		if (!PostmasterIsAlive())
			proc_exit(1);

		collect_finished();
		now = GetCurrentTimestamp();
		if (ndone > 0 && now >= flush_not_before &&
			(ndone >= wam_batch_size || in_flight == NIL || shutdown_requested ||
			 now - first_done_at >= 10 * 1000))
			flush_done();

		if (shutdown_requested)
		{
			if (shutdown_deadline == 0)
				shutdown_deadline = now + Min(wam_http_timeout_ms, 5000) * (int64) 1000;
			if (in_flight == NIL || now >= shutdown_deadline)
				break;
			wam_http_poll(50);
			continue;
		}

		if (reload || now - last_reload >= USECS_PER_SEC)
		{
			reload_senders();
			reload = false;
			last_reload = now;
		}

		next_look = now + USECS_PER_SEC;
		claim_locked = false;
		if (wam_worker_enabled)
		{
			for (i = 0; i < nruns && !claim_locked; i++)
			{
				TimestampTz t;

				if (runs[i].conf == NULL || runs[i].conf->paused)
					continue;
				t = feed_sender(&runs[i], now);
				next_look = Min(next_look, t);
			}
		}
		if (ndone > 0 && flush_not_before > now)
			next_look = Min(next_look, flush_not_before);
		publish_state();

		now = GetCurrentTimestamp();
		timeout_ms = next_look > now ? (long) ((next_look - now + 999) / 1000) : 0;
		if (in_flight != NIL)
			wam_http_poll((int) Min(Max(timeout_ms, 1), 20));
		else if (ndone > 0 && flush_not_before <= now)
			continue;
		else if (timeout_ms > 0)
		{
			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 Min(timeout_ms, 1000), PG_WAIT_EXTENSION);
		}
	}

	MemoryContextSwitchTo(loop_cxt);
	collect_finished();
	mark_abandoned_and_flush();
	wam_shmem_publish(NULL, 0);
	wam_http_cleanup();
	ereport(LOG, (errmsg("pg_wamarketing sender stopped")));
	proc_exit(1);
}
