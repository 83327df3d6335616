-- 98_campaign_speed.sql: campaigns at a million recipients (issue 18, performance).
-- The lifetime values of the cost cap computed for all customers at once
-- (wam_internal.high_value_customers), no sort of the candidates without a
-- budget and one narrow one with it, the candidates held in memory
-- (campaign_summary), and the contact policy computed in one statement per
-- claim (claim_batch).  Per-customer variables no longer rebuild the
-- payload cache per row (src/sender_payload.c: no SQL change).

-- The customers whose lifetime value (wam.clv over `horizon`) is above
-- `threshold`: what the cost cap lets pushes above push_cost go to, for all
-- customers at once.  The same computation as wam.clv_detail, set-wise over
-- wam.customer_stats (customers without orders have the value 0); a launch
-- of a million would otherwise run wam.clv once per customer who ordered.
CREATE FUNCTION wam_internal.high_value_customers(horizon interval, threshold numeric) RETURNS wam.segment
	LANGUAGE plpgsql STABLE SET search_path = pg_catalog, wam, pg_temp
AS $$
DECLARE
	cfg wam.rfm_config;
	fit wam.clv_fit;
	unit_days float8;
	horizon_days float8;
	opy float8;
	seg wam.segment;
BEGIN
	SELECT * INTO cfg FROM wam.rfm_config;
	horizon := coalesce(horizon, interval '1 year');
	horizon_days := extract(epoch FROM horizon) / 86400;
	IF NOT horizon_days > 0 OR NOT isfinite(horizon) THEN
		RAISE EXCEPTION 'horizon must be a positive interval, not %', horizon USING ERRCODE = 'invalid_parameter_value';
	END IF;
	SELECT * INTO fit FROM wam.clv_fit;
	IF FOUND THEN
		unit_days := extract(epoch FROM fit.time_unit) / 86400;
		SELECT wam.segment_agg(v.customer_id) INTO seg
		FROM (SELECT st.customer_id,
					 round(cfg.clv_margin
						   * wam.bgnbd_expected_purchases(fit.bgnbd, p.frequency, p.recency, p."T", horizon_days / unit_days)::numeric
						   * round(wam.gammagamma_expected_spend(fit.gammagamma, p.frequency,
																 CASE WHEN p.frequency > 0
																	  THEN ((st.total_amount - st.first_day_amount) / p.frequency)::float8
																	  ELSE 0 END)::numeric, 2), 2) AS clv
			  FROM wam.customer_stats st,
				   LATERAL (SELECT (st.order_days - 1)::integer AS frequency,
								   ((st.last_day - st.first_day) / unit_days)::float8 AS recency,
								   ((greatest((pg_catalog.now() AT TIME ZONE cfg.day_time_zone)::date, st.last_day) - st.first_day)
									/ unit_days)::float8 AS "T") p) v
		WHERE coalesce(v.clv, 0) > threshold;
	ELSE
		opy := (SELECT k.repeat_orders_per_year FROM wam.rfm_cut k);
		IF opy IS NULL THEN
			SELECT sum(st.orders - 1) / sum(greatest((pg_catalog.now() AT TIME ZONE cfg.day_time_zone)::date - st.first_day, 30) / 365.25)
			INTO opy FROM wam.customer_stats st;
		END IF;
		SELECT wam.segment_agg(st.customer_id) INTO seg
		FROM wam.customer_stats st
		WHERE coalesce(round(cfg.clv_margin * (opy * horizon_days / 365.25)::numeric * round(st.total_amount / st.orders, 2), 2), 0)
			  > threshold;
	END IF;
	RETURN coalesce(seg, '{}'::wam.segment);
END
$$;
COMMENT ON FUNCTION wam_internal.high_value_customers(interval, numeric) IS 'internal: the customers whose lifetime value over the horizon (as wam.clv computes it) is above the threshold';

REVOKE EXECUTE ON FUNCTION wam_internal.high_value_customers(interval, numeric) FROM PUBLIC;

