-- 99t_offer_trigger: behaviour-triggered offers (issue 20 item 5, R-G4): wam.offer_trigger,
-- wam.offer_trigger_fire, wam.create_offer_trigger, wam.enable_offer_trigger,
-- wam.run_offer_triggers, the "offer triggers" job; the "campaign states" job leaves the
-- rules' campaigns running.  (Generated from src/sql/offer_trigger.sql and the new texts
-- of wam_internal.run_job_body and wam.advance_campaigns.)

ALTER TABLE wam.job DROP CONSTRAINT job_known, ADD CONSTRAINT job_known CHECK (job IN
	('expire tags', 'run tag rules', 'tag health report', 'tag audit', 'maintain partitions', 'campaign states',
	 'decay alerts', 'offer triggers'));
INSERT INTO wam.job (job, run_every, at_time, on_weekday, options, description) VALUES
	('offer triggers', interval '1 minute', NULL, NULL, '{}',
	 'queues the messages of behaviour-triggered offers for new events (wam.run_offer_triggers)');

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
		WHEN 'campaign states' THEN
			SELECT count(*) FILTER (WHERE x.to_state = 'running'), count(*) FILTER (WHERE x.to_state = 'finished')
			INTO a, r
			FROM wam.advance_campaigns(greatest(j.next_run_at, pg_catalog.now())) x;
			RETURN format('%s campaigns started, %s finished', a, r);
		WHEN 'decay alerts' THEN
			SELECT x.groups, x.alerts INTO n, a
			FROM wam_internal.raise_decay_alerts(greatest(j.next_run_at, pg_catalog.now()), j.options) x;
			RETURN format('%s groups checked, %s click decay alerts raised', n, a);
		WHEN 'offer triggers' THEN
			-- as of now, never ahead of the clock: the orders that would leave an
			-- event out are still to come
			SELECT count(*), coalesce(sum(x.queued), 0), coalesce(sum(x.refused), 0) INTO n, a, r
			FROM wam.run_offer_triggers(pg_catalog.now()) x;
			RETURN format('%s offer triggers: %s messages queued, %s refused', n, a, r);
	END CASE;
END
$$;

CREATE OR REPLACE FUNCTION wam.advance_campaigns(at timestamptz DEFAULT pg_catalog.now())
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

-- kind (and details) queues a message carrying the customer's code of an offer,
-- through the campaign path: each rule owns an always-running campaign, whose
-- candidates function (consent, opt-out, cost cap, contact policy, send windows,
-- content rules) decides each message, and whose messages the sender worker claims
-- under the contact policy and the windows like any campaign's.
--
-- Evaluation: the "offer triggers" job (every minute) reads a bounded look-back of
-- events per rule and records every event it decided in wam.offer_trigger_fire,
-- keyed by (rule, customer, event).  No "last event id" watermark: ids are taken
-- at insert and committed in any order, so a watermark would skip an event whose
-- transaction committed after a later one was seen.  The look-back sees every
-- event committed within it, whenever; the key makes a second run (or a
-- concurrent one) decide an event once.  Not a trigger on wam.event: most rules
-- wait ("no order within 2 hours"), which a trigger at insert cannot decide, and
-- a trigger would put the rules' work (the audience of the contact policy, the
-- code) on every event insert of the applications.

