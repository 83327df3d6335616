-- the extension installs into schema wam and drops without leftovers
SELECT extname, extversion, extrelocatable, n.nspname
	FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
	WHERE extname = 'pg_wamarketing';
-- every function is labelled deliberately
SELECT p.proname, p.provolatile, p.proisstrict, p.proparallel
	FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
	WHERE n.nspname = 'wam' AND (p.provolatile <> 'i' OR p.proparallel <> 's')
	ORDER BY 1;
-- every function, operator, aggregate and type has a comment
SELECT 'function ' || p.oid::regprocedure AS missing_comment
	FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
	WHERE n.nspname = 'wam' AND obj_description(p.oid, 'pg_proc') IS NULL
	AND p.proname NOT IN ('segment_in', 'segment_out', 'segment_recv', 'segment_send')
UNION ALL
SELECT 'operator ' || o.oid::regoperator
	FROM pg_operator o JOIN pg_namespace n ON n.oid = o.oprnamespace
	WHERE n.nspname = 'wam' AND obj_description(o.oid, 'pg_operator') IS NULL
ORDER BY 1;
-- the library loads on demand (no shared_preload_libraries needed here)
SELECT '{1}'::wam.segment AS first_call;
SELECT count(*) > 0 AS loaded FROM pg_settings WHERE name = 'wam.segment_output_format';
SET wam.no_such_setting = 1;
-- freed memory a backend keeps (glibc malloc trim threshold): server-wide
SELECT name, setting, unit, context, boot_val, min_val, max_val
FROM pg_settings WHERE name = 'wam.malloc_trim_threshold';
SET wam.malloc_trim_threshold = 0;

-- DROP EXTENSION leaves nothing behind (uses its own database so the
-- other tests can keep theirs)
SELECT current_database() AS orig_db \gset
CREATE DATABASE wam_drop_test;
\c wam_drop_test
CREATE EXTENSION pg_wamarketing;
SELECT count(*) > 0 AS has_objects FROM pg_depend d JOIN pg_extension e ON d.refobjid = e.oid
	WHERE e.extname = 'pg_wamarketing' AND d.deptype = 'e';
DROP EXTENSION pg_wamarketing;
SELECT count(*) AS schemas FROM pg_namespace WHERE nspname = 'wam';
SELECT count(*) AS types FROM pg_type WHERE typname LIKE '%segment%';
SELECT count(*) AS functions FROM pg_proc WHERE prosrc LIKE 'wam_%';
SELECT count(*) AS operators FROM pg_operator o JOIN pg_type t ON t.oid = o.oprleft WHERE t.typname = 'segment';
-- and it can be created again
CREATE EXTENSION pg_wamarketing;
SELECT '{1}'::wam.segment;
\c :orig_db
DROP DATABASE wam_drop_test;
