/*-------------------------------------------------------------------------
 *
 * send_window.c
 *	  Send windows in the customer's local time (src/sql/send_window.sql).
 *
 *	  wam_internal.normalize_send_windows(spec) -> canonical spec text
 *	  wam.check_send_windows(spec or preset name) -> canonical spec text
 *	  wam.next_window_opening / window_open / window_closes_at
 *	  wam.customer_time_zone(time_zone, phone)
 *	  wam_internal.send_window_preset_trigger()
 *	  setting wam.default_time_zone
 *
 * A spec is a list of weekly windows "DAYS HH:MM-HH:MM"; an end before the
 * start runs into the next day.  The functions run once per message at
 * claim time, so a parsed spec is cached per session by its text, and a
 * call does no catalog access: the zone's offsets over the two weeks around
 * the time are read once with pg_next_dst_boundary, and every local wall
 * time is then converted by arithmetic.  AT TIME ZONE would not do: a wall
 * time in a spring-forward gap must become the first instant after the gap
 * (PostgreSQL moves it forward by the gap's length), and an ambiguous one
 * the earlier instant (PostgreSQL takes the later).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "datatype/timestamp.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "pgtime.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/timestamp.h"

#include "phone.h"
#include "send_window.h"
#include "wam_spi.h"

PG_FUNCTION_INFO_V1(wam_normalize_send_windows);
PG_FUNCTION_INFO_V1(wam_check_send_windows);
PG_FUNCTION_INFO_V1(wam_next_window_opening);
PG_FUNCTION_INFO_V1(wam_window_open);
PG_FUNCTION_INFO_V1(wam_window_closes_at);
PG_FUNCTION_INFO_V1(wam_customer_time_zone);
PG_FUNCTION_INFO_V1(wam_send_window_preset_trigger);

#define WAM_SW_MAX_LEN 10000	/* longest spec accepted */
#define WAM_SW_CACHE 16			/* specs kept parsed per session */
#define MIN_USECS INT64CONST(60000000)

static char *wam_default_time_zone = NULL;

/* One weekly window: day 0 = Monday; end > start, up to 2880 (next day). */
typedef struct
{
	int			day;
	int			start;			/* minutes after local midnight */
	int			end;
} WamWindow;

typedef struct
{
	char	   *text;			/* the spec as given (cache key) */
	int			len;
	int			n;
	WamWindow  *w;				/* sorted by day, start, end */
} WamSpec;

static WamSpec cache[WAM_SW_CACHE];
static int	cache_next = 0;

static const char *const day_names[] = {"mon", "tue", "wed", "thu", "fri", "sat", "sun"};

/* ---------- parsing ---------- */

static void
sw_error(const char *msg, const char *part, int partlen, const char *detail)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg(msg, pnstrdup(part, pg_mbcliplen(part, partlen, 60))),
			 detail ? errdetail("%s", detail) : 0,
			 errhint("Write windows such as \"tue 10:00-11:00, thu 19:00-20:00\" or \"weekdays 12:30-13:30\"; "
					 "days are mon to sun, ranges such as mon-fri, daily, weekdays or weekends.")));
}

static int
day_index(const char *s, int len)
{
	for (int i = 0; i < 7; i++)
		if (len == 3 && pg_strncasecmp(s, day_names[i], 3) == 0)
			return i;
	return -1;
}

/* a day part at *p (a word, or word-word); sets the days' bits */
static const char *
parse_day_part(const char *p, int *days)
{
	const char *w = p,
			   *q;
	int			a,
				b;

	while (isalpha((unsigned char) *p))
		p++;
	if (p - w == 5 && pg_strncasecmp(w, "daily", 5) == 0)
		*days |= 0x7f;
	else if (p - w == 8 && pg_strncasecmp(w, "weekdays", 8) == 0)
		*days |= 0x1f;
	else if (p - w == 8 && pg_strncasecmp(w, "weekends", 8) == 0)
		*days |= 0x60;
	else if ((a = day_index(w, p - w)) < 0)
		sw_error("unknown day \"%s\" in send windows", w, p - w, NULL);
	else
	{
		q = p;
		while (isspace((unsigned char) *q))
			q++;
		if (*q != '-')
		{
			*days |= 1 << a;
			return p;
		}
		q++;
		while (isspace((unsigned char) *q))
			q++;
		p = q;
		while (isalpha((unsigned char) *p))
			p++;
		if ((b = day_index(q, p - q)) < 0)
			sw_error("unknown day \"%s\" in send windows", q, Max(p - q, 1), "A day range joins two days, as in mon-fri.");
		/* fri-mon wraps over the weekend */
		for (int d = a;; d = (d + 1) % 7)
		{
			*days |= 1 << d;
			if (d == b)
				break;
		}
	}
	return p;
}