CREATE TABLE wam.offer_trigger (
	trigger_id integer GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
	name text NOT NULL UNIQUE
		CONSTRAINT offer_trigger_name CHECK (name ~ '^[a-z0-9]+(-[a-z0-9]+)*$' AND length(name) <= 80),
	event_kind text NOT NULL CONSTRAINT offer_trigger_event_kind CHECK (event_kind ~ '^[a-z][a-z0-9_]*$'),
	event_match jsonb CONSTRAINT offer_trigger_event_match CHECK (jsonb_typeof(event_match) = 'object'),
	unless_kind text CONSTRAINT offer_trigger_unless_kind CHECK (unless_kind ~ '^[a-z][a-z0-9_]*$'),
	unless_within interval
		CONSTRAINT offer_trigger_unless_within CHECK (unless_within BETWEEN interval '1 minute' AND interval '30 days'),
	offer_id bigint NOT NULL REFERENCES wam.offer,
	campaign_id integer NOT NULL UNIQUE REFERENCES wam.campaign,
	once_per interval NOT NULL DEFAULT '30 days'
		CONSTRAINT offer_trigger_once_per CHECK (once_per BETWEEN interval '1 hour' AND interval '366 days'),
	look_back interval NOT NULL DEFAULT '1 day'
		CONSTRAINT offer_trigger_look_back CHECK (look_back BETWEEN interval '10 minutes' AND interval '30 days'),
	enabled boolean NOT NULL DEFAULT true,
	created_by text NOT NULL DEFAULT session_user,
	created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	CONSTRAINT offer_trigger_unless CHECK ((unless_kind IS NULL) = (unless_within IS NULL))
);
COMMENT ON TABLE wam.offer_trigger IS 'behaviour-triggered offers: an event kind (and details) queues a message with the customer''s code of an offer through the rule''s campaign (create with wam.create_offer_trigger)';
COMMENT ON COLUMN wam.offer_trigger.event_match IS 'details the event must contain (e.g. {"product": "A"}); NULL: any event of the kind';
COMMENT ON COLUMN wam.offer_trigger.unless_kind IS 'no message when the customer has an event of this kind within unless_within after the event (e.g. order within 2 hours, inclusive)';
COMMENT ON COLUMN wam.offer_trigger.once_per IS 'at most one message of the rule per customer in this period';
COMMENT ON COLUMN wam.offer_trigger.look_back IS 'how old an event may be (after its unless_within) and still be decided: events committed later than that are not fired on';
REVOKE ALL ON wam.offer_trigger FROM PUBLIC;
GRANT SELECT ON wam.offer_trigger TO wam_reader;
GRANT SELECT, INSERT, UPDATE ON wam.offer_trigger TO wam_definer;
GRANT USAGE ON SEQUENCE wam.offer_trigger_trigger_id_seq TO wam_definer;
SELECT pg_catalog.pg_extension_config_dump('wam.offer_trigger', '');
SELECT pg_catalog.pg_extension_config_dump('wam.offer_trigger_trigger_id_seq', '');

-- every event a rule decided, once: its key is what makes evaluation idempotent
CREATE TABLE wam.offer_trigger_fire (
	trigger_id integer NOT NULL REFERENCES wam.offer_trigger ON DELETE CASCADE,
	customer_id bigint NOT NULL REFERENCES wam.customer ON DELETE CASCADE,
	event_id bigint NOT NULL,
	event_at timestamptz NOT NULL,
	decided_at timestamptz NOT NULL,
	outcome text NOT NULL
		CONSTRAINT offer_trigger_fire_outcome CHECK (outcome IN ('queued', 'refused', 'unless', 'once per period')),
	reason text,
	message_id bigint,
	PRIMARY KEY (trigger_id, customer_id, event_id)
);
CREATE INDEX offer_trigger_fire_recent ON wam.offer_trigger_fire (trigger_id, customer_id, decided_at) WHERE outcome = 'queued';
COMMENT ON TABLE wam.offer_trigger_fire IS 'per rule, customer and event: what the rule decided (queued with its message, refused with the reason, left out by its unless condition or its once-per period)';
COMMENT ON COLUMN wam.offer_trigger_fire.reason IS 'why refused (opted out, no consent, cost cap, contact policy, missing variable, offer expired, ...), or for a queued message deferred by the contact policy or the windows, until when';
REVOKE ALL ON wam.offer_trigger_fire FROM PUBLIC;
GRANT SELECT ON wam.offer_trigger_fire TO wam_reader;
GRANT SELECT, INSERT, UPDATE ON wam.offer_trigger_fire TO wam_definer;
SELECT pg_catalog.pg_extension_config_dump('wam.offer_trigger_fire', '');

