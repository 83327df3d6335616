-- segment expressions (R-S1 ... R-S4): the language, the functions, saved
-- segments, errors and privileges
-- start from an empty data model, whatever ran before in this database
SET client_min_messages = warning;
DROP EXTENSION pg_wamarketing CASCADE;
CREATE EXTENSION pg_wamarketing;
RESET client_min_messages;
SET search_path = public, wam;

-- R-S1 base: 10,000 customers, tags drawn deterministically (as test/demo.sql):
-- interest-beauty 25 %, stage-purchased 40 % (48 % of beauty fans), and
-- product-lipstick among purchasers, mostly beauty fans
CREATE FUNCTION pg_temp.u(id bigint, k int) RETURNS float8 LANGUAGE sql IMMUTABLE
	RETURN (hashint8(id * 7919 + k)::bigint + 2147483648) / 4294967296.0::float8;
INSERT INTO customer (id, phone) SELECT g, (85290000000 + g)::text FROM generate_series(1, 10000) g;
SELECT create_tag(n, d) > 0 AS created FROM (VALUES
	('interest-beauty', 'interest'), ('stage-purchased', 'purchase stage'),
	('product-lipstick', 'interest'), ('cart-abandoned', 'purchase stage'),
	('관심-뷰티', 'interest'), ('已購買', 'purchase stage'), ('Read', 'engagement'),
	('say "hi"', 'engagement'), ('order completed', 'purchase stage'), ('VIP 💎', 'spending power'))
	v(n, d);
CREATE TEMP TABLE flags AS
SELECT id, beauty, purchased,
	   purchased AND pg_temp.u(id, 3) < CASE WHEN beauty THEN 2.0 / 3 ELSE 0.005 END AS lipstick,
	   pg_temp.u(id, 4) < 0.06 AS cart,
	   pg_temp.u(id, 5) < 0.10 AS vip
FROM (SELECT id, beauty, pg_temp.u(id, 2) < CASE WHEN beauty THEN 0.48 ELSE 0.28 / 0.75 END AS purchased
	  FROM (SELECT id, pg_temp.u(id, 1) < 0.25 AS beauty FROM customer) b) p;
SELECT attach_tag('interest-beauty', (SELECT segment_agg(id) FROM flags WHERE beauty)),
	   attach_tag('stage-purchased', (SELECT segment_agg(id) FROM flags WHERE purchased)),
	   attach_tag('product-lipstick', (SELECT segment_agg(id) FROM flags WHERE lipstick)),
	   attach_tag('cart-abandoned', (SELECT segment_agg(id) FROM flags WHERE cart)),
	   attach_tag('VIP 💎', (SELECT segment_agg(id) FROM flags WHERE vip)),
	   attach_tag('관심-뷰티', segment_range(1, 101)), attach_tag('已購買', segment_range(51, 151)),
	   attach_tag('read', segment_range(1, 11)), attach_tag('say "hi"', '{1,2,3}'),
	   attach_tag('order completed', segment_range(1, 5001));

-- R-S1: beauty fans who bought, except those who bought lipstick (the funnel
-- of R-S2), and the same in plain SQL over the memberships
SELECT audience_size('interest-beauty AND stage-purchased EXCLUDE product-lipstick') AS targets;
SELECT * FROM audience_funnel('interest-beauty AND stage-purchased EXCLUDE product-lipstick');
SELECT count(*) AS plain_sql FROM customer c
WHERE EXISTS (SELECT FROM customer_tag ct WHERE ct.customer_id = c.id AND ct.tag_id = tag_id('interest-beauty'))
  AND EXISTS (SELECT FROM customer_tag ct WHERE ct.customer_id = c.id AND ct.tag_id = tag_id('stage-purchased'))
  AND NOT EXISTS (SELECT FROM customer_tag ct WHERE ct.customer_id = c.id AND ct.tag_id = tag_id('product-lipstick'));
SELECT audience('interest-beauty AND stage-purchased EXCLUDE product-lipstick')
	= (SELECT segment_agg(f.id) FROM flags f WHERE beauty AND purchased AND NOT lipstick) AS same_customers;

