-- test/demo.sql — pg_wamarketing segment demo (run by `bash test/run demo`).
--
-- Builds 100,000 synthetic customers with a dozen tags in schema `demo`, stores one
-- wam.segment (a Roaring bitmap of customer ids) per tag, and runs the R-S1 worked
-- example ("interest-beauty AND stage-purchased EXCLUDE product-lipstick", scaled x10)
-- with segment operators, then splits the result into two A/B halves.
--
-- The data are identical on every machine: each customer/tag draw is a uniform number
-- made from hashint8(id * 7919 + draw_no), not from random().
\set ON_ERROR_STOP on
\set QUIET on
\pset footer off
SET client_min_messages = warning;
-- The segment operators (& intersection, - difference) live in schema wam with the rest
-- of the extension; functions are called schema-qualified below.
SET search_path = public, wam;

CREATE EXTENSION IF NOT EXISTS pg_wamarketing;
DROP SCHEMA IF EXISTS demo CASCADE;
CREATE SCHEMA demo;

-- Deterministic uniform draw in [0, 1) for customer `id`, draw number `k`.
CREATE FUNCTION demo.u(id bigint, k int) RETURNS float8
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN (hashint8(id * 7919 + k)::bigint + 2147483648) / 4294967296.0::float8;

CREATE TABLE demo.customer (
    id   bigint PRIMARY KEY,
    name text NOT NULL
);

CREATE TABLE demo.customer_tag (
    customer_id bigint NOT NULL REFERENCES demo.customer,
    tag         text   NOT NULL,
    PRIMARY KEY (tag, customer_id)
);

\echo
\echo '== Generating 100,000 synthetic customers and their tags (deterministic) =='

INSERT INTO demo.customer (id, name)
SELECT id, 'customer-' || lpad(id::text, 6, '0')
FROM generate_series(1, 100000) AS id;

-- Tag model (target share of the 100,000 customers):
--   stage-purchased 40%, correlated with interest-beauty (48% of beauty fans bought,
--   37.3% of the others) so that beauty AND purchased = 12%; product-lipstick only among
--   purchasers, mostly beauty fans (2/3 of beauty purchasers, 0.5% of other purchasers)
--   so that ~8% bought lipstick and beauty AND purchased EXCLUDE lipstick = 4%;
--   source-instagram / source-store are exclusive acquisition channels;
--   interest-skincare leans on interest-beauty; high-value-customer is a subset of
--   purchasers and vip a subset of high-value customers.
INSERT INTO demo.customer_tag (customer_id, tag)
WITH draw AS (
    SELECT c.id,
           demo.u(c.id, 1)  AS u_beauty,
           demo.u(c.id, 2)  AS u_purchased,
           demo.u(c.id, 3)  AS u_lipstick,
           demo.u(c.id, 4)  AS u_source,
           demo.u(c.id, 5)  AS u_active,
           demo.u(c.id, 6)  AS u_price,
           demo.u(c.id, 7)  AS u_new,
           demo.u(c.id, 8)  AS u_skincare,
           demo.u(c.id, 9)  AS u_cart,
           demo.u(c.id, 10) AS u_high_value,
           demo.u(c.id, 11) AS u_vip
    FROM demo.customer AS c
), base AS (
    SELECT d.*,
           d.u_beauty < 0.25 AS beauty
    FROM draw AS d
), bought AS (
    SELECT b.*,
           b.u_purchased < CASE WHEN b.beauty THEN 0.48 ELSE 0.28 / 0.75 END AS purchased
    FROM base AS b
), flags AS (
    SELECT p.id,
           p.beauty,
           p.purchased,
           p.purchased AND p.u_lipstick < CASE WHEN p.beauty THEN 2.0 / 3 ELSE 0.005 END AS lipstick,
           p.u_source < 0.30                          AS instagram,
           p.u_source >= 0.30 AND p.u_source < 0.50   AS store,
           p.u_active < 0.45                          AS active,
           p.u_price < 0.22                           AS price_sensitive,
           p.u_new < 0.15                             AS new_customer,
           p.u_skincare < CASE WHEN p.beauty THEN 0.40 ELSE 0.08 / 0.75 END AS skincare,
           p.u_cart < 0.06                            AS cart_abandoned,
           p.purchased AND p.u_high_value < 0.125     AS high_value,
           p.purchased AND p.u_high_value < 0.125 AND p.u_vip < 0.20 AS vip
    FROM bought AS p
)
SELECT f.id, t.tag
FROM flags AS f
CROSS JOIN LATERAL (VALUES
    ('interest-beauty',     f.beauty),
    ('stage-purchased',     f.purchased),
    ('product-lipstick',    f.lipstick),
    ('source-instagram',    f.instagram),
    ('source-store',        f.store),
    ('engagement-active',   f.active),
    ('price-sensitive',     f.price_sensitive),
    ('new-customer',        f.new_customer),
    ('interest-skincare',   f.skincare),
    ('cart-abandoned',      f.cart_abandoned),
    ('high-value-customer', f.high_value),
    ('vip',                 f.vip)
) AS t(tag, has_tag)
WHERE t.has_tag;

