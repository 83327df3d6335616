-- campaigns: settings and their checks, preview = launch, states and history,
-- per-customer variables, the contact policy (at launch and at claim), send
-- windows, budget, privileges (in a database of its own: the queue is counted)
SELECT current_database() AS orig_db \gset
CREATE DATABASE wam_campaign_regress;
\c wam_campaign_regress
CREATE EXTENSION pg_wamarketing;
SET client_min_messages = warning;
SET TIME ZONE 'UTC';
\set SHOW_CONTEXT never
CREATE ROLE camp_reader IN ROLE wam_reader;
CREATE ROLE camp_operator IN ROLE wam_operator;
CREATE ROLE camp_admin IN ROLE wam_admin;

SELECT wam.create_sender('main', '106540352242922', 'EAAtoken-main', 'main-secret', 'https://localhost:9') AS s1 \gset
SELECT wam.create_sender('second', '106540352242923', 'EAAtoken-second', 'second-secret', 'https://localhost:9') AS s2 \gset
SELECT (wam.configure_sender('main', rate_per_minute => 600)).rate_per_minute;
SELECT (wam.configure_sender('second', rate_per_minute => 300)).rate_per_minute;
-- 1..30: 1..24 consented, 25..29 never asked, 30 opted out; 1..4 in Taipei,
-- 5..8 in New York, the rest without a zone (+1 555 numbers are fictional: no
-- country, so the default zone, UTC)
INSERT INTO wam.customer (id, phone, name, consent_at, consent_source, time_zone)
SELECT g, (15550000000 + g)::text, 'Customer ' || g, CASE WHEN g <= 24 OR g = 30 THEN now() - interval '1 year' END,
	   CASE WHEN g <= 24 OR g = 30 THEN 'shop' END,
	   CASE WHEN g <= 4 THEN 'Asia/Taipei' WHEN g <= 8 THEN 'America/New_York' END
FROM generate_series(1, 30) g;
UPDATE wam.customer SET opted_out_at = now(), opt_out_reason = 'keyword' WHERE id = 30;
SELECT wam.create_tag('vip', 'interest') IS NOT NULL AS tagged;
SELECT wam.attach_tag('vip', wam.segment_range(1, 12)) IS NOT NULL AS attached;
SELECT wam.set_attribute(g, 'city', 'Taipei') FROM generate_series(1, 3) g;
\set tpl '{"type":"template","template":{"name":"spring_sale","language":{"code":"en"},"components":[{"type":"body","parameters":[{"type":"text","text":"{name}"},{"type":"text","text":"{product}"}]}]}}'

-- creation and its checks (every bad input is an error with its SQLSTATE)
\set VERBOSITY sqlstate
SET ROLE camp_operator;
SELECT wam.create_campaign(NULL, 'vip', :'tpl');
SELECT wam.create_campaign('x', NULL, :'tpl');
SELECT wam.create_campaign('x', 'vip AND (', :'tpl');
SELECT wam.create_campaign('x', 'nosuchtag', :'tpl');
SELECT wam.create_campaign('x', 'vip', '{"type":"text","text":{"body":"hi"}}');
SELECT wam.create_campaign('x', 'vip', :'tpl', ARRAY['nosuch']);
SELECT wam.create_campaign('x', 'vip', :'tpl', ARRAY['main', NULL]);
SELECT wam.create_campaign('x', 'vip', :'tpl', vars => '[1]');
SELECT wam.create_campaign('x', 'vip', :'tpl', category => 'promotion');
SELECT wam.create_campaign('x', 'vip', :'tpl', cost_per_message => -0.01);
SELECT wam.create_campaign('x', 'vip', :'tpl', budget => 0);
SELECT wam.create_campaign('x', 'vip', :'tpl', when_capped => 'drop');
SELECT wam.create_campaign('x', 'vip', :'tpl', starts_at => '2030-01-02', ends_at => '2030-01-02');
SELECT wam.create_campaign('x', 'vip', :'tpl', send_windows => 'tue 10:00-10:00');
SELECT wam.create_campaign(' x', 'vip', :'tpl');
\set VERBOSITY default
SELECT wam.create_campaign('spring', 'vip', :'tpl', ARRAY['main', 'second'], vars => '{"product": "sunscreen"}',
						   cost_per_message => 0.05) AS spring \gset
