/*-------------------------------------------------------------------------
 *
 * worker_throttle.c
 *	  Token bucket per sender, and the sender-wide backoff after throttling
 *	  errors (130429, 4, 80007) with gradual recovery.
 *
 * The bucket holds at most `capacity` tokens (the sender's burst; by
 * default one second's worth of its rate) and refills continuously at the
 * rate.  Every request, retries included, takes one token, so over any
 * interval of t seconds at most capacity + t * rate requests go out.
 *
 * A bucket alone lets a second hold capacity + rate requests: the full
 * bucket at its start plus what refills during it (the worker falls behind
 * for a moment, tokens pile up, then a batch claim takes them all).  So a
 * sliding one-second window caps every second at window_cap = the burst, or
 * one second's worth of the rate when that is larger (a burst below the
 * per-second rate must not lower the rate).  It counts claims by their
 * transaction timestamp, which is what wam.outbox.sending_at records: the
 * check runs on a clock read before the claim's transaction starts, so any
 * second of sending_at values holds at most window_cap messages.
 *
 * After a throttling error the whole sender stops until backoff_until
 * (1 s, doubling with each consecutive error up to 60 s) and continues at
 * half its previous rate (down to 5%); every 10 s without a further error
 * the rate grows by a quarter until it is back at the configured rate.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "utils/timestamp.h"

#include "worker.h"

#define RECOVERY_STEP_USEC	(10 * USECS_PER_SEC)
#define MIN_FACTOR			0.05

static void
refill(WamBucket *b, TimestampTz now)
{
	double		elapsed = (double) (now - b->last_refill) / USECS_PER_SEC;

	if (elapsed > 0)
	{
		b->tokens = Min(b->capacity, b->tokens + elapsed * b->rate_per_s * b->factor);
		b->last_refill = now;
	}
}

void
wam_bucket_configure(WamBucket *b, int rate_per_minute, int burst, TimestampTz now)
{
	bool		fresh = (b->last_refill == 0);

	if (!fresh)
		refill(b, now);
	if (wam_max_rate_per_minute > 0)
		rate_per_minute = Min(rate_per_minute, wam_max_rate_per_minute);
	b->rate_per_s = rate_per_minute / 60.0;
	b->capacity = burst > 0 ? burst : Max(1.0, ceil(b->rate_per_s));
	b->window_cap = (int) Max(b->capacity, Max(1.0, ceil(b->rate_per_s)));
	if (fresh)
	{
		b->factor = 1.0;
		b->tokens = b->capacity;
		b->last_refill = now;
	}
	b->tokens = Min(b->tokens, b->capacity);
}

/* forget the claims that left the window (now - 1 s, now] */
static void
prune_window(WamBucket *b, TimestampTz now)
{
	while (b->nmarks > 0 && b->marks[b->first_mark].at <= now - USECS_PER_SEC)
	{
		b->first_mark = (b->first_mark + 1) % WAM_WINDOW_MARKS;
		b->nmarks--;
	}
}

static int
window_used(WamBucket *b, TimestampTz now)
{
	int			used = 0;
	int			i;

	prune_window(b, now);
	for (i = 0; i < b->nmarks; i++)
		used += b->marks[(b->first_mark + i) % WAM_WINDOW_MARKS].n;
	return used;
}

int
wam_bucket_available(WamBucket *b, TimestampTz now)
{
	int			tokens;
	int			room;

	if (now < b->backoff_until)
		return 0;
	refill(b, now);
	tokens = (int) floor(b->tokens);
	room = b->window_cap - window_used(b, now);
	return Max(0, Min(tokens, room));
}

void
wam_bucket_take(WamBucket *b, int n, TimestampTz claimed_at)
{
	int			last;

	b->tokens -= n;
	if (n <= 0)
		return;
	if (b->nmarks == WAM_WINDOW_MARKS)
	{
		/*
		 * Ring full (very high rates): fold the oldest claim into the next
		 * one, under the later timestamp.  It then counts a little longer
		 * than it should, never shorter, so the cap still holds.
		 */
		int			second = (b->first_mark + 1) % WAM_WINDOW_MARKS;

		b->marks[second].n += b->marks[b->first_mark].n;
		b->first_mark = second;
		b->nmarks--;
	}
	last = (b->first_mark + b->nmarks) % WAM_WINDOW_MARKS;
	b->marks[last].at = claimed_at;
	b->marks[last].n = n;
	b->nmarks++;
}

/* milliseconds until the next whole token (or the end of the backoff) */
long
wam_bucket_ms_until(WamBucket *b, TimestampTz now)
{
	double		missing;
	long		ms;

	if (now < b->backoff_until)
		return (long) ((b->backoff_until - now) / 1000) + 1;
	refill(b, now);
	missing = 1.0 - b->tokens;
	ms = missing <= 0 ? 0 : (long) ceil(missing * 1000.0 / (b->rate_per_s * b->factor));
	if (window_used(b, now) >= b->window_cap && b->nmarks > 0)
	{
		/* the window is full until its oldest claim leaves it */
		TimestampTz frees = b->marks[b->first_mark].at + USECS_PER_SEC;

		ms = Max(ms, (long) ((frees - now) / 1000) + 1);
	}
	return ms <= 0 ? 0 : Max(ms, 1);
}

bool
wam_bucket_throttled(WamBucket *b, TimestampTz now)
{
	int64		delay = USECS_PER_SEC << Min(b->streak, 6);

	/* answers to requests sent before the backoff began do not count again */
	if (now < b->backoff_until)
		return false;

	delay = Min(delay, 60 * USECS_PER_SEC);
	b->factor = Max(MIN_FACTOR, b->factor * 0.5);
	b->tokens = 0;
	b->backoff_until = now + delay;
	b->last_refill = b->backoff_until;
	b->last_change = now;
	b->streak++;
	return true;
}

void
wam_bucket_recover(WamBucket *b, TimestampTz now)
{
	if (b->factor >= 1.0 || now - b->last_change < RECOVERY_STEP_USEC || now < b->backoff_until)
		return;
	refill(b, now);
	b->factor = Min(1.0, b->factor * 1.25);
	b->last_change = now;
	if (b->factor >= 1.0)
		b->streak = 0;
}

double
wam_bucket_rate_per_minute(const WamBucket *b)
{
	return b->rate_per_s * b->factor * 60.0;
}

/* the rate without the back-off factor: a fixed value once the configuration is loaded */
double
wam_bucket_capped_rate_per_minute(const WamBucket *b)
{
	return b->rate_per_s * 60.0;
}
