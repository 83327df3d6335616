-- 50_scheduler: the periodic jobs (wam.job, the scheduler worker, wam.run_due_jobs);
-- the weekly tag health report kept as dated rows; silent tags measured on sends
-- (wam.enqueue_audience records the tags a send used); tag-count bands by base
-- size; administrators in the health report; the tag audit and wam.split_tag;
-- reasons on dictionary changes (wam.change_reason) and logged rule changes.

-- the tag log takes audits, splits and rule changes, and a reason from the session
ALTER TABLE wam.tag_log DROP CONSTRAINT tag_log_action;
ALTER TABLE wam.tag_log ADD CONSTRAINT tag_log_action CHECK (action IN
		('create', 'rename', 'retire', 'reactivate', 'merge', 'create dimension', 'set expiry',
		 'audit', 'split', 'create rule', 'change rule', 'delete rule'));
COMMENT ON TABLE wam.tag_log IS 'log of tag dictionary and rule changes: who, when, what, why';
COMMENT ON COLUMN wam.tag_log.reason IS 'why: the reason argument of the call, else the setting wam.change_reason (SET LOCAL wam.change_reason = ''...'')';

-- A change made without a reason argument (an UPDATE of wam.tag_rule, a call
-- that takes none) still records why: the session's wam.change_reason.
CREATE FUNCTION wam_internal.tag_log_reason_trigger() RETURNS trigger
	LANGUAGE plpgsql SET search_path = pg_catalog, wam, pg_temp
AS $$
BEGIN
	IF NEW.reason IS NULL AND NOT wam_internal.restoring() THEN
		NEW.reason := nullif(btrim(current_setting('wam.change_reason', true)), '');
	END IF;
	RETURN NEW;
END
$$;
COMMENT ON FUNCTION wam_internal.tag_log_reason_trigger() IS 'trigger: a log entry without a reason takes the setting wam.change_reason';
CREATE TRIGGER tag_log_reason BEFORE INSERT ON wam.tag_log
	FOR EACH ROW EXECUTE FUNCTION wam_internal.tag_log_reason_trigger();

REVOKE EXECUTE ON FUNCTION wam_internal.tag_log_reason_trigger() FROM PUBLIC;

-- Every change of a rule is logged with who, what and why, however it is
-- made (wam.create_tag_rule or INSERT, UPDATE, DELETE on the table); a run
-- recording its counts is not a change.  Definer: the admins who change rules
-- have no INSERT on the log.
CREATE FUNCTION wam_internal.tag_rule_log_trigger() RETURNS trigger
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
DECLARE
	o jsonb := CASE WHEN TG_OP <> 'INSERT' THEN to_jsonb(OLD) - '{last_run_at,last_added,last_removed,created_at}'::text[] END;
	n jsonb := CASE WHEN TG_OP <> 'DELETE' THEN to_jsonb(NEW) - '{last_run_at,last_added,last_removed,created_at}'::text[] END;
	changed jsonb;
BEGIN
	IF wam_internal.restoring() OR o IS NOT DISTINCT FROM n THEN
		RETURN NULL;
	END IF;
	IF TG_OP = 'UPDATE' THEN
		SELECT jsonb_object_agg(k, jsonb_build_object('old', o->k, 'new', n->k)) INTO changed
		FROM jsonb_object_keys(n) k WHERE (o->k) IS DISTINCT FROM (n->k);
	END IF;
	INSERT INTO wam.tag_log (action, tag_name, detail)
	VALUES (CASE TG_OP WHEN 'INSERT' THEN 'create rule' WHEN 'UPDATE' THEN 'change rule' ELSE 'delete rule' END,
			coalesce(n->>'name', o->>'name'),
			CASE TG_OP WHEN 'INSERT' THEN n WHEN 'UPDATE' THEN changed ELSE o END);
	RETURN NULL;
END
$$;
COMMENT ON FUNCTION wam_internal.tag_rule_log_trigger() IS 'trigger: logs every change of an automation rule in wam.tag_log';
CREATE TRIGGER tag_rule_log AFTER INSERT OR UPDATE OR DELETE ON wam.tag_rule
	FOR EACH ROW EXECUTE FUNCTION wam_internal.tag_rule_log_trigger();

