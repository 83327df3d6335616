-- 70_partitions: wam.event and wam.inbound_message become partitioned by month
-- (src/sql/retention.sql), with retention settings, daily roll-ups and the
-- "maintain partitions" job.  The rows of 0.1 are copied into the default
-- partitions (for a large table this takes a while and twice its space); the
-- job's first run moves those of the current month and later into the months'
-- partitions it creates (older ones stay in the default partition until
-- retention removes them).

-- wam.event: the 0.1 table steps aside under other names, its rows are copied
ALTER TABLE wam.event RENAME TO event_0_1;
ALTER INDEX wam.event_pkey RENAME TO event_0_1_pkey;
ALTER INDEX wam.event_kind_time RENAME TO event_0_1_kind_time;
ALTER SEQUENCE wam.event_event_id_seq RENAME TO event_0_1_event_id_seq;
ALTER TABLE wam.event_0_1 RENAME CONSTRAINT event_customer_id_fkey TO event_0_1_customer_id_fkey;

CREATE TABLE wam.event (
	event_id bigint GENERATED ALWAYS AS IDENTITY,
	customer_id bigint NOT NULL REFERENCES wam.customer ON DELETE CASCADE,
	kind text NOT NULL CONSTRAINT event_kind CHECK (kind ~ '^[a-z][a-z0-9_]*$'),
	occurred_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	details jsonb
) PARTITION BY RANGE (occurred_at);
-- Partitioned by month of occurred_at (src/sql/retention.sql): "within 7d"
-- reads one or two partitions, and retention drops whole months.  The
-- maintenance job creates the months ahead; the default partition takes the
-- rest (an insert never fails for want of a partition).
--
-- The indexes are each partition's own, not the partitioned table's: the
-- months are made at run time, so they are no members of the extension and
-- pg_dump dumps them whole, indexes included; a restore attaches them to the
-- table CREATE EXTENSION made, which would already have built indexes of a
-- partitioned index on them and refused the dumped ones.  New partitions
-- copy the default partition's indexes (src/partition.c).  A partition's
-- primary key need not hold the partition key.
CREATE TABLE wam.event_default PARTITION OF wam.event (PRIMARY KEY (customer_id, event_id)) DEFAULT;
-- customer_id is included so that behaviour predicates ("event(kind) >= n
-- within 7d") read only the index (events are insert-only, so the visibility
-- map stays nearly all-visible): a third faster at 50 million events.
CREATE INDEX event_default_kind_time ON wam.event_default (kind, occurred_at) INCLUDE (customer_id);
COMMENT ON TABLE wam.event IS 'behaviour events (link_click, order, reply, ...), partitioned by month';
COMMENT ON TABLE wam.event_default IS 'events of months without a partition of their own (moved out when the month''s partition is created)';

GRANT INSERT ON wam.event TO wam_operator;
GRANT SELECT ON wam.event, wam.event_default TO wam_reader;
GRANT SELECT, INSERT ON wam.event TO wam_definer;
-- retention deletes the rows past the horizon that no partition of their own holds
GRANT SELECT, INSERT, DELETE ON wam.event_default TO wam_definer;
GRANT USAGE ON SEQUENCE wam.event_event_id_seq TO wam_definer;

INSERT INTO wam.event (event_id, customer_id, kind, occurred_at, details) OVERRIDING SYSTEM VALUE
SELECT event_id, customer_id, kind, occurred_at, details FROM wam.event_0_1;
SELECT pg_catalog.setval('wam.event_event_id_seq', s.last_value, s.is_called) FROM wam.event_0_1_event_id_seq s;
-- out of the extension first, which also takes them out of the dump configuration
ALTER EXTENSION pg_wamarketing DROP SEQUENCE wam.event_0_1_event_id_seq;
ALTER EXTENSION pg_wamarketing DROP TABLE wam.event_0_1;
DROP TABLE wam.event_0_1;
CREATE TRIGGER event_rules AFTER INSERT ON wam.event
	REFERENCING NEW TABLE AS new_events FOR EACH STATEMENT EXECUTE FUNCTION wam_internal.event_rules_trigger();

