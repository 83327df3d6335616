-- segment expressions against the same query in plain SQL, on random data:
-- random expressions over every operator, spelling, predicate and saved
-- segments; for each, audience() must equal the customers the plain SQL
-- condition selects (over wam.customer_tag, wam.event and wam.customer),
-- audience_size() their number, and every step of audience_funnel() the
-- count of its own text.  test/t/segment_expr_random.sh runs more seeds
-- (psql variables first_seed, seeds, per_seed).
\if :{?first_seed}
\else
\set first_seed 1
\endif
\if :{?seeds}
\else
\set seeds 3
\endif
\if :{?per_seed}
\else
\set per_seed 30
\endif
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS pg_wamarketing CASCADE;
CREATE EXTENSION pg_wamarketing;
SET search_path = public, wam;
SET TimeZone = 'UTC';

-- customers in three id ranges (three 65536-id chunks, one straddled) and
-- tags whose names need normalising, a keyword, quoting and other scripts
INSERT INTO customer (id, phone)
SELECT id, (85200000000 + row_number() OVER (ORDER BY id))::text
FROM (SELECT g AS id FROM generate_series(1, 1200) g
	  UNION ALL SELECT 65300 + g FROM generate_series(1, 400) g
	  UNION ALL SELECT 4294967296 - g FROM generate_series(1, 400) g) ids;
CREATE TEMP TABLE rtag (k int PRIMARY KEY, name text, spellings text[]);
INSERT INTO rtag VALUES
	(1, 'Alpha Tag', '{"\"Alpha Tag\"", alpha-tag, ALPHA_TAG, alpha.tag, "\"alpha  tag\"", AlphaTag}'),
	(2, 'beta-tag', '{beta-tag, Beta_Tag, "\"beta tag\"", beta:tag}'),
	(3, 'Read', '{"\"Read\"", "\"read\"", "\"READ\""}'),
	(4, '감마 태그', '{감마-태그, "\"감마 태그\"", 감마_태그}'),
	(5, '商品-口紅', '{商品-口紅, "\"商品 口紅\"", 商品口紅}'),
	(6, 'say "hi"', '{"\"say \"\"hi\"\"\"", say-hi, SayHi}');
SELECT count(*) AS tags FROM rtag, create_tag(name, 'interest');

CREATE TEMP TABLE rsaved (name text, spelling text, cond text);
CREATE TEMP TABLE rresult (seed int, n int, expr text, problem text);

-- one operand: (expression text, plain SQL condition on customer c)
CREATE FUNCTION pg_temp.pick(a text[]) RETURNS text LANGUAGE sql VOLATILE
	RETURN a[1 + floor(random() * cardinality(a))::int];
CREATE FUNCTION pg_temp.ws() RETURNS text LANGUAGE sql VOLATILE
	RETURN pg_temp.pick(ARRAY[' ', ' ', ' ', '  ', E'\t', E'\n', '　']);
CREATE FUNCTION pg_temp.window_of(OUT txt text, OUT sql text) LANGUAGE plpgsql VOLATILE AS $$
DECLARE
	u int := floor(random() * 4)::int;
	n int;
BEGIN
	IF u = 0 THEN
		txt := ''; sql := NULL;
	ELSIF u = 1 THEN
		n := 1 + floor(random() * 400)::int;
		txt := ' within ' || n || pg_temp.pick('{h," hours",H}'); sql := n || ' hours';
	ELSIF u = 2 THEN
		n := 1 + floor(random() * 60)::int;
		txt := ' within ' || n || pg_temp.pick('{d," days",D," day"}'); sql := n || ' days';
	ELSE
		n := 1 + floor(random() * 9)::int;
		txt := ' within ' || n || pg_temp.pick('{w," weeks",W}'); sql := (7 * n) || ' days';
	END IF;
END $$;
CREATE FUNCTION pg_temp.leaf(OUT txt text, OUT cond text) LANGUAGE plpgsql VOLATILE AS $$
DECLARE
	k int := floor(random() * 20)::int;
	t rtag;
	w record;
	kind text;
	cmp text;
	n int;
	col text;
	no boolean := random() < 0.25;
