-- src/sql/security.sql: who the SECURITY DEFINER functions run as.
--
-- Functions that must bypass the roles' table privileges (tagging, imports,
-- orders, the queue, webhooks, referrals) are SECURITY DEFINER.  They are owned
-- by wam_definer, a NOLOGIN role without superuser, BYPASSRLS or memberships,
-- holding only the table privileges granted to it beside each table.  The C
-- functions, the type and the tables stay with the installing superuser, as
-- PostgreSQL requires.  This runs last, over every definer function of the
-- script, so that a new one cannot be forgotten.

-- Tables are read-only to the roles (granted beside each table); every change
-- goes through the functions, which check and log it.
REVOKE ALL ON ALL TABLES IN SCHEMA wam FROM PUBLIC;

-- Internal functions are revoked from PUBLIC; wam_definer runs only code the
-- extension ships, so it may call all of them.
GRANT USAGE ON SCHEMA wam_internal TO wam_definer;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA wam, wam_internal TO wam_definer;

DO $definer$
DECLARE
	f pg_catalog.regprocedure;
BEGIN
	FOR f IN SELECT p.oid FROM pg_catalog.pg_proc p
			 WHERE p.pronamespace OPERATOR(pg_catalog.=) ANY (ARRAY['wam', 'wam_internal']::pg_catalog.regnamespace[])
			   AND p.prosecdef
			 ORDER BY p.oid
	LOOP
		-- a definer function without a pinned search_path would resolve names
		-- through the caller's: refuse to install rather than ship one
		IF NOT EXISTS (SELECT FROM pg_catalog.pg_proc p, pg_catalog.unnest(p.proconfig) c
					   WHERE p.oid OPERATOR(pg_catalog.=) f
						 AND c OPERATOR(pg_catalog.=) 'search_path=pg_catalog, wam, pg_temp') THEN
			RAISE EXCEPTION 'SECURITY DEFINER function % does not pin search_path', f;
		END IF;
		EXECUTE pg_catalog.format('ALTER FUNCTION %s OWNER TO wam_definer', f);
	END LOOP;
END
$definer$;