-- wam.inbound_message likewise
ALTER TABLE wam.inbound_message RENAME TO inbound_message_0_1;
ALTER INDEX wam.inbound_message_pkey RENAME TO inbound_message_0_1_pkey;
ALTER INDEX wam.inbound_message_customer RENAME TO inbound_message_0_1_customer;
ALTER TABLE wam.inbound_message_0_1 RENAME CONSTRAINT inbound_message_sender_id_fkey TO inbound_message_0_1_sender_id_fkey;

CREATE TABLE wam.inbound_message (
	wamid text NOT NULL,
	sender_id integer REFERENCES wam.sender ON DELETE SET NULL,
	customer_id bigint,
	from_phone text,
	from_user_id text,
	received_at timestamptz NOT NULL,
	kind text,
	body text,
	context_wamid text,
	answered_message bigint,
	opted_out boolean NOT NULL DEFAULT false
) PARTITION BY RANGE (received_at);
-- By month, like wam.event, with each partition's own indexes (see wam.event
-- in src/sql/core.sql).  A wamid is unique in its partition; across them,
-- wam.ingest_webhook looks it up in each (as many as retention keeps, not
-- rows), under a lock per wamid, so that a redelivery is stored once even
-- when it comes without its timestamp.
CREATE TABLE wam.inbound_message_default PARTITION OF wam.inbound_message (PRIMARY KEY (wamid)) DEFAULT;
CREATE INDEX inbound_message_default_customer ON wam.inbound_message_default (customer_id);
COMMENT ON TABLE wam.inbound_message IS 'inbound WhatsApp messages received by webhook, partitioned by month';
COMMENT ON TABLE wam.inbound_message_default IS 'inbound messages of months without a partition of their own (moved out when the month''s partition is created)';

REVOKE ALL ON wam.inbound_message FROM PUBLIC;
GRANT SELECT ON wam.inbound_message, wam.inbound_message_default TO wam_reader;
GRANT SELECT, INSERT ON wam.inbound_message TO wam_definer;
GRANT SELECT, INSERT, DELETE ON wam.inbound_message_default TO wam_definer;

INSERT INTO wam.inbound_message (wamid, sender_id, customer_id, from_phone, from_user_id, received_at, kind, body,
								 context_wamid, answered_message, opted_out)
SELECT wamid, sender_id, customer_id, from_phone, from_user_id, received_at, kind, body,
	   context_wamid, answered_message, opted_out
FROM wam.inbound_message_0_1;
ALTER EXTENSION pg_wamarketing DROP TABLE wam.inbound_message_0_1;
DROP TABLE wam.inbound_message_0_1;

-- inbound messages are deduplicated across the partitions
CREATE OR REPLACE FUNCTION wam.ingest_webhook(body text, signature text) RETURNS integer
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
	-- The plans are the same for every body (index lookups per status), but a custom plan
	-- for the actual arrays looks cheaper than the generic one, so the plan cache would
	-- plan the statements anew on every call: that was two thirds of a call's time.
	SET plan_cache_mode = force_generic_plan
AS $$
#variable_conflict use_variable
DECLARE
	secrets text[];
	matched integer;
	j jsonb;
	-- the "value" of each change for a sender whose app secret signed the body, and that sender
	sids integer[];
	vals jsonb[];
	has_contacts boolean := false;
	n_statuses integer := 0;
	has_messages boolean := false;
	-- every sender with an app secret (secrets), and its phone number id
	all_sids integer[];
	all_pnids text[];
	chs jsonb;
	ch jsonb;
	pos integer;
	-- the status of a body with only one
	st jsonb;
	st_rank integer;
	st_ts timestamptz;
	st_customer bigint;
	st_read_at timestamptz;
	read_customers bigint[];
	read_times timestamptz[];
	inbound wam.inbound_message[];
	n_status integer := 0;
	st_done boolean := false;
	n_message integer := 0;
	r record;