/* HH:MM at *p into minutes; -1 if malformed or out of range */
static const char *
parse_clock(const char *p, int *minutes, bool is_end)
{
	int			h = 0,
				m = 0,
				nd = 0;

	*minutes = -1;
	while (isdigit((unsigned char) *p) && nd < 3)
		h = h * 10 + (*p++ - '0'), nd++;
	if (nd == 0 || nd > 2 || *p != ':')
		return p;
	p++;
	if (!isdigit((unsigned char) p[0]) || !isdigit((unsigned char) p[1]) || isdigit((unsigned char) p[2]))
		return p;
	m = (p[0] - '0') * 10 + (p[1] - '0');
	p += 2;
	if (m > 59 || h > 24 || (h == 24 && (m != 0 || !is_end)))
		return p;
	*minutes = h * 60 + m;
	return p;
}

static const char *
parse_time_range(const char *p, int *start, int *end)
{
	const char *t = p,
			   *q;

	q = parse_clock(p, start, false);
	if (*start < 0)
	{
		while (*q && !isspace((unsigned char) *q) && *q != ',' && *q != '-')
			q++;
		sw_error("invalid time \"%s\" in send windows", t, q - t, "Times are HH:MM, from 00:00 to 24:00 (24:00 only as an end).");
	}
	p = q;
	while (isspace((unsigned char) *p))
		p++;
	if (*p != '-')
		sw_error("time \"%s\" in send windows has no end", t, q - t, "A window is a time range such as 10:00-11:00.");
	p++;
	while (isspace((unsigned char) *p))
		p++;
	if (*p == '\0' || *p == ',')
		sw_error("time \"%s\" in send windows has no end", t, p - t, "A window is a time range such as 10:00-11:00.");
	q = parse_clock(p, end, true);
	if (*end < 0)
	{
		while (*q && !isspace((unsigned char) *q) && *q != ',')
			q++;
		sw_error("invalid time \"%s\" in send windows", p, Max(q - p, 1), "Times are HH:MM, from 00:00 to 24:00 (24:00 only as an end).");
	}
	if (*end == *start)
		sw_error("send window \"%s\" is empty", t, q - t, "Its start and end are the same time; a whole day is 00:00-24:00.");
	/* an end before the start is on the next day (00:00 is 24:00) */
	if (*end < *start)
		*end += 1440;
	return q;
}

static int
cmp_window(const void *a, const void *b)
{
	const WamWindow *x = a,
			   *y = b;

	if (x->day != y->day)
		return x->day - y->day;
	if (x->start != y->start)
		return x->start - y->start;
	return x->end - y->end;
}

