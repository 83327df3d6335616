-- behaviour-triggered offers (R-G4): rules on events queue a message with the
-- customer's code through the rule's campaign (consent, opt-out, the contact
-- policy, windows); the unless-delay boundary, idempotence, refusals with their
-- reasons, an expired offer, the scheduler job, privileges (own database)
SELECT current_database() AS orig_db \gset
CREATE DATABASE wam_offer_trigger_regress;
\c wam_offer_trigger_regress
CREATE EXTENSION pg_wamarketing;
SET client_min_messages = warning;
SET TIME ZONE 'UTC';
\set SHOW_CONTEXT never
CREATE ROLE ot_reader IN ROLE wam_reader;
CREATE ROLE ot_operator IN ROLE wam_operator;
CREATE ROLE ot_admin IN ROLE wam_admin;

SELECT wam.create_sender('main', '106540352242922', 'EAAtoken-main', 'main-secret', 'https://localhost:9') AS s1 \gset
-- 1..5 and 8 consented, 6 never asked, 7 opted out
INSERT INTO wam.customer (id, phone, name, consent_at, consent_source)
SELECT g, (15550000000 + g)::text, 'Customer ' || g, CASE WHEN g <> 6 THEN now() - interval '1 year' END,
	   CASE WHEN g <> 6 THEN 'shop' END
FROM generate_series(1, 8) g;
UPDATE wam.customer SET opted_out_at = now(), opt_out_reason = 'keyword' WHERE id = 7;
SET ROLE ot_admin;
SELECT wam.create_offer('ten-a', audience => 'all', discount_percent => 10) IS NOT NULL AS ten_a;
SELECT wam.create_offer('free-ship', audience => 'all', code => 'FREESHIP', discount_amount => 60) IS NOT NULL AS free_ship;
RESET ROLE;
\set tpl_a '{"type":"template","template":{"name":"product_code","language":{"code":"en"},"components":[{"type":"body","parameters":[{"type":"text","text":"{name}"},{"type":"text","text":"{product}"},{"type":"text","text":"{discount} off with {code}"}]}]}}'
\set tpl_b '{"type":"template","template":{"name":"free_shipping","language":{"code":"en"},"components":[{"type":"body","parameters":[{"type":"text","text":"{product}"},{"type":"text","text":"{code} until {valid_until}"}]}]}}'

-- only administrators create rules; a rule is data, never SQL
\set VERBOSITY sqlstate
SET ROLE ot_operator;
SELECT wam.create_offer_trigger('question-a', 'question', 'ten-a', :'tpl_a');
INSERT INTO wam.offer_trigger (name, event_kind, offer_id, campaign_id) VALUES ('x', 'question', 1, 1);
UPDATE wam.offer_trigger SET event_kind = 'order';
SELECT wam.enable_offer_trigger('question-a', false);
SELECT * FROM wam.run_offer_triggers(now() + interval '1 hour');
SET ROLE ot_reader;
SELECT wam.run_offer_triggers();
SET ROLE ot_admin;
SELECT wam.create_offer_trigger('question-a', 'question''; DROP TABLE wam.customer; --', 'ten-a', :'tpl_a');
SELECT wam.create_offer_trigger('question-a', 'question', 'ten-a', :'tpl_a', unless_kind => 'order); DELETE FROM wam.offer; --', unless_within => '1 hour');
SELECT wam.create_offer_trigger('Question A', 'question', 'ten-a', :'tpl_a');
SELECT wam.create_offer_trigger(NULL, 'question', 'ten-a', :'tpl_a');
SELECT wam.create_offer_trigger('question-a', 'question', 'no-such-offer', :'tpl_a');
SELECT wam.create_offer_trigger('question-a', 'question', 'ten-a', '{"type":"template","template":{"name":"x","language":{"code":"en"}}}');
SELECT wam.create_offer_trigger('question-a', 'question', 'ten-a', '{"type":"text","text":{"body":"{code}"}}');
SELECT wam.create_offer_trigger('question-a', 'question', 'ten-a', :'tpl_a', event_match => '["product"]');
SELECT wam.create_offer_trigger('question-a', 'question', 'ten-a', :'tpl_a', event_match => '{"product": {"sql": "SELECT 1"}}');
SELECT wam.create_offer_trigger('question-a', 'question', 'ten-a', :'tpl_a', event_match => '{}');
SELECT wam.create_offer_trigger('question-a', 'question', 'ten-a', :'tpl_a', unless_kind => 'order');
SELECT wam.create_offer_trigger('question-a', 'question', 'ten-a', :'tpl_a', unless_kind => 'order', unless_within => '59 seconds');
SELECT wam.create_offer_trigger('question-a', 'question', 'ten-a', :'tpl_a', once_per => '59 minutes');
SELECT wam.create_offer_trigger('question-a', 'question', 'ten-a', :'tpl_a', look_back => '31 days');
SELECT wam.create_offer_trigger('question-a', 'question', 'ten-a', :'tpl_a', senders => ARRAY['nosuch']);
SELECT wam.create_offer_trigger('question-a', 'question', 'ten-a', :'tpl_a', category => 'promotion');
\set VERBOSITY default
SELECT wam.create_offer_trigger('question-a', 'question', 'ten-a', :'tpl_a', event_match => '{"product": "A"}',
								once_per => '7 days') AS rule_a \gset