-- Creates a rule and its campaign (running from now, never finished by the
-- "campaign states" job; cancel_campaign stops it).  Only administrators: a rule
-- is data (kinds, a JSON object of details, a template), never SQL.
CREATE FUNCTION wam.create_offer_trigger(name text, event_kind text, offer text, template jsonb,
										 senders text[] DEFAULT NULL, event_match jsonb DEFAULT NULL,
										 unless_kind text DEFAULT NULL, unless_within interval DEFAULT NULL,
										 once_per interval DEFAULT '30 days', category text DEFAULT 'marketing',
										 vars jsonb DEFAULT NULL, cost_per_message numeric DEFAULT 0,
										 budget numeric DEFAULT NULL, send_windows text DEFAULT NULL,
										 when_capped text DEFAULT 'defer', look_back interval DEFAULT '1 day')
	RETURNS integer
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	o wam.offer;
	cid integer;
	tid integer;
	aud text;
BEGIN
	PERFORM wam_internal.refuse_null(name IS NULL OR event_kind IS NULL OR template IS NULL
									 OR once_per IS NULL OR look_back IS NULL, 'name, event_kind, template, once_per and look_back');
	IF name !~ '^[a-z0-9]+(-[a-z0-9]+)*$' OR length(name) > 80 THEN
		RAISE EXCEPTION 'invalid offer trigger name "%"', left(name, 80)
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'A rule name is a slug of at most 80 characters: lower-case letters and digits in words joined by "-".';
	END IF;
	IF event_kind !~ '^[a-z][a-z0-9_]*$' OR unless_kind !~ '^[a-z][a-z0-9_]*$' THEN
		RAISE EXCEPTION 'invalid event kind "%"', left(CASE WHEN event_kind !~ '^[a-z][a-z0-9_]*$' THEN event_kind ELSE unless_kind END, 64)
			USING ERRCODE = 'invalid_parameter_value', HINT = 'An event kind is lower-case letters, digits and "_", e.g. link_click.';
	END IF;
	IF event_match IS NOT NULL AND (jsonb_typeof(event_match) <> 'object' OR event_match = '{}'
	   OR EXISTS (SELECT FROM jsonb_each(event_match) d WHERE jsonb_typeof(d.value) NOT IN ('string', 'number', 'boolean'))) THEN
		RAISE EXCEPTION 'event_match must be a JSON object of detail keys and scalar values, e.g. {"product": "A"}'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF (unless_kind IS NULL) <> (unless_within IS NULL) THEN
		RAISE EXCEPTION 'unless_kind and unless_within go together' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF unless_within NOT BETWEEN interval '1 minute' AND interval '30 days' THEN
		RAISE EXCEPTION 'unless_within must be from 1 minute to 30 days, not %', unless_within USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF once_per NOT BETWEEN interval '1 hour' AND interval '366 days' THEN
		RAISE EXCEPTION 'once_per must be from 1 hour to 366 days, not %', once_per USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF look_back NOT BETWEEN interval '10 minutes' AND interval '30 days' THEN
		RAISE EXCEPTION 'look_back must be from 10 minutes to 30 days, not %', look_back USING ERRCODE = 'invalid_parameter_value';
	END IF;
	o := wam_internal.offer_of(offer);
	IF o.valid_until <= pg_catalog.now() THEN
		RAISE EXCEPTION 'offer "%" expired at %', offer, o.valid_until USING ERRCODE = 'object_not_in_prerequisite_state';
	END IF;
	IF template::text !~ '\{code\}' THEN
		RAISE EXCEPTION 'the template of an offer trigger must carry the code: put {code} in it'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF EXISTS (SELECT FROM wam.offer_trigger t WHERE t.name = name) THEN
		RAISE EXCEPTION 'offer trigger "%" already exists', name USING ERRCODE = 'duplicate_object';
	END IF;
	aud := CASE WHEN o.group_id IS NOT NULL
				THEN format('group(%s)', (SELECT g.name FROM wam.wa_group g WHERE g.group_id = o.group_id))
				ELSE o.audience END;
	-- the campaign's own checks: template, senders (and the session's grants on them),
	-- category, cost, budget, windows
	cid := wam.create_campaign('offer trigger: ' || name, aud, template, senders, vars, category,
							   cost_per_message, budget, send_windows, NULL, NULL, when_capped);
	UPDATE wam.campaign c SET state = 'running', launched_at = pg_catalog.now() WHERE c.campaign_id = cid;
	INSERT INTO wam.campaign_change (campaign_id, changed_by, action, from_state, to_state, detail)
	VALUES (cid, session_user, 'launched', 'draft', 'running', jsonb_build_object('offer_trigger', name));
	INSERT INTO wam.offer_trigger (name, event_kind, event_match, unless_kind, unless_within, offer_id, campaign_id,
								   once_per, look_back)
	VALUES (name, event_kind, event_match, unless_kind, unless_within, o.offer_id, cid, once_per, look_back)
	RETURNING trigger_id INTO tid;
	RETURN tid;
