-- webhook signatures, ingestion and the verification handshake; the delivery report
-- (in a database of its own: the ids and senders below are fixed)
SELECT current_database() AS orig_db \gset
CREATE DATABASE wam_webhook_regress;
\c wam_webhook_regress
CREATE EXTENSION pg_wamarketing;
SET client_min_messages = notice;

-- HMAC-SHA256 (RFC 4231 test case 2)
SELECT wam.hmac_sha256('Jefe', 'what do ya want for nothing?');
SELECT wam.hmac_sha256('', '');
SELECT wam.hmac_sha256(NULL, 'x');
\set sig 'sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843'
SELECT wam_internal.hmac_sha256_matches('what do ya want for nothing?', :'sig', '{a,Jefe}');
SELECT wam_internal.hmac_sha256_matches('what do ya want for nothing?', upper(:'sig'), '{Jefe}') AS upper_prefix;
SELECT wam_internal.hmac_sha256_matches('what do ya want for nothing?', 'sha256=' || upper(substr(:'sig', 8)), '{Jefe}') AS upper_hex;
SELECT wam_internal.hmac_sha256_matches('what do ya want for nothing?', :'sig', '{Jefe,Jefe}') AS first_match;
SELECT wam_internal.hmac_sha256_matches('what do ya want for nothing?', :'sig', '{a,NULL,a,Jefe,a}') AS after_repeats;
SELECT wam_internal.hmac_sha256_matches('what do ya want for nothing!', :'sig', '{Jefe}') AS other_body;
SELECT wam_internal.hmac_sha256_matches('what do ya want for nothing?', left(:'sig', -1) || '4', '{Jefe}') AS one_digit_off;
SELECT wam_internal.hmac_sha256_matches('what do ya want for nothing?', left(:'sig', -1), '{Jefe}') AS short;
SELECT wam_internal.hmac_sha256_matches('what do ya want for nothing?', left(:'sig', -1) || 'g', '{Jefe}') AS not_hex;
SELECT wam_internal.hmac_sha256_matches('what do ya want for nothing?', 'sha1=' || substr(:'sig', 8), '{Jefe}') AS sha1;
SELECT wam_internal.hmac_sha256_matches('x', :'sig', '{}') AS no_secrets;
SELECT wam_internal.hmac_sha256_matches('x', :'sig', '{NULL}') AS null_secret;
SELECT wam_internal.hmac_sha256_matches('x', :'sig', NULL) AS null_array;
SELECT wam_internal.hmac_sha256_matches('x', :'sig', '{{a},{b}}');

-- try_jsonb never errors
SELECT wam_internal.try_jsonb('{"a": [1, 2]}'), wam_internal.try_jsonb('{"a":'), wam_internal.try_jsonb(''), wam_internal.try_jsonb('nul'),
	   wam_internal.try_jsonb(NULL), wam_internal.try_jsonb('"\u00e9"');

-- json_elements: the elements of an array, nothing for anything else
SELECT wam_internal.json_elements('[1, "a", {"b": [2]}, [3, 4], null, []]');
SELECT count(*) AS elements FROM wam_internal.json_elements('[]');
SELECT count(*) AS elements FROM wam_internal.json_elements('{"a": [1]}');
SELECT count(*) AS elements FROM wam_internal.json_elements('"[1]"');
SELECT count(*) AS elements FROM wam_internal.json_elements('7');
SELECT count(*) AS elements FROM wam_internal.json_elements('null');
SELECT count(*) AS elements FROM wam_internal.json_elements(NULL);
SELECT count(*) AS elements, sum((e->>0)::int) AS total FROM wam_internal.json_elements((SELECT jsonb_agg(jsonb_build_array(g)) FROM generate_series(1, 1000) g)) e;

-- setup: two senders sharing nothing, customers with consent
SELECT wam.create_sender('main', '106540352242922', 'EAAtoken-main', 'main-secret', 'https://localhost:9') AS s1,
	   wam.create_sender('other', '200', 'EAAtoken-other', 'other-secret', 'https://localhost:9') AS s2 \gset
INSERT INTO wam.customer (id, phone, name) VALUES (11, '15550000011', 'Ana'), (12, '15550000012', 'Bo'),
	(13, '15550000013', 'Cy');
