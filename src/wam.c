/*-------------------------------------------------------------------------
 *
 * wam.c
 *	  Module entry point of pg_wamarketing: settings shared by all parts.
 *
 * The library works when loaded on demand (CREATE EXTENSION, first call of
 * a function) and from shared_preload_libraries; only the sender worker
 * (src/worker_main.c) needs preloading.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <limits.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "fmgr.h"
#include "utils/guc.h"

#include "backup.h"
#include "segment.h"
#include "send_window.h"
#include "webhook.h"
#include "worker.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

static char *wam_change_reason = NULL;

int			wam_segment_output_format = WAM_SEGMENT_OUTPUT_ARRAY;

static const struct config_enum_entry wam_segment_output_options[] = {
	{"array", WAM_SEGMENT_OUTPUT_ARRAY, false},
	{"hex", WAM_SEGMENT_OUTPUT_HEX, false},
	{NULL, 0, false}
};

/*
 * wam.malloc_trim_threshold, in kB; -1 leaves glibc's own policy alone.
 *
 * CRoaring allocates every container with malloc(), and a count over dense
 * tags builds and frees a few megabytes of them per query.  With glibc's
 * defaults the heap top is returned to the kernel whenever more than 128 kB
 * of it is free, i.e. after every such query, and the next query takes a
 * page fault for each 4 kB page it touches again.  On virtual machines a
 * fault costs 10-20 us, which made a three-tag count over ten million
 * customers five times slower (72 ms instead of 14 ms) than the bitmap work
 * itself.  Keeping up to this much freed memory in the process avoids it;
 * a backend's memory is still given back when it exits.
 */
static int	wam_malloc_trim_threshold = 65536;

static void
wam_assign_malloc_trim_threshold(int newval, void *extra)
{
#if defined(__GLIBC__) && defined(M_TRIM_THRESHOLD)
	static bool tuned = false;

	if (newval < 0)
	{
		/* untouched so far: keep glibc's dynamic policy; else its 128 kB */
		if (tuned)
			(void) mallopt(M_TRIM_THRESHOLD, 128 * 1024);
		return;
	}
	/* glibc ignores values it cannot use; nothing worth reporting */
	(void) mallopt(M_TRIM_THRESHOLD, (int) Min((long) newval * 1024, (long) INT_MAX));
	tuned = true;
#endif
}

void
_PG_init(void)
{
	DefineCustomEnumVariable("wam.segment_output_format",
							 "Text output format of wam.segment values.",
							 "\"array\" prints {1,2,3}; \"hex\" prints the Roaring portable "
							 "serialization as \\x..., far shorter for large segments. "
							 "Input always accepts both.",
							 &wam_segment_output_format,
							 WAM_SEGMENT_OUTPUT_ARRAY,
							 wam_segment_output_options,
							 PGC_USERSET,
							 0,
							 NULL, NULL, NULL);

	DefineCustomIntVariable("wam.malloc_trim_threshold",
							"Freed memory a backend keeps instead of returning it to the kernel.",
							"Avoids page faults when segment operations allocate and free "
							"megabytes of bitmap containers query after query (glibc only). "
							"-1 restores glibc's default of 128 kB.",
							&wam_malloc_trim_threshold,
							65536, -1, INT_MAX / 1024,
							PGC_SIGHUP,
							GUC_UNIT_KB,
							NULL, wam_assign_malloc_trim_threshold, NULL);

	wam_backup_init();
	wam_webhook_init();
	wam_send_window_init();

	/* the sender worker's settings; registers the worker when preloaded */
	wam_sender_init();
	/* the scheduler's settings; registers its worker when preloaded (after the sender: wam.worker_database) */
	wam_scheduler_init();

	DefineCustomStringVariable("wam.change_reason",
							   "Reason recorded with tag and rule changes that are made without a reason argument.",
							   "For example SET LOCAL wam.change_reason = 'quarterly review' before an UPDATE of wam.tag_rule.",
							   &wam_change_reason, "", PGC_USERSET, 0, NULL, NULL, NULL);

	MarkGUCPrefixReserved("wam");
}