-- One row per tag: the tag's members as a segment (Roaring bitmap of customer ids).
CREATE TABLE demo.tag_segment (
    tag     text PRIMARY KEY,
    members wam.segment NOT NULL
);

INSERT INTO demo.tag_segment (tag, members)
SELECT tag, wam.segment_agg(customer_id)
FROM demo.customer_tag
GROUP BY tag;

ANALYZE demo.customer, demo.customer_tag, demo.tag_segment;

SELECT count(*) AS customers,
       (SELECT count(*) FROM demo.customer_tag) AS "customer-tag rows",
       (SELECT count(*) FROM demo.tag_segment)  AS "tag segments"
FROM demo.customer;

\echo
\echo '== (a) Tags: members = wam.segment_cardinality(members), largest first =='

SELECT tag,
       wam.segment_cardinality(members) AS members,
       round(100.0 * wam.segment_cardinality(members) / (SELECT count(*) FROM demo.customer), 1) AS "share %"
FROM demo.tag_segment
ORDER BY 2 DESC, 1;

\echo
\echo '== (b) R-S1 funnel: interest-beauty AND stage-purchased EXCLUDE product-lipstick =='
\echo '   with the segment operators & (intersection) and - (difference)'

WITH s AS (
    SELECT (SELECT members FROM demo.tag_segment WHERE tag = 'interest-beauty')  AS beauty,
           (SELECT members FROM demo.tag_segment WHERE tag = 'stage-purchased')  AS purchased,
           (SELECT members FROM demo.tag_segment WHERE tag = 'product-lipstick') AS lipstick
)
SELECT f.step, f.expression, f.customers
FROM s
CROSS JOIN LATERAL (VALUES
    (1, 'interest-beauty',
        wam.segment_cardinality(s.beauty)),
    (2, 'interest-beauty & stage-purchased',
        wam.segment_cardinality(s.beauty & s.purchased)),
    (3, '(interest-beauty & stage-purchased) - product-lipstick',
        wam.segment_cardinality((s.beauty & s.purchased) - s.lipstick))
) AS f(step, expression, customers)
ORDER BY f.step;

\echo
\echo '   the same counts without materialising the result segment:'
\echo '   wam.segment_and_cardinality(a, b) and wam.segment_andnot_cardinality(a & b, c),'
\echo '   next to plain SQL over demo.customer_tag for comparison'

WITH s AS (
    SELECT (SELECT members FROM demo.tag_segment WHERE tag = 'interest-beauty')  AS beauty,
           (SELECT members FROM demo.tag_segment WHERE tag = 'stage-purchased')  AS purchased,
           (SELECT members FROM demo.tag_segment WHERE tag = 'product-lipstick') AS lipstick
), plain AS (
    SELECT count(*) AS beauty_and_purchased,
           count(*) FILTER (WHERE NOT EXISTS (
               SELECT 1 FROM demo.customer_tag AS l
               WHERE l.tag = 'product-lipstick' AND l.customer_id = b.customer_id)) AS minus_lipstick
    FROM demo.customer_tag AS b
    JOIN demo.customer_tag AS p ON p.customer_id = b.customer_id AND p.tag = 'stage-purchased'
    WHERE b.tag = 'interest-beauty'
)
SELECT wam.segment_and_cardinality(s.beauty, s.purchased)                  AS "and_cardinality(beauty, purchased)",
       wam.segment_andnot_cardinality(s.beauty & s.purchased, s.lipstick)  AS "andnot_cardinality(beauty & purchased, lipstick)",
       plain.beauty_and_purchased                                  AS "plain SQL step 2",
       plain.minus_lipstick                                        AS "plain SQL step 3"