SELECT count(wam.record_consent(id, 'test')) FROM wam.customer WHERE id IN (11, 12, 13);
\set tpl '{"type":"template","template":{"name":"t","language":{"code":"en"}}}'
SELECT wam.enqueue_message(11, :'tpl', 'main') AS m1, wam.enqueue_message(12, :'tpl', 'main') AS m2,
	   wam.enqueue_message(13, :'tpl', 'main') AS m3, wam.enqueue_message(11, :'tpl', 'other', not_before => now() + interval '1 hour') AS m4 \gset
-- m1 sent (wamid known), m2 uncertain (response lost), m3 still sending
UPDATE wam.outbox SET status = 'sent', wamid = 'wamid.M1', sending_at = now(), sent_at = now() - interval '1 minute'
WHERE message_id = :m1;
UPDATE wam.outbox SET status = 'uncertain', sending_at = now(), uncertain_at = now() WHERE message_id = :m2;
UPDATE wam.outbox SET status = 'sending', sending_at = now() WHERE message_id = :m3;

CREATE FUNCTION pg_temp.status_body(phone_number_id text, statuses jsonb) RETURNS text
LANGUAGE sql RETURN jsonb_build_object('object', 'whatsapp_business_account', 'entry', jsonb_build_array(
	jsonb_build_object('id', '102290129340398', 'changes', jsonb_build_array(jsonb_build_object(
		'field', 'messages', 'value', jsonb_build_object('messaging_product', 'whatsapp',
			'metadata', jsonb_build_object('display_phone_number', '15550783881', 'phone_number_id', phone_number_id),
			'statuses', statuses))))))::text;
CREATE FUNCTION pg_temp.st(wamid text, status text, ts bigint, opaque text DEFAULT NULL) RETURNS jsonb
LANGUAGE sql RETURN jsonb_strip_nulls(jsonb_build_object('id', wamid, 'status', status, 'timestamp', ts::text,
	'recipient_id', '15550000011', 'biz_opaque_callback_data', opaque));
CREATE FUNCTION pg_temp.ingest(body text, secret text DEFAULT 'main-secret') RETURNS integer
LANGUAGE sql RETURN wam.ingest_webhook(body, 'sha256=' || wam.hmac_sha256(secret, body));
CREATE FUNCTION pg_temp.show() RETURNS TABLE (m text, status text, wamid text, sent boolean, delivered timestamptz,
	read timestamptz, failed boolean, error_code integer, error_detail text)
LANGUAGE sql AS $$
	SELECT 'm' || row_number() OVER (ORDER BY message_id), status, wamid, sent_at IS NOT NULL,
		   delivered_at, read_at, failed_at IS NOT NULL, error_code, error_detail
	FROM wam.outbox ORDER BY message_id
$$;
SET TIME ZONE 'UTC';

-- signatures
\set b1 `echo '{"object":"whatsapp_business_account","entry":[]}'`
SELECT wam.ingest_webhook(:'b1', 'sha256=' || wam.hmac_sha256('main-secret', :'b1')) AS empty_batch;
SELECT wam.ingest_webhook(:'b1', 'sha256=' || wam.hmac_sha256('wrong', :'b1'));
SELECT wam.ingest_webhook(:'b1' || ' ', 'sha256=' || wam.hmac_sha256('main-secret', :'b1'));
SELECT wam.ingest_webhook(:'b1', NULL);
SELECT wam.ingest_webhook(:'b1', '');
SELECT wam.ingest_webhook(NULL, 'sha256=00');
SELECT pg_temp.ingest('{"object":');
SELECT pg_temp.ingest('{"object":"page","entry":[]}');
SELECT pg_temp.ingest('{"object":"whatsapp_business_account","entry":{"not":"an array"}}') AS odd_shapes;

