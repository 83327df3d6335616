-- monthly partitions of wam.event and wam.inbound_message, retention and roll-ups
-- (in a database of its own: the partitions below are fixed)
SELECT current_database() AS orig_db \gset
CREATE DATABASE wam_retention_regress;
\c wam_retention_regress
CREATE EXTENSION pg_wamarketing;
SET client_min_messages = notice;
-- the months are UTC months whatever the session's time zone
SET TIME ZONE 'Asia/Taipei';
CREATE FUNCTION pg_temp.parts() RETURNS TABLE (partition_name text, utc_from timestamp, utc_to timestamp, rows bigint)
LANGUAGE plpgsql AS $$
DECLARE
	p record;
BEGIN
	FOR p IN SELECT x.part, x.name, x.lo, x.hi FROM wam_internal.partitions('wam.event') x
			 UNION ALL SELECT x.part, x.name, x.lo, x.hi FROM wam_internal.partitions('wam.inbound_message') x
			 UNION ALL SELECT c.oid::regclass, c.relname, NULL, NULL FROM pg_class c
			 WHERE c.relname IN ('event_default', 'inbound_message_default')
			 ORDER BY 2 LOOP
		partition_name := p.name;
		utc_from := p.lo::timestamptz AT TIME ZONE 'UTC';
		utc_to := p.hi::timestamptz AT TIME ZONE 'UTC';
		EXECUTE format('SELECT count(*) FROM %s', p.part) INTO rows;
		RETURN NEXT;
	END LOOP;
END
$$;

-- a fresh installation has the default partitions only; rows land there
SELECT * FROM pg_temp.parts();
INSERT INTO wam.customer (id, phone) SELECT g, (15550000000 + g)::text FROM generate_series(1, 20) g;
INSERT INTO wam.event (customer_id, kind, occurred_at) VALUES
	(1, 'link_click', '2030-01-15 12:00+00'), (2, 'link_click', '2029-12-31 23:59:59.999999+00'),
	(3, 'link_click', '2030-02-01 00:00+00');
SELECT tableoid::regclass AS partition, count(*) FROM wam.event GROUP BY 1 ORDER BY 1;

-- the partitions of the current month and two ahead; the default partition's
-- rows of those months move into them, older ones stay
SELECT * FROM wam.maintain_partitions('2030-01-20 00:00+00');
SELECT * FROM pg_temp.parts();
-- run again: nothing to do
SELECT count(*) AS actions FROM wam.maintain_partitions('2030-01-20 00:00+00');

-- each row at a boundary lands in its month (UTC), later ones in the default partition
INSERT INTO wam.event (customer_id, kind, occurred_at) VALUES
	(4, 'order', '2030-01-31 23:59:59.999999+00'), (5, 'order', '2030-02-01 00:00:00+00'),
	(6, 'order', '2030-02-01 07:59:59+08'), (7, 'order', '2030-02-01 08:00:00+08'),
	(8, 'order', '2030-03-31 23:59:59.999999+00'), (9, 'order', '2030-04-01 00:00:00+00');
SELECT customer_id, occurred_at AT TIME ZONE 'UTC' AS utc, tableoid::regclass AS partition
FROM wam.event WHERE kind = 'order' ORDER BY customer_id;
-- a new month's partition moves its rows out of the default partition
SELECT * FROM wam.maintain_partitions('2030-02-10 00:00+00');
SELECT customer_id, tableoid::regclass AS partition FROM wam.event WHERE customer_id IN (8, 9) ORDER BY 1;
-- event rules still fire on the partitioned table, once per statement
SELECT wam.create_tag('clicker', 'engagement');
SELECT wam.create_tag_rule('clicks', on_event => 'link_click', add_tags => '{clicker}');
INSERT INTO wam.event (customer_id, kind, occurred_at) VALUES (10, 'link_click', '2030-02-11 00:00+00'),
	(11, 'link_click', '2030-03-11 00:00+00');
SELECT wam.tag_members('clicker');
-- constraints and the customer foreign key hold in every partition
INSERT INTO wam.event (customer_id, kind, occurred_at) VALUES (999, 'order', '2030-02-11 00:00+00');
INSERT INTO wam.event (customer_id, kind, occurred_at) VALUES (12, 'Bad Kind', '2030-02-11 00:00+00');