-- Every audience member with the rule that removes them (NULL: a recipient),
-- the payload, sender, the recipient's contact class and time zone, and the
-- first time their message may go out.  The preview counts these rows and the
-- launch queues them: both read the same function, so they agree.
DROP FUNCTION wam_internal.campaign_candidates(wam.campaign, wam.segment, timestamptz);
CREATE FUNCTION wam_internal.campaign_candidates(c wam.campaign, audience wam.segment, at timestamptz,
												 active_customers wam.segment DEFAULT NULL)
	RETURNS TABLE (customer_id bigint, phone text, sender_id integer, payload jsonb, active boolean,
				   time_zone text, send_at timestamptz, removed_by text)
	LANGUAGE plpgsql SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_column
DECLARE
	pol wam.contact_policy;
	capped boolean;
	active_set wam.segment;
	start_at timestamptz := greatest(at, coalesce(c.starts_at, at));
	longest interval;
	total bigint;
	attr_names text[];
	attr_ids integer[];
	cum bigint[];
	has_links boolean;
	cfg wam.rfm_config;
	cost_rule text;
	high_value wam.segment;
BEGIN
	SELECT * INTO pol FROM wam.contact_policy;
	-- the cost cap on pushes (R-R5, wam.rfm_config): up to push_cost for
	-- everyone, up to high_value_push_multiplier times that for customers
	-- whose lifetime value is above high_value_clv; the lifetime value is
	-- computed only when the cost falls between the two
	SELECT * INTO cfg FROM wam.rfm_config;
	cost_rule := CASE WHEN cfg.push_cost IS NULL OR c.cost_per_message <= cfg.push_cost THEN 'none'
					  WHEN c.cost_per_message > cfg.push_cost * cfg.high_value_push_multiplier THEN 'all'
					  ELSE 'high value only' END;
	IF cost_rule = 'high value only' THEN
		high_value := wam_internal.high_value_customers(cfg.cost_cap_horizon, cfg.high_value_clv);
	END IF;
	capped := c.category = ANY (pol.categories);
	IF capped THEN
		-- a caller deciding one customer at a time in one run (the offer
		-- triggers) passes the active customers it evaluated once, since the
		-- expression reads the whole event history
		active_set := coalesce(active_customers, wam.audience(pol.active_audience));
	END IF;
	longest := greatest(pol.active_period, pol.inactive_period, pol.min_gap);
	-- senders by their rates: the customer id's hash picks a slot of the
	-- cumulative rates (c.senders is sorted)
	SELECT array_agg(x.cum ORDER BY x.sender_id), max(x.cum) INTO cum, total
	FROM (SELECT s.sender_id, sum(s.rate_per_minute) OVER (ORDER BY s.sender_id) AS cum
		  FROM wam.sender s WHERE s.sender_id = ANY (c.senders)) x;
	-- a per-customer value may bring a link: checked per message only then
	has_links := c.template::text ~* 'https?://|\{[a-z_0-9]*(url|link)[a-z_0-9]*\}'
				 OR EXISTS (SELECT FROM wam.campaign_variable v WHERE v.campaign_id = c.campaign_id
							AND v.vars::text ~* 'https?://');
	-- placeholders that name customer attributes
	attr_ids := ARRAY(SELECT a.attribute_id FROM wam.attribute a WHERE a.name = ANY (wam.payload_placeholders(c.template)));
	attr_names := ARRAY(SELECT a.name FROM wam.attribute a WHERE a.attribute_id = ANY (attr_ids));
	RETURN QUERY
	WITH recent AS MATERIALIZED (
		-- the customers' claimed messages that the policy counts
		SELECT o.customer_id, array_agg(o.sending_at ORDER BY o.sending_at DESC) AS times
		FROM wam.outbox o
		WHERE capped AND o.category = ANY (pol.categories) AND o.sending_at > start_at - longest
		  AND o.status IN ('sending', 'sent', 'delivered', 'read', 'uncertain')
		GROUP BY o.customer_id
	), m AS (
		SELECT cu.id, cu.phone, cu.consent_at, cu.opted_out_at,
			   CASE WHEN capped THEN active_set @> cu.id END AS active,
			   CASE WHEN c.send_windows IS NOT NULL THEN wam.customer_time_zone(cu.time_zone, cu.phone) END AS tz,
			   wam.render_customer_payload(c.template,
					coalesce(c.vars, '{}') || coalesce(av.vars, '{}') || coalesce(v.vars, '{}'),
					cu.id, cu.phone, cu.name, cu.locale) AS payload,
			   r.times
		FROM wam.segment_members(audience) s(id)
			 JOIN wam.customer cu ON cu.id = s.id
			 LEFT JOIN wam.campaign_variable v ON v.campaign_id = c.campaign_id AND v.customer_id = cu.id
			 LEFT JOIN LATERAL (SELECT jsonb_object_agg(a.name, coalesce(ca.value_text, ca.value_number::text,
																		 to_char(ca.value_date, 'YYYY-MM-DD'),
																		 ca.value_boolean::text)) AS vars
								FROM wam.customer_attribute ca JOIN wam.attribute a ON a.attribute_id = ca.attribute_id
								WHERE cardinality(attr_names) > 0 AND ca.customer_id = cu.id
								  AND a.attribute_id = ANY (attr_ids)) av ON true
			 LEFT JOIN recent r ON r.customer_id = cu.id
	), n AS (
		SELECT m.*,
			   CASE WHEN m.times IS NULL THEN NULL
					ELSE greatest(m.times[1] + pol.min_gap,
								  CASE WHEN cardinality(m.times) >= CASE WHEN m.active THEN pol.active_max ELSE pol.inactive_max END
									   THEN m.times[CASE WHEN m.active THEN pol.active_max ELSE pol.inactive_max END]
											+ CASE WHEN m.active THEN pol.active_period ELSE pol.inactive_period END END) END AS allowed
		FROM m
	), w AS (
		SELECT n.*, greatest(start_at, n.allowed) AS earliest,
			   CASE WHEN c.send_windows IS NULL THEN greatest(start_at, n.allowed)
					ELSE wam.next_window_opening(c.send_windows, n.tz, greatest(start_at, n.allowed)) END AS opening
		FROM n
	)
	SELECT w.id, w.phone,
		   CASE WHEN cardinality(c.senders) = 1 THEN c.senders[1]
				ELSE c.senders[(SELECT min(u.i) FROM unnest(cum) WITH ORDINALITY u(x, i)
								WHERE (hashint8(w.id) & 2147483647) % total < u.x)] END,
		   w.payload, w.active, w.tz, w.opening,
		   CASE WHEN w.opted_out_at IS NOT NULL THEN 'opted out'
				WHEN w.consent_at IS NULL THEN 'no consent'
				WHEN w.payload IS NULL THEN 'missing variable'
				WHEN has_links AND wam_internal.unregistered_link(w.payload) IS NOT NULL THEN 'content rule'
				WHEN cost_rule = 'all' OR (cost_rule = 'high value only' AND NOT high_value @> w.id)
					THEN 'cost cap'
				WHEN w.allowed > start_at AND c.when_capped = 'skip' THEN 'contact policy'
				WHEN c.ends_at IS NOT NULL AND w.earliest >= c.ends_at THEN 'contact policy'
				WHEN c.ends_at IS NOT NULL AND w.opening >= c.ends_at THEN 'no send window'
				END
	FROM w;