/* parses s[0..len) into *spec (memory in the current context) */
static void
parse_spec(const char *s, int len, WamSpec *spec)
{
	const char *p;
	char	   *buf;
	int			cap = 16,
				n = 0,
				days = 0;
	WamWindow  *w;

	if (len > WAM_SW_MAX_LEN)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("send windows are too long"),
				 errdetail("They have %d characters; at most %d are accepted.", len, WAM_SW_MAX_LEN)));
	buf = pnstrdup(s, len);
	if (strlen(buf) != len)
		sw_error("unexpected \"%s\" in send windows", "\\0", 2, NULL);
	w = palloc(sizeof(WamWindow) * cap);
	p = buf;
	for (;;)
	{
		while (isspace((unsigned char) *p))
			p++;
		if (*p == '\0')
		{
			if (n == 0 && days == 0)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("send windows must not be empty")));
			sw_error("send window \"%s\" has no time range", buf, len, "Each day part needs a time range such as 10:00-11:00.");
		}
		if (isalpha((unsigned char) *p))
		{
			const char *d = p;

			p = parse_day_part(p, &days);
			while (isspace((unsigned char) *p))
				p++;
			if (*p == ',')
			{
				/* "sat,sun 09:00-12:00": the days share the next time */
				p++;
				continue;
			}
			if (!isdigit((unsigned char) *p))
			{
				if (*p == '\0')
					sw_error("day \"%s\" in send windows has no time range", d, p - d, "Each day part needs a time range such as 10:00-11:00.");
				sw_error("unexpected \"%s\" in send windows", p, Min(strlen(p), 20), NULL);
			}
		}
		else if (isdigit((unsigned char) *p))
		{
			const char *t = p;

			while (*t && *t != ',')
				t++;
			sw_error("time range \"%s\" in send windows has no day", p, t - p, "Write the days first, as in \"mon 10:00-11:00\".");
		}
		else
			sw_error("unexpected \"%s\" in send windows", p, pg_mblen(p), NULL);

		{
			int			start,
						end;

			p = parse_time_range(p, &start, &end);
			for (int d = 0; d < 7; d++)
			{
				if (!(days & (1 << d)))
					continue;
				if (n == cap)
				{
					cap *= 2;
					w = repalloc(w, sizeof(WamWindow) * cap);
				}
				w[n].day = d;
				w[n].start = start;
				w[n].end = end;
				n++;
			}
			days = 0;
		}
		while (isspace((unsigned char) *p))
			p++;
		if (*p == '\0')
			break;
		if (*p != ',')
			sw_error("unexpected \"%s\" in send windows", p, Min(strlen(p), 20), "Separate windows with commas.");
		p++;
	}
	qsort(w, n, sizeof(WamWindow), cmp_window);
	/* exact duplicates go; overlapping and adjacent windows stay as written */
	{
		int			k = 0;

		for (int i = 0; i < n; i++)
			if (k == 0 || cmp_window(&w[k - 1], &w[i]) != 0)
				w[k++] = w[i];
		n = k;
	}
	spec->n = n;
	spec->w = w;
	pfree(buf);
}

/* the parsed spec of a text, from the session's cache */
static WamSpec *
get_spec(text *t)
{
	const char *s = VARDATA_ANY(t);
	int			len = VARSIZE_ANY_EXHDR(t);
	WamSpec    *c;
	WamSpec		tmp;
	MemoryContext old;

	for (int i = 0; i < WAM_SW_CACHE; i++)
		if (cache[i].text && cache[i].len == len && memcmp(cache[i].text, s, len) == 0)
			return &cache[i];
	/* parsed before anything is replaced: an error leaves the cache whole */
	parse_spec(s, len, &tmp);
	c = &cache[cache_next];
	cache_next = (cache_next + 1) % WAM_SW_CACHE;
	if (c->text)
	{
		pfree(c->text);
		pfree(c->w);
		c->text = NULL;
	}
	old = MemoryContextSwitchTo(TopMemoryContext);
	c->w = palloc(sizeof(WamWindow) * Max(tmp.n, 1));
	memcpy(c->w, tmp.w, sizeof(WamWindow) * tmp.n);
	c->n = tmp.n;
	c->len = len;
	c->text = pnstrdup(s, len);
	MemoryContextSwitchTo(old);
	return c;
}

static char *
spec_to_text(const WamSpec *spec)
{
	StringInfoData b;

	initStringInfo(&b);
	for (int i = 0; i < spec->n; i++)
	{
		const WamWindow *w = &spec->w[i];
		int			e = w->end > 1440 ? w->end - 1440 : w->end;

		appendStringInfo(&b, "%s%s %02d:%02d-%02d:%02d", i ? ", " : "", day_names[w->day],
						 w->start / 60, w->start % 60, e / 60, e % 60);
	}
	return b.data;
}

Datum
wam_normalize_send_windows(PG_FUNCTION_ARGS)
{
	PG_RETURN_TEXT_P(cstring_to_text(spec_to_text(get_spec(PG_GETARG_TEXT_PP(0)))));
}

/* wam.check_send_windows(windows text): a preset's name or a spec */
Datum
wam_check_send_windows(PG_FUNCTION_ARGS)
{
	static SPIPlanPtr plan = NULL;
	text	   *t = PG_GETARG_TEXT_PP(0);
	Oid			argtype = TEXTOID;
	Datum		arg = PointerGetDatum(t);
	text	   *found = NULL;

	if (VARSIZE_ANY_EXHDR(t) <= 200)
	{
		MemoryContext caller = CurrentMemoryContext;

		SPI_connect();
		if (SPI_execute_plan(wam_spi_plan(&plan, "SELECT p.windows FROM wam.send_window_preset p WHERE p.name OPERATOR(pg_catalog.=) $1",
										  1, &argtype, CURSOR_OPT_GENERIC_PLAN),
							 &arg, NULL, true, 1) != SPI_OK_SELECT)
			elog(ERROR, "reading wam.send_window_preset failed");
		if (SPI_processed == 1)
		{
			bool		isnull;
			Datum		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);

			if (!isnull)
			{
				MemoryContext spi = MemoryContextSwitchTo(caller);

				found = DatumGetTextPCopy(d);
				MemoryContextSwitchTo(spi);
			}
		}
		SPI_finish();
	}
	PG_RETURN_TEXT_P(cstring_to_text(spec_to_text(get_spec(found ? found : t))));
}

