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
	if (fresh)
	{
		b->factor = 1.0;
		b->tokens = b->capacity;
		b->last_refill = now;
	}
	b->tokens = Min(b->tokens, b->capacity);
}

int
wam_bucket_available(WamBucket *b, TimestampTz now)
{
	if (now < b->backoff_until)
		return 0;
	refill(b, now);
	return (int) floor(b->tokens);
}

void
wam_bucket_take(WamBucket *b, int n)
{
	b->tokens -= n;
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
	if (missing <= 0)
		return 0;
	ms = (long) ceil(missing * 1000.0 / (b->rate_per_s * b->factor));
	return Max(ms, 1);
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
