-- the customer API: wam.upsert_customer creates or updates a customer by phone
-- (start from an empty data model, whatever ran before)
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS pg_wamarketing CASCADE;
CREATE EXTENSION pg_wamarketing;
RESET client_min_messages;
\set VERBOSITY default
\set SHOW_CONTEXT never

-- create: the phone is normalized, the locale gets its usual letter case and the
-- time zone its pg_timezone_names spelling
SELECT wam.upsert_customer('+852 9123-4567', 'Ana Lima', 'pt-br', 'america/sao_paulo') AS ana;
SELECT wam.upsert_customer('9123 4568', 'Bo', 'ZH-hant-tw', 'Asia/Hong_Kong', 'HK') AS bo;
SELECT wam.upsert_customer('+44 20 7946 0958', locale => 'en_gb', time_zone => 'Europe/London') AS cy;
SELECT id, phone, name, locale, time_zone FROM wam.customer ORDER BY id;

-- update by phone, in any spelling of it: the same id; NULL keeps a value, '' clears it
SELECT wam.upsert_customer('0085291234567', NULL, 'pt-PT') AS ana_again;
SELECT wam.upsert_customer('+85291234568', '  Bo Chan  ', NULL, '') AS bo_again;
SELECT wam.upsert_customer('+442079460958', '', '', NULL) AS cy_again;
SELECT id, phone, name, locale, time_zone FROM wam.customer ORDER BY id;
SELECT wam.upsert_customer('+85291234567') AS only_phone;
SELECT id, name, locale, time_zone FROM wam.customer WHERE id = 1;

-- a new customer is a customer everywhere at once: it can be tagged
SELECT wam.create_tag('api test', 'interest') > 0 AS tag_created;
SELECT wam.attach_tag('api test', '{1,2,3}') AS attached;
-- a customer that does not exist says how to create one
SELECT wam.attach_tag('api test', '{1,2,3,4}');

-- what is stored after an upsert (a function of its own: it sees the upsert's row)
CREATE FUNCTION pg_temp.stored(phone text, locale text, time_zone text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
	cid bigint := wam.upsert_customer(phone, NULL, locale, time_zone);
BEGIN
	RETURN (SELECT format('%s: %s, %s', c.id, c.locale, c.time_zone) FROM wam.customer c WHERE c.id = cid);
END
$$;

-- locales: language (2-3 letters), optional script (4), optional region (2 letters or 3 digits)
SELECT l, pg_temp.stored('+85291234567', l, NULL) AS stored
FROM unnest(ARRAY['en', 'fil', 'es-419', 'zh-Hant', 'zh_hant_tw', 'SR-latn-RS', ' en-us ']) l;
SELECT wam.upsert_customer('+85291234567', NULL, 'e');
SELECT wam.upsert_customer('+85291234567', NULL, 'english');
SELECT wam.upsert_customer('+85291234567', NULL, 'en-USA');
SELECT wam.upsert_customer('+85291234567', NULL, 'en-US-x-private');
SELECT wam.upsert_customer('+85291234567', NULL, 'zh-Hant_TW');
SELECT wam.upsert_customer('+85291234567', NULL, 'en-');
SELECT wam.upsert_customer('+85291234567', NULL, 'de-1996');

-- time zones: names of pg_timezone_names only, not POSIX specifications
SELECT z, pg_temp.stored('+85291234567', NULL, z) AS stored
FROM unnest(ARRAY['utc', 'Etc/GMT-8', 'EST5EDT', ' asia/kolkata ']) z;
SELECT wam.upsert_customer('+85291234567', NULL, NULL, 'Mars/Olympus');
SELECT wam.upsert_customer('+85291234567', NULL, NULL, 'UTC+8');
SELECT wam.upsert_customer('+85291234567', NULL, NULL, 'HKT');
SELECT wam.upsert_customer('+85291234567', NULL, NULL, repeat('A', 300));
SELECT wam_internal.time_zone_name('EUROPE/LISBON'), wam_internal.time_zone_name('Europe/Lisbon '), wam_internal.time_zone_name(''),
	   wam_internal.time_zone_name(NULL);

-- bad phones and names: clear errors, nothing written
SELECT wam.upsert_customer(NULL, 'x');
SELECT wam.upsert_customer('9123 4567', 'x');
SELECT wam.upsert_customer('12345', 'x', default_country => 'HK');
SELECT wam.upsert_customer('9123 4567', 'x', default_country => 'XX');
SELECT wam.upsert_customer('+85291234567', E'Ana\nLima');
SELECT wam.upsert_customer('+85291234567', E'Ana\tLima');
SELECT count(*) AS customers, count(*) FILTER (WHERE name LIKE '%x%' OR name LIKE E'%\n%') AS bad_names FROM wam.customer;

-- roles: operators (and admins) create customers, readers and others cannot
SET ROLE wam_operator;
SELECT wam.upsert_customer('+85291230001', 'by operator') > 0 AS operator_creates;
INSERT INTO wam.customer (phone) VALUES ('85291230002');
UPDATE wam.customer SET locale = 'en';
RESET ROLE;
SET ROLE wam_admin;
SELECT wam.upsert_customer('+85291230003', 'by admin') > 0 AS admin_creates;
RESET ROLE;
SET ROLE wam_reader;
SELECT wam.upsert_customer('+85291230004', 'by reader');
RESET ROLE;
CREATE ROLE wam_customer_nobody;
SET ROLE wam_customer_nobody;
SELECT wam.upsert_customer('+85291230005', 'by nobody');
RESET ROLE;
DROP ROLE wam_customer_nobody;
SELECT phone, name FROM wam.customer WHERE phone LIKE '8529123000%' ORDER BY phone;
-- it runs as wam_definer, with the search path pinned
SELECT p.prosecdef, pg_get_userbyid(p.proowner) AS owner, p.proconfig
FROM pg_proc p WHERE p.oid = 'wam.upsert_customer'::regproc;
