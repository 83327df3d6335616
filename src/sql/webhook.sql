-- src/sql/webhook.sql: webhook ingestion: verification, signatures, message statuses,
-- inbound messages and opt-out keywords

CREATE TABLE wam.webhook_verify_token (
	only_row boolean PRIMARY KEY DEFAULT true CONSTRAINT webhook_verify_token_one CHECK (only_row),
	token text
);
COMMENT ON TABLE wam.webhook_verify_token IS 'the verify token of the webhook endpoint';

REVOKE ALL ON wam.webhook_verify_token FROM PUBLIC;
GRANT SELECT ON wam.webhook_verify_token TO wam_admin;
GRANT SELECT, INSERT, UPDATE ON wam.webhook_verify_token TO wam_definer;

CREATE TABLE wam.opt_out_keyword (
	keyword text PRIMARY KEY,
	language text
);
COMMENT ON TABLE wam.opt_out_keyword IS 'inbound texts that opt the customer out';
INSERT INTO wam.opt_out_keyword (keyword, language) VALUES
	('stop', 'en'), ('stopall', 'en'), ('unsubscribe', 'en'), ('optout', 'en'), ('cancel', 'en'),
	('end', 'en'), ('quit', 'en'),
	('parar', 'es/pt'), ('baja', 'es'), ('cancelar', 'es/pt'), ('sair', 'pt'), ('descadastrar', 'pt'),
	('arret', 'fr'), ('arrêt', 'fr'), ('desabonner', 'fr'), ('désabonner', 'fr'),
	('stopp', 'de'), ('abmelden', 'de'), ('basta', 'it'), ('disiscriviti', 'it'),
	('退订', 'zh'), ('取消订阅', 'zh'), ('стоп', 'ru'), ('отписаться', 'ru'),
	('توقف', 'ar'), ('berhenti', 'id/ms'), ('hentikan', 'id');

REVOKE ALL ON wam.opt_out_keyword FROM PUBLIC;
GRANT INSERT, DELETE ON wam.opt_out_keyword TO wam_admin;
GRANT SELECT ON wam.opt_out_keyword TO wam_definer;
GRANT SELECT ON wam.opt_out_keyword TO wam_reader;

-- The normalised form inbound texts and keywords are compared in.
CREATE FUNCTION wam.normalize_keyword(t text) RETURNS text
	LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
	RETURN pg_catalog.lower(pg_catalog.regexp_replace(t, '[[:space:][:punct:]]+', '', 'g'));
COMMENT ON FUNCTION wam.normalize_keyword(text) IS 'inbound text as compared with the opt-out keywords';

