
-- src/sql/csv.sql: streaming CSV reader for contact imports

-- One row per record, the header included.  line_no is the physical line
-- the record starts on; fields are the fields with the quotes removed and
-- "" turned into "; problem is NULL, or says why the record could not be
-- read (fields is then NULL) and reading goes on with the next record.

CREATE FUNCTION wam.csv_rows(data text, delimiter text DEFAULT ',',
		max_record_bytes integer DEFAULT 1048576)
	RETURNS TABLE(line_no bigint, fields text[], problem text)
	AS 'MODULE_PATHNAME', 'wam_csv_rows_text' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
	ROWS 1000;
COMMENT ON FUNCTION wam.csv_rows(text, text, integer) IS 'records of CSV text as (line_no, fields, problem) rows';

CREATE FUNCTION wam.csv_rows(data bytea, delimiter text DEFAULT ',',
		max_record_bytes integer DEFAULT 1048576)
	RETURNS TABLE(line_no bigint, fields text[], problem text)
	AS 'MODULE_PATHNAME', 'wam_csv_rows_bytea' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
	ROWS 1000;
COMMENT ON FUNCTION wam.csv_rows(bytea, text, integer) IS 'records of raw CSV bytes, each checked for valid UTF-8';
