-- contact import (R-I1 ... R-I8)
-- start from an empty data model, whatever ran before in this database
SET client_min_messages = warning;
DROP EXTENSION pg_wamarketing CASCADE;
CREATE EXTENSION pg_wamarketing;
RESET client_min_messages;
SET search_path = public, wam;
SET client_min_messages = warning;
\set VERBOSITY terse

SELECT create_tag('VIP', 'spending power');
SELECT create_tag('new customer', 'purchase stage', NULL, '60 days');
SELECT create_tag('interest: beauty', 'interest');
SELECT create_tag('old tag', 'interest');
SELECT retire_tag('old tag', 'test');
INSERT INTO customer (phone, name) VALUES ('85291230000', 'Existing');

-- a file with every kind of row; a NOTICE sums up the import
SET client_min_messages = notice;
SELECT * FROM import_csv(
$csv$phone,tags,name,consent
+852 9123 4567,"VIP,new customer",Alice,yes
(852) 9123-4568,interest: beauty,Bob,
852.9123.4569,,Carol,
+852 9123 4567,VIP,Alice again,
12345,VIP,Too short,
+852 9123 abcd,VIP,Letters,
+999 1234 5678,VIP,No such country,
+852 9123 4570,"VIP, no such tag",Dave,
+852 9123 4571,old tag,Eve,
+852 9123 4572
85291230000,"vip , NEW-Customer",Existing updated, Y 
+852 9123 4573,"interest: beauty","Quoted ""name""",
+852 9123 4574,"unterminated,Frank,
$csv$, 'HK');
SET client_min_messages = warning;
SELECT line_no, raw_phone, reason FROM import_error ORDER BY import_id, line_no;
SELECT c.phone, c.name, c.consent_source, c.consent_at IS NOT NULL AS consented, customer_tags(c.id)
FROM customer c ORDER BY c.phone;
SELECT source, count(*) FROM customer_tag GROUP BY source;
SELECT bool_and(ok) FROM verify_tag_index();

-- national numbers with a default country; the same file again only updates
SELECT rows_read, created, updated, duplicates, failed, failure_rate, flagged
FROM import_csv(E'Phone Number,Tags\n9123 4575,VIP\n9123-4576,\n', 'hk');
SELECT rows_read, created, updated, duplicates, failed, failure_rate, flagged
FROM import_csv(E'Phone Number,Tags\n9123 4575,VIP\n9123-4576,\n', '852');
-- without a default country a national number fails
SELECT rows_read, created, failed FROM import_csv(E'phone,tags\n9123 4577,VIP\n');
SELECT reason FROM import_error WHERE import_id = (SELECT max(import_id) FROM import);
-- tab-separated TXT and semicolon CSV are recognised from the header
SELECT rows_read, created, failed FROM import_csv(E'phone\ttags\n+85291234578\tVIP\n');
SELECT rows_read, created, failed FROM import_csv(E'phone;tags\n+85291234579;VIP\n');
SELECT rows_read, created, failed FROM import_csv(E'phone|tags\n+85291234582|VIP\n', NULL, '|');
SELECT * FROM import_csv(E'phone\n+85291234583\n', NULL, 'ab');

-- raw bytes: an invalid UTF-8 line fails alone, a CP949 name is caught
SELECT rows_read, created, failed FROM import_csv(
	convert_to(E'phone,name\n+85291234580,', 'UTF8') || '\xc8abb1e6'::bytea ||
	convert_to(E'\n+85291234581,Ok\n', 'UTF8'));
SELECT reason FROM import_error WHERE import_id = (SELECT max(import_id) FROM import);

-- a 10 MB line fails alone
SELECT rows_read, created, failed FROM import_csv(
	E'phone,name\n+85291234590,' || repeat('x', 10 * 1024 * 1024) || E'\n+85291234591,ok\n');
SELECT line_no, left(reason, 40) FROM import_error WHERE import_id = (SELECT max(import_id) FROM import);

-- whole-file errors import nothing
SELECT * FROM import_csv(E'name,tags\nAlice,VIP\n');
SELECT * FROM import_csv('');
SELECT * FROM import_csv(NULL::text);
SELECT * FROM import_csv(E'phone\n+85291234599\n', 'XX');
SELECT count(*) FROM customer WHERE phone = '85291234599';

-- an empty file with a header imports nothing and is not flagged
SELECT rows_read, created, failed, failure_rate, flagged FROM import_csv(E'phone,tags\n');

-- 1,000 rows with 15% bad numbers are flagged (R-I5)
SELECT rows_read, created, duplicates, failed, failure_rate, flagged FROM import_csv(
	'phone,tags' || E'\n' || (SELECT string_agg(CASE WHEN g % 20 < 3 THEN 'bad' || g ELSE '+8526' || lpad(g::text, 7, '0') END
		|| ',VIP', E'\n') FROM generate_series(1, 1000) g));
SELECT count(*) = 850 AS all_good_rows_tagged FROM customer_tag
WHERE tag_id = tag_id('VIP') AND customer_id IN (SELECT id FROM customer WHERE phone LIKE '8526%');

