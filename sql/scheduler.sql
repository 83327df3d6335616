-- scheduler: the periodic jobs and their schedules (driven with explicit times,
-- no sleeps), job isolation, the weekly tag health report as dated rows,
-- silent tags measured on sends, the tag-count bands by base size, the tag
-- audit, splitting an overloaded tag, logged rule changes
SET client_min_messages = warning;
DROP EXTENSION pg_wamarketing CASCADE;
CREATE EXTENSION pg_wamarketing;
RESET client_min_messages;
SET search_path = public, wam;
SET client_min_messages = warning;
\set VERBOSITY terse
SET timezone = 'UTC';

-- the seeded jobs, never scheduled yet
SELECT job, enabled, schedule, next_run_at, last_outcome FROM job_status ORDER BY job;
SELECT wam_internal.interval_words(i) FROM unnest(ARRAY[interval '1 minute', '90 seconds', '2 hours', '1 day',
	'14 days', '1 mon 2 days 3 hours', '0', '1.5 seconds']) i;

-- the first look schedules: interval jobs one period on, calendar jobs at their next slot
-- (2026-03-04 is a Wednesday)
SELECT * FROM run_due_jobs('2026-03-04 10:00+00');
SELECT job, next_run_at FROM job ORDER BY job;
-- just before the due time nothing runs; at it, the job runs
SELECT * FROM run_due_jobs('2026-03-04 10:04:59.999999+00');
SELECT * FROM run_due_jobs('2026-03-04 10:05+00');
SELECT job, scheduled_for, ok, result FROM job_run ORDER BY run_id;
-- a run a little late keeps the rhythm (expire tags: 10:30); one late by more
-- than its period counts from the run (run tag rules, due 10:10: 10:21)
SELECT * FROM run_due_jobs('2026-03-04 10:16+00');
SELECT job, next_run_at FROM job WHERE job IN ('expire tags', 'run tag rules') ORDER BY job;
-- a job missed for days runs once, then keeps its rhythm from now
SELECT * FROM run_due_jobs('2026-03-09 12:00+00');
SELECT job, next_run_at FROM job ORDER BY job;
SELECT job, count(*) AS runs FROM job_run GROUP BY 1 ORDER BY 1;

-- calendar slots: Monday 08:00 in a zone, across a daylight-saving change
-- (Europe/Berlin moves to summer time on Sunday 2026-03-29)
SELECT wam_internal.job_calendar_next(j, '2026-03-23 06:59:59+00') AS at_0759_local,
	   wam_internal.job_calendar_next(j, '2026-03-23 07:00+00') AS at_0800_local,
	   wam_internal.job_calendar_next(j, '2026-03-23 07:00:01+00') AS just_after,
	   wam_internal.job_next_run(j, '2026-03-23 07:00+00', '2026-03-23 07:00:05+00') AS after_that_run
FROM (SELECT (row('tag health report', true, interval '7 days', time '08:00', 1::smallint, 'Europe/Berlin',
				  '{}'::jsonb, NULL::timestamptz, 'x'))::job AS j) s;
-- quarterly on a Monday: three months on, then the first Monday
SELECT wam_internal.job_next_run(j, '2026-01-05 08:00+00', '2026-01-05 08:01+00') AS next_quarter
FROM (SELECT (row('tag audit', true, interval '3 months', time '08:00', 1::smallint, 'UTC',
				  '{}'::jsonb, NULL::timestamptz, 'x'))::job AS j) s;
-- daily at 03:00
SELECT wam_internal.job_next_run(j, '2026-03-04 03:00+00', '2026-03-04 03:00:02+00') AS next_day
FROM (SELECT (row('expire tags', true, interval '1 day', time '03:00', NULL::smallint, 'UTC',
				  '{}'::jsonb, NULL::timestamptz, 'x'))::job AS j) s;