BEGIN
	PERFORM wam_internal.refuse_null(body IS NULL, 'webhook body');
	-- before the body is hashed or parsed
	IF octet_length(body) > wam_internal.webhook_max_body_bytes() THEN
		RAISE EXCEPTION 'webhook body is too large'
			USING ERRCODE = 'program_limit_exceeded',
				  DETAIL = format('The body has %s bytes; wam.webhook_max_body_bytes allows %s.',
								  octet_length(body), wam_internal.webhook_max_body_bytes());
	END IF;
	IF signature IS NULL OR signature = '' THEN
		RAISE EXCEPTION 'webhook signature is missing'
			USING ERRCODE = 'invalid_authorization_specification',
				  HINT = 'Pass the X-Hub-Signature-256 header ("sha256=<hex>").';
	END IF;
	-- senders sharing an app secret: wam_internal.hmac_sha256_matches hashes it once
	SELECT array_agg(k.app_secret), array_agg(s.sender_id), array_agg(s.phone_number_id)
	INTO secrets, all_sids, all_pnids
	FROM wam.sender s JOIN wam.sender_secret k ON k.sender_id = s.sender_id
	WHERE k.app_secret IS NOT NULL;
	matched := coalesce(wam_internal.hmac_sha256_matches(body, signature, secrets), 0);
	IF matched = 0 THEN
		RAISE EXCEPTION 'webhook signature does not match'
			USING ERRCODE = 'invalid_authorization_specification',
				  HINT = 'The signature is HMAC-SHA256 of the raw request body with a sender''s app secret; pass the body exactly as received.';
	END IF;
	j := wam_internal.try_jsonb(body);
	IF j IS NULL THEN
		RAISE EXCEPTION 'webhook body is not valid JSON' USING ERRCODE = 'invalid_text_representation';
	END IF;
	IF j->>'object' IS DISTINCT FROM 'whatsapp_business_account' THEN
		RAISE EXCEPTION 'webhook body is not a WhatsApp Business Account notification'
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = format('"object" is %s.', coalesce(j->'object', 'null'));
	END IF;

	-- only changes for senders whose app secret signed the body (walked with plain
	-- expressions: a query here cost as much as the status update)
	FOR e IN 0 .. CASE WHEN jsonb_typeof(j->'entry') = 'array' THEN jsonb_array_length(j->'entry') ELSE 0 END - 1 LOOP
		chs := j->'entry'->e->'changes';
		CONTINUE WHEN jsonb_typeof(chs) IS DISTINCT FROM 'array';
		FOR c IN 0 .. jsonb_array_length(chs) - 1 LOOP
			ch := chs->c;
			CONTINUE WHEN ch->>'field' IS DISTINCT FROM 'messages';
			pos := array_position(all_pnids, ch->'value'->'metadata'->>'phone_number_id');
			CONTINUE WHEN pos IS NULL OR secrets[pos] IS DISTINCT FROM secrets[matched];
			sids := sids || all_sids[pos];
			vals := vals || (ch->'value');
			has_contacts := has_contacts OR ch->'value' ? 'contacts';
			has_messages := has_messages OR ch->'value' ? 'messages';
			IF jsonb_typeof(ch->'value'->'statuses') = 'array' THEN
				n_statuses := n_statuses + jsonb_array_length(ch->'value'->'statuses');
			END IF;
		END LOOP;
	END LOOP;

	-- business-scoped user ids learnt from contacts that also carry the phone
	IF has_contacts THEN
		INSERT INTO wam.customer_user_id (user_id, customer_id)
		SELECT DISTINCT ON (ct->>'user_id') ct->>'user_id', c.id
		FROM unnest(vals) w(v)
			 CROSS JOIN LATERAL wam_internal.json_elements(w.v->'contacts') ct
			 JOIN wam.customer c ON c.phone = ct->>'wa_id'
		WHERE coalesce(ct->>'user_id', '') <> ''
		ORDER BY ct->>'user_id'
		ON CONFLICT (user_id) DO UPDATE SET customer_id = EXCLUDED.customer_id;
	END IF;

	-- statuses: forward only (sent < delivered < read); failed only before delivery
	IF n_statuses = 1 AND array_length(sids, 1) = 1 THEN
		-- Meta posts statuses one at a time, nearly all "sent", "delivered" or "read" of a
		-- message whose wamid is known: for these, the rules of the statement below for one
		-- status, by the wamid alone (its grouping and sorting cost twice the update itself).
		-- Anything else (a failure, a wamid not known yet) takes the statement below.
		st := vals[1]->'statuses'->0;
		st_rank := wam_internal.status_rank(st->>'status');
		IF st_rank > 0 THEN
			st_ts := coalesce(wam_internal.webhook_time(st->>'timestamp'), pg_catalog.now());
			UPDATE wam.outbox o SET
				-- a late "sent" does not undo a failure; delivery does
				status = CASE WHEN o.status = 'failed' AND st_rank < 2 THEN 'failed'
							  WHEN st_rank > wam_internal.status_rank(o.status) THEN (ARRAY['sent', 'delivered', 'read'])[st_rank]
							  ELSE o.status END,
				sent_at = coalesce(o.sent_at, st_ts),
				delivered_at = coalesce(o.delivered_at, CASE WHEN st_rank >= 2 THEN st_ts END),
				read_at = coalesce(o.read_at, CASE WHEN st_rank = 3 THEN st_ts END),
				error_detail = CASE WHEN st_rank > wam_internal.status_rank(o.status) THEN NULL ELSE o.error_detail END
			WHERE o.wamid = st->>'id'
			  -- a repeated status (Meta redelivers, a body is replayed) changes
			  -- nothing: not written and not counted (the same rules as above)
			  AND (st_rank > wam_internal.status_rank(o.status) AND NOT (o.status = 'failed' AND st_rank < 2 AND o.error_detail IS NULL)
				   OR o.sent_at IS NULL
				   OR st_rank >= 2 AND o.delivered_at IS NULL
				   OR st_rank = 3 AND o.read_at IS NULL)
			RETURNING o.customer_id, o.read_at INTO st_customer, st_read_at;
			GET DIAGNOSTICS n_status = ROW_COUNT;
			-- matched but unchanged: done, the statement below would not change it either
			st_done := n_status > 0 OR EXISTS (SELECT FROM wam.outbox o WHERE o.wamid = st->>'id');
			IF st_read_at IS NOT NULL THEN
				UPDATE wam.customer c SET last_read_at = st_read_at
				WHERE c.id = st_customer AND (c.last_read_at IS NULL OR c.last_read_at < st_read_at);
			END IF;
		END IF;
	END IF;
	IF n_statuses > 0 AND NOT st_done THEN
		WITH st AS (
			SELECT w.sender_id, s->>'id' AS wamid, s->>'status' AS status,
				   coalesce(wam_internal.webhook_time(s->>'timestamp'), pg_catalog.now()) AS ts,
				   CASE WHEN s->>'biz_opaque_callback_data' ~ '^wam:[0-9]{1,18}$'
						THEN substr(s->>'biz_opaque_callback_data', 5)::bigint END AS opaque_id,
				   CASE WHEN jsonb_typeof(s->'errors'->0->'code') = 'number'
						THEN (s->'errors'->0->>'code')::numeric::integer END AS code,
				   coalesce(s->'errors'->0->'error_data'->>'details', s->'errors'->0->>'title',
							s->'errors'->0->>'message') AS detail
			FROM unnest(sids, vals) w(sender_id, v) CROSS JOIN LATERAL wam_internal.json_elements(w.v->'statuses') s
			WHERE s->>'status' IN ('sent', 'delivered', 'read', 'failed')
		), m0 AS (
			SELECT coalesce(by_wamid.message_id, by_opaque.message_id) AS found_id, st.*
			FROM st
				 LEFT JOIN wam.outbox by_wamid ON by_wamid.wamid = st.wamid
				 -- only when the wamid is not known (a NULL key: no index descent)
				 LEFT JOIN wam.outbox by_opaque ON by_opaque.message_id = CASE WHEN by_wamid.message_id IS NULL
																			   THEN st.opaque_id END
											   AND by_opaque.sender_id = st.sender_id
											   AND (by_opaque.wamid IS NULL OR by_opaque.wamid = st.wamid)
		), m AS (
			-- a status without the callback data matches through another one of the same wamid
			SELECT coalesce(m0.found_id, max(m0.found_id) OVER (PARTITION BY m0.wamid)) AS message_id, m0.*
			FROM m0
		), f AS (
			-- the error of the earliest failure (if any): a window in the order the grouping
			-- needs anyway, instead of a sort per message and aggregate
			SELECT m.*, first_value(m.code) OVER w AS first_code, first_value(m.detail) OVER w AS first_detail
			FROM m WHERE m.message_id IS NOT NULL
			WINDOW w AS (PARTITION BY m.message_id ORDER BY m.status = 'failed' DESC, m.ts)
		), a AS (
			SELECT f.message_id, count(*) AS n, max(f.wamid) AS wamid,
				   max(wam_internal.status_rank(f.status)) AS best,
				   min(f.ts) AS sent_ts,
				   min(f.ts) FILTER (WHERE f.status IN ('delivered', 'read')) AS delivered_ts,
				   min(f.ts) FILTER (WHERE f.status = 'read') AS read_ts,
				   min(f.ts) FILTER (WHERE f.status = 'failed') AS failed_ts,
				   max(f.first_code) AS code, max(f.first_detail) AS detail
			FROM f GROUP BY f.message_id
		), u AS (
			UPDATE wam.outbox o SET
				status = CASE WHEN a.failed_ts IS NOT NULL AND greatest(a.best, wam_internal.status_rank(o.status)) < 2
								   AND o.status NOT IN ('cancelled', 'expired')
							  THEN 'failed'
							  -- a late "sent" does not undo a failure; delivery does
							  WHEN o.status = 'failed' AND a.best < 2 THEN 'failed'
							  WHEN a.best > wam_internal.status_rank(o.status)
							  THEN (ARRAY['sent', 'delivered', 'read'])[a.best]
							  ELSE o.status END,
				wamid = coalesce(o.wamid, a.wamid),
				sent_at = CASE WHEN a.best >= 1 THEN coalesce(o.sent_at, a.sent_ts) ELSE o.sent_at END,
				delivered_at = coalesce(o.delivered_at, a.delivered_ts),
				read_at = coalesce(o.read_at, a.read_ts),
				failed_at = CASE WHEN a.failed_ts IS NOT NULL AND greatest(a.best, wam_internal.status_rank(o.status)) < 2
									  AND o.status NOT IN ('cancelled', 'expired')
								 THEN coalesce(o.failed_at, a.failed_ts) ELSE o.failed_at END,
				error_code = CASE WHEN a.failed_ts IS NOT NULL AND greatest(a.best, wam_internal.status_rank(o.status)) < 2
									   AND o.status NOT IN ('cancelled', 'expired')
								  THEN a.code ELSE o.error_code END,
				error_detail = CASE WHEN a.failed_ts IS NOT NULL AND greatest(a.best, wam_internal.status_rank(o.status)) < 2
										 AND o.status NOT IN ('cancelled', 'expired')
									THEN a.detail
									WHEN a.best > wam_internal.status_rank(o.status) THEN NULL
									ELSE o.error_detail END
			FROM a WHERE o.message_id = a.message_id
			  -- only messages that change (a replay writes and counts nothing):
			  -- the new values of the SET list above, compared with the old
			  AND (o.status, o.wamid, o.sent_at, o.delivered_at, o.read_at, o.failed_at, o.error_code, o.error_detail)
				  IS DISTINCT FROM
				  (CASE WHEN a.failed_ts IS NOT NULL AND greatest(a.best, wam_internal.status_rank(o.status)) < 2
							 AND o.status NOT IN ('cancelled', 'expired')
						THEN 'failed'
						WHEN o.status = 'failed' AND a.best < 2 THEN 'failed'
						WHEN a.best > wam_internal.status_rank(o.status)
						THEN (ARRAY['sent', 'delivered', 'read'])[a.best]
						ELSE o.status END,
				   coalesce(o.wamid, a.wamid),
				   CASE WHEN a.best >= 1 THEN coalesce(o.sent_at, a.sent_ts) ELSE o.sent_at END,
				   coalesce(o.delivered_at, a.delivered_ts),
				   coalesce(o.read_at, a.read_ts),
				   CASE WHEN a.failed_ts IS NOT NULL AND greatest(a.best, wam_internal.status_rank(o.status)) < 2
							 AND o.status NOT IN ('cancelled', 'expired')
						THEN coalesce(o.failed_at, a.failed_ts) ELSE o.failed_at END,
				   CASE WHEN a.failed_ts IS NOT NULL AND greatest(a.best, wam_internal.status_rank(o.status)) < 2
							 AND o.status NOT IN ('cancelled', 'expired')
						THEN a.code ELSE o.error_code END,
				   CASE WHEN a.failed_ts IS NOT NULL AND greatest(a.best, wam_internal.status_rank(o.status)) < 2
							 AND o.status NOT IN ('cancelled', 'expired')
						THEN a.detail
						WHEN a.best > wam_internal.status_rank(o.status) THEN NULL
						ELSE o.error_detail END)
			RETURNING o.customer_id, o.read_at, a.n
		)
		SELECT coalesce(sum(u.n), 0), array_agg(u.customer_id) FILTER (WHERE u.read_at IS NOT NULL),
			   array_agg(u.read_at) FILTER (WHERE u.read_at IS NOT NULL)
		INTO n_status, read_customers, read_times FROM u;
		-- apart, so that a body without reads does not even open wam.customer
		IF read_customers IS NOT NULL THEN
			UPDATE wam.customer c SET last_read_at = x.read_at
			FROM (SELECT rt.customer_id, max(rt.read_at) AS read_at FROM unnest(read_customers, read_times) rt(customer_id, read_at)
				  GROUP BY 1) x
			WHERE c.id = x.customer_id AND (c.last_read_at IS NULL OR c.last_read_at < x.read_at);
		END IF;
	END IF;

	IF NOT has_messages THEN
		RETURN n_status;
	END IF;
	-- Inbound messages, deduplicated by their wamid; the new ones are kept in "inbound".
	-- No unique key spans the partitions (a redelivery without its timestamp is
	-- received now, in another month), so concurrent deliveries of one wamid are
	-- serialized here, in wamid order, before the statement whose snapshot must
	-- see the other's row.
	PERFORM wam_internal.lock_key(4, pg_catalog.hashtextextended(x.wamid, 0))
	FROM (SELECT DISTINCT m->>'id' AS wamid
		  FROM unnest(vals) w(v) CROSS JOIN LATERAL wam_internal.json_elements(w.v->'messages') m
		  WHERE coalesce(m->>'id', '') <> '' ORDER BY 1) x;
	WITH msg AS (
		SELECT w.sender_id, m->>'id' AS wamid, nullif(m->>'from', '') AS from_phone,
			   coalesce(nullif(m->>'from_user_id', ''),
						(SELECT nullif(ct->>'user_id', '') FROM wam_internal.json_elements(w.v->'contacts') ct
						 WHERE ct->>'wa_id' = m->>'from' OR m->>'from' IS NULL LIMIT 1)) AS from_user_id,
			   coalesce(wam_internal.webhook_time(m->>'timestamp'), pg_catalog.now()) AS ts,
			   m->>'type' AS kind,
			   coalesce(m->'text'->>'body', m->'button'->>'text', m->'interactive'->'button_reply'->>'title',
						m->'interactive'->'list_reply'->>'title', m->'image'->>'caption') AS body,
			   m->'context'->>'id' AS context_wamid
		FROM unnest(sids, vals) w(sender_id, v) CROSS JOIN LATERAL wam_internal.json_elements(w.v->'messages') m
		WHERE coalesce(m->>'id', '') <> ''
	), who AS (
		SELECT msg.*, coalesce(c.id, bs.customer_id) AS customer_id
		FROM msg
			 LEFT JOIN wam.customer c ON c.phone = msg.from_phone
			 LEFT JOIN wam.customer_user_id bs ON bs.user_id = msg.from_user_id
	), ins AS (
		INSERT INTO wam.inbound_message AS im (wamid, sender_id, customer_id, from_phone, from_user_id,
											   received_at, kind, body, context_wamid, answered_message, opted_out)
		SELECT DISTINCT ON (who.wamid) who.wamid, who.sender_id, who.customer_id, who.from_phone, who.from_user_id,
			   who.ts, who.kind, who.body, who.context_wamid,
			   -- the message it quotes, else the last one sent to the customer in the 24 h before
			   coalesce((SELECT o.message_id FROM wam.outbox o WHERE o.wamid = who.context_wamid),
						(SELECT o.message_id FROM wam.outbox o
						 WHERE who.customer_id IS NOT NULL AND o.customer_id = who.customer_id
						   AND o.sender_id = who.sender_id
						   AND o.sent_at BETWEEN who.ts - interval '24 hours' AND who.ts
						 ORDER BY o.sent_at DESC LIMIT 1)),
			   who.customer_id IS NOT NULL AND who.body IS NOT NULL
			   AND EXISTS (SELECT FROM wam.opt_out_keyword k
						   WHERE wam.normalize_keyword(k.keyword) = wam.normalize_keyword(who.body))
		FROM who
		-- a redelivery may fall in another month's partition: looked up in each
		WHERE NOT EXISTS (SELECT FROM wam.inbound_message x WHERE x.wamid = who.wamid)
		ORDER BY who.wamid
		RETURNING im
	)
	SELECT array_agg(ins.im), count(*) INTO inbound, n_message FROM ins;

	IF n_message > 0 THEN
		-- the customer wrote: the 24-hour window is open again
		UPDATE wam.customer c SET last_inbound_at = x.ts
		FROM (SELECT i.customer_id, max(i.received_at) AS ts FROM unnest(inbound) i
			  WHERE i.customer_id IS NOT NULL GROUP BY 1) x
		WHERE c.id = x.customer_id AND (c.last_inbound_at IS NULL OR c.last_inbound_at < x.ts);
		UPDATE wam.outbox o SET replies = o.replies + x.n, replied_at = coalesce(o.replied_at, x.ts)
		FROM (SELECT i.answered_message, count(*) AS n, min(i.received_at) AS ts FROM unnest(inbound) i
			  WHERE i.answered_message IS NOT NULL AND NOT i.opted_out GROUP BY 1) x
		WHERE o.message_id = x.answered_message;
		INSERT INTO wam.event (customer_id, kind, occurred_at, details)
		SELECT i.customer_id, CASE WHEN i.answered_message IS NOT NULL THEN 'reply' ELSE 'inbound_message' END,
			   i.received_at,
			   jsonb_strip_nulls(jsonb_build_object('wamid', i.wamid, 'type', i.kind, 'text', i.body,
													'answers', i.answered_message, 'sender_id', i.sender_id))
		FROM unnest(inbound) i WHERE i.customer_id IS NOT NULL
		ORDER BY i.received_at;
		FOR r IN SELECT DISTINCT ON (i.customer_id) i.customer_id, i.body FROM unnest(inbound) i
				 WHERE i.opted_out ORDER BY i.customer_id, i.received_at LOOP
			PERFORM wam.record_opt_out(r.customer_id, format('replied "%s" on WhatsApp', left(r.body, 100)));
		END LOOP;
	END IF;
	RETURN n_status + n_message;
