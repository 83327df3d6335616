-- src/sql/attribution.sql: what campaigns bring and what they cost: link
-- clicks attributed to the message they came from, orders attributed to the
-- campaign message before them, revenue and return on spend; mis-targeting
-- feedback and the error rate of the tags audiences are built from; the
-- sizes of media the business sends.

-- clicks

-- A click on a link of a message, as the business's link redirect sees it:
-- a link_click event of the message's customer that names the message and its
-- campaign, so that reports, follow-ups ("unless click") and behaviour
-- predicates ("event(link_click, campaign_id = 7)") all read the same row.
CREATE FUNCTION wam.record_click(message bigint, url text, at timestamptz DEFAULT pg_catalog.now(),
								 details jsonb DEFAULT NULL) RETURNS bigint
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	o wam.outbox;
	id bigint;
BEGIN
	PERFORM wam_internal.refuse_null(message IS NULL, 'message');
	PERFORM wam_internal.refuse_null(url IS NULL, 'url');
	PERFORM wam_internal.refuse_null(at IS NULL, 'click time');
	IF length(url) > 2048 OR url !~* '^https?://[^[:space:][:cntrl:]/?#]+([/?#][^[:space:][:cntrl:]]*)?$' THEN
		RAISE EXCEPTION 'a clicked link must be an http or https URL of at most 2048 characters'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF NOT isfinite(at) THEN
		RAISE EXCEPTION 'click time must be finite, not %', at USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF details IS NOT NULL AND jsonb_typeof(details) <> 'object' THEN
		RAISE EXCEPTION 'click details must be a JSON object, not %', jsonb_typeof(details)
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	SELECT * INTO o FROM wam.outbox x WHERE x.message_id = message;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'message % does not exist', message USING ERRCODE = 'undefined_object';
	END IF;
	IF o.sent_at IS NULL AND o.wamid IS NULL THEN
		RAISE EXCEPTION 'message % was not sent: no click can come from it', message
			USING ERRCODE = 'object_not_in_prerequisite_state';
	END IF;
	IF at < coalesce(o.sending_at, o.sent_at) THEN
		RAISE EXCEPTION 'a click at % comes before message % was sent (%)', at, message, coalesce(o.sending_at, o.sent_at)
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	-- the message may outlive its customer (outbox rows keep no foreign key)
	INSERT INTO wam.event (customer_id, kind, occurred_at, details)
	SELECT c.id, 'link_click', at,
		   coalesce(details, '{}') || jsonb_strip_nulls(jsonb_build_object('message_id', o.message_id,
											'campaign_id', o.campaign_id, 'campaign', o.campaign, 'url', url))
	FROM wam.customer c WHERE c.id = o.customer_id
	RETURNING event_id INTO id;
	IF id IS NULL THEN
		RAISE EXCEPTION 'the customer of message % does not exist any more', message USING ERRCODE = 'undefined_object';
	END IF;
	RETURN id;
END
$$;
COMMENT ON FUNCTION wam.record_click(bigint, text, timestamptz, jsonb) IS 'records a click on a link of a sent message as a link_click event of its customer naming the message and campaign (details: more keys, e.g. the product); returns the event id';

