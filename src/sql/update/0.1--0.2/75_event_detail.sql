-- 75_event_detail: the index of event detail filters, wam.event_detail (src/sql/core.sql),
-- filled from the events already recorded; retention takes its rows with the events'
-- (src/sql/retention.sql).  After 70_partitions: its triggers are on the partitioned table.

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

CREATE FUNCTION wam_internal.event_detail_trigger() RETURNS trigger
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
BEGIN
	IF TG_OP IN ('UPDATE', 'DELETE') THEN
		DELETE FROM wam.event_detail d USING old_events o
		WHERE d.customer_id = o.customer_id AND d.event_id = o.event_id;
	END IF;
	-- a restore loads the detail rows themselves
	IF TG_OP IN ('INSERT', 'UPDATE') AND NOT wam_internal.restoring() THEN
		INSERT INTO wam.event_detail (customer_id, event_id, kind, key, value, occurred_at)
		SELECT n.customer_id, n.event_id, n.kind, d.key, d.value, n.occurred_at
		FROM new_events n, pg_catalog.jsonb_each(n.details) d
		WHERE pg_catalog.jsonb_typeof(n.details) = 'object'
		  AND pg_catalog.jsonb_typeof(d.value) IN ('string', 'number', 'boolean');
	END IF;
	RETURN NULL;
END
$$;
COMMENT ON FUNCTION wam_internal.event_detail_trigger() IS 'trigger: keeps wam.event_detail with the events: records the scalar detail values of inserted and changed events, removes those of deleted and changed ones';
-- "event_detail_insert" sorts before "event_rules": rules that inserted
-- events fire see their details; deleted events (a customer deleted, or an
-- administrator's DELETE) and changed ones take their detail rows with them
CREATE TRIGGER event_detail_insert AFTER INSERT ON wam.event
	REFERENCING NEW TABLE AS new_events FOR EACH STATEMENT EXECUTE FUNCTION wam_internal.event_detail_trigger();
CREATE TRIGGER event_detail_delete AFTER DELETE ON wam.event
	REFERENCING OLD TABLE AS old_events FOR EACH STATEMENT EXECUTE FUNCTION wam_internal.event_detail_trigger();
CREATE TRIGGER event_detail_update AFTER UPDATE ON wam.event
	REFERENCING OLD TABLE AS old_events NEW TABLE AS new_events FOR EACH STATEMENT
	EXECUTE FUNCTION wam_internal.event_detail_trigger();
REVOKE EXECUTE ON FUNCTION wam_internal.event_detail_trigger() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam_internal.event_detail_trigger() TO wam_operator;

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

INSERT INTO wam.event_detail (customer_id, event_id, kind, key, value, occurred_at)
SELECT e.customer_id, e.event_id, e.kind, d.key, d.value, e.occurred_at
FROM wam.event e, pg_catalog.jsonb_each(e.details) d
WHERE pg_catalog.jsonb_typeof(e.details) = 'object'
  AND pg_catalog.jsonb_typeof(d.value) IN ('string', 'number', 'boolean');
SELECT pg_catalog.pg_extension_config_dump('wam.event_detail', '');

CREATE OR REPLACE FUNCTION wam.maintain_partitions(at timestamptz DEFAULT pg_catalog.now())
	RETURNS TABLE (table_name text, partition_name text, action text, rows bigint)
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_column
DECLARE
	r wam.retention;
	parent regclass;
	month timestamptz;
	name text;
	horizon timestamptz;
	p record;
	n bigint;
BEGIN
	PERFORM wam_internal.refuse_null(at IS NULL, 'time');
	-- one maintenance at a time (the job and an administrator's call)
	PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('wam.maintain_partitions'));
	FOR r IN SELECT * FROM wam.retention ORDER BY table_name LOOP
		parent := pg_catalog.format('wam.%I', r.table_name)::regclass;
		FOR i IN 0 .. r.premake LOOP
			month := (date_trunc('month', at AT TIME ZONE 'UTC') + i * interval '1 month') AT TIME ZONE 'UTC';
			name := r.table_name || '_p' || to_char(month AT TIME ZONE 'UTC', 'YYYY_MM');
			IF NOT EXISTS (SELECT FROM wam_internal.partitions(parent) x WHERE x.lo::timestamptz = month) THEN
				n := wam_internal.create_partition(parent, name, wam_internal.utc_literal(month),
												   wam_internal.utc_literal(month + interval '1 month'));
				table_name := r.table_name; partition_name := name; action := 'created'; rows := n;
				RETURN NEXT;
			END IF;
		END LOOP;
		CONTINUE WHEN r.keep IS NULL;
		horizon := at - r.keep;
		FOR p IN SELECT x.part, x.name FROM wam_internal.partitions(parent) x
				 WHERE x.hi::timestamptz <= horizon ORDER BY x.lo::timestamptz LOOP
			n := wam_internal.roll_up(r.table_name, p.part, NULL);
			IF r.table_name = 'event' THEN
				-- the month's rows of the detail index go with it
				EXECUTE pg_catalog.format('DELETE FROM wam.event_detail d USING %s e WHERE d.customer_id OPERATOR(pg_catalog.=) e.customer_id'
										  ' AND d.event_id OPERATOR(pg_catalog.=) e.event_id', p.part);
			END IF;
			PERFORM wam_internal.drop_partition(p.part);
			table_name := r.table_name; partition_name := p.name; action := 'dropped'; rows := n;
			RETURN NEXT;
		END LOOP;
		n := wam_internal.roll_up(r.table_name, pg_catalog.format('wam.%I', r.table_name || '_default')::regclass, horizon);
		IF n > 0 THEN
			IF r.table_name = 'event' THEN
				DELETE FROM wam.event_detail d USING ONLY wam.event_default e
				WHERE d.customer_id = e.customer_id AND d.event_id = e.event_id AND e.occurred_at < horizon;
			END IF;
			EXECUTE pg_catalog.format('DELETE FROM ONLY wam.%I WHERE %I < $1', r.table_name || '_default',
									  CASE r.table_name WHEN 'event' THEN 'occurred_at' ELSE 'received_at' END)
				USING horizon;
			table_name := r.table_name; partition_name := r.table_name || '_default'; action := 'deleted'; rows := n;
			RETURN NEXT;
		END IF;
	END LOOP;
END
$$;