END
$$;

CREATE TABLE wam.retention (
	table_name text PRIMARY KEY CONSTRAINT retention_table CHECK (table_name IN ('event', 'inbound_message')),
	-- the reports read at most 90 days back (tag health's interaction
	-- frequency, the referral checks): a shorter horizon would change them
	keep interval CONSTRAINT retention_keep CHECK (keep >= interval '90 days'),
	premake integer NOT NULL DEFAULT 2 CONSTRAINT retention_premake CHECK (premake BETWEEN 1 AND 24),
	description text NOT NULL
);
COMMENT ON TABLE wam.retention IS 'per partitioned table: how long its rows are kept and how many months ahead partitions are created (change with UPDATE)';
COMMENT ON COLUMN wam.retention.keep IS 'rows older than this are rolled up and dropped, a month at a time once the whole month is past; NULL: kept forever (at least 90 days)';
COMMENT ON COLUMN wam.retention.premake IS 'months after the current one whose partitions exist ahead';

INSERT INTO wam.retention (table_name, keep, premake, description) VALUES
	('event', NULL, 2, 'behaviour events; rolled up per day and kind into wam.event_daily'),
	('inbound_message', NULL, 2, 'inbound messages; rolled up per day, sender and type into wam.inbound_daily');

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

-- The partitions of a table with their bounds, read back from the catalog
-- (the bounds print in the session's time zone and date style and are
-- parsed back in the same).
CREATE FUNCTION wam_internal.partitions(parent regclass)
	RETURNS TABLE (part regclass, name text, lo text, hi text)
	LANGUAGE sql STABLE SET search_path = pg_catalog, wam, pg_temp
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

