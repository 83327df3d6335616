-- the extension installs into schema wam and drops without leftovers
SELECT extname, extversion, extrelocatable, n.nspname
	FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
	WHERE extname = 'pg_wamarketing';
-- the public API is schema wam; internals (trigger, support and helper
-- functions) live in wam_internal, which no user role may even look into
SELECT r AS role, has_schema_privilege(r, 'wam', 'USAGE') AS wam,
	   has_schema_privilege(r, 'wam_internal', 'USAGE') AS wam_internal
FROM unnest(ARRAY['public', 'wam_reader', 'wam_operator', 'wam_admin', 'wam_definer']) r;
-- a public function that runs with its caller's rights cannot reach into
-- wam_internal (the caller may not use it): only definer functions do
SELECT p.oid::regprocedure AS invoker_reaches_internal
	FROM pg_proc p
	WHERE p.pronamespace = 'wam'::regnamespace AND NOT p.prosecdef
	  AND (p.prosrc LIKE '%wam\_internal.%' OR pg_get_function_sqlbody(p.oid) LIKE '%wam\_internal.%');
-- every trigger function is internal and named as a trigger
SELECT p.oid::regprocedure AS misplaced_trigger_function
	FROM pg_proc p JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
	JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'pg_wamarketing'
	WHERE p.prorettype = 'trigger'::regtype
	  AND (p.pronamespace <> 'wam_internal'::regnamespace OR p.proname NOT LIKE '%\_trigger');
-- no public name reads like a built-in (no "function cardinality(unknown) is
-- not unique" when wam is on the search_path)
SELECT p.oid::regprocedure AS shadows_builtin
	FROM pg_proc p
	WHERE p.pronamespace = 'wam'::regnamespace
	  AND EXISTS (SELECT FROM pg_proc b WHERE b.pronamespace = 'pg_catalog'::regnamespace AND b.proname = p.proname);
-- every function is labelled deliberately
SELECT n.nspname, p.proname, p.provolatile, p.proisstrict, p.proparallel
	FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
	WHERE n.nspname IN ('wam', 'wam_internal') AND (p.provolatile <> 'i' OR p.proparallel <> 's')
	ORDER BY 1, 2;
-- every function, operator, aggregate and type has a comment
SELECT 'function ' || p.oid::regprocedure AS missing_comment
	FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
	WHERE n.nspname IN ('wam', 'wam_internal') AND obj_description(p.oid, 'pg_proc') IS NULL
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
SELECT count(*) AS schemas FROM pg_namespace WHERE nspname IN ('wam', 'wam_internal');
SELECT count(*) AS types FROM pg_type WHERE typname LIKE '%segment%';
SELECT count(*) AS functions FROM pg_proc WHERE prosrc LIKE 'wam_%';
SELECT count(*) AS operators FROM pg_operator o JOIN pg_type t ON t.oid = o.oprleft WHERE t.typname = 'segment';
-- and it can be created again
CREATE EXTENSION pg_wamarketing;
SELECT '{1}'::wam.segment;
\c :orig_db
DROP DATABASE wam_drop_test;
