/*
 * test/unit/test_throttle.c — the sender's rate control (src/worker_throttle.c)
 * against simulated APIs, on a simulated clock (no sleeping, no wall-clock
 * reading: every run is the same).
 *
 * The simulation does what the worker does, one millisecond at a time: claim
 * what the bucket allows (batches of at most 50), send, and hand the answers
 * back 50 ms later; throttled messages are due again 1.5 s later.  The API throttles
 * either at random (a seeded generator, independent of the rate) or above a
 * real limit (a sliding one-second window of accepted requests, as the mock
 * and Meta count).  Prints one "ok - ..." / "not ok - ..." line per check.
 */
#include "postgres.h"

#include <stdio.h>

#include "worker.h"

/* the C library's, not libpgport's: this program links no PostgreSQL library */
#undef printf
#undef snprintf

int			wam_max_rate_per_minute = 0;

#define STEP_USEC	1000
#define LATENCY		50			/* ms until a request is answered */
#define RETRY_MS	1500		/* a throttled message is due again (the worker: 1-2 s) */
#define MAX_FLIGHT	100000

typedef struct Sim
{
	double		random_share;	/* throttled at random, whatever the rate */
	int			limit_per_s;	/* 0: no real limit */
	int			rate_per_minute;
	int			messages;		/* 0: an endless queue */
	int			seconds;		/* how long to run (a drain stops when done) */
	int			measure_from;	/* second from which the rates are measured */
} Sim;

typedef struct Result
{
	long		accepted;		/* from measure_from on */
	long		requests;
	long		throttled;
	long		accepted_all;
	double		done_after_s;	/* drain: when the last message was accepted (-1: not done) */
	double		paused_s;		/* time the bucket was in a pause */
	double		min_rate;		/* lowest applied rate (per minute) after the first second */
} Result;

static uint64 rng_state;

static double
rnd(void)
{
	rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
	return (double) (rng_state >> 11) / 9007199254740992.0;
}

static Result
simulate(const Sim *sim)
{
	static TimestampTz answer_at[MAX_FLIGHT];
	static bool answer_thr[MAX_FLIGHT];
	static TimestampTz accepted_ring[1 << 16];
	static TimestampTz retry_at[MAX_FLIGHT];
	int			retry_head = 0;
	int			retry_tail = 0;
	int			ring_first = 0;
	int			ring_n = 0;
	int			head = 0;
	int			tail = 0;
	long		queue = sim->messages > 0 ? sim->messages : 1L << 40;
	long		left = sim->messages;
	WamBucket	b;
	Result		r = {0, 0, 0, 0, -1, 0, 1e12};
	TimestampTz start = (TimestampTz) 1000000000000LL;
	TimestampTz end = start + (TimestampTz) sim->seconds * USECS_PER_SEC;
	TimestampTz now;

	rng_state = 42;
	memset(&b, 0, sizeof(b));
	wam_bucket_configure(&b, sim->rate_per_minute, 0, start);
	for (now = start; now < end; now += STEP_USEC)
	{
		int			avail;
		int			n;
		int			i;
		int			answers = 0;
		int			throttled = 0;
		bool		measuring = now >= start + (TimestampTz) sim->measure_from * USECS_PER_SEC;

		/* answers due now */
		while (head != tail && answer_at[head] <= now)
		{
			answers++;
			if (answer_thr[head])
			{
				throttled++;
				retry_at[retry_tail] = now + RETRY_MS * 1000;	/* retried later */
				retry_tail = (retry_tail + 1) % MAX_FLIGHT;
			}
			head = (head + 1) % MAX_FLIGHT;
		}
		while (retry_head != retry_tail && retry_at[retry_head] <= now)
		{
			queue++;
			retry_head = (retry_head + 1) % MAX_FLIGHT;
		}
		if (answers > 0)
			wam_bucket_answers(&b, answers, throttled, now);
		wam_bucket_recover(&b, now);
		if (now < b.backoff_until)
			r.paused_s += (double) STEP_USEC / USECS_PER_SEC;
		if (now >= start + USECS_PER_SEC)
			r.min_rate = Min(r.min_rate, wam_bucket_rate_per_minute(&b));

		avail = wam_bucket_available(&b, now);
		n = (int) Min((long) Min(avail, 50), queue);
		if (n <= 0)
			continue;
		wam_bucket_take(&b, n, now);
		queue -= n;
		for (i = 0; i < n; i++)
		{
			bool		thr;

			/* the server judges the request when it arrives */
			while (ring_n > 0 && accepted_ring[ring_first] <= now - USECS_PER_SEC)
			{
				ring_first = (ring_first + 1) % (1 << 16);
				ring_n--;
			}
			thr = rnd() < sim->random_share;
			if (!thr && sim->limit_per_s > 0 && ring_n >= sim->limit_per_s)
				thr = true;
			if (!thr && sim->limit_per_s > 0)
			{
				accepted_ring[(ring_first + ring_n) % (1 << 16)] = now;
				ring_n++;
			}
			if (measuring)
			{
				r.requests++;
				if (thr)
					r.throttled++;
				else
					r.accepted++;
			}
			if (!thr)
			{
				r.accepted_all++;
				if (sim->messages > 0 && --left == 0)
					r.done_after_s = (double) (now - start) / USECS_PER_SEC + LATENCY / 1000.0;
			}
			answer_at[tail] = now + LATENCY * 1000;
			answer_thr[tail] = thr;
			tail = (tail + 1) % MAX_FLIGHT;
		}
		if (sim->messages > 0 && left == 0)
			break;
	}
	return r;
}