-- every spelling of the operators means the same: AND & / OR | / EXCLUDE - /
-- NOT !; keywords in any case
SELECT e AS expression, audience_size(e) FROM (VALUES
	('interest-beauty AND stage-purchased'), ('interest-beauty & stage-purchased'),
	('interest-beauty and stage-purchased'), ('interest-beauty&stage-purchased'),
	('interest-beauty OR stage-purchased'), ('interest-beauty | stage-purchased'),
	('interest-beauty|stage-purchased'), ('interest-beauty oR stage-purchased'),
	('interest-beauty EXCLUDE stage-purchased'), ('interest-beauty - stage-purchased'),
	('interest-beauty -stage-purchased'), ('interest-beauty AND NOT stage-purchased'),
	('interest-beauty & !stage-purchased'), ('NOT interest-beauty'), ('!interest-beauty'),
	('not not interest-beauty'), ('!!interest-beauty'), ('all'), ('NOT all'), ('ALL - interest-beauty')
) v(e);

-- precedence: NOT binds tightest, then AND and EXCLUDE, then OR; equal
-- precedence groups from the left
SELECT audience_size('interest-beauty OR vip💎 AND cart-abandoned') = audience_size('interest-beauty OR (vip💎 AND cart-abandoned)') AS and_before_or,
	   audience_size('interest-beauty OR vip💎 AND cart-abandoned') <> audience_size('(interest-beauty OR vip💎) AND cart-abandoned') AS differs,
	   audience_size('NOT interest-beauty AND vip💎') = audience_size('(NOT interest-beauty) AND vip💎') AS not_first,
	   audience_size('stage-purchased - interest-beauty - vip💎') = audience_size('(stage-purchased - interest-beauty) - vip💎') AS left_to_right,
	   audience_size('stage-purchased - interest-beauty AND vip💎') = audience_size('(stage-purchased - interest-beauty) AND vip💎') AS exclude_is_and,
	   audience_size('interest-beauty OR vip💎 EXCLUDE cart-abandoned') = audience_size('interest-beauty OR (vip💎 EXCLUDE cart-abandoned)') AS exclude_before_or;
SELECT step, depth, expression, customers
FROM audience_funnel('NOT (interest-beauty OR vip💎) AND stage-purchased | cart-abandoned - product-lipstick');

-- names: bare names hold letters (any script), digits, _ - : . and match tags
-- like wam.tag_id() does (case, spaces and punctuation ignored); anything
-- else, and keywords, in double quotes with "" for a quote
SELECT audience_size('"Interest Beauty"') AS quoted, audience_size('INTEREST_BEAUTY') AS upper,
	   audience_size('interest.beauty') AS dotted, audience_size('interest:beauty') AS colon,
	   audience_size('관심-뷰티') AS korean, audience_size('已購買') AS chinese,
	   audience_size('관심-뷰티 AND 已購買') AS both, audience_size('관심-뷰티　AND　已購買') AS ideographic_spaces,
	   audience_size('vip💎') AS emoji, audience_size('"read"') AS keyword_tag,
	   audience_size('"say ""hi"""') AS escaped, audience_size('"order completed"') AS spaced,
	   audience_size('order-completed') AS hyphenated;
-- a hyphen inside a name is part of it; as EXCLUDE it starts a token
SELECT audience_size('cart-abandoned') AS one_tag,
	   audience_size('order-completed - cart-abandoned') = audience_size('"order completed" EXCLUDE "cart abandoned"') AS spaced_minus,
	   audience_size('order-completed -cart-abandoned') = audience_size('"order completed" EXCLUDE "cart abandoned"') AS leading_minus,
	   audience_size('("order completed")-cart-abandoned') = audience_size('"order completed" EXCLUDE "cart abandoned"') AS after_paren;
