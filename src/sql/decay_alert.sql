-- src/sql/decay_alert.sql: decay alerts (R-A3): per RFM tier and per saved
-- segment, the weekly click rate of campaign messages; an alert (wam.alert,
-- NOTIFY wam_alerts) when it fell by at least 20 % below its trailing
-- baseline two weeks in a row, run weekly by the "decay alerts" job.
--
-- The rule.  Weeks are ISO weeks (Monday 00:00 UTC).  A week's click rate
-- is clicks / messages: messages are the campaign messages (wam.outbox rows
-- of a campaign) sent in that week to the group's customers, clicks those of
-- them with a link click (wam.record_click) within click_window of their
-- sending.  The last week tested is the latest one whose messages have all
-- had their click window by the time of the run; the week before it is
-- tested too; the baseline is the mean of the weekly rates of the 4 weeks
-- before those two.  The fall of a week is 1 - rate / baseline, and the
-- group alerts when both weeks fell by at least `fall` (0.20).  Every one of
-- the 6 weeks needs at least min_messages (200) messages, so that a small
-- tier does not alert on noise.  The groups are the customers of each RFM
-- tier and each saved segment as they are at the run.

-- The options of the job, checked: min_messages, fall, click_window.
CREATE FUNCTION wam_internal.decay_options(o jsonb, OUT min_messages bigint, OUT fall numeric,
										   OUT click_window interval)
	LANGUAGE plpgsql STABLE SET search_path = pg_catalog, wam, pg_temp
AS $$
DECLARE
	bad text;
BEGIN
	IF o IS NULL OR jsonb_typeof(o) <> 'object' THEN
		RAISE EXCEPTION 'decay alert options must be a JSON object' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	SELECT string_agg(k, ', ' ORDER BY k) INTO bad FROM jsonb_object_keys(o) k
	WHERE k NOT IN ('min_messages', 'fall', 'click_window');
	IF bad IS NOT NULL THEN
		RAISE EXCEPTION 'job "decay alerts" has no option %', bad
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Its options are min_messages (messages per week, at least 1), fall (a share above 0 and below 1) and click_window (an interval from 1 hour to 7 days).';
	END IF;
	IF o ? 'min_messages' AND (jsonb_typeof(o -> 'min_messages') <> 'number'
							   OR (o ->> 'min_messages')::numeric <> trunc((o ->> 'min_messages')::numeric)
							   OR (o ->> 'min_messages')::numeric NOT BETWEEN 1 AND 1000000000) THEN
		RAISE EXCEPTION 'decay alert option min_messages must be a whole number from 1 to 1000000000, not %', o -> 'min_messages'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF o ? 'fall' AND (jsonb_typeof(o -> 'fall') <> 'number' OR (o ->> 'fall')::numeric <= 0 OR (o ->> 'fall')::numeric >= 1) THEN
		RAISE EXCEPTION 'decay alert option fall must be a share above 0 and below 1 (0.2 for 20 %%), not %', o -> 'fall'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF o ? 'click_window' THEN
		BEGIN
			click_window := CASE WHEN jsonb_typeof(o -> 'click_window') = 'string' THEN (o ->> 'click_window')::interval END;
		EXCEPTION WHEN invalid_datetime_format OR datetime_field_overflow OR interval_field_overflow THEN
			click_window := NULL;
		END;
		IF click_window IS NULL OR click_window < interval '1 hour' OR click_window > interval '7 days' THEN
			RAISE EXCEPTION 'decay alert option click_window must be an interval from 1 hour to 7 days, not %', o -> 'click_window'
				USING ERRCODE = 'invalid_parameter_value';
		END IF;
	ELSE
		click_window := interval '1 day';
	END IF;
	min_messages := coalesce((o ->> 'min_messages')::bigint, 200);
	fall := coalesce((o ->> 'fall')::numeric, 0.20);
END
$$;
COMMENT ON FUNCTION wam_internal.decay_options(jsonb) IS 'internal: the checked options of the decay alerts (min_messages 200, fall 0.20, click_window 1 day by default)';

