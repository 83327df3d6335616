-- wam.segment_repeat_agg gets a bytea state (an expanded object while it runs)
-- instead of internal, so that Citus pushes it down to its workers; the
-- serial/deserial functions are no longer needed.  Nothing depends on the
-- aggregate (src/expr_eval.c calls it by name), so it is dropped and created.
DROP AGGREGATE wam.segment_repeat_agg(bigint, integer, boolean);
DROP FUNCTION wam_internal.segment_repeat_trans(internal, bigint, integer, boolean);
DROP FUNCTION wam_internal.segment_repeat_combine(internal, internal);
DROP FUNCTION wam_internal.segment_repeat_serial(internal);
DROP FUNCTION wam_internal.segment_repeat_deserial(bytea, internal);
DROP FUNCTION wam_internal.segment_repeat_final(internal);

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