/* a preset's windows are checked and stored normalized */
Datum
wam_send_window_preset_trigger(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	HeapTuple	tup;
	TupleDesc	desc;
	int			att;
	bool		isnull;
	Datum		d;
	Datum		val;
	bool		repl_null = false;
	int			cols[1];

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_FOR_ROW(td->tg_event) || !TRIGGER_FIRED_BEFORE(td->tg_event) ||
		TRIGGER_FIRED_BY_DELETE(td->tg_event))
		elog(ERROR, "send_window_preset_trigger: not called as a before insert or update row trigger");
	tup = TRIGGER_FIRED_BY_UPDATE(td->tg_event) ? td->tg_newtuple : td->tg_trigtuple;
	desc = RelationGetDescr(td->tg_relation);
	att = SPI_fnumber(desc, "windows");
	if (att <= 0)
		elog(ERROR, "send_window_preset_trigger: no column \"windows\"");
	d = SPI_getbinval(tup, desc, att, &isnull);
	if (isnull)
		return PointerGetDatum(tup);	/* NOT NULL refuses it */
	val = PointerGetDatum(cstring_to_text(spec_to_text(get_spec(DatumGetTextPP(d)))));
	cols[0] = att;
	return PointerGetDatum(heap_modify_tuple_by_cols(tup, desc, 1, cols, &val, &repl_null));
}

/* ---------- time zones ---------- */

/*
 * The zone's UTC offsets over a stretch of time: offset[0] before
 * boundary[0], offset[i] from boundary[i - 1] to boundary[i], the last one
 * after.  Times are PostgreSQL timestamps (microseconds since 2000).
 */
#define WAM_SW_MAX_SEG 16
typedef struct
{
	int			n;				/* segments */
	TimestampTz boundary[WAM_SW_MAX_SEG];
	int64		offset[WAM_SW_MAX_SEG]; /* microseconds east of UTC */
} WamOffsets;

#define UNIX_DIFF_SECS ((int64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * SECS_PER_DAY)

static void
zone_offsets(pg_tz *tz, TimestampTz from, TimestampTz to, WamOffsets *o)
{
	pg_time_t	t = (pg_time_t) (from / USECS_PER_SEC + UNIX_DIFF_SECS);
	pg_time_t	until = (pg_time_t) (to / USECS_PER_SEC + UNIX_DIFF_SECS);

	o->n = 0;
	for (;;)
	{
		long		before,
					after;
		int			bdst,
					adst;
		pg_time_t	boundary;
		int			r = pg_next_dst_boundary(&t, &before, &bdst, &boundary, &after, &adst, tz);

		if (r < 0)
			ereport(ERROR,
					(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
					 errmsg("time zone offset cannot be determined for this time")));
		if (o->n == 0)
			o->offset[o->n++] = (int64) before * USECS_PER_SEC;
		if (r == 0 || boundary > until || o->n == WAM_SW_MAX_SEG)
			break;
		o->boundary[o->n - 1] = ((int64) boundary - UNIX_DIFF_SECS) * USECS_PER_SEC;
		o->offset[o->n++] = (int64) after * USECS_PER_SEC;
		t = boundary;
	}
}

static int64
offset_at(const WamOffsets *o, TimestampTz u)
{
	int			i = 0;

	while (i < o->n - 1 && u >= o->boundary[i])
		i++;
	return o->offset[i];
}

/*
 * The instant of a local wall time: the earlier one when the wall time
 * occurs twice (fall back), the end of the gap when it does not occur
 * (spring forward).
 */
static TimestampTz
local_to_utc(const WamOffsets *o, Timestamp local)
{
	for (int i = 0; i < o->n; i++)
	{
		TimestampTz u = local - o->offset[i];

		if ((i == 0 || u >= o->boundary[i - 1]) && (i == o->n - 1 || u < o->boundary[i]))
			return u;
	}
	for (int i = 1; i < o->n; i++)
		if (local >= o->boundary[i - 1] + o->offset[i - 1] && local < o->boundary[i - 1] + o->offset[i])
			return o->boundary[i - 1];
	return local - o->offset[0];
}