-- roles: operators import, readers cannot
SET ROLE wam_reader;
SELECT * FROM import_csv(E'phone\n+85291234598\n');
RESET ROLE;
SET ROLE wam_operator;
SELECT rows_read, created FROM import_csv(E'phone\n+85291234598\n');
RESET ROLE;
SELECT bool_and(ok) FROM verify_tag_index();

-- the import is one statement over wam.csv_rows: operators cannot call its
-- internal function directly
SET ROLE wam_operator;
SELECT * FROM wam_internal.import_file(E'phone\n+85291234597\n', NULL, NULL, ',');
RESET ROLE;

-- The caller's temporary objects are never read or run: an operator who
-- pre-creates temporary views, tables and triggers with the names the import
-- once used for staging (wam_import_csv, wam_import_row; pg_temp is on every
-- definer's search path) gets a normal import, and the spy function behind
-- them never runs as the definer (it would log current_user and set a
-- setting).
CREATE ROLE wam_test_import_spy NOLOGIN IN ROLE wam_operator;
SET ROLE wam_test_import_spy;
CREATE TEMP TABLE spy_log (who name, what text);
CREATE FUNCTION pg_temp.spy(what text) RETURNS bigint LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO pg_temp.spy_log VALUES (current_user, what);
	PERFORM set_config('wam_test.spy', current_user, false);
	RETURN 2;
END $$;
CREATE FUNCTION pg_temp.spy_trigger() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	PERFORM pg_temp.spy(TG_TABLE_NAME || ' ' || TG_OP || ' ' || TG_LEVEL);
	RETURN NULL;
END $$;
-- 1: a view wam_import_csv and a table wam_import_row with triggers
CREATE TEMP VIEW wam_import_csv (line_no, fields, problem) AS
	SELECT 1::bigint, '{phone,tags}'::text[], NULL::text
	UNION ALL SELECT pg_temp.spy('view wam_import_csv'), '{+85291234596,VIP}', NULL;
CREATE TEMP TABLE wam_import_row (line_no bigint PRIMARY KEY, raw_phone text, phone text, name text,
	consent text, tag_names text[], tag_ids integer[], problem text, duplicate_of bigint);
INSERT INTO wam_import_row (line_no, raw_phone, phone, tag_ids) VALUES (2, '+85291234595', '85291234595', '{1}');
CREATE TRIGGER spy_row BEFORE INSERT OR UPDATE OR DELETE ON wam_import_row
	FOR EACH ROW EXECUTE FUNCTION pg_temp.spy_trigger();
CREATE TRIGGER spy_statement AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON wam_import_row
	FOR EACH STATEMENT EXECUTE FUNCTION pg_temp.spy_trigger();
SELECT rows_read, created, updated, duplicates, failed
FROM import_csv(E'phone,tags\n+85291234594,VIP\n+85291234594,VIP\n+85291234593,nope\n');
SELECT c.phone, customer_tags(c.id) FROM customer c
WHERE c.phone IN ('85291234593', '85291234594', '85291234595', '85291234596') ORDER BY 1;
SELECT line_no, reason FROM import_error WHERE import_id = (SELECT max(import_id) FROM import);
SELECT count(*) AS spy_ran FROM spy_log;
SELECT current_setting('wam_test.spy', true) IS NULL AS spy_setting_unset;
SELECT line_no, phone FROM wam_import_row;
DROP VIEW wam_import_csv;
DROP TABLE wam_import_row;
-- 2: the other way round, and the bytea form: a table wam_import_csv with
-- triggers and a row, a view wam_import_row
CREATE TEMP TABLE wam_import_csv (line_no bigint, fields text[], problem text);
INSERT INTO wam_import_csv VALUES (1, '{phone}', NULL), (2, '{+85291234592}', NULL);
CREATE TRIGGER spy_row BEFORE INSERT OR UPDATE OR DELETE ON wam_import_csv
	FOR EACH ROW EXECUTE FUNCTION pg_temp.spy_trigger();
CREATE TRIGGER spy_statement AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON wam_import_csv
	FOR EACH STATEMENT EXECUTE FUNCTION pg_temp.spy_trigger();
CREATE TEMP VIEW wam_import_row AS SELECT pg_temp.spy('view wam_import_row') AS line_no;
SELECT rows_read, created, updated, duplicates, failed
FROM import_csv(convert_to(E'phone,name\n+85291234511,Spy\n', 'UTF8'));
SELECT phone, name FROM customer WHERE phone IN ('85291234511', '85291234592') ORDER BY 1;
SELECT count(*) AS spy_ran FROM spy_log;
SELECT current_setting('wam_test.spy', true) IS NULL AS spy_setting_unset;
SELECT line_no, fields FROM wam_import_csv ORDER BY line_no;
-- the spy does work: reading its view runs it, as the caller
SELECT count(*) FROM wam_import_row;
SELECT who, what FROM spy_log;
SELECT current_setting('wam_test.spy', true) AS spy_setting;
RESET ROLE;
DISCARD TEMP;
DROP ROLE wam_test_import_spy;
SELECT bool_and(ok) FROM verify_tag_index();