FROM s, plain;

\echo
\echo '== (c) A/B split of the final audience: wam.segment_split(segment, 2, 42) =='

WITH audience AS (
    SELECT ((SELECT members FROM demo.tag_segment WHERE tag = 'interest-beauty')
          & (SELECT members FROM demo.tag_segment WHERE tag = 'stage-purchased'))
          - (SELECT members FROM demo.tag_segment WHERE tag = 'product-lipstick') AS seg
)
SELECT CASE h.half WHEN 1 THEN 'A' WHEN 2 THEN 'B' END AS "group",
       wam.segment_cardinality(h.part) AS customers,
       round(100.0 * wam.segment_cardinality(h.part) / wam.segment_cardinality(a.seg), 1) AS "share %"
FROM audience AS a
CROSS JOIN LATERAL wam.segment_split(a.seg, 2, 42) WITH ORDINALITY AS h(part, half)
ORDER BY h.half;

\echo
\echo '== (d) The same funnel in the segment-expression language, on the extension''s own tables =='
\echo '   the demo customers and tags are loaded into wam.customer and wam.tag with wam.attach_tag();'
\echo '   wam.audience_funnel() shows the size at every node of the expression (R-S2)'

-- Customers get deterministic Taiwanese mobile numbers (E.164 8869xxxxxxxx) and consent
-- (a later section sends to them); tags go into the dimension their prefix names.
INSERT INTO wam.customer (id, phone, name, locale, consent_at, consent_source)
SELECT id, '8869' || lpad(id::text, 8, '0'), name, 'zh-TW', now() - interval '90 days', 'demo'
FROM demo.customer;

SELECT count(*) AS tags_created
FROM (SELECT wam.create_tag(tag,
                            CASE WHEN tag LIKE 'interest-%' OR tag LIKE 'product-%' THEN 'interest'
                                 WHEN tag LIKE 'source-%' THEN 'source channel'
                                 WHEN tag IN ('stage-purchased', 'new-customer', 'cart-abandoned') THEN 'purchase stage'
                                 WHEN tag IN ('high-value-customer', 'vip', 'price-sensitive') THEN 'spending power'
                                 ELSE 'engagement' END)
      FROM demo.tag_segment ORDER BY tag) AS t;

SELECT sum(wam.attach_tag(tag, members, source => 'import')) AS memberships_attached
FROM demo.tag_segment;

-- Behaviour: link clicks over the last 10 days for a quarter of the customers, and orders
-- in the last week for some of them (R-S4: clicked 3+ times in 7 days without ordering).
INSERT INTO wam.event (customer_id, kind, occurred_at)
SELECT c.id, 'link_click', now() - (k * 2 + 1) * interval '1 day' + (c.id % 3600) * interval '1 second'
FROM demo.customer AS c
CROSS JOIN generate_series(0, 4) AS k
WHERE demo.u(c.id, 20) < 0.25 AND demo.u(c.id, 21 + k) < 0.7;

INSERT INTO wam.event (customer_id, kind, occurred_at)
SELECT c.id, 'order', now() - interval '2 days'
FROM demo.customer AS c
WHERE demo.u(c.id, 20) < 0.25 AND demo.u(c.id, 30) < 0.3;

SELECT step, depth, expression, customers
FROM wam.audience_funnel('interest-beauty AND stage-purchased EXCLUDE product-lipstick');

\echo
\echo '   R-S4: event(link_click) >= 3 within 7d EXCLUDE event(order) within 7d'

SELECT step, depth, expression, customers
FROM wam.audience_funnel('event(link_click) >= 3 within 7d EXCLUDE event(order) within 7d');

\echo
\echo '   a saved segment (@name) reused in a count; wam.audience_size() never materialises'

SELECT 'beauty-buyers' AS saved_segment
FROM wam.define_segment('beauty-buyers', 'interest-beauty & stage-purchased');
SELECT wam.audience_size('@beauty-buyers - product-lipstick') AS "@beauty-buyers - product-lipstick",
       wam.audience_size('@beauty-buyers AND reachable AND NOT vip') AS "@beauty-buyers AND reachable AND NOT vip";