-- Creates the partitions of the current month and `premake` months ahead,
-- then applies retention: a month partition wholly older than `keep` is rolled
-- up and dropped; rows of the default partition older than `keep` are rolled
-- up and deleted.  Partitions straddling the horizon stay whole.
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
			PERFORM wam_internal.drop_partition(p.part);
			table_name := r.table_name; partition_name := p.name; action := 'dropped'; rows := n;
			RETURN NEXT;
		END LOOP;
		n := wam_internal.roll_up(r.table_name, pg_catalog.format('wam.%I', r.table_name || '_default')::regclass, horizon);
		IF n > 0 THEN
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

-- the maintenance job
ALTER TABLE wam.job DROP CONSTRAINT job_known;
ALTER TABLE wam.job ADD CONSTRAINT job_known CHECK (job IN
		('expire tags', 'run tag rules', 'tag health report', 'tag audit', 'maintain partitions'));
INSERT INTO wam.job (job, run_every, at_time, on_weekday, options, description) VALUES
	('maintain partitions', interval '1 hour', NULL, NULL, '{}',
	 'creates the monthly partitions ahead and applies the retention of wam.retention (wam.maintain_partitions)');

CREATE OR REPLACE FUNCTION wam_internal.run_job_body(j wam.job) RETURNS text
	LANGUAGE plpgsql SET search_path = pg_catalog, wam, pg_temp
