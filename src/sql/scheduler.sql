-- src/sql/scheduler.sql: the extension's periodic jobs (run by the scheduler
-- worker, src/scheduler.c, or by pg_cron calling wam.run_due_jobs())

-- The jobs are a fixed set: each name maps to one call in
-- wam_internal.run_job_body().  The table holds only their schedules, never
-- code, so whoever may change a schedule cannot make the scheduler (which
-- connects as the bootstrap superuser) run anything else.
CREATE TABLE wam.job (
	job text PRIMARY KEY CONSTRAINT job_known CHECK (job IN
		('expire tags', 'run tag rules', 'tag health report', 'tag audit', 'maintain partitions', 'campaign states',
		 'decay alerts', 'offer triggers')),
	enabled boolean NOT NULL DEFAULT true,
	run_every interval NOT NULL CONSTRAINT job_run_every CHECK (run_every >= interval '1 minute'),
	at_time time CONSTRAINT job_at_time CHECK (at_time = date_trunc('minute', at_time)),
	on_weekday smallint CONSTRAINT job_on_weekday CHECK (on_weekday BETWEEN 1 AND 7),
	time_zone text NOT NULL DEFAULT 'UTC',
	options jsonb NOT NULL DEFAULT '{}' CONSTRAINT job_options CHECK (jsonb_typeof(options) = 'object'),
	next_run_at timestamptz,
	description text NOT NULL,
	CONSTRAINT job_weekday_needs_time CHECK (on_weekday IS NULL OR at_time IS NOT NULL)
);
COMMENT ON TABLE wam.job IS 'the extension''s periodic jobs and their schedules (change with UPDATE; next_run_at NULL: computed at the next tick)';
COMMENT ON COLUMN wam.job.run_every IS 'period; with at_time the job runs at that local time, the first such moment at least run_every after the previous scheduled run (less up to six days to reach on_weekday)';
COMMENT ON COLUMN wam.job.at_time IS 'local time of day (in time_zone) the job runs at; NULL: every run_every from the previous run';
COMMENT ON COLUMN wam.job.on_weekday IS 'ISO day of the week (1 = Monday ... 7 = Sunday) the job runs on; needs at_time';
COMMENT ON COLUMN wam.job.next_run_at IS 'when the job is due next; set it to now() to run the job at the next tick';

INSERT INTO wam.job (job, run_every, at_time, on_weekday, options, description) VALUES
	('expire tags', interval '15 minutes', NULL, NULL, '{}',
	 'removes tag attachments whose expiry has passed (wam.expire_tags)'),
	('run tag rules', interval '5 minutes', NULL, NULL, '{}',
	 'applies the condition rules of wam.tag_rule (wam.run_tag_rules)'),
	('tag health report', interval '7 days', time '08:00', 1, '{}',
	 'records the weekly tag health report (wam.record_tag_health)'),
	('tag audit', interval '3 months', time '08:00', 1, '{"inactive": "180 days", "action": "report"}',
	 'quarterly audit of tags held by customers without interaction (wam.audit_tags; options: inactive, action)'),
	('maintain partitions', interval '1 hour', NULL, NULL, '{}',
	 'creates the monthly partitions ahead and applies the retention of wam.retention (wam.maintain_partitions)'),
	('campaign states', interval '1 minute', NULL, NULL, '{}',
	 'starts scheduled campaigns and finishes those with nothing left to send (wam.advance_campaigns)'),
	('decay alerts', interval '7 days', time '06:00', 2, '{"min_messages": 200, "fall": 0.2, "click_window": "1 day"}',
	 'alerts on RFM tiers and saved segments whose weekly click rate fell by fall two weeks in a row (wam.click_decay; options: min_messages, fall, click_window)'),
	('offer triggers', interval '1 minute', NULL, NULL, '{}',
	 'queues the messages of behaviour-triggered offers for new events (wam.run_offer_triggers)');

GRANT SELECT ON wam.job TO wam_reader;
GRANT UPDATE (enabled, run_every, at_time, on_weekday, time_zone, options, next_run_at) ON wam.job TO wam_admin;
GRANT SELECT, UPDATE ON wam.job TO wam_definer;

CREATE TABLE wam.job_run (
	run_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	job text NOT NULL,
	scheduled_for timestamptz,
	started_at timestamptz NOT NULL,
	finished_at timestamptz NOT NULL,
	ok boolean NOT NULL,
	result text,
	error text,
	error_code text
);
CREATE INDEX job_run_job ON wam.job_run (job, started_at);
COMMENT ON TABLE wam.job_run IS 'one row per run of a periodic job: when, how long, its result or error (kept 90 days)';

