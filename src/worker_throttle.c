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
 * Throttling answers (130429, 4, 80007) are judged by their share of the
 * answers, per period of at least a second and 20 answers:
 *
 * - up to the noise share (10 % at first) the throttles are noise: the API
 *   throttles a few requests whatever the rate (Meta's answers under load,
 *   the mock's random faults); those messages are simply retried and the
 *   rate stays (or grows back).  Reacting to each such answer with a pause
 *   and a halving, as a plain back-off does, spirals down to a twentieth of
 *   the rate with minute-long pauses under a steady 5 % of throttles;
 * - above it the sender is taken to be over a real limit: the rate is cut
 *   to what the API accepted in the period (rate x (1 - share)), and the
 *   answers of the next second are ignored (the API's one-second window
 *   still holds what was sent before the cut).  The sender also pauses
 *   (1 s, doubling up to 60 s) when three periods in a row are over the
 *   limit, or at once when 90 % of the answers are throttles;
 * - a real limit answers a cut: the share falls.  When the period after a
 *   cut of at most 30 % still has half its share, the throttles do not
 *   depend on the rate: the cut is undone and the noise share raised to
 *   what was seen plus 5 points (at most 30 %: a larger share is always a
 *   limit); it decays back by half a point per calm period.
 *
 * Each period within the noise share raises the rate by a twentieth of the
 * configured rate (a hundredth when it had throttles within a minute of a
 * cut: creeping towards the limit), back up to the configured rate; 10 s
 * without answers double it.  Against a real limit L the rate so moves
 * between L and about L / 0.9, and what the API accepts stays at L.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "utils/timestamp.h"

#include "worker.h"

#define RECOVERY_STEP_USEC	(10 * USECS_PER_SEC)
#define MIN_FACTOR			0.05
#define PERIOD_USEC			USECS_PER_SEC
#define PERIOD_MIN_ANSWERS	20
#define NOISE_SHARE			0.10
#define GRACE_USEC			USECS_PER_SEC
#define STEP_UP				0.05
#define PAUSE_AFTER			3		/* periods over the limit in a row */
#define STEP_CREEP			0.01
#define CREEP_USEC			(60 * USECS_PER_SEC)
#define MAX_NOISE_SHARE		0.30
#define NOISE_DECAY			0.005

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

/*
 * Records that `answers` requests of this sender were answered, `throttled`
 * of them with a throttling error.  Returns true when the rate was cut.
 */
bool
wam_bucket_answers(WamBucket *b, int answers, int throttled, TimestampTz now)
{
	double		share;

	if (answers <= 0 || now < b->grace_until)
		return false;
	if (b->period_start == 0)
		b->period_start = now;
	b->period_answers += answers;
	b->period_throttled += Min(throttled, answers);
	if (now - b->period_start < PERIOD_USEC || b->period_answers < PERIOD_MIN_ANSWERS)
		return false;

	share = (double) b->period_throttled / b->period_answers;
	b->period_start = now;
	b->period_answers = 0;
	b->period_throttled = 0;
	refill(b, now);
	b->last_change = now;
	if (b->noise_share <= 0)
		b->noise_share = NOISE_SHARE;
	if (b->cut_share > 0)
	{
		double		cut_share = b->cut_share;

		/* the first period after a cut: did the share answer it? */
		b->cut_share = 0;
		if (cut_share <= MAX_NOISE_SHARE && share <= MAX_NOISE_SHARE && share >= cut_share * 0.5)
		{
			b->factor = Max(b->factor, b->factor_before_cut);
			b->noise_share = Min(MAX_NOISE_SHARE, share + NOISE_DECAY * 10);
			b->streak = 0;
			b->backoff_until = 0;
			return false;
		}
	}
	if (share <= b->noise_share)
	{
		b->streak = 0;
		/* throttled near a limit met in the last minute: creep up; else grow back quickly */
		b->factor = Min(1.0, b->factor + (share > 0 && now - b->last_cut < CREEP_USEC ? STEP_CREEP : STEP_UP));
		b->noise_share = Max(NOISE_SHARE, b->noise_share - NOISE_DECAY);
		return false;
	}

	/* over a real limit: send at the rate the API accepted */
	b->factor_before_cut = b->factor;
	b->last_cut = now;
	b->cut_share = share;
	b->factor = Max(MIN_FACTOR, b->factor * (1.0 - share));
	b->tokens = 0;
	b->last_refill = now;
	b->grace_until = now + GRACE_USEC;
	/* nearly everything refused, or over the limit three times in a row: also pause */
	if (++b->streak >= PAUSE_AFTER || share >= 0.9)
	{
		int			doublings = b->streak - (share >= 0.9 ? 1 : PAUSE_AFTER);
		int64		delay = USECS_PER_SEC << Min(Max(doublings, 0), 6);

		b->backoff_until = now + Min(delay, 60 * USECS_PER_SEC);
		b->last_refill = b->backoff_until;
		b->grace_until = b->backoff_until + GRACE_USEC;
	}
	b->period_start = b->grace_until;
	return true;
}

/* no answers for a while (an idle or paused sender): the rate grows back by itself */
void
wam_bucket_recover(WamBucket *b, TimestampTz now)
{
	if (b->factor >= 1.0 || now - b->last_change < RECOVERY_STEP_USEC || now < b->backoff_until)
		return;
	/* nothing to probe while idle: double, back to the full rate within a minute */
	refill(b, now);
	b->factor = Min(1.0, b->factor * 2);
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