SELECT wam.create_campaign('spring', 'vip', :'tpl', ARRAY['main']);
-- per-customer variables from any query, while the campaign is a draft
INSERT INTO wam.campaign_variable (campaign_id, customer_id, vars)
SELECT :spring, g, jsonb_build_object('product', 'hat no. ' || g) FROM generate_series(1, 2) g;
INSERT INTO wam.campaign_variable VALUES (:spring, 3, '[1]');
RESET ROLE;

-- configure: only drafts, only known settings, and every change recorded
SET ROLE camp_operator;
SELECT name, audience, senders, cost_per_message, budget FROM wam.configure_campaign('spring', '{"budget": 10, "audience": "vip OR all"}');
SELECT name, audience, budget FROM wam.configure_campaign('spring', '{"budget": null, "audience": "vip"}');
SELECT wam.configure_campaign('spring', '{"colour": "red"}');
SELECT wam.configure_campaign('spring', '{"template": null}');
SELECT wam.configure_campaign('spring', '[]');
SELECT wam.configure_campaign('nosuch', '{}');
RESET ROLE;

-- the preview and the launch agree: 11 VIPs (1 to 11), all consenting
SET ROLE camp_reader;
CREATE TEMP TABLE preview AS SELECT * FROM wam.preview_campaign('spring');
SELECT audience_size, opted_out, no_consent, missing_variable, content_rule, cost_cap, contact_policy, no_send_window,
	   over_budget, recipients, deferred, expected_cost, expected_duration, warnings FROM preview;
SELECT jsonb_array_length(funnel) AS funnel_steps FROM preview;
SELECT wam.launch_campaign('spring');
RESET ROLE;
SET ROLE camp_operator;
CREATE TEMP TABLE launched AS SELECT * FROM wam.launch_campaign('spring');
RESET ROLE;
(SELECT audience_size, opted_out, no_consent, missing_variable, content_rule, cost_cap, contact_policy, no_send_window,
		over_budget, recipients, deferred, expected_cost, expected_duration FROM preview
 EXCEPT SELECT * FROM launched)
UNION ALL (SELECT * FROM launched EXCEPT SELECT audience_size, opted_out, no_consent, missing_variable, content_rule,
		   cost_cap, contact_policy, no_send_window, over_budget, recipients, deferred, expected_cost, expected_duration FROM preview);
SELECT state, wam.segment_cardinality(audience_snapshot) AS snapshot FROM wam.campaign WHERE name = 'spring';
-- one message each, spread over the senders by their rates (600 : 300), with
-- the customer's own values
SELECT count(*) FILTER (WHERE sender_id = :s1) AS main, count(*) FILTER (WHERE sender_id = :s2) AS second,
	   count(*) FILTER (WHERE category = 'marketing' AND contact_class = 'inactive' AND campaign = 'spring') AS classified
FROM wam.outbox WHERE campaign_id = :spring;
SELECT customer_id, payload->'template'->'components'->0->'parameters' AS parameters
FROM wam.outbox WHERE campaign_id = :spring AND customer_id <= 4 ORDER BY 1;
-- after the launch nothing changes it
SET ROLE camp_operator;
SELECT wam.launch_campaign('spring');
SELECT wam.configure_campaign('spring', '{"budget": 1}');
INSERT INTO wam.campaign_variable VALUES (:spring, 4, '{"product": "late"}');
DELETE FROM wam.campaign_variable WHERE campaign_id = :spring;
RESET ROLE;

-- placeholders: customer attributes ({city}), and customers without a value
SELECT wam.create_campaign('cities', 'vip', '{"type":"template","template":{"name":"city_sale","language":{"code":"en"},"components":[{"type":"body","parameters":[{"type":"text","text":"{city}"}]}]}}',
						   ARRAY['main'], category => 'utility') IS NOT NULL AS created;
SELECT audience_size, missing_variable, recipients FROM wam.preview_campaign('cities');
SELECT (wam.configure_campaign('cities', '{"vars": {"city": "your city"}}')).vars;
SELECT audience_size, missing_variable, recipients FROM wam.launch_campaign('cities');
SELECT customer_id, payload->'template'->'components'->0->'parameters'->0->>'text' AS city
FROM wam.outbox WHERE campaign = 'cities' AND customer_id IN (1, 4) ORDER BY 1;

