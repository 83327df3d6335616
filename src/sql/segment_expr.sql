-- src/sql/segment_expr.sql: segment expressions (audiences): one line of text from tags
-- and behaviour to the customers it means, and saved segments; the language is
-- described in src/expr_parse.c and the README
-- saved segments

CREATE TABLE wam.saved_segment (
	normalized_name text PRIMARY KEY,
	name text NOT NULL,
	expression text NOT NULL,
	refs text[] NOT NULL DEFAULT '{}',
	description text,
	created timestamptz NOT NULL DEFAULT pg_catalog.now(),
	created_by name NOT NULL DEFAULT SESSION_USER,
	updated timestamptz NOT NULL DEFAULT pg_catalog.now(),
	updated_by name NOT NULL DEFAULT SESSION_USER
);
COMMENT ON TABLE wam.saved_segment IS 'saved segment expressions, used as @name';
COMMENT ON COLUMN wam.saved_segment.refs IS 'normalized names of the saved segments the expression names directly (@name), kept by wam.define_segment()';

REVOKE ALL ON wam.saved_segment FROM PUBLIC;
GRANT SELECT ON wam.saved_segment TO wam_reader;
GRANT SELECT, INSERT, UPDATE, DELETE ON wam.saved_segment TO wam_definer;

-- evaluation (C: src/expr_parse.c parses, src/expr_prepare.c prepares, src/expr_eval.c evaluates, src/expr_sql.c is the SQL interface)

-- The functions read tables through SPI on the caller's snapshot and with
-- the caller's privileges (SECURITY INVOKER: wam_reader can read what they
-- read); every query they run is constant text with parameters.
CREATE FUNCTION wam.audience(expr text) RETURNS wam.segment
	AS 'MODULE_PATHNAME', 'wam_expr_eval' LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION wam.audience(text) IS 'the customers a segment expression means';

