-- src/sql/tag_health.sql: the weekly tag health report kept as dated rows, the
-- audit of tags held by inactive customers, and splitting an overloaded tag

CREATE TABLE wam.tag_health_report (
	report_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	reported_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	customers bigint NOT NULL,
	active_tags integer NOT NULL,
	retired_tags integer NOT NULL,
	silent_tags integer NOT NULL,
	overloaded_tags integer NOT NULL,
	band text NOT NULL,
	admins integer NOT NULL,
	admins_note text NOT NULL
);
COMMENT ON TABLE wam.tag_health_report IS 'the tag health report as recorded each week (wam.record_tag_health), for comparison over time';

GRANT SELECT ON wam.tag_health_report TO wam_reader;
GRANT SELECT, INSERT ON wam.tag_health_report TO wam_definer;

CREATE TABLE wam.tag_health_report_tag (
	report_id bigint NOT NULL REFERENCES wam.tag_health_report ON DELETE CASCADE,
	tag text NOT NULL,
	dimension text NOT NULL,
	status text NOT NULL,
	members bigint NOT NULL,
	share_percent numeric NOT NULL,
	last_used timestamptz NOT NULL,
	silent boolean NOT NULL,
	overloaded boolean NOT NULL,
	PRIMARY KEY (report_id, tag)
);
COMMENT ON TABLE wam.tag_health_report_tag IS 'per tag of each recorded tag health report';

GRANT SELECT ON wam.tag_health_report_tag TO wam_reader;
GRANT SELECT, INSERT ON wam.tag_health_report_tag TO wam_definer;

CREATE FUNCTION wam.record_tag_health() RETURNS bigint
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
DECLARE
	id bigint;
BEGIN
	INSERT INTO wam.tag_health_report (customers, active_tags, retired_tags, silent_tags, overloaded_tags, band,
									   admins, admins_note)
	SELECT s.customers, s.active_tags, s.retired_tags, s.silent_tags, s.overloaded_tags, s.band,
		   s.admins, s.admins_note
	FROM wam.tag_health_summary s
	RETURNING report_id INTO id;
	INSERT INTO wam.tag_health_report_tag (report_id, tag, dimension, status, members, share_percent, last_used,
										   silent, overloaded)
	SELECT id, h.tag, h.dimension, h.status, h.members, h.share_percent, h.last_used, h.silent, h.overloaded
	FROM wam.tag_health h;
	RETURN id;
END
$$;
COMMENT ON FUNCTION wam.record_tag_health() IS 'records the tag health report as dated rows; returns the report id';

REVOKE EXECUTE ON FUNCTION wam.record_tag_health() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.record_tag_health() TO wam_operator;

-- the audit's options, checked where a schedule stores them and where the audit runs
CREATE FUNCTION wam_internal.audit_options(options jsonb) RETURNS void
	LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, wam, pg_temp
AS $$
DECLARE
	inactive interval;
BEGIN
	BEGIN
		inactive := (options->>'inactive')::interval;
	EXCEPTION WHEN invalid_datetime_format OR datetime_field_overflow OR interval_field_overflow THEN
		RAISE EXCEPTION 'audit option "inactive" must be an interval, not "%"', options->>'inactive'
			USING ERRCODE = 'invalid_parameter_value';
	END;
	IF inactive IS NOT NULL AND inactive < interval '1 day' THEN
		RAISE EXCEPTION 'audit option "inactive" must be at least 1 day, not %', inactive
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF (options->>'action') IS NOT NULL AND (options->>'action') NOT IN ('report', 'historical stock', 'remove') THEN
		RAISE EXCEPTION 'audit action must be report, historical stock or remove, not "%"', options->>'action'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
END
$$;
COMMENT ON FUNCTION wam_internal.audit_options(jsonb) IS 'internal: checks the options of the tag audit';

REVOKE EXECUTE ON FUNCTION wam_internal.audit_options(jsonb) FROM PUBLIC;

