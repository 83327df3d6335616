-- src/sql/phone.sql: phone-number normalization (C)
-- IMMUTABLE: the result depends only on the arguments and on the numbering
-- data compiled into the library, which changes only with a new release.

CREATE FUNCTION wam.normalize_phone(raw text, default_country text DEFAULT NULL) RETURNS text
	AS 'MODULE_PATHNAME', 'wam_normalize_phone' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION wam.normalize_phone(text, text) IS 'phone number as E.164 digits without "+"; error if invalid';

CREATE FUNCTION wam.phone_problem(raw text, default_country text DEFAULT NULL) RETURNS text
	AS 'MODULE_PATHNAME', 'wam_phone_problem' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION wam.phone_problem(text, text) IS 'why a phone number is invalid, or NULL; never raises';

CREATE FUNCTION wam.phone_country(phone text) RETURNS text
	AS 'MODULE_PATHNAME', 'wam_phone_country_sql' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION wam.phone_country(text) IS 'ISO country code of an international number, or NULL';