REVOKE EXECUTE ON FUNCTION wam.audience(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.audience(text) TO wam_reader;

CREATE FUNCTION wam.audience_size(expr text) RETURNS bigint
	AS 'MODULE_PATHNAME', 'wam_expr_count' LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION wam.audience_size(text) IS 'how many customers a segment expression means';

REVOKE EXECUTE ON FUNCTION wam.audience_size(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.audience_size(text) TO wam_reader;

CREATE FUNCTION wam.audience_funnel(expr text)
	RETURNS TABLE (step integer, depth integer, expression text, customers bigint)
	AS 'MODULE_PATHNAME', 'wam_expr_explain' LANGUAGE C STABLE STRICT PARALLEL SAFE ROWS 10;
COMMENT ON FUNCTION wam.audience_funnel(text) IS 'customers at every step of a segment expression';

REVOKE EXECUTE ON FUNCTION wam.audience_funnel(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.audience_funnel(text) TO wam_reader;

CREATE FUNCTION wam.audience_problem(expr text) RETURNS text
	AS 'MODULE_PATHNAME', 'wam_expr_check' LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION wam.audience_problem(text) IS 'why a segment expression is invalid, or NULL';

REVOKE EXECUTE ON FUNCTION wam.audience_problem(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.audience_problem(text) TO wam_reader;

-- Batch tagging of an audience: the expression is evaluated with the caller's
-- privileges (this function is not a definer), then wam.attach_tag records
-- the attachments with their source, as every tagging does.
CREATE FUNCTION wam.attach_tag_where(tag text, expr text, ttl interval DEFAULT NULL, source text DEFAULT 'api')
	RETURNS bigint
	LANGUAGE sql VOLATILE SET search_path = pg_catalog, wam, pg_temp
	RETURN wam.attach_tag(tag, wam.audience(expr), ttl, source);
COMMENT ON FUNCTION wam.attach_tag_where(text, text, interval, text) IS 'gives a tag to every customer a segment expression selects; returns how many were new';

REVOKE EXECUTE ON FUNCTION wam.attach_tag_where(text, text, interval, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.attach_tag_where(text, text, interval, text) TO wam_operator;

CREATE FUNCTION wam_internal.segment_references(expr text, self text DEFAULT NULL) RETURNS text[]
	AS 'MODULE_PATHNAME', 'wam_expr_references' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION wam_internal.segment_references(text, text) IS 'internal: validates an expression (for the saved segment self, if given: it must not reach self) and returns the normalized names of the saved segments it names directly';

REVOKE EXECUTE ON FUNCTION wam_internal.segment_references(text, text) FROM PUBLIC;

-- wam.segment_repeat_agg: the ids occurring at least (or exactly) n times,
-- with one bitmap per count level instead of a GROUP BY hash table; the
-- predicate "event(kind) >= n" uses it for n up to 16 (src/expr_agg.c).
-- Its state is bytea (an expanded object while it runs), not internal, so
-- that Citus computes it on the workers and PostgreSQL in parallel workers.
CREATE FUNCTION wam_internal.segment_repeat_trans(bytea, bigint, integer, boolean) RETURNS bytea
	AS 'MODULE_PATHNAME', 'wam_expr_repeat_trans' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION wam_internal.segment_repeat_trans(bytea, bigint, integer, boolean) IS 'transition function of wam.segment_repeat_agg';
CREATE FUNCTION wam_internal.segment_repeat_combine(bytea, bytea) RETURNS bytea
	AS 'MODULE_PATHNAME', 'wam_expr_repeat_combine' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION wam_internal.segment_repeat_combine(bytea, bytea) IS 'combine function of wam.segment_repeat_agg';
CREATE FUNCTION wam_internal.segment_repeat_final(bytea) RETURNS wam.segment
	AS 'MODULE_PATHNAME', 'wam_expr_repeat_final' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION wam_internal.segment_repeat_final(bytea) IS 'final function of wam.segment_repeat_agg';
CREATE AGGREGATE wam.segment_repeat_agg(id bigint, times integer, exactly boolean) (
	SFUNC = wam_internal.segment_repeat_trans,
	STYPE = bytea,
	FINALFUNC = wam_internal.segment_repeat_final,
	COMBINEFUNC = wam_internal.segment_repeat_combine,
	PARALLEL = SAFE
);
COMMENT ON AGGREGATE wam.segment_repeat_agg(bigint, integer, boolean) IS 'ids occurring at least (or exactly) times times';

-- saved segment definitions (operators and admins)

-- wam.define_segment creates or replaces a saved segment.  The expression
-- must be valid now; it is stored as written and evaluated afresh every
-- time it is used.  Definitions serialize on a table lock, so two
-- concurrent definitions cannot build a cycle between them.
CREATE FUNCTION wam.define_segment(name text, expression text, description text DEFAULT NULL)
	RETURNS void
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	norm text := wam.normalize_tag_name(name);
	refs text[];
	via text;
	below integer;
	above integer;
BEGIN
	PERFORM wam_internal.refuse_null(name IS NULL OR expression IS NULL, 'saved segment name and expression');
	IF norm = '' THEN
		RAISE EXCEPTION 'saved segment name "%" has no letters or digits', name
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF length(name) > 100 THEN
		RAISE EXCEPTION 'saved segment name is too long (% characters; the limit is 100)', length(name)
			USING ERRCODE = 'string_data_right_truncation';
	END IF;
	LOCK TABLE wam.saved_segment IN SHARE ROW EXCLUSIVE MODE;
	-- raises what wam.audience() would raise for this expression, and
	-- for references back to this segment
	refs := wam_internal.segment_references(expression, name);
	-- (segment_references() refuses cycles; checked again on the stored refs)
	IF norm = ANY (refs) THEN
		RAISE EXCEPTION 'saved segment "%" cannot reference itself', name
			USING ERRCODE = 'invalid_recursion';
	END IF;
	SELECT s.name INTO via
	FROM unnest(refs) AS r(n) JOIN wam.saved_segment s ON s.normalized_name = r.n
	WHERE norm IN (WITH RECURSIVE reach(n) AS (
					   SELECT r.n
					   UNION
					   SELECT x.n FROM reach
					   JOIN wam.saved_segment s2 ON s2.normalized_name = reach.n
					   CROSS JOIN unnest(s2.refs) AS x(n))
				   SELECT reach.n FROM reach)
	ORDER BY 1 LIMIT 1;
	IF via IS NOT NULL THEN
		RAISE EXCEPTION 'saved segment "%" would reference itself through @%', name, via
			USING ERRCODE = 'invalid_recursion',
				  DETAIL = format('Saved segment "%s" references "%s", directly or through others.', via, name);
	END IF;
	-- the longest chain of saved segments through this one: those naming it
	-- (above), itself, those it names (below)
	WITH RECURSIVE down(n, lvl) AS (
		SELECT r.n, 1 FROM unnest(refs) AS r(n)
		UNION
		SELECT x.n, d.lvl + 1 FROM down d
		JOIN wam.saved_segment s ON s.normalized_name = d.n
		CROSS JOIN unnest(s.refs) AS x(n)
		WHERE d.lvl <= 32)
	SELECT coalesce(max(d.lvl), 0) INTO below FROM down d;
	WITH RECURSIVE up(n, lvl) AS (
		SELECT norm, 0
		UNION
		SELECT s.normalized_name, u.lvl + 1 FROM up u
		JOIN wam.saved_segment s ON u.n = ANY (s.refs)
		WHERE u.lvl <= 32)
	SELECT max(u.lvl) INTO above FROM up u;
	IF above + 1 + below > 32 THEN
		RAISE EXCEPTION 'saved segments would nest too deeply'
			USING ERRCODE = 'statement_too_complex',
				  DETAIL = format('The longest chain of saved segments through "%s" would have %s; the limit is 32.',
								  name, above + 1 + below);
	END IF;
	INSERT INTO wam.saved_segment AS s (normalized_name, name, expression, refs, description)
	VALUES (norm, btrim(name), expression, refs, description)
	ON CONFLICT (normalized_name) DO UPDATE
		SET name = EXCLUDED.name, expression = EXCLUDED.expression, refs = EXCLUDED.refs,
			description = coalesce(EXCLUDED.description, s.description),
			updated = pg_catalog.now(), updated_by = SESSION_USER;
END
$$;
COMMENT ON FUNCTION wam.define_segment(text, text, text) IS 'creates or replaces a saved segment';

REVOKE EXECUTE ON FUNCTION wam.define_segment(text, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.define_segment(text, text, text) TO wam_operator;

-- wam.drop_segment refuses to drop a segment that others use, unless
-- cascade, which drops those (recursively) too, like DROP ... CASCADE.
CREATE FUNCTION wam.drop_segment(name text, cascade boolean DEFAULT false)
	RETURNS integer
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	norm text := wam.normalize_tag_name(name);
	users text;
	dropped integer;
	r record;
BEGIN
	PERFORM wam_internal.refuse_null(name IS NULL OR cascade IS NULL, 'saved segment name');
	LOCK TABLE wam.saved_segment IN SHARE ROW EXCLUSIVE MODE;
	IF NOT EXISTS (SELECT FROM wam.saved_segment s WHERE s.normalized_name = norm) THEN
		RAISE EXCEPTION 'saved segment "%" does not exist', name USING ERRCODE = 'undefined_object';
	END IF;
	SELECT string_agg(format('"%s"', s.name), ', ' ORDER BY s.name) INTO users
	FROM wam.saved_segment s WHERE norm = ANY (s.refs);
	IF users IS NOT NULL AND NOT cascade THEN
		RAISE EXCEPTION 'cannot drop saved segment "%" because other saved segments reference it', name
			USING ERRCODE = 'dependent_objects_still_exist',
				  DETAIL = format('Referenced by %s.', users),
				  HINT = 'Redefine or drop them first, or drop them too with wam.drop_segment(name, cascade => true).';
	END IF;
	FOR r IN WITH RECURSIVE up(n) AS (
				 SELECT norm
				 UNION
				 SELECT s.normalized_name FROM up JOIN wam.saved_segment s ON up.n = ANY (s.refs))
			 SELECT s.name FROM wam.saved_segment s JOIN up ON s.normalized_name = up.n
			 WHERE s.normalized_name <> norm ORDER BY 1
	LOOP
		RAISE NOTICE 'drop cascades to saved segment "%"', r.name;
	END LOOP;
	WITH RECURSIVE up(n) AS (
		SELECT norm
		UNION
		SELECT s.normalized_name FROM up JOIN wam.saved_segment s ON up.n = ANY (s.refs))
	DELETE FROM wam.saved_segment s USING up WHERE s.normalized_name = up.n;
	GET DIAGNOSTICS dropped = ROW_COUNT;
	RETURN dropped;
END
$$;
COMMENT ON FUNCTION wam.drop_segment(text, boolean) IS 'drops a saved segment (and its users with cascade)';

REVOKE EXECUTE ON FUNCTION wam.drop_segment(text, boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.drop_segment(text, boolean) TO wam_operator;
