-- phone-number normalization for contact import (R-I2):
-- wam.normalize_phone, wam.phone_problem, wam.phone_country
SET search_path = public, wam;
\set VERBOSITY default

-- the functions and their properties
SELECT p.oid::regprocedure AS function, p.provolatile AS volatility,
       p.proparallel AS parallel, p.proisstrict AS strict,
       obj_description(p.oid, 'pg_proc') IS NOT NULL AS has_comment
FROM pg_proc p
WHERE p.pronamespace = 'wam'::regnamespace
  AND p.proname IN ('normalize_phone', 'phone_problem', 'phone_country')
ORDER BY 1::text;

-- Every listed market, mobile and fixed line, international and national
-- forms.  The table is reused below for idempotence.
CREATE TEMP TABLE phone_cases (id serial, raw text, country text);
INSERT INTO phone_cases (raw, country) VALUES
    -- Hong Kong
    ('+852 9123 4567', NULL),
    ('00852-9123-4567', NULL),
    ('(852) 9123 4567', NULL),
    ('9123 4567', 'HK'),
    ('+852 5123 4567', NULL),
    ('2123 4567', 'HK'),
    ('852-6123-4567', 'HK'),
    ('(+852) 9123-4567', NULL),
    ('+852.9123.4567', NULL),
    ('+852/9123/4567', NULL),
    -- Taiwan
    ('0912-345-678', 'TW'),
    ('(02) 2123-4567', 'TW'),
    ('+886 912 345 678', NULL),
    -- China
    ('138 0013 8000', 'CN'),
    ('010-1234-5678', 'CN'),
    ('0755-1234-5678', 'CN'),
    ('+86 139 1234 5678', NULL),
    -- South Korea
    ('010-1234-5678', 'KR'),
    ('02-123-4567', 'KR'),
    ('031-123-4567', 'KR'),
    ('+82 10 1234 5678', NULL),
    -- Singapore
    ('9123 4567', 'SG'),
    ('6123 4567', '65'),
    ('+65 8123-4567', NULL),
    -- Malaysia
    ('012-345 6789', 'MY'),
    ('011-2345 6789', 'MY'),
    ('03-2123 4567', 'MY'),
    ('+60 12 345 6789', NULL),
    -- Indonesia
    ('0812-3456-7890', 'ID'),
    ('(021) 1234-5678', 'ID'),
    ('+62 812 345 678', NULL),
    -- Thailand
    ('081 234 5678', 'TH'),
    ('02 123 4567', 'TH'),
    ('+66 81 234 5678', NULL),
    -- Vietnam
    ('091 234 56 78', 'VN'),
    ('024 3123 4567', 'VN'),
    ('+84 91 234 5678', NULL),
    -- Philippines
    ('0917 123 4567', 'PH'),
    ('(02) 8123 4567', 'PH'),
    ('+63 917 123 4567', NULL),
    -- India
    ('098765 43210', 'IN'),
    ('011 2345 6789', 'IN'),
    ('+91 98765 43210', NULL),
    -- Brazil: mobile, fixed, carrier code after the trunk prefix
    ('(11) 98765-4321', 'BR'),
    ('(11) 2345-6789', 'BR'),
    ('0 21 11 98765 4321', 'BR'),
    ('+55 21 98765 4321', NULL),
    -- Mexico: current form, old mobile "1", old national prefixes
    ('55 1234 5678', 'MX'),
    ('+52 1 55 1234 5678', NULL),
    ('044 55 1234 5678', 'MX'),
    ('01 33 1234 5678', 'MX'),
    -- US and Canada
    ('(415) 555-2671', 'US'),
    ('1-415-555-2671', 'US'),
    ('416-555-0123', 'CA'),
    ('+1 604 555 1234', NULL),
    ('011 852 9123 4567', 'US'),
    -- United Kingdom
    ('07911 123456', 'GB'),
    ('020 7946 0958', 'GB'),
    ('+44 (0)20 7946 0958', NULL),
    ('+44 7911 123456', NULL),
    ('07911 123456', 'uk'),
    -- Germany
    ('0151 23456789', 'DE'),
    ('030 1234567', 'DE'),
    ('+49 (0)171 1234567', NULL),
    -- Japan
    ('090-1234-5678', 'JP'),
    ('03-1234-5678', 'JP'),
    ('+81 90 1234 5678', NULL),
    -- Australia
    ('0412 345 678', 'AU'),
    ('(02) 1234 5678', 'AU'),
    ('+61 4 1234 5678', NULL),
    -- France
    ('06 12 34 56 78', 'FR'),
    ('01 23 45 67 89', 'FR'),
    ('+33 (0)6 12 34 56 78', NULL),
    -- Spain
    ('612 34 56 78', 'ES'),
    ('912 34 56 78', 'ES'),
    -- Italy: fixed lines keep their 0 after the country code
    ('312 345 6789', 'IT'),
    ('06 1234 5678', 'IT'),
    ('+39 06 1234 5678', NULL),
    -- Russia and Kazakhstan
    ('8 (916) 123-45-67', 'RU'),
    ('8 495 123-45-67', 'RU'),
    ('+7 916 123 45 67', NULL),
    ('+7 701 123 4567', NULL),
    -- Turkey
    ('0532 123 45 67', 'TR'),
    ('0212 123 45 67', 'TR'),
    -- Saudi Arabia
    ('050 123 4567', 'SA'),
    ('011 234 5678', 'SA'),
    -- United Arab Emirates
    ('050 123 4567', 'AE'),
    ('02 234 5678', 'AE'),
    -- Egypt
    ('010 1234 5678', 'EG'),
    ('02 2345 6789', 'EG'),
    -- Nigeria
    ('0803 123 4567', 'NG'),
    ('+234 201 234 5678', NULL),
    -- South Africa
    ('082 123 4567', 'ZA'),
    ('011 123 4567', 'ZA'),
    -- Pakistan
    ('0301 2345678', 'PK'),
    ('021 3456 7890', 'PK'),
    -- Bangladesh
    ('01712-345678', 'BD'),
    ('02-7123456', 'BD'),
    -- Argentina: national mobile form with 15, international form with 9
    ('011 15-1234-5678', 'AR'),
    ('0341 15 512-3456', 'AR'),
    ('+54 9 11 1234-5678', NULL),
    ('011 4123-4567', 'AR'),
    -- Colombia
    ('300 123 4567', 'CO'),
    ('601 234 5678', 'CO'),
    ('+57 300 123 4567', NULL),
    -- a code without hand-written rules (Greece)
    ('+30 210 123 4567', NULL),
    -- CJK and other input: fullwidth digits and punctuation, NBSP,
    -- ideographic space, Arabic-Indic digits, bidi marks, tab and newline
    ('＋８５２　９１２３　４５６７', NULL),
    ('９１２３－４５６７', 'HK'),
    ('（０２）２１２３－４５６７', 'TW'),
    (U&'+852\00A09123\00A04567', NULL),
    (U&'9123\30004567', 'HK'),
    ('٠٥٠ ١٢٣ ٤٥٦٧', 'SA'),
    (U&'\202A+852 9123 4567\202C', NULL),
    (E'\t+852\t9123 4567', NULL),
    -- the default country as code, case-insensitive, or as calling code
    ('9123 4567', 'hk'),
    ('9123 4567', ' Hk '),
    ('9123 4567', '852'),
    ('9123 4567', '+852'),
    -- "+" or "00" wins over the default country
    ('+852 9123 4567', 'US'),
    ('00852 9123 4567', 'KR'),
    ('+44 7911 123456', 'HK'),
    -- a blank default country is no default
    ('+852 9123 4567', '');