-- a failing job is recorded with its error and does not stop the others
INSERT INTO customer (phone) SELECT '8529200' || lpad(i::text, 4, '0') FROM generate_series(1, 10) i;
SELECT create_tag('sched-a', 'interest') > 0 AS created;
INSERT INTO tag_rule (name, condition, add_tags) VALUES ('broken', '((', '{sched-a}');
SELECT attach_tag('sched-a', '{1,2}', interval '1 hour');
UPDATE customer_tag SET expires_at = now() - interval '1 second' WHERE customer_id = 1;
UPDATE job SET next_run_at = '2026-03-09 12:00+00' WHERE job IN ('expire tags', 'run tag rules');
SELECT * FROM run_due_jobs('2026-03-09 12:00+00');
SELECT job, last_outcome, last_result, last_error, failures_30d FROM job_status
WHERE job IN ('expire tags', 'run tag rules') ORDER BY job;
SELECT customer_id FROM customer_tag WHERE tag_id = tag_id('sched-a') ORDER BY 1;
SELECT job, next_run_at FROM job WHERE job IN ('expire tags', 'run tag rules') ORDER BY job;
DELETE FROM tag_rule WHERE name = 'broken';
-- a disabled job does not run; a job someone else is running is skipped
UPDATE job SET enabled = false WHERE job = 'expire tags';
SELECT * FROM run_due_jobs('2026-03-10 12:00+00') WHERE job = 'expire tags';
SELECT wam_internal.run_job('expire tags', '2026-03-10 12:00+00');
SELECT wam_internal.run_job('no such', '2026-03-10 12:00+00');
UPDATE job SET enabled = true WHERE job = 'expire tags';
-- re-enabling (a schedule change) reschedules from the next look
SELECT next_run_at IS NULL AS rescheduled FROM job WHERE job = 'expire tags';

-- schedules are checked where they are written
UPDATE job SET time_zone = 'Mars/Olympus' WHERE job = 'tag health report';
UPDATE job SET options = '{"colour": "red"}' WHERE job = 'expire tags';
UPDATE job SET options = '{"action": "burn"}' WHERE job = 'tag audit';
UPDATE job SET options = '{"inactive": "soon"}' WHERE job = 'tag audit';
UPDATE job SET options = '{"inactive": "12 hours"}' WHERE job = 'tag audit';
UPDATE job SET run_every = interval '59 seconds' WHERE job = 'run tag rules';
UPDATE job SET on_weekday = 8 WHERE job = 'tag health report';
UPDATE job SET at_time = '08:00:30' WHERE job = 'tag health report';
UPDATE job SET at_time = NULL WHERE job = 'tag health report';
INSERT INTO job (job, run_every, description) VALUES ('drop tables', '1 minute', 'x');
UPDATE job SET time_zone = 'Asia/Taipei', at_time = '09:30' WHERE job = 'tag health report';
SELECT schedule FROM job_status WHERE job = 'tag health report';
-- who may do what
SET ROLE wam_reader;
SELECT count(*) AS jobs_visible FROM job_status;
UPDATE job SET enabled = false WHERE job = 'run tag rules';
SELECT * FROM run_due_jobs();
RESET ROLE;
SET ROLE wam_operator;
UPDATE job SET enabled = false WHERE job = 'run tag rules';
SELECT count(*) >= 0 AS operator_runs_due_jobs FROM run_due_jobs();
SELECT * FROM run_due_jobs(now() + interval '1 day');
SELECT wam_internal.run_job('expire tags', now());
RESET ROLE;
SET ROLE wam_admin;
UPDATE job SET run_every = interval '2 minutes' WHERE job = 'run tag rules';
UPDATE job SET description = 'mine' WHERE job = 'run tag rules';
INSERT INTO job (job, run_every, description) VALUES ('expire tags', '1 minute', 'x');
DELETE FROM job_run;
RESET ROLE;
SELECT run_every FROM job WHERE job = 'run tag rules';

-- tag health: silent means no send used the tag for 30 days (attaching is not a use)
SELECT create_tag('sched-b', 'interest') > 0 AND create_tag('sched-c', 'interest') > 0
	   AND create_tag('sched-d', 'interest') > 0 AS created;