static pg_tz *
find_zone(text *zone)
{
	static char last[TZ_STRLEN_MAX + 1];
	static pg_tz *last_tz = NULL;
	char	   *name = text_to_cstring(zone);
	pg_tz	   *tz;

	if (last_tz && strcmp(name, last) == 0)
		return last_tz;
	tz = strlen(name) <= TZ_STRLEN_MAX && name[0] ? pg_tzset(name) : NULL;
	if (tz == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("time zone \"%s\" is not recognized", pnstrdup(name, Min(strlen(name), 100)))));
	strlcpy(last, name, sizeof(last));
	last_tz = tz;
	return tz;
}

/* the week's windows as instants around `at`, for the three functions */
typedef struct
{
	int			n;
	TimestampTz *start;
	TimestampTz *end;
} WamInstances;

static void
instances(const WamSpec *spec, pg_tz *tz, TimestampTz at, WamInstances *r)
{
	WamOffsets	o;
	Timestamp	local;
	int64		day;
	int			cap = spec->n * 11;

	if (at < MIN_TIMESTAMP + 3 * USECS_PER_DAY || at > END_TIMESTAMP - 12 * USECS_PER_DAY)
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("timestamp out of range")));
	/* local days at-1 .. at+9, and a day on each side for the offsets */
	zone_offsets(tz, at - 3 * USECS_PER_DAY, at + 11 * USECS_PER_DAY, &o);
	local = at + offset_at(&o, at);
	day = local / USECS_PER_DAY;
	if (local < 0 && local % USECS_PER_DAY != 0)
		day--;
	r->n = 0;
	r->start = palloc(sizeof(TimestampTz) * Max(cap, 1));
	r->end = palloc(sizeof(TimestampTz) * Max(cap, 1));
	for (int k = -1; k <= 9; k++)
	{
		/* 2000-01-01, day 0, was a Saturday (5) */
		int			dow = (int) (((day + k + 5) % 7 + 7) % 7);
		Timestamp	midnight = (day + k) * USECS_PER_DAY;

		for (int i = 0; i < spec->n; i++)
		{
			TimestampTz s,
						e;

			if (spec->w[i].day != dow)
				continue;
			s = local_to_utc(&o, midnight + spec->w[i].start * MIN_USECS);
			e = local_to_utc(&o, midnight + spec->w[i].end * MIN_USECS);
			/* 02:00-03:00 on a spring-forward day does not happen */
			if (e <= s)
				continue;
			r->start[r->n] = s;
			r->end[r->n] = e;
			r->n++;
		}
	}
}

static TimestampTz
next_opening(const WamSpec *spec, pg_tz *tz, TimestampTz at)
{
	WamInstances r;
	TimestampTz best = DT_NOEND;

	instances(spec, tz, at, &r);
	for (int i = 0; i < r.n; i++)
		if (r.end[i] > at)
			best = Min(best, Max(r.start[i], at));
	return best;
}

static bool
get_args(FunctionCallInfo fcinfo, WamSpec **spec, pg_tz **tz, TimestampTz *at)
{
	*spec = PG_ARGISNULL(0) ? NULL : get_spec(PG_GETARG_TEXT_PP(0));
	*at = PG_GETARG_TIMESTAMPTZ(2);
	*tz = find_zone(PG_GETARG_TEXT_PP(1));
	return *spec != NULL && !TIMESTAMP_NOT_FINITE(*at);
}

/* wam.next_window_opening(windows, time_zone, at); NULL windows: at */
Datum
wam_next_window_opening(PG_FUNCTION_ARGS)
{
	WamSpec    *spec;
	pg_tz	   *tz;
	TimestampTz at;

	if (PG_ARGISNULL(1) || PG_ARGISNULL(2))
		PG_RETURN_NULL();
	if (!get_args(fcinfo, &spec, &tz, &at))
		PG_RETURN_TIMESTAMPTZ(at);
	PG_RETURN_TIMESTAMPTZ(next_opening(spec, tz, at));
}

Datum
wam_window_open(PG_FUNCTION_ARGS)
{
	WamSpec    *spec;
	pg_tz	   *tz;
	TimestampTz at;

	if (PG_ARGISNULL(1) || PG_ARGISNULL(2))
		PG_RETURN_NULL();
	if (!get_args(fcinfo, &spec, &tz, &at))
		PG_RETURN_BOOL(true);
	PG_RETURN_BOOL(next_opening(spec, tz, at) == at);
}