-- inbound messages: a redelivery is stored once, whichever partition holds it
SELECT wam.create_sender('main', '106540352242922', 'EAAtoken-main', 'main-secret', 'https://localhost:9') AS s1 \gset
CREATE FUNCTION pg_temp.inbound(messages jsonb) RETURNS text
LANGUAGE sql RETURN jsonb_build_object('object', 'whatsapp_business_account', 'entry', jsonb_build_array(
	jsonb_build_object('id', '102290129340398', 'changes', jsonb_build_array(jsonb_build_object(
		'field', 'messages', 'value', jsonb_build_object('messaging_product', 'whatsapp',
			'metadata', jsonb_build_object('display_phone_number', '15550783881', 'phone_number_id', '106540352242922'),
			'messages', messages))))))::text;
CREATE FUNCTION pg_temp.ingest(body text) RETURNS integer
LANGUAGE sql RETURN wam.ingest_webhook(body, 'sha256=' || wam.hmac_sha256('main-secret', body));
-- 2030-01-31 23:59:59 UTC, 2030-02-01 00:00:00 UTC
SELECT pg_temp.ingest(pg_temp.inbound(jsonb_build_array(
	'{"from":"15550000001","id":"wamid.A","timestamp":"1896134399","type":"text","text":{"body":"hi"}}'::jsonb,
	'{"from":"15550000002","id":"wamid.B","timestamp":"1896134400","type":"text","text":{"body":"hello"}}'::jsonb,
	'{"from":"19990000000","id":"wamid.C","timestamp":"1896134400","type":"text","text":{"body":"who"}}'::jsonb))) AS stored;
SELECT pg_temp.ingest(pg_temp.inbound(jsonb_build_array(
	'{"from":"15550000001","id":"wamid.A","timestamp":"1896134399","type":"text","text":{"body":"hi"}}'::jsonb))) AS redelivered;
-- without its timestamp a redelivery is received "now", in another partition: still once
SELECT pg_temp.ingest(pg_temp.inbound(jsonb_build_array(
	'{"from":"15550000002","id":"wamid.B","type":"text","text":{"body":"hello"}}'::jsonb))) AS redelivered_untimed;
SELECT wamid, received_at AT TIME ZONE 'UTC' AS utc, opted_out, tableoid::regclass AS partition
FROM wam.inbound_message ORDER BY wamid;

-- retention: only administrators change it, at least 90 days
CREATE ROLE ret_reader IN ROLE wam_reader;
CREATE ROLE ret_operator IN ROLE wam_operator;
CREATE ROLE ret_admin IN ROLE wam_admin;
SET ROLE ret_reader;
SELECT table_name, keep, premake FROM wam.retention ORDER BY 1;
UPDATE wam.retention SET keep = '400 days' WHERE table_name = 'event';
SELECT * FROM wam.maintain_partitions('2030-01-20 00:00+00');
SET ROLE ret_operator;
UPDATE wam.retention SET keep = '400 days' WHERE table_name = 'event';
SELECT wam_internal.drop_partition('wam.event_p2030_01');
SELECT wam_internal.create_partition('wam.event', 'x', '2040-01-01', '2040-02-01');
SET ROLE ret_admin;
UPDATE wam.retention SET keep = '89 days' WHERE table_name = 'event';
UPDATE wam.retention SET keep = '90 days', premake = 1 WHERE table_name = 'event';
UPDATE wam.retention SET keep = '90 days' WHERE table_name = 'inbound_message';
-- the helpers are not theirs either, nor DDL on the tables
SELECT wam_internal.drop_partition('wam.event_p2030_01');
DROP TABLE wam.event_p2030_01;
RESET ROLE;
-- even wam_definer's helpers take only the extension's partitioned tables and names
SET ROLE wam_definer;
SELECT wam_internal.create_partition('wam.customer', 'x', '1', '2');
SELECT wam_internal.create_partition('wam.event', 'x; DROP TABLE wam.customer', '2040-01-01', '2040-02-01');
SELECT wam_internal.create_partition('wam.event', 'event_x', '2040-01-01'')) TO (MAXVALUE', '2040-02-01');
SELECT wam_internal.drop_partition('wam.event_default');
SELECT wam_internal.drop_partition('wam.customer');
RESET ROLE;