REVOKE EXECUTE ON FUNCTION wam_internal.decay_options(jsonb) FROM PUBLIC;
-- the job's trigger checks the options an administrator sets
GRANT EXECUTE ON FUNCTION wam_internal.decay_options(jsonb) TO wam_admin;

-- The rule on one group's 6 weeks of counts (oldest first: 4 baseline
-- weeks, then the two weeks tested).
CREATE FUNCTION wam_internal.decay_verdict(messages bigint[], clicks bigint[], min_messages bigint, fall numeric,
										   OUT baseline numeric, OUT rate_previous numeric, OUT rate_last numeric,
										   OUT fall_previous numeric, OUT fall_last numeric, OUT alert boolean,
										   OUT reason text)
	LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	i integer;
BEGIN
	IF messages IS NULL OR clicks IS NULL OR min_messages IS NULL OR fall IS NULL THEN
		RAISE EXCEPTION 'the counts, the minimum and the fall of a decay verdict must not be null'
			USING ERRCODE = 'null_value_not_allowed';
	END IF;
	IF cardinality(messages) <> 6 OR cardinality(clicks) <> 6 OR array_position(messages, NULL) IS NOT NULL
	   OR array_position(clicks, NULL) IS NOT NULL THEN
		RAISE EXCEPTION 'a decay verdict needs 6 weekly counts of messages and of clicks'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	FOR i IN 1 .. 6 LOOP
		IF messages[i] < 0 OR clicks[i] < 0 OR clicks[i] > messages[i] THEN
			RAISE EXCEPTION 'week % has % clicks of % messages', i, clicks[i], messages[i]
				USING ERRCODE = 'invalid_parameter_value';
		END IF;
	END LOOP;
	alert := false;
	IF messages[5] > 0 THEN
		rate_previous := clicks[5]::numeric / messages[5];
	END IF;
	IF messages[6] > 0 THEN
		rate_last := clicks[6]::numeric / messages[6];
	END IF;
	SELECT min(x) INTO i FROM generate_subscripts(messages, 1) x WHERE messages[x] < min_messages;
	IF i IS NOT NULL THEN
		reason := format('too few messages: %s in week %s of 6 (at least %s each week)', messages[i], i, min_messages);
		RETURN;
	END IF;
	baseline := (clicks[1]::numeric / messages[1] + clicks[2]::numeric / messages[2]
				 + clicks[3]::numeric / messages[3] + clicks[4]::numeric / messages[4]) / 4;
	IF baseline = 0 THEN
		reason := 'no clicks in the 4 baseline weeks: nothing to fall from';
		RETURN;
	END IF;
	fall_previous := 1 - rate_previous / baseline;
	fall_last := 1 - rate_last / baseline;
	alert := fall_previous >= fall AND fall_last >= fall;
	reason := CASE
		WHEN alert THEN format('fell %s %% and %s %% below the baseline: two weeks in a row at least %s %%',
							   round(fall_previous * 100, 1), round(fall_last * 100, 1), round(fall * 100, 1))
		WHEN fall_last >= fall THEN format('fell %s %% in the last week only (%s %% the week before; two weeks in a row needed)',
										   round(fall_last * 100, 1), round(fall_previous * 100, 1))
		WHEN fall_previous >= fall THEN format('fell %s %% the week before, %s %% in the last week (two weeks in a row needed)',
											   round(fall_previous * 100, 1), round(fall_last * 100, 1))
		ELSE format('within %s %% of the baseline (falls of %s %% and %s %%)', round(fall * 100, 1),
					round(fall_previous * 100, 1), round(fall_last * 100, 1)) END;
END
$$;
COMMENT ON FUNCTION wam_internal.decay_verdict(bigint[], bigint[], bigint, numeric) IS 'internal: the decay rule on 6 weekly counts (4 baseline weeks, 2 tested): baseline = the mean of the 4 weekly rates, alert when both tested weeks are at least `fall` below it, every week with at least min_messages';