/*
 * wam.window_closes_at: when the open stretch containing `at` ends,
 * overlapping and adjacent windows counting as one; infinity when the
 * windows cover the whole week.
 */
Datum
wam_window_closes_at(PG_FUNCTION_ARGS)
{
	WamSpec    *spec;
	pg_tz	   *tz;
	TimestampTz at,
				e;
	WamInstances r;
	bool		grew = true;

	if (PG_ARGISNULL(1) || PG_ARGISNULL(2))
		PG_RETURN_NULL();
	if (!get_args(fcinfo, &spec, &tz, &at))
	{
		if (spec == NULL)
			PG_RETURN_TIMESTAMPTZ(DT_NOEND);
		PG_RETURN_NULL();
	}
	instances(spec, tz, at, &r);
	e = at;
	while (grew)
	{
		grew = false;
		for (int i = 0; i < r.n; i++)
			if (r.start[i] <= e && r.end[i] > e)
				e = r.end[i], grew = true;
	}
	if (e == at)
		PG_RETURN_NULL();
	/* still open a week on: the instances ran out, not the windows */
	if (e > at + 7 * USECS_PER_DAY)
		PG_RETURN_TIMESTAMPTZ(DT_NOEND);
	PG_RETURN_TIMESTAMPTZ(e);
}

/* ---------- a customer's zone ---------- */

/*
 * wam.customer_time_zone(time_zone, phone): the customer's own zone if it
 * is a zone name, else that of the phone's country, else
 * wam.default_time_zone.
 */
Datum
wam_customer_time_zone(PG_FUNCTION_ARGS)
{
	static SPIPlanPtr plan = NULL;
	const char *zone = NULL;
	const char *iso = NULL;

	if (!PG_ARGISNULL(0))
	{
		char	   *z = text_to_cstring(PG_GETARG_TEXT_PP(0));

		zone = wam_time_zone_lookup(z);
	}
	if (zone == NULL && !PG_ARGISNULL(1))
	{
		text	   *phone = PG_GETARG_TEXT_PP(1);

		iso = wam_phone_country(VARDATA_ANY(phone), VARSIZE_ANY_EXHDR(phone));
	}
	if (zone == NULL && iso != NULL)
	{
		MemoryContext caller = CurrentMemoryContext;
		Oid			argtype = TEXTOID;
		Datum		arg = PointerGetDatum(cstring_to_text(iso));

		SPI_connect();
		if (SPI_execute_plan(wam_spi_plan(&plan, "SELECT z.time_zone FROM wam.country_time_zone z WHERE z.country OPERATOR(pg_catalog.=) $1",
										  1, &argtype, CURSOR_OPT_GENERIC_PLAN),
							 &arg, NULL, true, 1) != SPI_OK_SELECT)
			elog(ERROR, "reading wam.country_time_zone failed");
		if (SPI_processed == 1)
		{
			char	   *v = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);

			if (v)
				zone = MemoryContextStrdup(caller, v);
		}
		SPI_finish();
	}
	if (zone == NULL)
		zone = wam_default_time_zone;
	PG_RETURN_TEXT_P(cstring_to_text(zone));
}

/*
 * A known zone name, spelled as pg_timezone_names does.  'UTC' is taken
 * without reading the list of names: this runs when the library loads.
 */
static bool
check_default_time_zone(char **newval, void **extra, GucSource source)
{
	const char *found;

	if (*newval == NULL || strcmp(*newval, "UTC") == 0)
		return true;
	found = wam_time_zone_lookup(*newval);
	if (found == NULL)
	{
		GUC_check_errdetail("\"%s\" is not a time zone name of pg_timezone_names.", *newval);
		return false;
	}
	if (strcmp(found, *newval) != 0)
	{
		/* PostgreSQL 15 allocates setting values with malloc */
		char	   *copy = strdup(found);

		if (copy == NULL)
			return false;
		free(*newval);
		*newval = copy;
	}
	return true;
}

void
wam_send_window_init(void)
{
	DefineCustomStringVariable("wam.default_time_zone",
							   "Time zone of customers whose own zone and phone country are unknown.",
							   "Used by wam.customer_time_zone for send windows; a name of pg_timezone_names, "
							   "such as Asia/Taipei.",
							   &wam_default_time_zone, "UTC", PGC_USERSET, 0,
							   check_default_time_zone, NULL, NULL);
}
