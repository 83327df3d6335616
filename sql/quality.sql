-- account-level webhooks: phone_number_quality_update, account_update,
-- business_capability_update, message_template_status_update and
-- message_template_quality_update slow or pause numbers, set the portfolio's messaging
-- limit and hold templates, automatically, and record why (wam.account_event)
-- (in a database of its own: the ids and senders below are fixed)
SELECT current_database() AS orig_db \gset
CREATE DATABASE wam_quality_regress;
\c wam_quality_regress
CREATE EXTENSION pg_wamarketing;
SET client_min_messages = notice;

-- the limits webhooks give
SELECT t, wam_internal.tier_limit(t) FROM unnest(ARRAY['TIER_50', 'TIER_250', 'TIER_1K', 'TIER_2K', 'TIER_10K',
	'TIER_100K', 'TIER_UNLIMITED', 'TIER_NOT_SET', '2000', '-1', '0', '-2', '2147483648', 'TIER_', 'TIER_0K',
	'tier_2k', '', NULL]) t;

-- main and second: two numbers of one account (sharing the app secret); other: another account
SELECT wam.create_sender('main', '106540352242922', 'EAAtoken-main', 'main-secret', 'https://localhost:9', 600) AS s1,
	   wam.create_sender('second', '106540352242923', 'EAAtoken-2', 'main-secret', 'https://localhost:9', 1) AS s2,
	   wam.create_sender('other', '200', 'EAAtoken-other', 'other-secret', 'https://localhost:9') AS s3 \gset
SELECT count(*) FROM (VALUES
	(wam.configure_sender_account('main', waba_id => '102290129340398', display_phone => '+1 555 078 3881')),
	(wam.configure_sender_account('second', waba_id => '102290129340398', display_phone => '15550783882')),
	(wam.configure_sender_account('other', waba_id => '999', display_phone => '15550000200'))) x;
SELECT wam.create_portfolio('shop') AS shop \gset
SELECT name, portfolio_id FROM wam.configure_sender_account('main', 'shop');
SELECT name, portfolio_id FROM wam.configure_sender_account('second', 'shop');

-- a change: {"object", "entry": [{"id": <account>, "time": <now + dt>, "changes": [{"field", "value"}]}]}
CREATE FUNCTION pg_temp.change(field text, value jsonb, dt integer DEFAULT 0, waba text DEFAULT '102290129340398')
RETURNS text LANGUAGE sql
RETURN jsonb_build_object('object', 'whatsapp_business_account', 'entry', jsonb_build_array(jsonb_build_object(
	'id', waba, 'time', extract(epoch FROM now())::bigint + dt,
	'changes', jsonb_build_array(jsonb_build_object('field', field, 'value', value)))))::text;
CREATE FUNCTION pg_temp.ingest(body text, secret text DEFAULT 'main-secret') RETURNS integer
LANGUAGE sql RETURN wam.ingest_webhook(body, 'sha256=' || wam.hmac_sha256(secret, body));
CREATE FUNCTION pg_temp.events() RETURNS TABLE (field text, event text, senders text, effect text, action text)
LANGUAGE sql AS $$
	SELECT e.field, e.event, (SELECT string_agg(s.name, ',' ORDER BY s.name) FROM wam.sender s WHERE s.sender_id = ANY (e.sender_ids)),
		   e.effect, e.action
	FROM wam.account_event e ORDER BY e.event_id
$$;
CREATE FUNCTION pg_temp.senders() RETURNS TABLE (name text, paused boolean, paused_reason text, rate integer,
	worker_rate integer, slowed_reason text)
LANGUAGE sql AS $$
	SELECT s.name, s.paused, s.paused_reason, s.rate_per_minute, w.rate_per_minute, s.slowed_reason
	FROM wam.sender s JOIN wam_internal.worker_senders() w USING (sender_id) ORDER BY s.sender_id
$$;

-- quality: FLAGGED halves the number's rate (its display phone names it); the other
-- numbers of the account keep theirs
SELECT pg_temp.ingest(pg_temp.change('phone_number_quality_update',
	'{"display_phone_number": "15550783881", "event": "FLAGGED", "current_limit": "TIER_2K"}', -100)) AS applied;