AS $$
DECLARE
	n bigint;
	a bigint;
	r bigint;
	rep wam.tag_health_report;
	aud record;
	id bigint;
BEGIN
	CASE j.job
		WHEN 'expire tags' THEN
			n := wam.expire_tags();
			RETURN format('%s expired attachments removed', n);
		WHEN 'run tag rules' THEN
			SELECT count(*), coalesce(sum(x.added), 0), coalesce(sum(x.removed), 0) INTO n, a, r
			FROM wam.run_tag_rules() x;
			RETURN format('%s rules: %s tags added, %s removed', n, a, r);
		WHEN 'tag health report' THEN
			id := wam.record_tag_health();
			SELECT * INTO rep FROM wam.tag_health_report h WHERE h.report_id = id;
			RETURN format('report %s: %s active tags (%s), %s silent, %s overloaded', rep.report_id,
						  rep.active_tags, rep.band, rep.silent_tags, rep.overloaded_tags);
		WHEN 'tag audit' THEN
			SELECT count(*) AS tags, coalesce(sum(x.links), 0) AS links, coalesce(sum(x.stale_links), 0) AS stale,
				   coalesce(sum(x.moved), 0) AS moved, coalesce(sum(x.removed), 0) AS removed
			INTO aud
			FROM wam.audit_tags((j.options->>'inactive')::interval, j.options->>'action') x;
			RETURN format('%s tags, %s of %s links stale; %s moved, %s removed', aud.tags, aud.stale, aud.links,
						  aud.moved, aud.removed);
		WHEN 'maintain partitions' THEN
			-- as of the run's scheduled time when that is ahead of the clock
			-- (wam.run_due_jobs(at) with a time to come), else now
			SELECT count(*) FILTER (WHERE x.action = 'created'), count(*) FILTER (WHERE x.action = 'dropped'),
				   coalesce(sum(x.rows) FILTER (WHERE x.action IN ('dropped', 'deleted')), 0)
			INTO n, a, r
			FROM wam.maintain_partitions(greatest(j.next_run_at, pg_catalog.now())) x;
			RETURN format('%s partitions created, %s dropped; %s rows rolled up', n, a, r);
	END CASE;
END
$$;

-- the new tables are dumped with their rows (src/sql/backup.sql); one call per
-- statement, as each updates the extension's row
SELECT pg_catalog.pg_extension_config_dump('wam.event', '');
SELECT pg_catalog.pg_extension_config_dump('wam.event_event_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('wam.event_default', '');
SELECT pg_catalog.pg_extension_config_dump('wam.inbound_message', '');
SELECT pg_catalog.pg_extension_config_dump('wam.inbound_message_default', '');
SELECT pg_catalog.pg_extension_config_dump('wam.retention', '');
SELECT pg_catalog.pg_extension_config_dump('wam.event_daily', '');
SELECT pg_catalog.pg_extension_config_dump('wam.inbound_daily', '');
CREATE TRIGGER restore_replace BEFORE INSERT ON wam.retention
	FOR EACH ROW EXECUTE FUNCTION wam_internal.restore_replace_trigger();
REVOKE ALL ON wam.retention, wam.event_daily, wam.inbound_daily, wam.event_default, wam.inbound_message_default FROM PUBLIC;
