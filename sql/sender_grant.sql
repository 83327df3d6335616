-- staff grants per sender (R-M8): which staff role may send from which number, enforced
-- by the database at every entry point that queues messages from a named sender; tried
-- as an attacker (an operator without the grant) through each entry point and around it
-- (in a database of its own: the senders below are fixed)
SELECT current_database() AS orig_db \gset
CREATE DATABASE wam_sender_grant_regress;
ALTER DATABASE wam_sender_grant_regress SET client_min_messages = warning;
\c wam_sender_grant_regress
CREATE EXTENSION pg_wamarketing;
SET client_min_messages = warning;
\set SHOW_CONTEXT never
SELECT current_user AS su \gset
-- sales: the team allowed the VIP number; alice is in it, mallory (an operator too) is
-- not; each logs in as herself (\c), so session_user is hers, as in production
CREATE ROLE grant_sales NOLOGIN;
CREATE ROLE grant_alice LOGIN IN ROLE wam_operator, grant_sales;
CREATE ROLE grant_mallory LOGIN IN ROLE wam_operator;
CREATE ROLE grant_boss LOGIN IN ROLE wam_admin;
CREATE ROLE grant_gone NOLOGIN;
CREATE ROLE grant_reader LOGIN IN ROLE wam_reader;

SELECT wam.create_sender('vip', '1001', 'EAAtoken-vip-secret', 'vip-app-secret', 'https://localhost:9') AS vip,
	   wam.create_sender('open', '1002', 'EAAtoken-open', 'open-app-secret', 'https://localhost:9') AS open \gset
INSERT INTO wam.customer (id, phone, consent_at, consent_source)
SELECT g, (15550000000 + g)::text, now(), 'shop' FROM generate_series(1, 4) g;
SELECT wam.create_tag('all4', 'interest') IS NOT NULL AS tagged;
SELECT wam.attach_tag('all4', wam.segment_range(1, 4)) IS NOT NULL AS attached;
\set tpl '{"type":"template","template":{"name":"sale","language":{"code":"en"}}}'

-- granting: administrators only, to roles that exist
SELECT wam.grant_sender(NULL, 'grant_sales');
SELECT wam.grant_sender('vip', NULL);
SELECT wam.grant_sender('nope', 'grant_sales');
SELECT wam.grant_sender('vip', 'grant_nobody');
SELECT wam.grant_sender('vip', 'grant_sales') AS granted;
SELECT wam.grant_sender('vip', 'grant_sales') AS granted_again;
SELECT s.name, g.role_name, g.granted_by = session_user AS by_me FROM wam.sender_grant g JOIN wam.sender s USING (sender_id);
\c - grant_mallory
SELECT wam.grant_sender('vip', 'grant_mallory');
SELECT wam.revoke_sender('vip', 'grant_sales');
INSERT INTO wam.sender_grant (sender_id, role_name, granted_by) VALUES (:vip, 'grant_mallory', 'grant_mallory');
DELETE FROM wam.sender_grant;
\c - :su
\c - grant_reader
SELECT s.name, g.role_name FROM wam.sender_grant g JOIN wam.sender s USING (sender_id);
\c - :su