-- the horizon: 2030-01's partition goes when at - 90 days reaches 2030-02-01,
-- not a microsecond before; the default partition's older rows go row by row
SELECT to_char(('2030-02-01 00:00+00'::timestamptz + interval '90 days') AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS+00')
	   AS horizon_reached \gset
-- the facts retention will remove
CREATE TEMP TABLE facts_before AS
SELECT (occurred_at AT TIME ZONE 'UTC')::date AS day, kind, count(*) AS events, count(DISTINCT customer_id) AS customers
FROM wam.event WHERE occurred_at < '2030-02-01 00:00+00' GROUP BY 1, 2;
CREATE TEMP TABLE inbound_before AS
SELECT (received_at AT TIME ZONE 'UTC')::date AS day, sender_id, kind, count(*) AS messages,
	   count(DISTINCT customer_id) AS customers, count(*) FILTER (WHERE answered_message IS NOT NULL) AS replies,
	   count(*) FILTER (WHERE opted_out) AS opted_out
FROM wam.inbound_message WHERE received_at < '2030-02-01 00:00+00' GROUP BY 1, 2, 3;
SELECT * FROM wam.maintain_partitions(:'horizon_reached'::timestamptz - interval '1 microsecond') WHERE action <> 'created';
SET ROLE ret_admin;
SELECT * FROM wam.maintain_partitions(:'horizon_reached') WHERE action <> 'created';
RESET ROLE;
SELECT * FROM pg_temp.parts() WHERE partition_name LIKE '%2030%' OR partition_name LIKE '%default';
-- the roll-ups hold exactly the facts of the rows removed
SELECT * FROM wam.event_daily ORDER BY day, kind;
(SELECT * FROM facts_before EXCEPT SELECT * FROM wam.event_daily)
UNION ALL (SELECT * FROM wam.event_daily EXCEPT SELECT * FROM facts_before);
SELECT * FROM wam.inbound_daily ORDER BY day, kind;
(SELECT * FROM inbound_before EXCEPT SELECT * FROM wam.inbound_daily)
UNION ALL (SELECT * FROM wam.inbound_daily EXCEPT SELECT * FROM inbound_before);
-- just past the next month's end: 2030-02 goes
SELECT * FROM wam.maintain_partitions('2030-03-01 00:00+00'::timestamptz + interval '90 days' + interval '1 microsecond')
WHERE action <> 'created';

-- the partitions belong to the tables' owner, carry the tables' privileges,
-- and wam_definer still owns no table
SELECT DISTINCT c.relowner = p.relowner AS same_owner,
	   (SELECT array_agg(x::text ORDER BY x::text) FROM unnest(c.relacl) x)
	   = (SELECT array_agg(x::text ORDER BY x::text) FROM unnest(p.relacl) x) AS same_privileges
FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent
WHERE p.oid IN ('wam.event'::regclass, 'wam.inbound_message'::regclass) AND c.relname NOT LIKE '%default';
SELECT count(*) AS tables_owned FROM pg_class WHERE relowner = 'wam_definer'::regrole;

-- the job runs it, with an injected clock
UPDATE wam.job SET next_run_at = '2031-01-05 00:00+00' WHERE job <> 'maintain partitions';
UPDATE wam.job SET next_run_at = '2031-01-01 00:00+00' WHERE job = 'maintain partitions';
SET ROLE ret_admin;
SELECT * FROM wam.run_due_jobs('2031-01-01 00:00+00');
RESET ROLE;
SELECT job, next_run_at FROM wam.job WHERE job = 'maintain partitions';
SELECT partition_name, rows FROM pg_temp.parts() WHERE partition_name NOT LIKE '%2030%';
SELECT count(*) AS left_of_2030 FROM pg_temp.parts() WHERE partition_name LIKE '%2030%';

-- windows that span partitions give the answers of one table: behaviour
-- predicates (relative to now) before and after the months are split out
INSERT INTO wam.event (customer_id, kind, occurred_at)
SELECT 1 + g % 20, 'visit', now() - g * interval '7 hours' - interval '30 minutes' FROM generate_series(0, 300) g;
SELECT wam.audience_size('event(visit) >= 3 within 30d') AS in_30d, wam.audience_size('event(visit) = 2 within 7d') AS twice_7d,
	   wam.audience_size('event(visit) within 60d') AS any_60d;
SELECT count(*) AS created FROM wam.maintain_partitions(now() - interval '1 month') WHERE action = 'created';
SELECT count(DISTINCT tableoid) > 2 AS spread FROM wam.event WHERE kind = 'visit';
SELECT wam.audience_size('event(visit) >= 3 within 30d') AS in_30d, wam.audience_size('event(visit) = 2 within 7d') AS twice_7d,
	   wam.audience_size('event(visit) within 60d') AS any_60d;


-- wam.outbox: terminal messages enqueued before the horizon are deleted into
-- wam.outbox_daily; waiting, sending and uncertain ones stay whatever their age
TRUNCATE wam.outbox;
INSERT INTO wam.outbox (sender_id, customer_id, recipient, payload, campaign, variant, status, wamid, error_code,
						replies, created_at, sent_at, delivered_at, read_at)
SELECT :s1, c, (15550000000 + c)::text, '{"type":"text","text":{"body":"hi"}}', camp, var, st,
	   CASE WHEN st IN ('sent', 'delivered', 'read') OR (st = 'failed' AND c % 2 = 0) THEN 'wamid.r' || n END,
	   CASE WHEN st = 'failed' THEN 131026 + c % 2 END, CASE WHEN st = 'read' AND c % 3 = 0 THEN 1 ELSE 0 END,
	   t, CASE WHEN st IN ('sent', 'delivered', 'read') THEN t END,
	   CASE WHEN st IN ('delivered', 'read') THEN t END, CASE WHEN st = 'read' THEN t END
FROM (SELECT row_number() OVER () AS n, * FROM
		(VALUES ('2030-03-01 00:00+00'::timestamptz), ('2030-03-01 23:59:59.999999+00'), ('2030-03-31 23:59:59.999999+00'),
				('2030-04-01 00:00+00')) t (t),
		unnest(ARRAY['queued', 'sending', 'retrying', 'uncertain', 'sent', 'delivered', 'read', 'failed',
					 'cancelled', 'expired']) st,
		generate_series(1, 3) c,
		(VALUES ('spring', 'a'), ('spring', NULL), (NULL, NULL)) cv (camp, var)) x;
SELECT count(*) AS messages FROM wam.outbox;
CREATE TEMP TABLE report_before AS SELECT * FROM wam.delivery_report('2030-01-01', '2031-01-01');
SELECT * FROM report_before;
SET ROLE ret_admin;
UPDATE wam.retention SET premake = 1 WHERE table_name = 'outbox';
UPDATE wam.retention SET keep = '89 days' WHERE table_name = 'outbox';
UPDATE wam.retention SET keep = '90 days' WHERE table_name = 'outbox';
RESET ROLE;
-- the horizon at 2030-04-01 00:00: just below it nothing goes, at it the
-- messages before it go (oldest first, a batch at a time)
SELECT * FROM wam.maintain_partitions('2030-03-01 00:00+00'::timestamptz + interval '90 days') WHERE table_name = 'outbox';
SELECT wam_internal.purge_outbox('2030-03-01 00:00:00.000001+00', 5) AS first_batch;
SELECT count(*) AS left_of_first_second FROM wam.outbox WHERE created_at = '2030-03-01 00:00+00';
SELECT * FROM wam.maintain_partitions('2030-04-01 00:00+00'::timestamptz + interval '90 days') WHERE table_name = 'outbox';
SELECT * FROM wam.maintain_partitions('2030-04-01 00:00+00'::timestamptz + interval '90 days') WHERE table_name = 'outbox';
SELECT status, created_at AT TIME ZONE 'UTC' AS created_utc, count(*) FROM wam.outbox GROUP BY 1, 2 ORDER BY 2, 1;
SELECT day, campaign, variant, status, error_code, messages, sent, delivered, read, replied
FROM wam.outbox_daily ORDER BY 1, 2, 3, 4, 5;
-- the delivery report gives the same figures from the roll-up
SELECT * FROM wam.delivery_report('2030-01-01', '2031-01-01');
(SELECT * FROM report_before EXCEPT SELECT * FROM wam.delivery_report('2030-01-01', '2031-01-01'))
UNION ALL (SELECT * FROM wam.delivery_report('2030-01-01', '2031-01-01') EXCEPT SELECT * FROM report_before);
-- a rolled-up day counts when it starts within the period
SELECT sender_name, messages, failed, failed_by_code FROM wam.delivery_report('2030-03-01 00:00:00.000001+00', '2031-01-01');
SELECT sender_name, messages, failed, failed_by_code FROM wam.delivery_report('2030-01-01', '2030-03-01 00:00+00');
-- readers see the roll-up; only wam_definer deletes from wam.outbox
SET ROLE ret_reader;
SELECT sum(messages) AS rolled_up FROM wam.outbox_daily;
DELETE FROM wam.outbox_daily;
SELECT wam_internal.purge_outbox('2040-01-01', 10);
SET ROLE ret_operator;
DELETE FROM wam.outbox;
SET ROLE ret_admin;
DELETE FROM wam.outbox;
UPDATE wam.outbox_daily SET messages = 0;
RESET ROLE;
SELECT has_table_privilege('wam_definer', 'wam.outbox', 'DELETE') AS definer_deletes,
	   has_table_privilege('wam_admin', 'wam.outbox', 'DELETE') AS admin_deletes;


\c :orig_db
DROP DATABASE wam_retention_regress;
DROP ROLE ret_reader, ret_operator, ret_admin;