REVOKE EXECUTE ON FUNCTION wam_internal.decay_verdict(bigint[], bigint[], bigint, numeric) FROM PUBLIC;

-- A saved segment's members now, or none when it cannot be evaluated any
-- more (a tag it names was dropped ...): one broken segment must not stop
-- the alerts of the others.
CREATE FUNCTION wam_internal.saved_segment_members(name text) RETURNS bigint[]
	LANGUAGE plpgsql STABLE SET search_path = pg_catalog, wam, pg_temp
AS $$
BEGIN
	RETURN wam.segment_to_array(wam.audience('@' || name));
EXCEPTION WHEN OTHERS THEN
	RETURN NULL;
END
$$;
COMMENT ON FUNCTION wam_internal.saved_segment_members(text) IS 'internal: the members of a saved segment, NULL when it cannot be evaluated';

REVOKE EXECUTE ON FUNCTION wam_internal.saved_segment_members(text) FROM PUBLIC;

-- The weekly click rates and the verdict of every group as of `at`.
CREATE FUNCTION wam.click_decay(at timestamptz DEFAULT pg_catalog.now(), options jsonb DEFAULT '{}')
	RETURNS TABLE (group_kind text, group_name text, last_week date, messages bigint[], clicks bigint[],
				   baseline numeric, rate_previous numeric, rate_last numeric, fall_previous numeric,
				   fall_last numeric, alert boolean, reason text)
	LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_column
DECLARE
	o record;
	e timestamptz;
