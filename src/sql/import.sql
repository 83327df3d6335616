-- src/sql/import.sql: contact import: the CSV/TXT reader (C) and the import of contacts


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

-- imports

CREATE TABLE wam.import (
	import_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	started_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	imported_by name NOT NULL DEFAULT SESSION_USER,
	rows_read bigint NOT NULL DEFAULT 0,
	created bigint NOT NULL DEFAULT 0,
	updated bigint NOT NULL DEFAULT 0,
	duplicates bigint NOT NULL DEFAULT 0,
	failed bigint NOT NULL DEFAULT 0,
	failure_rate numeric NOT NULL DEFAULT 0,
	flagged boolean NOT NULL DEFAULT false,
	opted_out bigint NOT NULL DEFAULT 0
);
COMMENT ON COLUMN wam.import.opted_out IS 'contacts who had consented and whose row said no: an opt-out was recorded for each';
CREATE TABLE wam.import_error (
	import_id bigint NOT NULL REFERENCES wam.import ON DELETE CASCADE,
	line_no bigint NOT NULL,
	raw_phone text,
	reason text NOT NULL,
	PRIMARY KEY (import_id, line_no)
);
COMMENT ON TABLE wam.import IS 'one report per contact import';

GRANT SELECT ON wam.import TO wam_reader;
GRANT SELECT, INSERT, UPDATE ON wam.import TO wam_definer;
GRANT USAGE ON SEQUENCE wam.import_import_id_seq TO wam_definer;
COMMENT ON TABLE wam.import_error IS 'why each failed import row failed';

GRANT SELECT ON wam.import_error TO wam_reader;
GRANT SELECT, INSERT ON wam.import_error TO wam_definer;

-- contact import (R-I1 ... R-I8)

-- The columns of an import file, found by name in its header, and the checks
-- that reject the whole file.  width is the number of header fields: a row
-- with fewer is missing columns.
CREATE FUNCTION wam_internal.import_columns(header text[], default_country text,
		OUT phone integer, OUT tags integer, OUT name integer, OUT consent integer,
		OUT width integer)
	LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, wam, pg_temp
AS $$
BEGIN
	IF header IS NULL THEN
		RAISE EXCEPTION 'import has no header row' USING ERRCODE = 'invalid_parameter_value',
			HINT = 'The first line names the columns: phone, tags and optionally name and consent.';
	END IF;
	SELECT min(i) FILTER (WHERE h IN ('phone', 'phone number', 'phone_number', 'mobile', 'whatsapp', 'number')),
		   min(i) FILTER (WHERE h IN ('tags', 'tag')),
		   min(i) FILTER (WHERE h IN ('name', 'full name', 'full_name')),
		   min(i) FILTER (WHERE h IN ('consent', 'consent_source', 'consent source'))
	INTO phone, tags, name, consent
	FROM unnest(header) WITH ORDINALITY AS u(raw, i), lower(btrim(raw, E' \t\r\n\uFEFF')) AS h;
	IF phone IS NULL THEN
		RAISE EXCEPTION 'import has no phone column' USING ERRCODE = 'invalid_parameter_value',
			DETAIL = format('The header is: %s.', array_to_string(header, ', ')),
			HINT = 'Name the column "phone" (also accepted: phone number, mobile, whatsapp).';
	END IF;
	IF default_country IS NOT NULL THEN
		-- an unknown default country is an error for the whole import
		PERFORM wam.normalize_phone('+85291234567', default_country);
	END IF;
	width := cardinality(header);
END
$$;
COMMENT ON FUNCTION wam_internal.import_columns(text[], text) IS 'internal: the phone, tags, name and consent columns named by an import file''s header, and its width; raises when the file cannot be imported at all';

