-- decay alerts (R-A3, issue 19 item 5): the weekly click rate of campaign
-- messages per RFM tier and saved segment, the rule at its exact
-- boundaries, the guard, and the weekly job raising alerts
SET client_min_messages = warning;
DROP EXTENSION pg_wamarketing CASCADE;
CREATE EXTENSION pg_wamarketing;
RESET client_min_messages;
SET search_path = public, wam;
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';
\set VERBOSITY default
\set SHOW_CONTEXT never

-- the rule on 6 weekly counts (4 baseline weeks, then the 2 tested ones):
-- 2000 messages a week, 1000 clicks in each baseline week (baseline 50 %)
CREATE FUNCTION pg_temp.v(prev bigint, last bigint, m bigint[] DEFAULT '{2000,2000,2000,2000,2000,2000}',
						  base bigint DEFAULT 1000, min_messages bigint DEFAULT 200, fall numeric DEFAULT 0.2)
RETURNS TABLE (baseline numeric, rate_previous numeric, rate_last numeric, fall_previous numeric, fall_last numeric,
			   alert boolean, reason text)
LANGUAGE sql RETURN (SELECT ROW(v.*) FROM wam_internal.decay_verdict(m, ARRAY[base, base, base, base, prev, last], min_messages, fall) v);
-- exact boundaries: a fall of 19.9 %, 20 % and 20.1 % two weeks in a row
SELECT 'fall 19.9 %' AS "case", * FROM pg_temp.v(801, 801)
UNION ALL SELECT 'fall 20 %', * FROM pg_temp.v(800, 800)
UNION ALL SELECT 'fall 20.1 %', * FROM pg_temp.v(799, 799)
-- one week against two in a row
UNION ALL SELECT 'last week only', * FROM pg_temp.v(1000, 800)
UNION ALL SELECT 'week before only', * FROM pg_temp.v(800, 1000)
UNION ALL SELECT '19.9 % then 20 %', * FROM pg_temp.v(801, 800)
UNION ALL SELECT '20 % then 19.9 %', * FROM pg_temp.v(800, 801)
UNION ALL SELECT 'rising', * FROM pg_temp.v(1200, 1300)
-- nothing to fall from; and a fall to nothing
UNION ALL SELECT 'no clicks in baseline', * FROM pg_temp.v(0, 0, base => 0)
UNION ALL SELECT 'no clicks now', * FROM pg_temp.v(0, 0);
-- the minimum sample: every one of the 6 weeks needs min_messages (200):
-- 100 of 200 clicked before, 80 of 200 now (a fall of 20 %)
SELECT 'at the guard' AS "case", * FROM wam_internal.decay_verdict('{200,200,200,200,200,200}', '{100,100,100,100,80,80}', 200, 0.2)
UNION ALL SELECT 'a tested week below', * FROM wam_internal.decay_verdict('{200,200,200,200,200,199}', '{100,100,100,100,80,79}', 200, 0.2)
UNION ALL SELECT 'a baseline week below', * FROM wam_internal.decay_verdict('{200,200,199,200,200,200}', '{100,100,100,100,80,80}', 200, 0.2)
UNION ALL SELECT 'no messages at all', * FROM wam_internal.decay_verdict('{0,0,0,0,0,0}', '{0,0,0,0,0,0}', 200, 0.2)
UNION ALL SELECT 'guard 1', * FROM wam_internal.decay_verdict('{1,1,1,1,1,1}', '{1,1,1,1,0,0}', 1, 0.2);
-- the baseline is the mean of the weekly rates (not pooled): 10 %, 20 %, 30 %, 40 % -> 25 %
SELECT * FROM wam_internal.decay_verdict('{1000,1000,1000,1000,1000,1000}', '{100,200,300,400,200,200}', 200, 0.2);
-- bad counts
SELECT * FROM wam_internal.decay_verdict(NULL, '{0,0,0,0,0,0}', 200, 0.2);
SELECT * FROM wam_internal.decay_verdict('{1,1,1,1,1,1}', '{0,0,0,0,0,0}', NULL, 0.2);
SELECT * FROM wam_internal.decay_verdict('{1,1,1,1,1}', '{0,0,0,0,0}', 200, 0.2);
SELECT * FROM wam_internal.decay_verdict('{1,1,1,1,1,NULL}', '{0,0,0,0,0,0}', 200, 0.2);
SELECT * FROM wam_internal.decay_verdict('{1,1,1,1,1,1}', '{0,0,0,0,0,2}', 200, 0.2);
SELECT * FROM wam_internal.decay_verdict('{1,1,1,1,1,-1}', '{0,0,0,0,0,0}', 200, 0.2);

-- empty: no tier, no saved segment, no message: no group, nothing raised
SELECT count(*) AS groups FROM click_decay();
SELECT * FROM wam_internal.raise_decay_alerts(now(), '{}');

