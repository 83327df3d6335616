-- 62_pair_limit: a message retried after a throttle waits 1-2 s, as the
-- result recording says, not the 6 s of the pair limit: its own earlier,
-- untaken attempt no longer counts as a message to the recipient.

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
BEGIN
	SELECT * INTO s FROM wam.sender x WHERE x.sender_id = sender;
	IF NOT FOUND OR s.paused OR max_messages < 1 THEN
		RETURN;
	END IF;
	lim := wam.sender_daily_limit(s);
	IF lim IS NOT NULL THEN
		SELECT count(DISTINCT o.recipient) INTO used FROM wam.outbox o
		WHERE o.sender_id = sender AND o.sending_at > pg_catalog.now() - interval '24 hours';
		new_allowed := greatest(lim - used, 0);
	END IF;
	RETURN QUERY
	WITH cand AS MATERIALIZED (
		SELECT o.message_id, o.recipient, o.expires_at, o.priority, o.next_attempt_at
		FROM wam.outbox o
		WHERE o.sender_id = sender AND o.status IN ('queued', 'retrying')
		  AND o.next_attempt_at <= pg_catalog.now()
		ORDER BY o.priority DESC, o.next_attempt_at, o.message_id
		LIMIT max_messages * 4
		FOR UPDATE SKIP LOCKED
	), gone AS (
		UPDATE wam.outbox o SET status = 'expired', expired_at = pg_catalog.now()
		FROM cand WHERE o.message_id = cand.message_id AND cand.expires_at <= pg_catalog.now()
		RETURNING o.message_id
	), ok AS (
		-- one message per recipient, none within 6 s of the last one (pair limit)
		SELECT DISTINCT ON (cand.recipient) cand.*,
			   lim IS NOT NULL AND EXISTS (SELECT FROM wam.outbox p WHERE p.sender_id = sender
										   AND p.recipient = cand.recipient
										   AND p.sending_at > pg_catalog.now() - interval '24 hours') AS known
		FROM cand
		WHERE (cand.expires_at IS NULL OR cand.expires_at > pg_catalog.now())
		  -- the row's own earlier attempt does not count: a row is retried only
		  -- when the API did not take it (unanswered rows become uncertain)
		  AND NOT EXISTS (SELECT FROM wam.outbox p WHERE p.sender_id = sender AND p.recipient = cand.recipient
						  AND p.sending_at > pg_catalog.now() - interval '6 seconds'
						  AND p.message_id <> cand.message_id)
		ORDER BY cand.recipient, cand.priority DESC, cand.next_attempt_at, cand.message_id
	), pick AS (
		SELECT ok.message_id FROM (
			SELECT ok.*, row_number() OVER (PARTITION BY ok.known
											ORDER BY ok.priority DESC, ok.next_attempt_at, ok.message_id) AS rn
			FROM ok) ok
		WHERE lim IS NULL OR ok.known OR ok.rn <= new_allowed
		ORDER BY ok.priority DESC, ok.next_attempt_at, ok.message_id
		LIMIT max_messages
	), upd AS (
		UPDATE wam.outbox o SET status = 'sending', sending_at = pg_catalog.now(), attempts = o.attempts + 1
		FROM pick WHERE o.message_id = pick.message_id
		RETURNING o.message_id, o.recipient, o.payload, o.priority, o.next_attempt_at
	)
	SELECT upd.message_id,
		   (upd.payload || jsonb_build_object('messaging_product', 'whatsapp', 'recipient_type', 'individual',
											  'to', '+' || upd.recipient,
											  'biz_opaque_callback_data', 'wam:' || upd.message_id))::text
	FROM upd ORDER BY upd.priority DESC, upd.next_attempt_at, upd.message_id;
END
$$;