GRANT SELECT ON wam.job_run TO wam_reader;
GRANT SELECT, INSERT, DELETE ON wam.job_run TO wam_definer;

-- "15 minutes", "1 week", "3 months": a period in words, whatever IntervalStyle
CREATE FUNCTION wam_internal.interval_words(i interval) RETURNS text
	LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	m integer := extract(year FROM i)::integer * 12 + extract(month FROM i)::integer;
	d integer := extract(day FROM i)::integer;
	s numeric := extract(hour FROM i) * 3600 + extract(minute FROM i) * 60 + extract(second FROM i);
	w text[] := '{}';
BEGIN
	IF m <> 0 THEN
		w := w || (m || CASE WHEN m = 1 THEN ' month' ELSE ' months' END);
	END IF;
	IF d <> 0 AND d % 7 = 0 THEN
		w := w || ((d / 7) || CASE WHEN d = 7 THEN ' week' ELSE ' weeks' END);
	ELSIF d <> 0 THEN
		w := w || (d || CASE WHEN d = 1 THEN ' day' ELSE ' days' END);
	END IF;
	IF s <> 0 AND s % 3600 = 0 THEN
		w := w || ((s / 3600)::integer || CASE WHEN s = 3600 THEN ' hour' ELSE ' hours' END);
	ELSIF s <> 0 AND s % 60 = 0 THEN
		w := w || ((s / 60)::integer || CASE WHEN s = 60 THEN ' minute' ELSE ' minutes' END);
	ELSIF s <> 0 THEN
		w := w || (trim_scale(s)::text || ' seconds');
	END IF;
	RETURN coalesce(nullif(array_to_string(w, ' '), ''), '0 seconds');
END
$$;
COMMENT ON FUNCTION wam_internal.interval_words(interval) IS 'internal: an interval in words, independent of IntervalStyle';

REVOKE EXECUTE ON FUNCTION wam_internal.interval_words(interval) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam_internal.interval_words(interval) TO wam_reader;

-- The first moment at or after t that is at_time local (on on_weekday, if set).
CREATE FUNCTION wam_internal.job_calendar_next(j wam.job, t timestamptz) RETURNS timestamptz
	LANGUAGE plpgsql STABLE SET search_path = pg_catalog, wam, pg_temp
AS $$
DECLARE
	d date := (t AT TIME ZONE j.time_zone)::date;
BEGIN
	IF ((d + j.at_time) AT TIME ZONE j.time_zone) < t THEN
		d := d + 1;
	END IF;
	IF j.on_weekday IS NOT NULL THEN
		d := d + ((j.on_weekday - extract(isodow FROM d)::integer + 7) % 7);
	END IF;
	RETURN (d + j.at_time) AT TIME ZONE j.time_zone;
END
$$;
COMMENT ON FUNCTION wam_internal.job_calendar_next(wam.job, timestamptz) IS 'internal: the first moment at or after t matching the job''s local time and weekday';

REVOKE EXECUTE ON FUNCTION wam_internal.job_calendar_next(wam.job, timestamptz) FROM PUBLIC;

-- When the job is due after the run scheduled for `scheduled` (NULL: the job
-- was never scheduled), as seen at `at`.  Runs missed while nothing ran them
-- are not made up one by one: a late job runs once, then keeps its rhythm.
CREATE FUNCTION wam_internal.job_next_run(j wam.job, scheduled timestamptz, at timestamptz) RETURNS timestamptz
	LANGUAGE plpgsql STABLE SET search_path = pg_catalog, wam, pg_temp
AS $$
DECLARE
	nxt timestamptz;
BEGIN
	IF j.at_time IS NULL THEN
		nxt := coalesce(scheduled, at) + j.run_every;
		IF nxt <= at THEN
			nxt := at + j.run_every;
		END IF;
		RETURN nxt;
	END IF;
	IF scheduled IS NULL THEN
		RETURN wam_internal.job_calendar_next(j, at);
	END IF;
	nxt := wam_internal.job_calendar_next(j, scheduled + j.run_every
		- CASE WHEN j.on_weekday IS NOT NULL AND j.run_every >= interval '7 days'
			   THEN interval '6 days' ELSE interval '0' END);
	IF nxt <= scheduled THEN
		nxt := wam_internal.job_calendar_next(j, scheduled + interval '1 minute');
	END IF;
	IF nxt <= at THEN
		nxt := wam_internal.job_calendar_next(j, at + interval '1 minute');
	END IF;
	RETURN nxt;
END
$$;
COMMENT ON FUNCTION wam_internal.job_next_run(wam.job, timestamptz, timestamptz) IS 'internal: when a job is due after the run scheduled for a given time';

