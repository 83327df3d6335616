-- 99u_segment_rows: the planner estimates wam.segment_members() at the segment's
-- cardinality when the value is known at planning time (a constant, or a PL/pgSQL
-- variable under a custom plan), instead of 1000 rows for every segment.

CREATE FUNCTION wam_internal.segment_members_support(internal) RETURNS internal
	AS 'MODULE_PATHNAME', 'wam_segment_members_support' LANGUAGE C STRICT;
COMMENT ON FUNCTION wam_internal.segment_members_support(internal) IS 'internal: planner support of wam.segment_members (its row estimate)';
REVOKE EXECUTE ON FUNCTION wam_internal.segment_members_support(internal) FROM PUBLIC;
ALTER FUNCTION wam.segment_members(wam.segment) SUPPORT wam_internal.segment_members_support;
