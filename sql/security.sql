-- Who the SECURITY DEFINER functions run as, and what a caller holding one of
-- the extension's roles can make them run: nothing of the caller's.
-- (in a database of its own: senders and ids below are fixed)
SELECT current_database() AS orig_db \gset
CREATE DATABASE wam_security_regress;
\c wam_security_regress
CREATE EXTENSION pg_wamarketing;
SET client_min_messages = warning;
\set VERBOSITY default

-- 1. the catalog: every definer function of the extension is owned by
-- wam_definer (never a superuser) and pins search_path
SELECT count(*) > 40 AS many_definer_functions,
	   count(*) FILTER (WHERE r.rolsuper) AS owned_by_a_superuser,
	   count(*) FILTER (WHERE r.rolname <> 'wam_definer') AS owned_by_another_role,
	   count(*) FILTER (WHERE p.proconfig IS NULL
						OR NOT 'search_path=pg_catalog, wam, pg_temp' = ANY (p.proconfig)) AS search_path_not_pinned
FROM pg_proc p
JOIN pg_roles r ON r.oid = p.proowner
JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'pg_wamarketing'
WHERE p.prosecdef;
-- wam_definer: no login, no superuser, no BYPASSRLS, no members, member of nothing
SELECT rolsuper, rolcanlogin, rolbypassrls, rolcreaterole, rolcreatedb, rolreplication, rolinherit
FROM pg_roles WHERE rolname = 'wam_definer';
SELECT count(*) AS memberships FROM pg_auth_members
WHERE roleid = 'wam_definer'::regrole OR member = 'wam_definer'::regrole;
-- it owns no table, so it can neither alter them nor add triggers
SELECT count(*) AS tables_owned FROM pg_class WHERE relowner = 'wam_definer'::regrole;
SELECT count(*) FILTER (WHERE has_table_privilege('wam_definer', c.oid, 'TRIGGER')) AS trigger_privilege,
	   count(*) FILTER (WHERE has_table_privilege('wam_definer', c.oid, 'REFERENCES')) AS references_privilege
FROM pg_class c WHERE c.relnamespace = 'wam'::regnamespace AND c.relkind IN ('r', 'p', 'v');
-- nobody but the installing superuser may create objects in schema wam
SELECT r AS role, has_schema_privilege(r, 'wam', 'CREATE') AS can_create,
	   has_schema_privilege(r, 'wam_internal', 'CREATE') AS can_create_internal
FROM unnest(ARRAY['public', 'wam_reader', 'wam_operator', 'wam_admin', 'wam_definer']) r;
-- the secrets are readable by wam_admin and the definer only
SELECT r AS role, has_table_privilege(r, 'wam.sender_secret', 'SELECT') AS sender_secret,
	   has_table_privilege(r, 'wam.referral_secret', 'SELECT') AS referral_secret,
	   has_table_privilege(r, 'wam.webhook_verify_token', 'SELECT') AS verify_token
FROM unnest(ARRAY['wam_reader', 'wam_operator', 'wam_admin', 'wam_definer']) r;
-- an existing wam_definer with more rights is refused at CREATE EXTENSION
DROP EXTENSION pg_wamarketing;
ALTER ROLE wam_definer LOGIN;
CREATE EXTENSION pg_wamarketing;
ALTER ROLE wam_definer NOLOGIN;
GRANT wam_admin TO wam_definer;
CREATE EXTENSION pg_wamarketing;
REVOKE wam_admin FROM wam_definer;
CREATE EXTENSION pg_wamarketing;

-- set-up (superuser): customers with consent, tags, a sender, a referral program
CREATE ROLE wam_t_admin NOLOGIN IN ROLE wam_admin;
CREATE ROLE wam_t_operator NOLOGIN IN ROLE wam_operator;
SELECT wam.create_tag('vip', 'interest') > 0 AS vip, wam.create_tag('buyer', 'purchase stage') > 0 AS buyer;
INSERT INTO wam.customer (id, phone, name) VALUES (1, '15550000001', 'Ana'), (2, '15550000002', 'Bo'),
	(3, '15550000003', 'Cy'), (4, '15550000004', 'Di');
SELECT setval('wam.customer_id_seq', 100) AS next_ids_after;
SELECT wam.create_sender('main', '106540352242922', 'EAAtoken-main', 'main-secret') AS sender_id;
SELECT wam.create_referral_program('main') > 0 AS program;