\echo
\echo '== (e) Referral program: a code and its wa.me link, the abuse trigger, a reward (R-F1 ... R-F6) =='

SELECT wam.create_referral_program('demo friends', '{"business_number": "+886 2 2345 6789",
    "landing_url": "https://shop.example/join", "min_order": 100, "flat_cost_cap": 200,
    "tiers": [{"at": 1, "reward": "50-unit coupon", "cost": 50}, {"at": 3, "reward": "free sample", "cost": 8}]}') AS program_id \gset
SELECT wam.referral_code(1, 'demo friends') AS code_1 \gset
SELECT wam.referral_link(1, 'demo friends') AS whatsapp_link,
       wam.referral_landing_url(1, 'demo friends', '{"utm_content": "story"}') AS landing_url;
-- customer 1 once paid with this card (the application sends fingerprints as it sees them)
SELECT wam.record_fingerprint(1, '{"payment": "card-4242"}') AS fingerprints_recorded;

\echo
\echo '   every attempt is kept; the C trigger decides its status in the recording transaction'
SELECT a.who, wam.record_referral(a.code, a.invitee, a.source) AS status
FROM (VALUES (1, 'customer 1 invites customer 1001', :'code_1', 1001, NULL::jsonb),
             (2, 'customer 1 invites customer 1', :'code_1', 1, NULL),
             (3, 'a typo in customer 1''s code', overlay(:'code_1' placing CASE WHEN substr(:'code_1', 5, 1) = 'A' THEN 'B' ELSE 'A' END from 5 for 1), 1002, NULL),
             (4, 'customer 2 invites customer 1001 too', wam.referral_code(2, 'demo friends'), 1001, NULL),
             (5, 'customer 1001 invites customer 1 back', wam.referral_code(1001, 'demo friends'), 1, NULL),
             (6, 'customer 1 invites 1003, same card', :'code_1', 1003, '{"payment": "card-4242"}'),
             (7, 'customer 1 invites customer 1004', :'code_1', 1004, '{"channel": "whatsapp"}'))
     AS a(n, who, code, invitee, source)
ORDER BY a.n;

\echo
\echo '   customer 1001 orders 150 (minimum 100): the referral qualifies, tier 1 gives a reward'
SELECT wam.record_order(1001, 150) > 0 AS order_recorded;
SELECT invitee_id, status FROM wam.referral WHERE program_id = :program_id AND status <> 'rejected' ORDER BY id;
SELECT tier, reward, cost, status, redemption_code ~ '^[0-9A-HJKMNP-TV-Z]{13}$' AS unique_redemption_code, notify_status
FROM wam.referral_reward WHERE program_id = :program_id;
SELECT metric, item, value FROM wam.referral_report('demo friends', now() - interval '1 day', now() + interval '1 day')
WHERE metric IN ('invitations', 'accepted', 'status', 'rejected', 'conversion', 'rewards', 'reward cost', 'revenue', 'roi')
ORDER BY metric, item;

\echo
\echo 'Demo tables: demo.customer, demo.customer_tag, demo.tag_segment (wam.segment per tag).'

\if :{?api_url}
\echo
\echo '== (f) A small campaign through the sender worker to the mock WhatsApp Cloud API =='
\echo '   (test/mock/wa_mock.py over TLS; bash test/run demo starts it)'

-- The worker (shared_preload_libraries, wam.worker_database = postgres) picks this sender up at once.
SELECT wam.create_sender('demo shop', '106540352242922', 'test-token', 'test-app-secret',
                         :'api_url', 600) AS sender_id \gset

-- 60 of the demo customers as wam customers (section (d) has loaded them, with consent).
INSERT INTO wam.customer (id, phone, name, consent_at, consent_source)
SELECT id, '1555' || lpad(id::text, 7, '0'), 'Customer ' || id,
       CASE WHEN id % 10 <> 0 THEN now() END, CASE WHEN id % 10 <> 0 THEN 'demo sign-up form' END
FROM demo.customer WHERE id <= 60
ON CONFLICT (id) DO NOTHING;

