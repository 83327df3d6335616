-- 82_enqueue_blocked: wam.enqueue_message looks up the customer's 131049 refusals of the
-- last 24 hours only (src/sql/sender.sql), so its cost does not grow with wam.outbox.

CREATE OR REPLACE FUNCTION wam.enqueue_message(customer bigint, payload jsonb, sender text DEFAULT NULL,
							not_before timestamptz DEFAULT pg_catalog.now(), vars jsonb DEFAULT NULL,
							priority integer DEFAULT 0, expires_at timestamptz DEFAULT NULL,
							campaign text DEFAULT NULL, variant text DEFAULT NULL)
	RETURNS bigint
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	c wam.customer;
	sid integer;
	is_template boolean;
	names text[];
	vals text[];
	rendered jsonb;
	window_end timestamptz;
	blocked_until timestamptz;
	new_id bigint;
BEGIN
	PERFORM wam_internal.refuse_null(customer IS NULL, 'customer');
	PERFORM wam_internal.check_enqueue_options(not_before, priority, vars);
	is_template := wam.check_payload(payload);
	sid := wam.sender_id(sender);
	SELECT * INTO c FROM wam.customer x WHERE x.id = customer;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'customer % does not exist', customer USING ERRCODE = 'foreign_key_violation';
	END IF;
	IF c.opted_out_at IS NOT NULL THEN
		RAISE EXCEPTION 'customer % opted out of WhatsApp messages', customer
			USING ERRCODE = 'object_not_in_prerequisite_state',
				  DETAIL = format('Reason recorded: %s.', coalesce(c.opt_out_reason, 'none'));
	END IF;
	IF c.consent_at IS NULL THEN
		RAISE EXCEPTION 'customer % has not consented to WhatsApp marketing', customer
			USING ERRCODE = 'object_not_in_prerequisite_state',
				  HINT = 'Record the consent with wam.record_consent(customer, source) first.';
	END IF;
	IF NOT is_template THEN
		window_end := c.last_inbound_at + interval '24 hours';
		IF window_end IS NULL OR window_end <= greatest(not_before, pg_catalog.now()) THEN
			RAISE EXCEPTION 'customer %''s 24-hour window is closed: free-form messages are not allowed', customer
				USING ERRCODE = 'object_not_in_prerequisite_state',
					  DETAIL = CASE WHEN c.last_inbound_at IS NULL THEN 'The customer never wrote to the business.'
									ELSE format('The customer last wrote at %s.', c.last_inbound_at) END,
					  HINT = 'Send an approved template instead.';
		END IF;
	END IF;
	rendered := wam.render_customer_payload(payload, vars, c.id, c.phone, c.name, c.locale);
	IF rendered IS NULL THEN
		-- which placeholder has no value, for the message
		names := wam.payload_placeholders(payload);
		SELECT array_agg(coalesce(wam_internal.customer_field(c, n), vars->>n) ORDER BY ord) INTO vals
		FROM unnest(names) WITH ORDINALITY u(n, ord);
		RAISE EXCEPTION 'no value for placeholder {%} of customer %',
			(SELECT n FROM unnest(names, vals) u(n, v) WHERE v IS NULL LIMIT 1), customer
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Give a fallback in vars, e.g. {"name": "there"}.';
	END IF;
	-- Meta asks not to retry for 24 h after 131049 (per-user marketing cap).
	-- Only the last day's refusals can block: bounded by time, the lookup
	-- reads the few recent ones (outbox_ecosystem), not all of the customer's
	-- messages, whose number grows with the table.
	SELECT max(o.failed_at) + interval '24 hours' INTO blocked_until
	FROM wam.outbox o
	WHERE o.customer_id = customer AND o.error_code = 131049 AND o.failed_at > pg_catalog.now() - interval '24 hours';
	INSERT INTO wam.outbox (sender_id, customer_id, recipient, payload, campaign, variant, priority,
							not_before, next_attempt_at, expires_at)
	VALUES (sid, customer, c.phone, rendered, campaign, variant, priority, not_before,
			greatest(not_before, blocked_until),
			CASE WHEN is_template THEN expires_at ELSE least(expires_at, window_end) END)
	RETURNING message_id INTO new_id;
	RETURN new_id;
END
$$;
COMMENT ON FUNCTION wam.enqueue_message(bigint, jsonb, text, timestamptz, jsonb, integer, timestamptz, text, text) IS 'queues one message to a customer; returns its id';