END
$$;
COMMENT ON FUNCTION wam_internal.campaign_candidates(wam.campaign, wam.segment, timestamptz, wam.segment) IS 'internal: a campaign''s audience members with the rule that removes each, or their message and first send time (active_customers: the contact policy''s active customers, when the caller has them)';

REVOKE EXECUTE ON FUNCTION wam_internal.campaign_candidates(wam.campaign, wam.segment, timestamptz, wam.segment) FROM PUBLIC;

-- What a launch at `at` does, rule by rule: the preview calls it with queue
-- false, the launch with queue true, so both count the same rows in the same
-- statement that queues them.  Within a budget the recipients with the lowest
-- hashes of their ids are kept (not the oldest customers): those up to the
-- budget's last one (cutoff, one narrow sort of the eligible ids; no sort at
-- all without a budget).  The candidates are held once in memory (work_mem
-- below: a million rendered messages fit, instead of spilling twice).
CREATE OR REPLACE FUNCTION wam_internal.campaign_summary(c wam.campaign, audience wam.segment, at timestamptz, queue boolean,
											  variant text,
											  OUT audience_size bigint, OUT opted_out bigint, OUT no_consent bigint,
											  OUT missing_variable bigint, OUT content_rule bigint, OUT cost_cap bigint,
											  OUT contact_policy bigint, OUT no_send_window bigint, OUT over_budget bigint, OUT recipients bigint,
											  OUT deferred bigint, OUT expected_cost numeric, OUT expected_duration interval,
											  OUT queued bigint)
	LANGUAGE plpgsql SET search_path = pg_catalog, wam, pg_temp SET work_mem = '256MB'
