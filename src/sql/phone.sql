-- src/sql/phone.sql: phone-number normalization for contact import (R-I2)

-- IMMUTABLE: the result depends only on the arguments and on the numbering
-- data compiled into the library, which changes only with a new release.

CREATE FUNCTION wam.normalize_phone(raw text, default_country text DEFAULT NULL) RETURNS text
	AS 'MODULE_PATHNAME', 'wam_normalize_phone' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION wam.normalize_phone(text, text) IS 'phone number as E.164 digits without "+" (WhatsApp wa_id form, e.g. 85291234567); default_country (ISO code like ''HK'' or calling code like ''852'') applies to numbers without "+" or "00"; raises 22023 for an invalid number';

CREATE FUNCTION wam.phone_problem(raw text, default_country text DEFAULT NULL) RETURNS text
	AS 'MODULE_PATHNAME', 'wam_phone_problem' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION wam.phone_problem(text, text) IS 'NULL if wam.normalize_phone accepts the number, else the reason (its error detail); never raises, not even for an unknown default country';

CREATE FUNCTION wam.phone_country(phone text) RETURNS text
	AS 'MODULE_PATHNAME', 'wam_phone_country_sql' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION wam.phone_country(text) IS 'ISO 3166-1 alpha-2 country of an international number (normalized or with "+"), NULL if not valid; North American numbers map to CA or a Caribbean country by area code, otherwise US';
