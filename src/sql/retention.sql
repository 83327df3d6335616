-- src/sql/retention.sql: monthly partitions of the tables that grow with
-- traffic (wam.event, wam.inbound_message), their retention and the daily
-- roll-ups that outlive the dropped months (see src/partition.c).
--
-- A partition per calendar month (UTC) of the event or receipt time: the
-- windows that read these tables ("within 7d", the 24-hour window, the
-- 90 days of tag health) prune to one or two months, and retention drops a
-- month as a whole (no DELETE, no bloat, no vacuum debt).  The install
-- script creates only the default partition: the months are created by the
-- "maintain partitions" job (wam.maintain_partitions), never by CREATE
-- EXTENSION, so that they are ordinary tables that pg_dump dumps with their
-- rows and a restore (CREATE EXTENSION on another day, then the dumped
-- months) never collides with months the new installation made.
--
-- wam.outbox is not partitioned: a status webhook finds its message by wamid,
-- and without global indexes (PostgreSQL 15 has none) a partitioned outbox
-- would probe every kept partition's index on each status, a cost that grows
-- with the retention.  Its retention deletes instead: terminal messages
-- enqueued before the horizon, oldest first through the B-tree on created_at,
-- at most 500,000 per run, rolled up per day, sender, campaign, variant,
-- status and error code into wam.outbox_daily in the same statement.  Waiting,
-- sending and uncertain messages are never removed, whatever their age.

CREATE TABLE wam.retention (
	table_name text PRIMARY KEY CONSTRAINT retention_table CHECK (table_name IN ('event', 'inbound_message', 'outbox')),
	-- the reports read at most 90 days back (tag health's interaction
	-- frequency, the referral checks): a shorter horizon would change them
	keep interval CONSTRAINT retention_keep CHECK (keep >= interval '90 days'),
	premake integer DEFAULT 2 CONSTRAINT retention_premake CHECK (premake BETWEEN 1 AND 24),
	description text NOT NULL,
	-- wam.outbox has no partitions to make ahead
	CONSTRAINT retention_premake_partitioned CHECK ((premake IS NULL) = (table_name = 'outbox'))
);
COMMENT ON TABLE wam.retention IS 'per growing table: how long its rows are kept and, for the partitioned ones, how many months ahead partitions are created (change with UPDATE)';
COMMENT ON COLUMN wam.retention.keep IS 'rows older than this are rolled up and dropped, a month at a time once the whole month is past (wam.outbox: terminal messages enqueued before, deleted up to 500,000 per run); NULL: kept forever (at least 90 days)';
COMMENT ON COLUMN wam.retention.premake IS 'months after the current one whose partitions exist ahead (NULL for wam.outbox, which is not partitioned)';

INSERT INTO wam.retention (table_name, keep, premake, description) VALUES
	('event', NULL, 2, 'behaviour events; rolled up per day and kind into wam.event_daily'),
	('inbound_message', NULL, 2, 'inbound messages; rolled up per day, sender and type into wam.inbound_daily'),
	('outbox', NULL, NULL, 'outbound messages in a final state (sent, delivered, read, failed, cancelled, expired); rolled up per day, sender, campaign, variant, status and error code into wam.outbox_daily');

GRANT SELECT ON wam.retention TO wam_reader;
GRANT UPDATE (keep, premake) ON wam.retention TO wam_admin;
GRANT SELECT ON wam.retention TO wam_definer;

-- The facts of dropped months: what a report over such a period can still
-- read.  Days are UTC days.  Rows that arrive late for a rolled-up day (an
-- event dated long ago) add to its counts, so "customers" may then count a
-- customer twice.
CREATE TABLE wam.event_daily (
	day date NOT NULL,
	kind text NOT NULL,
	events bigint NOT NULL,
	customers bigint NOT NULL,
	PRIMARY KEY (day, kind)
);
COMMENT ON TABLE wam.event_daily IS 'per UTC day and kind: events and distinct customers of the events retention removed';

GRANT SELECT ON wam.event_daily TO wam_reader;
GRANT SELECT, INSERT, UPDATE ON wam.event_daily TO wam_definer;

CREATE TABLE wam.inbound_daily (
	day date NOT NULL,
	sender_id integer,
	kind text,
	messages bigint NOT NULL,
	customers bigint NOT NULL,
	replies bigint NOT NULL,
	opted_out bigint NOT NULL
);
CREATE UNIQUE INDEX inbound_daily_key ON wam.inbound_daily (day, sender_id, kind) NULLS NOT DISTINCT;
COMMENT ON TABLE wam.inbound_daily IS 'per UTC day, sender and message type: inbound messages, distinct customers, replies and opt-outs of the messages retention removed';

