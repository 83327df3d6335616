-- 30_lifecycle: orders however inserted and first reads become events; the
-- example rules carry plain names and fire as described; the contact import
-- parses its consent column; referral retention counts real activity only.

-- every order row becomes one "order" event (record_order no longer writes it)
COMMENT ON TABLE wam.customer_order IS 'orders (write with wam.record_order, or in bulk with INSERT or COPY)';
CREATE OR REPLACE FUNCTION wam.record_order(customer bigint, amount numeric, ordered_at timestamptz DEFAULT now(),
								 coupon_used boolean DEFAULT false, details jsonb DEFAULT NULL)
	RETURNS bigint
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	cfg wam.rfm_config;
	cur text;
	n_units integer;
	new_id bigint;
	old_tier text;
	new_tier text;
	bad_product bigint;
	bad_quantity jsonb;
BEGIN
	PERFORM wam_internal.refuse_null(customer IS NULL, 'customer');
	PERFORM wam_internal.refuse_null(amount IS NULL, 'order amount');
	IF amount < 0 OR amount = 'NaN' OR amount = 'Infinity' THEN
		RAISE EXCEPTION 'order amount must be a finite amount of at least 0, not %', amount
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Record refunds by correcting or deleting the order in wam.customer_order.';
	END IF;
	PERFORM wam_internal.refuse_null(ordered_at IS NULL OR coupon_used IS NULL, 'order time and coupon flag');
	IF details IS NOT NULL AND jsonb_typeof(details) <> 'object' THEN
		RAISE EXCEPTION 'order details must be a JSON object, not %', jsonb_typeof(details)
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	SELECT * INTO cfg FROM wam.rfm_config;
	IF NOT isfinite(ordered_at) AND ordered_at < now() THEN
		RAISE EXCEPTION 'order time must be finite, not %', ordered_at USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF ordered_at > now() + cfg.future_tolerance THEN
		RAISE EXCEPTION 'order time % is in the future', ordered_at
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = format('Orders may be at most %s ahead of the database clock (setting future_tolerance).',
								  cfg.future_tolerance);
	END IF;

	cur := upper(btrim(details ->> 'currency'));
	IF cur IS NOT NULL AND cur !~ '^[A-Z]{3}$' THEN
		RAISE EXCEPTION 'invalid currency "%"', details ->> 'currency'
			USING ERRCODE = 'invalid_parameter_value', HINT = 'Use an ISO 4217 code such as HKD.';
	END IF;
	IF cur IS NOT NULL AND cfg.currency IS NULL THEN
		-- the first order naming a currency fixes the program currency
		UPDATE wam.rfm_config SET currency = cur WHERE currency IS NULL;
		SELECT s.currency INTO cfg.currency FROM wam.rfm_config s;
	END IF;
	IF cur IS DISTINCT FROM cfg.currency AND cur IS NOT NULL THEN
		RAISE EXCEPTION 'order currency % differs from the program currency %', cur, cfg.currency
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = 'Scores and lifetime values add amounts up, so all orders of a program are in one currency.',
				  HINT = 'Convert the amount to the program currency before recording the order.';
	END IF;

	-- units: details->units, else the sum of details->products[].quantity
	-- (1 for a product without one), else 1; whole numbers below 10^9 only
	IF details IS NULL OR NOT (details ? 'units' OR details ? 'products') THEN
		n_units := 1;
	ELSIF details ? 'units' THEN
		n_units := CASE WHEN jsonb_typeof(details -> 'units') = 'number' AND (details ->> 'units') ~ '^[0-9]{1,9}$'
						THEN (details ->> 'units')::integer END;
	ELSIF jsonb_typeof(details -> 'products') = 'array' AND jsonb_array_length(details -> 'products') > 0 THEN
		-- every quantity is checked before any is cast, so a bad one is named
		-- instead of failing the cast inside the sum
		SELECT p.n - 1, p.q INTO bad_product, bad_quantity
		FROM jsonb_array_elements(details -> 'products') WITH ORDINALITY p(q, n)
		WHERE p.q -> 'quantity' IS NOT NULL
		  AND NOT (jsonb_typeof(p.q -> 'quantity') = 'number' AND p.q ->> 'quantity' ~ '^[0-9]{1,9}$')
		ORDER BY p.n LIMIT 1;
		IF FOUND THEN
			RAISE EXCEPTION 'invalid quantity % in order details products[%]', bad_quantity -> 'quantity', bad_product
				USING ERRCODE = 'invalid_parameter_value',
					  HINT = 'A quantity is a JSON number, a whole number from 0 to 999999999, e.g. {"products": [{"sku": "A1", "quantity": 2}]}.';
		END IF;
		SELECT least(sum(coalesce((p -> 'quantity' #>> '{}')::bigint, 1)), 2147483647)::integer
		INTO n_units
		FROM jsonb_array_elements(details -> 'products') p;
	END IF;
	IF n_units IS NULL OR n_units < 1 THEN
		RAISE EXCEPTION 'order units must be a positive whole number'
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = format('details->units is %s, details->products is %s.',
								  coalesce(details -> 'units', 'null'), coalesce(details -> 'products', 'null'));
	END IF;

	IF NOT EXISTS (SELECT FROM wam.customer c WHERE c.id = customer) THEN
		RAISE EXCEPTION 'customer % does not exist', customer USING ERRCODE = 'foreign_key_violation';
	END IF;
	IF cfg.mirror_tags THEN
		SELECT v.tier INTO old_tier FROM wam.customer_rfm v WHERE v.customer_id = customer;
	END IF;

	INSERT INTO wam.customer_order (customer_id, ordered_at, amount, currency, coupon_used, units, details)
	VALUES (customer, ordered_at, amount, coalesce(cur, cfg.currency), coupon_used, n_units, details)
	RETURNING order_id INTO new_id;
	-- the order event that lets event rules react at once (R-T8) is written by
	-- the trigger order_to_events, as for orders inserted or copied in bulk

	IF cfg.mirror_tags THEN
		SELECT v.tier INTO new_tier FROM wam.customer_rfm v WHERE v.customer_id = customer;
		IF new_tier IS DISTINCT FROM old_tier THEN
			PERFORM wam_internal.rfm_mirror_customer(customer, old_tier, new_tier);
		END IF;
	END IF;
	RETURN new_id;
END
$$;
CREATE FUNCTION wam_internal.order_events_trigger() RETURNS trigger
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
BEGIN
	IF wam_internal.restoring() THEN
		RETURN NULL;
	END IF;
	INSERT INTO wam.event (customer_id, kind, occurred_at, details)
	SELECT n.customer_id, 'order', n.ordered_at,
		   coalesce(n.details, '{}') || jsonb_build_object('order_id', n.order_id, 'amount', n.amount,
														   'currency', n.currency,
														   'coupon_used', n.coupon_used, 'units', n.units)
	FROM new_orders n
	ORDER BY n.ordered_at, n.order_id;
	RETURN NULL;
END
$$;
COMMENT ON FUNCTION wam_internal.order_events_trigger() IS 'trigger: writes one order event per newly inserted order';

CREATE TRIGGER order_to_events AFTER INSERT ON wam.customer_order
	REFERENCING NEW TABLE AS new_orders FOR EACH STATEMENT EXECUTE FUNCTION wam_internal.order_events_trigger();

REVOKE EXECUTE ON FUNCTION wam_internal.order_events_trigger() FROM PUBLIC;

-- a message first read becomes a message_read event
CREATE FUNCTION wam_internal.outbox_read_event_trigger() RETURNS trigger
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
BEGIN
	-- the message may outlive its customer (outbox rows keep no foreign key)
	INSERT INTO wam.event (customer_id, kind, occurred_at, details)
	SELECT c.id, 'message_read', NEW.read_at,
		   jsonb_strip_nulls(jsonb_build_object('message_id', NEW.message_id, 'campaign', NEW.campaign,
												'variant', NEW.variant, 'sender_id', NEW.sender_id))
	FROM wam.customer c WHERE c.id = NEW.customer_id;
	RETURN NULL;
END
$$;
COMMENT ON FUNCTION wam_internal.outbox_read_event_trigger() IS 'trigger: writes a message_read event when a message is first read';

CREATE TRIGGER outbox_read_event AFTER UPDATE OF read_at ON wam.outbox
	FOR EACH ROW WHEN (OLD.read_at IS NULL AND NEW.read_at IS NOT NULL)
	EXECUTE FUNCTION wam_internal.outbox_read_event_trigger();

REVOKE EXECUTE ON FUNCTION wam_internal.outbox_read_event_trigger() FROM PUBLIC;

-- tag expiry anchored as the tag defines it
ALTER TABLE wam.tag ADD COLUMN expiry_anchor text NOT NULL DEFAULT 'attach'
	CONSTRAINT tag_expiry_anchor CHECK (expiry_anchor IN ('attach', 'first_attach', 'first_order'));
COMMENT ON COLUMN wam.tag.expiry_anchor IS 'what an attachment''s expiry (default_ttl) counts from: attach = each attachment (re-attaching refreshes it), first_attach = the first attachment, first_order = the customer''s first order';
ALTER TABLE wam.tag_log DROP CONSTRAINT tag_log_action;
ALTER TABLE wam.tag_log ADD CONSTRAINT tag_log_action CHECK (action IN
		('create', 'rename', 'retire', 'reactivate', 'merge', 'create dimension', 'set expiry'));

CREATE FUNCTION wam.set_tag_expiry(tag text, ttl interval, anchor text DEFAULT 'attach', reason text DEFAULT NULL)
	RETURNS void
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	id integer := wam.tag_id(tag);
	old wam.tag;
BEGIN
	PERFORM wam_internal.refuse_null(anchor IS NULL, 'expiry anchor');
	IF anchor NOT IN ('attach', 'first_attach', 'first_order') THEN
		RAISE EXCEPTION 'unknown expiry anchor "%"', anchor
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'The anchors are attach (each attachment), first_attach and first_order.';
	END IF;
	IF ttl <= interval '0' THEN
		RAISE EXCEPTION 'time to live must be positive, not %', ttl USING ERRCODE = 'invalid_parameter_value';
	END IF;
	SELECT * INTO old FROM wam.tag t WHERE t.tag_id = id FOR UPDATE;
	UPDATE wam.tag t SET default_ttl = ttl, expiry_anchor = anchor WHERE t.tag_id = id;
	INSERT INTO wam.tag_log (action, tag_id, tag_name, detail, reason)
	VALUES ('set expiry', id, old.name,
			jsonb_build_object('ttl', ttl::text, 'anchor', anchor,
							   'old_ttl', old.default_ttl::text, 'old_anchor', old.expiry_anchor),
			reason);
END
$$;
COMMENT ON FUNCTION wam.set_tag_expiry(text, interval, text, text) IS 'sets how long a tag''s new attachments last and from when (logged)';

REVOKE EXECUTE ON FUNCTION wam.set_tag_expiry(text, interval, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.set_tag_expiry(text, interval, text, text) TO wam_admin;

-- the example rules: plain names (installed rules are renamed), reads as
-- events, "new customer" and "three or more orders" also at the order
CREATE OR REPLACE FUNCTION wam.install_example_tag_rules() RETURNS SETOF text
	LANGUAGE plpgsql SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	t record;
BEGIN
	FOR t IN SELECT * FROM (VALUES
		('cart abandoned', 'purchase stage', NULL::interval),
		('purchased', 'purchase stage', NULL),
		('new customer', 'purchase stage', interval '60 days'),
		('growth-high', 'engagement', NULL),
		('growth-low', 'engagement', NULL),
		('about to churn', 'engagement', NULL),
		('high activity', 'engagement', NULL),
		('needs attention', 'engagement', NULL),
		('active customer', 'engagement', NULL),
		('high-value customer', 'spending power', NULL),
		('VIP', 'spending power', NULL),
		('historical stock - awaiting reactivation', 'engagement', NULL)) v(name, dimension, ttl)
	LOOP
		IF NOT EXISTS (SELECT FROM wam.tag WHERE normalized_name = wam.normalize_tag_name(t.name)) THEN
			PERFORM wam.create_tag(t.name, t.dimension, NULL, t.ttl);
			RETURN NEXT 'tag ' || t.name;
		END IF;
		-- "new customer" lasts 60 days from the first order, never refreshed (R-T7)
		IF t.name = 'new customer' AND NOT EXISTS (SELECT FROM wam.tag x
				WHERE x.normalized_name = wam.normalize_tag_name(t.name) AND x.expiry_anchor = 'first_order') THEN
			PERFORM wam.set_tag_expiry(t.name, t.ttl, 'first_order', 'example rules: removed 60 days after the first order');
		END IF;
	END LOOP;

	-- a successful order removes "cart abandoned" and adds "purchased" at once (R-T8)
	PERFORM wam.create_tag_rule('order placed', '{purchased}', '{cart abandoned}',
		NULL, 'order', 'on an order event: remove cart abandoned, add purchased')
		WHERE NOT EXISTS (SELECT FROM wam.tag_rule tr WHERE tr.name = 'order placed');
	-- no marketing message opened for 60 days (customers of less than 60 days
	-- are not counted as silent)
	PERFORM wam.create_tag_rule('no read for 60 days', '{about to churn}', '{active customer}',
		'no read within 60d AND no created within 60d')
		WHERE NOT EXISTS (SELECT FROM wam.tag_rule tr WHERE tr.name = 'no read for 60 days');
	-- no message read for 14 days: high activity -> needs attention (R-T6)
	PERFORM wam.create_tag_rule('no read for 14 days', '{needs attention}', '{high activity}',
		'"high activity" AND no read within 14d AND no created within 14d')
		WHERE NOT EXISTS (SELECT FROM wam.tag_rule tr WHERE tr.name = 'no read for 14 days');
	-- lifecycle after the first purchase (R-T10); "new customer" expires 60 days
	-- after the first order whenever the rule attaches it (R-T7)
	PERFORM wam.create_tag_rule('new customer (days 0-30)', '{new customer}', '{}',
		'first_order within 30d', 'order')
		WHERE NOT EXISTS (SELECT FROM wam.tag_rule tr WHERE tr.name = 'new customer (days 0-30)');
	-- reads are message_read events (one per message read)
	PERFORM wam.create_tag_rule('growth-high (days 31-90, reads weekly)', '{growth-high}', '{growth-low}',
		'first_order within 90d EXCLUDE first_order within 30d AND event(message_read) within 7d')
		WHERE NOT EXISTS (SELECT FROM wam.tag_rule tr WHERE tr.name = 'growth-high (days 31-90, reads weekly)');
	PERFORM wam.create_tag_rule('growth-low (days 31-90, no read this week)', '{growth-low}', '{growth-high}',
		'first_order within 90d EXCLUDE first_order within 30d EXCLUDE event(message_read) within 7d')
		WHERE NOT EXISTS (SELECT FROM wam.tag_rule tr WHERE tr.name = 'growth-low (days 31-90, no read this week)');
	PERFORM wam.create_tag_rule('no second purchase after 90 days', '{about to churn}', '{new customer}',
		'first_order EXCLUDE first_order within 90d AND orders < 2')
		WHERE NOT EXISTS (SELECT FROM wam.tag_rule tr WHERE tr.name = 'no second purchase after 90 days');
	-- a VIP without interaction for 180 days is a sleeping VIP (R-T11)
	PERFORM wam.create_tag_rule('sleeping VIP', '{historical stock - awaiting reactivation}', '{VIP}',
		'VIP AND no interacted within 180d AND no created within 180d')
		WHERE NOT EXISTS (SELECT FROM wam.tag_rule tr WHERE tr.name = 'sleeping VIP');
	-- three or more purchases make a high-value customer (R-T14): at the order
	-- that makes three, and on every run for orders loaded otherwise
	PERFORM wam.create_tag_rule('three or more orders', '{high-value customer}', '{}',
		'orders >= 3', 'order')
		WHERE NOT EXISTS (SELECT FROM wam.tag_rule tr WHERE tr.name = 'three or more orders');
	RETURN QUERY SELECT 'rule ' || name FROM wam.tag_rule ORDER BY rule_id;
END
$$;
UPDATE wam.tag_rule r SET name = v.new_name
FROM (VALUES ('R-T8 order placed', 'order placed'),
			 ('R-T8 no read for 60 days', 'no read for 60 days'),
			 ('R-T6 no read for 14 days', 'no read for 14 days'),
			 ('R-T10 new customer (days 0-30)', 'new customer (days 0-30)'),
			 ('R-T10 growth-high (days 31-90, reads weekly)', 'growth-high (days 31-90, reads weekly)'),
			 ('R-T10 growth-low (days 31-90, no read this week)', 'growth-low (days 31-90, no read this week)'),
			 ('R-T10 no second purchase after 90 days', 'no second purchase after 90 days'),
			 ('R-T11 sleeping VIP', 'sleeping VIP'),
			 ('R-T14 three orders', 'three or more orders')) v(old_name, new_name)
WHERE r.name = v.old_name
  AND NOT EXISTS (SELECT FROM wam.tag_rule x WHERE x.name = v.new_name);
-- the installed rules that react to the order as well (unchanged conditions only)
UPDATE wam.tag_rule SET on_event = 'order'
WHERE on_event IS NULL
  AND (name, condition) IN (('new customer (days 0-30)', 'first_order within 30d'),
							('three or more orders', 'orders >= 3'));

-- contact import: the consent column is parsed
ALTER TABLE wam.import ADD COLUMN opted_out bigint NOT NULL DEFAULT 0;
COMMENT ON COLUMN wam.import.opted_out IS 'contacts who had consented and whose row said no: an opt-out was recorded for each';
CREATE FUNCTION wam_internal.import_consent(cell text, OUT consent boolean, OUT consented_at timestamptz,
		OUT problem text)
	LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, wam, pg_temp
AS $$
DECLARE
	v text := lower(btrim(cell, E' \t\r\n'));
	d date;
BEGIN
	IF v IS NULL OR v = '' THEN
		RETURN;
	ELSIF v IN ('yes', 'y', 'true', '1') THEN
		consent := true;
	ELSIF v IN ('no', 'n', 'false', '0') THEN
		consent := false;
	ELSIF v ~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}$' THEN
		BEGIN
			d := v::date;
		EXCEPTION WHEN datetime_field_overflow OR invalid_datetime_format THEN
			problem := format('invalid consent date: %s', left(btrim(cell), 40));
			RETURN;
		END;
		IF d > current_date THEN
			problem := format('consent date is in the future: %s', v);
			RETURN;
		END IF;
		consent := true;
		consented_at := d::timestamptz;
	ELSE
		problem := format('invalid consent: "%s" (expected yes, no, true, false, 1, 0, y, n or a date YYYY-MM-DD)',
						  left(btrim(cell), 40));
	END IF;
END
$$;
COMMENT ON FUNCTION wam_internal.import_consent(text) IS 'internal: the consent cell of an import row parsed: yes or no, the date consented on, or why it is invalid';

REVOKE EXECUTE ON FUNCTION wam_internal.import_consent(text) FROM PUBLIC;

CREATE OR REPLACE FUNCTION wam_internal.import_file(text_data text, byte_data bytea, default_country text,
		delimiter text)
	RETURNS TABLE (import_id bigint, rows_read bigint, created bigint, updated bigint,
				   duplicates bigint, failed bigint, failure_rate numeric, flagged boolean)
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	imp bigint;
	n_read bigint;
	n_created bigint;
	n_updated bigint;
	n_dup bigint;
	n_failed bigint;
	denied bigint[];
	denied_id bigint;
BEGIN
	WITH rec AS MATERIALIZED (
		SELECT r.line_no, r.fields, r.problem FROM wam.csv_rows(text_data, delimiter) r
		UNION ALL
		SELECT r.line_no, r.fields, r.problem FROM wam.csv_rows(byte_data, delimiter) r
	),
	-- exactly one row: wam_internal.import_columns raises when there is no header
	hdr AS MATERIALIZED (
		SELECT f.line_no, c.phone, c.tags, c.name, c.consent, c.width
		FROM (SELECT 1) one
		LEFT JOIN (SELECT r.line_no, r.fields FROM rec r ORDER BY r.line_no LIMIT 1) f ON true
		CROSS JOIN LATERAL wam_internal.import_columns(f.fields, default_country) c
	),
	-- reads hdr, so it is inserted only once the header is accepted
	new_import AS (
		INSERT INTO wam.import (rows_read) SELECT 0 FROM hdr RETURNING wam.import.import_id AS id
	),
	line AS MATERIALIZED (
		SELECT r.line_no,
			   btrim(r.fields[h.phone]) AS raw_phone,
			   nullif(btrim(r.fields[h.name]), '') AS name,
			   nullif(btrim(r.fields[h.consent]), '') AS consent,
			   r.fields[h.tags] AS raw_tags,
			   CASE WHEN r.problem IS NOT NULL THEN 'malformed CSV: ' || r.problem
					WHEN cardinality(r.fields) < h.width THEN
						format('missing columns: %s of %s', cardinality(r.fields), h.width)
			   END AS problem
		FROM rec r, hdr h
		WHERE r.line_no > h.line_no
	),
	-- tags: every name must exist and be active; never created silently (R-I3)
	tag_set AS MATERIALIZED (
		SELECT s.raw_tags, x.problem, y.ids, y.ttls
		FROM (SELECT DISTINCT l.raw_tags FROM line l WHERE l.raw_tags IS NOT NULL) s
		CROSS JOIN LATERAL (
			SELECT array_agg(t.tag_id) AS ids,
				   CASE WHEN bool_or(t.tag_id IS NULL) THEN
							'unknown tag: ' || string_agg(u.n, ', ' ORDER BY u.o) FILTER (WHERE t.tag_id IS NULL)
						WHEN bool_or(t.status = 'retired') THEN
							'retired tag: ' || string_agg(u.n, ', ' ORDER BY u.o) FILTER (WHERE t.status = 'retired')
				   END AS problem
			FROM (SELECT btrim(v.n) AS n, v.o
				  FROM unnest(string_to_array(s.raw_tags, ',')) WITH ORDINALITY AS v(n, o)
				  WHERE btrim(v.n) <> '') u
			LEFT JOIN wam.tag t ON t.normalized_name = wam.normalize_tag_name(u.n)
		) x
		-- each tag once ("VIP, vip"), with its time to live
		CROSS JOIN LATERAL (
			SELECT coalesce(array_agg(t.tag_id ORDER BY t.tag_id), '{}') AS ids,
				   coalesce(array_agg(t.default_ttl ORDER BY t.tag_id), '{}') AS ttls
			FROM wam.tag t WHERE t.tag_id = ANY (x.ids)
		) y
	),
	checked AS MATERIALIZED (
		SELECT l.line_no, l.raw_phone, l.name, k.consent, k.consented_at, l.raw_tags,
			   coalesce(l.problem, 'invalid phone number: ' || p.problem, ts.problem, k.problem) AS problem,
			   CASE WHEN l.problem IS NULL AND p.problem IS NULL AND ts.problem IS NULL AND k.problem IS NULL
					THEN wam.normalize_phone(l.raw_phone, default_country) END AS phone
		FROM line l
		-- (OFFSET 0: computed once per row, not once per use)
		CROSS JOIN LATERAL (SELECT CASE WHEN l.problem IS NULL
										THEN wam.phone_problem(l.raw_phone, default_country) END AS problem
							OFFSET 0) p
		CROSS JOIN LATERAL wam_internal.import_consent(l.consent) k
		LEFT JOIN tag_set ts ON ts.raw_tags = l.raw_tags
	),
	-- duplicates: the first occurrence of a number wins (R-I4)
	valid AS MATERIALIZED (
		SELECT c.line_no, c.raw_phone, c.phone, c.name, c.consent, c.consented_at, c.raw_tags,
			   min(c.line_no) OVER (PARTITION BY c.phone) AS first_line
		FROM checked c WHERE c.phone IS NOT NULL
	),
	upserted AS (
		INSERT INTO wam.customer AS c (phone, name, consent_at, consent_source)
		SELECT v.phone, v.name, CASE WHEN v.consent THEN coalesce(v.consented_at, now()) END,
			   CASE WHEN v.consent THEN 'import ' || i.id END
		FROM valid v, new_import i
		WHERE v.line_no = v.first_line
		ORDER BY v.line_no
		ON CONFLICT (phone) DO UPDATE
			SET name = coalesce(EXCLUDED.name, c.name),
				consent_at = CASE WHEN EXCLUDED.consent_source IS NOT NULL AND c.consent_at IS NULL
								  THEN EXCLUDED.consent_at ELSE c.consent_at END,
				consent_source = CASE WHEN EXCLUDED.consent_source IS NOT NULL AND c.consent_at IS NULL
									  THEN EXCLUDED.consent_source ELSE c.consent_source END
		-- (a "no" row leaves consent_at as it was: the contact's existing consent)
		RETURNING c.id, c.phone, (c.xmax = 0) AS inserted, c.consent_at IS NOT NULL AND c.opted_out_at IS NULL AS consenting
	),
	-- every imported number gets exactly the file's tags (R-I7)
	attached AS (
		INSERT INTO wam.customer_tag AS ct (customer_id, tag_id, expires_at, source)
		SELECT u.id, x.tag_id, now() + x.ttl, 'import'
		FROM upserted u
		JOIN valid v ON v.phone = u.phone AND v.line_no = v.first_line
		JOIN tag_set ts ON ts.raw_tags = v.raw_tags
		CROSS JOIN LATERAL unnest(ts.ids, ts.ttls) AS x(tag_id, ttl)
		-- in primary-key order: each tag's new rows go to one place of the index
		ORDER BY x.tag_id, u.id
		ON CONFLICT (customer_id, tag_id) DO UPDATE SET expires_at = EXCLUDED.expires_at
			WHERE ct.expires_at IS DISTINCT FROM EXCLUDED.expires_at
	),
	touched AS (
		UPDATE wam.tag t SET last_attached_at = now()
		WHERE t.tag_id IN (SELECT t2.tag_id FROM wam.tag t2
						   WHERE t2.tag_id IN (SELECT unnest(ts.ids) FROM tag_set ts
											   WHERE ts.raw_tags IN (SELECT c.raw_tags FROM checked c
																	 WHERE c.problem IS NULL))
							 AND (t2.last_attached_at IS NULL OR t2.last_attached_at < now() - interval '1 hour')
						   FOR NO KEY UPDATE SKIP LOCKED)
	),
	failures AS (
		INSERT INTO wam.import_error (import_id, line_no, raw_phone, reason)
		SELECT i.id, e.line_no, left(e.raw_phone, 100), e.reason
		FROM new_import i,
			 (SELECT c.line_no, c.raw_phone, c.problem AS reason FROM checked c WHERE c.problem IS NOT NULL
			  UNION ALL
			  SELECT v.line_no, v.raw_phone, 'duplicate of line ' || v.first_line
			  FROM valid v WHERE v.line_no > v.first_line) e
		ORDER BY e.line_no
	)
	SELECT i.id, n.n_read, n.n_failed, d.n_dup, u.n_created, u.n_updated, o.ids
	INTO imp, n_read, n_failed, n_dup, n_created, n_updated, denied
	FROM new_import i,
		 (SELECT count(*) AS n_read, count(*) FILTER (WHERE c.problem IS NOT NULL) AS n_failed FROM checked c) n,
		 (SELECT count(*) AS n_dup FROM valid v WHERE v.line_no > v.first_line) d,
		 (SELECT count(*) FILTER (WHERE p.inserted) AS n_created,
				 count(*) FILTER (WHERE NOT p.inserted) AS n_updated FROM upserted p) u,
		 -- existing contacts who consented, and whose row says "no"
		 (SELECT array_agg(p.id ORDER BY p.id) AS ids FROM upserted p
		  JOIN valid v ON v.phone = p.phone AND v.line_no = v.first_line
		  WHERE NOT p.inserted AND v.consent = false AND p.consenting) o;

	-- an explicit "no" for a consenting contact is an opt-out, recorded as such
	-- (event, waiting messages cancelled), never a silent change of consent
	FOREACH denied_id IN ARRAY coalesce(denied, '{}') LOOP
		PERFORM wam.record_opt_out(denied_id, format('import %s: consent "no"', imp));
	END LOOP;

	UPDATE wam.import i
	SET rows_read = n_read, created = n_created, updated = n_updated, duplicates = n_dup,
		failed = n_failed, opted_out = coalesce(cardinality(denied), 0),
		failure_rate = CASE WHEN n_read = 0 THEN 0 ELSE round(n_failed::numeric / n_read, 4) END,
		flagged = n_read > 0 AND n_failed::numeric / n_read > 0.10
	WHERE i.import_id = imp;
	RAISE NOTICE 'import %: % rows read, % customers created, % updated, % duplicates, % failed',
		imp, n_read, n_created, n_updated, n_dup, n_failed;

	RETURN QUERY SELECT i.import_id, i.rows_read, i.created, i.updated, i.duplicates, i.failed,
						i.failure_rate, i.flagged
				 FROM wam.import i WHERE i.import_id = imp;
END
$$;

-- referral retention: orders, replies, messages, reads and clicks only
CREATE OR REPLACE FUNCTION wam.referral_report(program text, since timestamptz, until timestamptz)
	RETURNS TABLE (metric text, item text, value numeric, note text)
	LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	pid integer := wam.referral_program_id(program);
	p wam.referral_program;
	cost numeric;
	revenue numeric;
	matured bigint;
	retained bigint;
	churn numeric;
	n_accepted bigint;
	n_qualified bigint;
	rs wam.referral[];
BEGIN
	IF since IS NULL OR until IS NULL THEN
		RAISE EXCEPTION 'report period must not be null' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	IF until <= since THEN
		RAISE EXCEPTION 'report period is empty: until (%) must be after since (%)', until, since
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	SELECT * INTO p FROM wam.referral_program x WHERE x.id = pid;

	rs := ARRAY(SELECT r FROM wam.referral r WHERE r.program_id = pid AND r.created_at >= since AND r.created_at < until);

	RETURN QUERY SELECT 'invitations'::text, NULL::text, count(*)::numeric, 'referral attempts with a code of the program'::text
				 FROM unnest(rs);
	SELECT count(*) FILTER (WHERE r.status <> 'rejected'), count(*) FILTER (WHERE r.status = 'qualified')
	INTO n_accepted, n_qualified FROM unnest(rs) r;
	RETURN QUERY SELECT 'accepted'::text, NULL::text, n_accepted::numeric, 'not rejected by the abuse checks'::text;
	RETURN QUERY SELECT 'status'::text, s.status, count(r.id)::numeric, NULL::text
				 FROM unnest(ARRAY['pending', 'review', 'qualified', 'lapsed', 'revoked', 'rejected']) WITH ORDINALITY s(status, o)
				 LEFT JOIN unnest(rs) r ON r.status = s.status
				 GROUP BY s.status, s.o ORDER BY s.o;
	RETURN QUERY SELECT 'rejected'::text, r.reason, count(*)::numeric, NULL::text
				 FROM unnest(rs) r WHERE r.status = 'rejected'
				 GROUP BY r.reason ORDER BY count(*) DESC, r.reason;
	RETURN QUERY SELECT 'conversion'::text, NULL::text,
						CASE WHEN n_accepted > 0 THEN round(n_qualified::numeric / n_accepted, 4) END,
						'qualified / accepted' || CASE WHEN p.benchmark ->> 'conversion' IS NOT NULL
													 THEN '; preset benchmark ' || (p.benchmark ->> 'conversion') ELSE '' END;
	-- rewards decided for referrals of the period: by tier and status
	RETURN QUERY SELECT 'rewards'::text, format('tier %s: %s (%s)', w.tier, w.reward, w.status), count(*)::numeric,
						format('cost %s', sum(w.cost))
				 FROM wam.referral_reward w
				 WHERE w.program_id = pid AND w.created_at >= since AND w.created_at < until
				 GROUP BY w.tier, w.reward, w.status ORDER BY w.tier, w.status;
	SELECT coalesce(sum(w.cost), 0) INTO cost FROM wam.referral_reward w
	WHERE w.program_id = pid AND w.created_at >= since AND w.created_at < until AND w.status = 'issued';
	RETURN QUERY SELECT 'reward cost'::text, NULL::text, cost, 'issued rewards'::text;
	-- revenue of the referred customers: their orders from the referral up to until
	SELECT coalesce(sum(o.amount), 0) INTO revenue
	FROM unnest(rs) r
	JOIN wam.customer_order o ON o.customer_id = r.invitee_id AND o.ordered_at >= r.created_at AND o.ordered_at < until
	WHERE r.status = 'qualified';
	RETURN QUERY SELECT 'revenue'::text, NULL::text, revenue, 'orders of qualified referred customers up to the end of the period'::text;
	RETURN QUERY SELECT 'roi'::text, NULL::text, CASE WHEN cost > 0 THEN round(revenue / cost, 2) END,
						CASE WHEN cost > 0 THEN 'revenue / reward cost' ELSE 'no reward cost in the period' END;
	-- 30-day retention: qualified referred customers whose first 30 days ended
	-- by until, retained when they ordered or were really active after the
	-- qualifying order and within 30 days: replied, wrote, read a message or
	-- clicked a link (consent, opt-out and other bookkeeping events are not
	-- activity: an opt-out must never count as retention)
	SELECT count(*), count(*) FILTER (WHERE EXISTS (
				SELECT FROM wam.customer_order o
				WHERE o.customer_id = r.invitee_id AND o.order_id <> r.order_id
				  AND o.ordered_at > r.qualified_at AND o.ordered_at <= r.qualified_at + interval '30 days')
			OR EXISTS (
				SELECT FROM wam.event e
				WHERE e.customer_id = r.invitee_id
				  AND e.kind IN ('reply', 'inbound_message', 'message_read', 'link_click')
				  AND e.occurred_at > r.qualified_at AND e.occurred_at <= r.qualified_at + interval '30 days'))
	INTO matured, retained
	FROM unnest(rs) r
	WHERE r.status = 'qualified' AND r.qualified_at + interval '30 days' <= until;
	churn := CASE WHEN matured > 0 THEN round(1 - retained::numeric / matured, 4) END;
	RETURN QUERY SELECT 'retention 30d'::text, NULL::text, CASE WHEN matured > 0 THEN round(retained::numeric / matured, 4) END,
						format('%s of %s referred customers active within 30 days of their first order', retained, matured);
	RETURN QUERY SELECT 'first-month churn'::text, NULL::text, churn,
						CASE WHEN churn > 0.40 THEN 'FLAGGED: above 40%, change the reward design (R-F6)'
							 WHEN churn IS NULL THEN 'no referred customer has completed 30 days yet'
							 ELSE 'at most 40%' END;
	RETURN QUERY SELECT 'flagged'::text, NULL::text, (coalesce(churn > 0.40, false))::integer::numeric,
						'1 when first-month churn of referred customers exceeds 40%'::text;
	RETURN QUERY SELECT 'open reviews'::text, NULL::text, count(*)::numeric, 'frozen referrers awaiting review'::text
				 FROM wam.referral_review v WHERE v.program_id = pid AND v.resolved_at IS NULL;
END
$$;

-- an installed example "new customer" tag (60 days) now counts from the first order
UPDATE wam.tag SET expiry_anchor = 'first_order'
WHERE normalized_name = wam.normalize_tag_name('new customer') AND default_ttl = interval '60 days';