-- The campaign's audience: a tag on those 60; its send window: the hours around now, every
-- day, in the customers' own time (their Taiwanese numbers put them in Asia/Taipei).
SELECT wam.create_tag('demo-wave', 'interest') IS NOT NULL AS tag_created;
SELECT wam.attach_tag('demo-wave', wam.segment_range(1, 61)) IS NOT NULL AS tagged;
SELECT wam.customer_time_zone(time_zone, phone) AS customers_zone,
       'daily ' || to_char(now() AT TIME ZONE wam.customer_time_zone(time_zone, phone) - interval '1 hour', 'HH24:00') || '-'
       || to_char(now() AT TIME ZONE wam.customer_time_zone(time_zone, phone) + interval '2 hours', 'HH24:00') AS demo_window
FROM wam.customer WHERE id = 1 \gset
\echo '   send window (local time of' :customers_zone '):' :demo_window
SELECT wam.create_campaign('spring demo', 'demo-wave',
    '{"type": "template", "template": {"name": "spring_sale", "language": {"code": "en"},
      "components": [{"type": "body", "parameters": [{"type": "text", "text": "{first_name}"},
                                                     {"type": "text", "text": "{amount}"}]}]}}',
    ARRAY['demo shop'], vars => '{"amount": "15%"}', cost_per_message => 0.05,
    send_windows => :'demo_window') IS NOT NULL AS campaign_created;
-- its follow-up: an hour later, to those who did not read it, with an extra coupon
SELECT wam.create_follow_up('spring demo', 'spring demo reminder',
    '{"type": "template", "template": {"name": "spring_reminder", "language": {"code": "en"},
      "components": [{"type": "body", "parameters": [{"type": "text", "text": "{coupon}"}]}]}}',
    after => '1 hour', unless => 'read', vars => '{"coupon": "EXTRA5"}') IS NOT NULL AS follow_up_created;

\echo
\echo 'wam.preview_campaign: what the launch will do'
SELECT audience_size, no_consent, contact_policy, no_send_window, recipients, deferred, expected_cost, expected_duration
FROM wam.preview_campaign('spring demo');
\echo 'wam.launch_campaign: the same numbers, and the messages queued'
SELECT audience_size, no_consent, contact_policy, no_send_window, recipients, deferred, expected_cost, expected_duration
FROM wam.launch_campaign('spring demo');

-- wait (at most 30 s) for the worker to drain the queue
DO $wait$
BEGIN
    FOR i IN 1 .. 300 LOOP
        EXIT WHEN NOT EXISTS (SELECT FROM wam.outbox WHERE status IN ('queued', 'sending', 'retrying'));
        PERFORM pg_sleep(0.1);
    END LOOP;
END
$wait$;

\echo
\echo 'wam.worker_status right after the drain'
SELECT sender, state, configured_rate_per_minute AS rate, in_flight, sent_last_minute, queue_depth, last_error
FROM wam.worker_status;

\echo
\echo 'Status webhooks from the mock, fed to wam.ingest_webhook (signatures verified):'
\! sh -c "$WAM_DEMO_PUMP"
\o /dev/null
\i :pump_file
\o
SELECT status, count(*) AS messages, min(error_code) AS error_code
FROM wam.outbox WHERE campaign = 'spring demo' GROUP BY status ORDER BY status;

\echo
\echo 'wam.delivery_report (R-M6 health flags)'
\x on
SELECT * FROM wam.delivery_report(now() - interval '1 hour', now() + interval '1 minute');
\x off

\echo
\echo 'Three recipients open the link (your redirect calls wam.record_click); two of them order'
SELECT count(wam.record_click(o.message_id, 'https://shop.example.com/spring')) AS clicks
FROM (SELECT message_id FROM wam.outbox WHERE campaign = 'spring demo' AND wamid IS NOT NULL
      ORDER BY message_id LIMIT 3) o;
SELECT count(wam.record_order(o.customer_id, 24.90)) AS orders
FROM (SELECT customer_id FROM wam.outbox WHERE campaign = 'spring demo' AND wamid IS NOT NULL
      ORDER BY message_id LIMIT 2) o;
SELECT clicked, converted, orders, revenue, cost, roi, roi_health FROM wam.campaign_report('spring demo');

\echo
\echo 'A second campaign to the same customers now: the contact policy (36 hours apart) holds it back'
SELECT wam.create_campaign('summer demo', 'demo-wave',
    '{"type": "template", "template": {"name": "summer_sale", "language": {"code": "en"}}}',
    ARRAY['demo shop'], ends_at => now() + interval '1 day') IS NOT NULL AS campaign_created;