SELECT wam.create_offer_trigger('question-a', 'question', 'ten-a', :'tpl_a');
SELECT wam.create_offer_trigger('click-no-order', 'link_click', 'free-ship', :'tpl_b',
								unless_kind => 'order', unless_within => '2 hours') AS rule_b \gset
RESET ROLE;
SELECT name, event_kind, event_match, unless_kind, unless_within, once_per, look_back, enabled FROM wam.offer_trigger ORDER BY 1;
SELECT campaign, state, category FROM wam.campaign_status ORDER BY 1;

-- (a) a question about product A: a personal 10 % code; product B does not match;
-- no consent and opted out are refused with their reason, and get no code
SELECT now() AS t0 \gset
INSERT INTO wam.event (customer_id, kind, occurred_at, details) VALUES
	(1, 'question', :'t0'::timestamptz - interval '10 minutes', '{"product": "A", "text": "is A waterproof?"}'),
	(2, 'question', :'t0'::timestamptz - interval '10 minutes', '{"product": "B"}'),
	(6, 'question', :'t0'::timestamptz - interval '10 minutes', '{"product": "A"}'),
	(7, 'question', :'t0'::timestamptz - interval '10 minutes', '{"product": "A"}');
SET ROLE ot_operator;
SELECT * FROM wam.run_offer_triggers(:'t0') ORDER BY 1;
RESET ROLE;
SELECT t.name, f.customer_id, f.outcome, f.reason, f.message_id IS NOT NULL AS has_message
FROM wam.offer_trigger_fire f JOIN wam.offer_trigger t USING (trigger_id) ORDER BY 1, 2;
-- the code in the message is the customer's code of the offer (generated with its check symbol)
SELECT o.customer_id, o.campaign, o.category, o.status, o.contact_class, o.expires_at = f.valid_until AS expires_with_offer,
	   replace(o.payload::text, k.code, '<code>') AS payload, (wam_internal.offer_code_read(k.code)).problem
FROM wam.outbox o JOIN wam.offer_code k ON k.customer_id = o.customer_id
	 JOIN wam.offer f ON f.offer_id = k.offer_id
ORDER BY 1;
SELECT customer_id, source FROM wam.offer_code ORDER BY 1;
-- idempotent: run again, nothing new
SELECT * FROM wam.run_offer_triggers(:'t0') ORDER BY 1;
SELECT count(*) AS messages FROM wam.outbox;
-- a second question within the period: left out
INSERT INTO wam.event (customer_id, kind, occurred_at, details) VALUES
	(1, 'question', :'t0'::timestamptz - interval '5 minutes', '{"product": "A"}');