-- CJK input methods type fullwidth punctuation: ！＆｜（）－＠ are the operators
SELECT audience_size('！interest-beauty') = audience_size('!interest-beauty') AS fullwidth_not,
	   audience_size('（관심-뷰티｜已購買）＆vip💎') = audience_size('(관심-뷰티|已購買)&vip💎') AS fullwidth_ops,
	   audience_size('관심－뷰티') = audience_size('관심-뷰티') AS fullwidth_hyphen_in_name,
	   audience_size('order-completed － cart-abandoned') = audience_size('order-completed - cart-abandoned') AS fullwidth_minus;

-- behaviour predicates over wam.event and the customer timestamps (R-S3, R-S4)
INSERT INTO event (customer_id, kind, occurred_at)
SELECT c, 'link_click', now() - interval '1 hour' * (6 + 24 * (k % 10))
FROM generate_series(1, 300) c, generate_series(1, 1 + c % 5) k;
INSERT INTO event (customer_id, kind, occurred_at)
SELECT c, 'order', now() - interval '1 day' * (c % 9) - interval '6 hours' FROM generate_series(1, 300, 4) c;
INSERT INTO event (customer_id, kind, occurred_at)
SELECT c, 'price_inquiry', now() - interval '40 days' FROM generate_series(1, 50) c;
INSERT INTO event (customer_id, kind, occurred_at)
SELECT 9000, 'link_click', now() - interval '1 hour' * (6 + 5 * k) FROM generate_series(1, 18) k;
UPDATE customer SET consent_at = now() - interval '100 days', consent_source = 'form' WHERE id <= 6000;
UPDATE customer SET opted_out_at = now() - interval '1 day' WHERE id % 10 = 0;
UPDATE customer SET last_inbound_at = now() - interval '1 day' * (id % 60) - interval '6 hours' WHERE id % 3 = 0;
UPDATE customer SET last_read_at = now() - interval '1 day' * (id % 30) - interval '6 hours' WHERE id % 5 = 0;
UPDATE customer SET first_order_at = now() - interval '1 day' * (id % 90) - interval '6 hours',
	last_order_at = now() - interval '1 day' * (id % 15) - interval '6 hours' WHERE id % 7 = 0;
SELECT e AS expression, audience_size(e) FROM (VALUES
	('event(link_click) >= 3 within 7d'), ('event(link_click) > 2 within 7 days'),
	('event(link_click) >= 3 within 168h'), ('event(link_click) >= 3 within 1w'),
	('event(link_click) = 2 within 7d'), ('event(link_click) < 3 within 7d'),
	('event(link_click) <= 2 within 7d'), ('event(link_click) != 2 within 7d'),
	('event(link_click) <> 0'), ('event(link_click) = 0'), ('event(link_click) >= 0'),
	('event(link_click) < 0'), ('event(LINK_CLICK)'), ('event("link_click") within 30d'),
	('no event(order) within 30d'), ('no event(link_click) >= 3 within 7d'),
	('orders >= 1'), ('orders >= 2'), ('orders within 3d'), ('event(price_inquiry) within 7d'),
	('event(no_such_kind)'), ('inbound within 30d'), ('read within 14d'), ('no read within 14d'),
	('first_order within 60d'), ('last_order within 2w'), ('interacted within 30d'), ('inbound'),
	('reachable'), ('NOT reachable'), ('read'), ('read AND "read"')
) v(e);
-- R-S4: clicked a product link 3+ times in 7 days without ordering, and
-- R-S3: interacted in the last 30 days and not "order completed"; each
-- compared with the same query in plain SQL
SELECT audience_size('event(link_click) >= 3 within 7d EXCLUDE event(order) within 7d') AS hesitant,
	(SELECT count(*) FROM (
		SELECT customer_id FROM event WHERE kind = 'link_click' AND occurred_at >= now() - interval '7 days'
		GROUP BY 1 HAVING count(*) >= 3
		EXCEPT SELECT customer_id FROM event WHERE kind = 'order' AND occurred_at >= now() - interval '7 days') x) AS plain_sql;
SELECT audience_size('interacted within 30d AND NOT "order completed"') AS follow_up,
	(SELECT count(*) FROM customer c
	 WHERE greatest(c.last_inbound_at, c.last_read_at, c.last_order_at) >= now() - interval '30 days'
	   AND NOT EXISTS (SELECT FROM customer_tag ct WHERE ct.customer_id = c.id
						AND ct.tag_id = tag_id('order completed'))) AS plain_sql;