-- The consent cell of an import row: yes/no, true/false, 1/0 or y/n (any
-- case, trimmed), or a date (YYYY-MM-DD) on which the contact consented.  A
-- blank cell says nothing (consent = NULL); anything else is a problem that
-- fails the row.  consented_at is the time recorded for a "yes" (NULL: the
-- time of the import) or a date (its midnight in the session's time zone).
CREATE FUNCTION wam_internal.import_consent(cell text, OUT consent boolean, OUT consented_at timestamptz,
		OUT problem text)
	LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, wam, pg_temp
AS $$
DECLARE
	v text := lower(btrim(cell, E' \t\r\n'));
	d date;
BEGIN
	IF v IS NULL OR v = '' THEN
		RETURN;
	ELSIF v IN ('yes', 'y', 'true', '1') THEN
		consent := true;
	ELSIF v IN ('no', 'n', 'false', '0') THEN
		consent := false;
	ELSIF v ~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}$' THEN
		BEGIN
			d := v::date;
		EXCEPTION WHEN datetime_field_overflow OR invalid_datetime_format THEN
			problem := format('invalid consent date: %s', left(btrim(cell), 40));
			RETURN;
		END;
		IF d > current_date THEN
			problem := format('consent date is in the future: %s', v);
			RETURN;
		END IF;
		consent := true;
		consented_at := d::timestamptz;
	ELSE
		problem := format('invalid consent: "%s" (expected yes, no, true, false, 1, 0, y, n or a date YYYY-MM-DD)',
						  left(btrim(cell), 40));
	END IF;
END
$$;
COMMENT ON FUNCTION wam_internal.import_consent(text) IS 'internal: the consent cell of an import row parsed: yes or no, the date consented on, or why it is invalid';

REVOKE EXECUTE ON FUNCTION wam_internal.import_consent(text) FROM PUBLIC;

-- The whole import is one statement over the records of the file (exactly
-- one of text_data and byte_data is not null; wam.csv_rows is strict, so the
-- other one reads nothing).  Nothing is staged in temporary tables: this
-- function runs with its owner's privileges, and a temporary table, view or
-- trigger is the caller's own object (pg_temp is on the search path), so
-- reading or writing one would run the caller's code as the owner.
--
-- Each row's problem is the first of: malformed CSV, missing columns, an
-- invalid phone number, an unknown or retired tag, an invalid consent cell.
-- Consent: "yes" (or a date) gives a contact without consent the consent,
-- recorded with the import as its source; it never lifts an opt-out nor
-- changes an earlier consent.  "no" gives none; for a contact who consented
-- and has not opted out it records an opt-out with the import as the reason
-- (counted in wam.import.opted_out), so a file never leaves consent standing
-- that it denies.  Tags are resolved once
-- per distinct tags field, not per row (files repeat a few combinations).
-- Among the rows without a problem the first of each number wins; the later
-- ones are duplicates.
CREATE FUNCTION wam_internal.import_file(text_data text, byte_data bytea, default_country text,
		delimiter text)
	RETURNS TABLE (import_id bigint, rows_read bigint, created bigint, updated bigint,
				   duplicates bigint, failed bigint, failure_rate numeric, flagged boolean)
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	imp bigint;
	n_read bigint;
	n_created bigint;
	n_updated bigint;
	n_dup bigint;
	n_failed bigint;
	denied bigint[];
	denied_id bigint;