SELECT * FROM wam.run_offer_triggers(:'t0') ORDER BY 1;
SELECT f.customer_id, f.outcome, f.reason ~ '^message [0-9]+ at ' AS names_message
FROM wam.offer_trigger_fire f WHERE f.trigger_id = :rule_a AND f.outcome = 'once per period';
-- the message goes out through the worker's claim, the code redeems on an order
SELECT count(*) AS claimed FROM wam_internal.claim_batch(:s1, 10);
SELECT code AS code1 FROM wam.offer_code WHERE customer_id = 1 \gset
SET ROLE ot_operator;
SELECT wam.record_order(1, 200, code => :'code1') IS NOT NULL AS ordered;
SELECT status, reason FROM wam.check_code(:'code1', 1, 200);
RESET ROLE;

-- (b) a product link clicked and no order within 2 hours (inclusive): orders at
-- 1 h 59 min and at 2 h 00 min leave the click out, at 2 h 01 min they do not
INSERT INTO wam.event (customer_id, kind, occurred_at, details) VALUES
	(3, 'link_click', :'t0'::timestamptz - interval '3 hours', '{"product": "sunscreen"}'),
	(4, 'link_click', :'t0'::timestamptz - interval '3 hours', '{"product": "sunscreen"}'),
	(5, 'link_click', :'t0'::timestamptz - interval '3 hours', '{"product": "sunscreen"}'),
	(2, 'link_click', :'t0'::timestamptz - interval '3 hours', '{"url": "https://shop.example/"}'),
	-- not yet 2 hours ago: waits
	(8, 'link_click', :'t0'::timestamptz - interval '1 hour 59 minutes', '{"product": "hat"}');
INSERT INTO wam.event (customer_id, kind, occurred_at) VALUES
	(3, 'order', :'t0'::timestamptz - interval '3 hours' + interval '1 hour 59 minutes'),
	(4, 'order', :'t0'::timestamptz - interval '3 hours' + interval '2 hours'),
	(5, 'order', :'t0'::timestamptz - interval '3 hours' + interval '2 hours 1 minute');