BEGIN
	IF k < 9 THEN
		n := 1 + floor(random() * 6)::int;
		SELECT * INTO t FROM rtag WHERE rtag.k = n;
		txt := pg_temp.pick(t.spellings);
		cond := format('EXISTS (SELECT FROM wam.customer_tag ct WHERE ct.customer_id = c.id AND ct.tag_id = %s)',
					   wam.tag_id(t.name));
	ELSIF k = 9 THEN
		txt := pg_temp.pick('{all,ALL,All}'); cond := 'true';
	ELSIF k = 10 THEN
		txt := pg_temp.pick('{reachable,REACHABLE}');
		cond := '(c.consent_at IS NOT NULL AND c.opted_out_at IS NULL)';
	ELSIF k < 15 THEN
		w := pg_temp.window_of();
		kind := pg_temp.pick('{link_click,order,reply}');
		IF random() < 0.3 THEN
			cmp := NULL;
		ELSE
			cmp := pg_temp.pick('{>=,>,<=,<,=,!=,<>,＞＝}');
			n := floor(random() * 5)::int;
		END IF;
		txt := CASE WHEN no THEN 'no ' ELSE '' END
			|| CASE WHEN kind = 'order' AND random() < 0.5 THEN pg_temp.pick('{orders,ORDERS}')
					ELSE 'event(' || CASE WHEN random() < 0.2 THEN upper(kind) ELSE kind END || ')' END
			|| CASE WHEN cmp IS NULL THEN '' ELSE ' ' || cmp || ' ' || n END || w.txt;
		cond := format('(SELECT count(*) FROM wam.event e WHERE e.customer_id = c.id AND e.kind = %L%s) %s %s',
					   kind, CASE WHEN w.sql IS NULL THEN ''
								  ELSE format(' AND e.occurred_at >= now() - interval %L', w.sql) END,
					   CASE coalesce(cmp, '>=') WHEN '<>' THEN '!=' WHEN '＞＝' THEN '>=' ELSE coalesce(cmp, '>=') END,
					   coalesce(n, 1));
		IF no THEN
			cond := 'NOT (' || cond || ')';
		END IF;
	ELSIF k < 18 THEN
		w := pg_temp.window_of();
		col := pg_temp.pick('{inbound,read,first_order,last_order,interacted}');
		txt := CASE WHEN no THEN 'no ' ELSE '' END || col || w.txt;
		col := CASE col WHEN 'inbound' THEN 'last_inbound' WHEN 'read' THEN 'last_read' ELSE col END;
		cond := CASE col
			WHEN 'interacted' THEN
				CASE WHEN w.sql IS NULL THEN '(c.last_inbound_at IS NOT NULL OR c.last_read_at IS NOT NULL OR c.last_order_at IS NOT NULL)'
					 ELSE format('coalesce(c.last_inbound_at >= now() - interval %1$L OR c.last_read_at >= now() - interval %1$L OR c.last_order_at >= now() - interval %1$L, false)', w.sql) END
			ELSE
				CASE WHEN w.sql IS NULL THEN format('c.%I IS NOT NULL', col || '_at')
					 ELSE format('coalesce(c.%I >= now() - interval %L, false)', col || '_at', w.sql) END
			END;
		IF no THEN
			cond := 'NOT (' || cond || ')';
		END IF;
	ELSE
		SELECT s.spelling, s.cond INTO txt, cond FROM rsaved s ORDER BY random() LIMIT 1;
		IF NOT FOUND THEN
			txt := 'all'; cond := 'true';
		END IF;
	END IF;
END $$;

-- a random expression of at most depth levels: (text, condition, precedence
-- 4 operand, 3 NOT, 2 AND/EXCLUDE, 1 OR); parentheses where precedence and
-- left-to-right grouping need them, and sometimes where they do not
CREATE FUNCTION pg_temp.gen(depth int, OUT txt text, OUT cond text, OUT prec int) LANGUAGE plpgsql VOLATILE AS $$
DECLARE
	k float8 := random();
	l record;
	r record;
	op text;
BEGIN
	IF depth <= 0 OR k < 0.25 THEN
		SELECT * INTO l FROM pg_temp.leaf();
		txt := l.txt; cond := l.cond; prec := 4;
	ELSIF k < 0.37 THEN
		l := pg_temp.gen(depth - 1);
		txt := pg_temp.pick('{"NOT ","not ",!,！,"! "}')
			|| CASE WHEN l.prec < 3 OR random() < 0.1 THEN '(' || l.txt || ')' ELSE l.txt END;
		cond := '(NOT ' || l.cond || ')'; prec := 3;
	ELSE
		l := pg_temp.gen(depth - 1);
		r := pg_temp.gen(depth - 1);
		op := pg_temp.pick('{AND,OR,EXCLUDE}');
		prec := CASE op WHEN 'OR' THEN 1 ELSE 2 END;
		txt := CASE WHEN l.prec < prec OR random() < 0.1 THEN '(' || l.txt || ')' ELSE l.txt END
			|| CASE op
				   WHEN 'AND' THEN pg_temp.pick(ARRAY[pg_temp.ws() || 'AND' || pg_temp.ws(), ' and ', '&', ' & ', '＆'])
				   WHEN 'OR' THEN pg_temp.pick(ARRAY[pg_temp.ws() || 'OR' || pg_temp.ws(), ' or ', '|', ' | ', '｜'])
				   ELSE pg_temp.pick(ARRAY[pg_temp.ws() || 'EXCLUDE' || pg_temp.ws(), ' exclude ', ' - ', ' -', ' － '])
			   END
			|| CASE WHEN r.prec <= prec OR random() < 0.1 THEN '(' || r.txt || ')' ELSE r.txt END;
		cond := '(' || l.cond || CASE op WHEN 'AND' THEN ' AND ' WHEN 'OR' THEN ' OR ' ELSE ' AND NOT ' END
			|| r.cond || ')';
	END IF;
END $$;

