-- what campaigns bring: clicks (wam.record_click), orders attributed within the
-- window by last or first touch at its boundaries, revenue, discounts and the
-- return on spend with its bands; mis-targeting from reply keywords (through a
-- real signed webhook) and from operators, the tags' error rates at the 15 %
-- line; media sizes at WhatsApp's limits; privileges (own database)
SELECT current_database() AS orig_db \gset
CREATE DATABASE wam_attribution_regress;
\c wam_attribution_regress
CREATE EXTENSION pg_wamarketing;
SET client_min_messages = warning;
SET TIME ZONE 'UTC';
\set SHOW_CONTEXT never
CREATE ROLE attr_reader IN ROLE wam_reader;
CREATE ROLE attr_operator IN ROLE wam_operator;
CREATE ROLE attr_admin IN ROLE wam_admin;

SELECT wam.create_sender('main', '106540352242922', 'EAAtoken-main', 'main-secret', 'https://localhost:9') AS s1 \gset
INSERT INTO wam.customer (id, phone, name, consent_at, consent_source)
SELECT g, (15550000000 + g)::text, 'Customer ' || g, now() - interval '1 year', 'shop' FROM generate_series(1, 21) g;
SELECT wam.create_tag('beauty', 'interest') IS NOT NULL AS tagged;
SELECT wam.create_tag('vip', 'spending power') IS NOT NULL AS tagged;
SELECT wam.attach_tag('beauty', wam.segment_range(1, 21)) IS NOT NULL AS attached;
SELECT wam.attach_tag('vip', wam.segment_range(15, 21)) IS NOT NULL AS attached;
INSERT INTO wam.link_domain (domain) VALUES ('shop.example.com');
\set tpl '{"type":"template","template":{"name":"spring_sale","language":{"code":"en"},"components":[{"type":"body","parameters":[{"type":"text","text":"{name}"}]},{"type":"button","sub_type":"url","index":"0","parameters":[{"type":"text","text":"https://shop.example.com/spring"}]}]}}'

-- two campaigns: "spring" to everyone in beauty at T0 = 2020-03-01 10:00 UTC,
-- "summer" to beauty AND NOT vip (1..14) two days later; sent as the worker
-- would record them
SET ROLE attr_operator;
SELECT wam.create_campaign('spring', 'beauty', :'tpl', cost_per_message => 0.5) AS spring \gset
SELECT wam.create_campaign('summer', 'beauty AND NOT vip', :'tpl', cost_per_message => 0.5) AS summer \gset
SELECT recipients FROM wam.launch_campaign('spring', '2020-03-01 09:00+00');
SELECT recipients FROM wam.launch_campaign('summer', '2020-03-03 09:00+00');
RESET ROLE;
UPDATE wam.outbox SET status = 'delivered', wamid = 'wamid.S' || customer_id,
	   sending_at = '2020-03-01 10:00+00', sent_at = '2020-03-01 10:00+00', delivered_at = '2020-03-01 10:00:05+00'
WHERE campaign_id = :spring AND customer_id <= 19;
UPDATE wam.outbox SET status = 'delivered', wamid = 'wamid.U' || customer_id,
	   sending_at = '2020-03-03 10:00+00', sent_at = '2020-03-03 10:00+00', delivered_at = '2020-03-03 10:00:05+00'
WHERE campaign_id = :summer;
SELECT message_id AS m1 FROM wam.outbox WHERE campaign_id = :spring AND customer_id = 1 \gset
SELECT message_id AS m2 FROM wam.outbox WHERE campaign_id = :spring AND customer_id = 2 \gset
SELECT message_id AS m20 FROM wam.outbox WHERE campaign_id = :spring AND customer_id = 20 \gset
SELECT message_id AS u2 FROM wam.outbox WHERE campaign_id = :summer AND customer_id = 2 \gset

