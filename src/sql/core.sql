-- src/sql/core.sql: the core: roles, customers, consent, behaviour events,
-- orders and per-customer purchase statistics
-- roles

-- Roles are cluster-wide, so they may already exist (another database has the
-- extension); they are not extension members and survive DROP EXTENSION.
DO $roles$
BEGIN
	IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) 'wam_reader') THEN
		CREATE ROLE wam_reader NOLOGIN;
	END IF;
	IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) 'wam_operator') THEN
		CREATE ROLE wam_operator NOLOGIN;
	END IF;
	IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) 'wam_admin') THEN
		CREATE ROLE wam_admin NOLOGIN;
	END IF;
	IF NOT pg_catalog.pg_has_role('wam_operator', 'wam_reader', 'MEMBER') THEN
		GRANT wam_reader TO wam_operator;
	END IF;
	IF NOT pg_catalog.pg_has_role('wam_admin', 'wam_operator', 'MEMBER') THEN
		GRANT wam_operator TO wam_admin;
	END IF;
	-- wam_definer owns the SECURITY DEFINER functions (src/sql/security.sql):
	-- they run with its table privileges, never with the installing superuser's.
	-- Nobody logs in as it or is a member of it, so the only way to act as it is
	-- through those functions.
	IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) 'wam_definer') THEN
		CREATE ROLE wam_definer NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT NOREPLICATION NOBYPASSRLS;
	ELSIF EXISTS (SELECT FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) 'wam_definer'
				  AND (r.rolsuper OR r.rolbypassrls OR r.rolcanlogin OR r.rolcreaterole OR r.rolreplication))
		OR EXISTS (SELECT FROM pg_catalog.pg_auth_members m
				   WHERE m.roleid OPERATOR(pg_catalog.=) 'wam_definer'::pg_catalog.regrole
					  OR m.member OPERATOR(pg_catalog.=) 'wam_definer'::pg_catalog.regrole) THEN
		RAISE EXCEPTION 'role "wam_definer" has more rights than the extension allows'
			USING ERRCODE = 'insufficient_privilege',
				  DETAIL = 'It must be NOLOGIN, NOSUPERUSER, NOCREATEROLE, NOREPLICATION and NOBYPASSRLS, with no members and no memberships.',
				  HINT = 'Fix the role (ALTER ROLE, REVOKE) or drop it, then create the extension again.';
	END IF;
END
$roles$;
GRANT USAGE ON SCHEMA wam TO wam_reader, wam_definer;

-- customers

CREATE SEQUENCE wam.customer_id_seq MINVALUE 1 MAXVALUE 4294967295;

GRANT USAGE ON SEQUENCE wam.customer_id_seq TO wam_definer;
GRANT USAGE ON SEQUENCE wam.customer_id_seq TO wam_operator;

CREATE TABLE wam.customer (
	id bigint PRIMARY KEY DEFAULT pg_catalog.nextval('wam.customer_id_seq')
		CONSTRAINT customer_id_range CHECK (id >= 0 AND id <= 4294967295),
	phone text NOT NULL UNIQUE
		CONSTRAINT customer_phone_e164 CHECK (phone ~ '^[1-9][0-9]{6,14}$'),
	name text,
	locale text,
	time_zone text,
	consent_at timestamptz,
	consent_source text,
	opted_out_at timestamptz,
	opt_out_reason text,
	created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	first_order_at timestamptz,
	last_order_at timestamptz,
	last_inbound_at timestamptz,
	last_read_at timestamptz,
	CONSTRAINT customer_consent_source CHECK (consent_at IS NULL OR consent_source IS NOT NULL)
) WITH (fillfactor = 85);
COMMENT ON TABLE wam.customer IS 'customers: phone, name, locale, time zone, consent';
COMMENT ON COLUMN wam.customer.consent_at IS 'when the customer consented to WhatsApp marketing (NULL: never; such customers can be tagged but not messaged)';
COMMENT ON COLUMN wam.customer.opted_out_at IS 'when the customer opted out (non-NULL: never message)';

GRANT SELECT ON wam.customer TO wam_reader;
GRANT SELECT, INSERT, UPDATE ON wam.customer TO wam_definer;

-- behaviour events

CREATE TABLE wam.event (
	event_id bigint GENERATED ALWAYS AS IDENTITY,
	customer_id bigint NOT NULL REFERENCES wam.customer ON DELETE CASCADE,
	kind text NOT NULL CONSTRAINT event_kind CHECK (kind ~ '^[a-z][a-z0-9_]*$'),
	occurred_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	details jsonb,
	PRIMARY KEY (customer_id, event_id)
);
-- customer_id is included so that behaviour predicates ("event(kind) >= n
-- within 7d") read only the index (events are insert-only, so the visibility
-- map stays nearly all-visible): a third faster at 50 million events.
CREATE INDEX event_kind_time ON wam.event (kind, occurred_at) INCLUDE (customer_id);
COMMENT ON TABLE wam.event IS 'behaviour events (link_click, order, reply, ...)';