GRANT SELECT ON wam.inbound_daily TO wam_reader;
GRANT SELECT, INSERT, UPDATE ON wam.inbound_daily TO wam_definer;

CREATE FUNCTION wam_internal.create_partition(parent regclass, name text, lo text, hi text) RETURNS bigint
	AS 'MODULE_PATHNAME', 'wam_create_partition' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION wam_internal.create_partition(regclass, text, text, text) IS 'internal: creates a partition of an extension table, as the table''s owner, moving its rows out of the default partition';

REVOKE EXECUTE ON FUNCTION wam_internal.create_partition(regclass, text, text, text) FROM PUBLIC;

CREATE FUNCTION wam_internal.drop_partition(part regclass) RETURNS void
	AS 'MODULE_PATHNAME', 'wam_drop_partition' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION wam_internal.drop_partition(regclass) IS 'internal: drops a partition (not the default one) of an extension table, as the table''s owner';

REVOKE EXECUTE ON FUNCTION wam_internal.drop_partition(regclass) FROM PUBLIC;

-- The partitions of a table with their bounds, read back from the catalog.
-- The bounds print in the time zone and date style in effect: ISO in UTC,
-- which any session reads back the same (a zone abbreviation would not).
CREATE FUNCTION wam_internal.partitions(parent regclass)
	RETURNS TABLE (part regclass, name text, lo text, hi text)
	LANGUAGE sql STABLE SET search_path = pg_catalog, wam, pg_temp SET "TimeZone" = 'UTC' SET "DateStyle" = 'ISO'
BEGIN ATOMIC
	SELECT c.oid::regclass, c.relname::text, b[1], b[2]
	FROM pg_catalog.pg_inherits i
		 JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid
		 CROSS JOIN LATERAL pg_catalog.regexp_match(pg_catalog.pg_get_expr(c.relpartbound, c.oid),
													'FROM \(''?([^'')]*)''?\) TO \(''?([^'')]*)''?\)') b
	WHERE i.inhparent = parent AND b IS NOT NULL
	ORDER BY c.relname;
END;
COMMENT ON FUNCTION wam_internal.partitions(regclass) IS 'internal: the partitions of a table other than the default one, with their bounds as text';

REVOKE EXECUTE ON FUNCTION wam_internal.partitions(regclass) FROM PUBLIC;

-- A UTC time as text any DateStyle reads back the same.
CREATE FUNCTION wam_internal.utc_literal(t timestamptz) RETURNS text
	LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp
RETURN pg_catalog.to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') || '+00';
COMMENT ON FUNCTION wam_internal.utc_literal(timestamptz) IS 'internal: a time as an ISO text literal in UTC';

REVOKE EXECUTE ON FUNCTION wam_internal.utc_literal(timestamptz) FROM PUBLIC;

-- The rows of one partition (or of the default partition before `horizon`)
-- added to the daily roll-up of their table; returns the rows rolled up.
CREATE FUNCTION wam_internal.roll_up(table_name text, part regclass, horizon timestamptz) RETURNS bigint
	LANGUAGE plpgsql SET search_path = pg_catalog, wam, pg_temp
AS $$
DECLARE
	n bigint;
	cond text := CASE WHEN horizon IS NULL THEN 'true'
					  ELSE format('%I < %L', CASE table_name WHEN 'event' THEN 'occurred_at' ELSE 'received_at' END, horizon) END;
BEGIN
	IF table_name = 'event' THEN
		EXECUTE format('WITH d AS (
							SELECT (e.occurred_at AT TIME ZONE ''UTC'')::date AS day, e.kind,
								   count(*) AS events, count(DISTINCT e.customer_id) AS customers
							FROM ONLY %s e WHERE %s GROUP BY 1, 2
						), ins AS (
							INSERT INTO wam.event_daily AS r (day, kind, events, customers)
							SELECT * FROM d
							ON CONFLICT (day, kind) DO UPDATE
								SET events = r.events + excluded.events, customers = r.customers + excluded.customers
						)
						SELECT coalesce(sum(d.events), 0) FROM d', part, cond) INTO n;
	ELSE
		EXECUTE format('WITH d AS (
							SELECT (m.received_at AT TIME ZONE ''UTC'')::date AS day, m.sender_id, m.kind,
								   count(*) AS messages, count(DISTINCT m.customer_id) AS customers,
								   count(*) FILTER (WHERE m.answered_message IS NOT NULL) AS replies,
								   count(*) FILTER (WHERE m.opted_out) AS opted_out
							FROM ONLY %s m WHERE %s GROUP BY 1, 2, 3
						), ins AS (
							INSERT INTO wam.inbound_daily AS r (day, sender_id, kind, messages, customers, replies, opted_out)
							SELECT * FROM d
							ON CONFLICT (day, sender_id, kind) DO UPDATE
								SET messages = r.messages + excluded.messages, customers = r.customers + excluded.customers,
									replies = r.replies + excluded.replies, opted_out = r.opted_out + excluded.opted_out
						)
						SELECT coalesce(sum(d.messages), 0) FROM d', part, cond) INTO n;
	END IF;
	RETURN n;