SELECT * FROM audience_funnel('reachable AND (event(link_click) >= 3 within 7d OR read within 14d) - orders within 30d');

-- "event(kind) >= n" counts with wam.segment_repeat_agg: one bitmap per count
-- level; compared with GROUP BY, serially and in parallel (partial states
-- serialized, deserialized and combined)
CREATE TABLE public.repeat_probe AS
SELECT (hashint8(g) & 4095) + (g % 3) * 100000 AS id FROM generate_series(1, 60000) g;
ANALYZE public.repeat_probe;
CREATE FUNCTION pg_temp.repeat_ok(t int, ex boolean) RETURNS boolean LANGUAGE sql AS $$
	SELECT (SELECT segment_repeat_agg(id, t, ex) FROM public.repeat_probe)
		 = (SELECT segment_agg(id) FROM (SELECT id FROM public.repeat_probe GROUP BY id
			HAVING CASE WHEN ex THEN count(*) = t ELSE count(*) >= t END) x) $$;
SELECT bool_and(pg_temp.repeat_ok(t, ex)) AS serial_same
FROM generate_series(1, 15) t, (VALUES (false), (true)) v(ex);
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
EXPLAIN (COSTS OFF) SELECT segment_repeat_agg(id, 3, false) FROM public.repeat_probe;
SELECT (SELECT segment_repeat_agg(id, 3, false) FROM public.repeat_probe)
	 = (SELECT segment_agg(id) FROM (SELECT id FROM public.repeat_probe GROUP BY id HAVING count(*) >= 3) x) AS parallel_ge_3,
	   (SELECT segment_repeat_agg(id, 16, false) FROM public.repeat_probe)
	 = (SELECT segment_agg(id) FROM (SELECT id FROM public.repeat_probe GROUP BY id HAVING count(*) >= 16) x) AS parallel_ge_16,
	   (SELECT segment_repeat_agg(id, 5, true) FROM public.repeat_probe)
	 = (SELECT segment_agg(id) FROM (SELECT id FROM public.repeat_probe GROUP BY id HAVING count(*) = 5) x) AS parallel_eq_5;
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
RESET max_parallel_workers_per_gather;
SELECT segment_repeat_agg(id, 0, false) FROM public.repeat_probe;
SELECT segment_repeat_agg(id, 16, true) FROM public.repeat_probe;
SELECT segment_repeat_agg(g, g::int, false) FROM generate_series(1, 2) g;
SELECT segment_repeat_agg(id, 2, false) IS NULL AS no_rows FROM public.repeat_probe WHERE false;
-- its state is bytea (not internal) with a combine function and no serial
-- functions, so Citus can push it down; a flat state is validated when read
SELECT aggtranstype::regtype, aggcombinefn::regproc, aggserialfn, aggdeserialfn
FROM pg_aggregate WHERE aggfnoid = 'segment_repeat_agg'::regproc;
SELECT wam_internal.segment_repeat_final('\x0200000000000000'::bytea);
SELECT wam_internal.segment_repeat_final('\x02000000000000000800000000'::bytea);
SELECT segment_cardinality(wam_internal.segment_repeat_final(
	decode('0100000000000000' || lpad(to_hex(length(segment_range(5, 8)::bytea)), 2, '0') || '000000'
		   || encode(segment_range(5, 8)::bytea, 'hex'), 'hex'))) AS from_flat;
-- ids spread over more blocks of 65,536 than the counters keep at once (512):
-- the counters are folded into the levels on the way, and still agree
CREATE TABLE public.repeat_wide AS
SELECT (g % 700) * 65536 + (g / 700) % 5 AS id FROM generate_series(1, 21000) g
UNION ALL SELECT 4294967295 UNION ALL SELECT 4294967295 UNION ALL SELECT 0;
SELECT t, ex, (SELECT segment_repeat_agg(id, t, ex) FROM public.repeat_wide)
	 = coalesce((SELECT segment_agg(id) FROM (SELECT id FROM public.repeat_wide GROUP BY id
		HAVING CASE WHEN ex THEN count(*) = t ELSE count(*) >= t END) x), '{}') AS same,
	   segment_cardinality((SELECT segment_repeat_agg(id, t, ex) FROM public.repeat_wide)) AS customers
