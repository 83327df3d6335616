-- src/sql/campaign.sql: campaigns (audience, template, per-customer variables,
-- senders, category and cost, budget, start and end, send windows), their
-- states and history, the preview and the launch, and the contact-pressure
-- policy the sender worker enforces when it claims a message.

-- contact pressure

-- One row: how often a customer may get marketing messages.  The worker
-- checks it when it claims a message (wam_internal.claim_batch), under a lock
-- per customer, so campaigns sending at the same time cannot together exceed
-- it; the preview and the launch apply it too, to say whom it removes.
CREATE TABLE wam.contact_policy (
	policy boolean PRIMARY KEY DEFAULT true CONSTRAINT contact_policy_one_row CHECK (policy),
	active_audience text NOT NULL,
	active_max integer NOT NULL CONSTRAINT contact_policy_active_max CHECK (active_max BETWEEN 1 AND 1000),
	active_period interval NOT NULL CONSTRAINT contact_policy_active_period CHECK (active_period BETWEEN interval '1 hour' AND interval '366 days'),
	inactive_max integer NOT NULL CONSTRAINT contact_policy_inactive_max CHECK (inactive_max BETWEEN 1 AND 1000),
	inactive_period interval NOT NULL CONSTRAINT contact_policy_inactive_period CHECK (inactive_period BETWEEN interval '1 hour' AND interval '366 days'),
	min_gap interval NOT NULL CONSTRAINT contact_policy_min_gap CHECK (min_gap BETWEEN interval '0' AND interval '366 days'),
	categories text[] NOT NULL CONSTRAINT contact_policy_categories
		CHECK (categories <@ ARRAY['marketing', 'utility', 'authentication'])
);
COMMENT ON TABLE wam.contact_policy IS 'contact pressure: at most active_max messages per active_period to active customers, inactive_max per inactive_period to the others, at least min_gap apart; for campaign messages of the listed categories (change with UPDATE)';
COMMENT ON COLUMN wam.contact_policy.active_audience IS 'segment expression of the customers who count as active, evaluated when a campaign is launched';
COMMENT ON COLUMN wam.contact_policy.categories IS 'message categories the policy counts and limits (utility and authentication messages are exempt by default)';

INSERT INTO wam.contact_policy (active_audience, active_max, active_period, inactive_max, inactive_period, min_gap, categories)
VALUES ('event(order) within 90d OR event(message_read) within 30d OR event(reply) within 30d',
		3, interval '7 days', 1, interval '14 days', interval '36 hours', '{marketing}');

REVOKE ALL ON wam.contact_policy FROM PUBLIC;
GRANT SELECT ON wam.contact_policy TO wam_reader;
GRANT UPDATE (active_audience, active_max, active_period, inactive_max, inactive_period, min_gap, categories)
	ON wam.contact_policy TO wam_admin;
GRANT SELECT ON wam.contact_policy TO wam_definer;

CREATE FUNCTION wam_internal.contact_policy_check_trigger() RETURNS trigger
	LANGUAGE plpgsql SET search_path = pg_catalog, wam, pg_temp
AS $$
DECLARE
	problem text;
BEGIN
	problem := wam.audience_problem(NEW.active_audience);
	IF problem IS NOT NULL THEN
		RAISE EXCEPTION 'active_audience is not a valid segment expression: %', problem
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	RETURN NEW;
END
$$;
COMMENT ON FUNCTION wam_internal.contact_policy_check_trigger() IS 'internal: checks the contact policy''s audience expression';

REVOKE EXECUTE ON FUNCTION wam_internal.contact_policy_check_trigger() FROM PUBLIC;

CREATE TRIGGER contact_policy_check BEFORE UPDATE ON wam.contact_policy
	FOR EACH ROW EXECUTE FUNCTION wam_internal.contact_policy_check_trigger();

-- When a customer may next get a message of the policy's categories, given
-- the messages already claimed for them (not `self`): NULL when now.  Counted
-- are messages whose claim went through (sending_at set) and that were not
-- refused before sending.
CREATE FUNCTION wam_internal.contact_next_allowed(customer bigint, active boolean, at timestamptz, self bigint)
	RETURNS timestamptz
	LANGUAGE plpgsql STABLE SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	pol wam.contact_policy;
	lim integer;
	period interval;
	times timestamptz[];
	t timestamptz;
BEGIN
	SELECT * INTO pol FROM wam.contact_policy;
	lim := CASE WHEN active THEN pol.active_max ELSE pol.inactive_max END;
	period := CASE WHEN active THEN pol.active_period ELSE pol.inactive_period END;
	times := ARRAY(SELECT o.sending_at FROM wam.outbox o
				   WHERE o.customer_id = customer AND o.category = ANY (pol.categories)
					 AND o.sending_at > at - greatest(period, pol.min_gap)
					 AND o.status IN ('sending', 'sent', 'delivered', 'read', 'uncertain')
					 AND o.message_id <> coalesce(self, 0)
				   ORDER BY o.sending_at DESC);
	IF cardinality(times) = 0 THEN
		RETURN NULL;
	END IF;
	t := times[1] + pol.min_gap;
	IF cardinality(times) >= lim THEN
		-- the lim-th latest leaves the period first
		t := greatest(t, times[lim] + period);
	END IF;
	RETURN CASE WHEN t > at THEN t END;
END
$$;
COMMENT ON FUNCTION wam_internal.contact_next_allowed(bigint, boolean, timestamptz, bigint) IS 'internal: when the contact policy next allows a message to a customer (NULL: now)';

REVOKE EXECUTE ON FUNCTION wam_internal.contact_next_allowed(bigint, boolean, timestamptz, bigint) FROM PUBLIC;

-- content rules