-- The audit of links to customers without interaction (no order, read or
-- inbound message, and not created, within `inactive`).  Retired tags and the
-- historical-stock tags themselves are not audited.
CREATE FUNCTION wam.audit_tags(inactive interval DEFAULT interval '180 days', action text DEFAULT 'report',
							   reason text DEFAULT NULL)
	RETURNS TABLE (tag text, links bigint, stale_links bigint, stale_percent numeric, moved bigint, removed bigint)
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	stale wam.segment;
	t record;
	gone wam.segment;
	all_gone wam.segment := '{}';
	stock text := 'historical stock';
	prior text := current_setting('wam.change_reason', true);
BEGIN
	IF reason IS NOT NULL THEN
		PERFORM set_config('wam.change_reason', reason, true);
	END IF;
	inactive := coalesce(inactive, interval '180 days');
	action := coalesce(action, 'report');
	PERFORM wam_internal.audit_options(jsonb_build_object('inactive', inactive::text, 'action', action));
	SELECT coalesce(wam.segment_agg(c.id), '{}') INTO stale FROM wam.customer c
	WHERE greatest(c.created_at, c.last_order_at, c.last_read_at, c.last_inbound_at) < now() - inactive;
	IF action = 'historical stock' AND NOT EXISTS (SELECT FROM wam.tag x WHERE x.normalized_name = wam.normalize_tag_name(stock)) THEN
		PERFORM wam.create_tag(stock, 'engagement', NULL, NULL, 'links moved by the tag audit');
	END IF;
	FOR t IN SELECT x.tag_id, x.name, wam_internal.tag_blocks_segment(x.tag_id) AS members
			 FROM wam.tag x
			 WHERE x.status = 'active' AND x.normalized_name NOT LIKE wam.normalize_tag_name(stock) || '%'
			 ORDER BY x.name
	LOOP
		tag := t.name;
		links := wam.segment_cardinality(t.members);
		gone := t.members OPERATOR(wam.&) stale;
		stale_links := wam.segment_cardinality(gone);
		stale_percent := CASE WHEN links = 0 THEN 0 ELSE round(100.0 * stale_links / links, 2) END;
		moved := 0;
		removed := 0;
		IF action <> 'report' AND stale_links > 0 THEN
			PERFORM wam.detach_tag(t.name, gone);
			all_gone := all_gone OPERATOR(wam.|) gone;
			IF action = 'historical stock' THEN
				moved := stale_links;
			ELSE
				removed := stale_links;
			END IF;
		END IF;
		RETURN NEXT;
	END LOOP;
	IF action = 'historical stock' AND NOT wam.segment_is_empty(all_gone) THEN
		PERFORM wam.attach_tag(stock, all_gone, NULL, 'rule');
	END IF;
	INSERT INTO wam.tag_log (action, tag_name, detail, reason)
	SELECT 'audit', '(all tags)',
		   jsonb_build_object('inactive', inactive::text, 'action', action,
							  'stale_customers', wam.segment_cardinality(stale),
							  'customers_moved_or_removed', wam.segment_cardinality(all_gone)),
		   reason;
	PERFORM set_config('wam.change_reason', coalesce(prior, ''), true);
END
$$;
COMMENT ON FUNCTION wam.audit_tags(interval, text, text) IS 'per tag: links to customers without interaction; action report, historical stock (move them) or remove';