static int	failures = 0;

static void
check(bool ok, const char *what)
{
	printf("%s - throttle: %s\n", ok ? "ok" : "not ok", what);
	if (!ok)
		failures++;
}

int
main(void)
{
	char		what[256];
	Result		r;
	double		rate;

	/* no throttling: the configured 12,000 per minute (200/s), within 2 % */
	{
		Sim			s = {0.0, 0, 12000, 0, 60, 5};

		r = simulate(&s);
		rate = r.accepted / 55.0;
		snprintf(what, sizeof(what), "no throttles: %.1f/s sent against 200/s configured (within 2 %%)", rate);
		check(rate >= 196 && rate <= 204 && r.throttled == 0, what);
	}

	/* 5 % of requests throttled at random: at least half the rate, no pause */
	{
		Sim			s = {0.05, 0, 12000, 0, 120, 5};

		r = simulate(&s);
		rate = r.accepted / 115.0;
		snprintf(what, sizeof(what), "5 %% random throttles: %.1f/s accepted (at least 100/s, half of 200/s)", rate);
		check(rate >= 100, what);
		snprintf(what, sizeof(what), "5 %% random throttles: the applied rate never fell below half (lowest %.0f/min)", r.min_rate);
		check(r.min_rate >= 6000, what);
		snprintf(what, sizeof(what), "5 %% random throttles: never paused (%.1f s)", r.paused_s);
		check(r.paused_s == 0, what);
	}

	/* the drain of the report: 1,500 messages at 12,000/min, 5 % random throttles */
	{
		Sim			s = {0.05, 0, 12000, 1500, 600, 0};

		r = simulate(&s);
		snprintf(what, sizeof(what), "1,500-message drain at 12,000/min with 5 %% random throttles: all sent after %.1f simulated s (at most 15 s)", r.done_after_s);
		check(r.done_after_s > 0 && r.done_after_s <= 15.0, what);
	}

	/* 20 % random throttles: above the first noise share, still at least half */
	{
		Sim			s = {0.20, 0, 12000, 0, 180, 5};

		r = simulate(&s);
		rate = r.accepted / 175.0;
		snprintf(what, sizeof(what), "20 %% random throttles: %.1f/s accepted (at least 100/s)", rate);
		check(rate >= 100, what);
	}

	/* a real limit of 80/s under 200/s configured: converge to it */
	{
		Sim			s = {0.0, 80, 12000, 0, 120, 20};

		r = simulate(&s);
		rate = r.accepted / 100.0;
		snprintf(what, sizeof(what), "real limit 80/s: %.1f/s accepted (at least 76/s, 95 %% of the limit)", rate);
		check(rate >= 76 && rate <= 80.5, what);
		snprintf(what, sizeof(what), "real limit 80/s: %.1f %% of requests throttled (at most 10 %%)",
				 100.0 * r.throttled / Max(r.requests, 1));
		check(r.throttled * 100 <= r.requests * 10, what);
	}

	/* a 3,000-message drain against the limit: 37.5 s at exactly 80/s */
	{
		Sim			s = {0.0, 80, 12000, 3000, 600, 0};

		r = simulate(&s);
		snprintf(what, sizeof(what), "3,000-message drain against a real limit of 80/s: %.1f simulated s (at most 43 s, 115 %% of 37.5 s)", r.done_after_s);
		check(r.done_after_s > 0 && r.done_after_s <= 43.0, what);
	}

	/* a real limit and 5 % random throttles together */
	{
		Sim			s = {0.05, 80, 12000, 0, 120, 20};

		r = simulate(&s);
		rate = r.accepted / 100.0;
		snprintf(what, sizeof(what), "real limit 80/s plus 5 %% random: %.1f/s accepted (at least 70/s)", rate);
		check(rate >= 70 && rate <= 80.5, what);
		snprintf(what, sizeof(what), "real limit 80/s plus 5 %% random: %.1f %% of requests throttled (at most 15 %%)",
				 100.0 * r.throttled / Max(r.requests, 1));
		check(r.throttled * 100 <= r.requests * 15, what);
	}

	/* every request throttled: the sender slows down to the floor and pauses */
	{
		Sim			s = {1.0, 0, 12000, 0, 60, 0};

		r = simulate(&s);
		snprintf(what, sizeof(what), "everything throttled: at most 5 %% of the configured requests go out (%ld in 60 s)", r.requests);
		check(r.requests <= 12000 * 5 / 100, what);
		snprintf(what, sizeof(what), "everything throttled: the sender pauses (%.0f s of 60)", r.paused_s);
		check(r.paused_s >= 30, what);
	}
	return failures == 0 ? 0 : 1;
}
