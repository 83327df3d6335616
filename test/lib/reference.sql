-- test/lib/reference.sql — docs/reference.md (the reference README.md links to), generated from the
-- catalog and its comments (psql -X -At -f test/lib/reference.sql in a database
-- with the extension).  test/t/readme.sh checks that docs/reference.md holds exactly this
-- output between the reference markers, so the manual cannot drift from the code.
--
-- Functions are grouped by subsystem by name; the lowest role that may execute
-- each is read from its ACL (any = PUBLIC, reader, operator, admin, superuser).

\set QUIET on
\pset footer off
CREATE TEMP VIEW ref_fn AS
SELECT p.oid, p.proname,
	   CASE
		   WHEN p.proname ~ '^(segment|all_customers$)' THEN '1 Segments (the type)'
		   WHEN p.proname ~ '^(audience|define_segment$|drop_segment$)' THEN '2 Segment expressions'
		   WHEN p.proname ~ '(group|offer|gift|price_floor)' OR p.proname ~ '^(check_code|redeem_code|refund_order|code_redemptions)$' THEN '10 Groups and offers'
		   WHEN p.proname ~ '^(campaign_orders|record_click|record_mistargeting|roi_health|media_size_limit|lift_p_value|test_sample_size|welch_test|click_decay|acknowledge_alert|add_campaign_variant)$' THEN '7 Sending'
		   WHEN p.proname ~ '(rfm|order|value_report)' THEN '5 Orders and RFM'
		   WHEN p.proname ~ '(tag|tags|retag_customers)($|_)' OR p.proname ~ '^(rule_audience|run_due_jobs|maintain_partitions)$' THEN '3 Tags and automation'
		   WHEN p.proname ~ '^(upsert_customer|time_zone_name|record_consent|record_opt_out|import_csv|csv_|normalize_phone|phone_|(define|drop|set)_attribute$)' THEN '4 Customers and contact import'
		   WHEN p.proname ~ '(clv|bgnbd|gammagamma|hyp2f1|expected_purchases|p_alive|cost)' THEN '6 Lifetime value and cost caps'
		   WHEN p.proname ~ '(webhook|hmac|keyword)' THEN '8 Webhooks'
		   WHEN p.proname ~ '(referral|redemption|fingerprint)' THEN '9 Referrals'
		   WHEN p.proname ~ '(sender|message|campaign|payload|delivery|error_action|worker|api_url|url_encode|enqueue|window|customer_time_zone|rate_health|follow_up|portfolio)' THEN '7 Sending'
		   ELSE '99 Other'
	   END AS grp,
	   CASE
		   WHEN has_function_privilege('public', p.oid, 'EXECUTE') THEN 'any'
		   WHEN has_function_privilege('wam_reader', p.oid, 'EXECUTE') THEN 'reader'
		   WHEN has_function_privilege('wam_operator', p.oid, 'EXECUTE') THEN 'operator'
		   WHEN has_function_privilege('wam_admin', p.oid, 'EXECUTE') THEN 'admin'
		   ELSE 'superuser'
	   END AS who,
	   p.prokind,
	   -- argument names only (types where an argument has no name); "=…" marks a default
	   (SELECT string_agg(CASE WHEN a.n IS NULL OR a.n = '' THEN replace(format_type(a.t, NULL), 'wam.', '') ELSE a.n END
							  || CASE WHEN a.i > p.pronargs - p.pronargdefaults THEN '=…' ELSE '' END, ', ' ORDER BY a.i)
		FROM unnest(p.proargtypes::oid[], (p.proargnames)[1:p.pronargs]) WITH ORDINALITY a(t, n, i)) AS args,
	   -- a table result by its column names (their types are in \df)
	   coalesce((SELECT 'table(' || string_agg(o.n, ', ' ORDER BY o.i) || ')'
				 FROM unnest(p.proargmodes, p.proargnames) WITH ORDINALITY o(m, n, i) WHERE o.m = 't'),
				replace(pg_get_function_result(p.oid), 'wam.', '')) AS result,
	   obj_description(p.oid, 'pg_proc') AS comment
FROM pg_proc p
WHERE p.pronamespace = 'wam'::regnamespace;

-- one list item per function: signature, result (none for void), lowest role allowed, comment
SELECT line FROM (
	SELECT g.grp, 0 AS ord, '' COLLATE "C" AS name, format(E'\n#### %s\n', substr(g.grp, strpos(g.grp, ' ') + 1)) AS line
	FROM (SELECT DISTINCT grp FROM ref_fn) g
	UNION ALL
	SELECT grp, 1, (proname || coalesce(args, '') || pg_get_function_identity_arguments(oid)) COLLATE "C",
		   format('- `%s%s(%s)`%s; %s: %s', CASE prokind WHEN 'a' THEN 'aggregate ' ELSE '' END,
				  proname, coalesce(args, ''), CASE WHEN result = 'void' THEN '' ELSE ' → ' || result END,
				  who, coalesce(comment, '(no comment)'))
	FROM ref_fn
) x
ORDER BY split_part(grp, ' ', 1)::int, ord, name;

SELECT E'\n#### Tables and views\n\n| Relation | Kind | Readable by | What it holds |\n|---|---|---|---|';
SELECT format('| `wam.%s` | %s | %s | %s |', c.relname, CASE c.relkind WHEN 'v' THEN 'view' ELSE 'table' END,
			  CASE
				  WHEN has_table_privilege('public', c.oid, 'SELECT') THEN 'any'
				  WHEN has_table_privilege('wam_reader', c.oid, 'SELECT') THEN 'reader'
				  WHEN has_table_privilege('wam_operator', c.oid, 'SELECT') THEN 'operator'
				  WHEN has_table_privilege('wam_admin', c.oid, 'SELECT') THEN 'admin'
				  ELSE 'superuser'
			  END,
			  replace(coalesce(obj_description(c.oid, 'pg_class'), ''), '|', '\|'))
FROM pg_class c
WHERE c.relnamespace = 'wam'::regnamespace AND c.relkind IN ('r', 'p', 'v')
ORDER BY c.relname;

SELECT E'\n#### Settings\n\n| Setting | Default | Changed by | What it does |\n|---|---|---|---|';
SELECT format('| `%s` | %s | %s | %s |', s.name,
			  CASE WHEN s.boot_val = '' THEN '(empty)' ELSE s.boot_val || coalesce(' ' || s.unit, '') END,
			  CASE s.context WHEN 'postmaster' THEN 'restart' WHEN 'sighup' THEN 'reload'
							 WHEN 'superuser' THEN 'superuser SET' WHEN 'user' THEN 'SET' ELSE s.context END,
			  replace(s.short_desc, '|', '\|'))
FROM pg_settings s
WHERE s.name LIKE 'wam.%'
ORDER BY s.name COLLATE "C";