-- content rules: links only to the business's registered domains (and their
-- subdomains); the preview warns, the launch refuses; a customer's own value
-- with a foreign link removes that customer
\set linktpl '{"type":"template","template":{"name":"sale","language":{"code":"en"},"components":[{"type":"button","sub_type":"url","index":"0","parameters":[{"type":"text","text":"{offer_url}"}]}]}}'
SELECT wam.create_campaign('links', 'vip', :'linktpl', ARRAY['main'], category => 'utility',
						   vars => '{"offer_url": "https://Shop.Example.com/sale?id=1"}') AS links \gset
SELECT recipients, content_rule, warnings FROM wam.preview_campaign('links');
SET ROLE camp_operator;
SELECT wam.launch_campaign('links');
INSERT INTO wam.link_domain (domain) VALUES ('example.com');
SET ROLE camp_admin;
\set VERBOSITY terse
INSERT INTO wam.link_domain (domain) VALUES ('Example.com');
INSERT INTO wam.link_domain (domain) VALUES ('example');
\set VERBOSITY default
INSERT INTO wam.link_domain (domain) VALUES ('example.com');
RESET ROLE;
SELECT wam_internal.unregistered_link('{"a": "https://example.com.evil.io/x"}') AS look_alike,
	   wam_internal.unregistered_link('{"a": "http://user@evil.io/@example.com"}') AS user_part,
	   wam_internal.unregistered_link('{"a": "https://deals.example.com:8443/x https://example.com/y"}') AS registered;
INSERT INTO wam.campaign_variable VALUES (:links, 2, '{"offer_url": "https://elsewhere.io/"}');
SELECT recipients, content_rule, warnings FROM wam.preview_campaign('links');
SELECT recipients, content_rule FROM wam.launch_campaign('links');

-- the cost cap on pushes (wam.rfm_config): up to push_cost for everyone, up to 3
-- times that above a lifetime value of 8,000 (no customer here has one)
SELECT wam.configure_rfm('push_cost', '0.10') IS NOT NULL AS configured;
SELECT wam.create_campaign('costly', 'vip', :'tpl', ARRAY['main'], vars => '{"product": "x"}', cost_per_message => 0.10) IS NOT NULL AS created;
SELECT 0.10 AS cost, cost_cap, recipients FROM wam.preview_campaign('costly');
SELECT (wam.configure_campaign('costly', '{"cost_per_message": 0.11}')).cost_per_message;
SELECT cost_cap, recipients FROM wam.preview_campaign('costly');
SELECT (wam.configure_campaign('costly', '{"cost_per_message": 0.30}')).cost_per_message;
SELECT cost_cap, recipients FROM wam.preview_campaign('costly');
SELECT (wam.configure_campaign('costly', '{"cost_per_message": 0.31}')).cost_per_message;
SELECT cost_cap, recipients FROM wam.preview_campaign('costly');
SELECT wam.configure_rfm('push_cost', NULL);

-- the contact policy, at its boundaries (inactive: 1 per 14 days; active: 3
-- per 7 days; 36 hours apart; utility messages exempt)
SELECT active_audience, active_max, active_period, inactive_max, inactive_period, min_gap, categories FROM wam.contact_policy;
-- (as of a fixed time t0, which the launch takes too)
\set t0 '2030-06-01 12:00:00+00'
CREATE FUNCTION pg_temp.claimed(c bigint, ago interval) RETURNS void LANGUAGE sql AS $$
	INSERT INTO wam.outbox (sender_id, customer_id, recipient, payload, campaign, category, status, created_at, sending_at, sent_at)
	SELECT 1, c, '1555000000' || c, '{"type":"template","template":{"name":"old","language":{"code":"en"}}}', 'history',
		   'marketing', 'sent', t, t, t
	FROM (SELECT '2030-06-01 12:00:00+00'::timestamptz - ago AS t) x
$$;
SELECT pg_temp.claimed(101, interval '14 days'), pg_temp.claimed(102, interval '14 days' - interval '1 microsecond'),
	   pg_temp.claimed(103, interval '36 hours'), pg_temp.claimed(104, interval '36 hours' - interval '1 microsecond');