REVOKE EXECUTE ON FUNCTION wam.record_click(bigint, text, timestamptz, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.record_click(bigint, text, timestamptz, jsonb) TO wam_operator;

-- orders

-- The orders a campaign brought: each order of a recipient placed within the
-- campaign's attribution window after its message went out, and -- last touch
-- -- with no other campaign message to the customer between that message and
-- the order, or -- first touch -- with none in the window before that
-- message.  Ties between messages sent at the same time go to the lower id,
-- so an order is never counted twice.  The discount is the order's own
-- details->'discount' (a number), as the shop records it.
CREATE FUNCTION wam_internal.attributed_orders(c wam.campaign)
	RETURNS TABLE (order_id bigint, customer_id bigint, ordered_at timestamptz, amount numeric, discount numeric,
				   message_id bigint, touched_at timestamptz)
	LANGUAGE sql STABLE SET search_path = pg_catalog, wam, pg_temp
AS $$
	WITH m AS (
		SELECT o.message_id, o.customer_id, coalesce(o.sent_at, o.sending_at) AS touched
		FROM wam.outbox o
		WHERE o.campaign_id = c.campaign_id AND (o.sent_at IS NOT NULL OR o.wamid IS NOT NULL)
	)
	SELECT co.order_id, co.customer_id, co.ordered_at, co.amount,
		   CASE WHEN jsonb_typeof(co.details->'discount') = 'number' THEN (co.details->>'discount')::numeric ELSE 0 END,
		   m.message_id, m.touched
	FROM m JOIN wam.customer_order co ON co.customer_id = m.customer_id
		 AND co.ordered_at >= m.touched AND co.ordered_at < m.touched + c.attribution_window
	WHERE NOT EXISTS (
		-- another campaign message that takes the order (outbox_contact index)
		SELECT FROM wam.outbox x
		WHERE x.customer_id = m.customer_id AND x.category IS NOT NULL AND x.sending_at IS NOT NULL
		  AND x.message_id <> m.message_id AND (x.sent_at IS NOT NULL OR x.wamid IS NOT NULL)
		  AND CASE WHEN c.attribution = 'first_touch'
				   THEN (coalesce(x.sent_at, x.sending_at), x.message_id) < (m.touched, m.message_id)
						AND coalesce(x.sent_at, x.sending_at) > co.ordered_at - c.attribution_window
				   ELSE (coalesce(x.sent_at, x.sending_at), x.message_id) > (m.touched, m.message_id)
						AND coalesce(x.sent_at, x.sending_at) <= co.ordered_at END)
$$;
COMMENT ON FUNCTION wam_internal.attributed_orders(wam.campaign) IS 'internal: the orders attributed to a campaign (last or first touch within its window)';

REVOKE EXECUTE ON FUNCTION wam_internal.attributed_orders(wam.campaign) FROM PUBLIC;

CREATE FUNCTION wam.campaign_orders(campaign text)
	RETURNS TABLE (order_id bigint, customer_id bigint, ordered_at timestamptz, amount numeric, discount numeric,
				   message_id bigint, touched_at timestamptz)
	LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
BEGIN
	RETURN QUERY SELECT * FROM wam_internal.attributed_orders(wam_internal.campaign_row(campaign, false)) a
				 ORDER BY a.ordered_at, a.order_id;
END
$$;
COMMENT ON FUNCTION wam.campaign_orders(text) IS 'the orders attributed to a campaign: placed within its attribution window after its message, by last touch (or first touch) among campaign messages; with the discount and the message';

REVOKE EXECUTE ON FUNCTION wam.campaign_orders(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.campaign_orders(text) TO wam_reader;

-- Revenue per unit spent (R-A4): 7 and above is healthy, below 4 the
-- segmentation needs revisiting.
CREATE FUNCTION wam.roi_health(roi numeric) RETURNS text
	LANGUAGE sql IMMUTABLE PARALLEL SAFE
	RETURN CASE WHEN roi IS NULL THEN NULL WHEN roi >= 7 THEN 'healthy' WHEN roi < 4 THEN 'revisit the segmentation'
				ELSE 'fair' END;
COMMENT ON FUNCTION wam.roi_health(numeric) IS 'band of a return on spend: healthy at 7 and above, revisit the segmentation below 4, else fair';

REVOKE EXECUTE ON FUNCTION wam.roi_health(numeric) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.roi_health(numeric) TO wam_reader;

-- mis-targeting feedback

-- Replies that say the message reached the wrong person or interest.  A reply
-- whose text, normalised as for opt-out keywords, begins with one of these is
-- recorded as a "mistargeted" event for the message it answers.
CREATE TABLE wam.feedback_keyword (
	keyword text PRIMARY KEY,
	language text
);
COMMENT ON TABLE wam.feedback_keyword IS 'reply texts (their beginnings) that mean a message was mis-targeted';
INSERT INTO wam.feedback_keyword (keyword, language) VALUES
	('wrong number', 'en'), ('wrong person', 'en'), ('not interested', 'en'), ('not for me', 'en'),
	('not relevant', 'en'), ('who is this', 'en'),
	('número equivocado', 'es'), ('no me interesa', 'es'), ('não tenho interesse', 'pt'),
	('pas intéressé', 'fr'), ('mauvais numéro', 'fr'), ('kein interesse', 'de'), ('falsche nummer', 'de'),
	('不感兴趣', 'zh'), ('发错了', 'zh'), ('не интересно', 'ru');

REVOKE ALL ON wam.feedback_keyword FROM PUBLIC;
GRANT INSERT, DELETE ON wam.feedback_keyword TO wam_admin;
GRANT SELECT ON wam.feedback_keyword TO wam_definer;
GRANT SELECT ON wam.feedback_keyword TO wam_reader;

-- Row-level with a WHEN clause: only reply events call it (the webhook writes
-- them for answers to a message); a restore loads the mistargeted events it
-- wrote.
CREATE FUNCTION wam_internal.reply_feedback_trigger() RETURNS trigger
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
BEGIN
	IF NOT wam_internal.restoring() AND jsonb_typeof(NEW.details) = 'object' AND jsonb_typeof(NEW.details->'text') = 'string'
	   AND EXISTS (SELECT FROM wam.feedback_keyword k
				   WHERE starts_with(wam.normalize_keyword(NEW.details->>'text'), wam.normalize_keyword(k.keyword))
					 AND wam.normalize_keyword(k.keyword) <> '') THEN
		INSERT INTO wam.event (customer_id, kind, occurred_at, details)
		SELECT NEW.customer_id, 'mistargeted', NEW.occurred_at,
			   jsonb_strip_nulls(jsonb_build_object('message_id', o.message_id, 'campaign_id', o.campaign_id,
													'source', 'reply', 'text', left(NEW.details->>'text', 200)))
		FROM (SELECT) one LEFT JOIN wam.outbox o
			 ON jsonb_typeof(NEW.details->'answers') = 'number' AND o.message_id = (NEW.details->>'answers')::bigint;
	END IF;
	RETURN NULL;
END
$$;
COMMENT ON FUNCTION wam_internal.reply_feedback_trigger() IS 'trigger: a reply that begins with a feedback keyword becomes a mistargeted event for the message it answers';
CREATE TRIGGER reply_feedback AFTER INSERT ON wam.event
	FOR EACH ROW WHEN (NEW.kind = 'reply')
	EXECUTE FUNCTION wam_internal.reply_feedback_trigger();

REVOKE EXECUTE ON FUNCTION wam_internal.reply_feedback_trigger() FROM PUBLIC;

-- An operator's word that a customer should not have got a campaign's message
-- (a complaint by phone, a returned coupon): the same event a reply makes.
CREATE FUNCTION wam.record_mistargeting(customer bigint, campaign text DEFAULT NULL, note text DEFAULT NULL,
										at timestamptz DEFAULT pg_catalog.now()) RETURNS bigint
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	cid integer;
	msg bigint;
	id bigint;
BEGIN
	PERFORM wam_internal.refuse_null(customer IS NULL, 'customer');
	PERFORM wam_internal.refuse_null(at IS NULL, 'time');
	IF NOT isfinite(at) THEN
		RAISE EXCEPTION 'time must be finite, not %', at USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF length(note) > 1000 THEN
		RAISE EXCEPTION 'a note has at most 1000 characters' USING ERRCODE = 'string_data_right_truncation';
	END IF;
	PERFORM FROM wam.customer c WHERE c.id = customer;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'customer % does not exist', customer USING ERRCODE = 'undefined_object';
	END IF;
	IF campaign IS NOT NULL THEN
		cid := (wam_internal.campaign_row(campaign, false)).campaign_id;
	END IF;
	-- the campaign's message to the customer, else their last campaign message
	SELECT o.message_id, o.campaign_id INTO msg, cid FROM wam.outbox o
	WHERE o.customer_id = customer AND o.campaign_id = coalesce(cid, o.campaign_id)
	  AND (o.sent_at IS NOT NULL OR o.wamid IS NOT NULL) AND coalesce(o.sending_at, o.sent_at) <= at
	ORDER BY coalesce(o.sending_at, o.sent_at) DESC, o.message_id DESC LIMIT 1;
	IF msg IS NULL THEN
		RAISE EXCEPTION 'customer % got no % before %', customer,
			coalesce(format('message of campaign "%s"', campaign), 'campaign message'), at
			USING ERRCODE = 'object_not_in_prerequisite_state';
	END IF;
	INSERT INTO wam.event (customer_id, kind, occurred_at, details)
	VALUES (customer, 'mistargeted', at,
			jsonb_strip_nulls(jsonb_build_object('message_id', msg, 'campaign_id', cid, 'source', 'operator',
												 'by', session_user, 'note', note)))
	RETURNING event_id INTO id;
	RETURN id;
END
$$;
COMMENT ON FUNCTION wam.record_mistargeting(bigint, text, text, timestamptz) IS 'records that a customer should not have got a campaign''s message (default: their last campaign message) as a mistargeted event; returns the event id';

REVOKE EXECUTE ON FUNCTION wam.record_mistargeting(bigint, text, text, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.record_mistargeting(bigint, text, text, timestamptz) TO wam_operator;

-- The error rate of each tag campaigns were aimed with (R-A4): of the
-- customers who hold the tag and got a message of a campaign launched since
-- `since` whose audience names it, the share who said (or an operator said)
-- that campaign's message was mis-targeted.  Above `flag_above` percent the
-- tag's data needs cleaning.  Customers who no longer hold the tag do not
-- count, so a tag an audience excluded ("NOT vip") is not blamed.
CREATE FUNCTION wam.tag_error_rates(since timestamptz DEFAULT pg_catalog.now() - interval '30 days',
									flag_above numeric DEFAULT 15)
	RETURNS TABLE (tag text, campaigns bigint, recipients bigint, mistargeted bigint, error_rate numeric,
				   needs_cleaning boolean)
	LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
BEGIN
	PERFORM wam_internal.refuse_null(since IS NULL OR flag_above IS NULL, 'since and flag_above');
	IF flag_above < 0 OR flag_above > 100 OR flag_above = 'NaN' THEN
		RAISE EXCEPTION 'flag_above is a percentage from 0 to 100, not %', flag_above
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	RETURN QUERY
	WITH camp AS (
		SELECT c.campaign_id, unnest(wam_internal.audience_tag_ids(coalesce(p.audience, c.audience))) AS tag_id
		FROM wam.campaign c LEFT JOIN wam.campaign p ON p.campaign_id = c.parent_id
		WHERE c.launched_at >= since
	), rec AS (
		SELECT DISTINCT camp.tag_id, o.customer_id, o.campaign_id
		FROM camp
			 JOIN wam.outbox o ON o.campaign_id = camp.campaign_id AND (o.sent_at IS NOT NULL OR o.wamid IS NOT NULL)
			 JOIN wam.customer_tag ct ON ct.tag_id = camp.tag_id AND ct.customer_id = o.customer_id
										 AND (ct.expires_at IS NULL OR ct.expires_at > pg_catalog.now())
	), bad AS (
		SELECT DISTINCT e.customer_id, (e.details->>'campaign_id')::integer AS campaign_id
		FROM wam.event e
		WHERE e.kind = 'mistargeted' AND e.occurred_at >= since AND jsonb_typeof(e.details->'campaign_id') = 'number'
	), n AS (
		SELECT rec.tag_id, count(DISTINCT rec.campaign_id) AS campaigns, count(DISTINCT rec.customer_id) AS recipients,
			   count(DISTINCT rec.customer_id) FILTER (WHERE bad.customer_id IS NOT NULL) AS mistargeted
		FROM rec LEFT JOIN bad ON bad.customer_id = rec.customer_id AND bad.campaign_id = rec.campaign_id
		GROUP BY rec.tag_id
	)
	SELECT t.name, n.campaigns, n.recipients, n.mistargeted, round(100.0 * n.mistargeted / n.recipients, 1),
		   100.0 * n.mistargeted > flag_above * n.recipients
	FROM n JOIN wam.tag t ON t.tag_id = n.tag_id
	ORDER BY 100.0 * n.mistargeted / n.recipients DESC, t.name;
END
$$;
COMMENT ON FUNCTION wam.tag_error_rates(timestamptz, numeric) IS 'per tag used by the audiences of campaigns launched since a time: recipients holding it, how many were mis-targeted, the error rate in percent, and whether it is above flag_above (15 %): the tag''s data needs cleaning';

REVOKE EXECUTE ON FUNCTION wam.tag_error_rates(timestamptz, numeric) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.tag_error_rates(timestamptz, numeric) TO wam_reader;

-- media

-- WhatsApp's size limits by media type, in bytes (decimal megabytes, the
-- safe reading of Meta's "5 MB"); stickers at the animated limit.
CREATE FUNCTION wam.media_size_limit(media_type text) RETURNS bigint
	LANGUAGE sql IMMUTABLE PARALLEL SAFE
	RETURN CASE media_type WHEN 'image' THEN 5000000 WHEN 'video' THEN 16000000 WHEN 'audio' THEN 16000000
						   WHEN 'document' THEN 100000000 WHEN 'sticker' THEN 500000 END;
COMMENT ON FUNCTION wam.media_size_limit(text) IS 'WhatsApp''s size limit of a media type in bytes: image 5 MB, video and audio 16 MB, document 100 MB, sticker 500 KB';

REVOKE EXECUTE ON FUNCTION wam.media_size_limit(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wam.media_size_limit(text) TO wam_reader;

-- The business's media with their sizes, where it knows them: messages naming
-- one (by link or uploaded media id) are checked against WhatsApp's limits.
CREATE TABLE wam.media_asset (
	ref text PRIMARY KEY CONSTRAINT media_asset_ref CHECK (length(ref) BETWEEN 1 AND 2048),
	media_type text NOT NULL
		CONSTRAINT media_asset_type CHECK (media_type IN ('image', 'video', 'audio', 'document', 'sticker')),
	bytes bigint NOT NULL CONSTRAINT media_asset_bytes CHECK (bytes > 0),
	mime_type text,
	registered_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE wam.media_asset IS 'media of the business (a link or an uploaded media id) with its size: campaigns sending one above WhatsApp''s limit are refused';

REVOKE ALL ON wam.media_asset FROM PUBLIC;
GRANT SELECT ON wam.media_asset TO wam_reader;
GRANT INSERT, UPDATE, DELETE ON wam.media_asset TO wam_operator;
GRANT SELECT ON wam.media_asset TO wam_definer;

-- The first media object of a payload (image, video, ... by link or id) that
-- is registered with a size above its type's limit, described; NULL if none.
CREATE FUNCTION wam_internal.oversized_media(payload jsonb) RETURNS text
	LANGUAGE sql STABLE SET search_path = pg_catalog, wam, pg_temp
AS $$
	SELECT format('%s %s of %s bytes (WhatsApp takes at most %s)', p.media_type, m.ref, m.bytes,
				  wam.media_size_limit(p.media_type))
	FROM unnest(ARRAY['image', 'video', 'audio', 'document', 'sticker']) p(media_type)
		 CROSS JOIN LATERAL jsonb_path_query(payload, ('lax $.**.' || p.media_type)::jsonpath) x(obj)
		 JOIN wam.media_asset m ON m.ref IN (x.obj->>'link', x.obj->>'id')
	WHERE jsonb_typeof(x.obj) = 'object' AND m.bytes > wam.media_size_limit(p.media_type)
	ORDER BY array_position(ARRAY['image', 'video', 'audio', 'document', 'sticker'], p.media_type), m.ref
	LIMIT 1
$$;
COMMENT ON FUNCTION wam_internal.oversized_media(jsonb) IS 'internal: the first registered media of a payload above WhatsApp''s size limit, described (NULL: none)';

REVOKE EXECUTE ON FUNCTION wam_internal.oversized_media(jsonb) FROM PUBLIC;