SELECT audience_size, no_consent, contact_policy, recipients FROM wam.preview_campaign('summer demo');

\echo
\echo 'An hour later (the job, on a shifted clock): spring demo is finished, its +1 h report is kept,'
\echo 'and the follow-up goes to those who did not read; the policy makes it wait 36 hours'
SELECT * FROM wam.advance_campaigns(now() + interval '61 minutes');
SELECT c.name, count(*) AS messages, min(o.next_attempt_at) - now() > interval '35 hours' AS waits_36_hours,
       count(*) = (SELECT count(*) FROM wam.outbox r WHERE r.campaign = 'spring demo' AND r.read_at IS NULL
                   AND (r.sent_at IS NOT NULL OR r.wamid IS NOT NULL)) AS to_the_unread
FROM wam.outbox o JOIN wam.campaign c USING (campaign_id) WHERE c.name = 'spring demo reminder' GROUP BY 1;

\echo
\echo 'A day later: the +24 h report; both snapshots of wam.campaign_report'
SELECT 'ran' AS campaign_states_job FROM (SELECT count(*) FROM wam.advance_campaigns(now() + interval '24 hours 1 minute')) x;
SELECT s.after, s.report->>'sent' AS sent, s.report->>'delivered' AS delivered, s.report->>'read' AS read,
       s.report->>'delivery_health' AS delivery_health, s.report->>'read_health' AS read_health
FROM wam.campaign_snapshot s JOIN wam.campaign c USING (campaign_id) WHERE c.name = 'spring demo' ORDER BY s.after;
\x on
SELECT * FROM wam.campaign_report('spring demo');
\x off

\echo
\echo '== (g) An A/B test decided by statistics, the winner rolled out by itself =='
-- 1,200 more customers with consent; the sender at a higher rate for this section
INSERT INTO wam.customer (id, phone, name, consent_at, consent_source)
SELECT g, '1557' || lpad(g::text, 7, '0'), 'Customer ' || g, now() - interval '1 day', 'demo sign-up form'
FROM generate_series(200001, 201200) g;
SELECT wam.create_tag('demo-ab', 'interest') IS NOT NULL AS tag_created;
SELECT wam.attach_tag('demo-ab', wam.segment_range(200001, 201201)) IS NOT NULL AS tagged;
SELECT (wam.configure_sender('demo shop', rate_per_minute => 60000)).rate_per_minute;
SELECT wam.create_campaign('autumn demo', 'demo-ab',
    '{"type": "template", "template": {"name": "autumn_sale", "language": {"code": "en"}}}',
    ARRAY['demo shop'], cost_per_message => 0.05) IS NOT NULL AS campaign_created;
SELECT wam.add_campaign_variant('autumn demo',
    '{"type": "template", "template": {"name": "autumn_sale_short", "language": {"code": "en"}}}') AS variant;
SELECT metric, threshold, group_size, test_window
FROM wam.configure_campaign_test('autumn demo', '{"threshold": 1000, "group_size": 250, "baseline": 0.75, "seed": 2026}');
\echo 'wam.preview_campaign_test: two groups of 250, the rest waits for the winner'
SELECT arms, testing, per_arm, rest, metric, baseline, baseline_source, needed_per_arm, enough
FROM wam.preview_campaign_test('autumn demo');
SELECT recipients FROM wam.launch_campaign('autumn demo');
DO $wait$
BEGIN
    FOR i IN 1 .. 300 LOOP
        EXIT WHEN NOT EXISTS (SELECT FROM wam.outbox WHERE status IN ('queued', 'sending', 'retrying'));
        PERFORM pg_sleep(0.1);
    END LOOP;
END
$wait$;
\! sh -c "$WAM_DEMO_PUMP"
\o /dev/null
\i :pump_file
\o
\echo 'The mock reads both variants alike; here more of B''s recipients read it (simulated):'
UPDATE wam.outbox SET read_at = coalesce(read_at, now()), status = 'read'
WHERE campaign = 'autumn demo' AND variant = 'B' AND delivered_at IS NOT NULL AND customer_id % 20 <> 0;
SELECT * FROM wam.campaign_test_report('autumn demo');
\echo 'An hour later (the "campaign states" job, on a shifted clock): the decision and the rollout'
SELECT * FROM wam.advance_campaigns(now() + interval '61 minutes') WHERE campaign = 'autumn demo';
SELECT state, winner, reason FROM wam.campaign_test_status WHERE campaign = 'autumn demo';
SELECT variant, count(*) AS messages FROM wam.outbox WHERE campaign = 'autumn demo' GROUP BY 1 ORDER BY 1;
\endif

