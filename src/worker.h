/*-------------------------------------------------------------------------
 *
 * worker.h
 *	  The sender background worker: settings, shared state, and the
 *	  interfaces between its parts (database, HTTP, throttle).
 *
 *-------------------------------------------------------------------------
 */
#ifndef WAM_WORKER_H
#define WAM_WORKER_H

#include "postgres.h"

#include "datatype/timestamp.h"
#include "lib/stringinfo.h"

/* settings (src/worker_main.c) */
extern char *wam_database;
extern bool wam_worker_enabled;
extern int	wam_max_in_flight;
extern int	wam_batch_size;
extern int	wam_http_timeout_ms;
extern int	wam_max_attempts;
extern char *wam_ca_file;
extern int	wam_max_rate_per_minute;
extern bool wam_allow_http;
extern char *wam_api_allowed_hosts;
extern char *wam_http_proxy;
extern int	wam_max_senders;
extern int	wam_worker_lock_timeout_ms;

extern void wam_sender_init(void);
extern PGDLLEXPORT void wam_sender_worker_main(Datum arg);

/* scheduler.c */
extern bool wam_scheduler_enabled;
extern int	wam_scheduler_naptime_ms;
extern void wam_scheduler_init(void);
extern PGDLLEXPORT void wam_scheduler_main(Datum arg);

/* URL allowlist and text from the API (src/worker_url.c) */
extern bool wam_url_check(const char *url, char **message, char **hint);
extern char *wam_clean_text(const char *s, size_t len);
extern void wam_clip_copy(char *dst, const char *src, size_t dstsize);

/* shared memory (src/worker_shmem.c) */
#define WAM_STATE_LEN 32
#define WAM_ERROR_LEN 256

typedef struct WamSenderShared
{
	int32		sender_id;
	char		state[WAM_STATE_LEN];
	double		rate_per_minute;	/* applied now: capped rate times the back-off factor */
	double		capped_rate_per_minute; /* configured, after wam.sender_max_rate_per_minute */
	int32		in_flight;
	char		last_error[WAM_ERROR_LEN];
	TimestampTz last_error_at;
} WamSenderShared;

extern void wam_shmem_init(void);
extern bool wam_shmem_attach_worker(void);
extern void wam_shmem_publish(const WamSenderShared *senders, int n);
extern bool wam_in_sender_worker;

/* token bucket and backoff (src/worker_throttle.c) */
#define WAM_WINDOW_MARKS 128

typedef struct WamSendMark
{
	TimestampTz at;				/* the claim's transaction timestamp (= sending_at) */
	int			n;				/* messages claimed then */
} WamSendMark;

typedef struct WamBucket
{
	double		tokens;
	double		capacity;
	double		rate_per_s;		/* configured, before the backoff factor */
	double		factor;			/* 1.0, lowered after throttling errors */
	TimestampTz last_refill;
	TimestampTz backoff_until;
	TimestampTz last_change;	/* of factor, for gradual recovery */
	int			streak;			/* periods over the limit in a row */
	TimestampTz grace_until;	/* answers before this answer requests sent before a cut */
	TimestampTz period_start;
	int			period_answers;
	int			period_throttled;
	double		noise_share;	/* throttled share taken as noise (0: not yet set) */
	double		cut_share;		/* share that caused the last cut, until judged */
	double		factor_before_cut;
	TimestampTz last_cut;
	/* sliding one-second window: at most window_cap requests in any second */
	int			window_cap;
	int			nmarks;
	int			first_mark;		/* ring buffer of the claims of the last second */
	WamSendMark marks[WAM_WINDOW_MARKS];
} WamBucket;

extern void wam_bucket_configure(WamBucket *b, int rate_per_minute, int burst, TimestampTz now);
extern int	wam_bucket_available(WamBucket *b, TimestampTz now);
extern void wam_bucket_take(WamBucket *b, int n, TimestampTz claimed_at);
extern long wam_bucket_ms_until(WamBucket *b, TimestampTz now);
extern bool wam_bucket_answers(WamBucket *b, int answers, int throttled, TimestampTz now);
extern void wam_bucket_recover(WamBucket *b, TimestampTz now);
extern double wam_bucket_rate_per_minute(const WamBucket *b);
extern double wam_bucket_capped_rate_per_minute(const WamBucket *b);

/* one request */
typedef enum WamOutcome
{
	WAM_OUTCOME_HTTP,			/* a response came back */
	WAM_OUTCOME_NOT_SENT,		/* failed before the request left */
	WAM_OUTCOME_NOT_SENDABLE,	/* failed before it left, and no retry can cure it */
	WAM_OUTCOME_UNCERTAIN		/* may have reached the API */
} WamOutcome;

typedef struct WamRequest
{
	int64		message_id;
	int			sender_index;
	char	   *body;
	size_t		body_len;
	size_t		body_sent;
	void	   *easy;			/* CURL * */
	void	   *headers;		/* struct curl_slist * */
	StringInfoData response;
	WamOutcome	outcome;
	long		http_status;
	char	   *detail;
	struct WamRequest *next;
} WamRequest;

/* HTTP (src/worker_http.c) */
extern void wam_http_init(void);
extern void wam_http_configure(void);
extern void wam_http_cleanup(void);
extern bool wam_http_start(WamRequest *r, const char *url, const char *token);
extern void wam_http_poll(int timeout_ms);
extern WamRequest *wam_http_next_done(void);
extern void wam_http_free(WamRequest *r);
extern void wam_http_wakeup(void);

/* database side (src/worker_db.c) */
typedef struct WamSenderConf
{
	int32		sender_id;
	char	   *url;
	char	   *token;
	int			rate_per_minute;
	int			burst;
	bool		paused;
} WamSenderConf;

typedef struct WamSenderSignal
{
	int32		sender_id;
	int			throttled;
	char	   *paused_reason;
	char	   *last_error;
	int64	   *deferred;		/* results not recorded: another session locks their rows */
	int			ndeferred;
} WamSenderSignal;

extern bool wam_db_ready(void);
extern int64 wam_db_recover(void);
extern int	wam_db_load_senders(WamSenderConf **out, int *total);
extern void wam_db_free_senders(WamSenderConf *s, int n);
extern int	wam_db_claim(int32 sender_id, int max, MemoryContext cxt, WamRequest **out,
						 TimestampTz *claimed_at);
extern TimestampTz wam_db_next_due(int32 sender_id);
extern int	wam_db_record(WamRequest *done, int n, WamSenderSignal **signals, bool *recorded);
extern bool wam_db_pause_sender(int32 sender_id, const char *reason);
extern bool wam_in_db_step;

#endif							/* WAM_WORKER_H */
