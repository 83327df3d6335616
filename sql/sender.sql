-- senders, consent, the outbound queue and the worker's SQL side
-- (in a database of its own: the ids and senders below are fixed)
SELECT current_database() AS orig_db \gset
CREATE DATABASE wam_sender_regress;
\c wam_sender_regress
CREATE EXTENSION pg_wamarketing;
-- (the worker itself is tested end to end by test/t/sender_worker.sh)
SET client_min_messages = notice;
\set VERBOSITY default

-- senders: validation never prints the token
SELECT wam.create_sender('main', '106540352242922', 'EAAsecret-token-1', 'app-secret-1',
                         'https://localhost:9/v23.0/', 600) AS main_id;
SELECT wam.create_sender('', '1', 'EAAsecret-token-2', 's');
SELECT wam.create_sender(NULL, '1', 'EAAsecret-token-2', 's');
SELECT wam.create_sender('b', '+15550783881', 'EAAsecret-token-2', 's');
SELECT wam.create_sender('b', '2', '', 's');
SELECT wam.create_sender('b', '2', 'EAA secret-token-2', 's');
SELECT wam.create_sender('b', '2', NULL, 's');
SELECT wam.create_sender('b', '2', 'EAAsecret-token-2', '');
SELECT wam.create_sender('b', '2', 'EAAsecret-token-2', 's', 'ftp://x');
SELECT wam.create_sender('b', '2', 'EAAsecret-token-2', 's', 'https://localhost', 0);
-- api_base_url: https (http only with wam.sender_allow_http), a host of wam.sender_allowed_hosts
-- (here: graph.facebook.com, localhost, graph.example), never an IP address in any
-- spelling, no user name, password, query or fragment; always 22023
SHOW wam.sender_allowed_hosts;
SELECT wam.create_sender('b', '2', 'EAAsecret-token-2', 's', 'http://localhost:9/v23.0');
SELECT wam.create_sender('b', '2', 'EAAsecret-token-2', 's', 'https://evil.example/v23.0');
SELECT wam.create_sender('b', '2', 'EAAsecret-token-2', 's', 'https://127.0.0.1/v23.0');
CREATE FUNCTION pg_temp.url_check(u text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
	PERFORM wam.check_api_url(u);
	RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
	RETURN SQLSTATE || ' ' || SQLERRM;
END
$$;
SELECT u AS url, pg_temp.url_check(u) AS verdict FROM unnest(ARRAY[
	'https://graph.facebook.com/v23.0', 'HTTPS://Graph.Facebook.COM/v23.0', 'https://localhost:8443/v23.0',
	'https://graph.facebook.com', 'https://graph.facebook.com:443/v23.0/',
	'http://graph.facebook.com/v23.0', 'ftp://graph.facebook.com/', 'graph.facebook.com/v23.0',
	'https://user:pw@graph.facebook.com/v23.0', 'https://graph.facebook.com@evil.example/v23.0',
	'https://graph.facebook.com%40evil.example@localhost/', 'https://graph.facebook.com/v23.0?x=1',
	'https://graph.facebook.com/v23.0#top', 'https://graph.facebook.com?x', 'https://127.0.0.1/v23.0',
	'https://127.0.0.1:8443/v23.0', 'https://[::1]/v23.0', 'https://[::ffff:127.0.0.1]:8443/',
	'https://2130706433/v23.0', 'https://0x7f000001/v23.0', 'https://0177.0.0.1/v23.0', 'https://127.1/',
	'https://0x7f.1/', 'https://1.2.3.4.5/', 'https://example.0x10/', 'https://evil.example/v23.0',
	'https://graph.facebook.com.evil.example/v23.0', 'https://localhost.', 'https://graph.facebook.com:0/',
	'https://graph.facebook.com:65536/', 'https://graph.facebook.com:/', 'https://graph.facebook.com:44x3/',
	'https://', 'https:///v23.0', 'https://graph facebook.com/', 'https://graph.facebook.com\@evil.example/',
	'https://bücher.example/', 'https://xn--bcher-kva.example/', 'https://-x.example/', 'https://a..b/',
	'https://local%68ost/', E'https://localhost/\n', '', NULL]) u;
SELECT wam.check_api_url(repeat('x', 3000));
-- the worker serves wam.worker_max_senders senders (64 by default): the 65th is refused
SHOW wam.worker_max_senders;
SELECT count(wam.create_sender('extra ' || g, (1000 + g)::text, 'EAAsecret-token-x', 's', 'https://localhost/v23.0'))
FROM generate_series(2, 64) g;
SELECT wam.create_sender('one too many', '999', 'EAAsecret-token-x', 's', 'https://localhost/v23.0');
DELETE FROM wam.sender WHERE name LIKE 'extra %';
SELECT wam.create_sender('main', '2', 'EAAsecret-token-2', 's');
SELECT wam.create_sender('b', '106540352242922', 'EAAsecret-token-2', 's');
SELECT sender_id, name, phone_number_id, api_base_url, rate_per_minute, burst, daily_limit, paused
FROM wam.sender;
-- a direct UPDATE is checked too
UPDATE wam.sender SET api_base_url = 'https://evil.example/v23.0' WHERE name = 'main';
UPDATE wam.sender SET api_base_url = 'https://user:pw@localhost:9/v23.0' WHERE name = 'main';
UPDATE wam.sender SET api_base_url = 'https://localhost:9/v23.0' WHERE name = 'main' RETURNING api_base_url;
-- no column of any wam view or of wam.sender holds a secret
SELECT table_name, column_name FROM information_schema.columns
WHERE table_schema = 'wam' AND column_name ~ 'token|secret' ORDER BY 1, 2;
SELECT wam.sender_id(NULL), wam.sender_id('main');
SELECT wam.sender_id('nope');

-- limits: tiers, warm-up, burst
SELECT rate_per_minute, daily_limit, warmup, burst, warmup_started_at IS NOT NULL AS warming
FROM wam.configure_sender('main', daily_limit => 2000, warmup => '{50,100}', burst => 5);
SELECT wam.sender_daily_limit(s) FROM wam.sender s;
SELECT rate_per_minute, daily_limit, warmup, burst FROM wam.configure_sender('main', 900);
SELECT rate_per_minute, daily_limit, warmup, burst FROM wam.configure_sender('main', daily_limit => 0, warmup => '{}');
SELECT wam.configure_sender('main', 0);
-- daily_limit: any positive number of recipients (0: unlimited, stored as NULL; NULL keeps it)
SELECT wam.configure_sender('main', daily_limit => -1);
SELECT daily_limit FROM wam.configure_sender('main', daily_limit => 0);
SELECT daily_limit FROM wam.configure_sender('main', daily_limit => 1);
SELECT daily_limit FROM wam.configure_sender('main', daily_limit => 300);
SELECT daily_limit FROM wam.configure_sender('main');
SELECT daily_limit FROM wam.configure_sender('main', daily_limit => 2147483647);
\set VERBOSITY terse
UPDATE wam.sender SET daily_limit = 0 WHERE name = 'main';
\set VERBOSITY default
UPDATE wam.sender SET daily_limit = 1 WHERE name = 'main' RETURNING daily_limit;
SELECT daily_limit FROM wam.configure_sender('main', daily_limit => 0);
SELECT wam.configure_sender('main', warmup => '{10,NULL}');
SELECT wam.configure_sender('main', warmup => '{{1},{2}}');
SELECT wam.configure_sender('main', burst => 0);
SELECT wam.configure_sender('nope', 10);
SELECT rate_per_minute, daily_limit, warmup, burst FROM wam.configure_sender('main', 600, NULL, NULL, 10);
SELECT wam.sender_daily_limit(s) FROM wam.sender s;

-- customers and consent
INSERT INTO wam.customer (id, phone, name, locale) VALUES
	(1, '15550000001', 'Ana Lima', 'pt_BR'), (2, '15550000002', 'Bo "Q" \ Z', 'en'),
	(3, '15550000003', NULL, 'en'), (4, '15550000004', 'Dee', 'en'), (5, '15550000005', 'Eve', 'en');
SELECT wam.record_consent(1, 'website form') IS NOT NULL AS ok;
SELECT wam.record_consent(2, 'in-store'), wam.record_consent(3, 'in-store'), wam.record_consent(5, 'web') \gset
SELECT wam.record_consent(NULL, 'x');
SELECT wam.record_consent(1, ' ');
SELECT wam.record_consent(99, 'x');
SELECT id, consent_source, consent_at IS NOT NULL AS consented FROM wam.customer ORDER BY id;
SELECT customer_id, kind, details FROM wam.event ORDER BY event_id;

-- payloads
SELECT wam.check_payload('{"type":"template","template":{"name":"t","language":{"code":"en"}}}');
SELECT wam.check_payload('{"type":"text","text":{"body":"hi"}}');
SELECT wam.check_payload(NULL);
SELECT wam.check_payload('[1]');
SELECT wam.check_payload('{"text":{"body":"hi"}}');
SELECT wam.check_payload('{"type":"fax","fax":{}}');
SELECT wam.check_payload('{"type":"text"}');
SELECT wam.check_payload('{"type":"text","text":{"body":""}}');
SELECT wam.check_payload(jsonb_build_object('type', 'text', 'text', jsonb_build_object('body', repeat('x', 4097))));
SELECT wam.check_payload('{"type":"template","template":{"name":"t"}}');
SELECT wam.check_payload('{"type":"text","text":{"body":"hi"},"to":"+1555"}');
SELECT wam.payload_placeholders('{"a":"{name} and {first_name}","b":["{name}","{Bad}","{x_1}"]}');
SELECT wam.render_payload('{"a":"Hi {name}!"}', '{name}', '{"Bo \"Q\" \\ Z"}');
SELECT wam.render_payload('{"a":"Hi {name}!"}', '{name}', '{NULL}');
-- render_for_customer: fields of the customer, else vars; NULL when a value is missing
SELECT wam.render_customer_payload('{"a":"{name}|{first_name}|{phone}|{locale}|{customer_id}|{amount}","b":[1,"{first_name}!",{"c":"{amount}"}]}',
							   '{"amount": "$5"}', 7, '15550000007', '  Ana "Bo" \ Lee  ', 'pt-BR');
SELECT wam.render_customer_payload('{"a":"Hi {name}"}', NULL, 7, '15550000007', NULL, 'en');
SELECT wam.render_customer_payload('{"a":"Hi {name}"}', '{"name": "there"}', 7, '15550000007', '   ', 'en');
SELECT wam.render_customer_payload('{"a":"Hi {first_name}"}', '{"first_name": null}', 7, '15550000007', '', 'en');
SELECT wam.render_customer_payload('{"a":"{n} {b} {o} {s}"}', '{"n": 1.50, "b": true, "o": {"x": [1]}, "s": "ünï"}', 7, '1', 'X', 'en');
SELECT wam.render_customer_payload('{"a":"{x}"}', '[1]', 7, '1', 'X', 'en');
SELECT wam.render_customer_payload('{"a":"{name}"}', '{"name": "{phone}"}', 7, '15550000007', NULL, 'en') AS not_refilled;
SELECT wam.render_customer_payload('{"a":"{Name} {{name}} {name"}', NULL, 7, '1', 'Zoë', NULL) AS braces;
SELECT wam.render_customer_payload('{"a":"{locale}"}', NULL, 7, '1', 'Zoë', NULL) AS no_locale;
SELECT wam.render_customer_payload('{"a":"no placeholders","n":[1,2]}', NULL, NULL, NULL, NULL, NULL);
SELECT wam.render_customer_payload(NULL, '{}', 7, '1', 'X', 'en');
-- per-row vars in one statement (a campaign's per-customer variables): each row its own
-- values, whatever the rows before had; the template changing from row to row
SELECT i, wam.render_customer_payload('{"a":"{first_name}: {product} {amount}","b":["{product}"]}', v, i, '1555000000' || i, 'Ana B', 'en') AS payload
FROM (VALUES (1, '{"product": "tea", "amount": 2.50}'::jsonb), (2, '{"product": "cup"}'), (3, '{"product": "tea", "amount": 2.50}'),
			 (4, NULL), (5, '{"product": true, "amount": {"x": 1}}'), (6, '{"product": "a\"b", "amount": "1"}'), (7, '{"amount": 3}')) t(i, v);
SELECT i, wam.render_customer_payload(CASE WHEN i % 2 = 0 THEN '{"a":"{name}"}'::jsonb ELSE '{"b":"{product}"}' END,
									  CASE WHEN i < 3 THEN '{"product": "p"}'::jsonb ELSE '{"product": "q"}' END, i, '1', 'N' || i, 'en') AS payload
FROM generate_series(1, 4) i;
-- a placeholder in a key goes through the JSON text (keys are re-sorted)
SELECT wam.render_customer_payload('{"{name}":"Hi {name}","b":1}', NULL, 7, '1', 'Bo "Q"', 'en') AS key_placeholder;
-- different templates and vars in one statement (the cache follows them)
SELECT t, v, wam.render_customer_payload(t, v, id, '1555', 'Ann Lee', 'en')
FROM (VALUES ('{"a":"{first_name}"}'::jsonb, NULL::jsonb, 1), ('{"a":"{name} {x}"}', '{"x": "1"}', 2),
			 ('{"a":"{name} {x}"}', '{"x": "2"}', 3), ('{"a":"{customer_id}"}', NULL, 4)) v(t, v, id);

-- enqueue: refusals with reasons
\set tpl '{"type":"template","template":{"name":"spring_sale","language":{"code":"en"},"components":[{"type":"body","parameters":[{"type":"text","text":"{first_name}"},{"type":"text","text":"{amount}"}]}]}}'
SELECT wam.enqueue_message(4, :'tpl');
SELECT wam.enqueue_message(99, :'tpl');
SELECT wam.enqueue_message(NULL, :'tpl');
SELECT wam.enqueue_message(1, :'tpl');
SELECT wam.enqueue_message(1, :'tpl', vars => '[1]');
SELECT wam.enqueue_message(1, :'tpl', not_before => NULL);
SELECT wam.enqueue_message(1, :'tpl', priority => 101);
SELECT wam.enqueue_message(1, :'tpl', sender => 'nope');
SELECT wam.enqueue_message(3, :'tpl', vars => '{"amount": "$5"}');
SELECT wam.enqueue_message(1, '{"type":"text","text":{"body":"Hi {name}"}}');
SET TIME ZONE 'UTC';
UPDATE wam.customer SET last_inbound_at = '2020-01-01 12:00+00' WHERE id = 2;
SELECT wam.enqueue_message(2, '{"type":"text","text":{"body":"Hi {name}"}}');
-- accepted
SELECT wam.enqueue_message(1, :'tpl', vars => '{"amount": "$5"}', campaign => 'spring') AS m1 \gset
UPDATE wam.customer SET last_inbound_at = now() - interval '1 hour' WHERE id = 2;
SELECT wam.enqueue_message(2, '{"type":"text","text":{"body":"Hi {name}"}}', priority => 5) AS m2 \gset
SELECT message_id = :m1 AS first, customer_id, recipient, payload, campaign, priority, status, attempts,
	   expires_at IS NULL AS no_expiry
FROM wam.outbox ORDER BY message_id;
-- free-form messages expire when the window closes
SELECT expires_at = (SELECT last_inbound_at + interval '24 hours' FROM wam.customer WHERE id = 2) AS expires_with_window
FROM wam.outbox WHERE message_id = :m2;

-- enqueue_segment: counts per reason
SELECT * FROM wam.enqueue_segment('{1,2,3,4,5,99}', :'tpl', vars => '{"amount": "$5"}', campaign => 'spring');
SELECT * FROM wam.enqueue_segment('{1,2,3,4,5,99}', :'tpl', campaign => 'spring');
SELECT * FROM wam.enqueue_segment('{1,2,3,4,5}', '{"type":"text","text":{"body":"Hi {name}"}}');
SELECT * FROM wam.enqueue_segment('{}', :'tpl');
SELECT * FROM wam.enqueue_segment(NULL, :'tpl');
SELECT * FROM wam.enqueue_segment('{1}', :'tpl', not_before => NULL);
SELECT * FROM wam.enqueue_segment('{1}', :'tpl', priority => -101);
SELECT * FROM wam.enqueue_segment('{1}', :'tpl', vars => '[1]');
SELECT status, count(*) FROM wam.outbox GROUP BY 1 ORDER BY 1;
SELECT customer_id, payload->'template'->'components'->0->'parameters' AS params FROM wam.outbox
WHERE campaign = 'spring' ORDER BY message_id;

-- cancel
SELECT wam.cancel_message(:m2), wam.cancel_message(:m2);
SELECT wam.cancel_message(999999);
SELECT wam.cancel_message(NULL::bigint);
SELECT wam.cancel_campaign('spring');
SELECT wam.cancel_campaign('spring', 'main');
SELECT wam.cancel_campaign(NULL::text);
SELECT status, count(*), bool_and(cancelled_at IS NOT NULL) AS stamped FROM wam.outbox GROUP BY 1 ORDER BY 1;

-- opt-out cancels the waiting messages and blocks new ones
SELECT wam.enqueue_message(5, :'tpl', vars => '{"amount": "$1"}') AS m5 \gset
SELECT wam.record_opt_out(5, 'asked by phone');
SELECT wam.record_opt_out(5, NULL);
SELECT wam.record_opt_out(99, 'x');
SELECT status, error_detail FROM wam.outbox WHERE message_id = :m5;
SELECT wam.enqueue_message(5, :'tpl', vars => '{"amount": "$1"}');
-- consent again clears the opt-out
SELECT wam.record_consent(5, 'web form, second time') IS NOT NULL AS ok;
SELECT opted_out_at IS NULL AS cleared FROM wam.customer WHERE id = 5;

-- the worker's side: claim
TRUNCATE wam.outbox;
SELECT wam.enqueue_message(1, :'tpl', vars => '{"amount": "$5"}') AS a1,
	   wam.enqueue_message(1, :'tpl', vars => '{"amount": "$6"}') AS a2,
	   wam.enqueue_message(2, :'tpl', vars => '{"amount": "$7"}', priority => 9) AS b1,
	   wam.enqueue_message(3, :'tpl', vars => '{"amount": "$8", "first_name": "friend"}', not_before => now() + interval '1 hour') AS c1,
	   wam.enqueue_message(5, :'tpl', vars => '{"amount": "$9"}', expires_at => now() - interval '1 second') AS e1 \gset
SELECT wam_internal.next_due(1) <= now() AS due_now;
-- b1 first (priority), then a1; a2 waits for the 6 s pair limit; c1 not yet due; e1 expired
SELECT message_id = :b1 AS is_b1, message_id = :a1 AS is_a1, body::jsonb - 'template' AS envelope
FROM wam_internal.claim_batch(1, 10);
SELECT message_id = :a2 AS a2, message_id = :c1 AS c1, message_id = :e1 AS e1, status, attempts,
	   sending_at IS NOT NULL AS sending_stamped, expired_at IS NOT NULL AS expired_stamped
FROM wam.outbox ORDER BY message_id;
SELECT count(*) AS nothing_more FROM wam_internal.claim_batch(1, 10);
-- a claimed row is past cancelling (and wam.cancel does not lock it)
SELECT wam.cancel_message(:b1) AS cancelled_while_sending, (SELECT status FROM wam.outbox WHERE message_id = :b1);
SELECT count(*) FROM wam_internal.claim_batch(1, 0);
SELECT count(*) FROM wam_internal.claim_batch(42, 10);

-- results: a response with a message id makes it sent
SELECT * FROM wam_internal.record_results(ARRAY[:b1, :a1]::bigint[], '{http,http}', '{200,200}',
	ARRAY['{"messaging_product":"whatsapp","contacts":[{"input":"+15550000002","wa_id":"15550000002"}],"messages":[{"id":"wamid.B1"}]}',
		  '{"messages":[]}'], '{NULL,NULL}');
SELECT message_id = :b1 AS b1, status, wamid, error_code, error_detail, sent_at IS NOT NULL AS sent_stamped,
	   uncertain_at IS NOT NULL AS uncertain_stamped
FROM wam.outbox WHERE message_id IN (:b1, :a1) ORDER BY 1 DESC;

-- the daily tier (here the first warm-up day: 2 recipients) holds back new recipients
DELETE FROM wam.outbox;
SELECT daily_limit, warmup FROM wam.configure_sender('main', daily_limit => 250, warmup => '{2}');
SELECT count(wam.enqueue_message(id, :'tpl', vars => '{"amount": "$1", "first_name": "x"}')) FROM wam.customer
WHERE id IN (1, 2, 3, 5);
SELECT count(*) AS claimed_under_tier FROM wam_internal.claim_batch(1, 10);
SELECT status, count(*) FROM wam.outbox GROUP BY 1 ORDER BY 1;
SELECT daily_limit, warmup FROM wam.configure_sender('main', daily_limit => 0, warmup => '{}');
SELECT count(*) AS claimed_without_tier FROM wam_internal.claim_batch(1, 10);

-- every error class, on fresh rows
CREATE FUNCTION pg_temp.try(code_or_http text, body text, outcome text DEFAULT 'http', detail text DEFAULT NULL)
RETURNS TABLE (status text, attempts integer, pair_deferrals integer, error_code integer, error_detail text,
			   retry_in_s double precision, throttled integer, paused text)
LANGUAGE plpgsql AS $$
DECLARE
	id bigint;
	sig record;
BEGIN
	UPDATE wam.sender SET paused = false, paused_reason = NULL;
	DELETE FROM wam.outbox;
	INSERT INTO wam.outbox (sender_id, customer_id, recipient, payload, status, attempts, sending_at)
	VALUES (1, 4, '15550000004', '{"type":"text","text":{"body":"x"}}', 'sending', 1, now())
	RETURNING message_id INTO id;
	SELECT * INTO sig FROM wam_internal.record_results(ARRAY[id], ARRAY[outcome], ARRAY[code_or_http::integer], ARRAY[body], ARRAY[detail]);
	RETURN QUERY SELECT o.status, o.attempts, o.pair_deferrals, o.error_code, o.error_detail,
		extract(epoch FROM o.next_attempt_at - clock_timestamp())::double precision, sig.throttled, sig.paused_reason
	FROM wam.outbox o WHERE o.message_id = id;
END
$$;
\set err '{"error":{"message":"(#%s) title","type":"OAuthException","code":%s,"error_data":{"messaging_product":"whatsapp","details":"%s"}}}'
SELECT 130429 AS code, status, attempts, error_code, error_detail, retry_in_s BETWEEN 0.9 AND 2 AS backoff_1_2s, throttled FROM pg_temp.try('429', format(:'err', 130429, 130429, 'throughput'));
SELECT 4 AS code, status, attempts, error_code, error_detail, retry_in_s BETWEEN 0.9 AND 2 AS backoff_1_2s, throttled FROM pg_temp.try('400', format(:'err', 4, 4, 'app rate'));
SELECT 131056 AS code, status, attempts, pair_deferrals, error_code, retry_in_s BETWEEN 0.9 AND 1 AS in_1s FROM pg_temp.try('429', format(:'err', 131056, 131056, 'pair'));
SELECT 131000 AS code, status, attempts, error_code, error_detail, retry_in_s BETWEEN 0.9 AND 3 AS backoff_1_3s
FROM pg_temp.try('500', format(:'err', 131000, 131000, 'something went wrong'));
SELECT 'html 503' AS code, status, attempts, error_code, error_detail, throttled FROM pg_temp.try('503', '<html>busy</html>');
SELECT 'http 429' AS code, status, throttled FROM pg_temp.try('429', 'slow down');
SELECT 'http 404' AS code, status, error_detail FROM pg_temp.try('404', 'no such page');
SELECT 131026 AS code, status, attempts, error_code, error_detail, throttled, paused FROM pg_temp.try('400', format(:'err', 131026, 131026, 'undeliverable'));
SELECT 131049 AS code, status, error_code FROM pg_temp.try('400', format(:'err', 131049, 131049, 'ecosystem'));
-- a message naming the token is redacted
SELECT 190 AS code, status, attempts, error_code, error_detail, retry_in_s < 0.1 AS at_once, paused FROM pg_temp.try('401', format(:'err', 190, 190, 'token EAAsecret-token-1 expired'));
SELECT paused, paused_reason, paused_at IS NOT NULL AS stamped FROM wam.sender;
SELECT 368 AS code, status, attempts, paused FROM pg_temp.try('403', format(:'err', 368, 368, 'blocked'));
SELECT 'http 401' AS code, status, paused FROM pg_temp.try('401', '');
SELECT 'not sent' AS code, status, attempts, error_code, error_detail, retry_in_s BETWEEN 0.9 AND 3 AS backoff_1_3s FROM pg_temp.try('0', NULL, 'not_sent', 'request not sent: Could not connect to server');
-- a failure no retry can cure (unreadable CA file, bad URL): the sender pauses, the message waits
SELECT 'not sendable' AS code, status, attempts, error_code, error_detail, paused FROM pg_temp.try('0', NULL, 'not_sendable', 'request not sent, and retrying cannot help: Problem with the SSL CA cert (path? access rights?)');
SELECT 'timeout' AS code, status, attempts, error_detail FROM pg_temp.try('0', NULL, 'uncertain', 'no answer after the request was sent: Timeout was reached');
SELECT 'bad json 200' AS code, status, error_detail FROM pg_temp.try('200', '{"messages":[{"id":');
-- retryable errors fail once the attempts are used up
SET wam.sender_max_attempts = 1;
SELECT 'last attempt' AS code, status, attempts, error_code FROM pg_temp.try('500', format(:'err', 131000, 131000, 'x'));
RESET wam.sender_max_attempts;
SELECT code, wam.error_action(code) FROM unnest('{0,190,3,10,200,299,300,4,80007,130429,613,131056,1,2,131000,131016,131057,133004,131048,368,131031,133010,100,131026,131047,131049,131050,132000}'::int[]) code;
SELECT wam.error_action(NULL);
UPDATE wam.sender SET paused = false, paused_reason = NULL, paused_at = NULL;

-- a throttled message is due again after 1-2 s: its own attempt does not hold it for the
-- 6 s pair limit, another message to the same recipient still waits
DELETE FROM wam.outbox;
SELECT wam.enqueue_message(1, :'tpl', vars => '{"amount": "$1", "first_name": "x"}') AS t1,
	   wam.enqueue_message(1, :'tpl', vars => '{"amount": "$2", "first_name": "x"}') AS t2 \gset
SELECT count(*) AS first_claim, bool_and(message_id = :t1) AS is_t1 FROM wam_internal.claim_batch(1, 10);
SELECT throttled FROM wam_internal.record_results(ARRAY[:t1]::bigint[], '{http}', '{429}',
	ARRAY[format(:'err', 130429, 130429, 'throughput')], '{NULL}');
UPDATE wam.outbox SET next_attempt_at = now() WHERE message_id = :t1;
SELECT count(*) AS claimed_again, bool_and(message_id = :t1) AS is_t1 FROM wam_internal.claim_batch(1, 10);
SELECT message_id = :t1 AS t1, status, attempts FROM wam.outbox ORDER BY message_id;
SELECT count(*) AS t2_still_waits FROM wam_internal.claim_batch(1, 10);
DELETE FROM wam.outbox;

-- pause and resume
SELECT wam.pause_sender('main', 'maintenance');
SELECT count(*) AS claimed_while_paused FROM wam_internal.claim_batch(1, 10);
SELECT wam.pause_sender('main', '');
SELECT wam.resume_sender('main'), wam.resume_sender('main');
SELECT wam.resume_sender(NULL);
SELECT wam.resume_sender('nope');

-- start-up recovery: rows left in sending become uncertain, never resent
DELETE FROM wam.outbox;
INSERT INTO wam.outbox (sender_id, customer_id, recipient, payload, status, attempts, sending_at)
VALUES (1, 4, '15550000004', '{"type":"text","text":{"body":"x"}}', 'sending', 1, now()) RETURNING message_id AS u1 \gset
SELECT wam_internal.worker_recover();
SELECT status, error_detail FROM wam.outbox;
SELECT count(*) AS not_claimed FROM wam_internal.claim_batch(1, 10);
SELECT wam.requeue_message(:u1), wam.requeue_message(:u1);
SELECT wam.requeue_message(NULL);
SELECT status FROM wam.outbox;

-- the worker is not running for this database
SELECT wam.worker_pid();
SELECT sender, state, current_rate_per_minute, configured_rate_per_minute, capped_rate_per_minute, in_flight, sent_last_minute,
	   queue_depth, uncertain, last_error, paused_reason
FROM wam.worker_status;
SELECT count(*) FROM wam_internal.worker_sender_state();

-- roles: readers see the queue, never the secrets
CREATE ROLE wam_test_reader IN ROLE wam_reader;
CREATE ROLE wam_test_operator IN ROLE wam_operator;
CREATE ROLE wam_test_admin IN ROLE wam_admin;
SELECT count(*) AS outbox_rows FROM wam.outbox \gset
SET ROLE wam_test_reader;
-- the reader sees every row (a count taken as the owner above; no row-level filter)
SELECT count(*) AS reads_outbox, count(*) = :outbox_rows AS all_rows FROM wam.outbox;
SELECT count(*) AS senders FROM wam.sender;
SELECT * FROM wam.sender_secret;
SELECT count(*) FROM wam.worker_status;
SELECT wam.enqueue_message(1, :'tpl', vars => '{"amount": "$5"}');
SELECT wam.ingest_webhook('{}', 'sha256=00');
SET ROLE wam_test_operator;
SELECT wam.enqueue_message(1, :'tpl', vars => '{"amount": "$5"}') > 0 AS operator_enqueues;
SELECT * FROM wam.sender_secret;
SELECT wam.create_sender('x', '3', 'EAAsecret-token-3', 's');
SELECT count(*) FROM wam_internal.claim_batch(1, 1);
SELECT * FROM wam_internal.record_results('{}', '{}', '{}', '{}', '{}');
SELECT wam_internal.worker_recover();
INSERT INTO wam.outbox (sender_id, customer_id, recipient, payload) VALUES (1, 1, '1', '{}');
SET ROLE wam_test_admin;
SELECT count(*) AS admin_reads_secrets FROM wam.sender_secret;
SELECT wam.resume_sender('main');
RESET ROLE;
DROP ROLE wam_test_reader, wam_test_operator, wam_test_admin;

\c :orig_db
DROP DATABASE wam_sender_regress;
