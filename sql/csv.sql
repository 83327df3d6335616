-- wam.csv_rows: the streaming CSV reader behind contact imports
SET search_path = public, wam;

-- header and rows; the tags column holds several tags in one quoted field
SELECT * FROM csv_rows(E'name,phone,tags\nKim Minji,+821012345678,"vip,new customer"\nLee,+821098765432,\n');
SELECT line_no, fields[3] AS tags, string_to_array(fields[3], ',') AS tag_list
	FROM csv_rows(E'name,phone,tags\nKim,+8210,"vip,new customer"\nLee,+8211,vip\n');
-- an untyped literal picks the text variant; both variants agree
SELECT (SELECT array_agg(f ORDER BY l) FROM csv_rows(E'a,"b,c"\n1,2') AS t(l, f, p))
	= (SELECT array_agg(f ORDER BY l) FROM csv_rows(convert_to(E'a,"b,c"\n1,2', 'UTF8')) AS t(l, f, p)) AS same;

-- typical use: uploads in a table, read with LATERAL; also callable in the
-- select list
CREATE TEMP TABLE csv_uploads (id int, body bytea);
INSERT INTO csv_uploads VALUES
	(1, convert_to(E'phone,tags\n+8210,"vip,new"\n', 'UTF8')),
	(2, convert_to(E'phone\r\n+8211\r\n+8212', 'UTF8'));
SELECT u.id, r.* FROM csv_uploads u, csv_rows(u.body) r ORDER BY u.id, r.line_no;
SELECT csv_rows(E'a,b\n"c\nd"');
DROP TABLE csv_uploads;

-- escaped quotes
SELECT * FROM csv_rows(E'a,"say ""hi""",""""\n"",x,"""quoted"""');
-- a quote inside an unquoted field is data
SELECT * FROM csv_rows(E'5\'11",ab"c""d\n');

-- line breaks inside quoted fields; line_no is the line the record starts on
SELECT line_no, to_json(fields) AS fields, problem
	FROM csv_rows(E'id,note\n1,"two\nlines"\n2,"three\r\nlines\rhere"\n3,last');
-- CRLF, with and without a final line break
SELECT * FROM csv_rows(E'a,b\r\n1,2\r\n');
SELECT * FROM csv_rows(E'a,b\r\n1,2');
-- CR only (old Mac exports)
SELECT * FROM csv_rows(E'a,b\r1,2\r3,4\r');
-- mixed line breaks; \r\n counts as one line, \n\r as two
SELECT line_no, fields FROM csv_rows(E'a\nb\r\nc\rd\n\re');
-- a UTF-8 byte order mark at the very start is skipped, elsewhere it is data
SELECT line_no, to_json(fields) FROM csv_rows(E'\uFEFFname,phone\nKim,1');
SELECT line_no, octet_length(fields[1]) AS first_field_bytes, fields[1] = E'\uFEFFKim' AS kept
	FROM csv_rows(convert_to(E'\uFEFFname,phone\n\uFEFFKim,1', 'UTF8'));
SELECT line_no, to_json(fields) FROM csv_rows('\xefbbbf'::bytea || convert_to(E'"quoted",x', 'UTF8'));
-- blank lines (empty, or only spaces and tabs) produce no row
SELECT * FROM csv_rows(E'\n\na,b\n\n  \n\t\n1,2\n\n \n');
SELECT * FROM csv_rows(E'a,b\r\n\r\n\r\n1,2\r\n   ');
-- empty fields; "" on its own is a record with one empty field
SELECT line_no, to_json(fields), cardinality(fields)
	FROM csv_rows(E',\n,,\na,,b,\n""\n"",""\n" "');
-- whitespace around unquoted fields is kept (the caller trims); around a
-- quoted field it is dropped: a, "b,c" ,d is three fields
SELECT line_no, to_json(fields) FROM csv_rows(E' a , b ,c\na, "b,c" ,d\n"x"  \t,y\n  "z"');