-- (one transaction: one now())
BEGIN;
UPDATE tag SET created_at = now() - interval '30 days', last_attached_at = now() WHERE name = 'sched-b';
UPDATE tag SET created_at = now() - interval '30 days 1 second', last_attached_at = now() WHERE name = 'sched-c';
UPDATE tag SET created_at = now() - interval '90 days', last_sent_at = now() - interval '29 days 23:59:59' WHERE name = 'sched-d';
UPDATE tag SET created_at = now() - interval '90 days', last_sent_at = now() - interval '30 days 1 second' WHERE name = 'sched-a';
SELECT tag, silent FROM tag_health WHERE tag LIKE 'sched-%' ORDER BY tag;
ROLLBACK;
BEGIN;
UPDATE tag SET created_at = now() - interval '30 days', last_attached_at = now() WHERE name = 'sched-b';
UPDATE tag SET created_at = now() - interval '30 days 1 second', last_attached_at = now() WHERE name = 'sched-c';
UPDATE tag SET created_at = now() - interval '90 days', last_sent_at = now() - interval '29 days 23:59:59' WHERE name = 'sched-d';
COMMIT;
-- a send through a segment expression records its tags (saved segments included)
SELECT create_sender('main', '106540352242922', 'EAAsecret-token-1', 'app-secret-1') > 0 AS sender;
UPDATE customer SET consent_at = now(), consent_source = 'test';
SELECT attach_tag('sched-c', '{3,4}');
SELECT define_segment('sched-saved', '"sched-c" OR "sched-d"') IS NOT NULL AS defined;
SELECT queued, no_consent FROM enqueue_audience('@"sched-saved" EXCLUDE "sched-b"',
	'{"type":"template","template":{"name":"hello","language":{"code":"en"}}}');
SELECT tag, last_sent_at > now() - interval '1 minute' AS sent_now, silent
FROM tag_health WHERE tag LIKE 'sched-%' ORDER BY tag;
-- a send that queues nothing is no use of its tags
SELECT queued FROM enqueue_audience('"sched-a" AND NOT "sched-a"',
	'{"type":"template","template":{"name":"hello","language":{"code":"en"}}}');
SELECT last_sent_at IS NULL AS not_used FROM tag WHERE name = 'sched-a';
SELECT * FROM enqueue_audience('"no such tag"', '{"type":"template","template":{"name":"hello","language":{"code":"en"}}}');
SELECT * FROM enqueue_audience(NULL, '{"type":"template","template":{"name":"hello","language":{"code":"en"}}}');

-- overloaded: more than 40 % of customers (10 customers: 4 is not, 5 is)
SELECT detach_tag('sched-c', all_customers());
SELECT attach_tag('sched-c', '{1,2,3,4}'), attach_tag('sched-d', '{1,2,3,4,5}');
SELECT tag, members, share_percent, overloaded FROM tag_health WHERE tag IN ('sched-c', 'sched-d') ORDER BY tag;

-- bands of the active tag count, by base size: just below, at and above each edge
SELECT n, wam_internal.tag_count_band(n, 9999) AS small_base, wam_internal.tag_count_band(n, 10000) AS large_base
FROM unnest(ARRAY[0, 20, 21, 29, 30, 49, 50, 80, 81, 100, 101]) n;

-- administrators: login roles holding wam_admin, directly or through a role
CREATE ROLE sched_admin1 LOGIN IN ROLE wam_admin;
SELECT admins, admins_note FROM tag_health_summary;
CREATE ROLE sched_team NOLOGIN IN ROLE wam_admin;
CREATE ROLE sched_admin2 LOGIN IN ROLE sched_team;
CREATE ROLE sched_nologin NOLOGIN IN ROLE wam_admin;
SELECT admins, admins_note FROM tag_health_summary;
CREATE ROLE sched_admin3 LOGIN IN ROLE wam_admin;
SELECT admins, admins_note FROM tag_health_summary;
DROP ROLE sched_admin1, sched_admin2, sched_admin3, sched_team, sched_nologin;
SELECT admins, admins_note FROM tag_health_summary;