AS $$
DECLARE
	rate bigint;
	start_at timestamptz := greatest(at, coalesce(c.starts_at, at));
	eligible bigint;
	keep bigint := CASE WHEN c.budget IS NOT NULL AND c.cost_per_message > 0
						THEN floor(c.budget / c.cost_per_message)::bigint END;
BEGIN
	WITH x AS MATERIALIZED (
		SELECT y.* FROM wam_internal.campaign_candidates(c, audience, at) y
	), cutoff AS MATERIALIZED (
		-- the last recipient within the budget (none: all fit); read only with a budget
		SELECT hashint8(x.customer_id) AS h, x.customer_id AS id FROM x
		WHERE x.removed_by IS NULL
		ORDER BY 1, 2 OFFSET greatest(keep - 1, 0) LIMIT 1
	), k AS NOT MATERIALIZED (
		SELECT x.*, x.removed_by IS NULL
					AND (keep IS NULL
						 OR (keep > 0 AND coalesce((hashint8(x.customer_id), x.customer_id) <= (SELECT cutoff.h, cutoff.id FROM cutoff),
												   true))) AS kept
		FROM x
	), ins AS (
		INSERT INTO wam.outbox (sender_id, customer_id, recipient, payload, campaign, variant, campaign_id, category,
								contact_class, time_zone, not_before, next_attempt_at, expires_at)
		SELECT k.sender_id, k.customer_id, k.phone, k.payload, c.name, variant, c.campaign_id, c.category,
			   CASE WHEN k.active THEN 'active' WHEN NOT k.active THEN 'inactive' END, k.time_zone,
			   start_at, k.send_at, c.ends_at
		FROM k
		WHERE queue AND k.kept
		RETURNING 1
	)
	SELECT count(*), count(*) FILTER (WHERE k.removed_by = 'opted out'), count(*) FILTER (WHERE k.removed_by = 'no consent'),
		   count(*) FILTER (WHERE k.removed_by = 'missing variable'), count(*) FILTER (WHERE k.removed_by = 'content rule'),
		   count(*) FILTER (WHERE k.removed_by = 'cost cap'),
		   count(*) FILTER (WHERE k.removed_by = 'contact policy'), count(*) FILTER (WHERE k.removed_by = 'no send window'),
		   count(*) FILTER (WHERE k.removed_by IS NULL),
		   count(*) FILTER (WHERE k.kept),
		   count(*) FILTER (WHERE k.kept AND k.send_at > start_at),
		   (SELECT count(*) FROM ins)
	INTO audience_size, opted_out, no_consent, missing_variable, content_rule, cost_cap, contact_policy, no_send_window,
		 eligible, recipients, deferred, queued
	FROM k;
	over_budget := eligible - recipients;
	expected_cost := recipients * c.cost_per_message;
	SELECT sum(s.rate_per_minute) INTO rate FROM wam.sender s WHERE s.sender_id = ANY (c.senders);
	expected_duration := make_interval(secs => ceil(60.0 * recipients / rate));
END
$$;
COMMENT ON FUNCTION wam_internal.campaign_summary(wam.campaign, wam.segment, timestamptz, boolean, text) IS 'internal: counts of a campaign''s audience by the rule that removes them, cost and duration; queues the messages (of a variant) when asked';

REVOKE EXECUTE ON FUNCTION wam_internal.campaign_summary(wam.campaign, wam.segment, timestamptz, boolean, text) FROM PUBLIC;

CREATE OR REPLACE FUNCTION wam_internal.claim_batch(sender integer, max_messages integer)
	RETURNS TABLE (message_id bigint, body text)
	LANGUAGE plpgsql SET search_path = pg_catalog, wam, pg_temp
	-- small batches with poor row estimates: JIT compilation would cost more than the query
	SET jit = off
AS $$
#variable_conflict use_variable
DECLARE
	s wam.sender;
	lim integer;
	used integer;
	new_allowed integer;
	plim integer;
	p_new_allowed integer;
	expired integer;
	held_templates boolean;
	ruled bigint[];
	pol wam.contact_policy;