SELECT id, raw, country, normalize_phone(raw, country) AS e164,
       phone_country(normalize_phone(raw, country)) AS country_of
FROM phone_cases ORDER BY id;

-- Idempotence: a normalized number reads back unchanged with "+", without
-- it, and with any default country.
SELECT count(*) AS cases,
       count(*) FILTER (WHERE normalize_phone('+' || n) = n) AS with_plus,
       count(*) FILTER (WHERE normalize_phone(n) = n) AS bare,
       count(*) FILTER (WHERE normalize_phone('+' || n, 'JP') = n) AS with_default,
       count(*) FILTER (WHERE phone_problem(n) IS NULL) AS no_problem
FROM (SELECT normalize_phone(raw, country) AS n FROM phone_cases) AS t;

-- line breaks inside a CSV cell are white space too
SELECT normalize_phone(E'+852 9123\r\n4567\n') AS with_line_breaks;

-- NULLs: no number, no result; a NULL default country is no default
SELECT normalize_phone(NULL) IS NULL AS a,
       normalize_phone(NULL, 'HK') IS NULL AS b,
       normalize_phone(NULL, 'XX') IS NULL AS c,
       normalize_phone('+852 9123 4567', NULL) AS d,
       phone_problem(NULL) IS NULL AS e,
       phone_problem('+852 9123 4567') IS NULL AS f,
       phone_country(NULL) IS NULL AS g;