-- 2. a rule condition is a segment expression, never SQL: the reproduced
-- wam_admin -> superuser attack (SQL in a rule fired by wam.record_order)
SET ROLE wam_t_admin;
SELECT pg_read_file('PG_VERSION');
INSERT INTO wam.tag_rule (name, on_event, add_tags, condition_sql)
VALUES ('pwn', 'order', '{vip}', $$select 1 as customer_id where set_config('x.y', pg_read_file('PG_VERSION'), false) is not null$$);
INSERT INTO wam.tag_rule (name, on_event, add_tags, condition)
VALUES ('pwn', 'order', '{vip}', $$select 1 as customer_id where set_config('x.y', pg_read_file('PG_VERSION'), false) is not null$$);
SELECT wam.create_tag_rule('pwn', '{vip}', '{}',
	$$select 1 as customer_id where set_config('x.y', pg_read_file('PG_VERSION'), false) is not null$$, 'order');
RESET ROLE;
SET ROLE wam_t_operator;
-- the order fails on the broken rule; nothing of the text ran
SELECT wam.record_order(1, 10);
SELECT coalesce(current_setting('x.y', true), '') AS "x.y";
RESET ROLE;
SET ROLE wam_t_admin;
DELETE FROM wam.tag_rule WHERE name = 'pwn';
-- a real event rule with a condition works inside the same definer path
SELECT wam.create_tag_rule('vip buyers', '{buyer}', '{}', 'vip', 'order') > 0 AS rule;
RESET ROLE;
SELECT wam.attach_tag('vip', '{1,2}');
SET ROLE wam_t_operator;
SELECT wam.record_order(1, 10) > 0 AS ordered_1, wam.record_order(3, 10) > 0 AS ordered_3;
SELECT wam.segment_members(wam.tag_members('buyer')) AS buyers;
RESET ROLE;

-- 3. nothing is resolved from the caller's pg_temp: an operator fills pg_temp
-- with look-alikes of every relation the extension uses (and of the temp tables
-- earlier versions created), each with a trigger or a function that records
-- who ran it, then calls every definer entry point that fires triggers or rules
CREATE TABLE public.trap_log (who name, what text);
GRANT INSERT, SELECT, DELETE ON public.trap_log TO PUBLIC;
SET ROLE wam_t_operator;
CREATE FUNCTION pg_temp.trap() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO public.trap_log VALUES (current_user, TG_TABLE_NAME);
	RETURN NULL;
END $$;
CREATE FUNCTION pg_temp.trapf(what text) RETURNS bigint LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO public.trap_log VALUES (current_user, what);
	RETURN 1;
END $$;
DO $traps$
DECLARE
	n text;
BEGIN
	FOR n IN SELECT c.relname FROM pg_class c WHERE c.relnamespace = 'wam'::regnamespace AND c.relkind IN ('r', 'v')
			 UNION ALL SELECT unnest(ARRAY['wam_webhook_value', 'wam_webhook_inbound', 'wam_import_row', 'wam_result'])
	LOOP
		EXECUTE format('CREATE TEMP TABLE %I (sender_id integer, v jsonb, customer_id bigint, id bigint)', n);
		EXECUTE format('CREATE TRIGGER trap BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON pg_temp.%I '
					   'FOR EACH STATEMENT EXECUTE FUNCTION pg_temp.trap()', n);
	END LOOP;
END
$traps$;
-- a view is read, not written: its function runs on every read
CREATE TEMP VIEW wam_import_csv AS
	SELECT pg_temp.trapf('wam_import_csv') AS line_no, '{phone,tags}'::text[] AS fields, NULL::text AS problem;
SELECT count(*) AS look_alikes FROM pg_class WHERE relnamespace = pg_my_temp_schema();
-- the traps work (so this test can fail): used directly, each records its caller
INSERT INTO pg_temp.wam_webhook_value VALUES (1, '{}');
SELECT count(*) FROM pg_temp.wam_import_csv;
SELECT who, what FROM public.trap_log ORDER BY what;
DELETE FROM public.trap_log;

