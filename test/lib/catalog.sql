-- test/lib/catalog.sql — the extension's catalog as sorted text lines, to compare
-- an updated installation with a fresh one (test/t/upgrade.sh):
--     psql -X -At -f test/lib/catalog.sql
-- Covers what an upgrade script can get wrong: functions (signature, result,
-- body, language, volatility, strictness, parallel safety, security, settings,
-- owner, privileges, comment), types, operators and operator classes, casts,
-- aggregates, tables (columns, defaults, constraints, indexes, triggers,
-- policies, privileges, comments), views, sequences, schemas, the extension's
-- dump configuration and its member list.  OIDs, creation order and the order
-- of privilege items are left out: they differ legitimately.

\pset footer off
WITH ext AS (
	SELECT d.classid, d.objid
	FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid
	WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e' AND e.extname = 'pg_wamarketing'
), items(line) AS (
	-- every member object, by its identity
	SELECT 'member ' || (pg_identify_object(classid, objid, 0)).type || ' ' || (pg_identify_object(classid, objid, 0)).identity
	FROM ext
	UNION ALL
	SELECT format('function %s returns %s lang %s vol %s strict %s par %s secdef %s leak %s cost %s rows %s config %s owner %s acl %s comment %s body %s',
				  p.oid::regprocedure, pg_get_function_result(p.oid), l.lanname, p.provolatile, p.proisstrict,
				  p.proparallel, p.prosecdef, p.proleakproof, p.procost, p.prorows, p.proconfig,
				  p.proowner::regrole, (SELECT array_agg(x::text ORDER BY x::text) FROM unnest(p.proacl) x), obj_description(p.oid, 'pg_proc'),
				  md5(coalesce(p.prosrc, '') || coalesce(p.probin, '') || coalesce(pg_get_function_sqlbody(p.oid), '')
					  || coalesce(pg_get_function_arguments(p.oid), '')))
	FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
	WHERE p.oid IN (SELECT objid FROM ext WHERE classid = 'pg_proc'::regclass)
	UNION ALL
	SELECT format('aggregate %s sfunc %s stype %s final %s combine %s serial %s deserial %s init %s',
				  a.aggfnoid::regprocedure, a.aggtransfn, a.aggtranstype::regtype, a.aggfinalfn, a.aggcombinefn,
				  a.aggserialfn, a.aggdeserialfn, a.agginitval)
	FROM pg_aggregate a
	WHERE a.aggfnoid IN (SELECT objid FROM ext WHERE classid = 'pg_proc'::regclass)
	UNION ALL
	SELECT format('type %s len %s align %s storage %s in %s out %s recv %s send %s comment %s owner %s',
				  t.oid::regtype, t.typlen, t.typalign, t.typstorage, t.typinput, t.typoutput, t.typreceive, t.typsend,
				  obj_description(t.oid, 'pg_type'), t.typowner::regrole)
	FROM pg_type t
	WHERE t.oid IN (SELECT objid FROM ext WHERE classid = 'pg_type'::regclass)
	UNION ALL
	SELECT format('operator %s proc %s commutator %s negator %s restrict %s join %s hashes %s merges %s comment %s',
				  o.oid::regoperator, o.oprcode::regprocedure, o.oprcom::regoperator, o.oprnegate::regoperator,
				  o.oprrest, o.oprjoin, o.oprcanhash, o.oprcanmerge, obj_description(o.oid, 'pg_operator'))
	FROM pg_operator o
	WHERE o.oid IN (SELECT objid FROM ext WHERE classid = 'pg_operator'::regclass)
	UNION ALL
	SELECT format('opclass %s method %s type %s default %s members %s', c.opcname, am.amname, c.opcintype::regtype,
				  c.opcdefault,
				  (SELECT string_agg(x, ', ' ORDER BY x) FROM (
					  SELECT format('op %s %s', ao.amopstrategy, ao.amopopr::regoperator) AS x
					  FROM pg_amop ao WHERE ao.amopfamily = c.opcfamily
					  UNION ALL
					  SELECT format('proc %s %s', ap.amprocnum, ap.amproc::regprocedure)
					  FROM pg_amproc ap WHERE ap.amprocfamily = c.opcfamily) m))
	FROM pg_opclass c JOIN pg_am am ON am.oid = c.opcmethod
	WHERE c.oid IN (SELECT objid FROM ext WHERE classid = 'pg_opclass'::regclass)
	UNION ALL
	SELECT format('cast %s -> %s via %s context %s', c.castsource::regtype, c.casttarget::regtype,
				  c.castfunc::regprocedure, c.castcontext)
	FROM pg_cast c
	WHERE c.oid IN (SELECT objid FROM ext WHERE classid = 'pg_cast'::regclass)
	UNION ALL
	SELECT format('relation %s kind %s owner %s acl %s rls %s comment %s options %s', c.oid::regclass, c.relkind,
				  c.relowner::regrole, (SELECT array_agg(x::text ORDER BY x::text) FROM unnest(c.relacl) x), c.relrowsecurity, obj_description(c.oid, 'pg_class'), c.reloptions)
	FROM pg_class c
	WHERE c.oid IN (SELECT objid FROM ext WHERE classid = 'pg_class'::regclass)
	UNION ALL
	SELECT format('column %s.%s %s notnull %s default %s identity %s generated %s acl %s comment %s',
				  a.attrelid::regclass, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
				  pg_get_expr(ad.adbin, ad.adrelid), a.attidentity, a.attgenerated, (SELECT array_agg(x::text ORDER BY x::text) FROM unnest(a.attacl) x),
				  col_description(a.attrelid, a.attnum))
	FROM pg_attribute a LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
	WHERE a.attrelid IN (SELECT objid FROM ext WHERE classid = 'pg_class'::regclass) AND a.attnum > 0 AND NOT a.attisdropped
	UNION ALL
	SELECT format('constraint %s.%s %s', c.conrelid::regclass, c.conname, pg_get_constraintdef(c.oid))
	FROM pg_constraint c
	WHERE c.conrelid IN (SELECT objid FROM ext WHERE classid = 'pg_class'::regclass)
	UNION ALL
	SELECT format('index %s', pg_get_indexdef(i.indexrelid))
	FROM pg_index i
	WHERE i.indrelid IN (SELECT objid FROM ext WHERE classid = 'pg_class'::regclass)
	UNION ALL
	SELECT format('trigger %s', pg_get_triggerdef(t.oid))
	FROM pg_trigger t
	WHERE t.tgrelid IN (SELECT objid FROM ext WHERE classid = 'pg_class'::regclass) AND NOT t.tgisinternal
	UNION ALL
	SELECT format('policy %s on %s: %s', p.polname, p.polrelid::regclass, pg_get_expr(p.polqual, p.polrelid))
	FROM pg_policy p
	WHERE p.polrelid IN (SELECT objid FROM ext WHERE classid = 'pg_class'::regclass)
	UNION ALL
	SELECT format('view %s: %s', c.oid::regclass, md5(pg_get_viewdef(c.oid)))
	FROM pg_class c
	WHERE c.oid IN (SELECT objid FROM ext WHERE classid = 'pg_class'::regclass) AND c.relkind IN ('v', 'm')
	UNION ALL
	SELECT format('sequence %s type %s start %s inc %s min %s max %s cycle %s', s.seqrelid::regclass,
				  s.seqtypid::regtype, s.seqstart, s.seqincrement, s.seqmin, s.seqmax, s.seqcycle)
	FROM pg_sequence s
	WHERE s.seqrelid IN (SELECT objid FROM ext WHERE classid = 'pg_class'::regclass)
	UNION ALL
	SELECT format('schema %s owner %s acl %s comment %s', n.nspname, n.nspowner::regrole, (SELECT array_agg(x::text ORDER BY x::text) FROM unnest(n.nspacl) x),
				  obj_description(n.oid, 'pg_namespace'))
	FROM pg_namespace n
	WHERE n.nspname IN ('wam', 'wam_internal')
	UNION ALL
	SELECT format('dumped %s where %s', c::regclass, coalesce(w, ''))
	FROM pg_extension e, unnest(e.extconfig, e.extcondition) AS x(c, w)
	WHERE e.extname = 'pg_wamarketing'
	UNION ALL
	-- rows the install script seeds
	SELECT 'seed tag_dimension ' || t::text FROM wam.tag_dimension t
	UNION ALL
	SELECT 'seed rfm_config ' || t::text FROM wam.rfm_config t
	UNION ALL
	SELECT 'seed rfm_scheme ' || t::text FROM wam.rfm_scheme t
	UNION ALL
	SELECT 'seed rfm_tier_rule ' || t::text FROM wam.rfm_tier_rule t
	UNION ALL
	SELECT 'seed opt_out_keyword ' || t::text FROM wam.opt_out_keyword t
)
SELECT line FROM items ORDER BY line COLLATE "C";