BEGIN
	SELECT * INTO s FROM wam.sender x WHERE x.sender_id = sender;
	IF NOT FOUND OR s.paused OR max_messages < 1 THEN
		RETURN;
	END IF;
	-- this number's own cap (warm-up, an administrator's limit)
	lim := wam.sender_daily_limit(s);
	IF lim IS NOT NULL THEN
		SELECT count(DISTINCT o.recipient) INTO used FROM wam.outbox o
		WHERE o.sender_id = sender AND o.sending_at > pg_catalog.now() - interval '24 hours';
		new_allowed := greatest(lim - used, 0);
	END IF;
	-- templates Meta paused or disabled for this number's account (wam.template_status)
	held_templates := s.waba_id IS NOT NULL
					  AND EXISTS (SELECT FROM wam.template_status t WHERE t.waba_id = s.waba_id AND t.blocked);
	-- Campaign rules, for the due messages that carry them: the contact
	-- policy and the send windows.  A lock per customer, taken in id order,
	-- makes claims of different senders for one customer wait for each other;
	-- the check then runs as a new statement, which sees what they committed.
	-- Refused messages wait for their next allowed time (or are skipped, or
	-- expire when that is past the campaign's end); one message per customer
	-- goes out per claim (below), so a batch cannot exceed the policy either.
	-- The policy is computed for them in one statement.  (As many are
	-- checked as the claim below reads: with fewer, it would read past the
	-- unchecked ones, through the whole queue.)
	ruled := ARRAY(SELECT o.message_id FROM wam.outbox o
				   WHERE o.sender_id = sender AND o.status IN ('queued', 'retrying')
					 AND o.next_attempt_at <= pg_catalog.now() AND o.campaign_id IS NOT NULL
				   ORDER BY o.priority DESC, o.next_attempt_at, o.message_id
				   LIMIT max_messages * 4
				   FOR UPDATE SKIP LOCKED);
	IF cardinality(ruled) > 0 THEN
		PERFORM wam_internal.lock_key(5, x.customer_id)
		FROM (SELECT DISTINCT o.customer_id FROM wam.outbox o
			  WHERE o.message_id = ANY (ruled) AND o.contact_class IS NOT NULL ORDER BY 1) x;
		SELECT * INTO pol FROM wam.contact_policy;
		WITH h AS (
			-- what wam_internal.contact_next_allowed computes, for all at once:
			-- the customer's claimed messages the policy counts, latest first
			SELECT o.message_id, c.when_capped, c.send_windows, o.time_zone, o.contact_class = 'active' AS active, r.times
			FROM wam.outbox o JOIN wam.campaign c ON c.campaign_id = o.campaign_id
				 LEFT JOIN LATERAL (
					SELECT array_agg(p.sending_at ORDER BY p.sending_at DESC) AS times
					FROM wam.outbox p
					WHERE p.customer_id = o.customer_id AND p.category = ANY (pol.categories)
					  AND p.sending_at > pg_catalog.now() - greatest(CASE WHEN o.contact_class = 'active' THEN pol.active_period
																		ELSE pol.inactive_period END, pol.min_gap)
					  AND p.status IN ('sending', 'sent', 'delivered', 'read', 'uncertain')
					  AND p.message_id <> o.message_id) r ON o.contact_class IS NOT NULL
			WHERE o.message_id = ANY (ruled)
		), j AS (
			SELECT h.message_id, h.when_capped, h.send_windows, h.time_zone,
				   CASE WHEN h.times IS NOT NULL AND x.t > pg_catalog.now() THEN x.t END AS allowed
			FROM h, LATERAL (
				SELECT greatest(h.times[1] + pol.min_gap,
								CASE WHEN cardinality(h.times) >= x.lim
									 THEN h.times[x.lim] + CASE WHEN h.active THEN pol.active_period ELSE pol.inactive_period END END) AS t
				FROM (SELECT CASE WHEN h.active THEN pol.active_max ELSE pol.inactive_max END AS lim) x) x
		), k AS (
			SELECT j.*, CASE WHEN j.send_windows IS NULL THEN coalesce(j.allowed, pg_catalog.now())
							 ELSE wam.next_window_opening(j.send_windows, j.time_zone, coalesce(j.allowed, pg_catalog.now()))
							 END AS next_at
			FROM j
		)
		UPDATE wam.outbox o SET
			status = CASE WHEN k.allowed IS NOT NULL AND k.when_capped = 'skip' THEN 'cancelled'
						  WHEN k.next_at >= o.expires_at THEN 'expired' ELSE o.status END,
			cancelled_at = CASE WHEN k.allowed IS NOT NULL AND k.when_capped = 'skip' THEN pg_catalog.now() END,
			expired_at = CASE WHEN NOT (k.allowed IS NOT NULL AND k.when_capped = 'skip') AND k.next_at >= o.expires_at
							  THEN pg_catalog.now() END,
			error_detail = CASE WHEN k.allowed IS NOT NULL AND k.when_capped = 'skip'
								THEN 'skipped: the contact policy allows the next message at ' || k.allowed
								WHEN k.next_at >= o.expires_at
								THEN CASE WHEN k.allowed >= o.expires_at THEN 'the contact policy allows no message before the campaign ends'
										  ELSE 'no send window opens before the campaign ends' END
								ELSE o.error_detail END,
			next_attempt_at = k.next_at
		FROM k WHERE o.message_id = k.message_id AND k.next_at > pg_catalog.now();
	END IF;
	-- The business portfolio's messaging limit, shared by all its numbers:
	-- unique recipients of templates outside their customer-service window in
	-- 24 hours.  Claims of the portfolio's senders serialize on its lock
	-- (space 6, taken after the customers' locks, as every claim does), and
	-- each reads the counter as the claims before it committed it: together
	-- they cannot pass the limit.  Expired recipients leave the count first.
	SELECT p.daily_limit INTO plim FROM wam.portfolio p WHERE p.portfolio_id = s.portfolio_id;
	IF plim IS NOT NULL THEN
		PERFORM wam_internal.lock_key(6, s.portfolio_id);
		DELETE FROM wam.portfolio_recipient r
		WHERE r.portfolio_id = s.portfolio_id AND r.last_sent_at <= pg_catalog.now() - interval '24 hours';
		GET DIAGNOSTICS expired = ROW_COUNT;
		IF expired > 0 THEN
			UPDATE wam.portfolio p SET recipients_24h = greatest(p.recipients_24h - expired, 0)
			WHERE p.portfolio_id = s.portfolio_id;
		END IF;
		SELECT p.daily_limit, greatest(p.daily_limit - p.recipients_24h, 0) INTO plim, p_new_allowed
		FROM wam.portfolio p WHERE p.portfolio_id = s.portfolio_id;
	END IF;
	RETURN QUERY
	WITH cand AS MATERIALIZED (
		SELECT o.message_id, o.recipient, o.customer_id, o.expires_at, o.priority, o.next_attempt_at,
			   o.payload->>'type' = 'template' AS is_template,
			   CASE WHEN held_templates AND o.payload->>'type' = 'template'
					THEN (SELECT format('waiting: template "%s" (%s) is %s', t.name, t.language, t.status)
						  FROM wam.template_status t
						  WHERE t.waba_id = s.waba_id AND t.blocked AND t.name = o.payload->'template'->>'name'
							AND t.language = replace(o.payload->'template'->'language'->>'code', '-', '_')) END AS held
		FROM wam.outbox o
		WHERE o.sender_id = sender AND o.status IN ('queued', 'retrying')
		  AND o.next_attempt_at <= pg_catalog.now()
		  -- campaign messages only as checked above
		  AND (o.campaign_id IS NULL OR o.message_id = ANY (ruled))
		ORDER BY o.priority DESC, o.next_attempt_at, o.message_id
		LIMIT max_messages * 4
		FOR UPDATE SKIP LOCKED
	), gone AS (
		UPDATE wam.outbox o SET status = 'expired', expired_at = pg_catalog.now()
		FROM cand WHERE o.message_id = cand.message_id AND cand.expires_at <= pg_catalog.now()
		RETURNING o.message_id
	), parked AS (
		-- a paused template's messages leave the due order until it is approved
		-- again (wam_internal.apply_account_change releases them); a campaign's
		-- end or their own expiry still expires them
		UPDATE wam.outbox o SET next_attempt_at = 'infinity', error_detail = cand.held
		FROM cand WHERE o.message_id = cand.message_id AND cand.held IS NOT NULL
		  AND (cand.expires_at IS NULL OR cand.expires_at > pg_catalog.now())
		RETURNING o.message_id
	), ok AS (
		-- one message per recipient, none within 6 s of the last one (pair limit)
		SELECT DISTINCT ON (cand.recipient) cand.*,
			   lim IS NOT NULL AND EXISTS (SELECT FROM wam.outbox p WHERE p.sender_id = sender
										   AND p.recipient = cand.recipient
										   AND p.sending_at > pg_catalog.now() - interval '24 hours') AS known,
			   -- what the portfolio's limit counts: templates to customers whose
			   -- window is closed (free-form messages need an open one)
			   plim IS NOT NULL AND cand.is_template
			   AND NOT EXISTS (SELECT FROM wam.customer c WHERE c.id = cand.customer_id
							   AND c.last_inbound_at > pg_catalog.now() - interval '24 hours') AS counted,
			   plim IS NOT NULL AND EXISTS (SELECT FROM wam.portfolio_recipient r WHERE r.portfolio_id = s.portfolio_id
											AND r.recipient = cand.recipient) AS p_known
		FROM cand
		WHERE (cand.expires_at IS NULL OR cand.expires_at > pg_catalog.now()) AND cand.held IS NULL
		  -- the row's own earlier attempt does not count: a row is retried only
		  -- when the API did not take it (unanswered rows become uncertain)
		  AND NOT EXISTS (SELECT FROM wam.outbox p WHERE p.sender_id = sender AND p.recipient = cand.recipient
						  AND p.sending_at > pg_catalog.now() - interval '6 seconds'
						  AND p.message_id <> cand.message_id)
		ORDER BY cand.recipient, cand.priority DESC, cand.next_attempt_at, cand.message_id
	), own AS (
		-- within this number's cap
		SELECT ok.* FROM (
			SELECT ok.*, row_number() OVER (PARTITION BY ok.known
											ORDER BY ok.priority DESC, ok.next_attempt_at, ok.message_id) AS rn
			FROM ok) ok
		WHERE lim IS NULL OR ok.known OR ok.rn <= new_allowed
	), pick AS (
		-- and within the portfolio's limit
		SELECT own.message_id, own.recipient, own.counted FROM (
			SELECT own.*, row_number() OVER (PARTITION BY own.counted AND NOT own.p_known
											 ORDER BY own.priority DESC, own.next_attempt_at, own.message_id) AS prn
			FROM own) own
		WHERE plim IS NULL OR NOT own.counted OR own.p_known OR own.prn <= p_new_allowed
		ORDER BY own.priority DESC, own.next_attempt_at, own.message_id
		LIMIT max_messages
	), upd AS (
		UPDATE wam.outbox o SET status = 'sending', sending_at = pg_catalog.now(), attempts = o.attempts + 1
		FROM pick WHERE o.message_id = pick.message_id
		RETURNING o.message_id, o.recipient, o.payload, o.priority, o.next_attempt_at
	), counted AS (
		INSERT INTO wam.portfolio_recipient AS r (portfolio_id, recipient, last_sent_at)
		SELECT s.portfolio_id, pick.recipient, pg_catalog.now() FROM pick WHERE pick.counted
		ON CONFLICT ON CONSTRAINT portfolio_recipient_pkey DO UPDATE SET last_sent_at = EXCLUDED.last_sent_at
		RETURNING r.xmax = 0 AS added
	), tally AS (
		UPDATE wam.portfolio p SET recipients_24h = p.recipients_24h + x.n
		FROM (SELECT count(*) AS n FROM counted WHERE counted.added) x
		WHERE p.portfolio_id = s.portfolio_id AND x.n > 0
		RETURNING 1
	)
	SELECT upd.message_id,
		   (upd.payload || jsonb_build_object('messaging_product', 'whatsapp', 'recipient_type', 'individual',
											  'to', '+' || upd.recipient,
											  'biz_opaque_callback_data', 'wam:' || upd.message_id))::text
	FROM upd ORDER BY upd.priority DESC, upd.next_attempt_at, upd.message_id;
END
$$;
COMMENT ON FUNCTION wam_internal.claim_batch(integer, integer) IS 'internal: the sender worker claims due messages of a sender (SKIP LOCKED), marks them sending and gets their request bodies; honours the pair limit, the number''s own cap, the portfolio''s messaging limit (under the portfolio''s lock) and paused templates, expires overdue rows';

REVOKE EXECUTE ON FUNCTION wam_internal.claim_batch(integer, integer) FROM PUBLIC;
