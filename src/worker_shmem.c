/*-------------------------------------------------------------------------
 *
 * worker_shmem.c
 *	  Shared memory of the sender worker: its latch (so that a committed
 *	  enqueue wakes it at once, without polling) and its live per-sender
 *	  state for the wam.worker_status view.
 *
 * Only exists when the library is in shared_preload_libraries; without it
 * the wake trigger does nothing and the view shows "not running".
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "commands/trigger.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "worker.h"

typedef struct WamShared
{
	slock_t		mutex;
	pid_t		worker_pid;
	Oid			database;
	Latch	   *worker_latch;
	int			nsenders;
	int			capacity;		/* wam.worker_max_senders */
	WamSenderShared senders[FLEXIBLE_ARRAY_MEMBER];
} WamShared;

static WamShared *wam_shared = NULL;
static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;
static bool wake_pending = false;
static bool xact_callback_registered = false;

/* true in the sender worker: its own commits must not wake it again */
bool		wam_in_sender_worker = false;

static Size
wam_shmem_size(void)
{
	return add_size(offsetof(WamShared, senders), mul_size(sizeof(WamSenderShared), wam_max_senders));
}

static void
wam_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(MAXALIGN(wam_shmem_size()));
}

static void
wam_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	wam_shared = ShmemInitStruct("pg_wamarketing sender", wam_shmem_size(), &found);
	if (!found)
	{
		memset(wam_shared, 0, wam_shmem_size());
		SpinLockInit(&wam_shared->mutex);
		wam_shared->capacity = wam_max_senders;
	}
	LWLockRelease(AddinShmemInitLock);
}

/* Called from _PG_init while shared_preload_libraries are loaded. */
void
wam_shmem_init(void)
{
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = wam_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = wam_shmem_startup;
}

static void
wam_shmem_detach_worker(int code, Datum arg)
{
	SpinLockAcquire(&wam_shared->mutex);
	if (wam_shared->worker_pid == MyProcPid)
	{
		wam_shared->worker_pid = 0;
		wam_shared->worker_latch = NULL;
		wam_shared->nsenders = 0;
	}
	SpinLockRelease(&wam_shared->mutex);
}

/* The worker announces itself: its latch, pid and database. */
bool
wam_shmem_attach_worker(void)
{
	if (wam_shared == NULL)
		return false;
	SpinLockAcquire(&wam_shared->mutex);
	wam_shared->worker_pid = MyProcPid;
	wam_shared->database = MyDatabaseId;
	wam_shared->worker_latch = &MyProc->procLatch;
	wam_shared->nsenders = 0;
	SpinLockRelease(&wam_shared->mutex);
	before_shmem_exit(wam_shmem_detach_worker, (Datum) 0);
	wam_in_sender_worker = true;
	return true;
}

void
wam_shmem_publish(const WamSenderShared *senders, int n)
{
	if (wam_shared == NULL)
		return;
	SpinLockAcquire(&wam_shared->mutex);
	n = Min(n, wam_shared->capacity);
	if (n > 0)
		memcpy(wam_shared->senders, senders, sizeof(WamSenderShared) * n);
	wam_shared->nsenders = n;
	SpinLockRelease(&wam_shared->mutex);
}

static void
wam_wake_at_commit(XactEvent event, void *arg)
{
	Latch	   *latch = NULL;

	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_PARALLEL_COMMIT)
	{
		if (wake_pending && wam_shared != NULL)
		{
			SpinLockAcquire(&wam_shared->mutex);
			if (wam_shared->worker_pid != 0 && wam_shared->database == MyDatabaseId)
				latch = wam_shared->worker_latch;
			SpinLockRelease(&wam_shared->mutex);
			if (latch)
				SetLatch(latch);
		}
		wake_pending = false;
	}
	else if (event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT)
		wake_pending = false;
}

/*
 * Statement trigger on wam.outbox and wam.sender: wake the worker once the
 * transaction commits, not before (it would find nothing to claim yet).
 */
PG_FUNCTION_INFO_V1(wam_wake_sender_worker);
Datum
wam_wake_sender_worker(PG_FUNCTION_ARGS)
{
	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("wam_internal.outbox_wake_worker_trigger() must be called as a trigger")));
	if (wam_shared != NULL && !wam_in_sender_worker)
	{
		if (!xact_callback_registered)
		{
			RegisterXactCallback(wam_wake_at_commit, NULL);
			xact_callback_registered = true;
		}
		wake_pending = true;
	}
	return PointerGetDatum(NULL);
}

PG_FUNCTION_INFO_V1(wam_worker_pid);
Datum
wam_worker_pid(PG_FUNCTION_ARGS)
{
	pid_t		pid = 0;

	if (wam_shared != NULL)
	{
		SpinLockAcquire(&wam_shared->mutex);
		if (wam_shared->database == MyDatabaseId)
			pid = wam_shared->worker_pid;
		SpinLockRelease(&wam_shared->mutex);
	}
	if (pid == 0)
		PG_RETURN_NULL();
	PG_RETURN_INT32(pid);
}

PG_FUNCTION_INFO_V1(wam_worker_sender_state);
Datum
wam_worker_sender_state(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	WamSenderShared *copy = NULL;
	int			n = 0;
	int			i;

	InitMaterializedSRF(fcinfo, 0);
	if (wam_shared != NULL)
	{
		/* allocated before the spinlock is taken: no palloc while holding it */
		copy = palloc(sizeof(WamSenderShared) * wam_shared->capacity);
		SpinLockAcquire(&wam_shared->mutex);
		if (wam_shared->worker_pid != 0 && wam_shared->database == MyDatabaseId)
		{
			n = wam_shared->nsenders;
			memcpy(copy, wam_shared->senders, sizeof(WamSenderShared) * n);
		}
		SpinLockRelease(&wam_shared->mutex);
	}
	for (i = 0; i < n; i++)
	{
		Datum		values[7];
		bool		nulls[7] = {false};

		values[0] = Int32GetDatum(copy[i].sender_id);
		values[1] = CStringGetTextDatum(copy[i].state);
		values[2] = Float8GetDatum(copy[i].rate_per_minute);
		values[3] = Int32GetDatum(copy[i].in_flight);
		if (copy[i].last_error[0] != '\0')
		{
			values[4] = CStringGetTextDatum(copy[i].last_error);
			values[5] = TimestampTzGetDatum(copy[i].last_error_at);
		}
		else
			nulls[4] = nulls[5] = true;
		values[6] = Float8GetDatum(copy[i].capped_rate_per_minute);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}