REVOKE EXECUTE ON FUNCTION wam_internal.job_next_run(wam.job, timestamptz, timestamptz) FROM PUBLIC;

-- Schedules are validated where they are written, so a bad time zone is the
-- admin's error at once, not a failure of every later tick.
CREATE FUNCTION wam_internal.job_check_trigger() RETURNS trigger
	LANGUAGE plpgsql SET search_path = pg_catalog, wam, pg_temp
AS $$
DECLARE
	bad text;
BEGIN
	IF wam_internal.restoring() THEN
		RETURN NEW;
	END IF;
	IF NOT EXISTS (SELECT FROM pg_catalog.pg_timezone_names z WHERE z.name = NEW.time_zone)
	   AND NOT EXISTS (SELECT FROM pg_catalog.pg_timezone_abbrevs z WHERE z.abbrev = NEW.time_zone) THEN
		RAISE EXCEPTION 'time zone "%" is not recognized', NEW.time_zone
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Use a name from pg_timezone_names, e.g. ''Europe/Berlin'' or ''Asia/Taipei''.';
	END IF;
	SELECT string_agg(k, ', ' ORDER BY k) INTO bad
	FROM jsonb_object_keys(NEW.options) k
	WHERE NOT (NEW.job = 'tag audit' AND k IN ('inactive', 'action'))
	  AND NOT (NEW.job = 'decay alerts' AND k IN ('min_messages', 'fall', 'click_window'));
	IF bad IS NOT NULL THEN
		RAISE EXCEPTION 'job "%" has no option %', NEW.job, bad
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = CASE WHEN NEW.job = 'tag audit' THEN 'Its options are inactive (an interval) and action (report, historical stock or remove).'
							  WHEN NEW.job = 'decay alerts' THEN 'Its options are min_messages, fall and click_window.'
							  ELSE 'This job takes no options.' END;
	END IF;
	IF NEW.job = 'tag audit' THEN
		PERFORM wam_internal.audit_options(NEW.options);
	END IF;
	IF NEW.job = 'decay alerts' THEN
		PERFORM wam_internal.decay_options(NEW.options);
	END IF;
	-- a changed schedule counts from now: the next tick computes the next run
	IF TG_OP = 'UPDATE' AND NEW.next_run_at IS NOT DISTINCT FROM OLD.next_run_at
	   AND (NEW.run_every, NEW.at_time, NEW.on_weekday, NEW.time_zone, NEW.enabled)
		   IS DISTINCT FROM (OLD.run_every, OLD.at_time, OLD.on_weekday, OLD.time_zone, OLD.enabled) THEN
		NEW.next_run_at := NULL;
	END IF;
	RETURN NEW;
END
$$;
COMMENT ON FUNCTION wam_internal.job_check_trigger() IS 'trigger: validates a job''s time zone and options; a changed schedule is recomputed at the next tick';
CREATE TRIGGER job_check BEFORE INSERT OR UPDATE ON wam.job
	FOR EACH ROW EXECUTE FUNCTION wam_internal.job_check_trigger();

REVOKE EXECUTE ON FUNCTION wam_internal.job_check_trigger() FROM PUBLIC;

-- One job's work; returns its result as text.  Only these calls exist.
CREATE FUNCTION wam_internal.run_job_body(j wam.job) RETURNS text
	LANGUAGE plpgsql SET search_path = pg_catalog, wam, pg_temp
AS $$
DECLARE
	n bigint;
	a bigint;
	r bigint;
	rep wam.tag_health_report;
	aud record;
	id bigint;