-- the weekly report is kept as dated rows; the job records it
UPDATE job SET next_run_at = '2026-03-16 08:00+00', time_zone = 'UTC', at_time = '08:00' WHERE job = 'tag health report';
SELECT * FROM run_due_jobs('2026-03-16 08:00+00') WHERE job = 'tag health report';
SELECT last_result FROM job_status WHERE job = 'tag health report';
SELECT r.customers, r.active_tags, r.band, t.tag, t.members, t.silent, t.overloaded
FROM tag_health_report r JOIN tag_health_report_tag t USING (report_id)
WHERE t.tag LIKE 'sched-%' ORDER BY t.tag;
SELECT next_run_at FROM job WHERE job = 'tag health report';

-- the audit: links to customers without interaction for 180 days
UPDATE customer SET created_at = now() - interval '1 year';
UPDATE customer SET last_read_at = now() - interval '179 days' WHERE id = 1;
UPDATE customer SET last_order_at = now() - interval '181 days' WHERE id = 2;
UPDATE customer SET last_inbound_at = now() - interval '1 day' WHERE id = 3;
SELECT * FROM audit_tags() WHERE tag LIKE 'sched-%';
SELECT * FROM audit_tags(interval '180 days', 'burn');
SELECT * FROM audit_tags(interval '1 hour');
SELECT tag, links, stale_links, moved FROM audit_tags(interval '180 days', 'historical stock', 'quarterly audit')
WHERE tag LIKE 'sched-%';
SELECT name, members FROM (SELECT t.name, segment_cardinality(tag_members(t.name)) AS members FROM tag t) x
WHERE name LIKE 'sched-%' OR name = 'historical stock' ORDER BY 1;
SELECT segment_members(tag_members('historical stock'));
SELECT action, tag_name, detail, reason FROM tag_log WHERE action = 'audit' ORDER BY log_id;
-- the scheduled audit takes its options from the job (report by default)
UPDATE job SET next_run_at = '2026-04-06 08:00+00' WHERE job = 'tag audit';
SELECT * FROM run_due_jobs('2026-04-06 08:00+00') WHERE job = 'tag audit';
SELECT last_result FROM job_status WHERE job = 'tag audit';

-- splitting an overloaded tag into finer tags by a measure
SELECT attach_tag('sched-b', all_customers());
INSERT INTO customer_order (customer_id, ordered_at, amount)
SELECT c, now() - interval '1 day', 10 FROM generate_series(1, 9) c, generate_series(1, c) k;
SELECT * FROM split_tag('sched-b', 'order count', 3, 'too broad');
SELECT name, dimension, segment_members(tag_members(name)) AS member FROM tag
WHERE name LIKE 'sched-b - %' ORDER BY name, member;
SELECT * FROM split_tag('sched-b', 'spend', 2);
SELECT * FROM split_tag('sched-b', 'shoe size');
SELECT * FROM split_tag('no such tag', 'spend');
SELECT action, tag_name, detail, reason FROM tag_log WHERE tag_name LIKE 'sched-b%' ORDER BY log_id;

-- every rule change is logged with its reason, however it is made
BEGIN;
SET LOCAL wam.change_reason = 'first version';
SELECT create_tag_rule('sched rule', '{sched-a}', '{}', 'orders >= 3') > 0 AS created;
COMMIT;
BEGIN;
SET LOCAL wam.change_reason = 'threshold from the spring review';
UPDATE tag_rule SET condition = 'orders >= 4' WHERE name = 'sched rule';
COMMIT;
SELECT * FROM run_tag_rules('sched rule');
DELETE FROM tag_rule WHERE name = 'sched rule';
SELECT action, tag_name, detail, reason FROM tag_log WHERE action LIKE '% rule' ORDER BY log_id;
-- the reason of a split or an audit is not left behind for later changes
SELECT current_setting('wam.change_reason') AS reason_after;
BEGIN;
SET LOCAL wam.change_reason = 'the base passed 20,000';
SELECT create_tag_dimension('customer group', '#ff00aa');
SELECT create_tag('young women', 'customer group') > 0 AS created;
COMMIT;
SELECT action, tag_name, reason FROM tag_log WHERE tag_name IN ('customer group', 'young women') ORDER BY log_id;
