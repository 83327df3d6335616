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

-- a file with every kind of row; progress is reported as NOTICEs
SET client_min_messages = notice;
SELECT * FROM import_csv(
$csv$phone,tags,name,consent
+852 9123 4567,"VIP,new customer",Alice,web form
(852) 9123-4568,interest: beauty,Bob,
852.9123.4569,,Carol,
+852 9123 4567,VIP,Alice again,
12345,VIP,Too short,
+852 9123 abcd,VIP,Letters,
+999 1234 5678,VIP,No such country,
+852 9123 4570,"VIP, no such tag",Dave,
+852 9123 4571,old tag,Eve,
+852 9123 4572
85291230000,"vip , NEW-Customer",Existing updated,in store
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