-- one seed: fresh random data, three saved segments (one using another),
-- then n expressions checked
CREATE FUNCTION pg_temp.run(seed int, n int) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
	g record;
	i int;
	truth wam.segment;
	got wam.segment;
	cnt bigint;
	bad text;
	st record;
BEGIN
	PERFORM setseed(seed / 1000.0);
	DELETE FROM wam.saved_segment;
	DELETE FROM rsaved;
	DELETE FROM wam.event;
	DELETE FROM wam.customer_tag;
	-- tags of random density, events of the last 60 days, customer timestamps
	FOR i IN 1 .. 6 LOOP
		PERFORM wam.attach_tag(t.name, (SELECT coalesce(wam.segment_agg(c.id), '{}') FROM wam.customer c
									WHERE random() < d.p))
		FROM rtag t, (SELECT random() * 0.6 AS p) d WHERE t.k = i;
	END LOOP;
	INSERT INTO wam.event (customer_id, kind, occurred_at)
	SELECT c.id, pg_temp.pick('{link_click,link_click,order,reply}'),
		   now() - interval '1 minute' * (30 + floor(random() * 60 * 24 * 60))
	FROM wam.customer c, generate_series(1, 4) k WHERE random() < 0.4;
	UPDATE wam.customer c SET
		consent_at = CASE WHEN random() < 0.7 THEN now() - interval '100 days' END,
		consent_source = 'random',
		opted_out_at = CASE WHEN random() < 0.15 THEN now() - interval '3 days' END,
		last_inbound_at = CASE WHEN random() < 0.5 THEN now() - interval '1 minute' * (30 + floor(random() * 60 * 24 * 90)) END,
		last_read_at = CASE WHEN random() < 0.5 THEN now() - interval '1 minute' * (30 + floor(random() * 60 * 24 * 90)) END,
		first_order_at = CASE WHEN random() < 0.3 THEN now() - interval '1 minute' * (30 + floor(random() * 60 * 24 * 120)) END,
		last_order_at = CASE WHEN random() < 0.3 THEN now() - interval '1 minute' * (30 + floor(random() * 60 * 24 * 30)) END;
	FOR i IN 1 .. 3 LOOP
		g := pg_temp.gen(2);
		PERFORM wam.define_segment('Saved ' || i, g.txt);
		INSERT INTO rsaved VALUES ('Saved ' || i, pg_temp.pick(ARRAY['@"Saved ' || i || '"', '@saved-' || i, '@SAVED_' || i]), g.cond);
	END LOOP;

	FOR i IN 1 .. n LOOP
		g := pg_temp.gen(1 + floor(random() * 4)::int);
		bad := NULL;
		BEGIN
			EXECUTE format('SELECT coalesce(wam.segment_agg(c.id), ''{}'') FROM wam.customer c WHERE %s', g.cond)
				INTO truth;
			got := wam.audience(g.txt);
			cnt := wam.audience_size(g.txt);
			IF got IS DISTINCT FROM truth THEN
				bad := format('segment_eval has %s customers, plain SQL %s (%s missing, %s extra)',
							  wam.segment_cardinality(got), wam.segment_cardinality(truth),
							  wam.segment_andnot_cardinality(truth, got), wam.segment_andnot_cardinality(got, truth));
			ELSIF cnt <> wam.segment_cardinality(truth) THEN
				bad := format('segment_count says %s, plain SQL %s', cnt, wam.segment_cardinality(truth));
			ELSIF wam.audience_problem(g.txt) IS NOT NULL THEN
				bad := 'segment_check: ' || wam.audience_problem(g.txt);
			ELSE
				FOR st IN SELECT * FROM wam.audience_funnel(g.txt) LOOP
					IF wam.audience_size(st.expression) <> st.customers THEN
						bad := format('explain step %s (%s) says %s, its own count %s', st.step,
									  st.expression, st.customers, wam.audience_size(st.expression));
						EXIT;
					END IF;
					IF st.depth = 0 AND st.customers <> cnt THEN
						bad := format('explain says %s, segment_count %s', st.customers, cnt);
					END IF;
				END LOOP;
			END IF;
		EXCEPTION WHEN OTHERS THEN
			bad := 'error: ' || SQLERRM;
		END;
		INSERT INTO rresult VALUES (seed, i, g.txt, bad);
	END LOOP;
END $$;

SELECT pg_temp.run(s, :per_seed) FROM generate_series(:first_seed, :first_seed + :seeds - 1) s;
RESET client_min_messages;
SELECT seed, count(*) AS expressions, count(problem) AS failures FROM rresult GROUP BY seed ORDER BY seed;
SELECT seed, n, expr, problem FROM rresult WHERE problem IS NOT NULL ORDER BY seed, n LIMIT 20;
-- the expressions did use every operand kind and operator spelling
SELECT bool_and(hit) AS all_kinds_used FROM (
	SELECT bool_or(expr ~ pat) AS hit FROM rresult, unnest(ARRAY[
		'"', '@', 'event\(', 'orders', 'no ', 'within', 'reachable', 'interacted', '[!！]',
		'NOT', 'EXCLUDE', ' - ', '&', '\|', '＆', '－', '\(']) pat GROUP BY pat) x;