SELECT pg_temp.claimed(105, d * interval '1 day') FROM generate_series(2, 3) d;
SELECT pg_temp.claimed(106, d * interval '1 day') FROM generate_series(2, 4) d;
SELECT pg_temp.claimed(107, d * interval '1 day' + interval '1 day') FROM generate_series(1, 3) d;
SELECT c AS customer, wam_internal.contact_next_allowed(c, false, :'t0', NULL) - :'t0' AS inactive_wait,
	   wam_internal.contact_next_allowed(c, true, :'t0', NULL) - :'t0' AS active_wait
FROM generate_series(101, 107) c ORDER BY 1;
-- a failed message does not count; a message does not count against itself
UPDATE wam.outbox SET status = 'failed' WHERE customer_id = 104 AND campaign = 'history';
SELECT wam_internal.contact_next_allowed(104, true, :'t0', NULL) AS after_failure,
	   wam_internal.contact_next_allowed(102, false, :'t0', (SELECT message_id FROM wam.outbox WHERE customer_id = 102)) AS itself;
UPDATE wam.outbox SET status = 'sent' WHERE customer_id = 104 AND campaign = 'history';

-- at launch: customers messaged recently wait (defer) or are skipped; a
-- campaign that ends before they may be messaged leaves them out; utility
-- messages are exempt.  Customers 106 and 107 ordered (active).
INSERT INTO wam.customer (id, phone, consent_at, consent_source)
SELECT g, (15550000000 + g)::text, now() - interval '1 year', 'shop' FROM generate_series(101, 107) g;
INSERT INTO wam.event (customer_id, kind, occurred_at) VALUES (106, 'order', now()), (107, 'order', now());
SELECT wam.create_tag('recent', 'interest') IS NOT NULL AS tagged;
SELECT wam.attach_tag('recent', wam.segment_range(101, 108)) IS NOT NULL AS attached;
SELECT wam.create_campaign('deferring', 'recent', '{"type":"template","template":{"name":"a","language":{"code":"en"}}}',
						   ARRAY['main']) IS NOT NULL AS created;
SELECT wam.create_campaign('skipping', 'recent', '{"type":"template","template":{"name":"b","language":{"code":"en"}}}',
						   ARRAY['main'], when_capped => 'skip') IS NOT NULL AS created;
SELECT wam.create_campaign('short', 'recent', '{"type":"template","template":{"name":"c","language":{"code":"en"}}}',
						   ARRAY['main'], ends_at => :'t0'::timestamptz + interval '2 days 12 hours') IS NOT NULL AS created;
SELECT wam.create_campaign('receipts', 'recent', '{"type":"template","template":{"name":"d","language":{"code":"en"}}}',
						   ARRAY['main'], category => 'utility') IS NOT NULL AS created;
SELECT name, p.audience_size, p.contact_policy, p.recipients, p.deferred
FROM wam.campaign c, LATERAL wam.preview_campaign(c.name, :'t0') p
WHERE c.name IN ('deferring', 'skipping', 'short', 'receipts') ORDER BY c.campaign_id;
SELECT recipients, deferred FROM wam.launch_campaign('deferring', :'t0');
SELECT customer_id, contact_class, next_attempt_at - :'t0' AS waits FROM wam.outbox WHERE campaign = 'deferring' ORDER BY 1;
SELECT recipients, deferred, contact_policy FROM wam.launch_campaign('short', :'t0');
SELECT array_agg(customer_id ORDER BY customer_id) AS short_recipients FROM wam.outbox WHERE campaign = 'short';

-- at claim: two campaigns queued for the same customers at once; the claim
-- sends one message per customer and defers the other (or skips it)
INSERT INTO wam.customer (id, phone, consent_at, consent_source)
SELECT g, (15550000000 + g)::text, now() - interval '1 year', 'shop' FROM generate_series(201, 203) g;
SELECT wam.create_tag('pair', 'interest') IS NOT NULL AS tagged;
SELECT wam.attach_tag('pair', wam.segment_range(201, 203)) IS NOT NULL AS attached;
SELECT wam.create_campaign('first', 'pair', '{"type":"template","template":{"name":"e","language":{"code":"en"}}}', ARRAY['second']) IS NOT NULL AS created;
SELECT wam.create_campaign('second', 'pair', '{"type":"template","template":{"name":"f","language":{"code":"en"}}}', ARRAY['second'],
						   when_capped => 'skip') IS NOT NULL AS created;