\echo
\echo '== (h) A group-exclusive offer from creation to redemption, and its week (R-G1 ... R-G5) =='
\echo '   a WhatsApp group of 200 demo customers, one of them its admin; group(name) in expressions'
SELECT wam.create_group('demo-mums-taipei') AS group_id;
SELECT wam.add_group_members('demo-mums-taipei', wam.segment_range(1, 201)) AS members,
       wam.add_group_members('demo-mums-taipei', wam.segment(ARRAY[1]::bigint[]), 'admin') AS admins;
SELECT wam.audience_size('group(demo-mums-taipei) AND interest-beauty') AS beauty_fans_in_the_group;
\echo '   the offer: 20 % off above 100 for the first 50, 7 days; gift tiers by order amount'
SELECT wam.create_offer('demo first 50', group_name => 'demo-mums-taipei', code => 'MUMS20', discount_percent => 20,
                        min_order => 100, total_limit => 50, group_price => 400, public_price => 500) AS offer_id;
SELECT wam.set_offer_gifts('demo first 50', '[{"min_amount": 1200, "gift": "sample pack", "cost": 45},
                                              {"min_amount": 2500, "gift": "bigger gift", "cost": 90}]') AS gift_tiers;
\echo '   a group price only 8 % below the public price needs a reason, which is logged'
SELECT wam.create_offer('demo clearance', group_name => 'demo-mums-taipei', code => 'MUMSLAST', discount_amount => 40,
                        group_price => 460, public_price => 500, force_reason => 'end-of-line stock') AS forced_offer;
SELECT o.name, p.below_public, p.reason FROM wam.offer_price_override p JOIN wam.offer o USING (offer_id);
\echo '   60 members order with the code (and one outsider): the first 50 get the discount'
CREATE FUNCTION demo.order_with_code(customer bigint, amount numeric, code text) RETURNS text LANGUAGE plpgsql AS $f$
BEGIN
    PERFORM wam.record_order(customer, amount, code => code);
    RETURN 'redeemed';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ' ' || regexp_replace(SQLERRM, '^code "[^"]*" refused: ', '');
END
$f$;
SELECT result, count(*) FROM (SELECT demo.order_with_code(g, 300 + (g * 53) % 2700, 'mums20') AS result
                              FROM generate_series(2, 61) g
                              UNION ALL SELECT demo.order_with_code(500, 800, 'MUMS20')) x
GROUP BY 1 ORDER BY 2 DESC;
SELECT r.gift, count(*) AS redemptions, sum(r.discount) AS discount FROM wam.code_redemption r
JOIN wam.offer o USING (offer_id) WHERE o.name = 'demo first 50' GROUP BY 1 ORDER BY 1 NULLS FIRST;
\echo '   a refund gives one redemption back; the next member gets it'
SELECT wam.refund_order(2, (SELECT order_id FROM wam.code_redemption WHERE customer_id = 2)) AS reversed,
       demo.order_with_code(62, 500, 'MUMS20') AS member_62;
SELECT name, redeemed, total_limit FROM wam.offer WHERE name = 'demo first 50';
\echo '   the referral reward of customer 1 (section e) is redeemed through the same path'
SELECT demo.order_with_code(1, 200, (SELECT redemption_code FROM wam.referral_reward WHERE referrer_id = 1 LIMIT 1)) AS reward_code,
       demo.order_with_code(1, 200, (SELECT redemption_code FROM wam.referral_reward WHERE referrer_id = 1 LIMIT 1)) AS again;
\echo '   the week per group and offer, and the admin''s 3 % commission'
\x on
SELECT * FROM wam.group_economics(now() - interval '1 day', now() + interval '1 day') WHERE group_name = 'demo-mums-taipei';
\x off
SELECT group_name, admin, order_amount, commission
FROM wam.group_admin_commission(now() - interval '1 day', now() + interval '1 day') WHERE group_name = 'demo-mums-taipei';