-- tab delimiter (TXT exports); a tab is then a delimiter, not padding
SELECT * FROM csv_rows(E'name\tphone\ttags\nKim\t+8210\t"vip,new customer"\n', E'\t');
SELECT line_no, to_json(fields) FROM csv_rows(E'a\t\tb\n\t\n \t "x" \n', E'\t');
-- other one-byte delimiters; a space delimiter is not padding either
SELECT * FROM csv_rows(E'a;b;"c;d"\n1;2;3', ';');
SELECT * FROM csv_rows(E'a|b||c', '|');
SELECT line_no, to_json(fields) FROM csv_rows(E'a b  "c d"', ' ');

-- Korean, Chinese and emoji content, in both variants
SELECT * FROM csv_rows(E'이름,전화,태그\n김민지,+821012345678,"VIP,신규 고객"\n王小明,+8613800138000,"贵宾,新客户"\n😀 Emoji,+15550100,"🎉,👍🏽"\n');
SELECT * FROM csv_rows(convert_to(E'이름,태그\n김민지,"VIP,신규 고객"\n王小明,"贵宾,新客户"\n😀,"🎉,👍🏽"', 'UTF8'));

-- Problems: each bad record gets a reason and NULL fields, the rows after it
-- still come out.
-- a character after a closing quote; the record ends where it would if the
-- field were unquoted
SELECT * FROM csv_rows(E'a,b\n"ab"c,d\n1,2\n"x","y"z,"w\nv"\n3,4\n');
-- unterminated quoted field: the rest of the input is one bad record,
-- reported once at the line where the quote opened
SELECT * FROM csv_rows(E'a,b\n1,2\n3,"open\n4,5\n6,7\n');
SELECT * FROM csv_rows(E'a,b\n"ok\nfine",x,"open\n4,5');
SELECT * FROM csv_rows('"');
-- a record longer than max_record_bytes is skipped to the end of the line
-- the limit was passed on
SELECT line_no, length(fields[1]) AS len, problem
	FROM csv_rows(E'a\n' || repeat('x', 1024) || E'\n' || repeat('y', 1025) || E'\nb\n', ',', 1024);
SELECT line_no, fields, problem
	FROM csv_rows(E'a,b\n1,' || repeat('x', 3000) || E',3\n4,5\n', ',', 1024);
-- the limit counts the bytes of the record, not the characters
SELECT line_no, length(fields[1]) AS chars, octet_length(fields[1]) AS bytes, problem
	FROM csv_rows(repeat('한', 341) || E'\n' || repeat('한', 342) || E'\nok', ',', 1024);
-- a quoted field that runs over the limit is cut at the end of that
-- physical line and reading resumes on the next line: a stray quote costs
-- only the lines within the limit
SELECT line_no, fields, problem
	FROM csv_rows((SELECT E'id,name\n1,"stray\n' || string_agg(g || ',name ' || g, E'\n') || E'\n'
				   FROM generate_series(2, 200) g), ',', 1024)
	WHERE line_no <= 3 OR line_no >= 199 OR problem IS NOT NULL;
-- a 10 MB line with the default limit of 1 MB: skipped, nothing lost around it
SELECT line_no, fields, problem
	FROM csv_rows(E'name,phone\nKim,1\n' || repeat('z', 10 * 1024 * 1024) || E'\nLee,2\n');
-- the same with a quoted field of 2 MB over many lines: it is cut after the
-- line the limit falls on and its remaining lines are read as records (here
-- until the closing quote, which opens a field that never closes)
SELECT count(*) AS rows,
	min(line_no) FILTER (WHERE line_no > 2) AS resumed_at,
	count(*) FILTER (WHERE fields = '{z}') AS z_rows,
	string_agg(line_no || ': ' || problem, '; ') AS problems
FROM csv_rows(E'name,phone\n"' || repeat(E'z\n', 1024 * 1024) || E'",1\nLee,2\n');

-- invalid UTF-8 (bytea variant): the bad record is reported, the rest read
SELECT * FROM csv_rows(convert_to(E'name,phone\nKim,1\n', 'UTF8') || '\xc3'::bytea
	|| convert_to(E'x,2\nLee,3\n', 'UTF8'));