-- errors: message, detail and SQLSTATE 22023
\set VERBOSITY verbose
SELECT normalize_phone('+852 9123 456');
\set VERBOSITY default
SELECT normalize_phone('');
SELECT normalize_phone('abc');
SELECT normalize_phone('852 9123 4567 ext 12');
SELECT normalize_phone('+852 9123 45678');
SELECT normalize_phone('+999 1234 5678');
SELECT normalize_phone('9123 4567');
SELECT normalize_phone('9123 4567', '');
SELECT normalize_phone('9123 456', 'HK');
SELECT normalize_phone('010-1234-567', 'KR');
SELECT normalize_phone('+800 1234 5678');
-- an unknown default country is an error even for a valid number
\set VERBOSITY verbose
SELECT normalize_phone('9123 4567', 'XX');
\set VERBOSITY default
SELECT normalize_phone('+852 9123 4567', 'Hong Kong');
SELECT normalize_phone('9123 4567', '800');

-- 10 MB of garbage fails at once and is quoted only in part
SELECT normalize_phone(repeat('x', 10000000));
SELECT normalize_phone(repeat('9', 10000000));
SELECT normalize_phone('9123 4567', repeat('X', 10000000));
SELECT phone_problem(repeat('x', 10000000)) AS letters,
       phone_problem(repeat('9', 10000000)) AS digits,
       phone_problem('+852 ' || repeat(' ', 10000000)) AS spaces;

-- phone_problem: one row per class of bad input (never raises)
SELECT raw, country, phone_problem(raw, country) AS problem
FROM (VALUES
    ('', NULL),
    ('   ', NULL),
    ('()-./', NULL),
    ('abc', NULL),
    ('+852 9123 4567 x12', NULL),
    ('*100#', NULL),
    ('+852 9123#4567', NULL),
    ('📞 9123 4567', 'HK'),
    (E'9123\u00014567', 'HK'),
    ('852+9123 4567', NULL),
    ('++852 9123 4567', NULL),
    ('+', NULL),
    ('00', NULL),
    ('+852 9123 456', NULL),
    ('+852 9123 45678', NULL),
    ('1234567890123456789', NULL),
    ('+999 1234 5678', NULL),
    ('+0852 9123 4567', NULL),
    ('+800 1234 5678', NULL),
    ('+882 1234 5678', NULL),
    ('+852', NULL),
    ('+852 1234 5678', NULL),
    ('+86 12 3456 7890', NULL),
    ('+86 138 0013 800', NULL),
    ('+82 10 1234 567', NULL),
    ('+1 211 555 0123', NULL),
    ('+1 415 055 0123', NULL),
    ('+55 11 8765 43210', NULL),
    ('+30 0123456789', NULL),
    ('+30 210 123 456', NULL),
    ('+44 20 7946 095', NULL),
    ('9123 4567', NULL),
    ('0912 345 678', NULL),
    ('9123 4567', 'XX'),
    ('9123 4567', 'Hong Kong'),
    ('011 852 9123 4567', 'HK'),
    ('02 123 456', 'GB')
) AS t(raw, country);

-- phone_country: normalized or "+" numbers; NULL when not valid
SELECT phone, phone_country(phone)
FROM (VALUES
    ('85291234567'), ('+1 604 555 1234'), ('18765551234'), ('12125551234'),
    ('18005551234'), ('77011234567'), ('79161234567'), ('390669812345'),
    ('447624123456'), ('447911123456'), ('4779123456'), ('5999 461 2345'),
    ('garbage'), ('+800 1234 5678'), ('9123 4567'), ('')
) AS t(phone);