SELECT * FROM pg_temp.senders();
SELECT sender, paused_reason, slowed_reason FROM wam.worker_status ORDER BY sender;
-- a redelivery changes nothing; an UNFLAGGED older than the FLAGGED applied neither
SELECT pg_temp.ingest(pg_temp.change('phone_number_quality_update',
	'{"display_phone_number": "15550783881", "event": "FLAGGED"}', -100)) AS applied;
SELECT pg_temp.ingest(pg_temp.change('phone_number_quality_update',
	'{"display_phone_number": "15550783881", "event": "UNFLAGGED"}', -101)) AS applied;
SELECT name, worker_rate, slowed_reason IS NOT NULL AS slowed FROM pg_temp.senders() WHERE name = 'main';
-- the later UNFLAGGED restores it
SELECT pg_temp.ingest(pg_temp.change('phone_number_quality_update',
	'{"display_phone_number": "15550783881", "event": "UNFLAGGED"}', -99)) AS applied;
SELECT name, worker_rate, slowed_reason IS NOT NULL AS slowed FROM pg_temp.senders() WHERE name = 'main';
-- the half of a rate of 1 is 1
SELECT pg_temp.ingest(pg_temp.change('phone_number_quality_update',
	'{"display_phone_number": "15550783882", "event": "FLAGGED"}', -98)) AS applied;
SELECT name, rate, worker_rate FROM pg_temp.senders() WHERE name = 'second';
-- a number no sender has, a body signed with another account's secret: ignored
SELECT pg_temp.ingest(pg_temp.change('phone_number_quality_update',
	'{"display_phone_number": "15559999999", "event": "FLAGGED"}')) AS unknown_number;
SELECT pg_temp.ingest(pg_temp.change('phone_number_quality_update',
	'{"display_phone_number": "15550783881", "event": "FLAGGED"}'), 'other-secret') AS other_secret;