-- every entry point, as the operator, with the traps in place
SELECT count(wam.record_consent(c, 'web form')) AS consented FROM generate_series(1, 4) c;
SELECT wam.record_opt_out(4, 'asked to stop');
SELECT rows_read, created, failed FROM wam.import_csv(E'phone,tags\n+85291234567,vip\n+85291234568,nope\n');
SELECT line_no, reason FROM wam.import_error ORDER BY line_no;
SELECT wam.upsert_customer('+852 9123 0009', 'Trap Test', 'en-HK', 'asia/hong_kong') > 0 AS upserted;
SELECT wam.attach_tag('vip', '{3}'), wam.detach_tag('vip', '{3}');
SELECT sum(added) AS added FROM wam.retag_customers('{2,3}', '{buyer}', '{}');
SELECT wam.record_order(2, 25) > 0 AS ordered;
SELECT wam.record_referral(wam.referral_code(1, 'main'), 2) IS NOT NULL AS referral_recorded;
\set tpl '{"type":"template","template":{"name":"t","language":{"code":"en"}}}'
SELECT wam.enqueue_message(1, :'tpl', 'main') AS m1 \gset
SELECT wam.enqueue_segment('{2,3,4}', :'tpl', 'main');
SELECT wam.cancel_message(o.message_id) AS cancelled FROM wam.outbox o WHERE o.customer_id = 3;
SELECT wam.define_segment('vips', 'vip AND reachable');
SELECT wam.audience_size('@vips');
SELECT rule, customers FROM wam.run_tag_rules();
SELECT queued FROM wam.enqueue_audience('@vips OR buyer', :'tpl', 'main');
SELECT wam.record_tag_health() > 0 AS reported;
-- the periodic jobs: the first call schedules them; running them ahead of time
-- is the admin's (a year on, each runs)
SELECT count(*) AS scheduled FROM wam.run_due_jobs();
SELECT job, outcome FROM wam.run_due_jobs(now() + interval '1 year') ORDER BY job;
RESET ROLE;
SET ROLE wam_t_admin;
SELECT job, outcome FROM wam.run_due_jobs(now() + interval '1 year') ORDER BY job;
RESET ROLE;
-- a status and an inbound "STOP" for the message, signed like Meta signs them
UPDATE wam.outbox SET status = 'sent', wamid = 'wamid.1', sent_at = now() WHERE message_id = :m1;
SELECT format('{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"messages","value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"1","phone_number_id":"106540352242922"},"contacts":[{"wa_id":"15550000001","profile":{"name":"Ana"}}],"statuses":[{"id":"wamid.1","status":"delivered","timestamp":"%s","recipient_id":"15550000001"}],"messages":[{"from":"15550000001","id":"wamid.in1","timestamp":"%s","type":"text","text":{"body":"STOP"}}]}}]}]}',
	extract(epoch FROM now())::bigint, extract(epoch FROM now())::bigint) AS body \gset
SELECT 'sha256=' || wam.hmac_sha256('main-secret', :'body') AS sig \gset
SET ROLE wam_t_operator;
SELECT wam.ingest_webhook(:'body', :'sig');
SELECT status, opted_out_at IS NOT NULL AS opted_out
FROM wam.outbox o JOIN wam.customer c ON c.id = o.customer_id WHERE o.message_id = :m1;
-- the worker's functions are not the operator's to call
SELECT wam_internal.claim_batch(1, 10);
SELECT wam_internal.record_results('{1}', '{http}', '{200}', '{"{}"}', '{NULL}');
RESET ROLE;
SET ROLE wam_t_admin;
SELECT rule, customers FROM wam.run_tag_rules();
SELECT count(*) > 0 AS rfm_refreshed FROM wam.refresh_rfm();
SELECT count(*) > 0 AS audited FROM wam.audit_tags(interval '180 days', 'historical stock');
SELECT count(*) AS split_parts FROM wam.split_tag('buyer', 'spend');
-- an admin changes schedules, never the set of jobs
INSERT INTO wam.job (job, run_every, description) VALUES ('expire tags', '1 minute', 'x');
UPDATE wam.job SET job = 'run tag rules' WHERE job = 'expire tags';
RESET ROLE;
-- no trap fired: the definer code read and wrote only the extension's own relations
SELECT who, what FROM public.trap_log;
SELECT count(*) FILTER (WHERE c.relname = 'wam_import_csv') AS view_left, count(*) AS look_alikes_left
FROM pg_class c WHERE c.relnamespace = pg_my_temp_schema();

\c :orig_db
DROP DATABASE wam_security_regress;
DROP ROLE wam_t_admin, wam_t_operator;