END
$$;
COMMENT ON FUNCTION wam.create_offer_trigger(text, text, text, jsonb, text[], jsonb, text, interval, interval, text, jsonb, numeric, numeric, text, text, interval) IS 'creates a behaviour-triggered offer: events of a kind (with details) queue the template with the customer''s code of the offer through the rule''s campaign "offer trigger: NAME", unless an event of unless_kind follows within unless_within, at most once per customer per once_per; returns its id';
REVOKE EXECUTE ON FUNCTION wam.create_offer_trigger(text, text, text, jsonb, text[], jsonb, text, interval, interval, text, jsonb, numeric, numeric, text, text, interval) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.create_offer_trigger(text, text, text, jsonb, text[], jsonb, text, interval, interval, text, jsonb, numeric, numeric, text, text, interval) TO wam_admin;

CREATE FUNCTION wam.enable_offer_trigger(name text, enabled boolean) RETURNS boolean
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
BEGIN
	PERFORM wam_internal.refuse_null(name IS NULL OR enabled IS NULL, 'name and enabled');
	UPDATE wam.offer_trigger t SET enabled = enabled WHERE t.name = name;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'offer trigger "%" does not exist', name USING ERRCODE = 'undefined_object';
	END IF;
	RETURN enabled;
END
$$;
COMMENT ON FUNCTION wam.enable_offer_trigger(text, boolean) IS 'pauses (false) or resumes (true) an offer trigger; events of a pause within its look-back are decided when it resumes';
REVOKE EXECUTE ON FUNCTION wam.enable_offer_trigger(text, boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.enable_offer_trigger(text, boolean) TO wam_admin;

-- Why the offer gives the customer no code now, or NULL (nothing is issued here)
CREATE FUNCTION wam_internal.offer_trigger_refusal(o wam.offer, customer bigint, at timestamptz) RETURNS text
	LANGUAGE plpgsql STABLE SET search_path = pg_catalog, wam, pg_temp
AS $$
BEGIN
	IF at < o.valid_from THEN
		RETURN 'offer not yet valid';
	END IF;
	IF at >= o.valid_until THEN
		RETURN 'offer expired';
	END IF;
	IF o.redeemed >= o.total_limit THEN
		RETURN 'offer limit reached';
	END IF;
	IF o.group_id IS NOT NULL THEN
		IF NOT EXISTS (SELECT FROM wam.group_member m
					   WHERE m.group_id = o.group_id AND m.customer_id = customer AND m.left_at IS NULL) THEN
			RETURN 'not a member of the offer''s group';
		END IF;
	ELSIF NOT wam.segment_has(wam.audience(o.audience), customer) THEN
		RETURN 'not in the offer''s audience';
	END IF;
	IF EXISTS (SELECT FROM wam.offer_customer_usage u WHERE u.offer_id = o.offer_id AND u.customer_id = customer
			   AND u.redeemed >= o.per_customer_limit) THEN
		RETURN 'offer already used by the customer';
	END IF;
	RETURN NULL;
END
$$;
COMMENT ON FUNCTION wam_internal.offer_trigger_refusal(wam.offer, bigint, timestamptz) IS 'internal: why an offer has no code for a customer now (validity, total limit, audience, used up), or NULL';
REVOKE EXECUTE ON FUNCTION wam_internal.offer_trigger_refusal(wam.offer, bigint, timestamptz) FROM PUBLIC;

-- Decides the events of the enabled rules up to `at` (not in the future: orders
-- to come cannot be known).  `at` moves only the window of events; the decision
-- time, which the once-per period counts from, is the clock's, so an earlier `at`
-- cannot make room for a second message.  A rule another session is evaluating is skipped (its
-- row lock, SKIP LOCKED); an event is claimed by inserting its key first, so even
-- two runs of one rule could not queue its message twice.
CREATE FUNCTION wam.run_offer_triggers(at timestamptz DEFAULT pg_catalog.now())
	RETURNS TABLE (offer_trigger text, queued bigint, refused bigint, left_out bigint)
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_column
DECLARE
	t wam.offer_trigger;
	c wam.campaign;
	o wam.offer;
	e record;
	x record;
	why text;
	res text;
	cv jsonb;
	the_code text;
	mid bigint;
	spent bigint;
	pol wam.contact_policy;
	active_set wam.segment;
BEGIN
	PERFORM wam_internal.refuse_null(at IS NULL, 'at');
	IF at > pg_catalog.now() THEN
		RAISE EXCEPTION 'offer triggers cannot be evaluated ahead of time (% is in the future)', at
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	FOR t IN SELECT * FROM wam.offer_trigger r WHERE r.enabled ORDER BY r.trigger_id FOR UPDATE SKIP LOCKED LOOP
		SELECT * INTO c FROM wam.campaign k WHERE k.campaign_id = t.campaign_id;
		CONTINUE WHEN c.state = 'cancelled';
		offer_trigger := t.name; queued := 0; refused := 0; left_out := 0;
		FOR e IN SELECT v.customer_id, v.event_id, v.occurred_at, v.details FROM wam.event v
				 WHERE v.kind = t.event_kind
				   AND v.occurred_at > at - t.look_back - coalesce(t.unless_within, interval '0')
				   AND v.occurred_at <= at - coalesce(t.unless_within, interval '0')
				   AND (t.event_match IS NULL OR v.details @> t.event_match)
				   AND NOT EXISTS (SELECT FROM wam.offer_trigger_fire f WHERE f.trigger_id = t.trigger_id
								   AND f.customer_id = v.customer_id AND f.event_id = v.event_id)
				 ORDER BY v.occurred_at, v.customer_id, v.event_id LOOP
			-- the claim: a concurrent decision of this event waits here, then does nothing
			INSERT INTO wam.offer_trigger_fire (trigger_id, customer_id, event_id, event_at, decided_at, outcome)
			VALUES (t.trigger_id, e.customer_id, e.event_id, e.occurred_at, pg_catalog.now(), 'refused')
			ON CONFLICT DO NOTHING;
			CONTINUE WHEN NOT FOUND;
			why := NULL; mid := NULL; res := 'refused';
			SELECT * INTO o FROM wam.offer k WHERE k.offer_id = t.offer_id;
			IF t.unless_kind IS NOT NULL THEN
				SELECT format('%s %s after', u.kind, wam_internal.interval_words(u.occurred_at - e.occurred_at)) INTO why
				FROM wam.event u
				WHERE u.customer_id = e.customer_id AND u.kind = t.unless_kind
				  AND u.occurred_at >= e.occurred_at AND u.occurred_at <= e.occurred_at + t.unless_within
				ORDER BY u.occurred_at LIMIT 1;
				IF why IS NOT NULL THEN
					res := 'unless';
				END IF;
			END IF;
			IF why IS NULL THEN
				SELECT format('message %s at %s', f.message_id, f.decided_at) INTO why FROM wam.offer_trigger_fire f
				WHERE f.trigger_id = t.trigger_id AND f.customer_id = e.customer_id AND f.outcome = 'queued'
				  AND f.decided_at > pg_catalog.now() - t.once_per
				ORDER BY f.decided_at DESC LIMIT 1;
				IF why IS NOT NULL THEN
					res := 'once per period';
				END IF;
			END IF;
			IF why IS NULL THEN
				why := wam_internal.offer_trigger_refusal(o, e.customer_id, at);
			END IF;
			IF why IS NULL AND c.budget IS NOT NULL AND c.cost_per_message > 0 THEN
				SELECT count(*) INTO spent FROM wam.outbox b
				WHERE b.campaign_id = c.campaign_id AND b.status NOT IN ('cancelled', 'expired', 'failed');
				IF (spent + 1) * c.cost_per_message > c.budget THEN
					why := 'over budget';
				END IF;
			END IF;
			IF why IS NULL THEN
				-- the campaign's rules for this one customer: the event's scalar
				-- details and the offer fill placeholders; {code} stays until a
				-- message will go, so a refused customer wastes no code
				SELECT coalesce(jsonb_object_agg(d.key, d.value #>> '{}'), '{}') INTO cv
				FROM jsonb_each(CASE WHEN jsonb_typeof(e.details) = 'object' THEN e.details ELSE '{}' END) d
				WHERE jsonb_typeof(d.value) IN ('string', 'number', 'boolean');
				c.vars := cv || coalesce(c.vars, '{}')
						  || jsonb_build_object('offer', o.name, 'code', '{code}',
												'discount', CASE WHEN o.discount_type = 'percent' THEN trim_scale(o.discount) || ' %'
																 ELSE trim_scale(o.discount)::text END,
												'valid_until', to_char(o.valid_until AT TIME ZONE 'UTC', 'YYYY-MM-DD'));
				-- the contact policy's active customers once per run, not per event
				-- (the expression reads the event history)
				IF pol IS NULL THEN
					SELECT * INTO pol FROM wam.contact_policy;
				END IF;
				IF active_set IS NULL AND c.category = ANY (pol.categories) THEN
					active_set := wam.audience(pol.active_audience);
				END IF;
				SELECT * INTO x FROM wam_internal.campaign_candidates(c, wam.segment(ARRAY[e.customer_id]), at, active_set) k;
				IF NOT FOUND THEN
					why := 'customer not found';
				ELSE
					why := x.removed_by;
				END IF;
				-- a message the policy or the windows hold past the offer's end would
				-- carry a dead code: refused now, with the reason
				IF why IS NULL AND x.send_at >= o.valid_until THEN
					why := format('deferred past the offer''s end (to %s)', x.send_at);
				END IF;
			END IF;
			IF why IS NULL THEN
				IF o.shared_code IS NOT NULL THEN
					the_code := o.shared_code;
				ELSE
					-- one code per customer and offer (the unique index): a second
					-- rule or run gives the customer the same code
					INSERT INTO wam.offer_code (offer_id, code, customer_id, source)
					VALUES (o.offer_id, wam.redemption_code(), e.customer_id, 'generated')
					ON CONFLICT (offer_id, customer_id) WHERE customer_id IS NOT NULL DO NOTHING;
					SELECT k.code INTO the_code FROM wam.offer_code k WHERE k.offer_id = o.offer_id AND k.customer_id = e.customer_id;
				END IF;
				INSERT INTO wam.outbox (sender_id, customer_id, recipient, payload, campaign, campaign_id, category,
										contact_class, time_zone, not_before, next_attempt_at, expires_at)
				VALUES (x.sender_id, e.customer_id, x.phone, replace(x.payload::text, '{code}', the_code)::jsonb,
						c.name, c.campaign_id, c.category,
						CASE WHEN x.active THEN 'active' WHEN NOT x.active THEN 'inactive' END, x.time_zone,
						at, x.send_at, o.valid_until)
				RETURNING message_id INTO mid;
				res := 'queued';
				why := CASE WHEN x.send_at > at THEN format('deferred to %s', x.send_at) END;
			END IF;
			UPDATE wam.offer_trigger_fire f SET outcome = res, reason = why, message_id = mid
			WHERE f.trigger_id = t.trigger_id AND f.customer_id = e.customer_id AND f.event_id = e.event_id;
			IF res = 'queued' THEN
				queued := queued + 1;
			ELSIF res = 'refused' THEN
				refused := refused + 1;
			ELSE
				left_out := left_out + 1;
			END IF;
		END LOOP;
		RETURN NEXT;
	END LOOP;
END
$$;
COMMENT ON FUNCTION wam.run_offer_triggers(timestamptz) IS 'decides the new events of the enabled offer triggers up to at (not in the future): queues their messages with the customers'' codes through the rules'' campaigns, or records why not; run every minute by the "offer triggers" job; returns per rule how many were queued, refused and left out';
REVOKE EXECUTE ON FUNCTION wam.run_offer_triggers(timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.run_offer_triggers(timestamptz) TO wam_operator;
