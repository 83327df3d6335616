-- customer attributes and event details in segment expressions (issue 17):
-- typed attributes, attr(name) tests, age, event(kind, key = value) filters,
-- batch tagging, errors with positions, privileges, rules R-T13 and R-S4
-- start from an empty data model, whatever ran before in this database
SET client_min_messages = warning;
DROP EXTENSION pg_wamarketing CASCADE;
CREATE EXTENSION pg_wamarketing;
RESET client_min_messages;
SET search_path = public, wam;

-- the members of an expression, and the SQLSTATE plus message of a failing call
CREATE FUNCTION pg_temp.who(e text) RETURNS text LANGUAGE sql
	RETURN (SELECT coalesce(string_agg(m::text, ',' ORDER BY m), '-') FROM segment_members(audience(e)) m);
CREATE FUNCTION pg_temp.err(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
	EXECUTE q;
	RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
	RETURN SQLSTATE || ': ' || SQLERRM;
END $$;
-- a date n years and d days before today, as text
CREATE FUNCTION pg_temp.ago(n int, d int DEFAULT 0) RETURNS text LANGUAGE sql
	RETURN to_char(CURRENT_DATE - make_interval(years => n) - make_interval(days => d), 'YYYY-MM-DD');

INSERT INTO customer (id, phone) SELECT g, (85290000000 + g)::text FROM generate_series(1, 12) g;

-- the built-in attributes, and user-defined ones
SELECT attribute_id, name, value_type, allowed_values, built_in FROM attribute ORDER BY attribute_id;
SELECT define_attribute('vip_level', 'number') AS vip_level, define_attribute('Newsletter', 'boolean') AS newsletter,
	   define_attribute('signup_day', 'date') AS signup_day,
	   define_attribute('tier', 'text', '{gold,silver}', 'loyalty tier') AS tier;
SELECT define_attribute('tier', 'text', '{gold,silver,bronze}') AS tier_again;
SELECT name, value_type, allowed_values, description FROM attribute WHERE NOT built_in ORDER BY name;
SELECT pg_temp.err($$SELECT define_attribute('2fast', 'text')$$) AS bad_name,
	   pg_temp.err($$SELECT define_attribute('height', 'float')$$) AS bad_type,
	   pg_temp.err($$SELECT define_attribute('height', 'number', '{1,2}')$$) AS allowed_on_number,
	   pg_temp.err($$SELECT define_attribute('gender', 'number')$$) AS built_in_type,
	   pg_temp.err($$SELECT drop_attribute('city')$$) AS drop_built_in;

-- values: genders 1-6 female, 7-9 male, 10 other (11, 12 unset); ages around the
-- boundaries, relative to today (1: 25 today, 2: 25 tomorrow, 3: 25 yesterday,
-- 4: 35 tomorrow, 5: 35 today, 6 and 7: 30, 8: 17, 9: 18 today, 11: 60)
SELECT count(set_attribute(c, 'gender', g)) AS genders FROM (VALUES
	(1, 'female'), (2, 'female'), (3, 'female'), (4, 'female'), (5, 'female'), (6, 'female'),
	(7, 'male'), (8, 'male'), (9, 'male'), (10, 'other')) v(c, g);
SELECT count(set_attribute(c, 'birth_date', d)) AS birth_dates FROM (VALUES
	(1, pg_temp.ago(25)), (2, pg_temp.ago(25, -1)), (3, pg_temp.ago(25, 1)), (4, pg_temp.ago(35, -1)),
	(5, pg_temp.ago(35)), (6, pg_temp.ago(30)), (7, pg_temp.ago(30)), (8, pg_temp.ago(17)),
	(9, pg_temp.ago(18)), (11, pg_temp.ago(60))) v(c, d);
SELECT count(set_attribute(c, 'city', v)) AS cities FROM (VALUES
	(1, 'Taipei'), (2, 'Taipei'), (7, 'Taipei'), (3, 'Hong Kong'), (8, 'Hong Kong'), (4, 'Kaohsiung'),
	(5, 'it''s a city')) v(c, v);
SELECT count(set_attribute(c, a, v)) AS others FROM (VALUES
	(1, 'vip_level', '3'), (2, 'vip_level', '2.5'), (3, 'vip_level', '-1'), (7, 'vip_level', '10'),
	(1, 'newsletter', 'true'), (2, 'newsletter', 'false'), (7, 'NEWSLETTER', 'yes'),
	(1, 'signup_day', '2024-01-15'), (2, 'signup_day', '2025-06-01'), (1, 'tier', 'gold')) v(c, a, v);
-- a value replaced, and one removed with NULL
SELECT set_attribute(8, 'city', 'Tainan'), set_attribute(8, 'city', 'Hong Kong'),
	   set_attribute(2, 'tier', 'silver'), set_attribute(2, 'tier', NULL);
SELECT customer_id, attribute, value_type, CASE WHEN attribute = 'birth_date' THEN '(date)' ELSE value END AS value, age
FROM customer_attributes WHERE customer_id IN (1, 2, 9) ORDER BY customer_id, attribute;
SELECT pg_temp.err($$SELECT set_attribute(1, 'gender', 'Female')$$) AS not_allowed,
	   pg_temp.err($$SELECT set_attribute(1, 'birth_date', 'abc')$$) AS bad_date,
	   pg_temp.err($$SELECT set_attribute(1, 'birth_date', '2990-01-01')$$) AS future_birth;
SELECT pg_temp.err($$SELECT set_attribute(1, 'vip_level', 'ten')$$) AS bad_number,
	   pg_temp.err($$SELECT set_attribute(1, 'vip_level', 'NaN')$$) AS nan,
	   pg_temp.err($$SELECT set_attribute(1, 'newsletter', 'perhaps')$$) AS bad_boolean;
SELECT pg_temp.err($$SELECT set_attribute(1, 'shoe_size', '42')$$) AS unknown_attribute,
	   pg_temp.err($$SELECT set_attribute(99, 'city', 'Taipei')$$) AS unknown_customer,
	   pg_temp.err($$SELECT set_attribute(NULL, 'city', 'Taipei')$$) AS null_customer;

-- every operator, on text, number, date and boolean attributes; unset values
-- never compare (attr(city) <> 'Taipei' leaves out customers without a city,
-- NOT attr(city) = 'Taipei' keeps them)
SELECT e AS expression, pg_temp.who(e) AS customers FROM (VALUES
	($$attr(gender) = 'female'$$), ($$attr(gender) <> 'female'$$), ($$attr(gender) != 'male'$$),
	($$NOT attr(gender) = 'female'$$), ($$attr(gender) IN ('male', 'other')$$), ($$attr(GENDER) is set$$),
	($$attr(gender) IS NOT SET$$), ($$attr(city) = 'Taipei'$$), ($$attr(city) <> 'Taipei'$$),
	($$NOT attr(city) = 'Taipei'$$), ($$attr(city) = 'it''s a city'$$), ($$attr(city) < 'K'$$),
	($$attr(city) BETWEEN 'H' AND 'Kz'$$), ($$attr(city) IN ('Taipei', 'Tainan', 'Hong Kong')$$),
	($$attr(vip_level) >= 3$$), ($$attr(vip_level) > 2.5$$), ($$attr(vip_level) <= 2.5$$),
	($$attr(vip_level) < 0$$), ($$attr(vip_level) = -1$$), ($$attr(vip_level) BETWEEN 0 AND 3$$),
	($$attr(vip_level) IN (3, 10)$$), ($$attr(newsletter) = true$$), ($$attr(newsletter) = FALSE$$),
	($$attr(newsletter) <> true$$), ($$attr(signup_day) < '2025-01-01'$$),
	($$attr(signup_day) BETWEEN '2024-01-15' AND '2025-06-01'$$), ($$attr(tier) = 'gold'$$),
	($$attr(birth_date) < '1990-01-01'$$)
) v(e);

-- age in whole years from birth_date, at the start of the transaction: the
-- birthday itself counts (1 and 5 have theirs today, 2 and 4 tomorrow, 3 had it yesterday)
SELECT e AS expression, pg_temp.who(e) AS customers FROM (VALUES
	('age >= 25'), ('age > 24'), ('age < 25'), ('age <= 24'), ('age = 25'), ('age != 25'),
	('age = 24'), ('age = 34'), ('age = 35'), ('age between 25 and 34'), ('age BETWEEN 34 AND 25'),
	('age >= 18'), ('age < 18'), ('age >= 0'), ('NOT age >= 18')
) v(e);
-- checked against PostgreSQL's age()
SELECT count(*) FILTER (WHERE segment_has(audience('age between 25 and 34'), customer_id) <>
						(age BETWEEN 25 AND 34)) AS disagree
FROM customer_attributes WHERE attribute = 'birth_date';

-- R-T13: women 25-34 -> customer group "young women", as a rule
SELECT create_tag_dimension('customer group', '#ff00aa');
SELECT create_tag('young women', 'customer group') > 0 AS created;
SELECT create_tag_rule('R-T13 young women', add_tags => '{young women}',
					   condition => 'attr(gender) = ''female'' AND age between 25 and 34') > 0 AS rule_created;
SELECT * FROM run_tag_rules('R-T13 young women');
SELECT segment_to_array(tag_members('young women')) AS young_women;

-- event details: event(kind, key = value, ...) counts the events whose details
-- hold every key with that value (numbers and booleans as JSON numbers and booleans)
INSERT INTO event (customer_id, kind, occurred_at, details)
SELECT c, 'search', now() - interval '1 day' * k, d::jsonb FROM (VALUES
	(1, 1, '{"category": "skincare"}'), (1, 5, '{"category": "skincare"}'), (1, 20, '{"category": "skincare"}'),
	(2, 1, '{"category": "skincare"}'), (2, 2, '{"category": "skincare"}'), (2, 3, '{"category": "makeup"}'),
	(3, 35, '{"category": "skincare"}'), (3, 40, '{"category": "skincare"}'), (3, 45, '{"category": "skincare"}'),
	(4, 1, '{"category": "Skincare"}'), (4, 2, '{"category": "Skincare"}'), (4, 3, '{"category": "Skincare"}'),
	(5, 1, NULL), (5, 2, NULL), (5, 3, '{}'),
	(6, 1, '{"category": "skincare", "brand": "acme"}'), (6, 2, '{"category": "skincare", "brand": "acme"}'),
	(6, 3, '{"category": "skincare", "brand": "other"}'), (6, 4, '{"category": "skincare", "page": 2}')
) v(c, k, d);
INSERT INTO event (customer_id, kind, occurred_at, details)
SELECT c, k, now() - interval '1 hour' * h, d::jsonb FROM (VALUES
	(1, 'link_click', 5, '{"product": "sunscreen"}'), (1, 'link_click', 30, '{"product": "sunscreen"}'),
	(1, 'link_click', 100, '{"product": "sunscreen", "utm source": "ig"}'),
	(2, 'link_click', 5, '{"product": "sunscreen"}'), (2, 'link_click', 6, '{"product": "sunscreen"}'),
	(2, 'link_click', 7, '{"product": "sunscreen"}'), (2, 'order', 2, '{"amount": 30}'),
	(3, 'link_click', 5, '{"product": "sunscreen"}'), (3, 'link_click', 6, '{"product": "sunscreen"}'),
	(3, 'link_click', 7, '{"product": "lipstick"}'),
	(7, 'link_click', 1, '{"product": "sunscreen"}'), (7, 'link_click', 2, '{"product": "sunscreen"}'),
	(7, 'link_click', 3, '{"product": "sunscreen"}'), (7, 'link_click', 4, '{"product": "sunscreen"}'),
	(7, 'order', 240, '{"amount": 10}'),
	(8, 'link_click', 1, '{"product": "sunscreen", "qty": 2, "gift": true}'),
	(8, 'link_click', 2, '{"product": "3", "qty": "2"}'),
	(9, 'link_click', 300, '{"product": "sunscreen"}'), (9, 'link_click', 301, '{"product": "sunscreen"}'),
	(9, 'link_click', 302, '{"product": "sunscreen"}')
) v(c, k, h, d);
SELECT e AS expression, pg_temp.who(e) AS customers FROM (VALUES
	($$event(search, category = 'skincare') >= 3 within 30d$$),
	($$event(search, category = 'skincare') >= 3$$),
	($$event(search, category = 'skincare') within 30d$$),
	($$event(search, category = 'skincare', brand = 'acme') = 2$$),
	($$event(search, page = 2)$$), ($$event(search, page = '2')$$),
	($$event(search, category = 'shoes')$$), ($$event(search, color = 'red')$$),
	($$event(search) >= 3 within 30d$$), ($$no event(search, category = 'skincare')$$),
	($$event(search, category = 'skincare') < 3 within 30d$$),
	($$event(link_click, product = 'sunscreen') >= 3 within 7d$$),
	($$event(link_click, product = 'sunscreen') >= 3 within 7d EXCLUDE event(order) within 7d$$),
	($$event(link_click, product = 'sunscreen', qty = 2)$$), ($$event(link_click, qty = '2')$$),
	($$event(link_click, gift = true)$$), ($$event(link_click, product = '3')$$),
	($$event(link_click, product = 3)$$), ($$event(link_click, "utm source" = 'ig')$$),
	($$event(link_click, product = 'sunscreen') >= 3 within 7d AND attr(gender) = 'female'$$)
) v(e);
-- R-S4 next to the same counts in plain SQL
SELECT audience_size('event(search, category = ''skincare'') >= 3 within 30d') AS searched_skincare,
	   (SELECT count(*) FROM (SELECT customer_id FROM event
							  WHERE kind = 'search' AND occurred_at >= now() - interval '30 days'
								AND details->>'category' = 'skincare' GROUP BY 1 HAVING count(*) >= 3) x) AS plain_sql;
SELECT audience_size('event(link_click, product = ''sunscreen'') >= 3 within 7d EXCLUDE event(order) within 7d') AS clicked_not_bought,
	   (SELECT count(*) FROM (SELECT customer_id FROM event
							  WHERE kind = 'link_click' AND occurred_at >= now() - interval '7 days'
								AND details->>'product' = 'sunscreen' GROUP BY 1 HAVING count(*) >= 3
							  EXCEPT SELECT customer_id FROM event
							  WHERE kind = 'order' AND occurred_at >= now() - interval '7 days') x) AS plain_sql;
SELECT * FROM audience_funnel('attr(gender) = ''female'' AND age between 25 and 34 OR event(link_click, product = ''sunscreen'') >= 3 within 7d EXCLUDE event(order) within 7d');

-- attributes and details in saved segments
SELECT define_segment('young women', 'attr(gender) = ''female'' AND age BETWEEN 25 AND 34');
SELECT pg_temp.who('@"young women" AND event(search, category = ''skincare'') within 30d') AS skincare_young_women;

-- batch tagging: one call tags everyone an expression selects
SELECT create_tag('sunscreen hesitant', 'interest') > 0 AS created;
SELECT attach_tag_where('sunscreen hesitant',
						'event(link_click, product = ''sunscreen'') >= 3 within 7d EXCLUDE event(order) within 7d') AS tagged,
	   attach_tag_where('sunscreen hesitant', 'attr(city) = ''Hong Kong''', source => 'manual') AS tagged_again;
SELECT customer_id, source FROM customer_tag WHERE tag_id = tag_id('sunscreen hesitant') ORDER BY 1;
SELECT pg_temp.err($$SELECT attach_tag_where('sunscreen hesitant', 'attr(nope) = 1')$$) AS bad_expression,
	   pg_temp.err($$SELECT attach_tag_where('no such tag', 'all')$$) AS bad_tag;

-- errors: wrong names, types and values are found before anything is read,
-- each with its position (also inside saved segments)
SELECT e AS expression, audience_problem(e) AS problem FROM (VALUES
	($$attr(shoe_size) = 42$$), ($$age >= 18 AND attr( favourite ) = 'x'$$),
	($$attr(birth_date) = 'abc'$$), ($$attr(birth_date) < '2001-02-29'$$), ($$attr(birth_date) < 2001$$),
	($$attr(vip_level) = '3'$$), ($$attr(city) = 3$$), ($$attr(newsletter) = 'yes'$$),
	($$attr(newsletter) > false$$), ($$attr(gender) = 'Female'$$), ($$attr(gender) IN ('female', 'f')$$),
	($$attr(city) BETWEEN 'a' or 'z'$$), ($$attr(city) IS maybe$$),
	($$attr(city) LIKE 'T%'$$), ($$attr(city) IN 'Taipei'$$), ($$attr(city) = 'Taipei$$), ($$attr(2city) = 'x'$$),
	($$age >= 18.5$$), ($$age between 18 and 300$$), ($$age IN (18)$$), ($$attr(vip_level) = 007$$),
	($$event(search, category 'skincare')$$), ($$event(search, category = skincare)$$),
	($$event(search, category = 'a', category = 'b')$$), ($$event(search, = 'a')$$),
	($$event(search, category = 'a'$$), ($$@"young women" AND attr(gender) = 'woman'$$)
) v(e);
SELECT define_segment('broken', 'attr(gender) = ''female''');
UPDATE saved_segment SET expression = 'attr(gender) = ''woman''' WHERE name = 'broken';
SELECT audience_problem('@broken') AS in_saved_segment;
SELECT e AS expression, pg_temp.err(format('SELECT audience_size(%L)', e)) AS error FROM (VALUES
	($$attr(shoe_size) = 42$$), ($$attr(birth_date) = 'abc'$$), ($$attr(city) = 3$$), ($$attr(gender) = 'f'$$),
	($$attr(newsletter) < true$$), ($$event(search, category = )$$)
) v(e);
SELECT audience_size('attr(gender) = ''female'' AND attr(birth_date) < ''2000-13-01''');
SELECT pg_temp.err($$SELECT create_tag_rule('bad', add_tags => '{young women}', condition => 'attr(age) >= 3')$$) AS bad_rule;

-- privileges: readers evaluate attributes but cannot set them; operators set
-- values and tag in batches; only admins define attributes
SET ROLE wam_reader;
SELECT pg_temp.who('attr(gender) = ''female'' AND age between 25 and 34') AS reader_sees;
SELECT count(*) AS reader_reads FROM customer_attributes;
SELECT pg_temp.err($$SELECT set_attribute(1, 'city', 'Tainan')$$) AS reader_set,
	   pg_temp.err($$SELECT attach_tag_where('young women', 'all')$$) AS reader_tag;
SELECT pg_temp.err($$INSERT INTO customer_attribute (attribute_id, customer_id, value_text) VALUES (3, 1, 'x')$$) AS reader_insert;
RESET ROLE;
SET ROLE wam_operator;
SELECT set_attribute(12, 'city', 'Tainan') AS operator_set, attach_tag_where('young women', 'attr(city) = ''Tainan''') AS operator_tagged;
SELECT pg_temp.err($$SELECT define_attribute('shoe_size', 'number')$$) AS operator_define,
	   pg_temp.err($$UPDATE customer_attribute SET value_text = 'x'$$) AS operator_update;
RESET ROLE;
SET ROLE wam_admin;
SELECT define_attribute('shoe_size', 'number') > 0 AS admin_define, drop_attribute('shoe_size') AS admin_dropped;
RESET ROLE;

-- deleting a customer deletes its values; dropping an attribute its values
DELETE FROM customer WHERE id = 12;
SELECT count(*) AS values_of_12 FROM customer_attribute WHERE customer_id = 12;
SELECT drop_attribute('signup_day') AS dropped_values;
SELECT audience_problem('attr(signup_day) IS SET') AS dropped_attribute;
SELECT define_attribute('vip_level', 'text') AS type_with_values;

-- wam.event_detail, the index of detail filters, follows the events: one row per
-- scalar value (objects and arrays are not searched), rows of deleted and changed
-- events go, a change is recorded again; a second filter is checked on the event
SELECT kind, key, value, count(*) FROM event_detail WHERE customer_id = 8 GROUP BY 1, 2, 3 ORDER BY 1, 2, 3::text;
INSERT INTO event (customer_id, kind, details) VALUES
	(11, 'link_click', '{"product": "sunscreen", "tags": ["a", "b"], "ref": {"id": 1}}');
SELECT key, value FROM event_detail WHERE customer_id = 11 ORDER BY 1;
SELECT audience_size('event(link_click, tags = ''a'')') AS array_value, audience_size('event(link_click, product = ''sunscreen'') within 1d') AS clicked_today;
UPDATE event SET details = '{"product": "lipstick"}' WHERE customer_id = 11 AND kind = 'link_click';
SELECT key, value FROM event_detail WHERE customer_id = 11 ORDER BY 1;
SELECT pg_temp.who('event(link_click, product = ''lipstick'') within 1d') AS lipstick_today;
SELECT pg_temp.who('event(link_click, product = ''sunscreen'', qty = 2)') AS two_filters;
DELETE FROM customer WHERE id = 8;
SELECT count(*) AS rows_of_8 FROM event_detail WHERE customer_id = 8;
SELECT (SELECT count(*) FROM event_detail) =
	   (SELECT count(*) FROM event e, jsonb_each(e.details) d
		WHERE jsonb_typeof(e.details) = 'object' AND jsonb_typeof(d.value) IN ('string', 'number', 'boolean')) AS index_complete;
-- readers search it; nobody but the triggers writes it
SET ROLE wam_reader;
SELECT count(*) > 0 AS reader_reads FROM event_detail;
RESET ROLE;
SET ROLE wam_operator;
SELECT pg_temp.err($$INSERT INTO event_detail VALUES (1, 1, 'x', 'k', '1', now())$$) AS operator_insert,
	   pg_temp.err($$DELETE FROM event_detail$$) AS operator_delete;
RESET ROLE;