-- overlong, surrogate, above U+10FFFF, stray continuation byte, inside quotes,
-- and a sequence cut off by the end of the input
SELECT * FROM csv_rows(convert_to(E'h\n', 'UTF8')
	|| '\x612cc0af0a'::bytea			-- a,<overlong />
	|| '\x612ceda0800a'::bytea			-- a,<surrogate U+D800>
	|| '\x612cf49080800a'::bytea		-- a,<U+110000>
	|| '\x80610a'::bytea				-- <continuation>a
	|| '\x22780a79ff222c7a0a'::bytea	-- "x\ny<ff>",z
	|| convert_to(E'ok,한\n', 'UTF8')
	|| '\xe4b8'::bytea);				-- cut-off 中
-- a file in the wrong encoding (Korean Windows, CP949): the rows with Korean
-- text are reported, the ASCII rows still come out
SELECT * FROM csv_rows(convert_to(E'name,phone\n김민지,+8210\nLee,+8211\n"VIP,신규",x', 'UHC'));
-- NUL bytes (bytea variant)
SELECT * FROM csv_rows(convert_to(E'a,b\n', 'UTF8') || '\x312c00320a'::bytea
	|| '\x22000a222c330a'::bytea || convert_to(E'4,5', 'UTF8'));
-- several problems in one record: the first is reported
SELECT * FROM csv_rows('\x2261222bff2c00'::bytea);
-- a record that is too long is reported as such, whatever else is wrong
SELECT line_no, problem FROM csv_rows('\xff'::bytea || convert_to(repeat('x', 2000) || E'\nok', 'UTF8'),
	',', 1024);

-- NULL and empty input: no rows
SELECT * FROM csv_rows(NULL::text);
SELECT * FROM csv_rows(NULL::bytea);
SELECT * FROM csv_rows('a', NULL);
SELECT * FROM csv_rows('');
SELECT * FROM csv_rows(''::bytea);
SELECT * FROM csv_rows(E'\n\r\n  \n');
SELECT * FROM csv_rows(E'\uFEFF');
SELECT * FROM csv_rows(E'\uFEFF\n\n');

-- bad arguments
SELECT * FROM csv_rows('a', ',,');
SELECT * FROM csv_rows('a', '');
SELECT * FROM csv_rows('a', '；');
SELECT * FROM csv_rows('a', '"');
SELECT * FROM csv_rows('a', E'\n');
SELECT * FROM csv_rows('a', E'\r');
SELECT * FROM csv_rows('a'::bytea, ',,');
SELECT * FROM csv_rows('a', ',', 1023);
SELECT * FROM csv_rows('a', ',', 1073741825);
SELECT * FROM csv_rows('a'::bytea, ',', 0);
SELECT line_no, fields FROM csv_rows('a', ',', 1024);
SELECT line_no, fields FROM csv_rows('a'::bytea, ',', 1073741824);

-- a million contacts in one call (timing is measured outside the tests)
SELECT count(*) AS rows,
	count(*) FILTER (WHERE problem IS NOT NULL) AS problems,
	max(line_no) AS last_line,
	sum(cardinality(fields)) AS fields,
	count(*) FILTER (WHERE fields[3] = 'vip,new customer') AS tagged
FROM csv_rows((SELECT E'name,phone,tags\n'
			|| string_agg(format('user %s,+8210%s,"vip,new customer"', g, g), E'\n')
		FROM generate_series(1, 1000000) g));
-- the same through the bytea variant, Korean names, CRLF and a few bad rows
SELECT count(*) AS rows,
	count(*) FILTER (WHERE problem IS NOT NULL) AS problems,
	min(line_no) FILTER (WHERE problem IS NOT NULL) AS first_bad,
	max(line_no) AS last_line
FROM csv_rows((SELECT convert_to(E'이름,전화,태그\r\n', 'UTF8')
			|| string_agg(CASE WHEN g % 250000 = 0 THEN '\xff0d0a'::bytea
						ELSE convert_to(format(E'김민지 %s,+8210%s,"VIP,신규 고객"\r\n', g, g), 'UTF8') END,
					''::bytea)
		FROM generate_series(1, 1000000) g));