SELECT * FROM wam.run_offer_triggers(:'t0') ORDER BY 1;
SELECT f.customer_id, f.outcome, f.reason, f.message_id IS NOT NULL AS has_message
FROM wam.offer_trigger_fire f WHERE f.trigger_id = :rule_b ORDER BY 1;
SELECT o.customer_id, replace((o.payload #> '{template,components,0,parameters}')::text,
								to_char(f.valid_until, 'YYYY-MM-DD'), '<valid until>') AS parameters
FROM wam.outbox o, wam.offer f WHERE o.campaign = 'offer trigger: click-no-order' AND f.name = 'free-ship' ORDER BY 1;
-- customer 8's click is not 2 hours old: not decided yet
SELECT count(*) AS decided FROM wam.offer_trigger_fire WHERE customer_id = 8;
-- capped by the contact policy (a marketing message an hour ago): customer 8,
-- active (an order 10 days ago), may get the next one 36 hours after it, so the
-- message waits for the policy, with the reason; customer 2, inactive, only in
-- 14 days, after the offer's end: refused, no code is wasted on it
INSERT INTO wam.outbox (sender_id, customer_id, recipient, payload, status, category, sending_at, sent_at)
SELECT :s1, g, '1555000000' || g, '{"type":"template","template":{"name":"x","language":{"code":"en"}}}', 'sent',
	   'marketing', :'t0'::timestamptz - interval '1 hour', :'t0'::timestamptz - interval '1 hour'
FROM unnest(ARRAY[2, 8]) g;
INSERT INTO wam.event (customer_id, kind, occurred_at, details) VALUES
	(8, 'order', :'t0'::timestamptz - interval '10 days', NULL),
	(8, 'link_click', :'t0'::timestamptz - interval '2 hours 5 minutes', '{"product": "cap"}'),
	(2, 'link_click', :'t0'::timestamptz - interval '2 hours 5 minutes', '{"product": "cap"}');
SELECT * FROM wam.run_offer_triggers(:'t0') ORDER BY 1;
SELECT f.customer_id, f.outcome, f.reason = 'deferred to ' || (:'t0'::timestamptz - interval '1 hour' + interval '36 hours') AS deferred_to_policy,
	   o.status, o.next_attempt_at = :'t0'::timestamptz - interval '1 hour' + interval '36 hours' AS waits
FROM wam.offer_trigger_fire f JOIN wam.outbox o USING (message_id) WHERE f.customer_id = 8;
SELECT f.customer_id, f.outcome, f.reason ~ '^deferred past the offer''s end \(to ' AS past_offer_end
FROM wam.offer_trigger_fire f WHERE f.customer_id = 2 AND f.trigger_id = :rule_b AND f.event_at > :'t0'::timestamptz - interval '150 minutes';
-- the worker does not claim it before then
SELECT count(*) AS claimed FROM wam_internal.claim_batch(:s1, 10) c JOIN wam.outbox o USING (message_id) WHERE o.customer_id = 8;

-- an offer that expired after its rule was made: refused, no code issued
SET ROLE ot_admin;
SELECT wam.create_offer('soon', audience => 'all', discount_percent => 5,
					   valid_from => now() - interval '1 hour', valid_until => now() + interval '1 hour') IS NOT NULL AS soon;
SELECT wam.create_offer_trigger('review', 'review', 'soon', :'tpl_a') AS rule_c \gset
SELECT wam.change_offer('soon', valid_until => now() - interval '1 minute');
\set VERBOSITY sqlstate
SELECT wam.create_offer_trigger('review-2', 'review', 'soon', :'tpl_a');
\set VERBOSITY default
RESET ROLE;
INSERT INTO wam.event (customer_id, kind, occurred_at, details) VALUES
	(2, 'review', :'t0'::timestamptz - interval '1 minute', '{"product": "C"}');
SELECT * FROM wam.run_offer_triggers(:'t0') ORDER BY 1;
SELECT f.customer_id, f.outcome, f.reason FROM wam.offer_trigger_fire f WHERE f.trigger_id = :rule_c;
SELECT count(*) AS codes_of_soon FROM wam.offer_code k JOIN wam.offer f USING (offer_id) WHERE f.name = 'soon';

-- a paused rule decides nothing; resumed, it decides the events of the pause
SET ROLE ot_admin;
SELECT wam.enable_offer_trigger('question-a', false);
RESET ROLE;
INSERT INTO wam.event (customer_id, kind, occurred_at, details) VALUES
	(3, 'question', :'t0'::timestamptz - interval '1 minute', '{"product": "A"}');
SELECT * FROM wam.run_offer_triggers(:'t0') ORDER BY 1;
SET ROLE ot_admin;
SELECT wam.enable_offer_trigger('question-a', true);
\set VERBOSITY sqlstate
SELECT wam.enable_offer_trigger('no-such-rule', true);
\set VERBOSITY default
RESET ROLE;
SELECT * FROM wam.run_offer_triggers(:'t0') ORDER BY 1;

-- the "offer triggers" job runs it every minute; the rules' campaigns stay running
UPDATE wam.job SET next_run_at = now() - interval '1 minute' WHERE job = 'offer triggers';
INSERT INTO wam.event (customer_id, kind, occurred_at, details) VALUES
	(4, 'question', :'t0'::timestamptz - interval '1 minute', '{"product": "A"}');
SELECT wam_internal.run_job('offer triggers', now());
SELECT ok, result FROM wam.job_run WHERE job = 'offer triggers';
SELECT f.customer_id, f.outcome, f.reason FROM wam.offer_trigger_fire f WHERE f.trigger_id = :rule_a AND f.customer_id = 4;
SELECT count(*) AS finished FROM wam.advance_campaigns() WHERE campaign LIKE 'offer trigger: %';
SELECT campaign, state, messages FROM wam.campaign_status ORDER BY 1;
-- a cancelled rule's campaign queues nothing more
SELECT wam.cancel_campaign('offer trigger: question-a');
INSERT INTO wam.event (customer_id, kind, occurred_at, details) VALUES
	(5, 'question', :'t0'::timestamptz - interval '1 minute', '{"product": "A"}');
SELECT * FROM wam.run_offer_triggers(:'t0') ORDER BY 1;

\c :orig_db
DROP DATABASE wam_offer_trigger_regress;