GRANT INSERT ON wam.event TO wam_operator;
GRANT SELECT ON wam.event TO wam_reader;
GRANT SELECT, INSERT ON wam.event TO wam_definer;
GRANT USAGE ON SEQUENCE wam.event_event_id_seq TO wam_definer;

-- Event details, one row per scalar value of an event's details: the index
-- of detail filters ("event(link_click, product = 'x') >= 3 within 7d").  Its
-- index holds kind, key, value, time and customer, so a filter reads only the
-- matching events and only the index, as event_kind_time does for kinds.
-- Kept by the triggers below; dumped like every table (the insert trigger
-- stands aside during a restore, which loads the rows themselves).
CREATE TABLE wam.event_detail (
	customer_id bigint NOT NULL,
	event_id bigint NOT NULL,
	kind text NOT NULL,
	key text NOT NULL,
	value jsonb NOT NULL,
	occurred_at timestamptz NOT NULL
);
CREATE INDEX event_detail_search ON wam.event_detail (kind, key, value, occurred_at) INCLUDE (customer_id, event_id);
CREATE INDEX event_detail_event ON wam.event_detail (customer_id, event_id);
COMMENT ON TABLE wam.event_detail IS 'the scalar values of every event''s details, one row each: what detail filters of audiences search (kept by triggers on wam.event)';

REVOKE ALL ON wam.event_detail FROM PUBLIC;
GRANT SELECT ON wam.event_detail TO wam_reader;
GRANT SELECT, INSERT, DELETE ON wam.event_detail TO wam_definer;

CREATE FUNCTION wam_internal.event_detail_insert_trigger() RETURNS trigger
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
BEGIN
	IF wam_internal.restoring() THEN
		RETURN NULL;
	END IF;
	INSERT INTO wam.event_detail (customer_id, event_id, kind, key, value, occurred_at)
	SELECT n.customer_id, n.event_id, n.kind, d.key, d.value, n.occurred_at
	FROM new_events n, pg_catalog.jsonb_each(n.details) d
	WHERE pg_catalog.jsonb_typeof(n.details) = 'object'
	  AND pg_catalog.jsonb_typeof(d.value) IN ('string', 'number', 'boolean');
	RETURN NULL;
END
$$;
COMMENT ON FUNCTION wam_internal.event_detail_insert_trigger() IS 'trigger: records the scalar detail values of newly inserted events in wam.event_detail';
-- "event_detail_insert" sorts before "event_rules": rules that inserted
-- events fire see their details
CREATE TRIGGER event_detail_insert AFTER INSERT ON wam.event
	REFERENCING NEW TABLE AS new_events FOR EACH STATEMENT EXECUTE FUNCTION wam_internal.event_detail_insert_trigger();
REVOKE EXECUTE ON FUNCTION wam_internal.event_detail_insert_trigger() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam_internal.event_detail_insert_trigger() TO wam_operator;