-- from the data: 60 customers in RFM tiers; one campaign message each per
-- week for 6 weeks, all clicked (within an hour) in the 4 baseline weeks.
-- In the 2 tested weeks customers 1..30 click no more; 31..60 go on (but
-- customer 31's click in the last week comes 25 hours late: outside the
-- 1-day click window).  Saved segments: "heavy" (1..30), "light" (31..60),
-- "few" (1..3: below the guard), "everyone" (1..60: half fell).
INSERT INTO customer (id, phone, created_at) SELECT g, (85291000000 + g)::text, now() - interval '1 year' FROM generate_series(1, 60) g;
INSERT INTO customer_order (customer_id, ordered_at, amount)
SELECT g, now() - (g || ' days')::interval * k, 50 * (g % 3 + 1) FROM generate_series(1, 60) g, generate_series(1, CASE WHEN g <= 30 THEN 8 ELSE 1 END) k;
SELECT count(*) > 0 AS tiers FROM refresh_rfm();
SELECT tier, count(*), count(*) FILTER (WHERE customer_id <= 30) AS of_1_to_30 FROM customer_rfm GROUP BY 1 ORDER BY 1;
SELECT create_tag('heavy', 'interest') > 0, create_tag('light', 'interest') > 0, create_tag('few', 'interest') > 0,
	   create_tag('all', 'interest') > 0;
SELECT attach_tag('heavy', segment_range(1, 31)) IS NOT NULL, attach_tag('light', segment_range(31, 61)) IS NOT NULL,
	   attach_tag('few', segment_range(1, 4)) IS NOT NULL, attach_tag('all', segment_range(1, 61)) IS NOT NULL;
SELECT define_segment('heavy', 'heavy'), define_segment('light', 'light'), define_segment('few', 'few'),
	   define_segment('everyone', 'all');
SELECT create_sender('main', '106540352242922', 'EAAtoken-main', 'main-secret', 'https://localhost:9') AS sender \gset
-- e: a Monday 00:00 UTC three weeks ahead (the job runs on its own clock, not
-- before now); the run at e + 1 day 8 hours (a Tuesday 08:00) tests the
-- weeks starting e - 14 days and e - 7 days
SELECT (date_trunc('week', now() AT TIME ZONE 'UTC') + interval '21 days') AT TIME ZONE 'UTC' AS e \gset
INSERT INTO outbox (sender_id, customer_id, recipient, payload, campaign, campaign_id, category, status, created_at,
					sending_at, sent_at, wamid)
SELECT :sender, c, (85291000000 + c)::text, '{}', 'weekly', 1, 'marketing', 'sent', t, t, t, 'wamid.' || c || '.' || w
FROM generate_series(1, 60) c, generate_series(1, 6) w,
	 LATERAL (SELECT :'e'::timestamptz - interval '42 days' + (w - 1) * interval '7 days' + interval '2 days 10 hours' AS t) x;
-- messages that do not count: not of a campaign, not sent, sent after the last week
INSERT INTO outbox (sender_id, customer_id, recipient, payload, campaign_id, status, created_at, sending_at, sent_at, wamid)
VALUES (:sender, 1, '85291000001', '{}', NULL, 'sent', :'e'::timestamptz - interval '3 days', :'e'::timestamptz - interval '3 days', :'e'::timestamptz - interval '3 days', 'wamid.direct'),
	   (:sender, 1, '85291000001', '{}', 1, 'failed', :'e'::timestamptz - interval '3 days', NULL, NULL, NULL),
	   (:sender, 1, '85291000001', '{}', 1, 'sent', :'e'::timestamptz + interval '1 hour', :'e'::timestamptz + interval '1 hour', :'e'::timestamptz + interval '1 hour', 'wamid.late');
SELECT count(*) AS clicks FROM (
	SELECT record_click(o.message_id, 'https://shop.example.com/x', o.sent_at + CASE WHEN o.customer_id = 31 AND o.wamid LIKE '%.6' THEN interval '25 hours' ELSE interval '1 hour' END)
	FROM outbox o
	WHERE o.campaign_id = 1 AND o.wamid LIKE 'wamid.%.%' AND (o.customer_id > 30 OR right(o.wamid, 1)::integer <= 4)) x;

-- link clicks written by hand whose message_id names no message count for none
INSERT INTO event (customer_id, kind, occurred_at, details)
VALUES (1, 'link_click', :'e'::timestamptz - interval '10 days', '{"message_id": "abc"}'),
	   (1, 'link_click', :'e'::timestamptz - interval '10 days', '{"message_id": 1e30}'),
	   (1, 'link_click', :'e'::timestamptz - interval '10 days', '{"message_id": -5}');
-- the report (min_messages 4 for this small data): tiers with customers
-- 1..30 fell 100 % two weeks in a row; the others did not fall
SELECT group_kind, group_name, last_week = (:'e'::timestamptz - interval '7 days')::date AS last_week_ok, messages, clicks,
	   baseline, rate_previous, rate_last, fall_previous, fall_last, alert, reason