FROM (VALUES (1), (2), (6), (7)) a(t), (VALUES (false), (true)) v(ex) ORDER BY 1, 2;
DROP TABLE public.repeat_wide;
DROP TABLE public.repeat_probe;
-- counts above 16 take the GROUP BY path
SELECT audience_size('event(link_click) >= 17') AS ge_17, audience_size('event(link_click) = 16') AS eq_16,
	   audience_size('event(link_click) >= 4 within 7d') AS ge_4;

-- saved segments: named expressions, used as @name, evaluated afresh
SELECT define_segment('beauty buyers', 'interest-beauty AND stage-purchased');
SELECT define_segment('R-S1 targets', '@"beauty buyers" EXCLUDE product-lipstick', 'the worked example');
SELECT define_segment('hesitant', 'event(link_click) >= 3 within 7d - orders within 7d');
SELECT audience_size('@R-S1-targets') AS targets, audience_size('@r-s1_targets AND reachable') AS reachable_targets,
	   audience_size('@hesitant | @beauty-buyers') AS either;
SELECT * FROM audience_funnel('@R-S1-targets OR @hesitant');
SELECT name, expression, refs, description, created_by = session_user AS mine FROM saved_segment ORDER BY name;
-- redefining changes every segment that uses it
SELECT define_segment('Beauty Buyers', 'interest-beauty');
SELECT audience_size('@R-S1-targets') AS targets_now;
-- no cycles, no unknown names, no invalid expressions
SELECT define_segment('beauty buyers', '@r-s1 targets AND stage-purchased');
SELECT define_segment('loop', '@loop');
SELECT define_segment('beauty buyers', '@"beauty buyers"');
SELECT define_segment('beauty buyers', 'interest-beauty OR @"R-S1 targets"');
SELECT define_segment('broken', 'interest-beauty AND');
SELECT define_segment('unknown', 'no such tag');
SELECT define_segment('!!!', 'all');
SELECT define_segment(NULL, 'all');
-- chains of saved segments: 32 deep at most
DO $$
BEGIN
	PERFORM define_segment('chain 1', 'vip💎');
	FOR i IN 2 .. 32 LOOP
		PERFORM define_segment('chain ' || i, '@"chain ' || (i - 1) || '" OR cart-abandoned');
	END LOOP;
END $$;
SELECT audience_size('@"chain 32"') = audience_size('vip💎 OR cart-abandoned') AS chain_32_works;
SELECT define_segment('chain 33', '@"chain 32"');
SELECT define_segment('chain 1', '@hesitant');
-- dropping: refused while used, unless cascade
SELECT drop_segment('beauty buyers');
SELECT drop_segment('chain 30', cascade => true);
SELECT drop_segment('R-S1 targets'), drop_segment('beauty buyers');
SELECT drop_segment('beauty buyers');
SELECT count(*) AS saved_left FROM saved_segment;

-- tags that changed: retired tags keep their members, merged tags stand for
-- the tag they went into, and renamed tags still answer to the old name
SELECT create_tag('sample-old', 'interest'), create_tag('sample-into', 'interest'), create_tag('sample-renamed', 'interest');
SELECT attach_tag('sample-old', '{1,2,3}'), attach_tag('sample-into', '{3,4}'), attach_tag('sample-renamed', '{7}');
SELECT merge_tags('sample-old', 'sample-into', 'duplicate');
SELECT rename_tag('sample-renamed', 'sample-new-name');
SELECT retire_tag('vip💎', 'test');
SELECT audience('sample-old') AS merged, audience('sample-renamed') AS renamed,
	   audience('"sample new name"') AS new_name, audience_size('vip💎') AS retired;