-- mallory, through every entry point that names the VIP number: refused (42501), the
-- sender and the granted role named, nothing queued
\c - grant_mallory
SELECT session_user, current_user;
SELECT wam.enqueue_message(1, :'tpl', 'vip');
\set VERBOSITY sqlstate
SELECT wam.enqueue_message(1, :'tpl', 'vip');
\set VERBOSITY default
SELECT * FROM wam.enqueue_segment(wam.segment_range(1, 4), :'tpl', 'vip');
SELECT * FROM wam.enqueue_audience('all4', :'tpl', 'vip');
SELECT wam.create_campaign('m1', 'all4', :'tpl', ARRAY['vip']);
SELECT wam.create_campaign('m1', 'all4', :'tpl', ARRAY['open', 'vip']);
-- the open number is everyone's
SELECT wam.enqueue_message(1, :'tpl', 'open') IS NOT NULL AS queued_on_open;
SELECT wam.create_campaign('m2', 'all4', :'tpl', ARRAY['open']) IS NOT NULL AS created_on_open;
SELECT wam.configure_campaign('m2', '{"senders": ["open", "vip"]}');
SELECT (wam.configure_campaign('m2', '{"senders": ["open"]}')).state;
\c - :su
-- alice's campaign on the VIP number: mallory may neither change, follow up nor launch it
\c - grant_alice
SELECT wam.create_campaign('a1', 'all4', :'tpl', ARRAY['vip']) IS NOT NULL AS alice_created;
SELECT wam.create_campaign('a2', 'all4', :'tpl', ARRAY['vip']) IS NOT NULL AS alice_created;
\c - :su
\c - grant_mallory
SELECT wam.configure_campaign('a1', '{"budget": 1}');
SELECT wam.create_follow_up('a1', 'a1-again', :'tpl');
SELECT recipients FROM wam.launch_campaign('a1');
-- around the checks: a role mallory is not in, another session user, the tables, the
-- internals, a definer function of mallory's own (it runs in her session)
SET ROLE grant_sales;
SET ROLE grant_alice;
SET SESSION AUTHORIZATION grant_alice;
INSERT INTO wam.outbox (sender_id, customer_id, recipient, payload) VALUES (:vip, 1, '15550000001', :'tpl');
UPDATE wam.campaign SET senders = ARRAY[:open] WHERE name = 'a1';
SELECT wam_internal.check_sender_use(ARRAY[:vip]);
SELECT count(*) FROM wam_internal.claim_batch(:vip, 10);
CREATE FUNCTION pg_temp.sneak() RETURNS bigint LANGUAGE sql SECURITY DEFINER
RETURN wam.enqueue_message(2, '{"type":"template","template":{"name":"sale","language":{"code":"en"}}}', 'vip');
SELECT pg_temp.sneak();
\c - :su
SELECT s.name AS sender, count(*) AS queued FROM wam.outbox o JOIN wam.sender s USING (sender_id) GROUP BY 1 ORDER BY 1;
SELECT name, state FROM wam.campaign ORDER BY name;
SELECT count(*) AS mallory_changes_to_alices FROM wam.campaign_change c JOIN wam.campaign USING (campaign_id)
WHERE c.changed_by = 'grant_mallory' AND name IN ('a1', 'a2');

-- alice (a member of sales) and an administrator may
\c - grant_alice
SELECT wam.enqueue_message(1, :'tpl', 'vip') IS NOT NULL AS alice_queued;
SELECT queued FROM wam.enqueue_audience('all4', :'tpl', 'vip');
SELECT (wam.configure_campaign('a1', '{"budget": 10}')).budget;
SELECT recipients FROM wam.launch_campaign('a1');
-- alice's SET ROLE to a role without the grant does not narrow her login's rights
SET ROLE wam_operator;
SELECT current_user, wam.enqueue_message(2, :'tpl', 'vip') IS NOT NULL AS queued_as_operator;
RESET ROLE;
\c - :su
\c - grant_boss
SELECT wam.enqueue_message(3, :'tpl', 'vip') IS NOT NULL AS boss_queued;
\c - :su

-- several grants: a member of any of them may; a grant to a role dropped since lets no one in
SELECT wam.grant_sender('vip', 'grant_gone') AS granted;
DROP ROLE grant_gone;
SELECT role_name FROM wam.sender_grant ORDER BY 1;
\c - grant_alice
SELECT wam.enqueue_message(4, :'tpl', 'vip') IS NOT NULL AS alice_still;
\c - :su
SELECT wam.revoke_sender('vip', 'grant_sales') AS revoked;
\c - grant_alice
SELECT wam.enqueue_message(4, :'tpl', 'vip');
\c - :su
-- revoked all: the number is open to every operator again
SELECT wam.revoke_sender('vip', 'grant_gone') AS revoked, wam.revoke_sender('vip', 'grant_gone') AS revoked_again;
SELECT wam.revoke_sender('nope', 'grant_sales');
\c - grant_mallory
SELECT wam.enqueue_message(4, :'tpl', 'vip') IS NOT NULL AS mallory_queued_now;
\c - :su
-- a sender dropped takes its grants with it
SELECT wam.grant_sender('open', 'grant_sales') AS granted;
DELETE FROM wam.outbox WHERE sender_id = :open;
DELETE FROM wam.campaign WHERE :open = ANY (senders);
DELETE FROM wam.sender WHERE name = 'open';
SELECT count(*) AS grants_left FROM wam.sender_grant;

\c :orig_db
DROP DATABASE wam_sender_grant_regress;
DROP ROLE grant_sales, grant_alice, grant_mallory, grant_boss, grant_reader;