SELECT recipients FROM wam.launch_campaign('first');
SELECT recipients FROM wam.launch_campaign('second');
UPDATE wam.outbox SET status = 'cancelled' WHERE sender_id = :s2 AND campaign NOT IN ('first', 'second') AND status = 'queued';
SELECT count(*) AS claimed FROM wam_internal.claim_batch(:s2, 10);
SELECT count(*) AS claimed_again FROM wam_internal.claim_batch(:s2, 10);
SELECT campaign, status, count(*), bool_and(error_detail LIKE 'skipped: the contact policy allows the next message at %') AS why
FROM wam.outbox WHERE campaign IN ('first', 'second') GROUP BY 1, 2 ORDER BY 1, 2;

-- the budget keeps the first recipients by hash of their ids, the same in
-- preview and launch
SELECT wam.create_campaign('budget', 'all', '{"type":"template","template":{"name":"g","language":{"code":"en"}}}',
						   ARRAY['main'], category => 'utility', cost_per_message => 0.3, budget => 1.0) IS NOT NULL AS created;
SELECT over_budget, recipients, expected_cost FROM wam.preview_campaign('budget');
SELECT over_budget, recipients, expected_cost FROM wam.launch_campaign('budget');
SELECT array_agg(customer_id ORDER BY customer_id) = (SELECT array_agg(id ORDER BY id) FROM (
		SELECT id FROM wam.customer WHERE consent_at IS NOT NULL AND opted_out_at IS NULL
		ORDER BY hashint8(id), id LIMIT 3) x) AS lowest_hashes
FROM wam.outbox WHERE campaign = 'budget';

-- the budget at its edges: below one message's cost none, one short of every
-- eligible recipient all but one, exactly and above all of them
SELECT wam.create_campaign('budget_edges', 'all', '{"type":"template","template":{"name":"g","language":{"code":"en"}}}',
						   ARRAY['main'], category => 'utility', cost_per_message => 1) IS NOT NULL AS created;
SELECT recipients AS eligible FROM wam.preview_campaign('budget_edges') \gset
SELECT (wam.configure_campaign('budget_edges', '{"budget": 0.5}')).budget;
SELECT over_budget, recipients, expected_cost FROM wam.preview_campaign('budget_edges');
SELECT (wam.configure_campaign('budget_edges', jsonb_build_object('budget', :eligible - 1))).budget - :eligible AS budget_minus_eligible;
SELECT over_budget, recipients, expected_cost FROM wam.preview_campaign('budget_edges');
SELECT (wam.configure_campaign('budget_edges', jsonb_build_object('budget', :eligible))).budget - :eligible AS budget_minus_eligible;
SELECT over_budget, recipients, expected_cost FROM wam.preview_campaign('budget_edges');
SELECT (wam.configure_campaign('budget_edges', jsonb_build_object('budget', :eligible + 1))).budget - :eligible AS budget_minus_eligible;
SELECT over_budget, recipients, expected_cost FROM wam.preview_campaign('budget_edges');
SELECT (wam.configure_campaign('budget_edges', '{"budget": null}')).budget;

-- send windows in the recipient's time zone: Taipei (+08) and New York
SELECT wam.create_campaign('evening', 'vip', '{"type":"template","template":{"name":"h","language":{"code":"en"}}}',
						   ARRAY['main'], category => 'utility', send_windows => 'thu 19:00-20:00',
						   starts_at => '2030-01-07 00:00+00', ends_at => '2030-01-20 00:00+00') IS NOT NULL AS created;
SELECT send_windows FROM wam.campaign WHERE name = 'evening';
SELECT recipients, deferred, no_send_window FROM wam.launch_campaign('evening', '2030-01-06 12:00+00');
SELECT time_zone, next_attempt_at AT TIME ZONE 'UTC' AS utc, count(*) FROM wam.outbox WHERE campaign = 'evening'
GROUP BY 1, 2 ORDER BY 2;
SELECT wam.create_campaign('too late', 'vip', '{"type":"template","template":{"name":"i","language":{"code":"en"}}}',
						   ARRAY['main'], category => 'utility', send_windows => 'thu 19:00-20:00',
						   starts_at => '2030-01-07 00:00+00', ends_at => '2030-01-10 12:00+00') IS NOT NULL AS created;