-- the body size limit (wam.webhook_max_body_bytes), checked before the signature
SHOW wam.webhook_max_body_bytes;
SET wam.webhook_max_body_bytes = 100;
SELECT pg_temp.ingest(rpad(:'b1', 99)) AS below_limit, pg_temp.ingest(rpad(:'b1', 100)) AS at_limit;
SELECT pg_temp.ingest(rpad(:'b1', 101)) AS above_limit;
-- even without a valid signature: the size is what is refused
SELECT wam.ingest_webhook(rpad(:'b1', 101), 'sha256=' || repeat('0', 64));
-- bytes, not characters: 100 characters, 101 bytes
SELECT pg_temp.ingest(rpad(:'b1', 99) || 'é') AS multibyte;
\set VERBOSITY sqlstate
SELECT pg_temp.ingest(rpad(:'b1', 101)) AS above_limit;
\set VERBOSITY default
SET wam.webhook_max_body_bytes = '1kB';
SHOW wam.webhook_max_body_bytes;
SELECT pg_temp.ingest(rpad(:'b1', 1024)) AS at_1kb;
SELECT pg_temp.ingest(rpad(:'b1', 1025)) AS above_1kb;
SET wam.webhook_max_body_bytes = 0;
RESET wam.webhook_max_body_bytes;
SHOW wam.webhook_max_body_bytes;
SELECT pg_temp.ingest(rpad(:'b1', 1048576)) AS at_default;
SELECT pg_temp.ingest(rpad(:'b1', 1048577)) AS above_default;

-- statuses: forward only, duplicates, out of order, batches
SELECT pg_temp.ingest(pg_temp.status_body('106540352242922', jsonb_build_array(
	pg_temp.st('wamid.M1', 'read', 1750000200), pg_temp.st('wamid.M1', 'delivered', 1750000100),
	pg_temp.st('wamid.M1', 'read', 1750000200)))) AS read_before_delivered;
SELECT * FROM pg_temp.show();
-- the same body again (Meta redelivers, or a replay): nothing changes, nothing is counted
SELECT xmin AS m1_xmin FROM wam.outbox WHERE message_id = :m1 \gset
SELECT pg_temp.ingest(pg_temp.status_body('106540352242922', jsonb_build_array(
	pg_temp.st('wamid.M1', 'read', 1750000200), pg_temp.st('wamid.M1', 'delivered', 1750000100),
	pg_temp.st('wamid.M1', 'read', 1750000200)))) AS replayed;