BEGIN
	PERFORM wam_internal.refuse_null(at IS NULL, 'time');
	IF NOT isfinite(at) THEN
		RAISE EXCEPTION 'the time of the decay alerts must be finite, not %', at USING ERRCODE = 'invalid_parameter_value';
	END IF;
	o := wam_internal.decay_options(options);
	-- the end of the last week whose messages all had their click window
	e := date_trunc('week', (at - o.click_window) AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';
	RETURN QUERY
	WITH clicked AS (
		-- (a message_id that is no message id, in an event written by hand, names none)
		SELECT CASE WHEN jsonb_typeof(d.value) = 'number' AND (d.value)::numeric BETWEEN 1 AND 9223372036854775807
					THEN (d.value)::bigint END AS message_id, min(d.occurred_at) AS first_click
		FROM wam.event_detail d
		WHERE d.kind = 'link_click' AND d.key = 'message_id'
		  AND d.occurred_at >= e - interval '42 days' AND d.occurred_at < e + o.click_window
		GROUP BY 1
	), msg AS (
		SELECT m.customer_id, floor(extract(epoch FROM m.sent - (e - interval '42 days')) / 604800)::integer + 1 AS wk,
			   coalesce(c.first_click <= m.sent + o.click_window, false) AS hit
		FROM (SELECT x.message_id, x.customer_id, coalesce(x.sending_at, x.sent_at) AS sent
			  FROM wam.outbox x
			  WHERE x.campaign_id IS NOT NULL AND (x.sent_at IS NOT NULL OR x.wamid IS NOT NULL)
				AND x.created_at < e) m
		LEFT JOIN clicked c ON c.message_id = m.message_id
		WHERE m.sent >= e - interval '42 days' AND m.sent < e
	), grp AS (
		SELECT 'rfm tier'::text AS kind, r.tier AS name, r.customer_id
		FROM wam.customer_rfm r WHERE r.tier IS NOT NULL
		UNION ALL
		SELECT 'segment', s.name, u.id
		FROM wam.saved_segment s, unnest(wam_internal.saved_segment_members(s.normalized_name)) u(id)
	), names AS (
		SELECT DISTINCT 'rfm tier'::text AS kind, r.tier AS name FROM wam.customer_rfm r WHERE r.tier IS NOT NULL
		UNION
		SELECT 'segment', s.name FROM wam.saved_segment s
	), cnt AS (
		SELECT g.kind, g.name, m.wk, count(*) AS n, count(*) FILTER (WHERE m.hit) AS x
		FROM grp g JOIN msg m ON m.customer_id = g.customer_id
		GROUP BY 1, 2, 3
	), weeks AS (
		SELECT n.kind, n.name,
			   array_agg(coalesce(c.n, 0) ORDER BY w.wk) AS ms, array_agg(coalesce(c.x, 0) ORDER BY w.wk) AS cs
		FROM names n CROSS JOIN generate_series(1, 6) w(wk)
		LEFT JOIN cnt c ON c.kind = n.kind AND c.name = n.name AND c.wk = w.wk
		GROUP BY 1, 2
	)
	SELECT w.kind, w.name, (e - interval '7 days')::date, w.ms, w.cs,
		   round(v.baseline, 4), round(v.rate_previous, 4), round(v.rate_last, 4),
		   round(v.fall_previous, 4), round(v.fall_last, 4), v.alert, v.reason
	FROM weeks w, LATERAL wam_internal.decay_verdict(w.ms, w.cs, o.min_messages, o.fall) v
	ORDER BY 1, 2;
END
$$;
COMMENT ON FUNCTION wam.click_decay(timestamptz, jsonb) IS 'per RFM tier and saved segment: the weekly click rates of campaign messages over the last 6 complete weeks and whether they decayed (at least fall below the mean of the 4 weeks before, two weeks in a row, each week with at least min_messages; options as the "decay alerts" job''s)';

REVOKE EXECUTE ON FUNCTION wam.click_decay(timestamptz, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.click_decay(timestamptz, jsonb) TO wam_reader;

-- The job's work: an alert per decayed group and tested week (raised once,
-- however often the job runs in that week).  Returns groups and alerts.
CREATE FUNCTION wam_internal.raise_decay_alerts(at timestamptz, options jsonb, OUT groups bigint, OUT alerts bigint)
	LANGUAGE plpgsql SET search_path = pg_catalog, wam, pg_temp
AS $$
DECLARE
	r record;
	subj text;
BEGIN
	groups := 0;
	alerts := 0;
	FOR r IN SELECT * FROM wam.click_decay(at, options) LOOP
		groups := groups + 1;
		CONTINUE WHEN NOT r.alert;
		subj := format('%s %s', r.group_kind, r.group_name);
		CONTINUE WHEN EXISTS (SELECT FROM wam.alert a WHERE a.kind = 'click decay' AND a.subject = left(subj, 200)
							  AND a.detail ->> 'last_week' = to_char(r.last_week, 'YYYY-MM-DD'));
		PERFORM wam_internal.raise_alert('click decay', subj,
			format('The click rate of campaign messages to %s "%s" fell %s %% and %s %% below its baseline of %s %% (the mean of the 4 weeks before) in the weeks of %s and %s.',
				   r.group_kind, r.group_name, round(r.fall_previous * 100, 1), round(r.fall_last * 100, 1),
				   round(r.baseline * 100, 2), to_char(r.last_week - 7, 'YYYY-MM-DD'), to_char(r.last_week, 'YYYY-MM-DD')),
			jsonb_build_object('group_kind', r.group_kind, 'group_name', r.group_name, 'last_week', r.last_week,
							   'messages', r.messages, 'clicks', r.clicks, 'baseline', r.baseline,
							   'rate_previous', r.rate_previous, 'rate_last', r.rate_last,
							   'fall_previous', r.fall_previous, 'fall_last', r.fall_last));
		alerts := alerts + 1;
	END LOOP;
END
$$;
COMMENT ON FUNCTION wam_internal.raise_decay_alerts(timestamptz, jsonb) IS 'internal: the "decay alerts" job: raises a click decay alert (wam.alert, NOTIFY wam_alerts) per decayed group, once per tested week';

REVOKE EXECUTE ON FUNCTION wam_internal.raise_decay_alerts(timestamptz, jsonb) FROM PUBLIC;
