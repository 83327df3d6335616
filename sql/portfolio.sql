-- business portfolios: the messaging limit their senders share (unique recipients of
-- templates outside the customer-service window per moving 24 hours), enforced when the
-- worker claims messages, beside each number's own cap
-- (in a database of its own: the ids and senders below are fixed)
SELECT current_database() AS orig_db \gset
CREATE DATABASE wam_portfolio_regress;
\c wam_portfolio_regress
CREATE EXTENSION pg_wamarketing;
SET client_min_messages = notice;

-- the seeded portfolio: every sender starts in it, without a limit
SELECT portfolio_id, name, daily_limit, limit_source, recipients_24h FROM wam.portfolio;
SELECT wam.create_sender('a', '1001', 'EAAtoken-a', 'secret-a', 'https://localhost:9') AS a,
	   wam.create_sender('b', '1002', 'EAAtoken-b', 'secret-b', 'https://localhost:9') AS b,
	   wam.create_sender('c', '1003', 'EAAtoken-c', 'secret-c', 'https://localhost:9') AS c \gset
SELECT name, portfolio_id, waba_id, display_phone FROM wam.sender ORDER BY name;

-- creating and configuring portfolios
SELECT wam.create_portfolio('');
SELECT wam.create_portfolio(NULL);
SELECT wam.create_portfolio('default');
SELECT wam.create_portfolio('shop', -1);
SELECT wam.create_portfolio('shop', 3) AS shop_id;
SELECT name, daily_limit, limit_source, recipients_24h FROM wam.portfolio ORDER BY portfolio_id;
SELECT wam.configure_portfolio('nope', 1);
SELECT wam.configure_portfolio('shop', NULL);
SELECT wam.configure_portfolio('shop', -1);
SELECT name, daily_limit FROM wam.configure_portfolio('shop', 0);
SELECT name, daily_limit FROM wam.configure_portfolio('shop', 1);
SELECT name, daily_limit FROM wam.configure_portfolio('shop', 3);
SELECT wam.portfolio_id('shop'), wam.portfolio_id('default');
SELECT wam.portfolio_id('nope');

-- a sender's portfolio, account and display phone
SELECT wam.configure_sender_account(NULL, 'shop');
SELECT wam.configure_sender_account('a', 'nope');
SELECT wam.configure_sender_account('a', waba_id => '10229x');
SELECT wam.configure_sender_account('a', display_phone => '+1 555');
SELECT name, portfolio_id, waba_id, display_phone
FROM wam.configure_sender_account('a', 'shop', '102290129340398', '+1 (555) 078-3881');
SELECT name, portfolio_id, waba_id, display_phone FROM wam.configure_sender_account('a');
SELECT name, portfolio_id, waba_id, display_phone FROM wam.configure_sender_account('a', waba_id => '', display_phone => '');
SELECT name, portfolio_id FROM wam.configure_sender_account('b', 'shop');
SELECT portfolio, daily_limit, recipients_24h, remaining, limit_source, limit_changed_at IS NOT NULL AS changed, senders
FROM wam.portfolio_status ORDER BY portfolio;

-- customers 1..9 with consent; 6 wrote 1 hour ago (its window is open)
INSERT INTO wam.customer (id, phone, consent_at, consent_source)
SELECT g, (15550000000 + g)::text, now() - interval '1 day', 'shop' FROM generate_series(1, 9) g;
UPDATE wam.customer SET last_inbound_at = now() - interval '1 hour' WHERE id = 6;
\set tpl '{"type":"template","template":{"name":"sale","language":{"code":"en"}}}'
\set txt '{"type":"text","text":{"body":"hi"}}'
CREATE FUNCTION pg_temp.claimed(sender text, n integer DEFAULT 10) RETURNS text
LANGUAGE sql RETURN (SELECT coalesce(string_agg(o.recipient, ' ' ORDER BY o.recipient), '-')
					 FROM wam_internal.claim_batch(wam.sender_id(sender), n) b JOIN wam.outbox o USING (message_id));
-- a: templates to 1, 2, 3, 4; b: templates to 3, 5, 6 and a text to 6
SELECT count(wam.enqueue_message(g, :'tpl', 'a')) FROM generate_series(1, 4) g;
SELECT count(wam.enqueue_message(g, :'tpl', 'b')) FROM unnest('{3,5,6}'::int[]) g;
SELECT wam.enqueue_message(6, :'txt', 'b') IS NOT NULL AS queued;