-- deleted events (a customer deleted, or an administrator's DELETE) and
-- changed ones take their detail rows with them
CREATE FUNCTION wam_internal.event_detail_delete_trigger() RETURNS trigger
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
BEGIN
	DELETE FROM wam.event_detail d USING old_events o
	WHERE d.customer_id = o.customer_id AND d.event_id = o.event_id;
	IF TG_OP = 'UPDATE' THEN
		INSERT INTO wam.event_detail (customer_id, event_id, kind, key, value, occurred_at)
		SELECT n.customer_id, n.event_id, n.kind, d.key, d.value, n.occurred_at
		FROM new_events n, pg_catalog.jsonb_each(n.details) d
		WHERE pg_catalog.jsonb_typeof(n.details) = 'object'
		  AND pg_catalog.jsonb_typeof(d.value) IN ('string', 'number', 'boolean');
	END IF;
	RETURN NULL;
END
$$;
COMMENT ON FUNCTION wam_internal.event_detail_delete_trigger() IS 'trigger: removes the detail rows of deleted events from wam.event_detail, and records those of changed events again';
CREATE TRIGGER event_detail_delete AFTER DELETE ON wam.event
	REFERENCING OLD TABLE AS old_events FOR EACH STATEMENT EXECUTE FUNCTION wam_internal.event_detail_delete_trigger();
CREATE TRIGGER event_detail_update AFTER UPDATE ON wam.event
	REFERENCING OLD TABLE AS old_events NEW TABLE AS new_events FOR EACH STATEMENT
	EXECUTE FUNCTION wam_internal.event_detail_delete_trigger();
REVOKE EXECUTE ON FUNCTION wam_internal.event_detail_delete_trigger() FROM PUBLIC;

CREATE FUNCTION wam_internal.event_detail_truncate_trigger() RETURNS trigger
	LANGUAGE plpgsql SET search_path = pg_catalog, wam, pg_temp
AS $$
BEGIN
	TRUNCATE wam.event_detail;
	RETURN NULL;
END
$$;
COMMENT ON FUNCTION wam_internal.event_detail_truncate_trigger() IS 'trigger: empties wam.event_detail with wam.event';
CREATE TRIGGER event_detail_truncate AFTER TRUNCATE ON wam.event
	FOR EACH STATEMENT EXECUTE FUNCTION wam_internal.event_detail_truncate_trigger();
REVOKE EXECUTE ON FUNCTION wam_internal.event_detail_truncate_trigger() FROM PUBLIC;

-- customers

CREATE FUNCTION wam_internal.time_zone_name(name text) RETURNS text
	AS 'MODULE_PATHNAME', 'wam_time_zone_name' LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION wam_internal.time_zone_name(text) IS 'the time zone name as pg_timezone_names spells it (matched without case), NULL if it is not one (POSIX specifications such as UTC+8 are not names); the names are read once per session';

REVOKE EXECUTE ON FUNCTION wam_internal.time_zone_name(text) FROM PUBLIC;

CREATE FUNCTION wam.upsert_customer(phone text, name text DEFAULT NULL, locale text DEFAULT NULL,
									time_zone text DEFAULT NULL, default_country text DEFAULT NULL)
	RETURNS bigint
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	e164 text;
	zone text;
	loc text;
	parts text[];
	new_id bigint;
BEGIN
	IF phone IS NULL THEN
		RAISE EXCEPTION 'phone must not be null' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	-- raises 22023 with the reason for an invalid number or default country
	e164 := wam.normalize_phone(phone, default_country);
	-- the name goes into message templates, whose parameters may not hold
	-- line breaks or tabs (the Cloud API rejects the message)
	name := btrim(name);
	IF name ~ '[\x01-\x1f\x7f]' THEN
		RAISE EXCEPTION 'customer name must not contain control characters such as line breaks or tabs'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	-- locale: language[-Script][-REGION] (BCP 47; "_" as in WhatsApp's
	-- template languages works too), stored in the usual letter case
	locale := btrim(locale);
	IF locale <> '' THEN
		IF locale !~* '^[a-z]{2,3}([-_][a-z]{4})?([-_]([a-z]{2}|[0-9]{3}))?$'
		   OR (locale LIKE '%-%' AND locale LIKE '%\_%') THEN
			RAISE EXCEPTION 'invalid locale "%"', left(locale, 100)
				USING ERRCODE = 'invalid_parameter_value',
					  HINT = 'Use a language code with an optional script and region, e.g. en, pt-BR, zh-Hant-TW or pt_BR.';
		END IF;
		parts := regexp_split_to_array(locale, '[-_]');
		loc := lower(parts[1]);
		FOR i IN 2 .. cardinality(parts) LOOP
			loc := loc || CASE WHEN locale LIKE '%\_%' THEN '_' ELSE '-' END
				   || CASE WHEN length(parts[i]) = 4 THEN initcap(parts[i]) ELSE upper(parts[i]) END;
		END LOOP;
	ELSE
		loc := locale;
	END IF;
	time_zone := btrim(time_zone);
	IF time_zone <> '' THEN
		zone := wam_internal.time_zone_name(time_zone);
		IF zone IS NULL THEN
			RAISE EXCEPTION 'time zone "%" is not recognized', left(time_zone, 100)
				USING ERRCODE = 'invalid_parameter_value',
					  HINT = 'Use a name from pg_timezone_names, e.g. Asia/Hong_Kong or America/Sao_Paulo.';
		END IF;
	ELSE
		zone := time_zone;
	END IF;
	-- NULL keeps the stored value, '' clears it
	INSERT INTO wam.customer AS c (phone, name, locale, time_zone)
	VALUES (e164, nullif(name, ''), nullif(loc, ''), nullif(zone, ''))
	ON CONFLICT ON CONSTRAINT customer_phone_key DO UPDATE
	SET name = CASE WHEN name IS NULL THEN c.name ELSE EXCLUDED.name END,
		locale = CASE WHEN loc IS NULL THEN c.locale ELSE EXCLUDED.locale END,
		time_zone = CASE WHEN zone IS NULL THEN c.time_zone ELSE EXCLUDED.time_zone END
	RETURNING c.id INTO new_id;
	RETURN new_id;
END
$$;
COMMENT ON FUNCTION wam.upsert_customer(text, text, text, text, text) IS 'creates or updates a customer by phone; returns the customer id';

REVOKE EXECUTE ON FUNCTION wam.upsert_customer(text, text, text, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.upsert_customer(text, text, text, text, text) TO wam_operator;

-- orders and purchase statistics

CREATE TABLE wam.customer_order (
	customer_id bigint NOT NULL REFERENCES wam.customer ON DELETE CASCADE,
	order_id bigint GENERATED BY DEFAULT AS IDENTITY,
	ordered_at timestamptz NOT NULL,
	amount numeric NOT NULL
		CONSTRAINT customer_order_amount CHECK (amount >= 0 AND amount < 'Infinity'),
	currency text CONSTRAINT customer_order_currency CHECK (currency ~ '^[A-Z]{3}$'),
	coupon_used boolean NOT NULL DEFAULT false,
	units integer NOT NULL DEFAULT 1 CONSTRAINT customer_order_units CHECK (units > 0),
	details jsonb,
	recorded_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	PRIMARY KEY (customer_id, order_id)
);
CREATE INDEX customer_order_time ON wam.customer_order (customer_id, ordered_at);
COMMENT ON TABLE wam.customer_order IS 'orders (write with wam.record_order, or in bulk with INSERT or COPY)';
COMMENT ON COLUMN wam.customer_order.units IS 'items in the order (details->>''units'', else the sum of details->''products''[].quantity, else 1): the unit price is amount / units';

REVOKE ALL ON wam.customer_order FROM PUBLIC;
GRANT SELECT ON wam.customer_order TO wam_reader;
GRANT SELECT, INSERT ON wam.customer_order TO wam_definer;
GRANT USAGE ON SEQUENCE wam.customer_order_order_id_seq TO wam_definer;

-- The statistics are maintained by statement triggers on wam.customer_order
-- from the new rows alone (never from all orders), so every way of writing
-- orders -- wam.record_order, a bulk INSERT ... SELECT, COPY -- keeps them
-- exact; updates and deletes of orders (corrections, refunds: rare) recompute
-- the customers concerned.
CREATE TABLE wam.customer_stats (
	customer_id bigint PRIMARY KEY REFERENCES wam.customer ON DELETE CASCADE,
	orders bigint NOT NULL,
	order_days integer NOT NULL,
	first_order_at timestamptz NOT NULL,
	last_order_at timestamptz NOT NULL,
	first_day date NOT NULL,
	last_day date NOT NULL,
	first_day_amount numeric NOT NULL,
	total_amount numeric NOT NULL,
	coupon_orders bigint NOT NULL,
	units bigint NOT NULL,
	recent_orders timestamptz[] NOT NULL DEFAULT '{}'
) WITH (fillfactor = 90);
COMMENT ON TABLE wam.customer_stats IS 'per-customer purchase statistics, maintained from each new order';
COMMENT ON COLUMN wam.customer_stats.order_days IS 'distinct purchase days (calendar days in the day_time_zone setting)';
COMMENT ON COLUMN wam.customer_stats.first_day_amount IS 'spend on the first purchase day (excluded from the Gamma-Gamma monetary value)';
COMMENT ON COLUMN wam.customer_stats.recent_orders IS 'times of the orders in the 30 days before the last update; count those after now() - 30 days for orders in the last 30 days';

REVOKE ALL ON wam.customer_stats FROM PUBLIC;
GRANT SELECT ON wam.customer_stats TO wam_reader;
GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON wam.customer_stats TO wam_definer;

-- purchase statistics maintenance

-- Statistics writers of one customer serialize on wam_internal.lock_key(2, customer
-- id), a transaction-level lock in the extension's own lock space.

-- The statistics as computed from all orders: the reference the incremental
-- maintenance is checked against, and what corrections and rebuilds write.
CREATE FUNCTION wam_internal.order_stats_from_orders(customers bigint[], zone text)
	RETURNS SETOF wam.customer_stats
	LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, wam, pg_temp
AS $$
	SELECT o.customer_id, count(*), count(DISTINCT o.day)::integer, min(o.ordered_at), max(o.ordered_at),
		   min(o.day), max(o.day), sum(o.amount) FILTER (WHERE o.day = o.first_day), sum(o.amount),
		   count(*) FILTER (WHERE o.coupon_used), sum(o.units),
		   coalesce(array_agg(o.ordered_at ORDER BY o.ordered_at)
						FILTER (WHERE o.ordered_at > now() - interval '30 days'), '{}')
	FROM (SELECT x.customer_id, x.ordered_at, x.amount, x.coupon_used, x.units,
				 (x.ordered_at AT TIME ZONE zone)::date AS day,
				 min((x.ordered_at AT TIME ZONE zone)::date) OVER (PARTITION BY x.customer_id) AS first_day
		  FROM wam.customer_order x
		  WHERE customers IS NULL OR x.customer_id = ANY (customers)) o
	GROUP BY o.customer_id
$$;
COMMENT ON FUNCTION wam_internal.order_stats_from_orders(bigint[], text) IS 'internal: purchase statistics recomputed from all orders of the given customers (NULL: all)';

REVOKE EXECUTE ON FUNCTION wam_internal.order_stats_from_orders(bigint[], text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam_internal.order_stats_from_orders(bigint[], text) TO wam_reader;

CREATE FUNCTION wam_internal.lock_order_stats(customers bigint[]) RETURNS void
	LANGUAGE plpgsql SET search_path = pg_catalog, wam, pg_temp
AS $$
BEGIN
	-- a lock per customer for a few customers, the whole table for many
	-- (a bulk load would exhaust the lock table)
	IF customers IS NULL OR cardinality(customers) > 64 THEN
		LOCK TABLE wam.customer_stats IN SHARE ROW EXCLUSIVE MODE;
	ELSE
		PERFORM wam_internal.lock_key(2, c)
		FROM (SELECT DISTINCT c FROM unnest(customers) c ORDER BY 1) x;
	END IF;
END
$$;
COMMENT ON FUNCTION wam_internal.lock_order_stats(bigint[]) IS 'internal: serializes statistics writers of the given customers (NULL: all)';

REVOKE EXECUTE ON FUNCTION wam_internal.lock_order_stats(bigint[]) FROM PUBLIC;

CREATE FUNCTION wam.recompute_order_stats(customers bigint[] DEFAULT NULL) RETURNS bigint
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	zone text := (SELECT s.day_time_zone FROM wam.rfm_config s);
	n bigint;
BEGIN
	PERFORM wam_internal.lock_order_stats(customers);
	IF customers IS NULL THEN
		DELETE FROM wam.customer_stats;
	ELSE
		DELETE FROM wam.customer_stats s WHERE s.customer_id = ANY (customers);
	END IF;
	INSERT INTO wam.customer_stats SELECT * FROM wam_internal.order_stats_from_orders(customers, zone);
	GET DIAGNOSTICS n = ROW_COUNT;
	UPDATE wam.customer c SET first_order_at = s.first_order_at, last_order_at = s.last_order_at
	FROM (SELECT k.id, st.first_order_at, st.last_order_at
		  FROM wam.customer k LEFT JOIN wam.customer_stats st ON st.customer_id = k.id
		  -- all: the customers with orders (others keep what they were given);
		  -- a list: also clears the first/last order of those left without orders
		  WHERE (customers IS NULL AND st.customer_id IS NOT NULL) OR k.id = ANY (customers)) s
	WHERE c.id = s.id
	  AND (c.first_order_at IS DISTINCT FROM s.first_order_at OR c.last_order_at IS DISTINCT FROM s.last_order_at);
	RETURN n;
END
$$;
COMMENT ON FUNCTION wam.recompute_order_stats(bigint[]) IS 'rebuilds purchase statistics from the orders (NULL: everyone)';

REVOKE EXECUTE ON FUNCTION wam.recompute_order_stats(bigint[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.recompute_order_stats(bigint[]) TO wam_admin;

CREATE FUNCTION wam.verify_order_stats()
	RETURNS TABLE (customers bigint, mismatched bigint, example bigint, ok boolean)
	LANGUAGE sql STABLE PARALLEL SAFE SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
	WITH truth AS (
		SELECT * FROM wam_internal.order_stats_from_orders(NULL, (SELECT day_time_zone FROM wam.rfm_config))
	), cmp AS (
		SELECT coalesce(s.customer_id, t.customer_id) AS customer_id,
			   s.customer_id IS NULL OR t.customer_id IS NULL
			   OR (s.orders, s.order_days, s.first_order_at, s.last_order_at, s.first_day, s.last_day,
				   s.first_day_amount, s.total_amount, s.coupon_orders, s.units,
				   wam_internal.count_since(s.recent_orders, now() - interval '30 days'))
				  IS DISTINCT FROM
				  (t.orders, t.order_days, t.first_order_at, t.last_order_at, t.first_day, t.last_day,
				   t.first_day_amount, t.total_amount, t.coupon_orders, t.units,
				   wam_internal.count_since(t.recent_orders, now() - interval '30 days'))
			   OR c.first_order_at IS DISTINCT FROM s.first_order_at
			   OR c.last_order_at IS DISTINCT FROM s.last_order_at AS bad
		FROM wam.customer_stats s
		FULL JOIN truth t ON t.customer_id = s.customer_id
		LEFT JOIN wam.customer c ON c.id = coalesce(s.customer_id, t.customer_id)
	)
	SELECT count(*), count(*) FILTER (WHERE bad), min(customer_id) FILTER (WHERE bad),
		   count(*) FILTER (WHERE bad) = 0
	FROM cmp
$$;
COMMENT ON FUNCTION wam.verify_order_stats() IS 'checks the purchase statistics against all orders';

REVOKE EXECUTE ON FUNCTION wam.verify_order_stats() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.verify_order_stats() TO wam_reader;

-- Statement trigger: merges the new orders into the statistics.  Only the
-- new rows are read, plus, for a purchase day strictly between a customer's
-- first and last, that day's earlier orders (index customer_order_time).
-- A single order (wam.record_order) takes a short path that updates the
-- customer's row in place; several are merged by one set-based statement.
-- The table's fillfactor leaves room for HOT updates of statistics rows.
CREATE FUNCTION wam_internal.order_stats_insert_trigger() RETURNS trigger
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
DECLARE
	zone text;
	n_rows bigint;
	customers bigint[];
	c bigint;
	t timestamptz;
	amt numeric;
	coupon boolean;
	n_units integer;
	d date;
	st wam.customer_stats;
	new_day boolean;
	recent_since timestamptz := now() - interval '30 days';
BEGIN
	-- restored rows already carry their effects (src/backup.c)
	IF wam_internal.restoring() THEN
		RETURN NULL;
	END IF;
	SELECT s.day_time_zone, x.n, o.customer_id, o.ordered_at, o.amount, o.coupon_used, o.units
	INTO zone, n_rows, c, t, amt, coupon, n_units
	FROM wam.rfm_config s
	CROSS JOIN (SELECT count(*) AS n FROM new_orders) x
	LEFT JOIN LATERAL (SELECT * FROM new_orders LIMIT 1) o ON true;

	IF n_rows = 1 THEN
		-- one order (wam.record_order): update the customer's row in place.
		-- The table lock comes first, so that the row is read after any bulk
		-- writer (SHARE ROW EXCLUSIVE, below) has committed; the customer's
		-- lock serializes writers of this customer.
		LOCK TABLE wam.customer_stats IN ROW EXCLUSIVE MODE;
		PERFORM wam_internal.lock_key(2, c);
		d := (t AT TIME ZONE zone)::date;
		SELECT * INTO st FROM wam.customer_stats s WHERE s.customer_id = c;
		IF NOT FOUND THEN
			INSERT INTO wam.customer_stats (customer_id, orders, order_days, first_order_at, last_order_at,
				first_day, last_day, first_day_amount, total_amount, coupon_orders, units, recent_orders)
			VALUES (c, 1, 1, t, t, d, d, amt, amt, coupon::integer, n_units,
					CASE WHEN t > recent_since THEN ARRAY[t] ELSE '{}' END);
			UPDATE wam.customer k SET first_order_at = t, last_order_at = t
			WHERE k.id = c AND (k.first_order_at IS DISTINCT FROM t OR k.last_order_at IS DISTINCT FROM t);
			RETURN NULL;
		END IF;
		IF d < st.first_day OR d > st.last_day THEN
			new_day := true;
		ELSIF d = st.first_day OR d = st.last_day THEN
			new_day := false;
		ELSE
			-- between the first and the last day: new unless it had orders before
			new_day := (SELECT count(*) FROM wam.customer_order x
						WHERE x.customer_id = c AND x.ordered_at >= (d::timestamp AT TIME ZONE zone)
						  AND x.ordered_at < ((d + 1)::timestamp AT TIME ZONE zone)) <= 1;
		END IF;
		st.first_day_amount := CASE WHEN d < st.first_day THEN amt
									WHEN d = st.first_day THEN st.first_day_amount + amt
									ELSE st.first_day_amount END;
		IF t > recent_since OR (cardinality(st.recent_orders) > 0 AND st.recent_orders[1] <= recent_since) THEN
			IF t > recent_since AND (cardinality(st.recent_orders) = 0
				OR (st.recent_orders[1] > recent_since AND st.recent_orders[cardinality(st.recent_orders)] <= t)) THEN
				st.recent_orders := st.recent_orders || t;
			ELSE
				st.recent_orders := ARRAY(SELECT y FROM unnest(st.recent_orders || t) y
										  WHERE y > recent_since ORDER BY y);
			END IF;
		END IF;
		WITH up AS (
			UPDATE wam.customer_stats s
			SET orders = st.orders + 1, order_days = st.order_days + new_day::integer,
				first_order_at = least(st.first_order_at, t), last_order_at = greatest(st.last_order_at, t),
				first_day = least(st.first_day, d), last_day = greatest(st.last_day, d),
				first_day_amount = st.first_day_amount, total_amount = st.total_amount + amt,
				coupon_orders = st.coupon_orders + coupon::integer, units = st.units + n_units,
				recent_orders = st.recent_orders
			WHERE s.customer_id = c
			RETURNING s.first_order_at, s.last_order_at
		)
		UPDATE wam.customer k SET first_order_at = up.first_order_at, last_order_at = up.last_order_at
		FROM up
		WHERE k.id = c
		  AND (k.first_order_at IS DISTINCT FROM up.first_order_at OR k.last_order_at IS DISTINCT FROM up.last_order_at);
		RETURN NULL;
	END IF;

	-- several orders (bulk loads, multi-row INSERTs): one set-based merge
	customers := ARRAY(SELECT DISTINCT n.customer_id FROM new_orders n ORDER BY 1 LIMIT 65);
	PERFORM wam_internal.lock_order_stats(customers);

	WITH o AS (
		SELECT n.customer_id, n.ordered_at, n.amount, n.coupon_used, n.units,
			   (n.ordered_at AT TIME ZONE zone)::date AS day
		FROM new_orders n
	), d AS (				-- the new orders per customer and day
		SELECT o.customer_id, o.day, count(*) AS orders, sum(o.amount) AS amount
		FROM o GROUP BY 1, 2
	), b AS (				-- the new orders per customer
		SELECT o.customer_id, count(*) AS orders, sum(o.amount) AS amount,
			   count(*) FILTER (WHERE o.coupon_used) AS coupon_orders, sum(o.units) AS units,
			   min(o.ordered_at) AS first_at, max(o.ordered_at) AS last_at,
			   min(o.day) AS first_day, max(o.day) AS last_day,
			   array_agg(o.ordered_at ORDER BY o.ordered_at)
				   FILTER (WHERE o.ordered_at > now() - interval '30 days') AS recent
		FROM o GROUP BY 1
	), nd AS (				-- how many of those days are new purchase days; spend on the batch's first day
		SELECT d.customer_id,
			   count(*) FILTER (WHERE CASE
				   WHEN s.customer_id IS NULL OR d.day < s.first_day OR d.day > s.last_day THEN true
				   WHEN d.day = s.first_day OR d.day = s.last_day THEN false
				   -- between the first and the last day: new unless it had orders before
				   ELSE (SELECT count(*) FROM wam.customer_order x
						 WHERE x.customer_id = d.customer_id
						   AND x.ordered_at >= (d.day::timestamp AT TIME ZONE zone)
						   AND x.ordered_at < ((d.day + 1)::timestamp AT TIME ZONE zone)) <= d.orders
				   END) AS new_days,
			   sum(d.amount) FILTER (WHERE d.day = b.first_day) AS first_day_amount
		FROM d
		JOIN b ON b.customer_id = d.customer_id
		LEFT JOIN wam.customer_stats s ON s.customer_id = d.customer_id
		GROUP BY d.customer_id
	), up AS (
		INSERT INTO wam.customer_stats AS t (customer_id, orders, order_days, first_order_at, last_order_at,
			first_day, last_day, first_day_amount, total_amount, coupon_orders, units, recent_orders)
		SELECT b.customer_id,
			   coalesce(s.orders, 0) + b.orders,
			   coalesce(s.order_days, 0) + nd.new_days,
			   least(s.first_order_at, b.first_at),
			   greatest(s.last_order_at, b.last_at),
			   least(s.first_day, b.first_day),
			   greatest(s.last_day, b.last_day),
			   CASE WHEN s.customer_id IS NULL OR b.first_day < s.first_day THEN nd.first_day_amount
					WHEN b.first_day = s.first_day THEN s.first_day_amount + nd.first_day_amount
					ELSE s.first_day_amount END,
			   coalesce(s.total_amount, 0) + b.amount,
			   coalesce(s.coupon_orders, 0) + b.coupon_orders,
			   coalesce(s.units, 0) + b.units,
			   CASE WHEN b.recent IS NULL
						 AND (s.recent_orders IS NULL OR cardinality(s.recent_orders) = 0
							  OR s.recent_orders[1] > now() - interval '30 days')
					THEN coalesce(s.recent_orders, '{}')
					ELSE ARRAY(SELECT x FROM unnest(coalesce(s.recent_orders, '{}') || coalesce(b.recent, '{}')) x
							   WHERE x > now() - interval '30 days' ORDER BY x) END
		FROM b
		JOIN nd ON nd.customer_id = b.customer_id
		LEFT JOIN wam.customer_stats s ON s.customer_id = b.customer_id
		ON CONFLICT (customer_id) DO UPDATE
		SET orders = EXCLUDED.orders, order_days = EXCLUDED.order_days,
			first_order_at = EXCLUDED.first_order_at, last_order_at = EXCLUDED.last_order_at,
			first_day = EXCLUDED.first_day, last_day = EXCLUDED.last_day,
			first_day_amount = EXCLUDED.first_day_amount, total_amount = EXCLUDED.total_amount,
			coupon_orders = EXCLUDED.coupon_orders, units = EXCLUDED.units,
			recent_orders = EXCLUDED.recent_orders
		RETURNING t.customer_id, t.first_order_at, t.last_order_at
	)
	UPDATE wam.customer c SET first_order_at = up.first_order_at, last_order_at = up.last_order_at
	FROM up
	WHERE c.id = up.customer_id
	  AND (c.first_order_at IS DISTINCT FROM up.first_order_at OR c.last_order_at IS DISTINCT FROM up.last_order_at);
	RETURN NULL;
END
$$;
COMMENT ON FUNCTION wam_internal.order_stats_insert_trigger() IS 'trigger: merges newly inserted orders into wam.customer_stats and wam.customer first/last order';

CREATE FUNCTION wam_internal.order_stats_change_trigger() RETURNS trigger
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
BEGIN
	-- corrections and refunds are rare: recompute the customers concerned
	IF TG_OP = 'DELETE' THEN
		PERFORM wam.recompute_order_stats(ARRAY(SELECT DISTINCT o.customer_id FROM old_orders o));
	ELSE
		PERFORM wam.recompute_order_stats(ARRAY(SELECT o.customer_id FROM old_orders o
												UNION SELECT n.customer_id FROM new_orders n));
	END IF;
	RETURN NULL;
END
$$;
COMMENT ON FUNCTION wam_internal.order_stats_change_trigger() IS 'trigger: recomputes the statistics of customers whose orders were updated or deleted';

CREATE FUNCTION wam_internal.order_stats_truncate_trigger() RETURNS trigger
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
BEGIN
	TRUNCATE wam.customer_stats;
	UPDATE wam.customer SET first_order_at = NULL, last_order_at = NULL
	WHERE first_order_at IS NOT NULL OR last_order_at IS NOT NULL;
	RETURN NULL;
END
$$;
COMMENT ON FUNCTION wam_internal.order_stats_truncate_trigger() IS 'trigger: empties the statistics with the orders';

CREATE TRIGGER order_stats_insert AFTER INSERT ON wam.customer_order
	REFERENCING NEW TABLE AS new_orders FOR EACH STATEMENT EXECUTE FUNCTION wam_internal.order_stats_insert_trigger();

REVOKE EXECUTE ON FUNCTION wam_internal.order_stats_insert_trigger() FROM PUBLIC;
CREATE TRIGGER order_stats_update AFTER UPDATE ON wam.customer_order
	REFERENCING OLD TABLE AS old_orders NEW TABLE AS new_orders
	FOR EACH STATEMENT EXECUTE FUNCTION wam_internal.order_stats_change_trigger();
CREATE TRIGGER order_stats_delete AFTER DELETE ON wam.customer_order
	REFERENCING OLD TABLE AS old_orders FOR EACH STATEMENT EXECUTE FUNCTION wam_internal.order_stats_change_trigger();

REVOKE EXECUTE ON FUNCTION wam_internal.order_stats_change_trigger() FROM PUBLIC;
CREATE TRIGGER order_stats_truncate AFTER TRUNCATE ON wam.customer_order
	FOR EACH STATEMENT EXECUTE FUNCTION wam_internal.order_stats_truncate_trigger();

REVOKE EXECUTE ON FUNCTION wam_internal.order_stats_truncate_trigger() FROM PUBLIC;

-- Every new order row, however written (wam.record_order, INSERT, INSERT ...
-- SELECT, COPY), becomes exactly one "order" event, so event rules and
-- behaviour predicates see bulk loads as they see single orders.  One
-- statement per insert statement, from its transition table.  Triggers of one
-- event fire in name order: order_to_events sorts after order_stats_insert, so
-- rules that the events fire read statistics that already count the orders.
-- A restore loads the events with the orders (both are dumped): nothing then.
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

-- orders

CREATE FUNCTION wam.record_order(customer bigint, amount numeric, ordered_at timestamptz DEFAULT now(),
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
COMMENT ON FUNCTION wam.record_order(bigint, numeric, timestamptz, boolean, jsonb) IS 'records an order and updates the purchase statistics; returns its id';

REVOKE EXECUTE ON FUNCTION wam.record_order(bigint, numeric, timestamptz, boolean, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.record_order(bigint, numeric, timestamptz, boolean, jsonb) TO wam_operator;

CREATE TABLE wam.customer_user_id (
	user_id text PRIMARY KEY,
	customer_id bigint NOT NULL REFERENCES wam.customer ON DELETE CASCADE
);
COMMENT ON TABLE wam.customer_user_id IS 'business-scoped user ids seen with a customer''s phone';

REVOKE ALL ON wam.customer_user_id FROM PUBLIC;
GRANT SELECT ON wam.customer_user_id TO wam_reader;
GRANT SELECT, INSERT, UPDATE ON wam.customer_user_id TO wam_definer;

-- consent

CREATE FUNCTION wam.record_consent(customer bigint, source text) RETURNS timestamptz
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	result timestamptz;
BEGIN
	PERFORM wam_internal.refuse_null(customer IS NULL, 'customer');
	IF source IS NULL OR btrim(source) = '' THEN
		RAISE EXCEPTION 'the source of the consent must be recorded'
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Say where the customer agreed, e.g. ''website form'' or ''in-store sign-up''.';
	END IF;
	UPDATE wam.customer c SET consent_at = pg_catalog.now(), consent_source = source,
							  opted_out_at = NULL, opt_out_reason = NULL
	WHERE c.id = customer
	RETURNING c.consent_at INTO result;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'customer % does not exist', customer USING ERRCODE = 'foreign_key_violation';
	END IF;
	INSERT INTO wam.event (customer_id, kind, details)
	VALUES (customer, 'consent', jsonb_build_object('source', source));
	RETURN result;
END
$$;
COMMENT ON FUNCTION wam.record_consent(bigint, text) IS 'records a customer''s marketing consent and where it was given';

REVOKE EXECUTE ON FUNCTION wam.record_consent(bigint, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.record_consent(bigint, text) TO wam_operator;

CREATE FUNCTION wam.record_opt_out(customer bigint, reason text) RETURNS bigint
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	n bigint;
BEGIN
	PERFORM wam_internal.refuse_null(customer IS NULL, 'customer');
	IF reason IS NULL OR btrim(reason) = '' THEN
		RAISE EXCEPTION 'a reason for the opt-out must be recorded' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	UPDATE wam.customer c SET opted_out_at = coalesce(c.opted_out_at, pg_catalog.now()), opt_out_reason = reason
	WHERE c.id = customer;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'customer % does not exist', customer USING ERRCODE = 'foreign_key_violation';
	END IF;
	INSERT INTO wam.event (customer_id, kind, details)
	VALUES (customer, 'opt_out', jsonb_build_object('reason', reason));
	-- nothing more goes out to this customer
	UPDATE wam.outbox o SET status = 'cancelled', cancelled_at = pg_catalog.now(),
							error_detail = 'customer opted out'
	WHERE o.customer_id = customer AND o.status IN ('queued', 'retrying');
	GET DIAGNOSTICS n = ROW_COUNT;
	RETURN n;
END
$$;
COMMENT ON FUNCTION wam.record_opt_out(bigint, text) IS 'records an opt-out and cancels waiting messages; returns how many';

REVOKE EXECUTE ON FUNCTION wam.record_opt_out(bigint, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.record_opt_out(bigint, text) TO wam_operator;