SELECT recipients, no_send_window FROM wam.preview_campaign('too late', '2030-01-06 12:00+00');
-- states: scheduled until the start, running, finished when nothing waits;
-- cancelled with its messages
SELECT state FROM wam.campaign WHERE name = 'evening';
SELECT * FROM wam.advance_campaigns('2030-01-06 23:59:59+00') WHERE campaign = 'evening';
SELECT * FROM wam.advance_campaigns('2030-01-07 00:00+00') WHERE campaign = 'evening';
UPDATE wam.outbox SET status = 'delivered', sent_at = now(), delivered_at = now() WHERE campaign = 'evening';
SELECT * FROM wam.advance_campaigns('2030-01-08 00:00+00');
-- the reports an hour and a day after the launch (12:00 on 6 January): the
-- first taken before the deliveries, the second after them
SELECT after, taken_at, report->>'sent' AS sent, report->>'delivered' AS delivered,
	   report->>'delivery_health' AS delivery_health, report->>'read_health' AS read_health
FROM wam.campaign_snapshot s JOIN wam.campaign c USING (campaign_id) WHERE c.name = 'evening' ORDER BY after;
SET ROLE camp_reader;
SELECT * FROM wam.campaign_report('evening');
SELECT * FROM wam.campaign_report('nosuch');
RESET ROLE;
-- the health bands at their boundaries
SELECT v.d, v.r, v.p, h.* FROM (VALUES (98, 85.1, 5.1), (98, 85, 5), (97.9, 70, 5), (95, 69.9, 0), (94.9, 60, NULL),
									   (NULL, 59.9, 100)) v (d, r, p),
	   LATERAL wam.rate_health(v.d, v.r, v.p) h;
SET ROLE camp_operator;
SELECT wam.cancel_campaign('deferring') AS messages_cancelled;
RESET ROLE;
SELECT name, state FROM wam.campaign WHERE name IN ('deferring', 'evening', 'spring') ORDER BY 1;
SELECT c.name, x.changed_by = session_user AS by_session_user, x.action, x.from_state, x.to_state
FROM wam.campaign_change x JOIN wam.campaign c USING (campaign_id)
WHERE c.name IN ('spring', 'evening', 'deferring') ORDER BY x.change_id;
SELECT detail FROM wam.campaign_change x JOIN wam.campaign c USING (campaign_id)
WHERE c.name = 'spring' AND x.action = 'configured' ORDER BY x.change_id;
SELECT campaign, state, audience_size, messages, waiting, sent, delivered, cancelled, cost
FROM wam.campaign_status WHERE campaign IN ('spring', 'evening', 'deferring') ORDER BY 1;

-- follow-up steps: 3 days after the launch, to the recipients who did not read
-- (or did not order since their message); launched by the job, with the
-- parent's senders, category, windows and policy
UPDATE wam.outbox SET sending_at = '2030-01-06 13:00+00', sent_at = '2030-01-06 13:00:01+00' WHERE campaign = 'evening';
UPDATE wam.outbox SET read_at = '2030-01-06 14:00+00', status = 'read' WHERE campaign = 'evening' AND customer_id <= 5;
INSERT INTO wam.event (customer_id, kind, occurred_at) VALUES (6, 'order', '2030-01-07 08:00+00'), (7, 'order', '2030-01-06 12:59+00');
SET ROLE camp_operator;
SELECT wam.create_follow_up('evening', 'evening reminder', '{"type":"template","template":{"name":"reminder","language":{"code":"en"}}}') IS NOT NULL AS created;
SELECT wam.create_follow_up('evening', 'evening coupon', '{"type":"template","template":{"name":"coupon","language":{"code":"en"}}}',
							after => '4 days', unless => 'order') IS NOT NULL AS created;