END
$$;
COMMENT ON FUNCTION wam_internal.roll_up(text, regclass, timestamptz) IS 'internal: adds a partition''s rows (or the default partition''s before a time) to the daily roll-up';

REVOKE EXECUTE ON FUNCTION wam_internal.roll_up(text, regclass, timestamptz) FROM PUBLIC;

-- Deletes up to `max_rows` terminal messages of wam.outbox enqueued before
-- `horizon`, oldest first, and adds them to wam.outbox_daily in the same
-- statement; returns how many.  Rows another session has locked (a status
-- webhook updating an old message) are left for the next run.
CREATE FUNCTION wam_internal.purge_outbox(horizon timestamptz, max_rows integer) RETURNS bigint
	LANGUAGE sql SET search_path = pg_catalog, wam, pg_temp
BEGIN ATOMIC
	WITH pick AS (
		SELECT o.message_id FROM wam.outbox o
		WHERE o.created_at < horizon
		  AND o.status IN ('sent', 'delivered', 'read', 'failed', 'cancelled', 'expired')
		ORDER BY o.created_at
		LIMIT max_rows
		FOR UPDATE SKIP LOCKED
	), gone AS (
		DELETE FROM wam.outbox o USING pick WHERE o.message_id = pick.message_id
		RETURNING o.created_at, o.sender_id, o.campaign, o.variant, o.status, o.error_code,
				  o.sent_at IS NOT NULL OR o.wamid IS NOT NULL AS sent, o.delivered_at IS NOT NULL AS delivered,
				  o.read_at IS NOT NULL AS read, o.replies > 0 AS replied
	), d AS (
		SELECT (g.created_at AT TIME ZONE 'UTC')::date AS day, g.sender_id, g.campaign, g.variant, g.status, g.error_code,
			   count(*) AS messages, count(*) FILTER (WHERE g.sent) AS sent, count(*) FILTER (WHERE g.delivered) AS delivered,
			   count(*) FILTER (WHERE g.read) AS read, count(*) FILTER (WHERE g.replied) AS replied
		FROM gone g GROUP BY 1, 2, 3, 4, 5, 6
	), ins AS (
		INSERT INTO wam.outbox_daily AS r (day, sender_id, campaign, variant, status, error_code,
										   messages, sent, delivered, read, replied)
		SELECT * FROM d
		ON CONFLICT (day, sender_id, campaign, variant, status, error_code) DO UPDATE
			SET messages = r.messages + excluded.messages, sent = r.sent + excluded.sent,
				delivered = r.delivered + excluded.delivered, read = r.read + excluded.read,
				replied = r.replied + excluded.replied
	)
	SELECT coalesce(sum(d.messages), 0)::bigint FROM d;
END;
COMMENT ON FUNCTION wam_internal.purge_outbox(timestamptz, integer) IS 'internal: deletes terminal messages enqueued before a time, oldest first, into the daily roll-up';

REVOKE EXECUTE ON FUNCTION wam_internal.purge_outbox(timestamptz, integer) FROM PUBLIC;

-- Creates the partitions of the current month and `premake` months ahead,
-- then applies retention: a month partition wholly older than `keep` is rolled
-- up and dropped; rows of the default partition older than `keep` are rolled
-- up and deleted.  Partitions straddling the horizon stay whole.  wam.outbox
-- loses up to 500,000 terminal messages enqueued before its horizon per call.
CREATE FUNCTION wam.maintain_partitions(at timestamptz DEFAULT pg_catalog.now())
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
		IF r.table_name = 'outbox' THEN
			CONTINUE WHEN r.keep IS NULL;
			n := wam_internal.purge_outbox(at - r.keep, 500000);
			IF n > 0 THEN
				table_name := r.table_name; partition_name := NULL; action := 'deleted'; rows := n;
				RETURN NEXT;
			END IF;
			CONTINUE;
		END IF;
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
COMMENT ON FUNCTION wam.maintain_partitions(timestamptz) IS 'creates the monthly partitions ahead and applies the retention of wam.retention as of a time (the "maintain partitions" job runs it hourly)';

REVOKE EXECUTE ON FUNCTION wam.maintain_partitions(timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.maintain_partitions(timestamptz) TO wam_admin;