-- limit 3: a reaches three new recipients, the fourth waits
SELECT pg_temp.claimed('a') AS a_claims;
SELECT daily_limit, recipients_24h, remaining FROM wam.portfolio_status WHERE portfolio = 'shop';
-- b, at the limit: 3 is counted already, 6 has an open window (not counted); 5 waits
SELECT pg_temp.claimed('b') AS b_claims;
-- (the text to 6 waits 6 s behind the template: the pair limit)
SELECT recipient, last_sent_at > now() - interval '1 minute' AS just_now FROM wam.portfolio_recipient ORDER BY recipient;
SELECT recipients_24h FROM wam.portfolio WHERE name = 'shop';
SELECT pg_temp.claimed('a') AS a_at_limit, pg_temp.claimed('b') AS b_at_limit;
-- one more allowed: the first claim takes it (b's to 5), none is left for a's to 4
SELECT name, daily_limit FROM wam.configure_portfolio('shop', 4);
SELECT pg_temp.claimed('b') AS b_one_more, pg_temp.claimed('a') AS a_none_left;
SELECT daily_limit, recipients_24h, remaining FROM wam.portfolio_status WHERE portfolio = 'shop';

-- the window moves: a recipient counted 24 hours and 1 second ago leaves the count, one
-- counted 23:59:59 ago stays
UPDATE wam.portfolio_recipient SET last_sent_at = now() - interval '24 hours 1 second' WHERE recipient = '15550000001';
UPDATE wam.portfolio_recipient SET last_sent_at = now() - interval '23:59:59' WHERE recipient = '15550000002';
SELECT daily_limit, recipients_24h, remaining FROM wam.portfolio_status WHERE portfolio = 'shop';
SELECT pg_temp.claimed('a') AS a_after_expiry;
SELECT recipient FROM wam.portfolio_recipient ORDER BY recipient;
SELECT recipients_24h FROM wam.portfolio WHERE name = 'shop';

-- the claim holds the portfolio's lock (space 6) to the end of its transaction
SELECT count(wam.enqueue_message(g, :'tpl', 'a')) FROM unnest('{7}'::int[]) g;
BEGIN;
SELECT pg_temp.claimed('a') AS a_claims;
SELECT objid, objsubid - x'57a0'::int AS space, mode, granted FROM pg_locks
WHERE locktype = 'advisory' AND pid = pg_backend_pid() ORDER BY objsubid, objid;
ROLLBACK;
-- a portfolio without a limit takes no lock and counts nothing
BEGIN;
SELECT count(wam.enqueue_message(8, :'tpl', 'c'));
SELECT pg_temp.claimed('c') AS c_claims;
SELECT count(*) AS locks FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid();
ROLLBACK;

-- the number's own cap still applies inside the portfolio (warm-up day 1: 1 recipient)
SELECT name, daily_limit, warmup FROM wam.configure_sender('c', daily_limit => 300, warmup => '{1}');
SELECT count(wam.enqueue_message(g, :'tpl', 'c')) FROM generate_series(7, 9) g;
SELECT pg_temp.claimed('c') AS c_warmup_day_1, pg_temp.claimed('c') AS c_held;
SELECT name, daily_limit, warmup FROM wam.configure_sender('c', daily_limit => 0, warmup => '{}');
-- a limit given to a portfolio counts the templates its senders sent in the last 24 hours
SELECT name, daily_limit, recipients_24h FROM wam.configure_portfolio('default', 2);
SELECT pg_temp.claimed('c') AS c_fills_the_limit, pg_temp.claimed('c') AS c_at_limit;
SELECT name, daily_limit, recipients_24h FROM wam.configure_portfolio('default', 3);
SELECT pg_temp.claimed('c') AS c_one_more;
-- and taken away, forgets them
SELECT name, daily_limit, recipients_24h FROM wam.configure_portfolio('default', 0);
SELECT count(*) AS counted_in_default FROM wam.portfolio_recipient WHERE portfolio_id = 1;
SELECT portfolio, daily_limit, recipients_24h, remaining, limit_source, senders FROM wam.portfolio_status ORDER BY portfolio;

\c :orig_db
DROP DATABASE wam_portfolio_regress;
