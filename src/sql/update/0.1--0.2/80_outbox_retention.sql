-- 80_outbox_retention: retention of wam.outbox (src/sql/retention.sql): terminal
-- messages past wam.retention's horizon are deleted by the hourly job into the roll-up
-- wam.outbox_daily (src/sql/sender.sql), which the delivery report reads for those days.
-- The BRIN index on created_at becomes a B-tree (retention's oldest-first scan).

DROP INDEX wam.outbox_created;
-- reports and retention select by enqueue time.  A B-tree, not BRIN: retention
-- deletes the oldest rows and new ones refill their pages, after which a BRIN
-- range would match every old and new time and each purge would read the whole
-- table.  Enqueue times grow, so inserts go to the rightmost leaf (cheap).
CREATE INDEX outbox_created ON wam.outbox (created_at);
GRANT DELETE ON wam.outbox TO wam_definer;

-- The facts of the messages retention removed (wam.retention, 'outbox'): what
-- the delivery report and the campaign figures can still read for those days.
-- Days are UTC days of the enqueue time.
CREATE TABLE wam.outbox_daily (
	day date NOT NULL,
	sender_id integer NOT NULL,
	campaign text,
	variant text,
	status text NOT NULL,
	error_code integer,
	messages bigint NOT NULL,
	sent bigint NOT NULL,
	delivered bigint NOT NULL,
	read bigint NOT NULL,
	replied bigint NOT NULL
);
CREATE UNIQUE INDEX outbox_daily_key ON wam.outbox_daily (day, sender_id, campaign, variant, status, error_code)
	NULLS NOT DISTINCT;
COMMENT ON TABLE wam.outbox_daily IS 'per UTC day of enqueue, sender, campaign, variant, final status and error code: the counts of the messages retention removed from wam.outbox';
COMMENT ON COLUMN wam.outbox_daily.sent IS 'messages the API accepted (a wamid or a sent time)';

REVOKE ALL ON wam.outbox_daily FROM PUBLIC;
GRANT SELECT ON wam.outbox_daily TO wam_reader;
GRANT SELECT, INSERT, UPDATE ON wam.outbox_daily TO wam_definer;
SELECT pg_catalog.pg_extension_config_dump('wam.outbox_daily', '');

ALTER TABLE wam.retention DROP CONSTRAINT retention_table,
	ADD CONSTRAINT retention_table CHECK (table_name IN ('event', 'inbound_message', 'outbox')),
	ALTER COLUMN premake DROP NOT NULL;
ALTER TABLE wam.retention
	-- wam.outbox has no partitions to make ahead
	ADD CONSTRAINT retention_premake_partitioned CHECK ((premake IS NULL) = (table_name = 'outbox'));
COMMENT ON TABLE wam.retention IS 'per growing table: how long its rows are kept and, for the partitioned ones, how many months ahead partitions are created (change with UPDATE)';
COMMENT ON COLUMN wam.retention.keep IS 'rows older than this are rolled up and dropped, a month at a time once the whole month is past (wam.outbox: terminal messages enqueued before, deleted up to 500,000 per run); NULL: kept forever (at least 90 days)';
COMMENT ON COLUMN wam.retention.premake IS 'months after the current one whose partitions exist ahead (NULL for wam.outbox, which is not partitioned)';
INSERT INTO wam.retention (table_name, keep, premake, description) VALUES
	('outbox', NULL, NULL, 'outbound messages in a final state (sent, delivered, read, failed, cancelled, expired); rolled up per day, sender, campaign, variant, status and error code into wam.outbox_daily');

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

CREATE OR REPLACE FUNCTION wam.delivery_report(since timestamptz, until timestamptz, sender text DEFAULT NULL)
	RETURNS TABLE (sender_name text, messages bigint, sent bigint, delivered bigint, read bigint, replied bigint,
				   failed bigint, failed_by_code jsonb, pending bigint, delivery_rate numeric, read_rate numeric,
				   reply_rate numeric, delivery_health text, read_health text, reply_health text)
	LANGUAGE plpgsql STABLE SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	sid integer;
BEGIN
	IF since IS NULL OR until IS NULL THEN
		RAISE EXCEPTION 'since and until must not be null' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	IF until < since THEN
		RAISE EXCEPTION 'until must not be before since' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF sender IS NOT NULL THEN
		sid := wam.sender_id(sender);
	END IF;
	RETURN QUERY
	-- the rows still in wam.outbox, and the roll-up of the days retention
	-- removed (a day counts when it starts within the period)
	WITH per AS (
		SELECT x.sender_id, sum(x.messages)::bigint AS messages, sum(x.sent)::bigint AS sent,
			   sum(x.delivered)::bigint AS delivered, sum(x.read)::bigint AS read, sum(x.replied)::bigint AS replied,
			   sum(x.failed)::bigint AS failed, sum(x.pending)::bigint AS pending, sum(x.attempted)::bigint AS attempted
		FROM (
			SELECT o.sender_id,
				   count(*) AS messages,
				   count(*) FILTER (WHERE o.sent_at IS NOT NULL OR o.wamid IS NOT NULL) AS sent,
				   count(*) FILTER (WHERE o.delivered_at IS NOT NULL) AS delivered,
				   count(*) FILTER (WHERE o.read_at IS NOT NULL) AS read,
				   count(*) FILTER (WHERE o.replies > 0) AS replied,
				   count(*) FILTER (WHERE o.status = 'failed') AS failed,
				   count(*) FILTER (WHERE o.status IN ('queued', 'sending', 'retrying', 'uncertain')) AS pending,
				   count(*) FILTER (WHERE o.sent_at IS NOT NULL OR o.wamid IS NOT NULL OR o.status = 'failed') AS attempted
			FROM wam.outbox o
			WHERE o.created_at >= since AND o.created_at < until AND (sid IS NULL OR o.sender_id = sid)
			GROUP BY o.sender_id
			UNION ALL
			SELECT d.sender_id, sum(d.messages), sum(d.sent), sum(d.delivered), sum(d.read), sum(d.replied),
				   coalesce(sum(d.messages) FILTER (WHERE d.status = 'failed'), 0), 0,
				   sum(CASE WHEN d.status = 'failed' THEN d.messages ELSE d.sent END)
			FROM wam.outbox_daily d
			WHERE (d.day::timestamp AT TIME ZONE 'UTC') >= since AND (d.day::timestamp AT TIME ZONE 'UTC') < until
			  AND (sid IS NULL OR d.sender_id = sid)
			GROUP BY d.sender_id) x
		GROUP BY x.sender_id
	), codes AS (
		SELECT x.sender_id, jsonb_object_agg(x.code, x.n ORDER BY x.code) AS by_code
		FROM (SELECT y.sender_id, y.code, sum(y.n)::bigint AS n
			  FROM (SELECT o.sender_id, coalesce(o.error_code::text, 'none') AS code, count(*) AS n
					FROM wam.outbox o
					WHERE o.created_at >= since AND o.created_at < until AND (sid IS NULL OR o.sender_id = sid)
					  AND o.status = 'failed'
					GROUP BY 1, 2
					UNION ALL
					SELECT d.sender_id, coalesce(d.error_code::text, 'none'), sum(d.messages)
					FROM wam.outbox_daily d
					WHERE (d.day::timestamp AT TIME ZONE 'UTC') >= since AND (d.day::timestamp AT TIME ZONE 'UTC') < until
					  AND (sid IS NULL OR d.sender_id = sid) AND d.status = 'failed'
					GROUP BY 1, 2) y
			  GROUP BY 1, 2) x
		GROUP BY x.sender_id
	), rates AS (
		SELECT per.*, coalesce(codes.by_code, '{}') AS by_code,
			   round(100.0 * per.delivered / nullif(per.attempted, 0), 1) AS d_rate,
			   round(100.0 * per.read / nullif(per.delivered, 0), 1) AS r_rate,
			   round(100.0 * per.replied / nullif(per.delivered, 0), 1) AS p_rate
		FROM per LEFT JOIN codes USING (sender_id)
	)
	SELECT s.name, r.messages, r.sent, r.delivered, r.read, r.replied, r.failed, r.by_code, r.pending,
		   r.d_rate, r.r_rate, r.p_rate,
		   CASE WHEN r.d_rate IS NULL THEN NULL WHEN r.d_rate < 95 THEN 'poor' WHEN r.d_rate < 98 THEN 'below normal'
				ELSE 'normal' END,
		   CASE WHEN r.r_rate IS NULL THEN NULL WHEN r.r_rate < 60 THEN 'low: check send time and opening'
				WHEN r.r_rate < 70 THEN 'below typical' WHEN r.r_rate <= 85 THEN 'typical' ELSE 'high' END,
		   CASE WHEN r.p_rate IS NULL THEN NULL WHEN r.p_rate > 5 THEN 'good' ELSE 'low' END
	FROM rates r JOIN wam.sender s USING (sender_id)
	ORDER BY s.name;
END
$$;
COMMENT ON FUNCTION wam.delivery_report(timestamptz, timestamptz, text) IS 'per sender: delivery, read and reply counts and rates of the messages enqueued in a period, days removed by retention included';

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