FROM click_decay(:'e'::timestamptz + interval '1 day 8 hours', '{"min_messages": 4}');
-- 9 hours earlier (Monday 23:00) the last week has not had its 1-day click
-- window yet: the weeks tested are one week earlier, and the first of the 6
-- weeks then has no messages (the guard)
SELECT group_name, last_week = (:'e'::timestamptz - interval '14 days')::date AS week_before, alert, reason
FROM click_decay(:'e'::timestamptz + interval '23 hours', '{"min_messages": 4}') WHERE group_name IN ('heavy', 'light');
-- with the default guard of 200 messages a week nothing alerts
SELECT count(*) FILTER (WHERE alert) AS alerts, min(reason) AS reason FROM click_decay(:'e'::timestamptz + interval '1 day 8 hours');
-- a week later the tested weeks are 5 and 6 plus one without messages: no alert
SELECT count(*) FILTER (WHERE alert) AS alerts FROM click_decay(:'e'::timestamptz + interval '8 days 8 hours', '{"min_messages": 4}');
-- a saved segment that cannot be evaluated counts no members (and stops no other)
SELECT wam_internal.saved_segment_members('no such segment') IS NULL AS no_members;
-- bad input
SELECT * FROM click_decay(NULL);
SELECT * FROM click_decay('infinity');
SELECT * FROM click_decay(now(), NULL);
SELECT * FROM click_decay(now(), '[]');
SELECT * FROM click_decay(now(), '{"min": 3}');
SELECT * FROM click_decay(now(), '{"min_messages": 0}');
SELECT * FROM click_decay(now(), '{"min_messages": 2.5}');
SELECT * FROM click_decay(now(), '{"min_messages": "200"}');
SELECT * FROM click_decay(now(), '{"fall": 0}');
SELECT * FROM click_decay(now(), '{"fall": 1}');
SELECT * FROM click_decay(now(), '{"fall": null}');
SELECT * FROM click_decay(now(), '{"click_window": "30 minutes"}');
SELECT * FROM click_decay(now(), '{"click_window": "8 days"}');
SELECT * FROM click_decay(now(), '{"click_window": "soon"}');
SELECT * FROM click_decay(now(), '{"click_window": 3}');

-- the weekly job (Tuesdays 06:00 UTC), its options checked where they are set
SELECT job, enabled, run_every, at_time, on_weekday, time_zone, options FROM job WHERE job = 'decay alerts';
UPDATE job SET options = '{"fall": 1.5}' WHERE job = 'decay alerts';
UPDATE job SET options = '{"inactive": "180 days"}' WHERE job = 'decay alerts';
UPDATE job SET options = options || '{"min_messages": 4}', next_run_at = :'e'::timestamptz + interval '1 day 8 hours' WHERE job = 'decay alerts';
SELECT wam_internal.run_job('decay alerts', :'e'::timestamptz + interval '1 day 8 hours');
SELECT kind, subject, message LIKE 'The click rate of campaign messages to % fell % and % below its baseline of % (the mean of the 4 weeks before) in the weeks of % and %.' AS message_ok,
	   detail ->> 'messages' AS messages, detail ->> 'clicks' AS clicks, detail ->> 'baseline' AS baseline,
	   (detail ->> 'last_week')::date = (:'e'::timestamptz - interval '7 days')::date AS last_week_ok
FROM alert ORDER BY alert_id;
SELECT ok, result, scheduled_for = :'e'::timestamptz + interval '1 day 8 hours' AS on_time FROM job_run WHERE job = 'decay alerts';
SELECT next_run_at = (date_trunc('week', :'e'::timestamptz AT TIME ZONE 'UTC') + interval '8 days 6 hours') AT TIME ZONE 'UTC' AS next_tuesday_0600
FROM job WHERE job = 'decay alerts';
-- run again in the same week: the same alerts are not raised twice
UPDATE job SET next_run_at = :'e'::timestamptz + interval '1 day 9 hours' WHERE job = 'decay alerts';
SELECT wam_internal.run_job('decay alerts', :'e'::timestamptz + interval '1 day 9 hours');
SELECT count(*) AS alerts FROM alert;

-- roles: readers see the report and the alerts; only admins change the job
SET ROLE wam_reader;
SELECT count(*) FILTER (WHERE alert) AS alerts FROM click_decay(:'e'::timestamptz + interval '1 day 8 hours', '{"min_messages": 4}');
SELECT count(*) FROM alert;
UPDATE job SET options = '{}' WHERE job = 'decay alerts';
SELECT * FROM wam_internal.decay_verdict('{1,1,1,1,1,1}', '{0,0,0,0,0,0}', 1, 0.2);
RESET ROLE;
SET ROLE wam_operator;
SELECT wam_internal.raise_decay_alerts(now(), '{}');
RESET ROLE;
SET ROLE wam_admin;
UPDATE job SET options = '{"min_messages": 500, "fall": 0.25, "click_window": "2 days"}' WHERE job = 'decay alerts';
SELECT options FROM job WHERE job = 'decay alerts';
RESET ROLE;