REVOKE EXECUTE ON FUNCTION wam_internal.tag_rule_log_trigger() FROM PUBLIC;

-- silent = no send used the tag for 30 days; bands by base size; administrators
CREATE OR REPLACE VIEW wam.tag_health AS
WITH base AS (
	SELECT greatest(count(*), 1) AS customers FROM wam.customer
), sizes AS (
	SELECT c.tag_id, sum(wam.segment_cardinality(c.members)) AS members FROM wam.tag_chunk c GROUP BY 1
)
SELECT t.name AS tag,
	   t.dimension,
	   coalesce(t.colour, d.colour) AS colour,
	   t.status,
	   coalesce(s.members, 0)::bigint AS members,
	   round(100.0 * coalesce(s.members, 0) / b.customers, 2) AS share_percent,
	   greatest(t.last_sent_at, t.created_at) AS last_used,
	   t.status = 'active' AND greatest(t.last_sent_at, t.created_at) < now() - interval '30 days' AS silent,
	   coalesce(s.members, 0) > 0.4 * b.customers AS overloaded,
	   t.last_sent_at,
	   t.last_attached_at
FROM wam.tag t
JOIN wam.tag_dimension d ON d.name = t.dimension
CROSS JOIN base b
LEFT JOIN sizes s ON s.tag_id = t.tag_id;
COMMENT ON VIEW wam.tag_health IS 'per tag: members, share, last use by a send (or creation), silent (no send used it for 30 days) and overloaded (over 40 % of customers) flags';

GRANT SELECT ON wam.tag_health TO wam_definer;
GRANT SELECT ON wam.tag_health TO wam_reader;

-- how many login roles hold wam_admin (the guideline is one or two)
CREATE FUNCTION wam_internal.tag_admins() RETURNS integer
	LANGUAGE sql STABLE SET search_path = pg_catalog, wam, pg_temp
BEGIN ATOMIC
	SELECT count(*)::integer FROM pg_catalog.pg_roles r
	WHERE r.rolcanlogin AND NOT r.rolsuper AND pg_catalog.pg_has_role(r.oid, 'wam_admin', 'MEMBER');
END;
COMMENT ON FUNCTION wam_internal.tag_admins() IS 'internal: login roles (superusers aside) that hold wam_admin, directly or through other roles';

REVOKE EXECUTE ON FUNCTION wam_internal.tag_admins() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam_internal.tag_admins() TO wam_reader;

-- The bands of the number of active tags.  "Too coarse" applies once the
-- base is large, from 10,000 customers: 15 tags suit a new shop of 2,000
-- customers, not one of 100,000.
CREATE FUNCTION wam_internal.tag_count_band(active bigint, customers bigint) RETURNS text
	LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE
		   WHEN active < 30 AND customers >= 10000 THEN 'too coarse for a large base (under 30 tags, 10,000 customers or more)'
		   WHEN active <= 20 THEN 'starting set (up to ~20 tags)'
		   WHEN active < 50 THEN 'growing (under 50)'
		   WHEN active <= 80 THEN 'healthy (50-80)'
		   WHEN active <= 100 THEN 'crowded (81-100)'
		   ELSE 'too many to manage (over 100)'
	   END;
COMMENT ON FUNCTION wam_internal.tag_count_band(bigint, bigint) IS 'internal: where a number of active tags stands, for a base of a given size';