REVOKE EXECUTE ON FUNCTION wam.normalize_keyword(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.normalize_keyword(text) TO wam_reader;

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

-- small helpers (C, src/webhook.c and src/worker_shmem.c)

CREATE FUNCTION wam_internal.try_jsonb(text) RETURNS jsonb
	AS 'MODULE_PATHNAME', 'wam_try_jsonb' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION wam_internal.try_jsonb(text) IS 'the text as jsonb, or NULL when it is not valid JSON (never an error)';

REVOKE EXECUTE ON FUNCTION wam_internal.try_jsonb(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam_internal.try_jsonb(text) TO wam_reader;

CREATE FUNCTION wam_internal.hmac_sha256_matches(body text, signature text, secrets text[]) RETURNS integer
	AS 'MODULE_PATHNAME', 'wam_hmac_sha256_matches' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION wam_internal.hmac_sha256_matches(text, text, text[]) IS 'internal: position of the secret whose HMAC-SHA256 of body equals signature ("sha256=<hex>"), compared in constant time; 0 if none';

REVOKE EXECUTE ON FUNCTION wam_internal.hmac_sha256_matches(text, text, text[]) FROM PUBLIC;

CREATE FUNCTION wam.hmac_sha256(key text, message text) RETURNS text
	AS 'MODULE_PATHNAME', 'wam_hmac_sha256' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION wam.hmac_sha256(text, text) IS 'HMAC-SHA256 of message under key, as hex';

REVOKE EXECUTE ON FUNCTION wam.hmac_sha256(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.hmac_sha256(text, text) TO wam_reader;

CREATE FUNCTION wam_internal.webhook_max_body_bytes() RETURNS integer
	AS 'MODULE_PATHNAME', 'wam_webhook_max_body_bytes' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION wam_internal.webhook_max_body_bytes() IS 'internal: the setting wam.webhook_max_body_bytes in bytes (loads the library that defines it)';

REVOKE EXECUTE ON FUNCTION wam_internal.webhook_max_body_bytes() FROM PUBLIC;

-- webhooks

CREATE FUNCTION wam.configure_webhook(token text) RETURNS void
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
BEGIN
	IF token IS NULL OR length(token) < 8 THEN
		RAISE EXCEPTION 'verify token must have at least 8 characters' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	INSERT INTO wam.webhook_verify_token (token) VALUES (token)
	ON CONFLICT (only_row) DO UPDATE SET token = EXCLUDED.token;
END
$$;
COMMENT ON FUNCTION wam.configure_webhook(text) IS 'sets the webhook endpoint''s verify token';

REVOKE EXECUTE ON FUNCTION wam.configure_webhook(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.configure_webhook(text) TO wam_admin;

CREATE FUNCTION wam.webhook_challenge(mode text, token text, challenge text) RETURNS text
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	expected text;
BEGIN
	SELECT v.token INTO expected FROM wam.webhook_verify_token v;
	IF expected IS NULL THEN
		RAISE EXCEPTION 'no webhook verify token is set'
			USING ERRCODE = 'object_not_in_prerequisite_state',
				  HINT = 'Set it with wam.configure_webhook().';
	END IF;
	IF mode IS DISTINCT FROM 'subscribe' THEN
		RAISE EXCEPTION 'webhook verification mode must be "subscribe"' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF challenge IS NULL OR challenge = '' THEN
		RAISE EXCEPTION 'webhook verification challenge is missing' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	-- constant time: compare HMACs of both under the same key, not the strings
	IF token IS NULL OR wam_internal.hmac_sha256_matches(token, 'sha256=' || wam.hmac_sha256(expected, expected),
											  ARRAY[expected]) IS DISTINCT FROM 1 THEN
		RAISE EXCEPTION 'webhook verify token does not match' USING ERRCODE = 'invalid_authorization_specification';
	END IF;
	RETURN challenge;
END
$$;
COMMENT ON FUNCTION wam.webhook_challenge(text, text, text) IS 'answers Meta''s webhook verification request';

REVOKE EXECUTE ON FUNCTION wam.webhook_challenge(text, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.webhook_challenge(text, text, text) TO wam_operator;

-- the elements of a JSON array, nothing for anything else; in C for its row estimate
-- (ROWS 4: a webhook's entries, changes and statuses are a handful, and the ingestion's
-- plans must stay on index lookups of wam.outbox however large it grows)
CREATE FUNCTION wam_internal.json_elements(j jsonb) RETURNS SETOF jsonb
	AS 'MODULE_PATHNAME', 'wam_json_elements' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE ROWS 4;
COMMENT ON FUNCTION wam_internal.json_elements(jsonb) IS 'internal: elements of a JSON array, no rows for NULL or a non-array';

REVOKE EXECUTE ON FUNCTION wam_internal.json_elements(jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam_internal.json_elements(jsonb) TO wam_reader;

-- a webhook "timestamp" (a string of Unix seconds) as timestamptz; NULL when malformed
CREATE FUNCTION wam_internal.webhook_time(t text) RETURNS timestamptz
	LANGUAGE sql IMMUTABLE PARALLEL SAFE
	RETURN CASE WHEN t ~ '^[0-9]{1,11}$' THEN pg_catalog.to_timestamp(t::double precision) END;
COMMENT ON FUNCTION wam_internal.webhook_time(text) IS 'internal: a webhook timestamp (Unix seconds as a string) as timestamptz, NULL if malformed';

REVOKE EXECUTE ON FUNCTION wam_internal.webhook_time(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam_internal.webhook_time(text) TO wam_reader;

-- not STRICT, so that the planner inlines it (a STRICT function around a CASE is not inlined,
-- and each statement calling it would parse its body again)
CREATE FUNCTION wam_internal.status_rank(status text) RETURNS integer
	LANGUAGE sql IMMUTABLE PARALLEL SAFE
	RETURN CASE WHEN status IS NOT NULL THEN
		CASE status WHEN 'sent' THEN 1 WHEN 'delivered' THEN 2 WHEN 'read' THEN 3 ELSE 0 END END;
COMMENT ON FUNCTION wam_internal.status_rank(text) IS 'internal: statuses only move forward: sent < delivered < read (everything else ranks 0)';

REVOKE EXECUTE ON FUNCTION wam_internal.status_rank(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam_internal.status_rank(text) TO wam_reader;

-- No temporary tables: the changes of the body are held in variables and every statement
-- reads them from there, so nothing is resolved in pg_temp (a caller's temporary table of
-- the same name, with its triggers, would run with the definer's rights), and the planner
-- sees a few rows (wam_internal.json_elements, ROWS 4) and looks messages up by index, whatever
-- the size of wam.outbox.
CREATE FUNCTION wam.ingest_webhook(body text, signature text) RETURNS integer
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
COMMENT ON FUNCTION wam.ingest_webhook(text, text) IS 'verifies and applies a webhook POST; returns the updates applied';

REVOKE EXECUTE ON FUNCTION wam.ingest_webhook(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.ingest_webhook(text, text) TO wam_operator;

-- A message read becomes a "message_read" event the first time its read time is
-- set, whoever sets it (a single status, a batch of statuses, a correction), so
-- rules and behaviour predicates ("event(message_read) within 7d") see reads.
-- Once per message: a repeated "read" finds read_at set and changes nothing.
-- Row-level with a WHEN clause: updates that set no new read time (the
-- sender's own writes, "sent" and "delivered" statuses) never call it.
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