BEGIN
	CASE j.job
		WHEN 'expire tags' THEN
			n := wam.expire_tags();
			RETURN format('%s expired attachments removed', n);
		WHEN 'run tag rules' THEN
			SELECT count(*), coalesce(sum(x.added), 0), coalesce(sum(x.removed), 0) INTO n, a, r
			FROM wam.run_tag_rules() x;
			RETURN format('%s rules: %s tags added, %s removed', n, a, r);
		WHEN 'tag health report' THEN
			id := wam.record_tag_health();
			SELECT * INTO rep FROM wam.tag_health_report h WHERE h.report_id = id;
			RETURN format('report %s: %s active tags (%s), %s silent, %s overloaded', rep.report_id,
						  rep.active_tags, rep.band, rep.silent_tags, rep.overloaded_tags);
		WHEN 'tag audit' THEN
			SELECT count(*) AS tags, coalesce(sum(x.links), 0) AS links, coalesce(sum(x.stale_links), 0) AS stale,
				   coalesce(sum(x.moved), 0) AS moved, coalesce(sum(x.removed), 0) AS removed
			INTO aud
			FROM wam.audit_tags((j.options->>'inactive')::interval, j.options->>'action') x;
			RETURN format('%s tags, %s of %s links stale; %s moved, %s removed', aud.tags, aud.stale, aud.links,
						  aud.moved, aud.removed);
		WHEN 'maintain partitions' THEN
			-- as of the run's scheduled time when that is ahead of the clock
			-- (wam.run_due_jobs(at) with a time to come), else now
			SELECT count(*) FILTER (WHERE x.action = 'created'), count(*) FILTER (WHERE x.action = 'dropped'),
				   coalesce(sum(x.rows) FILTER (WHERE x.action IN ('dropped', 'deleted')), 0)
			INTO n, a, r
			FROM wam.maintain_partitions(greatest(j.next_run_at, pg_catalog.now())) x;
			RETURN format('%s partitions created, %s dropped; %s rows rolled up', n, a, r);
		WHEN 'campaign states' THEN
			SELECT count(*) FILTER (WHERE x.to_state = 'running'), count(*) FILTER (WHERE x.to_state = 'finished')
			INTO a, r
			FROM wam.advance_campaigns(greatest(j.next_run_at, pg_catalog.now())) x;
			RETURN format('%s campaigns started, %s finished', a, r);
		WHEN 'decay alerts' THEN
			SELECT x.groups, x.alerts INTO n, a
			FROM wam_internal.raise_decay_alerts(greatest(j.next_run_at, pg_catalog.now()), j.options) x;
			RETURN format('%s groups checked, %s click decay alerts raised', n, a);
		WHEN 'offer triggers' THEN
			-- as of now, never ahead of the clock: the orders that would leave an
			-- event out are still to come
			SELECT count(*), coalesce(sum(x.queued), 0), coalesce(sum(x.refused), 0) INTO n, a, r
			FROM wam.run_offer_triggers(pg_catalog.now()) x;
			RETURN format('%s offer triggers: %s messages queued, %s refused', n, a, r);
	END CASE;
END
$$;
COMMENT ON FUNCTION wam_internal.run_job_body(wam.job) IS 'internal: the work of one periodic job';

REVOKE EXECUTE ON FUNCTION wam_internal.run_job_body(wam.job) FROM PUBLIC;

-- Runs the job if it is due at `at`.  A job another session is running is
-- skipped (the worker and pg_cron may both call this); a job that fails is
-- rolled back alone, recorded with its error and scheduled again as usual,
-- so it never stops the others.
CREATE FUNCTION wam_internal.run_job(job text, at timestamptz) RETURNS text
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	j wam.job;
	due timestamptz;
	started timestamptz;
	res text;
	err text;
	code text;
	ok boolean;
BEGIN
	SELECT * INTO j FROM wam.job x WHERE x.job = job FOR UPDATE SKIP LOCKED;
	IF NOT FOUND THEN
		RETURN CASE WHEN EXISTS (SELECT FROM wam.job x WHERE x.job = job) THEN 'running elsewhere' ELSE 'no such job' END;
	END IF;
	IF NOT j.enabled THEN
		RETURN 'disabled';
	END IF;
	IF j.next_run_at IS NULL THEN
		j.next_run_at := wam_internal.job_next_run(j, NULL, at);
		UPDATE wam.job x SET next_run_at = j.next_run_at WHERE x.job = j.job;
		RETURN 'scheduled';
	END IF;
	IF j.next_run_at > at THEN
		RETURN 'not due';
	END IF;
	due := j.next_run_at;
	started := clock_timestamp();
	BEGIN
		res := wam_internal.run_job_body(j);
		ok := true;
	EXCEPTION WHEN OTHERS THEN
		GET STACKED DIAGNOSTICS err = MESSAGE_TEXT, code = RETURNED_SQLSTATE;
		ok := false;
	END;
	INSERT INTO wam.job_run (job, scheduled_for, started_at, finished_at, ok, result, error, error_code)
	VALUES (j.job, due, started, clock_timestamp(), ok, res, err, code);
	DELETE FROM wam.job_run r WHERE r.job = j.job AND r.started_at < at - interval '90 days';
	UPDATE wam.job x SET next_run_at = wam_internal.job_next_run(j, due, at) WHERE x.job = j.job;
	RETURN CASE WHEN ok THEN 'ok' ELSE 'failed' END;
END
$$;
COMMENT ON FUNCTION wam_internal.run_job(text, timestamptz) IS 'internal: runs one periodic job if it is due, records the run and schedules the next';