SELECT pg_temp.ingest(pg_temp.change('account_update', '{"event": "DISABLED_UPDATE",
	"ban_info": {"waba_ban_state": "DISABLE"}}', 0, '12345')) AS unknown_account;
SELECT * FROM pg_temp.events();

-- the portfolio's limit follows Meta's: max_daily_conversations_per_business (the tier),
-- or an older UPGRADE/DOWNGRADE's current_limit; a THROUGHPUT_UPGRADE's current_limit is
-- the throughput, not a limit
TRUNCATE wam.account_event;
SELECT pg_temp.ingest(pg_temp.change('phone_number_quality_update',
	'{"display_phone_number": "15550783881", "event": "THROUGHPUT_UPGRADE", "current_limit": "TIER_UNLIMITED"}', 1)) AS applied;
SELECT daily_limit FROM wam.portfolio WHERE name = 'shop';
SELECT pg_temp.ingest(pg_temp.change('phone_number_quality_update',
	'{"display_phone_number": "15550783881", "event": "DOWNGRADE", "old_limit": "TIER_2K", "current_limit": "TIER_250"}', 2)) AS applied;
SELECT daily_limit, limit_source FROM wam.portfolio WHERE name = 'shop';
SELECT pg_temp.ingest(pg_temp.change('phone_number_quality_update',
	'{"display_phone_number": "15550783881", "event": "UPGRADE", "max_daily_conversations_per_business": "TIER_2K"}', 3)) AS applied;
SELECT daily_limit FROM wam.portfolio WHERE name = 'shop';
SELECT pg_temp.ingest(pg_temp.change('business_capability_update',
	'{"max_daily_conversations_per_business": 10000, "max_phone_numbers_per_waba": 25}', 4)) AS applied;
SELECT daily_limit, limit_source FROM wam.portfolio WHERE name = 'shop';
SELECT pg_temp.ingest(pg_temp.change('business_capability_update', '{"max_daily_conversations_per_business": "TIER_100K"}', 5)) AS applied;
SELECT daily_limit FROM wam.portfolio WHERE name = 'shop';
SELECT pg_temp.ingest(pg_temp.change('business_capability_update', '{"max_daily_conversation_per_phone": -1}', 6)) AS applied;
SELECT daily_limit FROM wam.portfolio WHERE name = 'shop';
SELECT pg_temp.ingest(pg_temp.change('business_capability_update', '{"max_phone_numbers_per_business": 2}', 7)) AS applied;
-- an administrator's limit set after a change wins over it
SELECT name, daily_limit FROM wam.configure_portfolio('shop', 500);
SELECT pg_temp.ingest(pg_temp.change('business_capability_update', '{"max_daily_conversations_per_business": "TIER_2K"}', -60)) AS applied;
SELECT daily_limit FROM wam.portfolio WHERE name = 'shop';
SELECT pg_temp.ingest(pg_temp.change('business_capability_update', '{"max_daily_conversations_per_business": "TIER_2K"}', 60)) AS applied;
SELECT daily_limit FROM wam.portfolio WHERE name = 'shop';
SELECT * FROM pg_temp.events();

-- the account: disabled, every number of it pauses; reinstated, they resume (an
-- administrator's pause stays)
TRUNCATE wam.account_event;
SELECT pg_temp.ingest(pg_temp.change('account_update', '{"event": "DISABLED_UPDATE",
	"ban_info": {"waba_ban_state": "DISABLE", "waba_ban_date": "December 7, 2026"}}', 10)) AS applied;
SELECT name, paused, paused_reason FROM pg_temp.senders();
SELECT wam.pause_sender('second', 'checking the templates');
SELECT pg_temp.ingest(pg_temp.change('account_update', '{"event": "DISABLED_UPDATE",
	"ban_info": {"waba_ban_state": "REINSTATE", "waba_ban_date": "December 7, 2026"}}', 11)) AS applied;
SELECT name, paused, paused_reason FROM pg_temp.senders();
SELECT wam.resume_sender('second');
-- restricted business-initiated messaging pauses; an empty restriction list resumes;
-- other restrictions, violations, a disabling scheduled and unknown events are recorded
SELECT pg_temp.ingest(pg_temp.change('account_update', '{"event": "ACCOUNT_RESTRICTION",
	"restriction_info": [{"restriction_type": "RESTRICTED_BIZ_INITIATED_MESSAGING", "expiration": 1765000000}]}', 12)) AS applied;
SELECT name, paused, paused_reason FROM pg_temp.senders();
SELECT pg_temp.ingest(pg_temp.change('account_update', '{"event": "ACCOUNT_RESTRICTION", "restriction_info": []}', 13)) AS applied;
SELECT pg_temp.ingest(pg_temp.change('account_update', '{"event": "ACCOUNT_RESTRICTION",
	"restriction_info": [{"restriction_type": "RESTRICTED_ADD_PHONE_NUMBER_ACTION"}]}', 14)) AS applied;
SELECT pg_temp.ingest(pg_temp.change('account_update', '{"event": "ACCOUNT_VIOLATION", "violation_info": {"violation_type": "ADULT"}}', 15)) AS applied;
SELECT pg_temp.ingest(pg_temp.change('account_update', '{"event": "DISABLED_UPDATE",
	"ban_info": {"waba_ban_state": "SCHEDULE_FOR_DISABLE"}}', 16)) AS applied;
SELECT pg_temp.ingest(pg_temp.change('account_update', '{"event": "SOMETHING_NEW"}', 17)) AS applied;
-- an older DISABLE than the resume applied: nothing
SELECT pg_temp.ingest(pg_temp.change('account_update', '{"event": "DISABLED_UPDATE",
	"ban_info": {"waba_ban_state": "DISABLE"}}', 12)) AS applied;
SELECT name, paused FROM pg_temp.senders();
-- deleted: paused
SELECT pg_temp.ingest(pg_temp.change('account_update', '{"event": "ACCOUNT_DELETED"}', 18)) AS applied;
SELECT name, paused, paused_reason FROM pg_temp.senders();
SELECT * FROM pg_temp.events();
SELECT wam.resume_sender('main'), wam.resume_sender('second');

-- templates: PAUSED holds its messages (of that name and language, for that account's
-- numbers); APPROVED releases them
TRUNCATE wam.account_event;
INSERT INTO wam.customer (id, phone, consent_at, consent_source)
SELECT g, (15550000000 + g)::text, now(), 'test' FROM generate_series(1, 6) g;
\set sale '{"type":"template","template":{"name":"sale","language":{"code":"en_US"}}}'
\set sale_en '{"type":"template","template":{"name":"sale","language":{"code":"en"}}}'
\set other '{"type":"template","template":{"name":"welcome","language":{"code":"en_US"}}}'
SELECT wam.enqueue_message(1, :'sale', 'main') AS m1, wam.enqueue_message(2, :'sale_en', 'main') AS m2,
	   wam.enqueue_message(3, :'other', 'main') AS m3, wam.enqueue_message(4, :'sale', 'other') AS m4,
	   wam.enqueue_message(5, :'sale', 'main', expires_at => now() + interval '1 hour') AS m5 \gset
SELECT pg_temp.ingest(pg_temp.change('message_template_status_update', '{"event": "PAUSED", "message_template_id": 1689556908129832,
	"message_template_name": "sale", "message_template_language": "en-US", "reason": "NONE",
	"other_info": {"title": "FIRST_PAUSE", "description": "Your template has been paused."}}', 20)) AS applied;
SELECT waba_id, name, language, status, blocked, quality, reason FROM wam.template_status;
CREATE FUNCTION pg_temp.claimed(sender text) RETURNS text
LANGUAGE sql RETURN (SELECT coalesce(string_agg('m' || (o.customer_id), ' ' ORDER BY o.customer_id), '-')
					 FROM wam_internal.claim_batch(wam.sender_id(sender), 10) b JOIN wam.outbox o USING (message_id));
SELECT pg_temp.claimed('main') AS main_claims, pg_temp.claimed('other') AS other_claims;
SELECT 'm' || customer_id AS m, status, next_attempt_at = 'infinity' AS parked, error_detail
FROM wam.outbox ORDER BY message_id;
-- a message of the template queued while it is paused waits too
SELECT wam.enqueue_message(6, :'sale', 'main') AS m6 \gset
SELECT pg_temp.claimed('main') AS main_claims;
-- an older APPROVED than the PAUSED changes nothing; a later one releases the messages
SELECT pg_temp.ingest(pg_temp.change('message_template_status_update', '{"event": "APPROVED",
	"message_template_name": "sale", "message_template_language": "en_US", "reason": null}', 19)) AS applied;
SELECT status, blocked FROM wam.template_status;
-- m5's time runs out meanwhile: released, it expires
UPDATE wam.outbox SET expires_at = now() - interval '1 second' WHERE message_id = :m5;
SELECT pg_temp.ingest(pg_temp.change('message_template_status_update', '{"event": "APPROVED",
	"message_template_name": "sale", "message_template_language": "en_US", "reason": "NONE"}', 21)) AS applied;
SELECT status, blocked FROM wam.template_status;
SELECT 'm' || customer_id AS m, status, next_attempt_at <= now() AS due, error_detail FROM wam.outbox
WHERE status IN ('queued', 'expired') ORDER BY message_id;
SELECT pg_temp.claimed('main') AS main_claims;
SELECT 'm' || customer_id AS m, status FROM wam.outbox WHERE message_id = :m5;
-- DISABLED, REJECTED, PENDING_DELETION, DELETED and ARCHIVED hold too; FLAGGED, IN_APPEAL and
-- others are recorded and keep the hold as it is
CREATE FUNCTION pg_temp.welcome(ev text, dt integer) RETURNS TABLE (applied integer, blocked boolean, status text)
LANGUAGE plpgsql AS $$
BEGIN
	applied := pg_temp.ingest(pg_temp.change('message_template_status_update', jsonb_build_object('event', ev,
		'message_template_name', 'welcome', 'message_template_language', 'en_US', 'reason', 'SCAM'), dt));
	SELECT t.blocked, t.status INTO blocked, status FROM wam.template_status t WHERE t.name = 'welcome';
	RETURN NEXT;
END
$$;
SELECT ev, w.* FROM unnest(ARRAY['FLAGGED', 'DISABLED', 'IN_APPEAL', 'REINSTATED', 'REJECTED', 'LOCKED', 'APPROVED',
								 'PENDING_DELETION', 'APPROVED', 'DELETED', 'APPROVED', 'ARCHIVED', 'APPROVED'])
	WITH ORDINALITY u(ev, k), LATERAL pg_temp.welcome(ev, 30 + k::integer) w;
-- quality of a template: recorded
SELECT pg_temp.ingest(pg_temp.change('message_template_quality_update', '{"previous_quality_score": "GREEN",
	"new_quality_score": "RED", "message_template_id": 1, "message_template_name": "sale",
	"message_template_language": "en_US"}', 50)) AS applied;
SELECT name, language, status, blocked, quality FROM wam.template_status ORDER BY name;
-- malformed changes: recorded as ignored, or (no object) not applied
SELECT pg_temp.ingest(pg_temp.change('message_template_status_update', '{"event": "PAUSED", "message_template_language": "en"}', 60)) AS no_name;
SELECT pg_temp.ingest(pg_temp.change('message_template_status_update', '{"event": "PAUSED", "message_template_name": "sale"}', 61)) AS no_language;
SELECT pg_temp.ingest(pg_temp.change('message_template_status_update', '{"message_template_name": "sale", "message_template_language": "en"}', 62)) AS no_event;
SELECT pg_temp.ingest(pg_temp.change('message_template_status_update', '{"event": 7, "message_template_name": "sale", "message_template_language": "en"}', 63)) AS event_not_text;
SELECT pg_temp.ingest(pg_temp.change('message_template_status_update', '"PAUSED"', 64)) AS value_not_object;
SELECT pg_temp.ingest(pg_temp.change('phone_number_quality_update', '{"event": "FLAGGED"}', 65)) AS no_phone;
SELECT pg_temp.ingest(pg_temp.change('unknown_field', '{"event": "PAUSED"}', 66)) AS unknown_field;
SELECT pg_temp.ingest('{"object":"whatsapp_business_account","entry":[{"id":"102290129340398","changes":[{"field":"account_update","value":{"event":"ACCOUNT_DELETED"}}]}]}', 'other-secret') AS wrong_secret_other_account;
SELECT field, event, senders, effect, action FROM pg_temp.events() WHERE field LIKE 'message_template%' OR action LIKE 'ignored%';
-- several changes in one body, statuses beside them
SELECT wam.enqueue_message(1, :'other', 'main') AS m7 \gset
UPDATE wam.outbox SET status = 'sent', wamid = 'wamid.M7', sending_at = now(), sent_at = now() WHERE message_id = :m7;
SELECT pg_temp.ingest(format('{"object":"whatsapp_business_account","entry":['
	'{"id":"102290129340398","time":%s,"changes":['
	'{"field":"phone_number_quality_update","value":{"display_phone_number":"15550783881","event":"FLAGGED"}},'
	'{"field":"business_capability_update","value":{"max_daily_conversations_per_business":"TIER_10K"}}]},'
	'{"id":"102290129340398","changes":[{"field":"messages","value":{"metadata":{"phone_number_id":"106540352242922"},'
	'"statuses":[{"id":"wamid.M7","status":"delivered","timestamp":"%s","recipient_id":"15550000001"}]}}]}]}',
	extract(epoch FROM now())::bigint + 70, extract(epoch FROM now())::bigint)) AS applied;
SELECT name, slowed_reason IS NOT NULL AS slowed FROM pg_temp.senders();
SELECT daily_limit FROM wam.portfolio WHERE name = 'shop';
SELECT status FROM wam.outbox WHERE message_id = :m7;

\c :orig_db
DROP DATABASE wam_quality_regress;