-- clicks: every bad input is an error with its SQLSTATE
SET ROLE attr_operator;
\set VERBOSITY sqlstate
SELECT wam.record_click(NULL, 'https://shop.example.com/a');
SELECT wam.record_click(:m1, NULL);
SELECT wam.record_click(:m1, 'https://shop.example.com/a', NULL);
SELECT wam.record_click(:m1, 'ftp://shop.example.com/a', '2020-03-01 11:00+00');
SELECT wam.record_click(:m1, 'https://', '2020-03-01 11:00+00');
SELECT wam.record_click(:m1, 'javascript:alert(1)', '2020-03-01 11:00+00');
SELECT wam.record_click(:m1, 'https://shop.example.com/a b', '2020-03-01 11:00+00');
SELECT wam.record_click(:m1, 'https://shop.example.com/' || repeat('a', 2024), '2020-03-01 11:00+00');
SELECT wam.record_click(:m1, 'https://shop.example.com/a', 'infinity');
SELECT wam.record_click(:m1, 'https://shop.example.com/a', '2020-03-01 11:00+00', '[1]');
SELECT wam.record_click(999999, 'https://shop.example.com/a', '2020-03-01 11:00+00');
-- not sent (customer 20's message is still queued), or a click before the send
SELECT wam.record_click(:m20, 'https://shop.example.com/a', '2020-03-01 11:00+00');
SELECT wam.record_click(:m1, 'https://shop.example.com/a', '2020-03-01 09:59:59.999999+00');
\set VERBOSITY default
SELECT wam.record_click(:m20, 'https://shop.example.com/a', '2020-03-01 11:00+00');
RESET ROLE;
UPDATE wam.outbox SET status = 'delivered', wamid = 'wamid.S20', sending_at = '2020-03-01 10:00+00',
	   sent_at = '2020-03-01 10:00+00', delivered_at = '2020-03-01 10:00:05+00'
WHERE message_id = :m20;
SET ROLE attr_operator;
-- the longest link taken (2048 characters), at the send time itself, and again
SELECT wam.record_click(:m1, 'https://shop.example.com/' || repeat('a', 2023), '2020-03-01 10:00+00') IS NOT NULL AS clicked;
SELECT wam.record_click(:m1, 'https://shop.example.com/spring', '2020-03-01 12:00+00', '{"product": "sunscreen"}') IS NOT NULL AS clicked_again;
SELECT wam.record_click(:m2, 'HTTPS://shop.example.com/spring?utm=wa#top', '2020-03-01 12:00+00') IS NOT NULL AS clicked;
RESET ROLE;
SELECT customer_id, occurred_at, details - 'url' AS details, length(details->>'url') AS url_length
FROM wam.event WHERE kind = 'link_click' ORDER BY event_id;
-- behaviour predicates see them
SELECT wam.segment_cardinality(wam.audience('event(link_click, product = ''sunscreen'') within 36500d')) AS sunscreen_clickers;
SET ROLE attr_reader;
SELECT wam.record_click(:m1, 'https://shop.example.com/a', '2020-03-01 11:00+00');
RESET ROLE;

-- orders around the window (7 days): customer 1 just before the message and at
-- it; 15 just inside the end, 17 at the end (not counted; neither got summer's
-- message); 2 once after spring,
-- once after summer; 5 a day later with a discount; 6 with a discount that is
-- not a number (no discount); 16 (no summer message) within spring's window
SELECT wam.record_order(1, 10, '2020-03-01 09:59:59.999999+00') IS NOT NULL AS o1_before;
SELECT wam.record_order(1, 20, '2020-03-01 10:00+00') IS NOT NULL AS o1_at;
SELECT wam.record_order(15, 30, '2020-03-08 09:59:59.999999+00') IS NOT NULL AS o15_just_inside;
SELECT wam.record_order(17, 40, '2020-03-08 10:00+00') IS NOT NULL AS o17_at_end;
SELECT wam.record_order(2, 50, '2020-03-02 10:00+00') IS NOT NULL AS o2_after_spring;
SELECT wam.record_order(2, 60, '2020-03-04 10:00+00') IS NOT NULL AS o2_after_summer;
SELECT wam.record_order(5, 70, '2020-03-02 10:00+00', details => '{"discount": 7}') IS NOT NULL AS o5_discounted;
SELECT wam.record_order(6, 80, '2020-03-02 10:00+00', details => '{"discount": "8"}') IS NOT NULL AS o6_bad_discount;
SELECT wam.record_order(16, 90, '2020-03-04 10:00+00') IS NOT NULL AS o16;
-- last touch (the default): customer 2's second order goes to summer
SELECT customer_id, ordered_at, amount, discount, message_id = :m2 AS spring_msg_of_2 FROM wam.campaign_orders('spring');
SELECT customer_id, ordered_at, amount, discount FROM wam.campaign_orders('summer');
-- no order counts for two campaigns
SELECT count(*) AS both_counted FROM (SELECT order_id FROM wam.campaign_orders('spring')
	UNION ALL SELECT order_id FROM wam.campaign_orders('summer')) x
GROUP BY order_id HAVING count(*) > 1;
SELECT campaign_name, sent, delivered, clicked, converted, orders, revenue, discount_cost, cost, roi, roi_health,
	   click_rate, conversion_rate
FROM wam.campaign_report('spring');
-- first touch: spring keeps customer 2's second order, summer gets none
SET ROLE attr_operator;
SELECT (wam.configure_campaign('spring', '{"attribution": "first_touch"}')).attribution;
SELECT (wam.configure_campaign('summer', '{"attribution": "first_touch"}')).attribution;
RESET ROLE;
SELECT customer_id, ordered_at, amount FROM wam.campaign_orders('spring') WHERE customer_id = 2;
SELECT count(*) AS summer_orders FROM wam.campaign_orders('summer');
-- a wider window (after the launch: only the attribution may change) takes
-- customer 17's order; the limits (1 hour to 90 days) just outside and at
SET ROLE attr_operator;
SELECT (wam.configure_campaign('spring', '{"attribution": "last_touch", "attribution_window": "7 days 1 second"}')).attribution_window;
RESET ROLE;
SELECT count(*) FILTER (WHERE customer_id = 17) AS o17, count(*) AS orders FROM wam.campaign_orders('spring');
SET ROLE attr_operator;
\set VERBOSITY sqlstate
SELECT wam.configure_campaign('spring', '{"attribution_window": "59 minutes 59 seconds"}');
SELECT wam.configure_campaign('spring', '{"attribution_window": "90 days 1 second"}');
SELECT wam.configure_campaign('spring', '{"attribution": "linear"}');
SELECT wam.configure_campaign('spring', '{"attribution": null}');
SELECT wam.configure_campaign('spring', '{"attribution_window": "soon"}');
SELECT wam.configure_campaign('spring', '{"attribution": "first_touch", "budget": 1}');
SELECT * FROM wam.campaign_orders('nosuch');
SELECT * FROM wam.campaign_orders(NULL);
\set VERBOSITY default
SELECT (wam.configure_campaign('spring', '{"attribution_window": "1 hour"}')).attribution_window;
SELECT (wam.configure_campaign('spring', '{"attribution_window": "90 days"}')).attribution_window;
SELECT (wam.configure_campaign('spring', '{"attribution_window": "7 days"}')).attribution_window;
RESET ROLE;
SELECT action, detail FROM wam.campaign_change WHERE campaign_id = :spring AND action = 'configured' ORDER BY change_id;

-- the bands of the return on spend
SELECT r, wam.roi_health(r) FROM (VALUES (NULL::numeric), (0), (3.99), (4), (6.99), (7), (100)) v(r);
-- no spend: no return computed
SET ROLE attr_operator;
SELECT wam.create_campaign('free', 'beauty', :'tpl') IS NOT NULL AS created;
RESET ROLE;
SELECT roi, roi_health, cost FROM wam.campaign_report('free');

-- mis-targeting: a reply through a signed webhook that begins with a feedback
-- keyword ("Wrong number!!" and "Not interested, thanks"), one that does not,
-- and one quoting nothing (it answers the last message in 24 hours: summer's)
CREATE FUNCTION pg_temp.ingest(body text) RETURNS integer
LANGUAGE sql RETURN wam.ingest_webhook(body, 'sha256=' || wam.hmac_sha256('main-secret', body));
CREATE FUNCTION pg_temp.inbound(messages jsonb) RETURNS text
LANGUAGE sql RETURN jsonb_build_object('object', 'whatsapp_business_account', 'entry', jsonb_build_array(
	jsonb_build_object('id', '102290129340398', 'changes', jsonb_build_array(jsonb_build_object(
		'field', 'messages', 'value', jsonb_build_object('messaging_product', 'whatsapp',
			'metadata', jsonb_build_object('display_phone_number', '15550783881', 'phone_number_id', '106540352242922'),
			'messages', messages))))))::text;
SELECT pg_temp.ingest(pg_temp.inbound(jsonb_build_array(
	'{"from":"15550000003","id":"wamid.IN3","timestamp":"1583229600","type":"text","text":{"body":"Wrong number!!"},"context":{"id":"wamid.S3"}}'::jsonb,
	'{"from":"15550000004","id":"wamid.IN4","timestamp":"1583229601","type":"text","text":{"body":"Not interested, thanks"},"context":{"id":"wamid.S4"}}'::jsonb,
	'{"from":"15550000005","id":"wamid.IN5","timestamp":"1583229602","type":"text","text":{"body":"I am interested"},"context":{"id":"wamid.S5"}}'::jsonb,
	'{"from":"15550000006","id":"wamid.IN6","timestamp":"1583229603","type":"text","text":{"body":"wrong number"}}'::jsonb))) AS ingested;
SELECT customer_id, occurred_at, details->>'source' AS source, details->'campaign_id' = to_jsonb(:spring) AS spring,
	   details->>'text' AS text
FROM wam.event WHERE kind = 'mistargeted' ORDER BY event_id;
-- an administrator's keyword that normalises to nothing matches nothing
SET ROLE attr_admin;
INSERT INTO wam.feedback_keyword VALUES ('!!!', NULL), ('falsch', 'de');
RESET ROLE;
INSERT INTO wam.event (customer_id, kind, occurred_at, details)
VALUES (7, 'reply', '2020-03-03 12:00+00', jsonb_build_object('text', 'hello', 'answers', :m1)),
	   (7, 'reply', '2020-03-03 12:00+00', jsonb_build_object('text', 'FALSCH!', 'answers', :u2)),
	   (7, 'reply', '2020-03-03 12:00+00', '{"text": 5}'),
	   (7, 'reply', '2020-03-03 12:00+00', NULL);
SELECT customer_id, details->'message_id' = to_jsonb(:u2) AS summer_msg, details->>'text' AS text
FROM wam.event WHERE kind = 'mistargeted' AND customer_id = 7;

-- an operator's word: bad inputs, then customer 8 about spring, 9 about their
-- last campaign message (summer's)
SET ROLE attr_operator;
\set VERBOSITY sqlstate
SELECT wam.record_mistargeting(NULL);
SELECT wam.record_mistargeting(999);
SELECT wam.record_mistargeting(8, 'nosuch');
SELECT wam.record_mistargeting(8, at => NULL);
SELECT wam.record_mistargeting(8, at => 'infinity');
SELECT wam.record_mistargeting(8, note => repeat('x', 1001));
\set VERBOSITY default
SELECT wam.record_mistargeting(8, 'spring', 'before the launch', '2020-03-01 09:00+00');
SELECT wam.record_mistargeting(21, at => '2020-03-05 09:00+00');
SELECT wam.record_mistargeting(8, 'spring', 'called the shop', '2020-03-05 09:00+00') IS NOT NULL AS recorded;
SELECT wam.record_mistargeting(9, at => '2020-03-05 09:00+00') IS NOT NULL AS recorded;
RESET ROLE;
SELECT customer_id, details->'campaign_id' = to_jsonb(:summer) AS summer, details->>'source' AS source,
	   details->>'by' AS by, details->>'note' AS note
FROM wam.event WHERE kind = 'mistargeted' AND details->>'source' = 'operator' ORDER BY event_id;
SET ROLE attr_reader;
SELECT wam.record_mistargeting(10);
RESET ROLE;

-- error rates: beauty's 20 recipients, mis-targeted 3, 4 and 8 by spring, 6, 7
-- and 9 by summer: 6 of 20 = 30 %; vip is not blamed (its holders got spring,
-- whose audience does not name it, and summer left them out); then 3 of 20:
-- the 15 % line exactly, and flag_above just below and just above it
SELECT * FROM wam.tag_error_rates('2020-01-01');
DELETE FROM wam.event WHERE kind = 'mistargeted' AND customer_id IN (6, 7, 9);
SELECT tag, recipients, mistargeted, error_rate, needs_cleaning FROM wam.tag_error_rates('2020-01-01') WHERE tag = 'beauty';
SELECT f, (SELECT needs_cleaning FROM wam.tag_error_rates('2020-01-01', f) WHERE tag = 'beauty')
FROM (VALUES (14.99), (15), (15.01)) v(f);
-- campaigns launched before `since` do not count
SELECT count(*) AS none FROM wam.tag_error_rates('2020-03-03 09:00:00.000001+00');
SELECT tag, campaigns, recipients FROM wam.tag_error_rates('2020-03-03 09:00+00');
\set VERBOSITY sqlstate
SELECT * FROM wam.tag_error_rates(NULL);
SELECT * FROM wam.tag_error_rates('2020-01-01', -0.01);
SELECT * FROM wam.tag_error_rates('2020-01-01', 100.01);
SELECT * FROM wam.tag_error_rates('2020-01-01', 'NaN');
\set VERBOSITY default

-- media: the limits, registered sizes just at and above the image limit, an
-- oversized video by uploaded id; the preview warns, the launch refuses
SELECT t, wam.media_size_limit(t) FROM unnest(ARRAY['image', 'video', 'audio', 'document', 'sticker', 'gif']) t;
SET ROLE attr_operator;
INSERT INTO wam.media_asset (ref, media_type, bytes) VALUES
	('https://shop.example.com/ok.jpg', 'image', 5000000), ('https://shop.example.com/big.jpg', 'image', 5000001),
	('4490709327384033', 'video', 16000001);
\set VERBOSITY sqlstate
INSERT INTO wam.media_asset (ref, media_type, bytes) VALUES ('x', 'gif', 1);
INSERT INTO wam.media_asset (ref, media_type, bytes) VALUES ('x', 'image', 0);
INSERT INTO wam.media_asset (ref, media_type, bytes) VALUES ('', 'image', 1);
\set VERBOSITY default
\set img_ok '{"type":"template","template":{"name":"spring_sale","language":{"code":"en"},"components":[{"type":"header","parameters":[{"type":"image","image":{"link":"https://shop.example.com/ok.jpg"}}]}]}}'
\set img_big '{"type":"template","template":{"name":"spring_sale","language":{"code":"en"},"components":[{"type":"header","parameters":[{"type":"image","image":{"link":"https://shop.example.com/big.jpg"}}]}]}}'
\set vid_big '{"type":"template","template":{"name":"spring_sale","language":{"code":"en"},"components":[{"type":"header","parameters":[{"type":"video","video":{"id":"4490709327384033"}}]}]}}'
SELECT wam.create_campaign('img ok', 'beauty', :'img_ok') IS NOT NULL AS created;
SELECT wam.create_campaign('img big', 'beauty', :'img_big') IS NOT NULL AS created;
SELECT wam.create_campaign('vid big', 'beauty', :'vid_big') IS NOT NULL AS created;
SELECT unnest(warnings) FROM wam.preview_campaign('img ok', '2020-03-10 09:00+00');
SELECT unnest(warnings) FROM wam.preview_campaign('img big', '2020-03-10 09:00+00');
SELECT recipients FROM wam.launch_campaign('img ok', '2020-03-10 09:00+00');
SELECT recipients FROM wam.launch_campaign('img big', '2020-03-10 09:00+00');
SELECT recipients FROM wam.launch_campaign('vid big', '2020-03-10 09:00+00');
RESET ROLE;
SET ROLE attr_reader;
INSERT INTO wam.media_asset (ref, media_type, bytes) VALUES ('y', 'image', 1);
RESET ROLE;

\c :orig_db
DROP DATABASE wam_attribution_regress;
DROP ROLE attr_reader, attr_operator, attr_admin;