-- The business's own link domains: a campaign message may link only to these
-- (and their subdomains); links elsewhere are refused at launch.
CREATE TABLE wam.link_domain (
	domain text PRIMARY KEY CONSTRAINT link_domain_name
		CHECK (domain ~ '^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$' AND length(domain) <= 253),
	added_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE wam.link_domain IS 'the business''s registered link domains: campaign messages may link only to these and their subdomains (administrators INSERT and DELETE)';

REVOKE ALL ON wam.link_domain FROM PUBLIC;
GRANT SELECT ON wam.link_domain TO wam_reader;
GRANT INSERT, DELETE ON wam.link_domain TO wam_admin;
GRANT SELECT ON wam.link_domain TO wam_definer;

-- The web links in a payload's text (template parameters and buttons included).
CREATE FUNCTION wam.payload_links(payload jsonb) RETURNS text[]
	LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN (SELECT coalesce(array_agg(DISTINCT m[1] ORDER BY m[1]), '{}')
		FROM regexp_matches(payload::text, '(https?://[^\s"''<>\\]+)', 'gi') m);
COMMENT ON FUNCTION wam.payload_links(jsonb) IS 'the http and https links in a payload';

REVOKE EXECUTE ON FUNCTION wam.payload_links(jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.payload_links(jsonb) TO wam_reader;

-- The first link of a payload whose host is not a registered domain (or one
-- of its subdomains), NULL when there is none.
CREATE FUNCTION wam_internal.unregistered_link(payload jsonb) RETURNS text
	LANGUAGE sql STABLE STRICT SET search_path = pg_catalog, wam, pg_temp
RETURN (SELECT l FROM unnest(wam.payload_links(payload)) l,
			   LATERAL (SELECT lower(substring(l FROM '^[A-Za-z]+://(?:[^/?#@]*@)?([^/:?#]+)')) AS host) h
		WHERE NOT EXISTS (SELECT FROM wam.link_domain d
						  WHERE h.host = d.domain OR right(h.host, length(d.domain) + 1) = '.' || d.domain)
		ORDER BY l LIMIT 1);
COMMENT ON FUNCTION wam_internal.unregistered_link(jsonb) IS 'internal: the first link of a payload outside the registered link domains';

REVOKE EXECUTE ON FUNCTION wam_internal.unregistered_link(jsonb) FROM PUBLIC;

-- campaigns

CREATE TABLE wam.campaign (
	campaign_id integer GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
	name text NOT NULL UNIQUE CONSTRAINT campaign_name CHECK (name ~ '^[^[:space:][:cntrl:]]([^[:cntrl:]]{0,98}[^[:space:][:cntrl:]])?$'),
	audience text NOT NULL,
	template jsonb NOT NULL,
	vars jsonb,
	senders integer[] NOT NULL,
	category text NOT NULL DEFAULT 'marketing'
		CONSTRAINT campaign_category CHECK (category IN ('marketing', 'utility', 'authentication')),
	cost_per_message numeric NOT NULL DEFAULT 0 CONSTRAINT campaign_cost CHECK (cost_per_message >= 0 AND cost_per_message < 'Infinity'),
	budget numeric CONSTRAINT campaign_budget CHECK (budget > 0 AND budget < 'Infinity'),
	send_windows text,
	when_capped text NOT NULL DEFAULT 'defer' CONSTRAINT campaign_when_capped CHECK (when_capped IN ('defer', 'skip')),
	starts_at timestamptz,
	ends_at timestamptz,
	state text NOT NULL DEFAULT 'draft'
		CONSTRAINT campaign_state CHECK (state IN ('draft', 'scheduled', 'running', 'finished', 'cancelled')),
	audience_snapshot wam.segment,
	created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	launched_at timestamptz,
	finished_at timestamptz,
	-- a follow-up step: launched by the "campaign states" job `follow_up_after`
	-- the parent's launch, to the parent's recipients who did not `follow_up_unless`
	parent_id integer REFERENCES wam.campaign ON DELETE CASCADE,
	follow_up_after interval CONSTRAINT campaign_follow_up_after CHECK (follow_up_after BETWEEN interval '1 hour' AND interval '90 days'),
	follow_up_unless text CONSTRAINT campaign_follow_up_unless CHECK (follow_up_unless IN ('read', 'reply', 'click', 'order')),
	-- orders placed this long after a message are attributed to the campaign
	-- (wam.campaign_orders): to the last campaign message before them, or the first
	attribution_window interval NOT NULL DEFAULT '7 days'
		CONSTRAINT campaign_attribution_window CHECK (attribution_window BETWEEN interval '1 hour' AND interval '90 days'),
	attribution text NOT NULL DEFAULT 'last_touch' CONSTRAINT campaign_attribution CHECK (attribution IN ('last_touch', 'first_touch')),
	CONSTRAINT campaign_period CHECK (ends_at > starts_at),
	CONSTRAINT campaign_follow_up CHECK ((parent_id IS NULL) = (follow_up_after IS NULL) AND (parent_id IS NULL) = (follow_up_unless IS NULL))
);
COMMENT ON COLUMN wam.campaign.parent_id IS 'for a follow-up step: the campaign it follows';
COMMENT ON COLUMN wam.campaign.follow_up_unless IS 'for a follow-up step: who is left out, those of the parent''s recipients who read, replied, clicked (a link_click event) or ordered since its message';
COMMENT ON TABLE wam.campaign IS 'campaigns: audience, template, senders, category and cost, budget, period, send windows and state';
COMMENT ON COLUMN wam.campaign.audience IS 'segment expression, evaluated at launch into audience_snapshot';
COMMENT ON COLUMN wam.campaign.vars IS 'placeholder values for every recipient (wam.campaign_variable overrides them per customer)';
COMMENT ON COLUMN wam.campaign.senders IS 'the senders (wam.sender ids) the messages are spread over, by their rates';
COMMENT ON COLUMN wam.campaign.send_windows IS 'local-time windows of the recipient the messages may go out in (wam.check_send_windows); NULL: any time';
COMMENT ON COLUMN wam.campaign.when_capped IS 'a message the contact policy holds back: defer (to the next allowed time before ends_at) or skip';
COMMENT ON COLUMN wam.campaign.ends_at IS 'messages not sent by then expire';
COMMENT ON COLUMN wam.campaign.attribution_window IS 'how long after its message a recipient''s order counts for the campaign';
COMMENT ON COLUMN wam.campaign.attribution IS 'which campaign message an order is attributed to: last_touch (the last one before the order) or first_touch (the first in the window)';

REVOKE ALL ON wam.campaign FROM PUBLIC;
GRANT SELECT ON wam.campaign TO wam_reader;
GRANT SELECT, INSERT, UPDATE ON wam.campaign TO wam_definer;
GRANT USAGE ON SEQUENCE wam.campaign_campaign_id_seq TO wam_definer;

CREATE TABLE wam.campaign_change (
	change_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	campaign_id integer NOT NULL REFERENCES wam.campaign ON DELETE CASCADE,
	changed_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	changed_by name NOT NULL,
	action text NOT NULL,
	from_state text,
	to_state text,
	detail jsonb
);
CREATE INDEX campaign_change_campaign ON wam.campaign_change (campaign_id, change_id);
COMMENT ON TABLE wam.campaign_change IS 'who changed which campaign when: creation, settings, launch, state changes, cancellation';

REVOKE ALL ON wam.campaign_change FROM PUBLIC;
GRANT SELECT ON wam.campaign_change TO wam_reader;
GRANT SELECT, INSERT ON wam.campaign_change TO wam_definer;

-- Per-customer placeholder values of a campaign ({product}, {amount}, ...),
-- filled by the operator from any table or query before the launch.
CREATE TABLE wam.campaign_variable (
	campaign_id integer NOT NULL REFERENCES wam.campaign ON DELETE CASCADE,
	customer_id bigint NOT NULL,
	vars jsonb NOT NULL CONSTRAINT campaign_variable_object CHECK (jsonb_typeof(vars) = 'object'),
	PRIMARY KEY (campaign_id, customer_id)
);
COMMENT ON TABLE wam.campaign_variable IS 'per campaign and customer: placeholder values (a JSON object), overriding the campaign''s vars; INSERT them from any query while the campaign is a draft';

REVOKE ALL ON wam.campaign_variable FROM PUBLIC;
GRANT SELECT ON wam.campaign_variable TO wam_reader;
GRANT SELECT, INSERT, UPDATE, DELETE ON wam.campaign_variable TO wam_operator;
GRANT SELECT ON wam.campaign_variable TO wam_definer;

CREATE FUNCTION wam_internal.campaign_variable_trigger() RETURNS trigger
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
DECLARE
	st text;
BEGIN
	SELECT c.state INTO st FROM wam.campaign c
	WHERE c.campaign_id = CASE WHEN TG_OP = 'DELETE' THEN OLD.campaign_id ELSE NEW.campaign_id END;
	IF st IS DISTINCT FROM 'draft' AND NOT wam_internal.restoring() THEN
		RAISE EXCEPTION 'the variables of a campaign can change only while it is a draft'
			USING ERRCODE = 'object_not_in_prerequisite_state',
				  DETAIL = format('The campaign is %s.', st);
	END IF;
	RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
END
$$;
COMMENT ON FUNCTION wam_internal.campaign_variable_trigger() IS 'internal: campaign variables change only while the campaign is a draft';

REVOKE EXECUTE ON FUNCTION wam_internal.campaign_variable_trigger() FROM PUBLIC;

CREATE TRIGGER campaign_variable_draft BEFORE INSERT OR UPDATE OR DELETE ON wam.campaign_variable
	FOR EACH ROW EXECUTE FUNCTION wam_internal.campaign_variable_trigger();

CREATE FUNCTION wam_internal.campaign_row(campaign text, lock boolean) RETURNS wam.campaign
	LANGUAGE plpgsql SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	c wam.campaign;
BEGIN
	PERFORM wam_internal.refuse_null(campaign IS NULL, 'campaign');
	IF lock THEN
		SELECT * INTO c FROM wam.campaign x WHERE x.name = campaign FOR UPDATE;
	ELSE
		SELECT * INTO c FROM wam.campaign x WHERE x.name = campaign;
	END IF;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'campaign "%" does not exist', campaign USING ERRCODE = 'undefined_object';
	END IF;
	RETURN c;
END
$$;
COMMENT ON FUNCTION wam_internal.campaign_row(text, boolean) IS 'internal: a campaign by name (locked if asked), or an error';

REVOKE EXECUTE ON FUNCTION wam_internal.campaign_row(text, boolean) FROM PUBLIC;

-- Checks a campaign's settings as a whole; the sender names to ids.
CREATE FUNCTION wam_internal.campaign_check(c wam.campaign) RETURNS void
	LANGUAGE plpgsql SET search_path = pg_catalog, wam, pg_temp
AS $$
DECLARE
	problem text;
BEGIN
	problem := wam.audience_problem(c.audience);
	IF problem IS NOT NULL THEN
		RAISE EXCEPTION 'the audience is not a valid segment expression: %', problem
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF NOT wam.check_payload(c.template) THEN
		RAISE EXCEPTION 'a campaign sends a template, not a free-form message'
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Free-form messages are allowed only within a customer''s 24-hour window: use wam.enqueue_message.';
	END IF;
	IF c.vars IS NOT NULL AND jsonb_typeof(c.vars) <> 'object' THEN
		RAISE EXCEPTION 'vars must be a JSON object of placeholder values' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF cardinality(c.senders) IS NULL OR cardinality(c.senders) = 0 THEN
		RAISE EXCEPTION 'a campaign needs at least one sender' USING ERRCODE = 'invalid_parameter_value';
	END IF;
END
$$;
COMMENT ON FUNCTION wam_internal.campaign_check(wam.campaign) IS 'internal: checks a campaign''s audience, template and vars';

REVOKE EXECUTE ON FUNCTION wam_internal.campaign_check(wam.campaign) FROM PUBLIC;

CREATE FUNCTION wam_internal.sender_ids(senders text[]) RETURNS integer[]
	LANGUAGE plpgsql STABLE SET search_path = pg_catalog, wam, pg_temp
AS $$
DECLARE
	sids integer[];
BEGIN
	IF senders IS NULL THEN
		sids := ARRAY[wam.sender_id(NULL)];
	ELSIF array_position(senders, NULL) IS NOT NULL THEN
		RAISE EXCEPTION 'sender names must not be null' USING ERRCODE = 'null_value_not_allowed';
	ELSE
		sids := ARRAY(SELECT DISTINCT wam.sender_id(s) FROM unnest(senders) s ORDER BY 1);
	END IF;
	-- the staff grants (wam.sender_grant)
	PERFORM wam_internal.check_sender_use(sids);
	RETURN sids;
END
$$;
COMMENT ON FUNCTION wam_internal.sender_ids(text[]) IS 'internal: sender ids of names (NULL: the only sender), if the session may send from each';

REVOKE EXECUTE ON FUNCTION wam_internal.sender_ids(text[]) FROM PUBLIC;

CREATE FUNCTION wam.create_campaign(name text, audience text, template jsonb, senders text[] DEFAULT NULL,
									vars jsonb DEFAULT NULL, category text DEFAULT 'marketing',
									cost_per_message numeric DEFAULT 0, budget numeric DEFAULT NULL,
									send_windows text DEFAULT NULL, starts_at timestamptz DEFAULT NULL,
									ends_at timestamptz DEFAULT NULL, when_capped text DEFAULT 'defer')
	RETURNS integer
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	c wam.campaign;
BEGIN
	PERFORM wam_internal.refuse_null(name IS NULL, 'name');
	PERFORM wam_internal.refuse_null(audience IS NULL, 'audience');
	PERFORM wam_internal.refuse_null(template IS NULL, 'template');
	c.name := name; c.audience := audience; c.template := template; c.vars := vars;
	c.senders := wam_internal.sender_ids(senders);
	c.category := coalesce(category, 'marketing'); c.cost_per_message := coalesce(cost_per_message, 0);
	c.budget := budget; c.send_windows := wam.check_send_windows(send_windows);
	c.starts_at := starts_at; c.ends_at := ends_at; c.when_capped := coalesce(when_capped, 'defer');
	PERFORM wam_internal.campaign_check(c);
	IF EXISTS (SELECT FROM wam.campaign x WHERE x.name = name) THEN
		RAISE EXCEPTION 'campaign "%" already exists', name USING ERRCODE = 'duplicate_object';
	END IF;
	INSERT INTO wam.campaign (name, audience, template, vars, senders, category, cost_per_message, budget,
							  send_windows, starts_at, ends_at, when_capped)
	VALUES (c.name, c.audience, c.template, c.vars, c.senders, c.category, c.cost_per_message, c.budget,
			c.send_windows, c.starts_at, c.ends_at, c.when_capped)
	RETURNING * INTO c;
	INSERT INTO wam.campaign_change (campaign_id, changed_by, action, to_state, detail)
	VALUES (c.campaign_id, session_user, 'created', 'draft',
			jsonb_strip_nulls(to_jsonb(c) - 'campaign_id' - 'state' - 'created_at' - 'audience_snapshot'));
	RETURN c.campaign_id;
END
$$;
COMMENT ON FUNCTION wam.create_campaign(text, text, jsonb, text[], jsonb, text, numeric, numeric, text, timestamptz, timestamptz, text) IS 'creates a draft campaign; returns its id';

REVOKE EXECUTE ON FUNCTION wam.create_campaign(text, text, jsonb, text[], jsonb, text, numeric, numeric, text, timestamptz, timestamptz, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.create_campaign(text, text, jsonb, text[], jsonb, text, numeric, numeric, text, timestamptz, timestamptz, text) TO wam_operator;

-- Changes the settings given (NULL: unchanged) of a draft or scheduled
-- campaign; `settings` names what to clear ({"budget": null}).
CREATE FUNCTION wam.configure_campaign(campaign text, settings jsonb) RETURNS wam.campaign
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	c wam.campaign;
	k text;
	v jsonb;
	before jsonb;
BEGIN
	c := wam_internal.campaign_row(campaign, true);
	PERFORM wam_internal.refuse_null(settings IS NULL, 'settings');
	IF jsonb_typeof(settings) <> 'object' THEN
		RAISE EXCEPTION 'settings must be a JSON object' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	-- how orders are attributed only changes the reports: at any time
	IF c.state <> 'draft' AND settings - 'attribution_window' - 'attribution' <> '{}' THEN
		RAISE EXCEPTION 'campaign "%" is %: only a draft can be changed', campaign, c.state
			USING ERRCODE = 'object_not_in_prerequisite_state',
				  HINT = 'Only attribution_window and attribution can be changed after the launch.';
	END IF;
	before := to_jsonb(c);
	FOR k, v IN SELECT * FROM jsonb_each(settings) LOOP
		CASE k
		WHEN 'audience' THEN c.audience := v->>0;
		WHEN 'template' THEN c.template := CASE WHEN v = 'null' THEN NULL ELSE v END;
		WHEN 'vars' THEN c.vars := CASE WHEN v = 'null' THEN NULL ELSE v END;
		WHEN 'senders' THEN
			IF jsonb_typeof(v) <> 'array' THEN
				RAISE EXCEPTION 'senders must be a JSON array of sender names' USING ERRCODE = 'invalid_parameter_value';
			END IF;
			c.senders := wam_internal.sender_ids(ARRAY(SELECT jsonb_array_elements_text(v)));
		WHEN 'category' THEN c.category := v->>0;
		WHEN 'cost_per_message' THEN c.cost_per_message := (v->>0)::numeric;
		WHEN 'budget' THEN c.budget := (v->>0)::numeric;
		WHEN 'send_windows' THEN c.send_windows := wam.check_send_windows(v->>0);
		WHEN 'starts_at' THEN c.starts_at := (v->>0)::timestamptz;
		WHEN 'ends_at' THEN c.ends_at := (v->>0)::timestamptz;
		WHEN 'when_capped' THEN c.when_capped := v->>0;
		WHEN 'attribution_window' THEN c.attribution_window := (v->>0)::interval;
		WHEN 'attribution' THEN c.attribution := v->>0;
		ELSE
			RAISE EXCEPTION 'unknown campaign setting "%"', k
				USING ERRCODE = 'invalid_parameter_value',
					  HINT = 'Settings: audience, template, vars, senders, category, cost_per_message, budget, send_windows, starts_at, ends_at, when_capped, attribution_window, attribution.';
		END CASE;
	END LOOP;
	IF c.audience IS NULL OR c.template IS NULL OR c.category IS NULL OR c.cost_per_message IS NULL
	   OR c.when_capped IS NULL OR c.attribution_window IS NULL OR c.attribution IS NULL THEN
		RAISE EXCEPTION 'audience, template, category, cost_per_message, when_capped, attribution_window and attribution cannot be cleared'
			USING ERRCODE = 'null_value_not_allowed';
	END IF;
	IF c.attribution_window NOT BETWEEN interval '1 hour' AND interval '90 days' THEN
		RAISE EXCEPTION 'the attribution window must be from 1 hour to 90 days, not %', c.attribution_window
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF c.attribution NOT IN ('last_touch', 'first_touch') THEN
		RAISE EXCEPTION 'attribution must be last_touch or first_touch, not "%"', c.attribution
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	-- changing any of a campaign's settings needs its senders' grants
	PERFORM wam_internal.check_sender_use(c.senders);
	PERFORM wam_internal.campaign_check(c);
	UPDATE wam.campaign x SET audience = c.audience, template = c.template, vars = c.vars, senders = c.senders,
		   category = c.category, cost_per_message = c.cost_per_message, budget = c.budget,
		   send_windows = c.send_windows, starts_at = c.starts_at, ends_at = c.ends_at, when_capped = c.when_capped,
		   attribution_window = c.attribution_window, attribution = c.attribution
	WHERE x.campaign_id = c.campaign_id
	RETURNING * INTO c;
	INSERT INTO wam.campaign_change (campaign_id, changed_by, action, from_state, to_state, detail)
	SELECT c.campaign_id, session_user, 'configured', c.state, c.state,
		   (SELECT jsonb_object_agg(n.key, jsonb_build_object('from', before->n.key, 'to', n.value))
			FROM jsonb_each(to_jsonb(c)) n WHERE n.value IS DISTINCT FROM before->n.key);
	RETURN c;
END
$$;
COMMENT ON FUNCTION wam.configure_campaign(text, jsonb) IS 'changes settings of a draft campaign (a JSON object of setting: value; attribution_window and attribution at any time); returns the campaign';

REVOKE EXECUTE ON FUNCTION wam.configure_campaign(text, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.configure_campaign(text, jsonb) TO wam_operator;

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
CREATE FUNCTION wam_internal.campaign_summary(c wam.campaign, audience wam.segment, at timestamptz, queue boolean,
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

-- The audience of a campaign: its expression, or for a follow-up step the
-- parent's recipients (the API took their message) who did not read, reply,
-- click or order since.
CREATE FUNCTION wam_internal.campaign_audience(c wam.campaign) RETURNS wam.segment
	LANGUAGE plpgsql STABLE SET search_path = pg_catalog, wam, pg_temp
AS $$
DECLARE
	seg wam.segment;
BEGIN
	IF c.parent_id IS NULL THEN
		RETURN wam.audience(c.audience);
	END IF;
	SELECT wam.segment_agg(o.customer_id) INTO seg
	FROM wam.outbox o
	WHERE o.campaign_id = c.parent_id AND (o.sent_at IS NOT NULL OR o.wamid IS NOT NULL)
	  AND NOT CASE c.follow_up_unless
			  WHEN 'read' THEN o.read_at IS NOT NULL
			  WHEN 'reply' THEN o.replies > 0
			  ELSE EXISTS (SELECT FROM wam.event e
						   WHERE e.customer_id = o.customer_id
							 AND e.kind = CASE c.follow_up_unless WHEN 'click' THEN 'link_click' ELSE 'order' END
							 AND e.occurred_at >= coalesce(o.sending_at, o.sent_at)) END;
	RETURN coalesce(seg, '{}'::wam.segment);
END
$$;
COMMENT ON FUNCTION wam_internal.campaign_audience(wam.campaign) IS 'internal: a campaign''s audience now (a follow-up step: the parent''s recipients who did not respond)';

REVOKE EXECUTE ON FUNCTION wam_internal.campaign_audience(wam.campaign) FROM PUBLIC;

CREATE FUNCTION wam.create_follow_up(campaign text, name text, template jsonb, after interval DEFAULT '3 days',
									 unless text DEFAULT 'read', vars jsonb DEFAULT NULL)
	RETURNS integer
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	p wam.campaign;
	c wam.campaign;
BEGIN
	p := wam_internal.campaign_row(campaign, false);
	PERFORM wam_internal.refuse_null(name IS NULL, 'name');
	PERFORM wam_internal.refuse_null(template IS NULL, 'template');
	PERFORM wam_internal.refuse_null(after IS NULL, 'after');
	PERFORM wam_internal.refuse_null(unless IS NULL, 'unless');
	IF unless NOT IN ('read', 'reply', 'click', 'order') THEN
		RAISE EXCEPTION 'unless must be read, reply, click or order, not "%"', unless USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF after NOT BETWEEN interval '1 hour' AND interval '90 days' THEN
		RAISE EXCEPTION 'a follow-up comes 1 hour to 90 days after its campaign, not %', after
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF p.parent_id IS NOT NULL THEN
		RAISE EXCEPTION 'campaign "%" is itself a follow-up step', campaign
			USING ERRCODE = 'invalid_parameter_value', HINT = 'Follow up the first campaign.';
	END IF;
	IF p.state = 'cancelled' THEN
		RAISE EXCEPTION 'campaign "%" is cancelled', campaign USING ERRCODE = 'object_not_in_prerequisite_state';
	END IF;
	c := p;
	c.name := name; c.template := template; c.vars := coalesce(vars, p.vars);
	PERFORM wam_internal.check_sender_use(p.senders);
	PERFORM wam_internal.campaign_check(c);
	IF EXISTS (SELECT FROM wam.campaign x WHERE x.name = name) THEN
		RAISE EXCEPTION 'campaign "%" already exists', name USING ERRCODE = 'duplicate_object';
	END IF;
	-- the step inherits the parent's senders, category, cost, windows and
	-- policy; its period starts at its own launch
	INSERT INTO wam.campaign (name, audience, template, vars, senders, category, cost_per_message, send_windows,
							  when_capped, parent_id, follow_up_after, follow_up_unless)
	VALUES (name, p.audience, template, c.vars, p.senders, p.category, p.cost_per_message, p.send_windows,
			p.when_capped, p.campaign_id, after, unless)
	RETURNING * INTO c;
	INSERT INTO wam.campaign_change (campaign_id, changed_by, action, to_state, detail)
	VALUES (c.campaign_id, session_user, 'created', 'draft',
			jsonb_build_object('follows', p.name, 'after', after, 'unless', unless, 'template', template));
	RETURN c.campaign_id;
END
$$;
COMMENT ON FUNCTION wam.create_follow_up(text, text, jsonb, interval, text, jsonb) IS 'adds a follow-up step to a campaign: another template, launched by the "campaign states" job a period after the campaign''s launch, to its recipients who did not read (or reply, click, order) since; returns its id';

REVOKE EXECUTE ON FUNCTION wam.create_follow_up(text, text, jsonb, interval, text, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.create_follow_up(text, text, jsonb, interval, text, jsonb) TO wam_operator;

CREATE FUNCTION wam.preview_campaign(campaign text, at timestamptz DEFAULT pg_catalog.now(), OUT audience_size bigint,
									 OUT opted_out bigint, OUT no_consent bigint, OUT missing_variable bigint,
									 OUT content_rule bigint, OUT cost_cap bigint, OUT contact_policy bigint, OUT no_send_window bigint,
									 OUT over_budget bigint, OUT recipients bigint, OUT deferred bigint,
									 OUT expected_cost numeric, OUT expected_duration interval, OUT warnings text[],
									 OUT funnel jsonb)
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	c wam.campaign;
	s record;
BEGIN
	c := wam_internal.campaign_row(campaign, false);
	PERFORM wam_internal.refuse_null(at IS NULL, 'at');
	SELECT * INTO s FROM wam_internal.campaign_plan(c, wam_internal.campaign_audience(c), at, false);
	audience_size := s.audience_size; opted_out := s.opted_out; no_consent := s.no_consent;
	missing_variable := s.missing_variable; content_rule := s.content_rule; cost_cap := s.cost_cap;
	contact_policy := s.contact_policy;
	no_send_window := s.no_send_window;
	over_budget := s.over_budget; recipients := s.recipients; deferred := s.deferred;
	expected_cost := s.expected_cost; expected_duration := s.expected_duration;
	IF c.parent_id IS NULL THEN
		SELECT jsonb_agg(to_jsonb(f)) INTO funnel FROM wam.audience_funnel(c.audience) f;
	END IF;
	-- plain text is safest (R-M5): say what the message carries
	warnings := array_remove(ARRAY[
		CASE WHEN wam_internal.unregistered_link(c.template || jsonb_build_object('vars', c.vars)) IS NOT NULL
			 THEN format('links to %s, which is not a registered link domain: the launch will refuse it',
						 wam_internal.unregistered_link(c.template || jsonb_build_object('vars', c.vars))) END,
		CASE WHEN cardinality(wam.payload_links(c.template || jsonb_build_object('vars', c.vars))) > 0
			 THEN 'the message has links: plain text is safest' END,
		CASE WHEN wam_internal.oversized_media(c.template || jsonb_build_object('vars', c.vars)) IS NOT NULL
			 THEN format('sends %s: the launch will refuse it',
						 wam_internal.oversized_media(c.template || jsonb_build_object('vars', c.vars))) END,
		CASE WHEN c.template::text ~ '"type": "(image|video|document)"'
			 THEN 'the message has media: plain text is safest; images at most 5 MB (1920x1080 recommended)' END,
		CASE WHEN s.test IS NOT NULL AND (s.test->>'testing')::boolean
			 THEN format('A/B test of %s variants: the counts are the test groups''; %s more get the winner; %s per variant are needed to see the lift of the %s rate (%s %%, %s)',
						 s.test->>'arms', s.test->>'rest', s.test->>'needed_per_arm', s.test->>'metric',
						 round(100 * (s.test->>'baseline')::numeric, 1), s.test->>'baseline_source')
			 WHEN s.test IS NOT NULL
			 THEN format('A/B split of %s variants: the audience is not above the test threshold, so it is divided among them',
						 s.test->>'arms') END], NULL);
END
$$;
COMMENT ON FUNCTION wam.preview_campaign(text, timestamptz) IS 'what launching a campaign would do: the audience, how many each rule removes, recipients, messages deferred by the policy or windows, cost and duration at the senders'' rates, warnings about links and media, and the audience funnel';

REVOKE EXECUTE ON FUNCTION wam.preview_campaign(text, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.preview_campaign(text, timestamptz) TO wam_reader;

CREATE FUNCTION wam.launch_campaign(campaign text, at timestamptz DEFAULT pg_catalog.now(), OUT audience_size bigint,
									OUT opted_out bigint, OUT no_consent bigint, OUT missing_variable bigint,
									OUT content_rule bigint, OUT cost_cap bigint, OUT contact_policy bigint, OUT no_send_window bigint,
									OUT over_budget bigint, OUT recipients bigint, OUT deferred bigint,
									OUT expected_cost numeric, OUT expected_duration interval)
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	c wam.campaign;
	s record;
	snap wam.segment;
	start_at timestamptz;
	link text;
BEGIN
	c := wam_internal.campaign_row(campaign, true);
	PERFORM wam_internal.refuse_null(at IS NULL, 'at');
	-- whoever created it, the one who launches must be allowed its senders
	PERFORM wam_internal.check_sender_use(c.senders);
	IF c.state <> 'draft' THEN
		RAISE EXCEPTION 'campaign "%" is %: only a draft can be launched', campaign, c.state
			USING ERRCODE = 'object_not_in_prerequisite_state';
	END IF;
	IF c.ends_at IS NOT NULL AND c.ends_at <= at THEN
		RAISE EXCEPTION 'campaign "%" ended at %', campaign, c.ends_at USING ERRCODE = 'object_not_in_prerequisite_state';
	END IF;
	SELECT min(wam_internal.unregistered_link(a.template || jsonb_build_object('vars', a.vars))) INTO link
	FROM wam_internal.campaign_arms(c) a;
	IF link IS NOT NULL THEN
		RAISE EXCEPTION 'campaign "%" links to %, which is not a registered link domain', campaign, link
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Register the business''s domain in wam.link_domain, or remove the link (plain text is safest).';
	END IF;
	SELECT min(wam_internal.oversized_media(a.template || jsonb_build_object('vars', a.vars))) INTO link
	FROM wam_internal.campaign_arms(c) a;
	IF link IS NOT NULL THEN
		RAISE EXCEPTION 'campaign "%" sends %', campaign, link
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Send a smaller file (images: 1920x1080 is recommended), or plain text.';
	END IF;
	start_at := greatest(at, coalesce(c.starts_at, at));
	snap := wam_internal.campaign_audience(c);
	SELECT * INTO s FROM wam_internal.campaign_plan(c, snap, at, true);
	IF s.queued <> s.recipients THEN
		RAISE EXCEPTION 'campaign "%" queued % messages, not the % counted', campaign, s.queued, s.recipients
			USING ERRCODE = 'internal_error';
	END IF;
	UPDATE wam.campaign x SET state = CASE WHEN start_at > at THEN 'scheduled' ELSE 'running' END,
		   audience_snapshot = snap, launched_at = at
	WHERE x.campaign_id = c.campaign_id;
	INSERT INTO wam.campaign_change (campaign_id, changed_by, action, from_state, to_state, detail)
	VALUES (c.campaign_id, session_user, 'launched', 'draft', CASE WHEN start_at > at THEN 'scheduled' ELSE 'running' END,
			jsonb_strip_nulls(to_jsonb(s) - 'queued'));
	audience_size := s.audience_size; opted_out := s.opted_out; no_consent := s.no_consent;
	missing_variable := s.missing_variable; content_rule := s.content_rule; cost_cap := s.cost_cap;
	contact_policy := s.contact_policy;
	no_send_window := s.no_send_window;
	over_budget := s.over_budget; recipients := s.recipients; deferred := s.deferred;
	expected_cost := s.expected_cost; expected_duration := s.expected_duration;
END
$$;
COMMENT ON FUNCTION wam.launch_campaign(text, timestamptz) IS 'evaluates a draft campaign''s audience, queues its messages (each at its first allowed time) and returns what each rule removed';

REVOKE EXECUTE ON FUNCTION wam.launch_campaign(text, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.launch_campaign(text, timestamptz) TO wam_operator;

-- Moves campaigns on: scheduled → running at their start, running →
-- finished when no message waits any more (or at their end, when the
-- waiting ones expire).  The "campaign states" job runs it every minute.
CREATE FUNCTION wam.advance_campaigns(at timestamptz DEFAULT pg_catalog.now())
	RETURNS TABLE (campaign text, from_state text, to_state text)
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_column
DECLARE
	c wam.campaign;
	nxt text;
	err text;
BEGIN
	PERFORM wam_internal.refuse_null(at IS NULL, 'at');
	-- A/B tests whose window has ended: decided, the winner rolled out
	FOR c IN SELECT x.* FROM wam.campaign x JOIN wam.campaign_test t USING (campaign_id)
			 WHERE t.state = 'testing' AND t.decide_at <= at AND x.state = 'running'
			 ORDER BY x.campaign_id FOR UPDATE OF x SKIP LOCKED LOOP
		campaign := c.name; from_state := 'testing';
		to_state := wam_internal.decide_campaign_test(c, at);
		RETURN NEXT;
	END LOOP;
	-- (the campaigns of offer triggers run until cancelled: wam.run_offer_triggers)
	FOR c IN SELECT * FROM wam.campaign x WHERE x.state IN ('scheduled', 'running')
			   AND NOT EXISTS (SELECT FROM wam.offer_trigger t WHERE t.campaign_id = x.campaign_id)
			 ORDER BY x.campaign_id
			 FOR UPDATE SKIP LOCKED LOOP
		nxt := NULL;
		IF c.state = 'scheduled' AND c.starts_at <= at THEN
			nxt := 'running';
		END IF;
		IF coalesce(nxt, c.state) = 'running' THEN
			IF c.ends_at <= at THEN
				UPDATE wam.outbox o SET status = 'expired', expired_at = pg_catalog.now()
				WHERE o.campaign_id = c.campaign_id AND o.status IN ('queued', 'retrying');
			END IF;
			-- (a test still running waits for its decision and rollout)
			IF NOT EXISTS (SELECT FROM wam.outbox o WHERE o.campaign_id = c.campaign_id
						   AND o.status IN ('queued', 'retrying', 'sending'))
			   AND NOT EXISTS (SELECT FROM wam.campaign_test t WHERE t.campaign_id = c.campaign_id AND t.state = 'testing') THEN
				nxt := 'finished';
			END IF;
		END IF;
		CONTINUE WHEN nxt IS NULL;
		UPDATE wam.campaign x SET state = nxt, finished_at = CASE WHEN nxt = 'finished' THEN at END
		WHERE x.campaign_id = c.campaign_id;
		INSERT INTO wam.campaign_change (campaign_id, changed_by, action, from_state, to_state)
		VALUES (c.campaign_id, session_user, CASE nxt WHEN 'running' THEN 'started' ELSE 'finished' END, c.state, nxt);
		campaign := c.name; from_state := c.state; to_state := nxt;
		RETURN NEXT;
	END LOOP;
	-- follow-up steps whose time has come
	FOR c IN SELECT x.* FROM wam.campaign x JOIN wam.campaign p ON p.campaign_id = x.parent_id
			 WHERE x.state = 'draft' AND p.launched_at + x.follow_up_after <= at AND p.state IN ('running', 'finished')
			 ORDER BY x.campaign_id FOR UPDATE OF x SKIP LOCKED LOOP
		BEGIN
			PERFORM wam.launch_campaign(c.name, at);
			to_state := (SELECT x.state FROM wam.campaign x WHERE x.campaign_id = c.campaign_id);
		EXCEPTION WHEN OTHERS THEN
			-- a step that cannot launch (a link no longer allowed, a sender
			-- gone) is cancelled with the reason, not retried every minute
			GET STACKED DIAGNOSTICS err = MESSAGE_TEXT;
			UPDATE wam.campaign x SET state = 'cancelled', finished_at = at WHERE x.campaign_id = c.campaign_id;
			INSERT INTO wam.campaign_change (campaign_id, changed_by, action, from_state, to_state, detail)
			VALUES (c.campaign_id, session_user, 'launch failed', 'draft', 'cancelled', jsonb_build_object('error', err));
			to_state := 'cancelled';
		END;
		campaign := c.name; from_state := 'draft';
		RETURN NEXT;
	END LOOP;
	-- the reports an hour and a day after each launch
	INSERT INTO wam.campaign_snapshot (campaign_id, after, taken_at, report)
	SELECT x.campaign_id, a.after, at, to_jsonb(r)
	FROM wam.campaign x
		 CROSS JOIN (VALUES (interval '1 hour'), (interval '24 hours')) a (after)
		 CROSS JOIN LATERAL wam.campaign_report(x.name) r
	WHERE x.launched_at IS NOT NULL AND x.launched_at + a.after <= at
	  AND x.launched_at > at - interval '30 days'
	  AND NOT EXISTS (SELECT FROM wam.campaign_snapshot p WHERE p.campaign_id = x.campaign_id AND p.after = a.after)
	ON CONFLICT DO NOTHING;
END
$$;
COMMENT ON FUNCTION wam.advance_campaigns(timestamptz) IS 'decides A/B tests whose window has ended (rows from_state testing), starts scheduled campaigns whose time has come, finishes running ones with nothing left to send, launches due follow-up steps, and takes the reports 1 hour and 24 hours after each launch (the "campaign states" job runs it every minute)';

REVOKE EXECUTE ON FUNCTION wam.advance_campaigns(timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.advance_campaigns(timestamptz) TO wam_operator;

CREATE VIEW wam.campaign_status AS
SELECT c.name AS campaign, c.state, c.category, c.starts_at, c.ends_at, c.launched_at, c.finished_at,
	   wam.segment_cardinality(c.audience_snapshot) AS audience_size,
	   count(o.message_id) AS messages,
	   count(o.message_id) FILTER (WHERE o.status IN ('queued', 'retrying')) AS waiting,
	   count(o.message_id) FILTER (WHERE o.status IN ('queued', 'retrying') AND o.next_attempt_at > pg_catalog.now()) AS deferred,
	   count(o.message_id) FILTER (WHERE o.status = 'sending') AS sending,
	   count(o.message_id) FILTER (WHERE o.sent_at IS NOT NULL OR o.wamid IS NOT NULL) AS sent,
	   count(o.message_id) FILTER (WHERE o.delivered_at IS NOT NULL) AS delivered,
	   count(o.message_id) FILTER (WHERE o.read_at IS NOT NULL) AS read,
	   count(o.message_id) FILTER (WHERE o.status = 'failed') AS failed,
	   count(o.message_id) FILTER (WHERE o.status = 'cancelled') AS cancelled,
	   count(o.message_id) FILTER (WHERE o.status = 'expired') AS expired,
	   c.cost_per_message * count(o.message_id) FILTER (WHERE o.sent_at IS NOT NULL OR o.wamid IS NOT NULL) AS cost
FROM wam.campaign c LEFT JOIN wam.outbox o ON o.campaign_id = c.campaign_id
GROUP BY c.campaign_id;
COMMENT ON VIEW wam.campaign_status IS 'per campaign: state, audience, and its messages by status (live)';

REVOKE ALL ON wam.campaign_status FROM PUBLIC;
GRANT SELECT ON wam.campaign_status TO wam_reader;

-- reports

CREATE FUNCTION wam.campaign_report(campaign text)
	RETURNS TABLE (campaign_name text, state text, messages bigint, sent bigint, delivered bigint, read bigint,
				   replied bigint, clicked bigint, converted bigint, failed bigint, failed_by_code jsonb,
				   opted_out bigint, pending bigint, delivery_rate numeric, read_rate numeric, reply_rate numeric,
				   click_rate numeric, conversion_rate numeric, delivery_health text, read_health text,
				   reply_health text, cost numeric, orders bigint, revenue numeric, discount_cost numeric,
				   roi numeric, roi_health text)
	LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_column
DECLARE
	c wam.campaign;
BEGIN
	c := wam_internal.campaign_row(campaign, false);
	RETURN QUERY
	WITH m AS (
		SELECT o.*, cu.opted_out_at >= coalesce(o.sent_at, o.sending_at) AS opted_out_after
		FROM wam.outbox o LEFT JOIN wam.customer cu ON cu.id = o.customer_id
		WHERE o.campaign_id = c.campaign_id
	), n AS (
		SELECT count(*) AS messages,
			   count(*) FILTER (WHERE m.sent_at IS NOT NULL OR m.wamid IS NOT NULL) AS sent,
			   count(*) FILTER (WHERE m.delivered_at IS NOT NULL) AS delivered,
			   count(*) FILTER (WHERE m.read_at IS NOT NULL) AS read,
			   count(*) FILTER (WHERE m.replies > 0) AS replied,
			   count(*) FILTER (WHERE m.status = 'failed') AS failed,
			   count(*) FILTER (WHERE m.opted_out_after) AS opted_out,
			   count(*) FILTER (WHERE m.status IN ('queued', 'sending', 'retrying', 'uncertain')) AS pending,
			   count(*) FILTER (WHERE m.sent_at IS NOT NULL OR m.wamid IS NOT NULL OR m.status = 'failed') AS attempted,
			   (SELECT jsonb_object_agg(k.code, k.n ORDER BY k.code)
				FROM (SELECT coalesce(f.error_code::text, 'none') AS code, count(*) AS n FROM m f
					  WHERE f.status = 'failed' GROUP BY 1) k) AS by_code
		FROM m
	), k AS (
		-- recipients who clicked a link of its message (wam.record_click),
		-- found through the event detail index
		SELECT count(DISTINCT d.customer_id) AS clicked
		FROM wam.event_detail d
		WHERE d.kind = 'link_click' AND d.key = 'campaign_id' AND d.value = to_jsonb(c.campaign_id)
	), a AS (
		SELECT count(*) AS orders, count(DISTINCT x.customer_id) AS converted, coalesce(sum(x.amount), 0) AS revenue,
			   coalesce(sum(x.discount), 0) AS discount
		FROM wam_internal.attributed_orders(c) x
	), r AS (
		SELECT n.*, k.clicked, a.*, n.sent * c.cost_per_message AS spent,
			   round(100.0 * n.delivered / nullif(n.attempted, 0), 1) AS d_rate,
			   round(100.0 * n.read / nullif(n.delivered, 0), 1) AS r_rate,
			   round(100.0 * n.replied / nullif(n.delivered, 0), 1) AS p_rate,
			   round(100.0 * k.clicked / nullif(n.delivered, 0), 1) AS k_rate,
			   round(100.0 * a.converted / nullif(n.delivered, 0), 1) AS c_rate,
			   a.revenue / nullif(n.sent * c.cost_per_message + a.discount, 0) AS roi
		FROM n, k, a
	)
	SELECT c.name, c.state, r.messages, r.sent, r.delivered, r.read, r.replied, r.clicked, r.converted, r.failed,
		   coalesce(r.by_code, '{}'), r.opted_out, r.pending, r.d_rate, r.r_rate, r.p_rate, r.k_rate, r.c_rate,
		   h.delivery_health, h.read_health, h.reply_health, r.spent, r.orders, r.revenue, r.discount,
		   round(r.roi, 2), wam.roi_health(r.roi)
	FROM r, LATERAL wam.rate_health(r.d_rate, r.r_rate, r.p_rate) h;
END
$$;
COMMENT ON FUNCTION wam.campaign_report(text) IS 'a campaign''s messages: sent, delivered, read, replied, clicked, converted (recipients with an attributed order), failed by error code, opted out after it, pending; the rates with their health bands; the cost, attributed orders, revenue and discounts, and the return on spend with its band';

REVOKE EXECUTE ON FUNCTION wam.campaign_report(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.campaign_report(text) TO wam_reader;

-- The report as it stood an hour and a day after the launch, taken by the
-- "campaign states" job (wam.advance_campaigns).
CREATE TABLE wam.campaign_snapshot (
	campaign_id integer NOT NULL REFERENCES wam.campaign ON DELETE CASCADE,
	after interval NOT NULL CONSTRAINT campaign_snapshot_after CHECK (after IN (interval '1 hour', interval '24 hours')),
	taken_at timestamptz NOT NULL,
	report jsonb NOT NULL,
	PRIMARY KEY (campaign_id, after)
);
COMMENT ON TABLE wam.campaign_snapshot IS 'a campaign''s report (wam.campaign_report) 1 hour and 24 hours after its launch';

REVOKE ALL ON wam.campaign_snapshot FROM PUBLIC;
GRANT SELECT ON wam.campaign_snapshot TO wam_reader;
GRANT SELECT, INSERT ON wam.campaign_snapshot TO wam_definer;