REVOKE EXECUTE ON FUNCTION wam_internal.run_job(text, timestamptz) FROM PUBLIC;

-- The scheduler worker's look at the table: due jobs and the wait until the next.
CREATE FUNCTION wam_internal.due_jobs(at timestamptz, OUT due text[], OUT next_in_ms double precision)
	LANGUAGE sql STABLE SET search_path = pg_catalog, wam, pg_temp
BEGIN ATOMIC
	SELECT array_agg(j.job ORDER BY j.next_run_at NULLS FIRST, j.job)
			   FILTER (WHERE j.next_run_at IS NULL OR j.next_run_at <= at),
		   min(1000 * extract(epoch FROM j.next_run_at - at)::double precision)
			   FILTER (WHERE j.next_run_at > at)
	FROM wam.job j
	WHERE j.enabled;
END;
COMMENT ON FUNCTION wam_internal.due_jobs(timestamptz) IS 'internal: the enabled jobs due at a time, and the milliseconds until the next one';

REVOKE EXECUTE ON FUNCTION wam_internal.due_jobs(timestamptz) FROM PUBLIC;

CREATE FUNCTION wam_internal.run_due_jobs(at timestamptz)
	RETURNS TABLE (job text, outcome text)
	LANGUAGE plpgsql SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	name text;
BEGIN
	PERFORM wam_internal.refuse_null(at IS NULL, 'time');
	FOREACH name IN ARRAY coalesce((SELECT d.due FROM wam_internal.due_jobs(at) d), '{}') LOOP
		job := name;
		outcome := wam_internal.run_job(name, at);
		RETURN NEXT;
	END LOOP;
END
$$;
COMMENT ON FUNCTION wam_internal.run_due_jobs(timestamptz) IS 'internal: runs the periodic jobs due at a time';

REVOKE EXECUTE ON FUNCTION wam_internal.run_due_jobs(timestamptz) FROM PUBLIC;

CREATE FUNCTION wam.run_due_jobs()
	RETURNS TABLE (job text, outcome text)
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
BEGIN
	RETURN QUERY SELECT * FROM wam_internal.run_due_jobs(pg_catalog.now());
END
$$;
COMMENT ON FUNCTION wam.run_due_jobs() IS 'runs the periodic jobs due now; for pg_cron or by hand, instead of the scheduler worker';

REVOKE EXECUTE ON FUNCTION wam.run_due_jobs() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.run_due_jobs() TO wam_operator;

-- Running jobs as of another time (ahead: a quarterly audit that removes
-- links) is an administrator's decision; tests drive the schedule with it.
CREATE FUNCTION wam.run_due_jobs(at timestamptz)
	RETURNS TABLE (job text, outcome text)
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
BEGIN
	RETURN QUERY SELECT * FROM wam_internal.run_due_jobs(at);
END
$$;
COMMENT ON FUNCTION wam.run_due_jobs(timestamptz) IS 'runs the periodic jobs due at a given time (ahead of it or to catch up)';

REVOKE EXECUTE ON FUNCTION wam.run_due_jobs(timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.run_due_jobs(timestamptz) TO wam_admin;

CREATE VIEW wam.job_status AS
SELECT j.job,
	   j.enabled,
	   CASE
		   WHEN j.at_time IS NULL THEN 'every ' || wam_internal.interval_words(j.run_every)
		   ELSE 'every ' || wam_internal.interval_words(j.run_every)
				|| CASE WHEN j.on_weekday IS NULL THEN ''
						ELSE ' on ' || (ARRAY['Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday', 'Sunday'])[j.on_weekday] END
				|| ' at ' || to_char(j.at_time, 'HH24:MI') || ' ' || j.time_zone
	   END AS schedule,
	   j.next_run_at,
	   l.started_at AS last_started_at,
	   l.finished_at - l.started_at AS last_duration,
	   CASE WHEN l.run_id IS NULL THEN 'never run' WHEN l.ok THEN 'ok' ELSE 'failed' END AS last_outcome,
	   l.result AS last_result,
	   l.error AS last_error,
	   (SELECT count(*) FROM wam.job_run r WHERE r.job = j.job AND NOT r.ok
			AND r.started_at > now() - interval '30 days') AS failures_30d
FROM wam.job j
LEFT JOIN LATERAL (SELECT * FROM wam.job_run r WHERE r.job = j.job ORDER BY r.started_at DESC, r.run_id DESC LIMIT 1) l ON true;
COMMENT ON VIEW wam.job_status IS 'per periodic job: schedule, next run, last run with its duration, outcome and error';

GRANT SELECT ON wam.job_status TO wam_reader;