SELECT wam.create_follow_up('evening reminder', 'x', :'tpl');
SELECT wam.create_follow_up('evening', 'x', :'tpl', unless => 'open');
SELECT wam.create_follow_up('evening', 'x', :'tpl', after => '10 minutes');
SELECT wam.create_follow_up('deferring', 'x', :'tpl');
RESET ROLE;
SELECT name, state, follow_up_after, follow_up_unless, send_windows FROM wam.campaign WHERE parent_id IS NOT NULL ORDER BY 1;
SELECT audience_size, recipients, deferred FROM wam.preview_campaign('evening reminder', '2030-01-09 12:00+00');
SELECT * FROM wam.advance_campaigns('2030-01-09 11:59:59+00') WHERE campaign LIKE 'evening %';
SELECT * FROM wam.advance_campaigns('2030-01-09 12:00+00') WHERE campaign LIKE 'evening %';
SELECT * FROM wam.advance_campaigns('2030-01-10 12:00+00') WHERE campaign LIKE 'evening %';
SELECT campaign, array_agg(customer_id ORDER BY customer_id) AS recipients, min(next_attempt_at AT TIME ZONE time_zone) AS first_local
FROM wam.outbox WHERE campaign LIKE 'evening %' GROUP BY 1 ORDER BY 1;

-- across the change to daylight saving time (New York, 2030-03-10): starting at
-- 01:00 UTC on 8 March, Thursday 20:00 in New York (the window's end, which is
-- not in it), New Yorkers wait for 19:00 on the 14th, 23:00 UTC after the change
SELECT wam.create_campaign('after dst', 'vip', '{"type":"template","template":{"name":"j","language":{"code":"en"}}}',
						   ARRAY['main'], category => 'utility', send_windows => 'thu 19:00-20:00',
						   starts_at => '2030-03-08 01:00+00') IS NOT NULL AS created;
SELECT recipients FROM wam.launch_campaign('after dst', '2030-03-08 01:00+00');
SELECT time_zone, next_attempt_at AT TIME ZONE 'UTC' AS utc, count(*) FROM wam.outbox WHERE campaign = 'after dst'
GROUP BY 1, 2 ORDER BY 2;
-- a message due while its window is closed is held at claim time until the
-- next opening in its recipient's zone (a window three days ahead: closed now
-- in every zone)
SELECT lower(to_char(now() AT TIME ZONE 'UTC' + interval '3 days', 'Dy')) || ' 10:00-11:00' AS closed_window \gset
SELECT wam.create_campaign('held', 'vip', '{"type":"template","template":{"name":"k","language":{"code":"en"}}}',
						   ARRAY['main'], category => 'utility', send_windows => :'closed_window') IS NOT NULL AS created;
SELECT recipients, deferred FROM wam.launch_campaign('held');
UPDATE wam.outbox SET status = 'cancelled' WHERE sender_id = :s1 AND status = 'queued' AND campaign <> 'held';
UPDATE wam.outbox SET next_attempt_at = now() - interval '1 minute' WHERE campaign = 'held';
SELECT count(*) AS claimed FROM wam_internal.claim_batch(:s1, 50);
SELECT count(*) FILTER (WHERE status = 'queued' AND next_attempt_at > now()
						AND to_char(next_attempt_at AT TIME ZONE time_zone, 'HH24:MI') = '10:00') AS held_to_next_opening,
	   count(*) AS messages
FROM wam.outbox WHERE campaign = 'held';

-- the policy: administrators change it, with a valid audience
SET ROLE camp_operator;
UPDATE wam.contact_policy SET active_max = 5;
SET ROLE camp_admin;
UPDATE wam.contact_policy SET active_audience = 'event(order) within';
UPDATE wam.contact_policy SET active_max = 0;
UPDATE wam.contact_policy SET categories = '{marketing,promotion}';
UPDATE wam.contact_policy SET active_max = 4, min_gap = '24 hours';
SELECT active_max, min_gap FROM wam.contact_policy;
SET ROLE camp_reader;
INSERT INTO wam.campaign_variable VALUES (1, 1, '{}');
SELECT wam.create_campaign('r', 'vip', :'tpl', ARRAY['main']);
SELECT count(*) > 0 AS reads_history FROM wam.campaign_change;
RESET ROLE;

\c :orig_db
DROP DATABASE wam_campaign_regress;
DROP ROLE camp_reader, camp_operator, camp_admin;