BEGIN
	WITH rec AS MATERIALIZED (
		SELECT r.line_no, r.fields, r.problem FROM wam.csv_rows(text_data, delimiter) r
		UNION ALL
		SELECT r.line_no, r.fields, r.problem FROM wam.csv_rows(byte_data, delimiter) r
	),
	-- exactly one row: wam_internal.import_columns raises when there is no header
	hdr AS MATERIALIZED (
		SELECT f.line_no, c.phone, c.tags, c.name, c.consent, c.width
		FROM (SELECT 1) one
		LEFT JOIN (SELECT r.line_no, r.fields FROM rec r ORDER BY r.line_no LIMIT 1) f ON true
		CROSS JOIN LATERAL wam_internal.import_columns(f.fields, default_country) c
	),
	-- reads hdr, so it is inserted only once the header is accepted
	new_import AS (
		INSERT INTO wam.import (rows_read) SELECT 0 FROM hdr RETURNING wam.import.import_id AS id
	),
	line AS MATERIALIZED (
		SELECT r.line_no,
			   btrim(r.fields[h.phone]) AS raw_phone,
			   nullif(btrim(r.fields[h.name]), '') AS name,
			   nullif(btrim(r.fields[h.consent]), '') AS consent,
			   r.fields[h.tags] AS raw_tags,
			   CASE WHEN r.problem IS NOT NULL THEN 'malformed CSV: ' || r.problem
					WHEN cardinality(r.fields) < h.width THEN
						format('missing columns: %s of %s', cardinality(r.fields), h.width)
			   END AS problem
		FROM rec r, hdr h
		WHERE r.line_no > h.line_no
	),
	-- tags: every name must exist and be active; never created silently (R-I3)
	tag_set AS MATERIALIZED (
		SELECT s.raw_tags, x.problem, y.ids, y.ttls
		FROM (SELECT DISTINCT l.raw_tags FROM line l WHERE l.raw_tags IS NOT NULL) s
		CROSS JOIN LATERAL (
			SELECT array_agg(t.tag_id) AS ids,
				   CASE WHEN bool_or(t.tag_id IS NULL) THEN
							'unknown tag: ' || string_agg(u.n, ', ' ORDER BY u.o) FILTER (WHERE t.tag_id IS NULL)
						WHEN bool_or(t.status = 'retired') THEN
							'retired tag: ' || string_agg(u.n, ', ' ORDER BY u.o) FILTER (WHERE t.status = 'retired')
				   END AS problem
			FROM (SELECT btrim(v.n) AS n, v.o
				  FROM unnest(string_to_array(s.raw_tags, ',')) WITH ORDINALITY AS v(n, o)
				  WHERE btrim(v.n) <> '') u
			LEFT JOIN wam.tag t ON t.normalized_name = wam.normalize_tag_name(u.n)
		) x
		-- each tag once ("VIP, vip"), with its time to live
		CROSS JOIN LATERAL (
			SELECT coalesce(array_agg(t.tag_id ORDER BY t.tag_id), '{}') AS ids,
				   coalesce(array_agg(t.default_ttl ORDER BY t.tag_id), '{}') AS ttls
			FROM wam.tag t WHERE t.tag_id = ANY (x.ids)
		) y
	),
	checked AS MATERIALIZED (
		SELECT l.line_no, l.raw_phone, l.name, k.consent, k.consented_at, l.raw_tags,
			   coalesce(l.problem, 'invalid phone number: ' || p.problem, ts.problem, k.problem) AS problem,
			   CASE WHEN l.problem IS NULL AND p.problem IS NULL AND ts.problem IS NULL AND k.problem IS NULL
					THEN wam.normalize_phone(l.raw_phone, default_country) END AS phone
		FROM line l
		-- (OFFSET 0: computed once per row, not once per use)
		CROSS JOIN LATERAL (SELECT CASE WHEN l.problem IS NULL
										THEN wam.phone_problem(l.raw_phone, default_country) END AS problem
							OFFSET 0) p
		CROSS JOIN LATERAL wam_internal.import_consent(l.consent) k
		LEFT JOIN tag_set ts ON ts.raw_tags = l.raw_tags
	),
	-- duplicates: the first occurrence of a number wins (R-I4)
	valid AS MATERIALIZED (
		SELECT c.line_no, c.raw_phone, c.phone, c.name, c.consent, c.consented_at, c.raw_tags,
			   min(c.line_no) OVER (PARTITION BY c.phone) AS first_line
		FROM checked c WHERE c.phone IS NOT NULL
	),
	upserted AS (
		INSERT INTO wam.customer AS c (phone, name, consent_at, consent_source)
		SELECT v.phone, v.name, CASE WHEN v.consent THEN coalesce(v.consented_at, now()) END,
			   CASE WHEN v.consent THEN 'import ' || i.id END
		FROM valid v, new_import i
		WHERE v.line_no = v.first_line
		ORDER BY v.line_no
		ON CONFLICT (phone) DO UPDATE
			SET name = coalesce(EXCLUDED.name, c.name),
				consent_at = CASE WHEN EXCLUDED.consent_source IS NOT NULL AND c.consent_at IS NULL
								  THEN EXCLUDED.consent_at ELSE c.consent_at END,
				consent_source = CASE WHEN EXCLUDED.consent_source IS NOT NULL AND c.consent_at IS NULL
									  THEN EXCLUDED.consent_source ELSE c.consent_source END
		-- (a "no" row leaves consent_at as it was: the contact's existing consent)
		RETURNING c.id, c.phone, (c.xmax = 0) AS inserted, c.consent_at IS NOT NULL AND c.opted_out_at IS NULL AS consenting
	),
	-- every imported number gets exactly the file's tags (R-I7)
	attached AS (
		INSERT INTO wam.customer_tag AS ct (customer_id, tag_id, expires_at, source)
		SELECT u.id, x.tag_id, now() + x.ttl, 'import'
		FROM upserted u
		JOIN valid v ON v.phone = u.phone AND v.line_no = v.first_line
		JOIN tag_set ts ON ts.raw_tags = v.raw_tags
		CROSS JOIN LATERAL unnest(ts.ids, ts.ttls) AS x(tag_id, ttl)
		-- in primary-key order: each tag's new rows go to one place of the index
		ORDER BY x.tag_id, u.id
		ON CONFLICT (customer_id, tag_id) DO UPDATE SET expires_at = EXCLUDED.expires_at
			WHERE ct.expires_at IS DISTINCT FROM EXCLUDED.expires_at
	),
	touched AS (
		UPDATE wam.tag t SET last_attached_at = now()
		WHERE t.tag_id IN (SELECT t2.tag_id FROM wam.tag t2
						   WHERE t2.tag_id IN (SELECT unnest(ts.ids) FROM tag_set ts
											   WHERE ts.raw_tags IN (SELECT c.raw_tags FROM checked c
																	 WHERE c.problem IS NULL))
							 AND (t2.last_attached_at IS NULL OR t2.last_attached_at < now() - interval '1 hour')
						   FOR NO KEY UPDATE SKIP LOCKED)
	),
	failures AS (
		INSERT INTO wam.import_error (import_id, line_no, raw_phone, reason)
		SELECT i.id, e.line_no, left(e.raw_phone, 100), e.reason
		FROM new_import i,
			 (SELECT c.line_no, c.raw_phone, c.problem AS reason FROM checked c WHERE c.problem IS NOT NULL
			  UNION ALL
			  SELECT v.line_no, v.raw_phone, 'duplicate of line ' || v.first_line
			  FROM valid v WHERE v.line_no > v.first_line) e
		ORDER BY e.line_no
	)
	SELECT i.id, n.n_read, n.n_failed, d.n_dup, u.n_created, u.n_updated, o.ids
	INTO imp, n_read, n_failed, n_dup, n_created, n_updated, denied
	FROM new_import i,
		 (SELECT count(*) AS n_read, count(*) FILTER (WHERE c.problem IS NOT NULL) AS n_failed FROM checked c) n,
		 (SELECT count(*) AS n_dup FROM valid v WHERE v.line_no > v.first_line) d,
		 (SELECT count(*) FILTER (WHERE p.inserted) AS n_created,
				 count(*) FILTER (WHERE NOT p.inserted) AS n_updated FROM upserted p) u,
		 -- existing contacts who consented, and whose row says "no"
		 (SELECT array_agg(p.id ORDER BY p.id) AS ids FROM upserted p
		  JOIN valid v ON v.phone = p.phone AND v.line_no = v.first_line
		  WHERE NOT p.inserted AND v.consent = false AND p.consenting) o;

	-- an explicit "no" for a consenting contact is an opt-out, recorded as such
	-- (event, waiting messages cancelled), never a silent change of consent
	FOREACH denied_id IN ARRAY coalesce(denied, '{}') LOOP
		PERFORM wam.record_opt_out(denied_id, format('import %s: consent "no"', imp));
	END LOOP;

	UPDATE wam.import i
	SET rows_read = n_read, created = n_created, updated = n_updated, duplicates = n_dup,
		failed = n_failed, opted_out = coalesce(cardinality(denied), 0),
		failure_rate = CASE WHEN n_read = 0 THEN 0 ELSE round(n_failed::numeric / n_read, 4) END,
		flagged = n_read > 0 AND n_failed::numeric / n_read > 0.10
	WHERE i.import_id = imp;
	RAISE NOTICE 'import %: % rows read, % customers created, % updated, % duplicates, % failed',
		imp, n_read, n_created, n_updated, n_dup, n_failed;

	RETURN QUERY SELECT i.import_id, i.rows_read, i.created, i.updated, i.duplicates, i.failed,
						i.failure_rate, i.flagged
				 FROM wam.import i WHERE i.import_id = imp;
END
$$;
COMMENT ON FUNCTION wam_internal.import_file(text, bytea, text, text) IS 'internal: the import behind wam.import_csv, of text_data or byte_data';

REVOKE EXECUTE ON FUNCTION wam_internal.import_file(text, bytea, text, text) FROM PUBLIC;

-- wam.csv_delimiter picks the delimiter from the header line: a comma unless
-- the header has none but has tabs (a TXT export) or semicolons (Excel in
-- many locales).
CREATE FUNCTION wam.csv_delimiter(header bytea) RETURNS text
	LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, wam, pg_temp
AS $$
	SELECT CASE
		WHEN position('\x2c'::bytea IN header) > 0 THEN ','
		WHEN position('\x09'::bytea IN header) > 0 THEN E'\t'
		WHEN position('\x3b'::bytea IN header) > 0 THEN ';'
		ELSE ',' END
$$;
COMMENT ON FUNCTION wam.csv_delimiter(bytea) IS 'delimiter of a contact file, judged from its header';

CREATE FUNCTION wam.import_csv(data text, default_country text DEFAULT NULL, delimiter text DEFAULT NULL)
	RETURNS TABLE (import_id bigint, rows_read bigint, created bigint, updated bigint,
				   duplicates bigint, failed bigint, failure_rate numeric, flagged boolean)
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
BEGIN
	PERFORM wam_internal.refuse_null(data IS NULL, 'import data');
	delimiter := coalesce(delimiter,
		wam.csv_delimiter(convert_to(split_part(left(data, 65536), E'\n', 1), 'UTF8')));
	RETURN QUERY SELECT * FROM wam_internal.import_file(data, NULL, default_country, delimiter);
END
$$;

CREATE FUNCTION wam.import_csv(data bytea, default_country text DEFAULT NULL, delimiter text DEFAULT NULL)
	RETURNS TABLE (import_id bigint, rows_read bigint, created bigint, updated bigint,
				   duplicates bigint, failed bigint, failure_rate numeric, flagged boolean)
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
DECLARE
	eol integer := position('\x0a'::bytea IN substring(data FROM 1 FOR 65536));
BEGIN
	PERFORM wam_internal.refuse_null(data IS NULL, 'import data');
	delimiter := coalesce(delimiter, wam.csv_delimiter(
		substring(data FROM 1 FOR CASE WHEN eol > 0 THEN eol ELSE 65536 END)));
	-- raw bytes: a line that is not valid UTF-8 fails alone, the others import
	RETURN QUERY SELECT * FROM wam_internal.import_file(NULL, data, default_country, delimiter);
END
$$;
COMMENT ON FUNCTION wam.import_csv(bytea, text, text) IS 'imports contacts from raw CSV bytes; returns the report';
COMMENT ON FUNCTION wam.import_csv(text, text, text) IS 'imports contacts from CSV text; returns the report';

REVOKE EXECUTE ON FUNCTION wam.import_csv(bytea, text, text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION wam.import_csv(text, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.import_csv(bytea, text, text) TO wam_operator;
GRANT EXECUTE ON FUNCTION wam.import_csv(text, text, text) TO wam_operator;