REVOKE EXECUTE ON FUNCTION wam_internal.tag_count_band(bigint, bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam_internal.tag_count_band(bigint, bigint) TO wam_reader;

CREATE OR REPLACE VIEW wam.tag_health_summary AS
WITH n AS (
	SELECT count(*) FILTER (WHERE t.status = 'active') AS active_tags,
		   count(*) FILTER (WHERE t.status = 'retired') AS retired_tags
	FROM wam.tag t
), base AS (
	SELECT count(*) AS customers FROM wam.customer
), admins AS (
	SELECT wam_internal.tag_admins() AS admins
)
SELECT n.active_tags,
	   n.retired_tags,
	   (SELECT count(*) FROM wam.tag_health h WHERE h.silent) AS silent_tags,
	   (SELECT count(*) FROM wam.tag_health h WHERE h.overloaded) AS overloaded_tags,
	   wam_internal.tag_count_band(n.active_tags, b.customers) AS band,
	   b.customers,
	   a.admins,
	   CASE WHEN a.admins = 0 THEN 'no login role holds wam_admin'
			WHEN a.admins <= 2 THEN 'within the guideline of 1-2 administrators'
			ELSE format('%s administrators: the guideline is 1-2', a.admins)
	   END AS admins_note
FROM n CROSS JOIN base b CROSS JOIN admins a;
COMMENT ON VIEW wam.tag_health_summary IS 'number of active tags against the healthy range for the base size, silent and overloaded tags, administrators';

GRANT SELECT ON wam.tag_health_summary TO wam_definer;
GRANT SELECT ON wam.tag_health_summary TO wam_reader;

-- a send through a segment expression records the tags it used
CREATE FUNCTION wam_internal.audience_tag_ids(expr text) RETURNS integer[]
	AS 'MODULE_PATHNAME', 'wam_expr_tag_ids' LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION wam_internal.audience_tag_ids(text) IS 'internal: ids of the tags a segment expression uses, saved segments included';

REVOKE EXECUTE ON FUNCTION wam_internal.audience_tag_ids(text) FROM PUBLIC;

-- Queues a send to the customers of a segment expression and records that the
-- tags it names were used by a send (the health report's "silent" counts from
-- that).  The tags' rows are touched at most once an hour, so sends at the
-- same time do not queue behind each other on them.
CREATE FUNCTION wam.enqueue_audience(audience text, template jsonb, sender text DEFAULT NULL,
									 not_before timestamptz DEFAULT pg_catalog.now(), vars jsonb DEFAULT NULL,
									 priority integer DEFAULT 0, expires_at timestamptz DEFAULT NULL,
									 campaign text DEFAULT NULL, variant text DEFAULT NULL)
	RETURNS TABLE (queued bigint, not_found bigint, no_consent bigint, opted_out bigint,
				   window_closed bigint, missing_value bigint)
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	r record;
BEGIN
	PERFORM wam_internal.refuse_null(audience IS NULL, 'audience');
	SELECT * INTO r FROM wam.enqueue_segment(wam.audience(audience), template, sender, not_before, vars,
											 priority, expires_at, campaign, variant) x;
	IF r.queued > 0 THEN
		UPDATE wam.tag t SET last_sent_at = pg_catalog.now()
		WHERE t.tag_id = ANY (wam_internal.audience_tag_ids(audience))
		  AND (t.last_sent_at IS NULL OR t.last_sent_at < pg_catalog.now() - interval '1 hour');
	END IF;
	queued := r.queued;
	not_found := r.not_found;
	no_consent := r.no_consent;
	opted_out := r.opted_out;
	window_closed := r.window_closed;
	missing_value := r.missing_value;
	RETURN NEXT;
END
$$;
COMMENT ON FUNCTION wam.enqueue_audience(text, jsonb, text, timestamptz, jsonb, integer, timestamptz, text, text) IS 'queues one message per customer of a segment expression and records the send on the tags it uses; counts refusals';

REVOKE EXECUTE ON FUNCTION wam.enqueue_audience(text, jsonb, text, timestamptz, jsonb, integer, timestamptz, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.enqueue_audience(text, jsonb, text, timestamptz, jsonb, integer, timestamptz, text, text) TO wam_operator;

-- the tag health report, the audit, splitting (src/sql/tag_health.sql)

CREATE TABLE wam.tag_health_report (
	report_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	reported_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	customers bigint NOT NULL,
	active_tags integer NOT NULL,
	retired_tags integer NOT NULL,
	silent_tags integer NOT NULL,
	overloaded_tags integer NOT NULL,
	band text NOT NULL,
	admins integer NOT NULL,
	admins_note text NOT NULL
);
COMMENT ON TABLE wam.tag_health_report IS 'the tag health report as recorded each week (wam.record_tag_health), for comparison over time';

GRANT SELECT ON wam.tag_health_report TO wam_reader;
GRANT SELECT, INSERT ON wam.tag_health_report TO wam_definer;

CREATE TABLE wam.tag_health_report_tag (
	report_id bigint NOT NULL REFERENCES wam.tag_health_report ON DELETE CASCADE,
	tag text NOT NULL,
	dimension text NOT NULL,
	status text NOT NULL,
	members bigint NOT NULL,
	share_percent numeric NOT NULL,
	last_used timestamptz NOT NULL,
	silent boolean NOT NULL,
	overloaded boolean NOT NULL,
	PRIMARY KEY (report_id, tag)
);
COMMENT ON TABLE wam.tag_health_report_tag IS 'per tag of each recorded tag health report';

GRANT SELECT ON wam.tag_health_report_tag TO wam_reader;
GRANT SELECT, INSERT ON wam.tag_health_report_tag TO wam_definer;

CREATE FUNCTION wam.record_tag_health() RETURNS bigint
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
DECLARE
	id bigint;
BEGIN
	INSERT INTO wam.tag_health_report (customers, active_tags, retired_tags, silent_tags, overloaded_tags, band,
									   admins, admins_note)
	SELECT s.customers, s.active_tags, s.retired_tags, s.silent_tags, s.overloaded_tags, s.band,
		   s.admins, s.admins_note
	FROM wam.tag_health_summary s
	RETURNING report_id INTO id;
	INSERT INTO wam.tag_health_report_tag (report_id, tag, dimension, status, members, share_percent, last_used,
										   silent, overloaded)
	SELECT id, h.tag, h.dimension, h.status, h.members, h.share_percent, h.last_used, h.silent, h.overloaded
	FROM wam.tag_health h;
	RETURN id;
END
$$;
COMMENT ON FUNCTION wam.record_tag_health() IS 'records the tag health report as dated rows; returns the report id';

REVOKE EXECUTE ON FUNCTION wam.record_tag_health() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.record_tag_health() TO wam_operator;

-- the audit's options, checked where a schedule stores them and where the audit runs
CREATE FUNCTION wam_internal.audit_options(options jsonb) RETURNS void
	LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, wam, pg_temp
AS $$
DECLARE
	inactive interval;
BEGIN
	BEGIN
		inactive := (options->>'inactive')::interval;
	EXCEPTION WHEN invalid_datetime_format OR datetime_field_overflow OR interval_field_overflow THEN
		RAISE EXCEPTION 'audit option "inactive" must be an interval, not "%"', options->>'inactive'
			USING ERRCODE = 'invalid_parameter_value';
	END;
	IF inactive IS NOT NULL AND inactive < interval '1 day' THEN
		RAISE EXCEPTION 'audit option "inactive" must be at least 1 day, not %', inactive
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF (options->>'action') IS NOT NULL AND (options->>'action') NOT IN ('report', 'historical stock', 'remove') THEN
		RAISE EXCEPTION 'audit action must be report, historical stock or remove, not "%"', options->>'action'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
END
$$;
COMMENT ON FUNCTION wam_internal.audit_options(jsonb) IS 'internal: checks the options of the tag audit';

REVOKE EXECUTE ON FUNCTION wam_internal.audit_options(jsonb) FROM PUBLIC;

-- The audit of links to customers without interaction (no order, read or
-- inbound message, and not created, within `inactive`).  Retired tags and the
-- historical-stock tags themselves are not audited.
CREATE FUNCTION wam.audit_tags(inactive interval DEFAULT interval '180 days', action text DEFAULT 'report',
							   reason text DEFAULT NULL)
	RETURNS TABLE (tag text, links bigint, stale_links bigint, stale_percent numeric, moved bigint, removed bigint)
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	stale wam.segment;
	t record;
	gone wam.segment;
	all_gone wam.segment := '{}';
	stock text := 'historical stock';
	prior text := current_setting('wam.change_reason', true);
BEGIN
	IF reason IS NOT NULL THEN
		PERFORM set_config('wam.change_reason', reason, true);
	END IF;
	inactive := coalesce(inactive, interval '180 days');
	action := coalesce(action, 'report');
	PERFORM wam_internal.audit_options(jsonb_build_object('inactive', inactive::text, 'action', action));
	SELECT coalesce(wam.segment_agg(c.id), '{}') INTO stale FROM wam.customer c
	WHERE greatest(c.created_at, c.last_order_at, c.last_read_at, c.last_inbound_at) < now() - inactive;
	IF action = 'historical stock' AND NOT EXISTS (SELECT FROM wam.tag x WHERE x.normalized_name = wam.normalize_tag_name(stock)) THEN
		PERFORM wam.create_tag(stock, 'engagement', NULL, NULL, 'links moved by the tag audit');
	END IF;
	FOR t IN SELECT x.tag_id, x.name, wam_internal.tag_blocks_segment(x.tag_id) AS members
			 FROM wam.tag x
			 WHERE x.status = 'active' AND x.normalized_name NOT LIKE wam.normalize_tag_name(stock) || '%'
			 ORDER BY x.name
	LOOP
		tag := t.name;
		links := wam.segment_cardinality(t.members);
		gone := t.members OPERATOR(wam.&) stale;
		stale_links := wam.segment_cardinality(gone);
		stale_percent := CASE WHEN links = 0 THEN 0 ELSE round(100.0 * stale_links / links, 2) END;
		moved := 0;
		removed := 0;
		IF action <> 'report' AND stale_links > 0 THEN
			PERFORM wam.detach_tag(t.name, gone);
			all_gone := all_gone OPERATOR(wam.|) gone;
			IF action = 'historical stock' THEN
				moved := stale_links;
			ELSE
				removed := stale_links;
			END IF;
		END IF;
		RETURN NEXT;
	END LOOP;
	IF action = 'historical stock' AND NOT wam.segment_is_empty(all_gone) THEN
		PERFORM wam.attach_tag(stock, all_gone, NULL, 'rule');
	END IF;
	INSERT INTO wam.tag_log (action, tag_name, detail, reason)
	SELECT 'audit', '(all tags)',
		   jsonb_build_object('inactive', inactive::text, 'action', action,
							  'stale_customers', wam.segment_cardinality(stale),
							  'customers_moved_or_removed', wam.segment_cardinality(all_gone)),
		   reason;
	PERFORM set_config('wam.change_reason', coalesce(prior, ''), true);
END
$$;
COMMENT ON FUNCTION wam.audit_tags(interval, text, text) IS 'per tag: links to customers without interaction; action report, historical stock (move them) or remove';

REVOKE EXECUTE ON FUNCTION wam.audit_tags(interval, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.audit_tags(interval, text, text) TO wam_admin;

-- An overloaded tag (held by more than 40 % of customers) says little; it is
-- split into finer tags by a measure, in equal parts, highest first.
CREATE FUNCTION wam.split_tag(tag text, measure text, parts integer DEFAULT 3, reason text DEFAULT NULL)
	RETURNS TABLE (new_tag text, members bigint, measure_from numeric, measure_to numeric)
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	t wam.tag;
	labels text[];
	p record;
	prior text := current_setting('wam.change_reason', true);
BEGIN
	PERFORM wam_internal.refuse_null(tag IS NULL OR measure IS NULL OR parts IS NULL, 'tag, measure and parts');
	IF reason IS NOT NULL THEN
		PERFORM set_config('wam.change_reason', reason, true);
	END IF;
	SELECT * INTO t FROM wam.tag x WHERE x.tag_id = wam.tag_id(tag, true);
	IF measure NOT IN ('interaction frequency', 'order count', 'spend', 'recency') THEN
		RAISE EXCEPTION 'unknown split measure "%"', measure
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Measures: interaction frequency (events in 90 days), order count, spend (order total), recency (days since the last interaction).';
	END IF;
	IF parts < 3 OR parts > 10 THEN
		RAISE EXCEPTION 'a tag is split into 3 to 10 parts, not %', parts USING ERRCODE = 'invalid_parameter_value';
	END IF;
	labels := CASE WHEN parts = 3 THEN ARRAY['high', 'medium', 'low']
				   ELSE ARRAY(SELECT 'part ' || i FROM generate_series(1, parts) i) END;
	FOR p IN
		WITH m AS (
			SELECT s AS id,
				   CASE measure
					   WHEN 'interaction frequency' THEN
						   (SELECT count(*) FROM wam.event e WHERE e.customer_id = s AND e.occurred_at > now() - interval '90 days')::numeric
					   WHEN 'order count' THEN
						   (SELECT count(*) FROM wam.customer_order o WHERE o.customer_id = s)::numeric
					   WHEN 'spend' THEN
						   (SELECT coalesce(sum(o.amount), 0) FROM wam.customer_order o WHERE o.customer_id = s)
					   ELSE
						   -(extract(epoch FROM now() - (SELECT greatest(c.created_at, c.last_order_at, c.last_read_at, c.last_inbound_at)
															 FROM wam.customer c WHERE c.id = s)) / 86400)::numeric
				   END AS v
			FROM wam.segment_members(wam.tag_members(t.name)) s
		), ranked AS (
			SELECT id, v, ntile(parts) OVER (ORDER BY v DESC, id) AS part FROM m
		)
		SELECT r.part, wam.segment_agg(r.id) AS who, count(*) AS n, min(r.v) AS lo, max(r.v) AS hi
		FROM ranked r GROUP BY r.part ORDER BY r.part
	LOOP
		new_tag := t.name || ' - ' || measure || ' ' || labels[p.part];
		IF NOT EXISTS (SELECT FROM wam.tag x WHERE x.normalized_name = wam.normalize_tag_name(new_tag)) THEN
			PERFORM wam.create_tag(new_tag, t.dimension, t.colour, t.default_ttl,
								   format('split of "%s" by %s', t.name, measure));
		END IF;
		PERFORM wam.attach_tag(new_tag, p.who, NULL, 'rule');
		members := p.n;
		-- recency is ranked by minus the days, shown as days
		measure_from := CASE WHEN measure = 'recency' THEN round(-p.hi, 1) ELSE p.lo END;
		measure_to := CASE WHEN measure = 'recency' THEN round(-p.lo, 1) ELSE p.hi END;
		RETURN NEXT;
	END LOOP;
	INSERT INTO wam.tag_log (action, tag_id, tag_name, detail, reason)
	VALUES ('split', t.tag_id, t.name, jsonb_build_object('measure', measure, 'parts', parts), reason);
	PERFORM set_config('wam.change_reason', coalesce(prior, ''), true);
END
$$;
COMMENT ON FUNCTION wam.split_tag(text, text, integer, text) IS 'splits a tag''s members into 3 to 10 finer tags by a measure (the tag itself is kept)';

REVOKE EXECUTE ON FUNCTION wam.split_tag(text, text, integer, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.split_tag(text, text, integer, text) TO wam_admin;

-- the periodic jobs (src/sql/scheduler.sql)

-- The jobs are a fixed set: each name maps to one call in
-- wam_internal.run_job_body().  The table holds only their schedules, never
-- code, so whoever may change a schedule cannot make the scheduler (which
-- connects as the bootstrap superuser) run anything else.
CREATE TABLE wam.job (
	job text PRIMARY KEY CONSTRAINT job_known CHECK (job IN
		('expire tags', 'run tag rules', 'tag health report', 'tag audit')),
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
	 'quarterly audit of tags held by customers without interaction (wam.audit_tags; options: inactive, action)');

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
	WHERE NOT (NEW.job = 'tag audit' AND k IN ('inactive', 'action'));
	IF bad IS NOT NULL THEN
		RAISE EXCEPTION 'job "%" has no option %', NEW.job, bad
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = CASE WHEN NEW.job = 'tag audit' THEN 'Its options are inactive (an interval) and action (report, historical stock or remove).'
							  ELSE 'This job takes no options.' END;
	END IF;
	IF NEW.job = 'tag audit' THEN
		PERFORM wam_internal.audit_options(NEW.options);
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

-- restores: the seeded schedules are replaced by the dumped ones; every new table is dumped
CREATE TRIGGER restore_replace BEFORE INSERT ON wam.job
	FOR EACH ROW EXECUTE FUNCTION wam_internal.restore_replace_trigger();
SELECT pg_catalog.pg_extension_config_dump('wam.tag_health_report', '');
SELECT pg_catalog.pg_extension_config_dump('wam.tag_health_report_report_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('wam.tag_health_report_tag', '');
SELECT pg_catalog.pg_extension_config_dump('wam.job', '');
SELECT pg_catalog.pg_extension_config_dump('wam.job_run', '');
SELECT pg_catalog.pg_extension_config_dump('wam.job_run_run_id_seq', '');