-- a single status again (Meta's usual one-status body)
SELECT pg_temp.ingest(pg_temp.status_body('106540352242922', jsonb_build_array(
	pg_temp.st('wamid.M1', 'delivered', 1750000100)))) AS replayed_one;
SELECT pg_temp.ingest(pg_temp.status_body('106540352242922', jsonb_build_array(
	pg_temp.st('wamid.M1', 'read', 1750000200)))) AS replayed_read;
-- and the row was not even rewritten
SELECT xmin = :'m1_xmin' AS m1_not_rewritten FROM wam.outbox WHERE message_id = :m1;
SELECT * FROM pg_temp.show();
SELECT pg_temp.ingest(pg_temp.status_body('106540352242922', jsonb_build_array(
	pg_temp.st('wamid.M1', 'sent', 1750000000), pg_temp.st('wamid.M1', 'failed', 1750000300)))) AS late_sent_and_failed;
SELECT * FROM pg_temp.show();
-- the uncertain row is settled through biz_opaque_callback_data
SELECT pg_temp.ingest(pg_temp.status_body('106540352242922', jsonb_build_array(
	pg_temp.st('wamid.M2', 'sent', 1750000000, 'wam:' || :m2)))) AS settles_uncertain;
-- the opaque id of another sender's message is not trusted
SELECT pg_temp.ingest(pg_temp.status_body('106540352242922', jsonb_build_array(
	pg_temp.st('wamid.M4', 'sent', 1750000000, 'wam:' || :m4)))) AS other_senders_row;
-- a body for sender "other" signed with main's secret changes nothing
SELECT pg_temp.ingest(pg_temp.status_body('200', jsonb_build_array(
	pg_temp.st('wamid.M4', 'sent', 1750000000, 'wam:' || :m4)))) AS wrong_app;
-- failed before delivery: failed with its code
SELECT pg_temp.ingest(pg_temp.status_body('106540352242922', jsonb_build_array(
	pg_temp.st('wamid.M3', 'sent', 1750000000, 'wam:' || :m3),
	pg_temp.st('wamid.M3', 'failed', extract(epoch FROM now())::bigint - 60) || '{"errors":[{"code":131049,"title":"ecosystem","error_data":{"details":"not delivered to maintain healthy ecosystem engagement"}}]}'))) AS failed;
SELECT m, status, wamid, sent, delivered, read, failed, error_code, error_detail FROM pg_temp.show();
-- the failure again: nothing changes
SELECT pg_temp.ingest(pg_temp.status_body('106540352242922', jsonb_build_array(
	pg_temp.st('wamid.M3', 'failed', extract(epoch FROM now())::bigint - 30) || '{"errors":[{"code":131049,"title":"ecosystem","error_data":{"details":"not delivered to maintain healthy ecosystem engagement"}}]}'))) AS failed_again;
-- unknown wamids, unknown statuses and malformed timestamps are skipped
SELECT pg_temp.ingest(pg_temp.status_body('106540352242922', jsonb_build_array(
	pg_temp.st('wamid.NOPE', 'delivered', 1750000000), jsonb_build_object('id', 'wamid.M2', 'status', 'played'),
	jsonb_build_object('id', 'wamid.M2', 'status', 'delivered', 'timestamp', 'soon')))) AS partly_unknown;
SELECT m, status, delivered IS NOT NULL AS delivered FROM pg_temp.show() WHERE m = 'm2';
-- 131049 holds back a new message to that customer for 24 hours
SELECT wam.enqueue_message(13, :'tpl', 'main') AS h \gset
SELECT next_attempt_at > now() + interval '23 hours' AS held_back FROM wam.outbox WHERE message_id = :h;
-- a late "sent" does not undo the failure
SELECT pg_temp.ingest(pg_temp.status_body('106540352242922', jsonb_build_array(
	pg_temp.st('wamid.M3', 'sent', 1750000060)))) AS late_sent;
SELECT m, status, error_code FROM pg_temp.show() WHERE m = 'm3';

-- a batch of 1000 statuses for 1000 messages
INSERT INTO wam.customer (id, phone) SELECT 1000 + g, '1666000' || lpad(g::text, 4, '0') FROM generate_series(1, 1000) g;
UPDATE wam.customer SET consent_at = now(), consent_source = 'test' WHERE id > 1000;
SELECT (wam.enqueue_segment(wam.segment_range(1001, 2001), :'tpl', 'main')).queued;
UPDATE wam.outbox SET status = 'sent', wamid = 'wamid.B' || customer_id WHERE customer_id > 1000;
SELECT pg_temp.ingest(pg_temp.status_body('106540352242922',
	(SELECT jsonb_agg(pg_temp.st('wamid.B' || g, 'delivered', 1750000000 + g)) FROM generate_series(1001, 2000) g))) AS batch_1000;
-- replayed: 0; replayed with one new "read" among them: 1
SELECT pg_temp.ingest(pg_temp.status_body('106540352242922',
	(SELECT jsonb_agg(pg_temp.st('wamid.B' || g, 'delivered', 1750000000 + g)) FROM generate_series(1001, 2000) g))) AS batch_replayed;
SELECT pg_temp.ingest(pg_temp.status_body('106540352242922',
	(SELECT jsonb_agg(pg_temp.st('wamid.B' || g, CASE g WHEN 1500 THEN 'read' ELSE 'delivered' END, 1750000000 + g))
	 FROM generate_series(1001, 2000) g))) AS batch_one_new;
SELECT status, count(*) FROM wam.outbox WHERE customer_id > 1000 GROUP BY 1;

-- inbound messages: events, 24-hour window, replies, opt-out keywords, BSUIDs
CREATE FUNCTION pg_temp.inbound(messages jsonb, contacts jsonb DEFAULT '[]') RETURNS text
LANGUAGE sql RETURN jsonb_build_object('object', 'whatsapp_business_account', 'entry', jsonb_build_array(
	jsonb_build_object('id', '102290129340398', 'changes', jsonb_build_array(jsonb_build_object(
		'field', 'messages', 'value', jsonb_build_object('messaging_product', 'whatsapp',
			'metadata', jsonb_build_object('display_phone_number', '15550783881', 'phone_number_id', '106540352242922'),
			'contacts', contacts, 'messages', messages))))))::text;
SELECT pg_temp.ingest(pg_temp.inbound(jsonb_build_array(
	'{"from":"15550000011","id":"wamid.IN1","timestamp":"1893456000","type":"text","text":{"body":"Is the sale still on?"},"context":{"from":"15550783881","id":"wamid.M1"}}'::jsonb,
	'{"from":"15550000012","id":"wamid.IN2","timestamp":"1893456001","type":"text","text":{"body":"hello"}}'::jsonb,
	'{"from":"19990000000","id":"wamid.IN3","timestamp":"1893456002","type":"text","text":{"body":"who is this"}}'::jsonb),
	'[{"profile":{"name":"Ana"},"wa_id":"15550000011","user_id":"US.111"}]')) AS inbound;
-- the same delivery again: nothing counted twice
SELECT pg_temp.ingest(pg_temp.inbound(jsonb_build_array(
	'{"from":"15550000011","id":"wamid.IN1","timestamp":"1893456000","type":"text","text":{"body":"Is the sale still on?"},"context":{"from":"15550783881","id":"wamid.M1"}}'::jsonb))) AS duplicate;
SELECT wamid, customer_id, from_phone, from_user_id, received_at, kind, body, context_wamid,
	   answered_message = :m1 AS answers_m1, opted_out
FROM wam.inbound_message ORDER BY wamid;
SELECT customer_id, kind, occurred_at, details - 'answers' - 'sender_id' AS details FROM wam.event
WHERE kind IN ('reply', 'inbound_message') ORDER BY event_id;
SELECT id, last_inbound_at FROM wam.customer WHERE id IN (11, 12, 13) ORDER BY id;
SELECT message_id = :m1 AS m1, replies, replied_at FROM wam.outbox WHERE replies > 0;
SELECT * FROM wam.customer_user_id;
-- a message carrying only the business-scoped user id; a STOP in another language
SELECT pg_temp.ingest(pg_temp.inbound(jsonb_build_array(
	'{"from_user_id":"US.111","id":"wamid.IN4","timestamp":"1893456100","type":"text","text":{"body":" Parar! "}}'::jsonb),
	'[{"profile":{"name":"Ana"},"user_id":"US.111"}]')) AS bsuid_stop;
SELECT wamid, customer_id, from_phone, from_user_id, opted_out FROM wam.inbound_message WHERE wamid = 'wamid.IN4';
SELECT id, opted_out_at IS NOT NULL AS opted_out, opt_out_reason FROM wam.customer WHERE id = 11;
SELECT status, count(*) FROM wam.outbox WHERE customer_id = 11 GROUP BY 1 ORDER BY 1;
-- keywords are configurable; a button reply counts too
INSERT INTO wam.opt_out_keyword VALUES ('no more offers', 'en');
SELECT pg_temp.ingest(pg_temp.inbound(jsonb_build_array(
	'{"from":"15550000012","id":"wamid.IN5","timestamp":"1893456200","type":"button","button":{"payload":"STOP_PROMO","text":"No more offers"}}'::jsonb))) AS button_stop;
SELECT id, opted_out_at IS NOT NULL AS opted_out, opt_out_reason FROM wam.customer WHERE id = 12;
SELECT wam.normalize_keyword(' Stop. '), wam.normalize_keyword('ARRÊT'), wam.normalize_keyword(NULL);

-- verification handshake
SELECT wam.webhook_challenge('subscribe', 'x', '1158201444');
SELECT wam.configure_webhook('short');
SELECT wam.configure_webhook(NULL);
SELECT wam.configure_webhook('my-verify-token');
SELECT wam.webhook_challenge('subscribe', 'my-verify-token', '1158201444');
SELECT wam.webhook_challenge('subscribe', 'my-verify-tokeN', '1158201444');
SELECT wam.webhook_challenge('subscribe', NULL, '1158201444');
SELECT wam.webhook_challenge('unsubscribe', 'my-verify-token', '1158201444');
SELECT wam.webhook_challenge('subscribe', 'my-verify-token', '');
SELECT wam.configure_webhook('another-token');
SELECT wam.webhook_challenge('subscribe', 'my-verify-token', '1');

-- delivery report with the R-M6 health flags
SELECT * FROM wam.delivery_report(now() - interval '1 day', now() + interval '1 second');
SELECT sender_name, messages, delivered FROM wam.delivery_report(now() - interval '1 day', now() + interval '1 second', 'other');
SELECT count(*) FROM wam.delivery_report(now() + interval '1 day', now() + interval '2 days');
SELECT * FROM wam.delivery_report(now(), now() - interval '1 second');
SELECT * FROM wam.delivery_report(NULL, now());
SELECT * FROM wam.delivery_report(now(), now(), 'nope');
-- 100 messages: 96 delivered, 50 read, 6 replied, 4 failed
DELETE FROM wam.outbox;
INSERT INTO wam.outbox (sender_id, customer_id, recipient, payload, status, wamid, sent_at, delivered_at, read_at, replies, failed_at, error_code)
SELECT 1, 11, '15550000011', '{}', CASE WHEN g <= 50 THEN 'read' WHEN g <= 96 THEN 'delivered' ELSE 'failed' END,
	   CASE WHEN g <= 96 THEN 'wamid.R' || g END, CASE WHEN g <= 96 THEN now() END,
	   CASE WHEN g <= 96 THEN now() END, CASE WHEN g <= 50 THEN now() END, CASE WHEN g <= 6 THEN 1 ELSE 0 END,
	   CASE WHEN g > 96 THEN now() END, CASE WHEN g > 98 THEN 131026 WHEN g > 96 THEN 131049 END
FROM generate_series(1, 100) g;
SELECT * FROM wam.delivery_report(now() - interval '1 day', now() + interval '1 second');


-- One status per body (how Meta posts them) takes a shorter way for a sent, delivered or
-- read of a known wamid, with the same rules as a body of several: rows F get single-status
-- bodies, their twins G the same statuses each with one for an unknown wamid besides
INSERT INTO wam.customer (id, phone) VALUES (21, '15550000021'), (22, '15550000022');
INSERT INTO wam.outbox (sender_id, customer_id, recipient, payload, status, wamid, sending_at, sent_at, delivered_at,
						read_at, failed_at, error_code, error_detail, cancelled_at, uncertain_at)
SELECT 1, tw.c, tw.t || v.n, '{}', v.status, CASE WHEN v.status <> 'uncertain' THEN tw.t || v.n END,
	   '2030-01-01', CASE WHEN v.status IN ('sent', 'failed', 'read') THEN timestamptz '2030-01-01' END,
	   CASE WHEN v.status = 'read' THEN timestamptz '2030-01-01' END, CASE WHEN v.status = 'read' THEN timestamptz '2030-01-01' END,
	   CASE WHEN v.status = 'failed' THEN timestamptz '2030-01-01' END, CASE WHEN v.status = 'failed' THEN 131026 END,
	   CASE WHEN v.status = 'failed' THEN 'undeliverable' END, CASE WHEN v.status = 'cancelled' THEN timestamptz '2030-01-01' END,
	   CASE WHEN v.status = 'uncertain' THEN timestamptz '2030-01-01' END
FROM (VALUES ('F', 21), ('G', 22)) tw(t, c),
	 (VALUES (1, 'sent'), (2, 'failed'), (3, 'cancelled'), (4, 'uncertain'), (5, 'read'), (6, 'sent')) v(n, status);
CREATE FUNCTION pg_temp.twins(steps jsonb) RETURNS TABLE (step integer, f integer, g integer) LANGUAGE plpgsql AS $$
DECLARE
	x jsonb;
	one jsonb;
BEGIN
	step := 0;
	FOR x IN SELECT * FROM jsonb_array_elements(steps) LOOP
		step := step + 1;
		one := pg_temp.st('F' || (x->>0), x->>1, (x->>2)::bigint,
						  (SELECT 'wam:' || message_id FROM wam.outbox WHERE recipient = 'F' || (x->>0))) || coalesce(x->3, '{}');
		f := pg_temp.ingest(pg_temp.status_body('106540352242922', jsonb_build_array(one)));
		one := pg_temp.st('G' || (x->>0), x->>1, (x->>2)::bigint,
						  (SELECT 'wam:' || message_id FROM wam.outbox WHERE recipient = 'G' || (x->>0))) || coalesce(x->3, '{}');
		g := pg_temp.ingest(pg_temp.status_body('106540352242922',
											  jsonb_build_array(one, pg_temp.st('wamid.NOPE', 'delivered', 1893456000))));
		RETURN NEXT;
	END LOOP;
END $$;
SELECT * FROM pg_temp.twins('[[1, "delivered", 1893456100], [1, "read", 1893456200], [1, "delivered", 1893456050],
	[1, "read", 1893456000], [2, "sent", 1893456100], [2, "delivered", 1893456150], [3, "delivered", 1893456100],
	[4, "sent", 1893456100], [4, "read", 1893456300], [5, "sent", 1893456100], [5, "played", 1893456100],
	[6, "failed", 1893456100, {"errors": [{"code": 131049, "title": "ecosystem"}]}], [6, "sent", 1893456200]]');
SELECT recipient, status, wamid, sent_at, delivered_at, read_at, failed_at, error_code, error_detail
FROM wam.outbox WHERE recipient ~ '^F' ORDER BY recipient;
SELECT count(*) AS twins_differ FROM wam.outbox f JOIN wam.outbox g ON g.recipient = 'G' || substr(f.recipient, 2)
WHERE f.recipient ~ '^F' AND (f.status, substr(f.wamid, 2), f.sent_at, f.delivered_at, f.read_at, f.failed_at,
	f.error_code, f.error_detail) IS DISTINCT FROM (g.status, substr(g.wamid, 2), g.sent_at, g.delivered_at, g.read_at,
	g.failed_at, g.error_code, g.error_detail);
-- the customer's last read, forward only
SELECT id, last_read_at FROM wam.customer WHERE id IN (21, 22) ORDER BY id;
DROP FUNCTION pg_temp.twins(jsonb);
-- two failures of one message in one body: the earliest one's error
INSERT INTO wam.outbox (sender_id, customer_id, recipient, payload, status, wamid, sending_at, sent_at)
VALUES (1, 21, 'H1', '{}', 'sent', 'H1', '2030-01-01', '2030-01-01');
SELECT pg_temp.ingest(pg_temp.status_body('106540352242922', jsonb_build_array(
	pg_temp.st('H1', 'failed', 1893456300) || '{"errors": [{"code": 131026, "title": "later"}]}',
	pg_temp.st('H1', 'failed', 1893456200) || '{"errors": [{"code": 131049, "title": "earlier"}]}',
	pg_temp.st('H1', 'sent', 1893456100)))) AS two_failures;
SELECT status, failed_at, error_code, error_detail FROM wam.outbox WHERE recipient = 'H1';

-- a wam_operator's temporary objects named like anything ingestion uses are never used: no
-- trigger of theirs runs with the definer's rights, no view of theirs supplies secrets.
-- Signed bodies (replayable), then a fresh session whose temporary schema the intruder fills first.
INSERT INTO wam.outbox (sender_id, customer_id, recipient, payload, status, wamid, sending_at, sent_at)
VALUES (1, 13, '15550000013', '{}', 'sent', 'wamid.SEC1', now(), now());
SELECT pg_temp.status_body('106540352242922', jsonb_build_array(pg_temp.st('wamid.SEC1', 'delivered', 1893456300))) AS sec_status,
	   pg_temp.inbound(jsonb_build_array(
		'{"from":"15550000013","id":"wamid.IN6","timestamp":"1893456400","type":"text","text":{"body":"hello"},"context":{"id":"wamid.SEC1"}}'::jsonb),
		'[{"profile":{"name":"Cy"},"wa_id":"15550000013","user_id":"US.333"}]') AS sec_inbound \gset
SELECT 'sha256=' || wam.hmac_sha256('main-secret', :'sec_status') AS sec_status_sig,
	   'sha256=' || wam.hmac_sha256('intruder-secret', :'sec_status') AS sec_intruder_sig,
	   'sha256=' || wam.hmac_sha256('main-secret', :'sec_inbound') AS sec_inbound_sig \gset
CREATE ROLE wam_test_intruder IN ROLE wam_operator;
GRANT CREATE ON SCHEMA public TO wam_test_intruder;
\c
SET TIME ZONE 'UTC';
SET ROLE wam_test_intruder;
CREATE TABLE public.fired (who text, via text);
CREATE FUNCTION pg_temp.escalate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO public.fired VALUES (current_user, TG_TABLE_NAME);
	ALTER ROLE wam_test_intruder SUPERUSER;
	RETURN NULL;
END $$;
CREATE TEMP TABLE wam_webhook_value (sender_id integer, v jsonb);
CREATE TEMP TABLE wam_webhook_inbound (LIKE wam.inbound_message);
CREATE TEMP TABLE outbox (LIKE wam.outbox);
CREATE TEMP TABLE inbound_message (LIKE wam.inbound_message);
CREATE TEMP TABLE customer_user_id (user_id text, customer_id bigint);
CREATE TEMP TABLE customer (id bigint, phone text, last_inbound_at timestamptz, last_read_at timestamptz);
CREATE TEMP TABLE event (customer_id bigint, kind text, occurred_at timestamptz, details jsonb);
SELECT format('CREATE TRIGGER escalate BEFORE INSERT OR UPDATE OR DELETE ON pg_temp.%I FOR EACH ROW EXECUTE FUNCTION pg_temp.escalate()', t)
FROM unnest('{wam_webhook_value,wam_webhook_inbound,outbox,inbound_message,customer_user_id,customer,event}'::text[]) t \gexec
CREATE TEMP VIEW sender_secret AS SELECT 1 AS sender_id, 'intruder-secret'::text AS app_secret;
CREATE TEMP VIEW sender AS SELECT 1 AS sender_id, '106540352242922'::text AS phone_number_id;
CREATE TEMP VIEW opt_out_keyword AS SELECT 'hello'::text AS keyword;
CREATE FUNCTION pg_temp.json_elements(j jsonb) RETURNS SETOF jsonb LANGUAGE sql
	BEGIN ATOMIC INSERT INTO public.fired VALUES (current_user, 'json_elements') RETURNING '{}'::jsonb; END;
CREATE FUNCTION pg_temp.hmac_sha256_matches(body text, signature text, secrets text[]) RETURNS integer LANGUAGE sql
	BEGIN ATOMIC INSERT INTO public.fired VALUES (current_user, 'hmac_sha256_matches') RETURNING 1; END;
CREATE FUNCTION pg_temp.status_rank(status text) RETURNS integer LANGUAGE sql
	BEGIN ATOMIC INSERT INTO public.fired VALUES (current_user, 'status_rank') RETURNING 9; END;
CREATE FUNCTION pg_temp.normalize_keyword(t text) RETURNS text LANGUAGE sql
	BEGIN ATOMIC INSERT INTO public.fired VALUES (current_user, 'normalize_keyword') RETURNING 'hello'; END;
-- the intruder's own secret is refused
SELECT wam.ingest_webhook(:'sec_status', :'sec_intruder_sig') AS intruder_secret;
-- the replayed bodies (a status; contacts and an inbound message) apply as usual
SELECT wam.ingest_webhook(:'sec_status', :'sec_status_sig') AS status;
SELECT wam.ingest_webhook(:'sec_inbound', :'sec_inbound_sig') AS inbound;
SELECT count(*) AS temp_rows FROM (SELECT FROM pg_temp.wam_webhook_value UNION ALL SELECT FROM pg_temp.wam_webhook_inbound
	UNION ALL SELECT FROM pg_temp.outbox UNION ALL SELECT FROM pg_temp.inbound_message
	UNION ALL SELECT FROM pg_temp.customer_user_id UNION ALL SELECT FROM pg_temp.customer UNION ALL SELECT FROM pg_temp.event) x;
RESET ROLE;
SELECT * FROM public.fired;
SELECT rolsuper FROM pg_roles WHERE rolname = 'wam_test_intruder';
SELECT status, delivered_at, replies, replied_at FROM wam.outbox WHERE wamid = 'wamid.SEC1';
SELECT wamid, customer_id, from_user_id, kind, body, answered_message IS NOT NULL AS answers, opted_out
FROM wam.inbound_message WHERE wamid = 'wamid.IN6';
SELECT * FROM wam.customer_user_id WHERE user_id = 'US.333';
SELECT customer_id, kind, details->>'wamid' AS wamid FROM wam.event WHERE details->>'wamid' = 'wamid.IN6';
SELECT id, last_inbound_at, opted_out_at FROM wam.customer WHERE id = 13;
DROP TABLE pg_temp.wam_webhook_value, pg_temp.wam_webhook_inbound, pg_temp.outbox, pg_temp.inbound_message,
	pg_temp.customer_user_id, pg_temp.customer, pg_temp.event;
DROP VIEW pg_temp.sender_secret, pg_temp.sender, pg_temp.opt_out_keyword;
DROP FUNCTION pg_temp.escalate(), pg_temp.json_elements(jsonb), pg_temp.hmac_sha256_matches(text, text, text[]),
	pg_temp.status_rank(text), pg_temp.normalize_keyword(text);
DROP TABLE public.fired;
REVOKE CREATE ON SCHEMA public FROM wam_test_intruder;
DROP ROLE wam_test_intruder;

\c :orig_db
DROP DATABASE wam_webhook_regress;