-- errors name the problem and its position, like PostgreSQL's own
SELECT audience_size('interest-beauty AND AND stage-purchased');
SELECT audience_size('interest-beauty stage-purchased');
SELECT audience_size('interest beauty');
SELECT audience_size('(interest-beauty OR vip💎');
SELECT audience_size('interest-beauty)');
SELECT audience_size('관심-뷰티 AND 已購買 OR');
SELECT audience_size('no-such-tag OR interest-beauty');
SELECT audience_size('interest-beauty AND @nobody');
SELECT audience_size('event(Bad-Kind) within 7d');
SELECT audience_size('event link_click');
SELECT audience_size('event(order) >= many');
SELECT audience_size('orders within 7 fortnights');
SELECT audience_size('orders within 0d');
SELECT audience_size('no interest-beauty');
SELECT audience_size('''interest-beauty''');
SELECT audience_size('"interest-beauty');
SELECT audience_size('@');
SELECT audience_size('');
-- every error as audience_problem() reports it to a user interface
SELECT e AS expression, audience_problem(e) FROM (VALUES
	('interest-beauty AND stage-purchased'), ('@nobody'), ('no-such-tag'), ('a AND'), ('a OR OR b'),
	(')'), ('(a'), ('a b'), ('event(x) >= 1000000001'), ('"unterminated'), ('""'), ('within 7d'),
	('event(order) within 40000d'), ('  ')
) v(e);
SELECT audience_problem(NULL) IS NULL AS null_is_null, audience(NULL) IS NULL AS eval_null;

-- limits: 64 KB of text, 10,000 operands and operators, 200 nested levels;
-- huge and deep input fails fast and cleanly (no recursion in the parser)
\set VERBOSITY terse
SELECT audience_size(repeat('interest-beauty OR ', 6000) || 'vip💎');
SELECT audience_size(repeat('(', 10000) || 'vip💎' || repeat(')', 10000));
SELECT audience_size(repeat('NOT ', 10000) || 'vip💎');
SELECT audience_size(repeat('vip💎|', 5000) || 'vip💎');
SELECT audience_size(repeat('(', 200) || 'vip💎' || repeat(')', 200)) AS depth_200;
SELECT audience_size(repeat('cart-abandoned OR ', 3000) || 'vip💎') AS operands_3001;
\set VERBOSITY default

-- nothing typed reaches SQL: quotes, semicolons and comments are names
SELECT audience_problem(e) FROM (VALUES
	('"x''); DROP TABLE wam.customer; --"'), ('@"x''); DELETE FROM wam.tag; --"'),
	('event("order''; --") within 7d')) v(e);
SELECT count(*) AS customers_still_there FROM customer;

-- roles: readers evaluate, operators also define and drop
SET ROLE wam_reader;
SELECT audience_size('interest-beauty AND stage-purchased') AS reader_count,
	   segment_cardinality(audience('@hesitant')) AS reader_eval,
	   (SELECT count(*) FROM audience_funnel('@hesitant')) AS reader_explain,
	   audience_problem('x') AS reader_check;
SELECT define_segment('reader segment', 'all');
SELECT drop_segment('hesitant');
INSERT INTO saved_segment (normalized_name, name, expression) VALUES ('x', 'x', 'all');
SELECT wam_internal.segment_references('all');
RESET ROLE;
SET ROLE wam_operator;
SELECT define_segment('operator segment', 'reachable - @hesitant') AS operator_defines;
SELECT drop_segment('operator segment') AS operator_drops;
UPDATE saved_segment SET expression = 'all';
RESET ROLE;
CREATE ROLE wam_expr_nobody;
SET ROLE wam_expr_nobody;
SELECT audience_size('all');
RESET ROLE;
DROP ROLE wam_expr_nobody;

-- labels: the evaluators read tables (STABLE) and are parallel safe
SELECT p.proname, p.provolatile, p.proisstrict, p.proparallel, p.prosecdef
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname IN ('wam', 'wam_internal') AND p.proname IN ('audience', 'audience_size', 'audience_funnel',
	'audience_problem', 'segment_references', 'define_segment', 'drop_segment')
ORDER BY 1;