REVOKE EXECUTE ON FUNCTION wam.audit_tags(interval, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.audit_tags(interval, text, text) TO wam_admin;

-- An overloaded tag (held by more than 40 % of customers) says little; it is
-- split into finer tags by a measure, in equal parts, highest first.
CREATE FUNCTION wam.split_tag(tag text, measure text, parts integer DEFAULT 3, reason text DEFAULT NULL)
	RETURNS TABLE (new_tag text, members bigint, measure_from numeric, measure_to numeric)
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	t wam.tag;
	labels text[];
	p record;
	prior text := current_setting('wam.change_reason', true);
BEGIN
	PERFORM wam_internal.refuse_null(tag IS NULL OR measure IS NULL OR parts IS NULL, 'tag, measure and parts');
	IF reason IS NOT NULL THEN
		PERFORM set_config('wam.change_reason', reason, true);
	END IF;
	SELECT * INTO t FROM wam.tag x WHERE x.tag_id = wam.tag_id(tag, true);
	IF measure NOT IN ('interaction frequency', 'order count', 'spend', 'recency') THEN
		RAISE EXCEPTION 'unknown split measure "%"', measure
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Measures: interaction frequency (events in 90 days), order count, spend (order total), recency (days since the last interaction).';
	END IF;
	IF parts < 3 OR parts > 10 THEN
		RAISE EXCEPTION 'a tag is split into 3 to 10 parts, not %', parts USING ERRCODE = 'invalid_parameter_value';
	END IF;
	labels := CASE WHEN parts = 3 THEN ARRAY['high', 'medium', 'low']
				   ELSE ARRAY(SELECT 'part ' || i FROM generate_series(1, parts) i) END;
	FOR p IN
		WITH m AS (
			SELECT s AS id,
				   CASE measure
					   WHEN 'interaction frequency' THEN
						   (SELECT count(*) FROM wam.event e WHERE e.customer_id = s AND e.occurred_at > now() - interval '90 days')::numeric
					   WHEN 'order count' THEN
						   (SELECT count(*) FROM wam.customer_order o WHERE o.customer_id = s)::numeric
					   WHEN 'spend' THEN
						   (SELECT coalesce(sum(o.amount), 0) FROM wam.customer_order o WHERE o.customer_id = s)
					   ELSE
						   -(extract(epoch FROM now() - (SELECT greatest(c.created_at, c.last_order_at, c.last_read_at, c.last_inbound_at)
															 FROM wam.customer c WHERE c.id = s)) / 86400)::numeric
				   END AS v
			FROM wam.segment_members(wam.tag_members(t.name)) s
		), ranked AS (
			SELECT id, v, ntile(parts) OVER (ORDER BY v DESC, id) AS part FROM m
		)
		SELECT r.part, wam.segment_agg(r.id) AS who, count(*) AS n, min(r.v) AS lo, max(r.v) AS hi
		FROM ranked r GROUP BY r.part ORDER BY r.part
	LOOP
		new_tag := t.name || ' - ' || measure || ' ' || labels[p.part];
		IF NOT EXISTS (SELECT FROM wam.tag x WHERE x.normalized_name = wam.normalize_tag_name(new_tag)) THEN
			PERFORM wam.create_tag(new_tag, t.dimension, t.colour, t.default_ttl,
								   format('split of "%s" by %s', t.name, measure));
		END IF;
		PERFORM wam.attach_tag(new_tag, p.who, NULL, 'rule');
		members := p.n;
		-- recency is ranked by minus the days, shown as days
		measure_from := CASE WHEN measure = 'recency' THEN round(-p.hi, 1) ELSE p.lo END;
		measure_to := CASE WHEN measure = 'recency' THEN round(-p.lo, 1) ELSE p.hi END;
		RETURN NEXT;
	END LOOP;
	INSERT INTO wam.tag_log (action, tag_id, tag_name, detail, reason)
	VALUES ('split', t.tag_id, t.name, jsonb_build_object('measure', measure, 'parts', parts), reason);
	PERFORM set_config('wam.change_reason', coalesce(prior, ''), true);
END
$$;
COMMENT ON FUNCTION wam.split_tag(text, text, integer, text) IS 'splits a tag''s members into 3 to 10 finer tags by a measure (the tag itself is kept)';

REVOKE EXECUTE ON FUNCTION wam.split_tag(text, text, integer, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.split_tag(text, text, integer, text) TO wam_admin;
